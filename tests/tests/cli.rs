//! The `rtmpx publish`, `rtmpx play`, `rtmpx probe` and `rtmpx bench` commands against the server, in
//! different variants, with FFmpeg as the independent judge of what was played.

use std::process::Command;
use std::time::Duration;

use rtmpx_interop::scenario::LIMIT;
use rtmpx_interop::{
    enabled, run_with_timeout, scratch, Fixture, Player, Publisher, RtmpxServer, Scenario, Via,
};

#[test]
fn rtmpx_publish_over_rtmps_and_play_over_rtmpte_bit_exact() {
    Scenario::new("rtmpx_publish_over_rtmps_and_play_over_rtmpte_bit_exact")
        .stream("live/cli", Fixture::H264Aac, Publisher::Rtmpx, Via::Rtmps)
        .play(Player::Rtmpx.via(Via::Rtmpte))
        .play(Player::Ffmpeg.via(Via::Rtmp))
        .run();
}

#[test]
fn rtmpx_probe_reports_mode_server_and_codecs() {
    if !enabled("rtmpx_probe_reports_mode_server_and_codecs") {
        return;
    }
    let dir = scratch("probe");
    let server = RtmpxServer::start(&[]);
    let mut publisher = Publisher::Ffmpeg.spawn(
        &Fixture::H264Aac.path(),
        &Via::Rtmp.url(&server, "live/p"),
        &dir.path().join("pub.log"),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let mut probe = Command::new(rtmpx_interop::server::binary());
    probe.args(["probe", &Via::Rtmpe.url(&server, "live/p")]);
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
    let fixture = Fixture::H264Aac.path();
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
