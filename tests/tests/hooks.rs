//! HTTP hooks against real FFmpeg: a hook server in the test process (a small HTTP/1.1 responder on
//! 127.0.0.1:0) allows one application and denies another; FFmpeg's publish to the allowed one plays
//! bit-exact with the fields nginx-rtmp sends, and its publish to the denied one fails fast.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtmpx_interop::fixtures;
use rtmpx_interop::{enabled, scratch, Fixture, Player, Publisher, RtmpxServer, Scenario, Via};

type Received = Arc<Mutex<Vec<String>>>;

/// Answers `/allow` with 200 and anything else with 403; records every body.
fn start_hook_server() -> (SocketAddr, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let received: Received = Arc::default();
    let record = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            record
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).into_owned());
            let status = if request_line.starts_with("POST /allow") {
                "200 OK"
            } else {
                "403 Forbidden"
            };
            let _ = reader.get_mut().write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    (address, received)
}

fn write_config(dir: &std::path::Path, hooks: SocketAddr) -> PathBuf {
    let text = format!(
        "[app.hooked]\non_publish = \"http://{hooks}/allow\"\non_play = \"http://{hooks}/allow\"\n\
         [app.denied]\non_publish = \"http://{hooks}/deny\"\n"
    );
    rtmpx_interop::write_config(dir, &text)
}

#[test]
fn ffmpeg_publishes_through_an_allowing_hook_and_plays_bit_exact() {
    if !enabled("ffmpeg_publishes_through_an_allowing_hook_and_plays_bit_exact") {
        return;
    }
    let dir = scratch("hooks_allow");
    let (hooks, received) = start_hook_server();
    let config = write_config(dir.path(), hooks);
    Scenario::new("ffmpeg_publishes_through_an_allowing_hook_and_plays_bit_exact")
        .server_args(&["--config", config.to_str().expect("utf-8 path")])
        .stream(
            "hooked/stream",
            Fixture::H264Aac,
            Publisher::Ffmpeg,
            Via::Rtmp,
        )
        .play(Player::Ffmpeg.via(Via::Rtmp))
        .server_log("hook")
        .run();
    let bodies = received.lock().unwrap().clone();
    let publish = bodies
        .iter()
        .find(|b| b.contains("call=publish"))
        .unwrap_or_else(|| panic!("no on_publish call in {bodies:?}"));
    for field in [
        "app=hooked",
        "name=stream",
        "type=live",
        "addr=127.0.0.1",
        "variant=rtmp",
        "clientid=",
    ] {
        assert!(publish.contains(field), "{field} missing in {publish}");
    }
    assert!(bodies.iter().any(|b| b.contains("call=play")), "{bodies:?}");
}

#[test]
fn ffmpeg_publish_fails_fast_when_the_hook_denies() {
    if !enabled("ffmpeg_publish_fails_fast_when_the_hook_denies") {
        return;
    }
    let dir = scratch("hooks_deny");
    let (hooks, _received) = start_hook_server();
    let config = write_config(dir.path(), hooks);
    let server = RtmpxServer::start(&["--config", config.to_str().expect("utf-8 path")]);
    let started = Instant::now();
    let mut publisher = Publisher::Ffmpeg.spawn(
        &fixtures::h264_aac(),
        &server.url("denied/stream"),
        &dir.path().join("publisher.log"),
    );
    let status = publisher.wait(Duration::from_secs(15));
    assert!(!status.success(), "FFmpeg published through a denying hook");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refusal took {:?}",
        started.elapsed()
    );
    assert!(
        server.log().contains("refused by on_publish (HTTP 403)"),
        "{}",
        server.log()
    );
}
