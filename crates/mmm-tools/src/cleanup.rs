//! 2.2.1's `cleanup` of a copied data set before its server starts: binary and relay logs
//! named after the recorded ones, `master.info`, `relay-log.info`, `*.pid`, `auto.cnf`
//! removed; the files given to user `mysql` (`chown -R mysql:mysql`).

use std::path::{Path, PathBuf};

use crate::error::{Result, ToolsError};
use crate::status::Status;

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match p.symlink_metadata() {
                Ok(m) if m.is_dir() => stack.push(p),
                Ok(_) => out.push(p),
                Err(_) => {}
            }
        }
    }
    out
}

/// The base of a log name `base.NNNNNN` (2.2.1's `/^(.*)\.(\d+)$/`).
pub fn log_base(name: &str) -> Option<&str> {
    let (base, num) = name.rsplit_once('.')?;
    (!num.is_empty() && num.bytes().all(|b| b.is_ascii_digit())).then_some(base)
}

fn remove_where(dir: &Path, what: &str, pred: impl Fn(&str) -> bool) {
    tracing::info!("Deleting {what}");
    for f in files(dir) {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.as_deref().is_some_and(&pred) {
            match std::fs::remove_file(&f) {
                Ok(()) => tracing::debug!("removed '{}'", f.display()),
                Err(e) => tracing::warn!("Can't remove '{}': {e}", f.display()),
            }
        }
    }
}

/// Cleans `dir` as 2.2.1 does; `chown_dirs` are chowned to mysql:mysql.
pub fn cleanup(status: &Status, dir: &Path, chown_dirs: &[PathBuf]) -> Result<()> {
    tracing::info!("Cleaning dump from master.info and binary logs...");
    let master_log = status.master.get("File").map(String::as_str).unwrap_or("");
    let base = log_base(master_log).ok_or_else(|| {
        ToolsError::Failed(format!(
            "Unknown master binary log file name format '{master_log}'!"
        ))
    })?;
    let prefix = format!("{base}.");
    remove_where(dir, &format!("master binary logs: {base}.*"), |n| {
        n.starts_with(&prefix)
    });
    if let Some(relay) = status.slave.get("Relay_Log_File").filter(|r| !r.is_empty()) {
        let base = log_base(relay).ok_or_else(|| {
            ToolsError::Failed(format!(
                "Unknown relay binary log file name format '{relay}'!"
            ))
        })?;
        let prefix = format!("{base}.");
        remove_where(dir, &format!("relay binary logs: {base}.*"), |n| {
            n.starts_with(&prefix)
        });
    }
    tracing::info!("Deleting .info and .pid  files...");
    remove_where(dir, "master.info, relay-log.info, *.pid, auto.cnf", |n| {
        n == "master.info" || n == "relay-log.info" || n.ends_with(".pid") || n == "auto.cnf"
    });
    tracing::info!("Changing permissions on mysql data dir...");
    for d in chown_dirs {
        let ok = std::process::Command::new("chown")
            .args(["-R", "mysql:mysql"])
            .arg(d)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            tracing::warn!("chown -R mysql:mysql {} failed", d.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases() {
        assert_eq!(log_base("mysql-bin.000012"), Some("mysql-bin"));
        assert_eq!(log_base("a.b.000001"), Some("a.b"));
        assert_eq!(log_base("mysql-bin"), None);
        assert_eq!(log_base("x.1a"), None);
    }

    #[test]
    fn removes_logs_and_info_files() {
        let d = tempfile::tempdir().expect("tempdir");
        for f in [
            "mysql_bin.000001",
            "mysql_bin.index",
            "master.info",
            "x.pid",
            "keep.ibd",
        ] {
            std::fs::write(d.path().join(f), "x").expect("write");
        }
        let mut s = Status::default();
        s.master.insert("File".into(), "mysql_bin.000001".into());
        cleanup(&s, d.path(), &[]).expect("cleanup");
        let left: Vec<String> = std::fs::read_dir(d.path())
            .expect("read")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec!["keep.ibd".to_string()]);
    }
}
