//! The role table and role distribution (spec §3.9): which host holds each role IP,
//! the active master, host weights, orphan assignment (exclusive roles first, then
//! balanced), preferences (ACTIVE only) and balancing.
//!
//! Deterministic: roles, IPs and hosts in configuration order; ties go to the host listed
//! first in the role's `hosts`. Weights are kept in half units (an IP of the active-master
//! role weighs 1, any other IP 2) so no floating point is compared.

use mmm_common::config::{MonitorSettings, RoleMode};
use mmm_common::role::RoleIp;

use super::decision::Decision;
use super::ids::{HostId, RoleId};

/// One IP of a role and its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IpSlot {
    /// The IP.
    pub(crate) ip: String,
    /// The host holding it, or `None` (orphaned).
    pub(crate) owner: Option<HostId>,
}

/// One configured role.
#[derive(Debug, Clone)]
pub(crate) struct Role {
    /// Role name.
    pub(crate) name: String,
    /// Exclusive (else balanced).
    pub(crate) exclusive: bool,
    /// Allowed hosts, in the role's `hosts` order (unknown names dropped).
    pub(crate) hosts: Vec<HostId>,
    /// IPs in config order.
    pub(crate) ips: Vec<IpSlot>,
    /// Preferred host (exclusive roles only).
    pub(crate) prefer: Option<HostId>,
}

/// The role table.
#[derive(Debug, Clone)]
pub(crate) struct RoleTable {
    /// Roles in config order.
    pub(crate) roles: Vec<Role>,
    /// The active-master role, if configured.
    pub(crate) am_role: Option<RoleId>,
    /// A refused promotion (`semi_sync`, core/durability.rs): the active-master role may
    /// only be given to this host (the failed old active master).
    pub(crate) am_only: Option<HostId>,
}

/// What eligibility the distribution needs per host: ONLINE and not agent_down.
pub(crate) type Eligible<'a> = &'a dyn Fn(HostId) -> bool;

impl RoleTable {
    /// The table for `config`, every IP orphaned.
    pub(crate) fn new(config: &MonitorSettings) -> RoleTable {
        let host_idx = |n: &str| config.hosts.iter().position(|h| h.name == n).map(HostId);
        let roles: Vec<Role> = config
            .roles
            .iter()
            .map(|r| {
                let exclusive = r.mode != RoleMode::Balanced;
                Role {
                    name: r.name.clone(),
                    exclusive,
                    hosts: r.hosts.iter().filter_map(|h| host_idx(h)).collect(),
                    ips: r
                        .ips
                        .iter()
                        .map(|ip| IpSlot {
                            ip: ip.clone(),
                            owner: None,
                        })
                        .collect(),
                    prefer: if exclusive {
                        r.prefer.as_deref().and_then(host_idx)
                    } else {
                        None
                    },
                }
            })
            .collect();
        let am_role = roles
            .iter()
            .position(|r| r.name == config.active_master_role)
            .map(RoleId);
        RoleTable {
            roles,
            am_role,
            am_only: None,
        }
    }

    /// The role named `name`.
    pub(crate) fn role_index(&self, name: &str) -> Option<RoleId> {
        self.roles.iter().position(|r| r.name == name).map(RoleId)
    }

    /// The role `ri`, if it exists.
    pub(crate) fn role(&self, ri: RoleId) -> Option<&Role> {
        self.roles.get(ri.0)
    }

    /// The active-master role, if configured.
    pub(crate) fn am(&self) -> Option<&Role> {
        self.role(self.am_role?)
    }

    /// Whether `roles` include an IP of the active-master role.
    pub(crate) fn has_am_role(&self, roles: &[RoleIp]) -> bool {
        self.am()
            .is_some_and(|am| roles.iter().any(|r| r.role == am.name))
    }

    /// (role index, ip index) of an IP.
    pub(crate) fn find_ip(&self, ip: &str) -> Option<(RoleId, usize)> {
        self.roles.iter().enumerate().find_map(|(ri, r)| {
            r.ips
                .iter()
                .position(|s| s.ip == ip)
                .map(|ii| (RoleId(ri), ii))
        })
    }

    /// (role index, ip index) of a role instance.
    pub(crate) fn find(&self, role: &RoleIp) -> Option<(RoleId, usize)> {
        let ri = self.role_index(&role.role)?;
        let ii = self.role(ri)?.ips.iter().position(|s| s.ip == role.ip)?;
        Some((ri, ii))
    }

    /// Sets the owner of one IP.
    pub(crate) fn set_owner(&mut self, ri: RoleId, ii: usize, owner: Option<HostId>) {
        if let Some(slot) = self.roles.get_mut(ri.0).and_then(|r| r.ips.get_mut(ii)) {
            slot.owner = owner;
        }
    }

    /// The owner of one IP.
    pub(crate) fn owner(&self, ri: RoleId, ii: usize) -> Option<HostId> {
        self.role(ri)
            .and_then(|r| r.ips.get(ii))
            .and_then(|s| s.owner)
    }

    /// The active master: owner of the active-master role's (first) IP.
    pub(crate) fn active_master(&self) -> Option<HostId> {
        self.am()?.ips.first().and_then(|s| s.owner)
    }

    /// The hosts that can hold the active-master role (its `hosts`).
    pub(crate) fn masters(&self) -> &[HostId] {
        match self.am() {
            Some(r) => &r.hosts,
            None => &[],
        }
    }

    /// Whether `host` is listed in the active-master role.
    pub(crate) fn is_master(&self, host: HostId) -> bool {
        self.masters().contains(&host)
    }

    /// Passive master: first master host that is not the active master (none if there is
    /// no active master).
    pub(crate) fn passive_master(&self) -> Option<HostId> {
        let am = self.active_master()?;
        self.masters().iter().copied().find(|&h| h != am)
    }

    /// The roles `host` holds in the table, sorted.
    pub(crate) fn host_roles(&self, host: HostId) -> Vec<RoleIp> {
        let mut v: Vec<RoleIp> = self
            .roles
            .iter()
            .flat_map(|r| {
                r.ips
                    .iter()
                    .filter(move |s| s.owner == Some(host))
                    .map(move |s| RoleIp::new(r.name.clone(), s.ip.clone()))
            })
            .collect();
        v.sort();
        v
    }

    /// Per host (`n` of them): whether it owns any IP in the table.
    pub(crate) fn owner_mask(&self, n: usize) -> Vec<bool> {
        let mut mask = vec![false; n];
        for owner in self
            .roles
            .iter()
            .flat_map(|r| r.ips.iter().filter_map(|s| s.owner))
        {
            if let Some(m) = mask.get_mut(owner.index()) {
                *m = true;
            }
        }
        mask
    }

    /// Whether `host` holds exactly `roles` in the table: the same as
    /// `self.host_roles(host) == roles`, without building the list (the distribution
    /// asks this for every host after every input).
    pub(crate) fn holds_exactly(&self, host: HostId, roles: &[RoleIp]) -> bool {
        if !roles.windows(2).all(|w| w[0] < w[1]) {
            // Not sorted or not distinct: compare as lists, as before.
            return self.host_roles(host) == roles;
        }
        let mut held = 0;
        for r in &self.roles {
            for s in r.ips.iter().filter(|s| s.owner == Some(host)) {
                held += 1;
                if !roles.iter().any(|x| x.role == r.name && x.ip == s.ip) {
                    return false;
                }
            }
        }
        held == roles.len()
    }

    /// Host weight in half units: 1 per active-master-role IP, 2 per other IP.
    pub(crate) fn weight2(&self, host: HostId) -> u32 {
        let mut w = 0;
        for (ri, r) in self.roles.iter().enumerate() {
            let per = if Some(RoleId(ri)) == self.am_role {
                1
            } else {
                2
            };
            w += per * r.ips.iter().filter(|s| s.owner == Some(host)).count() as u32;
        }
        w
    }

    /// `clear_roles(host)`: orphans every IP of `host`; returns the log lines (INFO
    /// `Removing all roles from host '<h>':` + one line per IP), empty when it held none.
    pub(crate) fn clear_host(&mut self, host: HostId, name: &str) -> Vec<Decision> {
        let roles = self.host_roles(host);
        let name = name.to_string();
        let mut out = vec![Decision::RolesCleared {
            host,
            name: name.clone(),
        }];
        for role in &mut self.roles {
            for slot in &mut role.ips {
                if slot.owner == Some(host) {
                    slot.owner = None;
                }
            }
        }
        for role in roles {
            out.push(Decision::RoleRemoved {
                host,
                name: name.clone(),
                role,
            });
        }
        out
    }

    /// Orphans every IP of role `ri` held by `host` (balanced `move_role`).
    pub(crate) fn remove_role_from_host(&mut self, ri: RoleId, host: HostId) {
        if let Some(r) = self.roles.get_mut(ri.0) {
            for s in &mut r.ips {
                if s.owner == Some(host) {
                    s.owner = None;
                }
            }
        }
    }

    /// One distribution step (spec §3.9 steps 2-4): orphans (exclusive roles, then
    /// balanced), preferences when `enforce_prefer` (ACTIVE), balancing.
    pub(crate) fn distribute(
        &mut self,
        eligible: Eligible<'_>,
        enforce_prefer: bool,
        names: &[String],
        held: &[bool],
    ) -> Vec<Decision> {
        let mut out = Vec::new();
        let name = |h: HostId| names.get(h.index()).cloned().unwrap_or_default();
        // Orphans: exclusive roles first, then balanced, each in config order.
        for pass_exclusive in [true, false] {
            for ri in 0..self.roles.len() {
                if self.roles[ri].exclusive != pass_exclusive
                    || held.get(ri).copied().unwrap_or(false)
                {
                    continue;
                }
                for ii in 0..self.roles[ri].ips.len() {
                    if self.roles[ri].ips[ii].owner.is_some() {
                        continue;
                    }
                    let Some(h) = self.pick_orphan_host(ri, eligible) else {
                        break;
                    };
                    self.roles[ri].ips[ii].owner = Some(h);
                    out.push(Decision::OrphanAssigned {
                        host: h,
                        name: name(h),
                        role: self.role_ip(ri, ii),
                    });
                }
            }
        }
        if enforce_prefer {
            for ri in 0..self.roles.len() {
                let Some(p) = self.roles[ri].prefer else {
                    continue;
                };
                if !eligible(p) || self.held_from(ri, p) {
                    continue;
                }
                for ii in 0..self.roles[ri].ips.len() {
                    let slot = &mut self.roles[ri].ips[ii];
                    if let Some(old) = slot.owner {
                        if old != p {
                            slot.owner = Some(p);
                            out.push(Decision::RoleMoved {
                                host: p,
                                role: self.role_ip(ri, ii),
                                from: name(old),
                                to: name(p),
                                preferred: true,
                            });
                        }
                    }
                }
            }
        }
        for ri in 0..self.roles.len() {
            if self.roles[ri].exclusive {
                continue;
            }
            let hosts: Vec<HostId> = self.roles[ri]
                .hosts
                .iter()
                .copied()
                .filter(|&h| eligible(h))
                .collect();
            if hosts.len() < 2 {
                continue;
            }
            let mut w: Vec<i64> = hosts.iter().map(|&h| i64::from(self.weight2(h))).collect();
            // Each iteration narrows max - min or stops; bounded to be safe.
            for _ in 0..(4 * (self.roles[ri].ips.len() + hosts.len()) + 8) {
                let mut max_i = 0;
                let mut min_i = 0;
                for i in 0..hosts.len() {
                    if w[i] > w[max_i] {
                        max_i = i;
                    }
                    if w[i] < w[min_i] {
                        min_i = i;
                    }
                }
                if w[max_i] - w[min_i] <= 2 {
                    break;
                }
                let (from, to) = (hosts[max_i], hosts[min_i]);
                if let Some(ii) = self.roles[ri]
                    .ips
                    .iter()
                    .position(|s| s.owner == Some(from))
                {
                    self.roles[ri].ips[ii].owner = Some(to);
                    out.push(Decision::RoleMoved {
                        host: to,
                        role: self.role_ip(ri, ii),
                        from: name(from),
                        to: name(to),
                        preferred: false,
                    });
                }
                w[max_i] -= 2;
                w[min_i] += 2;
            }
        }
        out
    }

    /// The host an orphaned IP of role `ri` goes to: the preferred host if eligible,
    /// else the eligible host with the smallest weight (ties: first in role `hosts`).
    /// The role instance `ii` of role `ri` (by position).
    fn role_ip(&self, ri: usize, ii: usize) -> RoleIp {
        let r = &self.roles[ri];
        RoleIp::new(r.name.clone(), r.ips[ii].ip.clone())
    }

    /// Whether `host` may not get role `ri` now ([`RoleTable::am_only`]).
    fn held_from(&self, ri: usize, host: HostId) -> bool {
        self.am_role == Some(RoleId(ri)) && self.am_only.is_some_and(|o| o != host)
    }

    pub(crate) fn pick_orphan_host(&self, ri: usize, eligible: Eligible<'_>) -> Option<HostId> {
        let role = self.roles.get(ri)?;
        let eligible = &|h: HostId| eligible(h) && !self.held_from(ri, h);
        if let Some(p) = role.prefer {
            if eligible(p) && role.hosts.contains(&p) {
                return Some(p);
            }
        }
        let mut best: Option<(HostId, u32)> = None;
        for &h in &role.hosts {
            if !eligible(h) {
                continue;
            }
            let w = self.weight2(h);
            match best {
                Some((_, bw)) if w >= bw => {}
                _ => best = Some((h, w)),
            }
        }
        best.map(|(h, _)| h)
    }
}
