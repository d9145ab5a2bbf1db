//! AFL++ target `config`: [`mmm_fuzz::config`].
fn main() {
    afl::fuzz!(|data: &[u8]| mmm_fuzz::config(data));
}
