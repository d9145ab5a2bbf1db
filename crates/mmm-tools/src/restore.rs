//! `mmm_restore [--config c] [--mode <mode>] [--version <version | list>] [--src-dir d]
//! [--dest-dir d] [--dry-run]` (spec §6): restores a backup of mmm_backup on the local
//! host. A hot backup (made by the mariadb-backup back-end, any copy method) is restored
//! with the copy method's `restore_command` into `<dest>/.mmm-stage`, its clone dir moved to
//! `<dest>/.mmm-new`, verified, and swapped entry by entry into `<dest>`; a 2.2.1 backup is restored with
//! 2.2.1's command into `<dest>/.mmm-stage`, verified, and its clone dirs swapped for
//! `<dest>`'s ([`crate::staged`]).

use std::path::Path;

use clap::Parser;

use crate::error::{Result, ToolsError};
use crate::info::line;
use crate::placeholders::fill;
use crate::remote::shell;
use crate::server::{self, StartAt};
use crate::settings::{Host, ToolsConfig};
use crate::staged::Staged;
use crate::status::{self, Status};
use crate::swap::Swap;
use crate::{cleanup, hotbackup};

/// The restore modes, as 2.2.1 lists them.
pub const RESTORE_MODES: [&str; 6] = [
    "data-only",
    "single-single",
    "slave-single",
    "master-single",
    "master-slave",
    "slave-slave",
];

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "mmm_restore",
    disable_version_flag = true,
    disable_help_flag = true
)]
pub struct RestoreArgs {
    /// Config base name or path (default `mmm_tools`).
    #[arg(long, default_value = "")]
    pub config: String,
    /// The backup (default the local host's `backup_dir`).
    #[arg(long = "src-dir", default_value = "")]
    pub src_dir: String,
    /// Where it goes (default the local host's `restore_dir`).
    #[arg(long = "dest-dir", default_value = "")]
    pub dest_dir: String,
    /// The restore mode (default single-single).
    #[arg(long, default_value = "")]
    pub mode: String,
    /// An incremental version, or `list`.
    #[arg(long, default_value = "")]
    pub version: String,
    /// Check everything and exit without any changes.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
}

/// 2.2.1's usage text.
pub fn usage(program: &str, _cfg: Option<&ToolsConfig>) -> String {
    format!(
        "Usage: {program} [--config <config file>] [--mode <mode>] [--version <version | list>] [--src-dir <dir>] [--dest-dir <dir>] [--dry-run]\n\
Where:\n  src-dir : directory where backup resides\n  dest-dir: directory where backup should be restored to\n  mode    : {}\n  version : \n    - when run with 'list' parameter, displays available versions of incremental backups\n    - if version is specified, tries to restore backup for specified version\n  dry-run : check everything and exit without any changes\n\n",
        RESTORE_MODES.join(", ")
    )
}

/// 2.2.1's `check_restore_source`.
pub fn check_restore_source(dir: &str) -> bool {
    tracing::info!("Checking restore source directory '{dir}'...");
    let d = Path::new(dir);
    let fail = |msg: String| {
        tracing::error!("{msg}");
        false
    };
    if !d.is_dir() {
        return fail(format!(
            "Source dir '{dir}' has invalid permissions (should be readable/executable)!"
        ));
    }
    if std::fs::read_dir(d).map_or(true, |mut e| e.next().is_none()) {
        return fail(format!("Source dir '{dir}' is empty!"));
    }
    if !d.join(status::MMM_DIR).is_dir() {
        return fail("Source dir doesn't contain _mmm sub-directory!".into());
    }
    for f in ["status.txt", "copy_method.txt"] {
        if !d.join(status::MMM_DIR).join(f).is_file() {
            return fail(format!("{dir}/_mmm/{f} doesn't exist or isn't readable!"));
        }
    }
    tracing::info!("Directory is ok");
    true
}

fn localtime(ts: i64) -> String {
    let t: libc::time_t = ts as libc::time_t;
    // SAFETY: localtime_r and strftime write into the buffers given, bounded by their sizes.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return ts.to_string();
        }
        let mut buf = [0u8; 64];
        let n = libc::strftime(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%a %b %e %H:%M:%S %Y".as_ptr(),
            &tm,
        );
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// 2.2.1's `list_increments` with the copy method `rdiff`.
pub fn list_increments(cfg: &ToolsConfig, backup_dir: &str) -> Result<()> {
    let Some(method) = cfg.copy_method("rdiff").filter(|m| m.incremental) else {
        tracing::error!("Invalid backup directory for incremental operations");
        return Ok(());
    };
    let command = fill(
        method.incremental_command.as_deref().unwrap_or_default(),
        &[("BACKUP_DIR", backup_dir)],
    );
    let out = shell(&command)
        .output()
        .map_err(|_| ToolsError::Failed("Can't read version info from backup!".into()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if command.contains("rdiff-backup") && command.contains("parsable-output") {
        println!("Following backup versions are available:");
        println!("     Version | Date");
        println!("-------------|---------------------------");
        for l in text.lines() {
            let ts = l.split_whitespace().next().unwrap_or("");
            let date = ts.parse::<i64>().map(localtime).unwrap_or_default();
            let date: String = date.chars().take(25).collect();
            println!("{}", format!(" {ts:>11} | {date}").trim_end());
        }
    } else {
        print!("{text}");
    }
    Ok(())
}

/// The newest version of the incremental backup in `backup_dir` (the first column of the
/// `rdiff` method's `incremental_command` output, as a number), if it can be read.
pub fn latest_increment(cfg: &ToolsConfig, backup_dir: &str) -> Option<String> {
    let method = cfg.copy_method("rdiff").filter(|m| m.incremental)?;
    let command = fill(
        method.incremental_command.as_deref().unwrap_or_default(),
        &[("BACKUP_DIR", backup_dir)],
    );
    let out = shell(&command).output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .max()
        .map(|v| v.to_string())
}

/// Whether a backup is a hot backup (the mariadb-backup back-end's): its status says so.
pub fn is_hot_backup(st: &Status) -> bool {
    st.backup_method.as_deref() == Some(hotbackup::MARIADB_BACKUP)
}

/// Runs mmm_restore.
pub async fn run(cfg: &ToolsConfig, args: &RestoreArgs) -> Result<()> {
    let mode = if args.mode.is_empty() {
        "single-single".to_string()
    } else {
        args.mode.clone()
    };
    let skip_mysqld = mode == "data-only";
    let this = cfg.this_host()?;
    let src_dir = if args.src_dir.is_empty() {
        this.tool("backup_dir").to_string()
    } else {
        args.src_dir.clone()
    };
    let dest_dir = if args.dest_dir.is_empty() {
        this.tool("restore_dir").to_string()
    } else {
        args.dest_dir.clone()
    };
    if !RESTORE_MODES.contains(&mode.as_str()) {
        return Err(ToolsError::Usage(format!("Invalid restore mode '{mode}'")));
    }
    if !check_restore_source(&src_dir) {
        return Err(ToolsError::Usage(format!(
            "Invalid backup directory '{src_dir}'"
        )));
    }
    if args.version == "list" {
        return list_increments(cfg, &src_dir);
    }
    let st = status::load_status(Path::new(&src_dir))?;
    let method = cfg.copy_method(&st.copy_method).ok_or_else(|| {
        ToolsError::Failed(format!(
            "Backup was created with unknown copy-method '{}' - can't restore it",
            st.copy_method
        ))
    })?;
    if method.incremental && args.version.is_empty() {
        tracing::error!("'{src_dir}' contains an incremental backup, but no version was specified");
        list_increments(cfg, &src_dir)?;
        return Err(ToolsError::Failed("no version given".into()));
    }
    let (src_mode, dest_mode) = mode.split_once('-').unwrap_or(("data", "only"));
    let hot = is_hot_backup(&st);
    let mut peer_name = st.host.clone();
    if src_mode == "slave" {
        peer_name = match st.slave.get("Master_Host") {
            Some(ip) => cfg
                .host_by_ip(ip)
                .map(|h| h.name().to_string())
                .unwrap_or_default(),
            None => match cfg.host(&st.host) {
                // A hot backup records no slave status: ask the source for its master.
                Some(h) if hot => {
                    let ip = server::master_host(&h).await?;
                    cfg.host_by_ip(&ip)
                        .map(|h| h.name().to_string())
                        .unwrap_or_default()
                }
                _ => String::new(),
            },
        };
    }
    let mut peer: Option<Host<'_>> = None;
    if dest_mode != "single" && !skip_mysqld {
        peer = Some(
            cfg.host(&peer_name)
                .ok_or_else(|| ToolsError::Failed(format!("Unknown peer host '{peer_name}'")))?,
        );
    }
    // A snapshot backup records its coordinates only in `_mmm/status.txt`, which is the
    // latest backup's: an older version can't set replication from them.
    if !hot && !args.version.is_empty() && dest_mode == "slave" && !skip_mysqld {
        let latest = latest_increment(cfg, &src_dir);
        if latest.as_deref() != Some(args.version.as_str()) {
            return Err(ToolsError::Failed(format!(
                "'{src_dir}/_mmm/status.txt' holds the replication coordinates of the latest backup ({}), not of version '{}': restore that version with --mode {src_mode}-single and set replication by hand",
                latest.as_deref().unwrap_or("unknown"),
                args.version
            )));
        }
    }
    let l = |a: &str, b: &str| println!("{}", line(a, b, 22, 55));
    l("Source dir", &src_dir);
    l("Destination dir", &dest_dir);
    l("Dirs to restore", &cfg.clone_dirs_text());
    l("Restore mode", &mode);
    if !args.version.is_empty() {
        l("Incremental version", &args.version);
    }
    if let Some(p) = &peer {
        l("Replication peer", p.name());
    }
    if hot {
        l("Backup method", "mariadb-backup");
    }
    l(
        "Skip mysqld operations",
        if skip_mysqld { "yes" } else { "no" },
    );
    l("Dry run", if args.dry_run { "yes" } else { "no" });
    if args.dry_run {
        return Ok(());
    }

    let restore_cmd = |from: &str, to: &str| {
        fill(
            method.restore_command.as_deref().unwrap_or_default(),
            &[
                ("SRC_DIR", from),
                ("BACKUP_DIR", from),
                ("DEST_DIR", to),
                ("DATA_DIR", to),
                ("VERSION", &args.version),
            ],
        )
    };
    if hot {
        if !args.version.is_empty() && !method.incremental {
            return Err(ToolsError::Failed(
                "The backup directory contains an non-incremental backup!".into(),
            ));
        }
        let swap = Swap::new(&dest_dir);
        swap.preflight()?;
        if !skip_mysqld {
            server::stop(&this)?;
        }
        let clone_dir = hotbackup::hot_clone_dir(cfg)?;
        let prepared = (|| -> Result<Status> {
            swap.make_stage()?;
            run_shell(&restore_cmd(&src_dir, &swap.stage.display().to_string()))?;
            swap.take_from_stage(clone_dir)?;
            hotbackup::verify(&swap.new)?;
            // An incremental backup's `_mmm` is the latest backup's: the restored
            // version's own coordinates are in its copy.
            let st = if args.version.is_empty() {
                st.clone()
            } else {
                version_status(&st, &swap.new)?
            };
            cleanup::cleanup(&st, &swap.new, std::slice::from_ref(&swap.new))?;
            Ok(st)
        })();
        let st = match prepared {
            Ok(st) => st,
            Err(e) => {
                swap.discard_new();
                return Err(ToolsError::Failed(format!(
                    "{e}\nNothing was changed: '{}' is as it was",
                    swap.dest.display()
                )));
            }
        };
        swap.swap()?;
        log_restored(args, &src_dir, &dest_dir);
        if !skip_mysqld {
            start_and_replicate(&this, peer.as_ref(), &st, src_mode, dest_mode).await?;
        }
        swap.drop_old();
    } else {
        if args.version.is_empty() && method.incremental {
            return Err(ToolsError::Failed("The backup directory contains an incremental backup! Use --version option to restore a specific version.".into()));
        }
        if !args.version.is_empty() && !method.incremental {
            return Err(ToolsError::Failed(
                "The backup directory contains an non-incremental backup!".into(),
            ));
        }
        let staged = Staged::new(&dest_dir, &cfg.cfg.clone_dirs)?;
        staged.preflight()?;
        if !skip_mysqld {
            server::stop(&this)?;
        }
        if !crate::clone::check_restore_destination(&dest_dir) {
            return Err(ToolsError::Failed(format!(
                "Invalid destination directory '{dest_dir}'"
            )));
        }
        // 2.2.1's restore_command, into the stage; verified and cleaned there.
        let prepared = (|| -> Result<()> {
            staged.make_stage()?;
            run_shell(&restore_cmd(&src_dir, &staged.stage.display().to_string()))?;
            staged.verify(Some(&st))?;
            cleanup::cleanup(&st, &staged.stage, &staged.staged_dirs())
        })();
        if let Err(e) = prepared {
            staged.discard();
            return Err(ToolsError::Failed(format!(
                "{e}\nNothing was changed: '{dest_dir}' is as it was{}",
                if skip_mysqld {
                    String::new()
                } else {
                    format!(
                        " (the local MySQL server is stopped; start it with '{} start')",
                        this.section.mysql_rcscript
                    )
                }
            )));
        }
        staged.swap()?;
        log_restored(args, &src_dir, &dest_dir);
        if !skip_mysqld {
            start_and_replicate(&this, peer.as_ref(), &st, src_mode, dest_mode).await?;
        }
        staged.drop_old();
    }
    tracing::info!("Restore operation finished!");
    Ok(())
}

/// The status of one version of an incremental hot backup: `_mmm/status.txt` holds the
/// latest backup's coordinates (rdiff-backup leaves `_mmm` out of its increments), the
/// restored copy its own (`mariadb_backup_binlog_info`).
fn version_status(latest: &Status, copy: &Path) -> Result<Status> {
    let mut st = hotbackup::status_of(copy, &latest.host)?;
    st.copy_method = latest.copy_method.clone();
    if st.master != latest.master {
        tracing::info!(
            "Using the restored version's own coordinates: binlog {} position {}, GTID {}",
            st.master.get("File").map_or("", String::as_str),
            st.master.get("Position").map_or("", String::as_str),
            st.gtid().unwrap_or("(none)")
        );
    }
    Ok(st)
}

fn run_shell(command: &str) -> Result<()> {
    tracing::info!("Executing command {command}");
    let ok = shell(command).status().is_ok_and(|s| s.success());
    if !ok {
        return Err(ToolsError::Failed("Can't restore data".into()));
    }
    Ok(())
}

async fn start_and_replicate(
    this: &Host<'_>,
    peer: Option<&Host<'_>>,
    st: &Status,
    src_mode: &str,
    dest_mode: &str,
) -> Result<()> {
    server::start(this).await?;
    let Some(peer) = peer.filter(|_| dest_mode != "single") else {
        tracing::info!(
            "Skipping replication setup because destination configuration is '{dest_mode}'"
        );
        return Ok(());
    };
    let at = match (src_mode, dest_mode, st.gtid()) {
        ("master" | "slave", "slave", Some(g)) => StartAt::Gtid(g.to_string()),
        ("master", "slave", _) => StartAt::File {
            file: st.master.get("File").cloned().unwrap_or_default(),
            pos: st.master.get("Position").cloned().unwrap_or_default(),
        },
        ("slave", "slave", _) => StartAt::File {
            file: st
                .slave
                .get("Relay_Master_Log_File")
                .cloned()
                .unwrap_or_default(),
            pos: st
                .slave
                .get("Exec_Master_Log_Pos")
                .cloned()
                .unwrap_or_default(),
        },
        _ => {
            tracing::warn!("Bad restore mode '{src_mode}-{dest_mode}', skipping replication setup");
            return Ok(());
        }
    };
    server::change_master_to(this, peer, &at).await
}

/// 2.2.1's log line after a restore.
fn log_restored(args: &RestoreArgs, src_dir: &str, dest_dir: &str) {
    if args.version.is_empty() {
        tracing::info!("Restored backup from '{src_dir}' to '{dest_dir}'");
    } else {
        tracing::info!(
            "Restored backup version '{}' from '{src_dir}' to '{dest_dir}'",
            args.version
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmm_common::config::{parse_str, ProgramClass};

    #[test]
    fn latest_increment_is_the_newest_version() {
        let conf = "this db3\ndefault_copy_method rdiff\nclone_dirs data\n\
<host default>\n  ssh_user root\n  tools_user t\n  tools_password p\n  backup_dir /b\n  restore_dir /r\n\
  replication_user r\n  replication_password s\n  bin_path /usr/lib/mysql-mmm/\n  backup_method mariadb-backup\n</host>\n\
<host db3>\n  ip 10.0.0.3\n</host>\n\
<copy_method rdiff>\n  backup_command true\n  restore_command true\n\
  incremental_command printf '1796620074 directory\\n1796620069 directory\\n'\n\
  incremental 1\n</copy_method>\n";
        let cfg = ToolsConfig {
            cfg: parse_str(conf, "t.conf", &[], ProgramClass::Tools).expect("valid"),
        };
        assert_eq!(latest_increment(&cfg, "/b").as_deref(), Some("1796620074"));
    }
}
