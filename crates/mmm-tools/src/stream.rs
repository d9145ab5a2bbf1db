//! The streaming copy method (mmm-rs `stream 1`): the source host's `stream_backup`
//! helper writes a `mariadb-backup --stream=mbstream` backup to its stdout over ssh; the
//! copy method's `backup_command` (e.g. `mbstream -x -C %DEST_DIR%`) reads it on the local
//! host. Nothing is staged on the source. This side counts the bytes (progress on stderr)
//! and checks all three ends: ssh's exit status, the receiver's, and the helper's last
//! stderr line (`OK: …`; its stdout is the stream). The helper's first stderr line
//! `SIZE: <bytes>` (its data directory's size) gives the progress its total, and the copy
//! stops at once when that does not fit where it goes ([`crate::room`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{io_err, Result, ToolsError};
use crate::progress::Progress;
use crate::remote::{last_line_ok, shell};

/// The helper's stderr line that announces the data size.
pub const SIZE_PREFIX: &str = "SIZE: ";

/// What a finished stream copied.
#[derive(Debug, Clone, Copy)]
pub struct Copied {
    /// Bytes of the stream.
    pub bytes: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// The helper's stderr, kept for the checks and error messages.
#[derive(Debug, Default)]
struct HelperErr {
    size: Option<u64>,
    lines: Vec<String>,
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Kills the source's process group (the shell and the ssh it started, which holds the
/// pipes: killing the shell alone would leave the stderr reader waiting).
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    kill(child);
}

/// Runs `remote` (the ssh command line of the helper) into `receiver` (a shell command
/// line reading the stream on its stdin), which writes into `into`: once the source's size
/// is known it must fit on `into`'s filesystem, else the copy stops with an error.
pub fn stream_copy(remote: &str, receiver: &str, into: &Path) -> Result<Copied> {
    tracing::info!("Executing command {remote} | {receiver}");
    let mut recv = shell(receiver)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(io_err(format!("starting {receiver}")))?;
    let mut src = match shell(remote)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            kill(&mut recv);
            return Err(io_err("starting ssh")(e));
        }
    };
    let err = Arc::new(Mutex::new(HelperErr::default()));
    let reader = {
        let err = Arc::clone(&err);
        let stderr = src.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut e = err.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(n) = line.strip_prefix(SIZE_PREFIX) {
                    e.size = n.trim().parse().ok();
                    continue;
                }
                tracing::debug!("source: {line}");
                e.lines.push(line);
                if e.lines.len() > 200 {
                    e.lines.remove(0);
                }
            }
        })
    };
    let mut out = src.stdout.take().expect("piped stdout");
    let mut input = recv.stdin.take().expect("piped stdin");
    let mut progress = Progress::new();
    let mut buf = vec![0u8; 1 << 20];
    let copy_result: std::result::Result<(), String> = loop {
        let n = match out.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(format!("reading the stream: {e}")),
        };
        if let Err(e) = input.write_all(&buf[..n]) {
            break Err(format!("writing the stream to '{receiver}': {e}"));
        }
        progress.add(n);
        if progress.total.is_none() {
            progress.total = err.lock().ok().and_then(|e| e.size);
            if let Some(total) = progress.total {
                if let Err(e) = crate::room::check(into, total.saturating_sub(progress.bytes)) {
                    break Err(e.to_string());
                }
            }
        }
    };
    drop(input);
    if copy_result.is_err() {
        kill_group(&mut src);
    }
    let src_status = src.wait().map_err(io_err("waiting for ssh"))?;
    let recv_status = recv.wait().map_err(io_err("waiting for the receiver"))?;
    let _ = reader.join();
    let e = err.lock().unwrap_or_else(|p| p.into_inner());
    let tail = e
        .lines
        .iter()
        .rev()
        .take(15)
        .rev()
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    if let Err(msg) = copy_result {
        if tail.is_empty() {
            return Err(ToolsError::Failed(msg));
        }
        return Err(ToolsError::Failed(format!("{msg}; source said:\n{tail}")));
    }
    if !src_status.success() || !last_line_ok(&e.lines.join("\n")) {
        return Err(ToolsError::Failed(format!(
            "The backup stream from the source failed ({src_status}):\n{tail}"
        )));
    }
    if !recv_status.success() {
        return Err(ToolsError::Failed(format!(
            "The receiving command '{receiver}' failed ({recv_status})"
        )));
    }
    let copied = Copied {
        bytes: progress.bytes,
        elapsed: progress.elapsed(),
    };
    tracing::info!(
        "Copied {} bytes in {:.1} s ({}/s)",
        copied.bytes,
        copied.elapsed.as_secs_f64(),
        crate::log::mib(progress.rate() as u64)
    );
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "echo 'SIZE: 4096' >&2; head -c 300000 /dev/zero; echo 'OK: done' >&2";

    #[test]
    fn streams_and_checks_the_three_ends() {
        let d = tempfile::tempdir().expect("tempdir");
        let out = d.path().join("copy");
        let recv = format!("cat > '{}'", out.display());
        let c = stream_copy(SOURCE, &recv, d.path()).expect("copied");
        assert_eq!(c.bytes, 300_000);
        assert_eq!(std::fs::metadata(&out).expect("copy").len(), 300_000);
        let e = stream_copy("echo 'ERROR: no' >&2; exit 0", &recv, d.path()).expect_err("helper");
        assert!(e.to_string().contains("ERROR: no"), "{e}");
        assert!(stream_copy(SOURCE, "cat >/dev/null; exit 3", d.path()).is_err());
    }

    /// A source larger than the free space where the copy goes stops the copy at once.
    #[test]
    fn a_source_that_does_not_fit_stops_the_copy() {
        let d = tempfile::tempdir().expect("tempdir");
        let huge = "echo 'SIZE: 18446744073709551615' >&2; sleep 0.2; \
                    head -c 3000000 /dev/zero; echo 'OK: done' >&2";
        let e = stream_copy(huge, "cat >/dev/null", d.path()).expect_err("no room");
        assert!(
            e.to_string().contains("Not enough room for the copy"),
            "{e}"
        );
    }
}
