//! Adding, deleting and checking one role on the agent, in 2.2.1's order (spec §4.6;
//! port of `Agent/Role.pm` and the IP half of `Helpers/Network.pm`).
//!
//! | | other roles | writer role |
//! |---|---|---|
//! | add | configure IP | sync with master, allow writes, configure IP (abort at the first failure) |
//! | delete | clear IP | deny writes (+ kill clients), clear IP (continue on failure) |
//! | delete, host failed (HARD_OFFLINE) | clear IP | clear IP; `read_only=1` owed, set after the answer |
//! | check | configure IP | allow writes, connect bounded at 0.5 s (failure skips the IP), configure IP |
//!
//! A writer the monitor found failed (HARD_OFFLINE: its server stopped answering) releases
//! the writer IP and answers without waiting for its own server at all (issue 14): a hung
//! server cannot take writes through the VIP it no longer holds, so the failover need not
//! wait for it; `read_only=1` is owed, tried right after the answer (the agent's
//! post-connection pass) and at every later SET_STATUS until it is set (what the server
//! wrote meanwhile is errant: the new writer's link from it is held,
//! `errant_transactions`). A planned move (the host ONLINE or ADMIN_OFFLINE) keeps 2.2.1's
//! order and waits: the new writer must start from the old one's final position.
//!
//! The writer role's assertions (add, re-assertion) stop as soon as a SET_STATUS without
//! the role arrives (`revoke.rs`), so a demotion never waits behind a connect to a frozen
//! server.
//!
//! "Configure IP" adds `ip/32` when it is missing, verifies it, and has it announced with
//! gratuitous ARP (`arp_schedule.rs`: the first burst before returning, the remaining
//! `arp_repeat - 1` bursts `arp_interval` apart in the background). Each function returns
//! the failures as MMM's FATAL texts (empty = success) and logs them.
//!
//! The writer role's writable-making steps (read_only=0, IP add) run inside the agent
//! lease's write gate (`lease.rs`), which refuses them once the lease has run out.

use mmm_common::role::RoleIp;

use crate::arp_schedule::ArpSchedule;
use crate::effects::{parse_ip, MysqlOps, Vip};
use crate::error::EffectError;
use crate::lease::Lease;
use crate::revoke::RevokeWatch;

/// What role operations need.
#[derive(Clone)]
pub struct RoleCtx<'a> {
    /// Role IPs.
    pub vip: &'a dyn Vip,
    /// Local MySQL.
    pub mysql: &'a dyn MysqlOps,
    /// `active_master_role`.
    pub writer_role: &'a str,
    /// Announces an added IP (`arp_repeat` bursts `arp_interval` apart).
    pub arp: &'a ArpSchedule,
    /// The agent lease (its write gate).
    pub lease: &'a Lease,
    /// Stops a writer assertion when a SET_STATUS without the writer role arrives.
    pub revoke: &'a RevokeWatch,
    /// Masters the monitor found failed (SET_STATUS's `failed=` field): taking the writer
    /// role does not wait for the peer's handshake when it is named here.
    pub failed: &'a [String],
}

/// `check_ip`: whether `ip` is configured.
pub async fn ip_present(vip: &dyn Vip, ip: &str) -> Result<bool, EffectError> {
    vip.has_ip(parse_ip(ip)?).await
}

/// `configure_ip`: make sure `ip` is on the interface; announce it when it was added.
async fn configure_ip(ctx: &RoleCtx<'_>, ip: &str) -> Result<(), EffectError> {
    let addr = parse_ip(ip)?;
    if ctx.vip.has_ip(addr).await? {
        return Ok(());
    }
    ctx.vip.add_ip(addr).await?;
    if !ctx.vip.has_ip(addr).await? {
        return Err(EffectError::Net(format!(
            "Could not configure ip adress {ip} on interface {}!",
            ctx.vip.interface()
        )));
    }
    tracing::info!(
        ip,
        interface = ctx.vip.interface(),
        "added IP, sending gratuitous ARP"
    );
    ctx.arp.after_add(addr).await;
    Ok(())
}

/// `clear_ip`: make sure `ip` is not on the interface.
async fn clear_ip(ctx: &RoleCtx<'_>, ip: &str) -> Result<(), EffectError> {
    let addr = parse_ip(ip)?;
    if !ctx.vip.has_ip(addr).await? {
        return Ok(());
    }
    ctx.vip.remove_ip(addr).await
}

fn ip_failed(ctx: &RoleCtx<'_>, ip: &str, e: EffectError) -> String {
    format!(
        "Couldn't configure IP '{ip}' on interface '{}': {e}",
        ctx.vip.interface()
    )
}

/// The writer role's writable-making steps, inside the lease's write gate: read_only=0,
/// then the IP (abort at the first failure). `readd`: an add (clears a fence) rather than
/// a re-assertion (which leaves a fenced writer alone).
async fn make_writable(ctx: &RoleCtx<'_>, r: &RoleIp, readd: bool) -> Vec<String> {
    if !readd && ctx.lease.is_fenced(r) {
        return Vec::new();
    }
    let gate = match ctx.lease.enter_writable(r, readd).await {
        Ok(g) => g,
        Err(why) => return vec![format!("Couldn't allow writes: {why}")],
    };
    let allow = async {
        if readd {
            ctx.mysql.allow_write().await
        } else {
            ctx.mysql.reassert_write().await
        }
    };
    let allowed = tokio::select! {
        r = allow => r,
        () = ctx.revoke.until_revoked() => Err(EffectError::Other(REVOKED.into())),
    };
    if let Err(e) = allowed {
        return vec![format!("Couldn't allow writes: {e}")];
    }
    if ctx.revoke.revoked() {
        return vec![ip_failed(ctx, &r.ip, EffectError::Other(REVOKED.into()))];
    }
    if !gate.still_allowed() {
        return vec![ip_failed(
            ctx,
            &r.ip,
            EffectError::Other("the agent lease ran out while allowing writes".into()),
        )];
    }
    match configure_ip(ctx, &r.ip).await {
        Ok(()) => Vec::new(),
        Err(e) => vec![ip_failed(ctx, &r.ip, e)],
    }
}

/// Why a writer assertion stopped half-way (`revoke.rs`).
const REVOKED: &str = "stopped: a SET_STATUS without the writer role arrived";

/// Adds role `r`. Returns the failures.
#[tracing::instrument(name = "effect", skip_all, fields(role = %r.role, ip = %r.ip))]
pub async fn add(ctx: RoleCtx<'_>, r: &RoleIp) -> Vec<String> {
    let mut errors = Vec::new();
    if r.role == ctx.writer_role {
        if let Err(e) = ctx.mysql.sync_with_master(ctx.failed).await {
            errors.push(format!("Couldn't sync with master: {e}"));
        } else {
            errors.extend(make_writable(&ctx, r, true).await);
        }
    } else if let Err(e) = configure_ip(&ctx, &r.ip).await {
        errors.push(ip_failed(&ctx, &r.ip, e));
    }
    for e in &errors {
        tracing::error!("{e}");
    }
    errors
}

/// What deleting a role left undone.
#[derive(Debug, Default)]
pub struct Deleted {
    /// The failures, as MMM's FATAL texts (logged already).
    pub errors: Vec<String>,
    /// The writer role was deleted but `read_only=1` could not be set: it is owed.
    pub read_only_owed: bool,
}

/// Deletes role `r`; `failed`: the monitor found this host failed (HARD_OFFLINE).
#[tracing::instrument(name = "effect", skip_all, fields(role = %r.role, ip = %r.ip))]
pub async fn delete(ctx: RoleCtx<'_>, r: &RoleIp, failed: bool) -> Deleted {
    let writer = r.role == ctx.writer_role;
    let mut errors = Vec::new();
    let mut read_only_owed = false;
    if writer && failed {
        // A failed writer: the IP only; read_only=1 is owed and tried after the answer
        // (module doc).
        errors.extend(clear_ip_error(&ctx, r).await);
        errors.push(FAILED_DENY_OWED.to_string());
        read_only_owed = true;
    } else {
        if writer {
            if let Err(e) = ctx.mysql.deny_write().await {
                errors.push(format!("Couldn't deny writes: {e}"));
                read_only_owed = true;
            }
        }
        errors.extend(clear_ip_error(&ctx, r).await);
    }
    for e in &errors {
        tracing::error!("{e}");
    }
    Deleted {
        errors,
        read_only_owed,
    }
}

/// The answer's failure when a failed writer's `read_only=1` is owed (module doc).
pub const FAILED_DENY_OWED: &str = "Couldn't deny writes: not waited for (this host failed): the writer IP is removed, read_only=1 is owed and set after this answer";

/// `clear_ip` of `r`'s IP, its failure as MMM's FATAL text.
async fn clear_ip_error(ctx: &RoleCtx<'_>, r: &RoleIp) -> Option<String> {
    clear_ip(ctx, &r.ip).await.err().map(|e| {
        format!(
            "Couldn't clear IP '{}' from interface '{}': {e}",
            r.ip,
            ctx.vip.interface()
        )
    })
}

/// Re-asserts held role `r`. Returns the failures.
#[tracing::instrument(name = "effect", skip_all, fields(role = %r.role, ip = %r.ip))]
pub async fn check(ctx: RoleCtx<'_>, r: &RoleIp) -> Vec<String> {
    let mut errors = Vec::new();
    if r.role == ctx.writer_role {
        errors.extend(make_writable(&ctx, r, false).await);
    } else if let Err(e) = configure_ip(&ctx, &r.ip).await {
        errors.push(ip_failed(&ctx, &r.ip, e));
    }
    for e in &errors {
        tracing::error!("{e}");
    }
    errors
}
