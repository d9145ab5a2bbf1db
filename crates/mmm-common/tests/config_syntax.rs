//! The line syntax (spec §2.2) and file lookup (spec §2.1): comments and mmm-rs's inline
//! comment rule, end tags, includes, sections, variables, errors with file and line, the
//! directory search order and the permission check. Files live in temp dirs `mmmcfg*`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mmm_common::config::{
    load_from, parse_bytes, parse_str, Config, ConfigError, ConfigErrorKind, ProgramClass,
};

use ProgramClass::{Agent, Control};

/// Hosts and a monitor: valid for CONTROL.
const BASE: &str = "\
<monitor>
ip 127.0.0.1
</monitor>
<host db1>
ip 198.18.0.11
mode slave
</host>
";

fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_str(text, "t.conf", &[], Control)
}

fn ok(text: &str) -> Config {
    parse(text).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> ConfigError {
    parse(text).expect_err("an error")
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("mmmcfg")
        .tempdir()
        .expect("temp dir")
}

fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(&path, text).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

fn db1(cfg: &Config) -> &mmm_common::config::HostSection {
    cfg.host("db1").expect("db1")
}

#[test]
fn comments_blank_lines_and_whitespace() {
    let text = format!(
        "# a comment\n   # indented comment\n\n \t \n{BASE}<host db1>\n\t  agent_user \t mmm agent  \t\n</host>\n"
    );
    let cfg = ok(&text);
    // Interior whitespace kept, trailing stripped.
    assert_eq!(db1(&cfg).agent_user.as_deref(), Some("mmm agent"));
}

#[test]
fn inline_comments_after_whitespace() {
    let text = format!(
        "{BASE}<host db1>\n agent_user mmm_agent #指定用户名\n agent_password pass#word\n monitor_password a#b\t# trailing\n replication_password x##y # c\n</host> # end\ndebug 1 # x\n"
    );
    let cfg = ok(&text);
    let h = db1(&cfg);
    assert_eq!(h.agent_user.as_deref(), Some("mmm_agent"));
    // A '#' inside a token is data: passwords with '#' work.
    assert_eq!(h.agent_password.as_deref(), Some("pass#word"));
    assert_eq!(h.monitor_password.as_deref(), Some("a#b"));
    assert_eq!(h.replication_password.as_deref(), Some("x##y"));
    // 2.2.1 would read `1 # x` and refuse it; mmm-rs reads 1.
    assert!(cfg.debug);
    // A value that would start with '#' is refused, not silently emptied.
    let e = err(&format!(
        "{BASE}<host db1>\nagent_password #secret\n</host>\n"
    ));
    assert_eq!(
        *e.kind,
        ConfigErrorKind::EmptyAfterComment {
            var: "agent_password".into()
        }
    );
    assert_eq!(e.line, Some(BASE.lines().count() + 2));
    assert!(
        e.to_string().contains("a value cannot begin with '#'"),
        "{e}"
    );
}

#[test]
fn empty_value_with_trailing_whitespace_is_allowed() {
    // 2.2.1: `^\s*(\S+)\s+(.*)$` accepts an empty value.
    let cfg = ok(&format!("{BASE}<host db1>\nssh_parameters \n</host>\n"));
    assert!(db1(&cfg)
        .tools
        .iter()
        .any(|(k, v)| k == "ssh_parameters" && v.is_empty()));
}

#[test]
fn end_tags() {
    // The name in the end tag is not compared with the open section (as 2.2.1).
    let cfg = ok(
        &format!("{BASE}<host db2>\nip 198.18.0.12\nmode slave\n</role>\n< / host >\n")
            .replace("< / host >\n", ""),
    );
    assert!(cfg.host("db2").is_some());
    // Spaces inside the end tag.
    ok(&format!("{BASE}<host db2>\nip 1\nmode slave\n</ host >\n"));
    // At top level: an error (2.2.1 silently ignored the rest of the file).
    let text = format!("{BASE}</monitor>\ndebug 1\n");
    let e = err(&text);
    assert_eq!(*e.kind, ConfigErrorKind::EndTagOutsideSection);
    assert_eq!(e.line, Some(BASE.lines().count() + 1));
    assert_eq!(e.directive.as_deref(), Some("monitor"));
    assert!(
        e.to_string()
            .starts_with("End tag </monitor> without an open section in 't.conf' on line 8!"),
        "{e}"
    );
}

#[test]
fn sections() {
    // Empty sections.
    let cfg = ok(&format!("{BASE}<socket/>\n<check ping/>\n<monitor/>\n"));
    assert_eq!(
        cfg.monitor.expect("monitor").ip.as_deref(),
        Some("127.0.0.1")
    );
    // Whitespace inside tags; names with '-' and '_'.
    let cfg = ok(&format!(
        "{BASE}  < host   db-2_b >\nip 1\nmode slave\n</host>\n"
    ));
    assert!(cfg.host("db-2_b").is_some());
    // Re-opened sections merge; later assignments override.
    let cfg = ok(&format!(
        "{BASE}<host db1>\nagent_user a\nmysql_port 3307\n</host>\n<host db1>\nagent_user b\n</host>\n"
    ));
    assert_eq!(db1(&cfg).agent_user.as_deref(), Some("b"));
    assert_eq!(db1(&cfg).mysql_port, 3307);
    assert_eq!(db1(&cfg).ip.as_deref(), Some("198.18.0.11"));

    let cases: &[(&str, &str)] = &[
        ("<hots db2>", "Invalid section hots in 't.conf' on line 8! Expected one of: monitor, socket, host, role, check, copy_method"),
        ("<host>", "No section name specified for named section host in 't.conf' on line 8! Expected <host NAME>"),
        ("<role/>", "No section name specified for named section role in 't.conf' on line 8!"),
        ("<monitor m1>", "Section name specified for unique section monitor in 't.conf' on line 8! Expected <monitor>"),
        ("<socket s/>", "Section name specified for unique section socket in 't.conf' on line 8!"),
        ("<host db1.example>", "Invalid section header '<host db1.example>' in 't.conf' on line 8!"),
        ("<host a b>", "Invalid section header '<host a b>' in 't.conf' on line 8!"),
    ];
    for (line, msg) in cases {
        let e = err(&format!("{BASE}{line}\n"));
        assert_eq!(e.line, Some(8), "{line}");
        assert!(e.to_string().starts_with(msg), "{e}\nwanted: {msg}");
    }
    // Nested sections.
    let e = err(&format!("{BASE}<host db2>\n<role r>\n"));
    assert!(e.to_string().starts_with(
        "Invalid section role in 't.conf' on line 9! Sections cannot be nested: close <host db2> before opening <role>"
    ), "{e}");
}

#[test]
fn variables_errors_and_hints() {
    let cases: &[(&str, &str)] = &[
        ("<host db1>\nmoniter_user m\n</host>", "Unknown variable moniter_user in 't.conf' on line 9! Did you mean `monitor_user`?"),
        ("<monitor>\nauto_set_onlin 10\n</monitor>", "Unknown variable auto_set_onlin in 't.conf' on line 9! Did you mean `auto_set_online`?"),
        ("monitor_user m", "Unknown variable monitor_user in 't.conf' on line 8! `monitor_user` is a directive of <host NAME>, not of the top level"),
        ("<monitor>\nbind_port 9988\n</monitor>", "Unknown variable bind_port in 't.conf' on line 9! It is not a directive of the <monitor> section; expected one of: ip, port, pid_path, bin_path, status_path, ping_interval, ping_ips, flap_duration, flap_count, auto_set_online, kill_host_bin, careful_startup, mode, wait_for_other_master"),
        ("<monitor>\ndebug 1\n</monitor>", "Unknown variable debug in 't.conf' on line 9! `debug` is a top-level directive; write it outside any section"),
        ("host db2", "'host' should be a section instead of a variable in 't.conf' on line 8! Expected <host NAME> ... </host>"),
        ("debug", "Invalid config line in file 't.conf' on line 8! Expected a comment, a section tag, 'include <name>' or '<directive> <value>'; `debug` needs a value: debug <value>"),
        ("<host db1>\nfrobnicate\n</host>", "Invalid config line in file 't.conf' on line 9!"),
    ];
    for (text, msg) in cases {
        let e = err(&format!("{BASE}{text}\n"));
        assert!(e.to_string().starts_with(msg), "{e}\nwanted: {msg}");
        assert!(e.line.is_some());
    }
    // The error names the directive.
    let e = err(&format!("{BASE}<host db1>\nmoniter_user m\n</host>\n"));
    assert_eq!(e.directive.as_deref(), Some("moniter_user"));
    assert_eq!(e.file, "t.conf");
}

#[test]
fn crlf_line_endings() {
    let text = format!("{BASE}<host db1>\nagent_user a\n</host>\n").replace('\n', "\r\n");
    let cfg = ok(&text);
    assert_eq!(db1(&cfg).agent_user.as_deref(), Some("a"));
}

#[test]
fn byte_order_mark_is_ignored() {
    let text = format!("\u{feff}# written by an editor that adds a BOM\n{BASE}");
    ok(&text);
    let text = format!("\u{feff}{BASE}");
    ok(&text);
}

#[test]
fn not_utf8_names_the_line() {
    let mut bytes = BASE.as_bytes().to_vec();
    bytes.extend_from_slice(b"<host db1>\nagent_password \xff\xfe\n</host>\n");
    let e = parse_bytes(&bytes, "t.conf", &[], Control).expect_err("not utf-8");
    assert_eq!(*e.kind, ConfigErrorKind::NotUtf8);
    assert_eq!(e.line, Some(9));
}

#[test]
fn includes() {
    let dir = tempdir();
    let dirs = [dir.path().to_path_buf()];
    write(dir.path(), "common.conf", BASE, 0o640);
    write(
        dir.path(),
        "sub/extra.conf",
        "<host db1>\nagent_user from_extra\n</host>\n",
        0o600,
    );
    // `.conf` appended; relative sub-paths work; later files merge into earlier sections.
    let cfg = parse_str(
        "include common\ninclude sub/extra.conf\n<host db1>\nmysql_port 3307\n</host>\n",
        "main.conf",
        &dirs,
        Control,
    )
    .expect("includes");
    assert_eq!(db1(&cfg).agent_user.as_deref(), Some("from_extra"));
    assert_eq!(db1(&cfg).mysql_port, 3307);
    assert_eq!(db1(&cfg).ip.as_deref(), Some("198.18.0.11"));

    // Inside a section: a clear error.
    let e = parse_str(
        "<host db1>\ninclude common\n</host>\n",
        "main.conf",
        &dirs,
        Control,
    )
    .expect_err("include in section");
    assert_eq!(e.line, Some(2));
    assert!(e.to_string().starts_with(
        "Invalid include of 'common' in 'main.conf' on line 2! include is only allowed at top level, not inside <host db1>"
    ), "{e}");
    // Absolute paths are not found by 2.2.1: a clear error.
    let abs = dir.path().join("common.conf");
    let e = parse_str(
        &format!("include {}\n", abs.display()),
        "main.conf",
        &dirs,
        Control,
    )
    .expect_err("absolute");
    assert_eq!(*e.kind, ConfigErrorKind::IncludeAbsolute);
    // Two names.
    let e = parse_str("include a b\n", "main.conf", &dirs, Control).expect_err("two names");
    assert_eq!(*e.kind, ConfigErrorKind::IncludeSyntax);
    // Not found: names the include line and the dirs searched.
    let e = parse_str("\ninclude nothere\n", "main.conf", &dirs, Control).expect_err("missing");
    assert_eq!(e.line, Some(2));
    assert_eq!(
        e.to_string(),
        format!(
            "No readable config file nothere.conf in {}: could not find a readable config file (include in 'main.conf' on line 2)",
            dir.path().display()
        )
    );
    // Errors inside an included file name that file and its line.
    write(
        dir.path(),
        "bad.conf",
        "\n\n<host db1>\nagent_prt 1\n</host>\n",
        0o640,
    );
    let e = parse_str("include bad\n", "main.conf", &dirs, Control).expect_err("bad include");
    assert_eq!(e.file, dir.path().join("bad.conf").display().to_string());
    assert_eq!(e.line, Some(4));
    assert!(e.to_string().contains("Did you mean `agent_port`?"), "{e}");
    // Loops.
    write(dir.path(), "a.conf", "include b\n", 0o640);
    write(dir.path(), "b.conf", "include a\n", 0o640);
    let e = load_from(&dirs, "a", Control).expect_err("loop");
    assert_eq!(*e.kind, ConfigErrorKind::IncludeLoop);
    assert!(e.to_string().starts_with("Include loop:"), "{e}");
    // The permission check applies to included files too.
    write(dir.path(), "open.conf", BASE, 0o644);
    let e = parse_str("include open\n", "main.conf", &dirs, Control).expect_err("o+r");
    assert_eq!(
        e.to_string(),
        format!(
            "Configuration file {} is world readable!",
            dir.path().join("open.conf").display()
        )
    );
}

#[test]
fn lookup_order_and_names() {
    let first = tempdir();
    let second = tempdir();
    let dirs = [first.path().to_path_buf(), second.path().to_path_buf()];
    write(
        second.path(),
        "mmm_mon_C.conf",
        &BASE.replace("127.0.0.1", "198.18.0.2"),
        0o640,
    );
    let cfg = load_from(&dirs, "mmm_mon_C", Control).expect("second dir");
    assert_eq!(cfg.monitor.expect("m").ip.as_deref(), Some("198.18.0.2"));
    // The first directory wins.
    write(first.path(), "mmm_mon_C.conf", BASE, 0o600);
    let cfg = load_from(&dirs, "mmm_mon_C.conf", Control).expect("first dir");
    assert_eq!(cfg.monitor.expect("m").ip.as_deref(), Some("127.0.0.1"));
    // Includes are looked up in all dirs too.
    write(second.path(), "inc.conf", BASE, 0o640);
    write(first.path(), "top.conf", "include inc\n", 0o640);
    load_from(&dirs, "top", Control).expect("include from the second dir");
    // Not found.
    let e = load_from(&dirs, "mmm_agent", Agent).expect_err("missing");
    assert_eq!(e.file, "mmm_agent.conf");
    assert_eq!(e.line, None);
    assert_eq!(
        e.to_string(),
        format!(
            "No readable config file mmm_agent.conf in {}, {}: could not find a readable config file",
            first.path().display(),
            second.path().display()
        )
    );
    // Whole-config errors name the loaded file.
    write(
        first.path(),
        "noip.conf",
        "<monitor/>\n<host db1>\n</host>\n",
        0o640,
    );
    let e = load_from(&dirs, "noip", Control).expect_err("monitor->ip");
    assert_eq!(e.file, first.path().join("noip.conf").display().to_string());
    assert_eq!(
        e.to_string(),
        format!(
            "Required config entry 'monitor->ip' is missing (needed by mmm_control; config '{}')",
            first.path().join("noip.conf").display()
        )
    );
}

#[test]
fn permissions() {
    let dir = tempdir();
    let dirs = [dir.path().to_path_buf()];
    for (mode, word) in [
        (0o646, Some("writable")),
        (0o642, Some("writable")),
        (0o644, Some("readable")),
        (0o604, Some("readable")),
        (0o640, None),
        (0o600, None),
        (0o660, None),
    ] {
        let path = write(dir.path(), "p.conf", BASE, mode);
        match (load_from(&dirs, "p", Control), word) {
            (Err(e), Some(word)) => assert_eq!(
                e.to_string(),
                format!("Configuration file {} is world {word}!", path.display())
            ),
            (Ok(_), None) => {}
            (r, w) => panic!("mode {mode:o}: {r:?} (wanted {w:?})"),
        }
    }
}
