//! Role instances `name(ip)` and role lists as MMM writes them (spec §3.9, §4.2, §3.12).
//!
//! A role list on the wire and in the status file is the `name(ip)` tokens sorted as plain
//! strings and joined by `,` without spaces; `mmm_control show` joins them by `, `.
//! Parsing drops tokens that are not `name(ip)`, as 2.2.1 does.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// One role instance: a role name and one of its IPs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RoleIp {
    /// Role name, e.g. `writer`.
    pub role: String,
    /// The virtual IP, as written in the config, e.g. `192.168.0.50`.
    pub ip: String,
}

impl RoleIp {
    /// Builds a role instance.
    pub fn new(role: impl Into<String>, ip: impl Into<String>) -> Self {
        RoleIp {
            role: role.into(),
            ip: ip.into(),
        }
    }
}

impl fmt::Display for RoleIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.role, self.ip)
    }
}

/// A token that is not `name(ip)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid role '{0}'")]
pub struct InvalidRole(pub String);

impl FromStr for RoleIp {
    type Err = InvalidRole;
    /// `name(ip)`: name of word chars or `-`, ip non-empty without parentheses.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidRole(s.to_string());
        let open = s.find('(').ok_or_else(bad)?;
        let rest = s.get(open + 1..).ok_or_else(bad)?;
        let ip = rest.strip_suffix(')').ok_or_else(bad)?;
        let role = &s[..open];
        let name_ok = !role.is_empty()
            && role
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let ip_ok = !ip.is_empty()
            && !ip.contains(['(', ')', ',', '|'])
            && !ip.contains(char::is_whitespace);
        if !name_ok || !ip_ok {
            return Err(bad());
        }
        Ok(RoleIp::new(role, ip))
    }
}

impl Ord for RoleIp {
    /// Plain string order of `name(ip)`, as 2.2.1 sorts role lists.
    fn cmp(&self, other: &Self) -> Ordering {
        self.to_string().cmp(&other.to_string())
    }
}

impl PartialOrd for RoleIp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Parses a comma-joined role list, dropping invalid and empty tokens; the result is sorted
/// and without duplicates.
pub fn parse_role_list(s: &str) -> Vec<RoleIp> {
    let mut roles: Vec<RoleIp> = s.split(',').filter_map(|t| t.trim().parse().ok()).collect();
    roles.sort();
    roles.dedup();
    roles
}

/// Formats a role list for the wire and the status file: sorted, joined by `,`.
pub fn format_role_list(roles: &[RoleIp]) -> String {
    join_sorted(roles, ",")
}

/// Formats a role list for `mmm_control show`: sorted, joined by `, `.
pub fn format_role_list_show(roles: &[RoleIp]) -> String {
    join_sorted(roles, ", ")
}

fn join_sorted(roles: &[RoleIp], sep: &str) -> String {
    let mut v: Vec<String> = roles.iter().map(ToString::to_string).collect();
    v.sort();
    v.join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        let l = parse_role_list("writer(192.168.0.50),reader(192.168.0.51),bad,(x),y()");
        assert_eq!(
            format_role_list(&l),
            "reader(192.168.0.51),writer(192.168.0.50)"
        );
        assert_eq!(
            format_role_list_show(&l),
            "reader(192.168.0.51), writer(192.168.0.50)"
        );
        assert!(parse_role_list("").is_empty());
    }

    #[test]
    fn string_order() {
        let mut l = [
            RoleIp::new("reader", "10.0.0.10"),
            RoleIp::new("reader", "10.0.0.9"),
        ];
        l.sort();
        assert_eq!(l[0].ip, "10.0.0.10");
    }
}
