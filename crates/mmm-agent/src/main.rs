//! `mmm_agentd`: the MMM agent daemon. Everything is in [`mmm_agent::daemon_main`].
fn main() -> std::process::ExitCode {
    mmm_agent::daemon_main::run(std::env::args_os())
}
