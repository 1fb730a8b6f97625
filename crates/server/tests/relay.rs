//! Relays between servers in this process, driven by `rtmp-client`: relays started, listed and stopped
//! through the API; an on-demand pull shared by two players and stopped once idle; and hook answers
//! redirecting to `rtmp://` URLs (a publish pushed there, a play pulled from there).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::{header, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use rtmp_chunk::Message;
use rtmp_client::{Client, ClientEvent, ConnectOptions, RtmpUrl};
use rtmp_hub::StreamKey;
use rtmpx::Server;

mod support;

const LIMIT: Duration = Duration::from_secs(10);

async fn start(text: &str, api: bool) -> Server {
    support::start(support::config(text), false, api).await
}

fn frame(i: u32) -> Message {
    support::video_frame(i, 500)
}

/// Publishes `url` with a frame every 33 ms until the task is dropped (aborted).
fn publish_forever(url: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let url: RtmpUrl = url.parse().unwrap();
        let mut client = Client::connect(&url, &ConnectOptions::default())
            .await
            .unwrap();
        let stream_id = client.publish(&url.stream).await.unwrap();
        for i in 0.. {
            client.send(stream_id, &frame(i));
            if client.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(33)).await;
        }
    })
}

/// Plays `url` until `count` video frames arrived; the client stays connected.
async fn play_frames(url: &str, count: usize) -> (Client, Vec<Message>) {
    let url: RtmpUrl = url.parse().unwrap();
    let mut client = Client::connect(&url, &ConnectOptions::default())
        .await
        .unwrap();
    client.play(&url.stream).await.unwrap();
    let mut frames = Vec::new();
    tokio::time::timeout(LIMIT, async {
        while frames.len() < count {
            if let ClientEvent::Media { message, .. } = client.next_event().await.unwrap() {
                if message.type_id == 9 {
                    frames.push(message);
                }
            }
        }
    })
    .await
    .expect("frames within the limit");
    (client, frames)
}

/// One API request; the status and the body.
async fn request(api: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    support::request(api, method, path, "", body).await
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < LIMIT, "{what} within {LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn relays_are_started_listed_and_stopped_through_the_api() {
    let origin = start("", true).await;
    let target = start("", false).await;
    let api = origin.api_addresses()[0];
    let (origin_address, target_address) =
        (origin.local_addresses()[0], target.local_addresses()[0]);

    let body = format!(
        r#"{{"kind":"push","app":"live","name":"cam","url":"rtmp://{target_address}/live/copy-secret"}}"#
    );
    let (status, created) = request(api, "POST", "/api/v1/relays", &body).await;
    assert_eq!(status, 201, "{created}");
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    let id = created["id"].as_u64().unwrap();
    assert_eq!(
        created["target"],
        format!("rtmp://{target_address}/live/co****")
    );

    let publisher = publish_forever(format!("rtmp://{origin_address}/live/cam"));
    let (_player, frames) =
        play_frames(&format!("rtmp://{target_address}/live/copy-secret"), 5).await;
    assert!(
        frames[0].payload[0] == 0x17,
        "the push starts at a keyframe"
    );

    let (status, listed) = request(api, "GET", "/api/v1/relays", "").await;
    assert_eq!(status, 200);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let relay = listed["relays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap();
    assert_eq!(relay["state"], "relaying");
    assert_eq!(relay["origin"], "api");
    assert!(relay["bytes"].as_u64().unwrap() > 0);
    assert!(!listed.to_string().contains("secret"));

    let (_, metrics) = request(api, "GET", "/metrics", "").await;
    assert!(metrics.contains("rtmpx_relays_started_total{kind=\"push\"}"));

    let (status, _) = request(api, "DELETE", &format!("/api/v1/relays/{id}"), "").await;
    assert_eq!(status, 200);
    let (status, _) = request(api, "DELETE", &format!("/api/v1/relays/{id}"), "").await;
    assert_eq!(status, 404);
    let key = StreamKey::new("live", "copy-secret");
    wait_until("the target's publisher left", || {
        target.hub().stats(&key).is_none_or(|s| !s.publishing)
    })
    .await;

    for bad in [
        "not json",
        r#"{"kind":"push","app":"live","name":"cam","url":"http://x/y"}"#,
        r#"{"kind":"pull","app":"live","name":"../x","url":"rtmp://h/a/b"}"#,
    ] {
        let (status, answer) = request(api, "POST", "/api/v1/relays", bad).await;
        assert_eq!(status, 400, "{bad}: {answer}");
    }
    publisher.abort();
}

#[tokio::test]
async fn an_on_demand_pull_is_shared_by_its_players_and_stops_when_idle() {
    let upstream = start("", false).await;
    let upstream_address = upstream.local_addresses()[0];
    let edge = start(
        &format!(
            "[app.live]\npull = \"rtmp://{upstream_address}/live/{{name}}\"\npull_idle_ms = 200\n"
        ),
        false,
    )
    .await;
    let edge_address = edge.local_addresses()[0];
    let publisher = publish_forever(format!("rtmp://{upstream_address}/live/src"));
    let key = StreamKey::new("live", "src");
    wait_until("the upstream stream is live", || {
        upstream.hub().stats(&key).is_some_and(|s| s.publishing)
    })
    .await;

    let url = format!("rtmp://{edge_address}/live/src");
    let (first, frames) = play_frames(&url, 3).await;
    let (second, more) = play_frames(&url, 3).await;
    assert_eq!(frames[0].payload[0], 0x17);
    assert_eq!(more[0].payload[0], 0x17);
    assert_eq!(
        upstream.hub().stats(&key).map(|s| s.players),
        Some(1),
        "one upstream connection for both players"
    );
    // The first player leaves: the pull goes on for the second, past `pull_idle_ms`.
    drop(first);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut second = second;
    let mut later = 0;
    tokio::time::timeout(LIMIT, async {
        while later < 20 {
            if let ClientEvent::Media { .. } = second.next_event().await.unwrap() {
                later += 1;
            }
        }
    })
    .await
    .expect("the second player still gets frames");
    drop(second);
    wait_until("the idle pull stopped", || {
        upstream.hub().stats(&key).is_some_and(|s| s.players == 0)
    })
    .await;
    publisher.abort();
}

#[tokio::test]
async fn a_pull_the_upstream_refuses_tells_the_player_why() {
    // The upstream refuses every play, as a server that has no such stream can.
    let upstream = start("[app.live]\ndeny_play = [\"all\"]\n", false).await;
    let upstream_address = upstream.local_addresses()[0];
    let edge = start(
        &format!("[app.live]\npull = \"rtmp://{upstream_address}/live/{{name}}\"\n"),
        false,
    )
    .await;
    let url: RtmpUrl = format!("rtmp://{}/live/gone", edge.local_addresses()[0])
        .parse()
        .unwrap();
    let mut client = Client::connect(&url, &ConnectOptions::default())
        .await
        .unwrap();
    let answer = client.play(&url.stream).await;
    let status = match answer {
        // Accepted first; the failure follows as a status.
        Ok(_) => loop {
            match tokio::time::timeout(LIMIT, client.next_event()).await {
                Ok(Ok(ClientEvent::Status {
                    code, description, ..
                })) if code.starts_with("NetStream.Play.Failed")
                    || code.starts_with("NetStream.Play.StreamNotFound") =>
                {
                    break (code, description)
                }
                Ok(Ok(_)) => {}
                other => panic!("no failure status: {other:?}"),
            }
        },
        Err(error) => panic!("{error}"),
    };
    assert!(status.1.contains("pull from"), "{status:?}");
    assert!(status.1.contains("/live/go****"), "{status:?}");
}

/// Answers `on_publish` and `on_play` with a 302 to an `rtmp://` URL on `target`.
async fn start_redirecting_hooks(target: SocketAddr) -> SocketAddr {
    let publish_to = format!("rtmp://{target}/live/hooked");
    let play_from = format!("rtmp://{target}/live/origin");
    let app = axum::Router::new()
        .route(
            "/publish",
            post(move || async move { (StatusCode::FOUND, [(header::LOCATION, publish_to)]) }),
        )
        .route(
            "/play",
            post(move || async move { (StatusCode::FOUND, [(header::LOCATION, play_from)]) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

#[test]
fn a_relay_verdict_is_logged_with_its_key_masked() {
    let verdict = rtmpx::router::Verdict::Relay("rtmp://h/live/secretkey".into());
    assert_eq!(format!("{verdict:?}"), "Relay(\"rtmp://h/live/se****\")");
}

#[tokio::test]
async fn a_hook_redirect_to_an_rtmp_url_pushes_a_publish_and_pulls_a_play() {
    let target = start("", false).await;
    let target_address = target.local_addresses()[0];
    let hooks = start_redirecting_hooks(target_address).await;
    let edge = start(
        &format!(
            "[app.live]\non_publish = \"http://{hooks}/publish\"\non_play = \"http://{hooks}/play\"\n"
        ),
        false,
    )
    .await;
    let edge_address = edge.local_addresses()[0];

    // A publish redirected to a URL is accepted here and pushed there.
    let publisher = publish_forever(format!("rtmp://{edge_address}/live/cam"));
    let (_watcher, frames) = play_frames(&format!("rtmp://{target_address}/live/hooked"), 3).await;
    assert_eq!(frames[0].payload[0], 0x17);

    // A play redirected to a URL pulls from there.
    let origin = publish_forever(format!("rtmp://{target_address}/live/origin"));
    let (_player, frames) = play_frames(&format!("rtmp://{edge_address}/live/anything"), 3).await;
    assert_eq!(frames[0].payload[0], 0x17);
    publisher.abort();
    origin.abort();
}

#[tokio::test]
async fn a_pull_passes_enhanced_rtmp_video_through() {
    let upstream = start("", false).await;
    let upstream_address = upstream.local_addresses()[0];
    let edge = start(
        &format!("[app.live]\npull = \"rtmp://{upstream_address}/live/{{name}}\"\n"),
        false,
    )
    .await;
    // HEVC in Enhanced RTMP: a keyframe (0x80 | key << 4 | CodedFrames) every tenth frame.
    let hevc = |i: u32| {
        let first: u8 = if i % 10 == 0 { 0x91 } else { 0xA1 };
        let mut payload = vec![first, b'h', b'v', b'c', b'1', 0, 0, 0];
        payload.extend((0..300u32).map(|b| (b + i) as u8));
        Message {
            timestamp: i * 33,
            type_id: 9,
            stream_id: 1,
            payload: Bytes::from(payload),
        }
    };
    let publisher = tokio::spawn(async move {
        let url: RtmpUrl = format!("rtmp://{upstream_address}/live/hevc")
            .parse()
            .unwrap();
        let mut client = Client::connect(&url, &ConnectOptions::default())
            .await
            .unwrap();
        let stream_id = client.publish(&url.stream).await.unwrap();
        for i in 0.. {
            client.send(stream_id, &hevc(i));
            if client.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(33)).await;
        }
    });
    let url: RtmpUrl = format!("rtmp://{}/live/hevc", edge.local_addresses()[0])
        .parse()
        .unwrap();
    let options = ConnectOptions {
        fourcc_list: vec!["hvc1".into()],
        ..ConnectOptions::default()
    };
    let mut player = Client::connect(&url, &options).await.unwrap();
    player.play(&url.stream).await.unwrap();
    let first = tokio::time::timeout(LIMIT, async {
        loop {
            if let ClientEvent::Media { message, .. } = player.next_event().await.unwrap() {
                if message.type_id == 9 {
                    return message;
                }
            }
        }
    })
    .await
    .expect("enhanced video through the pull");
    assert_eq!(&first.payload[..5], b"\x91hvc1");
    publisher.abort();
}
