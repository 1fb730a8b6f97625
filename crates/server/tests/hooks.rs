//! HTTP hooks against a real HTTP server in the test process (axum on 127.0.0.1:0) and the server
//! in-process, driven by the session crate's client role: allow (publish and play bit-exact, the
//! fields posted), deny, rename by 3xx, a slow hook that delays no other connection, a hook server that
//! is down (deny and allow modes), and a 10 MB answer read for its status only.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use bytes::Bytes;
use rtmp_chunk::Message;
use rtmp_session::{ClientEvent, ClientOptions};
use rtmpx::{Config, Server};

mod support;
use support::Client;

type Received = Arc<Mutex<Vec<BTreeMap<String, String>>>>;

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn parse_form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

async fn record(received: &Received, body: String) {
    received.lock().unwrap().push(parse_form(&body));
}

/// The hook server; its address.
async fn start_hook_server(received: Received) -> SocketAddr {
    let app = axum::Router::new()
        .route(
            "/allow",
            post(|State(r): State<Received>, body: String| async move {
                record(&r, body).await;
                StatusCode::OK
            }),
        )
        .route(
            "/deny",
            post(|State(r): State<Received>, body: String| async move {
                record(&r, body).await;
                StatusCode::FORBIDDEN
            }),
        )
        .route(
            "/rename",
            post(|| async { (StatusCode::FOUND, [(header::LOCATION, "other")]) }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                StatusCode::OK
            }),
        )
        .route(
            "/big",
            post(|| async { (StatusCode::OK, vec![b'x'; 10 * 1024 * 1024]).into_response() }),
        )
        .with_state(received);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

async fn start_server(hooks: SocketAddr) -> Server {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let text = format!(
        r#"
[app.allow]
on_connect = "http://{hooks}/allow?secret=s"
on_publish = "http://{hooks}/allow"
on_play = "http://{hooks}/allow"
on_publish_done = "http://{hooks}/allow"
on_done = "http://{hooks}/allow"
[app.deny]
on_publish = "http://{hooks}/deny"
[app.rename]
on_publish = "http://{hooks}/rename"
[app.slow]
on_publish = "http://{hooks}/slow"
hook_timeout_ms = 800
[app.down]
on_publish = "http://{closed}/"
[app.downallow]
on_publish = "http://{closed}/"
hook_failure = "allow"
[app.big]
on_publish = "http://{hooks}/big"
"#
    );
    support::start(support::config(&text), false, false).await
}

impl Client {
    async fn connect(address: SocketAddr, app: &str) -> Client {
        let options = ClientOptions::new(app, format!("rtmp://{address}/{app}"));
        Client::connect_with(address, options).await
    }

    /// Publishes `name`; the started stream's id, or the status that refused it.
    async fn publish(&mut self, name: &str) -> Result<u32, (String, String)> {
        let stream_id = self.create_stream().await;
        self.session.publish(stream_id, name);
        let events = self
            .until(|e| {
                matches!(
                    e,
                    ClientEvent::PublishStarted { .. } | ClientEvent::Status { .. }
                )
            })
            .await;
        match events.last() {
            Some(ClientEvent::PublishStarted { .. }) => Ok(stream_id),
            Some(ClientEvent::Status {
                code, description, ..
            }) => Err((code.clone(), description.clone())),
            other => panic!("{other:?}"),
        }
    }

    async fn play(&mut self, name: &str) {
        let stream_id = self.create_stream().await;
        self.session.play(stream_id, name);
        self.until(|e| matches!(e, ClientEvent::PlayStarted { .. }))
            .await;
    }
}

fn frame(i: u32) -> Message {
    support::video_frame(i, 1000)
}

/// Plays `play_name` and publishes `publish_name` in `app`; asserts the frames arrive bit-exact.
async fn publish_and_play(address: SocketAddr, app: &str, publish_name: &str, play_name: &str) {
    let mut player = Client::connect(address, app).await;
    player.play(play_name).await;
    let mut publisher = Client::connect(address, app).await;
    let publish_id = publisher.publish(publish_name).await.unwrap();
    let sent: Vec<Message> = (0..20).map(frame).collect();
    for message in &sent {
        publisher.session.send_message(publish_id, message);
    }
    publisher.flush().await;
    let events = player
        .until(|e| matches!(e, ClientEvent::Media { message, .. } if message.timestamp == 19 * 33))
        .await;
    let received: Vec<Bytes> = events
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::Media { message, .. } if message.type_id == 9 => Some(message.payload),
            _ => None,
        })
        .collect();
    let expected: Vec<Bytes> = sent.into_iter().map(|m| m.payload).collect();
    assert!(
        received == expected,
        "frames differ from what was published"
    );
}

#[tokio::test]
async fn hooks_allow_deny_rename_and_fail_as_configured() {
    let received: Received = Arc::default();
    let hooks = start_hook_server(received.clone()).await;
    let server = start_server(hooks).await;
    let address = server.local_addresses()[0];

    // Allow: publish and play go through; the fields are nginx-rtmp's.
    publish_and_play(address, "allow", "cam?token=abc&x=1", "cam").await;
    let calls = received.lock().unwrap().clone();
    let publish = calls
        .iter()
        .find(|f| f.get("call").map(String::as_str) == Some("publish"))
        .expect("an on_publish call");
    assert_eq!(publish["app"], "allow");
    assert_eq!(publish["name"], "cam");
    assert_eq!(publish["type"], "live");
    assert_eq!(publish["addr"], "127.0.0.1");
    assert_eq!(publish["tcurl"], format!("rtmp://{address}/allow"));
    assert_eq!(publish["variant"], "rtmp");
    assert_eq!(publish["token"], "abc");
    assert_eq!(publish["x"], "1");
    assert!(publish["clientid"].parse::<u64>().unwrap() > 0);
    for call in ["connect", "play"] {
        assert!(
            calls
                .iter()
                .any(|f| f.get("call").map(String::as_str) == Some(call)),
            "no {call} call in {calls:?}"
        );
    }

    // Deny: refused at once, with the hook's status in the description.
    let started = Instant::now();
    let mut denied = Client::connect(address, "deny").await;
    let (code, description) = denied.publish("cam").await.unwrap_err();
    assert_eq!(code, "NetStream.Publish.BadName");
    assert_eq!(description, "refused by on_publish (HTTP 403)");
    assert!(started.elapsed() < Duration::from_secs(2));

    // Rename: the publish goes on as `other`.
    publish_and_play(address, "rename", "cam", "other").await;

    // Down: deny mode refuses, allow mode allows.
    let mut down = Client::connect(address, "down").await;
    assert!(down.publish("cam").await.is_err());
    let mut down_allow = Client::connect(address, "downallow").await;
    assert!(down_allow.publish("cam").await.is_ok());

    // A 10 MB answer: only its status is read.
    let mut big = Client::connect(address, "big").await;
    assert!(big.publish("cam").await.is_ok());

    // on_publish_done and on_done are told when the connections leave, without waiting.
    drop((denied, down, down_allow, big));
    server.shutdown(Duration::from_secs(1)).await;
    let told = |call: &str| {
        received
            .lock()
            .unwrap()
            .iter()
            .any(|f| f.get("call").map(String::as_str) == Some(call))
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while !(told("publish_done") && told("done")) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(told("publish_done") && told("done"));
}

#[tokio::test]
async fn a_slow_hook_delays_no_other_connection() {
    let hooks = start_hook_server(Arc::default()).await;
    let server = start_server(hooks).await;
    let address = server.local_addresses()[0];

    let slow = tokio::spawn(async move {
        let mut client = Client::connect(address, "slow").await;
        let started = Instant::now();
        let result = client.publish("cam").await;
        (result, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    publish_and_play(address, "open", "cam", "cam").await;
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "another connection waited: {:?}",
        started.elapsed()
    );
    let (result, waited) = slow.await.unwrap();
    let (_, description) = result.unwrap_err();
    assert!(description.contains("on_publish failed"), "{description}");
    assert!(waited >= Duration::from_millis(700) && waited < Duration::from_secs(2));
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn on_record_done_names_the_finished_recording() {
    let received: Received = Arc::default();
    let hooks = start_hook_server(received.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[app.rec]
record = "all"
record_path = "{}/{{app}}/{{name}}-{{start}}.flv"
on_record_done = "http://{hooks}/allow"
"#,
        dir.path().display()
    );
    let mut config: Config = toml::from_str(&text).unwrap();
    config.listen = vec!["127.0.0.1:0".parse().unwrap()];
    config.listen_tls = vec![];
    config.listen_http = vec![];
    config.listen_api = vec![];
    let server = Server::start(&config).await.unwrap();
    let address = server.local_addresses()[0];

    let mut publisher = Client::connect(address, "rec").await;
    let stream_id = publisher.publish("cam").await.unwrap();
    for i in 0..20 {
        publisher.session.send_message(stream_id, &frame(i));
    }
    publisher.flush().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(publisher);

    let done = || {
        received
            .lock()
            .unwrap()
            .iter()
            .find(|f| f.get("call").map(String::as_str) == Some("record_done"))
            .cloned()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while done().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let form = done().expect("on_record_done was not called");
    assert_eq!(form.get("app").map(String::as_str), Some("rec"));
    assert_eq!(form.get("name").map(String::as_str), Some("cam"));
    let path = form.get("path").expect("the form names the file");
    assert!(
        path.starts_with(&dir.path().display().to_string()),
        "{path}"
    );
    assert!(
        std::path::Path::new(path).exists(),
        "{path} was not written"
    );
    server.shutdown(Duration::from_secs(1)).await;
}
