//! The new-directory copy and the swap (the point of no return of mmm_clone and
//! mmm_restore with the hot-backup back-end): the copy goes into `<dest>.mmm-new`, is
//! prepared and verified there, and only then `<dest>` is renamed to `<dest>.mmm-old` and
//! the copy to `<dest>`. The old data is removed once the server runs on the new data.
//! Before the swap nothing of `<dest>` is touched.

use std::path::{Path, PathBuf};

use crate::error::{io_err, Result, ToolsError};

/// The directories beside `dest` the tools use.
#[derive(Debug, Clone)]
pub struct Swap {
    /// The data directory that is replaced.
    pub dest: PathBuf,
    /// Where the copy is made.
    pub new: PathBuf,
    /// Where the old data waits until the server runs on the new data.
    pub old: PathBuf,
    /// Where a snapshot copy method or a restore command puts the copy with its `_mmm`
    /// (the copy is then moved to `new`).
    pub stage: PathBuf,
}

fn sibling(dest: &Path, suffix: &str) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl Swap {
    /// The directories for `dest` (trailing `/` ignored).
    pub fn new(dest: &str) -> Swap {
        let trimmed = dest.trim_end_matches('/');
        let dest = PathBuf::from(if trimmed.is_empty() { "/" } else { trimmed });
        Swap {
            new: sibling(&dest, ".mmm-new"),
            old: sibling(&dest, ".mmm-old"),
            stage: sibling(&dest, ".mmm-stage"),
            dest,
        }
    }

    /// Checks before anything is stopped: `dest` is not `/`, and no `.mmm-old` is left
    /// (it would hold data of an earlier run that did not finish).
    pub fn preflight(&self) -> Result<()> {
        if self.dest == Path::new("/") {
            return Err(ToolsError::Failed("The destination can't be '/'".into()));
        }
        if self.old.exists() {
            return Err(ToolsError::Failed(format!(
                "'{}' exists: an earlier run left the previous data there; move or remove it first",
                self.old.display()
            )));
        }
        Ok(())
    }

    /// Makes an empty `.mmm-new` (a leftover of a failed run is removed: it never held
    /// live data).
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
        if self.stage.exists() {
            if let Err(e) = std::fs::remove_dir_all(&self.stage) {
                tracing::warn!("Can't remove '{}': {e}", self.stage.display());
            }
        }
        if !self.new.exists() {
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.new) {
            tracing::warn!("Can't remove '{}': {e}", self.new.display());
        }
    }

    /// The swap: `dest` → `.mmm-old`, `.mmm-new` → `dest` (put back if the second rename
    /// fails). `dest` may be missing (nothing to keep).
    pub fn swap(&self) -> Result<()> {
        let had_old = self.dest.exists();
        if had_old {
            std::fs::rename(&self.dest, &self.old).map_err(io_err(format!(
                "renaming {} to {} (nothing was changed)",
                self.dest.display(),
                self.old.display()
            )))?;
        }
        if let Err(e) = std::fs::rename(&self.new, &self.dest) {
            if had_old {
                let _ = std::fs::rename(&self.old, &self.dest);
            }
            return Err(io_err(format!(
                "renaming {} to {} (the previous data was put back)",
                self.new.display(),
                self.dest.display()
            ))(e));
        }
        if had_old {
            tracing::info!(
                "Swapped: '{}' holds the copy, the previous data is in '{}' until the server runs",
                self.dest.display(),
                self.old.display()
            );
        } else {
            tracing::info!("Moved the copy to '{}'", self.dest.display());
        }
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

    #[test]
    fn swaps_and_keeps_old_until_dropped() {
        let d = tempfile::tempdir().expect("tempdir");
        let dest = d.path().join("data");
        std::fs::create_dir(&dest).expect("mkdir");
        std::fs::write(dest.join("old"), "o").expect("write");
        let s = Swap::new(&format!("{}/", dest.display()));
        s.preflight().expect("preflight");
        s.make_new().expect("new");
        std::fs::write(s.new.join("new"), "n").expect("write");
        s.swap().expect("swap");
        assert!(dest.join("new").exists());
        assert!(s.old.join("old").exists());
        assert!(s.preflight().is_err(), "an old dir stops the next run");
        s.drop_old();
        assert!(!s.old.exists());
    }
}
