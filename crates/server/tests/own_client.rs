//! The server in-process on 127.0.0.1, driven by the session crate's client role over TCP: publish and
//! play through it in plain RTMP and in RTMPE versions 6, 8 and 9, frames arriving bit-exact; a stalled
//! player next to a fast one; players released when they leave, while others join and frames flow, and
//! when their runtime is dropped.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtmp_chunk::Message;
use rtmp_handshake::ClientConfig;
use rtmp_session::{ClientEvent, ClientOptions};
use rtmpx::{Config, Server};

mod support;
use support::Client;

impl Client {
    async fn connect(address: SocketAddr, handshake: ClientConfig) -> Client {
        let mut options = ClientOptions::new("live", format!("rtmp://{address}/live"));
        options.handshake = handshake;
        Client::connect_with(address, options).await
    }

    /// Creates a stream and publishes `name` on it; returns the stream id.
    async fn start_publishing(&mut self, name: &str) -> u32 {
        let stream_id = self.create_stream().await;
        self.session.publish(stream_id, name);
        self.until(|e| matches!(e, ClientEvent::PublishStarted { .. }))
            .await;
        stream_id
    }
}

/// The video payloads among `events`, in order.
fn video_payloads(events: Vec<ClientEvent>) -> Vec<Bytes> {
    video_messages(events)
        .into_iter()
        .map(|m| m.payload)
        .collect()
}

fn video_messages(events: Vec<ClientEvent>) -> Vec<Message> {
    events
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::Media { message, .. } if message.type_id == 9 => Some(message),
            _ => None,
        })
        .collect()
}

fn frame(i: u32) -> Message {
    support::video_frame(i, 3000)
}

async fn publish_and_play(address: SocketAddr, handshake: ClientConfig, name: &str) {
    let mut player = Client::connect(address, handshake.clone()).await;
    let play_id = player.create_stream().await;
    player.session.play(play_id, name);
    player
        .until(|e| matches!(e, ClientEvent::PlayStarted { .. }))
        .await;

    let mut publisher = Client::connect(address, handshake).await;
    let publish_id = publisher.start_publishing(name).await;
    let sent: Vec<Message> = (0..50).map(frame).collect();
    for message in &sent {
        publisher.session.send_message(publish_id, message);
    }
    publisher.flush().await;

    let events = player
        .until(|e| matches!(e, ClientEvent::Media { message, .. } if message.timestamp == 49 * 33))
        .await;
    let received: Vec<Bytes> = video_payloads(events);
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
        listen_api: vec![],
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

async fn start_plain_server() -> Server {
    support::start(Config::default(), false, false).await
}

async fn start_player(address: SocketAddr, handshake: ClientConfig, name: &str) -> Client {
    let mut player = Client::connect(address, handshake).await;
    let play_id = player.create_stream().await;
    player.session.play(play_id, name);
    player
        .until(|e| matches!(e, ClientEvent::PlayStarted { .. }))
        .await;
    player
}

/// Waits (up to 5 s) for the hub to count no player; fails otherwise.
async fn until_no_player_is_left(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.hub().players() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} players still subscribed after they left",
            server.hub().players()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A player that stops reading fills its socket (the publisher's task then leaves the rest of the
/// write to the player's own) and falls behind the ring; one that reads gets every frame meanwhile, and
/// the stalled one, reading again, gets whole frames in order, then the live edge.
async fn stalled_player_beside_a_fast_one(
    address: SocketAddr,
    handshake: ClientConfig,
    name: &str,
) {
    const FRAMES: u32 = 600;
    const SIZE: u32 = 60_000;
    let mut stalled = start_player(address, handshake.clone(), name).await;
    let mut fast = start_player(address, handshake.clone(), name).await;
    let mut publisher = Client::connect(address, handshake).await;
    let publish_id = publisher.start_publishing(name).await;

    let sent: Vec<Message> = (0..FRAMES).map(|i| support::video_frame(i, SIZE)).collect();
    let mut fast_received = Vec::new();
    for batch in sent.chunks(10) {
        for message in batch {
            publisher.session.send_message(publish_id, message);
        }
        publisher.flush().await;
        let last = batch.last().map(|m| m.timestamp);
        let events = fast
            .until(|e| matches!(e, ClientEvent::Media { message, .. } if Some(message.timestamp) == last))
            .await;
        fast_received.extend(video_payloads(events));
    }
    let expected: Vec<Bytes> = sent.iter().map(|m| m.payload.clone()).collect();
    assert!(
        fast_received == expected,
        "the fast player's frames differ from what was published"
    );

    let last = (FRAMES - 1) * 33;
    let events = stalled
        .until(|e| matches!(e, ClientEvent::Media { message, .. } if message.timestamp == last))
        .await;
    let received: Vec<Message> = video_messages(events);
    for pair in received.windows(2) {
        assert!(pair[0].timestamp < pair[1].timestamp, "frames out of order");
    }
    for message in &received {
        let index = (message.timestamp / 33) as usize;
        assert!(
            message.payload == sent[index].payload,
            "frame {index} differs"
        );
    }
    assert!(
        received.len() < FRAMES as usize,
        "the stalled player got all {} frames: it never fell behind, so this test tested nothing",
        received.len()
    );
}

#[tokio::test]
async fn a_stalled_player_falls_behind_in_whole_frames_while_another_gets_every_frame() {
    let server = start_plain_server().await;
    let address = server.local_addresses()[0];
    stalled_player_beside_a_fast_one(address, ClientConfig::Digest, "plain").await;
    let encrypted = ClientConfig::Encrypted {
        version: 9,
        key_exchange: rtmp_rtmpe::Rtmpe::factory(),
    };
    stalled_player_beside_a_fast_one(address, encrypted, "rtmpe").await;
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn players_that_leave_are_released() {
    let server = start_plain_server().await;
    let address = server.local_addresses()[0];
    let mut publisher = Client::connect(address, ClientConfig::Digest).await;
    let publish_id = publisher.start_publishing("leaving").await;
    let mut players = Vec::new();
    for _ in 0..3 {
        players.push(start_player(address, ClientConfig::Digest, "leaving").await);
    }
    // Frames flow, so each player's subscription holds the waker that writes to it directly.
    for i in 0..20 {
        publisher.session.send_message(publish_id, &frame(i));
    }
    publisher.flush().await;
    for player in &mut players {
        player
            .until(
                |e| matches!(e, ClientEvent::Media { message, .. } if message.timestamp == 19 * 33),
            )
            .await;
    }
    assert_eq!(server.hub().players(), 3);
    drop(players);
    until_no_player_is_left(&server).await;
    server.shutdown(Duration::from_secs(1)).await;
}

/// Players join, take a few frames and leave while frames flow, several at once: nothing hangs (a
/// delivery from the publisher's task meeting a connection that is being set up or torn down) and the
/// hub ends with no player.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_joining_and_leaving_while_frames_flow() {
    let server = start_plain_server().await;
    let address = server.local_addresses()[0];
    let mut publisher = Client::connect(address, ClientConfig::Digest).await;
    let publish_id = publisher.start_publishing("churn").await;
    let feeding = tokio::spawn(async move {
        for i in 0..400 {
            publisher.session.send_message(publish_id, &frame(i));
            publisher.flush().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        publisher
    });
    let churners: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(async move {
                for _ in 0..5 {
                    let mut player = start_player(address, ClientConfig::Digest, "churn").await;
                    let frames = std::sync::atomic::AtomicU32::new(0);
                    player
                        .until(|e| {
                            if matches!(e, ClientEvent::Media { .. }) {
                                frames.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            frames.load(std::sync::atomic::Ordering::Relaxed) >= 5
                        })
                        .await;
                }
            })
        })
        .collect();
    for churner in churners {
        tokio::time::timeout(Duration::from_secs(30), churner)
            .await
            .expect("players hung")
            .unwrap();
    }
    let publisher = feeding.await.unwrap();
    until_no_player_is_left(&server).await;
    drop(publisher);
    server.shutdown(Duration::from_secs(1)).await;
}

/// One connection publishing a stream and playing it back: the flush runs on the connection's own task,
/// which holds its state, so the delivery hands over to that task instead of waiting for itself.
#[tokio::test]
async fn a_connection_plays_what_it_publishes() {
    let server = start_plain_server().await;
    let address = server.local_addresses()[0];
    let mut client = Client::connect(address, ClientConfig::Digest).await;
    let publish_id = client.start_publishing("loop").await;
    let play_id = client.create_stream().await;
    client.session.play(play_id, "loop");
    client
        .until(|e| matches!(e, ClientEvent::PlayStarted { .. }))
        .await;
    let sent: Vec<Message> = (0..30).map(frame).collect();
    for message in &sent {
        client.session.send_message(publish_id, message);
    }
    let events = tokio::time::timeout(
        Duration::from_secs(10),
        client.until(
            |e| matches!(e, ClientEvent::Media { message, .. } if message.timestamp == 29 * 33),
        ),
    )
    .await
    .expect("the played-back frames never came");
    let received: Vec<Bytes> = video_payloads(events);
    let expected: Vec<Bytes> = sent.into_iter().map(|m| m.payload).collect();
    assert!(
        received == expected,
        "played-back frames differ from what was published"
    );
    server.shutdown(Duration::from_secs(1)).await;
}

/// A runtime dropped with connections still open (their tasks dropped, not finished) leaves no player
/// subscribed: each connection leaves its streams however its task ends.
#[test]
fn connections_dropped_with_their_runtime_leave_their_streams() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (hub, clients) = runtime.block_on(async {
        let server = start_plain_server().await;
        let address = server.local_addresses()[0];
        let mut publisher = Client::connect(address, ClientConfig::Digest).await;
        let publish_id = publisher.start_publishing("dropped").await;
        let mut player = start_player(address, ClientConfig::Digest, "dropped").await;
        for i in 0..20 {
            publisher.session.send_message(publish_id, &frame(i));
        }
        publisher.flush().await;
        player
            .until(
                |e| matches!(e, ClientEvent::Media { message, .. } if message.timestamp == 19 * 33),
            )
            .await;
        assert_eq!(server.hub().players(), 1);
        (server.hub().clone(), (server, publisher, player))
    });
    drop(runtime);
    drop(clients);
    assert_eq!(
        hub.players(),
        0,
        "a dropped connection kept its subscription"
    );
}
