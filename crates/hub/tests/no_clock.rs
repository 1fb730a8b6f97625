//! The hub is sans-IO: time is an input. Its code (test modules aside, which take one base instant)
//! never reads a clock. Comments are not code: the doc examples, compiled as doc tests, take their base
//! instant from the clock as a caller would.

use std::path::{Path, PathBuf};

const CLOCK_READS: [&str; 3] = ["Instant::now(", "SystemTime::now(", ".elapsed("];

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// A source file without its `#[cfg(test)] mod tests` module (kept at the end of the file).
fn without_test_module(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    }
}

#[test]
fn the_hub_reads_no_clock() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 5, "sources found: {files:?}");
    let mut reads = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (number, line) in without_test_module(&text).lines().enumerate() {
            let comment = line.trim_start().starts_with("//");
            if !comment && CLOCK_READS.iter().any(|read| line.contains(read)) {
                reads.push(format!(
                    "{}:{}: {}",
                    file.display(),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        reads.is_empty(),
        "clock reads in the hub:\n{}",
        reads.join("\n")
    );
}
