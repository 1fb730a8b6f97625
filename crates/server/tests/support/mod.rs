//! What the server's own tests share: a server started on loopback ports, HTTP requests to its
//! listeners, test video frames, and the in-memory RTMP client they drive it with (the session crate's
//! client role over a tokio `TcpStream`, pumped by hand (`until`), with fixed random bytes).
//!
//! Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtmp_chunk::Message;
use rtmp_session::{
    io::write_all_vectored, ClientEvent, ClientOptions, ClientSession, SessionConfig,
};
use rtmpx::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long an HTTP exchange may take before the test fails.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// Parses a TOML configuration.
pub fn config(text: &str) -> Config {
    toml::from_str(text).unwrap()
}

/// Starts `config` on loopback: one RTMP listener, an RTMPT/HTTP one when `http`, the API when `api`,
/// no TLS listener.
pub async fn start(mut config: Config, http: bool, api: bool) -> Server {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let when = |wanted: bool| if wanted { vec![any] } else { vec![] };
    config.listen = vec![any];
    config.listen_tls = vec![];
    config.listen_http = when(http);
    config.listen_api = when(api);
    Server::start(&config).await.unwrap()
}

/// Video frame `i` (a keyframe every 10th, 33 ms apart, on stream 1) with `size` bytes of picture.
pub fn video_frame(i: u32, size: u32) -> Message {
    let first = if i % 10 == 0 { 0x17 } else { 0x27 };
    let payload: Vec<u8> = [first, 1, 0, 0, 0]
        .into_iter()
        .chain((0..size).map(|b| (b * 7 + i) as u8))
        .collect();
    Message {
        timestamp: i * 33,
        type_id: 9,
        stream_id: 1,
        payload: Bytes::from(payload),
    }
}

/// Sends `requests` as they are (several at once is pipelining) and reads until the server closes.
pub async fn exchange(address: SocketAddr, requests: &str) -> String {
    let mut socket = TcpStream::connect(address).await.unwrap();
    socket.write_all(requests.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(HTTP_TIMEOUT, socket.read_to_end(&mut answer))
        .await
        .expect("the server closes after Connection: close")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Sends `request` as it is and reads the answer until the server closes (HTTP/1.0: no chunking): its
/// head, lowercased, and its body bytes.
pub async fn exchange_head_body(address: SocketAddr, request: &str) -> (String, Vec<u8>) {
    let mut socket = TcpStream::connect(address).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(2 * HTTP_TIMEOUT, socket.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |at| at + 4);
    let body = answer.split_off(split);
    (String::from_utf8_lossy(&answer).to_lowercase(), body)
}

/// The status code of an answer's head.
pub fn status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// An HTTP/1.0 GET of `path` (the server closes after answering).
pub fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")
}

/// One request with extra `headers` (each ending in CRLF) and a JSON `body` (may be empty); the status
/// and the body of the answer.
pub async fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    let content = if body.is_empty() {
        String::new()
    } else {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        )
    };
    let text = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}{content}Connection: close\r\n\r\n{body}"
    );
    let answer = exchange(address, &text).await;
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_owned());
    (status, body)
}

/// A connected client.
pub struct Client {
    pub session: ClientSession,
    pub socket: TcpStream,
}

impl Client {
    /// Connects to `address` with `options` and waits for the `connect` to be accepted.
    pub async fn connect_with(address: SocketAddr, options: ClientOptions) -> Client {
        let session = ClientSession::new(
            SessionConfig::default(),
            options,
            Box::new(|bytes: &mut [u8]| bytes.fill(0x5a)),
            Instant::now(),
        );
        let socket = TcpStream::connect(address).await.unwrap();
        let mut client = Client { session, socket };
        client
            .until(|e| matches!(e, ClientEvent::Connected { .. }))
            .await;
        client
    }

    /// Writes what the session queued.
    pub async fn flush(&mut self) {
        let mut out = Vec::new();
        self.session.poll_transmit(&mut out);
        write_all_vectored(&mut self.socket, &mut out)
            .await
            .unwrap();
    }

    /// Pumps until an event matches; returns every event seen.
    pub async fn until(&mut self, done: impl Fn(&ClientEvent) -> bool) -> Vec<ClientEvent> {
        let mut seen = Vec::new();
        let mut buffer = vec![0u8; 65536];
        loop {
            self.flush().await;
            while let Some(event) = self.session.poll_event() {
                let finished = done(&event);
                seen.push(event);
                if finished {
                    return seen;
                }
            }
            let n = tokio::time::timeout(Duration::from_secs(5), self.socket.read(&mut buffer))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "server closed; events so far: {seen:?}");
            self.session
                .handle_input(&buffer[..n], Instant::now())
                .unwrap();
        }
    }

    /// Creates a stream; its id.
    pub async fn create_stream(&mut self) -> u32 {
        self.session.create_stream();
        let events = self
            .until(|e| matches!(e, ClientEvent::StreamCreated { .. }))
            .await;
        match events.last() {
            Some(ClientEvent::StreamCreated { stream_id }) => *stream_id,
            other => panic!("{other:?}"),
        }
    }
}
