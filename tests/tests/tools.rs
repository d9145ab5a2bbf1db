//! MMM's tools on the testbed (issue 19, docs/tools.md): real sshd (Debian's
//! openssh-server) in the source hosts' namespaces with keys made here, real
//! `mariadb-backup` and `mbstream`, the real daemons watching.
//!
//! One cluster, in order: every `--dry-run` changes nothing; db3 cloned from db1 under
//! write load replicates with every acknowledged row and goes back ONLINE; a backup of db1
//! restored on db4 (master-slave) replicates likewise; a crashed old master holding errant
//! transactions (issue 13) is re-seeded from the new writer with `mmm_clone --clone-mode
//! master-master` and brought back ONLINE with `set_online`, its errant rows gone and
//! replication both ways. Also: two incremental `rdiff` backups of a slave and the older
//! version restored (rdiff-backup), a `slave-slave` clone, a backup laid out as 2.2.1 makes
//! it restored, and 2.2.1's LVM sequence with a bind mount for the snapshot;
//! `tools_lvm_snapshot` runs it with a real LVM snapshot where the kernel has
//! device-mapper (else it prints why it skips).
//!
//! Needs root, `openssh-server`, `mariadb-backup`, `rdiff-backup` and `lvm2`
//! (scripts/deps.sh) and the binaries:
//! `cargo build -p mmm-mon -p mmm-agent -p mmm-control -p mmm-tools`, then
//! `cargo test -p mmm-tests --test tools -- --nocapture`.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use mmm_tests::bins::workspace_binary;
use mmm_tests::checker::row_ids;
use mmm_tests::cluster::{Cluster, ClusterOptions};
use mmm_tests::figures;
use mmm_tests::mariadb::PASSWORD;
use mmm_tests::workload::{create_table, Workload, WorkloadOptions, LOAD_TABLE};

/// This test's testbed subnet (198.18.200.0/24).
const SUBNET: u8 = 200;

/// The benchmark's subnet.
const BENCH_SUBNET: u8 = 201;

/// The LVM test's subnet.
const LVM_SUBNET: u8 = 202;

/// The hosts that serve backups (sshd runs there).
const SOURCES: [&str; 3] = ["db1", "db2", "db3"];

/// Bound on one tool run.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// The tools' setup on the testbed: keys, sshd on the sources, the helper under
/// `bin_path`, an rc script and `mmm_tools.conf` per host.
struct Tools {
    dir: tempfile::TempDir,
    sshd: Vec<Child>,
}

impl Drop for Tools {
    fn drop(&mut self) {
        for c in &mut self.sshd {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn run(cmd: &mut std::process::Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn write_mode(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

impl Tools {
    fn setup(c: &Cluster) -> Tools {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for key in ["id_ed25519", "host_ed25519"] {
            run(std::process::Command::new("ssh-keygen")
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "mmm-tools-test",
                    "-f",
                ])
                .arg(d.join(key)));
        }
        std::fs::copy(d.join("id_ed25519.pub"), d.join("authorized_keys")).expect("keys");
        let tools = d.join("lib/tools");
        std::fs::create_dir_all(&tools).expect("mkdir");
        for helper in ["stream_backup", "create_snapshot", "remove_snapshot"] {
            let bin = workspace_binary(helper).unwrap_or_else(|e| panic!("{e}"));
            std::os::unix::fs::symlink(bin, tools.join(helper)).expect("symlink");
        }

        let tb = c.testbed();
        let mut sshd = Vec::new();
        for host in SOURCES {
            let h = tb.host(host).expect("host");
            std::fs::create_dir_all(h.dir.join("run/sshd")).expect("privsep dir");
            let cfg = d.join(format!("sshd_config.{host}"));
            write_mode(
                &cfg,
                &format!(
                    "Port 22\nListenAddress {ip}\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.{host}.pid\n\
                     AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                     StrictModes no\nPrintMotd no\nSubsystem sftp internal-sftp\n",
                    ip = h.ip,
                    d = d.display()
                ),
                0o600,
            );
            let cfg = cfg.display().to_string();
            sshd.push(
                tb.spawn(host, &["/usr/sbin/sshd", "-D", "-e", "-f", &cfg])
                    .expect("sshd"),
            );
        }
        for h in tb.hosts().iter().filter(|h| h.is_db()) {
            let rc = d.join(format!("rc.{}", h.name));
            write_mode(
                &rc,
                &format!(
                    "#!/bin/sh\ncase \"$1\" in\n\
                     stop) kill \"$(cat {pid})\" ;;\n\
                     start) setsid -f mariadbd --defaults-file={cnf} >>{out} 2>&1 </dev/null ;;\n\
                     *) exit 1 ;;\nesac\n",
                    pid = h.dir.join("run/mysqld/mysqld.pid").display(),
                    cnf = h.my_cnf().display(),
                    out = h.dir.join("mysql/mariadbd.rc.out").display(),
                ),
                0o755,
            );
            let mut conf = format!(
                "this {this}\ndefault_copy_method mbstream\nclone_dirs data\n\n<host default>\n\
                 \tssh_user root\n\
                 \tssh_parameters -F /dev/null -i {d}/id_ed25519 -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5\n\
                 \ttools_user mmm_tools\n\ttools_password {PASSWORD}\n\
                 \treplication_user replication\n\treplication_password {PASSWORD}\n\
                 \tbin_path {d}/lib\n\tbackup_method mariadb-backup\n</host>\n",
                this = h.name,
                d = d.display()
            );
            for o in tb.hosts().iter().filter(|h| h.is_db()) {
                conf.push_str(&format!(
                    "<host {name}>\n\tip {ip}\n\tmysql_pidfile {pid}\n\tmysql_rcscript {rc}\n\
                     \tmysql_cnf {cnf}\n\tbackup_dir {d}/backup.{name}\n\trestore_dir {data}\n\
                     \tlvm_mount_dir {d}/snapshot.{name}\n</host>\n",
                    name = o.name,
                    ip = o.ip,
                    pid = o.dir.join("run/mysqld/mysqld.pid").display(),
                    rc = d.join(format!("rc.{}", o.name)).display(),
                    cnf = o.my_cnf().display(),
                    d = d.display(),
                    data = o.datadir.clone().expect("datadir").display(),
                ));
            }
            let ssh = format!(
                "-F /dev/null -i {}/id_ed25519 -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
                d.display()
            );
            conf.push_str(&format!(
                "<copy_method scp>\n\tbackup_command scp -q -r {ssh} %SSH_USER%@%IP%:%SNAPSHOT%/%CLONE_DIR% %DEST_DIR%/\n\
                 \trestore_command cp -a %BACKUP_DIR%/. %DEST_DIR%/\n\ttrue_copy 1\n</copy_method>\n\
                 <copy_method rdiff>\n\tbackup_command rdiff-backup --ssh-no-compression --remote-schema 'ssh {ssh} %s rdiff-backup --server' -v 5 !--include %SNAPSHOT%/%CLONE_DIR%! --exclude %SNAPSHOT% %SSH_USER%@%IP%::%SNAPSHOT%/ %DEST_DIR%/\n\
                 \trestore_command rdiff-backup --force -v 5 -r %VERSION% %BACKUP_DIR% %DEST_DIR%/.mmm_restore; cp -axvl --remove-destination %DEST_DIR%/.mmm_restore/*  %DEST_DIR%/; rm -r %DEST_DIR%/.mmm_restore/\n\
                 \tincremental_command rdiff-backup --parsable-output -l %BACKUP_DIR%\n\tsingle_run 1\n\tincremental 1\n</copy_method>\n\
                 <copy_method ssh-gz>\n\tbackup_command ssh {ssh} %SSH_USER%@%IP% \"cd '%SNAPSHOT%'; tar c !'%CLONE_DIR%'!\" | gzip > %DEST_DIR%/backup.tar.gz\n\
                 \trestore_command cd %DEST_DIR%; tar xzf %BACKUP_DIR%/backup.tar.gz\n\tsingle_run 1\n</copy_method>\n"
            ));
            conf.push_str(
                "<copy_method mbstream>\n\tbackup_command mbstream -x -C %DEST_DIR%\n\
                 \trestore_command cp -a %BACKUP_DIR%/. %DEST_DIR%/\n\ttrue_copy 1\n\tstream 1\n</copy_method>\n",
            );
            write_mode(&h.dir.join("etc/mysql-mmm/mmm_tools.conf"), &conf, 0o600);
        }
        // The tools' account (docs/grants.md), created on the writer (it replicates).
        let net = format!("198.18.{}.%", c.testbed().subnet());
        tb.query(
            "db1",
            &format!(
                "CREATE USER 'mmm_tools'@'{net}' IDENTIFIED BY '{PASSWORD}'; \
                 GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, SLAVE MONITOR, \
                 REPLICATION SLAVE ADMIN, READ_ONLY ADMIN ON *.* TO 'mmm_tools'@'{net}'"
            ),
        )
        .expect("tools account");
        let tools = Tools { dir, sshd };
        // sshd answers from every host that clones.
        for host in SOURCES {
            let start = Instant::now();
            loop {
                let out = tools.ssh(c, "db3", host, "true");
                if out.status.success() {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "ssh to {host}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        tools
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }

    /// `ssh` from `from` to `to` running `command`, with the test's key.
    fn ssh(&self, c: &Cluster, from: &str, to: &str, command: &str) -> Output {
        let key = self.key().display().to_string();
        let target = format!("root@{}", c.ip(to));
        c.exec_timeout(
            from,
            &[
                "ssh",
                "-F",
                "/dev/null",
                "-i",
                &key,
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "ConnectTimeout=2",
                &target,
                command,
            ],
            Duration::from_secs(10),
        )
        .expect("ssh")
    }
}

/// A tool's run: exit code, stdout, stderr.
struct Ran {
    code: Option<i32>,
    out: String,
    err: String,
    took: Duration,
}

/// Runs tool `program` with `args` on `host`.
fn tool(c: &Cluster, host: &str, program: &str, args: &[&str]) -> Ran {
    let bin = workspace_binary(program).unwrap_or_else(|e| panic!("{e}"));
    let bin = bin.display().to_string();
    let mut argv = vec![bin.as_str()];
    argv.extend_from_slice(args);
    let t = Instant::now();
    let out = c
        .exec_timeout(host, &argv, TOOL_TIMEOUT)
        .unwrap_or_else(|e| panic!("{program} on {host}: {e}"));
    let ran = Ran {
        code: out.status.code(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: t.elapsed(),
    };
    println!(
        "--- {program} {} on {host}: exit {:?} in {:.1} s\n{}{}",
        args.join(" "),
        ran.code,
        ran.took.as_secs_f64(),
        ran.out,
        ran.err
            .lines()
            .filter(|l| !l.starts_with("INFO: Copied ") || l.contains(" bytes in "))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
    ran
}

fn ok(ran: &Ran, what: &str) {
    assert_eq!(
        ran.code,
        Some(0),
        "{what} failed:\n{}\n{}",
        ran.out,
        ran.err
    );
}

fn ids(c: &Cluster, host: &str) -> BTreeSet<u64> {
    row_ids(c, host, LOAD_TABLE).unwrap_or_else(|e| panic!("rows of {host}: {e}"))
}

/// `host` replicates from `master` with both threads running and no error.
fn replicating_from(c: &Cluster, host: &str, master: &str) -> Option<()> {
    let st = c.slave_status(host).ok()??;
    let get = |k: &str| st.get(k).unwrap_or("").to_string();
    (get("Master_Host") == c.ip(master).to_string()
        && get("Slave_IO_Running") == "Yes"
        && get("Slave_SQL_Running") == "Yes"
        && get("Last_SQL_Errno") == "0")
        .then_some(())
}

/// The replication fields of `host` (failure messages).
fn link(c: &Cluster, host: &str) -> String {
    match c.slave_status(host) {
        Ok(Some(st)) => [
            "Master_Host",
            "Slave_IO_Running",
            "Slave_SQL_Running",
            "Last_IO_Errno",
            "Last_IO_Error",
            "Last_SQL_Errno",
            "Last_SQL_Error",
            "Using_Gtid",
            "Gtid_IO_Pos",
        ]
        .iter()
        .map(|k| format!("{k}={} ", st.get(k).unwrap_or("")))
        .collect(),
        other => format!("{other:?}"),
    }
}

fn state(c: &Cluster, host: &str) -> String {
    c.show()
        .map(|s| s.state(host).to_string())
        .unwrap_or_default()
}

/// Brings `host` back ONLINE with `set_online` (auto_set_online is off here).
fn set_online(c: &Cluster, host: &str) {
    c.wait_for(
        &format!("{host} ONLINE after set_online"),
        Duration::from_secs(60),
        |c| match state(c, host).as_str() {
            "ONLINE" => Some(()),
            "AWAITING_RECOVERY" => {
                let (out, _) = c.control(&["set_online", host]).ok()?;
                println!("set_online {host}: {}", out.trim());
                None
            }
            _ => None,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

fn datadir(c: &Cluster, host: &str) -> PathBuf {
    c.host(host)
        .expect("host")
        .datadir
        .clone()
        .expect("datadir")
}

fn server_pid(c: &Cluster, host: &str) -> String {
    let h = c.host(host).expect("host");
    std::fs::read_to_string(h.dir.join("run/mysqld/mysqld.pid")).unwrap_or_default()
}

/// Every `--dry-run` prints its plan and changes nothing; usage errors exit 1.
fn dry_runs(c: &Cluster) {
    let pid = server_pid(c, "db3");
    let r = tool(
        c,
        "db3",
        "mmm_clone",
        &["--host", "db1", "--clone-mode", "master-slave", "--dry-run"],
    );
    ok(&r, "mmm_clone --dry-run");
    for l in [
        " Source host                    : db1",
        " Clone mode                     : master-slave",
        " Copy method                    : mbstream",
        " Replication peer               : db1",
        " Setup master-master replication: no",
        " Dry run                        : yes",
        "Plan:",
    ] {
        assert!(
            r.out.lines().any(|x| x == l),
            "no line {l:?} in:\n{}",
            r.out
        );
    }
    assert!(
        r.out.contains("stream_backup | mbstream -x -C "),
        "{}",
        r.out
    );
    assert_eq!(
        server_pid(c, "db3"),
        pid,
        "the dry run restarted db3's server"
    );
    assert!(
        c.mysql_running("db3").unwrap_or(false),
        "db3's server stopped"
    );
    let new = datadir(c, "db3").join(".mmm-new");
    assert!(!new.exists(), "the dry run made {new:?}");

    let r = tool(c, "db4", "mmm_backup", &["--host", "db1", "--dry-run"]);
    ok(&r, "mmm_backup --dry-run");
    assert!(r.out.contains("Plan:"), "{}", r.out);

    let r = tool(
        c,
        "db3",
        "mmm_clone",
        &["--host", "db3", "--clone-mode", "master-slave"],
    );
    assert_eq!(r.code, Some(1), "cloning oneself: {}", r.out);
    assert!(
        r.out.starts_with("We can't clone ourselves\n\nUsage: "),
        "{}",
        r.out
    );
    let r = tool(
        c,
        "db3",
        "mmm_clone",
        &["--host", "db1", "--clone-mode", "x"],
    );
    assert_eq!(r.code, Some(1));
    assert!(r.out.starts_with("Unknown clone mode 'x'\n"), "{}", r.out);
}

/// A clone that fails before the swap (no sshd on db4) leaves the data as it was.
fn failed_clone_changes_nothing(c: &Cluster) {
    let before = c
        .query("db3", "SELECT COUNT(*) FROM mmm_test.mt_load")
        .expect("count");
    let r = tool(
        c,
        "db3",
        "mmm_clone",
        &["--host", "db4", "--clone-mode", "master-slave"],
    );
    assert_eq!(
        r.code,
        Some(255),
        "a clone from a host without sshd: {}",
        r.err
    );
    assert!(
        r.err
            .contains("ERROR: Can't execute remote commands on host 'db4'"),
        "{}",
        r.err
    );
    assert!(r.err.contains("Nothing was changed"), "{}", r.err);
    let new = datadir(c, "db3").join(".mmm-new");
    assert!(!new.exists(), "{new:?} left behind");
    c.forget_server("db3");
    let h = c.host("db3").expect("db3");
    let rc = h.dir.join("etc/mysql-mmm/mmm_tools.conf");
    let conf = std::fs::read_to_string(rc).expect("conf");
    let rc = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("mysql_rcscript "))
        .find(|p| p.ends_with("rc.db3"))
        .expect("rc script");
    // In db3's namespaces, as mmm_clone runs it.
    let out = c.exec("db3", &[rc, "start"]).expect("rc start");
    assert!(out.status.success(), "{rc} start: {}", out.status);
    let after = c
        .wait_for("db3's server back", Duration::from_secs(30), |c| {
            c.query("db3", "SELECT COUNT(*) FROM mmm_test.mt_load").ok()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(before, after, "db3's rows changed");
}

fn start_load(c: &Cluster, first_id: u64) -> Workload {
    let load = Workload::start(
        c,
        "monitor",
        c.vip(188),
        WorkloadOptions {
            first_id,
            ..WorkloadOptions::default()
        },
    )
    .expect("load");
    load.wait_acks(20, Duration::from_secs(20)).expect("acks");
    load
}

/// Waits until `host` holds every row of `acked`.
fn wait_rows(c: &Cluster, host: &str, acked: &BTreeSet<u64>) {
    c.wait_for(
        &format!("every acknowledged row on {host}"),
        Duration::from_secs(60),
        |c| acked.is_subset(&ids(c, host)).then_some(()),
    )
    .unwrap_or_else(|e| {
        let missing: Vec<u64> = acked.difference(&ids(c, host)).copied().take(20).collect();
        panic!("{e}; missing e.g. {missing:?}")
    });
}

/// db3 cloned from db1 and db4 restored from a backup of db1, under write load.
fn clone_and_restore_slaves(c: &Cluster) {
    let load = start_load(c, 1);
    let r = tool(
        c,
        "db3",
        "mmm_clone",
        &["--host", "db1", "--clone-mode", "master-slave"],
    );
    ok(&r, "mmm_clone db3 from db1");
    assert!(
        r.err.contains("INFO: Clone operation finished!"),
        "{}",
        r.err
    );
    assert!(r.err.contains(" bytes in "), "no copy summary: {}", r.err);
    println!(
        "figure: mmm_clone db3 from db1 under load: {:.1} s",
        r.took.as_secs_f64()
    );
    c.forget_server("db3");
    c.wait_for("db3 replicating from db1", Duration::from_secs(30), |c| {
        replicating_from(c, "db3", "db1")
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let old = datadir(c, "db3").join(".mmm-old");
    assert!(!old.exists(), "the previous data was not removed");

    let r = tool(c, "db4", "mmm_backup", &["--host", "db1"]);
    ok(&r, "mmm_backup of db1 on db4");
    let backup = format!("{}/backup.db1", c_tools_dir(c));
    let status = std::fs::read_to_string(format!("{backup}/_mmm/status.txt")).expect("status.txt");
    assert!(
        status.contains("'host' => 'db1'") && status.contains("'Gtid_Binlog_Pos' => '0-"),
        "{status}"
    );
    let pid = server_pid(c, "db4");
    let src = format!("--src-dir={backup}");
    let r = tool(
        c,
        "db4",
        "mmm_restore",
        &[&src, "--mode", "master-slave", "--dry-run"],
    );
    ok(&r, "mmm_restore --dry-run");
    assert!(
        r.out.lines().any(|l| l == " Replication peer      : db1"),
        "{}",
        r.out
    );
    assert!(
        r.out.lines().any(|l| l == " Dry run               : yes"),
        "{}",
        r.out
    );
    assert_eq!(
        server_pid(c, "db4"),
        pid,
        "the dry run restarted db4's server"
    );
    let r = tool(c, "db4", "mmm_restore", &[&src, "--mode", "master-slave"]);
    ok(&r, "mmm_restore on db4");
    assert!(
        r.err.contains("INFO: Restore operation finished!"),
        "{}",
        r.err
    );
    c.forget_server("db4");
    c.wait_for("db4 replicating from db1", Duration::from_secs(30), |c| {
        replicating_from(c, "db4", "db1")
    })
    .unwrap_or_else(|e| panic!("{e}"));

    // 2.2.1's snapshot copy methods over a hot backup staged on the source.
    let r = tool(
        c,
        "db3",
        "mmm_clone",
        &[
            "--host",
            "db1",
            "--clone-mode",
            "master-slave",
            "--copy-method",
            "scp",
        ],
    );
    ok(&r, "mmm_clone db3 from db1 with scp");
    assert!(
        r.out.contains("OK: Snapshot created!") && r.out.contains("OK: Snapshot removed!"),
        "{}",
        r.out
    );
    c.forget_server("db3");
    let snapshot = format!("{}/snapshot.db1", c_tools_dir(c));
    let left: Vec<_> = std::fs::read_dir(&snapshot)
        .expect("snapshot dir")
        .collect();
    assert!(left.is_empty(), "the snapshot was not removed: {left:?}");
    let gz = format!("{}/backup-gz.db1", c_tools_dir(c));
    let dest = format!("--dest-dir={gz}");
    let r = tool(
        c,
        "db4",
        "mmm_backup",
        &["--host", "db1", "--copy-method", "ssh-gz", &dest],
    );
    ok(&r, "mmm_backup of db1 with ssh-gz");
    assert!(
        Path::new(&gz).join("backup.tar.gz").is_file(),
        "no backup.tar.gz"
    );
    let src = format!("--src-dir={gz}");
    let r = tool(c, "db4", "mmm_restore", &[&src, "--mode", "master-slave"]);
    ok(&r, "mmm_restore of the ssh-gz backup on db4");
    c.forget_server("db4");
    for h in ["db3", "db4"] {
        c.wait_for(
            &format!("{h} replicating from db1"),
            Duration::from_secs(30),
            |c| replicating_from(c, h, "db1"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }

    for h in ["db3", "db4"] {
        set_online(c, h);
    }
    let report = load.stop();
    let acked = report.acked_ids();
    println!("load: {}", report.summary());
    for h in ["db3", "db4"] {
        wait_rows(c, h, &acked);
    }
}

/// Inserts rows `ids` on the writer db1 (no load runs) and waits until `on` has them all.
fn write_rows(c: &Cluster, ids: std::ops::Range<u64>, on: &str) -> BTreeSet<u64> {
    write_rows_on(c, "db1", ids, on)
}

/// [`write_rows`] on the writer `writer`.
fn write_rows_on(c: &Cluster, writer: &str, ids: std::ops::Range<u64>, on: &str) -> BTreeSet<u64> {
    let values: Vec<String> = ids.clone().map(|i| format!("({i}, 0)")).collect();
    c.query(
        writer,
        &format!(
            "INSERT INTO {LOAD_TABLE} (id, at_ms) VALUES {}",
            values.join(", ")
        ),
    )
    .expect("insert");
    let want: BTreeSet<u64> = ids.collect();
    wait_rows(c, on, &want);
    want
}

/// 2.2.1's `rdiff` copy method (rdiff-backup, stock command lines with a remote schema
/// for the test's ssh key): two incremental backups of the slave db3 with rows written
/// between, `--version list` shows both, and the older version restored on db4 holds
/// exactly the first backup's rows.
fn rdiff_incremental_backups(c: &Cluster) {
    let dir = format!("{}/backup-rdiff.db3", c_tools_dir(c));
    let dest = format!("--dest-dir={dir}");
    let backup = |what: &str| {
        let r = tool(
            c,
            "db4",
            "mmm_backup",
            &["--host", "db3", "--copy-method", "rdiff", &dest],
        );
        ok(&r, what);
        assert!(
            r.out.contains("OK: Snapshot created!") && r.out.contains("OK: Snapshot removed!"),
            "{}",
            r.out
        );
    };
    write_rows(c, 20_000_001..20_000_051, "db3");
    let first = ids(c, "db3");
    backup("first rdiff backup of db3");
    let added = write_rows(c, 20_000_051..20_000_101, "db3");
    // rdiff-backup's versions are whole seconds.
    std::thread::sleep(Duration::from_millis(1100));
    backup("second rdiff backup of db3");
    assert!(
        Path::new(&dir).join("rdiff-backup-data").is_dir(),
        "no rdiff-backup repository in {dir}"
    );

    let src = format!("--src-dir={dir}");
    let r = tool(c, "db4", "mmm_restore", &[&src, "--version", "list"]);
    ok(&r, "mmm_restore --version list");
    let mut lines = r.out.lines();
    assert_eq!(
        lines.next(),
        Some("Following backup versions are available:"),
        "{}",
        r.out
    );
    assert_eq!(lines.next(), Some("     Version | Date"), "{}", r.out);
    assert_eq!(
        lines.next(),
        Some("-------------|---------------------------"),
        "{}",
        r.out
    );
    let versions: Vec<&str> = lines
        .filter_map(|l| l.split(" | ").next())
        .map(str::trim)
        .collect();
    assert_eq!(versions.len(), 2, "two versions expected:\n{}", r.out);
    assert!(versions[0] < versions[1], "{versions:?}");

    let r = tool(c, "db4", "mmm_restore", &[&src]);
    assert_eq!(r.code, Some(255), "an incremental backup without --version");
    assert!(
        r.err
            .contains("contains an incremental backup, but no version was specified"),
        "{}",
        r.err
    );

    let version = format!("--version={}", versions[0]);
    let r = tool(c, "db4", "mmm_restore", &[&src, &version]);
    ok(&r, "mmm_restore of the first rdiff version on db4");
    assert!(
        r.out
            .lines()
            .any(|l| l == format!(" Incremental version   : {}", versions[0])),
        "{}",
        r.out
    );
    assert!(
        r.err.contains(&format!(
            "INFO: Restored backup version '{}' from '{dir}'",
            versions[0]
        )),
        "{}",
        r.err
    );
    c.forget_server("db4");
    let on_db4 = c
        .wait_for(
            "db4's server on the restored data",
            Duration::from_secs(30),
            |c| row_ids(c, "db4", LOAD_TABLE).ok(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        on_db4.len(),
        first.len(),
        "db4 restored from the first version holds {} rows, the first backup {}",
        on_db4.len(),
        first.len()
    );
    assert!(on_db4 == first, "db4's rows are not the first backup's");
    assert!(
        added.is_disjoint(&on_db4),
        "rows of the second backup on db4"
    );
}

/// `mmm_clone --clone-mode slave-slave` on db4 from the slave db3 under write load: db4
/// replicates from db3's master (db1) and holds every acknowledged row.
fn clone_slave_slave(c: &Cluster) {
    let r = tool(
        c,
        "db4",
        "mmm_clone",
        &["--host", "db3", "--clone-mode", "slave-slave", "--dry-run"],
    );
    ok(&r, "mmm_clone slave-slave --dry-run");
    for l in [
        " Source host                    : db3",
        " Clone mode                     : slave-slave",
        " Replication peer               : db1",
        " Setup master-master replication: no",
    ] {
        assert!(
            r.out.lines().any(|x| x == l),
            "no line {l:?} in:\n{}",
            r.out
        );
    }
    let load = start_load(c, 30_000_000);
    let r = tool(
        c,
        "db4",
        "mmm_clone",
        &["--host", "db3", "--clone-mode", "slave-slave"],
    );
    ok(&r, "mmm_clone db4 from db3 (slave-slave)");
    c.forget_server("db4");
    c.wait_for("db4 replicating from db1", Duration::from_secs(30), |c| {
        replicating_from(c, "db4", "db1")
    })
    .unwrap_or_else(|e| panic!("{e}\ndb4: {}", link(c, "db4")));
    set_online(c, "db4");
    let report = load.stop();
    println!("load: {}", report.summary());
    let acked = report.acked_ids();
    wait_rows(c, "db4", &acked);
    wait_rows(c, "db4", &ids(c, "db1"));
}

/// Perl's `Data::Dumper` text (its default `Indent = 2`) of 2.2.1's status hash, as
/// 2.2.1's `create_snapshot` writes `_mmm/status.txt`.
fn perl_dumper(host: &str, master: &[(&str, String)], slave: &[(&str, String)]) -> String {
    let hash = |key: &str, pairs: &[(&str, String)]| {
        let brace = 10 + key.len() + 2 + 4;
        let lines: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}'{k}' => '{v}'", " ".repeat(brace + 2)))
            .collect();
        format!(
            "          '{key}' => {{\n{}\n{}}}",
            lines.join(",\n"),
            " ".repeat(brace)
        )
    };
    format!(
        "$VAR1 = {{\n          'host' => '{host}',\n{},\n{}\n        }};\n",
        hash("master", master),
        hash("slave", slave)
    )
}

/// A backup laid out as 2.2.1's mmm_backup leaves it (an LVM snapshot's copy: the clone
/// dir `data` copied from the stopped slave db4, `_mmm/status.txt` in Data::Dumper's text
/// with SHOW MASTER STATUS and SHOW SLAVE STATUS and no GTID, the copied my.cnf,
/// `copy_method.txt`), restored on db4 after more rows were written, with `--mode
/// slave-slave` into 2.2.1's `restore_dir` (the directory holding `data`): db4 replicates
/// from its master again by 2.2.1's file and position and holds every row.
fn restore_221_backup(c: &Cluster) {
    let st = c
        .slave_status("db4")
        .expect("slave status")
        .expect("db4 is a slave");
    let master_ip = st.get("Master_Host").unwrap_or_default().to_string();
    let writer = ["db1", "db2"]
        .into_iter()
        .find(|h| c.ip(h).to_string() == master_ip)
        .expect("db4's master");
    c.query("db4", "STOP SLAVE").expect("stop slave");
    let st = c
        .slave_status("db4")
        .expect("slave status")
        .expect("db4 is a slave");
    let get = |k: &str| st.get(k).unwrap_or_default().to_string();
    let ms = c.query("db4", "SHOW MASTER STATUS").expect("master status");
    let master = vec![
        ("File", ms[0].at(0).unwrap_or_default().to_string()),
        ("Position", ms[0].at(1).unwrap_or_default().to_string()),
        ("Binlog_Do_DB", String::new()),
        ("Binlog_Ignore_DB", String::new()),
    ];
    let slave: Vec<(&str, String)> = [
        "Master_Host",
        "Master_Port",
        "Relay_Log_File",
        "Relay_Master_Log_File",
        "Exec_Master_Log_Pos",
    ]
    .into_iter()
    .map(|k| (k, get(k)))
    .collect();
    let dir = format!("{}/backup-221.db4", c_tools_dir(c));
    c.mysql_stop("db4").expect("stop db4");
    let data = datadir(c, "db4");
    sh(&format!(
        "mkdir -p {dir}/_mmm && cp -a {} {dir}/data",
        data.display()
    ));
    std::fs::write(
        format!("{dir}/_mmm/status.txt"),
        perl_dumper("db4", &master, &slave),
    )
    .expect("status.txt");
    std::fs::copy(
        c.host("db4").expect("db4").my_cnf(),
        format!("{dir}/_mmm/my.cnf"),
    )
    .expect("my.cnf");
    std::fs::write(format!("{dir}/_mmm/copy_method.txt"), "scp").expect("copy_method.txt");
    c.mysql_start("db4").expect("start db4");
    let later = write_rows_on(c, writer, 40_000_001..40_000_051, "db4");

    let src = format!("--src-dir={dir}");
    let restore_dir = data.parent().expect("parent").to_path_buf();
    let dest = format!("--dest-dir={}", restore_dir.display());
    failed_221_restore_changes_nothing(c, &dir, &restore_dir);
    let r = tool(
        c,
        "db4",
        "mmm_restore",
        &[&src, &dest, "--mode", "slave-slave"],
    );
    ok(&r, "mmm_restore of a 2.2.1-made backup on db4");
    assert!(
        r.out
            .lines()
            .any(|l| l == format!(" Replication peer      : {writer}")),
        "{}",
        r.out
    );
    assert!(!r.out.contains("Backup method"), "{}", r.out);
    assert!(
        r.err.contains("INFO: Restore operation finished!"),
        "{}",
        r.err
    );
    c.forget_server("db4");
    c.wait_for(
        &format!("db4 replicating from {writer}"),
        Duration::from_secs(30),
        |c| replicating_from(c, "db4", writer),
    )
    .unwrap_or_else(|e| panic!("{e}\ndb4: {}", link(c, "db4")));
    wait_rows(c, "db4", &later);
    wait_rows(c, "db4", &ids(c, writer));
    for left in [".mmm-stage", "data.mmm-old", "_mmm.mmm-old"] {
        assert!(!restore_dir.join(left).exists(), "{left} left behind");
    }
}

/// Every entry under `dir` (type, path, size) and every file's SHA-256.
fn tree_digest(dir: &Path) -> String {
    let out = sh(&format!(
        "cd {} && find . -printf '%y %p %s\\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum",
        dir.display()
    ));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A restore of the 2.2.1-made backup in `backup` whose copy fails part-way (a copy
/// method whose `restore_command` copies `ibdata1`, then exits 3) with db4's server
/// stopped (`--mode data-only`): the error says nothing was changed, `restore_dir` is
/// byte-for-byte as it was and no stage is left; db4 starts on it with every row it had.
fn failed_221_restore_changes_nothing(c: &Cluster, backup: &str, restore_dir: &Path) {
    let conf_path = c
        .host("db4")
        .expect("db4")
        .dir
        .join("etc/mysql-mmm/mmm_tools.conf");
    let conf = std::fs::read_to_string(&conf_path).expect("conf");
    write_mode(
        &conf_path,
        &format!(
            "{conf}<copy_method partial>\n\tbackup_command false\n\trestore_command mkdir -p %DEST_DIR%/data && cp -a %BACKUP_DIR%/data/ibdata1 %DEST_DIR%/data/ && exit 3\n</copy_method>\n"
        ),
        0o600,
    );
    let method_file = format!("{backup}/_mmm/copy_method.txt");
    std::fs::write(&method_file, "partial").expect("copy_method.txt");
    let t = Instant::now();
    let rows = ids(c, "db4");
    c.mysql_stop("db4").expect("stop db4");
    let before = tree_digest(restore_dir);
    let src = format!("--src-dir={backup}");
    let dest = format!("--dest-dir={}", restore_dir.display());
    let r = tool(
        c,
        "db4",
        "mmm_restore",
        &[&src, &dest, "--mode", "data-only"],
    );
    write_mode(&conf_path, &conf, 0o600);
    std::fs::write(&method_file, "scp").expect("copy_method.txt");
    assert_ne!(r.code, Some(0), "the failed copy must fail:\n{}", r.err);
    assert!(
        r.err.contains("ERROR: Can't restore data")
            && r.err.contains(&format!(
                "Nothing was changed: '{}' is as it was",
                restore_dir.display()
            )),
        "{}",
        r.err
    );
    assert!(
        r.err
            .contains(&format!("{}/.mmm-stage/data", restore_dir.display())),
        "the command copies into the stage: {}",
        r.err
    );
    assert!(
        !restore_dir.join(".mmm-stage").exists(),
        "the stage is left"
    );
    assert_eq!(
        tree_digest(restore_dir),
        before,
        "db4's restore_dir changed"
    );
    c.mysql_start("db4").expect("db4 starts on its old data");
    assert!(ids(c, "db4").is_superset(&rows), "db4 lost rows");
    println!(
        "failed 2.2.1-made backup restore checked in {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

/// The tools' temp dir, as written into the configs (read back from db1's config).
fn c_tools_dir(c: &Cluster) -> String {
    let h = c.host("db1").expect("db1");
    let conf = std::fs::read_to_string(h.dir.join("etc/mysql-mmm/mmm_tools.conf")).expect("conf");
    conf.lines()
        .find_map(|l| l.trim().strip_prefix("bin_path "))
        .and_then(|p| p.strip_suffix("/lib"))
        .expect("bin_path")
        .to_string()
}

/// The old master crashes holding errant transactions (issue 13), is kept out, and is
/// re-seeded from the new writer with mmm_clone master-master, then set online.
fn reseed_diverged_master(c: &Cluster) {
    let load = start_load(c, 10_000_000);
    c.query("db2", "STOP SLAVE IO_THREAD")
        .expect("stop IO on db2");
    std::thread::sleep(Duration::from_millis(600));
    for s in ["db3", "db4"] {
        c.query(s, "STOP SLAVE IO_THREAD").expect("stop IO");
    }
    std::thread::sleep(Duration::from_millis(400));
    let _ = load.wait_acks(5, Duration::from_secs(10));
    c.mysql_kill9("db1").expect("kill -9 db1");
    for s in ["db2", "db3", "db4"] {
        c.query(s, "START SLAVE IO_THREAD").expect("start IO");
    }
    c.wait_for("the writer on db2", Duration::from_secs(60), |c| {
        (c.holds_ip("db2", c.vip(188)).unwrap_or(false) && c.writable("db2")).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    c.wait_for("db1 HARD_OFFLINE", Duration::from_secs(30), |c| {
        (state(c, "db1") == "HARD_OFFLINE").then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    // The slaves follow the new writer before db1 returns (a slave still replicating from
    // the old master would receive its errant transactions: docs/data-safety.md).
    c.wait_for(
        "db3 and db4 replicating from db2",
        Duration::from_secs(30),
        |c| {
            replicating_from(c, "db3", "db2")?;
            replicating_from(c, "db4", "db2")
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    c.mysql_start("db1").expect("start db1");
    c.wait_show("db1 kept out", Duration::from_secs(60), |s| {
        s.comments
            .iter()
            .any(|l| l.starts_with("Warning: host db1 is kept out: "))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let errant: BTreeSet<u64> = ids(c, "db1").difference(&ids(c, "db2")).copied().collect();
    assert!(!errant.is_empty(), "db1 holds no row db2 lacks");
    println!(
        "figure: {} errant rows on db1 before the re-seed",
        errant.len()
    );

    let r = tool(
        c,
        "db1",
        "mmm_clone",
        &[
            "--host",
            "db2",
            "--clone-mode",
            "master-master",
            "--dry-run",
        ],
    );
    ok(&r, "mmm_clone master-master --dry-run");
    assert!(
        r.out
            .lines()
            .any(|l| l == " Setup master-master replication: yes"),
        "{}",
        r.out
    );
    assert!(r.out.contains("point db2 at db1"), "{}", r.out);
    assert!(
        !errant.is_disjoint(&ids(c, "db1")),
        "the dry run changed db1"
    );

    let r = tool(
        c,
        "db1",
        "mmm_clone",
        &["--host", "db2", "--clone-mode", "master-master"],
    );
    ok(&r, "mmm_clone db1 from db2 (master-master)");
    println!(
        "figure: mmm_clone db1 from db2 (master-master) under load: {:.1} s",
        r.took.as_secs_f64()
    );
    c.forget_server("db1");
    let db1_rows = ids(c, "db1");
    assert!(errant.is_disjoint(&db1_rows), "errant rows left on db1");
    set_online(c, "db1");
    let show = c.show().expect("show");
    assert!(
        !show
            .comments
            .iter()
            .any(|l| l.starts_with("Warning: host db1 is kept out")),
        "db1 still kept out after the re-seed: {}",
        show.raw
    );
    c.wait_for(
        "replication both ways between db1 and db2",
        Duration::from_secs(60),
        |c| {
            replicating_from(c, "db1", "db2")?;
            replicating_from(c, "db2", "db1")
        },
    )
    .unwrap_or_else(|e| panic!("{e}\ndb1: {}\ndb2: {}", link(c, "db1"), link(c, "db2")));
    let report = load.stop();
    println!("load: {}", report.summary());
    let on_db2 = ids(c, "db2");
    // Acknowledged after the failover: on the writer, so on db1 too.
    let acked: BTreeSet<u64> = report.acked_ids().intersection(&on_db2).copied().collect();
    wait_rows(c, "db1", &acked);
    for h in ["db1", "db2", "db3", "db4"] {
        assert!(errant.is_disjoint(&ids(c, h)), "errant rows on {h}");
    }
}

#[test]
fn tools_clone_backup_restore_reseed() {
    let opts = ClusterOptions {
        auto_set_online: Some(0.0),
        ..ClusterOptions::fast(SUBNET)
    };
    let c = Cluster::start(opts).unwrap_or_else(|e| panic!("start: {e}"));
    create_table(&c, "db1").expect("load table");
    let tools = Tools::setup(&c);
    dry_runs(&c);
    failed_clone_changes_nothing(&c);
    clone_and_restore_slaves(&c);
    rdiff_incremental_backups(&c);
    clone_slave_slave(&c);
    reseed_diverged_master(&c);
    restore_221_backup(&c);
    lvm_sequence_with_a_bind_mount(&c, &tools);
    clone_onto_a_mount_point(&c);
    drop(tools);
    c.stop().expect("stop");
}

/// The data directory as `pid`'s mount namespace sees it.
fn seen_by(pid: &str, dir: &Path) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/root{}", dir.display()))
}

/// db4's data directory a mount point of its own (a tmpfs mounted over it in the mount
/// namespace mmm_clone runs in, and so the server it starts): a clone from the writer under
/// write load completes (a rename of the mount point itself would fail with EBUSY, a copy
/// beside it would land on the parent filesystem), the server runs on the tmpfs with every
/// acknowledged row, the mount is still there and no `.mmm-*` is left in it.
fn clone_onto_a_mount_point(c: &Cluster) {
    let st = c
        .slave_status("db4")
        .expect("slave status")
        .expect("db4 is a slave");
    let master_ip = st.get("Master_Host").unwrap_or_default().to_string();
    let writer = ["db1", "db2"]
        .into_iter()
        .find(|h| c.ip(h).to_string() == master_ip)
        .expect("db4's master");
    let data = datadir(c, "db4");
    let load = start_load(c, 50_000_000);
    let bin = workspace_binary("mmm_clone").unwrap_or_else(|e| panic!("{e}"));
    let script =
        "mount -t tmpfs -o size=1g,mode=0750 mmm-datadir \"$1\" && chown mysql:mysql \"$1\" && \
                  echo old > \"$1/old-entry\" && shift && exec \"$@\"";
    let data_s = data.display().to_string();
    let bin_s = bin.display().to_string();
    let t = Instant::now();
    let out = c
        .exec_timeout(
            "db4",
            &[
                "sh",
                "-c",
                script,
                "sh",
                &data_s,
                &bin_s,
                "--host",
                writer,
                "--clone-mode",
                "master-slave",
            ],
            TOOL_TIMEOUT,
        )
        .expect("mmm_clone onto a mount point");
    let err = String::from_utf8_lossy(&out.stderr);
    println!(
        "--- mmm_clone db4 from {writer} onto a tmpfs data directory: {} in {:.1} s\n{err}",
        out.status,
        t.elapsed().as_secs_f64()
    );
    assert!(out.status.success(), "mmm_clone: {err}");
    assert!(err.contains("INFO: Clone operation finished!"), "{err}");
    c.forget_server("db4");
    c.wait_for(
        &format!("db4 replicating from {writer}"),
        Duration::from_secs(30),
        |c| replicating_from(c, "db4", writer),
    )
    .unwrap_or_else(|e| panic!("{e}\ndb4: {}", link(c, "db4")));
    let report = load.stop();
    println!("load: {}", report.summary());
    assert!(report.acked_ids().len() > 20, "{}", report.summary());
    assert!(
        report.summary().contains(", 0 refused,"),
        "ids taken by an earlier step? {}",
        report.summary()
    );
    wait_rows(c, "db4", &report.acked_ids());

    let pid = server_pid(c, "db4").trim().to_string();
    let mountinfo =
        std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("server's mountinfo");
    assert!(
        mountinfo.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(4) == Some(&data_s.as_str()) && l.contains(" - tmpfs mmm-datadir ")
        }),
        "the tmpfs on {data_s} is gone from the server's mounts:\n{mountinfo}"
    );
    let inside = seen_by(&pid, &data);
    let left: Vec<String> = std::fs::read_dir(&inside)
        .expect("the server's data directory")
        .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with(".mmm") || n == "old-entry")
        .collect();
    assert!(left.is_empty(), "left in the data directory: {left:?}");
    assert!(
        inside.join("mysql").is_dir(),
        "no mysql schema on the tmpfs"
    );

    // MariaDB lists every directory of the data directory as a database: after the run
    // none of the tools' is left; while `.mmm-old` is there (from the start of the
    // server until its removal) it is listed, encoded, as `#mysql50#.mmm-old`
    // (docs/data-safety.md), never as a name an application could mistake for its own.
    let databases = |c: &Cluster| -> Vec<String> {
        c.query("db4", "SHOW DATABASES")
            .expect("show databases")
            .iter()
            .map(|r| r.at(0).unwrap_or_default().to_string())
            .collect()
    };
    let after = databases(c);
    assert!(
        !after.iter().any(|d| d.contains(".mmm")),
        "SHOW DATABASES after the clone: {after:?}"
    );
    let probe = inside.join(".mmm-old");
    std::fs::create_dir(&probe).expect("probe dir");
    let during = databases(c);
    std::fs::remove_dir(&probe).expect("probe dir");
    assert!(
        during.iter().any(|d| d == "#mysql50#.mmm-old"),
        "SHOW DATABASES with a .mmm-old dir: {during:?}"
    );
}

/// Why the LVM test can't run on this machine, if it can't: it needs the kernel's
/// device-mapper, loop devices and lvm2's programs.
fn lvm_unavailable() -> Option<String> {
    if !Path::new("/dev/mapper/control").exists() {
        return Some(
            "this kernel has no device-mapper (/dev/mapper/control absent), so LVM can't run here"
                .into(),
        );
    }
    if !Path::new("/dev/loop-control").exists() {
        return Some("no loop devices here (/dev/loop-control absent)".into());
    }
    for prog in [
        "losetup",
        "pvcreate",
        "vgcreate",
        "lvcreate",
        "lvremove",
        "mkfs.ext4",
    ] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {prog}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!("{prog} is not installed (scripts/deps.sh: lvm2)"));
        }
    }
    None
}

/// A volume group on a loop device with one ext4 logical volume `data`, mounted in the
/// root namespace; all removed on drop.
struct LoopLvm {
    dir: tempfile::TempDir,
    loopdev: String,
    vg: String,
}

fn sh(cmd: &str) -> Output {
    run(std::process::Command::new("sh").args(["-c", cmd]))
}

/// `sh -c cmd`: its stdout, or what failed.
fn try_sh(cmd: &str) -> Result<String, String> {
    let out = std::process::Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl LoopLvm {
    /// The volume group, or why the machine can't make one (a loop device or LVM refused:
    /// the environment, not the tools).
    fn new() -> Result<LoopLvm, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let img = dir.path().join("lvm.img");
        try_sh(&format!("truncate -s 256M {}", img.display()))?;
        let loopdev = try_sh(&format!("losetup --find --show {}", img.display()))?;
        let vg = format!("mmmtest{}", std::process::id());
        let lvm = LoopLvm { dir, loopdev, vg };
        try_sh(&format!(
            "pvcreate -ff -y {d} && vgcreate {vg} {d} && lvcreate -y -n data -L 96M {vg} && mkfs.ext4 -q /dev/{vg}/data && mkdir -p {m} && mount /dev/{vg}/data {m}",
            d = lvm.loopdev,
            vg = lvm.vg,
            m = lvm.origin().display()
        ))?;
        Ok(lvm)
    }

    fn origin(&self) -> PathBuf {
        self.dir.path().join("origin")
    }
}

impl Drop for LoopLvm {
    fn drop(&mut self) {
        let _ = std::process::Command::new("sh")
            .args([
                "-c",
                &format!(
                    "umount {m}; lvremove -f {vg}/mmm_snapshot; vgremove -f {vg}; pvremove -ff -y {d}; losetup -d {d}",
                    m = self.origin().display(),
                    vg = self.vg,
                    d = self.loopdev
                ),
            ])
            .output();
    }
}

/// 2.2.1's LVM snapshot back-end on a real loop device: `mmm_backup` of db1 (`backup_method
/// lvm`) runs `create_snapshot` over ssh (FLUSH TABLES WITH READ LOCK on db1's server, its
/// coordinates, lvcreate, UNLOCK, mount), copies the snapshot's clone dir with `scp` and
/// removes the snapshot (umount, lvremove). Skipped, with the reason printed, on a machine
/// without device-mapper.
#[test]
fn tools_lvm_snapshot() {
    if let Some(why) = lvm_unavailable() {
        println!("SKIP tools_lvm_snapshot: {why}");
        return;
    }
    let lvm = match LoopLvm::new() {
        Ok(l) => l,
        Err(why) => {
            println!("SKIP tools_lvm_snapshot: no LVM volume group on a loop device here: {why}");
            return;
        }
    };
    // The logical volume's contents: the clone dir `data`.
    std::fs::create_dir_all(lvm.origin().join("data/db")).expect("mkdir");
    std::fs::write(lvm.origin().join("data/db/marker"), "before the snapshot\n").expect("marker");
    sh("sync");
    let opts = ClusterOptions {
        auto_set_online: Some(0.0),
        ..ClusterOptions::fast(LVM_SUBNET)
    };
    let c = Cluster::start(opts).unwrap_or_else(|e| panic!("start: {e}"));
    create_table(&c, "db1").expect("load table");
    let tools = Tools::setup(&c);
    let lines = format!(
        "\tbackup_method lvm\n\tlvm_snapshot_size 32M\n\tlvm_volume_group {}\n\tlvm_logical_volume data\n\tlvm_mount_opts -o rw\n",
        lvm.vg
    );
    lvm_backup_of_db1(&c, &tools, &lines, "backup-lvm.db1");
    let lvs = sh(&format!("lvs --noheadings -o lv_name {}", lvm.vg));
    assert!(
        !String::from_utf8_lossy(&lvs.stdout).contains("mmm_snapshot"),
        "the snapshot volume is left"
    );
    drop(tools);
    c.stop().expect("stop");
}

/// `mmm_backup` of db1 on db4 with `scp` and db1's `<host>` section given `lines` (its LVM
/// settings): the snapshot's `data/db/marker` copied, a 2.2.1 `_mmm/status.txt` with the
/// coordinates and GTID read under the lock, db1 writable afterwards, the snapshot
/// unmounted (in sshd's mount namespace, where the helpers ran). db1's and db4's configs are
/// put back afterwards.
fn lvm_backup_of_db1(c: &Cluster, tools: &Tools, lines: &str, dest_name: &str) {
    let mount = tools.dir.path().join("snapshot.db1").display().to_string();
    let mut saved = Vec::new();
    for h in ["db1", "db4"] {
        let path = c
            .host(h)
            .expect("host")
            .dir
            .join("etc/mysql-mmm/mmm_tools.conf");
        let conf = std::fs::read_to_string(&path).expect("conf");
        let changed = conf.replacen("<host db1>\n", &format!("<host db1>\n{lines}"), 1);
        write_mode(&path, &changed, 0o600);
        saved.push((path, conf));
    }
    let dest = format!("{}/{dest_name}", c_tools_dir(c));
    let dest_arg = format!("--dest-dir={dest}");
    let r = tool(
        c,
        "db4",
        "mmm_backup",
        &["--host", "db1", "--copy-method", "scp", &dest_arg],
    );
    for (path, conf) in &saved {
        write_mode(path, conf, 0o600);
    }
    ok(&r, "mmm_backup of db1 with an LVM snapshot");
    assert!(
        r.out.contains("OK: Snapshot created!") && r.out.contains("OK: Snapshot removed!"),
        "{}",
        r.out
    );
    let marker = std::fs::read_to_string(format!("{dest}/data/db/marker")).expect("marker copied");
    assert_eq!(marker, "before the snapshot\n");
    let status = std::fs::read_to_string(format!("{dest}/_mmm/status.txt")).expect("status.txt");
    assert!(
        status.contains("'host' => 'db1'")
            && status.contains("'File' => 'mysql_bin.")
            && status.contains("'Gtid_Binlog_Pos' => '"),
        "{status}"
    );
    assert!(
        !status.contains("backup_method"),
        "2.2.1's status.txt expected: {status}"
    );
    // Unlocked: db1 takes writes.
    c.query(
        "db1",
        "CREATE TABLE IF NOT EXISTS mmm_test.after_lvm (id INT PRIMARY KEY)",
    )
    .expect("db1 writable after the snapshot");
    let out = tools.ssh(
        c,
        "db3",
        "db1",
        &format!("if mountpoint -q {mount}; then echo mounted; else echo free; fi"),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "free",
        "the snapshot is still mounted at {mount}"
    );
}

/// 2.2.1's LVM sequence where this machine can't run LVM: db1 with `backup_method lvm`,
/// its LVM programs replaced through 2.2.1's own settings (`lvm_bin_lvcreate true`,
/// `lvm_bin_lvremove true`) and the snapshot's mount by a bind mount of a directory
/// (`lvm_mount_opts --bind <dir> <mount dir> && true`, the rest of 2.2.1's mount line
/// going to `true`). Everything else is real: the helpers over ssh, FLUSH TABLES WITH
/// READ LOCK and the coordinates on db1's server, the mount and umount, the copy.
fn lvm_sequence_with_a_bind_mount(c: &Cluster, tools: &Tools) {
    let origin = tools.dir.path().join("lvm-origin");
    std::fs::create_dir_all(origin.join("data/db")).expect("mkdir");
    std::fs::write(origin.join("data/db/marker"), "before the snapshot\n").expect("marker");
    let mount = tools.dir.path().join("snapshot.db1");
    let lines = format!(
        "\tbackup_method lvm\n\tlvm_bin_lvcreate true\n\tlvm_bin_lvremove true\n\tlvm_snapshot_size 32M\n\tlvm_volume_group none\n\tlvm_logical_volume data\n\tlvm_mount_opts --bind {} {} && true\n",
        origin.display(),
        mount.display()
    );
    lvm_backup_of_db1(c, tools, &lines, "backup-lvm-bind.db1");
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `(bytes, seconds)` of the copy summary line `INFO: Copied N bytes in T s (…)`.
fn copied(err: &str) -> Option<(u64, f64)> {
    let l = err.lines().find(|l| l.contains(" bytes in "))?;
    let rest = l.strip_prefix("INFO: Copied ")?;
    let (bytes, rest) = rest.split_once(" bytes in ")?;
    let (secs, _) = rest.split_once(" s")?;
    Some((bytes.parse().ok()?, secs.parse().ok()?))
}

/// Median and range (mmm_tests::figures) with a unit.
fn median_range(v: &mut [f64], unit: &str, prec: usize) -> String {
    format!("{} {unit}", figures::median_range(v.to_vec(), prec))
}

/// The gaps between consecutive acknowledged writes within `[from, to]` (ms), as p50, p99.
fn ack_gaps(acks: &[std::time::Instant], from: Instant, to: Instant) -> (f64, f64) {
    let mut gaps: Vec<f64> = acks
        .windows(2)
        .filter(|w| w[0] >= from && w[1] <= to)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0)
        .collect();
    if gaps.is_empty() {
        return (0.0, 0.0);
    }
    gaps.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| gaps[((gaps.len() - 1) as f64 * q) as usize];
    (p(0.5), p(0.99))
}

/// Clone time, stream throughput and the write load's pace on the source during the hot
/// backup: db3 cloned from db1 `MMM_TOOLS_BENCH_RUNS` times (3) with
/// `MMM_TOOLS_BENCH_MB` MB (256) of rows on db1, one write every 10 ms through the writer
/// VIP. Run by hand, release: `cargo build --release -p mmm-mon -p mmm-agent -p
/// mmm-control -p mmm-tools && cargo test --release -p mmm-tests --test tools bench --
/// --ignored --nocapture`.
#[test]
#[ignore]
fn bench_clone_throughput() {
    let mb = env_u64("MMM_TOOLS_BENCH_MB", 256);
    let runs = env_u64("MMM_TOOLS_BENCH_RUNS", 3);
    let opts = ClusterOptions {
        auto_set_online: Some(0.0),
        ..ClusterOptions::fast(BENCH_SUBNET)
    };
    let c = Cluster::start(opts).unwrap_or_else(|e| panic!("start: {e}"));
    create_table(&c, "db1").expect("load table");
    let _tools = Tools::setup(&c);
    c.query(
        "db1",
        "CREATE TABLE mmm_test.bulk (id INT AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(4000)) ENGINE=InnoDB",
    )
    .expect("bulk table");
    let t = Instant::now();
    // 10 MB a statement: 2560 rows of 4000 bytes.
    for _ in 0..mb.div_ceil(10) {
        c.query(
            "db1",
            "INSERT INTO mmm_test.bulk (pad) SELECT REPEAT(MD5(seq), 125) FROM mmm_test.seq_1_to_2560",
        )
        .expect("fill");
    }
    let rows = c
        .query("db1", "SELECT COUNT(*) FROM mmm_test.bulk")
        .expect("count")[0]
        .at(0)
        .unwrap_or("0")
        .to_string();
    c.wait_for("db3 has the bulk rows", Duration::from_secs(600), |c| {
        let n = c.query("db3", "SELECT COUNT(*) FROM mmm_test.bulk").ok()?;
        (n[0].at(0) == Some(rows.as_str())).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "bench: {rows} rows ({mb} MB) on db1 and replicated in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    let load = start_load(&c, 1);
    let mut windows = Vec::new();
    let (mut took, mut rate, mut streamed) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        std::thread::sleep(Duration::from_secs(3));
        let t0 = Instant::now();
        let r = tool(
            &c,
            "db3",
            "mmm_clone",
            &["--host", "db1", "--clone-mode", "master-slave"],
        );
        let t1 = Instant::now();
        ok(&r, "mmm_clone");
        let (bytes, secs) = copied(&r.err).expect("copy summary");
        took.push(r.took.as_secs_f64());
        rate.push(bytes as f64 / secs / 1048576.0);
        streamed.push(bytes as f64 / 1048576.0);
        windows.push((t0, t1));
        c.forget_server("db3");
        c.wait_for("db3 replicating from db1", Duration::from_secs(60), |c| {
            replicating_from(c, "db3", "db1")
        })
        .unwrap_or_else(|e| panic!("{e}"));
        set_online(&c, "db3");
    }
    let report = load.stop();
    let acks: Vec<Instant> = report.acks.iter().map(|a| a.at).collect();
    let (mut p50_before, mut p99_before, mut p50_during, mut p99_during) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (t0, t1) in &windows {
        let (a, b) = ack_gaps(&acks, *t0 - Duration::from_secs(3), *t0);
        let (x, y) = ack_gaps(&acks, *t0, *t1);
        p50_before.push(a);
        p99_before.push(b);
        p50_during.push(x);
        p99_during.push(y);
    }
    println!("load: {}", report.summary());
    println!(
        "figure: mmm_clone of {mb} MB ({runs} runs): streamed {}, clone {}, stream {}",
        median_range(&mut streamed, "MiB", 0),
        median_range(&mut took, "s", 1),
        median_range(&mut rate, "MiB/s", 1)
    );
    println!(
        "figure: write pace on the source (gap between acknowledged writes, one every 10 ms): p50 {} / p99 {} in the 3 s before, p50 {} / p99 {} during the clone",
        median_range(&mut p50_before, "ms", 1),
        median_range(&mut p99_before, "ms", 1),
        median_range(&mut p50_during, "ms", 1),
        median_range(&mut p99_during, "ms", 1)
    );
    c.stop().expect("stop");
}
