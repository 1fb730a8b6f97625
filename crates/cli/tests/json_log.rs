//! The built `rtmpx serve --log-format json`: every line is a JSON object, a connection's lines carry
//! its span (id, variant, address, and app and stream once known), and its end is one `close` line with
//! the typed close reason and the bytes each way.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use rtmp_chunk::Message;
use rtmp_client::{Client, ConnectOptions, RtmpUrl};
use serde_json::Value;

fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn wait_until_listening(address: SocketAddr, server: &mut Child) {
    for _ in 0..500 {
        if TcpStream::connect(address).is_ok() {
            return;
        }
        assert!(server.try_wait().unwrap().is_none(), "the server stopped");
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the server never listened on {address}");
}

/// Every line of the log, parsed; panics on a line that is not a JSON object.
fn json_lines(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let value: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line}"));
            assert!(value.is_object(), "not an object: {line}");
            value
        })
        .collect()
}

/// The server, stopped when dropped (a failed assertion included).
struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_close(log: &Path, stream: &str) -> Value {
    for _ in 0..250 {
        let found = json_lines(log)
            .into_iter()
            .find(|line| line["fields"]["message"] == "close" && line["span"]["stream"] == stream);
        if let Some(line) = found {
            return line;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "no close line for stream {stream}:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Connects, publishes a few frames and leaves.
async fn publish_and_leave(url: RtmpUrl) {
    let mut client = Client::connect(&url, &ConnectOptions::default())
        .await
        .unwrap();
    let stream_id = client.publish(&url.stream).await.unwrap();
    for i in 0..10u32 {
        client.send(
            stream_id,
            &Message {
                timestamp: i * 40,
                type_id: 9,
                stream_id: 1,
                payload: Bytes::from_static(b"\x17\x01\x00\x00\x00\xaa\xbb"),
            },
        );
    }
    client.flush().await.unwrap();
}

#[cfg(unix)]
#[test]
fn json_log_lines_parse_and_carry_the_connection_and_its_close_reason() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("rtmpx.log");
    let (shared, api) = (free_address(), free_address());
    let server = Command::new(env!("CARGO_BIN_EXE_rtmpx"))
        .args(["serve", "--log-format", "json", "--log-level", "debug"])
        .args(["--listen", &shared.to_string()])
        .args(["--listen-api", &api.to_string()])
        .args(["--listen-tls", &free_address().to_string()])
        .args(["--listen-http", &free_address().to_string()])
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let mut server = Stopped(server);
    wait_until_listening(shared, &mut server.0);
    let url: RtmpUrl = format!("rtmp://{shared}/live/logged").parse().unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(publish_and_leave(url));
    let close = wait_for_close(&log, "logged");

    let span = &close["span"];
    assert_eq!(span["name"], "connection", "{close}");
    assert_eq!(span["variant"], "rtmp", "{close}");
    assert_eq!(span["app"], "live", "{close}");
    assert_eq!(span["stream"], "logged", "{close}");
    assert!(
        span["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{close}"
    );
    let fields = &close["fields"];
    assert_eq!(fields["cause"], "peer_closed", "{close}");
    assert!(fields["reason"].is_string(), "{close}");
    assert!(fields["bytes_in"].as_u64() > Some(3073), "{close}");
    assert!(fields["bytes_out"].as_u64() > Some(3073), "{close}");
    // Every line the connection logged (debug included) is inside its span.
    let lines = json_lines(&log);
    let driver_lines: Vec<&Value> = lines
        .iter()
        .filter(|line| line["target"] == "rtmpx::connection::driver")
        .collect();
    assert!(driver_lines.len() >= 2, "{lines:?}");
    for line in driver_lines {
        assert!(
            line["span"]["id"].is_u64(),
            "a line outside its span: {line}"
        );
    }
}
