//! `mmm_backup`: see [`mmm_tools::backup`].
fn main() -> std::process::ExitCode {
    mmm_tools::main_backup(std::env::args().collect())
}
