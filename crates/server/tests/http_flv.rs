//! HTTP-FLV served by the server in this process, a stream published straight into its hub: what a
//! player gets (header, metadata, sequence headers, GOP, live tags, the end at unpublish), and the
//! answers to bad requests: refused by policy, unknown streams after the wait, paths with `..`, huge
//! heads, half requests by the hundred, and a reader that never reads.

mod support;

use support::{exchange_head_body, get, status};

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtmp_chunk::Message;
use rtmp_flv::{TagReader, TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO};
use rtmp_hub::StreamKey;
use rtmpx::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(apps: &str) -> Server {
    let config = Config {
        handshake_timeout_ms: 1000,
        idle_timeout_ms: 1500,
        app: toml::from_str(apps).unwrap(),
        ..Config::default()
    };
    support::start(config, true, false).await
}

const APPS: &str = "[\"*\"]\nhttp_flv_wait_ms = 300\n[private]\ndeny_play = [\"127.0.0.1\"]\n\
                    [signed]\nsecret = \"k\"\n[cors]\nhttp_cors_origin = \"https://example.org\"\n";

fn message(type_id: u8, timestamp: u32, payload: Vec<u8>) -> Message {
    Message {
        timestamp,
        type_id,
        stream_id: 1,
        payload: Bytes::from(payload),
    }
}

fn metadata() -> Message {
    let payload = rtmp_amf::encode_amf0_values(&[
        rtmp_amf::Amf0Value::String("onMetaData".into()),
        rtmp_amf::Amf0Value::EcmaArray(vec![
            ("videocodecid".into(), rtmp_amf::Amf0Value::Number(7.0)),
            ("audiocodecid".into(), rtmp_amf::Amf0Value::Number(10.0)),
        ]),
    ])
    .unwrap();
    message(18, 0, payload.to_vec())
}

/// Publishes `key` with metadata, sequence headers and its first ten video frames of `size` bytes.
fn publish_first_gop(server: &Server, key: &StreamKey, size: usize) -> rtmp_hub::Publisher {
    let t0 = Instant::now();
    let publisher = server.hub().publish(key, t0).unwrap();
    publisher.set_metadata(Some(&metadata()));
    publisher.send(&message(9, 0, vec![0x17, 0, 0, 0, 0, 1, 2]), t0);
    publisher.send(&message(8, 0, vec![0xAF, 0, 0x12, 0x10]), t0);
    for index in 0..10 {
        publisher.send(&video(index, size), t0);
    }
    publisher
}

/// Video at `index * 33` ms, a keyframe every 30 frames, `size` bytes.
fn video(index: u32, size: usize) -> Message {
    let mut payload = vec![if index % 30 == 0 { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    payload.resize(size.max(5), index as u8);
    message(9, index * 33, payload)
}

#[tokio::test]
async fn a_player_gets_the_header_metadata_sequence_headers_and_gop_then_live_tags_until_unpublish()
{
    let server = start(APPS).await;
    let http = server.local_addresses()[1];
    let key = StreamKey::new("live", "cam");
    let publisher = publish_first_gop(&server, &key, 100);
    let request = get("/live/cam.flv");
    let reading = tokio::spawn(async move { exchange_head_body(http, &request).await });
    // Live frames once the player is in.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let clients = server.clients().list();
    let player = clients.iter().find(|c| c.variant == "http-flv");
    let player = player.unwrap_or_else(|| panic!("the player is a client: {clients:?}"));
    assert_eq!(
        (player.role, player.app.as_str()),
        (rtmpx::clients::Role::Player, "live")
    );
    assert_eq!(player.stream, "cam");
    for index in 10..40 {
        publisher.send(&video(index, 100), Instant::now());
    }
    drop(publisher);
    let (head, body) = reading.await.unwrap();
    assert!(status(&head) == 200, "{head}");
    assert!(head.contains("video/x-flv"), "{head}");
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    assert_eq!(&body[..5], b"FLV\x01\x05");
    let mut reader = TagReader::default();
    reader.push(&body);
    let mut tags = Vec::new();
    while let Some(tag) = reader.next_tag().unwrap() {
        tags.push(tag);
    }
    reader.finish().unwrap();
    let kinds: Vec<u8> = tags.iter().take(3).map(|t| t.tag_type).collect();
    assert_eq!(kinds, [TAG_SCRIPT, TAG_VIDEO, TAG_AUDIO]);
    let frames: Vec<u32> = tags[3..].iter().map(|t| t.timestamp / 33).collect();
    assert_eq!(
        frames,
        (0..40).collect::<Vec<_>>(),
        "the GOP, then every live frame"
    );
    server.shutdown(Duration::from_secs(1)).await;
}

/// Everything `request` gets until the server closes the connection.
async fn read_to_close(address: SocketAddr, request: &str) -> Vec<u8> {
    let mut socket = TcpStream::connect(address).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.unwrap();
    answer
}

/// The head of the answer starting at `from`, and its body taken out of chunked coding.
fn chunked_answer(answer: &[u8], from: usize) -> (String, Vec<u8>) {
    let answer = &answer[from..];
    let head_end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    let head = String::from_utf8_lossy(&answer[..head_end]).to_lowercase();
    let mut rest = &answer[head_end..];
    let mut body = Vec::new();
    loop {
        let line = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size");
        let size = std::str::from_utf8(&rest[..line]).unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        rest = &rest[line + 2..];
        if size == 0 {
            return (head, body);
        }
        body.extend_from_slice(&rest[..size]);
        assert_eq!(&rest[size..size + 2], b"\r\n", "a chunk ends with CRLF");
        rest = &rest[size + 2..];
    }
}

#[tokio::test]
async fn a_player_taken_from_hyper_and_one_hyper_serves_get_the_same_bytes() {
    let server = start(APPS).await;
    let http = server.local_addresses()[1];
    let key = StreamKey::new("live", "same");
    let publisher = publish_first_gop(&server, &key, 3000);
    // A fresh connection's first request: the connection is taken from hyper and the player written
    // by the stream's flushes.
    let fresh = tokio::spawn(read_to_close(
        http,
        "GET /live/same.flv HTTP/1.1\r\nHost: x\r\n\r\n",
    ));
    // The second request of a connection: hyper serves it.
    let kept = tokio::spawn(read_to_close(
        http,
        "GET /live/nothing.txt HTTP/1.1\r\nHost: x\r\n\r\n\
         GET /live/same.flv HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ));
    let started = Instant::now();
    while server.hub().stats(&key).unwrap().players < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "both players in"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for index in 10..70 {
        publisher.send(&video(index, 3000), Instant::now());
        if index % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    drop(publisher);
    let fresh = fresh.await.unwrap();
    let kept = kept.await.unwrap();
    let (fresh_head, fresh_body) = chunked_answer(&fresh, 0);
    assert!(
        fresh_head.starts_with("http/1.1 200 ok\r\n"),
        "{fresh_head}"
    );
    for line in [
        "transfer-encoding: chunked",
        "connection: close",
        "content-type: video/x-flv",
    ] {
        assert!(fresh_head.contains(line), "{line} in {fresh_head}");
    }
    assert!(!fresh_head.contains("content-length"), "{fresh_head}");
    let second = kept
        .windows(15)
        .position(|w| w == b"HTTP/1.1 200 OK")
        .expect("the second answer");
    assert_eq!(status(&String::from_utf8_lossy(&kept)), 404);
    let (kept_head, kept_body) = chunked_answer(&kept, second);
    assert!(kept_head.contains("video/x-flv"), "{kept_head}");
    assert_eq!(fresh_body.len(), kept_body.len());
    assert!(
        fresh_body == kept_body,
        "the same header, start and live tags"
    );
    let mut reader = TagReader::default();
    reader.push(&fresh_body);
    let mut frames = Vec::new();
    while let Some(tag) = reader.next_tag().unwrap() {
        if tag.tag_type == TAG_VIDEO && tag.payload.len() == 3000 {
            frames.push(tag.timestamp / 33);
        }
    }
    assert_eq!(frames, (0..70).collect::<Vec<_>>());
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_kicked_player_gets_whole_chunks_then_the_last_one() {
    let server = start(APPS).await;
    let http = server.local_addresses()[1];
    let key = StreamKey::new("live", "kick");
    let t0 = Instant::now();
    let publisher = server.hub().publish(&key, t0).unwrap();
    publisher.send(&message(9, 0, vec![0x17, 0, 0, 0, 0, 1, 2]), t0);
    for index in 0..5 {
        publisher.send(&video(index, 2000), t0);
    }
    let reading = tokio::spawn(read_to_close(
        http,
        "GET /live/kick.flv HTTP/1.1\r\nHost: x\r\n\r\n",
    ));
    let started = Instant::now();
    let id = loop {
        if let Some(player) = server
            .clients()
            .list()
            .iter()
            .find(|c| c.variant == "http-flv")
        {
            break player.id;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the player is in"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    for index in 5..20 {
        publisher.send(&video(index, 2000), Instant::now());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(server.clients().kick(id));
    let answer = reading.await.unwrap();
    let (_, body) = chunked_answer(&answer, 0);
    let mut reader = TagReader::default();
    reader.push(&body);
    let mut frames = 0;
    while let Some(tag) = reader.next_tag().unwrap() {
        frames += usize::from(tag.payload.len() == 2000);
    }
    assert_eq!(frames, 20, "every frame sent before the kick");
    assert_eq!(server.clients().counters.ended("kicked"), 1);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn bad_requests_get_a_status_and_a_reason() {
    let server = start(APPS).await;
    let http = server.local_addresses()[1];

    let started = Instant::now();
    let (head, body) = exchange_head_body(http, &get("/live/nobody.flv")).await;
    assert!(status(&head) == 404, "{head}");
    assert!(String::from_utf8_lossy(&body).contains("not published"));
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "waited first"
    );

    let (head, _) = exchange_head_body(http, &get("/live/..%2F..%2Fetc%2Fpasswd.flv")).await;
    assert!(status(&head) == 400, "{head}");
    let (head, _) = exchange_head_body(http, &get("/live/../../etc/passwd")).await;
    assert!(status(&head) == 404, "{head}");

    let (head, body) = exchange_head_body(http, &get("/private/cam.flv")).await;
    assert!(status(&head) == 403, "{head}");
    assert!(String::from_utf8_lossy(&body).contains("denied for 127.0.0.1"));

    // A first head over 64 KiB is answered 431 (with the reason) and let go at once.
    let huge = format!(
        "GET /live/cam.flv HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let mut socket = TcpStream::connect(http).await.unwrap();
    let _ = socket.write_all(huge.as_bytes()).await;
    let mut answer = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "a huge head is let go at once");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(answer.ends_with("request head over 64 KiB\n"), "{answer}");

    let (head, _) = exchange_head_body(
        http,
        "POST /live/cam.flv HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(status(&head) == 405, "{head}");
    let preflight = "OPTIONS /live/cam.flv HTTP/1.0\r\nOrigin: http://page\r\nAccess-Control-Request-Method: GET\r\n\r\n";
    let (head, _) = exchange_head_body(http, preflight).await;
    assert!(status(&head) == 204, "{head}");
    assert!(
        head.contains("access-control-allow-methods: get, head, options"),
        "{head}"
    );

    let (head, _) = exchange_head_body(http, "HEAD /live/cam.flv HTTP/1.0\r\n\r\n").await;
    assert!(status(&head) == 404, "HEAD does not wait: {head}");
    let publisher = server
        .hub()
        .publish(&StreamKey::new("live", "cam"), Instant::now())
        .unwrap();
    let (head, body) = exchange_head_body(http, "HEAD /live/cam.flv HTTP/1.0\r\n\r\n").await;
    assert!(
        status(&head) == 200 && head.contains("video/x-flv"),
        "{head}"
    );
    assert!(body.is_empty());
    let (head, body) = exchange_head_body(http, &get("/streams.json")).await;
    assert!(status(&head) == 200, "{head}");
    assert_eq!(
        String::from_utf8_lossy(&body),
        r#"[{"app":"live","name":"cam","video":"","audio":""}]"#
    );
    drop(publisher);

    let counters = &server.clients().counters;
    assert!(counters.ended("refused") >= 3, "{counters:?}");
    assert!(counters.started("http-flv") >= 3, "{counters:?}");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn five_hundred_half_requests_neither_block_others_nor_stay() {
    let server = start(APPS).await;
    let http = server.local_addresses()[1];
    let mut half = Vec::new();
    for _ in 0..500 {
        let mut socket = TcpStream::connect(http).await.unwrap();
        socket
            .write_all(b"GET /live/cam.flv HTTP/1.1\r\nHost: loc")
            .await
            .unwrap();
        half.push(socket);
    }
    let (head, _) = exchange_head_body(http, &get("/")).await;
    assert!(status(&head) == 200, "the page still answers: {head}");
    // The head timeout (the handshake timeout, 1 s here) closes every one of them.
    for mut socket in half {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut rest))
            .await
            .expect("a half request is closed after the head timeout")
            .ok();
    }
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_reader_that_never_reads_is_dropped_without_holding_memory() {
    let server = start(APPS).await;
    let http = server.local_addresses()[1];
    let key = StreamKey::new("live", "big");
    let publisher = server.hub().publish(&key, Instant::now()).unwrap();
    publisher.send(&video(0, 64 * 1024), Instant::now());
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(http).await.unwrap();
    stalled
        .write_all(get("/live/big.flv").as_bytes())
        .await
        .unwrap();
    // 64 KiB frames, 30 a second, until the server lets the reader go (at most 1.5 s of waiting writes).
    let started = Instant::now();
    let mut index = 1;
    loop {
        publisher.send(&video(index, 64 * 1024), Instant::now());
        index += 1;
        tokio::time::sleep(Duration::from_millis(33)).await;
        if server.clients().counters.ended("write_stalled") == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the reader was not dropped"
        );
    }
    assert!(server.clients().list().is_empty(), "no player left");
    let stats = server.hub().stats(&key).unwrap();
    assert_eq!(
        stats.players, 0,
        "its subscriber, and what it held, is gone"
    );
    drop(stalled);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_legacy_request_for_hevc_is_told_to_ask_for_enhanced_flv() {
    let server = start(APPS).await;
    let http = server.local_addresses()[1];
    let key = StreamKey::new("live", "hevc");
    let t0 = Instant::now();
    let publisher = server.hub().publish(&key, t0).unwrap();
    // An Enhanced RTMP HEVC sequence start, then a coded keyframe.
    publisher.send(&message(9, 0, b"\x90hvc1\x01\x02".to_vec()), t0);
    publisher.send(&message(9, 0, b"\x91hvc1\x00\x00\x00\x05".to_vec()), t0);
    let (head, body) = exchange_head_body(http, &get("/live/hevc.flv")).await;
    assert!(status(&head) == 406, "{head}");
    assert!(String::from_utf8_lossy(&body).contains("?enhanced=1"));

    let request = get("/live/hevc.flv?enhanced=1");
    let reading = tokio::spawn(async move { exchange_head_body(http, &request).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(publisher);
    let (head, body) = reading.await.unwrap();
    assert!(status(&head) == 200, "{head}");
    let mut reader = TagReader::default();
    reader.push(&body);
    let mut tags = Vec::new();
    while let Some(tag) = reader.next_tag().unwrap() {
        tags.push(tag);
    }
    assert_eq!(tags.len(), 2, "the sequence start and the keyframe");
    assert!(tags[0].is_sequence_header() && tags[1].is_keyframe());
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn signed_names_and_cors_origins_are_the_applications() {
    let server = start(APPS).await;
    let http = server.local_addresses()[1];
    let t0 = Instant::now();
    let _signed = server
        .hub()
        .publish(&StreamKey::new("signed", "cam"), t0)
        .unwrap();
    let _cors = server
        .hub()
        .publish(&StreamKey::new("cors", "cam"), t0)
        .unwrap();
    let (head, body) = exchange_head_body(http, "HEAD /signed/cam.flv HTTP/1.0\r\n\r\n").await;
    assert!(status(&head) == 403, "{head}");
    let _ = body;
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let query = rtmpx::policy::signed::signed_query("k", "signed", "cam", expires);
    let request = format!("HEAD /signed/cam.flv?{query} HTTP/1.0\r\n\r\n");
    let (head, _) = exchange_head_body(http, &request).await;
    assert!(status(&head) == 200, "{head}");
    let (head, _) = exchange_head_body(http, "HEAD /cors/cam.flv HTTP/1.0\r\n\r\n").await;
    assert!(
        head.contains("access-control-allow-origin: https://example.org"),
        "{head}"
    );
    server.shutdown(Duration::from_secs(1)).await;
}
