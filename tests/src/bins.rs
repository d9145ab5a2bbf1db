//! Finding the workspace's own binaries (`mmm_agentd`, `mmm_mond`, `mmm_control`) from a
//! test: cargo builds a test's own package's binaries only, so tests in this crate run the
//! other crates' binaries from the same target directory, after `cargo build --bins`.

use std::path::PathBuf;

use crate::error::{Result, TestbedError};

/// The environment variable naming a directory to take the three shipped programs
/// (`mmm_agentd`, `mmm_mond`, `mmm_control`) from instead of the target directory:
/// `MMM_BIN_DIR=/usr/sbin` runs a test with the installed packages' binaries
/// (scripts/test-packages.sh).
pub const BIN_DIR_ENV: &str = "MMM_BIN_DIR";

/// The path of binary `name` in the target directory this test executable was built in
/// (`target/debug/<name>`), or in `$MMM_BIN_DIR` for the shipped programs; fails, naming
/// the build command, when it is not built.
pub fn workspace_binary(name: &str) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        if ["mmm_agentd", "mmm_mond", "mmm_control", "mmm_tls"].contains(&name) {
            let p = PathBuf::from(dir).join(name);
            return if p.is_file() {
                Ok(p)
            } else {
                Err(TestbedError::MissingPrerequisite {
                    what: format!("binary {name} in ${BIN_DIR_ENV} ({})", p.display()),
                    hint: "install the packages first: dpkg -i target/debian/*.deb".into(),
                })
            };
        }
    }
    let exe = std::env::current_exe().map_err(|source| TestbedError::Io {
        what: "locating the test executable".into(),
        source,
    })?;
    // target/debug/deps/<test>-<hash> or target/debug/<bin>.
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(3)
        .map(|dir| dir.join(name))
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| TestbedError::MissingPrerequisite {
            what: format!("binary {name} (looked in {candidates:?})"),
            hint: "build it first: cargo build --bins".into(),
        })
}
