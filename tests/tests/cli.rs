//! The `rtmpx publish`, `rtmpx play`, `rtmpx probe` and `rtmpx bench` commands against the server, in
//! different variants, with FFmpeg as the independent judge of what was played.

use std::process::Command;
use std::time::Duration;

use rtmpx_interop::clients::{ffmpeg, ffmpeg_player};
use rtmpx_interop::{
    assert_contiguous_run, enabled, fixtures, framemd5, run_with_timeout, scratch, Background,
    RtmpxServer,
};

const LIMIT: Duration = Duration::from_secs(40);

#[test]
fn rtmpx_publish_over_rtmps_and_play_over_rtmpte_bit_exact() {
    if !enabled("rtmpx_publish_over_rtmps_and_play_over_rtmpte_bit_exact") {
        return;
    }
    let dir = scratch("cli");
    let fixture = fixtures::h264_aac();
    let server = RtmpxServer::start(&[]);
    let binary = rtmpx_interop::server::binary();
    let ours = dir.path().join("rtmpx-played.flv");
    let theirs = dir.path().join("ffmpeg-played.flv");
    let mut play = Command::new(&binary);
    play.args(["play", &server.variant_url("rtmpte", "live/cli"), "-o"])
        .arg(&ours);
    let mut our_player = Background::spawn("rtmpx play", &mut play, &dir.path().join("play.log"));
    let mut ffmpeg_player = ffmpeg_player(
        &ffmpeg(),
        &server.url("live/cli"),
        &theirs,
        &dir.path().join("ffmpeg.log"),
        &[],
    );
    server.wait_for_players("live/cli", 2, LIMIT);
    let mut publish = Command::new(&binary);
    publish
        .arg("publish")
        .arg(&fixture)
        .args([&server.rtmps_url("live/cli"), "--insecure"]);
    let output = run_with_timeout(&mut publish, LIMIT);
    assert!(
        output.status.success(),
        "rtmpx publish: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        our_player.wait(LIMIT).success(),
        "rtmpx play: {}",
        our_player.log()
    );
    ffmpeg_player.wait(LIMIT);
    let sent = framemd5(&ffmpeg(), &fixture);
    assert_contiguous_run(&sent, &framemd5(&ffmpeg(), &ours), 0.9);
    assert_contiguous_run(&sent, &framemd5(&ffmpeg(), &theirs), 0.9);
}

#[test]
fn rtmpx_probe_reports_mode_server_and_codecs() {
    if !enabled("rtmpx_probe_reports_mode_server_and_codecs") {
        return;
    }
    let dir = scratch("probe");
    let fixture = fixtures::h264_aac();
    let server = RtmpxServer::start(&[]);
    let mut publisher = rtmpx_interop::clients::ffmpeg_publisher(
        &ffmpeg(),
        &fixture,
        &server.url("live/p"),
        &dir.path().join("pub.log"),
        &[],
    );
    std::thread::sleep(Duration::from_millis(1500));
    let mut probe = Command::new(rtmpx_interop::server::binary());
    probe.args([
        "probe",
        &server.url("live/p").replacen("rtmp://", "rtmpe://", 1),
    ]);
    let output = run_with_timeout(&mut probe, LIMIT);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "handshake:  RTMPE (version 6,",
        "fmsVer",
        "width = 640",
        "video:      avc1",
        "audio:      mp4a",
    ] {
        assert!(
            text.contains(expected),
            "probe output lacks {expected:?}:\n{text}"
        );
    }
    publisher.wait(LIMIT);
}

/// The usual soft limit of open files (1024, here 64) is below what a server or a load generator holds:
/// both raise it towards the hard limit, so 200 players fit under a soft limit of 64.
#[test]
fn server_and_bench_raise_a_low_open_file_limit() {
    if !enabled("server_and_bench_raise_a_low_open_file_limit") {
        return;
    }
    const LOW_SOFT_LIMIT: &str = "--nofile=64:4096";
    let fixture = fixtures::h264_aac();
    let server = RtmpxServer::start_wrapped(&["prlimit", LOW_SOFT_LIMIT, "--"], &[]);
    let mut bench = Command::new("prlimit");
    bench
        .args([LOW_SOFT_LIMIT, "--"])
        .arg(rtmpx_interop::server::binary())
        .args(["bench", &server.url("live/many"), "--players", "200"])
        .args(["--duration", "2", "--publish"])
        .arg(&fixture);
    let output = run_with_timeout(&mut bench, LIMIT);
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "rtmpx bench: {}{report}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        report_value(&report, "players playing"),
        Some(200),
        "{report}"
    );
    assert_eq!(report_value(&report, "players failed"), Some(0), "{report}");
    assert!(
        report
            .lines()
            .any(|line| line.starts_with("generator CPU ")),
        "the generator reports its own CPU: {report}"
    );
}

/// Where even the hard limit is too low, the load generator says so before it starts, and the server
/// caps its connections to what fits and says why.
#[test]
fn a_hard_open_file_limit_too_low_is_reported() {
    if !enabled("a_hard_open_file_limit_too_low_is_reported") {
        return;
    }
    const LOW_HARD_LIMIT: &str = "--nofile=100:100";
    let server = RtmpxServer::start_wrapped(&["prlimit", LOW_HARD_LIMIT, "--"], &[]);
    assert!(
        server
            .log()
            .contains("the open-file limit leaves room for 36 connections"),
        "{}",
        server.log()
    );
    let mut bench = Command::new("prlimit");
    bench
        .args([LOW_HARD_LIMIT, "--"])
        .arg(rtmpx_interop::server::binary())
        .args(["bench", &server.url("live/few"), "--players", "200"]);
    let output = run_with_timeout(&mut bench, LIMIT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("200 players need about 265 open files but the limit is 100"),
        "{stderr}"
    );
}

/// The number after `name` in `rtmpx bench`'s table.
fn report_value(report: &str, name: &str) -> Option<u64> {
    report
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
}
