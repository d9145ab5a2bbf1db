//! AFL++ target `agent_protocol`: [`mmm_fuzz::agent_protocol`].
fn main() {
    afl::fuzz!(|data: &[u8]| mmm_fuzz::agent_protocol(data));
}
