//! Files played over HTTP-FLV by the server in this process (`/vod/NAME.flv` in an application with
//! `vod_path`): the file when nobody publishes the name, the live stream when someone does, `?start=` and
//! `?duration=`, names that would leave `vod_path` refused with 404, HEAD closed as complete, and a file
//! over WS-FLV.

mod support;

use support::{exchange_head_body, get, status};

use std::time::{Duration, Instant};

use bytes::Bytes;
use rtmp_chunk::Message;
use rtmp_flv::{FlvHeader, Tag, TagReader, TagWriter, TAG_VIDEO};
use rtmp_hub::StreamKey;
use rtmpx::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A 3 s FLV file: a video frame every 100 ms, a keyframe every 500 ms.
fn flv_file() -> Vec<u8> {
    let mut writer = TagWriter::new();
    let mut file = writer.file_header(FlvHeader::default()).to_vec();
    for timestamp in (0..3000).step_by(100) {
        let key = if timestamp % 500 == 0 { 0x17 } else { 0x27 };
        let tag = Tag {
            tag_type: TAG_VIDEO,
            timestamp,
            payload: Bytes::copy_from_slice(&[key, 1, 0, 0, 0, timestamp as u8]),
        };
        file.extend_from_slice(&writer.tag(&tag).unwrap());
    }
    file
}

async fn server(dir: &std::path::Path) -> Server {
    let media = dir.join("media");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::write(media.join("clip.flv"), flv_file()).unwrap();
    std::fs::write(dir.join("secret.flv"), flv_file()).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.join("secret.flv"), media.join("out.flv")).unwrap();
    let text = format!(
        "[vod]\nvod_path = {:?}\nhttp_flv_wait_ms = 300\n",
        media.display().to_string()
    );
    let config = Config {
        app: toml::from_str(&text).unwrap(),
        ..Config::default()
    };
    support::start(config, true, false).await
}

/// The timestamps of the video tags of an FLV body.
fn video_timestamps(body: &[u8]) -> Vec<u32> {
    let mut reader = TagReader::default();
    reader.push(body);
    let mut timestamps = Vec::new();
    while let Some(tag) = reader.next_tag().unwrap() {
        if tag.tag_type == TAG_VIDEO {
            timestamps.push(tag.timestamp);
        }
    }
    reader.finish().unwrap();
    timestamps
}

#[tokio::test]
async fn a_file_plays_whole_or_from_start_for_duration_paced_and_registered() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let http = server.local_addresses()[1];

    let started = Instant::now();
    let whole = tokio::spawn(async move { exchange_head_body(http, &get("/vod/clip.flv")).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let clients = server.clients().list();
    let player = clients.iter().find(|c| c.variant == "http-flv");
    let player = player.unwrap_or_else(|| panic!("the player is a client: {clients:?}"));
    assert_eq!(
        (player.app.as_str(), player.stream.as_str()),
        ("vod", "clip")
    );
    let (head, body) = whole.await.unwrap();
    assert_eq!(status(&head), 200, "{head}");
    assert!(head.contains("video/x-flv"), "{head}");
    assert_eq!(body, flv_file(), "the file, byte for byte");
    // Paced: the last tag (2.9 s) goes out 2 s (the read-ahead) before its time.
    assert!(
        started.elapsed() >= Duration::from_millis(850),
        "{:?}",
        started.elapsed()
    );

    // From the keyframe at or before 1200 ms, to 1200 + 1000 ms of media (within the read-ahead).
    let started = Instant::now();
    let (head, body) =
        exchange_head_body(http, &get("/vod/clip.flv?start=1200&duration=1000")).await;
    assert_eq!(status(&head), 200, "{head}");
    assert_eq!(
        video_timestamps(&body),
        (1000..=2200).step_by(100).collect::<Vec<_>>()
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    let counters = &server.clients().counters;
    assert!(counters.ended("complete") >= 2, "{counters:?}");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_live_stream_of_the_name_wins_unless_a_start_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let http = server.local_addresses()[1];
    let publisher = server
        .hub()
        .publish(&StreamKey::new("vod", "clip"), Instant::now())
        .unwrap();
    let keyframe = Message {
        timestamp: 77_000,
        type_id: 9,
        stream_id: 1,
        payload: Bytes::from_static(&[0x17, 1, 0, 0, 0, 9]),
    };
    publisher.send(&keyframe, Instant::now());

    let live = tokio::spawn(async move { exchange_head_body(http, &get("/vod/clip.flv")).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (head, body) = exchange_head_body(http, &get("/vod/clip.flv?start=2500")).await;
    assert_eq!(status(&head), 200, "{head}");
    assert_eq!(
        video_timestamps(&body),
        (2500..3000).step_by(100).collect::<Vec<_>>()
    );
    drop(publisher);
    let (head, body) = live.await.unwrap();
    assert_eq!(status(&head), 200, "{head}");
    assert_eq!(video_timestamps(&body), [77_000], "the live stream");

    // Nobody publishes it and there is no file: the live stream is waited for, then 404.
    let (head, body) = exchange_head_body(http, &get("/vod/nothing.flv")).await;
    assert_eq!(status(&head), 404, "{head}");
    assert!(String::from_utf8_lossy(&body).contains("has no file"));
    // With a start, only a file will do: 404 at once.
    let (head, body) = exchange_head_body(http, &get("/vod/nothing.flv?start=0")).await;
    assert_eq!(status(&head), 404, "{head}");
    assert!(String::from_utf8_lossy(&body).contains("no file"));
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn names_that_leave_vod_path_are_not_found_and_head_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let http = server.local_addresses()[1];
    for (path, why) in [
        ("/vod/..%2Fsecret.flv", "path separator"),
        ("/vod/%2E%2E.flv", "\"..\""),
        ("/vod/%2Fetc%2Fpasswd.flv", "path separator"),
        #[cfg(unix)]
        ("/vod/out.flv", "resolves outside"),
    ] {
        let (head, body) = exchange_head_body(http, &get(path)).await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status(&head), 404, "{path}: {head}");
        assert!(body.contains(why), "{path}: {body}");
    }

    let (head, body) = exchange_head_body(http, &get("/vod/clip.flv?start=soon")).await;
    assert_eq!(status(&head), 400, "{head}");
    assert!(String::from_utf8_lossy(&body).contains("not a number of milliseconds"));

    let (head, body) = exchange_head_body(http, "HEAD /vod/clip.flv HTTP/1.0\r\n\r\n").await;
    assert_eq!(status(&head), 200, "{head}");
    assert!(body.is_empty());
    let (head, _) = exchange_head_body(http, "HEAD /vod/nothing.flv HTTP/1.0\r\n\r\n").await;
    assert_eq!(status(&head), 404, "{head}");
    let counters = &server.clients().counters;
    assert_eq!(counters.ended("complete"), 1, "{counters:?}");
    assert_eq!(counters.ended("peer_closed"), 0, "{counters:?}");
    server.shutdown(Duration::from_secs(1)).await;
}

/// Reads a WebSocket answer's frames (unmasked, from the server) until its close: the binary payloads.
fn websocket_payloads(mut bytes: &[u8]) -> (Vec<u8>, bool) {
    let mut payloads = Vec::new();
    while bytes.len() >= 2 {
        let opcode = bytes[0] & 0x0f;
        let (len, header) = match bytes[1] & 0x7f {
            126 if bytes.len() >= 4 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 if bytes.len() >= 10 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => break,
            len => (len as usize, 2),
        };
        // A frame not wholly read yet.
        let Some(payload) = bytes.get(header..header + len) else {
            break;
        };
        match opcode {
            2 => payloads.extend_from_slice(payload),
            8 => return (payloads, true),
            _ => {}
        }
        bytes = &bytes[header + len..];
    }
    (payloads, false)
}

#[tokio::test]
async fn a_file_plays_over_ws_flv_and_the_socket_closes_at_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let http = server.local_addresses()[1];
    let upgrade =
        "GET /vod/clip.flv?start=2000 HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
                   Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let mut socket = TcpStream::connect(http).await.unwrap();
    socket.write_all(upgrade.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let read = socket.read(&mut buffer).await.unwrap();
            if read == 0 {
                return false;
            }
            answer.extend_from_slice(&buffer[..read]);
            let split = answer.windows(4).position(|w| w == b"\r\n\r\n");
            if let Some(at) = split {
                if websocket_payloads(&answer[at + 4..]).1 {
                    return true;
                }
            }
        }
    })
    .await
    .expect("the file ends within its length");
    assert!(closed, "a close frame at the end");
    let at = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 101"));
    let (flv, _) = websocket_payloads(&answer[at + 4..]);
    assert_eq!(&flv[..3], b"FLV");
    assert_eq!(
        video_timestamps(&flv),
        (2000..3000).step_by(100).collect::<Vec<_>>()
    );
    server.shutdown(Duration::from_secs(1)).await;
}
