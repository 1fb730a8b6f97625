//! A server that relays metadata as its publisher sent it, `@setDataFrame("onMetaData", ...)`
//! (node-media-server 4 does): our client reports it as metadata, without the prefix.

use std::time::{Duration, Instant};

use rtmp_amf::Amf0Value;
use rtmp_chunk::Message;
use rtmp_client::{Client, ClientEvent, ConnectOptions, RtmpUrl};
use rtmp_session::io::write_all_vectored;
use rtmp_session::{ServerEvent, ServerSession, SessionConfig};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

fn metadata() -> Amf0Value {
    Amf0Value::EcmaArray(vec![("width".into(), Amf0Value::Number(640.0))])
}

/// Accepts one connection and answers its play with wrapped metadata.
async fn relaying_server(listener: TcpListener) {
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut session = ServerSession::new(
        SessionConfig::default(),
        Box::new(|bytes: &mut [u8]| bytes.fill(7)),
        Instant::now(),
    );
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        while let Some(event) = session.poll_event() {
            match event {
                ServerEvent::Connect(_) => session.accept_connect(),
                ServerEvent::Play {
                    stream_id,
                    stream_name,
                    ..
                } => {
                    session.accept_play(stream_id, &stream_name);
                    let values = ["@setDataFrame".into(), "onMetaData".into(), metadata()];
                    session.send_message(
                        stream_id,
                        &Message {
                            timestamp: 0,
                            type_id: 18,
                            stream_id,
                            payload: rtmp_amf::encode_amf0_values(&values).unwrap(),
                        },
                    );
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        session.poll_transmit(&mut out);
        if write_all_vectored(&mut socket, &mut out).await.is_err() {
            return;
        }
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if session.handle_input(&buffer[..n], Instant::now()).is_err() {
                    return;
                }
            }
        }
    }
}

#[tokio::test]
async fn set_data_frame_metadata_from_a_relaying_server_is_metadata() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url: RtmpUrl = format!("rtmp://{}/live/s", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let server = tokio::spawn(relaying_server(listener));
    let mut client = Client::connect(&url, &ConnectOptions::default())
        .await
        .unwrap();
    client.play(&url.stream).await.unwrap();
    let message = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let ClientEvent::Metadata { message, .. } = client.next_event().await.unwrap() {
                return message;
            }
        }
    })
    .await
    .expect("no metadata event");
    assert_eq!(
        rtmp_amf::decode_amf0(&message.payload).unwrap(),
        [Amf0Value::from("onMetaData"), metadata()]
    );
    drop(client);
    server.await.unwrap();
}
