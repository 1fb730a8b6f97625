//! RTMPE (Diffie-Hellman + RC4 "encrypted" RTMP) against the real clients that speak it: FFmpeg 9
//! publishes and plays, rtmpdump plays, GStreamer's librtmp-based `rtmpsink` publishes. Bit-exact.

use std::time::Duration;

use rtmpx_interop::clients::{
    ffmpeg, ffmpeg_player, ffmpeg_publisher, gst_publisher, rtmpdump_player,
};
use rtmpx_interop::{assert_contiguous_run, enabled, fixtures, framemd5, scratch, RtmpxServer};

const LIMIT: Duration = Duration::from_secs(40);

fn rtmpe_url(server: &RtmpxServer, path: &str) -> String {
    server.url(path).replacen("rtmp://", "rtmpe://", 1)
}

#[test]
fn ffmpeg9_publishes_and_plays_over_rtmpe_and_rtmpdump_plays_too() {
    if !enabled("ffmpeg9_publishes_and_plays_over_rtmpe_and_rtmpdump_plays_too") {
        return;
    }
    let ffmpeg9 = fixtures::ffmpeg9();
    let dir = scratch("rtmpe");
    let fixture = fixtures::h264_aac();
    let server = RtmpxServer::start(&[]);
    let url = rtmpe_url(&server, "live/secret");
    let played = dir.path().join("played.flv");
    let dumped = dir.path().join("dumped.flv");
    let mut player = ffmpeg_player(&ffmpeg9, &url, &played, &dir.path().join("player.log"), &[]);
    let mut dumper = rtmpdump_player(&url, &dumped, &dir.path().join("rtmpdump.log"));
    server.wait_for_players("live/secret", 2, LIMIT);
    let mut publisher = ffmpeg_publisher(
        &ffmpeg9,
        &fixture,
        &url,
        &dir.path().join("publisher.log"),
        &[],
    );
    assert!(
        publisher.wait(LIMIT).success(),
        "publisher: {}",
        publisher.log()
    );
    player.wait(LIMIT);
    dumper.wait(LIMIT);
    let sent = framemd5(&ffmpeg(), &fixture);
    assert_contiguous_run(&sent, &framemd5(&ffmpeg(), &played), 0.9);
    assert_contiguous_run(&sent, &framemd5(&ffmpeg(), &dumped), 0.9);
    assert!(
        server.log().contains("transport=\"rtmpe\""),
        "server log:\n{}",
        server.log()
    );
}

#[test]
fn gstreamer_librtmp_sink_publishes_over_rtmpe() {
    if !enabled("gstreamer_librtmp_sink_publishes_over_rtmpe") {
        return;
    }
    let dir = scratch("rtmpe-gst");
    let fixture = fixtures::h264_aac();
    let server = RtmpxServer::start(&[]);
    let plain = server.url("live/gst");
    let played = dir.path().join("played.flv");
    let mut player = ffmpeg_player(
        &ffmpeg(),
        &plain,
        &played,
        &dir.path().join("player.log"),
        &[],
    );
    std::thread::sleep(Duration::from_millis(700));
    let mut publisher = gst_publisher(
        &fixture,
        &[
            "rtmpsink",
            &format!("location={} live=1", rtmpe_url(&server, "live/gst")),
        ],
        &dir.path().join("publisher.log"),
    );
    assert!(
        publisher.wait(LIMIT).success(),
        "rtmpsink: {}",
        publisher.log()
    );
    player.wait(LIMIT);
    assert_contiguous_run(
        &framemd5(&ffmpeg(), &fixture),
        &framemd5(&ffmpeg(), &played),
        0.8,
    );
}
