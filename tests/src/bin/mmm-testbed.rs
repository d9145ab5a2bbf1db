//! `mmm-testbed`: the testbed from the shell (issue 3). `up` builds a testbed, prints its
//! topology as TOML and leaves it running (its base directory is recorded in
//! `<state-dir>/current`); `down`, `exec` and `sql` act on the recorded testbed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mmm_tests::{Testbed, TestbedError, TestbedOptions};

/// Default directory for the pointer to the CLI's testbed.
const DEFAULT_STATE_DIR: &str = "/tmp/mtcli";

#[derive(Parser)]
#[command(
    name = "mmm-testbed",
    about = "The mmm-rs multi-host testbed (needs root)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build a testbed, print its hosts (TOML) and leave it running.
    Up {
        /// Third octet of 198.18.N.0/24.
        #[arg(long, default_value_t = 2)]
        subnet: u8,
        /// Number of slaves of db1 (0..=2).
        #[arg(long, default_value_t = 2)]
        slaves: usize,
        /// Where the pointer to the running testbed is kept.
        #[arg(long, default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
    /// Tear the recorded testbed down.
    Down {
        #[arg(long, default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
    /// Print the recorded testbed's hosts (TOML).
    Show {
        #[arg(long, default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
    /// Run a command on a host (its namespace and private directories); exits with its code.
    Exec {
        #[arg(long, default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        /// db1, db2, db3, db4 or monitor.
        host: String,
        /// The command, after `--`.
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
    /// Inject a fault (or undo one): stop, kill9, freeze, thaw, start (the host's server);
    /// cut, restore (its link); limit KBIT, unlimit (its inbound rate, tc tbf on its bridge
    /// port); break, repair, delay SECS, undelay (its replication).
    Fault {
        #[arg(long, default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        op: FaultOp,
        host: String,
        /// Seconds, for `delay`; kbit/s, for `limit`.
        secs: Option<u32>,
    },
    /// Print the MAC in HOST's neighbour (ARP) cache for IP, or nothing.
    Neigh {
        #[arg(long, default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        host: String,
        ip: std::net::Ipv4Addr,
    },
    /// Run SQL as root on a host's server; prints rows tab-separated with a header line.
    Sql {
        #[arg(long, default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        host: String,
        query: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FaultOp {
    Stop,
    Kill9,
    Freeze,
    Thaw,
    Start,
    Cut,
    Restore,
    Limit,
    Unlimit,
    Break,
    Repair,
    Delay,
    Undelay,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mmm-testbed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn pointer(state_dir: &Path) -> PathBuf {
    state_dir.join("current")
}

fn attach(state_dir: &Path) -> Result<Testbed, TestbedError> {
    let p = pointer(state_dir);
    let base = std::fs::read_to_string(&p).map_err(|e| TestbedError::StateFile {
        path: p.clone(),
        detail: format!("{e} (no testbed is up for this state dir)"),
    })?;
    Testbed::attach(Path::new(base.trim()))
}

fn run(cli: Cli) -> Result<ExitCode, TestbedError> {
    match cli.cmd {
        Cmd::Up {
            subnet,
            slaves,
            state_dir,
        } => {
            if let Ok(existing) = attach(&state_dir) {
                if existing.base_dir().exists() {
                    return Err(TestbedError::State(format!(
                        "testbed {} is already up for {}; run `mmm-testbed down` first",
                        existing.id(),
                        state_dir.display()
                    )));
                }
            }
            std::fs::create_dir_all(&state_dir).map_err(|source| TestbedError::Io {
                what: format!("creating {}", state_dir.display()),
                source,
            })?;
            let tb = Testbed::up(TestbedOptions {
                subnet,
                slaves,
                ..Default::default()
            })?;
            let up = tb.up_duration();
            print!("{}", tb.to_toml()?);
            println!("up_seconds = {:.2}", up.as_secs_f64());
            let base = tb.detach()?;
            std::fs::write(pointer(&state_dir), format!("{}\n", base.display())).map_err(
                |source| TestbedError::Io {
                    what: "writing the state pointer".into(),
                    source,
                },
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Down { state_dir } => {
            let tb = attach(&state_dir)?;
            tb.down()?;
            let _ = std::fs::remove_file(pointer(&state_dir));
            // Removes the state directory only if nothing else is in it.
            let _ = std::fs::remove_dir(&state_dir);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Show { state_dir } => {
            print!("{}", attach(&state_dir)?.to_toml()?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Exec {
            state_dir,
            host,
            argv,
        } => {
            let tb = attach(&state_dir)?;
            let args: Vec<&str> = argv.iter().map(String::as_str).collect();
            let status = tb
                .command(&host, &args)?
                .status()
                .map_err(|source| TestbedError::Io {
                    what: format!("running {args:?} on {host}"),
                    source,
                })?;
            Ok(ExitCode::from(
                status
                    .code()
                    .and_then(|c| u8::try_from(c).ok())
                    .unwrap_or(1),
            ))
        }
        Cmd::Fault {
            state_dir,
            op,
            host,
            secs,
        } => {
            let tb = attach(&state_dir)?;
            match op {
                FaultOp::Stop => tb.mysql_stop(&host)?,
                FaultOp::Kill9 => tb.mysql_kill9(&host)?,
                FaultOp::Freeze => tb.mysql_freeze(&host)?,
                FaultOp::Thaw => tb.mysql_thaw(&host)?,
                FaultOp::Start => tb.mysql_start(&host)?,
                FaultOp::Cut => tb.cut_link(&host)?,
                FaultOp::Restore => tb.restore_link(&host)?,
                FaultOp::Limit => tb.limit_inbound(
                    &host,
                    secs.ok_or_else(|| TestbedError::State("limit needs KBIT".into()))?,
                )?,
                FaultOp::Unlimit => tb.unlimit_inbound(&host)?,
                FaultOp::Break => tb.break_replication(&host)?,
                FaultOp::Repair => tb.repair_replication(&host)?,
                FaultOp::Delay => tb.delay_replication(
                    &host,
                    secs.ok_or_else(|| TestbedError::State("delay needs SECS".into()))?,
                )?,
                FaultOp::Undelay => tb.undelay_replication(&host)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Neigh {
            state_dir,
            host,
            ip,
        } => {
            if let Some(mac) = attach(&state_dir)?.neighbour_mac(&host, ip)? {
                println!("{mac}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Sql {
            state_dir,
            host,
            query,
        } => {
            let tb = attach(&state_dir)?;
            let rows = tb.query(&host, &query)?;
            if let Some(first) = rows.first() {
                println!("{}", first.columns().join("\t"));
            }
            for row in &rows {
                let vals: Vec<&str> = row
                    .values()
                    .iter()
                    .map(|v| v.as_deref().unwrap_or("NULL"))
                    .collect();
                println!("{}", vals.join("\t"));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
