//! Remote steps over ssh as 2.2.1 runs them: `ssh <ssh_parameters> -p <ssh_port>
//! <ssh_user>@<ip> <command>` through `sh -c` (so `ssh_parameters` keeps its shell
//! meaning), helpers at `<bin_path>/tools/<program>` on the remote host, success = the last
//! line of the helper's output starts with `OK`.

use std::process::{Command, Stdio};

use crate::error::{io_err, Result, ToolsError};
use crate::settings::Host;

/// Where the remote helpers are when the host has no `bin_path` (the Debian layout).
pub const DEFAULT_BIN_PATH: &str = "/usr/lib/mysql-mmm";

/// `ssh <ssh_parameters> -p <ssh_port> <ssh_user>@<ip>` for `host` (2.2.1's spacing: two
/// spaces when `ssh_parameters` is empty).
pub fn ssh_prefix(host: &Host<'_>) -> String {
    format!(
        "ssh {} -p {} {}",
        host.tool("ssh_parameters"),
        host.tool("ssh_port"),
        ssh_target(host)
    )
}

/// `<ssh_user>@<ip>`.
pub fn ssh_target(host: &Host<'_>) -> String {
    format!("{}@{}", host.tool("ssh_user"), host.ip())
}

/// The path of helper `program` on `host`: `<bin_path>/tools/<program>`.
pub fn helper_path(host: &Host<'_>, program: &str) -> String {
    let bin = host
        .section
        .bin_path
        .as_deref()
        .unwrap_or(DEFAULT_BIN_PATH)
        .trim_end_matches('/');
    format!("{bin}/tools/{program}")
}

/// A `sh -c <line>` command.
pub fn shell(line: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(line);
    cmd
}

/// 2.2.1's `check_ssh_connection`: runs `date` on `host`.
pub fn check_ssh_connection(name: &str, host: &Host<'_>) -> Result<()> {
    let check_cmd = format!("{} date", ssh_prefix(host));
    tracing::info!(
        "Verifying ssh connection to remote host '{}' (command: {check_cmd})...",
        ssh_target(host)
    );
    let status = shell(&check_cmd)
        .stdin(Stdio::null())
        .status()
        .map_err(io_err("running ssh"))?;
    if !status.success() {
        return Err(ToolsError::Failed(format!(
            "Can't execute remote commands on host '{name}' ({}): {status}",
            ssh_target(host)
        )));
    }
    tracing::info!("OK: SSH connection works fine!");
    Ok(())
}

/// 2.2.1's `execute_remote`: runs helper `program` on `host`, prints its output, and
/// succeeds when the last line starts with `OK`.
pub fn execute_remote(name: &str, host: &Host<'_>, program: &str) -> Result<()> {
    let command = format!("{} {}", ssh_prefix(host), helper_path(host, program));
    tracing::debug!("Executing {program} on host '{name}'...");
    tracing::info!("{command}");
    let out = shell(&command)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(io_err("running ssh"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let text = text.trim_end_matches('\n');
    println!("{text}");
    if !last_line_ok(text) {
        return Err(ToolsError::Failed(format!(
            "{program} on host '{name}' failed: {text}"
        )));
    }
    Ok(())
}

/// Whether the last line of `text` starts with `OK`.
pub fn last_line_ok(text: &str) -> bool {
    text.trim_end_matches('\n')
        .lines()
        .last()
        .is_some_and(|l| l.starts_with("OK"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_is_the_last_line() {
        assert!(last_line_ok("a\nOK: Snapshot created!\n"));
        assert!(!last_line_ok("OK: x\nERROR: y"));
        assert!(!last_line_ok(""));
    }
}
