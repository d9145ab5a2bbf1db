//! MMM's pid file (spec §7.1, §3.1 step 4): holds the daemon's pid without a newline;
//! "running" = the file exists and `kill(pid, 0)` succeeds. A live second copy is refused
//! (`Can't run second copy of <prog>`), a stale file only warned about
//! (`Unclean start - found stale pid file!`), and the file is removed on clean exit.
//!
//! A zombie (an exited process nobody reaped yet) does not count as running.
//!
//! API: [`PidFile::check`]`(path, prog)` before daemonizing (refuse/warn),
//! [`PidFile::create`]`(path)` in the final process (writes the pid), [`PidFile::remove`]
//! (also on drop).
//!
//! mmm-rs has no angel process (systemd's `Restart=on-failure` plays its part), so the
//! file holds the daemon's own pid.

use std::path::{Path, PathBuf};

use nix::sys::signal::kill;
use nix::unistd::Pid;

/// Pid file errors.
#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    /// Another live process owns the pid file.
    #[error("Can't run second copy of {prog}")]
    AlreadyRunning {
        /// The program name.
        prog: String,
        /// Its pid.
        pid: i32,
    },
    /// The file could not be written.
    #[error("could not write pid file {path}: {source}")]
    Write {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The outcome of [`PidFile::check`] when starting is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidCheck {
    /// No pid file.
    Clean,
    /// A pid file of a dead process (warned about).
    Stale,
}

/// A pid file this process wrote; removed on [`remove`](PidFile::remove) or drop.
#[derive(Debug)]
pub struct PidFile {
    /// Where it lives.
    path: PathBuf,
    /// Whether it has been removed already.
    removed: bool,
}

/// Whether `pid` is a zombie (exited, not yet reaped): not a running copy.
fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The state follows the parenthesised command name, which may contain spaces.
            let rest = s.get(s.rfind(')')? + 1..)?;
            rest.split_whitespace()
                .next()
                .map(|st| st == "Z" || st == "X")
        })
        .unwrap_or(false)
}

/// Whether `pid` runs (2.2.1: `kill 0`), not counting zombies.
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 || is_zombie(pid) {
        return false;
    }
    match kill(Pid::from_raw(pid), None) {
        Ok(()) => true,
        // EPERM: the process exists but belongs to someone else.
        Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

impl PidFile {
    /// Checks `path` before starting (spec §3.1 step 4). Logs the stale warning itself.
    pub fn check(path: &Path, prog: &str) -> Result<PidCheck, PidFileError> {
        let Ok(text) = std::fs::read_to_string(path) else {
            return Ok(PidCheck::Clean);
        };
        match text.trim().parse::<i32>() {
            Ok(pid) if pid != std::process::id() as i32 && pid_alive(pid) => {
                Err(PidFileError::AlreadyRunning {
                    prog: prog.to_string(),
                    pid,
                })
            }
            _ => {
                tracing::warn!("Unclean start - found stale pid file!");
                Ok(PidCheck::Stale)
            }
        }
    }

    /// Writes this process's pid to `path` (no newline, as 2.2.1).
    pub fn create(path: &Path) -> Result<PidFile, PidFileError> {
        std::fs::write(path, std::process::id().to_string()).map_err(|source| {
            PidFileError::Write {
                path: path.display().to_string(),
                source,
            }
        })?;
        Ok(PidFile {
            path: path.to_path_buf(),
            removed: false,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file (clean exit).
    pub fn remove(&mut self) {
        if !self.removed {
            let _ = std::fs::remove_file(&self.path);
            self.removed = true;
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuse_warn_remove() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.pid");
        assert_eq!(PidFile::check(&p, "mmm_agentd").unwrap(), PidCheck::Clean);
        // pid 1 is alive (init): a live second copy is refused.
        std::fs::write(&p, "1").unwrap();
        let e = PidFile::check(&p, "mmm_agentd").unwrap_err();
        assert_eq!(e.to_string(), "Can't run second copy of mmm_agentd");
        // A dead pid (very large, not allocated) is stale.
        std::fs::write(&p, "2147483646").unwrap();
        assert_eq!(PidFile::check(&p, "mmm_agentd").unwrap(), PidCheck::Stale);
        let mut f = PidFile::create(&p).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            std::process::id().to_string()
        );
        f.remove();
        assert!(!p.exists());
        // A zombie is not a running copy.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!pid_alive(pid), "zombie counted as running");
        let _ = child.wait();
        assert!(pid_alive(std::process::id() as i32));
    }
}
