//! The layering rule: the sans-IO crates never depend (as normal dependencies, with the features they are
//! checked with) on an async runtime, an HTTP stack or TLS. One `cargo tree` per crate, run side by side;
//! nothing is built. Runs in a plain `cargo test` (no `RTMPX_INTEROP` needed); `cargo xtask ci` runs it as
//! its `layering` step.

use std::path::Path;
use std::process::Command;

/// Each sans-IO crate with the `cargo tree` feature arguments it is checked with.
const SANS_IO_CRATES: &[(&str, &[&str])] = &[
    ("rtmp-amf", &[]),
    ("rtmp-chunk", &[]),
    ("rtmp-handshake", &[]),
    ("rtmp-rtmpe", &[]),
    ("rtmp-session", &[]),
    ("rtmp-hub", &[]),
    ("rtmp-flv", &[]),
    ("rtmp-hls", &[]),
    // The request table and polling policy; the hyper server and client are behind default features.
    ("rtmp-rtmpt", &["--no-default-features"]),
];

/// Crates no sans-IO crate may pull in, directly or through another dependency.
const FORBIDDEN: &[&str] = &["tokio", "mio", "hyper", "rustls", "axum"];

/// One line of `cargo tree --prefix depth --format {p}`: `2rand_core v0.9.5 (*)`.
fn depth_and_name(line: &str) -> Option<(usize, &str)> {
    let digits = line.find(|c: char| !c.is_ascii_digit())?;
    let depth = line[..digits].parse().ok()?;
    let name = line[digits..].split_whitespace().next()?;
    Some((depth, name))
}

/// Every path from the root to a forbidden crate, as `root -> dep -> ... -> forbidden`.
fn forbidden_paths(tree: &str) -> Vec<String> {
    let mut ancestors: Vec<&str> = Vec::new();
    let mut found = Vec::new();
    for (depth, name) in tree.lines().filter_map(depth_and_name) {
        ancestors.truncate(depth);
        ancestors.push(name);
        if FORBIDDEN.contains(&name) {
            found.push(ancestors.join(" -> "));
        }
    }
    found
}

fn cargo_tree(krate: &str, features: &[&str]) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or_else(|| Path::new("."));
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["tree", "--package", krate, "--edges", "normal"])
        .args(features)
        .args(["--prefix", "depth", "--format", "{p}"]);
    command
}

#[test]
fn sans_io_crates_depend_on_no_runtime_http_or_tls() {
    let running: Vec<_> = SANS_IO_CRATES
        .iter()
        .map(|&(krate, features)| {
            let child = cargo_tree(krate, features)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run cargo tree: {e}"));
            (krate, features, child)
        })
        .collect();
    let mut violations = Vec::new();
    for (krate, features, child) in running {
        let output = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("cargo tree -p {krate}: {e}"));
        assert!(
            output.status.success(),
            "cargo tree -p {krate} {} failed: {}",
            features.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        let tree = String::from_utf8_lossy(&output.stdout);
        assert!(
            tree.lines().next().and_then(depth_and_name) == Some((0, krate)),
            "cargo tree -p {krate} printed no tree:\n{tree}"
        );
        for path in forbidden_paths(&tree) {
            let checked = match features {
                [] => String::new(),
                _ => format!(" (with {})", features.join(" ")),
            };
            violations.push(format!(
                "{krate}{checked} is sans-IO but depends on: {path}"
            ));
        }
    }
    assert!(
        violations.is_empty(),
        "layering broken ({} forbidden: {}):\n  {}",
        violations.len(),
        FORBIDDEN.join(", "),
        violations.join("\n  ")
    );
}

#[test]
fn a_forbidden_crate_is_reported_with_its_path() {
    let tree = "0rtmp-x v0.1.0 (/x)\n1bytes v1\n1tokio-util v0.7\n2bytes v1 (*)\n2tokio v1.54\n3mio v1\n1rand v0.9\n";
    assert_eq!(
        forbidden_paths(tree),
        [
            "rtmp-x -> tokio-util -> tokio",
            "rtmp-x -> tokio-util -> tokio -> mio"
        ]
    );
    assert!(forbidden_paths("0rtmp-amf v0.1.0\n1thiserror v2\n").is_empty());
}
