//! AFL++ target `control_protocol`: [`mmm_fuzz::control_protocol`].
fn main() {
    afl::fuzz!(|data: &[u8]| mmm_fuzz::control_protocol(data));
}
