//! The real clients, started the same way by every test.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::Background;

/// Debian's FFmpeg 5.1.
pub fn ffmpeg() -> PathBuf {
    PathBuf::from("ffmpeg")
}

/// An FFmpeg publisher sending `fixture` in real time (`-re`, packets copied).
pub fn ffmpeg_publisher(
    ffmpeg: &Path,
    fixture: &Path,
    url: &str,
    log: &Path,
    extra: &[&str],
) -> Background {
    let mut command = Command::new(ffmpeg);
    command
        .args(["-loglevel", "warning", "-re", "-i"])
        .arg(fixture)
        .args(["-c", "copy"])
        .args(extra)
        .args(["-f", "flv", url]);
    Background::spawn("ffmpeg publisher", &mut command, log)
}

/// An FFmpeg player writing what it receives (packets copied, not decoded) to an FLV file.
pub fn ffmpeg_player(
    ffmpeg: &Path,
    url: &str,
    out: &Path,
    log: &Path,
    extra: &[&str],
) -> Background {
    let mut command = Command::new(ffmpeg);
    command
        .args(["-loglevel", "warning"])
        .args(extra)
        .args(["-i", url, "-c", "copy", "-f", "flv", "-y"])
        .arg(out);
    Background::spawn("ffmpeg player", &mut command, log)
}

/// rtmpdump recording a live stream.
pub fn rtmpdump_player(url: &str, out: &Path, log: &Path) -> Background {
    let mut command = Command::new("rtmpdump");
    command.args(["-q", "-v", "-r", url, "-o"]).arg(out);
    Background::spawn("rtmpdump", &mut command, log)
}
