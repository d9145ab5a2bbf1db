//! The three programs' clap definitions as their man pages and shell completions show
//! them (xtask generates both from these): the parsers of `clone.rs`, `backup.rs` and
//! `restore.rs` with a one-line description, the version, and the sections after the
//! options (FILES, EXIT STATUS, SEE ALSO).

use clap::{Command, CommandFactory};
use mmm_common::daemon::Section;

/// FILES, shared by the three programs.
#[rustfmt::skip]
const FILES: Section = Section {
    title: "FILES",
    items: &[
        ("/etc/mysql-mmm/mmm_tools.conf", "The tools' configuration (2.2.1's, class TOOLS; it includes mmm_agent.conf and mmm_common.conf). --config NAME reads another configuration instead: a base name looked up as the other MMM programs do (/etc, /etc/mmm, /etc/mysql-mmm), or a path."),
        ("/usr/lib/mysql-mmm/tools/", "The remote helpers stream_backup, create_snapshot and remove_snapshot, run over ssh on the source host as <bin_path>/tools/<helper> (bin_path of the host, default /usr/lib/mysql-mmm)."),
    ],
};

/// EXIT STATUS, shared by the three programs (2.2.1's).
#[rustfmt::skip]
const EXIT_STATUS: Section = Section {
    title: "EXIT STATUS",
    items: &[
        ("0", "Done (or --version)."),
        ("1", "A bad or missing parameter (also --help): the usage text is printed."),
        ("255", "A step failed (ERROR: on stderr), as Perl's die in 2.2.1."),
    ],
};

/// SEE ALSO, shared by the three programs.
const SEE_ALSO: Section = Section {
    title: "SEE ALSO",
    items: &[(
        "",
        "mmm_clone(8), mmm_backup(8), mmm_restore(8), mmm_agentd(8), /usr/share/doc/mysql-mmm-tools/tools.md",
    )],
};

/// The sections after the options, the same for the three programs.
pub const SECTIONS: &[Section] = &[FILES, EXIT_STATUS, SEE_ALSO];

fn described(cmd: Command, about: &'static str) -> Command {
    cmd.about(about).long_about(None).version(crate::VERSION)
}

/// `(command, sections)` of `mmm_clone`, `mmm_backup` and `mmm_restore`.
pub fn programs() -> Vec<(Command, &'static [Section])> {
    vec![
        (
            described(
                crate::clone::CloneArgs::command(),
                "copy a host's data to this host and set up replication from the copy",
            ),
            SECTIONS,
        ),
        (
            described(
                crate::backup::BackupArgs::command(),
                "back up a host's data into a local directory",
            ),
            SECTIONS,
        ),
        (
            described(
                crate::restore::RestoreArgs::command(),
                "restore a backup made by mmm_backup into this host's data directory",
            ),
            SECTIONS,
        ),
    ]
}
