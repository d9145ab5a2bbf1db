//! `mmm_tests`: the multi-host testbed for mmm-rs (issue 3; DESIGN.md "Tests: real
//! servers, real hosts"). It builds the seed's deployment on one machine — network
//! namespaces db1, db2, db3, db4 and monitor joined by a bridge in a namespace of its own,
//! `ens33` in each, a real MariaDB server per database host configured and replicating as
//! in the seed (db1 <-> db2, db3 and db4 from db1) — and injects faults into it.
//!
//! ```no_run
//! use mmm_tests::{Testbed, TestbedOptions};
//! let tb = Testbed::up(TestbedOptions { subnet: 7, ..Default::default() })?;
//! tb.query("db1", "INSERT INTO mmm_test.mt_break VALUES (1)")?;
//! let out = tb.exec("monitor", &["ip", "addr", "show", "ens33"])?;
//! tb.mysql_kill9("db1")?;
//! tb.down()?;
//! # Ok::<(), mmm_tests::TestbedError>(())
//! ```
//!
//! Needs root. docs/testbed.md describes the layout, docs/grants.md the accounts.
//!
//! Layout:
//! - [`testbed`]: [`Testbed`] (up, down, attach/detach, exec/spawn/command, query/sql,
//!   configs), leftover cleanup, the state file.
//! - [`figures`]: median and range, a process's RSS and CPU (benchmarks).
//! - [`fleet`]: extra configured hosts (addresses on db3, a fifth hung server) for the
//!   monitor scaling benchmark (docs/scaling.md).
//! - [`faults`]: stop / kill -9 / freeze / thaw / start a server, cut / restore a link,
//!   break / repair / delay replication, neighbour cache.
//! - [`inhost`]: Rust code of the test run inside a host's namespace
//!   ([`Testbed::run_in_netns`], TCP connect/listen from a host).
//! - [`net`]: namespaces, bridge, veths (`ip -n`), [`MacAddr`].
//! - [`mariadb`]: my.cnf, the bootstrap with the MMM accounts, the CLI client, [`Row`].
//! - [`configs`]: the seed's mmm_common.conf / mmm_agent.conf / mmm_mon.conf.
//! - [`bins`]: [`workspace_binary`], the path of mmm_agentd/mmm_mond/mmm_control.
//! - [`cluster`]: [`cluster::Cluster`], the testbed plus the real daemons (agents, monitor),
//!   healthy; or agents only, with the test playing the monitor ([`cluster::Daemons`]).
//! - [`workload`]: the write-load client of the fault matrix (acknowledged ids, gaps).
//! - [`checker`]: the 50 ms writable/VIP sampler, the invariants, the row comparison (also
//!   of any table: [`checker::wait_same_rows`], [`checker::missing_ids`]).
//! - `process` (private): child processes under timeouts, signals by pid.
//! - [`etcd`]: a real three-member etcd cluster on extra hosts (monitor HA).
//! - [`error`]: the error type, [`TestbedError`].

pub mod bins;
pub mod checker;
pub mod cluster;
pub mod configs;
pub mod error;
pub mod etcd;
pub mod faults;
pub mod figures;
pub mod fleet;
pub mod inhost;
pub mod mariadb;
pub mod net;
mod process;
pub mod testbed;
pub mod workload;

pub use bins::workspace_binary;
pub use configs::MmmConfigs;
pub use error::{Result, TestbedError};
pub use mariadb::{HostRole, Row, PASSWORD};
pub use net::{MacAddr, CLUSTER_INTERFACE};
pub use testbed::{reap_leftovers, HostInfo, Testbed, TestbedOptions, PREFIX, STATE_FILE};
