//! The hyper side of the tunnel: HTTP connections in, one duplex [`RtmptStream`] per tunnel session out.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request as HttpRequest, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

use crate::route::{new_session_id, parse, PollInterval, Request};

/// The RTMP side of one tunnel session: bytes the client sent, and a sink for bytes to send it.
pub type RtmptStream = DuplexStream;

/// Tunnel settings.
#[derive(Debug, Clone)]
pub struct RtmptConfig {
    /// A session with no request for this long is closed (its RTMP stream reads end of file).
    pub idle_timeout: Duration,
    /// Largest request body accepted.
    pub max_body: usize,
    /// Bytes buffered in each direction of a session; a stalled peer makes the other side wait.
    pub buffer: usize,
    /// Most bytes returned in one response.
    pub max_response: usize,
}

impl Default for RtmptConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            max_body: 4 * 1024 * 1024,
            buffer: 1024 * 1024,
            max_response: 1024 * 1024,
        }
    }
}

/// A new tunnel session, ready for an RTMP session core.
#[derive(Debug)]
pub struct NewTunnel {
    pub stream: RtmptStream,
    pub peer: SocketAddr,
    /// Whether the HTTP connection that opened it runs over TLS (RTMPTS).
    pub secure: bool,
}

#[derive(Debug)]
struct Session {
    tunnel: tokio::sync::Mutex<DuplexStream>,
    interval: Mutex<PollInterval>,
    last_request: Mutex<Instant>,
    /// The highest sequence number seen: FFmpeg and librtmp count up from 0 across send, idle and close.
    last_seq: Mutex<Option<u64>>,
}

impl Session {
    /// Accepts a request's sequence number unless it repeats or goes back (a replayed or stale request).
    fn check_seq(&self, seq: u64) -> bool {
        let Ok(mut last) = self.last_seq.lock() else {
            return false;
        };
        if last.is_some_and(|last| seq <= last) {
            return false;
        }
        *last = Some(seq);
        true
    }
}

/// The tunnel endpoint. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RtmptServer {
    config: RtmptConfig,
    sessions: Arc<Mutex<HashMap<String, Arc<Session>>>>,
    new_tunnels: mpsc::Sender<NewTunnel>,
}

impl RtmptServer {
    /// The endpoint and the receiver of its new sessions. Call [`RtmptServer::expire_idle_sessions`]
    /// periodically (or spawn [`RtmptServer::run_expiry`]).
    pub fn new(config: RtmptConfig) -> (RtmptServer, mpsc::Receiver<NewTunnel>) {
        let (new_tunnels, receiver) = mpsc::channel(64);
        (
            RtmptServer {
                config,
                sessions: Arc::default(),
                new_tunnels,
            },
            receiver,
        )
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open tunnel sessions.
    pub fn session_count(&self) -> usize {
        self.sessions().len()
    }

    /// Closes sessions that have had no request for the idle timeout; returns how many.
    pub fn expire_idle_sessions(&self) -> usize {
        let limit = self.config.idle_timeout;
        let mut sessions = self.sessions();
        let before = sessions.len();
        sessions.retain(|_, s| {
            s.last_request
                .lock()
                .map(|t| t.elapsed() < limit)
                .unwrap_or(false)
        });
        before - sessions.len()
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

    /// Serves one HTTP/1.1 connection (keep-alive, pipelined requests answered in order).
    pub async fn serve_connection<I>(&self, io: I, peer: SocketAddr, secure: bool)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let server = self.clone();
        let service = hyper::service::service_fn(move |request| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(server.handle(request, peer, secure).await) }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        // librtmp looks for "Content-" with a capital C.
        builder
            .title_case_headers(true)
            .keep_alive(true)
            .pipeline_flush(true);
        if let Err(error) = builder.serve_connection(TokioIo::new(io), service).await {
            tracing::debug!(%peer, %error, "RTMPT connection ended");
        }
    }

    async fn handle(
        &self,
        request: HttpRequest<Incoming>,
        peer: SocketAddr,
        secure: bool,
    ) -> Response<Full<Bytes>> {
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
            Some(Request::Close { session, .. }) => {
                let existed = self.sessions().remove(session).is_some();
                if existed {
                    ok(Bytes::from_static(&[0]))
                } else {
                    status(StatusCode::NOT_FOUND)
                }
            }
            None => status(StatusCode::NOT_FOUND),
        }
    }

    async fn open(&self, peer: SocketAddr, secure: bool) -> Response<Full<Bytes>> {
        let (tunnel, stream) = tokio::io::duplex(self.config.buffer);
        let id = new_session_id();
        let session = Session {
            tunnel: tokio::sync::Mutex::new(tunnel),
            interval: Mutex::new(PollInterval::default()),
            last_request: Mutex::new(Instant::now()),
            last_seq: Mutex::new(None),
        };
        if self
            .new_tunnels
            .send(NewTunnel {
                stream,
                peer,
                secure,
            })
            .await
            .is_err()
        {
            return status(StatusCode::SERVICE_UNAVAILABLE);
        }
        self.sessions().insert(id.clone(), Arc::new(session));
        tracing::debug!(%peer, session = %id, "RTMPT session opened");
        // librtmp drops the last byte of this body: it must be the newline.
        ok(Bytes::from(format!("{id}\n")))
    }

    /// Delivers the client's bytes and answers with the polling byte and every pending server byte.
    async fn exchange(&self, id: &str, seq: u64, upload: &[u8]) -> Response<Full<Bytes>> {
        let Some(session) = self.sessions().get(id).cloned() else {
            return status(StatusCode::NOT_FOUND);
        };
        if !session.check_seq(seq) {
            tracing::debug!(session = %id, seq, "RTMPT request with a stale sequence number refused");
            return status(StatusCode::BAD_REQUEST);
        }
        if let Ok(mut last) = session.last_request.lock() {
            *last = Instant::now();
        }
        let mut tunnel = session.tunnel.lock().await;
        let mut pending = BytesMut::new();
        let mut ended = drain(&mut tunnel, &mut pending, self.config.max_response).await;
        if !upload.is_empty() && !ended {
            // Deliver; waits only while the RTMP side has not yet read earlier bytes (back-pressure).
            match tokio::time::timeout(self.config.idle_timeout, tunnel.write_all(upload)).await {
                Ok(Ok(())) => {}
                _ => ended = true,
            }
            ended |= drain(&mut tunnel, &mut pending, self.config.max_response).await;
        }
        drop(tunnel);
        let interval = if ended {
            // The RTMP side is gone: tell the client, as Red5 does, and forget the session.
            self.sessions().remove(id);
            0
        } else {
            session
                .interval
                .lock()
                .map(|mut i| i.next(!pending.is_empty()))
                .unwrap_or(1)
        };
        let mut body = BytesMut::with_capacity(1 + pending.len());
        body.put_u8(interval);
        body.extend_from_slice(&pending);
        ok(body.freeze())
    }
}

/// Reads whatever the RTMP side has written so far, without waiting; true when it has closed.
async fn drain(tunnel: &mut DuplexStream, out: &mut BytesMut, limit: usize) -> bool {
    let mut buffer = [0u8; 16 * 1024];
    while out.len() < limit {
        match tokio::time::timeout(Duration::ZERO, tunnel.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(n)) => out.extend_from_slice(buffer.get(..n).unwrap_or_default()),
            Err(_) => return false,
        }
    }
    false
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
