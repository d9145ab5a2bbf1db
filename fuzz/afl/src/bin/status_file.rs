//! AFL++ target `status_file`: [`mmm_fuzz::status_file`].
fn main() {
    afl::fuzz!(|data: &[u8]| mmm_fuzz::status_file(data));
}
