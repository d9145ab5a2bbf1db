//! `mmm_restore`: see [`mmm_tools::restore`].
fn main() -> std::process::ExitCode {
    mmm_tools::main_restore(std::env::args().collect())
}
