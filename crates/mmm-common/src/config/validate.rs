//! Validation of a parsed configuration for one program class (spec §2.3, §2.4): check-name
//! restriction, automatic check sections, `default` templates, defaults, required and
//! conditionally required entries, fixed values and references, and (unlike 2.2.1) numbers.
//! Produces the typed [`Config`].
//!
//! Order: required sections, then top-level directives, then sections in the order monitor,
//! socket, hosts, roles, checks, copy methods (each in configuration order), directives in the
//! order of spec §2.4's tables. The first error is returned.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use super::defaults as d;
use super::error::{ConfigError, ConfigErrorKind as K};
use super::model::*;
use super::parse::{Loc, RawConfig, RawSection, RawValue, Vars};
use super::rules::{self, SectionKind};
use crate::state::{HostMode, MonitorMode};

use ProgramClass::{Agent, Control, Monitor, Tools};

/// The program a class stands for, in messages.
fn program(class: ProgramClass) -> &'static str {
    match class {
        Monitor => "mmm_mond",
        Agent => "mmm_agentd",
        Control => "mmm_control",
        Tools => "the mmm tools",
    }
}

/// Validation context.
struct Ctx {
    root: Arc<str>,
    class: ProgramClass,
}

impl Ctx {
    fn missing(&self, path: &str) -> ConfigError {
        ConfigError::file(
            &self.root,
            Some(path),
            K::RequiredMissing {
                path: path.to_string(),
                program: program(self.class),
            },
        )
    }

    fn requires(&self, classes: &[ProgramClass]) -> bool {
        classes.contains(&self.class)
    }
}

/// Parses non-negative decimal seconds (`5`, `0.5`, `.5`, `10.`).
pub(crate) fn parse_seconds(text: &str) -> Option<Duration> {
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !digits(int) || !digits(frac) {
        return None;
    }
    let secs: f64 = text.parse().ok()?;
    // Cap at ~31 years: anything longer is a typo.
    if !(0.0..=1.0e9).contains(&secs) {
        return None;
    }
    Duration::try_from_secs_f64(secs).ok()
}

/// Parses a plain unsigned decimal integer.
fn parse_uint<T: FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// MMM's boolean words (spec §2.2), case-insensitive.
fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "false" | "off" | "no" | "0" => Some(false),
        "true" | "on" | "yes" | "1" => Some(true),
        _ => None,
    }
}

/// Splits a list value on commas with optional surrounding whitespace; trailing empty fields
/// are dropped (as Perl's `split`); interior empty fields are an error (2.2.1 keeps them).
fn split_list(text: &str) -> (Vec<String>, bool) {
    let mut items: Vec<String> = text.split(',').map(|s| s.trim().to_string()).collect();
    while items.last().is_some_and(|s| s.is_empty()) {
        items.pop();
    }
    let has_empty = items.iter().any(String::is_empty);
    (items, has_empty)
}

/// A section (or the top level) being validated.
struct View<'a> {
    ctx: &'a Ctx,
    /// `""`, `monitor->` or `host->db1->`.
    prefix: String,
    vars: &'a Vars,
}

impl<'a> View<'a> {
    fn path(&self, var: &str) -> String {
        format!("{}{}", self.prefix, var)
    }

    fn raw(&self, var: &str) -> Option<&'a RawValue> {
        self.vars.get(var)
    }

    /// An error about the value of `var` (at its line).
    fn err(&self, var: &str, loc: &Loc, kind: K) -> ConfigError {
        ConfigError::at(&loc.file, loc.line, Some(&self.path(var)), kind)
    }

    /// The value, or a `Required config entry` error when `classes` includes ours.
    fn get(
        &self,
        var: &str,
        classes: &[ProgramClass],
    ) -> Result<Option<&'a RawValue>, ConfigError> {
        match self.raw(var) {
            Some(v) => Ok(Some(v)),
            None if self.ctx.requires(classes) => Err(self.ctx.missing(&self.path(var))),
            None => Ok(None),
        }
    }

    fn string(&self, var: &str, classes: &[ProgramClass]) -> Result<Option<String>, ConfigError> {
        Ok(self.get(var, classes)?.map(|v| v.text.clone()))
    }

    fn string_or(&self, var: &str, default: &str) -> String {
        self.raw(var)
            .map_or_else(|| default.to_string(), |v| v.text.clone())
    }

    fn check_allowed(
        &self,
        var: &str,
        v: &RawValue,
        value: &str,
        allowed: &[String],
    ) -> Result<(), ConfigError> {
        if allowed.iter().any(|a| a == value) {
            Ok(())
        } else {
            Err(self.err(
                var,
                &v.loc,
                K::InvalidValue {
                    path: self.path(var),
                    value: value.to_string(),
                    allowed: allowed.to_vec(),
                },
            ))
        }
    }

    /// A value from a fixed list.
    fn one_of(
        &self,
        var: &str,
        allowed: &[&str],
        classes: &[ProgramClass],
    ) -> Result<Option<String>, ConfigError> {
        let Some(v) = self.get(var, classes)? else {
            return Ok(None);
        };
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        self.check_allowed(var, v, &v.text, &allowed)?;
        Ok(Some(v.text.clone()))
    }

    /// A reference to a section name (`None` allowed list: no such sections, skip as 2.2.1).
    fn reference(
        &self,
        var: &str,
        allowed: Option<&[String]>,
        classes: &[ProgramClass],
    ) -> Result<Option<String>, ConfigError> {
        let Some(v) = self.get(var, classes)? else {
            return Ok(None);
        };
        if let Some(allowed) = allowed {
            self.check_allowed(var, v, &v.text, allowed)?;
        }
        Ok(Some(v.text.clone()))
    }

    fn boolean(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        let Some(v) = self.raw(var) else {
            return Ok(default);
        };
        parse_bool(&v.text).ok_or_else(|| {
            self.err(
                var,
                &v.loc,
                K::InvalidValue {
                    path: self.path(var),
                    value: v.text.clone(),
                    allowed: vec!["0".into(), "1".into()],
                },
            )
        })
    }

    /// A keyword directive (`errant_transactions hold|accept`): one of `T`'s words.
    fn choice<T: Copy + std::str::FromStr + ChoiceWords>(
        &self,
        var: &str,
        default: T,
    ) -> Result<T, ConfigError> {
        let Some(v) = self.raw(var) else {
            return Ok(default);
        };
        v.text.parse::<T>().map_err(|_| {
            self.err(
                var,
                &v.loc,
                K::InvalidValue {
                    path: self.path(var),
                    value: v.text.clone(),
                    allowed: T::WORDS.iter().map(|w| w.to_string()).collect(),
                },
            )
        })
    }

    fn number<T: Copy>(
        &self,
        var: &str,
        default: T,
        expected: &'static str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        let Some(v) = self.raw(var) else {
            return Ok(default);
        };
        parse(&v.text).ok_or_else(|| {
            self.err(
                var,
                &v.loc,
                K::InvalidNumber {
                    path: self.path(var),
                    value: v.text.clone(),
                    expected,
                },
            )
        })
    }

    fn seconds(&self, var: &str, default: Duration) -> Result<Duration, ConfigError> {
        self.number(
            var,
            default,
            "non-negative seconds, e.g. 5 or 0.5",
            parse_seconds,
        )
    }

    fn positive_seconds(&self, var: &str, default: Duration) -> Result<Duration, ConfigError> {
        self.number(
            var,
            default,
            "a positive number of seconds, e.g. 3 or 0.5",
            |t| parse_seconds(t).filter(|d| !d.is_zero()),
        )
    }

    fn port(&self, var: &str, default: u16) -> Result<u16, ConfigError> {
        self.number(var, default, "a port number 1-65535", |t| {
            parse_uint::<u16>(t).filter(|p| *p != 0)
        })
    }

    /// An IP address (mmm_mond pings and connects to a host's `ip`, the agent listens on
    /// it): when given, it must parse; `None` when not given.
    fn address(&self, var: &str) -> Result<Option<IpAddr>, ConfigError> {
        let Some(v) = self.raw(var) else {
            return Ok(None);
        };
        v.text.parse().map(Some).map_err(|_| {
            self.err(
                var,
                &v.loc,
                K::InvalidNumber {
                    path: self.path(var),
                    value: v.text.clone(),
                    expected: "an IP address, e.g. 192.168.0.31",
                },
            )
        })
    }

    /// The elements of a list separated by commas and/or whitespace, with its value;
    /// `None` when not given, an error when given empty.
    fn separated(&self, var: &str) -> Result<Option<(&'a RawValue, Vec<&'a str>)>, ConfigError> {
        let Some(v) = self.raw(var) else {
            return Ok(None);
        };
        let items: Vec<&str> = v
            .text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            return Err(self.err(
                var,
                &v.loc,
                K::EmptyList {
                    path: self.path(var),
                },
            ));
        }
        Ok(Some((v, items)))
    }

    /// A list of IP addresses separated by commas and/or whitespace (`monitor_ips`,
    /// `control_allow`); `default` when not given. An empty value or an element that is
    /// not an address is an error naming the element.
    fn addresses(&self, var: &str, default: Vec<IpAddr>) -> Result<Vec<IpAddr>, ConfigError> {
        let Some((v, items)) = self.separated(var)? else {
            return Ok(default);
        };
        let mut out: Vec<IpAddr> = Vec::with_capacity(items.len());
        for item in items {
            let ip: IpAddr = item.parse().map_err(|_| {
                self.err(
                    var,
                    &v.loc,
                    K::InvalidNumber {
                        path: self.path(var),
                        value: item.to_string(),
                        expected: "IP addresses separated by commas or spaces, e.g. \
                                   192.168.2.106, 192.168.2.107",
                    },
                )
            })?;
            let ip = ip.to_canonical();
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
        Ok(out)
    }

    /// A hook program (`notify_bin`, …): an absolute path, run without a shell and without
    /// arguments; `None` when not given.
    fn program(&self, var: &str) -> Result<Option<String>, ConfigError> {
        let Some(v) = self.raw(var) else {
            return Ok(None);
        };
        if !v.text.starts_with('/') || v.text.contains(char::is_whitespace) {
            return Err(self.err(
                var,
                &v.loc,
                K::InvalidNumber {
                    path: self.path(var),
                    value: v.text.clone(),
                    expected: "an absolute path of a program, without arguments, e.g. \
                               /usr/local/sbin/mmm_notify",
                },
            ));
        }
        Ok(Some(v.text.clone()))
    }

    /// `etcd_endpoints`: `host:port` elements separated by commas and/or whitespace; empty
    /// when not given. An element without a port (or with a bad one) is an error naming it.
    fn endpoints(&self, var: &str) -> Result<Vec<String>, ConfigError> {
        let Some((v, items)) = self.separated(var)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let ok = item.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty()
                    && parse_uint::<u16>(port).is_some_and(|p| p != 0)
                    && !host.contains('/')
            });
            if !ok {
                return Err(self.err(
                    var,
                    &v.loc,
                    K::InvalidNumber {
                        path: self.path(var),
                        value: item.to_string(),
                        expected: "host:port elements separated by commas, \
                                   e.g. 192.168.0.5:2379, 192.168.0.6:2379",
                    },
                ));
            }
            if !out.iter().any(|e| e == item) {
                out.push(item.to_string());
            }
        }
        Ok(out)
    }

    fn u32(&self, var: &str, default: u32) -> Result<u32, ConfigError> {
        self.number(var, default, "a non-negative integer", parse_uint::<u32>)
    }

    fn u64(&self, var: &str, default: u64) -> Result<u64, ConfigError> {
        self.number(var, default, "a non-negative integer", parse_uint::<u64>)
    }

    /// A comma-separated list.
    fn list(
        &self,
        var: &str,
        classes: &[ProgramClass],
    ) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(v) = self.get(var, classes)? else {
            return Ok(None);
        };
        let (items, has_empty) = split_list(&v.text);
        if has_empty {
            return Err(self.err(
                var,
                &v.loc,
                K::EmptyListElement {
                    path: self.path(var),
                    value: v.text.clone(),
                },
            ));
        }
        if items.is_empty() && self.ctx.requires(classes) {
            return Err(self.err(
                var,
                &v.loc,
                K::EmptyList {
                    path: self.path(var),
                },
            ));
        }
        Ok(Some(items))
    }

    /// A list whose elements must be in `allowed` (when there is such a list).
    fn ref_list(
        &self,
        var: &str,
        allowed: Option<&[String]>,
        classes: &[ProgramClass],
    ) -> Result<Option<Vec<String>>, ConfigError> {
        let items = self.list(var, classes)?;
        if let (Some(items), Some(allowed), Some(v)) = (&items, allowed, self.raw(var)) {
            for item in items {
                self.check_allowed(var, v, item, allowed)?;
            }
        }
        Ok(items)
    }

    /// `deprequired`: `var` must be set when `dep_var` is `dep_value` (and the rule applies
    /// to this class).
    fn dep_required(
        &self,
        var: &str,
        dep_var: &str,
        dep_value: &str,
        applies: bool,
        is_bool: bool,
    ) -> Result<(), ConfigError> {
        if !applies || self.raw(var).is_some() {
            return Ok(());
        }
        let Some(dep) = self.raw(dep_var) else {
            return Ok(());
        };
        let matches = if is_bool {
            parse_bool(&dep.text) == parse_bool(dep_value)
        } else {
            dep.text == dep_value
        };
        if matches {
            return Err(ConfigError::at(
                &dep.loc.file,
                dep.loc.line,
                Some(&self.path(var)),
                K::DepRequired {
                    path: self.path(var),
                    var: dep_var.to_string(),
                    value: dep_value.to_string(),
                },
            ));
        }
        Ok(())
    }
}

/// Applies the `default` template of `kind` (spec §2.3): removed, and each of its keys copied
/// into every other section of that kind that does not define it.
fn apply_template(sections: &mut Vec<RawSection>, kind: SectionKind) {
    let Some(pos) = sections
        .iter()
        .position(|s| s.kind == kind && s.name.as_deref() == Some("default"))
    else {
        return;
    };
    let template = sections.remove(pos);
    for section in sections.iter_mut().filter(|s| s.kind == kind) {
        for (name, value) in &template.vars.0 {
            if section.vars.get(name).is_none() {
                section.vars.set(name, value.clone());
            }
        }
    }
}

/// Validates `raw` for `class`.
pub(crate) fn validate(raw: RawConfig, class: ProgramClass) -> Result<Config, ConfigError> {
    let ctx = Ctx {
        root: raw.root.clone(),
        class,
    };
    let mut sections = raw.sections;

    // Check names (before the template is removed, `default` allowed).
    for s in sections.iter().filter(|s| s.kind == SectionKind::Check) {
        let name = s.name.clone().unwrap_or_default();
        if name != "default" && !rules::CHECK_NAMES.contains(&name.as_str()) {
            let (file, line) = s.loc.as_ref().map_or((ctx.root.to_string(), None), |l| {
                (l.file.to_string(), Some(l.line))
            });
            return Err(ConfigError {
                file,
                line,
                directive: Some(format!("check->{name}")),
                kind: Box::new(K::InvalidCheck { name }),
            });
        }
    }
    // All four checks always exist (2.2.1 creates them for MONITOR; the typed model needs
    // them for every class, which changes nothing for the others).
    for name in rules::CHECK_NAMES {
        if !sections
            .iter()
            .any(|s| s.kind == SectionKind::Check && s.name.as_deref() == Some(name))
        {
            sections.push(RawSection {
                kind: SectionKind::Check,
                name: Some(name.to_string()),
                loc: None,
                vars: Vars::default(),
            });
        }
    }
    for kind in SectionKind::ALL.into_iter().filter(|k| k.has_template()) {
        apply_template(&mut sections, kind);
    }

    let of_kind = |kind: SectionKind| -> Vec<&RawSection> {
        sections.iter().filter(|s| s.kind == kind).collect()
    };
    let names_of = |kind: SectionKind| -> Option<Vec<String>> {
        let names: Vec<String> = of_kind(kind)
            .iter()
            .filter_map(|s| s.name.clone())
            .collect();
        (!names.is_empty()).then_some(names)
    };
    let host_names = names_of(SectionKind::Host);
    let role_names = names_of(SectionKind::Role);
    let copy_method_names = names_of(SectionKind::CopyMethod);
    let monitor_section = of_kind(SectionKind::Monitor).into_iter().next();
    let socket_section = of_kind(SectionKind::Socket).into_iter().next();

    // Required sections.
    if host_names.is_none() {
        return Err(ctx.missing("host"));
    }
    if role_names.is_none() && ctx.requires(&[Agent, Monitor]) {
        return Err(ctx.missing("role"));
    }
    if monitor_section.is_none() && ctx.requires(&[Monitor, Control]) {
        return Err(ctx.missing("monitor"));
    }
    if copy_method_names.is_none() && ctx.requires(&[Tools]) {
        return Err(ctx.missing("copy_method"));
    }

    // Top level.
    let top = View {
        ctx: &ctx,
        prefix: String::new(),
        vars: &raw.top,
    };
    let this = top.reference("this", host_names.as_deref(), &[Agent, Tools])?;
    let debug = top.boolean("debug", d::DEBUG)?;
    let active_master_role = top.reference(
        "active_master_role",
        role_names.as_deref(),
        &[Agent, Monitor],
    )?;
    let max_kill_retries = top.u32("max_kill_retries", d::MAX_KILL_RETRIES)?;
    let default_copy_method = top.reference(
        "default_copy_method",
        copy_method_names.as_deref(),
        &[Tools],
    )?;
    let clone_dirs = top.list("clone_dirs", &[Tools])?.unwrap_or_default();
    let ext = extensions(&top)?;

    let monitor = monitor_section
        .map(|s| monitor_config(&ctx, &s.vars))
        .transpose()?;
    if let Some(m) = &monitor {
        ha_lease_rule(&top, m, &ext)?;
    }
    let socket = match socket_section {
        Some(s) => socket_config(&ctx, &s.vars)?,
        None => SocketConfig {
            kind: d::SOCKET_TYPE,
            cert_file: None,
            key_file: None,
            ca_file: None,
        },
    };
    let hosts = of_kind(SectionKind::Host)
        .into_iter()
        .map(|s| host_config(&ctx, s, host_names.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let roles = of_kind(SectionKind::Role)
        .into_iter()
        .map(|s| role_config(&ctx, s, host_names.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let check = |name: &str| -> Result<CheckConfig, ConfigError> {
        let vars = sections
            .iter()
            .find(|s| s.kind == SectionKind::Check && s.name.as_deref() == Some(name))
            .map(|s| &s.vars);
        let empty = Vars::default();
        check_config(&ctx, name, vars.unwrap_or(&empty))
    };
    let checks = Checks {
        ping: check("ping")?,
        mysql: check("mysql")?,
        rep_threads: check("rep_threads")?,
        rep_backlog: check("rep_backlog")?,
    };
    let copy_methods = of_kind(SectionKind::CopyMethod)
        .into_iter()
        .map(|s| copy_method_config(&ctx, s))
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Config {
        this,
        debug,
        active_master_role,
        max_kill_retries,
        default_copy_method,
        clone_dirs,
        monitor,
        socket,
        hosts,
        roles,
        checks,
        copy_methods,
        ext,
    })
}

/// The words of a keyword directive, for its error message.
trait ChoiceWords {
    const WORDS: &'static [&'static str];
}

impl ChoiceWords for super::model::ErrantPolicy {
    const WORDS: &'static [&'static str] = &["hold", "accept"];
}

impl ChoiceWords for crate::mysql_tls::SslMode {
    const WORDS: &'static [&'static str] = &crate::mysql_tls::SslMode::NAMES;
}

/// The shortest non-zero `agent_lease` (the agent checks its lease every 100 ms, and the
/// monitor must be able to reach every agent within a third of it).
const MIN_AGENT_LEASE: Duration = Duration::from_millis(500);

/// The longest `semi_sync_timeout`: a writer whose standby is gone stalls every commit this
/// long before it falls back, so a larger value is a typo rather than a choice.
const MAX_SEMI_SYNC_TIMEOUT: Duration = Duration::from_secs(3600);

fn extensions(top: &View<'_>) -> Result<Extensions, ConfigError> {
    let ext = Extensions {
        arp_count: top.u32("arp_count", d::ARP_COUNT)?,
        arp_repeat: top.u32("arp_repeat", d::ARP_REPEAT)?,
        arp_interval: top.seconds("arp_interval", d::ARP_INTERVAL)?,
        arp_refresh: top.seconds("arp_refresh", d::ARP_REFRESH)?,
        sync_timeout: top.positive_seconds("sync_timeout", d::SYNC_TIMEOUT)?,
        mysql_timeout: top.positive_seconds("mysql_timeout", d::MYSQL_TIMEOUT)?,
        agent_connect_timeout: top
            .positive_seconds("agent_connect_timeout", d::AGENT_CONNECT_TIMEOUT)?,
        agent_read_timeout: top.positive_seconds("agent_read_timeout", d::AGENT_READ_TIMEOUT)?,
        status_retry_interval: top
            .positive_seconds("status_retry_interval", d::STATUS_RETRY_INTERVAL)?,
        agent_lease: top.number(
            "agent_lease",
            d::AGENT_LEASE,
            "0 (off) or at least 0.5 seconds, e.g. 1.5",
            |t| parse_seconds(t).filter(|d| d.is_zero() || *d >= MIN_AGENT_LEASE),
        )?,
        monitor_ips: top.addresses("monitor_ips", d::MONITOR_IPS)?,
        control_allow: top.addresses("control_allow", d::CONTROL_ALLOW)?,
        errant_transactions: top.choice("errant_transactions", d::ERRANT_TRANSACTIONS)?,
        semi_sync: top.boolean("semi_sync", d::SEMI_SYNC)?,
        semi_sync_timeout: top.number(
            "semi_sync_timeout",
            d::SEMI_SYNC_TIMEOUT,
            "a number of seconds from 0.001 to 3600, e.g. 10",
            |t| {
                parse_seconds(t)
                    .filter(|d| *d >= Duration::from_millis(1) && *d <= MAX_SEMI_SYNC_TIMEOUT)
            },
        )?,
        notify_bin: top.program("notify_bin")?,
        pre_failover_bin: top.program("pre_failover_bin")?,
        post_failover_bin: top.program("post_failover_bin")?,
        hook_timeout: top.positive_seconds("hook_timeout", d::HOOK_TIMEOUT)?,
        pre_failover_retry: top.positive_seconds("pre_failover_retry", d::PRE_FAILOVER_RETRY)?,
    };
    if ext.agent_read_timeout <= ext.sync_timeout {
        let at = top
            .raw("agent_read_timeout")
            .or_else(|| top.raw("sync_timeout"));
        let reason = format!(
            "must exceed sync_timeout: agent_read_timeout is {} s, sync_timeout is {} s \
             (the monitor must wait longer for an agent's reply than the agent waits for \
             replication)",
            ext.agent_read_timeout.as_secs_f64(),
            ext.sync_timeout.as_secs_f64()
        );
        let kind = K::Inconsistent {
            path: "agent_read_timeout".into(),
            reason,
        };
        return Err(match at {
            Some(v) => top.err("agent_read_timeout", &v.loc, kind),
            None => ConfigError::file(&top.ctx.root, Some("agent_read_timeout"), kind),
        });
    }
    Ok(ext)
}

/// `mysql_ssl_mode`, `mysql_ssl_ca`, `mysql_ssl_cert`, `mysql_ssl_key` of a `<host>`
/// (mmm-rs, [`crate::mysql_tls`]): the mode's word (any case), absolute paths, `VERIFY_*`
/// with a CA, a certificate with its key.
fn mysql_tls(v: &View<'_>) -> Result<crate::mysql_tls::MysqlTls, ConfigError> {
    use crate::mysql_tls::{MysqlTls, SslMode};
    let mode = v.choice("mysql_ssl_mode", SslMode::Disabled)?;
    let path = |var: &str| -> Result<Option<String>, ConfigError> {
        let Some(r) = v.raw(var) else {
            return Ok(None);
        };
        if !r.text.starts_with('/') {
            return Err(v.err(
                var,
                &r.loc,
                K::InvalidNumber {
                    path: v.path(var),
                    value: r.text.clone(),
                    expected: "an absolute file path, e.g. /etc/mysql-mmm/tls/ca.pem",
                },
            ));
        }
        Ok(Some(r.text.clone()))
    };
    let tls = MysqlTls {
        mode,
        ca: path("mysql_ssl_ca")?,
        cert: path("mysql_ssl_cert")?,
        key: path("mysql_ssl_key")?,
    };
    let inconsistent = |var: &str, reason: &str| {
        let kind = K::Inconsistent {
            path: v.path(var),
            reason: reason.to_string(),
        };
        match v.raw(var) {
            Some(r) => v.err(var, &r.loc, kind),
            None => ConfigError::file(&v.ctx.root, Some(&v.path(var)), kind),
        }
    };
    if matches!(mode, SslMode::VerifyCa | SslMode::VerifyIdentity) && tls.ca.is_none() {
        return Err(inconsistent(
            "mysql_ssl_mode",
            "VERIFY_CA and VERIFY_IDENTITY need mysql_ssl_ca (the CA that signed the \
             server's certificate)",
        ));
    }
    if tls.cert.is_some() != tls.key.is_some() {
        let var = if tls.cert.is_some() {
            "mysql_ssl_cert"
        } else {
            "mysql_ssl_key"
        };
        return Err(inconsistent(
            var,
            "mysql_ssl_cert and mysql_ssl_key go together",
        ));
    }
    Ok(tls)
}

/// With monitor HA on etcd, how much longer than `leader_lease` a non-zero `agent_lease`
/// must be: a new leader needs the old lease to expire (`leader_lease`), etcd's expiry
/// check (up to 0.5 s), and its startup queries before it renews the agents' leases, so
/// the writer must not fence itself meanwhile (docs/ha.md).
pub(crate) const HA_AGENT_LEASE_MARGIN: Duration = Duration::from_secs(2);

/// With `etcd_endpoints` set and `agent_lease` on: `agent_lease` ≥ `leader_lease` +
/// [`HA_AGENT_LEASE_MARGIN`], so a monitor takeover never stops writes.
fn ha_lease_rule(top: &View<'_>, m: &MonitorSection, ext: &Extensions) -> Result<(), ConfigError> {
    if m.etcd_endpoints.is_empty() || ext.agent_lease.is_zero() {
        return Ok(());
    }
    let need = m.leader_lease + HA_AGENT_LEASE_MARGIN;
    if ext.agent_lease >= need {
        return Ok(());
    }
    let reason = format!(
        "must be at least leader_lease + {} s with etcd_endpoints set: agent_lease is {} s, \
         leader_lease is {} s (a monitor takeover must complete well inside the agents' lease)",
        HA_AGENT_LEASE_MARGIN.as_secs(),
        ext.agent_lease.as_secs_f64(),
        m.leader_lease.as_secs()
    );
    let kind = K::Inconsistent {
        path: "agent_lease".into(),
        reason,
    };
    Err(match top.raw("agent_lease") {
        Some(v) => top.err("agent_lease", &v.loc, kind),
        None => ConfigError::file(&top.ctx.root, Some("agent_lease"), kind),
    })
}

fn monitor_config(ctx: &Ctx, vars: &Vars) -> Result<MonitorSection, ConfigError> {
    let v = View {
        ctx,
        prefix: "monitor->".into(),
        vars,
    };
    let ip = v.string("ip", &[Monitor, Control])?;
    let port = v.port("port", d::MONITOR_PORT)?;
    let pid_path = v.string("pid_path", &[Monitor])?;
    let bin_path = v.string("bin_path", &[Monitor])?;
    let status_path = v.string("status_path", &[Monitor])?;
    let ping_interval = v.seconds("ping_interval", d::PING_INTERVAL)?;
    let ping_ips = v.list("ping_ips", &[Monitor])?.unwrap_or_default();
    let flap_duration = v.seconds("flap_duration", d::FLAP_DURATION)?;
    let flap_count = v.u32("flap_count", d::FLAP_COUNT)?;
    let auto_set_online = v.seconds("auto_set_online", d::AUTO_SET_ONLINE)?;
    let kill_host_bin = v.string_or("kill_host_bin", d::KILL_HOST_BIN);
    let careful_startup = v.boolean("careful_startup", d::CAREFUL_STARTUP)?;
    let mode = v
        .one_of("mode", &["passive", "active", "manual", "wait"], &[])?
        .and_then(|m| MonitorMode::from_str(&m).ok())
        .unwrap_or(d::MONITOR_MODE);
    let wait_for_other_master = v.seconds("wait_for_other_master", d::WAIT_FOR_OTHER_MASTER)?;
    let http_listen = v.number(
        "http_listen",
        d::HTTP_LISTEN.parse().ok(),
        "off or an address:port, e.g. 127.0.0.1:9990 or [::1]:9990",
        |t| match t {
            "off" => Some(None),
            t => t
                .parse::<std::net::SocketAddr>()
                .ok()
                .filter(|a| a.port() != 0)
                .map(Some),
        },
    )?;
    let http_tls = v.boolean("http_tls", d::HTTP_TLS)?;
    let audit_log = match v.raw("audit_log") {
        None => AuditLog::Beside,
        Some(r) if r.text == "off" => AuditLog::Off,
        Some(r) if r.text.starts_with('/') && !r.text.ends_with('/') => {
            AuditLog::Path(r.text.clone())
        }
        Some(r) => {
            return Err(v.err(
                "audit_log",
                &r.loc,
                K::InvalidNumber {
                    path: v.path("audit_log"),
                    value: r.text.clone(),
                    expected: "off or an absolute file path, e.g. /var/log/mysql-mmm/audit.jsonl",
                },
            ))
        }
    };
    let etcd_endpoints = v.endpoints("etcd_endpoints")?;
    let etcd_prefix = v.string("etcd_prefix", &[])?;
    if let (Some(prefix), Some(raw)) = (&etcd_prefix, v.raw("etcd_prefix")) {
        if !prefix.starts_with('/') || prefix.len() < 2 || prefix.ends_with('/') {
            return Err(v.err(
                "etcd_prefix",
                &raw.loc,
                K::InvalidNumber {
                    path: v.path("etcd_prefix"),
                    value: prefix.clone(),
                    expected: "a key prefix starting with / and not ending with /, \
                               e.g. /mysql-mmm/C1",
                },
            ));
        }
    }
    let leader_lease = v.number(
        "leader_lease",
        d::LEADER_LEASE,
        "whole seconds, at least 2 (etcd's shortest lease), e.g. 3",
        |t| {
            parse_uint::<u64>(t)
                .filter(|n| *n >= 2)
                .map(Duration::from_secs)
        },
    )?;
    Ok(MonitorSection {
        ip,
        port,
        pid_path,
        bin_path,
        status_path,
        ping_interval,
        ping_ips,
        flap_duration,
        flap_count,
        auto_set_online,
        kill_host_bin,
        careful_startup,
        mode,
        wait_for_other_master,
        http_listen,
        http_tls,
        audit_log,
        etcd_endpoints,
        etcd_prefix,
        leader_lease,
    })
}

fn socket_config(ctx: &Ctx, vars: &Vars) -> Result<SocketConfig, ConfigError> {
    let v = View {
        ctx,
        prefix: "socket->".into(),
        vars,
    };
    let kind = match v.one_of("type", &["plain", "ssl"], &[])?.as_deref() {
        Some("ssl") => SocketType::Ssl,
        Some(_) => SocketType::Plain,
        None => d::SOCKET_TYPE,
    };
    // 2.2.1 only logs these (FATAL) and goes on; mmm-rs makes them hard errors.
    v.dep_required(
        "cert_file",
        "type",
        "ssl",
        ctx.requires(&[Agent, Control, Monitor]),
        false,
    )?;
    v.dep_required(
        "key_file",
        "type",
        "ssl",
        ctx.requires(&[Agent, Control, Monitor]),
        false,
    )?;
    v.dep_required(
        "ca_file",
        "type",
        "ssl",
        ctx.requires(&[Agent, Monitor]),
        false,
    )?;
    Ok(SocketConfig {
        kind,
        cert_file: v.string("cert_file", &[])?,
        key_file: v.string("key_file", &[])?,
        ca_file: v.string("ca_file", &[])?,
    })
}

fn host_config(
    ctx: &Ctx,
    s: &RawSection,
    host_names: Option<&[String]>,
) -> Result<HostSection, ConfigError> {
    let name = s.name.clone().unwrap_or_default();
    let v = View {
        ctx,
        prefix: format!("host->{name}->"),
        vars: &s.vars,
    };
    let ip = v.string("ip", &[Agent, Monitor, Tools])?;
    if ctx.requires(&[Agent, Monitor]) {
        v.address("ip")?;
    }
    let mode = v
        .one_of("mode", &["master", "slave"], &[Agent, Monitor])?
        .and_then(|m| HostMode::from_str(&m).ok());
    v.dep_required("peer", "mode", "master", true, false)?;
    let peer = v.reference("peer", host_names, &[])?;
    let pid_path = v.string("pid_path", &[Agent])?;
    let bin_path = v.string("bin_path", &[Agent])?;
    let agent_port = v.port("agent_port", d::AGENT_PORT)?;
    let cluster_interface = v.string("cluster_interface", &[Agent])?;
    let mysql_port = v.port("mysql_port", d::MYSQL_PORT)?;
    let mysql_tls = mysql_tls(&v)?;
    let mysql_pidfile = v.string_or("mysql_pidfile", d::MYSQL_PIDFILE);
    let mysql_rcscript = v.string_or("mysql_rcscript", d::MYSQL_RCSCRIPT);
    let mysql_cnf = v.string_or("mysql_cnf", d::MYSQL_CNF);
    let agent_user = v.string("agent_user", &[Agent])?;
    let agent_password = v.string("agent_password", &[Agent])?;
    let monitor_user = v.string("monitor_user", &[Monitor])?;
    let monitor_password = v.string("monitor_password", &[Monitor])?;
    let replication_user = v.string("replication_user", &[Agent, Tools])?;
    let replication_password = v.string("replication_password", &[Agent, Tools])?;
    // mmm-rs `backup_method`: LVM (2.2.1) when given or when any LVM setting is, else the
    // hot-backup back-end; the LVM settings are required only for LVM.
    let explicit_method = v.one_of("backup_method", rules::BACKUP_METHODS, &[])?;
    let backup_method = match &explicit_method {
        Some(m) if m == "lvm" => BackupMethod::Lvm,
        Some(_) => BackupMethod::MariadbBackup,
        None if rules::LVM_SETTINGS.iter().any(|var| v.raw(var).is_some()) => BackupMethod::Lvm,
        None => BackupMethod::MariadbBackup,
    };
    let mut tools = Vec::new();
    for (var, default) in rules::HOST_TOOLS_VARS {
        let lvm_only = rules::is_lvm_var(var) && backup_method != BackupMethod::Lvm;
        let required: &[ProgramClass] = if rules::host_tools_required(var) && !lvm_only {
            &[Tools]
        } else {
            &[]
        };
        let value = match v.string(var, required)? {
            Some(value) => Some(value),
            None => default.map(str::to_string),
        };
        if *var == "ssh_port" {
            // Checked as a port; kept as written (its default is in HOST_TOOLS_VARS).
            v.port(var, 0)?;
        }
        if let Some(value) = value {
            tools.push((var.to_string(), value));
        }
    }
    if let Some(m) = explicit_method {
        tools.push(("backup_method".to_string(), m));
    }
    Ok(HostSection {
        name,
        ip,
        mode,
        peer,
        pid_path,
        bin_path,
        agent_port,
        cluster_interface,
        mysql_port,
        mysql_tls,
        mysql_pidfile,
        mysql_rcscript,
        mysql_cnf,
        agent_user,
        agent_password,
        monitor_user,
        monitor_password,
        replication_user,
        replication_password,
        tools,
        backup_method,
    })
}

fn role_config(
    ctx: &Ctx,
    s: &RawSection,
    host_names: Option<&[String]>,
) -> Result<RoleSection, ConfigError> {
    let name = s.name.clone().unwrap_or_default();
    let v = View {
        ctx,
        prefix: format!("role->{name}->"),
        vars: &s.vars,
    };
    let mode = match v
        .one_of("mode", &["balanced", "exclusive"], &[Monitor])?
        .as_deref()
    {
        Some("exclusive") => Some(RoleMode::Exclusive),
        Some("balanced") => Some(RoleMode::Balanced),
        _ => None,
    };
    let hosts = v.ref_list("hosts", host_names, &[Monitor])?;
    let ips = v.list("ips", &[Agent, Monitor])?.unwrap_or_default();
    let prefer = v.reference("prefer", hosts.as_deref(), &[])?;
    Ok(RoleSection {
        name,
        mode,
        hosts: hosts.unwrap_or_default(),
        ips,
        prefer,
    })
}

fn check_config(ctx: &Ctx, name: &str, vars: &Vars) -> Result<CheckConfig, ConfigError> {
    let v = View {
        ctx,
        prefix: format!("check->{name}->"),
        vars,
    };
    Ok(CheckConfig {
        check_period: v.seconds("check_period", d::CHECK_PERIOD)?,
        trap_period: v.seconds("trap_period", d::TRAP_PERIOD)?,
        timeout: v.seconds("timeout", d::CHECK_TIMEOUT)?,
        restart_after: v.u64("restart_after", d::RESTART_AFTER)?,
        max_backlog: v.u64("max_backlog", d::MAX_BACKLOG)?,
    })
}

fn copy_method_config(ctx: &Ctx, s: &RawSection) -> Result<CopyMethodConfig, ConfigError> {
    let name = s.name.clone().unwrap_or_default();
    let v = View {
        ctx,
        prefix: format!("copy_method->{name}->"),
        vars: &s.vars,
    };
    let all = [Agent, Monitor, Control, Tools];
    let backup_command = v.string("backup_command", &all)?;
    let restore_command = v.string("restore_command", &all)?;
    v.dep_required("incremental_command", "incremental", "1", true, true)?;
    let incremental_command = v.string("incremental_command", &[])?;
    Ok(CopyMethodConfig {
        name,
        backup_command,
        restore_command,
        incremental_command,
        incremental: v.boolean("incremental", d::COPY_FLAG)?,
        single_run: v.boolean("single_run", d::COPY_FLAG)?,
        true_copy: v.boolean("true_copy", d::COPY_FLAG)?,
        stream: v.boolean("stream", d::COPY_FLAG)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_seconds("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_seconds(".5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_seconds("10."), Some(Duration::from_secs(10)));
        for bad in [
            "",
            ".",
            "-1",
            "1e3",
            "5s",
            " 5",
            "1.2.3",
            "inf",
            "NaN",
            "99999999999",
        ] {
            assert_eq!(parse_seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn lists() {
        assert_eq!(
            split_list("a, b ,c"),
            (vec!["a".into(), "b".into(), "c".into()], false)
        );
        assert_eq!(split_list("a,b,, ,"), (vec!["a".into(), "b".into()], false));
        assert!(split_list("a, ,b").1);
        assert_eq!(split_list(""), (vec![], false));
    }

    #[test]
    fn booleans() {
        for t in ["1", "yes", "ON", "True"] {
            assert_eq!(parse_bool(t), Some(true));
        }
        for f in ["0", "no", "Off", "FALSE"] {
            assert_eq!(parse_bool(f), Some(false));
        }
        assert_eq!(parse_bool("1 # x"), None);
    }
}
