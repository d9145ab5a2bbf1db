//! The hot-backup back-end on `mariadb-backup` (mmm-rs `backup_method mariadb-backup`):
//! the source side ([`stream_backup`], the remote helper) and the local side
//! ([`prepare`], [`verify`]: a prepared copy with its replication coordinates).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{io_err, Result, ToolsError};
use crate::settings::ToolsConfig;
use crate::status::{Status, GTID_KEY};
use crate::stream::SIZE_PREFIX;

/// The backup program.
pub const MARIADB_BACKUP: &str = "mariadb-backup";

/// The files that hold the copy's binlog coordinates (`file <TAB> pos [<TAB> gtid]`):
/// MariaDB 10.11+'s name, then the older xtrabackup name.
pub const BINLOG_INFO_FILES: [&str; 2] = ["mariadb_backup_binlog_info", "xtrabackup_binlog_info"];

/// The backup types of a prepared full backup (MariaDB 10.4+ writes `log-applied`,
/// xtrabackup `full-prepared`).
pub const PREPARED_TYPES: [&str; 2] = ["log-applied", "full-prepared"];

/// The files with the backup's type (`backup_type = log-applied` once prepared).
pub const CHECKPOINT_FILES: [&str; 2] = ["mariadb_backup_checkpoints", "xtrabackup_checkpoints"];

/// The binlog coordinates of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogInfo {
    /// Binlog file.
    pub file: String,
    /// Position in it.
    pub position: String,
    /// GTID position (MariaDB), when the server had one.
    pub gtid: Option<String>,
}

/// Parses a binlog-info file's text.
pub fn parse_binlog_info(text: &str) -> Option<BinlogInfo> {
    let line = text.lines().find(|l| !l.trim().is_empty())?;
    let mut parts = line.split('\t').map(str::trim);
    let file = parts.next()?.to_string();
    let position = parts.next()?.to_string();
    if file.is_empty() || position.parse::<u64>().is_err() {
        return None;
    }
    let gtid = parts
        .next()
        .map(|g| g.trim_matches('\'').to_string())
        .filter(|g| !g.is_empty());
    Some(BinlogInfo {
        file,
        position,
        gtid,
    })
}

/// Reads the copy's binlog coordinates from `dir`.
pub fn read_binlog_info(dir: &Path) -> Result<BinlogInfo> {
    for name in BINLOG_INFO_FILES {
        if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
            return parse_binlog_info(&text).ok_or_else(|| {
                ToolsError::Failed(format!(
                    "{} has no binlog coordinates (is the source's binary log on?)",
                    dir.join(name).display()
                ))
            });
        }
    }
    Err(ToolsError::Failed(format!(
        "The copy in {} has no {} (not a mariadb-backup backup?)",
        dir.display(),
        BINLOG_INFO_FILES.join(" or ")
    )))
}

/// The [`Status`] of a hot backup of `host` in `dir`.
pub fn status_of(dir: &Path, host: &str) -> Result<Status> {
    let info = read_binlog_info(dir)?;
    let mut status = Status {
        host: host.to_string(),
        backup_method: Some(MARIADB_BACKUP.to_string()),
        ..Status::default()
    };
    status.master.insert("File".into(), info.file);
    status.master.insert("Position".into(), info.position);
    if let Some(g) = info.gtid {
        status.master.insert(GTID_KEY.into(), g);
    }
    Ok(status)
}

fn tail(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `mariadb-backup --prepare --target-dir=<dir>`: makes the copy consistent.
pub fn prepare(dir: &Path) -> Result<()> {
    tracing::info!(
        "Preparing the copy in '{}' ({MARIADB_BACKUP} --prepare)...",
        dir.display()
    );
    let out = Command::new(MARIADB_BACKUP)
        .arg("--prepare")
        .arg(format!("--target-dir={}", dir.display()))
        .stdin(Stdio::null())
        .output()
        .map_err(io_err(format!("running {MARIADB_BACKUP}")))?;
    if !out.status.success() {
        return Err(ToolsError::Failed(format!(
            "{MARIADB_BACKUP} --prepare failed ({}):\n{}",
            out.status,
            tail(&out.stderr, 15)
        )));
    }
    tracing::info!("Prepared!");
    Ok(())
}

/// Checks a prepared copy: prepared checkpoints, InnoDB's system tablespace, the `mysql`
/// schema and binlog coordinates. Returns the coordinates.
pub fn verify(dir: &Path) -> Result<BinlogInfo> {
    let checkpoints = CHECKPOINT_FILES
        .iter()
        .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())
        .ok_or_else(|| {
            ToolsError::Failed(format!(
                "The copy in {} has no checkpoints file",
                dir.display()
            ))
        })?;
    let prepared = checkpoints.lines().any(|l| {
        l.starts_with("backup_type") && PREPARED_TYPES.iter().any(|t| l.trim_end().ends_with(t))
    });
    if !prepared {
        return Err(ToolsError::Failed(format!(
            "The copy in {} is not a prepared full backup: {}",
            dir.display(),
            checkpoints.lines().next().unwrap_or("")
        )));
    }
    for needed in ["ibdata1", "mysql"] {
        if !dir.join(needed).exists() {
            return Err(ToolsError::Failed(format!(
                "The copy in {} lacks {needed}",
                dir.display()
            )));
        }
    }
    let info = read_binlog_info(dir)?;
    tracing::info!(
        "Copy verified: binlog {} position {}, GTID {}",
        info.file,
        info.position,
        info.gtid.as_deref().unwrap_or("(none)")
    );
    Ok(info)
}

/// Bytes under `dir` (regular files, not following links).
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}

/// The `datadir` of a my.cnf's `[mysqld]` group (the last one given), if any.
pub fn cnf_datadir(cnf: &str) -> Option<String> {
    let mut in_mysqld = false;
    let mut found = None;
    for line in cnf.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_mysqld = matches!(l, "[mysqld]" | "[server]" | "[mariadb]");
            continue;
        }
        if !in_mysqld {
            continue;
        }
        if let Some((k, v)) = l.split_once('=') {
            if k.trim().replace('-', "_") == "datadir" {
                found = Some(v.trim().to_string());
            }
        }
    }
    found
}

/// The remote helper `stream_backup` (run on the source host over ssh): writes
/// `SIZE: <bytes>` on stderr, runs `mariadb-backup --backup --stream=mbstream` with the
/// host's tools account to stdout, and ends stderr with `OK: Backup streamed!` or an
/// `ERROR: …` line. Returns the exit code.
pub fn stream_backup(cfg: &ToolsConfig) -> u8 {
    let mut err = std::io::stderr();
    match stream_backup_inner(cfg) {
        Ok(()) => {
            let _ = writeln!(err, "OK: Backup streamed!");
            0
        }
        Err(e) => {
            let _ = writeln!(err, "ERROR: {e}");
            1
        }
    }
}

fn stream_backup_inner(cfg: &ToolsConfig) -> Result<()> {
    let host = cfg.this_host()?;
    let cnf = host.section.mysql_cnf.clone();
    let cnf_text = std::fs::read_to_string(&cnf).ok();
    if let Some(datadir) = cnf_text.as_deref().and_then(cnf_datadir) {
        eprintln!("{SIZE_PREFIX}{}", dir_size(Path::new(&datadir)));
    }
    let tmp = std::env::temp_dir().join(format!("mmm_stream_backup.{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
    let (user, password) = host.tools_account();
    let mut cmd = Command::new(MARIADB_BACKUP);
    if cnf_text.is_some() {
        cmd.arg(format!("--defaults-file={cnf}"));
    }
    cmd.arg("--backup")
        .arg("--stream=mbstream")
        .arg(format!("--target-dir={}", tmp.display()))
        .arg(format!("--host={}", host.ip()))
        .arg(format!("--port={}", host.mysql_port()))
        .arg(format!("--user={user}"))
        .env("MYSQL_PWD", password)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(io_err(format!("running {MARIADB_BACKUP}")))?;
    let mut last = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            last.push(line);
            if last.len() > 20 {
                last.remove(0);
            }
        }
    }
    let status = child.wait().map_err(io_err("waiting for mariadb-backup"))?;
    let _ = std::fs::remove_dir_all(&tmp);
    if !status.success() {
        for l in &last {
            eprintln!("{l}");
        }
        return Err(ToolsError::Failed(format!(
            "{MARIADB_BACKUP} --backup failed ({status})"
        )));
    }
    Ok(())
}

/// The one clone dir of the hot-backup back-end: the name the data directory's copy has in
/// a snapshot or backup (`clone_dirs data`).
pub fn hot_clone_dir(cfg: &ToolsConfig) -> Result<&str> {
    match cfg.cfg.clone_dirs.as_slice() {
        [one] if !one.contains('/') && one != ".." && one != "." => Ok(one),
        _ => Err(ToolsError::Failed(
            "The mariadb-backup back-end copies the data directory as one clone dir: set 'clone_dirs' to one name (e.g. 'clone_dirs data')".into(),
        )),
    }
}

/// Whether the local host (`this`) takes its copies with LVM snapshots.
fn is_lvm_here(cfg: &ToolsConfig) -> bool {
    cfg.this_host()
        .is_ok_and(|h| h.backup_method() == mmm_common::config::BackupMethod::Lvm)
}

/// The remote helper `create_snapshot` (2.2.1's name; run over ssh on the source host):
/// 2.2.1's LVM snapshot for a host with `backup_method lvm` ([`crate::lvm`]), else for
/// the hot-backup back-end a prepared `mariadb-backup` backup in `<snapshot dir>/<clone
/// dir>` (`lvm_mount_dir`, default `/mmm_snapshot`, must be empty), `_mmm/status.txt` and
/// the host's `mysql_cnf` beside it, for the snapshot copy methods (`scp`, `ssh-gz`,
/// `rdiff`). Returns the last output line (`OK: Snapshot created!` or `ERROR: …`).
pub fn create_snapshot(cfg: &ToolsConfig) -> String {
    if is_lvm_here(cfg) {
        return crate::lvm::create_snapshot(cfg);
    }
    match create_snapshot_inner(cfg) {
        Ok(()) => "OK: Snapshot created!".into(),
        Err(e) => format!("ERROR: {e}"),
    }
}

fn create_snapshot_inner(cfg: &ToolsConfig) -> Result<()> {
    let host = cfg.this_host()?;
    let dir = crate::copy::snapshot_dir(&host);
    let clone_dir = hot_clone_dir(cfg)?;
    std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {dir}")))?;
    if std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_some()) {
        return Err(ToolsError::Failed(format!(
            "Snapshot dir '{dir}' is not empty!"
        )));
    }
    let target = Path::new(&dir).join(clone_dir);
    let (user, password) = host.tools_account();
    let cnf = host.section.mysql_cnf.clone();
    let mut cmd = Command::new(MARIADB_BACKUP);
    if Path::new(&cnf).is_file() {
        cmd.arg(format!("--defaults-file={cnf}"));
    }
    let out = cmd
        .arg("--backup")
        .arg(format!("--target-dir={}", target.display()))
        .arg(format!("--host={}", host.ip()))
        .arg(format!("--port={}", host.mysql_port()))
        .arg(format!("--user={user}"))
        .env("MYSQL_PWD", password)
        .stdin(Stdio::null())
        .output()
        .map_err(io_err(format!("running {MARIADB_BACKUP}")))?;
    if !out.status.success() {
        return Err(ToolsError::Failed(format!(
            "{MARIADB_BACKUP} --backup failed ({}):\n{}",
            out.status,
            tail(&out.stderr, 15)
        )));
    }
    prepare(&target)?;
    verify(&target)?;
    let status = status_of(&target, host.name())?;
    crate::status::save_status(Path::new(&dir), &status)?;
    if Path::new(&cnf).is_file() {
        let to = Path::new(&dir).join(crate::status::MMM_DIR).join(
            Path::new(&cnf)
                .file_name()
                .unwrap_or_else(|| std::ffi::OsStr::new("my.cnf")),
        );
        std::fs::copy(&cnf, &to)
            .map_err(|_| ToolsError::Failed("Can't copy mysql config file to backup!".into()))?;
    }
    Ok(())
}

/// The remote helper `remove_snapshot`: 2.2.1's umount and lvremove for an LVM host; for
/// the hot-backup back-end it removes the staged
/// backup (`<snapshot dir>/<clone dir>` and `_mmm`, nothing else). Returns the last line.
pub fn remove_snapshot(cfg: &ToolsConfig) -> String {
    if is_lvm_here(cfg) {
        return crate::lvm::remove_snapshot(cfg);
    }
    let inner = || -> Result<()> {
        let host = cfg.this_host()?;
        let dir = crate::copy::snapshot_dir(&host);
        for sub in [hot_clone_dir(cfg)?, crate::status::MMM_DIR] {
            let p = Path::new(&dir).join(sub);
            if p.exists() {
                std::fs::remove_dir_all(&p).map_err(io_err(format!("removing {}", p.display())))?;
            }
        }
        Ok(())
    };
    match inner() {
        Ok(()) => "OK: Snapshot removed!".into(),
        Err(e) => format!("ERROR: Can't remove snapshot: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binlog_info() {
        let i = parse_binlog_info("mysql_bin.000003\t1234\t0-1-55,1-3-9\n").expect("parses");
        assert_eq!(i.file, "mysql_bin.000003");
        assert_eq!(i.position, "1234");
        assert_eq!(i.gtid.as_deref(), Some("0-1-55,1-3-9"));
        let i = parse_binlog_info("mysql-bin.000001\t4\n").expect("parses");
        assert_eq!(i.gtid, None);
        assert!(parse_binlog_info("").is_none());
        assert!(parse_binlog_info("x\ty\n").is_none());
    }

    #[test]
    fn datadir_of_cnf() {
        let cnf = "[client]\ndatadir=/no\n[mysqld]\nuser = mysql\ndatadir = /srv/db\n";
        assert_eq!(cnf_datadir(cnf).as_deref(), Some("/srv/db"));
        assert_eq!(cnf_datadir("[mysqld]\nport=1\n"), None);
    }
}
