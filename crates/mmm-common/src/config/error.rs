//! [`ConfigError`]: every way reading or validating an MMM configuration can fail (spec §2.1,
//! §2.2, §2.3).
//!
//! An error names the file (for whole-config errors: the file that was loaded), the line when
//! there is one, the directive (or MMM's path words such as `host->db1->monitor_user`) and
//! what was expected. Where 2.2.1 has a message, `Display` starts with 2.2.1's wording
//! (`Required config entry 'monitor->ip' is missing`, `Unknown variable foo in 'f' on line 3!`)
//! and mmm-rs only adds a hint after it.

use std::fmt;

/// A configuration error: where it is, which directive, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file the error is in; for whole-config errors the file that was loaded; for a
    /// file that was not found, the name that was looked up.
    pub file: String,
    /// 1-based line number, when the error belongs to one line.
    pub line: Option<usize>,
    /// The directive or section concerned, in MMM's path words (`monitor->ip`,
    /// `host->db1->mode`, `check->foo`), or the line's first word for syntax errors.
    pub directive: Option<String>,
    /// What is wrong (boxed to keep `Result<_, ConfigError>` small).
    pub kind: Box<ConfigErrorKind>,
}

/// What is wrong (see [`ConfigError`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// No directory holds a readable file of that name (§2.1).
    NotFound {
        /// The file name looked up (with `.conf`).
        name: String,
        /// The directories searched, in order.
        dirs: Vec<String>,
    },
    /// The file has o+w (§2.1).
    WorldWritable,
    /// The file has o+r (§2.1).
    WorldReadable,
    /// The file could not be read.
    Io {
        /// The OS error.
        reason: String,
    },
    /// A line is not valid UTF-8.
    NotUtf8,
    /// `include` names an absolute path (2.2.1 only finds names relative to its directories).
    IncludeAbsolute,
    /// `include` inside a section (2.2.1 crashes).
    IncludeInSection {
        /// The open section, e.g. `<host db1>`.
        section: String,
    },
    /// `include` with more than one word after it.
    IncludeSyntax,
    /// A file includes itself, directly or through others.
    IncludeLoop,
    /// `</x>` with no open section (2.2.1 silently ignores the rest of the file).
    EndTagOutsideSection,
    /// A section type that does not exist (or a section opened inside another one).
    InvalidSection {
        /// The type word.
        section: String,
        /// The open section, when the header was inside one.
        inside: Option<String>,
    },
    /// `<host>` without a name.
    NoSectionName {
        /// The type word.
        section: String,
    },
    /// `<monitor x>`: a name on a unique section.
    SectionNameForUnique {
        /// The type word.
        section: String,
    },
    /// A line that looks like a section header but is not well formed (`<host db1.x>`).
    InvalidSectionHeader {
        /// The line as written.
        text: String,
    },
    /// A directive that does not exist in this section.
    UnknownVariable {
        /// The directive as written.
        var: String,
        /// Where the line is: `top level` or `<host db1>`.
        context: String,
        /// A close directive name, or where the directive belongs.
        hint: Option<String>,
    },
    /// A section type used as a variable (`host db1` at top level).
    ShouldBeSection {
        /// The word.
        var: String,
    },
    /// A line that is neither comment, tag, include nor `name value`.
    InvalidLine {
        /// A hint, e.g. that a known directive needs a value.
        hint: Option<String>,
    },
    /// `name #comment`: nothing is left once the inline comment is removed.
    EmptyAfterComment {
        /// The directive.
        var: String,
    },
    /// A `<check NAME>` with a name other than the four checks and `default`.
    InvalidCheck {
        /// The name.
        name: String,
    },
    /// A required entry (or section) is missing for this program class.
    RequiredMissing {
        /// MMM's path words.
        path: String,
        /// The program that needs it, e.g. `mmm_mond`.
        program: &'static str,
    },
    /// A conditionally required entry is missing.
    DepRequired {
        /// MMM's path words.
        path: String,
        /// The sibling directive that makes it required.
        var: String,
        /// Its value.
        value: String,
    },
    /// A value outside a fixed list (values or refvalues).
    InvalidValue {
        /// MMM's path words.
        path: String,
        /// The value (one element for lists).
        value: String,
        /// The allowed values.
        allowed: Vec<String>,
    },
    /// A number that does not parse or is out of range, or a host `ip` that is not an IP
    /// address (2.2.1 checks neither).
    InvalidNumber {
        /// MMM's path words.
        path: String,
        /// The value.
        value: String,
        /// What was expected, e.g. `a port number 1-65535`.
        expected: &'static str,
    },
    /// A required list with no element at all.
    EmptyList {
        /// MMM's path words.
        path: String,
    },
    /// A list with an empty element (`a, ,b`).
    EmptyListElement {
        /// MMM's path words.
        path: String,
        /// The value as written.
        value: String,
    },
    /// Two values that must agree do not (e.g. `agent_read_timeout` ≤ `sync_timeout`).
    Inconsistent {
        /// MMM's path words of the directive at fault.
        path: String,
        /// What is wrong, in words.
        reason: String,
    },
}

impl ConfigError {
    /// An error on one line of a file.
    pub(crate) fn at(
        file: &str,
        line: usize,
        directive: Option<&str>,
        kind: ConfigErrorKind,
    ) -> Self {
        ConfigError {
            file: file.to_string(),
            line: Some(line),
            directive: directive.map(str::to_string),
            kind: Box::new(kind),
        }
    }

    /// An error about a whole file (no line).
    pub(crate) fn file(file: &str, directive: Option<&str>, kind: ConfigErrorKind) -> Self {
        ConfigError {
            file: file.to_string(),
            line: None,
            directive: directive.map(str::to_string),
            kind: Box::new(kind),
        }
    }

    /// ` in 'file' on line n` (MMM's own suffix).
    fn mmm_loc(&self) -> String {
        match self.line {
            Some(n) => format!(" in '{}' on line {}", self.file, n),
            None => format!(" in '{}'", self.file),
        }
    }

    /// ` (in 'file' on line n)`: the location mmm-rs adds after a 2.2.1 message that has none.
    fn paren_loc(&self) -> String {
        match self.line {
            Some(n) => format!(" (in '{}' on line {})", self.file, n),
            None => format!(" (config '{}')", self.file),
        }
    }
}

fn quoted_list(items: &[String]) -> String {
    format!("'{}'", items.join("', '"))
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ConfigErrorKind as K;
        let d = self.directive.as_deref().unwrap_or("");
        match self.kind.as_ref() {
            K::NotFound { name, dirs } => {
                write!(
                    f,
                    "No readable config file {name} in {}: could not find a readable config file",
                    dirs.join(", ")
                )?;
                if let Some(n) = self.line {
                    write!(f, " (include in '{}' on line {n})", self.file)?;
                }
            }
            K::WorldWritable => write!(f, "Configuration file {} is world writable!", self.file)?,
            K::WorldReadable => write!(f, "Configuration file {} is world readable!", self.file)?,
            K::Io { reason } => write!(f, "Can't read config file '{}': {}", self.file, reason)?,
            K::NotUtf8 => write!(
                f,
                "Invalid config line{}! The line is not valid UTF-8",
                self.mmm_loc()
            )?,
            K::IncludeAbsolute => write!(
                f,
                "Invalid include of '{d}'{}! include takes a file name relative to the \
                 config directories (as in 2.2.1, absolute paths are not found)",
                self.mmm_loc()
            )?,
            K::IncludeInSection { section } => write!(
                f,
                "Invalid include of '{d}'{}! include is only allowed at top level, not inside \
                 {section}; close the section first",
                self.mmm_loc()
            )?,
            K::IncludeSyntax => write!(
                f,
                "Invalid include{}! Expected exactly one file name: include <name>",
                self.mmm_loc()
            )?,
            K::IncludeLoop => write!(
                f,
                "Include loop: '{d}' is already being read{}!",
                self.mmm_loc()
            )?,
            K::EndTagOutsideSection => write!(
                f,
                "End tag </{d}> without an open section{}! (2.2.1 silently ignored the rest of \
                 the file here; remove the tag or open the section it closes)",
                self.mmm_loc()
            )?,
            K::InvalidSection { section, inside } => {
                write!(f, "Invalid section {section}{}!", self.mmm_loc())?;
                match inside {
                    Some(open) => write!(
                        f,
                        " Sections cannot be nested: close {open} before opening <{section}>"
                    )?,
                    None => write!(
                        f,
                        " Expected one of: monitor, socket, host, role, check, copy_method"
                    )?,
                }
            }
            K::NoSectionName { section } => write!(
                f,
                "No section name specified for named section {section}{}! Expected <{section} NAME>",
                self.mmm_loc()
            )?,
            K::SectionNameForUnique { section } => write!(
                f,
                "Section name specified for unique section {section}{}! Expected <{section}>",
                self.mmm_loc()
            )?,
            K::InvalidSectionHeader { text } => write!(
                f,
                "Invalid section header '{text}'{}! Expected <type>, <type/>, <type NAME> or \
                 <type NAME/>; names may contain only letters, digits, '_' and '-'",
                self.mmm_loc()
            )?,
            K::UnknownVariable { var, context, hint } => {
                write!(f, "Unknown variable {var}{}!", self.mmm_loc())?;
                match hint {
                    Some(h) => write!(f, " {h}")?,
                    None => write!(f, " It is not a directive of {context}")?,
                }
            }
            K::ShouldBeSection { var } => write!(
                f,
                "'{var}' should be a section instead of a variable{}! Expected <{var} NAME> ... </{var}>",
                self.mmm_loc()
            )?,
            K::InvalidLine { hint } => {
                write!(
                    f,
                    "Invalid config line in file '{}'{}! Expected a comment, a section tag, \
                     'include <name>' or '<directive> <value>'",
                    self.file,
                    self.line.map(|n| format!(" on line {n}")).unwrap_or_default()
                )?;
                if let Some(h) = hint {
                    write!(f, "; {h}")?;
                }
            }
            K::EmptyAfterComment { var } => write!(
                f,
                "Config entry '{var}' has no value once the inline comment is removed{}! \
                 '#' after whitespace starts a comment; a value cannot begin with '#'",
                self.mmm_loc()
            )?,
            K::InvalidCheck { name } => write!(
                f,
                "Invalid check '{name}' in configuration allowed values are: 'ping', 'mysql', \
                 'rep_backlog', 'rep_threads', 'default'{}",
                self.paren_loc()
            )?,
            K::RequiredMissing { path, program } => write!(
                f,
                "Required config entry '{path}' is missing (needed by {program}; config '{}')",
                self.file
            )?,
            K::DepRequired { path, var, value } => write!(
                f,
                "Config entry '{path}' is required because of '{var} {value}', but missing{}",
                self.paren_loc()
            )?,
            K::InvalidValue {
                path,
                value,
                allowed,
            } => write!(
                f,
                "Config entry '{path}' has invalid value '{value}' allowed values are: {}{}",
                quoted_list(allowed),
                self.paren_loc()
            )?,
            K::InvalidNumber {
                path,
                value,
                expected,
            } => write!(
                f,
                "Config entry '{path}' has invalid value '{value}': expected {expected}{}",
                self.paren_loc()
            )?,
            K::EmptyListElement { path, value } => write!(
                f,
                "Config entry '{path}' has an empty element in '{value}': expected a \
                 comma-separated list of non-empty values{}",
                self.paren_loc()
            )?,
            K::EmptyList { path } => write!(
                f,
                "Config entry '{path}' is empty: expected a comma-separated list of at least \
                 one value{}",
                self.paren_loc()
            )?,
            K::Inconsistent { path, reason } => {
                write!(f, "Config entry '{path}' {reason}{}", self.paren_loc())?
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_missing_keeps_mmm_wording() {
        let e = ConfigError::file(
            "/etc/mysql-mmm/mmm_mon.conf",
            Some("monitor->ip"),
            ConfigErrorKind::RequiredMissing {
                path: "monitor->ip".into(),
                program: "mmm_mond",
            },
        );
        let s = e.to_string();
        assert!(
            s.starts_with("Required config entry 'monitor->ip' is missing"),
            "{s}"
        );
        assert!(s.contains("/etc/mysql-mmm/mmm_mon.conf"), "{s}");
    }

    #[test]
    fn unknown_variable_names_file_and_line() {
        let e = ConfigError::at(
            "f.conf",
            3,
            Some("foo"),
            ConfigErrorKind::UnknownVariable {
                var: "foo".into(),
                context: "top level".into(),
                hint: Some("Did you mean `foa`?".into()),
            },
        );
        assert_eq!(
            e.to_string(),
            "Unknown variable foo in 'f.conf' on line 3! Did you mean `foa`?"
        );
    }
}
