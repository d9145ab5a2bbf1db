//! The room check of a streamed copy: the filesystem that receives it must have the
//! source's data size free. The hot-backup clone copies inside the data directory
//! (`<dest>/.mmm-new`), so this is the data directory's own filesystem even when it is a
//! mount point; a copy that can't fit stops at once, before it fills that filesystem.

use std::path::Path;

use crate::error::{Result, ToolsError};
use crate::log::mib;

/// Bytes an unprivileged writer may still use on the filesystem holding `dir`.
pub fn available(dir: &Path) -> Result<u64> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(|e| {
        ToolsError::Failed(format!(
            "Can't read the free space of '{}': {e}",
            dir.display()
        ))
    })?;
    Ok(st.blocks_available().saturating_mul(st.fragment_size()))
}

/// Fails when `needed` more bytes don't fit on the filesystem holding `dir`.
pub fn check(dir: &Path, needed: u64) -> Result<()> {
    let free = available(dir)?;
    if needed > free {
        return Err(ToolsError::Failed(format!(
            "Not enough room for the copy in '{}': about {} needed, {} free on its filesystem",
            dir.display(),
            mib(needed),
            mib(free)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_larger_than_the_free_space_is_refused() {
        let d = tempfile::tempdir().expect("tempdir");
        assert!(available(d.path()).expect("statvfs") > 0);
        check(d.path(), 1).expect("one byte fits");
        let e = check(d.path(), u64::MAX).expect_err("too big");
        assert!(e.to_string().contains("Not enough room"), "{e}");
        assert!(check(&d.path().join("missing"), 1).is_err());
    }
}
