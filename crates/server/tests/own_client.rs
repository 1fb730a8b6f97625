//! The server in-process on 127.0.0.1, driven by the session crate's client role over TCP: publish and
//! play through it in plain RTMP and in RTMPE versions 6, 8 and 9, frames arriving bit-exact.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtmp_chunk::Message;
use rtmp_handshake::ClientConfig;
use rtmp_session::{
    io::write_all_vectored, ClientEvent, ClientOptions, ClientSession, SessionConfig,
};
use rtmpx::{Config, Server};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

struct Client {
    session: ClientSession,
    socket: TcpStream,
}

impl Client {
    async fn connect(address: SocketAddr, handshake: ClientConfig) -> Client {
        let mut options = ClientOptions::new("live", format!("rtmp://{address}/live"));
        options.handshake = handshake;
        let session = ClientSession::new(SessionConfig::default(), options, Instant::now());
        let socket = TcpStream::connect(address).await.unwrap();
        let mut client = Client { session, socket };
        client
            .until(|e| matches!(e, ClientEvent::Connected { .. }))
            .await;
        client
    }

    async fn flush(&mut self) {
        let mut out = Vec::new();
        self.session.poll_transmit(&mut out);
        write_all_vectored(&mut self.socket, &mut out)
            .await
            .unwrap();
    }

    /// Pumps until an event matches; returns every event seen.
    async fn until(&mut self, done: impl Fn(&ClientEvent) -> bool) -> Vec<ClientEvent> {
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

    async fn create_stream(&mut self) -> u32 {
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

fn frame(i: u32) -> Message {
    let first = if i % 10 == 0 { 0x17 } else { 0x27 };
    let payload: Vec<u8> = [first, 1, 0, 0, 0]
        .into_iter()
        .chain((0..3000u32).map(|b| (b * 7 + i) as u8))
        .collect();
    Message {
        timestamp: i * 33,
        type_id: 9,
        stream_id: 1,
        payload: Bytes::from(payload),
    }
}

async fn publish_and_play(address: SocketAddr, handshake: ClientConfig, name: &str) {
    let mut player = Client::connect(address, handshake.clone()).await;
    let play_id = player.create_stream().await;
    player.session.play(play_id, name);
    player
        .until(|e| matches!(e, ClientEvent::PlayStarted { .. }))
        .await;

    let mut publisher = Client::connect(address, handshake).await;
    let publish_id = publisher.create_stream().await;
    publisher.session.publish(publish_id, name);
    publisher
        .until(|e| matches!(e, ClientEvent::PublishStarted { .. }))
        .await;
    let sent: Vec<Message> = (0..50).map(frame).collect();
    for message in &sent {
        publisher.session.send_message(publish_id, message);
    }
    publisher.flush().await;

    let events = player
        .until(|e| matches!(e, ClientEvent::Media { message, .. } if message.timestamp == 49 * 33))
        .await;
    let received: Vec<Bytes> = events
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::Media { message, .. } if message.type_id == 9 => Some(message.payload),
            _ => None,
        })
        .collect();
    let expected: Vec<Bytes> = sent.into_iter().map(|m| m.payload).collect();
    assert_eq!(received.len(), expected.len(), "frame count");
    assert!(
        received == expected,
        "frames differ from what was published"
    );
}

#[tokio::test]
async fn own_client_publishes_and_plays_in_plain_rtmp_and_every_rtmpe_version() {
    let config = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        listen_tls: vec![],
        listen_http: vec![],
        ..Config::default()
    };
    let server = Server::start(&config).await.unwrap();
    let address = server.local_addresses()[0];
    publish_and_play(address, ClientConfig::Digest, "plain").await;
    publish_and_play(address, ClientConfig::Simple, "simple").await;
    for version in [6u8, 8, 9] {
        let handshake = ClientConfig::Encrypted {
            version,
            key_exchange: rtmp_rtmpe::Rtmpe::factory(),
        };
        publish_and_play(address, handshake, &format!("rtmpe{version}")).await;
    }
    server.shutdown(Duration::from_secs(1)).await;
}
