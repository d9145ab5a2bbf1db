//! 2.2.1's LVM snapshot back-end (`backup_method lvm`, the default of a host with `lvm_*`
//! settings): the remote helpers `create_snapshot` (FLUSH TABLES WITH READ LOCK, the
//! replication coordinates, `lvcreate --snapshot`, UNLOCK TABLES, mount, `_mmm/status.txt`
//! and a copy of `mysql_cnf`) and `remove_snapshot` (umount, `lvremove -f`). The server
//! and the external commands are behind [`SnapshotOps`], so the order (the read lock held
//! across `lvcreate` only, released on every failure path) is unit-tested.

use std::collections::BTreeMap;
use std::path::Path;

use mysql_async::prelude::Queryable;

use crate::settings::{Host, ToolsConfig};
use crate::status::{Status, GTID_KEY};

/// The snapshot volume's name (2.2.1's).
pub const SNAPSHOT_LV: &str = "mmm_snapshot";

/// A host's LVM settings (spec §2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvmSettings {
    /// `lvm_bin_lvcreate` (default `lvcreate`).
    pub lvcreate: String,
    /// `lvm_bin_lvremove` (default `lvremove`).
    pub lvremove: String,
    /// `lvm_snapshot_size`.
    pub size: String,
    /// `lvm_volume_group`.
    pub volume_group: String,
    /// `lvm_logical_volume`.
    pub logical_volume: String,
    /// `lvm_mount_dir`.
    pub mount_dir: String,
    /// `lvm_mount_opts` (2.2.1: `-o rw` when empty).
    pub mount_opts: String,
}

impl LvmSettings {
    /// The settings of `host`.
    pub fn of(host: &Host<'_>) -> LvmSettings {
        let or = |v: &str, d: &str| {
            if v.is_empty() {
                d.to_string()
            } else {
                v.to_string()
            }
        };
        LvmSettings {
            lvcreate: or(host.tool("lvm_bin_lvcreate"), "lvcreate"),
            lvremove: or(host.tool("lvm_bin_lvremove"), "lvremove"),
            size: host.tool("lvm_snapshot_size").to_string(),
            volume_group: host.tool("lvm_volume_group").to_string(),
            logical_volume: host.tool("lvm_logical_volume").to_string(),
            mount_dir: host.tool("lvm_mount_dir").to_string(),
            mount_opts: or(host.tool("lvm_mount_opts"), "-o rw"),
        }
    }

    /// `lvcreate --snapshot --size <size> --name mmm_snapshot /dev/<vg>/<lv>`.
    pub fn lvcreate_argv(&self) -> Vec<String> {
        vec![
            self.lvcreate.clone(),
            "--snapshot".into(),
            "--size".into(),
            self.size.clone(),
            "--name".into(),
            SNAPSHOT_LV.into(),
            format!("/dev/{}/{}", self.volume_group, self.logical_volume),
        ]
    }

    /// `mount <opts> /dev/<vg>/mmm_snapshot <mount dir>` (through the shell, as 2.2.1:
    /// the options are written as one string, `-orw,nouuid`).
    pub fn mount_argv(&self) -> Vec<String> {
        vec![
            "sh".into(),
            "-c".into(),
            format!(
                "mount {} /dev/{}/{SNAPSHOT_LV} {}",
                self.mount_opts, self.volume_group, self.mount_dir
            ),
        ]
    }

    /// `umount <mount dir>`.
    pub fn umount_argv(&self) -> Vec<String> {
        vec!["umount".into(), self.mount_dir.clone()]
    }

    /// `lvremove -f /dev/<vg>/mmm_snapshot`.
    pub fn lvremove_argv(&self) -> Vec<String> {
        vec![
            self.lvremove.clone(),
            "-f".into(),
            format!("/dev/{}/{SNAPSHOT_LV}", self.volume_group),
        ]
    }
}

/// The coordinates recorded under the lock: SHOW MASTER STATUS (with `Gtid_Binlog_Pos`)
/// and SHOW SLAVE STATUS, column name → value.
pub type Positions = (BTreeMap<String, String>, BTreeMap<String, String>);

/// What `create_snapshot` and `remove_snapshot` do outside the file system: the
/// server's lock and coordinates, and the external commands. Errors are the text the
/// helper's `ERROR:` line carries.
pub trait SnapshotOps {
    /// `FLUSH TABLES WITH READ LOCK`, held until [`SnapshotOps::unlock`] (or the end of
    /// the session).
    fn lock(&mut self) -> Result<(), String>;
    /// `sync` (2.2.1: sync, one second, sync).
    fn sync(&mut self);
    /// SHOW MASTER STATUS (with `Gtid_Binlog_Pos` where the server has GTIDs) and SHOW
    /// SLAVE STATUS (empty for a server that is no slave).
    fn positions(&mut self) -> Result<Positions, String>;
    /// `UNLOCK TABLES`.
    fn unlock(&mut self) -> Result<(), String>;
    /// Runs an external command.
    fn run(&mut self, argv: &[String]) -> Result<(), String>;
}

/// Releases the lock on a failure path (a failed UNLOCK is logged: the session's end
/// releases it anyway).
fn unlock_after_failure(ops: &mut dyn SnapshotOps) {
    if let Err(e) = ops.unlock() {
        tracing::warn!("Can't unlock tables: {e}");
    }
}

/// Undoes a created snapshot (best effort): umount when mounted, `lvremove -f`.
fn drop_snapshot(ops: &mut dyn SnapshotOps, s: &LvmSettings, mounted: bool) {
    if mounted {
        if let Err(e) = ops.run(&s.umount_argv()) {
            tracing::warn!("Can't umount snapshot: {e}");
        }
    }
    if let Err(e) = ops.run(&s.lvremove_argv()) {
        tracing::warn!("Can't remove snapshot: {e}");
    }
}

/// 2.2.1's `create_snapshot` on `ops`: returns the helper's last line (`OK: Snapshot
/// created!` or `ERROR: …`). `connect` opens the session (its error is 2.2.1's `Can't
/// connect to database`). `mysql_cnf` is copied into `_mmm/` when it exists.
pub fn create<O: SnapshotOps>(
    s: &LvmSettings,
    host_name: &str,
    mysql_cnf: &str,
    connect: impl FnOnce() -> Result<O, String>,
) -> String {
    let dir = Path::new(&s.mount_dir);
    let _ = std::fs::create_dir_all(dir);
    if !dir.is_dir() || std::fs::read_dir(dir).is_err() {
        return format!(
            "ERROR: Directory '{}' has invalid permissions (it must be readable/writable/executable)",
            s.mount_dir
        );
    }
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return "ERROR: LVM mount dir is not empty!".into();
    }
    let mut ops = match connect() {
        Ok(o) => o,
        Err(e) => return format!("ERROR: Can't connect to database! Error = {e}"),
    };
    let ops: &mut dyn SnapshotOps = &mut ops;
    tracing::info!("Locking tables...");
    if let Err(e) = ops.lock() {
        unlock_after_failure(ops);
        return format!("ERROR: Can't lock tables! Error = {e}");
    }
    ops.sync();
    let (master, slave) = match ops.positions() {
        Ok(p) => p,
        Err(e) => {
            unlock_after_failure(ops);
            return format!("ERROR: Can't get position info: {e}");
        }
    };
    if let Err(e) = ops.run(&s.lvcreate_argv()) {
        unlock_after_failure(ops);
        return format!("ERROR: Can't create or mount snapshot: ERROR: Can't create snapshot: {e}");
    }
    // The snapshot is the point in time: the lock goes before the mount.
    if let Err(e) = ops.unlock() {
        tracing::warn!("Can't unlock tables: {e}");
    }
    if let Err(e) = ops.run(&s.mount_argv()) {
        drop_snapshot(ops, s, false);
        return format!("ERROR: Can't create or mount snapshot: ERROR: Can't mount snapshot: {e}");
    }
    let status = Status {
        host: host_name.to_string(),
        master,
        slave,
        ..Status::default()
    };
    let written = (|| -> Result<(), String> {
        let mmm = dir.join(crate::status::MMM_DIR);
        std::fs::create_dir_all(&mmm).map_err(|e| format!("Can't create pos file: {e}"))?;
        std::fs::write(mmm.join("status.txt"), crate::status::dump(&status))
            .map_err(|e| format!("Can't create pos file: {e}"))?;
        let cnf = Path::new(mysql_cnf);
        if let Some(name) = cnf.file_name().filter(|_| cnf.is_file()) {
            std::fs::copy(cnf, mmm.join(name))
                .map_err(|_| "Can't copy mysql config file to backup!".to_string())?;
        }
        Ok(())
    })();
    if let Err(e) = written {
        drop_snapshot(ops, s, true);
        return format!("ERROR: {e}");
    }
    "OK: Snapshot created!".into()
}

/// 2.2.1's `remove_snapshot` on `ops`: umount, `lvremove -f`; the helper's last line.
pub fn remove(ops: &mut dyn SnapshotOps, s: &LvmSettings) -> String {
    if let Err(e) = ops.run(&s.umount_argv()) {
        return format!("ERROR: Can't umount snapshot: {e}");
    }
    if let Err(e) = ops.run(&s.lvremove_argv()) {
        return format!("ERROR: Can't remove snapshot: {e}");
    }
    "OK: Snapshot removed!".into()
}

/// The real [`SnapshotOps`]: the local server over the tools account, commands run
/// directly (their output goes to the helper's stderr).
pub struct SystemOps {
    rt: tokio::runtime::Runtime,
    conn: Option<mysql_async::Conn>,
    host: String,
}

fn value_text(v: &mysql_async::Value) -> String {
    match v {
        mysql_async::Value::NULL => String::new(),
        mysql_async::Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => other.as_sql(true).trim_matches('\'').to_string(),
    }
}

fn row_map(row: Option<mysql_async::Row>) -> BTreeMap<String, String> {
    let Some(row) = row else {
        return BTreeMap::new();
    };
    let cols = row.columns();
    let mut m = BTreeMap::new();
    for (i, c) in cols.iter().enumerate() {
        let v = row.as_ref(i).map(value_text).unwrap_or_default();
        m.insert(c.name_str().into_owned(), v);
    }
    m
}

impl SystemOps {
    /// A session with `host`'s server (tools account); no session for remove.
    pub fn new(host: Option<&Host<'_>>) -> Result<SystemOps, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let (conn, name) = match host {
            Some(h) => (
                Some(
                    rt.block_on(crate::server::connect(h))
                        .map_err(|e| e.to_string())?,
                ),
                h.name().to_string(),
            ),
            None => (None, String::new()),
        };
        Ok(SystemOps {
            rt,
            conn,
            host: name,
        })
    }

    fn query(&mut self, sql: &str) -> Result<Option<mysql_async::Row>, String> {
        let conn = self.conn.as_mut().ok_or("no session")?;
        self.rt
            .block_on(conn.query_first::<mysql_async::Row, _>(sql))
            .map_err(|e| format!("{sql} on {}: {e}", self.host))
    }
}

impl SnapshotOps for SystemOps {
    fn lock(&mut self) -> Result<(), String> {
        self.query("FLUSH TABLES WITH READ LOCK").map(|_| ())
    }

    fn sync(&mut self) {
        // SAFETY: sync(2) takes no arguments and cannot fail.
        unsafe { libc::sync() };
        std::thread::sleep(std::time::Duration::from_secs(1));
        // SAFETY: as above.
        unsafe { libc::sync() };
    }

    fn positions(&mut self) -> Result<Positions, String> {
        let mut master = row_map(self.query("SHOW MASTER STATUS")?);
        if master.is_empty() {
            return Err(
                "ERROR: Can't get master status information! Error: the binary log is off".into(),
            );
        }
        // MariaDB's GTID position at the lock (MySQL has no such variable: none recorded).
        if let Ok(Some(r)) = self.query("SELECT @@GLOBAL.gtid_binlog_pos") {
            let g = r.as_ref(0).map(value_text).unwrap_or_default();
            if !g.is_empty() {
                master.insert(GTID_KEY.into(), g);
            }
        }
        let slave = row_map(self.query("SHOW SLAVE STATUS")?);
        Ok((master, slave))
    }

    fn unlock(&mut self) -> Result<(), String> {
        self.query("UNLOCK TABLES").map(|_| ())
    }

    fn run(&mut self, argv: &[String]) -> Result<(), String> {
        let Some((prog, args)) = argv.split_first() else {
            return Err("empty command".into());
        };
        tracing::info!("Executing command {}", argv.join(" "));
        let status = std::process::Command::new(prog)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::inherit())
            .status()
            .map_err(|e| format!("{prog}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{} exited with {status}", argv.join(" ")))
        }
    }
}

impl Drop for SystemOps {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            let _ = self.rt.block_on(c.disconnect());
        }
    }
}

/// The `create_snapshot` helper for an LVM host.
pub fn create_snapshot(cfg: &ToolsConfig) -> String {
    let host = match cfg.this_host() {
        Ok(h) => h,
        Err(e) => return format!("ERROR: {e}"),
    };
    let s = LvmSettings::of(&host);
    create(&s, host.name(), &host.section.mysql_cnf, || {
        SystemOps::new(Some(&host))
    })
}

/// The `remove_snapshot` helper for an LVM host.
pub fn remove_snapshot(cfg: &ToolsConfig) -> String {
    let host = match cfg.this_host() {
        Ok(h) => h,
        Err(e) => return format!("ERROR: {e}"),
    };
    match SystemOps::new(None) {
        Ok(mut ops) => remove(&mut ops, &LvmSettings::of(&host)),
        Err(e) => format!("ERROR: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Records every step in a shared log; fails the step named in `fail`.
    #[derive(Default)]
    struct Fake {
        log: Rc<RefCell<Vec<String>>>,
        fail: Option<&'static str>,
        locked: bool,
    }

    impl Fake {
        fn step(&mut self, name: &str) -> Result<(), String> {
            self.log.borrow_mut().push(name.to_string());
            if self.fail == Some(name) {
                return Err(format!("{name} failed"));
            }
            Ok(())
        }
    }

    impl SnapshotOps for Fake {
        fn lock(&mut self) -> Result<(), String> {
            self.step("lock")?;
            self.locked = true;
            Ok(())
        }
        fn sync(&mut self) {
            self.log.borrow_mut().push("sync".into());
        }
        fn positions(&mut self) -> Result<Positions, String> {
            assert!(self.locked, "positions read without the lock");
            self.step("positions")?;
            let mut m = BTreeMap::new();
            m.insert("File".into(), "mysql_bin.000002".into());
            m.insert("Position".into(), "1234".into());
            m.insert(GTID_KEY.into(), "0-1-77".into());
            Ok((m, BTreeMap::new()))
        }
        fn unlock(&mut self) -> Result<(), String> {
            self.locked = false;
            self.step("unlock")
        }
        fn run(&mut self, argv: &[String]) -> Result<(), String> {
            let name = match argv[0].as_str() {
                "sh" if argv[2].starts_with("mount ") => "mount",
                "umount" => "umount",
                p if p.ends_with("lvcreate") => {
                    assert!(self.locked, "lvcreate without the lock");
                    "lvcreate"
                }
                p if p.ends_with("lvremove") => "lvremove",
                other => panic!("unexpected command {other}"),
            };
            if name == "mount" {
                assert!(!self.locked, "mounted under the lock");
            }
            self.step(name)
        }
    }

    fn settings(dir: &Path) -> LvmSettings {
        LvmSettings {
            lvcreate: "/sbin/lvcreate".into(),
            lvremove: "lvremove".into(),
            size: "1G".into(),
            volume_group: "storage".into(),
            logical_volume: "mysql".into(),
            mount_dir: dir.join("snap").display().to_string(),
            mount_opts: "-orw,nouuid".into(),
        }
    }

    fn create_with(fail: Option<&'static str>) -> (String, Vec<String>, tempfile::TempDir) {
        let tmp = tempfile::tempdir().expect("tmp");
        let s = settings(tmp.path());
        let cnf = tmp.path().join("my.cnf");
        std::fs::write(&cnf, "[mysqld]\n").expect("cnf");
        let log = Rc::new(RefCell::new(Vec::new()));
        let fake = Fake {
            log: log.clone(),
            fail,
            locked: false,
        };
        let line = create(&s, "db1", &cnf.display().to_string(), || Ok(fake));
        let log = log.borrow().clone();
        (line, log, tmp)
    }

    #[test]
    fn create_locks_across_lvcreate_only() {
        let (line, log, tmp) = create_with(None);
        assert_eq!(line, "OK: Snapshot created!");
        assert_eq!(
            log,
            ["lock", "sync", "positions", "lvcreate", "unlock", "mount"]
        );
        let status =
            std::fs::read_to_string(tmp.path().join("snap/_mmm/status.txt")).expect("status");
        let st = crate::status::parse(&status).expect("parses");
        assert_eq!(st.host, "db1");
        assert_eq!(
            st.master.get("File").map(String::as_str),
            Some("mysql_bin.000002")
        );
        assert_eq!(st.gtid(), Some("0-1-77"));
        assert!(st.backup_method.is_none(), "2.2.1's status.txt");
        assert!(tmp.path().join("snap/_mmm/my.cnf").is_file());
    }

    #[test]
    fn every_failure_unlocks_and_undoes() {
        for (fail, want_log, want_line) in [
            (
                "lock",
                vec!["lock", "unlock"],
                "ERROR: Can't lock tables! Error = lock failed",
            ),
            (
                "positions",
                vec!["lock", "sync", "positions", "unlock"],
                "ERROR: Can't get position info: positions failed",
            ),
            (
                "lvcreate",
                vec!["lock", "sync", "positions", "lvcreate", "unlock"],
                "ERROR: Can't create or mount snapshot: ERROR: Can't create snapshot: lvcreate failed",
            ),
            (
                "mount",
                vec!["lock", "sync", "positions", "lvcreate", "unlock", "mount", "lvremove"],
                "ERROR: Can't create or mount snapshot: ERROR: Can't mount snapshot: mount failed",
            ),
            (
                "unlock",
                vec!["lock", "sync", "positions", "lvcreate", "unlock", "mount"],
                "OK: Snapshot created!",
            ),
        ] {
            let (line, log, _tmp) = create_with(Some(fail));
            assert_eq!(line, want_line, "failing {fail}");
            assert_eq!(log, want_log, "failing {fail}");
        }
    }

    #[test]
    fn create_refuses_a_used_mount_dir() {
        let tmp = tempfile::tempdir().expect("tmp");
        let s = settings(tmp.path());
        std::fs::create_dir_all(tmp.path().join("snap/x")).expect("mkdir");
        let line = create(&s, "db1", "/nonexistent", || -> Result<Fake, String> {
            panic!("connected although the mount dir is in use")
        });
        assert_eq!(line, "ERROR: LVM mount dir is not empty!");
    }

    #[test]
    fn command_lines() {
        let s = settings(Path::new("/x"));
        assert_eq!(
            s.lvcreate_argv().join(" "),
            "/sbin/lvcreate --snapshot --size 1G --name mmm_snapshot /dev/storage/mysql"
        );
        assert_eq!(
            s.mount_argv()[2],
            "mount -orw,nouuid /dev/storage/mmm_snapshot /x/snap"
        );
        assert_eq!(
            s.lvremove_argv().join(" "),
            "lvremove -f /dev/storage/mmm_snapshot"
        );
        let mut f = Fake::default();
        assert_eq!(remove(&mut f, &s), "OK: Snapshot removed!");
        assert_eq!(*f.log.borrow(), ["umount", "lvremove"]);
        let mut f = Fake {
            fail: Some("umount"),
            ..Fake::default()
        };
        assert_eq!(
            remove(&mut f, &s),
            "ERROR: Can't umount snapshot: umount failed"
        );
        assert_eq!(*f.log.borrow(), ["umount"]);
    }
}
