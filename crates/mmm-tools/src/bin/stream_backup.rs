//! `<bin_path>/tools/stream_backup`: the hot-backup helper run on the source host over ssh
//! (see [`mmm_tools::hotbackup::stream_backup`]).
fn main() -> std::process::ExitCode {
    mmm_tools::main_stream_backup()
}
