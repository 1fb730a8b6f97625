//! Which file a `play NAME` names under an application's `vod_path`, and the refusal of any name that
//! would leave it: `..`, absolute names, and symbolic links that point outside (the file is
//! canonicalised and must still be under the canonical root).

use std::path::{Component, Path, PathBuf};

/// The container a name asked for (`mp4:NAME.mp4`, `flv:NAME`) or its extension says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// FLV, read with `rtmp-flv`.
    Flv,
    /// MP4 (ISO BMFF).
    Mp4,
}

/// Why a name has no file to play.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRefusal {
    /// The name is empty, absolute, holds `..`, a NUL or a backslash: it could leave `vod_path`.
    #[error("the name {0:?} is not a relative path below the VOD directory")]
    BadName(String),
    /// The file resolves (through a symbolic link) outside `vod_path`.
    #[error("{0:?} resolves outside the VOD directory")]
    Escapes(String),
    /// No such file (nor with `.flv` or `.mp4` added).
    #[error("no file {0:?} in the VOD directory")]
    Missing(String),
    /// `vod_path` itself cannot be read.
    #[error("the VOD directory cannot be read: {0}")]
    Root(String),
}

/// Splits nginx-rtmp's and FMS's container prefixes off a stream name: `mp4:NAME`, `flv:NAME`.
fn split_prefix(name: &str) -> (Option<Container>, &str) {
    if let Some(rest) = name.strip_prefix("mp4:") {
        (Some(Container::Mp4), rest)
    } else if let Some(rest) = name.strip_prefix("flv:") {
        (Some(Container::Flv), rest)
    } else {
        (None, name)
    }
}

/// The container a file's extension names (FLV unless it ends in an MP4 extension).
fn container_of(path: &Path) -> Container {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext)
            if ["mp4", "m4v", "m4a", "mov", "f4v"].contains(&ext.to_ascii_lowercase().as_str()) =>
        {
            Container::Mp4
        }
        _ => Container::Flv,
    }
}

/// Whether `name` is a plain relative path: normal components only.
fn is_plain_relative(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(['\0', '\\'])
        && Path::new(name)
            .components()
            .all(|component| matches!(component, Component::Normal(_)))
}

/// The file `name` plays under `root`, and its container. Tried in order: the name as given, then with
/// `.flv` (or `.mp4` for an `mp4:` name) added. The result is canonical and under `root`'s canonical
/// form; anything else is refused.
pub fn resolve(root: &Path, name: &str) -> Result<(PathBuf, Container), PathRefusal> {
    let (prefix, bare) = split_prefix(name);
    if !is_plain_relative(bare) {
        return Err(PathRefusal::BadName(name.to_owned()));
    }
    let root = root
        .canonicalize()
        .map_err(|error| PathRefusal::Root(format!("{}: {error}", root.display())))?;
    let mut candidates = vec![root.join(bare)];
    match prefix {
        Some(Container::Mp4) => candidates.push(root.join(format!("{bare}.mp4"))),
        _ => candidates.push(root.join(format!("{bare}.flv"))),
    }
    for candidate in candidates {
        // `canonicalize` follows every link; a missing file is the next candidate.
        let Ok(real) = candidate.canonicalize() else {
            continue;
        };
        if !real.starts_with(&root) {
            return Err(PathRefusal::Escapes(name.to_owned()));
        }
        if !real.is_file() {
            continue;
        }
        let container = prefix.unwrap_or_else(|| container_of(&real));
        return Ok((real, container));
    }
    Err(PathRefusal::Missing(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_directory_are_refused_before_any_lookup() {
        let root = tempfile::tempdir().unwrap();
        for name in [
            "../../etc/passwd",
            "/etc/passwd",
            "a/../../b",
            "",
            "a\\b",
            "a\0b",
            "./x",
        ] {
            assert!(
                matches!(resolve(root.path(), name), Err(PathRefusal::BadName(_))),
                "{name:?}"
            );
        }
    }

    #[test]
    fn files_resolve_with_or_without_extension_and_prefix() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("sub")).unwrap();
        std::fs::write(root.path().join("sub/clip.flv"), b"FLV").unwrap();
        std::fs::write(root.path().join("movie.mp4"), b"").unwrap();
        let real = root.path().canonicalize().unwrap();
        assert_eq!(
            resolve(root.path(), "sub/clip").unwrap(),
            (real.join("sub/clip.flv"), Container::Flv)
        );
        assert_eq!(
            resolve(root.path(), "flv:sub/clip").unwrap(),
            (real.join("sub/clip.flv"), Container::Flv)
        );
        assert_eq!(
            resolve(root.path(), "mp4:movie.mp4").unwrap(),
            (real.join("movie.mp4"), Container::Mp4)
        );
        assert_eq!(resolve(root.path(), "mp4:movie").unwrap().1, Container::Mp4);
        assert!(matches!(
            resolve(root.path(), "nothing"),
            Err(PathRefusal::Missing(_))
        ));
        assert!(matches!(
            resolve(root.path(), "sub"),
            Err(PathRefusal::Missing(_))
        ));
    }

    #[test]
    fn a_symbolic_link_out_of_the_directory_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.flv"), b"FLV").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.flv"),
            root.path().join("link.flv"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("dir")).unwrap();
        assert!(matches!(
            resolve(root.path(), "link"),
            Err(PathRefusal::Escapes(_))
        ));
        assert!(matches!(
            resolve(root.path(), "dir/secret"),
            Err(PathRefusal::Escapes(_))
        ));
    }
}
