//! `mmm_control`, MMM's admin client (spec §5.1): sends one command line to the monitor's
//! control port and prints the answer, byte for byte as 2.2.1 does.
//!
//! Layout: [`run`] is the whole program (argument handling, config, exit codes);
//! [`execute`] talks to a monitor at a given address and is what tests drive;
//! [`connect`] is the one place that opens the connection (plain or TLS, per `<socket>`).
//!
//! The command line is [`command`] (clap): it answers `--help`/`-h` (also per command:
//! `mmm_control move_role --help`) and `--version`/`-V` without a config or a monitor, and is
//! what the man page `mmm_control(8)` and the shell completions are generated from. Every
//! other command line is sent to the monitor word for word, whether clap recognises it or
//! not: the monitor (ours or a Perl 2.2.1 one) is what answers unknown commands and wrong
//! arguments, with 2.2.1's texts.
//!
//! Behaviour (2.2.1): `--version` prints the version; `@cluster` selects
//! `mmm_mon_<cluster>.conf`; no command → `See '<argv0> help' for usage information` and
//! exit 255; the command is sent as `<args joined by spaces>\n` followed by `quit\n`;
//! everything up to EOF is printed plus one `\n`. A monitor that cannot be reached →
//! `ERROR: Can't connect to monitor daemon!`, exit 1. Unlike 2.2.1 the answer is awaited
//! under a read timeout, so a frozen monitor cannot hang the client forever, and an answer
//! that reports a failed command (`ERROR:`, [`json::is_error_answer`]) exits 2 (2.2.1: 0);
//! the printed bytes are 2.2.1's either way.
//!
//! `--json` (mmm-rs) with `show` or `checks`: the answer parsed into JSON ([`json`]).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Arg, ArgAction, Command};
use mmm_common::config::{self, ControlSettings, ProgramClass, SocketConfig};
use mmm_common::daemon::{self, Section};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub mod json;

/// Exit status: the monitor cannot be reached (2.2.1's).
pub const EXIT_UNREACHABLE: u8 = 1;
/// Exit status: the monitor answered that the command failed (`ERROR:`; 2.2.1 exits 0).
pub const EXIT_ERROR_ANSWER: u8 = 2;
/// Exit status: `--json` and the answer could not be parsed.
pub const EXIT_UNPARSABLE: u8 = 3;
/// Exit status: no command, a wrong `--json` use, or the configuration could not be read.
pub const EXIT_USAGE: u8 = 255;

/// 2.2.1's connect timeout for the control connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The message printed when the monitor cannot be reached.
pub const CANT_CONNECT: &str = "ERROR: Can't connect to monitor daemon!";

/// Longest answer accepted from the monitor (a `show` of a large cluster is a few KiB).
pub const MAX_ANSWER: u64 = 16 * 1024 * 1024;

/// Errors talking to the monitor.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Connect (or TLS handshake) failed or timed out.
    #[error("connect: {0}")]
    Connect(String),
    /// Sending the command failed.
    #[error("send: {0}")]
    Send(std::io::Error),
    /// Reading the answer failed.
    #[error("read: {0}")]
    Read(std::io::Error),
    /// No EOF within the read timeout.
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
}

/// Where and how to reach the monitor.
#[derive(Debug, Clone)]
pub struct Target {
    /// `ip:port` of `<monitor>`.
    pub addr: String,
    /// `<socket>` (plain or ssl).
    pub socket: SocketConfig,
    /// Connect (and handshake) timeout.
    pub connect_timeout: Duration,
    /// Bound on waiting for the whole answer.
    pub read_timeout: Duration,
}

/// Opens the control connection (the single place that knows about sockets).
pub async fn connect(
    target: &Target,
) -> Result<impl AsyncRead + AsyncWrite + Unpin + Send, ControlError> {
    mmm_common::socket::connect(&target.addr, &target.socket, target.connect_timeout)
        .await
        .map_err(|e| ControlError::Connect(e.to_string()))
}

/// Sends `command` (one line, no newline) and returns everything the monitor wrote until it
/// closed the connection.
pub async fn send_command(target: &Target, command: &str) -> Result<String, ControlError> {
    let mut stream = connect(target).await?;
    let request = format!("{command}\nquit\n");
    let work = async {
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(ControlError::Send)?;
        stream.flush().await.map_err(ControlError::Send)?;
        let mut answer = Vec::new();
        (&mut stream)
            .take(MAX_ANSWER)
            .read_to_end(&mut answer)
            .await
            .map_err(ControlError::Read)?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    };
    match tokio::time::timeout(target.read_timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(ControlError::Timeout(target.read_timeout)),
    }
}

/// Sends `command` on a runtime of its own (the client is synchronous).
fn send_blocking(target: &Target, command: &str) -> Result<String, ControlError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ControlError::Connect(format!("can't start the runtime: {e}")))?;
    rt.block_on(send_command(target, command))
}

/// Runs one command against `target` and prints like 2.2.1: the answer plus `\n`, or
/// [`CANT_CONNECT`] and exit 1. Exit 0, or 2 when the answer reports a failed command
/// ([`json::is_error_answer`]). `args` are the command words (no `@cluster`).
pub fn execute(target: &Target, args: &[String], out: &mut dyn Write) -> ExitCode {
    let command = args.join(" ");
    match send_blocking(target, &command) {
        Ok(answer) => {
            let _ = writeln!(out, "{answer}");
            let _ = out.flush();
            if json::is_error_answer(&answer) {
                ExitCode::from(EXIT_ERROR_ANSWER)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            tracing::debug!("{e}");
            let _ = writeln!(out, "{CANT_CONNECT}");
            let _ = out.flush();
            ExitCode::from(EXIT_UNREACHABLE)
        }
    }
}

/// `--json show` / `--json checks …`: runs the command and prints its answer as JSON (one
/// document and a newline; schema in [`json`]). An `ERROR:` answer prints
/// `{"error": "<answer>"}` and exits 2; an unreachable monitor prints
/// `{"error": "ERROR: Can't connect to monitor daemon!"}` and exits 1; an answer the parser
/// does not understand exits 3 with the reason on stderr.
pub fn execute_json(target: &Target, args: &[String], out: &mut dyn Write) -> ExitCode {
    let error_doc = |text: &str| serde_json::json!({ "error": text }).to_string();
    let answer = match send_blocking(target, &args.join(" ")) {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!("{e}");
            let _ = writeln!(out, "{}", error_doc(CANT_CONNECT));
            return ExitCode::from(EXIT_UNREACHABLE);
        }
    };
    if json::is_error_answer(&answer) {
        let _ = writeln!(out, "{}", error_doc(answer.trim_end()));
        return ExitCode::from(EXIT_ERROR_ANSWER);
    }
    let doc = match args.first().map(String::as_str) {
        Some("show") => json::parse_show(&answer).map(|s| serde_json::to_string(&s)),
        _ => json::parse_checks(&answer).map(|c| serde_json::to_string(&c)),
    };
    match doc {
        Ok(Ok(text)) => {
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("{PROG}: {e}");
            ExitCode::from(EXIT_UNPARSABLE)
        }
        Err(e) => {
            eprintln!("{PROG}: {e}");
            ExitCode::from(EXIT_UNPARSABLE)
        }
    }
}

/// The program name.
pub const PROG: &str = "mmm_control";

/// The sections of `--help` and the man page after the commands.
pub const SECTIONS: &[Section] = &[
    Section {
        title: "FILES",
        items: &[
            ("/etc/mysql-mmm/mmm_mon.conf", "The monitor's configuration: mmm_control reads <monitor>->ip and port and <socket> from it (and mmm_common.conf, which it includes); looked up in /etc, /etc/mmm and /etc/mysql-mmm. With @NAME: mmm_mon_NAME.conf."),
        ],
    },
    Section {
        title: "ENVIRONMENT",
        items: &[
            ("MMM_CONFIG_DIR", "Colon-separated directories searched for the configuration instead of /etc, /etc/mmm and /etc/mysql-mmm."),
        ],
    },
    Section {
        title: "EXIT STATUS",
        items: &[
            ("0", "The monitor answered; the answer is printed with one more newline. Also --help and --version."),
            ("1", "The monitor could not be reached: ERROR: Can't connect to monitor daemon!"),
            ("2", "The monitor answered that the command failed (ERROR:, Error: or Invalid command); the answer is printed as 2.2.1 prints it (2.2.1 exits 0 here)."),
            ("3", "--json: the monitor's answer could not be parsed (the reason on stderr)."),
            ("255", "The configuration could not be read, no command was given, or --json with a command other than show and checks."),
        ],
    },
    Section {
        title: "SEE ALSO",
        items: &[("", "mmm_mond(8), mmm_agentd(8), /usr/share/doc/mysql-mmm-monitor/")],
    },
];

/// A command word (sent to the monitor as is) and its arguments as 2.2.1's `help` writes
/// them (the usage line of `--help` and the man page).
fn cmd(name: &'static str, args: &'static str, about: &'static str) -> Command {
    let usage = if args.is_empty() {
        format!("{PROG} {name}")
    } else {
        format!("{PROG} {name} {args}")
    };
    Command::new(name).about(about).override_usage(usage)
}

/// `<host>`, optional for clap (a missing one is the monitor's error to report).
fn host_arg(help: &'static str) -> Arg {
    Arg::new("host").value_name("HOST").help(help)
}

/// `mmm_control [@cluster] <command> [args…]` (spec §5.1, the commands of §5.3).
pub fn command() -> Command {
    Command::new(PROG)
        .version(mmm_common::VERSION)
        .about("MySQL-MMM admin client: show the cluster, set hosts online and offline, move roles")
        .long_about(
            "mmm_control is the admin client of MySQL-MMM (mmm-rs, a drop-in port of MySQL-MMM \
2.2.1). It sends one command to the monitor (mmm_mond) at <monitor>->ip:port from \
mmm_mon.conf and prints the monitor's answer. Commands and answers are 2.2.1's: a Perl \
2.2.1 monitor can be driven with it, and it prints what 2.2.1's mmm_control prints.",
        )
        .disable_help_subcommand(true)
        .override_usage(format!("{PROG} [@CLUSTER] [--json] [COMMAND]"))
        .subcommand_value_name("COMMAND")
        .subcommand_help_heading("Commands")
        .after_long_help(daemon::sections_help(SECTIONS))
        .arg(daemon::cluster_arg("mmm_mon"))
        .arg(
            Arg::new("json")
                .long("json")
                .global(true)
                .action(ArgAction::SetTrue)
                .help("With show or checks: print the answer as JSON (schema in operations.md); mmm-rs extension"),
        )
        .subcommands([
            cmd("help", "", "Show the monitor's list of commands"),
            cmd("ping", "", "Ping the monitor"),
            cmd("show", "", "Show every host's state and roles"),
            cmd("checks", "[<HOST>|all [<CHECK>|all]]", "Show the checks' status, with the time of their last change")
                .arg(host_arg("A host, or all (the default)"))
                .arg(
                    Arg::new("check")
                        .value_name("CHECK")
                        .value_parser(["ping", "mysql", "rep_threads", "rep_backlog", "all"])
                        .help("A check, or all (the default)"),
                ),
            cmd("set_online", "<HOST>", "Set HOST online (from AWAITING_RECOVERY or ADMIN_OFFLINE)")
                .arg(host_arg("The host")),
            cmd("set_offline", "<HOST>", "Set HOST offline (ADMIN_OFFLINE): its roles move elsewhere")
                .arg(host_arg("The host")),
            cmd("mode", "", "Print the monitor's mode (ACTIVE, MANUAL, PASSIVE)"),
            cmd("set_active", "", "Switch into active mode"),
            cmd("set_manual", "", "Switch into manual mode"),
            cmd("set_passive", "", "Switch into passive mode"),
            cmd("move_role", "[--force] <ROLE> <HOST>", "Move exclusive role ROLE to HOST (the writer: a planned switchover)")
                .arg(
                    Arg::new("force")
                        .long("force")
                        .action(ArgAction::SetTrue)
                        .help("Move the writer role to a master in REPLICATION_FAIL or REPLICATION_DELAY (which becomes ONLINE). Only use --force if you know what you are doing!"),
                )
                .arg(Arg::new("role").value_name("ROLE").help("The role (writer)"))
                .arg(host_arg("The host that gets the role")),
            cmd("set_ip", "<IP> <HOST>", "Passive mode only: give the role with IP to HOST (applied by set_active)")
                .arg(Arg::new("ip").value_name("IP").help("The role's IP"))
                .arg(host_arg("The host")),
            cmd("accept_errant", "<HOST>", "mmm-rs: accept the errant transactions of a master kept out by the errant-transaction guard; they replicate into the active master (as 2.2.1 would) and HOST may go online")
                .arg(host_arg("The master kept out")),
        ])
}

/// The whole program: `args` is the full argv (`argv[0]` first).
pub fn run(args: Vec<String>) -> ExitCode {
    let mut stdout = std::io::stdout();
    let argv0 = args
        .first()
        .cloned()
        .unwrap_or_else(|| "mmm_control".into());
    // Help and version are answered here; everything else, recognised or not, goes to the
    // monitor as 2.2.1 sends it.
    if let Err(e) = command().try_get_matches_from(&args) {
        use clap::error::ErrorKind;
        if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
            return daemon::print_clap_error(&e);
        }
    }
    let mut rest: Vec<String> = args.into_iter().skip(1).collect();
    let json = rest.iter().any(|a| a == "--json");
    rest.retain(|a| a != "--json");
    let cluster = match rest.first() {
        Some(a) if a.starts_with('@') => {
            let c = a.trim_start_matches('@').to_string();
            rest.remove(0);
            Some(c)
        }
        _ => None,
    };
    let target = match load_target(cluster.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if rest.is_empty() {
        eprintln!("See '{argv0} help' for usage information");
        return ExitCode::from(EXIT_USAGE);
    }
    if json {
        if !matches!(rest[0].as_str(), "show" | "checks") {
            eprintln!("{PROG}: --json is for show and checks");
            return ExitCode::from(EXIT_USAGE);
        }
        return execute_json(&target, &rest, &mut stdout);
    }
    execute(&target, &rest, &mut stdout)
}

/// Reads `mmm_mon[_<cluster>].conf` as class CONTROL and builds the [`Target`].
fn load_target(cluster: Option<&str>) -> Result<Target, String> {
    let name = config::base_name("mmm_mon", cluster);
    let cfg = config::load(&name, ProgramClass::Control).map_err(|e| e.to_string())?;
    let settings = cfg.control_settings().map_err(|e| e.to_string())?;
    Ok(target_from_config(&settings))
}

/// The [`Target`] described by mmm_control's settings: `<monitor> ip:port`, `<socket>`,
/// connect timeout 10 s, and a read timeout long enough for the slowest command (one agent
/// connect + reply, as `set_online` pings the agent) plus a margin.
pub fn target_from_config(cfg: &ControlSettings) -> Target {
    Target {
        addr: cfg.monitor_addr(),
        socket: cfg.socket.clone(),
        connect_timeout: CONNECT_TIMEOUT,
        read_timeout: cfg.ext.agent_connect_timeout
            + cfg.ext.agent_read_timeout
            + Duration::from_secs(10),
    }
}
