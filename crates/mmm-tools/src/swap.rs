//! The staged copy and the per-entry swap (the point of no return of mmm_clone and
//! mmm_restore with the hot-backup back-end). Everything happens inside the data
//! directory `<dest>`, so on its filesystem even when it is a mount point (a DBA's
//! `/var/lib/mysql` often is; a mount point can't be renamed, and a copy beside it would
//! land on the parent filesystem): the copy goes into `<dest>/.mmm-new`, is prepared and
//! verified there, and only then each entry of `<dest>` is moved to `<dest>/.mmm-old/` and
//! each entry of the copy into `<dest>`, all put back if one rename fails ([`swap_all`],
//! which the staged copy of 2.2.1's cold paths uses too). The old entries are removed once
//! the server runs on the new data. Before the swap nothing in `<dest>` but `.mmm-new` and
//! `.mmm-stage` is touched.

use std::path::{Path, PathBuf};

use crate::error::{io_err, Result, ToolsError};

/// The copy's directory inside `<dest>`.
pub const NEW: &str = ".mmm-new";
/// Where the old entries wait inside `<dest>` until the server runs on the copy.
pub const OLD: &str = ".mmm-old";
/// Where a snapshot copy method or a restore command puts the copy inside `<dest>`.
pub const STAGE: &str = ".mmm-stage";
/// A filesystem's own directory (ext2-4 at a mount point): never moved, never copied.
pub const LOST_FOUND: &str = "lost+found";

/// The entries of `<dest>` the swap leaves where they are.
const KEPT: [&str; 4] = [NEW, OLD, STAGE, LOST_FOUND];

/// The directories inside `dest` the tools use.
#[derive(Debug, Clone)]
pub struct Swap {
    /// The data directory whose entries are replaced.
    pub dest: PathBuf,
    /// Where the copy is made (`<dest>/.mmm-new`).
    pub new: PathBuf,
    /// Where the old entries wait until the server runs on the new data (`<dest>/.mmm-old`).
    pub old: PathBuf,
    /// Where a snapshot copy method or a restore command puts the copy with its `_mmm`
    /// (`<dest>/.mmm-stage`; the copy is then moved to `new`).
    pub stage: PathBuf,
}

/// `dest` with `suffix` appended to its name (`<dir>.mmm-old`).
pub fn sibling(dest: &Path, suffix: &str) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// One entry's swap: `dest` → `old` (when it exists), `new` → `dest` (when it exists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// The entry's place.
    pub dest: PathBuf,
    /// The copy's entry.
    pub new: PathBuf,
    /// Where the old entry goes.
    pub old: PathBuf,
}

/// What [`Move::apply`] did (for [`Move::undo`]).
#[derive(Debug, Clone, Copy)]
struct Applied {
    had_old: bool,
    had_new: bool,
}

impl Move {
    fn apply(&self) -> Result<Applied> {
        let had_old = self.dest.symlink_metadata().is_ok();
        let had_new = self.new.symlink_metadata().is_ok();
        if had_old {
            std::fs::rename(&self.dest, &self.old).map_err(io_err(format!(
                "renaming {} to {}",
                self.dest.display(),
                self.old.display()
            )))?;
        }
        if had_new {
            if let Err(e) = std::fs::rename(&self.new, &self.dest) {
                if had_old {
                    let _ = std::fs::rename(&self.old, &self.dest);
                }
                return Err(io_err(format!(
                    "renaming {} to {}",
                    self.new.display(),
                    self.dest.display()
                ))(e));
            }
        }
        Ok(Applied { had_old, had_new })
    }

    fn undo(&self, done: Applied) {
        if done.had_new {
            if let Err(e) = std::fs::rename(&self.dest, &self.new) {
                tracing::warn!("Can't move '{}' back: {e}", self.dest.display());
                return;
            }
        }
        if done.had_old {
            if let Err(e) = std::fs::rename(&self.old, &self.dest) {
                tracing::warn!(
                    "Can't put '{}' back to '{}': {e}",
                    self.old.display(),
                    self.dest.display()
                );
            }
        }
    }
}

/// The point of no return of a staged copy: every move applied in order; if one fails
/// every move applied so far is undone (in reverse), so the entries are as they were.
pub fn swap_all(moves: &[Move]) -> Result<()> {
    let mut done = Vec::with_capacity(moves.len());
    for m in moves {
        match m.apply() {
            Ok(a) => done.push((m, a)),
            Err(e) => {
                for (m, a) in done.into_iter().rev() {
                    m.undo(a);
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

/// The names in `dir` (none when it is missing).
fn names(dir: &Path) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(format!("reading {}", dir.display()))(e)),
    };
    let mut v = Vec::new();
    for e in rd {
        let e = e.map_err(io_err(format!("reading {}", dir.display())))?;
        v.push(e.file_name().to_string_lossy().into_owned());
    }
    v.sort();
    Ok(v)
}

impl Swap {
    /// The directories for `dest` (trailing `/` ignored).
    pub fn new(dest: &str) -> Swap {
        let trimmed = dest.trim_end_matches('/');
        let dest = PathBuf::from(if trimmed.is_empty() { "/" } else { trimmed });
        Swap {
            new: dest.join(NEW),
            old: dest.join(OLD),
            stage: dest.join(STAGE),
            dest,
        }
    }

    /// Checks before anything is stopped: `dest` is not `/`, and no `.mmm-old` is left
    /// (it would hold data of an earlier run that did not finish), neither inside `dest`
    /// nor beside it (where earlier versions put it).
    pub fn preflight(&self) -> Result<()> {
        if self.dest == Path::new("/") {
            return Err(ToolsError::Failed("The destination can't be '/'".into()));
        }
        for old in [self.old.clone(), sibling(&self.dest, OLD)] {
            if old.symlink_metadata().is_ok() {
                return Err(ToolsError::Failed(format!(
                    "'{}' exists: an earlier run left the previous data there; move or remove it first",
                    old.display()
                )));
            }
        }
        Ok(())
    }

    /// Makes an empty `.mmm-new` (a leftover of a failed run is removed: it never held
    /// live data); `dest` is created if missing.
    pub fn make_new(&self) -> Result<()> {
        if self.new.exists() {
            tracing::info!("Removing '{}' left by an earlier run", self.new.display());
            std::fs::remove_dir_all(&self.new)
                .map_err(io_err(format!("removing {}", self.new.display())))?;
        }
        std::fs::create_dir_all(&self.new)
            .map_err(io_err(format!("creating {}", self.new.display())))
    }

    /// Makes an empty `.mmm-stage` (a leftover is removed) and makes sure no `.mmm-new`
    /// is left.
    pub fn make_stage(&self) -> Result<()> {
        for d in [&self.stage, &self.new] {
            if d.exists() {
                tracing::info!("Removing '{}' left by an earlier run", d.display());
                std::fs::remove_dir_all(d).map_err(io_err(format!("removing {}", d.display())))?;
            }
        }
        std::fs::create_dir_all(&self.stage)
            .map_err(io_err(format!("creating {}", self.stage.display())))
    }

    /// Moves `.mmm-stage/<sub>` (the copy) to `.mmm-new` and removes the rest of the stage.
    pub fn take_from_stage(&self, sub: &str) -> Result<()> {
        let from = self.stage.join(sub);
        if !from.is_dir() {
            return Err(ToolsError::Failed(format!(
                "The copy has no '{sub}' directory ({})",
                from.display()
            )));
        }
        std::fs::rename(&from, &self.new).map_err(io_err(format!(
            "renaming {} to {}",
            from.display(),
            self.new.display()
        )))?;
        std::fs::remove_dir_all(&self.stage)
            .map_err(io_err(format!("removing {}", self.stage.display())))
    }

    /// Removes `.mmm-new` (and `.mmm-stage`) after a failure before the swap (best effort).
    pub fn discard_new(&self) {
        for d in [&self.stage, &self.new] {
            if d.exists() {
                if let Err(e) = std::fs::remove_dir_all(d) {
                    tracing::warn!("Can't remove '{}': {e}", d.display());
                }
            }
        }
    }

    /// The moves of the swap: each entry of `dest` and of the copy but `.mmm-*` and
    /// `lost+found`.
    pub fn moves(&self) -> Result<Vec<Move>> {
        let mut all = names(&self.dest)?;
        all.extend(names(&self.new)?);
        all.sort();
        all.dedup();
        Ok(all
            .into_iter()
            .filter(|n| !KEPT.contains(&n.as_str()))
            .map(|n| Move {
                dest: self.dest.join(&n),
                new: self.new.join(&n),
                old: self.old.join(&n),
            })
            .collect())
    }

    /// The point of no return: each entry of `dest` → `.mmm-old/`, each entry of the copy
    /// → `dest` ([`swap_all`]); if one rename fails every entry is put back and the copy
    /// removed. Renames inside `dest` only, so a mount point stays mounted.
    pub fn swap(&self) -> Result<()> {
        let moves = self.moves()?;
        std::fs::create_dir(&self.old)
            .map_err(io_err(format!("creating {}", self.old.display())))?;
        if let Err(e) = swap_all(&moves) {
            // Empty again after the rollback; remove_dir (not _all) never drops old data.
            if let Err(e) = std::fs::remove_dir(&self.old) {
                tracing::warn!("Can't remove '{}': {e}", self.old.display());
            }
            self.discard_new();
            return Err(ToolsError::Failed(format!(
                "{e}\nNothing was changed: '{}' is as it was",
                self.dest.display()
            )));
        }
        // Left in the copy: at most its own lost+found.
        if let Err(e) = std::fs::remove_dir_all(&self.new) {
            tracing::warn!("Can't remove '{}': {e}", self.new.display());
        }
        tracing::info!(
            "Swapped: '{}' holds the copy, the previous data is in '{}' until the server runs",
            self.dest.display(),
            self.old.display()
        );
        Ok(())
    }

    /// Removes the previous data once the server runs on the copy.
    pub fn drop_old(&self) {
        if !self.old.exists() {
            return;
        }
        match std::fs::remove_dir_all(&self.old) {
            Ok(()) => tracing::info!("Removed the previous data '{}'", self.old.display()),
            Err(e) => tracing::warn!("Can't remove '{}': {e}", self.old.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, files: &[(&str, &str)]) {
        for (f, text) in files {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
    }

    /// Every file below `dir` with its content, sorted.
    fn tree(dir: &Path) -> Vec<(String, String)> {
        let mut v = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).expect("read_dir") {
                let p = e.expect("entry").path();
                let rel = p.strip_prefix(dir).expect("rel").display().to_string();
                if p.is_dir() {
                    v.push((format!("{rel}/"), String::new()));
                    todo.push(p);
                } else {
                    v.push((rel, std::fs::read_to_string(&p).expect("read")));
                }
            }
        }
        v.sort();
        v
    }

    #[test]
    fn swaps_inside_dest_and_keeps_old_until_dropped() {
        let d = tempfile::tempdir().expect("tempdir");
        let dest = d.path().join("data");
        write(
            &dest,
            &[
                ("ibdata1", "old"),
                ("db/t.ibd", "o"),
                ("lost+found/x", "fs"),
            ],
        );
        let s = Swap::new(&format!("{}/", dest.display()));
        assert_eq!(s.new, dest.join(".mmm-new"));
        s.preflight().expect("preflight");
        s.make_new().expect("new");
        write(
            &s.new,
            &[
                ("ibdata1", "new"),
                ("mysql/user.frm", "u"),
                ("lost+found/y", "c"),
            ],
        );
        s.swap().expect("swap");
        assert_eq!(
            std::fs::read_to_string(dest.join("ibdata1")).expect("r"),
            "new"
        );
        assert!(dest.join("mysql/user.frm").exists());
        assert!(
            !dest.join("db").exists(),
            "an old-only entry is moved aside"
        );
        assert_eq!(
            std::fs::read_to_string(s.old.join("db/t.ibd")).expect("r"),
            "o"
        );
        assert_eq!(
            std::fs::read_to_string(s.old.join("ibdata1")).expect("r"),
            "old"
        );
        assert!(dest.join("lost+found/x").exists(), "lost+found stays");
        assert!(!dest.join("lost+found/y").exists());
        assert!(!s.new.exists(), "the copy's dir is gone");
        assert!(s.preflight().is_err(), "an old dir stops the next run");
        s.drop_old();
        assert!(!s.old.exists());
        assert!(dest.join("lost+found/x").exists());
    }

    #[test]
    fn an_old_dir_beside_dest_stops_a_run() {
        let d = tempfile::tempdir().expect("tempdir");
        let dest = d.path().join("data");
        std::fs::create_dir_all(d.path().join("data.mmm-old")).expect("mkdir");
        let e = Swap::new(&dest.display().to_string())
            .preflight()
            .expect_err("refused");
        assert!(e.to_string().contains("data.mmm-old"), "{e}");
    }

    /// A rename that fails part-way (the fourth entry, after three were swapped) puts
    /// back every entry moved so far: `dest` is as it was byte for byte, the copy is back
    /// in `.mmm-new`.
    #[test]
    fn a_failed_rename_rolls_every_entry_back() {
        let d = tempfile::tempdir().expect("tempdir");
        let dest = d.path().join("data");
        write(
            &dest,
            &[
                ("a", "old a"),
                ("b/1", "old b"),
                ("d", "old d"),
                ("e/2", "old e"),
            ],
        );
        let before = tree(&dest);
        let s = Swap::new(&dest.display().to_string());
        s.make_new().expect("new");
        write(&s.new, &[("a", "new a"), ("b/1", "new b"), ("c", "new c")]);
        let copy = tree(&s.new);
        let moves = s.moves().expect("moves");
        let names: Vec<_> = moves
            .iter()
            .filter_map(|m| Some(m.dest.file_name()?.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(names, ["a", "b", "c", "d", "e"]);
        // The old `d` (a file) can't go to `.mmm-old/d`: a non-empty directory is there.
        write(&s.old, &[("d/block", "x")]);
        let e = swap_all(&moves).expect_err("d can't move");
        assert!(e.to_string().contains("/d"), "{e}");
        std::fs::remove_dir_all(&s.old).expect("rm blocker");
        assert_eq!(tree(&s.new), copy, "the copy is back in .mmm-new");
        s.discard_new();
        assert_eq!(tree(&dest), before, "dest as it was");

        // Without the blocker the same moves swap every entry.
        s.make_new().expect("new");
        write(&s.new, &[("a", "new a"), ("b/1", "new b"), ("c", "new c")]);
        s.swap().expect("swap");
        let mut want: Vec<(String, String)> = copy.clone();
        want.push((".mmm-old/".into(), String::new()));
        for (f, t) in &before {
            want.push((format!(".mmm-old/{f}"), t.clone()));
        }
        want.sort();
        assert_eq!(tree(&dest), want);
    }

    #[test]
    fn swap_fails_cleanly_when_old_cannot_be_made() {
        let d = tempfile::tempdir().expect("tempdir");
        let dest = d.path().join("data");
        write(&dest, &[("ibdata1", "old")]);
        let s = Swap::new(&dest.display().to_string());
        s.make_new().expect("new");
        write(&s.new, &[("ibdata1", "new")]);
        write(&dest, &[(".mmm-old", "a file")]);
        assert!(s.swap().is_err());
        assert_eq!(
            std::fs::read_to_string(dest.join("ibdata1")).expect("r"),
            "old"
        );
    }
}
