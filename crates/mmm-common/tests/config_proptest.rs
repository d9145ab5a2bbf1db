//! Robustness: arbitrary bytes, and arbitrary sequences of plausible and broken lines, given
//! as a configuration never panic; they parse, or give an error that names a line (syntax and
//! value errors) or a whole-config error (a missing entry). Includes stay inside a temp dir.

use mmm_common::config::{
    parse_bytes, render_effective, ConfigError, ConfigErrorKind, ProgramClass,
};
use proptest::prelude::*;

const CLASSES: [ProgramClass; 4] = [
    ProgramClass::Monitor,
    ProgramClass::Agent,
    ProgramClass::Control,
    ProgramClass::Tools,
];

/// Whole-config errors have no line; every other error must name one.
fn check(result: Result<mmm_common::config::Config, ConfigError>) -> Result<(), TestCaseError> {
    if let Ok(cfg) = &result {
        // Whatever parses renders as valid TOML.
        let text = render_effective(cfg);
        prop_assert!(toml::from_str::<toml::Value>(&text).is_ok(), "{text}");
    }
    if let Err(e) = result {
        let whole_config = matches!(*e.kind, ConfigErrorKind::RequiredMissing { .. });
        prop_assert!(
            e.line.is_some() || whole_config,
            "error without a line: {e:?}"
        );
        prop_assert!(!e.to_string().is_empty());
        prop_assert!(!e.file.is_empty());
    }
    Ok(())
}

fn line() -> impl Strategy<Value = String> {
    let word = prop::sample::select(vec![
        "this",
        "debug",
        "active_master_role",
        "ip",
        "mode",
        "peer",
        "hosts",
        "ips",
        "prefer",
        "ping_ips",
        "port",
        "agent_port",
        "check_period",
        "include",
        "monitor_user",
        "type",
        "cert_file",
        "incremental",
        "clone_dirs",
        "sync_timeout",
        "agent_read_timeout",
        "bogus",
        "#",
        "</host>",
        "<host db1>",
        "<host default>",
        "<role writer>",
        "<check ping>",
        "<check default>",
        "<monitor>",
        "<socket>",
        "<copy_method scp>",
        "<check x>",
        "</x>",
        "<monitor/>",
        "<host db2/>",
        "<host>",
        "<host a.b>",
    ]);
    let value = prop::sample::select(vec![
        "",
        "db1",
        "db2",
        "default",
        "writer",
        "master",
        "slave",
        "exclusive",
        "balanced",
        "1.2.3.4, 5.6.7.8",
        "a, ,b",
        ",",
        "0.5",
        "-1",
        "70000",
        "ssl",
        "plain",
        "yes",
        "1 # c",
        "#x",
        "p#w",
        "nothere",
        "/abs/path",
        "\u{6307}\u{5b9a}",
        "1e9",
        "99999999999999999999",
    ]);
    (word, value, "[ \t]{0,2}").prop_map(|(w, v, sp)| format!("{sp}{w} {v}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        for class in CLASSES {
            check(parse_bytes(&bytes, "fuzz.conf", &[], class))?;
        }
    }

    #[test]
    fn arbitrary_lines_never_panic(lines in prop::collection::vec(line(), 0..40)) {
        let text = lines.join("\n");
        for class in CLASSES {
            check(parse_bytes(text.as_bytes(), "fuzz.conf", &[], class))?;
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(?s).{0,300}") {
        for class in CLASSES {
            check(parse_bytes(text.as_bytes(), "fuzz.conf", &[], class))?;
        }
    }
}

/// A valid configuration for every class but TOOLS, for mutation.
const VALID: &str = "active_master_role writer\nthis db1\n<monitor>\nip 127.0.0.1\npid_path /p\nbin_path /b\nstatus_path /s\nping_ips 198.18.0.1\n</monitor>\n<host default>\ncluster_interface ens33\npid_path /a\nbin_path /b\nreplication_user r\nreplication_password p\nagent_user a\nagent_password p\nmonitor_user m\nmonitor_password p\n</host>\n<host db1>\nip 198.18.0.11\nmode master\npeer db2\n</host>\n<host db2>\nip 198.18.0.12\nmode master\npeer db1\n</host>\n<role writer>\nhosts db1, db2\nips 198.18.0.100\nmode exclusive\n</role>\n";

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Random lines inserted into a valid configuration: some stay valid (and must render),
    /// the rest give located errors.
    #[test]
    fn mutated_valid_config_never_panics(
        inserts in prop::collection::vec((0usize..40, line()), 0..4)
    ) {
        let mut lines: Vec<String> = VALID.lines().map(str::to_string).collect();
        for (at, l) in inserts {
            let at = at.min(lines.len());
            lines.insert(at, l);
        }
        let text = lines.join("\n");
        for class in CLASSES {
            check(parse_bytes(text.as_bytes(), "fuzz.conf", &[], class))?;
        }
    }
}

#[test]
fn valid_base_is_valid() {
    for class in [
        ProgramClass::Monitor,
        ProgramClass::Agent,
        ProgramClass::Control,
    ] {
        let cfg = parse_bytes(VALID.as_bytes(), "v.conf", &[], class);
        assert!(cfg.is_ok(), "{class:?}: {cfg:?}");
    }
}
