//! Plain RTMP against real clients: FFmpeg publishes, FFmpeg, rtmpdump and GStreamer play (and publish),
//! and what every player received must be a contiguous, bit-identical run of what was published.

use std::time::Duration;

use rtmpx_interop::scenario::LIMIT;
use rtmpx_interop::{
    enabled, scratch, Fixture, Packet, Player, Publisher, RtmpxServer, Scenario, Via,
};

use Fixture::H264Aac;

#[test]
fn ffmpeg_publishes_and_ffmpeg_plays_bit_exact() {
    Scenario::new("ffmpeg_publishes_and_ffmpeg_plays_bit_exact")
        .stream("live/stream", H264Aac, Publisher::Ffmpeg, Via::Rtmp)
        .play(Player::Ffmpeg.via(Via::Rtmp))
        .server_log("publish")
        .server_log("play")
        .server_log("close")
        .run();
}

#[test]
fn late_ffmpeg_player_starts_from_the_gop_cache_on_a_keyframe() {
    // Joined about 2.5 s into 6 s: at least the last ~40% (from the cached keyframe on), contiguous.
    Scenario::new("late_ffmpeg_player_starts_from_the_gop_cache_on_a_keyframe")
        .stream("live/late", H264Aac, Publisher::Ffmpeg, Via::Rtmp)
        .play(
            Player::Ffmpeg
                .via(Via::Rtmp)
                .joining_after(Duration::from_millis(2500))
                .at_least(0.4),
        )
        .run();
}

#[test]
fn rtmpdump_plays_live_bit_exact() {
    Scenario::new("rtmpdump_plays_live_bit_exact")
        .stream("live/dump", H264Aac, Publisher::Ffmpeg, Via::Rtmp)
        .play(Player::Rtmpdump.via(Via::Rtmp))
        .run();
}

#[test]
fn twenty_players_on_one_stream_all_bit_exact() {
    Scenario::new("twenty_players_on_one_stream_all_bit_exact")
        .stream("live/many", H264Aac, Publisher::Ffmpeg, Via::Rtmp)
        .play(Player::Ffmpeg.via(Via::Rtmp).times(20))
        .run();
}

#[test]
fn five_streams_at_once_stay_independent() {
    let mut scenario = Scenario::new("five_streams_at_once_stay_independent");
    for i in 0..5 {
        scenario = scenario
            .stream(
                &format!("live/stream{i}"),
                H264Aac,
                Publisher::Ffmpeg,
                Via::Rtmp,
            )
            .play(Player::Ffmpeg.via(Via::Rtmp));
    }
    scenario.run();
}

#[test]
fn gstreamer_publishes_with_rtmp2sink_and_plays_with_rtmp2src() {
    // flvdemux ! parse ! flvmux re-muxes the file but passes the coded packets through untouched, so the
    // player's packets must still be a run of the original file's.
    Scenario::new("gstreamer_publishes_with_rtmp2sink_and_plays_with_rtmp2src")
        .stream("live/gst", H264Aac, Publisher::GstRtmp2, Via::Rtmp)
        .at_least(0.8)
        .play(Player::Gst.via(Via::Rtmp))
        .run();
}

#[test]
fn a_reconnecting_publisher_takes_over_and_players_continue() {
    if !enabled("a_reconnecting_publisher_takes_over_and_players_continue") {
        return;
    }
    let dir = scratch("takeover");
    let fixture = H264Aac.path();
    let server = RtmpxServer::start(&[]);
    let url = Via::Rtmp.url(&server, "live/flaky");
    let out = dir.path().join("played.flv");
    let mut player = Player::Rtmpdump.spawn(&url, &out, &dir.path().join("player.log"));
    server.wait_for_players("live/flaky", 1, LIMIT);
    // The first encoder freezes mid-stream (its TCP connection stays open, as after a network blip) ...
    let first = Publisher::Ffmpeg.spawn(&fixture, &url, &dir.path().join("publisher-1.log"));
    std::thread::sleep(Duration::from_millis(2000));
    first.signal("STOP");
    std::thread::sleep(Duration::from_millis(1500));
    // ... and reconnects: the new connection takes the stream over.
    let mut second = Publisher::Ffmpeg.spawn(&fixture, &url, &dir.path().join("publisher-2.log"));
    assert!(
        second.wait(LIMIT).success(),
        "second publisher: {}",
        second.log()
    );
    Player::Rtmpdump.finish(&mut player);
    first.signal("KILL");
    let log = server.log();
    assert!(log.contains("publisher taken over"), "server log:\n{log}");
    // The player got the first publisher's frames, then the second one's from a keyframe to the end.
    let video = |p: &[Packet]| {
        p.iter()
            .filter(|p| p.stream == 0)
            .map(|p| (p.size, p.md5.clone()))
            .collect::<Vec<_>>()
    };
    let sent = video(&H264Aac.reference());
    let got = video(&rtmpx_interop::framemd5(&H264Aac.judge(), &out));
    let runs = rtmpx_interop::runs_in_reference(&sent, &got).expect("every frame was published");
    assert!(runs.len() >= 2, "frames from both publishers: {runs:?}");
    let (start, len) = runs[runs.len() - 1];
    assert_eq!(
        start + len,
        sent.len(),
        "the second publish played to its end: {runs:?}"
    );
}
