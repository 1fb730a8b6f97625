//! The per-connection driver: runs one [`ServerSession`] over any duplex byte stream and routes its
//! publishers and players through the hub. Generic over the stream, so TCP, TLS and HTTP tunnels all
//! use it unchanged.
//!
//! **Direct delivery.** On a plain TCP socket a player's frames are written by whoever flushes the
//! stream, the publisher's task, rather than by waking the player's own task: the connection's state
//! sits behind a mutex, and the waker it gives its subscribers ([`Shared`]) runs the player's turn
//! (the same [`Connection::handle_player_event`]) and sends the result at once. A write the socket does
//! not take whole, a connection busy elsewhere, or any other transport hand over to the connection's task,
//! which writes what is left first. One task makes at most [`DIRECT_WRITES_PER_TURN`] such writes per
//! turn; the players beyond are woken, so that the runtime's other threads share a large audience. See
//! docs/hub.md.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use bytes::Bytes;
use rtmp_hub::{FrameKind, Hub, Publisher, StreamKey, Subscriber, SubscriberEvent};
use rtmp_session::io::{write_all_now, write_all_vectored};
use rtmp_session::{ConnectRequest, FourCc, ServerEvent, ServerSession, SessionConfig, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use crate::socket::SendNow;

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

/// A connection's publishers or players by message stream id. A connection has one or two (at most the
/// session's `max_streams`), so a vector searched by id is cheaper per frame than a hashed map.
#[derive(Debug)]
struct ByStream<T>(Vec<(u32, T)>);

impl<T> ByStream<T> {
    fn new() -> Self {
        Self(Vec::new())
    }

    fn get(&self, stream_id: u32) -> Option<&T> {
        self.0
            .iter()
            .find_map(|(id, value)| (*id == stream_id).then_some(value))
    }

    fn get_mut(&mut self, stream_id: u32) -> Option<&mut T> {
        self.0
            .iter_mut()
            .find_map(|(id, value)| (*id == stream_id).then_some(value))
    }

    /// Adds or replaces the entry of `stream_id`.
    fn insert(&mut self, stream_id: u32, value: T) {
        match self.get_mut(stream_id) {
            Some(slot) => *slot = value,
            None => self.0.push((stream_id, value)),
        }
    }

    fn remove(&mut self, stream_id: u32) -> Option<T> {
        let at = self.0.iter().position(|(id, _)| *id == stream_id)?;
        Some(self.0.swap_remove(at).1)
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &mut T)> {
        self.0.iter_mut().map(|(id, value)| (*id, value))
    }

    fn values(&self) -> impl Iterator<Item = &T> {
        self.0.iter().map(|(_, value)| value)
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.0.iter_mut().map(|(_, value)| value)
    }
}

/// The next event of any player on this connection; registers `cx`'s waker with every subscriber otherwise.
fn poll_players(
    players: &mut ByStream<PlayerState>,
    cx: &mut Context<'_>,
) -> Poll<(u32, SubscriberEvent)> {
    for (stream_id, player) in players.iter_mut() {
        if let Poll::Ready(event) = player.subscriber.poll_recv(cx) {
            return Poll::Ready((stream_id, event));
        }
    }
    Poll::Pending
}

/// Waits for the next event of any player on this connection (never, if there is none). With direct
/// delivery the subscribers are given `delivery` (the flusher then writes the frames itself and wakes
/// this task only to hand over); otherwise the task's own waker.
async fn next_player_event(shared: &Shared, delivery: Option<&Waker>) -> (u32, SubscriberEvent) {
    std::future::poll_fn(|cx| {
        let Some(delivery) = delivery else {
            return poll_players(&mut shared.lock().players, cx);
        };
        shared.register_task(cx.waker());
        poll_players(
            &mut shared.lock().players,
            &mut Context::from_waker(delivery),
        )
    })
    .await
}

/// Resolves when any publisher of this connection was taken over by another connection.
async fn any_kicked(shared: &Shared) {
    std::future::poll_fn(|cx| {
        if shared
            .lock()
            .publishers
            .values_mut()
            .any(|p| p.poll_kicked(cx).is_ready())
        {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

#[derive(Debug)]
struct PlayerState {
    subscriber: Subscriber,
    paused: bool,
}

const READ_BUFFER_LEN: usize = 64 * 1024;

thread_local! {
    /// One read buffer per runtime thread, shared by its connections: the bytes of a read are handed to
    /// the session within the same poll, so no connection keeps a buffer of its own between reads.
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUFFER_LEN]);
}

enum ReadOutcome {
    /// Bytes were read and given to the session.
    Input,
    Closed,
}

/// Reads what the peer sent into the thread's buffer and feeds it to the session.
fn poll_read_into<S: AsyncRead + Unpin>(
    stream: &mut S,
    session: &mut ServerSession,
    cx: &mut Context<'_>,
) -> Poll<Result<ReadOutcome, String>> {
    READ_BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => poll_read_with(stream, session, cx, &mut buffer),
        // Only if a stream's own read re-entered this one: never with the transports we have.
        Err(_) => poll_read_with(stream, session, cx, &mut [0u8; 4096]),
    })
}

fn poll_read_with<S: AsyncRead + Unpin>(
    stream: &mut S,
    session: &mut ServerSession,
    cx: &mut Context<'_>,
    buffer: &mut [u8],
) -> Poll<Result<ReadOutcome, String>> {
    let mut read = ReadBuf::new(buffer);
    match Pin::new(stream).poll_read(cx, &mut read) {
        Poll::Pending => Poll::Pending,
        // TLS clients often close without close_notify; that is an ordinary close.
        Poll::Ready(Err(error)) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            Poll::Ready(Ok(ReadOutcome::Closed))
        }
        Poll::Ready(Err(error)) => Poll::Ready(Err(format!("read failed: {error}"))),
        Poll::Ready(Ok(())) if read.filled().is_empty() => Poll::Ready(Ok(ReadOutcome::Closed)),
        Poll::Ready(Ok(())) => Poll::Ready(
            session
                .handle_input(read.filled(), Instant::now())
                .map(|()| ReadOutcome::Input)
                .map_err(|error| error.to_string()),
        ),
    }
}

/// One connection's routing state.
struct Connection {
    session: ServerSession,
    hub: Hub,
    peer: SocketAddr,
    transport: &'static str,
    connect: Option<ConnectRequest>,
    publishers: ByStream<Publisher>,
    players: ByStream<PlayerState>,
    /// The connection's task is writing: nothing else may write until it is done.
    task_writing: bool,
    /// Wire bytes a direct delivery could not send; the task sends them before anything else.
    unsent: Vec<Bytes>,
    /// A direct delivery's buffers, kept for the next one.
    delivered: Vec<Bytes>,
}

/// Direct writes one task makes in one turn of its loop (a flush of a stream's wake group is one turn of
/// the publisher's task); about 2.5 ms of writes. The players beyond are handed to their own tasks.
const DIRECT_WRITES_PER_TURN: u32 = 256;

thread_local! {
    /// Direct writes left to the task running on this thread in its current turn; `None` outside a turn.
    static DIRECT_WRITES_LEFT: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Opens a turn's budget of direct writes on this thread; the budget closes when this is dropped.
struct DirectWriteTurn;

impl DirectWriteTurn {
    fn start() -> Self {
        DIRECT_WRITES_LEFT.set(Some(DIRECT_WRITES_PER_TURN));
        DirectWriteTurn
    }
}

impl Drop for DirectWriteTurn {
    fn drop(&mut self) {
        DIRECT_WRITES_LEFT.set(None);
    }
}

/// Takes one direct write from the current turn's budget (always granted outside a turn).
fn take_direct_write() -> bool {
    match DIRECT_WRITES_LEFT.get() {
        None => true,
        Some(0) => false,
        Some(left) => {
            DIRECT_WRITES_LEFT.set(Some(left - 1));
            true
        }
    }
}

/// A connection as its task and the flushers of the streams it plays share it, and the waker its
/// subscribers are given when it is delivered to directly.
struct Shared {
    connection: Mutex<Connection>,
    /// The socket, when frames may be written to it from outside the task (plain TCP).
    socket: Option<Arc<dyn SendNow>>,
    /// The connection task's waker, for a delivery that hands over.
    task: Mutex<Option<Waker>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn register_task(&self, waker: &Waker) {
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        match task.as_ref() {
            Some(current) if current.will_wake(waker) => {}
            _ => *task = Some(waker.clone()),
        }
    }

    fn wake_task(&self) {
        if let Some(task) = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            task.wake_by_ref();
        }
    }

    /// Runs the players' turn here and now: every event ready, then one write of what the session
    /// queued. Returns whether all of it was sent; otherwise the task must run (the connection is busy,
    /// the socket full, or there is no socket to write to from here).
    fn deliver(self: &Arc<Self>) -> bool {
        let Some(socket) = &self.socket else {
            return false;
        };
        let Ok(mut connection) = self.connection.try_lock() else {
            return false;
        };
        if connection.task_writing || !connection.unsent.is_empty() || !take_direct_write() {
            return false;
        }
        let delivery = Waker::from(Arc::clone(self));
        let mut cx = Context::from_waker(&delivery);
        while let Poll::Ready((stream_id, event)) = poll_players(&mut connection.players, &mut cx) {
            connection.handle_player_event(stream_id, event);
        }
        let mut pieces = std::mem::take(&mut connection.delivered);
        connection.session.poll_transmit(&mut pieces);
        match write_all_now(&mut pieces, |slices| socket.send_now(slices)) {
            Ok(()) => {
                connection.delivered = pieces;
                true
            }
            // A full socket or a failed one: the task waits for room or reports the error.
            Err(_) => {
                connection.unsent = pieces;
                false
            }
        }
    }
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.deliver() {
            self.wake_task();
        }
    }
}

/// Serves one connection until the peer leaves, the session fails, or the server shuts down. `socket`
/// is the stream's own socket when frames may be written to it directly (plain TCP, see the module's
/// doc).
pub async fn serve<S>(
    mut stream: S,
    peer: SocketAddr,
    transport: &'static str,
    context: Arc<ServerContext>,
    mut shutdown: watch::Receiver<bool>,
    socket: Option<Arc<dyn SendNow>>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let started = Instant::now();
    let shared = Arc::new(Shared {
        connection: Mutex::new(Connection {
            session: ServerSession::new(
                context.session.clone(),
                Box::new(|bytes: &mut [u8]| rand::fill(bytes)),
                started,
            ),
            hub: context.hub.clone(),
            peer,
            transport,
            connect: None,
            publishers: ByStream::new(),
            players: ByStream::new(),
            task_writing: false,
            unsent: Vec::new(),
            delivered: Vec::new(),
        }),
        socket,
        task: Mutex::new(None),
    });
    let _leave_streams = LeaveStreamsOnDrop(&shared);
    // Held here, not in `shared`: the subscribers' wakers keep `shared` alive, never the reverse.
    let delivery = shared
        .socket
        .is_some()
        .then(|| Waker::from(Arc::clone(&shared)));
    let mut transmits: Vec<Bytes> = Vec::new();
    // Long-lived futures, polled again on every turn instead of being re-created (and re-registered).
    let shutdown_signal = shutdown.changed();
    tokio::pin!(shutdown_signal);
    let mut deadline = shared.lock().next_deadline();
    let timer = tokio::time::sleep_until(deadline.into());
    tokio::pin!(timer);
    let reason: String = loop {
        {
            let mut connection = shared.lock();
            std::mem::swap(&mut transmits, &mut connection.unsent);
            connection.session.poll_transmit(&mut transmits);
            connection.task_writing = !transmits.is_empty();
        }
        if !transmits.is_empty() {
            let written = write_all_vectored(&mut stream, &mut transmits).await;
            shared.lock().task_writing = false;
            if let Err(error) = written {
                break format!("write failed: {error}");
            }
        }
        let next = shared.lock().next_deadline();
        if next != deadline {
            deadline = next;
            timer.as_mut().reset(deadline.into());
        }
        tokio::select! {
            _ = &mut shutdown_signal => break "server shutting down".into(),
            read = std::future::poll_fn(|cx| poll_read_into(&mut stream, &mut shared.lock().session, cx)) => match read {
                Ok(ReadOutcome::Input) => {
                    let _turn = DirectWriteTurn::start();
                    shared.lock().handle_session_events();
                }
                Ok(ReadOutcome::Closed) => break "peer closed the connection".into(),
                Err(reason) => break reason,
            },
            (stream_id, event) = next_player_event(&shared, delivery.as_ref()) => {
                let mut connection = shared.lock();
                connection.handle_player_event(stream_id, event);
                // Everything already waiting goes into the same vectored write.
                while let Some(event) = connection.players.get_mut(stream_id).and_then(|p| p.subscriber.try_recv()) {
                    connection.handle_player_event(stream_id, event);
                }
            }
            _ = any_kicked(&shared) => break "publisher taken over by a new connection".into(),
            _ = &mut timer => {
                let now = Instant::now();
                let _turn = DirectWriteTurn::start();
                let mut connection = shared.lock();
                connection.publishers.values().for_each(|p| p.flush_if_due(now));
                if now >= connection.session.poll_timeout() {
                    if let Err(error) = connection.session.handle_timeout(now) {
                        break error.to_string();
                    }
                }
                // Force a re-arm even if the next deadline happens to equal the one that fired.
                deadline = now;
            }
        }
    };
    let connection = shared.lock();
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

/// Leaves every stream when the connection's task ends, however it ends (a finished loop, or the task
/// dropped at shutdown): the subscribers hold wakers that hold the connection, so leaving is what frees it.
struct LeaveStreamsOnDrop<'a>(&'a Shared);

impl Drop for LeaveStreamsOnDrop<'_> {
    fn drop(&mut self) {
        let mut connection = self.0.lock();
        connection.players = ByStream::new();
        connection.publishers = ByStream::new();
    }
}

impl Connection {
    fn app(&self) -> String {
        self.connect
            .as_ref()
            .map(|c| c.app.clone())
            .unwrap_or_default()
    }

    /// The session's next timer, or a publisher's batch window closing, whichever comes first.
    fn next_deadline(&self) -> Instant {
        self.publishers
            .values()
            .filter_map(Publisher::flush_deadline)
            .fold(self.session.poll_timeout(), Instant::min)
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
                    // Kept for the close log and codec checks; the whole command object is not needed.
                    self.connect = Some(ConnectRequest {
                        properties: rtmp_amf::Amf0Value::Null,
                        ..request
                    });
                    self.session.accept_connect();
                }
                ServerEvent::Publish {
                    stream_id,
                    stream_name,
                    ..
                } => {
                    let key = StreamKey::new(self.app(), stream_name.clone());
                    match self.hub.publish(&key, Instant::now()) {
                        Ok(publisher) => {
                            tracing::info!(peer = %self.peer, transport = self.transport, stream = %key, "publish");
                            self.session.accept_publish(stream_id);
                            self.publishers.insert(stream_id, publisher);
                        }
                        Err(error) => {
                            tracing::warn!(peer = %self.peer, stream = %key, %error, "publish refused");
                            self.session.reject_publish(
                                stream_id,
                                StatusCode::PublishBadName,
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
                    if let Some(publisher) = self.publishers.get(stream_id) {
                        publisher.send(&message, Instant::now());
                    }
                }
                ServerEvent::Metadata { stream_id, message } => {
                    if let Some(publisher) = self.publishers.get(stream_id) {
                        publisher.set_metadata(message.as_ref());
                    }
                }
                ServerEvent::Pause { stream_id, paused } => {
                    if let Some(player) = self.players.get_mut(stream_id) {
                        player.paused = paused;
                    }
                }
                ServerEvent::Unpublish { stream_id } => {
                    if let Some(publisher) = self.publishers.remove(stream_id) {
                        tracing::info!(peer = %self.peer, stream = %publisher.key(), "unpublish");
                    }
                }
                ServerEvent::StopPlay { stream_id } => {
                    if let Some(player) = self.players.remove(stream_id) {
                        tracing::info!(peer = %self.peer, stream = %player.subscriber.key(), "stop");
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
        // A live stream announces itself first: that is the start, not a "publish notify".
        let mut first = subscriber.try_recv();
        if matches!(first, Some(SubscriberEvent::Published)) {
            first = None;
        }
        self.players.insert(
            stream_id,
            PlayerState {
                subscriber,
                paused: false,
            },
        );
        if let Some(event) = first {
            self.handle_player_event(stream_id, event);
        }
        while let Some(event) = self
            .players
            .get_mut(stream_id)
            .and_then(|p| p.subscriber.try_recv())
        {
            self.handle_player_event(stream_id, event);
        }
    }

    fn handle_player_event(&mut self, stream_id: u32, event: SubscriberEvent) {
        let Some(player) = self.players.get(stream_id) else {
            return;
        };
        match event {
            SubscriberEvent::Published => {
                self.session.send_status(
                    stream_id,
                    StatusCode::PlayPublishNotify,
                    "The stream is now published.",
                );
            }
            SubscriberEvent::Unpublished => {
                self.session.send_status(
                    stream_id,
                    StatusCode::PlayUnpublishNotify,
                    "The stream is now unpublished.",
                );
            }
            SubscriberEvent::Frame(frame) => {
                if player.paused && frame.kind != FrameKind::Data {
                    return;
                }
                if frame.info.enhanced {
                    let allowed = match (&self.connect, frame.info.codec) {
                        (Some(connect), Some(fourcc)) => connect.accepts_fourcc(FourCc(fourcc)),
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

#[cfg(test)]
mod tests {
    use super::ByStream;

    #[test]
    fn by_stream_inserts_replaces_and_removes_by_id() {
        let mut streams = ByStream::new();
        assert_eq!(streams.values().count(), 0);
        streams.insert(1, "first");
        streams.insert(2, "second");
        streams.insert(1, "replaced");
        assert_eq!(streams.get(1), Some(&"replaced"));
        assert_eq!(streams.values().count(), 2);
        assert_eq!(streams.remove(1), Some("replaced"));
        assert_eq!(streams.remove(1), None);
        assert_eq!(streams.get(1), None);
        if let Some(value) = streams.get_mut(2) {
            *value = "changed";
        }
        let all: Vec<_> = streams.iter_mut().map(|(id, value)| (id, *value)).collect();
        assert_eq!(all, [(2, "changed")]);
    }
}
