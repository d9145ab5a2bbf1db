//! `MMM_CONFIG_DIR` (mmm-rs): a `:`-separated list of directories that replaces /etc,
//! /etc/mmm, /etc/mysql-mmm for [`config_dirs`] and [`load`]. One test in its own binary,
//! because it changes the process environment.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use mmm_common::config::{base_name, config_dirs, load, ProgramClass, CONFIG_DIR_ENV};

#[test]
fn config_dir_env_overrides_the_default_dirs() {
    std::env::remove_var(CONFIG_DIR_ENV);
    assert_eq!(
        config_dirs(),
        [
            PathBuf::from("/etc"),
            PathBuf::from("/etc/mmm"),
            PathBuf::from("/etc/mysql-mmm")
        ]
    );
    // Empty: the defaults.
    std::env::set_var(CONFIG_DIR_ENV, "");
    assert_eq!(config_dirs().len(), 3);

    let a = tempfile::Builder::new()
        .prefix("mmmcfg")
        .tempdir()
        .expect("dir");
    let b = tempfile::Builder::new()
        .prefix("mmmcfg")
        .tempdir()
        .expect("dir");
    std::env::set_var(
        CONFIG_DIR_ENV,
        format!("{}::{}", a.path().display(), b.path().display()),
    );
    assert_eq!(
        config_dirs(),
        [a.path().to_path_buf(), b.path().to_path_buf()]
    );

    let name = base_name("mmm_mon", Some("C"));
    assert_eq!(name, "mmm_mon_C");
    let path = b.path().join("mmm_mon_C.conf");
    fs::write(
        &path,
        "<monitor>\nip 198.18.0.6\n</monitor>\n<host db1>\nip 198.18.0.11\nmode slave\n</host>\n",
    )
    .expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
    let cfg = load(&name, ProgramClass::Control).expect("load via MMM_CONFIG_DIR");
    assert_eq!(
        cfg.monitor.and_then(|m| m.ip).as_deref(),
        Some("198.18.0.6")
    );
    let e = load("mmm_agent", ProgramClass::Agent).expect_err("not there");
    assert!(
        e.to_string().contains(&a.path().display().to_string()),
        "{e}"
    );
    std::env::remove_var(CONFIG_DIR_ENV);
}
