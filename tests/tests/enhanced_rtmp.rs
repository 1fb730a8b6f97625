//! Enhanced RTMP: a modern FFmpeg (9, from the imageio-ffmpeg wheel) publishes HEVC and AV1 with FourCC
//! tag headers and plays them back through rtmpx, bit-exact. Players that did not announce the FourCC in
//! `connect` get no enhanced video.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rtmpx_interop::{
    assert_contiguous_run, enabled, fixtures, framemd5, scratch, Background, RtmpxServer,
};

const LIMIT: Duration = Duration::from_secs(60);

fn round_trip(codec: &str, fixture: &Path) {
    let ffmpeg9 = fixtures::ffmpeg9();
    let dir = scratch(&format!("ertmp-{codec}"));
    let server = RtmpxServer::start(&[]);
    let url = server.url(&format!("live/{codec}"));
    let out = dir.path().join("played.flv");
    let mut player_command = Command::new(&ffmpeg9);
    player_command
        .args([
            "-loglevel",
            "warning",
            "-rtmp_enhanced_codecs",
            "hvc1,av01",
            "-i",
            &url,
            "-c",
            "copy",
            "-f",
            "flv",
            "-y",
        ])
        .arg(&out);
    let mut player = Background::spawn(
        "ffmpeg 9 player",
        &mut player_command,
        &dir.path().join("player.log"),
    );
    std::thread::sleep(Duration::from_millis(700));
    let mut publisher_command = Command::new(&ffmpeg9);
    publisher_command
        .args(["-loglevel", "warning", "-re", "-i"])
        .arg(fixture)
        .args([
            "-c",
            "copy",
            "-rtmp_enhanced_codecs",
            "hvc1,av01",
            "-f",
            "flv",
            &url,
        ]);
    let mut publisher = Background::spawn(
        "ffmpeg 9 publisher",
        &mut publisher_command,
        &dir.path().join("publisher.log"),
    );
    assert!(
        publisher.wait(LIMIT).success(),
        "publisher: {}",
        publisher.log()
    );
    player.wait(LIMIT);
    assert_contiguous_run(&framemd5(&ffmpeg9, fixture), &framemd5(&ffmpeg9, &out), 0.9);
}

#[test]
fn hevc_over_enhanced_rtmp_round_trips_bit_exact() {
    if enabled("hevc_over_enhanced_rtmp_round_trips_bit_exact") {
        round_trip("hevc", &fixtures::hevc_aac());
    }
}

#[test]
fn av1_over_enhanced_rtmp_round_trips_bit_exact() {
    if enabled("av1_over_enhanced_rtmp_round_trips_bit_exact") {
        round_trip("av1", &fixtures::av1_aac());
    }
}
