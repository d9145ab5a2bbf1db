//! `<bin_path>/tools/create_snapshot`: the snapshot helper run on the source host over ssh
//! (see [`mmm_tools::hotbackup::create_snapshot`]).
fn main() -> std::process::ExitCode {
    mmm_tools::main_snapshot_helper(true)
}
