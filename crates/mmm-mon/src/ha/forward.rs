//! A follower's control port (monitor HA, issue 16): `ping` is answered here (this
//! monitor is alive); every other command is forwarded to the leader's control port and
//! its answer returned, `show` with a first line naming the leader. Without a leader, or
//! when the leader cannot be reached, the answer is an `ERROR:` that says so (with the
//! leader's address when known).

use std::time::Duration;

use mmm_common::config::SocketConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{show_line, Leadership, HA_LINE_PREFIX};
use crate::control::ControlRequest;

/// Bound on connecting to the leader's control port.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on the leader's whole answer (a `move_role` may wait for agents).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest answer relayed.
const MAX_ANSWER: u64 = 4 << 20;

/// Answers `req` on a task of its own.
pub fn answer(req: ControlRequest, now: Leadership, this: String, socket: SocketConfig) {
    tokio::spawn(async move {
        let text = reply(&req.line, &now, &this, &socket).await;
        let _ = req.reply.send(text);
    });
}

async fn reply(line: &str, now: &Leadership, this: &str, socket: &SocketConfig) -> String {
    let word = line.split_whitespace().next().unwrap_or("");
    if word == "ping" {
        return "OK: Pinged successfully!".into();
    }
    let leader = match now {
        Leadership::Follower {
            leader: Some(l), ..
        } if !l.control.is_empty() => l,
        Leadership::Follower { etcd_ok: false, .. } => {
            return format!(
                "ERROR: This monitor ({this}) follows and cannot reach etcd: no leader is known."
            )
        }
        _ => return format!("ERROR: This monitor ({this}) follows and no monitor leads now."),
    };
    match forward(&leader.control, socket, line).await {
        // The leader's own HA line gives way to this monitor's (which names the leader).
        Ok(answer) if word == "show" => {
            let body = match answer.split_once('\n') {
                Some((first, rest)) if first.starts_with(HA_LINE_PREFIX) => rest,
                _ => answer.as_str(),
            };
            format!("{}{body}", show_line(this, now))
        }
        Ok(answer) => answer,
        Err(e) => format!(
            "ERROR: This monitor ({this}) follows; the leader {} at {} (term {}) could not be reached: {e}",
            leader.name, leader.control, leader.term
        ),
    }
}

/// One command to `addr`'s control port; everything it answered until it closed.
async fn forward(addr: &str, socket: &SocketConfig, line: &str) -> Result<String, String> {
    let mut stream = mmm_common::socket::connect(addr, socket, CONNECT_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let work = async {
        stream
            .write_all(format!("{line}\nquit\n").as_bytes())
            .await?;
        stream.flush().await?;
        let mut answer = Vec::new();
        (&mut stream)
            .take(MAX_ANSWER)
            .read_to_end(&mut answer)
            .await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer).into_owned())
    };
    match tokio::time::timeout(ANSWER_TIMEOUT, work).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no complete answer within {ANSWER_TIMEOUT:?}")),
    }
}
