//! The browser outputs, on one server: FFmpeg publishes a looping stream over RTMP; a small WebSocket
//! client reads `ws://HOST/APP/NAME.flv` and checks the FLV it gets (header, metadata, sequence headers, a
//! keyframe first, then live tags); headless Chromium plays the built-in page with mpegts.js over HTTP-FLV
//! and over WS-FLV, and with hls.js (`lowLatencyMode`) over LL-HLS: its decoded frames and `currentTime`
//! must advance, and hls.js's measured latency stay under 2 s. Then FFmpeg 9 publishes AV1 + AAC over
//! Enhanced RTMP, and Chromium plays it with hls.js over LL-HLS. (Debian's Chromium decodes H.264, AAC,
//! AV1 and Opus, not HEVC. mpegts.js 1.8.2 stops AV1 over Enhanced FLV at the second keyframe, in its
//! own AV1 frame-header parser: docs/http-flv.md.)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use rtmp_flv::{TagReader, TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO};
use rtmpx_interop::browser;
use rtmpx_interop::{enabled, scratch, Background, Fixture, RtmpxServer};

/// `fixture` published in a loop, in real time, until dropped: H.264 by Debian's FFmpeg
/// (`-stream_loop`), E-RTMP codecs by FFmpeg 9 announcing them. FFmpeg 9 cannot rewind its own enhanced
/// FLV for `-stream_loop` (the input ends with EPERM), so that file is played 20 times through the
/// concat demuxer instead (a minute of media).
fn looping_publisher(
    server: &RtmpxServer,
    fixture: Fixture,
    path: &str,
    log: &std::path::Path,
) -> Background {
    let mut command = match fixture {
        Fixture::H264Aac => {
            let mut command = Command::new("ffmpeg");
            command
                .args(["-loglevel", "warning", "-re", "-stream_loop", "-1", "-i"])
                .arg(fixture.path());
            command
        }
        _ => {
            let list = log.with_extension("concat.txt");
            let entry = format!("file '{}'\n", fixture.path().display());
            std::fs::write(&list, entry.repeat(20))
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", list.display()));
            let mut command = Command::new(fixture.judge());
            command
                .args([
                    "-loglevel",
                    "warning",
                    "-re",
                    "-f",
                    "concat",
                    "-safe",
                    "0",
                    "-i",
                ])
                .arg(&list)
                .args(["-rtmp_enhanced_codecs", "hvc1,av01"]);
            command
        }
    };
    command
        .args(["-c", "copy", "-f", "flv"])
        .arg(server.url(path));
    Background::spawn("ffmpeg publisher", &mut command, log)
}

/// Waits until the LL-HLS playlist of `path` is served (the stream is published and segmented), so that
/// the player does not start on a 404.
fn wait_for_playlist(address: SocketAddr, path: &str, publisher_log: &std::path::Path) {
    let request =
        format!("GET /{path}/index.m3u8 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let started = Instant::now();
    loop {
        let mut answer = String::new();
        if let Ok(mut socket) = TcpStream::connect(address) {
            let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
            if socket.write_all(request.as_bytes()).is_ok() {
                let _ = socket.read_to_string(&mut answer);
            }
        }
        if answer.starts_with("HTTP/1.1 200") {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no playlist for {path}: {answer}\npublisher: {}",
            std::fs::read_to_string(publisher_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Reads WS-FLV from `address` for `duration`: the tags, after checking the FLV header.
fn read_ws_flv(address: SocketAddr, path: &str, duration: Duration) -> Vec<rtmp_flv::Tag> {
    let url = format!("ws://{address}/{path}.flv");
    let (mut socket, response) =
        tungstenite::connect(&url).unwrap_or_else(|e| panic!("WebSocket to {url}: {e}"));
    assert_eq!(response.status(), 101);
    let mut bytes = Vec::new();
    let started = Instant::now();
    while started.elapsed() < duration {
        match socket.read() {
            Ok(tungstenite::Message::Binary(data)) => bytes.extend_from_slice(&data),
            Ok(tungstenite::Message::Close(_)) => break,
            Ok(_) => {}
            Err(error) => panic!("WS-FLV read failed: {error}"),
        }
    }
    let _ = socket.close(None);
    assert!(bytes.len() > 13, "no FLV received");
    assert_eq!(&bytes[..3], b"FLV", "the FLV header");
    assert_eq!(bytes[4], 0x05, "audio and video flags");
    let mut reader = TagReader::default();
    reader.push(&bytes);
    let mut tags = Vec::new();
    while let Some(tag) = reader.next_tag().unwrap_or_else(|e| panic!("bad FLV: {e}")) {
        tags.push(tag);
    }
    tags
}

#[test]
fn chromium_plays_http_flv_ws_flv_and_ll_hls() {
    let name = "chromium_plays_http_flv_ws_flv_and_ll_hls";
    if !enabled(name) {
        return;
    }
    browser::require();
    let dir = scratch(name);
    let config = dir.path().join("rtmpx.toml");
    std::fs::write(&config, "[app.live]\nhls = true\n")
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", config.display()));
    let server = RtmpxServer::start(&["--config", &config.display().to_string()]);
    let publisher = looping_publisher(
        &server,
        Fixture::H264Aac,
        "live/page",
        &dir.path().join("publisher.log"),
    );

    let tags = read_ws_flv(server.http_address, "live/page", Duration::from_secs(3));
    assert_eq!(tags[0].tag_type, TAG_SCRIPT, "onMetaData first");
    let first_frame = tags
        .iter()
        .position(|t| t.tag_type == TAG_VIDEO && !t.is_sequence_header())
        .unwrap_or_else(|| panic!("no video frame in {} tags", tags.len()));
    assert!(
        tags[first_frame].is_keyframe(),
        "video starts on a keyframe"
    );
    let headers = &tags[..first_frame];
    assert!(headers
        .iter()
        .any(|t| t.tag_type == TAG_VIDEO && t.is_sequence_header()));
    assert!(headers
        .iter()
        .any(|t| t.tag_type == TAG_AUDIO && t.is_sequence_header()));
    let video: Vec<u32> = tags
        .iter()
        .filter(|t| t.tag_type == TAG_VIDEO)
        .map(|t| t.timestamp)
        .collect();
    assert!(
        video.last().copied().unwrap_or(0) >= video[0] + 1500,
        "live tags keep coming: {video:?}"
    );

    // HTTP-FLV from another listener than the page's (the shared port serves the page): the player's
    // connection is a fresh one whose first request is the play, so the server takes it from hyper and
    // writes it from the stream's flushes. WS-FLV beside the page, through hyper's upgrade.
    let flv_page = format!(
        "http://{}/?stream=live/page&via=flv&server=http://{}",
        server.address, server.http_address
    );
    let ws_page = format!("http://{}/?stream=live/page&via=ws", server.http_address);
    for url in [flv_page, ws_page] {
        let watched = browser::watch(&url, 8);
        watched.assert_played(4.0);
    }

    // LL-HLS: hls.js in low-latency mode, blocking reloads and parts.
    let url = format!("http://{}/?stream=live/page&via=hls", server.http_address);
    let watched = browser::watch(&url, 10);
    watched.assert_played(4.0);
    // Once playing has settled (2 s after the first frame), hls.js's own measure of how far behind
    // the live edge it plays stays under 2 s.
    let first = watched
        .samples
        .iter()
        .find(|s| s.decoded_frames > 0)
        .map_or(0, |s| s.t_ms);
    let settled: Vec<f64> = watched
        .samples
        .iter()
        .filter(|s| s.t_ms >= first + 2000)
        .map(|s| s.latency)
        .collect();
    assert!(
        !settled.is_empty(),
        "no settled samples: {:?}",
        watched.samples
    );
    let worst = settled.iter().copied().fold(0.0, f64::max);
    assert!(
        worst < 2.0,
        "hls.js latency {worst:.2} s (samples {:?})\nbrowser: {}",
        watched.samples,
        watched.browser_log
    );
    drop(publisher);

    // AV1 + AAC from FFmpeg 9 over Enhanced RTMP: hls.js over LL-HLS (fMP4 `av01`).
    let _av1 = looping_publisher(
        &server,
        Fixture::Av1Aac,
        "live/av1",
        &dir.path().join("publisher-av1.log"),
    );
    wait_for_playlist(
        server.http_address,
        "live/av1",
        &dir.path().join("publisher-av1.log"),
    );
    let url = format!("http://{}/?stream=live/av1&via=hls", server.http_address);
    let watched = browser::watch(&url, 8);
    watched.assert_played(4.0);
    assert_eq!(
        watched.samples.last().map(|s| (s.width, s.height)),
        Some((320, 240)),
        "the AV1 picture"
    );

    let log = server.log();
    assert!(log.contains("variant=\"ws-flv\""), "{log}");
    assert!(log.contains("variant=\"http-flv\""), "{log}");
    assert!(log.contains("variant=\"hls\""), "{log}");
}
