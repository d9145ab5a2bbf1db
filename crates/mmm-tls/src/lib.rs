//! `mmm_tls [@cluster]`: mutual TLS for a MySQL-MMM cluster in one command (mmm-rs
//! addition, issue 15). Reads the monitor's configuration (`mmm_mon[_cluster].conf` and the
//! `mmm_common.conf` it includes, as mmm_control does), makes a cluster CA and one
//! certificate per host — the monitor (for mmm_mond and mmm_control there), every
//! `<host>` (for its agent), and each `--client` (mmm_control elsewhere) — and prints the
//! `<socket>` section to paste into mmm_common.conf and which directory to copy where.
//!
//! Layout: [`plan`] (which bundles, from the configuration), [`pki`] (the certificates),
//! [`instructions`] (the text printed), [`command`] and [`run`] (the program).

pub mod pki;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{value_parser, Arg, ArgAction, Command};
use mmm_common::config::{self, Config, ProgramClass};
use mmm_common::daemon::{self, Section};

pub use pki::{Bundle, BundleKind, Made};

/// The program name.
pub const PROG: &str = "mmm_tls";

/// Where the printed `<socket>` section expects each host's files by default.
pub const DEFAULT_INSTALL_DIR: &str = "/etc/mysql-mmm/tls";

/// Default validity of the host certificates (days).
pub const DEFAULT_DAYS: i64 = 10 * 365;

/// The bundle name of the monitor host.
pub const MONITOR: &str = "monitor";

/// Errors of mmm_tls.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The configuration could not be loaded.
    #[error("{0}")]
    Config(String),
    /// A host without a usable `ip`.
    #[error(
        "host {host} has no ip in the configuration: every <host> needs its ip for its certificate"
    )]
    NoIp {
        /// The `<host>` name.
        host: String,
    },
    /// A bundle name that is not a plain name, or used twice.
    #[error("bad certificate name '{0}': use letters, digits, '_' and '-', each name once (the monitor's is 'monitor')")]
    BadName(String),
    /// Half a CA in the output directory.
    #[error("{present} exists but {missing} does not: restore it, or remove both to make a new CA (every host then needs its new certificate)")]
    HalfCa {
        /// The file that is there.
        present: String,
        /// The one that is not.
        missing: String,
    },
    /// rcgen refused.
    #[error("{what}: {reason}")]
    Cert {
        /// What was being done.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The bundles of a cluster: `monitor` (every `monitor_ips` address, `<monitor> ip` when it
/// is an address, and 127.0.0.1), one per `<host>` (its `ip`), then one per client name.
pub fn plan(cfg: &Config, clients: &[String]) -> Result<Vec<Bundle>, TlsError> {
    let mut ips: Vec<IpAddr> = cfg.ext.monitor_ips.clone();
    if let Some(ip) = cfg
        .monitor
        .as_ref()
        .and_then(|m| m.ip.as_deref())
        .and_then(|ip| ip.trim_matches(['[', ']']).parse::<IpAddr>().ok())
    {
        ips.push(ip);
    }
    ips.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut seen = Vec::new();
    ips.retain(|ip| {
        let new = !seen.contains(ip);
        seen.push(*ip);
        new
    });
    let mut bundles = vec![Bundle {
        name: MONITOR.to_string(),
        kind: BundleKind::Monitor,
        ips,
    }];
    for h in &cfg.hosts {
        let ip =
            h.ip.as_deref()
                .and_then(|ip| ip.parse::<IpAddr>().ok())
                .ok_or_else(|| TlsError::NoIp {
                    host: h.name.clone(),
                })?;
        bundles.push(Bundle {
            name: h.name.clone(),
            kind: BundleKind::Host,
            ips: vec![ip],
        });
    }
    for c in clients {
        bundles.push(Bundle {
            name: c.clone(),
            kind: BundleKind::Client,
            ips: Vec::new(),
        });
    }
    let mut names: Vec<&str> = Vec::new();
    for b in &bundles {
        let plain = !b.name.is_empty()
            && b.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !plain || names.contains(&b.name.as_str()) {
            return Err(TlsError::BadName(b.name.clone()));
        }
        names.push(&b.name);
    }
    Ok(bundles)
}

/// The `<socket>` section for files installed in `install_dir`.
pub fn socket_section(install_dir: &str) -> String {
    format!(
        "<socket>\n\
         \x20   type                    ssl\n\
         \x20   cert_file               {install_dir}/{}\n\
         \x20   key_file                {install_dir}/{}\n\
         \x20   ca_file                 {install_dir}/{}\n\
         </socket>\n",
        pki::HOST_CERT,
        pki::HOST_KEY,
        pki::CA_CERT
    )
}

/// What to do next: the files made, where each directory goes, the `<socket>` section, the
/// order of the restarts.
pub fn instructions(out: &Path, bundles: &[Bundle], made: &Made, install_dir: &str) -> String {
    let mut s = String::new();
    let ca = out.join(pki::CA_CERT);
    let key = out.join(pki::CA_KEY);
    if made.new_ca {
        let _ = writeln!(
            s,
            "Made a new cluster CA: {} (its key {} stays here, mode 0600; keep a backup).",
            ca.display(),
            key.display()
        );
    } else {
        let _ = writeln!(
            s,
            "Signed with the existing cluster CA {} (hosts keep their ca.pem).",
            ca.display()
        );
    }
    let _ = writeln!(
        s,
        "Certificates valid until {} (run mmm_tls again before then).\n",
        made.not_after
    );
    let _ = writeln!(
        s,
        "1. Copy each directory to {install_dir}/ on its host (host.key stays mode 0600):"
    );
    for (b, dir) in bundles.iter().zip(&made.dirs) {
        let files = format!(
            "{d}/{} {d}/{} {d}/{}",
            pki::HOST_CERT,
            pki::HOST_KEY,
            pki::CA_CERT,
            d = dir.display()
        );
        match b.kind {
            BundleKind::Monitor => {
                let _ = writeln!(
                    s,
                    "   the monitor (mmm_mond and mmm_control), on this host if it is the monitor:\n\
                     \x20     install -d -m 0700 {install_dir} && cp -p {files} {install_dir}/"
                );
            }
            BundleKind::Host => {
                let ip = b.ips.first().map(|ip| ip.to_string()).unwrap_or_default();
                let _ = writeln!(
                    s,
                    "   {name} ({ip}, mmm_agentd):\n\
                     \x20     ssh root@{ip} install -d -m 0700 {install_dir} && scp -p {files} root@{ip}:{install_dir}/",
                    name = b.name
                );
            }
            BundleKind::Client => {
                let _ = writeln!(
                    s,
                    "   {name} (mmm_control on another host; add its address to control_allow and bind \
                     <monitor> ip to an address it can reach):\n\
                     \x20     scp -p {files} root@HOST:{install_dir}/",
                    name = b.name
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\n2. Add this section to mmm_common.conf on every host (the same file everywhere):\n"
    );
    s.push_str(&socket_section(install_dir));
    let _ = writeln!(
        s,
        "\n3. Restart: stop mmm_mond; restart mmm_agentd on every database host; start mmm_mond.\n\
         \x20  Check: mmm_control show. From then on the agents and the control port accept only\n\
         \x20  clients with a certificate signed by this CA."
    );
    s
}

/// The sections of `--help` and the man page after the options.
#[rustfmt::skip]
pub const SECTIONS: &[Section] = &[
    Section {
        title: "FILES",
        items: &[
            ("/etc/mysql-mmm/mmm_mon.conf", "The monitor's configuration (and the mmm_common.conf it includes): the hosts and their ip, monitor_ips and <monitor> ip. With @NAME: mmm_mon_NAME.conf."),
            ("OUT/ca.pem, OUT/ca.key", "The cluster CA. Made on the first run; later runs sign with it, so a host added to the configuration gets a certificate the others trust."),
            ("OUT/NAME/host.pem, host.key, ca.pem", "One directory per host (monitor, every <host>, every --client), to be copied to /etc/mysql-mmm/tls/ on that host."),
        ],
    },
    Section {
        title: "EXIT STATUS",
        items: &[
            ("0", "The certificates were written (or --help, --version)."),
            ("1", "The configuration could not be read, or a file could not be written."),
        ],
    },
    Section {
        title: "SEE ALSO",
        items: &[("", "mmm_mond(8), mmm_agentd(8), mmm_control(8), /usr/share/doc/mysql-mmm-monitor/security.md")],
    },
];

/// `mmm_tls [@cluster] [--out DIR] [--install-dir DIR] [--days N] [--client NAME]...`
pub fn command() -> Command {
    Command::new(PROG)
        .version(mmm_common::VERSION)
        .about("Make a MySQL-MMM cluster's CA and per-host TLS certificates, and print the <socket> section")
        .long_about(
            "mmm_tls turns on mutual TLS between mmm_mond, the mmm_agentd of every host and \
mmm_control. It reads the monitor's configuration (the hosts and their addresses), makes a \
cluster CA (or uses the one already in OUT), one certificate per host signed by it, and prints \
the <socket> section to add to mmm_common.conf and where to copy each host's files. Run it on \
the monitor host.",
        )
        .after_long_help(daemon::sections_help(SECTIONS))
        .arg(daemon::cluster_arg("mmm_mon"))
        .arg(
            Arg::new("config")
                .long("config")
                .value_name("NAME")
                .help("Read this configuration instead of mmm_mon[_CLUSTER].conf (a name looked up as the programs do, or a path)"),
        )
        .arg(
            Arg::new("out")
                .long("out")
                .short('o')
                .value_name("DIR")
                .value_parser(value_parser!(PathBuf))
                .help("Where to write the CA and the hosts' directories [default: ./mmm-tls, ./mmm-tls-CLUSTER]"),
        )
        .arg(
            Arg::new("install-dir")
                .long("install-dir")
                .value_name("DIR")
                .default_value(DEFAULT_INSTALL_DIR)
                .help("Where the files go on each host (the paths of the printed <socket> section)"),
        )
        .arg(
            Arg::new("days")
                .long("days")
                .value_name("N")
                .value_parser(value_parser!(i64).range(1..=36500))
                .default_value("3650")
                .help("How long the host certificates are valid"),
        )
        .arg(
            Arg::new("client")
                .long("client")
                .value_name("NAME")
                .action(ArgAction::Append)
                .help("Also make a certificate NAME for mmm_control on another host (repeatable)"),
        )
}

/// Loads the configuration `name` (a path when it contains `/`) for mmm_control's class.
fn load(name: &str) -> Result<Config, TlsError> {
    let p = Path::new(name);
    let res = match (p.parent(), p.file_name()) {
        (Some(dir), Some(file)) if name.contains('/') => config::load_from(
            &[dir.to_path_buf()],
            &file.to_string_lossy(),
            ProgramClass::Control,
        ),
        _ => config::load(name, ProgramClass::Control),
    };
    res.map_err(|e| TlsError::Config(e.to_string()))
}

/// The whole program: `args` is the full argv.
pub fn run(args: Vec<String>) -> ExitCode {
    let m = match command().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => return daemon::print_clap_error(&e),
    };
    let cluster = m.get_one::<String>("cluster").cloned();
    let name = m
        .get_one::<String>("config")
        .cloned()
        .unwrap_or_else(|| config::base_name("mmm_mon", cluster.as_deref()));
    let out = m.get_one::<PathBuf>("out").cloned().unwrap_or_else(|| {
        PathBuf::from(match &cluster {
            Some(c) => format!("mmm-tls-{c}"),
            None => "mmm-tls".to_string(),
        })
    });
    let install_dir = m
        .get_one::<String>("install-dir")
        .map(|s| s.trim_end_matches('/').to_string())
        .unwrap_or_else(|| DEFAULT_INSTALL_DIR.to_string());
    let days = m.get_one::<i64>("days").copied().unwrap_or(DEFAULT_DAYS);
    let clients: Vec<String> = m
        .get_many::<String>("client")
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    let label = cluster.as_deref().unwrap_or("default");
    let result = load(&name)
        .and_then(|cfg| plan(&cfg, &clients))
        .and_then(|bundles| pki::make(&out, label, &bundles, days).map(|made| (bundles, made)));
    match result {
        Ok((bundles, made)) => {
            print!("{}", instructions(&out, &bundles, &made, &install_dir));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{PROG}: {e}");
            ExitCode::from(1)
        }
    }
}
