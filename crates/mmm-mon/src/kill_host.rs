//! Kill host (spec §3.1 step 8c and §3.11): finds the user's `kill_host_bin` at startup and
//! runs `<kill_host_bin> <host> <0|1>` through `sh` when the core asks for it, with stdout
//! and stderr captured, under a timeout (2.2.1 waits forever).
//!
//! The log lines are 2.2.1's. Whether to kill is the core's decision (kill-on-fail); this
//! file only runs the command and reports how it went.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use mmm_common::config::MonitorConfig;
use tokio::process::Command;
use tracing::{error, info, warn};

/// How long a kill_host command may run before it is killed and reported as failed.
pub const KILL_HOST_TIMEOUT: Duration = Duration::from_secs(60);

/// Startup resolution (§3.1 8c): returns the binary
/// ([`MonitorConfig::kill_host_path`]) when it exists and is executable, else logs 2.2.1's
/// WARN and returns `None`.
pub fn resolve(monitor: &MonitorConfig) -> Option<PathBuf> {
    let path = monitor.kill_host_path();
    match std::fs::metadata(&path) {
        Err(_) => {
            warn!("No binary found for killing hosts ({}).", path.display());
            None
        }
        Ok(m) if !m.is_file() || m.permissions().mode() & 0o111 == 0 => {
            warn!(
                "Binary for killing hosts ({}) is not executable.",
                path.display()
            );
            None
        }
        Ok(_) => Some(path),
    }
}

/// How a kill_host run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillOutcome {
    /// No usable binary was found at startup.
    NoBinary,
    /// Exit status 0, with the captured output.
    Killed {
        /// stdout + stderr.
        output: String,
    },
    /// Non-zero exit (or killed by a signal: `rc` is -1), with the output.
    Failed {
        /// Exit code.
        rc: i32,
        /// stdout + stderr.
        output: String,
    },
    /// The command could not be started or did not finish in time.
    Error(String),
}

/// Runs the kill_host command for `host` and logs as 2.2.1 (§3.11).
#[tracing::instrument(name = "kill_host", skip(bin, timeout))]
pub async fn kill_host(
    bin: Option<&Path>,
    host: &str,
    ping_ok: bool,
    timeout: Duration,
) -> KillOutcome {
    let Some(bin) = bin else {
        error!("Could not kill host '{host}' - there may be some duplicate ips now! (There's no binary configured for killing hosts.)"
        );
        return KillOutcome::NoBinary;
    };
    let command = format!("{} {} {}", bin.display(), host, u8::from(ping_ok));
    info!("Killing host using command '{command}'");
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{command} 2>&1"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            let text = format!("can't start: {e}");
            error!("Could not kill host '{host}' - there may be some duplicate ips now! kill_host binary exited with '-1'. Output was: {text} ");
            return KillOutcome::Error(text);
        }
    };
    let pgid = child.id();
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => {
            if let Some(pgid) = pgid.and_then(|p| i32::try_from(p).ok()) {
                // The whole process group: sh and whatever the script started.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let text = format!("timeout after {} s", timeout.as_secs_f64());
            error!("Could not kill host '{host}' - there may be some duplicate ips now! kill_host binary exited with '-1'. Output was: {text} ");
            KillOutcome::Error(text)
        }
        Ok(Err(e)) => {
            let text = e.to_string();
            error!("Could not kill host '{host}' - there may be some duplicate ips now! kill_host binary exited with '-1'. Output was: {text} ");
            KillOutcome::Error(text)
        }
        Ok(Ok(out)) => {
            let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
            output.push_str(&String::from_utf8_lossy(&out.stderr));
            let rc = out.status.code().unwrap_or(-1);
            if out.status.success() {
                if !output.is_empty() {
                    info!("Output of kill host command was: {output}");
                }
                KillOutcome::Killed { output }
            } else {
                error!("Could not kill host '{host}' - there may be some duplicate ips now! kill_host binary exited with '{rc}'. Output was: {output} ");
                KillOutcome::Failed { rc, output }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn script(dir: &Path, body: &str) -> PathBuf {
        let p = dir.join("kill_host");
        let mut f = std::fs::File::create(&p).unwrap();
        writeln!(f, "#!/bin/sh\n{body}").unwrap();
        drop(f);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[tokio::test]
    async fn passes_host_and_ping_and_captures_output() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(dir.path(), "echo \"killed $1 $2\"; echo oops >&2");
        let out = kill_host(Some(&p), "db1", false, Duration::from_secs(5)).await;
        assert_eq!(
            out,
            KillOutcome::Killed {
                output: "killed db1 0\noops\n".into()
            }
        );
    }

    #[tokio::test]
    async fn non_zero_exit_is_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(dir.path(), "echo no; exit 3");
        let out = kill_host(Some(&p), "db2", true, Duration::from_secs(5)).await;
        assert_eq!(
            out,
            KillOutcome::Failed {
                rc: 3,
                output: "no\n".into()
            }
        );
    }

    #[tokio::test]
    async fn hung_binary_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(dir.path(), "exec sleep 30");
        let t = std::time::Instant::now();
        let out = kill_host(Some(&p), "db2", true, Duration::from_millis(300)).await;
        assert!(matches!(out, KillOutcome::Error(_)));
        // Not the script's 30 s: bounded by the timeout (generous margin for load).
        assert!(t.elapsed() < Duration::from_secs(20));
    }

    #[tokio::test]
    async fn no_binary() {
        assert_eq!(
            kill_host(None, "db1", true, Duration::from_secs(1)).await,
            KillOutcome::NoBinary
        );
    }
}
