//! The rule set of MMM's configuration language (spec §2.4): which section types exist,
//! which directives each section (and the top level) accepts, which are lists, and the
//! "did you mean" hint for unknown directives. Defaults, required-ness and value checks live
//! in `validate.rs`, which reads the directives by these names.

/// A section type (spec §2.2 rules 4-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SectionKind {
    /// `<monitor>` (unique).
    Monitor,
    /// `<socket>` (unique).
    Socket,
    /// `<host NAME>`.
    Host,
    /// `<role NAME>`.
    Role,
    /// `<check NAME>`.
    Check,
    /// `<copy_method NAME>`.
    CopyMethod,
}

impl SectionKind {
    /// All section types.
    pub(crate) const ALL: [SectionKind; 6] = [
        SectionKind::Monitor,
        SectionKind::Socket,
        SectionKind::Host,
        SectionKind::Role,
        SectionKind::Check,
        SectionKind::CopyMethod,
    ];

    /// The type word.
    pub(crate) fn word(self) -> &'static str {
        match self {
            SectionKind::Monitor => "monitor",
            SectionKind::Socket => "socket",
            SectionKind::Host => "host",
            SectionKind::Role => "role",
            SectionKind::Check => "check",
            SectionKind::CopyMethod => "copy_method",
        }
    }

    /// The section type named `word`.
    pub(crate) fn from_word(word: &str) -> Option<SectionKind> {
        SectionKind::ALL.into_iter().find(|k| k.word() == word)
    }

    /// Named (multiple) sections take a name: `<host db1>`.
    pub(crate) fn is_named(self) -> bool {
        !matches!(self, SectionKind::Monitor | SectionKind::Socket)
    }

    /// Sections whose `default` instance is a template (spec §2.3).
    pub(crate) fn has_template(self) -> bool {
        matches!(
            self,
            SectionKind::Host | SectionKind::Check | SectionKind::CopyMethod
        )
    }

    /// The directives this section accepts.
    pub(crate) fn variables(self) -> &'static [&'static str] {
        match self {
            SectionKind::Monitor => MONITOR_VARS,
            SectionKind::Socket => SOCKET_VARS,
            SectionKind::Host => HOST_VARS,
            SectionKind::Role => ROLE_VARS,
            SectionKind::Check => CHECK_VARS,
            SectionKind::CopyMethod => COPY_METHOD_VARS,
        }
    }
}

/// Top-level directives of 2.2.1 (`include` is handled by the parser).
pub(crate) const TOP_VARS: &[&str] = &[
    "this",
    "debug",
    "active_master_role",
    "max_kill_retries",
    "default_copy_method",
    "clone_dirs",
];

/// Top-level directives mmm-rs adds (model `Extensions`).
pub(crate) const EXT_VARS: &[&str] = &[
    "arp_count",
    "arp_repeat",
    "arp_interval",
    "arp_refresh",
    "sync_timeout",
    "mysql_timeout",
    "agent_connect_timeout",
    "agent_read_timeout",
    "status_retry_interval",
    "agent_lease",
    "monitor_ips",
    "control_allow",
    "errant_transactions",
    "semi_sync",
    "semi_sync_timeout",
    "notify_bin",
    "pre_failover_bin",
    "post_failover_bin",
    "hook_timeout",
    "pre_failover_retry",
];

pub(crate) const MONITOR_VARS: &[&str] = &[
    "ip",
    "port",
    "pid_path",
    "bin_path",
    "status_path",
    "ping_interval",
    "ping_ips",
    "flap_duration",
    "flap_count",
    "auto_set_online",
    "kill_host_bin",
    "careful_startup",
    "mode",
    "wait_for_other_master",
    "http_listen",
    "http_tls",
    "audit_log",
    "etcd_endpoints",
    "etcd_prefix",
    "leader_lease",
];

pub(crate) const SOCKET_VARS: &[&str] = &["type", "cert_file", "key_file", "ca_file"];

/// Host directives of the LVM tools (kept as name/value pairs), with their defaults.
pub(crate) const HOST_TOOLS_VARS: &[(&str, Option<&str>)] = &[
    ("ssh_user", None),
    ("ssh_port", Some("22")),
    ("ssh_parameters", Some("")),
    ("tools_user", None),
    ("tools_password", None),
    ("backup_dir", None),
    ("restore_dir", None),
    ("lvm_bin_lvcreate", Some("lvcreate")),
    ("lvm_bin_lvremove", Some("lvremove")),
    ("lvm_snapshot_size", None),
    ("lvm_logical_volume", None),
    ("lvm_volume_group", None),
    ("lvm_mount_dir", None),
    ("lvm_mount_opts", None),
];

/// Tools host directives required for TOOLS (all those without a default). The `lvm_*`
/// ones only for a host whose snapshot back-end is LVM ([`is_lvm_var`]).
pub(crate) fn host_tools_required(var: &str) -> bool {
    HOST_TOOLS_VARS
        .iter()
        .any(|(name, default)| *name == var && default.is_none())
}

/// The LVM snapshot settings: a host with none of them (and no `backup_method`) uses the
/// hot-backup back-end (mmm-rs `backup_method mariadb-backup`).
pub(crate) const LVM_SETTINGS: &[&str] = &[
    "lvm_snapshot_size",
    "lvm_logical_volume",
    "lvm_volume_group",
    "lvm_mount_dir",
    "lvm_mount_opts",
];

/// Whether `var` is one of [`LVM_SETTINGS`].
pub(crate) fn is_lvm_var(var: &str) -> bool {
    LVM_SETTINGS.contains(&var)
}

/// The values of the mmm-rs host directive `backup_method`.
pub(crate) const BACKUP_METHODS: &[&str] = &["lvm", "mariadb-backup"];

pub(crate) const HOST_VARS: &[&str] = &[
    "ip",
    "mode",
    "peer",
    "pid_path",
    "bin_path",
    "agent_port",
    "cluster_interface",
    "mysql_port",
    "mysql_ssl_mode",
    "mysql_ssl_ca",
    "mysql_ssl_cert",
    "mysql_ssl_key",
    "mysql_pidfile",
    "mysql_rcscript",
    "mysql_cnf",
    "agent_user",
    "agent_password",
    "monitor_user",
    "monitor_password",
    "replication_user",
    "replication_password",
    "ssh_user",
    "ssh_port",
    "ssh_parameters",
    "tools_user",
    "tools_password",
    "backup_dir",
    "restore_dir",
    "lvm_bin_lvcreate",
    "lvm_bin_lvremove",
    "lvm_snapshot_size",
    "lvm_logical_volume",
    "lvm_volume_group",
    "lvm_mount_dir",
    "lvm_mount_opts",
    "backup_method",
];

pub(crate) const ROLE_VARS: &[&str] = &["mode", "hosts", "ips", "prefer"];

pub(crate) const CHECK_VARS: &[&str] = &[
    "check_period",
    "trap_period",
    "timeout",
    "restart_after",
    "max_backlog",
];

/// The check names (`default` is the template).
pub(crate) const CHECK_NAMES: &[&str] = &["ping", "mysql", "rep_backlog", "rep_threads"];

pub(crate) const COPY_METHOD_VARS: &[&str] = &[
    "backup_command",
    "restore_command",
    "incremental_command",
    "incremental",
    "single_run",
    "true_copy",
    "stream",
];

/// The directives accepted where `section` is open (`None`: top level).
pub(crate) fn is_known(section: Option<SectionKind>, var: &str) -> bool {
    match section {
        None => TOP_VARS.contains(&var) || EXT_VARS.contains(&var),
        Some(kind) => kind.variables().contains(&var),
    }
}

/// The directives accepted where `section` is open, in table order.
pub(crate) fn known_variables(section: Option<SectionKind>) -> Vec<&'static str> {
    match section {
        None => TOP_VARS.iter().chain(EXT_VARS).copied().collect(),
        Some(kind) => kind.variables().to_vec(),
    }
}

/// Where the line is, for messages: `top level` or `<host ...>`.
pub(crate) fn context_word(section: Option<SectionKind>) -> String {
    match section {
        None => "the top level".to_string(),
        Some(kind) if kind.is_named() => format!("<{} NAME> sections", kind.word()),
        Some(kind) => format!("the <{}> section", kind.word()),
    }
}

/// Levenshtein distance (bytes; directive names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let a = a.as_bytes();
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The hint for an unknown directive `var` where `section` is open: a close name in the same
/// place ("Did you mean `monitor_user`?"), or the place where the directive belongs.
pub(crate) fn unknown_variable_hint(section: Option<SectionKind>, var: &str) -> Option<String> {
    let here = known_variables(section);
    let limit = (var.len() / 3).clamp(1, 3);
    let best = here
        .iter()
        .map(|cand| (edit_distance(var, cand), *cand))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d);
    if let Some((_, cand)) = best {
        return Some(format!("Did you mean `{cand}`?"));
    }
    if var == "include" {
        return Some("include is only allowed at top level".to_string());
    }
    if section.is_some() && (TOP_VARS.contains(&var) || EXT_VARS.contains(&var)) {
        return Some(format!(
            "`{var}` is a top-level directive; write it outside any section"
        ));
    }
    let owners: Vec<String> = SectionKind::ALL
        .into_iter()
        .filter(|k| Some(*k) != section && k.variables().contains(&var))
        .map(|k| {
            if k.is_named() {
                format!("<{} NAME>", k.word())
            } else {
                format!("<{}>", k.word())
            }
        })
        .collect();
    if !owners.is_empty() {
        return Some(format!(
            "`{var}` is a directive of {}, not of {}",
            owners.join(" or "),
            context_word(section)
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("moniter_user", "monitor_user"), 1);
    }

    #[test]
    fn hints() {
        assert_eq!(
            unknown_variable_hint(Some(SectionKind::Host), "moniter_user").as_deref(),
            Some("Did you mean `monitor_user`?")
        );
        assert_eq!(
            unknown_variable_hint(Some(SectionKind::Monitor), "auto_set_onlin").as_deref(),
            Some("Did you mean `auto_set_online`?")
        );
        assert_eq!(
            unknown_variable_hint(None, "monitor_user").as_deref(),
            Some("`monitor_user` is a directive of <host NAME>, not of the top level")
        );
        assert_eq!(unknown_variable_hint(None, "zzzzzzzz"), None);
    }
}
