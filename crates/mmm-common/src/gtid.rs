//! Errant transactions (issue 13, the errant-transaction guard): what a returning master
//! executed that the active master never had, per server flavour.
//!
//! - MariaDB: both servers' `@@gtid_binlog_state` (the last sequence number per domain
//!   *and* server id) are compared here ([`mariadb_errant`]): for every (domain, server id)
//!   the candidate holds, sequence numbers above the active master's for the same pair are
//!   errant. Comparing per domain alone is not enough (finding 16 of docs/data-safety.md:
//!   the new writer's own `0-2-900` would "cover" the old master's `0-1-835`).
//! - MySQL: the server computes it: `GTID_SUBTRACT(candidate's @@gtid_executed, active's)`
//!   ([`Flavor::subtract_query`]); the result, a GTID set, is read by [`mysql_errant`].
//!
//! Pure functions over the servers' text; the monitor's `checks/gtid.rs` runs the queries.
//! Counts: for MariaDB the count is the width of the sequence-number ranges, exact when the
//! candidate was the only server writing that domain over the range (the writer of an MMM
//! cluster is); for MySQL it is exact.

use std::collections::BTreeMap;
use std::fmt;

/// The SQL dialect of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// MariaDB 10.0.2+ (GTIDs always in the binlog).
    MariaDb,
    /// MySQL 5.6+ (GTIDs only with `gtid_mode=ON`).
    MySql,
}

impl Flavor {
    /// From `SELECT VERSION()`.
    pub fn from_version(version: &str) -> Flavor {
        if version.to_ascii_lowercase().contains("mariadb") {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        }
    }

    /// The query that reads a server's executed GTIDs as one text column.
    pub fn executed_query(self) -> &'static str {
        match self {
            Flavor::MariaDb => "SELECT @@global.gtid_binlog_state",
            Flavor::MySql => "SELECT @@global.gtid_executed",
        }
    }

    /// MySQL: the query that computes `candidate − active` on a server (any server: the
    /// function is pure). `None` for MariaDB (compared here, [`mariadb_errant`]).
    pub fn subtract_query(self, candidate: &str, active: &str) -> Option<String> {
        match self {
            Flavor::MariaDb => None,
            Flavor::MySql => Some(format!(
                "SELECT GTID_SUBTRACT('{}', '{}')",
                sql_text(candidate),
                sql_text(active)
            )),
        }
    }
}

/// A GTID set read from a server, kept to what a GTID set may contain (hex digits, `-`,
/// `:`, `,`, whitespace): anything else is dropped, so the text can sit in a quoted literal.
fn sql_text(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_hexdigit() || matches!(c, '-' | ':' | ',' | ' ' | '\n'))
        .collect()
}

/// Why two servers' GTIDs cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GtidError {
    /// A GTID list that does not parse.
    #[error("cannot parse the GTID list '{0}'")]
    Malformed(String),
}

/// One run of errant transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrantRange {
    /// MariaDB `domain-server` or MySQL source UUID.
    pub origin: String,
    /// First sequence number (MariaDB) or transaction number (MySQL).
    pub first: u64,
    /// Last, inclusive.
    pub last: u64,
    /// MariaDB (`0-1-5..0-1-9`) or MySQL (`uuid:5-9`) notation.
    pub flavor: Flavor,
}

impl ErrantRange {
    /// How many transactions the range spans.
    pub fn count(&self) -> u64 {
        self.last.saturating_sub(self.first) + 1
    }
}

impl fmt::Display for ErrantRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (o, a, b) = (&self.origin, self.first, self.last);
        match (self.flavor, a == b) {
            (Flavor::MariaDb, true) => write!(f, "{o}-{a}"),
            (Flavor::MariaDb, false) => write!(f, "{o}-{a}..{o}-{b}"),
            (Flavor::MySql, true) => write!(f, "{o}:{a}"),
            (Flavor::MySql, false) => write!(f, "{o}:{a}-{b}"),
        }
    }
}

/// The errant transactions of one server (empty: none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrantSet {
    /// The runs, in (origin, first) order.
    pub ranges: Vec<ErrantRange>,
}

impl ErrantSet {
    /// No errant transaction.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many transactions (see the module doc for MariaDB).
    pub fn count(&self) -> u64 {
        self.ranges.iter().map(ErrantRange::count).sum()
    }
}

impl fmt::Display for ErrantSet {
    /// The ranges, comma-separated (`0-1-150..0-1-201,1-1-7`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// Parses a MariaDB GTID list (`gtid_binlog_state`: `domain-server-seq`, comma-separated)
/// into the highest sequence number per (domain, server id).
pub fn parse_mariadb_state(s: &str) -> Result<BTreeMap<(u32, u32), u64>, GtidError> {
    let mut out = BTreeMap::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let bad = || GtidError::Malformed(s.to_string());
        let mut it = item.split('-');
        let (Some(d), Some(srv), Some(seq), None) = (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(bad());
        };
        let key = (
            d.parse::<u32>().map_err(|_| bad())?,
            srv.parse::<u32>().map_err(|_| bad())?,
        );
        let seq = seq.parse::<u64>().map_err(|_| bad())?;
        let e = out.entry(key).or_insert(seq);
        *e = (*e).max(seq);
    }
    Ok(out)
}

/// MariaDB: the transactions in `candidate`'s `gtid_binlog_state` that `active`'s lacks,
/// per (domain, server id) (module doc).
pub fn mariadb_errant(candidate: &str, active: &str) -> Result<ErrantSet, GtidError> {
    let c = parse_mariadb_state(candidate)?;
    let a = parse_mariadb_state(active)?;
    let ranges = c
        .iter()
        .filter_map(|(&(d, s), &seq)| {
            let have = a.get(&(d, s)).copied().unwrap_or(0);
            (seq > have).then(|| ErrantRange {
                origin: format!("{d}-{s}"),
                first: have + 1,
                last: seq,
                flavor: Flavor::MariaDb,
            })
        })
        .collect();
    Ok(ErrantSet { ranges })
}

/// MySQL: reads a GTID set (`uuid:1-5:7,uuid2:3`, as `GTID_SUBTRACT` returns it) as errant
/// ranges. Tags (`uuid:tag:1-5`, 8.3+) are kept in the origin.
pub fn mysql_errant(set: &str) -> Result<ErrantSet, GtidError> {
    let bad = || GtidError::Malformed(set.to_string());
    let mut ranges = Vec::new();
    for item in set
        .split(',')
        .map(|i| i.trim().trim_matches('\n').trim())
        .filter(|i| !i.is_empty())
    {
        let mut parts = item.split(':');
        let mut origin = parts.next().ok_or_else(bad)?.to_ascii_lowercase();
        if origin.is_empty() {
            return Err(bad());
        }
        let mut any = false;
        for p in parts {
            let p = p.trim();
            let nums = match p.split_once('-') {
                Some((a, b)) => a.parse::<u64>().ok().zip(b.parse::<u64>().ok()),
                None => p.parse::<u64>().ok().map(|n| (n, n)),
            };
            match nums {
                Some((first, last)) if first >= 1 && last >= first => {
                    any = true;
                    ranges.push(ErrantRange {
                        origin: origin.clone(),
                        first,
                        last,
                        flavor: Flavor::MySql,
                    });
                }
                Some(_) => return Err(bad()),
                // A tag: it names the following intervals.
                None if !p.is_empty() && !any => origin = format!("{origin}:{p}"),
                None => return Err(bad()),
            }
        }
        if !any {
            return Err(bad());
        }
    }
    Ok(ErrantSet { ranges })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing errant when the candidate's every (domain, server) is covered, including
    /// when the active master is ahead or has other servers' transactions.
    #[test]
    fn mariadb_covered() {
        let e = mariadb_errant("0-1-100,0-2-50", "0-1-100,0-2-80,0-3-7").unwrap();
        assert!(e.is_empty());
        assert_eq!(e.count(), 0);
        assert!(mariadb_errant("", "0-1-5").unwrap().is_empty());
        assert!(mariadb_errant("", "").unwrap().is_empty());
    }

    /// The crash failover of issue 13: db1 (server 1) committed 150..201 that db2 never got;
    /// db2 then wrote its own 0-2-150.. (the domain's numbers go on), which must not hide
    /// db1's (finding 16: per-domain comparison would).
    #[test]
    fn mariadb_errant_per_domain_and_server() {
        let e = mariadb_errant("0-1-201,0-2-40", "0-1-149,0-2-900").unwrap();
        assert_eq!(e.count(), 52);
        assert_eq!(e.to_string(), "0-1-150..0-1-201");
        // A pair the active master never saw at all, and a single transaction.
        let e = mariadb_errant("0-1-10, 1-1-3 ,0-2-5", "0-2-5,0-1-9").unwrap();
        assert_eq!(e.to_string(), "0-1-10,1-1-1..1-1-3");
        assert_eq!(e.count(), 4);
    }

    #[test]
    fn mariadb_malformed() {
        for bad in ["0-1", "0-1-x", "a-1-2", "0-1-2-3", "0-1-2,junk"] {
            assert!(mariadb_errant(bad, "").is_err(), "{bad}");
            assert!(mariadb_errant("", bad).is_err(), "{bad}");
        }
    }

    /// MySQL: GTID_SUBTRACT's result read as ranges (intervals, single numbers, several
    /// sources, line breaks as the server prints them, tags).
    #[test]
    fn mysql_sets() {
        let u1 = "3E11FA47-71CA-11E1-9E33-C80AA9429562";
        let u2 = "4e11fa47-71ca-11e1-9e33-c80aa9429562";
        let e = mysql_errant(&format!("{u1}:23-27:30,\n{u2}:5")).unwrap();
        assert_eq!(e.count(), 7);
        assert_eq!(
            e.to_string(),
            format!(
                "{}:23-27,{}:30,{u2}:5",
                u1.to_lowercase(),
                u1.to_lowercase()
            )
        );
        assert!(mysql_errant("").unwrap().is_empty());
        let e = mysql_errant(&format!("{u2}:blue:1-2")).unwrap();
        assert_eq!(e.to_string(), format!("{u2}:blue:1-2"));
        for bad in [":1-2", "x", "x:0", "x:5-3", "x:1-2:"] {
            assert!(mysql_errant(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flavor_queries() {
        assert_eq!(
            Flavor::from_version("10.11.6-MariaDB-0+deb12u1"),
            Flavor::MariaDb
        );
        assert_eq!(Flavor::from_version("8.0.36"), Flavor::MySql);
        assert_eq!(Flavor::MariaDb.subtract_query("a", "b"), None);
        assert_eq!(
            Flavor::MySql
                .subtract_query("ab:1-5", "ab:1-3'; DROP")
                .as_deref(),
            Some("SELECT GTID_SUBTRACT('ab:1-5', 'ab:1-3 D')")
        );
        assert_eq!(
            Flavor::MySql.executed_query(),
            "SELECT @@global.gtid_executed"
        );
    }
}
