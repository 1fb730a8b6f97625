//! A bare RTMP server from the two reusable cores alone: `rtmp_session::ServerSession` per TCP
//! connection, every publish and play routed through one `rtmp_hub::Hub`. No RTMPS, RTMPT or RTMPE, no
//! configuration, no limits: what the `rtmpx` library adds on top.
//!
//! `cargo run -p rtmpx --example minimal_server [ADDRESS]` (default 127.0.0.1:1935), then
//! `ffmpeg -re -i in.flv -c copy -f flv rtmp://127.0.0.1/live/cam` and `ffplay rtmp://127.0.0.1/live/cam`.

use std::future::pending;
use std::time::Instant;

use rtmp_hub::{Hub, HubConfig, Publisher, StreamKey, Subscriber, SubscriberEvent};
use rtmp_session::io::write_all_vectored;
use rtmp_session::{ServerEvent, ServerSession, SessionConfig, StatusCode};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:1935".into());
    let listener = TcpListener::bind(&address).await?;
    let session_config = SessionConfig::default();
    let hub_config = HubConfig {
        chunk_size: session_config.chunk_size, // players get the hub's chunks as they are
        ..HubConfig::default()
    };
    let hub = Hub::new(hub_config, Instant::now());
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (socket, peer) = listener.accept().await?;
        let (hub, config) = (hub.clone(), session_config.clone());
        tokio::spawn(async move {
            if let Err(error) = serve(socket, hub, config).await {
                eprintln!("{peer}: {error}");
            }
        });
    }
}

/// One connection: bytes in, session events routed through the hub, the session's bytes out.
async fn serve(
    socket: TcpStream,
    hub: Hub,
    config: SessionConfig,
) -> Result<(), Box<dyn std::error::Error>> {
    let (mut reader, mut writer) = socket.into_split();
    let random = Box::new(|bytes: &mut [u8]| rand::fill(bytes));
    let mut session = ServerSession::new(config, random, Instant::now());
    let mut app = String::new();
    let mut publisher: Option<Publisher> = None;
    let mut player: Option<(u32, Subscriber)> = None;
    let (mut input, mut output) = (vec![0u8; 64 * 1024], Vec::new());
    loop {
        while let Some(event) = session.poll_event() {
            let now = Instant::now();
            match event {
                ServerEvent::Connect(request) => {
                    app = request.app;
                    session.accept_connect();
                }
                ServerEvent::Publish {
                    stream_id,
                    stream_name,
                    ..
                } => match hub.publish(&StreamKey::new(app.as_str(), stream_name), now) {
                    Ok(taken) => {
                        session.accept_publish(stream_id);
                        publisher = Some(taken);
                    }
                    Err(error) => session.reject_publish(
                        stream_id,
                        StatusCode::PublishBadName,
                        &error.to_string(),
                    ),
                },
                ServerEvent::Play {
                    stream_id,
                    stream_name,
                    ..
                } => {
                    session.accept_play(stream_id, &stream_name);
                    player = Some((
                        stream_id,
                        hub.subscribe(&StreamKey::new(app.as_str(), stream_name)),
                    ));
                }
                ServerEvent::Media { message, .. } => {
                    if let Some(publisher) = &publisher {
                        publisher.send(&message, now);
                    }
                }
                ServerEvent::Metadata { message, .. } => {
                    if let Some(publisher) = &publisher {
                        publisher.set_metadata(message.as_ref());
                    }
                }
                ServerEvent::Unpublish { .. } => publisher = None,
                ServerEvent::StopPlay { .. } => player = None,
                _ => {}
            }
        }
        session.poll_transmit(&mut output);
        write_all_vectored(&mut writer, &mut output).await?;
        if session.is_closed() {
            return Ok(());
        }
        let timeout = tokio::time::sleep_until(session.poll_timeout().into());
        tokio::select! {
            read = reader.read(&mut input) => match read? {
                0 => return Ok(()),
                count => session.handle_input(&input[..count], Instant::now())?,
            },
            (stream_id, event) = next_for_player(&mut player) => match event {
                SubscriberEvent::Frame(frame) => session.send_shared(stream_id, &frame.shared),
                SubscriberEvent::Published => session.send_status(stream_id, StatusCode::PlayPublishNotify, "published"),
                SubscriberEvent::Unpublished => session.send_status(stream_id, StatusCode::PlayUnpublishNotify, "unpublished"),
            },
            () = timeout => session.handle_timeout(Instant::now())?,
        }
    }
}

/// The next event for this connection's player, or never when it plays nothing.
async fn next_for_player(player: &mut Option<(u32, Subscriber)>) -> (u32, SubscriberEvent) {
    match player {
        Some((stream_id, subscriber)) => (*stream_id, subscriber.recv().await),
        None => pending().await,
    }
}
