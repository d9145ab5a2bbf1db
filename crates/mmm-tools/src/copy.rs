//! 2.2.1's copy methods over a snapshot (`copy_clone_dirs`, `copy_from_remote`,
//! `copy_from_remote_single_run`): the method's `backup_command` with the placeholders
//! `%SSH_USER%`, `%IP%`, `%SNAPSHOT%`, `%DEST_DIR%`, `%BACKUP_DIR%`, `%CLONE_DIR%`, run
//! once per clone dir (the destination gets the dir's parent path), or once for all with
//! `single_run` (the text between `!…!` repeated per clone dir, space-separated).

use std::path::Path;

use crate::error::{Result, ToolsError};
use crate::placeholders::fill;
use crate::remote::shell;
use crate::settings::{Host, ToolsConfig};

/// Where a host's snapshot is mounted (`lvm_mount_dir`) or its staged hot backup is
/// made: `lvm_mount_dir` when set, else 2.2.1's stock `/mmm_snapshot`.
pub fn snapshot_dir(host: &Host<'_>) -> String {
    match host.tool("lvm_mount_dir") {
        "" => DEFAULT_SNAPSHOT_DIR.to_string(),
        d => d.to_string(),
    }
}

/// The stock `lvm_mount_dir` of 2.2.1's `mmm_tools.conf`.
pub const DEFAULT_SNAPSHOT_DIR: &str = "/mmm_snapshot";

fn run(command: &str) -> bool {
    tracing::info!("Executing command {command}");
    shell(command).status().is_ok_and(|s| s.success())
}

fn base_pairs<'a>(
    host: &Host<'a>,
    snapshot: &'a str,
    dest: &'a str,
) -> Vec<(&'static str, &'a str)> {
    vec![
        ("SSH_USER", host.tool("ssh_user")),
        ("IP", host.ip()),
        ("SNAPSHOT", snapshot),
        ("DEST_DIR", dest),
        ("BACKUP_DIR", dest),
    ]
}

/// 2.2.1's `copy_from_remote`: one clone dir (`sub_dir`) with `method`.
pub fn copy_from_remote(
    cfg: &ToolsConfig,
    host: &Host<'_>,
    method: &str,
    dest_dir: &str,
    sub_dir: &str,
) -> Result<()> {
    tracing::info!(
        "Copying '{sub_dir}' from snapshot on host '{}' with copy method '{method}'",
        host.name()
    );
    let m = cfg
        .copy_method(method)
        .ok_or_else(|| ToolsError::Failed(format!("Invalid copy method '{method}'")))?;
    let mut dest = dest_dir.to_string();
    if let Some(parent) = Path::new("/").join(sub_dir).parent() {
        if parent != Path::new("/") {
            dest = format!("{dest_dir}/{}", parent.display());
            let _ = std::fs::create_dir_all(&dest);
        }
    }
    let snapshot = snapshot_dir(host);
    let mut pairs = base_pairs(host, &snapshot, &dest);
    pairs.push(("CLONE_DIR", sub_dir));
    let command = fill(m.backup_command.as_deref().unwrap_or_default(), &pairs);
    if !run(&command) {
        return Err(ToolsError::Failed(format!("Can't copy {sub_dir}")));
    }
    tracing::info!("Copied directory {sub_dir}!");
    Ok(())
}

/// The `single_run` command: `!…!` repeated once per clone dir.
pub fn single_run_command(template: &str, pairs: &[(&str, &str)], clone_dirs: &[String]) -> String {
    let command = fill(template, pairs);
    let (Some(a), Some(b)) = (command.find('!'), command.rfind('!')) else {
        return command;
    };
    if a == b {
        return command;
    }
    let part = &command[a + 1..b];
    let repeated: String = clone_dirs
        .iter()
        .map(|d| format!(" {}", fill(part, &[("CLONE_DIR", d)])))
        .collect();
    format!("{}{repeated}{}", &command[..a], &command[b + 1..])
}

/// 2.2.1's `copy_clone_dirs`: every clone dir of `host`'s snapshot into `dest_dir`.
pub fn copy_clone_dirs(
    cfg: &ToolsConfig,
    host: &Host<'_>,
    method: &str,
    dest_dir: &str,
) -> Result<()> {
    let m = cfg
        .copy_method(method)
        .ok_or_else(|| ToolsError::Failed(format!("Invalid copy method '{method}'")))?;
    if !m.single_run {
        for d in &cfg.cfg.clone_dirs {
            copy_from_remote(cfg, host, method, dest_dir, d)?;
        }
        return Ok(());
    }
    tracing::info!(
        "Copying files from snapshot on host '{}' with copy method '{method}'",
        host.name()
    );
    let snapshot = snapshot_dir(host);
    let pairs = base_pairs(host, &snapshot, dest_dir);
    let command = single_run_command(
        m.backup_command.as_deref().unwrap_or_default(),
        &pairs,
        &cfg.cfg.clone_dirs,
    );
    if !run(&command) {
        return Err(ToolsError::Failed("Can't copy from remote host".into()));
    }
    let mut dirs = cfg.cfg.clone_dirs.clone();
    dirs.sort();
    tracing::info!(
        "Copied directories '{}' from host '{}'!",
        dirs.join("', '"),
        host.name()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_run_repeats_between_bangs() {
        let t = "ssh %SSH_USER%@%IP% \"cd '%SNAPSHOT%'; tar cv !'%CLONE_DIR%'!\" | gzip > %DEST_DIR%/backup.tar.gz";
        let c = single_run_command(
            t,
            &[
                ("SSH_USER", "root"),
                ("IP", "1.2.3.4"),
                ("SNAPSHOT", "/s"),
                ("DEST_DIR", "/d"),
            ],
            &["data".into(), "logs".into()],
        );
        assert_eq!(
            c,
            "ssh root@1.2.3.4 \"cd '/s'; tar cv  'data' 'logs'\" | gzip > /d/backup.tar.gz"
        );
    }
}
