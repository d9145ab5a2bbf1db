//! `mmm_control [@cluster] COMMAND [ARGS]`: see the library ([`mmm_control::run`]).
fn main() -> std::process::ExitCode {
    mmm_control::run(std::env::args().collect())
}
