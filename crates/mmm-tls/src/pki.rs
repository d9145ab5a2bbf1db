//! The cluster's certificates (rcgen): a CA made once (or read back from `ca.pem` and
//! `ca.key` when they exist, so that a host added later gets a certificate of the same CA)
//! and one leaf certificate per [`Bundle`], signed by it.
//!
//! Every leaf is ECDSA P-256, carries both extended key usages (serverAuth and clientAuth:
//! an agent accepts the monitor's connections, the monitor connects to agents and accepts
//! mmm_control's connections) and the bundle's IP addresses as subject alternative names
//! (mmm-rs does not match them, as 2.2.1 did not; they are there for other clients and
//! for the operator's `openssl x509 -text`). Files: `ca.pem`, `ca.key` (0600, stays where
//! it was made), and per bundle `<name>/host.pem`, `<name>/host.key` (0600),
//! `<name>/ca.pem`.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::TlsError;

/// The CA's certificate file in the output directory (and in every bundle).
pub const CA_CERT: &str = "ca.pem";
/// The CA's private key (never copied to another host).
pub const CA_KEY: &str = "ca.key";
/// A bundle's certificate file.
pub const HOST_CERT: &str = "host.pem";
/// A bundle's private key.
pub const HOST_KEY: &str = "host.key";

/// How long a new CA is valid (days).
pub const CA_DAYS: i64 = 20 * 365;

/// Which program(s) use a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    /// The monitor host: mmm_mond (client of the agents, server of the control port) and
    /// mmm_control there.
    Monitor,
    /// A database host: mmm_agentd.
    Host,
    /// Another host running mmm_control.
    Client,
}

/// One host's certificate: its name (the directory and the certificate's CN), what runs
/// there, and its addresses (subject alternative names; the first is where it is copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// `monitor`, a `<host>` name, or a `--client` name.
    pub name: String,
    /// What runs there.
    pub kind: BundleKind,
    /// IP subject alternative names.
    pub ips: Vec<IpAddr>,
}

/// What [`make`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    /// Whether the CA was made now (false: read back from the directory).
    pub new_ca: bool,
    /// The bundles' directories, in the order given.
    pub dirs: Vec<PathBuf>,
    /// The leaves' last day of validity (`YYYY-MM-DD`).
    pub not_after: String,
}

/// Makes (or reads back) the CA in `out` and writes every bundle's directory, leaves valid
/// for `days` days. `label` names the cluster in the certificates' subjects.
pub fn make(out: &Path, label: &str, bundles: &[Bundle], days: i64) -> Result<Made, TlsError> {
    fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let (ca_pem, ca_key, new_ca) = ca(out, label)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(|e| TlsError::Cert {
        what: format!("reading back {}", out.join(CA_CERT).display()),
        reason: e.to_string(),
    })?;
    let now = OffsetDateTime::now_utc();
    let not_after = now + Duration::days(days);
    let mut dirs = Vec::new();
    for b in bundles {
        let dir = out.join(&b.name);
        fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(&b.name, label);
        params.subject_alt_names = b.ips.iter().map(|ip| SanType::IpAddress(*ip)).collect();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - Duration::hours(1);
        params.not_after = not_after;
        let key = KeyPair::generate().map_err(|e| cert_err(&b.name, e))?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| cert_err(&b.name, e))?;
        write_file(&dir.join(HOST_KEY), key.serialize_pem().as_bytes(), 0o600)?;
        write_file(&dir.join(HOST_CERT), cert.pem().as_bytes(), 0o644)?;
        write_file(&dir.join(CA_CERT), ca_pem.as_bytes(), 0o644)?;
        dirs.push(dir);
    }
    let d = not_after.date();
    Ok(Made {
        new_ca,
        dirs,
        not_after: format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
    })
}

/// The CA: read back when `ca.pem` and `ca.key` exist, else made and written.
fn ca(out: &Path, label: &str) -> Result<(String, KeyPair, bool), TlsError> {
    let (cert_path, key_path) = (out.join(CA_CERT), out.join(CA_KEY));
    match (cert_path.exists(), key_path.exists()) {
        (true, true) => {
            let pem = fs::read_to_string(&cert_path).map_err(|e| io(&cert_path, e))?;
            let key_pem = fs::read_to_string(&key_path).map_err(|e| io(&key_path, e))?;
            let key = KeyPair::from_pem(&key_pem).map_err(|e| TlsError::Cert {
                what: format!("reading {}", key_path.display()),
                reason: e.to_string(),
            })?;
            Ok((pem, key, false))
        }
        (false, false) => {
            let mut params = CertificateParams::default();
            params.distinguished_name = dn(&format!("MySQL-MMM CA {label}"), label);
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            let now = OffsetDateTime::now_utc();
            params.not_before = now - Duration::hours(1);
            params.not_after = now + Duration::days(CA_DAYS);
            let key = KeyPair::generate().map_err(|e| cert_err("the CA", e))?;
            let cert = params
                .self_signed(&key)
                .map_err(|e| cert_err("the CA", e))?;
            write_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
            write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
            Ok((cert.pem(), key, true))
        }
        (has_cert, _) => Err(TlsError::HalfCa {
            present: if has_cert { &cert_path } else { &key_path }
                .display()
                .to_string(),
            missing: if has_cert { &key_path } else { &cert_path }
                .display()
                .to_string(),
        }),
    }
}

/// `CN=<cn>, O=MySQL-MMM cluster <label>`.
fn dn(cn: &str, label: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(
        DnType::OrganizationName,
        format!("MySQL-MMM cluster {label}"),
    );
    dn
}

fn cert_err(name: &str, e: rcgen::Error) -> TlsError {
    TlsError::Cert {
        what: format!("making the certificate of {name}"),
        reason: e.to_string(),
    }
}

fn io(path: &Path, e: std::io::Error) -> TlsError {
    TlsError::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// Writes `bytes` to `path` with `mode` (a key is never readable by others, not even
/// between create and chmod).
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|e| io(path, e))?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| io(path, e))?;
    f.write_all(bytes).map_err(|e| io(path, e))
}
