//! `mmm_mond` (placeholder until its issue lands).
fn main() {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("--version") {
        println!("mmm_mond {}", mmm_common::VERSION);
    }
}
