//! The graceful drain, in-process on 127.0.0.1: `POST /api/v1/server/drain` stops accepting and clears
//! `/readyz`; a publisher and a player on rtmp-client (capsEx Reconnect) move to a second server named
//! by `drain_reconnect_url` with no frame lost or repeated; a legacy player (no capsEx) gets
//! UnpublishNotify and is ended at the drain timeout; the drain is over once everyone left.

use std::time::Duration;

use bytes::Bytes;
use rtmp_chunk::{type_id, Message};
use rtmp_client::{Client, ClientError, ClientEvent, ConnectOptions, Player, Publisher, RtmpUrl};
use rtmpx::{Config, Server};
use tokio::net::TcpStream;

mod support;

const FRAMES: u32 = 90;
const FRAME_MS: u32 = 20;

async fn server(reconnect_url: Option<String>) -> Server {
    let config = Config {
        drain_timeout_s: 1,
        drain_reconnect_url: reconnect_url,
        ..Config::default()
    };
    support::start(config, false, true).await
}

/// Sends one request to the API and returns the status code.
async fn request(server: &Server, method: &str, path: &str) -> u16 {
    support::request(server.api_addresses()[0], method, path, "", "")
        .await
        .0
}

/// Frame `index`: a keyframe every 10 frames, the frame's index in its payload.
fn frame(index: u32) -> Message {
    let kind = if index % 10 == 0 { 0x17 } else { 0x27 };
    let mut payload = vec![kind, 1, 0, 0, 0];
    payload.extend(index.to_be_bytes());
    Message {
        timestamp: index * FRAME_MS,
        type_id: type_id::VIDEO,
        stream_id: 1,
        payload: Bytes::from(payload),
    }
}

fn legacy_options() -> ConnectOptions {
    ConnectOptions {
        caps_ex: 0,
        ..ConnectOptions::default()
    }
}

#[tokio::test]
async fn a_drain_moves_reconnecting_clients_and_ends_the_others() {
    let second = server(None).await;
    let first = server(Some(format!("rtmp://{}/live", second.local_addresses()[0]))).await;
    let url: RtmpUrl = format!("rtmp://{}/live/cam", first.local_addresses()[0])
        .parse()
        .unwrap();
    assert_eq!(request(&first, "GET", "/readyz").await, 200);

    let mut player = Player::start(&url, &ConnectOptions::default())
        .await
        .unwrap();
    let mut legacy = Client::connect(&url, &legacy_options()).await.unwrap();
    legacy.play("cam").await.unwrap();
    let mut publisher = Publisher::start(&url, &ConnectOptions::default())
        .await
        .unwrap();
    let sending = tokio::spawn(async move {
        publisher
            .send(&Message {
                timestamp: 0,
                type_id: type_id::VIDEO,
                stream_id: 1,
                payload: Bytes::from_static(b"\x17\x00\x00\x00\x00\x01\x64"),
            })
            .await
            .unwrap();
        for index in 0..FRAMES {
            publisher.send(&frame(index)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(u64::from(FRAME_MS))).await;
        }
        let moved = (publisher.url().port, publisher.reconnects());
        publisher.finish().await.unwrap();
        moved
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert_eq!(request(&first, "POST", "/api/v1/server/drain").await, 202);
    assert_eq!(request(&first, "POST", "/api/v1/server/drain").await, 409);
    assert_eq!(request(&first, "GET", "/readyz").await, 503);
    assert!(
        TcpStream::connect(first.local_addresses()[0])
            .await
            .is_err(),
        "a draining server accepts no connection"
    );

    // The reconnecting player: every frame once, in order, across both servers.
    let mut indexes = Vec::new();
    let mut headers = 0;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), player.next_event())
            .await
            .expect("the player goes on")
            .unwrap();
        match event {
            ClientEvent::Media { message, .. } if message.type_id != type_id::VIDEO => {}
            ClientEvent::Media { message, .. } if message.payload.get(1) == Some(&0) => {
                headers += 1
            }
            ClientEvent::Media { message, .. } => {
                let index = u32::from_be_bytes(message.payload[5..9].try_into().unwrap());
                indexes.push(index);
            }
            ClientEvent::Status { code, .. } if code == "NetStream.Play.UnpublishNotify" => break,
            _ => {}
        }
    }
    assert_eq!(indexes, (0..FRAMES).collect::<Vec<_>>());
    assert_eq!(
        headers, 1,
        "the sequence header is not repeated when unchanged"
    );
    assert_eq!(player.url().port, second.local_addresses()[0].port());
    assert_eq!(player.reconnects(), 1);
    let (port, reconnects) = sending.await.unwrap();
    assert_eq!((port, reconnects), (second.local_addresses()[0].port(), 1));

    // The legacy player saw its stream end, then the server end it at the drain timeout.
    let mut unpublished = false;
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(5), legacy.next_event())
            .await
            .expect("the legacy player is ended at the drain timeout")
        {
            Ok(ClientEvent::Status { code, .. }) if code == "NetStream.Play.UnpublishNotify" => {
                unpublished = true
            }
            Ok(ClientEvent::ReconnectRequest { .. }) => panic!("no capsEx Reconnect, no request"),
            Ok(_) => {}
            Err(error) => break error,
        }
    };
    assert!(unpublished);
    assert!(matches!(ended, ClientError::Closed | ClientError::Io(_)));
    tokio::time::timeout(Duration::from_secs(3), first.drain().finished())
        .await
        .expect("the drain is over once everyone left");
    first.shutdown(Duration::from_secs(1)).await;
    second.shutdown(Duration::from_secs(1)).await;
}
