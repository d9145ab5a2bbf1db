//! The host's uptime as MMM reports it in every agent reply (`|UP:<uptime>`, spec §4.3):
//! the first field of `/proc/uptime`, passed on as written (e.g. `8463.27`).

/// The first field of `/proc/uptime` exactly as the kernel writes it, or `0.00` when it
/// cannot be read (a reply is still sent).
pub fn uptime_field() -> String {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "0.00".to_string())
}

/// The uptime in seconds, when readable.
pub fn uptime_secs() -> Option<f64> {
    uptime_field().parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_proc_uptime() {
        let f = super::uptime_field();
        assert!(f.parse::<f64>().unwrap() > 0.0, "{f}");
        assert!(f.contains('.'));
    }
}
