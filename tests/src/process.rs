//! Running programs with a bound on how long we wait for them (DESIGN.md "Tests": every
//! child-process wait is under a timeout), and signalling/awaiting processes by pid.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{io_err, Result, TestbedError};

/// How often the waits below poll.
const POLL: Duration = Duration::from_millis(10);

/// Renders a command line for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion with stdin closed and stdout/stderr captured; kills it and
/// returns [`TestbedError::Timeout`] when it runs longer than `timeout`.
pub(crate) fn output_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    output_with_input(cmd, None, timeout)
}

/// Like [`output_with_timeout`], feeding `input` on stdin.
pub(crate) fn output_with_input(
    cmd: &mut Command,
    input: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Output> {
    let what = describe(cmd);
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(io_err(format!("spawning {what}")))?;
    let writer = match (input, child.stdin.take()) {
        (Some(data), Some(mut stdin)) => Some(thread::spawn(move || {
            use std::io::Write;
            // A reader that exits early makes this fail; its exit status tells the story.
            let _ = stdin.write_all(&data);
        })),
        _ => None,
    };
    let out_reader = child.stdout.take().map(|mut s| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            buf
        })
    });
    let err_reader = child.stderr.take().map(|mut s| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            buf
        })
    });
    let status = match wait_child(&mut child, timeout) {
        Ok(status) => status,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(match e {
                TestbedError::Timeout { after, .. } => TestbedError::Timeout { what, after },
                other => other,
            });
        }
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = out_reader.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr = err_reader.and_then(|h| h.join().ok()).unwrap_or_default();
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Runs `cmd` under a timeout and fails unless it exits 0; returns its stdout.
pub(crate) fn run_ok(cmd: &mut Command, timeout: Duration) -> Result<String> {
    let what = describe(cmd);
    let out = output_with_timeout(cmd, timeout)?;
    if !out.status.success() {
        return Err(TestbedError::Command {
            cmd: what,
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits for our own child to exit, at most `timeout`.
pub(crate) fn wait_child(child: &mut Child, timeout: Duration) -> Result<ExitStatus> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => {}
            Err(e) => return Err(io_err("waiting for a child process")(e)),
        }
        if start.elapsed() >= timeout {
            return Err(TestbedError::Timeout {
                what: format!("process {} to exit", child.id()),
                after: timeout,
            });
        }
        thread::sleep(POLL);
    }
}

/// Whether a process with this pid exists (zombies count as gone).
pub(crate) fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // Field 3 (after the parenthesised comm) is the state; 'Z' is a zombie.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// The start time of `pid` (clock ticks since boot, field 22 of /proc/PID/stat); with the
/// pid it identifies a process even after pid reuse.
pub(crate) fn pid_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    // rest starts at field 3 (state); field 22 is the 20th from there.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Sends `signal` to `pid`; a process that is already gone is not an error.
pub(crate) fn signal_pid(pid: u32, signal: Signal) -> Result<()> {
    let Ok(raw) = i32::try_from(pid) else {
        return Err(TestbedError::State(format!("pid {pid} out of range")));
    };
    match kill(Pid::from_raw(raw), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(TestbedError::Io {
            what: format!("kill -{signal} {pid}"),
            source: std::io::Error::from(e),
        }),
    }
}

/// Waits until `pid` is gone (or a zombie), at most `timeout`.
pub(crate) fn wait_pid_gone(pid: u32, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    while pid_alive(pid) {
        if start.elapsed() >= timeout {
            return Err(TestbedError::Timeout {
                what: format!("process {pid} to exit"),
                after: timeout,
            });
        }
        thread::sleep(POLL);
    }
    Ok(())
}

/// Polls `f` until it returns `Some`, at most `timeout`.
pub(crate) fn poll_until<T>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut f: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if start.elapsed() >= timeout {
            return Err(TestbedError::Timeout {
                what: what.to_string(),
                after: timeout,
            });
        }
        thread::sleep(interval);
    }
}
