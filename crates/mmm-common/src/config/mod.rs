//! MMM's configuration language (spec §2): file lookup, parsing, templates, validation per
//! program class, and the typed model every program reads.
//!
//! Layout: `model.rs` ([`Config`]: the effective configuration, as `--check-config` prints
//! it), `settings.rs` (what each program runs with: [`MonitorSettings`], [`AgentSettings`],
//! [`ControlSettings`], with [`HostConfig::agent_addr`] / [`HostConfig::mysql_target`]),
//! `defaults.rs` (every default, once), `parse.rs` (line syntax, includes, sections, lookup
//! and permission check), `rules.rs` (section types, directive names, "did you mean"),
//! `validate.rs` (defaults filled in, required entries, values, references, numbers,
//! per-class rules), `error.rs` ([`ConfigError`]), `render.rs` ([`render_effective`]).
//! Entry points: [`load`] (by base name, MMM's lookup in [`config_dirs`]), [`load_from`],
//! [`parse_str`], then [`Config::monitor_settings`] / [`Config::agent_settings`] /
//! [`Config::control_settings`]. The language and mmm-rs's differences from 2.2.1 are
//! documented in `docs/config.md`.

pub mod defaults;
mod error;
pub mod model;
mod parse;
mod render;
mod rules;
mod settings;
mod validate;

use std::path::PathBuf;

pub use error::{ConfigError, ConfigErrorKind};
pub use model::*;
pub use render::{render_effective, PASSWORD_MASK};
pub use settings::*;

/// The directories 2.2.1 searches, in order (spec §2.1).
pub const DEFAULT_CONFIG_DIRS: [&str; 3] = ["/etc", "/etc/mmm", "/etc/mysql-mmm"];

/// The environment variable that replaces [`DEFAULT_CONFIG_DIRS`] (`:`-separated; an mmm-rs
/// addition, used by tests and by sites that keep configs elsewhere).
pub const CONFIG_DIR_ENV: &str = "MMM_CONFIG_DIR";

/// The directories config files (and includes) are looked up in: `MMM_CONFIG_DIR`
/// (`:`-separated, empty parts ignored) when set and not empty, else `/etc`, `/etc/mmm`,
/// `/etc/mysql-mmm`.
pub fn config_dirs() -> Vec<PathBuf> {
    if let Some(value) = std::env::var_os(CONFIG_DIR_ENV) {
        let dirs: Vec<PathBuf> = std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if !dirs.is_empty() {
            return dirs;
        }
    }
    DEFAULT_CONFIG_DIRS.iter().map(PathBuf::from).collect()
}

/// A config base name with the `@cluster` suffix (spec §1): `("mmm_mon", Some("C"))` →
/// `mmm_mon_C`; without a cluster, `program` unchanged.
pub fn base_name(program: &str, cluster: Option<&str>) -> String {
    match cluster {
        Some(c) => format!("{program}_{c}"),
        None => program.to_string(),
    }
}

/// Loads config `name` (`.conf` appended unless present) from [`config_dirs`] and validates
/// it for `class` (spec §2.1).
pub fn load(name: &str, class: ProgramClass) -> Result<Config, ConfigError> {
    load_from(&config_dirs(), name, class)
}

/// Loads config `name` from the first of `dirs` that holds a readable file of that name
/// (`.conf` appended unless present); includes are resolved in `dirs` too. A file that is
/// world writable or world readable is refused, as 2.2.1 does.
pub fn load_from(dirs: &[PathBuf], name: &str, class: ProgramClass) -> Result<Config, ConfigError> {
    let file = parse::conf_file_name(name);
    let path = parse::find_in_dirs(dirs, &file).ok_or_else(|| parse::not_found(dirs, &file))?;
    let shown = path.display().to_string();
    tracing::debug!(file = %shown, "Loading configuration from {shown}");
    let bytes = parse::read_checked(&path)?;
    parse_bytes(&bytes, &shown, dirs, class)
}

/// Parses `text` (named `label` in errors) and validates it for `class`; `include`s are
/// resolved in `dirs`.
pub fn parse_str(
    text: &str,
    label: &str,
    dirs: &[PathBuf],
    class: ProgramClass,
) -> Result<Config, ConfigError> {
    parse_bytes(text.as_bytes(), label, dirs, class)
}

/// Like [`parse_str`] for raw bytes (a line that is not UTF-8 is an error naming its line).
pub fn parse_bytes(
    bytes: &[u8],
    label: &str,
    dirs: &[PathBuf],
    class: ProgramClass,
) -> Result<Config, ConfigError> {
    let mut parser = parse::Parser::new(dirs, label);
    parser.parse_bytes(bytes, label)?;
    validate::validate(parser.finish(), class)
}

/// [`parse_bytes`] for several program classes at once: the text is parsed once and
/// validated for each class (what the fuzz target and a future `--check-config` of every
/// class need). Results in the order of `classes`.
pub fn parse_bytes_classes(
    bytes: &[u8],
    label: &str,
    dirs: &[PathBuf],
    classes: &[ProgramClass],
) -> Vec<Result<Config, ConfigError>> {
    let mut parser = parse::Parser::new(dirs, label);
    if let Err(e) = parser.parse_bytes(bytes, label) {
        return classes.iter().map(|_| Err(e.clone())).collect();
    }
    let raw = parser.finish();
    classes
        .iter()
        .map(|&class| validate::validate(raw.clone(), class))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_at_once_equal_one_by_one() {
        let text = b"<host db1>\n    ip 198.18.2.100\n    mode master\n    peer db2\n</host>\n\
<host db2>\n    ip 198.18.2.102\n    mode master\n    peer db1\n</host>\nthis db1\n\
<monitor>\n    ip 127.0.0.1\n</monitor>\n<role writer>\n    hosts db1, db2\n    ips 198.18.2.188\n    mode exclusive\n</role>\n\
bad_directive 1\n";
        let classes = [
            ProgramClass::Monitor,
            ProgramClass::Agent,
            ProgramClass::Control,
            ProgramClass::Tools,
        ];
        for input in [&text[..], &text[..text.len() - 16], b"<host\n"] {
            let all = parse_bytes_classes(input, "x.conf", &[], &classes);
            for (class, got) in classes.iter().zip(all) {
                let one = parse_bytes(input, "x.conf", &[], *class);
                assert_eq!(
                    format!("{got:?}"),
                    format!("{one:?}"),
                    "{class:?} on {:?}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn base_names() {
        assert_eq!(base_name("mmm_mon", Some("C")), "mmm_mon_C");
        assert_eq!(base_name("mmm_agent", None), "mmm_agent");
    }
}
