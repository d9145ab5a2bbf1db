//! The line syntax of MMM's configuration language (spec §2.1, §2.2): finding files in the
//! config directories, the permission check, comments (whole-line and mmm-rs's inline rule),
//! end tags, `include`, unique/named/empty sections, re-opened sections that merge, and
//! `name value` variables. The result is a [`RawConfig`]: every value still a string, with
//! the file and line it came from, for `validate.rs` to type and check.
//!
//! Inline comment rule (mmm-rs; 2.2.1 has none): a `#` that follows whitespace starts a
//! comment running to the end of the line; a `#` inside a token (`pass#word`) is data.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{ConfigError, ConfigErrorKind as K};
use super::rules::{self, SectionKind};

/// Where a value or section came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Loc {
    /// The file (full path, or the label given to `parse_str`).
    pub(crate) file: Arc<str>,
    /// 1-based line number.
    pub(crate) line: usize,
}

/// One assigned value, as written (trailing whitespace and inline comment removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawValue {
    pub(crate) text: String,
    pub(crate) loc: Loc,
}

/// `name value` pairs in first-assignment order; a later assignment replaces the value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Vars(pub(crate) Vec<(String, RawValue)>);

impl Vars {
    pub(crate) fn get(&self, name: &str) -> Option<&RawValue> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
    pub(crate) fn set(&mut self, name: &str, value: RawValue) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.0.push((name.to_string(), value)),
        }
    }
}

/// One section (all its openings merged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawSection {
    pub(crate) kind: SectionKind,
    /// `None` for unique sections.
    pub(crate) name: Option<String>,
    /// Where it was first opened (`None`: created by validation, e.g. a check).
    pub(crate) loc: Option<Loc>,
    pub(crate) vars: Vars,
}

impl RawSection {
    /// `<host db1>` / `<monitor>`.
    pub(crate) fn tag(&self) -> String {
        match &self.name {
            Some(n) => format!("<{} {}>", self.kind.word(), n),
            None => format!("<{}>", self.kind.word()),
        }
    }
}

/// A parsed (not yet validated) configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawConfig {
    /// The file that was loaded (or the label).
    pub(crate) root: Arc<str>,
    /// Top-level variables.
    pub(crate) top: Vars,
    /// Sections in order of first opening.
    pub(crate) sections: Vec<RawSection>,
}

/// Appends `.conf` unless present (spec §2.1).
pub(crate) fn conf_file_name(name: &str) -> String {
    if name.ends_with(".conf") {
        name.to_string()
    } else {
        format!("{name}.conf")
    }
}

/// The first directory of `dirs` holding a readable regular file `file`.
pub(crate) fn find_in_dirs(dirs: &[PathBuf], file: &str) -> Option<PathBuf> {
    dirs.iter()
        .map(|d| d.join(file))
        .find(|p| p.is_file() && fs::File::open(p).is_ok())
}

/// Reads a config file after MMM's permission check (spec §2.1).
pub(crate) fn read_checked(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let shown = path.display().to_string();
    let meta = fs::metadata(path).map_err(|e| {
        ConfigError::file(
            &shown,
            None,
            K::Io {
                reason: e.to_string(),
            },
        )
    })?;
    let mode = meta.permissions().mode();
    if mode & 0o002 != 0 {
        return Err(ConfigError::file(&shown, None, K::WorldWritable));
    }
    if mode & 0o004 != 0 {
        return Err(ConfigError::file(&shown, None, K::WorldReadable));
    }
    fs::read(path).map_err(|e| {
        ConfigError::file(
            &shown,
            None,
            K::Io {
                reason: e.to_string(),
            },
        )
    })
}

/// The not-found error for `file` (already with `.conf`).
pub(crate) fn not_found(dirs: &[PathBuf], file: &str) -> ConfigError {
    ConfigError::file(
        file,
        None,
        K::NotFound {
            name: file.to_string(),
            dirs: dirs.iter().map(|d| d.display().to_string()).collect(),
        },
    )
}

/// The parser: accumulates into one [`RawConfig`] across includes.
pub(crate) struct Parser<'a> {
    dirs: &'a [PathBuf],
    raw: RawConfig,
    /// Files being read (include loop detection).
    stack: Vec<String>,
}

/// Perl's `\w`, ASCII only.
fn is_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A section name: `[\w-]+`.
fn is_section_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Removes an inline comment (`#` after whitespace). Returns the line and whether a comment
/// was removed.
fn strip_inline_comment(line: &str) -> (&str, bool) {
    let mut prev_ws = false;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_ws {
            return (line.get(..i).unwrap_or(line), true);
        }
        prev_ws = c.is_whitespace();
    }
    (line, false)
}

/// A parsed section tag.
enum Tag<'l> {
    /// `</x>`.
    End(&'l str),
    /// `<type>`, `<type/>`, `<type name>`, `<type name/>`.
    Start {
        kind: &'l str,
        name: Option<&'l str>,
        empty: bool,
    },
    /// Looks like a tag but is malformed.
    Bad,
}

/// Recognises a tag line (already trimmed).
fn parse_tag(t: &str) -> Option<Tag<'_>> {
    let inner = t.strip_prefix('<')?.strip_suffix('>')?;
    if let Some(rest) = inner.strip_prefix('/') {
        let word = rest.trim();
        return Some(if is_word(word) {
            Tag::End(word)
        } else {
            Tag::Bad
        });
    }
    let (body, empty) = match inner.strip_suffix('/') {
        Some(b) => (b, true),
        None => (inner, false),
    };
    let mut words = body.split_whitespace();
    let kind = words.next();
    let name = words.next();
    let extra = words.next();
    match (kind, name, extra) {
        (Some(k), None, None) if is_word(k) => Some(Tag::Start {
            kind: k,
            name: None,
            empty,
        }),
        (Some(k), Some(n), None) if is_word(k) && is_section_name(n) => Some(Tag::Start {
            kind: k,
            name: Some(n),
            empty,
        }),
        _ => Some(Tag::Bad),
    }
}

impl<'a> Parser<'a> {
    pub(crate) fn new(dirs: &'a [PathBuf], root: &str) -> Self {
        Parser {
            dirs,
            raw: RawConfig {
                root: Arc::from(root),
                top: Vars::default(),
                sections: Vec::new(),
            },
            stack: Vec::new(),
        }
    }

    pub(crate) fn finish(self) -> RawConfig {
        self.raw
    }

    /// Parses one file's bytes; `label` names it in errors.
    pub(crate) fn parse_bytes(&mut self, bytes: &[u8], label: &str) -> Result<(), ConfigError> {
        if self.stack.iter().any(|f| f == label) {
            return Err(ConfigError::file(label, Some(label), K::IncludeLoop));
        }
        self.stack.push(label.to_string());
        let result = self.parse_lines(bytes, label);
        self.stack.pop();
        result
    }

    fn parse_lines(&mut self, bytes: &[u8], label: &str) -> Result<(), ConfigError> {
        let file: Arc<str> = Arc::from(label);
        // Index into `self.raw.sections` of the open section.
        let mut open: Option<usize> = None;
        // A UTF-8 byte order mark (some editors write one) is not part of the first line.
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        for (idx, raw_line) in bytes.split(|b| *b == b'\n').enumerate() {
            let n = idx + 1;
            let line = std::str::from_utf8(raw_line)
                .map_err(|_| ConfigError::at(label, n, None, K::NotUtf8))?;
            let trimmed_start = line.trim_start();
            // 1. whole-line comment / blank
            if trimmed_start.is_empty() || trimmed_start.starts_with('#') {
                continue;
            }
            let (code, had_comment) = strip_inline_comment(line);
            let t = code.trim();
            if t.is_empty() {
                continue;
            }
            let open_kind = open.and_then(|i| self.raw.sections.get(i)).map(|s| s.kind);
            let open_tag = open
                .and_then(|i| self.raw.sections.get(i))
                .map(RawSection::tag);
            let loc = Loc {
                file: file.clone(),
                line: n,
            };

            // 2. tags
            if let Some(tag) = parse_tag(t) {
                match tag {
                    Tag::End(word) => {
                        if open.is_none() {
                            return Err(ConfigError::at(
                                label,
                                n,
                                Some(word),
                                K::EndTagOutsideSection,
                            ));
                        }
                        open = None;
                    }
                    Tag::Bad => {
                        return Err(ConfigError::at(
                            label,
                            n,
                            Some(t),
                            K::InvalidSectionHeader {
                                text: t.to_string(),
                            },
                        ))
                    }
                    Tag::Start { kind, name, empty } => {
                        let Some(section_kind) =
                            SectionKind::from_word(kind).filter(|_| open.is_none())
                        else {
                            return Err(ConfigError::at(
                                label,
                                n,
                                Some(kind),
                                K::InvalidSection {
                                    section: kind.to_string(),
                                    inside: open_tag,
                                },
                            ));
                        };
                        match (section_kind.is_named(), name) {
                            (true, None) => {
                                return Err(ConfigError::at(
                                    label,
                                    n,
                                    Some(kind),
                                    K::NoSectionName {
                                        section: kind.to_string(),
                                    },
                                ))
                            }
                            (false, Some(_)) => {
                                return Err(ConfigError::at(
                                    label,
                                    n,
                                    Some(kind),
                                    K::SectionNameForUnique {
                                        section: kind.to_string(),
                                    },
                                ))
                            }
                            _ => {}
                        }
                        let i = self.section_index(section_kind, name, loc);
                        if !empty {
                            open = Some(i);
                        }
                    }
                }
                continue;
            }

            // 3. include
            let mut words = t.split_whitespace();
            let first = words.next().unwrap_or_default();
            if first == "include" {
                let target = words.next();
                let more = words.next();
                if let Some(tag) = open_tag {
                    return Err(ConfigError::at(
                        label,
                        n,
                        target,
                        K::IncludeInSection { section: tag },
                    ));
                }
                match (target, more) {
                    (Some(target), None) => self.include(target, label, n)?,
                    _ => return Err(ConfigError::at(label, n, Some("include"), K::IncludeSyntax)),
                }
                continue;
            }

            // 4. variable
            let value = t
                .get(first.len()..)
                .unwrap_or_default()
                .trim_start()
                .to_string();
            let separated = code
                .trim_start()
                .get(first.len()..)
                .is_some_and(|rest| rest.starts_with(char::is_whitespace));
            if !separated {
                // A bare word (2.2.1: `Invalid config line`).
                let hint = if rules::is_known(open_kind, first) {
                    Some(format!("`{first}` needs a value: {first} <value>"))
                } else {
                    rules::unknown_variable_hint(open_kind, first)
                };
                return Err(ConfigError::at(
                    label,
                    n,
                    Some(first),
                    K::InvalidLine { hint },
                ));
            }
            if open.is_none() && SectionKind::from_word(first).is_some() {
                return Err(ConfigError::at(
                    label,
                    n,
                    Some(first),
                    K::ShouldBeSection {
                        var: first.to_string(),
                    },
                ));
            }
            if !rules::is_known(open_kind, first) {
                return Err(ConfigError::at(
                    label,
                    n,
                    Some(first),
                    K::UnknownVariable {
                        var: first.to_string(),
                        context: rules::context_word(open_kind),
                        hint: rules::unknown_variable_hint(open_kind, first).or_else(|| {
                            Some(format!(
                                "It is not a directive of {}; expected one of: {}",
                                rules::context_word(open_kind),
                                rules::known_variables(open_kind).join(", ")
                            ))
                        }),
                    },
                ));
            }
            if had_comment && value.is_empty() {
                return Err(ConfigError::at(
                    label,
                    n,
                    Some(first),
                    K::EmptyAfterComment {
                        var: first.to_string(),
                    },
                ));
            }
            if had_comment {
                tracing::debug!(
                    file = label,
                    line = n,
                    directive = first,
                    "inline comment removed from the value of {first}"
                );
            }
            let raw_value = RawValue { text: value, loc };
            match open.and_then(|i| self.raw.sections.get_mut(i)) {
                Some(section) => section.vars.set(first, raw_value),
                None => self.raw.top.set(first, raw_value),
            }
        }
        Ok(())
    }

    /// The index of section (kind, name), creating it if new.
    fn section_index(&mut self, kind: SectionKind, name: Option<&str>, loc: Loc) -> usize {
        if let Some(i) = self
            .raw
            .sections
            .iter()
            .position(|s| s.kind == kind && s.name.as_deref() == name)
        {
            return i;
        }
        self.raw.sections.push(RawSection {
            kind,
            name: name.map(str::to_string),
            loc: Some(loc),
            vars: Vars::default(),
        });
        self.raw.sections.len() - 1
    }

    /// `include NAME` at top level: §2.1 resolution and permission check, then parse.
    fn include(&mut self, target: &str, label: &str, line: usize) -> Result<(), ConfigError> {
        if target.starts_with('/') {
            return Err(ConfigError::at(
                label,
                line,
                Some(target),
                K::IncludeAbsolute,
            ));
        }
        let file = conf_file_name(target);
        let Some(path) = find_in_dirs(self.dirs, &file) else {
            return Err(ConfigError::at(
                label,
                line,
                Some(target),
                K::NotFound {
                    name: file,
                    dirs: self.dirs.iter().map(|d| d.display().to_string()).collect(),
                },
            ));
        };
        let shown = path.display().to_string();
        if self.stack.contains(&shown) {
            return Err(ConfigError::at(label, line, Some(&shown), K::IncludeLoop));
        }
        let bytes = read_checked(&path)?;
        self.parse_bytes(&bytes, &shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RawConfig, ConfigError> {
        let mut p = Parser::new(&[], "t.conf");
        p.parse_bytes(text.as_bytes(), "t.conf")?;
        Ok(p.finish())
    }

    #[test]
    fn inline_comment_rule() {
        assert_eq!(
            strip_inline_comment("mode exclusive #x"),
            ("mode exclusive ", true)
        );
        assert_eq!(strip_inline_comment("pw ab#cd"), ("pw ab#cd", false));
        assert_eq!(strip_inline_comment("pw ab#cd\t# c"), ("pw ab#cd\t", true));
    }

    #[test]
    fn sections_merge_and_values_override() {
        let raw = parse(
            "<host db1>\n ip 1.1.1.1\n</host>\n<host db1>\nip 2.2.2.2\nmode master\n</host>\n",
        )
        .unwrap();
        assert_eq!(raw.sections.len(), 1);
        let s = &raw.sections[0];
        assert_eq!(s.vars.get("ip").unwrap().text, "2.2.2.2");
        assert_eq!(s.vars.get("ip").unwrap().loc.line, 5);
        assert_eq!(s.vars.get("mode").unwrap().text, "master");
    }

    #[test]
    fn empty_sections_and_value_whitespace() {
        let raw = parse("<monitor/>\n<check ping/>\n  clone_dirs  a b  \t\n").unwrap();
        assert_eq!(raw.sections.len(), 2);
        assert_eq!(raw.top.get("clone_dirs").unwrap().text, "a b");
    }

    #[test]
    fn tag_errors() {
        let e = parse("<hots db1>\n").unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(matches!(*e.kind, K::InvalidSection { .. }));
        let e = parse("<host>\n").unwrap_err();
        assert!(matches!(*e.kind, K::NoSectionName { .. }));
        let e = parse("<monitor m>\n").unwrap_err();
        assert!(matches!(*e.kind, K::SectionNameForUnique { .. }));
        let e = parse("<host db1.x>\n").unwrap_err();
        assert!(matches!(*e.kind, K::InvalidSectionHeader { .. }));
        let e = parse("\n\n</host>\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(matches!(*e.kind, K::EndTagOutsideSection));
        let e = parse("<host a>\n<role r>\n").unwrap_err();
        assert!(matches!(
            *e.kind,
            K::InvalidSection {
                inside: Some(_),
                ..
            }
        ));
    }
}
