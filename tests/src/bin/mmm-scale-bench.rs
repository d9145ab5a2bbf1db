//! `mmm-scale-bench`: the monitor scaling benchmark (issue 7 "Benchmarks"; docs/scaling.md).
//!
//! For each size (default 4, 50 and 200 configured hosts) it builds a testbed, adds the
//! extra hosts with [`mmm_tests::fleet::Fleet`] (addresses on db3, 10 % of the hosts on a
//! fifth server that is later frozen), starts a real `mmm_agentd` for every configured host
//! and the real `mmm_mond` (default check settings: check_period 5 s, trap_period 10 s,
//! timeout 2 s), sets every host online and then measures:
//!
//! - the monitor's VmRSS and CPU seconds (utime+stime from /proc/<pid>/stat) over a fixed
//!   steady-state window, and the agents' (per agent and in total);
//! - the detection delay of a real failure of db4's mysqld (kill -9, and SIGSTOP) →
//!   `db4 … HARD_OFFLINE` in `show`, minus trap_period, with no host hung and, when the
//!   size allows, with 10 % of the hosts hung (their server SIGSTOPped, all of them
//!   already HARD_OFFLINE), and the monitor's CPU while they hang.
//!
//! It prints figures and asserts no timing. Needs root and the daemons built:
//! `cargo build -p mmm-mon -p mmm-agent -p mmm-control -p mmm-tests`, then
//! `target/debug/mmm-scale-bench [--sizes 4,50,200] [--hung-percent 10] [--window 30]
//! [--reps 2] [--subnet 90]`.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ExitCode};
use std::time::{Duration, Instant};

use mmm_tests::fleet::Fleet;
use mmm_tests::{workspace_binary, Testbed, TestbedError, TestbedOptions};

/// trap_period of the default `<check mysql>` (subtracted from the detection delay).
const TRAP_PERIOD: f64 = 10.0;
/// Where the monitor's control port is (the testbed's mmm_mon.conf: 127.0.0.1, default port).
const CONTROL: &str = "127.0.0.1:9988";
/// The host whose mysqld is killed.
const VICTIM: &str = "db4";

#[derive(thiserror::Error, Debug)]
enum BenchError {
    #[error(transparent)]
    Testbed(#[from] TestbedError),
    #[error("{0}")]
    Failed(String),
}

type Result<T> = std::result::Result<T, BenchError>;

struct Args {
    sizes: Vec<usize>,
    hung_percent: usize,
    window: u64,
    reps: usize,
    subnet: u8,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut a = Args {
        sizes: vec![4, 50, 200],
        hung_percent: 10,
        window: 30,
        reps: 2,
        subnet: 90,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<usize>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--sizes" => {
                a.sizes = val
                    .split(',')
                    .map(num)
                    .collect::<std::result::Result<_, _>>()?
            }
            "--hung-percent" => a.hung_percent = num(&val)?,
            "--window" => a.window = num(&val)? as u64,
            "--reps" => a.reps = num(&val)?.max(1),
            "--subnet" => {
                a.subnet = val.parse().map_err(|e| format!("--subnet {val}: {e}"))?;
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if usize::from(a.subnet) + a.sizes.len() > 100 || a.subnet < 90 {
        return Err("subnets must stay within 90-99".into());
    }
    Ok(a)
}

/// Kills its children when dropped.
struct Daemons(Vec<Child>);

impl Drop for Daemons {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One control-port session from the monitor host: `lines`, then `quit`; the answer.
fn control(tb: &Testbed, lines: &[String]) -> Result<String> {
    let addr: SocketAddr = CONTROL
        .parse()
        .map_err(|e| BenchError::Failed(format!("{CONTROL}: {e}")))?;
    let mut s = tb
        .tcp_connect_from("monitor", addr, Duration::from_secs(2))?
        .map_err(|e| BenchError::Failed(format!("control connect: {e}")))?;
    let io = |e: std::io::Error| BenchError::Failed(format!("control port: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(90)))
        .map_err(io)?;
    let mut req = lines.join("\n");
    req.push_str("\nquit\n");
    s.write_all(req.as_bytes()).map_err(io)?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(io)?;
    Ok(out)
}

/// `show` as (host, state) pairs.
fn show_states(tb: &Testbed) -> Result<Vec<(String, String)>> {
    let out = control(tb, &["show".to_string()])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let (name, rest) = l.split_once('(')?;
            let state = rest.split_once('/')?.1.split_once('.')?.0;
            Some((name.to_string(), state.to_string()))
        })
        .collect())
}

fn state_of(states: &[(String, String)], host: &str) -> Option<String> {
    states
        .iter()
        .find(|(h, _)| h == host)
        .map(|(_, s)| s.clone())
}

/// Polls `f` every `every` until it returns `Some`, at most `limit`.
fn wait_for<T>(
    limit: Duration,
    every: Duration,
    what: &str,
    mut f: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let start = Instant::now();
    loop {
        // A failed poll (monitor busy, connection refused) is retried until the limit.
        if let Ok(Some(v)) = f() {
            return Ok(v);
        }
        if start.elapsed() > limit {
            return Err(BenchError::Failed(format!(
                "timed out after {limit:?} waiting for {what}"
            )));
        }
        std::thread::sleep(every);
    }
}

/// utime+stime in seconds and VmRSS in KiB of a process.
fn cpu_and_rss(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command: state is field 3, utime 14, stime 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let tck = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(((utime + stime) as f64 / tck, rss))
}

/// CPU seconds used by each pid over `window`, and their VmRSS at its end.
fn measure(pids: &[u32], window: Duration) -> Vec<(f64, u64)> {
    let before: Vec<f64> = pids
        .iter()
        .map(|p| cpu_and_rss(*p).map(|c| c.0).unwrap_or(0.0))
        .collect();
    std::thread::sleep(window);
    pids.iter()
        .zip(before)
        .map(|(p, b)| cpu_and_rss(*p).map(|(c, r)| (c - b, r)).unwrap_or((0.0, 0)))
        .collect()
}

#[derive(Default)]
struct SizeResult {
    hosts: usize,
    hung: usize,
    agents: usize,
    online_after: f64,
    mon_cpu: f64,
    mon_rss_kib: u64,
    mon_cpu_hung: Option<f64>,
    agent_rss_mean_kib: u64,
    agent_rss_max_kib: u64,
    agent_cpu_total: f64,
    agent_cpu_max: f64,
    detect_0: Vec<(Failure, Vec<f64>)>,
    detect_hung: Vec<(Failure, Vec<f64>)>,
    hung_offline_after: Option<f64>,
}

/// The failure injected into the victim.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Failure {
    /// kill -9 of its mysqld (the monitor's held connection drops).
    Kill9,
    /// SIGSTOP of its mysqld (nothing drops; found by silence and the checks' timeouts).
    Freeze,
}

impl Failure {
    fn label(self) -> &'static str {
        match self {
            Failure::Kill9 => "kill -9",
            Failure::Freeze => "SIGSTOP",
        }
    }
}

/// Injects `failure` into the victim's mysqld; seconds until `show` says HARD_OFFLINE.
/// Then undoes it and waits until the victim is ONLINE again.
fn detect_once(tb: &Testbed, failure: Failure) -> Result<f64> {
    let t0 = Instant::now();
    match failure {
        Failure::Kill9 => tb.mysql_kill9(VICTIM)?,
        Failure::Freeze => tb.mysql_freeze(VICTIM)?,
    }
    let seen = wait_for(
        Duration::from_secs(60),
        Duration::from_millis(20),
        "db4 HARD_OFFLINE",
        || {
            Ok(
                (state_of(&show_states(tb)?, VICTIM).as_deref() == Some("HARD_OFFLINE"))
                    .then(|| t0.elapsed().as_secs_f64()),
            )
        },
    )?;
    match failure {
        Failure::Kill9 => tb.mysql_start(VICTIM)?,
        Failure::Freeze => tb.mysql_thaw(VICTIM)?,
    }
    wait_for(
        Duration::from_secs(90),
        Duration::from_millis(200),
        "db4 ONLINE again",
        || {
            let state = state_of(&show_states(tb)?, VICTIM);
            // After three failures within flap_duration the host is "flapping" and stays
            // AWAITING_RECOVERY until set online by hand (spec §3.10).
            if state.as_deref() == Some("AWAITING_RECOVERY") {
                control(tb, &[format!("set_online {VICTIM}")])?;
            }
            Ok((state.as_deref() == Some("ONLINE")).then_some(()))
        },
    )?;
    Ok(seen)
}

/// `reps` runs of each failure; (failure, delays beyond trap_period).
fn detect_all(
    tb: &Testbed,
    reps: usize,
    total: usize,
    hung: usize,
) -> Result<Vec<(Failure, Vec<f64>)>> {
    let mut out = Vec::new();
    for failure in [Failure::Kill9, Failure::Freeze] {
        let mut v = Vec::new();
        for i in 0..reps {
            let d = detect_once(tb, failure)?;
            println!(
                "[{total} hosts, {hung} hung] {} of {VICTIM}'s mysqld → HARD_OFFLINE after {d:.2} s ({:.2} s beyond trap_period), run {}",
                failure.label(),
                d - TRAP_PERIOD,
                i + 1
            );
            v.push(d - TRAP_PERIOD);
        }
        out.push((failure, v));
    }
    Ok(out)
}

fn run_size(args: &Args, total: usize, subnet: u8) -> Result<SizeResult> {
    let mond = workspace_binary("mmm_mond")?;
    let agentd = workspace_binary("mmm_agentd")?;
    let hung = if total > 4 {
        total * args.hung_percent / 100
    } else {
        0
    };
    let tb = Testbed::up(TestbedOptions::new(subnet))?;
    let res = (|| {
        let fleet = Fleet::build(&tb, total, hung)?;
        let mut r = SizeResult {
            hosts: total,
            hung,
            ..Default::default()
        };
        let mut agents = Daemons(Vec::new());
        let agentd_s = agentd.to_string_lossy().into_owned();
        for h in ["db1", "db2", "db3", "db4"] {
            agents.0.push(tb.spawn(h, &[&agentd_s, "--foreground"])?);
        }
        for h in fleet.extras() {
            agents.0.push(fleet.spawn_agent(&agentd, h)?);
        }
        r.agents = agents.0.len();
        let started = Instant::now();
        let monitor = Daemons(vec![
            tb.spawn("monitor", &[&mond.to_string_lossy(), "--foreground"])?
        ]);
        let mon_pid = monitor.0.first().map(Child::id).unwrap_or(0);
        wait_for(
            Duration::from_secs(120),
            Duration::from_millis(200),
            "monitor ping",
            || {
                Ok(control(&tb, &["ping".into()])?
                    .contains("OK: Pinged")
                    .then_some(()))
            },
        )?;
        let names = fleet.host_names();
        wait_for(
            Duration::from_secs(180),
            Duration::from_secs(1),
            "every host ONLINE",
            || {
                let states = show_states(&tb)?;
                let pending: Vec<String> = names
                    .iter()
                    .filter(|n| state_of(&states, n).as_deref() != Some("ONLINE"))
                    .map(|n| format!("set_online {n}"))
                    .collect();
                if pending.is_empty() {
                    return Ok(Some(()));
                }
                control(&tb, &pending)?;
                Ok(None)
            },
        )?;
        r.online_after = started.elapsed().as_secs_f64();
        println!(
            "[{total} hosts] every host ONLINE {:.1} s after the monitor started; settling 5 s",
            r.online_after
        );
        std::thread::sleep(Duration::from_secs(5));

        let mut pids = vec![mon_pid];
        pids.extend(agents.0.iter().map(Child::id));
        let m = measure(&pids, Duration::from_secs(args.window));
        if let Some((cpu, rss)) = m.first() {
            r.mon_cpu = *cpu;
            r.mon_rss_kib = *rss;
        }
        let agent_m = m.get(1..).unwrap_or(&[]);
        if !agent_m.is_empty() {
            r.agent_rss_mean_kib = agent_m.iter().map(|x| x.1).sum::<u64>() / agent_m.len() as u64;
            r.agent_rss_max_kib = agent_m.iter().map(|x| x.1).max().unwrap_or(0);
            r.agent_cpu_total = agent_m.iter().map(|x| x.0).sum();
            r.agent_cpu_max = agent_m.iter().map(|x| x.0).fold(0.0, f64::max);
        }
        println!(
            "[{total} hosts] steady state over {} s: monitor {:.2} CPU s, VmRSS {} KiB; {} agents: VmRSS mean {} KiB (max {}), CPU {:.2} s total (max {:.2} s)",
            args.window,
            r.mon_cpu,
            r.mon_rss_kib,
            r.agents,
            r.agent_rss_mean_kib,
            r.agent_rss_max_kib,
            r.agent_cpu_total,
            r.agent_cpu_max
        );

        r.detect_0 = detect_all(&tb, args.reps, total, 0)?;

        if hung > 0 {
            let hung_names: Vec<String> =
                fleet.hung_hosts().iter().map(|h| h.name.clone()).collect();
            let frozen = Instant::now();
            fleet.freeze_hung()?;
            let all_off = wait_for(
                Duration::from_secs(90),
                Duration::from_millis(200),
                "every hung host HARD_OFFLINE",
                || {
                    let states = show_states(&tb)?;
                    Ok(hung_names
                        .iter()
                        .all(|n| state_of(&states, n).as_deref() == Some("HARD_OFFLINE"))
                        .then(|| frozen.elapsed().as_secs_f64()))
                },
            )?;
            r.hung_offline_after = Some(all_off);
            println!(
                "[{total} hosts] {hung} hosts hung (server SIGSTOPped): all HARD_OFFLINE after {all_off:.1} s"
            );
            let m = measure(&[mon_pid], Duration::from_secs(args.window));
            r.mon_cpu_hung = m.first().map(|x| x.0);
            r.detect_hung = detect_all(&tb, args.reps, total, hung)?;
            fleet.thaw_hung()?;
        }
        drop(monitor);
        drop(agents);
        Ok(r)
    })();
    // The monitor's log survives the testbed: /tmp/mmm-scale-bench-<hosts>.log.
    if let Ok(d) = tb.host_dir("monitor") {
        let kept = format!("/tmp/mmm-scale-bench-{total}.log");
        if std::fs::copy(d.join("var/log/mysql-mmm/mmm_mond.log"), &kept).is_ok() {
            println!("[{total} hosts] monitor log kept in {kept}");
        }
    }
    if res.is_err() {
        let log = tb
            .host_dir("monitor")
            .map(|d| d.join("var/log/mysql-mmm/mmm_mond.log"))
            .ok()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        eprintln!("monitor log tail:");
        for l in tail.into_iter().rev() {
            eprintln!("{l}");
        }
    }
    tb.down()?;
    res
}

fn fmt_list(v: &[f64]) -> String {
    if v.is_empty() {
        return "–".into();
    }
    v.iter()
        .map(|d| format!("{d:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("mmm-scale-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let mut results = Vec::new();
    for (i, &n) in args.sizes.iter().enumerate() {
        let subnet = args.subnet + i as u8;
        match run_size(&args, n, subnet) {
            Ok(r) => results.push(r),
            Err(e) => {
                eprintln!("mmm-scale-bench: {n} hosts: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let exe: PathBuf = std::env::current_exe().unwrap_or_default();
    println!(
        "\n{} ({} s in all; window {} s, {} detection run(s) per case, trap_period {TRAP_PERIOD} s)\n",
        exe.display(),
        started.elapsed().as_secs(),
        args.window,
        args.reps
    );
    println!("| hosts | agents | monitor CPU s / {w} s | monitor VmRSS MiB | agent VmRSS MiB (mean / max) | agents' CPU s / {w} s (total / max) | every host ONLINE after (s) |", w = args.window);
    println!("|---|---|---|---|---|---|---|");
    for r in &results {
        println!(
            "| {} | {} | {:.2} | {:.1} | {:.1} / {:.1} | {:.2} / {:.2} | {:.1} |",
            r.hosts,
            r.agents,
            r.mon_cpu,
            r.mon_rss_kib as f64 / 1024.0,
            r.agent_rss_mean_kib as f64 / 1024.0,
            r.agent_rss_max_kib as f64 / 1024.0,
            r.agent_cpu_total,
            r.agent_cpu_max,
            r.online_after,
        );
    }
    println!();
    println!("| hosts | hung hosts | failure of {VICTIM}'s mysqld | HARD_OFFLINE after trap_period + (s), each run | hung hosts all HARD_OFFLINE after (s) | monitor CPU s / {w} s while hung |", w = args.window);
    println!("|---|---|---|---|---|---|");
    for r in &results {
        for (hung, runs) in [(0, &r.detect_0), (r.hung, &r.detect_hung)] {
            for (failure, v) in runs {
                let (off, cpu) = if hung > 0 {
                    (
                        r.hung_offline_after
                            .map(|t| format!("{t:.1}"))
                            .unwrap_or_default(),
                        r.mon_cpu_hung
                            .map(|c| format!("{c:.2}"))
                            .unwrap_or_default(),
                    )
                } else {
                    ("–".to_string(), "–".to_string())
                };
                println!(
                    "| {} | {hung} | {} | {} | {off} | {cpu} |",
                    r.hosts,
                    failure.label(),
                    fmt_list(v)
                );
            }
        }
    }
    ExitCode::SUCCESS
}
