//! The I/O driver: one connection's task. The only code that touches the stream: it reads what the
//! peer sent into the session, keeps the session's and the publishers' timers, writes what the session
//! queued, and carries out what the router returns. It decides nothing itself.

use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use rtmp_hub::StreamKey;
use rtmp_session::io::write_all_vectored;
use rtmp_session::ServerSession;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tracing::Instrument;

use super::delivery::{Connection, DirectWriteTurn, Shared};
use super::ServerContext;
use crate::clients::{Identity, Role};
use crate::close_reason::{CloseReason, Direction};
use crate::drain::{self, DrainPhase};
use crate::hooks::{self, Call, HookForm};
use crate::router::{Admission, Question, Router, Step, Verdict};
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

    /// Routes what the session reported, until a question needs a hook's answer or the connection
    /// must end.
    fn route_session_events(&mut self, now: Instant, hooks: &HookContext) -> Routed {
        let Connection {
            session, router, ..
        } = self;
        loop {
            match router.route_session_events(session, now) {
                Step::Done => return Routed::Done,
                Step::Close(reason) => return Routed::Close(reason),
                Step::Ask(question) => match ask_hook(router, &question, hooks, session) {
                    Some(asking) => return Routed::Asking(asking),
                    // The router asks only what the application has a hook for; anything else has
                    // no one to answer it and is refused rather than granted.
                    None => router.answer(
                        session,
                        Verdict::Refuse("no access rule is configured".into()),
                        now,
                    ),
                },
            }
        }
    }
}

/// What routing left the driver to do.
enum Routed {
    Done,
    Close(CloseReason),
    /// A hook was asked: stop feeding the session until this resolves, then `Router::answer`.
    Asking(PendingAnswer),
}

type PendingAnswer = Pin<Box<dyn Future<Output = Verdict> + Send>>;

/// What a connection's hook calls carry about it.
#[derive(Debug)]
struct HookContext {
    client_id: u64,
    peer: SocketAddr,
    transport: &'static str,
}

impl HookContext {
    /// The fields every call of this connection has.
    fn form(&self, call: Call, router: &Router, encrypted: bool) -> HookForm {
        let connect = router.connect_request();
        let text = |value: Option<&String>| value.cloned().unwrap_or_default();
        HookForm {
            call,
            addr: self.peer.ip().to_string(),
            client_id: self.client_id,
            app: router.app().to_owned(),
            flashver: text(connect.and_then(|c| c.flash_ver.as_ref())),
            swfurl: router.swf_and_page_url().0.to_owned(),
            tcurl: text(connect.and_then(|c| c.tc_url.as_ref())),
            pageurl: router.swf_and_page_url().1.to_owned(),
            variant: variant(self.transport, encrypted).to_owned(),
            name: None,
            publish_type: None,
            path: None,
            args: String::new(),
        }
    }
}

/// The asynchronous answer to `question` from the application's hook; `None` when it has none.
fn ask_hook(
    router: &Router,
    question: &Question,
    hooks: &HookContext,
    session: &ServerSession,
) -> Option<PendingAnswer> {
    let config = router.app_config().clone();
    let encrypted = session.mode().is_some_and(|mode| mode.is_encrypted());
    let (url, form) = match question {
        Question::Connect => (
            config.on_connect.clone()?,
            hooks.form(Call::Connect, router, encrypted),
        ),
        Question::Publish {
            key,
            publish_type,
            query,
            ..
        } => {
            let mut form = hooks.form(Call::Publish, router, encrypted);
            form.publish_type = Some(match publish_type {
                rtmp_session::PublishType::Live => "live",
                rtmp_session::PublishType::Record => "record",
                rtmp_session::PublishType::Append => "append",
            });
            form.set_stream(&key.name);
            form.args = query.clone();
            (config.on_publish.clone()?, form)
        }
        Question::Play { key, query, .. } => {
            let mut form = hooks.form(Call::Play, router, encrypted);
            form.set_stream(&key.name);
            form.args = query.clone();
            (config.on_play.clone()?, form)
        }
    };
    Some(Box::pin(async move {
        hooks::ask(&url, &form, config.hook_timeout(), config.hook_failure).await
    }))
}

/// Sends the done callbacks for the streams the router reports left.
fn notify_done(router: &mut Router, hooks: &HookContext, encrypted: bool) {
    let notices = router.take_notices();
    if notices.is_empty() {
        return;
    }
    let config = router.app_config().clone();
    for notice in notices {
        let (call, url) = if notice.publishing {
            (Call::PublishDone, &config.on_publish_done)
        } else {
            (Call::PlayDone, &config.on_play_done)
        };
        if let Some(url) = url {
            let mut form = hooks.form(call, router, encrypted);
            form.set_stream(&notice.key.name);
            hooks::notify(url.as_str().into(), form, config.hook_timeout());
        }
    }
}

/// Sends `on_update` for each stream the connection has (or once for the connection).
fn notify_update(router: &Router, hooks: &HookContext, encrypted: bool) {
    let config = router.app_config();
    let Some(url) = &config.on_update else {
        return;
    };
    let streams = router.streams();
    if streams.is_empty() {
        let form = hooks.form(Call::Update, router, encrypted);
        hooks::notify(url.as_str().into(), form, config.hook_timeout());
    }
    for (_, key) in streams {
        let mut form = hooks.form(Call::Update, router, encrypted);
        form.set_stream(&key.name);
        hooks::notify(url.as_str().into(), form, config.hook_timeout());
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
    let registration = context.clients.register(peer, transport);
    let mut router = Router::new(
        context.hub.clone(),
        context.apps.clone(),
        peer,
        transport,
        Admission::Hooks,
    );
    if let Some(hls) = &context.hls {
        router.set_hls(hls.clone());
    }
    let session = ServerSession::new(
        context.session.clone(),
        Box::new(|bytes: &mut [u8]| rand::fill(bytes)),
        started,
    );
    let shared = Shared::new(
        Connection::new(session, router, registration.stats().clone()),
        socket,
    );
    // One id names the connection everywhere: the API, the hooks' `clientid`, the logs.
    shared.lock().router.set_client_id(registration.id());
    shared
        .lock()
        .router
        .set_recordings(context.recordings.clone());
    let hook_context = HookContext {
        client_id: registration.id(),
        peer,
        transport,
    };
    // Every line of the connection is inside this span; the variant (once the handshake tells whether it
    // is encrypted), app and stream are recorded when known.
    let span = tracing::info_span!(
        "connection",
        id = registration.id(),
        variant = tracing::field::Empty,
        address = %peer,
        app = tracing::field::Empty,
        stream = tracing::field::Empty
    );
    tracing::debug!(parent: &span, "accepted");
    // What the API and the span were last told, to tell them again only when it changes.
    let mut shown = Shown::default();
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
    // The server's drain: its phase as this connection last saw it, and whether the ReconnectRequest
    // went out (a client still connecting when the drain starts is asked once its `connect` is known).
    let mut drain_phase = DrainPhase::Serving;
    let mut reconnect_asked = false;
    let drain_signal = drain::next_phase(context.drain.clone(), DrainPhase::Serving);
    tokio::pin!(drain_signal);
    // A hook's answer the session waits for: while it is pending, no input is fed to the session.
    let mut pending: Option<PendingAnswer> = None;
    // `on_update`'s timer, armed once the application is known to have the hook.
    let mut updates_armed = false;
    let update_timer = tokio::time::sleep_until(tokio::time::Instant::now());
    tokio::pin!(update_timer);
    let reason: CloseReason = async { loop {
        {
            let mut connection = shared.lock();
            std::mem::swap(&mut transmits, &mut connection.unsent);
            connection.session.poll_transmit(&mut transmits);
            connection.task_writing = !transmits.is_empty();
        }
        if !transmits.is_empty() {
            let written = write_all_vectored(&mut stream, &mut transmits).await;
            let mut connection = shared.lock();
            connection.task_writing = false;
            connection.publish_counts();
            drop(connection);
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
        if !updates_armed {
            let connection = shared.lock();
            if connection.router.connect_request().is_some()
                && connection.router.app_config().on_update.is_some()
            {
                updates_armed = true;
                let interval = connection.router.app_config().update_interval();
                update_timer
                    .as_mut()
                    .reset((Instant::now() + interval).into());
            }
        }
        let asking = pending.is_some();
        tokio::select! {
            _ = &mut shutdown_signal => break CloseReason::Shutdown,
            read = std::future::poll_fn(|cx| poll_read_into(&mut stream, &mut shared.lock().session, cx)), if !asking => match read {
                Ok(()) => {
                    let _turn = DirectWriteTurn::start();
                    let mut connection = shared.lock();
                    match connection.route_session_events(Instant::now(), &hook_context) {
                        Routed::Done => {}
                        Routed::Close(reason) => closing = Some(reason),
                        Routed::Asking(answer) => pending = Some(answer),
                    }
                    if !reconnect_asked && matches!(drain_phase, DrainPhase::Draining { .. }) {
                        let Connection { session, router, .. } = &mut *connection;
                        drain::on_phase(&drain_phase, session, router, &mut reconnect_asked);
                    }
                    let encrypted = connection.session.mode().is_some_and(|m| m.is_encrypted());
                    notify_done(&mut connection.router, &hook_context, encrypted);
                    shown.update(&connection, transport, &span);
                    connection.publish_counts();
                }
                Err(reason) => break reason,
            },
            verdict = std::future::poll_fn(|cx| match pending.as_mut() {
                Some(answer) => answer.as_mut().poll(cx),
                None => Poll::Pending,
            }) => {
                pending = None;
                let now = Instant::now();
                let _turn = DirectWriteTurn::start();
                let mut connection = shared.lock();
                let Connection { session, router, .. } = &mut *connection;
                router.answer(session, verdict, now);
                match connection.route_session_events(now, &hook_context) {
                    Routed::Done => {}
                    Routed::Close(reason) => closing = Some(reason),
                    Routed::Asking(answer) => pending = Some(answer),
                }
                shown.update(&connection, transport, &span);
            }
            _ = &mut update_timer, if updates_armed => {
                let connection = shared.lock();
                let encrypted = connection.session.mode().is_some_and(|m| m.is_encrypted());
                notify_update(&connection.router, &hook_context, encrypted);
                let interval = connection.router.app_config().update_interval();
                update_timer.as_mut().reset((Instant::now() + interval).into());
            }
            (stream_id, event) = shared.next_player_event(delivery.as_ref()) => {
                // Everything already waiting goes into the same vectored write.
                let mut connection = shared.lock();
                connection.handle_player_events(stream_id, event);
                // A player's role ends here when its stream is gone.
                shown.update(&connection, transport, &span);
            }
            phase = &mut drain_signal => {
                drain_signal.set(drain::next_phase(context.drain.clone(), phase.clone()));
                let mut connection = shared.lock();
                let Connection { session, router, .. } = &mut *connection;
                // An end takes effect once what is queued (an UnpublishNotify) is written.
                if let Some(reason) = drain::on_phase(&phase, session, router, &mut reconnect_asked) {
                    closing = Some(reason);
                }
                drain_phase = phase;
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
    let mut connection = shared.lock();
    let encrypted = connection
        .session
        .mode()
        .is_some_and(|mode| mode.is_encrypted());
    notify_close(&mut connection.router, &hook_context, encrypted);
    let (bytes_in, bytes_out) = connection.session.byte_counts();
    connection.publish_counts();
    let variant = variant(transport, encrypted);
    let handshake_failure = reason.handshake_failure(connection.session.mode().is_some());
    if let Some(failure) = handshake_failure {
        context.clients.counters.handshake_failed(failure);
    }
    // The one line of the connection's end: the typed reason (`reason`: as told, `cause`: its label).
    tracing::info!(
        variant,
        duration_ms = started.elapsed().as_millis() as u64,
        bytes_in,
        bytes_out,
        reason = %reason,
        cause = reason.as_str(),
        handshake_failure = handshake_failure.map(|failure| failure.as_str()),
        "close"
    );
    registration.ended(reason.as_str(), variant, (bytes_in, bytes_out));
}

/// What the API and the connection's span were last told about it: told again only on a change (a
/// handshake done, a connect, a publish or play, a stream left).
#[derive(Debug, Default)]
struct Shown {
    handshaken: bool,
    role: &'static str,
    app_recorded: bool,
    stream: Option<StreamKey>,
}

impl Shown {
    fn update(&mut self, connection: &Connection, transport: &'static str, span: &tracing::Span) {
        let session = &connection.session;
        let router = &connection.router;
        let handshaken = session.mode().is_some();
        let encrypted = session.mode().is_some_and(|mode| mode.is_encrypted());
        let role = router.role();
        let connected = router.connect_request().is_some();
        let stream = router.last_stream();
        if handshaken == self.handshaken
            && role == self.role
            && connected == self.app_recorded
            && stream == self.stream.as_ref()
        {
            return;
        }
        if handshaken && !self.handshaken {
            span.record("variant", variant(transport, encrypted));
        }
        if connected && !self.app_recorded {
            span.record("app", router.app());
        }
        if stream != self.stream.as_ref() {
            if let Some(key) = stream {
                span.record("stream", key.name.as_str());
            }
        }
        self.handshaken = handshaken;
        self.role = role;
        self.app_recorded = connected;
        self.stream = stream.cloned();
        connection.stats.set_identity(
            match role {
                "publisher" => Role::Publisher,
                "player" => Role::Player,
                _ => Role::Idle,
            },
            Identity {
                variant: variant(transport, encrypted),
                app: router.app().to_owned(),
                stream: stream.map_or_else(String::new, |key| key.name.clone()),
                flash_ver: router
                    .connect_request()
                    .and_then(|c| c.flash_ver.clone())
                    .unwrap_or_default(),
            },
        );
    }
}

/// At the end of a connection: the done callbacks of the streams it still had, then `on_done`.
fn notify_close(router: &mut Router, hooks: &HookContext, encrypted: bool) {
    let config = router.app_config().clone();
    for (publishing, key) in router.streams() {
        let (call, url) = if publishing {
            (Call::PublishDone, &config.on_publish_done)
        } else {
            (Call::PlayDone, &config.on_play_done)
        };
        if let Some(url) = url {
            let mut form = hooks.form(call, router, encrypted);
            form.set_stream(&key.name);
            hooks::notify(url.as_str().into(), form, config.hook_timeout());
        }
    }
    notify_done(router, hooks, encrypted);
    if let (Some(url), Some(_)) = (&config.on_done, router.connect_request()) {
        let form = hooks.form(Call::Done, router, encrypted);
        hooks::notify(url.as_str().into(), form, config.hook_timeout());
    }
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
