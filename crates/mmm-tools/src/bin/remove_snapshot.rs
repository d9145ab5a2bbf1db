//! `<bin_path>/tools/remove_snapshot`: removes what `create_snapshot` made (see
//! [`mmm_tools::hotbackup::remove_snapshot`]).
fn main() -> std::process::ExitCode {
    mmm_tools::main_snapshot_helper(false)
}
