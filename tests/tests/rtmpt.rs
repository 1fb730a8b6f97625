//! RTMPT (HTTP tunnel), RTMPTS (tunnel over TLS) and RTMPTE (RTMPE inside the tunnel) against the real
//! clients that speak them, with plain RTMP players beside them on the same stream. Over RTMPT a publishing
//! FFmpeg drops its last buffered packets when it closes (PROTOCOL.md §3.5), hence "most of the stream".

use std::path::PathBuf;
use std::time::Duration;

use rtmpx_interop::clients::{
    ffmpeg, ffmpeg_player, ffmpeg_publisher, gst_publisher, rtmpdump_player,
};
use rtmpx_interop::{
    assert_contiguous_run, enabled, fixtures, framemd5, scratch, Background, RtmpxServer,
};

const LIMIT: Duration = Duration::from_secs(40);

#[test]
fn ffmpeg_and_rtmpdump_over_rtmpt_and_rtmpts_beside_plain_players() {
    if !enabled("ffmpeg_and_rtmpdump_over_rtmpt_and_rtmpts_beside_plain_players") {
        return;
    }
    let dir = scratch("rtmpt");
    let fixture = fixtures::h264_aac();
    let server = RtmpxServer::start(&[]);
    let path = "live/tunnel";
    let shared_rtmpt = server.url(path).replacen("rtmp://", "rtmpt://", 1);
    let players: Vec<(PathBuf, Background)> = [
        ("ffmpeg-rtmpt", server.variant_url("rtmpt", path)),
        ("ffmpeg-rtmpts", server.variant_url("rtmpts", path)),
        ("ffmpeg-plain", server.url(path)),
        ("rtmpdump-rtmpt", shared_rtmpt),
    ]
    .into_iter()
    .map(|(name, url)| {
        let out = dir.path().join(format!("{name}.flv"));
        let log = dir.path().join(format!("{name}.log"));
        let player = if name.starts_with("rtmpdump") {
            rtmpdump_player(&url, &out, &log)
        } else {
            ffmpeg_player(&ffmpeg(), &url, &out, &log, &[])
        };
        (out, player)
    })
    .collect();
    server.wait_for_players(path, players.len(), LIMIT);
    let url = server.variant_url("rtmpt", path);
    let mut publisher = ffmpeg_publisher(
        &ffmpeg(),
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
    let sent = framemd5(&ffmpeg(), &fixture);
    for (out, mut player) in players {
        player.wait(LIMIT);
        assert_contiguous_run(&sent, &framemd5(&ffmpeg(), &out), 0.85);
    }
    let log = server.log();
    assert!(
        log.contains("transport=\"rtmpt\"") && log.contains("transport=\"rtmpts\""),
        "log:\n{log}"
    );
}

#[test]
fn rtmpte_with_ffmpeg9_rtmpdump_and_gstreamer() {
    if !enabled("rtmpte_with_ffmpeg9_rtmpdump_and_gstreamer") {
        return;
    }
    let ffmpeg9 = fixtures::ffmpeg9();
    let dir = scratch("rtmpte");
    let fixture = fixtures::h264_aac();
    let server = RtmpxServer::start(&[]);
    let url = server.variant_url("rtmpte", "live/te");
    let played = dir.path().join("played.flv");
    let dumped = dir.path().join("dumped.flv");
    let mut player = ffmpeg_player(&ffmpeg9, &url, &played, &dir.path().join("player.log"), &[]);
    let mut dumper = rtmpdump_player(&url, &dumped, &dir.path().join("rtmpdump.log"));
    server.wait_for_players("live/te", 2, LIMIT);
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
    assert_contiguous_run(&sent, &framemd5(&ffmpeg(), &played), 0.85);
    assert_contiguous_run(&sent, &framemd5(&ffmpeg(), &dumped), 0.85);

    // GStreamer's librtmp sink publishes over RTMPTE too.
    let gst_played = dir.path().join("gst-played.flv");
    let mut plain_player = ffmpeg_player(
        &ffmpeg(),
        &server.url("live/gst"),
        &gst_played,
        &dir.path().join("p2.log"),
        &[],
    );
    std::thread::sleep(Duration::from_millis(700));
    let mut gst = gst_publisher(
        &fixture,
        &[
            "rtmpsink",
            &format!(
                "location={} live=1",
                server.variant_url("rtmpte", "live/gst")
            ),
        ],
        &dir.path().join("gst.log"),
    );
    assert!(gst.wait(LIMIT).success(), "rtmpsink: {}", gst.log());
    plain_player.wait(LIMIT);
    assert_contiguous_run(&sent, &framemd5(&ffmpeg(), &gst_played), 0.8);
}
