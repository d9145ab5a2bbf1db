//! Helpers of the benchmarks that print figures (docs/benchmarks.md): median and range of
//! several runs, a process's RSS and CPU from `/proc`.

use std::time::Duration;

/// Median and range of `xs` as `median [min–max]` with `digits` decimals (`–` when empty).
pub fn median_range(mut xs: Vec<f64>, digits: usize) -> String {
    if xs.is_empty() {
        return "–".into();
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    let median = if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    };
    format!(
        "{median:.digits$} [{:.digits$}–{:.digits$}]",
        xs[0],
        xs[n - 1]
    )
}

/// (VmRSS kB, utime+stime clock ticks) of a process.
pub fn rss_and_cpu(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are 12 and 13 after the state field.
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some((rss, ut + st))
}

/// (RSS MB at the end, CPU % of one core) of `pid` over `window`.
pub fn measure(pid: u32, window: Duration) -> Option<(f64, f64)> {
    let tick = 100.0; // USER_HZ
    let (_, c0) = rss_and_cpu(pid)?;
    std::thread::sleep(window);
    let (rss, c1) = rss_and_cpu(pid)?;
    Some((
        rss as f64 / 1024.0,
        (c1.saturating_sub(c0)) as f64 / tick / window.as_secs_f64() * 100.0,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median_range(vec![], 2), "–");
        assert_eq!(median_range(vec![3.0, 1.0, 2.0], 1), "2.0 [1.0–3.0]");
        assert_eq!(
            median_range(vec![4.0, 1.0, 2.0, 3.0], 2),
            "2.50 [1.00–4.00]"
        );
    }

    #[test]
    fn own_process() {
        let (rss, _) = rss_and_cpu(std::process::id()).expect("/proc of this process");
        assert!(rss > 0);
    }
}
