//! The per-connection driver: runs one [`ServerSession`] over any duplex byte stream and routes its
//! publishers and players through the hub. Generic over the stream, so TCP, TLS and HTTP tunnels all
//! use it unchanged.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use bytes::Bytes;
use rtmp_hub::{FrameKind, Hub, Publisher, StreamKey, Subscriber, SubscriberEvent};
use rtmp_session::io::write_all_vectored;
use rtmp_session::{ConnectRequest, ServerEvent, ServerSession, SessionConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::watch;

/// What every connection shares.
#[derive(Debug)]
pub struct ServerContext {
    pub hub: Hub,
    pub session: SessionConfig,
    /// The RTMPS acceptor (its certificate can be reloaded).
    pub tls: Option<rtmp_rtmps::TlsAcceptor>,
    /// The RTMPT tunnel endpoint.
    pub rtmpt: Option<rtmp_rtmpt::server::RtmptServer>,
}

type PlayerRecv = Pin<Box<dyn Future<Output = (u32, Subscriber, SubscriberEvent)> + Send>>;

fn recv_owned(stream_id: u32, mut subscriber: Subscriber) -> PlayerRecv {
    Box::pin(async move {
        let event = subscriber.recv().await;
        (stream_id, subscriber, event)
    })
}

/// Waits for the next event of any player on this connection (never, if there is none).
async fn next_player_event(players: &mut Vec<PlayerRecv>) -> (u32, Subscriber, SubscriberEvent) {
    std::future::poll_fn(|cx| {
        for index in 0..players.len() {
            if let Some(future) = players.get_mut(index) {
                if let Poll::Ready(output) = future.as_mut().poll(cx) {
                    drop(players.swap_remove(index));
                    return Poll::Ready(output);
                }
            }
        }
        Poll::Pending
    })
    .await
}

/// Resolves when any publisher of this connection was taken over by another connection.
async fn any_kicked(publishers: &mut HashMap<u32, Publisher>) {
    if publishers.is_empty() {
        return std::future::pending().await;
    }
    let mut kicked: Vec<_> = publishers
        .values_mut()
        .map(|p| Box::pin(p.kicked()))
        .collect();
    std::future::poll_fn(|cx| {
        if kicked
            .iter_mut()
            .any(|future| future.as_mut().poll(cx).is_ready())
        {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

#[derive(Debug, Default)]
struct PlayerState {
    key: Option<StreamKey>,
    paused: bool,
}

/// One connection's routing state.
struct Connection {
    session: ServerSession,
    hub: Hub,
    peer: SocketAddr,
    transport: &'static str,
    connect: Option<ConnectRequest>,
    publishers: HashMap<u32, Publisher>,
    players: HashMap<u32, PlayerState>,
    player_futures: Vec<PlayerRecv>,
}

/// Serves one connection until the peer leaves, the session fails, or the server shuts down.
pub async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    transport: &'static str,
    context: Arc<ServerContext>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let started = Instant::now();
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut connection = Connection {
        session: ServerSession::new(context.session.clone(), started),
        hub: context.hub.clone(),
        peer,
        transport,
        connect: None,
        publishers: HashMap::new(),
        players: HashMap::new(),
        player_futures: Vec::new(),
    };
    let mut buffer = vec![0u8; 64 * 1024];
    let mut transmits: Vec<Bytes> = Vec::new();
    let reason: String = loop {
        connection.session.poll_transmit(&mut transmits);
        if !transmits.is_empty() {
            if let Err(error) = write_all_vectored(&mut writer, &mut transmits).await {
                break format!("write failed: {error}");
            }
        }
        let deadline = tokio::time::Instant::from_std(connection.session.poll_timeout());
        tokio::select! {
            _ = shutdown.changed() => break "server shutting down".into(),
            read = reader.read(&mut buffer) => match read {
                Ok(0) => break "peer closed the connection".into(),
                Ok(n) => {
                    let input = buffer.get(..n).unwrap_or_default();
                    if let Err(error) = connection.session.handle_input(input, Instant::now()) {
                        break error.to_string();
                    }
                    connection.handle_session_events();
                }
                // TLS clients often close without close_notify; that is an ordinary close.
                Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => break "peer closed the connection".into(),
                Err(error) => break format!("read failed: {error}"),
            },
            (stream_id, mut subscriber, event) = next_player_event(&mut connection.player_futures) => {
                connection.handle_player_event(stream_id, event);
                // Batch everything that is already waiting into the next vectored write.
                while let Some(event) = subscriber.try_recv() {
                    connection.handle_player_event(stream_id, event);
                }
                if connection.players.contains_key(&stream_id) {
                    connection.player_futures.push(recv_owned(stream_id, subscriber));
                }
            }
            _ = any_kicked(&mut connection.publishers) => break "publisher taken over by a new connection".into(),
            _ = tokio::time::sleep_until(deadline) => {
                if let Err(error) = connection.session.handle_timeout(Instant::now()) {
                    break error.to_string();
                }
            }
        }
    };
    let (bytes_in, bytes_out) = connection.session.byte_counts();
    tracing::info!(
        peer = %peer,
        transport,
        app = connection.connect.as_ref().map_or("", |c| c.app.as_str()),
        duration_ms = started.elapsed().as_millis() as u64,
        bytes_in,
        bytes_out,
        reason = %reason,
        "close"
    );
}

impl Connection {
    fn app(&self) -> String {
        self.connect
            .as_ref()
            .map(|c| c.app.clone())
            .unwrap_or_default()
    }

    fn handle_session_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match event {
                ServerEvent::HandshakeComplete { mode } => {
                    tracing::debug!(peer = %self.peer, ?mode, "handshake")
                }
                ServerEvent::Connect(request) => {
                    tracing::info!(peer = %self.peer, transport = self.transport, app = %request.app,
                        tc_url = request.tc_url.as_deref().unwrap_or(""), flash_ver = request.flash_ver.as_deref().unwrap_or(""), "connect");
                    self.connect = Some(request);
                    self.session.accept_connect();
                }
                ServerEvent::Publish {
                    stream_id,
                    stream_name,
                    ..
                } => {
                    let key = StreamKey::new(self.app(), stream_name.clone());
                    match self.hub.publish(&key) {
                        Ok(publisher) => {
                            tracing::info!(peer = %self.peer, transport = self.transport, stream = %key, "publish");
                            self.session.accept_publish(stream_id);
                            self.publishers.insert(stream_id, publisher);
                        }
                        Err(error) => {
                            tracing::warn!(peer = %self.peer, stream = %key, %error, "publish refused");
                            self.session.reject_publish(
                                stream_id,
                                "NetStream.Publish.BadName",
                                &error.to_string(),
                            );
                        }
                    }
                }
                ServerEvent::Play {
                    stream_id,
                    stream_name,
                    ..
                } => self.start_player(stream_id, stream_name),
                ServerEvent::Media { stream_id, message } => {
                    if let Some(publisher) = self.publishers.get(&stream_id) {
                        publisher.send(&message);
                    }
                }
                ServerEvent::Metadata { stream_id, message } => {
                    if let Some(publisher) = self.publishers.get(&stream_id) {
                        publisher.set_metadata(message.as_ref());
                    }
                }
                ServerEvent::Pause { stream_id, paused } => {
                    if let Some(player) = self.players.get_mut(&stream_id) {
                        player.paused = paused;
                    }
                }
                ServerEvent::Unpublish { stream_id } => {
                    if let Some(publisher) = self.publishers.remove(&stream_id) {
                        tracing::info!(peer = %self.peer, stream = %publisher.key(), "unpublish");
                    }
                }
                ServerEvent::StopPlay { stream_id } => {
                    if let Some(PlayerState { key: Some(key), .. }) =
                        self.players.remove(&stream_id)
                    {
                        tracing::info!(peer = %self.peer, stream = %key, "stop");
                    }
                }
            }
        }
    }

    fn start_player(&mut self, stream_id: u32, stream_name: String) {
        let key = StreamKey::new(self.app(), stream_name.clone());
        tracing::info!(peer = %self.peer, transport = self.transport, stream = %key, "play");
        let mut subscriber = self.hub.subscribe(&key);
        self.session.accept_play(stream_id, &stream_name);
        self.players.insert(
            stream_id,
            PlayerState {
                key: Some(key),
                paused: false,
            },
        );
        // A live stream announces itself first: that is the start, not a "publish notify".
        let mut first = subscriber.try_recv();
        if matches!(first, Some(SubscriberEvent::Published)) {
            first = None;
        }
        if let Some(event) = first {
            self.handle_player_event(stream_id, event);
        }
        while let Some(event) = subscriber.try_recv() {
            self.handle_player_event(stream_id, event);
        }
        self.player_futures.push(recv_owned(stream_id, subscriber));
    }

    fn handle_player_event(&mut self, stream_id: u32, event: SubscriberEvent) {
        let Some(player) = self.players.get(&stream_id) else {
            return;
        };
        match event {
            SubscriberEvent::Published => {
                self.session.send_status(
                    stream_id,
                    "status",
                    "NetStream.Play.PublishNotify",
                    "The stream is now published.",
                );
            }
            SubscriberEvent::Unpublished => {
                self.session.send_status(
                    stream_id,
                    "status",
                    "NetStream.Play.UnpublishNotify",
                    "The stream is now unpublished.",
                );
            }
            SubscriberEvent::Frame(frame) => {
                if player.paused && frame.kind != FrameKind::Data {
                    return;
                }
                if frame.info.enhanced {
                    let accepted = frame
                        .info
                        .codec
                        .map(|c| String::from_utf8_lossy(&c).into_owned());
                    let allowed = match (&self.connect, accepted) {
                        (Some(connect), Some(fourcc)) => connect.accepts_fourcc(&fourcc),
                        _ => false,
                    };
                    if !allowed {
                        return;
                    }
                }
                self.session.send_shared(stream_id, &frame.shared);
            }
        }
    }
}
