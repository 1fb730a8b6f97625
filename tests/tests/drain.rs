//! The graceful drain against real clients: server A (with server B as `drain_reconnect_url` and a short
//! `drain_timeout_s`) is sent SIGTERM while `rtmpx publish` sends a stream that `rtmpx play` and FFmpeg
//! 5.1 play, and FFmpeg 5.1 publishes a second stream with an FFmpeg player. `/readyz` answers 503 at
//! once; publisher and player (capsEx Reconnect) move to B, and the player's file holds every published
//! packet once, in order (no keyframe or frame missed); the FFmpeg publisher (no capsEx) is ended at the
//! drain timeout with the close reason `draining`, its player told UnpublishNotify; A then exits.

use std::process::Command;
use std::time::{Duration, Instant};

use rtmpx_interop::http::get;
use rtmpx_interop::{
    assert_contiguous_run, enabled, framemd5, scratch, Fixture, Player, Publisher, RtmpxServer,
};

const LIMIT: Duration = Duration::from_secs(30);

/// Whether process `pid` has exited (a zombie not reaped yet counts as exited).
fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
    })
}

#[test]
fn sigterm_moves_reconnecting_clients_and_ends_the_others_at_the_timeout() {
    let name = "sigterm_drain";
    if !enabled(name) {
        return;
    }
    let dir = scratch(name);
    let second = RtmpxServer::start(&[]);
    let config = dir.path().join("first.toml");
    std::fs::write(
        &config,
        format!(
            "drain_timeout_s = 2\ndrain_reconnect_url = \"rtmp://{}/live\"\n",
            second.address
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let first = RtmpxServer::start(&["--config", &config.display().to_string()]);
    let api = first.api_address();
    assert_eq!(get(api, "/readyz").0, 200);

    let fixture = Fixture::H264Aac;
    let file = |name: &str| dir.path().join(name);
    let moving = first.url("live/moving");
    let staying = first.url("live/staying");
    let mut player = Player::Rtmpx.spawn(&moving, &file("rtmpx.flv"), &file("rtmpx.log"));
    let mut ffmpeg_player = Player::Ffmpeg.spawn(&moving, &file("ffmpeg.flv"), &file("ffmpeg.log"));
    let mut staying_player =
        Player::Ffmpeg.spawn(&staying, &file("staying.flv"), &file("staying-player.log"));
    first.wait_for_players("live/moving", 2, LIMIT);
    first.wait_for_players("live/staying", 1, LIMIT);
    let mut publisher = Publisher::Rtmpx.spawn(&fixture.path(), &moving, &file("publish.log"));
    let mut ffmpeg_publisher =
        Publisher::Ffmpeg.spawn(&fixture.path(), &staying, &file("ffmpeg-publish.log"));
    std::thread::sleep(Duration::from_millis(1500));

    let status = Command::new("kill")
        .args(["-TERM", &first.pid().to_string()])
        .status()
        .unwrap_or_else(|e| panic!("kill: {e}"));
    assert!(status.success());
    let asked = Instant::now();
    let mut ready = get(api, "/readyz").0;
    while ready == 200 && asked.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
        ready = get(api, "/readyz").0;
    }
    assert_eq!(ready, 503, "/readyz during the drain");

    // The FFmpeg publisher is ended at the drain timeout (2 s), its player told, and A exits.
    let started = Instant::now();
    while !exited(first.pid()) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the drained server did not exit; log:\n{}",
            first.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = first.log();
    let ended = log
        .lines()
        .filter(|line| line.contains(" close ") && line.contains("cause=\"draining\""))
        .count();
    assert!(
        ended >= 1,
        "the FFmpeg publisher ended by the drain; log:\n{log}"
    );
    assert!(
        asked.elapsed() >= Duration::from_secs(2),
        "not before the timeout"
    );
    ffmpeg_publisher.wait(LIMIT);
    staying_player.wait(LIMIT);

    // Publisher and player moved to B; the player got every packet once.
    assert!(publisher.wait(LIMIT).success(), "{}", publisher.log());
    assert!(player.wait(LIMIT).success(), "{}", player.log());
    ffmpeg_player.wait(LIMIT);
    let second_log = second.log();
    assert!(
        second_log.contains("publish") && second_log.contains("stream=live/moving"),
        "the publisher moved to the second server; its log:\n{second_log}"
    );
    let reference = fixture.reference();
    let played = framemd5(&fixture.judge(), &file("rtmpx.flv"));
    assert_contiguous_run(&reference, &played, 1.0);
    let video =
        |packets: &[rtmpx_interop::Packet]| packets.iter().filter(|p| p.stream == 0).count();
    assert_eq!(
        video(&played),
        video(&reference),
        "video packets (every keyframe among them) played vs published"
    );
    // What the FFmpeg player got before its stream left A is bit-exact too.
    let partial = framemd5(&fixture.judge(), &file("ffmpeg.flv"));
    assert_contiguous_run(&reference, &partial, 0.1);
}
