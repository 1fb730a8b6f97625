//! `cargo xtask vendor`: refreshes the browser players the built-in page embeds
//! (`crates/server/assets/vendor/`) from the npm registry, at the versions pinned here.
//!
//! The build never needs npm: the files are committed, with their licences and the versions in
//! `crates/server/assets/vendor/VERSIONS.md`. Bump a version below, run this, review the diff, commit.

use std::path::Path;
use std::process::{Command, Stdio};

/// One vendored file: the npm package, its pinned version, the file inside the package, and the name
/// it is committed under.
struct Vendored {
    package: &'static str,
    version: &'static str,
    file: &'static str,
    committed_as: &'static str,
    licence_file: &'static str,
    licence: &'static str,
}

const VENDORED: &[Vendored] = &[
    Vendored {
        package: "mpegts.js",
        version: "1.8.2",
        file: "dist/mpegts.js",
        committed_as: "mpegts.js",
        licence_file: "LICENSE",
        licence: "Apache-2.0",
    },
    Vendored {
        package: "hls.js",
        version: "1.7.4",
        file: "dist/hls.min.js",
        committed_as: "hls.min.js",
        licence_file: "LICENSE",
        licence: "Apache-2.0",
    },
];

/// Downloads each pinned package with `npm pack`, copies its player file and licence into the vendor
/// directory, and rewrites VERSIONS.md.
pub fn vendor() -> Result<(), String> {
    let root = crate::workspace_root();
    let destination = root.join("crates/server/assets/vendor");
    std::fs::create_dir_all(&destination)
        .map_err(|e| format!("cannot create {}: {e}", destination.display()))?;
    let scratch = root.join("target/vendor-scratch");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| format!("cannot create scratch dir: {e}"))?;
    let mut versions = String::from(
        "# Vendored browser players\n\nServed by the built-in page (`crates/server/src/outputs/page.rs`), embedded in the \
         binary. Refreshed from the npm registry by `cargo xtask vendor` at the versions pinned in \
         `xtask/src/vendor.rs`; never edited by hand.\n\n| file | package | version | licence |\n|---|---|---|---|\n",
    );
    for item in VENDORED {
        let unpacked = unpack(item, &scratch)?;
        copy(
            &unpacked.join(item.file),
            &destination.join(item.committed_as),
        )?;
        copy(
            &unpacked.join(item.licence_file),
            &destination.join(format!("{}.LICENSE", item.committed_as)),
        )?;
        versions.push_str(&format!(
            "| {} | {} | {} | {} ({}.LICENSE) |\n",
            item.committed_as, item.package, item.version, item.licence, item.committed_as
        ));
        println!(
            "  {}@{} -> {}",
            item.package, item.version, item.committed_as
        );
    }
    std::fs::write(destination.join("VERSIONS.md"), versions)
        .map_err(|e| format!("cannot write VERSIONS.md: {e}"))?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

fn unpack(item: &Vendored, scratch: &Path) -> Result<std::path::PathBuf, String> {
    let spec = format!("{}@{}", item.package, item.version);
    let output = Command::new("npm")
        .args(["pack", "--silent", &spec, "--pack-destination"])
        .arg(scratch)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "npm pack {spec} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let tarball = String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();
    let into = scratch.join(item.package);
    std::fs::create_dir_all(&into).map_err(|e| format!("cannot create {}: {e}", into.display()))?;
    let status = Command::new("tar")
        .arg("xzf")
        .arg(scratch.join(&tarball))
        .arg("-C")
        .arg(&into)
        .status()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if !status.success() {
        return Err(format!("tar could not unpack {tarball}"));
    }
    Ok(into.join("package"))
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}
