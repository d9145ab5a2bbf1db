//! Test certificates for the TLS tests of every crate (feature `test-support`): two CAs
//! (`ca`, `rogue-ca`) and leaf certificates signed by either, made with the `openssl` CLI
//! (X.509 v3 with an `IP:127.0.0.1` subject alternative name). Not for production use.

use std::path::Path;
use std::process::Command;

use crate::config::{SocketConfig, SocketType};

/// The two certificate authorities every test PKI has.
pub const CAS: [&str; 2] = ["ca", "rogue-ca"];

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("the openssl CLI is needed to make test certificates: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Writes `ca.pem`/`ca.key`, `rogue-ca.pem`/`rogue-ca.key` and, for every `(name, ca)` of
/// `leaves`, `<name>.pem`/`<name>.key` signed by `ca` into `dir`.
pub fn make_pki(dir: &Path, leaves: &[(&str, &str)]) -> Result<(), String> {
    for ca in CAS {
        let (key, pem, subj) = (
            format!("{ca}.key"),
            format!("{ca}.pem"),
            format!("/CN={ca}"),
        );
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &pem,
                "-days",
                "2",
                "-subj",
                &subj,
            ],
        )?;
    }
    // X.509 v3 (webpki refuses the v1 certificates `x509 -req` makes without extensions).
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n",
    )
    .map_err(|e| format!("writing ext.cnf: {e}"))?;
    for (name, ca) in leaves {
        let (key, csr, pem, subj) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("/CN={name}"),
        );
        let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &subj,
            ],
        )?;
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_pem,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        )?;
    }
    Ok(())
}

/// The `<socket> type ssl` settings presenting leaf `name` and trusting `ca`.
pub fn ssl_config(dir: &Path, name: &str, ca: &str) -> SocketConfig {
    SocketConfig {
        kind: SocketType::Ssl,
        cert_file: Some(dir.join(format!("{name}.pem")).display().to_string()),
        key_file: Some(dir.join(format!("{name}.key")).display().to_string()),
        ca_file: Some(dir.join(format!("{ca}.pem")).display().to_string()),
    }
}

/// A PKI in a temporary directory with leaves `server` and `client` (signed by `ca`) and
/// `rogue` (signed by `rogue-ca`).
pub struct TestPki {
    /// Where the files are (removed on drop).
    pub dir: tempfile::TempDir,
}

impl TestPki {
    /// Makes the PKI.
    pub fn new() -> Result<TestPki, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        make_pki(
            dir.path(),
            &[("server", "ca"), ("client", "ca"), ("rogue", "rogue-ca")],
        )?;
        Ok(TestPki { dir })
    }

    /// Settings presenting leaf `name` and trusting `ca`.
    pub fn config(&self, name: &str, ca: &str) -> SocketConfig {
        ssl_config(self.dir.path(), name, ca)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_files() {
        let pki = TestPki::new().unwrap();
        for f in [
            "ca.pem",
            "rogue-ca.pem",
            "server.pem",
            "client.key",
            "rogue.pem",
        ] {
            assert!(pki.dir.path().join(f).is_file(), "{f}");
        }
        assert_eq!(pki.config("client", "ca").kind, SocketType::Ssl);
    }
}
