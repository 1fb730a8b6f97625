//! Relays against real components: rtmpx pushes to nginx-rtmp and pulls from it, FFmpeg judging what
//! arrives bit-exact; pushes over RTMPS, RTMPE and RTMPT to a second rtmpx; and the failures a relay must
//! survive: a target that refuses, one that is down then comes up, one that stops reading, and a pull
//! upstream that never answers.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rtmpx_interop::http::get;
use rtmpx_interop::scenario::LIMIT;
use rtmpx_interop::server::NginxRtmp;
use rtmpx_interop::{
    assert_contiguous_run, enabled, framemd5, free_port, scratch, wait_until, Fixture, Player,
    Publisher, RtmpxServer,
};

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn ffmpeg_publishes_to_rtmpx_which_pushes_to_nginx_and_ffmpeg_plays_it_bit_exact() {
    if !enabled("ffmpeg_publishes_to_rtmpx_which_pushes_to_nginx_and_ffmpeg_plays_it_bit_exact") {
        return;
    }
    let dir = scratch("relay-push-nginx");
    let nginx = NginxRtmp::start();
    let config = format!(
        "[app.live]\npush = [\"rtmp://{}/live/{{name}}\"]\n",
        nginx.address
    );
    let server = RtmpxServer::start_with_config(dir.path(), &config, &[]);
    let played = dir.path().join("played.flv");
    let mut player = Player::Ffmpeg.spawn(
        &nginx.url("live/pushed"),
        &played,
        &dir.path().join("play.log"),
    );
    std::thread::sleep(Duration::from_millis(800));
    let mut publisher = Publisher::Ffmpeg.spawn(
        &Fixture::H264Aac.path(),
        &server.url("live/pushed"),
        &dir.path().join("pub.log"),
    );
    assert!(publisher.wait(LIMIT).success(), "{}", publisher.log());
    player.wait(LIMIT);
    assert!(server.log().contains("push connected"), "{}", server.log());
    let played = framemd5(&Fixture::H264Aac.judge(), &played);
    assert_contiguous_run(&Fixture::H264Aac.reference(), &played, 0.9);
}

#[test]
fn an_rtmp_and_an_http_flv_player_ask_rtmpx_which_pulls_once_from_nginx_bit_exact() {
    if !enabled("an_rtmp_and_an_http_flv_player_ask_rtmpx_which_pulls_once_from_nginx_bit_exact") {
        return;
    }
    let dir = scratch("relay-pull-nginx");
    let nginx = NginxRtmp::start();
    let config = format!(
        "[app.live]\npull = \"rtmp://{}/live/{{name}}\"\npull_idle_ms = 500\n",
        nginx.address
    );
    let server = RtmpxServer::start_with_config(dir.path(), &config, &[]);
    let played = dir.path().join("played.flv");
    let mut player = Player::Ffmpeg.spawn(
        &server.url("live/pulled"),
        &played,
        &dir.path().join("play.log"),
    );
    // An HTTP-FLV player of the same stream shares the pull.
    let played_http = dir.path().join("played-http.flv");
    let mut http_player = Player::Ffmpeg.spawn(
        &format!("http://{}/live/pulled.flv", server.http_address),
        &played_http,
        &dir.path().join("play-http.log"),
    );
    wait_until(
        "the pull connected",
        Duration::from_secs(10),
        || server.log(),
        |log| log.contains("pull connected"),
    );
    let mut publisher = Publisher::Ffmpeg.spawn(
        &Fixture::H264Aac.path(),
        &nginx.url("live/pulled"),
        &dir.path().join("pub.log"),
    );
    assert!(publisher.wait(LIMIT).success(), "{}", publisher.log());
    player.wait(LIMIT);
    http_player.wait(LIMIT);
    let played = framemd5(&Fixture::H264Aac.judge(), &played);
    assert_contiguous_run(&Fixture::H264Aac.reference(), &played, 0.9);
    let played_http = framemd5(&Fixture::H264Aac.judge(), &played_http);
    assert_contiguous_run(&Fixture::H264Aac.reference(), &played_http, 0.9);
    // One pull for both players.
    assert_eq!(
        server.log().matches("pull connected").count(),
        1,
        "{}",
        server.log()
    );
    // The last player left: the pull stops after pull_idle_ms.
    wait_until(
        "the idle pull stopped",
        Duration::from_secs(10),
        || server.log(),
        |log| log.contains("pull stopped"),
    );
}

#[test]
fn pushes_over_rtmps_rtmpe_and_rtmpt_reach_a_second_rtmpx_bit_exact() {
    if !enabled("pushes_over_rtmps_rtmpe_and_rtmpt_reach_a_second_rtmpx_bit_exact") {
        return;
    }
    let dir = scratch("relay-push-variants");
    let target = RtmpxServer::start(&[]);
    let variants = ["rtmps", "rtmpe", "rtmpt"];
    let pushes: Vec<String> = variants
        .iter()
        .map(|scheme| {
            format!(
                "{:?}",
                target.variant_url(scheme, &format!("live/{{name}}-{scheme}"))
            )
        })
        .collect();
    let config = format!(
        "[app.live]\npush = [{}]\nrelay_insecure_tls = true\n",
        pushes.join(", ")
    );
    let origin = RtmpxServer::start_with_config(dir.path(), &config, &[]);
    let mut players = Vec::new();
    for scheme in variants {
        let played = dir.path().join(format!("played-{scheme}.flv"));
        let log = dir.path().join(format!("play-{scheme}.log"));
        let process = Player::Ffmpeg.spawn(&target.url(&format!("live/v-{scheme}")), &played, &log);
        players.push((scheme, played, process));
    }
    for scheme in variants {
        target.wait_for_players(&format!("live/v-{scheme}"), 1, LIMIT);
    }
    let mut publisher = Publisher::Ffmpeg.spawn(
        &Fixture::H264Aac.path(),
        &origin.url("live/v"),
        &dir.path().join("pub.log"),
    );
    assert!(publisher.wait(LIMIT).success(), "{}", publisher.log());
    for (scheme, played, mut process) in players {
        process.wait(LIMIT);
        let packets = framemd5(&Fixture::H264Aac.judge(), &played);
        assert!(
            !packets.is_empty(),
            "nothing arrived over {scheme}:\n{}",
            origin.log()
        );
        assert_contiguous_run(&Fixture::H264Aac.reference(), &packets, 0.9);
    }
    let log = target.log();
    for transport in [
        "transport=\"rtmps\"",
        "transport=\"rtmpe\"",
        "transport=\"rtmpt\"",
    ] {
        assert!(log.contains(transport), "no {transport} connection:\n{log}");
    }
}

#[test]
fn a_refusing_target_is_retried_with_backoff_and_its_key_never_logged() {
    if !enabled("a_refusing_target_is_retried_with_backoff_and_its_key_never_logged") {
        return;
    }
    let dir = scratch("relay-refused");
    let target_dir = scratch("relay-refused-target");
    let target = RtmpxServer::start_with_config(
        target_dir.path(),
        "[app.live]\ndeny_publish = [\"all\"]\n",
        &[],
    );
    let config = format!(
        "[app.live]\npush = [\"{}\"]\n",
        target.url("live/secretkey123")
    );
    let origin = RtmpxServer::start_with_config(dir.path(), &config, &[]);
    let _publisher = Publisher::Ffmpeg.spawn(
        &Fixture::H264Aac.path(),
        &origin.url("live/refused"),
        &dir.path().join("pub.log"),
    );
    wait_until(
        "two refused attempts",
        Duration::from_secs(10),
        || origin.log(),
        |log| log.matches("push failed").count() >= 2,
    );
    let log = origin.log();
    assert!(log.contains("NetStream.Publish.BadName"), "{log}");
    assert!(log.contains("live/se****"), "{log}");
    assert!(!log.contains("secretkey123"), "the key leaked:\n{log}");
    let relays = get(origin.api_address(), "/api/v1/relays").1;
    assert!(relays.contains("\"kind\":\"push\""), "{relays}");
    assert!(relays.contains("BadName"), "{relays}");
    assert!(!relays.contains("secretkey123"), "{relays}");
    let metrics = get(origin.api_address(), "/metrics").1;
    assert!(metrics.contains("rtmpx_relay_failures_total"), "{metrics}");
}

#[test]
fn a_target_down_then_up_gets_the_stream_and_a_killed_one_is_reconnected() {
    if !enabled("a_target_down_then_up_gets_the_stream_and_a_killed_one_is_reconnected") {
        return;
    }
    let dir = scratch("relay-down-up");
    let port = free_port();
    let config = format!("[app.live]\npush = [\"rtmp://127.0.0.1:{port}/live/{{name}}\"]\n");
    let origin = RtmpxServer::start_with_config(dir.path(), &config, &[]);
    // `rtmpx publish --loop`: the stream lives as long as the test needs.
    let mut command = std::process::Command::new(rtmpx_interop::server::binary());
    command
        .arg("publish")
        .arg(Fixture::H264Aac.path())
        .arg(origin.url("live/late"))
        .arg("--loop");
    let _publisher = rtmpx_interop::Background::spawn(
        "rtmpx publish",
        &mut command,
        &dir.path().join("pub.log"),
    );
    wait_until(
        "a failed attempt",
        Duration::from_secs(10),
        || origin.log(),
        |log| log.contains("push failed"),
    );
    let listen = format!("127.0.0.1:{port}");
    let target = RtmpxServer::start(&["--listen", &listen]);
    wait_until(
        "the push connected",
        Duration::from_secs(10),
        || origin.log(),
        |log| log.contains("push connected"),
    );
    wait_until(
        "the target got the publish",
        Duration::from_secs(5),
        || target.log(),
        |log| log.contains("stream=live/late"),
    );
    // The target is killed mid-stream and comes back: the push reconnects.
    drop(target);
    let target = RtmpxServer::start(&["--listen", &listen]);
    wait_until(
        "the push reconnected",
        Duration::from_secs(15),
        || origin.log(),
        |log| log.matches("push connected").count() >= 2,
    );
    wait_until(
        "the new target got the publish",
        Duration::from_secs(5),
        || target.log(),
        |log| log.contains("stream=live/late"),
    );
    let relays = get(origin.api_address(), "/api/v1/relays").1;
    assert!(relays.contains("\"reconnects\":1"), "{relays}");
}

/// 4 s of noisy lossless H.264 (about 58 Mbit/s) + AAC: enough to fill the kernel's buffers towards a
/// target that stopped reading, which a normal fixture never does.
fn heavy_fixture(dir: &Path) -> PathBuf {
    let path = dir.join("heavy.flv");
    let status = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=640x360:rate=30")
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", "4", "-vf", "noise=alls=10:allf=t", "-c:v", "libx264"])
        .args([
            "-preset",
            "ultrafast",
            "-qp",
            "0",
            "-g",
            "30",
            "-c:a",
            "aac",
            "-f",
            "flv",
        ])
        .arg(&path)
        .status()
        .unwrap_or_else(|e| panic!("ffmpeg: {e}"));
    assert!(status.success(), "the heavy fixture could not be made");
    path
}

#[test]
fn a_target_that_stops_reading_leaves_the_local_players_untouched() {
    if !enabled("a_target_that_stops_reading_leaves_the_local_players_untouched") {
        return;
    }
    let dir = scratch("relay-stalled");
    let fixture = heavy_fixture(dir.path());
    let target = RtmpxServer::start(&[]);
    let config = format!(
        "[app.live]\npush = [\"{}\"]\nrelay_timeout_ms = 1000\n",
        target.url("live/{name}")
    );
    let origin = RtmpxServer::start_with_config(dir.path(), &config, &[]);
    let played = dir.path().join("played.flv");
    let mut player = Player::Ffmpeg.spawn(
        &origin.url("live/stall"),
        &played,
        &dir.path().join("play.log"),
    );
    origin.wait_for_players("live/stall", 1, LIMIT);
    // The target stops reading from the start: its process is frozen once the push is in.
    let freeze = |signal: &str| {
        let _ = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(target.pid().to_string())
            .status();
    };
    let mut publisher = Publisher::Ffmpeg.spawn(
        &fixture,
        &origin.url("live/stall"),
        &dir.path().join("pub.log"),
    );
    wait_until(
        "the push connected",
        Duration::from_secs(10),
        || origin.log(),
        |log| log.contains("push connected"),
    );
    freeze("STOP");
    assert!(publisher.wait(LIMIT).success(), "{}", publisher.log());
    player.wait(LIMIT);
    let rss = peak_rss_kib(origin.pid());
    freeze("CONT");
    let reference = framemd5(Path::new("ffmpeg"), &fixture);
    let packets = framemd5(Path::new("ffmpeg"), &played);
    assert_contiguous_run(&reference, &packets, 0.9);
    let log = origin.log();
    assert!(log.contains("the target took nothing"), "{log}");
    assert!(rss < 256 * 1024, "peak RSS {rss} KiB");
}

#[test]
fn a_pull_upstream_that_never_answers_fails_its_player_within_a_bound() {
    if !enabled("a_pull_upstream_that_never_answers_fails_its_player_within_a_bound") {
        return;
    }
    let dir = scratch("relay-silent-upstream");
    // Connections are completed by the kernel and never answered.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let address = silent.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let config =
        format!("[app.live]\npull = \"rtmp://{address}/live/{{name}}\"\nrelay_timeout_ms = 1000\n");
    let server = RtmpxServer::start_with_config(dir.path(), &config, &[]);
    let started = Instant::now();
    let mut player = Player::Ffmpeg.spawn(
        &server.url("live/nowhere"),
        &dir.path().join("played.flv"),
        &dir.path().join("play.log"),
    );
    let status = player.wait(Duration::from_secs(15));
    assert!(!status.success(), "the player should fail");
    assert!(started.elapsed() < Duration::from_secs(10));
    let log = player.log();
    assert!(
        log.contains("pull from"),
        "player log:\n{log}\nserver:\n{}",
        server.log()
    );
    let upstream_key = format!("{address}/live/nowhere");
    assert!(!log.contains(&upstream_key), "the key leaked: {log}");
    drop(silent);
}

#[test]
fn an_hevc_stream_is_pushed_with_its_enhanced_rtmp_codecs_and_plays_bit_exact() {
    if !enabled("an_hevc_stream_is_pushed_with_its_enhanced_rtmp_codecs_and_plays_bit_exact") {
        return;
    }
    let dir = scratch("relay-push-hevc");
    let target = RtmpxServer::start(&[]);
    let config = format!("[app.live]\npush = [\"{}\"]\n", target.url("live/{name}"));
    let origin = RtmpxServer::start_with_config(dir.path(), &config, &[]);
    let played = dir.path().join("played.flv");
    let mut player = Player::Ffmpeg9Enhanced.spawn(
        &target.url("live/hevc"),
        &played,
        &dir.path().join("play.log"),
    );
    target.wait_for_players("live/hevc", 1, LIMIT);
    let mut publisher = Publisher::Ffmpeg9Enhanced.spawn(
        &Fixture::HevcAac.path(),
        &origin.url("live/hevc"),
        &dir.path().join("pub.log"),
    );
    assert!(publisher.wait(LIMIT).success(), "{}", publisher.log());
    player.wait(LIMIT);
    let packets = framemd5(&Fixture::HevcAac.judge(), &played);
    assert_contiguous_run(&Fixture::HevcAac.reference(), &packets, 0.9);
}
