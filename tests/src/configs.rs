//! The seed's MMM configuration files (Step2: mmm_common.conf, mmm_agent.conf, mmm_mon.conf)
//! with this testbed's addresses; the writer VIP is .188 and the reader VIPs .198 and .199
//! as in the seed. Parts the seed elides ("……") take the values of the packaged 2.2.1
//! sample (spec §2.5), with paths that fall inside each host's private directories.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// The writer VIP's last octet.
pub const WRITER_VIP: u8 = 188;
/// The reader VIPs' last octets.
pub const READER_VIPS: [u8; 2] = [198, 199];

/// The three texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MmmConfigs {
    /// `mmm_common.conf` (identical on every host).
    pub common: String,
    /// `mmm_agent.conf` per database host: `(host, text)`.
    pub agents: Vec<(String, String)>,
    /// `mmm_mon.conf` (monitor host).
    pub mon: String,
}

impl MmmConfigs {
    /// The `mmm_agent.conf` of `host` (None for a host without an agent).
    pub fn agent(&self, host: &str) -> Option<&str> {
        self.agents
            .iter()
            .find(|(h, _)| h == host)
            .map(|(_, t)| t.as_str())
    }
}

/// Builds the configs. `db_hosts` are `(name, ip, is_master)` in configuration order;
/// `monitor_ip` is the monitor host's address, the agents' `monitor_ips` (issue 15: every
/// end-to-end test runs with the agents obeying only the monitor).
pub(crate) fn build(
    subnet: u8,
    db_hosts: &[(String, Ipv4Addr, bool)],
    monitor_ip: Ipv4Addr,
) -> MmmConfigs {
    let vip = |o: u8| Ipv4Addr::new(198, 18, subnet, o);
    let mut common = String::new();
    let _ = writeln!(common, "monitor_ips             {monitor_ip}");
    common.push_str(
        "active_master_role      writer\n\n\
         <host default>\n\
         \x20   cluster_interface       ens33\n\
         \x20   pid_path                /run/mysql-mmm-agent.pid\n\
         \x20   bin_path                /usr/libexec/mysql-mmm/\n\
         \x20   replication_user        replication\n\
         \x20   replication_password    123456\n\
         \x20   agent_user              mmm_agent\n\
         \x20   agent_password          123456\n\
         </host>\n\n",
    );
    let masters: Vec<&str> = db_hosts
        .iter()
        .filter(|(_, _, m)| *m)
        .map(|(n, _, _)| n.as_str())
        .collect();
    let slaves: Vec<&str> = db_hosts
        .iter()
        .filter(|(_, _, m)| !*m)
        .map(|(n, _, _)| n.as_str())
        .collect();
    for (name, ip, is_master) in db_hosts {
        let _ = writeln!(common, "<host {name}>");
        let _ = writeln!(common, "    ip      {ip}");
        if *is_master {
            let _ = writeln!(common, "    mode    master");
            if let Some(peer) = masters.iter().find(|m| **m != name.as_str()) {
                let _ = writeln!(common, "    peer    {peer}");
            }
        } else {
            let _ = writeln!(common, "    mode    slave");
        }
        common.push_str("</host>\n\n");
    }
    let _ = write!(
        common,
        "<role writer>\n    hosts   {}\n    ips     {}\n    mode    exclusive\n</role>\n\n",
        masters.join(", "),
        vip(WRITER_VIP)
    );
    if !slaves.is_empty() {
        let ips: Vec<String> = READER_VIPS.iter().map(|o| vip(*o).to_string()).collect();
        let _ = write!(
            common,
            "<role reader>\n    hosts   {}\n    ips     {}\n    mode    balanced\n</role>\n",
            slaves.join(", "),
            ips.join(", ")
        );
    }

    let agents = db_hosts
        .iter()
        .map(|(name, _, _)| {
            (
                name.clone(),
                format!("include mmm_common.conf\n\nthis {name}\n"),
            )
        })
        .collect();

    let ping_ips: Vec<String> = db_hosts.iter().map(|(_, ip, _)| ip.to_string()).collect();
    let mon = format!(
        "include mmm_common.conf\n\n\
         <monitor>\n\
         \x20   ip                  127.0.0.1\n\
         \x20   pid_path            /run/mysql-mmm-monitor.pid\n\
         \x20   bin_path            /usr/libexec/mysql-mmm\n\
         \x20   status_path         /var/lib/misc/mmm_mond.status\n\
         \x20   ping_ips            {}\n\
         \x20   auto_set_online     10\n\
         </monitor>\n\n\
         <host default>\n\
         \x20   monitor_user        mmm_monitor\n\
         \x20   monitor_password    123456\n\
         </host>\n\n\
         debug 0\n",
        ping_ips.join(",")
    );
    MmmConfigs {
        common,
        agents,
        mon,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_shape() {
        let hosts = vec![
            ("db1".to_string(), Ipv4Addr::new(198, 18, 7, 100), true),
            ("db2".to_string(), Ipv4Addr::new(198, 18, 7, 102), true),
            ("db3".to_string(), Ipv4Addr::new(198, 18, 7, 103), false),
            ("db4".to_string(), Ipv4Addr::new(198, 18, 7, 105), false),
        ];
        let c = build(7, &hosts, Ipv4Addr::new(198, 18, 7, 106));
        assert!(c
            .common
            .starts_with("monitor_ips             198.18.7.106\n"));
        assert!(c.common.contains(
            "<host db1>\n    ip      198.18.7.100\n    mode    master\n    peer    db2\n</host>"
        ));
        assert!(c
            .common
            .contains("<host db4>\n    ip      198.18.7.105\n    mode    slave\n</host>"));
        assert!(c
            .common
            .contains("hosts   db1, db2\n    ips     198.18.7.188\n    mode    exclusive"));
        assert!(c.common.contains(
            "hosts   db3, db4\n    ips     198.18.7.198, 198.18.7.199\n    mode    balanced"
        ));
        assert_eq!(c.agents.len(), 4);
        assert_eq!(
            c.agent("db3"),
            Some("include mmm_common.conf\n\nthis db3\n")
        );
        assert_eq!(c.agent("monitor"), None);
        assert!(c
            .mon
            .contains("ping_ips            198.18.7.100,198.18.7.102,198.18.7.103,198.18.7.105"));
    }
}
