//! FFmpeg round trip: an FFmpeg-made FLV through the segmenter, the playlist read back by FFmpeg, the
//! packet payloads compared. Skips with one line when `ffmpeg` is not on PATH (fails under
//! `RTMPX_INTEROP=1`).

use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use rtmp_hls::{HlsConfig, Segmenter};

fn ffmpeg_present() -> bool {
    let present = Command::new("ffmpeg").arg("-version").output().is_ok();
    if !present {
        assert!(
            std::env::var_os("RTMPX_INTEROP").is_none(),
            "ffmpeg missing"
        );
        eprintln!("skipped: ffmpeg not on PATH");
    }
    present
}

/// The FLV tags: (type, timestamp, payload).
fn flv_tags(flv: &[u8]) -> Vec<(u8, u32, Bytes)> {
    let header = u32::from_be_bytes(flv[5..9].try_into().unwrap()) as usize;
    let mut at = header + 4;
    let mut tags = Vec::new();
    while at + 11 <= flv.len() {
        let kind = flv[at] & 0x1f;
        let size = u32::from_be_bytes([0, flv[at + 1], flv[at + 2], flv[at + 3]]) as usize;
        let ts = u32::from_be_bytes([flv[at + 7], flv[at + 4], flv[at + 5], flv[at + 6]]);
        let body = Bytes::copy_from_slice(&flv[at + 11..at + 11 + size]);
        tags.push((kind, ts, body));
        at += 11 + size + 4;
    }
    tags
}

/// The (stream, hash) of each packet FFmpeg reads from `input`, per stream in order.
fn packet_hashes(input: &Path) -> Vec<(String, String)> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(input)
        .args(["-c", "copy", "-f", "framemd5", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let fields: Vec<&str> = l.split(',').map(str::trim).collect();
            (fields[0].to_string(), fields[5].to_string())
        })
        .collect()
}

#[test]
fn h264_aac_round_trip_through_ffmpeg() {
    if !ffmpeg_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let flv = dir.path().join("source.flv");
    let made = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30:duration=6",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=6"])
        .args([
            "-c:v", "libx264", "-g", "30", "-bf", "2", "-c:a", "aac", "-f", "flv",
        ])
        .arg(&flv)
        .status()
        .unwrap();
    assert!(made.success());

    let mut hls = Segmenter::new(HlsConfig {
        window: 100,
        ..HlsConfig::default()
    });
    for (kind, ts, body) in flv_tags(&std::fs::read(&flv).unwrap()) {
        match kind {
            8 => hls.push_audio(ts, &body).unwrap(),
            9 => hls.push_video(ts, &body).unwrap(),
            _ => {}
        }
    }
    hls.finish();
    let out = dir.path();
    std::fs::write(out.join("init.mp4"), hls.init().unwrap()).unwrap();
    let mut msn = hls.media_sequence();
    while let Some(segment) = hls.segment(msn) {
        std::fs::write(out.join(format!("seg{msn}.m4s")), segment).unwrap();
        msn += 1;
    }
    assert!(msn >= 3, "expected several segments, got {msn}");
    let playlist = hls.playlist();
    std::fs::write(out.join("index.m3u8"), &playlist).unwrap();

    let source = packet_hashes(&flv);
    let copied = packet_hashes(&out.join("index.m3u8"));
    for stream in ["0", "1"] {
        let a: Vec<_> = source
            .iter()
            .filter(|p| p.0 == stream)
            .map(|p| &p.1)
            .collect();
        let b: Vec<_> = copied
            .iter()
            .filter(|p| p.0 == stream)
            .map(|p| &p.1)
            .collect();
        assert!(!a.is_empty());
        assert_eq!(a, b, "stream {stream} payloads differ\n{playlist}");
    }
}
