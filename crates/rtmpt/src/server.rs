//! The hyper side of the tunnel, thin over the sans-IO [`Table`]: HTTP requests in, one duplex
//! [`RtmptStream`] per tunnel session out. The adapter reads the clock, draws the session ids' random
//! bytes and keeps the wakers; every decision is the table's.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request as HttpRequest, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, Notify};

use crate::route::{parse, Request};
pub use crate::table::RtmptConfig;
use crate::table::{Refusal, Table};

/// A new tunnel session, ready for an RTMP session core.
#[derive(Debug)]
pub struct NewTunnel {
    /// The RTMP side of the tunnel: the bytes the client sends in, the bytes to answer out.
    pub stream: RtmptStream,
    /// The address of the HTTP client that opened it.
    pub peer: SocketAddr,
    /// Whether the HTTP connection that opened it runs over TLS (RTMPTS).
    pub secure: bool,
}

/// Who to wake when a session's queues change.
#[derive(Debug, Default)]
struct Wakers {
    /// The RTMP side, waiting for client bytes.
    reader: Option<Waker>,
    /// The RTMP side, waiting for room in the outgoing queue.
    writer: Option<Waker>,
    /// A `/send`, waiting for room in the incoming queue.
    room: Arc<Notify>,
}

impl Wakers {
    fn wake_all(&mut self) {
        if let Some(waker) = self.reader.take() {
            waker.wake();
        }
        if let Some(waker) = self.writer.take() {
            waker.wake();
        }
        self.room.notify_one();
    }
}

#[derive(Debug)]
struct Shared {
    table: Table,
    wakers: HashMap<String, Wakers>,
}

impl Shared {
    /// Forgets the wakers of sessions the table no longer has, waking them so they see the end.
    fn forget(&mut self, id: &str) {
        if !self.table.contains(id) {
            if let Some(mut wakers) = self.wakers.remove(id) {
                wakers.wake_all();
            }
        }
    }
}

/// The RTMP side of one tunnel session: reads the client's bytes, writes bytes for the client. Dropping
/// or shutting it down ends the session once its last bytes are answered.
#[derive(Debug)]
pub struct RtmptStream {
    shared: Arc<Mutex<Shared>>,
    id: String,
}

impl RtmptStream {
    fn shared(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }
}

impl AsyncRead for RtmptStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut shared = self.shared();
        let Some(bytes) = shared.table.read_incoming(&self.id, buf.remaining()) else {
            return Poll::Ready(Ok(())); // End of file: the session is gone.
        };
        let Some(wakers) = shared.wakers.get_mut(&self.id) else {
            return Poll::Ready(Ok(()));
        };
        if bytes.is_empty() {
            wakers.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        wakers.room.notify_one();
        buf.put_slice(&bytes);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for RtmptStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut shared = self.shared();
        match shared.table.queue_outgoing(&self.id, buf) {
            None => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            Some(0) if !buf.is_empty() => {
                if let Some(wakers) = shared.wakers.get_mut(&self.id) {
                    wakers.writer = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Some(n) => Poll::Ready(Ok(n)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.shared().table.end_from_server(&self.id);
        Poll::Ready(Ok(()))
    }
}

impl Drop for RtmptStream {
    fn drop(&mut self) {
        self.shared().table.end_from_server(&self.id);
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// The tunnel endpoint. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RtmptServer {
    config: RtmptConfig,
    shared: Arc<Mutex<Shared>>,
    new_tunnels: mpsc::Sender<NewTunnel>,
}

impl RtmptServer {
    /// The endpoint and the receiver of its new sessions. Call [`RtmptServer::expire_idle_sessions`]
    /// periodically (or spawn [`RtmptServer::run_expiry`]).
    pub fn new(config: RtmptConfig) -> (RtmptServer, mpsc::Receiver<NewTunnel>) {
        let (new_tunnels, receiver) = mpsc::channel(64);
        let shared = Shared {
            table: Table::new(config.clone()),
            wakers: HashMap::new(),
        };
        (
            RtmptServer {
                config,
                shared: Arc::new(Mutex::new(shared)),
                new_tunnels,
            },
            receiver,
        )
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }

    /// Open tunnel sessions.
    pub fn session_count(&self) -> usize {
        self.shared().table.len()
    }

    /// Closes sessions that have had no request for the idle timeout; returns how many.
    pub fn expire_idle_sessions(&self) -> usize {
        let mut shared = self.shared();
        let expired = shared.table.expire(Instant::now());
        for id in &expired {
            shared.forget(id);
        }
        expired.len()
    }

    /// Expires idle sessions every second, forever.
    pub async fn run_expiry(self) {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let expired = self.expire_idle_sessions();
            if expired > 0 {
                tracing::info!(
                    expired,
                    "RTMPT sessions expired (no request within the idle timeout)"
                );
            }
        }
    }

    /// Serves one HTTP/1.1 connection with nothing but the tunnel (keep-alive, pipelined requests
    /// answered in order, title-case headers for librtmp). A server with other HTTP routes mounts
    /// [`RtmptServer::handle`] in its own router instead.
    pub async fn serve_connection<I>(&self, io: I, peer: SocketAddr, secure: bool)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let server = self.clone();
        let service = hyper::service::service_fn(move |request| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(server.handle(request, peer, secure).await) }
        });
        if let Err(error) = http1_builder()
            .serve_connection(TokioIo::new(io), service)
            .await
        {
            tracing::debug!(%peer, %error, "RTMPT connection ended");
        }
    }

    /// Answers one RTMPT request; any path that is not RTMPT gets 404.
    pub async fn handle<B>(
        &self,
        request: HttpRequest<B>,
        peer: SocketAddr,
        secure: bool,
    ) -> Response<Full<Bytes>>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = request.uri().path().to_owned();
        if request.method() != Method::POST {
            return status(StatusCode::METHOD_NOT_ALLOWED);
        }
        let body = match Limited::new(request.into_body(), self.config.max_body)
            .collect()
            .await
        {
            Ok(body) => body.to_bytes(),
            Err(_) => return status(StatusCode::PAYLOAD_TOO_LARGE),
        };
        match parse(&path) {
            // As Red5 does; Flash Player goes on with /open/1 either way (FFmpeg and librtmp never ask).
            Some(Request::Ident) => status(StatusCode::NOT_FOUND),
            Some(Request::Open) => self.open(peer, secure).await,
            Some(Request::Send { session, seq }) => self.exchange(session, seq, &body).await,
            Some(Request::Idle { session, seq }) => self.exchange(session, seq, &[]).await,
            // Whatever its sequence number: a client that closes is done either way.
            Some(Request::Close { session, .. }) => {
                let mut shared = self.shared();
                if !shared.table.close(session) {
                    return refused(session, Refusal::UnknownSession);
                }
                shared.forget(session);
                ok(Bytes::from_static(&[0]))
            }
            None => status(StatusCode::NOT_FOUND),
        }
    }

    async fn open(&self, peer: SocketAddr, secure: bool) -> Response<Full<Bytes>> {
        let opened = {
            let mut shared = self.shared();
            let now = Instant::now();
            // 64 random bits collide only by accident; one more draw settles it.
            let opened = shared
                .table
                .open(now, rand::random())
                .or_else(|_| shared.table.open(now, rand::random()));
            if let Ok(id) = &opened {
                shared.wakers.insert(id.clone(), Wakers::default());
            }
            opened
        };
        let id = match opened {
            Ok(id) => id,
            Err(refusal) => {
                tracing::warn!(%peer, %refusal, "RTMPT session refused");
                return status(StatusCode::SERVICE_UNAVAILABLE);
            }
        };
        let stream = RtmptStream {
            shared: self.shared.clone(),
            id: id.clone(),
        };
        let tunnel = NewTunnel {
            stream,
            peer,
            secure,
        };
        if self.new_tunnels.send(tunnel).await.is_err() {
            let mut shared = self.shared();
            shared.table.close(&id);
            shared.forget(&id);
            return status(StatusCode::SERVICE_UNAVAILABLE);
        }
        tracing::debug!(%peer, session = %id, "RTMPT session opened");
        // librtmp drops the last byte of this body: it must be the newline.
        ok(Bytes::from(format!("{id}\n")))
    }

    /// Delivers the client's bytes and answers with the polling byte and every pending server byte.
    async fn exchange(&self, id: &str, seq: u64, upload: &[u8]) -> Response<Full<Bytes>> {
        if let Err(refusal) = self.shared().table.admit(Instant::now(), id, seq) {
            return refused(id, refusal);
        }
        if !upload.is_empty() {
            if let Err(refusal) = self.deliver(id, upload).await {
                return refused(id, refusal);
            }
        }
        let mut shared = self.shared();
        let answer = match shared.table.answer(id) {
            Ok(answer) => answer,
            Err(refusal) => return refused(id, refusal),
        };
        if let Some(writer) = shared
            .wakers
            .get_mut(id)
            .and_then(|wakers| wakers.writer.take())
        {
            writer.wake();
        }
        shared.forget(id);
        drop(shared);
        let mut body = BytesMut::with_capacity(1 + answer.data.len());
        body.put_u8(answer.interval);
        body.extend_from_slice(&answer.data);
        ok(body.freeze())
    }

    /// Queues `upload` for the RTMP side, waiting (up to the idle timeout) while earlier bytes fill the
    /// queue: a stalled RTMP side slows the client down instead of growing the queue.
    async fn deliver(&self, id: &str, upload: &[u8]) -> Result<(), Refusal> {
        let deadline = tokio::time::Instant::now() + self.config.idle_timeout;
        loop {
            let room = {
                let mut shared = self.shared();
                match shared.table.deliver(id, upload) {
                    Ok(()) => {
                        if let Some(reader) = shared
                            .wakers
                            .get_mut(id)
                            .and_then(|wakers| wakers.reader.take())
                        {
                            reader.wake();
                        }
                        return Ok(());
                    }
                    Err(Refusal::QueueFull) => match shared.wakers.get(id) {
                        Some(wakers) => wakers.room.clone(),
                        None => return Err(Refusal::UnknownSession),
                    },
                    Err(refusal) => return Err(refusal),
                }
            };
            if tokio::time::timeout_at(deadline, room.notified())
                .await
                .is_err()
            {
                return Err(Refusal::QueueFull);
            }
        }
    }
}

/// The HTTP/1.1 settings every RTMPT client needs: librtmp looks for "Content-Length" with capital
/// letters, and FFmpeg and librtmp keep one connection alive and may pipeline requests on it.
pub fn http1_builder() -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .title_case_headers(true)
        .keep_alive(true)
        .pipeline_flush(true);
    builder
}

fn refused(id: &str, refusal: Refusal) -> Response<Full<Bytes>> {
    tracing::debug!(session = %id, %refusal, "RTMPT request refused");
    status(match refusal {
        Refusal::UnknownSession => StatusCode::NOT_FOUND,
        Refusal::StaleSequence => StatusCode::BAD_REQUEST,
        Refusal::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Refusal::TooManySessions | Refusal::IdInUse | Refusal::QueueFull => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    })
}

fn ok(body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-fcs"),
    );
    headers.insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("Keep-Alive"),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    response
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = ok(Bytes::new());
    *response.status_mut() = code;
    response
}
