//! Monitor high availability on etcd (issue 16, docs/ha.md).
//!
//! With `etcd_endpoints` set, two or three `mmm_mond` share one cluster. One task per
//! monitor ([`election::run`]) campaigns in etcd's election service on `<prefix>/leader`
//! with a lease of `leader_lease` seconds, keeps the lease alive, and publishes what this
//! monitor is through a watch channel ([`Leadership`]): a follower (with the leader it
//! sees, if any), or the leader with its **term** (the create revision of its election
//! key: every new leader's is higher). The driver acts only while leading: it tags every
//! agent request with the term (the agents' fencing refuses older terms), runs kill_host,
//! and hands each status file content to the same task, which writes it to
//! `<prefix>/status` in a transaction guarded by the election key (a deposed leader's write
//! fails, and it steps down). A new leader starts from that content.
//!
//! Step-down: the leader stops acting at `last keepalive sent + leader_lease -`
//! [`STEP_DOWN_MARGIN`] without an answered keepalive since; the others can only be elected
//! once etcd expired the lease, which is later. Safety does not rest on that timing: the
//! agents' terms refuse a deposed leader's commands.

pub mod election;
pub mod forward;

use std::time::Duration;

use tokio::sync::{mpsc, watch};

/// How long before its lease could expire a leader without answered keepalives stops.
pub const STEP_DOWN_MARGIN: Duration = Duration::from_millis(500);

/// A leader as followers see it (the election key's value and create revision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    /// Its term.
    pub term: u64,
    /// Its host name.
    pub name: String,
    /// Its control port (`ip:port`).
    pub control: String,
}

impl LeaderInfo {
    /// The election value a monitor campaigns with: `<name> <control ip:port>`.
    pub fn value(name: &str, control: &str) -> String {
        format!("{name} {control}")
    }

    /// Reads an election value and the key's create revision.
    pub fn from_value(value: &str, term: u64) -> LeaderInfo {
        let mut it = value.split_whitespace();
        let name = it.next().unwrap_or("").to_string();
        let control = it.next().unwrap_or("").to_string();
        LeaderInfo {
            term,
            name,
            control,
        }
    }
}

/// A value the leader stores in etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The status file's content, at `<prefix>/status`.
    Status(String),
    /// The mode and flapping bookkeeping (JSON), at `<prefix>/state`.
    Carried(String),
}

/// What this monitor is in the HA group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership {
    /// Not leading: etcd unreachable (`etcd_ok` false), or campaigning behind `leader`.
    Follower {
        /// The current leader, when known.
        leader: Option<LeaderInfo>,
        /// Whether etcd answered the last request.
        etcd_ok: bool,
    },
    /// Leading with `term` until this changes.
    Leading {
        /// The term (the election key's create revision).
        term: u64,
        /// The status content stored in etcd when leadership began (`None`: none stored).
        stored: Option<String>,
        /// The mode and flapping bookkeeping stored beside it (JSON of
        /// [`crate::core::Carried`]).
        carried: Option<String>,
    },
    /// Was leading with `term`, but etcd has not confirmed the lease in time (etcd
    /// unreachable from here, or without quorum): hold everything as it is — no role
    /// moves, no kill_host — and keep renewing the agents' leases with `term` (a newer
    /// leader's term makes the agents ignore them), until etcd answers: the same lease
    /// alive means leading again, a lost lease means following.
    Holding {
        /// The term.
        term: u64,
    },
}

impl Leadership {
    /// The term while leading.
    pub fn term(&self) -> Option<u64> {
        match self {
            Leadership::Leading { term, .. } | Leadership::Holding { term } => Some(*term),
            Leadership::Follower { .. } => None,
        }
    }
}

/// The driver's side of the election task.
#[derive(Debug)]
pub struct Ha {
    /// What this monitor is now.
    pub leadership: watch::Receiver<Leadership>,
    /// What to store in etcd (while leading; the task writes the latest of each).
    pub status: mpsc::UnboundedSender<Record>,
    /// Ask the task to resign (revoke the lease) at shutdown; it answers when done.
    pub resign: mpsc::UnboundedSender<tokio::sync::oneshot::Sender<()>>,
    /// This monitor as `show` names it: `<host name> at <control ip:port>`.
    pub name: String,
    /// The election task.
    pub task: tokio::task::JoinHandle<()>,
}

impl Ha {
    /// Resigns leadership (when leading) so a follower takes over at once; bounded.
    pub async fn resign(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.resign.send(tx).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), rx).await;
        }
    }
}

impl Drop for Ha {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How the HA line of `show` begins.
pub const HA_LINE_PREFIX: &str = "# Monitor HA: ";

/// The first line of `show` with HA on (mmm-rs): who leads. `this` is this monitor as
/// [`Ha::name`] has it.
pub fn show_line(this: &str, leadership: &Leadership) -> String {
    match leadership {
        Leadership::Leading { term, .. } => {
            format!("# Monitor HA: {this} leads (term {term})\n")
        }
        Leadership::Holding { term } => format!(
            "# Monitor HA: {this} holds (term {term}): etcd does not confirm the leadership; roles kept, no failover\n"
        ),
        Leadership::Follower {
            leader: Some(l),
            etcd_ok,
        } => format!(
            "# Monitor HA: {this} follows {} at {} (term {}){}\n",
            l.name,
            l.control,
            l.term,
            if *etcd_ok {
                ""
            } else {
                "; etcd unreachable from here, the leader may have changed"
            }
        ),
        Leadership::Follower {
            leader: None,
            etcd_ok: true,
        } => format!("# Monitor HA: {this} follows; no leader now\n"),
        Leadership::Follower {
            leader: None,
            etcd_ok: false,
        } => format!("# Monitor HA: {this} follows; etcd unreachable, no leader known\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_values_round_trip() {
        let v = LeaderInfo::value("mon1", "198.18.2.106:9988");
        assert_eq!(v, "mon1 198.18.2.106:9988");
        let l = LeaderInfo::from_value(&v, 7);
        assert_eq!(l.name, "mon1");
        assert_eq!(l.control, "198.18.2.106:9988");
        assert_eq!(l.term, 7);
        let odd = LeaderInfo::from_value("", 3);
        assert_eq!((odd.name.as_str(), odd.control.as_str()), ("", ""));
    }

    #[test]
    fn show_lines_name_the_leader() {
        let leading = Leadership::Leading {
            term: 9,
            stored: None,
            carried: None,
        };
        assert_eq!(
            show_line("mon1 at 198.18.2.106:9988", &leading),
            "# Monitor HA: mon1 at 198.18.2.106:9988 leads (term 9)\n"
        );
        let following = Leadership::Follower {
            leader: Some(LeaderInfo::from_value("mon1 198.18.2.106:9988", 9)),
            etcd_ok: true,
        };
        assert_eq!(
            show_line("mon2 at 198.18.2.107:9988", &following),
            "# Monitor HA: mon2 at 198.18.2.107:9988 follows mon1 at 198.18.2.106:9988 (term 9)\n"
        );
        assert!(show_line(
            "mon2",
            &Leadership::Follower {
                leader: None,
                etcd_ok: false
            }
        )
        .contains("etcd unreachable"));
    }
}
