//! Fencing tokens (issue 16, docs/ha.md): with monitor high availability every request a
//! leading monitor sends carries its term (`|term=<n>`, the etcd election revision). The
//! agent remembers the highest term it has obeyed and refuses a command with an older one,
//! so a deposed leader that has not noticed yet changes nothing. Once a term has been seen,
//! a command that changes something (`SET_STATUS`, `CLEAR_BAD_ROLES`, `RESUME_PEER_LINK`)
//! without a term is refused too (it can only come from a monitor outside the HA set);
//! `PING` and the status queries are always answered. An agent that never saw a term
//! (2.2.1, one monitor, a Perl monitor) obeys every request as before.
//!
//! A refused request does not renew the agent lease. The highest term is kept in a file
//! beside the pid file (`<pid_path>.term`), so an agent restarted while a deposed leader
//! still runs does not forget it; a file that cannot be read counts as no term seen and
//! is said at WARN.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use mmm_common::proto::agent::AgentCommand;

/// The agent's highest obeyed term (0: none seen).
#[derive(Debug)]
pub struct Fencing {
    highest: AtomicU64,
    file: Option<PathBuf>,
}

impl Fencing {
    /// No term seen, nothing persisted (tests, and agents without a pid file).
    pub fn in_memory() -> Fencing {
        Fencing {
            highest: AtomicU64::new(0),
            file: None,
        }
    }

    /// The term remembered in `file` (absent: none seen).
    pub fn load(file: PathBuf) -> Fencing {
        let highest = match std::fs::read_to_string(&file) {
            Ok(text) => text.trim().parse().unwrap_or_else(|_| {
                tracing::warn!(
                    "{}: not a monitor term ({:?}); starting without one",
                    file.display(),
                    text.trim()
                );
                0
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => {
                tracing::warn!(
                    "{}: can't read the monitor term ({e}); starting without one",
                    file.display()
                );
                0
            }
        };
        Fencing {
            highest: AtomicU64::new(highest),
            file: Some(file),
        }
    }

    /// The highest term obeyed (0: none).
    pub fn highest(&self) -> u64 {
        self.highest.load(Ordering::SeqCst)
    }

    /// Whether a request with `term` may be carried out; raises the remembered term.
    /// `Ok(true)`: from the term obeyed (or a newer one, or without terms): it renews the
    /// agent lease; `Ok(false)`: a query of an older term, answered but renewing nothing
    /// (a deposed leader must not keep a writer's lease alive). `Err` is the `ERROR:` reply.
    pub fn admit(&self, command: &AgentCommand, term: Option<u64>) -> Result<bool, String> {
        let mutating = !matches!(
            command,
            AgentCommand::Ping | AgentCommand::GetAgentStatus | AgentCommand::GetSystemStatus
        );
        let highest = self.highest();
        match term {
            // Queries change nothing: answered whatever their term.
            Some(t) if t < highest && !mutating => Ok(false),
            Some(t) if t < highest => Err(format!(
                "ERROR: Stale monitor term {t}: this agent obeys term {highest} (another monitor leads now)"
            )),
            Some(t) => {
                if t > highest && self.highest.fetch_max(t, Ordering::SeqCst) < t {
                    self.persist(t);
                    tracing::info!("Monitor term {t} (was {highest})");
                }
                Ok(true)
            }
            None if mutating && highest > 0 => Err(format!(
                "ERROR: This agent obeys monitor term {highest}: a command without a term is refused"
            )),
            None => Ok(true),
        }
    }

    fn persist(&self, term: u64) {
        let Some(file) = &self.file else { return };
        let tmp = file.with_extension("term.tmp");
        let r = std::fs::write(&tmp, term.to_string()).and_then(|_| std::fs::rename(&tmp, file));
        if let Err(e) = r {
            tracing::warn!(
                "{}: can't keep the monitor term {term} ({e}); a restart forgets it",
                file.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> AgentCommand {
        AgentCommand::ClearBadRoles
    }

    #[test]
    fn terms() {
        let f = Fencing::in_memory();
        // Without HA: everything, as 2.2.1.
        assert_eq!(f.admit(&set(), None), Ok(true));
        assert_eq!(f.admit(&set(), Some(5)), Ok(true));
        assert_eq!(f.highest(), 5);
        assert_eq!(f.admit(&set(), Some(5)), Ok(true));
        assert_eq!(
            f.admit(&set(), Some(4)),
            Err(
                "ERROR: Stale monitor term 4: this agent obeys term 5 (another monitor leads now)"
                    .into()
            )
        );
        assert!(f
            .admit(&set(), None)
            .unwrap_err()
            .contains("without a term"));
        // Queries are always answered; an older term's renews no lease.
        assert_eq!(f.admit(&AgentCommand::Ping, Some(1)), Ok(false));
        assert_eq!(f.admit(&AgentCommand::Ping, Some(5)), Ok(true));
        assert_eq!(f.admit(&AgentCommand::GetAgentStatus, None), Ok(true));
        assert_eq!(f.admit(&set(), Some(9)), Ok(true));
        assert_eq!(f.highest(), 9);
    }

    #[test]
    fn kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.pid.term");
        let f = Fencing::load(file.clone());
        assert_eq!(f.highest(), 0);
        f.admit(&set(), Some(12)).unwrap();
        let again = Fencing::load(file.clone());
        assert_eq!(again.highest(), 12);
        assert!(again.admit(&set(), Some(11)).is_err());
        std::fs::write(&file, "garbage").unwrap();
        assert_eq!(Fencing::load(file).highest(), 0);
    }
}
