//! The monitor's status file (spec §3.12): one line per host,
//! `<host>|<STATE>|<role(ip)>,<role(ip)>…`, roles sorted, newline-terminated.
//!
//! `render` and `parse` are pure; `write_atomic` writes a temp file named `<basename>` + 10
//! random characters in the same directory, fsyncs it and renames it over the target, as
//! 2.2.1 does, so a crash never leaves a half-written file. `read` loads a file written by
//! us or by 2.2.1 (an empty or missing third field is accepted). Deciding what to do with
//! unknown hosts (a WARN) is the driver's job.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use mmm_common::role::{format_role_list, parse_role_list};
use mmm_common::state::HostState;
use rand::distributions::Alphanumeric;
use rand::Rng;

use crate::core::StatusLine;

/// A line of a status file that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// The text of the line.
    pub text: String,
}

/// Renders the file contents (hosts in the order given, i.e. config order).
pub fn render(entries: &[StatusLine]) -> String {
    let mut out = String::new();
    for e in entries {
        out.push_str(&e.host);
        out.push('|');
        out.push_str(e.state.as_str());
        out.push('|');
        out.push_str(&format_role_list(&e.roles));
        out.push('\n');
    }
    out
}

/// Parses file contents. Blank lines are skipped; a line without a host or with an unknown
/// state is returned in the second list; unparsable role tokens are dropped (2.2.1).
pub fn parse(text: &str) -> (Vec<StatusLine>, Vec<BadLine>) {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = line.splitn(3, '|');
        let host = fields.next().unwrap_or("");
        let state = fields.next().unwrap_or("");
        let roles = fields.next().unwrap_or("");
        match state.parse::<HostState>() {
            Ok(state) if !host.is_empty() => entries.push(StatusLine {
                host: host.to_string(),
                state,
                roles: parse_role_list(roles),
            }),
            _ => bad.push(BadLine {
                line: i + 1,
                text: line.to_string(),
            }),
        }
    }
    (entries, bad)
}

/// Reads and parses the status file at `path`.
pub fn read(path: &Path) -> io::Result<(Vec<StatusLine>, Vec<BadLine>)> {
    let text = fs::read_to_string(path)?;
    Ok(parse(&text))
}

/// Writes `contents` to `path` atomically: temp file in the same directory, flush, fsync,
/// rename over the target, fsync the directory. On error the temp file is removed.
pub fn write_atomic(path: &Path, contents: &str) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "status path has no file name")
    })?;
    let suffix: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(10)
        .map(char::from)
        .collect();
    let mut tmp_name = base.to_os_string();
    tmp_name.push(suffix);
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(contents.as_bytes())?;
        f.flush()?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(&dir) {
            // Best effort: make the rename itself durable.
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmm_common::role::RoleIp;

    fn entry(host: &str, state: HostState, roles: &str) -> StatusLine {
        StatusLine {
            host: host.into(),
            state,
            roles: parse_role_list(roles),
        }
    }

    /// §3.12 / transcripts §3: the file 2.2.1 wrote after the command session.
    const SAMPLE_221: &str = "db1|ONLINE|writer(198.18.2.188)\n\
db2|ONLINE|\n\
db3|ONLINE|reader(198.18.2.198)\n\
db4|ONLINE|reader(198.18.2.199)\n";

    #[test]
    fn round_trip_of_a_221_file() {
        let (entries, bad) = parse(SAMPLE_221);
        assert!(bad.is_empty());
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[1], entry("db2", HostState::Online, ""));
        assert_eq!(render(&entries), SAMPLE_221);
    }

    #[test]
    fn render_sorts_roles() {
        let e = vec![
            StatusLine {
                host: "db1".into(),
                state: HostState::Online,
                roles: vec![
                    RoleIp::new("writer", "192.168.0.50"),
                    RoleIp::new("reader", "192.168.0.51"),
                ],
            },
            entry("db2", HostState::AwaitingRecovery, ""),
        ];
        assert_eq!(
            render(&e),
            "db1|ONLINE|reader(192.168.0.51),writer(192.168.0.50)\ndb2|AWAITING_RECOVERY|\n"
        );
    }

    #[test]
    fn missing_third_field_and_junk() {
        let (entries, bad) =
            parse("db1|HARD_OFFLINE\n\ndb2|BOGUS|x\n|ONLINE|\ndb3|ONLINE|bad,reader(1.2.3.4)\r\n");
        assert_eq!(
            entries,
            vec![
                entry("db1", HostState::HardOffline, ""),
                entry("db3", HostState::Online, "reader(1.2.3.4)"),
            ]
        );
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].line, 3);
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mmm_mond.status");
        write_atomic(&path, "a|ONLINE|\n").unwrap();
        write_atomic(&path, SAMPLE_221).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), SAMPLE_221);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        let (e, _) = read(&path).unwrap();
        assert_eq!(e.len(), 4);
    }

    #[test]
    fn atomic_write_fails_in_missing_dir() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("status");
        assert!(write_atomic(&path, "x").is_err());
    }
}
