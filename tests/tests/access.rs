//! Access control against real FFmpeg: address rules and signed stream URLs, from a configuration file.

use std::process::Command;
use std::time::{Duration, Instant};

use rtmpx_interop::clients::{ffmpeg, ffmpeg_player, ffmpeg_publisher};
use rtmpx_interop::server::binary;
use rtmpx_interop::{
    assert_contiguous_run, enabled, framemd5, run_with_timeout, scratch, Fixture, RtmpxServer,
};

/// Runs an FFmpeg player that must be refused: it exits non-zero within a few seconds.
fn assert_play_refused(url: &str) {
    let started = Instant::now();
    let output = run_with_timeout(
        Command::new(ffmpeg()).args(["-loglevel", "error", "-i", url, "-f", "null", "-"]),
        Duration::from_secs(20),
    );
    assert!(!output.status.success(), "{url} was not refused");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refusing {url} took {:?}",
        started.elapsed()
    );
}

/// `rtmpx sign URL --secret SECRET --ttl TTL`.
fn signed(url: &str, secret: &str) -> String {
    let output = run_with_timeout(
        Command::new(binary()).args(["sign", url, "--secret", secret, "--ttl", "3600"]),
        Duration::from_secs(10),
    );
    assert!(output.status.success(), "rtmpx sign failed");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn deny_play_refuses_ffmpeg_from_loopback() {
    if !enabled("deny_play_refuses_ffmpeg_from_loopback") {
        return;
    }
    let dir = scratch("deny_play");
    let server = RtmpxServer::start_with_config(
        dir.path(),
        "[app.live]\ndeny_play = [\"127.0.0.0/8\"]\n",
        &[],
    );
    assert_play_refused(&server.url("live/x"));
    let log = server.log();
    assert!(
        log.contains("access refused") && log.contains("127.0.0.0/8"),
        "{log}"
    );
}

#[test]
fn signed_urls_publish_and_play_and_bad_ones_are_refused() {
    if !enabled("signed_urls_publish_and_play_and_bad_ones_are_refused") {
        return;
    }
    let dir = scratch("signed_urls");
    let server =
        RtmpxServer::start_with_config(dir.path(), "[app.live]\nsecret = \"s3cret\"\n", &[]);
    let fixture = Fixture::H264Aac;
    let mut publisher = ffmpeg_publisher(
        &ffmpeg(),
        &fixture.path(),
        &signed(&server.url("live/x"), "s3cret"),
        &dir.path().join("publisher.log"),
        &[],
    );
    server.wait_for_publish("live/x");
    let out = dir.path().join("played.flv");
    let mut player = ffmpeg_player(
        &ffmpeg(),
        &signed(&server.url("live/x"), "s3cret"),
        &out,
        &dir.path().join("player.log"),
        &[],
    );
    // Unsigned, signed with another secret, tampered with, or for another stream: refused.
    assert_play_refused(&server.url("live/x"));
    assert_play_refused(&signed(&server.url("live/x"), "other"));
    let tampered = signed(&server.url("live/x"), "s3cret").replace("expires=", "expires=9");
    assert_play_refused(&tampered);
    let other_stream = signed(&server.url("live/y"), "s3cret").replace("/live/y?", "/live/x?");
    assert_play_refused(&other_stream);
    let expired = format!("{}?expires=1&sign=AAAA", server.url("live/x"));
    assert_play_refused(&expired);
    assert!(publisher.wait(Duration::from_secs(60)).success());
    assert!(player.wait(Duration::from_secs(30)).success());
    assert_contiguous_run(&fixture.reference(), &framemd5(&ffmpeg(), &out), 0.5);
}

/// Runs an FFmpeg publisher that must be refused: it exits non-zero within a few seconds.
fn assert_publish_refused(url: &str) {
    let started = Instant::now();
    let output = run_with_timeout(
        Command::new(ffmpeg())
            .args(["-loglevel", "error", "-re", "-i"])
            .arg(Fixture::H264Aac.path())
            .args(["-c", "copy", "-f", "flv", url]),
        Duration::from_secs(20),
    );
    assert!(!output.status.success(), "{url} was not refused");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refusing {url} took {:?}",
        started.elapsed()
    );
}

#[test]
fn adobe_auth_lets_ffmpeg_publish_with_the_right_password_only() {
    if !enabled("adobe_auth_lets_ffmpeg_publish_with_the_right_password_only") {
        return;
    }
    let dir = scratch("adobe_auth");
    let server = RtmpxServer::start_with_config(
        dir.path(),
        "[app.live]\nauth = \"adobe\"\nusers = { alice = \"s3cret\" }\n",
        &[],
    );
    let with_login = |login: &str| {
        server
            .url("live/x")
            .replace("rtmp://", &format!("rtmp://{login}@"))
    };
    assert_publish_refused(&with_login("alice:wrong"));
    assert_publish_refused(&with_login("mallory:s3cret"));
    assert_publish_refused(&server.url("live/x"));
    let fixture = Fixture::H264Aac;
    let mut publisher = ffmpeg_publisher(
        &ffmpeg(),
        &fixture.path(),
        &with_login("alice:s3cret"),
        &dir.path().join("publisher.log"),
        &[],
    );
    server.wait_for_publish("live/x");
    let out = dir.path().join("played.flv");
    let mut player = ffmpeg_player(
        &ffmpeg(),
        &server.url("live/x"),
        &out,
        &dir.path().join("player.log"),
        &[],
    );
    assert!(publisher.wait(Duration::from_secs(60)).success());
    assert!(player.wait(Duration::from_secs(30)).success());
    assert_contiguous_run(&fixture.reference(), &framemd5(&ffmpeg(), &out), 0.5);
    let log = server.log();
    assert!(
        log.contains("logged in") && log.contains("authfailed"),
        "{log}"
    );
}

#[test]
fn adobe_auth_over_rtmps() {
    if !enabled("adobe_auth_over_rtmps") {
        return;
    }
    let dir = scratch("adobe_auth_rtmps");
    let server = RtmpxServer::start_with_config(
        dir.path(),
        "[app.live]\nauth = \"adobe\"\nusers = { alice = \"s3cret\" }\n",
        &[],
    );
    let with_login = |login: &str| {
        server
            .rtmps_url("live/s")
            .replace("rtmps://", &format!("rtmps://{login}@"))
    };
    assert_publish_refused(&with_login("alice:wrong"));
    let fixture = Fixture::H264Aac;
    let mut publisher = ffmpeg_publisher(
        &ffmpeg(),
        &fixture.path(),
        &with_login("alice:s3cret"),
        &dir.path().join("publisher.log"),
        &[],
    );
    server.wait_for_publish("live/s");
    let out = dir.path().join("played.flv");
    let mut player = ffmpeg_player(
        &ffmpeg(),
        &server.rtmps_url("live/s"),
        &out,
        &dir.path().join("player.log"),
        &[],
    );
    assert!(publisher.wait(Duration::from_secs(60)).success());
    assert!(player.wait(Duration::from_secs(30)).success());
    assert_contiguous_run(&fixture.reference(), &framemd5(&ffmpeg(), &out), 0.5);
}

#[test]
fn adobe_auth_over_rtmpe_with_ffmpeg9() {
    if !enabled("adobe_auth_over_rtmpe_with_ffmpeg9") {
        return;
    }
    let ffmpeg9 = rtmpx_interop::fixtures::ffmpeg9();
    let dir = scratch("adobe_auth_rtmpe");
    let server = RtmpxServer::start_with_config(
        dir.path(),
        "[app.live]\nauth = \"adobe\"\nusers = { alice = \"s3cret\" }\n",
        &[],
    );
    let url = server
        .variant_url("rtmpe", "live/e")
        .replace("rtmpe://", "rtmpe://alice:s3cret@");
    let output = run_with_timeout(
        Command::new(&ffmpeg9)
            .args(["-loglevel", "error", "-i"])
            .arg(Fixture::H264Aac.path())
            .args(["-t", "2", "-c", "copy", "-f", "flv", &url]),
        Duration::from_secs(30),
    );
    assert!(output.status.success(), "{}", server.log());
    let log = server.log();
    assert!(log.contains("logged in") && log.contains("rtmpe"), "{log}");
}
