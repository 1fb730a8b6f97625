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

/// A GStreamer publisher: the FLV file demuxed and re-muxed (coded packets untouched) into `sink`, e.g.
/// `["rtmp2sink", "location=rtmp://..."]` or `["rtmpsink", "location=rtmpe://... live=1"]` (librtmp).
pub fn gst_publisher(fixture: &Path, sink: &[&str], log: &Path) -> Background {
    let mut command = Command::new("gst-launch-1.0");
    command
        .args(["-q", "filesrc"])
        .arg(format!("location={}", fixture.display()));
    command.args([
        "!",
        "flvdemux",
        "name=d",
        "d.video",
        "!",
        "queue",
        "!",
        "h264parse",
        "!",
    ]);
    command
        .args(["flvmux", "name=m", "streamable=true", "!"])
        .args(sink);
    command.args(["d.audio", "!", "queue", "!", "aacparse", "!", "m."]);
    Background::spawn("gst publisher", &mut command, log)
}

/// GStreamer's `rtmp2src` writing the FLV stream it receives to `out`. It waits for a new publisher after
/// the stream ends, so stop it with `signal("INT")` (end of stream) and then `wait`.
pub fn gst_player(url: &str, extra: &[&str], out: &Path, log: &Path) -> Background {
    let mut command = Command::new("gst-launch-1.0");
    command
        .args(["-q", "-e", "rtmp2src", &format!("location={url}")])
        .args(extra);
    command
        .args(["!", "filesink"])
        .arg(format!("location={}", out.display()));
    Background::spawn("gst rtmp2src", &mut command, log)
}
