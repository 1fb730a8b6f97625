//! Test media made with FFmpeg in the test setup (never committed), once per run and shared by the tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use crate::process::run_with_timeout;

static MAKING: Mutex<()> = Mutex::new(());

/// The cargo target directory.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), |root| root.join("target"))
}

/// The FFmpeg 9 binary (rtmpe, Enhanced RTMP) from `RTMPX_FFMPEG9`, set by the xtask.
pub fn ffmpeg9() -> PathBuf {
    std::env::var_os("RTMPX_FFMPEG9")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!("RTMPX_FFMPEG9 is not set: run the suite through `cargo xtask interop`")
        })
}

/// Makes `name` with `ffmpeg` (or another binary) unless it exists; atomic, so parallel tests share it.
fn make(name: &str, ffmpeg: &Path, args: &[&str]) -> PathBuf {
    let dir = target_dir().join("interop-fixtures");
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let path = dir.join(name);
    let _guard = MAKING.lock().unwrap_or_else(|p| p.into_inner());
    if path.exists() {
        return path;
    }
    let partial = dir.join(format!("{name}.{}.partial.flv", std::process::id()));
    let mut command = Command::new(ffmpeg);
    command
        .args(["-loglevel", "error", "-y"])
        .args(args)
        .arg(&partial);
    let output = run_with_timeout(&mut command, Duration::from_secs(120));
    assert!(
        output.status.success(),
        "making fixture {name} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::rename(&partial, &path)
        .unwrap_or_else(|e| panic!("cannot move fixture into place: {e}"));
    path
}

/// 6 s of H.264 (640x360, 30 fps, a keyframe every second) + AAC, as an FLV file.
pub fn h264_aac() -> PathBuf {
    make(
        "h264_aac_6s.flv",
        Path::new("ffmpeg"),
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            "6",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            "30",
            "-b:v",
            "1500k",
            "-c:a",
            "aac",
            "-f",
            "flv",
        ],
    )
}

/// 4 s of HEVC + AAC in enhanced FLV, made with FFmpeg 9.
pub fn hevc_aac() -> PathBuf {
    make(
        "hevc_aac_4s.flv",
        &ffmpeg9(),
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
            "-t",
            "4",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "keyint=25:log-level=error",
            "-c:a",
            "aac",
            "-f",
            "flv",
        ],
    )
}

/// 3 s of AV1 + AAC in enhanced FLV, made with FFmpeg 9.
pub fn av1_aac() -> PathBuf {
    make(
        "av1_aac_3s.flv",
        &ffmpeg9(),
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
            "-t",
            "3",
            "-c:v",
            "libaom-av1",
            "-cpu-used",
            "8",
            "-row-mt",
            "1",
            "-g",
            "25",
            "-b:v",
            "300k",
            "-c:a",
            "aac",
            "-f",
            "flv",
        ],
    )
}
