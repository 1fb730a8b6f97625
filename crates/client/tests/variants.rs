//! Our client publishes and plays through the rtmpx server over every variant: rtmp, rtmps, rtmpt,
//! rtmpts, rtmpe, rtmpte. Frames arrive bit-exact.

use std::time::Duration;

use bytes::Bytes;
use rtmp_chunk::Message;
use rtmp_client::{Client, ClientEvent, ConnectOptions, RtmpUrl};
use rtmpx::{Config, Server};

fn frame(i: u32) -> Message {
    let first = if i % 10 == 0 { 0x17 } else { 0x27 };
    let payload: Vec<u8> = [first, 1, 0, 0, 0]
        .into_iter()
        .chain((0..2000u32).map(|b| (b * 13 + i) as u8))
        .collect();
    Message {
        timestamp: i * 40,
        type_id: 9,
        stream_id: 1,
        payload: Bytes::from(payload),
    }
}

async fn round_trip(url: &str) {
    let options = ConnectOptions {
        insecure: true,
        ..ConnectOptions::default()
    };
    let url: RtmpUrl = url.parse().unwrap();
    let mut player = Client::connect(&url, &options)
        .await
        .unwrap_or_else(|e| panic!("{url:?}: {e}"));
    player.play(&url.stream).await.unwrap();
    let mut publisher = Client::connect(&url, &options).await.unwrap();
    let stream_id = publisher.publish(&url.stream).await.unwrap();
    let sent: Vec<Message> = (0..40).map(frame).collect();
    for message in &sent {
        publisher.send(stream_id, message);
    }
    publisher.flush().await.unwrap();
    let mut received = Vec::new();
    while received.len() < sent.len() {
        match tokio::time::timeout(Duration::from_secs(10), player.next_event()).await {
            Ok(Ok(ClientEvent::Media { message, .. })) if message.type_id == 9 => {
                received.push(message.payload)
            }
            Ok(Ok(_)) => {}
            other => panic!(
                "{}: player stopped after {} frames: {other:?}",
                url.scheme.as_str(),
                received.len()
            ),
        }
    }
    assert!(
        received.iter().eq(sent.iter().map(|m| &m.payload)),
        "{} frames differ",
        url.scheme.as_str()
    );
    publisher.unpublish(stream_id, &url.stream).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_play_over_all_six_variants() {
    let any = "127.0.0.1:0".parse().unwrap();
    let config = Config {
        listen: vec![any],
        listen_tls: vec![any],
        listen_http: vec![any],
        listen_api: vec![],
        ..Config::default()
    };
    let server = Server::start(&config).await.unwrap();
    let [shared, tls, http] = [0, 1, 2].map(|i| server.local_addresses()[i]);
    for url in [
        format!("rtmp://{shared}/live/plain"),
        format!("rtmpe://{shared}/live/encrypted"),
        format!("rtmps://{tls}/live/tls"),
        format!("rtmps://{shared}/live/tls-shared"),
        format!("rtmpt://{http}/live/tunnel"),
        format!("rtmpte://{http}/live/tunnel-encrypted"),
        format!("rtmpts://{tls}/live/tunnel-tls"),
    ] {
        round_trip(&url).await;
    }
    server.shutdown(Duration::from_secs(1)).await;
}
