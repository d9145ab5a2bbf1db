//! `mmm_clone`: see [`mmm_tools::clone`].
fn main() -> std::process::ExitCode {
    mmm_tools::main_clone(std::env::args().collect())
}
