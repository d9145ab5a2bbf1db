//! MMM's tools (spec §6): `mmm_clone`, `mmm_backup`, `mmm_restore` and the remote helper
//! `stream_backup`, reading 2.2.1's `mmm_tools.conf`. The hot-backup back-end streams a
//! `mariadb-backup` backup over ssh (docs/tools.md says what is built and what is not).
//!
//! Layout: `settings.rs` (the config as the tools read it), `remote.rs` (ssh, helpers),
//! `stream.rs` + `progress.rs` (the streaming copy), `hotbackup.rs` (mariadb-backup: the
//! helper, prepare, verify), `status.rs` (`_mmm/status.txt`), `cleanup.rs`, `swap.rs` (the
//! new-directory copy and its swap), `server.rs` (local server, CHANGE MASTER), one module
//! per program (`clone.rs`, `backup.rs`, `restore.rs`), `info.rs` (info blocks),
//! `placeholders.rs`, `log.rs`, `error.rs`, `manual.rs` (what the man pages show),
//! `lvm.rs` (2.2.1's LVM snapshot back-end of the remote helpers).

pub mod backup;
pub mod cleanup;
pub mod clone;
pub mod copy;
pub mod error;
pub mod hotbackup;
pub mod info;
pub mod log;
pub mod lvm;
pub mod manual;
pub mod placeholders;
pub mod progress;
pub mod remote;
pub mod restore;
pub mod room;
pub mod server;
pub mod settings;
pub mod staged;
pub mod status;
pub mod stream;
pub mod swap;

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

pub use error::{Result, ToolsError};
use settings::ToolsConfig;

/// The version the programs print for a lone `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn program_name(args: &[String]) -> String {
    args.first()
        .map(|a| {
            Path::new(a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| a.clone())
        })
        .unwrap_or_default()
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(f)
}

/// The shared frame of the three programs: `--version` alone, clap parsing, config
/// loading, usage on usage errors (exit 1), `ERROR:` and exit 255 on failures.
fn frame<A: Parser>(
    args: Vec<String>,
    config_of: impl Fn(&A) -> String,
    usage: impl Fn(&str, Option<&ToolsConfig>) -> String,
    body: impl for<'c> Fn(
        &'c ToolsConfig,
        &'c A,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<()>> + 'c>>,
) -> ExitCode {
    log::init();
    let argv0 = args.first().cloned().unwrap_or_default();
    if args.len() == 2 && args[1] == "--version" {
        println!("{} {VERSION}", program_name(&args));
        return ExitCode::SUCCESS;
    }
    let parsed = match A::try_parse_from(&args) {
        Ok(a) => a,
        Err(e) => {
            let msg = e.to_string();
            let first = msg
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            print!("{first}\n\n{}", usage(&argv0, None));
            return ExitCode::from(1);
        }
    };
    let cfg = match ToolsConfig::load(&config_of(&parsed)) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(255);
        }
    };
    match block_on(body(&cfg, &parsed)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(ToolsError::Usage(msg)) => {
            print!("{msg}\n\n{}", usage(&argv0, Some(&cfg)));
            ExitCode::from(1)
        }
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// `mmm_clone` (argv with the program name first).
pub fn main_clone(args: Vec<String>) -> ExitCode {
    frame::<clone::CloneArgs>(
        args,
        |a| a.config.clone(),
        clone::usage,
        |cfg, a| Box::pin(clone::run(cfg, a)),
    )
}

/// `mmm_backup`.
pub fn main_backup(args: Vec<String>) -> ExitCode {
    frame::<backup::BackupArgs>(
        args,
        |a| a.config.clone(),
        backup::usage,
        |cfg, a| Box::pin(backup::run(cfg, a)),
    )
}

/// `mmm_restore`.
pub fn main_restore(args: Vec<String>) -> ExitCode {
    frame::<restore::RestoreArgs>(
        args,
        |a| a.config.clone(),
        restore::usage,
        |cfg, a| Box::pin(restore::run(cfg, a)),
    )
}

/// The remote helper `stream_backup` (reads `mmm_tools`, as 2.2.1's helpers do).
pub fn main_stream_backup() -> ExitCode {
    let cfg = match ToolsConfig::load(settings::DEFAULT_CONFIG) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ERROR: {e}");
            return ExitCode::from(1);
        }
    };
    ExitCode::from(hotbackup::stream_backup(&cfg))
}

/// A snapshot helper (`create_snapshot`, `remove_snapshot`): reads `mmm_tools`, prints its
/// result line (2.2.1: always exit 0, success = the last line starts with `OK`).
pub fn main_snapshot_helper(create: bool) -> ExitCode {
    let line = match ToolsConfig::load(settings::DEFAULT_CONFIG) {
        Ok(cfg) if create => hotbackup::create_snapshot(&cfg),
        Ok(cfg) => hotbackup::remove_snapshot(&cfg),
        Err(e) => format!("ERROR: {e}"),
    };
    println!("{line}");
    ExitCode::SUCCESS
}
