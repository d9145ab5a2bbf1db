//! `_mmm/status.txt` and `_mmm/copy_method.txt` of a backup (spec §6): the replication
//! coordinates recorded when the copy was taken, as the Perl `Data::Dumper` text 2.2.1
//! writes (`$VAR1 = { 'host' => 'db1', 'master' => { 'File' => …, 'Position' => … },
//! 'slave' => { … } };`). The reader takes 2.2.1's files and ours; the hot-backup back-end
//! adds `Gtid_Binlog_Pos` to `master` (the GTID position of the copy).

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{io_err, Result, ToolsError};

/// The sub-directory with the tools' files.
pub const MMM_DIR: &str = "_mmm";

/// The key of the hot backup's GTID position in `master`.
pub const GTID_KEY: &str = "Gtid_Binlog_Pos";

/// What `_mmm/` says about a copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// The source host.
    pub host: String,
    /// SHOW MASTER STATUS at the copy (`File`, `Position`, [`GTID_KEY`]).
    pub master: BTreeMap<String, String>,
    /// SHOW SLAVE STATUS at the copy (empty when the source was no slave).
    pub slave: BTreeMap<String, String>,
    /// `copy_method.txt` (not part of `status.txt`).
    pub copy_method: String,
    /// mmm-rs: `'backup_method' => 'mariadb-backup'` for a hot backup (absent in 2.2.1's).
    pub backup_method: Option<String>,
}

impl Status {
    /// The GTID position of the copy, when recorded and not empty.
    pub fn gtid(&self) -> Option<&str> {
        self.master
            .get(GTID_KEY)
            .map(String::as_str)
            .filter(|g| !g.is_empty())
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn dump_hash(out: &mut String, key: &str, map: &BTreeMap<String, String>) {
    if map.is_empty() {
        out.push_str(&format!("          {} => {{}},\n", quote(key)));
        return;
    }
    out.push_str(&format!("          {} => {{\n", quote(key)));
    for (k, v) in map {
        out.push_str(&format!("            {} => {},\n", quote(k), quote(v)));
    }
    out.push_str("          },\n");
}

/// `status` as `Data::Dumper` text.
pub fn dump(status: &Status) -> String {
    let mut out = String::from("$VAR1 = {\n");
    out.push_str(&format!("          'host' => {},\n", quote(&status.host)));
    if let Some(m) = &status.backup_method {
        out.push_str(&format!("          'backup_method' => {},\n", quote(m)));
    }
    dump_hash(&mut out, "master", &status.master);
    dump_hash(&mut out, "slave", &status.slave);
    out.push_str("        };\n");
    out
}

#[derive(Debug, PartialEq)]
enum Tok {
    Str(String),
    Open,
    Close,
    Undef,
}

fn tokens(text: &str) -> std::result::Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\'' | '"' => {
                let mut s = String::new();
                loop {
                    match it.next() {
                        Some('\\') => {
                            if let Some(n) = it.next() {
                                s.push(n);
                            }
                        }
                        Some(q) if q == c => break,
                        Some(ch) => s.push(ch),
                        None => return Err("unterminated string".into()),
                    }
                }
                out.push(Tok::Str(s));
            }
            '{' => out.push(Tok::Open),
            '}' => out.push(Tok::Close),
            c if c.is_ascii_digit() || c == '-' => {
                let mut s = String::from(c);
                while let Some(&d) = it.peek() {
                    if d.is_ascii_alphanumeric() || d == '.' || d == '-' {
                        s.push(d);
                        it.next();
                    } else {
                        break;
                    }
                }
                out.push(Tok::Str(s));
            }
            'u' => {
                let rest: String = it.by_ref().take(4).collect();
                if rest != "ndef" {
                    return Err(format!("unexpected 'u{rest}'"));
                }
                out.push(Tok::Undef);
            }
            '$' => {
                // `$VAR1`: the name, skipped.
                while it.peek().is_some_and(|d| d.is_ascii_alphanumeric()) {
                    it.next();
                }
            }
            _ => {} // `=`, `>`, `,`, `;`, whitespace
        }
    }
    Ok(out)
}

/// One `{ 'k' => v, … }` of strings (nested hashes flattened away) starting after `Open`.
fn flat_hash(
    toks: &mut std::iter::Peekable<std::vec::IntoIter<Tok>>,
) -> std::result::Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    loop {
        match toks.next() {
            Some(Tok::Close) => return Ok(map),
            Some(Tok::Str(k)) => match toks.next() {
                Some(Tok::Str(v)) => {
                    map.insert(k, v);
                }
                Some(Tok::Undef) => {}
                Some(Tok::Open) => {
                    flat_hash(toks)?;
                }
                other => return Err(format!("bad value for '{k}': {other:?}")),
            },
            other => return Err(format!("expected a key, found {other:?}")),
        }
    }
}

/// Parses `status.txt` text (2.2.1's or ours).
pub fn parse(text: &str) -> std::result::Result<Status, String> {
    let mut toks = tokens(text)?.into_iter().peekable();
    if toks.next() != Some(Tok::Open) {
        return Err("no hash".into());
    }
    let mut status = Status::default();
    loop {
        match toks.next() {
            Some(Tok::Close) | None => break,
            Some(Tok::Str(k)) => match (k.as_str(), toks.next()) {
                ("host", Some(Tok::Str(v))) => status.host = v,
                ("backup_method", Some(Tok::Str(v))) => status.backup_method = Some(v),
                ("master", Some(Tok::Open)) => status.master = flat_hash(&mut toks)?,
                ("slave", Some(Tok::Open)) => status.slave = flat_hash(&mut toks)?,
                (_, Some(Tok::Open)) => {
                    flat_hash(&mut toks)?;
                }
                (_, Some(Tok::Str(_)) | Some(Tok::Undef)) => {}
                (k, other) => return Err(format!("bad value for '{k}': {other:?}")),
            },
            Some(other) => return Err(format!("expected a key, found {other:?}")),
        }
    }
    Ok(status)
}

/// Writes `<dir>/_mmm/status.txt`.
pub fn save_status(dir: &Path, status: &Status) -> Result<()> {
    let mmm = dir.join(MMM_DIR);
    std::fs::create_dir_all(&mmm).map_err(io_err(format!("creating {}", mmm.display())))?;
    let file = mmm.join("status.txt");
    std::fs::write(&file, dump(status)).map_err(io_err(format!("writing {}", file.display())))
}

/// 2.2.1's `save_copy_method`: writes `<dir>/_mmm/copy_method.txt`.
pub fn save_copy_method(dir: &Path, method: &str) -> Result<()> {
    let mmm = dir.join(MMM_DIR);
    if !mmm.is_dir() {
        return Err(ToolsError::Failed("Directory _mmm doesn't exist!".into()));
    }
    std::fs::write(mmm.join("copy_method.txt"), method)
        .map_err(|_| ToolsError::Failed("I/O Error while saving copy method!".into()))?;
    tracing::debug!("Saved copy method");
    Ok(())
}

/// 2.2.1's `load_status`: `<dir>/_mmm/status.txt` and `copy_method.txt`.
pub fn load_status(dir: &Path) -> Result<Status> {
    tracing::debug!("Loading status info...");
    let file = dir.join(MMM_DIR).join("status.txt");
    let text = std::fs::read_to_string(&file).map_err(|_| {
        ToolsError::Failed(format!(
            "Status file '{}' doesn't exist or isn't readable!",
            file.display()
        ))
    })?;
    let mut status =
        parse(&text).map_err(|e| ToolsError::Failed(format!("Can't parse status info: {e}")))?;
    let method = dir.join(MMM_DIR).join("copy_method.txt");
    status.copy_method = std::fs::read_to_string(&method)
        .unwrap_or_default()
        .trim_end()
        .to_string();
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_2_2_1_text() {
        let text = "$VAR1 = {\n          'host' => 'db1',\n          'master' => {\n                        'Binlog_Do_DB' => '',\n                        'File' => 'mysql-bin.000012',\n                        'Position' => '98',\n                        'Binlog_Ignore_DB' => undef\n                      },\n          'slave' => {}\n        };\n";
        let s = parse(text).expect("parses");
        assert_eq!(s.host, "db1");
        assert_eq!(s.master["File"], "mysql-bin.000012");
        assert_eq!(s.master["Position"], "98");
        assert!(!s.master.contains_key("Binlog_Ignore_DB"));
        assert!(s.slave.is_empty());
    }

    #[test]
    fn round_trip() {
        let mut s = Status {
            host: "db'2".into(),
            backup_method: Some("mariadb-backup".into()),
            ..Status::default()
        };
        s.master.insert("File".into(), "mysql_bin.000003".into());
        s.master.insert(GTID_KEY.into(), "0-1-55,1-2-3".into());
        s.slave.insert("Master_Host".into(), "198.18.1.2".into());
        let back = parse(&dump(&s)).expect("parses");
        assert_eq!(back, s);
        assert_eq!(back.gtid(), Some("0-1-55,1-2-3"));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse("").is_err());
        assert!(parse("$VAR1 = { 'host' => ").is_ok() || parse("{ 'a' =>").is_err());
        assert!(parse("{ 'master' => { 'File' ").is_err());
    }
}
