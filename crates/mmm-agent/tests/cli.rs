//! `mmm_agentd`'s command line through the binary: `--help` and `--version` need no
//! configuration, usage errors exit 1, a missing configuration exits 1 naming the file.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_mmm_agentd");

fn run(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(BIN)
        .args(args)
        .env("MMM_CONFIG_DIR", dir.path())
        .output()
        .unwrap()
}

#[test]
fn help_and_version_without_a_config() {
    for args in [&["--help"][..], &["-h"], &["@C1", "--help"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("Usage: mmm_agentd [OPTIONS] [@CLUSTER]"),
            "{text}"
        );
        assert!(text.contains("--check-config"), "{text}");
    }
    for args in [&["--version"][..], &["@C1", "--version"], &["-V"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("mmm_agentd {}\n", mmm_common::VERSION)
        );
    }
}

#[test]
fn usage_errors_exit_one() {
    for args in [&["x"][..], &["@C1", "x"], &["--nope"], &["@"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with("error: "), "{err}");
    }
}

#[test]
fn missing_config_names_the_file() {
    let out = run(&["@C1", "--check-config"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("mmm_agent_C1.conf"), "{err}");
}
