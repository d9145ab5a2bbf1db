//! `mmm_clone [--config c] --host SRC --clone-mode master-master|master-slave|slave-slave
//! [--copy-method m] [--dest-dir d] [--dry-run]` (spec §6): replaces the local server's
//! data with a copy of SRC's and sets replication. With the hot-backup back-end: stop the
//! local server, stream SRC's backup into a new directory, prepare and verify it, swap it
//! for the old data directory, start, CHANGE MASTER by GTID; for master-master also point
//! SRC at this host. From a host with `backup_method lvm`: 2.2.1's sequence over an LVM
//! snapshot (`run_lvm`).

use clap::Parser;

use mmm_common::config::BackupMethod;

use crate::error::{Result, ToolsError};
use crate::hotbackup;
use crate::info::line;
use crate::remote;
use crate::server::{self, StartAt};
use crate::settings::{Host, ToolsConfig};
use crate::staged::Staged;
use crate::status::Status;
use crate::swap::Swap;

/// How long the master-master peer has to connect to the clone.
pub const PEER_CONNECT: std::time::Duration = std::time::Duration::from_secs(30);

/// The clone modes, as 2.2.1 lists them.
pub const CLONE_MODES: [&str; 3] = ["master-master", "master-slave", "slave-slave"];

/// The command line (2.2.1's GetOptions).
#[derive(Debug, Parser)]
#[command(
    name = "mmm_clone",
    disable_version_flag = true,
    disable_help_flag = true
)]
pub struct CloneArgs {
    /// Config base name or path (default `mmm_tools`).
    #[arg(long, default_value = "")]
    pub config: String,
    /// The source host.
    #[arg(long, default_value = "")]
    pub host: String,
    /// master-master, master-slave or slave-slave.
    #[arg(long = "clone-mode", default_value = "")]
    pub clone_mode: String,
    /// A `<copy_method>` (default `default_copy_method`).
    #[arg(long = "copy-method", default_value = "")]
    pub copy_method: String,
    /// Where the data goes (default the local host's `restore_dir`).
    #[arg(long = "dest-dir", default_value = "")]
    pub dest_dir: String,
    /// Print the plan only.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
}

/// 2.2.1's usage text (`Where:` part when the config was read).
pub fn usage(program: &str, cfg: Option<&ToolsConfig>) -> String {
    let mut s = format!("Usage: {program} [--config <config file>] --host <host> --clone-mode <mode> [--copy-method <copy method>] [--dest-dir <dir>]\n");
    if let Some(cfg) = cfg {
        let methods = cfg.copy_method_names(true);
        let mut modes = CLONE_MODES.to_vec();
        modes.sort();
        s.push_str("Where:\n");
        s.push_str(&format!(
            "  host       : {}\n",
            cfg.host_names().join(" | ")
        ));
        s.push_str(&format!("  clone-mode : {}\n", modes.join(" | ")));
        s.push_str(&format!(
            "  copy-method: {} (default: {})\n",
            methods.join(" | "),
            cfg.default_copy_method()
        ));
        s.push_str("  dest-dir   : directory where data should be cloned to\n\n");
    }
    s
}

/// 2.2.1's `check_restore_destination`: `mkdir -p`, then readable/writable.
pub fn check_restore_destination(dir: &str) -> bool {
    tracing::info!("Checking destination directory '{dir}'...");
    let _ = std::fs::create_dir_all(dir);
    let ok = std::fs::metadata(dir).is_ok_and(|m| m.is_dir() && !m.permissions().readonly());
    if !ok {
        tracing::error!(
            "Destination dir '{dir}' has invalid permissions (should be readable/writeable/executable)!"
        );
        return false;
    }
    tracing::info!("Directory is ok");
    true
}

/// What was decided before anything is done.
#[derive(Debug)]
pub struct Plan<'a> {
    /// The source host.
    pub source: Host<'a>,
    /// The local host.
    pub this: Host<'a>,
    /// The host the local server replicates from.
    pub peer: Host<'a>,
    /// The clone mode.
    pub mode: String,
    /// The copy method's name.
    pub copy_method: String,
    /// The destination directory.
    pub dest_dir: String,
}

/// Checks the parameters (usage errors as 2.2.1) and finds the replication peer.
pub async fn plan<'a>(cfg: &'a ToolsConfig, args: &CloneArgs) -> Result<Plan<'a>> {
    let source = cfg
        .host(&args.host)
        .ok_or_else(|| ToolsError::Usage(format!("Invalid host name '{}'", args.host)))?;
    if args.host == cfg.this() {
        return Err(ToolsError::Usage("We can't clone ourselves".into()));
    }
    let this = cfg.this_host()?;
    let copy_method = if args.copy_method.is_empty() {
        cfg.default_copy_method().to_string()
    } else {
        args.copy_method.clone()
    };
    let dest_dir = if args.dest_dir.is_empty() {
        this.tool("restore_dir").to_string()
    } else {
        args.dest_dir.clone()
    };
    if !CLONE_MODES.contains(&args.clone_mode.as_str()) {
        return Err(ToolsError::Usage(format!(
            "Unknown clone mode '{}'",
            args.clone_mode
        )));
    }
    let method = cfg
        .copy_method(&copy_method)
        .ok_or_else(|| ToolsError::Usage(format!("Invalid copy method '{copy_method}'")))?;
    if !method.true_copy {
        return Err(ToolsError::Usage(
            "Only copy methods which create an exact copy can be used for cloning".into(),
        ));
    }
    if !check_restore_destination(&dest_dir) {
        return Err(ToolsError::Usage(format!(
            "Invalid destination directory '{dest_dir}'"
        )));
    }
    let peer = if args.clone_mode == "slave-slave" {
        let ip = server::master_host(&source).await?;
        cfg.host_by_ip(&ip)
            .ok_or_else(|| ToolsError::Failed(format!("Unknown peer host '{ip}'")))?
    } else {
        source
    };
    Ok(Plan {
        source,
        this,
        peer,
        mode: args.clone_mode.clone(),
        copy_method,
        dest_dir,
    })
}

/// The info block (2.2.1's lines; `Backup method` added for the hot-backup back-end).
pub fn info_block(cfg: &ToolsConfig, plan: &Plan<'_>, dry_run: bool) -> String {
    let l = |a: &str, b: &str| line(a, b, 31, 46) + "\n";
    let mut s = String::new();
    s += &l("Source host", plan.source.name());
    s += &l("Destination dir", &plan.dest_dir);
    s += &l("Dirs to clone", &cfg.clone_dirs_text());
    s += &l("Clone mode", &plan.mode);
    s += &l("Copy method", &plan.copy_method);
    if plan.source.backup_method() == BackupMethod::MariadbBackup {
        s += &l("Backup method", "mariadb-backup");
    }
    s += &l("Replication peer", plan.peer.name());
    s += &l(
        "Setup master-master replication",
        if plan.mode == "master-master" {
            "yes"
        } else {
            "no"
        },
    );
    s += &l("Dry run", if dry_run { "yes" } else { "no" });
    s
}

/// The steps a run would take (printed by `--dry-run`).
pub fn steps(cfg: &ToolsConfig, plan: &Plan<'_>) -> Vec<String> {
    let swap = Swap::new(&plan.dest_dir);
    let receive = cfg
        .copy_method(&plan.copy_method)
        .and_then(|m| m.backup_command.clone())
        .unwrap_or_default();
    let receive = receive_command(&receive, &plan.source, &swap.new.display().to_string());
    let mut v = vec![
        format!(
            "stop the local MySQL server ({} stop)",
            plan.this.section.mysql_rcscript
        ),
        format!("check ssh: {} date", remote::ssh_prefix(&plan.source)),
    ];
    let stream = cfg.copy_method(&plan.copy_method).is_some_and(|m| m.stream);
    if stream {
        v.push(format!(
            "stream a hot backup: {} {} | {receive}",
            remote::ssh_prefix(&plan.source),
            remote::helper_path(&plan.source, "stream_backup")
        ));
        v.push(format!(
            "prepare and verify it: {} --prepare --target-dir={}",
            hotbackup::MARIADB_BACKUP,
            swap.new.display()
        ));
    } else {
        v.push(format!(
            "a prepared hot backup in {}:{} ({} {})",
            plan.source.name(),
            crate::copy::snapshot_dir(&plan.source),
            remote::ssh_prefix(&plan.source),
            remote::helper_path(&plan.source, "create_snapshot")
        ));
        v.push(format!(
            "copy it with copy method '{}' and its _mmm with 'scp' into {}, remove it on the source (remove_snapshot), move the copy to {} and verify it",
            plan.copy_method,
            swap.stage.display(),
            swap.new.display()
        ));
    }
    v.extend([
        format!(
            "swap inside {}: each entry -> {}/, each entry of {} -> {}/ (all put back if one rename fails)",
            swap.dest.display(),
            swap.old.display(),
            swap.new.display(),
            swap.dest.display()
        ),
        format!(
            "start the local MySQL server ({} start)",
            plan.this.section.mysql_rcscript
        ),
    ]);
    v.push(format!(
        "replicate from {} ({}) by GTID (gtid_slave_pos from the backup, MASTER_USE_GTID=slave_pos)",
        plan.peer.name(),
        plan.peer.ip()
    ));
    if plan.mode == "master-master" {
        v.push(format!(
            "point {} at {} ({}) by GTID (its gtid_slave_pos set to the backup's, MASTER_USE_GTID=slave_pos) and wait until it is connected",
            plan.peer.name(),
            plan.this.name(),
            plan.this.ip()
        ));
    }
    v.push(format!("remove the previous data ({})", swap.old.display()));
    v
}

/// A copy method's `backup_command` with the placeholders of a streaming receive.
pub fn receive_command(template: &str, source: &Host<'_>, dest: &str) -> String {
    crate::placeholders::fill(
        template,
        &[
            ("SSH_USER", source.tool("ssh_user")),
            ("IP", source.ip()),
            ("SNAPSHOT", source.tool("lvm_mount_dir")),
            ("DEST_DIR", dest),
            ("BACKUP_DIR", dest),
        ],
    )
}

/// Runs mmm_clone.
pub async fn run(cfg: &ToolsConfig, args: &CloneArgs) -> Result<()> {
    let plan = plan(cfg, args).await?;
    print!("{}", info_block(cfg, &plan, args.dry_run));
    let method = cfg.copy_method(&plan.copy_method).expect("checked by plan");
    if plan.source.backup_method() == BackupMethod::Lvm {
        if method.stream {
            return Err(ToolsError::Failed(crate::backup::lvm_stream_error(
                &plan.copy_method,
                plan.source.name(),
            )));
        }
        if args.dry_run {
            println!("Plan:");
            for (i, s) in lvm_steps(cfg, &plan).iter().enumerate() {
                println!("  {}. {s}", i + 1);
            }
            return Ok(());
        }
        return run_lvm(cfg, &plan).await;
    }
    if !method.stream {
        hotbackup::hot_clone_dir(cfg)?;
    }
    if args.dry_run {
        println!("Plan:");
        for (i, s) in steps(cfg, &plan).iter().enumerate() {
            println!("  {}. {s}", i + 1);
        }
        return Ok(());
    }
    let swap = Swap::new(&plan.dest_dir);
    swap.preflight()?;

    server::stop(&plan.this)?;
    let copied = if method.stream {
        copy_prepared(cfg, &plan, &swap)
    } else {
        copy_staged(cfg, &plan, &swap)
    };
    let status = copied.map_err(|e| {
        swap.discard_new();
        ToolsError::Failed(format!(
            "{e}\nNothing was changed: the local data in '{}' is as it was (the local MySQL server is stopped; start it with '{} start')",
            swap.dest.display(),
            plan.this.section.mysql_rcscript
        ))
    })?;
    swap.swap()?;
    if let Err(e) = server::start(&plan.this).await {
        return Err(ToolsError::Failed(format!(
            "{e}\nThe copy is in '{}', the previous data in '{}'",
            swap.dest.display(),
            swap.old.display()
        )));
    }
    let at = match (status.gtid(), plan.mode.as_str()) {
        (Some(g), _) => StartAt::Gtid(g.to_string()),
        (None, "slave-slave") => {
            return Err(ToolsError::Failed(
                "The copy has no GTID position: slave-slave needs one (MariaDB with GTIDs and log_slave_updates on the source)".into(),
            ))
        }
        (None, _) => StartAt::File {
            file: status.master.get("File").cloned().unwrap_or_default(),
            pos: status.master.get("Position").cloned().unwrap_or_default(),
        },
    };
    replicate(&plan, &at).await?;
    swap.drop_old();
    tracing::info!("Clone operation finished!");
    Ok(())
}

/// The clone replicates from `plan.peer` from `at`; for master-master the peer then
/// replicates from the clone.
async fn replicate(plan: &Plan<'_>, at: &StartAt) -> Result<()> {
    server::change_master_to(&plan.this, &plan.peer, at).await?;
    if plan.mode == "master-master" {
        // The peer asks for the copy's own GTID: this server's binary log starts after it
        // (it holds only what it replicates from the peer from there on, with
        // log_slave_updates) and its gtid_slave_pos starts at it, so the position is
        // accepted whether or not this server has logged anything yet. The peer's own
        // current position would be refused (error 1236) as soon as this server has
        // logged an older transaction of the peer.
        let peer_at = match at {
            StartAt::Gtid(g) => StartAt::Gtid(g.clone()),
            _ => StartAt::Beginning,
        };
        server::change_master_to(&plan.peer, &plan.this, &peer_at).await?;
        server::wait_io_connected(&plan.peer, PEER_CONNECT).await?;
    }
    Ok(())
}

/// The steps of a clone from an LVM host (2.2.1's sequence; printed by `--dry-run`).
pub fn lvm_steps(cfg: &ToolsConfig, plan: &Plan<'_>) -> Vec<String> {
    let mut v = vec![
        format!(
            "stop the local MySQL server ({} stop)",
            plan.this.section.mysql_rcscript
        ),
        format!("check ssh: {} date", remote::ssh_prefix(&plan.source)),
        format!(
            "an LVM snapshot of {} mounted at {} ({} {})",
            plan.source.name(),
            crate::copy::snapshot_dir(&plan.source),
            remote::ssh_prefix(&plan.source),
            remote::helper_path(&plan.source, "create_snapshot")
        ),
        format!(
            "copy {} with copy method '{}' and _mmm with 'scp' into {}/{}, remove the snapshot (remove_snapshot)",
            cfg.clone_dirs_text(),
            plan.copy_method,
            plan.dest_dir.trim_end_matches('/'),
            crate::staged::STAGE
        ),
        "verify the copy (every clone dir, a data directory, _mmm/status.txt) and clean it (binary and relay logs, master.info, relay-log.info, *.pid, auto.cnf; chown mysql:mysql)".into(),
        format!(
            "swap: each of {} and _mmm in {} -> <dir>.mmm-old, the copy's -> <dir>",
            cfg.clone_dirs_text(),
            plan.dest_dir
        ),
        format!(
            "start the local MySQL server ({} start)",
            plan.this.section.mysql_rcscript
        ),
        format!(
            "replicate from {} ({}) at the snapshot's position (by GTID where recorded)",
            plan.peer.name(),
            plan.peer.ip()
        ),
    ];
    if plan.mode == "master-master" {
        v.push(format!(
            "point {} at {} ({})",
            plan.peer.name(),
            plan.this.name(),
            plan.this.ip()
        ));
    }
    v.push(format!(
        "remove the previous data (<dir>.mmm-old in {})",
        plan.dest_dir
    ));
    v
}

/// A clone from a host with `backup_method lvm`: 2.2.1's sequence and command lines (the
/// clone dirs may be several, `data, logs` in 2.2.1's stock config), with the snapshot's
/// GTID position where it recorded one. The copy goes into `<dest>/.mmm-stage` and is
/// verified and cleaned there before the clone dirs are swapped ([`stage_lvm_copy`]).
async fn run_lvm(cfg: &ToolsConfig, plan: &Plan<'_>) -> Result<()> {
    let staged = Staged::new(&plan.dest_dir, &cfg.cfg.clone_dirs)?;
    staged.preflight()?;
    server::stop(&plan.this)?;
    let status = stage_lvm_copy(&staged, || {
        remote::check_ssh_connection(plan.source.name(), &plan.source)?;
        remote::execute_remote(plan.source.name(), &plan.source, "create_snapshot")?;
        let stage = staged.stage.display().to_string();
        let copied = (|| -> Result<()> {
            crate::copy::copy_clone_dirs(cfg, &plan.source, &plan.copy_method, &stage)?;
            crate::copy::copy_from_remote(
                cfg,
                &plan.source,
                "scp",
                &stage,
                crate::status::MMM_DIR,
            )?;
            crate::status::save_copy_method(&staged.stage, &plan.copy_method)
        })();
        let removed = remote::execute_remote(plan.source.name(), &plan.source, "remove_snapshot");
        copied?;
        removed
    })
    .map_err(|e| {
        ToolsError::Failed(format!(
            "{e}\nNothing was changed: the local data in '{}' is as it was (the local MySQL server is stopped; start it with '{} start')",
            plan.dest_dir,
            plan.this.section.mysql_rcscript
        ))
    })?;
    staged.swap()?;
    server::start(&plan.this).await?;
    let at = match (status.gtid(), plan.mode.as_str()) {
        (Some(g), _) => StartAt::Gtid(g.to_string()),
        (None, "slave-slave") => StartAt::File {
            file: status
                .slave
                .get("Relay_Master_Log_File")
                .cloned()
                .unwrap_or_default(),
            pos: status
                .slave
                .get("Exec_Master_Log_Pos")
                .cloned()
                .unwrap_or_default(),
        },
        (None, _) => StartAt::File {
            file: status.master.get("File").cloned().unwrap_or_default(),
            pos: status.master.get("Position").cloned().unwrap_or_default(),
        },
    };
    replicate(plan, &at).await?;
    staged.drop_old();
    tracing::info!("Clone operation finished!");
    Ok(())
}

/// Everything of an LVM clone before the point of no return: an empty stage, `copy` (ssh
/// check, snapshot, 2.2.1's copy into the stage, snapshot removed), the copy verified
/// (its `_mmm/status.txt` parsed) and cleaned in the stage. On a failure the stage is
/// removed; the destination's clone dirs were never touched. Returns the copy's status.
pub fn stage_lvm_copy(staged: &Staged, copy: impl FnOnce() -> Result<()>) -> Result<Status> {
    let prepared = (|| -> Result<Status> {
        staged.make_stage()?;
        copy()?;
        let status = staged.verify(None)?;
        crate::cleanup::cleanup(&status, &staged.stage, &staged.staged_dirs())?;
        Ok(status)
    })();
    if prepared.is_err() {
        staged.discard();
    }
    prepared
}

/// Everything before the point of no return: ssh check, stream into `.mmm-new`, prepare,
/// verify, clean. Returns the copy's coordinates.
fn copy_prepared(cfg: &ToolsConfig, plan: &Plan<'_>, swap: &Swap) -> Result<Status> {
    remote::check_ssh_connection(plan.source.name(), &plan.source)?;
    swap.make_new()?;
    let method = cfg.copy_method(&plan.copy_method).expect("checked by plan");
    let receive = receive_command(
        method.backup_command.as_deref().unwrap_or_default(),
        &plan.source,
        &swap.new.display().to_string(),
    );
    tracing::info!(
        "Copying a hot backup of host '{}' with copy method '{}'",
        plan.source.name(),
        plan.copy_method
    );
    let send = format!(
        "{} {}",
        remote::ssh_prefix(&plan.source),
        remote::helper_path(&plan.source, "stream_backup")
    );
    crate::stream::stream_copy(&send, &receive, &swap.new)?;
    hotbackup::prepare(&swap.new)?;
    hotbackup::verify(&swap.new)?;
    let status = hotbackup::status_of(&swap.new, plan.source.name())?;
    crate::cleanup::cleanup(&status, &swap.new, std::slice::from_ref(&swap.new))?;
    Ok(status)
}

/// [`copy_prepared`] with a snapshot copy method (2.2.1's sequence): `create_snapshot` on
/// the source (a prepared hot backup in its snapshot dir), the clone dir and `_mmm` (with
/// the method named `scp`, as 2.2.1) copied into `<dest>/.mmm-stage`, `remove_snapshot`; the
/// copy is verified and moved to `<dest>/.mmm-new`.
fn copy_staged(cfg: &ToolsConfig, plan: &Plan<'_>, swap: &Swap) -> Result<Status> {
    let clone_dir = hotbackup::hot_clone_dir(cfg)?;
    remote::check_ssh_connection(plan.source.name(), &plan.source)?;
    swap.make_stage()?;
    let stage = swap.stage.display().to_string();
    remote::execute_remote(plan.source.name(), &plan.source, "create_snapshot")?;
    let copied = (|| -> Result<()> {
        crate::copy::copy_clone_dirs(cfg, &plan.source, &plan.copy_method, &stage)?;
        crate::copy::copy_from_remote(cfg, &plan.source, "scp", &stage, crate::status::MMM_DIR)?;
        crate::status::save_copy_method(&swap.stage, &plan.copy_method)
    })();
    let removed = remote::execute_remote(plan.source.name(), &plan.source, "remove_snapshot");
    copied?;
    removed?;
    let status = crate::status::load_status(&swap.stage)?;
    swap.take_from_stage(clone_dir)?;
    hotbackup::verify(&swap.new)?;
    crate::cleanup::cleanup(&status, &swap.new, std::slice::from_ref(&swap.new))?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmm_common::config::{parse_str, ProgramClass};

    pub(crate) const CONF: &str = "this db3\ndefault_copy_method mbstream\nclone_dirs data, logs\n\
<host default>\n  ssh_user root\n  tools_user t\n  tools_password p\n  backup_dir /b\n  restore_dir /var/lib/mysql\n\
  replication_user r\n  replication_password s'x\n  bin_path /usr/lib/mysql-mmm/\n</host>\n\
<host db1>\n  ip 10.0.0.1\n</host>\n<host db3>\n  ip 10.0.0.3\n</host>\n\
<copy_method mbstream>\n  backup_command mbstream -x -C %DEST_DIR%\n  restore_command cp -a %BACKUP_DIR%/. %DEST_DIR%/\n  true_copy 1\n  stream 1\n</copy_method>\n\
<copy_method scp>\n  backup_command scp x\n  restore_command cp x\n</copy_method>\n";

    fn cfg() -> ToolsConfig {
        ToolsConfig {
            cfg: parse_str(CONF, "t.conf", &[], ProgramClass::Tools).expect("valid"),
        }
    }

    #[test]
    fn info_block_bytes() {
        let cfg = cfg();
        let plan = Plan {
            source: cfg.host("db1").expect("db1"),
            this: cfg.this_host().expect("db3"),
            peer: cfg.host("db1").expect("db1"),
            mode: "master-master".into(),
            copy_method: "mbstream".into(),
            dest_dir: "/var/lib/mysql".into(),
        };
        assert_eq!(
            info_block(&cfg, &plan, true),
            " Source host                    : db1\n\
             \x20Destination dir                : /var/lib/mysql\n\
             \x20Dirs to clone                  : data, logs\n\
             \x20Clone mode                     : master-master\n\
             \x20Copy method                    : mbstream\n\
             \x20Backup method                  : mariadb-backup\n\
             \x20Replication peer               : db1\n\
             \x20Setup master-master replication: yes\n\
             \x20Dry run                        : yes\n"
        );
        let steps = steps(&cfg, &plan).join("\n");
        assert!(steps.contains("ssh  -p 22 root@10.0.0.1 /usr/lib/mysql-mmm/tools/stream_backup | mbstream -x -C /var/lib/mysql/.mmm-new"), "{steps}");
        assert!(steps.contains("point db1 at db3"), "{steps}");
    }

    #[test]
    fn usage_lists_true_copy_methods() {
        let u = usage("mmm_clone", Some(&cfg()));
        assert!(u.starts_with("Usage: mmm_clone [--config <config file>] --host <host> --clone-mode <mode> [--copy-method <copy method>] [--dest-dir <dir>]\nWhere:\n"));
        assert!(u.contains("  host       : db1 | db3\n"));
        assert!(u.contains("  clone-mode : master-master | master-slave | slave-slave\n"));
        assert!(
            u.contains("  copy-method: mbstream (default: mbstream)\n"),
            "{u}"
        );
    }

    #[test]
    fn change_master_by_gtid_and_by_file() {
        let cfg = cfg();
        let db1 = cfg.host("db1").expect("db1");
        let v = server::change_master_statements(&db1, &StartAt::Gtid("0-1-5".into()));
        assert_eq!(
            v,
            [
                "STOP SLAVE",
                "RESET SLAVE",
                "SET GLOBAL gtid_slave_pos = '0-1-5'",
                "CHANGE MASTER TO MASTER_HOST='10.0.0.1', MASTER_PORT=3306, MASTER_USER='r', MASTER_PASSWORD='s\\'x', MASTER_USE_GTID=slave_pos",
                "START SLAVE"
            ]
        );
        let v = server::change_master_statements(
            &db1,
            &StartAt::File {
                file: "mysql-bin.000002".into(),
                pos: "98".into(),
            },
        );
        assert!(v[2].ends_with(", MASTER_LOG_FILE='mysql-bin.000002', MASTER_LOG_POS=98"));
        assert_eq!(v.len(), 4);
    }

    #[test]
    fn lvm_host_clone_plan_is_2_2_1s() {
        let conf = CONF.replace(
            "<host db1>\n  ip 10.0.0.1\n</host>",
            "<host db1>\n  ip 10.0.0.1\n  lvm_snapshot_size 1G\n  lvm_logical_volume mysql\n  lvm_volume_group storage\n  lvm_mount_dir /mmm_snapshot\n  lvm_mount_opts -orw,nouuid\n</host>",
        );
        let cfg = ToolsConfig {
            cfg: parse_str(&conf, "t.conf", &[], ProgramClass::Tools).expect("valid"),
        };
        let db1 = cfg.host("db1").expect("db1");
        assert_eq!(db1.backup_method(), BackupMethod::Lvm);
        let plan = Plan {
            source: db1,
            this: cfg.this_host().expect("db3"),
            peer: db1,
            mode: "master-slave".into(),
            copy_method: "scp".into(),
            dest_dir: "/mysql".into(),
        };
        // 2.2.1's info block: no `Backup method` line for an LVM source.
        assert!(!info_block(&cfg, &plan, true).contains("Backup method"));
        let steps = lvm_steps(&cfg, &plan);
        assert!(
            steps[2].contains("an LVM snapshot of db1 mounted at /mmm_snapshot")
                && steps[2].ends_with("/usr/lib/mysql-mmm/tools/create_snapshot)"),
            "{steps:?}"
        );
        assert!(
            steps[3].contains("copy data, logs with copy method 'scp'"),
            "{steps:?}"
        );
        assert!(
            steps[3].ends_with("into /mysql/.mmm-stage, remove the snapshot (remove_snapshot)"),
            "{steps:?}"
        );
        assert!(steps[5].starts_with("swap: each of data, logs and _mmm in /mysql"));
        assert_eq!(steps.len(), 9, "{steps:?}");
        assert!(crate::backup::lvm_stream_error("mbstream", "db1").contains("backup_method lvm"));
    }

    use std::path::Path;

    /// Every file under `dir` (but the stage) with its contents, for a byte-for-byte
    /// comparison.
    fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
                let p = e.path();
                if p.ends_with(crate::staged::STAGE) {
                    continue;
                }
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(dir).expect("below").display().to_string();
                    out.push((rel, std::fs::read(&p).expect("read")));
                }
            }
        }
        out.sort();
        out
    }

    fn write(root: &Path, files: &[(&str, &str)]) {
        for (f, text) in files {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
    }

    const STATUS: &str = "$VAR1 = {\n  'host' => 'db1',\n  'master' => {\n    'File' => 'mysql-bin.000002',\n    'Position' => '98'\n  },\n  'slave' => {}\n};\n";

    /// The LVM clone's staging (2.2.1's stock `clone_dirs data, logs` under `restore_dir`):
    /// a copy that fails part-way, or copies an incomplete set, leaves the destination as
    /// it was and no stage; a complete copy is verified, cleaned in the stage and swapped
    /// per clone dir, the old dirs kept until dropped, the rest of `restore_dir` untouched.
    #[test]
    fn lvm_clone_stages_verifies_and_swaps() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path().join("mysql");
        let old = [
            ("data/ibdata1", "old ibdata"),
            ("data/mysql/user.frm", "old user"),
            ("data/db/t.ibd", "old rows"),
            ("logs/mysql-bin.000007", "old binlog"),
            ("lost+found/x", "not ours"),
        ];
        write(&root, &old);
        let before = snapshot(&root);
        let dirs = vec!["data".to_string(), "logs".to_string()];
        let staged = Staged::new(&root.display().to_string(), &dirs).expect("staged");
        staged.preflight().expect("preflight");

        // The copy command copies some files, then fails.
        let e = stage_lvm_copy(&staged, || {
            write(&staged.stage, &[("data/ibdata1", "new ibdata")]);
            Err(ToolsError::Failed("Can't copy logs".into()))
        })
        .expect_err("failed copy");
        assert!(e.to_string().contains("Can't copy logs"), "{e}");
        assert_eq!(snapshot(&root), before, "the destination is as it was");
        assert!(!staged.stage.exists());

        // The copy commands succeed but the copy lacks `logs`: the check stops it.
        let e = stage_lvm_copy(&staged, || {
            write(
                &staged.stage,
                &[("data/mysql/user.frm", "new"), ("_mmm/status.txt", STATUS)],
            );
            Ok(())
        })
        .expect_err("incomplete copy");
        assert!(e.to_string().contains("lacks the clone dir 'logs'"), "{e}");
        assert_eq!(snapshot(&root), before);
        assert!(!staged.stage.exists());

        // A complete copy.
        let st = stage_lvm_copy(&staged, || {
            write(
                &staged.stage,
                &[
                    ("data/ibdata1", "new ibdata"),
                    ("data/mysql/user.frm", "new user"),
                    ("data/master.info", "stale"),
                    ("logs/mysql-bin.000002", "source binlog"),
                    ("_mmm/status.txt", STATUS),
                ],
            );
            crate::status::save_copy_method(&staged.stage, "scp")
        })
        .expect("staged copy");
        assert_eq!(st.host, "db1");
        assert_eq!(st.copy_method, "scp");
        assert_eq!(
            snapshot(&root),
            before,
            "nothing swapped before the point of no return"
        );
        assert!(
            !staged.stage.join("data/master.info").exists(),
            "cleaned in the stage"
        );
        assert!(!staged.stage.join("logs/mysql-bin.000002").exists());
        staged.swap().expect("swap");
        assert_eq!(
            std::fs::read_to_string(root.join("data/ibdata1")).expect("read"),
            "new ibdata"
        );
        assert!(
            !root.join("data/db").exists(),
            "the copy replaces the clone dir"
        );
        assert!(root.join("_mmm/status.txt").exists());
        assert_eq!(
            std::fs::read_to_string(root.join("data.mmm-old/db/t.ibd")).expect("old kept"),
            "old rows"
        );
        assert!(root.join("logs.mmm-old/mysql-bin.000007").exists());
        assert!(root.join("lost+found/x").exists(), "the rest is untouched");
        assert!(!staged.stage.exists());
        assert!(staged.preflight().is_err(), "an old dir stops the next run");
        staged.drop_old();
        assert!(!root.join("data.mmm-old").exists() && !root.join("logs.mmm-old").exists());
        staged.preflight().expect("preflight after drop");
    }
}
