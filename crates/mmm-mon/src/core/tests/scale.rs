//! The core's own cost with 204 hosts (issue 14), as in `bench_monitor_cost_200`: the
//! seed's four hosts and 200 extra slaves without an agent (every SET_STATUS to them is
//! refused and retried), all checks OK every `check_period`. `#[ignore]`d: a figure, not
//! an assertion; `cargo test --release -p mmm-mon --lib core_cost -- --ignored --nocapture`.

use super::*;

/// Feeds 60 simulated seconds and prints the core's CPU time per simulated second.
#[test]
#[ignore = "figure: the core's cost with 204 hosts"]
fn core_cost_204_hosts() {
    let mut cfg = seed_config(10);
    for i in 0..200 {
        let name = format!("x{i}");
        let ip = format!("198.18.2.{}", 1 + i % 250);
        cfg.hosts.push(host_cfg(&name, &ip, HostMode::Slave, None));
    }
    let mut h = Harness::started(cfg, HostState::Online);
    for host in h.ids().skip(4).collect::<Vec<_>>() {
        h.agent_fails[host] = true;
    }
    let ids: Vec<HostId> = h.ids().collect();
    let step = Duration::from_millis(10);
    let started = std::time::Instant::now();
    let mut inputs = 0u64;
    let simulated = 60u32;
    for tick in 0..(simulated * 100) {
        h.advance(step);
        // Each host's four checks once every 5 s, spread over the period.
        for (i, &host) in ids.iter().enumerate() {
            if (tick as usize + i).is_multiple_of(500) {
                for check in CheckKind::ALL {
                    h.input(Input::Check {
                        host,
                        check,
                        result: CheckResult::from_line("OK"),
                        wall: h.wall,
                    });
                    inputs += 1;
                }
            }
        }
    }
    let spent = started.elapsed();
    println!(
        "core: {:.2} ms per simulated second ({inputs} check results, {} actions)",
        spent.as_secs_f64() * 1000.0 / f64::from(simulated),
        h.log.len()
    );
}
