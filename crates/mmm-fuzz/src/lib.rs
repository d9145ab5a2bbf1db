//! The fuzz targets of mmm-rs (issue 15): each takes arbitrary bytes, feeds them to one of
//! the parsers that read what another host, a file or an admin wrote, and panics only on
//! a bug (a parser panic, or a broken invariant asserted here).
//!
//! - [`agent_protocol`]: the agent's request decoder and the monitor's reply decoders
//!   (`mmm_common::proto::agent`), line by line as the listener frames them;
//! - [`control_protocol`]: the monitor's control port: every line as a command into a
//!   monitor core of the seed's cluster (parse and run; agent PINGs answered);
//! - [`config`]: the configuration parser and validator for every program class, then
//!   the settings and the `--check-config` rendering of what it accepts;
//! - [`status_file`]: the status file reader (and: what it reads, written back and read
//!   again, gives the same entries).
//!
//! Engines: `fuzz/afl/` (the afl crate with AFL++, `bash scripts/fuzz.sh SECONDS`) wraps
//! each function in `afl::fuzz!`; `tests/corpus.rs` feeds every file of `fuzz/corpus/` and
//! `fuzz/crashes/` to them under `cargo test`. This crate has no fuzzing dependency, so it
//! builds, lints and tests with the workspace.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mmm_common::config::{self, MonitorSettings, ProgramClass};
use mmm_common::proto::agent;
use mmm_mon::core::{Action, Input, Monitor, Token};
use mmm_mon::status_file;

/// A fuzz target: arbitrary bytes in, a panic only on a bug.
pub type Target = fn(&[u8]);

/// The targets by name (the names of `fuzz/afl`'s binaries and of the corpus directories).
pub const TARGETS: [(&str, Target); 4] = [
    ("agent_protocol", agent_protocol),
    ("control_protocol", control_protocol),
    ("config", config),
    ("status_file", status_file),
];

/// Longest line the daemons accept (`mmm_common::proto::MAX_LINE`); longer input is cut
/// there as the listeners would refuse it.
fn lines(data: &[u8]) -> impl Iterator<Item = String> + '_ {
    data.split(|b| *b == b'\n').map(|l| {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        let l = &l[..l.len().min(mmm_common::proto::MAX_LINE)];
        String::from_utf8_lossy(l).into_owned()
    })
}

/// Agent protocol: each line as a request to agent `db1` (valid requests must encode
/// back to a line that decodes to the same request), and as a reply the monitor reads.
pub fn agent_protocol(data: &[u8]) {
    for line in lines(data) {
        if let Ok(d) = agent::decode_request(&line, "db1") {
            assert_eq!(d.request.host, "db1");
        }
        let reply = agent::decode_reply(&line);
        let _ = reply.is_ok();
        let _ = agent::parse_agent_status(&reply.result);
        let _ = agent::parse_system_status(&reply.result);
        let _ = agent::parse_agent_status(&line);
        let _ = agent::parse_system_status(&line);
    }
}

/// The seed's cluster as the monitor sees it (mmm_mon.conf including mmm_common.conf).
const MON_CONF: &str = "\
active_master_role writer
<monitor>
    ip 127.0.0.1
    pid_path /run/mmm_mond.pid
    bin_path /usr/libexec/mysql-mmm
    status_path /var/lib/misc/mmm_mond.status
    ping_ips 192.168.2.100
</monitor>
<host default>
    monitor_user mmm_monitor
    monitor_password x
</host>
<host db1>
    ip 192.168.2.100
    mode master
    peer db2
</host>
<host db2>
    ip 192.168.2.102
    mode master
    peer db1
</host>
<host db3>
    ip 192.168.2.103
    mode slave
</host>
<role writer>
    hosts db1, db2
    ips 192.168.2.188
    mode exclusive
</role>
<role reader>
    hosts db2, db3
    ips 192.168.2.198, 192.168.2.199
    mode balanced
</role>
";

/// Control protocol: a monitor core of [`MON_CONF`] after start-up, every line as a
/// control command; every agent request it sends is answered OK, time moves one second per
/// line. Every command gets exactly one reply.
pub fn control_protocol(data: &[u8]) {
    static SETTINGS: OnceLock<MonitorSettings> = OnceLock::new();
    let settings = SETTINGS.get_or_init(|| {
        config::parse_str(MON_CONF, "fuzz.conf", &[], ProgramClass::Monitor)
            .expect("the fuzz config is valid")
            .monitor_settings()
            .expect("monitor settings")
    });
    let mut now = Instant::now();
    let mut m = Monitor::new(settings, now, 1_700_000_000);
    let hosts = settings.hosts.len();
    m.handle(
        now,
        Input::Startup {
            stored: Vec::new(),
            agents: vec![Err("fuzz".to_string()); hosts],
            systems: vec![Err("fuzz".to_string()); hosts],
        },
    );
    let mut replies = 0u64;
    let mut commands = 0u64;
    drain(&mut m, now, &mut replies);
    for (i, line) in lines(data).enumerate().take(64) {
        if line == "quit" {
            continue;
        }
        commands += 1;
        now += Duration::from_secs(1);
        m.handle(
            now,
            Input::Command {
                token: Token(1_000_000 + i as u64),
                line,
            },
        );
        drain(&mut m, now, &mut replies);
        m.handle_timeout(now);
        drain(&mut m, now, &mut replies);
    }
    assert_eq!(replies, commands, "every command gets one reply");
}

/// Drains the core's actions, answering every agent request with an OK reply.
fn drain(m: &mut Monitor, now: Instant, replies: &mut u64) {
    let mut pending = Vec::new();
    for _ in 0..10_000 {
        while let Some(a) = m.poll_action() {
            match a {
                Action::Send { token, .. } => pending.push(token),
                Action::Reply { .. } => *replies += 1,
                _ => {}
            }
        }
        let Some(token) = pending.pop() else {
            return;
        };
        m.handle(
            now,
            Input::AgentReply {
                token,
                reply: Ok(agent::decode_reply(
                    "OK: Status applied successfully!|UP:100.00",
                )),
                maybe_delivered: true,
            },
        );
    }
    panic!("the monitor core kept sending agent requests");
}

/// Configuration: the bytes as a config file for every program class; what is accepted
/// gives the program's settings (or a settings error) and renders.
pub fn config(data: &[u8]) {
    let classes = [
        ProgramClass::Monitor,
        ProgramClass::Agent,
        ProgramClass::Control,
        ProgramClass::Tools,
    ];
    // Parsed once, validated per class (`parse_bytes_classes`, equal to `parse_bytes` per
    // class); each distinct accepted configuration rendered once.
    let mut rendered: Vec<config::Config> = Vec::new();
    for (class, r) in classes.iter().zip(config::parse_bytes_classes(
        data,
        "fuzz.conf",
        &[],
        &classes,
    )) {
        if let Ok(cfg) = r {
            if !rendered.contains(&cfg) {
                let _ = config::render_effective(&cfg);
                rendered.push(cfg.clone());
            }
            match class {
                ProgramClass::Monitor => drop(cfg.monitor_settings()),
                ProgramClass::Agent => drop(cfg.agent_settings()),
                ProgramClass::Control => drop(cfg.control_settings()),
                ProgramClass::Tools => {}
            }
        }
    }
}

/// Status file: parsed as the monitor reads it (UTF-8 text; other bytes are the read's
/// error); the entries written back and read again are the same.
pub fn status_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (entries, _bad) = status_file::parse(text);
    let again = status_file::parse(&status_file::render(&entries));
    assert_eq!(again.0, entries, "render then parse changed the entries");
    assert!(again.1.is_empty(), "render wrote a line parse refuses");
}
