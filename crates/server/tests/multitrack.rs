//! E-RTMP v2 multitrack through the server, in-process on 127.0.0.1 with rtmp-client: a publisher sends
//! hand-built multitrack messages (AVC video, two AAC tracks); a player declaring capsEx Multitrack gets
//! them as sent, a legacy player (no capsEx) gets track 0 alone as legacy FLV, and both joining late get
//! every header first.

use std::time::Duration;

use bytes::Bytes;
use rtmp_chunk::{type_id, Message};
use rtmp_client::{Client, ConnectOptions, RtmpUrl};
use rtmp_session::ClientEvent;
use rtmpx::Config;

mod support;

fn media(type_id: u8, timestamp: u32, payload: &[u8]) -> Message {
    Message {
        timestamp,
        type_id,
        stream_id: 1,
        payload: Bytes::copy_from_slice(payload),
    }
}

const VIDEO_START: &[u8] = b"\x17\x00\x00\x00\x00\x01\x64";
/// ManyTracks AAC sequence start of tracks 0 and 1.
const AUDIO_START: &[u8] = b"\x95\x10mp4a\x00\x00\x00\x02\x12\x10\x01\x00\x00\x02\x11\x90";
const KEYFRAME: &[u8] = b"\x17\x01\x00\x00\x00\xAA";
/// ManyTracks AAC frames of tracks 0 and 1.
const AUDIO_FRAMES: &[u8] = b"\x95\x11mp4a\x00\x00\x00\x01\xA0\x01\x00\x00\x01\xA1";

async fn player(url: &RtmpUrl, caps_ex: u8) -> Client {
    let options = ConnectOptions {
        caps_ex,
        fourcc_list: if caps_ex == 0 {
            Vec::new()
        } else {
            vec!["avc1".into(), "mp4a".into()]
        },
        timeout: Duration::from_secs(5),
        ..ConnectOptions::default()
    };
    let mut client = Client::connect(url, &options).await.unwrap();
    client.play("tracks").await.unwrap();
    client
}

async fn media_payloads(client: &mut Client, count: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    while got.len() < count {
        let event = tokio::time::timeout(Duration::from_secs(5), client.next_event())
            .await
            .unwrap_or_else(|_| panic!("media in time; so far {got:?}"))
            .unwrap();
        match event {
            ClientEvent::Media { message, .. }
                if matches!(message.type_id, type_id::AUDIO | type_id::VIDEO) =>
            {
                got.push(message.payload.to_vec())
            }
            _ => {}
        }
    }
    got
}

#[tokio::test]
async fn multitrack_players_get_every_track_and_legacy_players_the_default_one() {
    let server = support::start(Config::default(), false, false).await;
    let url: RtmpUrl = format!("rtmp://{}/live", server.local_addresses()[0])
        .parse()
        .unwrap();
    let mut publisher = Client::connect(&url, &ConnectOptions::default())
        .await
        .unwrap();
    let stream_id = publisher.publish("tracks").await.unwrap();
    for (kind, payload) in [
        (type_id::VIDEO, VIDEO_START),
        (type_id::AUDIO, AUDIO_START),
        (type_id::VIDEO, KEYFRAME),
        (type_id::AUDIO, AUDIO_FRAMES),
    ] {
        publisher.send(stream_id, &media(kind, 0, payload));
    }
    publisher.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut multitrack = player(&url, rtmp_session::CAPS_EX_MULTITRACK).await;
    let mut legacy = player(&url, 0).await;
    assert_eq!(
        media_payloads(&mut multitrack, 4).await,
        vec![
            VIDEO_START.to_vec(),
            AUDIO_START.to_vec(),
            KEYFRAME.to_vec(),
            AUDIO_FRAMES.to_vec()
        ]
    );
    assert_eq!(
        media_payloads(&mut legacy, 4).await,
        vec![
            VIDEO_START.to_vec(),
            b"\xAF\x00\x12\x10".to_vec(),
            KEYFRAME.to_vec(),
            b"\xAF\x01\xA0".to_vec()
        ]
    );
}
