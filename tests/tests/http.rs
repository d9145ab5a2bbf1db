//! The monitor's HTTP listener (issue 17) on the testbed: a real `mmm_mond` serving
//! `http_listen` (default 127.0.0.1:9990, in the monitor host's namespace), read with a real
//! HTTP client (ureq) from a thread inside that namespace.
//!
//! One cluster (fast checks): `/metrics` passes `promtool check metrics` (Debian's
//! `prometheus` package, installed by scripts/deps.sh; the test fails when it is missing);
//! `/api/v1/status` and `/api/v1/checks` say what `mmm_control --json show` and
//! `--json checks all` say; then, while malformed requests, a 64 KiB header and more
//! slowloris connections than the listener serves at once keep coming, the writer's mysqld
//! is killed: `mmm_control ping` still answers, the failover happens, it is in
//! `/api/v1/events?since=` and in the counters, and the abusive connections got 400/431 or
//! were closed. Last, Debian's headless chromium loads the status page on the monitor host
//! and its DOM shows every host, its state and the writer role; the screenshot is kept
//! under target/ (its path printed).
//!
//! Needs root and the binaries (`cargo build -p mmm-mon -p mmm-agent -p mmm-control`);
//! `cargo test -p mmm-tests --test http -- --nocapture`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mmm_tests::cluster::{Cluster, ClusterOptions};
use mmm_tests::figures::rss_and_cpu;
use serde_json::Value;

const SUBNET: u8 = 160;
const HTTP: &str = "127.0.0.1:9990";

/// GET `path` from the monitor host: (status, content type, body).
fn get(c: &Cluster, path: &str) -> Result<(u16, String, String), String> {
    get_accept(c, path, "*/*")
}

/// GET `path` with an `Accept` header.
fn get_accept(c: &Cluster, path: &str, accept: &str) -> Result<(u16, String, String), String> {
    let url = format!("http://{HTTP}{path}");
    let accept = accept.to_string();
    c.testbed()
        .run_in_netns("monitor", move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(10)))
                .build()
                .into();
            let mut r = agent
                .get(&url)
                .header("accept", &accept)
                .call()
                .map_err(|e| format!("GET {url}: {e}"))?;
            let ct = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = r
                .body_mut()
                .read_to_string()
                .map_err(|e| format!("GET {url}: body: {e}"))?;
            Ok((r.status().as_u16(), ct, body))
        })
        .map_err(|e| e.to_string())?
}

fn get_json(c: &Cluster, path: &str) -> Value {
    let (status, ct, body) = get(c, path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200, "{path}: {body}");
    assert_eq!(ct, "application/json", "{path}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

fn control_json(c: &Cluster, args: &[&str]) -> Value {
    let mut argv = vec!["--json"];
    argv.extend_from_slice(args);
    let (out, code) = c.control(&argv).expect("mmm_control");
    assert_eq!(code, Some(0), "{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The fields of `v`'s objects named in `keys` (the API adds fields of its own).
fn pick(v: &Value, keys: &[&str]) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.iter().map(|x| pick(x, keys)).collect()),
        Value::Object(m) => Value::Object(
            keys.iter()
                .filter_map(|k| m.get(*k).map(|x| (k.to_string(), x.clone())))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The value of the sample `name{labels}` in a metrics text.
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

fn promtool_check(text: &str) {
    let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!(
                "promtool is missing: install Debian's `prometheus` package (scripts/deps.sh \
                 does) to validate /metrics"
            )
        });
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("promtool stdin");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- metrics:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn connect(c: &Cluster) -> TcpStream {
    let addr: SocketAddr = HTTP.parse().unwrap();
    let s = c
        .testbed()
        .tcp_connect_from("monitor", addr, Duration::from_secs(5))
        .expect("netns")
        .expect("connect to the HTTP listener");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Sends `bytes` (a failed write is fine: the server may close early) and reads what the
/// server answers until it closes: the status line, or "" when it closed without one.
fn send_raw(c: &Cluster, bytes: &[u8]) -> String {
    let mut s = connect(c);
    let _ = s.write_all(bytes);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

fn target_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let _ = std::fs::create_dir_all(&dir);
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

/// Runs chromium headless on the monitor host against the status page.
fn chromium(c: &Cluster, profile: &Path, extra: &[&str]) -> String {
    let bin = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!(
                "chromium is missing: install Debian's `chromium` package (scripts/deps.sh does)"
            )
        });
    let profile = format!("--user-data-dir={}", profile.display());
    let mut argv = vec![
        bin,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        "--virtual-time-budget=4000",
        profile.as_str(),
    ];
    argv.extend_from_slice(extra);
    let url = format!("http://{HTTP}/");
    argv.push(&url);
    let out = c
        .testbed()
        .exec_timeout("monitor", &argv, Duration::from_secs(60))
        .expect("chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn http_listener_metrics_api_page_and_abuse() {
    let started = Instant::now();
    let c = Cluster::start(ClusterOptions::fast(SUBNET))
        .unwrap_or_else(|e| panic!("cluster start: {e}"));
    let fail = |what: String| -> ! {
        c.dump_logs();
        panic!("{what}")
    };
    let limit = Duration::from_secs(30);
    let writer_on = |c: &Cluster, host: &str| -> bool {
        get(c, "/api/v1/status").ok().is_some_and(|(_, _, b)| {
            serde_json::from_str::<Value>(&b).is_ok_and(|v| v["active_master"] == host)
        })
    };
    c.wait_for("the writer on db1 in /api/v1/status", limit, |c| {
        writer_on(c, "db1").then_some(())
    })
    .unwrap_or_else(|e| fail(e.to_string()));

    // The JSON says what mmm_control --json says (polled: a check may change in between).
    let show_keys = ["name", "ip", "mode", "state", "roles", "agent_reachable"];
    c.wait_for("/api/v1/status = mmm_control --json show", limit, |c| {
        let api = get_json(c, "/api/v1/status");
        let ctl = control_json(c, &["show"]);
        (api["passive"] == ctl["passive"]
            && api["passive_cause"] == ctl["passive_cause"]
            && api["notes"] == ctl["notes"]
            && pick(&api["hosts"], &show_keys) == pick(&ctl["hosts"], &show_keys))
        .then_some(())
    })
    .unwrap_or_else(|e| fail(e.to_string()));
    let check_keys = ["host", "check", "last_change", "status", "message"];
    c.wait_for(
        "/api/v1/checks = mmm_control --json checks all",
        limit,
        |c| {
            let api = get_json(c, "/api/v1/checks");
            let ctl = control_json(c, &["checks", "all"]);
            (pick(&api, &check_keys) == ctl).then_some(())
        },
    )
    .unwrap_or_else(|e| fail(e.to_string()));
    let status = get_json(&c, "/api/v1/status");
    assert_eq!(status["mode"], "ACTIVE", "{status}");
    assert_eq!(
        status["hosts"].as_array().map(Vec::len),
        Some(4),
        "{status}"
    );

    // /metrics: Prometheus text that promtool accepts, with the hosts' facts.
    let (code, ct, metrics) = get(&c, "/metrics").unwrap_or_else(|e| fail(e));
    assert_eq!(code, 200);
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    promtool_check(&metrics);
    // What Prometheus asks for: OpenMetrics.
    let (code, ct, om) = get_accept(
        &c,
        "/metrics",
        "application/openmetrics-text; version=1.0.0",
    )
    .unwrap_or_else(|e| fail(e));
    assert_eq!(code, 200);
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert!(om.ends_with("# EOF\n"), "{om}");
    for h in ["db1", "db2", "db3", "db4"] {
        assert_eq!(
            sample(
                &metrics,
                &format!("mmm_host_state{{host=\"{h}\",state=\"ONLINE\"}}")
            ),
            Some(1.0),
            "{h}:\n{metrics}"
        );
        assert_eq!(
            sample(&metrics, &format!("mmm_agent_reachable{{host=\"{h}\"}}")),
            Some(1.0),
            "{metrics}"
        );
    }
    assert!(
        metrics.contains("mmm_host_role{host=\"db1\",role=\"writer\""),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "mmm_monitor_mode{mode=\"ACTIVE\"}"),
        Some(1.0)
    );
    assert!(
        metrics.contains("mmm_check_duration_seconds{host=\"db1\",check=\"mysql\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mmm_replication_lag_seconds{host=\"db3\"}"),
        "{metrics}"
    );
    let (code, _, _) = get(&c, "/nothing").unwrap_or_else(|e| fail(e));
    assert_eq!(code, 404);
    let (code, _, _) = get(&c, "/api/v1/events?since=x").unwrap_or_else(|e| fail(e));
    assert_eq!(code, 400);

    // Bad clients: malformed request, 64 KiB header.
    let line = send_raw(&c, b"THIS IS NOT HTTP\r\n\r\n");
    assert!(
        line.starts_with("HTTP/1.1 400"),
        "malformed request: {line:?}"
    );
    let mut big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 64 * 1024));
    big.extend_from_slice(b"\r\n\r\n");
    let line = send_raw(&c, &big);
    assert!(
        line.is_empty() || line.starts_with("HTTP/1.1 431") || line.starts_with("HTTP/1.1 400"),
        "64 KiB header: {line:?}"
    );

    let seq_before = get_json(&c, "/api/v1/events")["last_seq"]
        .as_u64()
        .unwrap_or(0);

    // Slowloris: more connections than the listener serves, each sending a header byte
    // now and then, kept up during the failover.
    let stop = Arc::new(AtomicBool::new(false));
    let n_slow = 80;
    let mut slow: Vec<TcpStream> = (0..n_slow).map(|_| connect(&c)).collect();
    let slow_started = Instant::now();
    let slowloris = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut closed = 0usize;
            for s in &mut slow {
                let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n");
                s.set_nonblocking(true).unwrap();
            }
            let mut alive = vec![true; slow.len()];
            while !stop.load(Ordering::Relaxed) && alive.iter().any(|a| *a) {
                for (i, s) in slow.iter_mut().enumerate() {
                    if !alive[i] {
                        continue;
                    }
                    let mut b = [0u8; 512];
                    let gone = match s.read(&mut b) {
                        Ok(0) => true,
                        Ok(_) => true, // an answer (e.g. 408) then close
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            s.write_all(b"X").is_err()
                        }
                        Err(_) => true,
                    };
                    if gone {
                        alive[i] = false;
                        closed += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            closed
        })
    };

    // The writer dies while the listener is abused (while every connection slot is
    // taken, new clients are turned away until the header read timeout frees them).
    let killed = Instant::now();
    c.testbed().mysql_kill9("db1").expect("kill db1's mysqld");
    let (out, code) = c.control(&["ping"]).expect("mmm_control ping");
    assert_eq!(
        (out.as_str(), code),
        ("OK: Pinged successfully!\n", Some(0))
    );
    for _ in 0..5 {
        // 400, or closed at once while the slots are taken.
        let line = send_raw(&c, b"GET / HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n");
        assert!(
            line.is_empty() || line.starts_with("HTTP/1.1 400"),
            "{line:?}"
        );
    }
    c.wait_show("the writer on db2", Duration::from_secs(40), |s| {
        s.role_holders("writer") == vec!["db2".to_string()]
    })
    .unwrap_or_else(|e| fail(e.to_string()));
    let failover = killed.elapsed();
    let (out, code) = c.control(&["ping"]).expect("mmm_control ping");
    assert_eq!(
        (out.as_str(), code),
        ("OK: Pinged successfully!\n", Some(0))
    );

    // The failover in the audit (since the last seq seen) and in the counters.
    let events = c
        .wait_for("the failover in /api/v1/events", limit, |c| {
            let v = get(c, &format!("/api/v1/events?since={seq_before}")).ok()?;
            let v: Value = serde_json::from_str(&v.2).ok()?;
            let evs = v["events"].as_array()?.clone();
            let down = evs.iter().any(|e| {
                e["kind"] == "state_changed"
                    && e["host"] == "db1"
                    && e["fields"]["to"] == "HARD_OFFLINE"
            });
            let moved = evs
                .iter()
                .any(|e| e["kind"] == "orphan_assigned" && e["host"] == "db2");
            (down && moved).then_some(evs)
        })
        .unwrap_or_else(|e| fail(e.to_string()));
    assert!(
        events.iter().all(|e| e["seq"].as_u64() > Some(seq_before)),
        "since={seq_before}: {events:?}"
    );
    let (_, _, metrics) = get(&c, "/metrics").unwrap_or_else(|e| fail(e));
    promtool_check(&metrics);
    let failovers: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("mmm_failovers_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(failovers, 1.0, "{metrics}");
    assert_eq!(
        sample(
            &metrics,
            "mmm_role_moves_total{role=\"writer\",cause=\"failover\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "mmm_host_state{host=\"db1\",state=\"HARD_OFFLINE\"}"
        ),
        Some(1.0)
    );
    let last = sample(&metrics, "mmm_last_failover_duration_seconds").expect("last failover");
    assert!(
        last > 0.0 && last < failover.as_secs_f64() + 1.0,
        "{last} vs {failover:?}"
    );

    // The slowloris connections are closed by the listener (header read timeout) or were
    // refused past the connection limit; none was served.
    c.wait_for("the slowloris connections closed", limit, |_| {
        (slow_started.elapsed() > Duration::from_secs(12)).then_some(())
    })
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    let closed = slowloris.join().expect("slowloris thread");
    assert_eq!(closed, n_slow, "slowloris connections left open");

    // A real browser shows the page: every host, its state, the writer role.
    let profile = tempfile::tempdir().unwrap();
    let dom = chromium(&c, profile.path(), &["--dump-dom"]);
    for (h, state) in [
        ("db1", "HARD_OFFLINE"),
        ("db2", "ONLINE"),
        ("db3", "ONLINE"),
        ("db4", "ONLINE"),
    ] {
        let row_start = dom
            .find(&format!("<tr data-host=\"{h}\">"))
            .unwrap_or_else(|| fail(format!("{h} not on the page:\n{dom}")));
        let row = &dom[row_start..row_start + dom[row_start..].find("</tr>").unwrap_or(0)];
        assert!(row.contains(&format!(">{state}<")), "{h} {state}: {row}");
        if h == "db2" {
            assert!(row.contains("writer("), "writer on db2: {row}");
        }
    }
    assert!(dom.contains("id=\"mode\">ACTIVE<"), "{dom}");
    assert!(
        dom.contains("orphan_assigned"),
        "the events on the page: {dom}"
    );
    let shot = target_dir().join("http-status-page.png");
    let _ = std::fs::remove_file(&shot);
    let arg = format!("--screenshot={}", shot.display());
    chromium(&c, profile.path(), &[&arg, "--window-size=1200,900"]);
    assert!(
        std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1000),
        "no screenshot at {}",
        shot.display()
    );
    println!(
        "http: failover {:.1} s under abuse ({n_slow} slowloris connections), last failover \
         metric {last:.2} s; screenshot {}; test {:.0} s",
        failover.as_secs_f64(),
        shot.display(),
        started.elapsed().as_secs_f64()
    );
    c.stop().expect("stop");
}

/// `windows` measures of the monitor over `window` each: (RSS MB, CPU % of one core).
fn measure(c: &Cluster, windows: usize, window: Duration) -> Vec<(f64, f64)> {
    let pid = c.monitor_pid().expect("monitor pid");
    (0..windows)
        .filter_map(|_| {
            let (_, c0) = rss_and_cpu(pid)?;
            std::thread::sleep(window);
            let (rss, c1) = rss_and_cpu(pid)?;
            Some((
                rss as f64 / 1024.0,
                c1.saturating_sub(c0) as f64 / 100.0 / window.as_secs_f64() * 100.0,
            ))
        })
        .collect()
}

/// "median (min-max)" of `v`.
fn spread(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    match (v.first(), v.get(v.len() / 2), v.last()) {
        (Some(lo), Some(mid), Some(hi)) => format!("{mid:.1} ({lo:.1}-{hi:.1})"),
        _ => "–".into(),
    }
}

/// A client thread in the monitor's namespace sending `rate` GETs a second (a round of
/// /metrics, status, checks, events and the page) until `stop`; returns how many answered.
fn load(c: &Cluster, rate: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let ns = format!("/run/netns/{}", c.testbed().host("monitor").unwrap().netns);
    std::thread::spawn(move || {
        let f = std::fs::File::open(&ns).expect("netns");
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let paths = [
            "/metrics",
            "/api/v1/status",
            "/api/v1/checks",
            "/api/v1/events",
            "/",
        ];
        let every = Duration::from_secs(1) / rate;
        let mut next = Instant::now();
        let mut ok = 0u64;
        let mut i = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let url = format!("http://{HTTP}{}", paths[i % paths.len()]);
            i += 1;
            if let Ok(mut r) = agent.get(&url).call() {
                if r.status() == 200 && r.body_mut().read_to_string().is_ok() {
                    ok += 1;
                }
            }
            next += every;
            if let Some(d) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
        }
        ok
    })
}

/// Kills the writer's mysqld; the time until `show` has the writer on the other master;
/// then the old one's server is started again and the cluster is healthy again.
fn failover(c: &Cluster) -> Duration {
    let writer = c.wait_healthy(Duration::from_secs(60)).expect("healthy");
    let other = if writer == "db1" { "db2" } else { "db1" };
    let t0 = Instant::now();
    c.testbed().mysql_kill9(&writer).expect("kill");
    c.wait_show("the failover", Duration::from_secs(60), |s| {
        s.role_holders("writer") == vec![other.to_string()]
    })
    .expect("failover");
    let took = t0.elapsed();
    c.testbed().mysql_start(&writer).expect("start");
    c.wait_healthy(Duration::from_secs(60))
        .expect("healthy again");
    took
}

/// The listener's cost (docs/benchmarks.md "HTTP listener"): the monitor's RSS and CPU
/// with `http_listen off`, on and idle, and on under 50 requests a second; failover times
/// without and with that load plus 80 slowloris connections. Prints figures, asserts none.
/// `cargo test -p mmm-tests --test http -- --ignored --nocapture bench_http_listener`
#[test]
#[ignore]
fn bench_http_listener() {
    let mut c = Cluster::start(ClusterOptions::fast(SUBNET + 1)).expect("cluster");
    let windows = 5;
    let window = Duration::from_secs(10);
    let mut rows = Vec::new();
    for (label, off) in [("http_listen off", true), ("on, idle", false)] {
        c.options_mut().monitor_directives = if off {
            vec!["http_listen off".into()]
        } else {
            Vec::new()
        };
        c.write_configs().expect("configs");
        c.restart_monitor().expect("restart");
        c.wait_healthy(Duration::from_secs(60)).expect("healthy");
        std::thread::sleep(Duration::from_secs(5));
        rows.push((label.to_string(), measure(&c, windows, window), None));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let client = load(&c, 50, stop.clone());
    std::thread::sleep(Duration::from_secs(5));
    let m = measure(&c, windows, window);
    stop.store(true, Ordering::Relaxed);
    let answered = client.join().unwrap_or(0);
    let rate = answered as f64 / t0.elapsed().as_secs_f64();
    rows.push(("on, 50 req/s".to_string(), m, Some(rate)));

    let mut quiet = Vec::new();
    let mut loaded = Vec::new();
    for _ in 0..3 {
        quiet.push(failover(&c).as_secs_f64());
        let stop = Arc::new(AtomicBool::new(false));
        let client = load(&c, 50, stop.clone());
        let slow: Vec<TcpStream> = (0..80)
            .map(|_| {
                let mut s = connect(&c);
                let _ = s.write_all(b"GET / HTTP/1.1\r\n");
                s
            })
            .collect();
        loaded.push(failover(&c).as_secs_f64());
        stop.store(true, Ordering::Relaxed);
        drop(slow);
        let _ = client.join();
    }
    let mut out = String::from(
        "\n| monitor | RSS MB | CPU % of one core | answered req/s |\n|---|---|---|---|\n",
    );
    for (label, m, rate) in rows {
        out.push_str(&format!(
            "| {label} | {} | {} | {} |\n",
            spread(m.iter().map(|x| x.0).collect()),
            spread(m.iter().map(|x| x.1).collect()),
            rate.map_or("–".into(), |r| format!("{r:.1}"))
        ));
    }
    out.push_str(&format!(
        "\nfailover (kill -9 of the writer's mysqld → writer role on the other master in show), \
         s: quiet {}, under 50 req/s + 80 slowloris connections {}\n",
        spread(quiet),
        spread(loaded)
    ));
    println!("{out}");
    c.stop().expect("stop");
}
