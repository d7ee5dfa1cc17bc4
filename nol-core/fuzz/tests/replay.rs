//! Replays what the fuzzers found, on stable Rust and without cargo-fuzz: every file of
//! `corpus/<target>/` and `regressions/<target>/` goes through the same function the target's
//! `fuzz_target!` calls (src/lib.rs). A panic names the file, which can then be run under the
//! fuzzer itself: `cargo fuzz run <target> <file>`.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_and_regression_input_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failures = Vec::new();
    for (name, check) in nol_core_fuzz::TARGETS {
        let corpus = inputs(&root.join("corpus").join(name));
        let regressions = inputs(&root.join("regressions").join(name));
        assert!(
            !corpus.is_empty(),
            "corpus/{name}/ is empty: every target keeps its corpus in the repository"
        );
        let started = std::time::Instant::now();
        for file in corpus.iter().chain(&regressions) {
            let data = match fs::read(file) {
                Ok(data) => data,
                // A fuzzer running on this corpus replaced the file with a smaller one.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("{}: {e}", file.display()),
            };
            if panic::catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                failures.push(format!("{name}: {}", file.display()));
            }
        }
        println!(
            "{name}: {} corpus and {} regression inputs replayed in {:.1?}",
            corpus.len(),
            regressions.len(),
            started.elapsed()
        );
    }
    assert!(
        failures.is_empty(),
        "inputs that fail:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_target_has_a_fuzz_target_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in nol_core_fuzz::TARGETS {
        let file = root.join("fuzz_targets").join(format!("{name}.rs"));
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            text.contains(&format!("nol_core_fuzz::{name}(data)")),
            "{} does not call nol_core_fuzz::{name}",
            file.display()
        );
    }
}
