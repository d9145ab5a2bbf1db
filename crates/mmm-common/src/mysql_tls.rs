//! TLS for the MySQL connections of the monitor and the agents (issue 18): the `<host>`
//! directives `mysql_ssl_mode`, `mysql_ssl_ca`, `mysql_ssl_cert` and `mysql_ssl_key`, named
//! after the MySQL client's `--ssl-mode`, `--ssl-ca`, `--ssl-cert` and `--ssl-key`, apply to
//! every connection mmm-rs makes to that host's server (the monitor's checks, the agent's
//! own server and its peer). Without them (`DISABLED`) connections are plain, as in 2.2.1.
//! The replication links between the servers are not changed (their `MASTER_SSL` settings
//! stay as the DBA made them).
//!
//! The modes, as the MySQL client has them: `REQUIRED` encrypts without checking the
//! server's certificate, `VERIFY_CA` also checks that a CA in `mysql_ssl_ca` signed it,
//! `VERIFY_IDENTITY` also that it names the host's `ip`. `PREFERRED` (the MySQL client's
//! default: TLS when the server offers it, else plain) is not offered: a silent fall back
//! to plain text is what a site that sets these directives wants to rule out.

use std::path::PathBuf;

use serde::Serialize;

/// `mysql_ssl_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SslMode {
    /// Plain connections (2.2.1).
    #[default]
    Disabled,
    /// Encrypted; the server's certificate is not checked.
    Required,
    /// Encrypted; the certificate is signed by a CA of `mysql_ssl_ca`.
    VerifyCa,
    /// As `VerifyCa`, and the certificate names the address connected to.
    VerifyIdentity,
}

impl SslMode {
    /// The words `mysql_ssl_mode` takes.
    pub const NAMES: [&'static str; 4] = ["DISABLED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"];

    /// A mode from its word (any case, `-` or `_`).
    pub fn parse(s: &str) -> Option<SslMode> {
        Some(
            match s.trim().to_ascii_uppercase().replace('-', "_").as_str() {
                "DISABLED" => SslMode::Disabled,
                "REQUIRED" => SslMode::Required,
                "VERIFY_CA" => SslMode::VerifyCa,
                "VERIFY_IDENTITY" => SslMode::VerifyIdentity,
                _ => return None,
            },
        )
    }

    /// Its word.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disabled => "DISABLED",
            SslMode::Required => "REQUIRED",
            SslMode::VerifyCa => "VERIFY_CA",
            SslMode::VerifyIdentity => "VERIFY_IDENTITY",
        }
    }
}

impl std::str::FromStr for SslMode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        SslMode::parse(s).ok_or(())
    }
}

/// The TLS settings of the connections to one host's server.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct MysqlTls {
    /// `mysql_ssl_mode`.
    pub mode: SslMode,
    /// `mysql_ssl_ca`: the CA certificate(s) (PEM) that sign the server's certificate.
    pub ca: Option<String>,
    /// `mysql_ssl_cert`: this program's certificate, for accounts that `REQUIRE X509`.
    pub cert: Option<String>,
    /// `mysql_ssl_key`: its key.
    pub key: Option<String>,
}

impl MysqlTls {
    /// Nothing set: plain connections, as 2.2.1.
    pub fn is_plain(&self) -> bool {
        *self == MysqlTls::default()
    }

    /// The options for `mysql_async`, or `None` for plain connections.
    pub fn ssl_opts(&self) -> Option<mysql_async::SslOpts> {
        if self.mode == SslMode::Disabled {
            return None;
        }
        let mut o = mysql_async::SslOpts::default();
        if let Some(ca) = &self.ca {
            o = o
                .with_root_certs(vec![PathBuf::from(ca).into()])
                .with_disable_built_in_roots(true);
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            o = o.with_client_identity(Some(mysql_async::ClientIdentity::new(
                PathBuf::from(cert).into(),
                PathBuf::from(key).into(),
            )));
        }
        Some(match self.mode {
            SslMode::Required => o.with_danger_accept_invalid_certs(true),
            SslMode::VerifyCa => o.with_danger_skip_domain_validation(true),
            SslMode::VerifyIdentity | SslMode::Disabled => o,
        })
    }

    /// `builder` with these settings.
    pub fn apply(&self, builder: mysql_async::OptsBuilder) -> mysql_async::OptsBuilder {
        builder.ssl_opts(self.ssl_opts())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        for n in SslMode::NAMES {
            assert_eq!(SslMode::parse(n).unwrap().as_str(), n);
        }
        assert_eq!(SslMode::parse("verify-ca"), Some(SslMode::VerifyCa));
        assert_eq!(SslMode::parse("PREFERRED"), None);
        assert!(MysqlTls::default().ssl_opts().is_none());
        let t = MysqlTls {
            mode: SslMode::VerifyCa,
            ca: Some("/etc/mysql-mmm/tls/ca.pem".into()),
            ..MysqlTls::default()
        };
        let o = t.ssl_opts().unwrap();
        assert!(o.skip_domain_validation());
        assert!(!o.accept_invalid_certs());
        assert_eq!(o.root_certs().len(), 1);
        let r = MysqlTls {
            mode: SslMode::Required,
            ..MysqlTls::default()
        };
        assert!(r.ssl_opts().unwrap().accept_invalid_certs());
    }
}
