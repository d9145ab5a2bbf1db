//! `cargo run -p xtask -- assets OUT_DIR [DATE]`: the man pages and shell completions of the
//! shipped programs, generated from the same clap definitions the programs parse with
//! (`mmm_agent::daemon_main::CLI`, `mmm_mon::cli::CLI`, `mmm_control::command()`,
//! `mmm_tls::command()`, `mmm_tools::manual::programs()` for mmm_clone, mmm_backup and
//! mmm_restore), so they cannot drift apart. scripts/package.sh runs it before cargo-deb, which ships the files.
//!
//! Writes:
//! - `OUT_DIR/man/<prog>.8` (section 8, as Debian's Perl packages had them; gzip is left to
//!   the packaging script);
//! - `OUT_DIR/completions/bash/<prog>`, `zsh/_<prog>`, `fish/<prog>.fish`.
//!
//! A separate program rather than a build script: the daemons do not carry clap_mangen and
//! clap_complete as build dependencies nor regenerate pages on every build, and the output
//! lands in a directory of our choosing that the package metadata names.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Command;
use clap_complete::Shell;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;
use mmm_common::daemon::Section;

/// One program: its clap command and the sections after its options.
struct Program {
    /// The clap definition the program parses with.
    cmd: Command,
    /// FILES, SIGNALS, ENVIRONMENT, EXIT STATUS, SEE ALSO.
    sections: &'static [Section],
}

fn programs() -> Vec<Program> {
    vec![
        Program {
            cmd: mmm_agent::daemon_main::CLI.command(),
            sections: mmm_agent::daemon_main::CLI.sections,
        },
        Program {
            cmd: mmm_mon::cli::CLI.command(),
            sections: mmm_mon::cli::CLI.sections,
        },
        Program {
            cmd: mmm_control::command(),
            sections: mmm_control::SECTIONS,
        },
        Program {
            cmd: mmm_tls::command(),
            sections: mmm_tls::SECTIONS,
        },
    ]
    .into_iter()
    .chain(
        mmm_tools::manual::programs()
            .into_iter()
            .map(|(cmd, sections)| Program { cmd, sections }),
    )
    .collect()
}

/// The man page: clap_mangen's NAME, SYNOPSIS, DESCRIPTION, OPTIONS (and COMMANDS), then
/// our sections as real man page sections (instead of clap_mangen's single EXTRA), then
/// VERSION. `date` goes into the `.TH` line.
fn man_page(p: &Program, date: &str) -> std::io::Result<String> {
    // The sections are rendered below; keep them out of clap_mangen's EXTRA.
    let cmd = p.cmd.clone().after_long_help(None::<&str>);
    let man = Man::new(cmd.clone())
        .section("8")
        .date(date)
        .manual("MySQL-MMM")
        .source(format!("mmm-rs {}", mmm_common::VERSION));
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut part = |f: &dyn Fn(&mut Vec<u8>) -> std::io::Result<()>| -> std::io::Result<()> {
        let mut b = Vec::new();
        f(&mut b)?;
        parts.push(b);
        Ok(())
    };
    part(&|w| man.render_title(w))?;
    part(&|w| man.render_name_section(w))?;
    part(&|w| man.render_synopsis_section(w))?;
    part(&|w| man.render_description_section(w))?;
    part(&|w| man.render_options_section(w))?;
    let mut roff = Roff::default();
    if cmd.has_subcommands() {
        // One entry per command with its usage line (clap_mangen would point at a page per
        // command instead).
        roff.control("SH", ["COMMANDS"]);
        for sub in cmd.get_subcommands() {
            let mut sub = sub.clone();
            let usage = sub.render_usage().to_string();
            let usage = usage
                .trim_start_matches("Usage: ")
                .trim_start_matches(p.cmd.get_name())
                .trim();
            roff.control("TP", []);
            roff.text([bold(usage.to_string())]);
            roff.text([roman(
                sub.get_about().map(|a| a.to_string()).unwrap_or_default(),
            )]);
        }
    }
    for sec in p.sections {
        roff.control("SH", [sec.title]);
        for (term, desc) in sec.items {
            if term.is_empty() {
                roff.control("PP", []);
                roff.text([roman(*desc)]);
            } else {
                roff.control("TP", []);
                roff.text([bold(*term)]);
                roff.text([roman(*desc)]);
            }
        }
    }
    part(&|w| roff.to_writer(w))?;
    part(&|w| man.render_version_section(w))?;
    // Each render starts with roff's apostrophe preamble: keep the first one only.
    let mut page = String::new();
    for (i, b) in parts.into_iter().enumerate() {
        let text = String::from_utf8_lossy(&b).into_owned();
        match (i, text.strip_prefix(PREAMBLE)) {
            (0, _) | (_, None) => page.push_str(&text),
            (_, Some(rest)) => page.push_str(rest),
        }
    }
    Ok(page)
}

/// What roff writes before every rendered piece.
const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

fn write(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut f = fs::File::create(path)?;
    f.write_all(data)
}

/// Writes the man pages and completions under `out`; `date` (`YYYY-MM-DD`) for the pages.
fn assets(out: &Path, date: &str) -> std::io::Result<()> {
    for p in programs() {
        let name = p.cmd.get_name().to_string();
        write(
            &out.join(format!("man/{name}.8")),
            man_page(&p, date)?.as_bytes(),
        )?;
        for (shell, file) in [
            (Shell::Bash, format!("bash/{name}")),
            (Shell::Zsh, format!("zsh/_{name}")),
            (Shell::Fish, format!("fish/{name}.fish")),
        ] {
            let mut cmd = p.cmd.clone();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, &name, &mut buf);
            write(&out.join("completions").join(file), &buf)?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        // DATE (YYYY-MM-DD) for the pages: scripts/package.sh passes the last commit's, so
        // the package is reproducible.
        [task, dir, rest @ ..] if task == "assets" && rest.len() <= 1 => match assets(
            &PathBuf::from(dir),
            rest.first().map(String::as_str).unwrap_or(""),
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xtask assets: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: cargo run -p xtask -- assets OUT_DIR [DATE]");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_completions() {
        let dir = std::env::temp_dir().join(format!("mmm-xtask-{}", std::process::id()));
        assets(&dir, "2026-12-06").unwrap();
        let page = fs::read_to_string(dir.join("man/mmm_control.8")).unwrap();
        assert!(
            page.starts_with(&format!("{PREAMBLE}.TH mmm_control 8 2026-12-06 \"mmm-rs")),
            "{page}"
        );
        assert_eq!(page.matches(PREAMBLE).count(), 1, "{page}");
        for want in [
            "move_role [\\-\\-force] <ROLE> <HOST>",
            ".SH \"EXIT STATUS\"",
            "connect to monitor daemon",
        ] {
            assert!(page.contains(want), "{want}: {page}");
        }
        let page = fs::read_to_string(dir.join("man/mmm_agentd.8")).unwrap();
        for want in ["check\\-config", ".SH SIGNALS", "SIGHUP"] {
            assert!(page.contains(want), "{want}: {page}");
        }
        let bash = fs::read_to_string(dir.join("completions/bash/mmm_control")).unwrap();
        assert!(bash.contains("set_online"), "{bash}");
        assert!(dir.join("completions/zsh/_mmm_mond").is_file());
        assert!(dir.join("completions/fish/mmm_agentd.fish").is_file());
        let page = fs::read_to_string(dir.join("man/mmm_clone.8")).unwrap();
        for want in [
            ".TH mmm_clone 8 ",
            "\\-\\-clone\\-mode",
            "mmm_tools.conf",
            ".SH \"EXIT STATUS\"",
        ] {
            assert!(page.contains(want), "{want}: {page}");
        }
        for prog in ["mmm_backup", "mmm_restore"] {
            assert!(dir.join(format!("man/{prog}.8")).is_file(), "{prog}");
        }
        let bash = fs::read_to_string(dir.join("completions/bash/mmm_restore")).unwrap();
        assert!(bash.contains("--src-dir"), "{bash}");
        assert!(dir.join("completions/zsh/_mmm_backup").is_file());
        assert!(dir.join("completions/fish/mmm_clone.fish").is_file());
        fs::remove_dir_all(&dir).unwrap();
    }
}
