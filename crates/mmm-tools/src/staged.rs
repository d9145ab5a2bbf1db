//! The staged copy of 2.2.1's cold paths (mmm_clone from a host with `backup_method lvm`,
//! mmm_restore of a backup made by 2.2.1 or from an LVM snapshot): 2.2.1's command lines
//! copy into `<restore_dir>/.mmm-stage` (inside `restore_dir`, so on its filesystem even
//! when it is a mount point, as 2.2.1's stock `/mysql` is); the copy is verified and cleaned
//! there. Then, the point of no return, each clone dir (and `_mmm`) is swapped for the old
//! one: `<restore_dir>/<dir>` → `<dir>.mmm-old`, the copy → `<dir>`, all put back if one
//! rename fails. The old dirs are removed once the server runs on the copy. Before the swap
//! nothing in `restore_dir` but `.mmm-stage` is touched.

use std::path::{Path, PathBuf};

use crate::error::{io_err, Result, ToolsError};
use crate::status::{self, Status, MMM_DIR};
use crate::swap::{self, sibling, Move};

/// The stage's name inside `restore_dir`.
pub const STAGE: &str = ".mmm-stage";

/// A staged copy into `root` (2.2.1's `restore_dir`) of the clone dirs.
#[derive(Debug, Clone)]
pub struct Staged {
    /// The directory holding the clone dirs (`restore_dir`).
    pub root: PathBuf,
    /// Where the copy is made (`<root>/.mmm-stage`).
    pub stage: PathBuf,
    clone_dirs: Vec<String>,
}

impl Staged {
    /// The stage for `clone_dirs` under `restore_dir`; a clone dir must name a directory
    /// below it (not `.`, `..`, or absolute).
    pub fn new(restore_dir: &str, clone_dirs: &[String]) -> Result<Staged> {
        for d in clone_dirs {
            let p = Path::new(d);
            let plain = !d.is_empty()
                && p.components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !plain || d == STAGE || d == MMM_DIR {
                return Err(ToolsError::Failed(format!(
                    "The clone dir '{d}' is not a directory below the destination: set 'clone_dirs' to names such as 'data, logs'"
                )));
            }
        }
        let root = PathBuf::from(restore_dir);
        Ok(Staged {
            stage: root.join(STAGE),
            root,
            clone_dirs: clone_dirs.to_vec(),
        })
    }

    /// What is swapped: the clone dirs, and `_mmm` when the copy has one.
    fn moves(&self) -> Vec<Move> {
        let mut names: Vec<&str> = self.clone_dirs.iter().map(String::as_str).collect();
        if self.stage.join(MMM_DIR).is_dir() {
            names.push(MMM_DIR);
        }
        names
            .into_iter()
            .map(|n| {
                let dest = self.root.join(n);
                Move {
                    new: self.stage.join(n),
                    old: sibling(&dest, swap::OLD),
                    dest,
                }
            })
            .collect()
    }

    /// The old copies a run that did not finish left (`<dir>.mmm-old`): a new run stops.
    pub fn preflight(&self) -> Result<()> {
        let mut names: Vec<&str> = self.clone_dirs.iter().map(String::as_str).collect();
        names.push(MMM_DIR);
        for n in names {
            let old = sibling(&self.root.join(n), swap::OLD);
            if old.symlink_metadata().is_ok() {
                return Err(ToolsError::Failed(format!(
                    "'{}' exists: an earlier run left the previous data there; move or remove it first",
                    old.display()
                )));
            }
        }
        Ok(())
    }

    /// Makes an empty stage (a leftover of a failed run is removed: it never held live
    /// data), `restore_dir` created if missing (2.2.1's `mkdir -p`).
    pub fn make_stage(&self) -> Result<()> {
        if self.stage.exists() {
            tracing::info!("Removing '{}' left by an earlier run", self.stage.display());
            std::fs::remove_dir_all(&self.stage)
                .map_err(io_err(format!("removing {}", self.stage.display())))?;
        }
        std::fs::create_dir_all(&self.stage)
            .map_err(io_err(format!("creating {}", self.stage.display())))
    }

    /// The clone dirs in the stage (to be cleaned and chowned there).
    pub fn staged_dirs(&self) -> Vec<PathBuf> {
        self.clone_dirs.iter().map(|d| self.stage.join(d)).collect()
    }

    /// Checks the copy in the stage: every clone dir there, one of them a data directory
    /// (holding the `mysql` schema), `_mmm/status.txt` parsed where the copy has one.
    /// Returns the copy's status: `known` (the backup's), else the copy's own.
    pub fn verify(&self, known: Option<&Status>) -> Result<Status> {
        let fail = |what: String| {
            Err(ToolsError::Failed(format!(
                "The copy in {} {what}",
                self.stage.display()
            )))
        };
        for d in &self.clone_dirs {
            if !self.stage.join(d).is_dir() {
                return fail(format!("lacks the clone dir '{d}'"));
            }
        }
        if !self
            .clone_dirs
            .iter()
            .any(|d| self.stage.join(d).join("mysql").is_dir())
        {
            return fail(format!(
                "has no data directory (no clone dir of '{}' holds 'mysql')",
                self.clone_dirs.join(", ")
            ));
        }
        let own = if self.stage.join(MMM_DIR).join("status.txt").exists() {
            Some(status::load_status(&self.stage)?)
        } else {
            None
        };
        let st = match (known, own) {
            (Some(k), _) => k.clone(),
            (None, Some(o)) => o,
            (None, None) => return fail("has no _mmm/status.txt".into()),
        };
        tracing::info!(
            "Copy verified: {} in {}",
            self.clone_dirs.join(", "),
            self.stage.display()
        );
        Ok(st)
    }

    /// Removes the stage after a failure before the swap (best effort).
    pub fn discard(&self) {
        if self.stage.exists() {
            if let Err(e) = std::fs::remove_dir_all(&self.stage) {
                tracing::warn!("Can't remove '{}': {e}", self.stage.display());
            }
        }
    }

    /// The point of no return: each clone dir (and `_mmm`) swapped for the copy's; if one
    /// rename fails every dir swapped so far is put back and the stage removed.
    pub fn swap(&self) -> Result<()> {
        let moves = self.moves();
        for m in &moves {
            if let Some(parent) = m.dest.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
        }
        if let Err(e) = swap::swap_all(&moves) {
            self.discard();
            return Err(ToolsError::Failed(format!(
                "{e}\nNothing was changed: '{}' is as it was",
                self.root.display()
            )));
        }
        if let Err(e) = std::fs::remove_dir_all(&self.stage) {
            tracing::warn!("Can't remove '{}': {e}", self.stage.display());
        }
        Ok(())
    }

    /// Removes the old dirs once the server runs on the copy.
    pub fn drop_old(&self) {
        let mut names: Vec<&str> = self.clone_dirs.iter().map(String::as_str).collect();
        names.push(MMM_DIR);
        for n in names {
            let old = sibling(&self.root.join(n), swap::OLD);
            if !old.exists() {
                continue;
            }
            match std::fs::remove_dir_all(&old) {
                Ok(()) => tracing::info!("Removed the previous data '{}'", old.display()),
                Err(e) => tracing::warn!("Can't remove '{}': {e}", old.display()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "$VAR1 = {\n  'host' => 'db1',\n  'master' => {\n    'File' => 'mysql-bin.000002',\n    'Position' => '98'\n  },\n  'slave' => {}\n};\n";

    fn tree(root: &Path, files: &[(&str, &str)]) {
        for (f, text) in files {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
    }

    #[test]
    fn rejects_clone_dirs_outside_the_destination() {
        for bad in [".", "..", "/data", "a/../b", ""] {
            assert!(Staged::new("/mysql", &[bad.into()]).is_err(), "{bad}");
        }
        assert!(Staged::new("/mysql", &["data".into(), "logs/bin".into()]).is_ok());
    }

    #[test]
    fn verify_needs_the_clone_dirs_a_data_dir_and_a_status() {
        let d = tempfile::tempdir().expect("tempdir");
        let s = Staged::new(
            &d.path().display().to_string(),
            &["data".into(), "logs".into()],
        )
        .expect("staged");
        s.make_stage().expect("stage");
        tree(&s.stage, &[("data/t", "x")]);
        assert!(s.verify(None).is_err(), "no logs");
        tree(&s.stage, &[("logs/l", "x")]);
        let e = s.verify(None).expect_err("no mysql schema");
        assert!(e.to_string().contains("no data directory"), "{e}");
        tree(&s.stage, &[("data/mysql/user.frm", "x")]);
        assert!(s.verify(None).is_err(), "no status");
        tree(&s.stage, &[("_mmm/status.txt", "garbage")]);
        assert!(s.verify(None).is_err(), "status not parsed");
        tree(&s.stage, &[("_mmm/status.txt", STATUS)]);
        let st = s.verify(None).expect("verified");
        assert_eq!(st.host, "db1");
    }
}
