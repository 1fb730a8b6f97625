//! The server in-process with a VOD application: which `play` start plays the file and which the live
//! stream, and `getStreamLength` answered in applications with and without `vod_path`.

use std::net::SocketAddr;

use bytes::Bytes;
use rtmp_chunk::Message;
use rtmp_flv::{FlvHeader, Tag, TagWriter, TAG_VIDEO};
use rtmp_session::{ClientEvent, ClientOptions};
use rtmpx::{Config, Server};

mod support;
use support::Client;

/// A 2 s FLV file: a video keyframe every 500 ms.
fn flv_file() -> Vec<u8> {
    let mut writer = TagWriter::new();
    let mut file = writer.file_header(FlvHeader::default()).to_vec();
    for timestamp in (0..2000).step_by(500) {
        let tag = Tag {
            tag_type: TAG_VIDEO,
            timestamp,
            payload: Bytes::from_static(&[0x17, 1, 0, 0, 0, 5]),
        };
        file.extend_from_slice(&writer.tag(&tag).unwrap());
    }
    file
}

async fn server(dir: &std::path::Path) -> Server {
    std::fs::write(dir.join("clip.flv"), flv_file()).unwrap();
    let text = format!("[app.vod]\nvod_path = {:?}\n", dir.display().to_string());
    let mut config: Config = toml::from_str(&text).unwrap();
    config.listen = vec!["127.0.0.1:0".parse().unwrap()];
    config.listen_tls = vec![];
    config.listen_http = vec![];
    config.listen_api = vec![];
    Server::start(&config).await.unwrap()
}

async fn connect(address: SocketAddr, app: &str) -> Client {
    let options = ClientOptions::new(app, format!("rtmp://{address}/{app}"));
    Client::connect_with(address, options).await
}

fn status(event: &ClientEvent, wanted: &str) -> bool {
    matches!(event, ClientEvent::Status { code, .. } if code == wanted)
}

/// Plays `name` from `start`, then seeks: a file answers `Seek.Notify`, a live stream `Seek.Failed`.
async fn plays_a_file(address: SocketAddr, name: &str, start: f64) -> bool {
    let mut client = connect(address, "vod").await;
    let stream_id = client.create_stream().await;
    client.session.play_from(stream_id, name, start, -1.0, 0);
    client
        .until(|e| matches!(e, ClientEvent::PlayStarted { .. }))
        .await;
    client.session.seek(stream_id, 0.0);
    let events = client
        .until(|e| status(e, "NetStream.Seek.Notify") || status(e, "NetStream.Seek.Failed"))
        .await;
    events.iter().any(|e| status(e, "NetStream.Seek.Notify"))
}

#[tokio::test]
async fn the_start_argument_chooses_between_the_file_and_the_live_stream() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let address = server.local_addresses()[0];
    // No publisher: -2 (and FFmpeg's -2000) and 0 play the file; -1 and -1000 the live stream.
    assert!(plays_a_file(address, "clip", -2.0).await);
    assert!(plays_a_file(address, "clip", -2000.0).await);
    assert!(plays_a_file(address, "clip", 0.0).await);
    assert!(!plays_a_file(address, "clip", -1.0).await);
    assert!(!plays_a_file(address, "clip", -1000.0).await);
    // -2 with no such file: the live stream, waiting for its publisher.
    assert!(!plays_a_file(address, "nothing", -2.0).await);

    // Someone publishes `clip` live: -2 plays that; 0 still plays the file.
    let mut publisher = connect(address, "vod").await;
    let stream_id = publisher.create_stream().await;
    publisher.session.publish(stream_id, "clip");
    publisher
        .until(|e| matches!(e, ClientEvent::PublishStarted { .. }))
        .await;
    let keyframe = Message {
        timestamp: 0,
        type_id: 9,
        stream_id,
        payload: Bytes::from_static(&[0x17, 1, 0, 0, 0, 1]),
    };
    publisher.session.send_message(stream_id, &keyframe);
    publisher.flush().await;
    assert!(!plays_a_file(address, "clip", -2.0).await);
    assert!(plays_a_file(address, "clip", 0.0).await);
}

#[tokio::test]
async fn get_stream_length_is_the_files_duration_and_zero_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let address = server.local_addresses()[0];
    for (app, name, expected) in [
        ("vod", "clip", 1.5),
        ("vod", "nothing", 0.0),
        ("vod", "../clip", 0.0),
        ("live", "clip", 0.0),
    ] {
        let mut client = connect(address, app).await;
        client.session.get_stream_length(name);
        let events = client
            .until(|e| matches!(e, ClientEvent::StreamLength { .. }))
            .await;
        assert!(
            events.contains(&ClientEvent::StreamLength { seconds: expected }),
            "{app}/{name}: {events:?}"
        );
    }
}
