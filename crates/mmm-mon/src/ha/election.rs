//! The election task (issue 16): one etcd session at a time (a lease of `leader_lease`
//! seconds kept alive, a campaign on `<prefix>/leader` in etcd's election service), the
//! leader it sees published while campaigning, and, while leading, the guarded status
//! writes and the step-down deadline. A session ends on any etcd failure, when the lease
//! cannot be proven alive in time, when a guarded write finds the election key gone, or on
//! a resign; the task then publishes "follower" at once and starts a new session.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, Txn, TxnOp, TxnOpResponse};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

use super::{Ha, LeaderInfo, Leadership, Record, STEP_DOWN_MARGIN};

/// What the task needs to know.
#[derive(Debug, Clone)]
pub struct ElectionConfig {
    /// `host:port` of every etcd member.
    pub endpoints: Vec<String>,
    /// The key prefix (`etcd_prefix` or `/mysql-mmm/<cluster>`).
    pub prefix: String,
    /// `leader_lease`.
    pub lease: Duration,
    /// This monitor's name (its host name).
    pub name: String,
    /// This monitor's control port (`ip:port`), for followers' forwarding.
    pub control: String,
}

impl ElectionConfig {
    fn election(&self) -> String {
        format!("{}/leader", self.prefix)
    }

    fn status_key(&self) -> String {
        format!("{}/status", self.prefix)
    }

    fn state_key(&self) -> String {
        format!("{}/state", self.prefix)
    }

    fn key_of(&self, r: &Record) -> String {
        match r {
            Record::Status(_) => self.status_key(),
            Record::Carried(_) => self.state_key(),
        }
    }
}

/// Between two sessions.
const RETRY: Duration = Duration::from_millis(500);
/// How often a follower reads who leads.
const OBSERVE_EVERY: Duration = Duration::from_millis(250);
/// Bound on one etcd request (the campaign excepted: it waits to be elected).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a holding leader opens a fresh etcd connection.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);
/// How often the leader compares its keepalive age with its deadline.
const TICK: Duration = Duration::from_millis(50);

/// Starts the election task.
pub fn spawn(cfg: ElectionConfig) -> Ha {
    let (tx, rx) = watch::channel(Leadership::Follower {
        leader: None,
        etcd_ok: false,
    });
    let (status_tx, status_rx) = mpsc::unbounded_channel();
    let (resign_tx, resign_rx) = mpsc::unbounded_channel();
    let name = format!("{} at {}", cfg.name, cfg.control);
    let task = tokio::spawn(run(cfg, tx, status_rx, resign_rx));
    Ha {
        leadership: rx,
        status: status_tx,
        resign: resign_tx,
        name,
        task,
    }
}

/// Why a session ended.
enum Ended {
    /// Lost or never had leadership, with the reason.
    Lost(String),
    /// Resigned on request (shutdown).
    Resigned,
}

type ResignRx = mpsc::UnboundedReceiver<oneshot::Sender<()>>;

async fn run(
    cfg: ElectionConfig,
    tx: watch::Sender<Leadership>,
    mut status_rx: mpsc::UnboundedReceiver<Record>,
    mut resign_rx: ResignRx,
) {
    let mut last_error = String::new();
    loop {
        let ended = session(&cfg, &tx, &mut status_rx, &mut resign_rx).await;
        let was_leading = tx.borrow().term().is_some();
        // A follower keeps the leader it knew (its forwarding may still reach it); a
        // leader that lost its session knows none.
        let known = match &*tx.borrow() {
            Leadership::Follower { leader, .. } => leader.clone(),
            _ => None,
        };
        tx.send_replace(Leadership::Follower {
            leader: known,
            etcd_ok: false,
        });
        match ended {
            Ended::Resigned => {
                info!("Monitor HA: resigned");
                // Shutdown follows; answer later resigns at once.
                while let Some(done) = resign_rx.recv().await {
                    let _ = done.send(());
                }
                return;
            }
            Ended::Lost(why) if was_leading => {
                error!("Monitor HA: no longer leading: {why}");
                last_error = why;
            }
            Ended::Lost(why) => {
                if why != last_error {
                    warn!("Monitor HA: {why}");
                }
                last_error = why;
            }
        }
        let pause = tokio::time::sleep(RETRY);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                _ = &mut pause => break,
                Some(_) = status_rx.recv() => {}
                Some(done) = resign_rx.recv() => {
                    let _ = done.send(());
                }
            }
        }
    }
}

/// `work` bounded by `limit`, with etcd's errors as text.
async fn timed<T>(
    what: &str,
    limit: Duration,
    work: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, work).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("etcd {what}: {e}")),
        Err(_) => Err(format!("etcd {what}: no answer within {limit:?}")),
    }
}

async fn session(
    cfg: &ElectionConfig,
    tx: &watch::Sender<Leadership>,
    status_rx: &mut mpsc::UnboundedReceiver<Record>,
    resign_rx: &mut ResignRx,
) -> Ended {
    match campaign_and_lead(cfg, tx, status_rx, resign_rx).await {
        Ok(e) | Err(e) => e,
    }
}

/// A fresh client of the etcd cluster (HTTP/2 keepalives find a dead connection in a
/// second).
async fn connect(cfg: &ElectionConfig) -> Result<Client, String> {
    let opts = ConnectOptions::new()
        .with_connect_timeout(REQUEST_TIMEOUT)
        .with_keep_alive(Duration::from_millis(500), REQUEST_TIMEOUT)
        .with_keep_alive_while_idle(true);
    timed(
        "connect",
        REQUEST_TIMEOUT * 2,
        Client::connect(&cfg.endpoints, Some(opts)),
    )
    .await
}

/// Keeps the lease alive: a keepalive every third of the TTL, each answer moving
/// `last_ok` to the time its request was sent (answers come in order). A broken stream
/// (an etcd member gone) is opened again on the same lease; whether that happened in
/// time is the session's step-down deadline to judge. Returns only when etcd says the
/// lease is gone.
async fn keep_alive(
    mut client: Client,
    lease: i64,
    period: Duration,
    last_ok: Arc<Mutex<Instant>>,
) -> String {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    'streams: loop {
        // Opening the stream renews once; etcd answers a TTL ≤ 0 for a lease it no longer
        // has, which the client returns as `LeaseKeepAliveError`.
        let (mut keeper, mut stream) =
            match tokio::time::timeout(REQUEST_TIMEOUT, client.lease_keep_alive(lease)).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(etcd_client::Error::LeaseKeepAliveError(e))) => {
                    return format!("the leader lease expired in etcd ({e})");
                }
                Ok(Err(e)) => {
                    debug!("Monitor HA: etcd lease keepalive: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(_) => {
                    debug!(
                        "Monitor HA: etcd lease keepalive: no answer within {REQUEST_TIMEOUT:?}"
                    );
                    continue;
                }
            };
        let mut pending: VecDeque<Instant> = VecDeque::new();
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    pending.push_back(Instant::now());
                    if let Err(e) = keeper.keep_alive().await {
                        debug!("Monitor HA: etcd lease keepalive: {e}");
                        continue 'streams;
                    }
                }
                m = stream.message() => match m {
                    Ok(Some(r)) => {
                        let sent = pending.pop_front();
                        if r.ttl() <= 0 {
                            return "the leader lease expired in etcd".into();
                        }
                        if let Some(s) = sent {
                            *last_ok.lock().unwrap_or_else(|p| p.into_inner()) = s;
                        }
                    }
                    Ok(None) => continue 'streams,
                    Err(e) => {
                        debug!("Monitor HA: etcd lease keepalive: {e}");
                        continue 'streams;
                    }
                },
            }
        }
    }
}

async fn campaign_and_lead(
    cfg: &ElectionConfig,
    tx: &watch::Sender<Leadership>,
    status_rx: &mut mpsc::UnboundedReceiver<Record>,
    resign_rx: &mut ResignRx,
) -> Result<Ended, Ended> {
    let lost = Ended::Lost;
    let mut client = connect(cfg).await.map_err(lost)?;
    let ttl = cfg.lease.as_secs().max(2);
    let granted_at = Instant::now();
    let lease = timed(
        "lease grant",
        REQUEST_TIMEOUT,
        client.lease_grant(ttl as i64, None),
    )
    .await
    .map_err(lost)?
    .id();
    let last_ok = Arc::new(Mutex::new(granted_at));
    let period = Duration::from_secs(ttl) / 3;
    let keeping = tokio::spawn(keep_alive(client.clone(), lease, period, last_ok.clone()));
    // The keepalive task ends with the session.
    struct Abort(tokio::task::JoinHandle<String>);
    impl Drop for Abort {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut keeping = Abort(keeping);
    let lease_ttl = Duration::from_secs(ttl);
    let deadline_passed = |last_ok: &Arc<Mutex<Instant>>| {
        let at = *last_ok.lock().unwrap_or_else(|p| p.into_inner());
        (at.elapsed() + STEP_DOWN_MARGIN >= lease_ttl).then(|| {
            format!(
                "no answered etcd keepalive for {:.1} s (leader_lease {} s)",
                at.elapsed().as_secs_f64(),
                ttl
            )
        })
    };
    tx.send_modify(|l| {
        if let Leadership::Follower { etcd_ok, .. } = l {
            *etcd_ok = true;
        }
    });

    // Campaign; meanwhile publish who leads.
    let election = cfg.election();
    let value = LeaderInfo::value(&cfg.name, &cfg.control);
    let mut campaigner = client.clone();
    let campaign = campaigner.campaign(election.clone(), value, lease);
    tokio::pin!(campaign);
    let mut observe = tokio::time::interval(OBSERVE_EVERY);
    let (key, rev) = loop {
        tokio::select! {
            r = &mut campaign => {
                let resp = r.map_err(|e| lost(format!("etcd campaign: {e}")))?;
                let k = resp
                    .leader()
                    .ok_or_else(|| lost("etcd campaign: answered without a key".into()))?;
                break (k.key().to_vec(), k.rev());
            }
            r = &mut keeping.0 => {
                return Err(lost(r.unwrap_or_else(|e| format!("keepalive task: {e}"))));
            }
            _ = observe.tick() => {
                if let Some(why) = deadline_passed(&last_ok) {
                    return Err(lost(why));
                }
                let seen = timed("leader", REQUEST_TIMEOUT, client.leader(election.clone())).await;
                let now = match seen {
                    Ok(resp) => Leadership::Follower {
                        leader: resp.kv().map(|kv| {
                            LeaderInfo::from_value(
                                &String::from_utf8_lossy(kv.value()),
                                u64::try_from(kv.create_revision()).unwrap_or(0),
                            )
                        }),
                        etcd_ok: true,
                    },
                    // etcd answers "election: no leader" as an error.
                    Err(e) if e.contains("no leader") => Leadership::Follower {
                        leader: None,
                        etcd_ok: true,
                    },
                    Err(e) => return Err(lost(e)),
                };
                tx.send_if_modified(|l| {
                    if *l != now {
                        *l = now;
                        true
                    } else {
                        false
                    }
                });
            }
            Some(_) = status_rx.recv() => {}
            Some(done) = resign_rx.recv() => {
                let _ = timed("lease revoke", REQUEST_TIMEOUT, client.lease_revoke(lease)).await;
                let _ = done.send(());
                return Ok(Ended::Resigned);
            }
        }
    };
    if let Some(why) = deadline_passed(&last_ok) {
        return Err(lost(why));
    }

    // Leading: read the stored status while the election key is still ours.
    let guard = || Compare::create_revision(key.clone(), CompareOp::Equal, rev);
    let read = timed(
        "status read",
        REQUEST_TIMEOUT,
        client.txn(Txn::new().when([guard()]).and_then([
            TxnOp::get(cfg.status_key(), None),
            TxnOp::get(cfg.state_key(), None),
        ])),
    )
    .await
    .map_err(lost)?;
    if !read.succeeded() {
        return Err(lost("the election key changed before the takeover".into()));
    }
    let mut values = read.op_responses().into_iter().map(|r| match r {
        TxnOpResponse::Get(g) => g
            .kvs()
            .first()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()),
        _ => None,
    });
    let stored = values.next().flatten();
    let carried = values.next().flatten();
    let term = u64::try_from(rev).unwrap_or(0);
    info!(
        "Monitor HA: {} leads with term {term} (status in etcd: {})",
        cfg.name,
        if stored.is_some() { "found" } else { "none" }
    );
    tx.send_replace(Leadership::Leading {
        term,
        stored,
        carried,
    });

    let mut tick = tokio::time::interval(TICK);
    // The latest unwritten value per key.
    let mut unwritten: std::collections::BTreeMap<String, String> = Default::default();
    let mut holding = false;
    let mut reconnect_at = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                // Unconfirmed: hold (the driver keeps the roles and renews the agents'
                // leases, fenced by the term); confirmed again: lead.
                match (deadline_passed(&last_ok), holding) {
                    (Some(why), false) => {
                        error!("Monitor HA: holding, term {term}: {why}; roles kept, no failover until etcd answers");
                        holding = true;
                        tx.send_replace(Leadership::Holding { term });
                    }
                    (Some(_), true) if reconnect_at.elapsed() >= RECONNECT_EVERY => {
                        // A connection that died with the network may never come back
                        // by itself: a fresh client and keepalive stream on the same lease.
                        reconnect_at = Instant::now();
                        match connect(cfg).await {
                            Ok(c) => {
                                client = c;
                                keeping = Abort(tokio::spawn(keep_alive(
                                    client.clone(),
                                    lease,
                                    period,
                                    last_ok.clone(),
                                )));
                            }
                            Err(e) => debug!("Monitor HA: {e}"),
                        }
                    }
                    (None, true) => {
                        info!("Monitor HA: etcd confirms the lease again: leading, term {term}");
                        holding = false;
                        tx.send_replace(Leadership::Leading {
                            term,
                            stored: None,
                            carried: None,
                        });
                    }
                    _ => {}
                }
            }
            r = &mut keeping.0 => {
                return Err(lost(r.unwrap_or_else(|e| format!("keepalive task: {e}"))));
            }
            Some(r) = status_rx.recv() => {
                let key = cfg.key_of(&r);
                let (Record::Status(v) | Record::Carried(v)) = r;
                unwritten.insert(key, v);
            }
            Some(done) = resign_rx.recv() => {
                let _ = timed("lease revoke", REQUEST_TIMEOUT, client.lease_revoke(lease)).await;
                let _ = done.send(());
                return Ok(Ended::Resigned);
            }
        }
        // The latest values, written while the election key is ours; bounded so the
        // step-down deadline is never missed.
        while let Ok(r) = status_rx.try_recv() {
            let key = cfg.key_of(&r);
            let (Record::Status(v) | Record::Carried(v)) = r;
            unwritten.insert(key, v);
        }
        if !unwritten.is_empty() && !holding {
            let at = *last_ok.lock().unwrap_or_else(|p| p.into_inner());
            let left = (lease_ttl.saturating_sub(STEP_DOWN_MARGIN)).saturating_sub(at.elapsed());
            let limit = left.min(REQUEST_TIMEOUT).max(Duration::from_millis(10));
            let puts: Vec<TxnOp> = unwritten
                .iter()
                .map(|(k, v)| TxnOp::put(k.clone(), v.clone(), None))
                .collect();
            let put = Txn::new().when([guard()]).and_then(puts);
            match timed("status write", limit, client.txn(put)).await {
                Ok(r) if r.succeeded() => {
                    debug!("Monitor HA: stored in etcd: {:?}", unwritten.keys());
                    unwritten.clear();
                }
                Ok(_) => {
                    return Err(lost(
                        "the election key is gone (a guarded status write failed)".into(),
                    ))
                }
                Err(e) => warn!("Monitor HA: {e}; will retry"),
            }
        }
    }
}
