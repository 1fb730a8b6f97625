//! Plain RTMP against real clients: FFmpeg publishes, FFmpeg, rtmpdump and GStreamer play (and publish),
//! and what every player received must be a contiguous, bit-identical run of what was published.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rtmpx_interop::clients::{
    ffmpeg, ffmpeg_player, ffmpeg_publisher as publisher, gst_player, gst_publisher,
    rtmpdump_player,
};
use rtmpx_interop::{
    assert_contiguous_run, enabled, fixtures, framemd5, scratch, Background, Packet, RtmpxServer,
};

const LIMIT: Duration = Duration::from_secs(40);

fn reference(fixture: &Path) -> Vec<Packet> {
    framemd5(&ffmpeg(), fixture)
}

fn settle() {
    std::thread::sleep(Duration::from_millis(700));
}

#[test]
fn ffmpeg_publishes_and_ffmpeg_plays_bit_exact() {
    if !enabled("ffmpeg_publishes_and_ffmpeg_plays_bit_exact") {
        return;
    }
    let dir = scratch("ffmpeg-ffmpeg");
    let fixture = fixtures::h264_aac();
    let server = RtmpxServer::start(&[]);
    let url = server.url("live/stream");
    let out = dir.path().join("played.flv");
    let mut player = ffmpeg_player(&ffmpeg(), &url, &out, &dir.path().join("player.log"), &[]);
    settle();
    let mut publisher = publisher(
        &ffmpeg(),
        &fixture,
        &url,
        &dir.path().join("publisher.log"),
        &[],
    );
    assert!(
        publisher.wait(LIMIT).success(),
        "publisher failed: {}",
        publisher.log()
    );
    player.wait(LIMIT);
    assert_contiguous_run(&reference(&fixture), &framemd5(&ffmpeg(), &out), 0.9);
    let log = server.log();
    assert!(
        log.contains("publish") && log.contains("play") && log.contains("close"),
        "server log:\n{log}"
    );
}

#[test]
fn late_ffmpeg_player_starts_from_the_gop_cache_on_a_keyframe() {
    if !enabled("late_ffmpeg_player_starts_from_the_gop_cache_on_a_keyframe") {
        return;
    }
    let dir = scratch("late-player");
    let fixture = fixtures::h264_aac();
    let server = RtmpxServer::start(&[]);
    let url = server.url("live/late");
    let mut publisher = publisher(
        &ffmpeg(),
        &fixture,
        &url,
        &dir.path().join("publisher.log"),
        &[],
    );
    std::thread::sleep(Duration::from_millis(2500));
    let out = dir.path().join("played.flv");
    let mut player = ffmpeg_player(&ffmpeg(), &url, &out, &dir.path().join("player.log"), &[]);
    assert!(publisher.wait(LIMIT).success());
    player.wait(LIMIT);
    // Joined about 2.5 s into 6 s: at least the last ~40% (from the cached keyframe on), contiguous.
    assert_contiguous_run(&reference(&fixture), &framemd5(&ffmpeg(), &out), 0.4);
}

#[test]
fn rtmpdump_plays_live_bit_exact() {
    if !enabled("rtmpdump_plays_live_bit_exact") {
        return;
    }
    let dir = scratch("rtmpdump");
    let fixture = fixtures::h264_aac();
    let server = RtmpxServer::start(&[]);
    let url = server.url("live/dump");
    let out = dir.path().join("dumped.flv");
    let mut player = rtmpdump_player(&url, &out, &dir.path().join("rtmpdump.log"));
    settle();
    let mut publisher = publisher(
        &ffmpeg(),
        &fixture,
        &url,
        &dir.path().join("publisher.log"),
        &[],
    );
    assert!(publisher.wait(LIMIT).success());
    player.wait(LIMIT);
    assert_contiguous_run(&reference(&fixture), &framemd5(&ffmpeg(), &out), 0.9);
}

#[test]
fn twenty_players_on_one_stream_all_bit_exact() {
    if !enabled("twenty_players_on_one_stream_all_bit_exact") {
        return;
    }
    let dir = scratch("twenty");
    let fixture = fixtures::h264_aac();
    let server = RtmpxServer::start(&[]);
    let url = server.url("live/many");
    let mut players: Vec<(PathBuf, Background)> = (0..20)
        .map(|i| {
            let out = dir.path().join(format!("played-{i}.flv"));
            let player = ffmpeg_player(
                &ffmpeg(),
                &url,
                &out,
                &dir.path().join(format!("player-{i}.log")),
                &[],
            );
            (out, player)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let mut publisher = publisher(
        &ffmpeg(),
        &fixture,
        &url,
        &dir.path().join("publisher.log"),
        &[],
    );
    assert!(publisher.wait(LIMIT).success());
    let sent = reference(&fixture);
    for (out, player) in &mut players {
        player.wait(LIMIT);
        assert_contiguous_run(&sent, &framemd5(&ffmpeg(), out), 0.9);
    }
}

#[test]
fn five_streams_at_once_stay_independent() {
    if !enabled("five_streams_at_once_stay_independent") {
        return;
    }
    let dir = scratch("five");
    let fixture = fixtures::h264_aac();
    let server = RtmpxServer::start(&[]);
    let mut players = Vec::new();
    for i in 0..5 {
        let out = dir.path().join(format!("played-{i}.flv"));
        let url = server.url(&format!("live/stream{i}"));
        players.push((
            out.clone(),
            ffmpeg_player(
                &ffmpeg(),
                &url,
                &out,
                &dir.path().join(format!("player-{i}.log")),
                &[],
            ),
        ));
    }
    settle();
    let mut publishers: Vec<Background> = (0..5)
        .map(|i| {
            publisher(
                &ffmpeg(),
                &fixture,
                &server.url(&format!("live/stream{i}")),
                &dir.path().join(format!("pub-{i}.log")),
                &[],
            )
        })
        .collect();
    for publisher in &mut publishers {
        assert!(publisher.wait(LIMIT).success());
    }
    let sent = reference(&fixture);
    for (out, player) in &mut players {
        player.wait(LIMIT);
        assert_contiguous_run(&sent, &framemd5(&ffmpeg(), out), 0.9);
    }
}

#[test]
fn a_reconnecting_publisher_takes_over_and_players_continue() {
    if !enabled("a_reconnecting_publisher_takes_over_and_players_continue") {
        return;
    }
    let dir = scratch("takeover");
    let fixture = fixtures::h264_aac();
    let server = RtmpxServer::start(&[]);
    let url = server.url("live/flaky");
    let out = dir.path().join("played.flv");
    let mut player = rtmpdump_player(&url, &out, &dir.path().join("player.log"));
    settle();
    // The first encoder freezes mid-stream (its TCP connection stays open, as after a network blip) ...
    let first = publisher(
        &ffmpeg(),
        &fixture,
        &url,
        &dir.path().join("publisher-1.log"),
        &[],
    );
    std::thread::sleep(Duration::from_millis(2000));
    first.signal("STOP");
    std::thread::sleep(Duration::from_millis(1500));
    // ... and reconnects: the new connection takes the stream over.
    let mut second = publisher(
        &ffmpeg(),
        &fixture,
        &url,
        &dir.path().join("publisher-2.log"),
        &[],
    );
    assert!(
        second.wait(LIMIT).success(),
        "second publisher: {}",
        second.log()
    );
    player.wait(LIMIT);
    first.signal("KILL");
    let log = server.log();
    assert!(log.contains("publisher taken over"), "server log:\n{log}");
    // The player got the first publisher's frames, then the second one's from a keyframe to the end.
    let sent = reference(&fixture);
    let got = framemd5(&ffmpeg(), &out);
    let video = |p: &[Packet]| {
        p.iter()
            .filter(|p| p.stream == 0)
            .map(|p| (p.size, p.md5.clone()))
            .collect::<Vec<_>>()
    };
    let runs = rtmpx_interop::runs_in_reference(&video(&sent), &video(&got))
        .expect("every frame was published");
    assert!(runs.len() >= 2, "frames from both publishers: {runs:?}");
    let (start, len) = runs[runs.len() - 1];
    assert_eq!(
        start + len,
        video(&sent).len(),
        "the second publish played to its end: {runs:?}"
    );
}

#[test]
fn gstreamer_publishes_with_rtmp2sink_and_plays_with_rtmp2src() {
    if !enabled("gstreamer_publishes_with_rtmp2sink_and_plays_with_rtmp2src") {
        return;
    }
    let dir = scratch("gstreamer");
    let fixture = fixtures::h264_aac();
    let server = RtmpxServer::start(&[]);
    let url = server.url("live/gst");
    let played = dir.path().join("played.flv");
    let mut player = gst_player(&url, &[], &played, &dir.path().join("player.log"));
    settle();
    let mut publisher = gst_publisher(
        &fixture,
        &["rtmp2sink", &format!("location={url}")],
        &dir.path().join("publisher.log"),
    );
    assert!(
        publisher.wait(LIMIT).success(),
        "rtmp2sink failed: {}",
        publisher.log()
    );
    std::thread::sleep(Duration::from_millis(1000));
    // rtmp2src keeps waiting for a new publisher after the stream ends: stop it with EOS.
    player.signal("INT");
    player.wait(LIMIT);
    // flvdemux ! parse ! flvmux re-muxes the file but passes the coded packets through untouched, so the
    // player's packets must still be a run of the original file's.
    assert_contiguous_run(&reference(&fixture), &framemd5(&ffmpeg(), &played), 0.8);
}
