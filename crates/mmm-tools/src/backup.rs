//! `mmm_backup [--config c] --host <host> [--copy-method m] [--dest-dir d] [--dry-run]`
//! (spec §6). With the hot-backup back-end and a stream method the host's backup is
//! streamed into `<dest>/<clone dir>`, prepared and verified there, and its coordinates
//! written to `<dest>/_mmm/status.txt` (`copy_method.txt` beside it); with a snapshot copy
//! method (`scp`, `ssh-gz`, `rdiff`) 2.2.1's sequence runs on a prepared hot backup staged
//! on the source by `create_snapshot`; a host with `backup_method lvm` gets 2.2.1's LVM
//! snapshot there instead (snapshot copy methods only). `--dry-run` is an mmm-rs addition.

use std::path::Path;

use clap::Parser;
use mmm_common::config::BackupMethod;

use crate::error::{Result, ToolsError};
use crate::settings::{Host, ToolsConfig};
use crate::{hotbackup, remote, status};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "mmm_backup",
    disable_version_flag = true,
    disable_help_flag = true
)]
pub struct BackupArgs {
    /// Config base name or path (default `mmm_tools`).
    #[arg(long, default_value = "")]
    pub config: String,
    /// The host to back up.
    #[arg(long, default_value = "")]
    pub host: String,
    /// A `<copy_method>` (default `default_copy_method`).
    #[arg(long = "copy-method", default_value = "")]
    pub copy_method: String,
    /// Where the backup goes (default the host's `backup_dir`).
    #[arg(long = "dest-dir", default_value = "")]
    pub dest_dir: String,
    /// Print the plan only (mmm-rs).
    #[arg(long = "dry-run")]
    pub dry_run: bool,
}

/// 2.2.1's usage text.
pub fn usage(program: &str, cfg: Option<&ToolsConfig>) -> String {
    let mut s = format!("Usage: {program} [--config <config file>] --host <host> [--copy-method <copy method>] [--dest-dir <dir>]\n");
    if let Some(cfg) = cfg {
        let methods = cfg.copy_method_names(false);
        s.push_str("Where:\n");
        s.push_str(&format!(
            "  host       : {}\n",
            cfg.host_names().join(" | ")
        ));
        s.push_str(&format!(
            "  copy-method: {} (default: {})\n",
            methods.join(" | "),
            cfg.default_copy_method()
        ));
        s.push_str("  dest-dir   : directory where data should be backed up to\n\n");
    }
    s
}

/// 2.2.1's `check_backup_destination`: `mkdir -p`, writable, empty unless incremental.
pub fn check_backup_destination(dir: &str, should_be_empty: bool) -> bool {
    tracing::info!("Checking local destination directory '{dir}'...");
    let _ = std::fs::create_dir_all(dir);
    let ok = std::fs::metadata(dir).is_ok_and(|m| m.is_dir() && !m.permissions().readonly());
    if !ok {
        tracing::error!(
            "Destination dir '{dir}' has invalid permissions (should be readable/writeable/executable)!"
        );
        return false;
    }
    let empty = std::fs::read_dir(dir).is_ok_and(|mut d| {
        d.all(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with('.')))
    });
    if should_be_empty && !empty {
        tracing::error!("Destination dir '{dir}' is not empty!");
        return false;
    }
    tracing::info!("Directory is ok");
    true
}

/// Runs mmm_backup.
pub async fn run(cfg: &ToolsConfig, args: &BackupArgs) -> Result<()> {
    let host = cfg
        .host(&args.host)
        .ok_or_else(|| ToolsError::Usage(format!("Invalid host name '{}'", args.host)))?;
    let copy_method = if args.copy_method.is_empty() {
        cfg.default_copy_method().to_string()
    } else {
        args.copy_method.clone()
    };
    let dest_dir = if args.dest_dir.is_empty() {
        host.tool("backup_dir").to_string()
    } else {
        args.dest_dir.clone()
    };
    let method = cfg
        .copy_method(&copy_method)
        .ok_or_else(|| ToolsError::Usage(format!("Invalid copy method '{copy_method}'")))?;
    if !check_backup_destination(&dest_dir, !method.incremental) {
        return Err(ToolsError::Usage(format!(
            "Invalid backup directory '{dest_dir}'"
        )));
    }
    if host.backup_method() == BackupMethod::Lvm {
        if method.stream {
            return Err(ToolsError::Failed(lvm_stream_error(
                &copy_method,
                host.name(),
            )));
        }
        return staged(cfg, &host, &copy_method, &dest_dir, args.dry_run);
    }
    let clone_dir = hotbackup::hot_clone_dir(cfg)?;
    if !method.stream {
        return staged(cfg, &host, &copy_method, &dest_dir, args.dry_run);
    }
    let data = Path::new(&dest_dir).join(clone_dir);
    let receive = crate::clone::receive_command(
        method.backup_command.as_deref().unwrap_or_default(),
        &host,
        &data.display().to_string(),
    );
    let send = format!(
        "{} {}",
        remote::ssh_prefix(&host),
        remote::helper_path(&host, "stream_backup")
    );
    if args.dry_run {
        println!("Plan:");
        println!("  1. check ssh: {} date", remote::ssh_prefix(&host));
        println!("  2. stream a hot backup: {send} | {receive}");
        println!(
            "  3. prepare and verify it: {} --prepare --target-dir={}",
            hotbackup::MARIADB_BACKUP,
            data.display()
        );
        println!(
            "  4. write {dest_dir}/{}/status.txt and copy_method.txt",
            status::MMM_DIR
        );
        return Ok(());
    }
    remote::check_ssh_connection(host.name(), &host)?;
    std::fs::create_dir_all(&data)
        .map_err(crate::error::io_err(format!("creating {}", data.display())))?;
    crate::stream::stream_copy(&send, &receive, &data)?;
    hotbackup::prepare(&data)?;
    hotbackup::verify(&data)?;
    let st = hotbackup::status_of(&data, host.name())?;
    status::save_status(Path::new(&dest_dir), &st)?;
    status::save_copy_method(Path::new(&dest_dir), &copy_method)?;
    tracing::info!("Backup of host '{}' in '{dest_dir}' finished!", host.name());
    Ok(())
}

/// The error for a stream copy method with a host that takes LVM snapshots.
pub fn lvm_stream_error(method: &str, host: &str) -> String {
    format!(
        "Copy method '{method}' streams a hot backup (mariadb-backup), but host '{host}' takes LVM snapshots (backup_method lvm): use a snapshot copy method (such as scp)"
    )
}

/// 2.2.1's backup sequence with a snapshot copy method: `create_snapshot` on the source,
/// the clone dirs and `_mmm` (with `scp`) copied, `copy_method.txt`, `remove_snapshot`.
fn staged(
    cfg: &ToolsConfig,
    host: &Host<'_>,
    method: &str,
    dest_dir: &str,
    dry_run: bool,
) -> Result<()> {
    if dry_run {
        println!("Plan:");
        println!("  1. check ssh: {} date", remote::ssh_prefix(host));
        let what = if host.backup_method() == BackupMethod::Lvm {
            "an LVM snapshot mounted"
        } else {
            "a prepared hot backup"
        };
        println!(
            "  2. {what} in {}:{} ({} {})",
            host.name(),
            crate::copy::snapshot_dir(host),
            remote::ssh_prefix(host),
            remote::helper_path(host, "create_snapshot")
        );
        println!("  3. copy it with copy method '{method}' and its _mmm with 'scp' into {dest_dir}, write copy_method.txt");
        println!("  4. remove it on the source (remove_snapshot)");
        return Ok(());
    }
    remote::check_ssh_connection(host.name(), host)?;
    remote::execute_remote(host.name(), host, "create_snapshot")?;
    let copied = (|| -> Result<()> {
        crate::copy::copy_clone_dirs(cfg, host, method, dest_dir)?;
        crate::copy::copy_from_remote(cfg, host, "scp", dest_dir, status::MMM_DIR)?;
        status::save_copy_method(Path::new(dest_dir), method)
    })();
    let removed = remote::execute_remote(host.name(), host, "remove_snapshot");
    copied?;
    removed?;
    tracing::info!("Backup of host '{}' in '{dest_dir}' finished!", host.name());
    Ok(())
}
