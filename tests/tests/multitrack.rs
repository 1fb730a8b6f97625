//! E-RTMP v2 multitrack from a real source: FFmpeg 9 publishes one H.264 video and two AAC audio tracks
//! (its FLV muxer writes the second audio stream as an E-RTMP multitrack message, track 1). Players join
//! about 3 s in:
//! - `rtmpx play` (declares `capsEx` Multitrack and the codecs) gets all three streams, bit-exact;
//! - FFmpeg 9 and FFmpeg 5.1 (neither declares `capsEx`: FFmpeg 9's RTMP client sends `fourCcList`
//!   only) get the video and the default audio track as legacy FLV, bit-exact, and no unknown stream;
//! - in an application with `multitrack_to_enhanced_players = true`, FFmpeg 9 (it declared E-RTMP codecs)
//!   gets all three streams, bit-exact.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rtmpx_interop::clients::{ffmpeg, ffmpeg_player, ffmpeg_publisher};
use rtmpx_interop::compare::parse_framemd5;
use rtmpx_interop::fixtures::{ffmpeg9, target_dir};
use rtmpx_interop::server::binary;
use rtmpx_interop::{
    assert_contiguous_run, enabled, run_with_timeout, scratch, Background, Packet, RtmpxServer,
};

const LIMIT: Duration = Duration::from_secs(60);

/// 6 s of H.264 (a keyframe a second) and two AAC tracks (440 Hz, 880 Hz), made with FFmpeg 9.
fn fixture() -> PathBuf {
    let dir = target_dir().join("interop-fixtures");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let path = dir.join("h264_2aac_6s.flv");
    if path.exists() {
        return path;
    }
    let partial = dir.join(format!("h264_2aac_6s.{}.partial.flv", std::process::id()));
    let mut command = Command::new(ffmpeg9());
    command
        .args(["-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440"])
        .args(["-f", "lavfi", "-i", "sine=frequency=880"])
        .args(["-t", "6", "-map", "0:v", "-map", "1:a", "-map", "2:a"])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-g", "25"])
        .args(["-c:a", "aac", "-f", "flv"])
        .arg(&partial);
    let output = run_with_timeout(&mut command, Duration::from_secs(120));
    assert!(
        output.status.success(),
        "making the multitrack fixture failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::rename(&partial, &path).unwrap_or_else(|e| panic!("cannot move the fixture: {e}"));
    path
}

/// The packets of every stream of `file`, as `ffmpeg` reads them (`-map 0`: not one stream per kind).
fn packets_of(ffmpeg: &Path, file: &Path) -> Vec<Packet> {
    let mut command = Command::new(ffmpeg);
    command
        .args(["-loglevel", "error", "-i"])
        .arg(file)
        .args(["-map", "0", "-c", "copy", "-f", "framemd5", "-"]);
    let output = run_with_timeout(&mut command, Duration::from_secs(60));
    assert!(
        output.status.success(),
        "framemd5 of {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    parse_framemd5(&String::from_utf8_lossy(&output.stdout))
}

/// The packets of every stream of `file` as FFmpeg 9 reads them.
fn packets(file: &Path) -> Vec<Packet> {
    packets_of(&ffmpeg9(), file)
}

#[test]
fn multitrack_audio_reaches_multitrack_players_whole_and_legacy_players_as_track_0() {
    if !enabled("multitrack_audio") {
        return;
    }
    let source = fixture();
    let reference = packets(&source);
    let streams = reference
        .iter()
        .map(|p| p.stream)
        .max()
        .map_or(0, |s| s + 1);
    assert_eq!(streams, 3, "the fixture has video and two audio tracks");
    let default_tracks: Vec<Packet> = reference.iter().filter(|p| p.stream < 2).cloned().collect();

    let dir = scratch("multitrack_audio");
    let config = dir.path().join("rtmpx.toml");
    std::fs::write(
        &config,
        "[app.wide]\nmultitrack_to_enhanced_players = true\n",
    )
    .unwrap_or_else(|e| panic!("cannot write {}: {e}", config.display()));
    let server = RtmpxServer::start(&["--config", &config.display().to_string()]);
    let url = server.url("live/tracks");
    let wide_url = server.url("wide/tracks");
    let mut publisher = ffmpeg_publisher(
        &ffmpeg9(),
        &source,
        &url,
        &dir.path().join("publisher.log"),
        &["-map", "0"],
    );
    let mut wide_publisher = ffmpeg_publisher(
        &ffmpeg9(),
        &source,
        &wide_url,
        &dir.path().join("wide-publisher.log"),
        &["-map", "0"],
    );
    std::thread::sleep(Duration::from_secs(3));

    let out = |name: &str| dir.path().join(format!("{name}.flv"));
    let log = |name: &str| dir.path().join(format!("{name}.log"));
    let mut rtmpx_play = Command::new(binary());
    rtmpx_play
        .args(["play", &url, "--enhanced-codecs", "avc1,mp4a", "-o"])
        .arg(out("rtmpx"));
    let mut players = vec![
        (
            "rtmpx",
            Background::spawn("rtmpx play", &mut rtmpx_play, &log("rtmpx")),
        ),
        (
            "ffmpeg9",
            ffmpeg_player(
                &ffmpeg9(),
                &url,
                &out("ffmpeg9"),
                &log("ffmpeg9"),
                &["-rtmp_enhanced_codecs", "hvc1,av01"],
            ),
        ),
        (
            "ffmpeg5",
            ffmpeg_player(&ffmpeg(), &url, &out("ffmpeg5"), &log("ffmpeg5"), &[]),
        ),
        ("ffmpeg9-wide", {
            // Every stream of the input (`-map 0`): FFmpeg keeps one audio stream by default.
            let mut command = Command::new(ffmpeg9());
            command
                .args([
                    "-loglevel",
                    "warning",
                    "-rtmp_enhanced_codecs",
                    "hvc1,av01,avc1,mp4a",
                ])
                .args([
                    "-i", &wide_url, "-map", "0", "-c", "copy", "-f", "flv", "-y",
                ])
                .arg(out("ffmpeg9-wide"));
            Background::spawn("ffmpeg 9 player", &mut command, &log("ffmpeg9-wide"))
        }),
    ];
    for (name, publisher) in [
        ("publisher", &mut publisher),
        ("wide publisher", &mut wide_publisher),
    ] {
        assert!(
            publisher.wait(LIMIT).success(),
            "{name}: {}",
            publisher.log()
        );
    }
    for (name, player) in &mut players {
        let status = player.wait(LIMIT);
        assert!(status.success(), "{name}: {}", player.log());
    }

    // All three streams for the player that declared Multitrack: each one run of the published one.
    assert_contiguous_run(&reference, &packets(&out("rtmpx")), 0.3);
    // All three for FFmpeg 9 where the application gives every track to E-RTMP players.
    assert_contiguous_run(&reference, &packets(&out("ffmpeg9-wide")), 0.3);
    // The default tracks alone for the others; FFmpeg 5.1's own reading of its file has no stream it
    // does not know.
    for name in ["ffmpeg9", "ffmpeg5"] {
        assert_contiguous_run(&default_tracks, &packets(&out(name)), 0.3);
    }
    let own = packets_of(&ffmpeg(), &out("ffmpeg5"));
    assert_eq!(own.iter().map(|p| p.stream).max(), Some(1));
    let probe = run_with_timeout(
        Command::new(ffmpeg())
            .arg("-hide_banner")
            .arg("-i")
            .arg(out("ffmpeg5")),
        Duration::from_secs(30),
    );
    let described = String::from_utf8_lossy(&probe.stderr);
    assert!(
        !described.contains("none ("),
        "FFmpeg 5.1 sees an unknown stream:\n{described}"
    );
    drop(server);
}
