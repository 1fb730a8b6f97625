//! The I/O driver: one connection's task. The only code that touches the stream: it reads what the
//! peer sent into the session, keeps the session's and the publishers' timers, writes what the session
//! queued, and carries out what the router returns. It decides nothing itself.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use rtmp_session::io::write_all_vectored;
use rtmp_session::ServerSession;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tracing::Instrument;

use super::delivery::{Connection, DirectWriteTurn, Shared};
use super::ServerContext;
use crate::close_reason::{CloseReason, Direction};
use crate::router::{Admission, Router, Step, Verdict};
use crate::socket::SendNow;

const READ_BUFFER_LEN: usize = 64 * 1024;

thread_local! {
    /// One read buffer per runtime thread, shared by its connections: the bytes of a read are handed to
    /// the session within the same poll, so no connection keeps a buffer of its own between reads.
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUFFER_LEN]);
}

/// Reads what the peer sent into the thread's buffer and feeds it to the session; `Ready(Ok)` when the
/// session got bytes, `Ready(Err)` when the connection ends.
fn poll_read_into<S: AsyncRead + Unpin>(
    stream: &mut S,
    session: &mut ServerSession,
    cx: &mut Context<'_>,
) -> Poll<Result<(), CloseReason>> {
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
) -> Poll<Result<(), CloseReason>> {
    let mut read = ReadBuf::new(buffer);
    match Pin::new(stream).poll_read(cx, &mut read) {
        Poll::Pending => Poll::Pending,
        // TLS clients often close without close_notify; that is an ordinary close.
        Poll::Ready(Err(error)) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            Poll::Ready(Err(CloseReason::PeerClosed))
        }
        Poll::Ready(Err(error)) => Poll::Ready(Err(CloseReason::io(Direction::Read, &error))),
        Poll::Ready(Ok(())) if read.filled().is_empty() => {
            Poll::Ready(Err(CloseReason::PeerClosed))
        }
        Poll::Ready(Ok(())) => Poll::Ready(
            session
                .handle_input(read.filled(), Instant::now())
                .map_err(CloseReason::from),
        ),
    }
}

/// Resolves when a publisher of this connection was taken over by another connection.
async fn taken_over(shared: &Shared) {
    std::future::poll_fn(|cx| shared.lock().router.poll_taken_over(cx)).await
}

impl Connection {
    /// The session's next timer, or a publisher's batch window closing, whichever comes first.
    fn next_deadline(&self) -> Instant {
        let session = self.session.poll_timeout();
        self.router
            .next_flush_deadline()
            .map_or(session, |flush| flush.min(session))
    }

    /// Routes what the session reported; `Some` when the connection must end.
    fn route_session_events(&mut self, now: Instant) -> Option<CloseReason> {
        let Connection {
            session, router, ..
        } = self;
        loop {
            match router.route_session_events(session, now) {
                Step::Done => return None,
                Step::Close(reason) => return Some(reason),
                // `Admission::Open` asks nothing; a question this driver has no one to ask is refused
                // rather than granted.
                Step::Ask(_) => router.answer(
                    session,
                    Verdict::Refuse("no access rule is configured".into()),
                    now,
                ),
            }
        }
    }
}

/// Serves one connection until the peer leaves, the session fails, or the server shuts down. `socket`
/// is the stream's own socket when frames may be written to it directly (plain TCP: direct delivery,
/// docs/hub.md).
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
    let router = Router::new(
        context.hub.clone(),
        context.apps.clone(),
        peer,
        transport,
        Admission::Open,
    );
    let session = ServerSession::new(
        context.session.clone(),
        Box::new(|bytes: &mut [u8]| rand::fill(bytes)),
        started,
    );
    let shared = Shared::new(Connection::new(session, router), socket);
    let registration = context
        .clients
        .register(peer, transport, inspect(&shared, transport));
    let span = tracing::info_span!(
        "connection",
        id = registration.id(),
        %peer,
        transport,
        app = tracing::field::Empty,
        stream = tracing::field::Empty
    );
    // Whether the span names the app and stream yet: set once, when the first stream is known.
    let mut span_named = false;
    let _leave_streams = LeaveStreamsOnDrop(&shared);
    let delivery = shared.delivery_waker();
    let mut transmits: Vec<Bytes> = Vec::new();
    // Long-lived futures, polled again on every turn instead of being re-created (and re-registered).
    let shutdown_signal = shutdown.changed();
    tokio::pin!(shutdown_signal);
    let mut deadline = shared.lock().next_deadline();
    let timer = tokio::time::sleep_until(deadline.into());
    tokio::pin!(timer);
    let mut closing: Option<CloseReason> = None;
    let reason: CloseReason = async { loop {
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
                break CloseReason::io(Direction::Write, &error);
            }
        }
        // A decision that ends the connection takes effect once its answer is written.
        if let Some(reason) = closing.take() {
            break reason;
        }
        let next = shared.lock().next_deadline();
        if next != deadline {
            deadline = next;
            timer.as_mut().reset(deadline.into());
        }
        tokio::select! {
            _ = &mut shutdown_signal => break CloseReason::Shutdown,
            read = std::future::poll_fn(|cx| poll_read_into(&mut stream, &mut shared.lock().session, cx)) => match read {
                Ok(()) => {
                    let _turn = DirectWriteTurn::start();
                    let mut connection = shared.lock();
                    closing = connection.route_session_events(Instant::now());
                    if !span_named {
                        if let Some(key) = connection.router.last_stream() {
                            span.record("app", connection.router.app());
                            span.record("stream", key.name.as_str());
                            span_named = true;
                        }
                    }
                }
                Err(reason) => break reason,
            },
            (stream_id, event) = shared.next_player_event(delivery.as_ref()) => {
                // Everything already waiting goes into the same vectored write.
                shared.lock().handle_player_events(stream_id, event);
            }
            _ = taken_over(&shared) => break CloseReason::TakenOver,
            _ = registration.kicked() => break CloseReason::Kicked,
            _ = &mut timer => {
                let now = Instant::now();
                let _turn = DirectWriteTurn::start();
                let mut connection = shared.lock();
                connection.router.flush_due(now);
                if now >= connection.session.poll_timeout() {
                    if let Err(error) = connection.session.handle_timeout(now) {
                        break error.into();
                    }
                }
                // Force a re-arm even if the next deadline happens to equal the one that fired.
                deadline = now;
            }
        }
    } }
    .instrument(span.clone())
    .await;
    let _entered = span.enter();
    let connection = shared.lock();
    let (bytes_in, bytes_out) = connection.session.byte_counts();
    let stream_key = connection.router.last_stream();
    let encrypted = connection
        .session
        .mode()
        .is_some_and(|mode| mode.is_encrypted());
    tracing::info!(
        peer = %peer,
        transport = variant(transport, encrypted),
        app = connection.router.app(),
        stream = stream_key.map_or("", |key| key.name.as_str()),
        duration_ms = started.elapsed().as_millis() as u64,
        bytes_in,
        bytes_out,
        reason = %reason,
        cause = reason.as_str(),
        "close"
    );
    registration.ended(
        reason.as_str(),
        variant(transport, encrypted),
        (bytes_in, bytes_out),
    );
}

/// Reads the connection's live state for the API, from its session and router, when asked.
fn inspect(shared: &Arc<Shared>, transport: &'static str) -> crate::clients::Inspect {
    let shared = Arc::downgrade(shared);
    Box::new(move || {
        let shared = shared.upgrade()?;
        let connection = shared.lock();
        let (bytes_in, bytes_out) = connection.session.byte_counts();
        let encrypted = connection
            .session
            .mode()
            .is_some_and(|mode| mode.is_encrypted());
        Some(crate::clients::LiveState {
            variant: variant(transport, encrypted),
            role: connection.router.role(),
            app: connection.router.app().to_owned(),
            stream: connection
                .router
                .last_stream()
                .map_or_else(String::new, |key| key.name.clone()),
            flash_ver: connection
                .router
                .connect_request()
                .and_then(|c| c.flash_ver.clone())
                .unwrap_or_default(),
            bytes_in,
            bytes_out,
            dropped_frames: connection.router.dropped_frames(),
        })
    })
}

/// The variant a connection turned out to be: the listener's label, with RTMPE added when the handshake
/// inside a tunnel or TLS was an encrypted one.
fn variant(transport: &'static str, encrypted: bool) -> &'static str {
    match (transport, encrypted) {
        ("rtmp", true) => "rtmpe",
        ("rtmpt", true) => "rtmpte",
        ("rtmps", true) => "rtmps+rtmpe",
        ("rtmpts", true) => "rtmpts+rtmpe",
        _ => transport,
    }
}

/// Leaves every stream when the connection's task ends, however it ends (a finished loop, or the task
/// dropped at shutdown): the subscribers hold wakers that hold the connection, so leaving is what frees it.
struct LeaveStreamsOnDrop<'a>(&'a Shared);

impl Drop for LeaveStreamsOnDrop<'_> {
    fn drop(&mut self) {
        self.0.lock().router.leave_streams();
    }
}

#[cfg(test)]
mod tests {
    use super::variant;

    #[test]
    fn an_encrypted_handshake_names_the_rtmpe_variant() {
        assert_eq!(variant("rtmpt", true), "rtmpte");
        assert_eq!(variant("rtmpt", false), "rtmpt");
        assert_eq!(variant("rtmpe", true), "rtmpe");
        assert_eq!(variant("rtmps", false), "rtmps");
        assert_eq!(variant("rtmps+rtmpe", true), "rtmps+rtmpe");
    }
}
