//! The API against real clients: FFmpeg publishes H.264/AAC (and FFmpeg 9 HEVC/AAC) while FFmpeg players
//! play over RTMP, RTMPS, RTMPT and RTMPE (FFmpeg 9); each shows in `/api/v1/clients` with its variant, the
//! streams show their publisher, codecs, frame rate, audio and bitrate, `/metrics` counts them, 1,000
//! API requests leave 200 `rtmpx bench` players playing, and a kick ends one FFmpeg player.

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use rtmpx_interop::http::request;
use rtmpx_interop::{
    enabled, fixtures, free_port, scratch, server, wait_for, Background, Player, RtmpxServer, Via,
};

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn ffmpeg_clients_of_every_variant_show_in_the_api_and_a_kick_ends_one() {
    let name = "ffmpeg_clients_of_every_variant_show_in_the_api_and_a_kick_ends_one";
    if !enabled(name) {
        return;
    }
    let dir = scratch(name);
    let server = RtmpxServer::start(&[]);
    let api = server.api_address();
    let path = "live/api";
    let mut players: Vec<(&str, Background)> = [
        ("rtmp", Player::Ffmpeg, Via::Rtmp),
        ("rtmps", Player::Ffmpeg, Via::Rtmps),
        ("rtmpt", Player::Ffmpeg, Via::Rtmpt),
        ("rtmpe", Player::Ffmpeg9, Via::Rtmpe),
    ]
    .into_iter()
    .enumerate()
    .map(|(index, (variant, player, via))| {
        let out = dir.path().join(format!("player{index}.flv"));
        let log = dir.path().join(format!("player{index}.log"));
        (variant, player.spawn(&via.url(&server, path), &out, &log))
    })
    .collect();
    server.wait_for_players(path, players.len(), LIMIT);
    let mut publish = Command::new("ffmpeg");
    publish
        .args(["-loglevel", "warning", "-re", "-stream_loop", "-1", "-i"])
        .arg(fixtures::h264_aac())
        .args(["-c", "copy", "-f", "flv"])
        .arg(server.url(path));
    let _publisher = Background::spawn(
        "ffmpeg publisher",
        &mut publish,
        &dir.path().join("publisher.log"),
    );

    let clients = wait_for("every client listed", LIMIT, || {
        let (status, body) = request(api, "GET", "/api/v1/clients");
        assert_eq!(status, 200, "{body}");
        let listed: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        let clients = listed["clients"].as_array().cloned().unwrap_or_default();
        let has = |variant: &str, role: &str| {
            clients.iter().any(|c| {
                c["variant"] == variant
                    && c["role"] == role
                    && c["app"] == "live"
                    && c["stream"] == "api"
            })
        };
        let everyone = ["rtmp", "rtmps", "rtmpt", "rtmpe"]
            .iter()
            .all(|variant| has(variant, "player"))
            && has("rtmp", "publisher");
        if everyone {
            Ok(body)
        } else {
            Err(body)
        }
    });
    let stream = wait_for("published frames counted", LIMIT, || {
        let (status, stream) = request(api, "GET", "/api/v1/streams/live/api");
        assert_eq!(status, 200, "{stream}");
        let detail: serde_json::Value =
            serde_json::from_str(&stream).unwrap_or_else(|e| panic!("{e}: {stream}"));
        if detail["frames"].as_u64() > Some(0) {
            Ok(stream)
        } else {
            Err(stream)
        }
    });
    assert!(
        stream.contains(r#""players":{"rtmp":1,"rtmpe":1,"rtmps":1,"rtmpt":1}"#),
        "{stream}"
    );
    let detail: serde_json::Value =
        serde_json::from_str(&stream).unwrap_or_else(|e| panic!("{e}: {stream}"));
    assert!(
        detail["publisher"]["flash_ver"]
            .as_str()
            .is_some_and(|v| v.contains("Lavf")),
        "{stream}"
    );
    assert_eq!(detail["publisher"]["variant"], "rtmp", "{stream}");
    assert!(detail["publisher"]["id"].as_u64().is_some(), "{stream}");
    assert!(detail["publisher"]["since"].as_u64() > Some(0), "{stream}");
    assert!(
        detail["publisher"]["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{stream}"
    );
    assert_eq!(detail["video"]["codec"], "avc1", "{stream}");
    // Read from the SPS of the 640x360 fixture (libx264's default profile for it: High).
    assert_eq!(detail["video"]["width"], 640, "{stream}");
    assert_eq!(detail["video"]["height"], 360, "{stream}");
    assert_eq!(detail["video"]["profile"], "High", "{stream}");
    assert!(detail["video"]["level"].is_string(), "{stream}");
    assert_eq!(detail["audio"]["codec"], "mp4a", "{stream}");
    assert_eq!(detail["audio"]["sample_rate"], 44_100, "{stream}");
    assert!(detail["audio"]["channels"].as_u64().is_some(), "{stream}");
    assert!(detail["gop_cache_bytes"].as_u64() > Some(0), "{stream}");
    // The fixture is 30 frames a second, published in real time (-re).
    let measured = wait_for("frame rate and bitrate measured", LIMIT, || {
        let (_, stream) = request(api, "GET", "/api/v1/streams/live/api");
        let detail: serde_json::Value = serde_json::from_str(&stream).unwrap_or_default();
        let rate = detail["video"]["frame_rate"].as_f64().unwrap_or(0.0);
        let bitrate = detail["bitrate_in"].as_u64().unwrap_or(0);
        if (25.0..=35.0).contains(&rate) && bitrate > 10_000 {
            Ok(stream)
        } else {
            Err(stream)
        }
    });
    let detail: serde_json::Value =
        serde_json::from_str(&measured).unwrap_or_else(|e| panic!("{e}: {measured}"));
    assert!(detail["dropped_frames"].as_u64().is_some(), "{measured}");

    // HEVC from FFmpeg 9: the Enhanced RTMP FourCC.
    let mut hevc = Command::new(fixtures::ffmpeg9());
    hevc.args(["-loglevel", "warning", "-re", "-stream_loop", "-1", "-i"])
        .arg(fixtures::hevc_aac())
        .args(["-c", "copy", "-f", "flv"])
        .arg(server.url("live/hevc"));
    let _hevc = Background::spawn(
        "ffmpeg 9 HEVC publisher",
        &mut hevc,
        &dir.path().join("hevc.log"),
    );
    wait_for("the HEVC stream described", LIMIT, || {
        let (_, stream) = request(api, "GET", "/api/v1/streams/live/hevc");
        let detail: serde_json::Value = serde_json::from_str(&stream).unwrap_or_default();
        if detail["video"]["codec"] == "hvc1"
            && detail["audio"]["codec"] == "mp4a"
            && detail["video"]["width"] == 320
            && detail["video"]["height"] == 240
        {
            Ok(stream)
        } else {
            Err(stream)
        }
    });
    let (_, metrics) = request(api, "GET", "/metrics");
    assert!(
        metrics.contains(r#"rtmpx_players{variant="rtmps"} 1"#),
        "{metrics}"
    );
    // live/api and live/hevc.
    assert!(metrics.contains("rtmpx_streams 2"), "{metrics}");

    // A thousand API requests while 200 `rtmpx bench` players play: answered, and no player stalls.
    let bench_report = dir.path().join("bench.json");
    let mut bench = Command::new(server::binary());
    bench
        .args(["bench", &server.url("live/many"), "--players", "200"])
        .args(["--ramp", "100", "--duration", "12", "--publish"])
        .arg(fixtures::h264_aac())
        .arg("--json")
        .arg(&bench_report);
    let mut bench = Background::spawn("rtmpx bench", &mut bench, &dir.path().join("bench.log"));
    wait_for("200 bench players listed", LIMIT, || {
        let (_, body) = request(api, "GET", "/api/v1/streams/live/many");
        let detail: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if detail["players"]["rtmp"].as_u64() == Some(200) {
            Ok(body)
        } else {
            Err(body)
        }
    });
    let sent_to_players = || {
        let (_, body) = request(api, "GET", "/api/v1/clients");
        let listed: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        listed["clients"].as_array().map_or(0, |clients| {
            clients
                .iter()
                .filter(|c| c["role"] == "player")
                .filter_map(|c| c["bytes_out"].as_u64())
                .sum::<u64>()
        })
    };
    let before = sent_to_players();
    let started = Instant::now();
    for index in 0..1000 {
        let path = [
            "/api/v1/clients",
            "/api/v1/streams",
            "/metrics",
            "/api/v1/server",
        ][index % 4];
        assert_eq!(request(api, "GET", path).0, 200, "{path}");
    }
    assert!(
        started.elapsed() < LIMIT,
        "1,000 requests took {:?}",
        started.elapsed()
    );
    let after = sent_to_players();
    assert!(
        after > before,
        "players received nothing during the requests: {before} -> {after}"
    );
    bench.wait(Duration::from_secs(60));
    let report = std::fs::read_to_string(&bench_report)
        .unwrap_or_else(|e| panic!("no bench report: {e}\n{}", bench.log()));
    let report: serde_json::Value =
        serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}"));
    assert_eq!(report["playing"], 200, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["stalls"], 0, "a player stalled: {report}");

    // Kick the plain RTMP player: its FFmpeg ends.
    let listed: serde_json::Value =
        serde_json::from_str(&clients).unwrap_or_else(|e| panic!("{e}: {clients}"));
    let id = listed["clients"]
        .as_array()
        .and_then(|clients| {
            clients
                .iter()
                .find(|c| c["variant"] == "rtmp" && c["role"] == "player")
        })
        .and_then(|c| c["id"].as_u64())
        .unwrap_or_else(|| panic!("no rtmp player in {clients}"));
    let (status, body) = request(api, "DELETE", &format!("/api/v1/clients/{id}"));
    assert_eq!(status, 200, "{body}");
    let (_, mut rtmp_player) = players.remove(0);
    rtmp_player.wait(LIMIT);
    wait_for("the kick logged", LIMIT, || {
        let log = server.log();
        if log.contains("reason=closed through the API") {
            Ok(log)
        } else {
            Err(log)
        }
    });
}

/// `/metrics` passes `promtool check metrics`, and a real Prometheus scraping it every second answers a
/// query for the player count.
#[test]
fn prometheus_scrapes_the_player_count() {
    let name = "prometheus_scrapes_the_player_count";
    if !enabled(name) {
        return;
    }
    for tool in ["prometheus", "promtool"] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok(),
            "{tool} is missing: `cargo xtask ci` installs it (Debian package prometheus)"
        );
    }
    let dir = scratch(name);
    let server = RtmpxServer::start(&[]);
    let api = server.api_address();
    let path = "live/prom";
    let _player = Player::Ffmpeg.spawn(
        &server.url(path),
        &dir.path().join("player.flv"),
        &dir.path().join("player.log"),
    );
    server.wait_for_players(path, 1, LIMIT);

    let (status, metrics) = request(api, "GET", "/metrics");
    assert_eq!(status, 200, "{metrics}");
    let metrics_file = dir.path().join("metrics.txt");
    std::fs::write(&metrics_file, &metrics).unwrap_or_else(|e| panic!("{e}"));
    let checked = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "promtool check metrics < {}",
            metrics_file.display()
        ))
        .output()
        .unwrap_or_else(|e| panic!("promtool: {e}"));
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}\n{metrics}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let web = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: rtmpx\n    \
             static_configs:\n      - targets: [\"{api}\"]\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut prometheus = Command::new("prometheus");
    prometheus
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={web}"));
    let _prometheus = Background::spawn(
        "prometheus",
        &mut prometheus,
        &dir.path().join("prometheus.log"),
    );
    wait_for(
        "Prometheus to see one player",
        Duration::from_secs(15),
        || {
            let answer = TcpStream::connect(web)
                .map(|_| request(web, "GET", "/api/v1/query?query=sum(rtmpx_players)"));
            match answer {
                Ok((200, body)) if body.contains(r#""1"]"#) => Ok(body),
                Ok((status, body)) => Err(format!("{status} {body}")),
                Err(error) => Err(error.to_string()),
            }
        },
    );
}
