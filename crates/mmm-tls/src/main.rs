//! `mmm_tls [@cluster] [--out DIR]`: see the library ([`mmm_tls::run`]).
fn main() -> std::process::ExitCode {
    mmm_tls::run(std::env::args().collect())
}
