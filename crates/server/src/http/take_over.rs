//! The first request of a plain-TCP HTTP connection, read here when it may be a live HTTP-FLV play, so
//! that the player's connection can be taken from hyper (docs/http-flv.md, "Cost").
//!
//! hyper owns a connection's writes until the response ends, and an HTTP-FLV response never ends: its
//! player would be a task of its own whose every tag goes through hyper. So the head of the first
//! request is read here (parsed by `httparse`, as hyper does): a `GET /{app}/{name}.flv` without an
//! upgrade, nothing after it, is routed by the same axum router, with [`MayTakeOver`] in its extensions.
//! A handler that takes the connection answers with [`TakeOver`] in its response's extensions; the head
//! is written here and the connection handed to it. Any other answer to such a request is written here
//! too, and the connection closed. A first head over 64 KiB is answered `431` here. Every other
//! connection (another request, a malformed head, TLS) goes to hyper with the bytes read so far put back
//! in front.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, Method, Request, Response, Version};
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use rtmp_rtmps::Prefixed;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{HttpTimeouts, Peer};
use crate::outputs::http_flv::{WriteDeadline, WriteStall};
use crate::socket::SendNow;

/// The longest request head a plain-TCP connection may send first: a longer one is answered `431`.
const HEAD_LIMIT: usize = 64 * 1024;
/// How much of a refused head's rest is read (for at most [`DRAIN_WAIT`]) before the close, so that the
/// peer gets the answer rather than a reset.
const DRAIN_LIMIT: usize = 4 << 20;
const DRAIN_WAIT: Duration = Duration::from_secs(1);
/// The most header lines read here; more are hyper's to answer.
const MAX_HEADERS: usize = 64;

/// A stream a taken connection runs on.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// In a request's extensions when the handler may take its connection.
#[derive(Debug, Clone, Copy)]
pub struct MayTakeOver;

/// A connection handed to the handler that took it, after the response head.
pub struct Connection {
    /// The stream, with the response head written.
    pub io: Box<dyn Io>,
    /// The same socket, for writes made outside the connection's task.
    pub socket: Arc<dyn SendNow>,
    /// Whether the body must be sent in chunked coding (HTTP/1.1), or bare until the close (HTTP/1.0).
    pub chunked: bool,
    /// How long a write may wait for the peer to read: a longer one fails with `TimedOut`.
    pub write_limit: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("chunked", &self.chunked)
            .field("write_limit", &self.write_limit)
            .finish_non_exhaustive()
    }
}

type Task = Box<dyn FnOnce(Connection) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// In a response's extensions when the handler takes the connection: what then runs on it.
#[derive(Clone)]
pub struct TakeOver(Arc<Mutex<Option<Task>>>);

impl TakeOver {
    /// A take-over that runs `task` on the connection once the response head is written.
    pub fn new(
        task: impl FnOnce(Connection) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + 'static,
    ) -> Self {
        Self(Arc::new(Mutex::new(Some(Box::new(task)))))
    }

    fn take(&self) -> Option<Task> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl std::fmt::Debug for TakeOver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TakeOver")
    }
}

/// Serves the connection's first request here when it may be taken over; otherwise returns the stream
/// for hyper, the bytes read put back in front. `None`: served (or gone).
pub async fn first_request<I>(
    mut io: I,
    peer: Peer,
    router: &Router,
    timeouts: HttpTimeouts,
    socket: Arc<dyn SendNow>,
) -> Option<Prefixed<I>>
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut head = Vec::with_capacity(2048);
    let request = match tokio::time::timeout(timeouts.head, read_head(&mut io, &mut head)).await {
        Ok(Ok(Head::Here(request))) => request,
        Ok(Ok(Head::Hyper)) => return Some(Prefixed::new(head, io)),
        Ok(Ok(Head::TooLarge)) => {
            tracing::info!(peer = %peer.address, limit = HEAD_LIMIT, "HTTP request refused: its head is too large");
            refuse_head(io).await;
            return None;
        }
        Ok(Err(error)) => {
            tracing::debug!(peer = %peer.address, %error, "HTTP connection ended before its request");
            return None;
        }
        Err(_) => {
            tracing::debug!(peer = %peer.address, timeout = ?timeouts.head, "HTTP request head timed out");
            return None;
        }
    };
    let mut request = *request;
    let version = request.version();
    let stall = WriteStall::new(timeouts.write);
    let io = WriteDeadline::new(io, stall.clone());
    request.extensions_mut().insert(peer);
    request.extensions_mut().insert(stall);
    request.extensions_mut().insert(MayTakeOver);
    let service = hyper_util::service::TowerToHyperService::new(router.clone());
    let response = match hyper::service::Service::call(&service, request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    match respond(io, response, version, socket, timeouts.write).await {
        Ok(Some(task)) => task.await,
        Ok(None) => {}
        Err(error) => {
            tracing::debug!(peer = %peer.address, %error, "HTTP response not written");
        }
    }
    None
}

/// What the first request head is.
enum Head {
    /// One to serve here: a `GET` of `/{app}/{name}.flv`, no upgrade, nothing after it.
    Here(Box<Request<Body>>),
    /// Any other (or not HTTP as `httparse` reads it): hyper's to serve.
    Hyper,
    /// Still not whole at [`HEAD_LIMIT`].
    TooLarge,
}

/// Reads until the first request head is whole (or over the limit).
async fn read_head<I: AsyncRead + Unpin>(io: &mut I, head: &mut Vec<u8>) -> io::Result<Head> {
    let mut buffer = [0u8; 4096];
    loop {
        let read = io.read(&mut buffer).await?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(buffer.get(..read).unwrap_or_default());
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(head) {
            Ok(httparse::Status::Complete(len)) if len == head.len() => {
                return Ok(
                    candidate(&parsed).map_or(Head::Hyper, |request| Head::Here(Box::new(request)))
                );
            }
            Ok(httparse::Status::Partial) if head.len() >= HEAD_LIMIT => return Ok(Head::TooLarge),
            Ok(httparse::Status::Partial) => {}
            _ => return Ok(Head::Hyper),
        }
    }
}

/// Answers a head over the limit with `431` and closes, reading (a bounded amount of) what the peer
/// still sends so that the answer is not lost to a reset.
async fn refuse_head<I: AsyncRead + AsyncWrite + Unpin>(mut io: I) {
    let why = format!("request head over {} KiB\n", HEAD_LIMIT / 1024);
    let answer = format!(
        "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{why}",
        why.len()
    );
    let refusing = async {
        io.write_all(answer.as_bytes()).await?;
        io.shutdown().await?;
        let mut buffer = [0u8; 16 * 1024];
        let mut drained = 0;
        while drained < DRAIN_LIMIT {
            match io.read(&mut buffer).await? {
                0 => break,
                read => drained += read,
            }
        }
        io::Result::Ok(())
    };
    let _: Result<io::Result<()>, _> = tokio::time::timeout(DRAIN_WAIT, refusing).await;
}

/// The request, when it is one the HTTP-FLV route may take over.
fn candidate(parsed: &httparse::Request<'_, '_>) -> Option<Request<Body>> {
    if parsed.method != Some("GET") {
        return None;
    }
    let target = parsed.path?;
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    let mut segments = path.strip_prefix('/')?.split('/');
    let (app, file) = (segments.next()?, segments.next()?);
    if app.is_empty() || !file.ends_with(".flv") || segments.next().is_some() {
        return None;
    }
    let version = match parsed.version? {
        0 => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(target)
        .version(version);
    for line in parsed.headers.iter() {
        let name = HeaderName::from_bytes(line.name.as_bytes()).ok()?;
        if name == header::UPGRADE {
            return None;
        }
        let value = HeaderValue::from_bytes(line.value).ok()?;
        request = request.header(name, value);
    }
    request.body(Body::empty()).ok()
}

/// Writes the response head; then hands the connection to the handler that takes it, or writes the body
/// and closes.
async fn respond<I>(
    mut io: I,
    mut response: Response<Body>,
    version: Version,
    socket: Arc<dyn SendNow>,
    write_limit: Duration,
) -> io::Result<Option<Pin<Box<dyn Future<Output = ()> + Send>>>>
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let take_over = response
        .extensions_mut()
        .remove::<TakeOver>()
        .and_then(|take| take.take());
    if take_over.is_some() {
        // The head of an endless body: whatever length the router put for the empty body is not it.
        response.headers_mut().remove(header::CONTENT_LENGTH);
    } else if !response.headers().contains_key(header::CONTENT_LENGTH) {
        if let Some(length) = hyper::body::Body::size_hint(response.body()).exact() {
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        }
    }
    let chunked =
        version == Version::HTTP_11 && !response.headers().contains_key(header::CONTENT_LENGTH);
    if chunked {
        response.headers_mut().insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
    }
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    io.write_all(&response_head(&response, version)).await?;
    if let Some(task) = take_over {
        return Ok(Some(task(Connection {
            io: Box::new(io),
            socket,
            chunked,
            write_limit,
        })));
    }
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(io::Error::other)?.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        if chunked {
            io.write_all(format!("{:X}\r\n", data.len()).as_bytes())
                .await?;
            io.write_all(&data).await?;
            io.write_all(b"\r\n").await?;
        } else {
            io.write_all(&data).await?;
        }
    }
    if chunked {
        io.write_all(b"0\r\n\r\n").await?;
    }
    io.shutdown().await?;
    Ok(None)
}

/// The status line and header lines of `response`, as HTTP/1.x sends them.
fn response_head(response: &Response<Body>, version: Version) -> Bytes {
    let status = response.status();
    let mut head = Vec::with_capacity(256);
    let version = if version == Version::HTTP_10 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    };
    head.extend_from_slice(
        format!(
            "{version} {} {}\r\n",
            status.as_str(),
            status.canonical_reason().unwrap_or("")
        )
        .as_bytes(),
    );
    for (name, value) in response.headers() {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    Bytes::from(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(head: &str) -> Option<Request<Body>> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        assert!(parsed.parse(head.as_bytes()).is_ok());
        candidate(&parsed)
    }

    #[test]
    fn only_a_get_of_an_flv_without_an_upgrade_is_taken_here() {
        let request =
            parse("GET /live/cam.flv?enhanced=1 HTTP/1.1\r\nHost: x\r\n\r\n").expect("a candidate");
        assert_eq!(request.uri(), "/live/cam.flv?enhanced=1");
        assert_eq!(request.version(), Version::HTTP_11);
        assert_eq!(request.headers()[header::HOST], "x");
        let old = parse("GET /live/cam.flv HTTP/1.0\r\n\r\n").expect("a candidate");
        assert_eq!(old.version(), Version::HTTP_10);
        for other in [
            "HEAD /live/cam.flv HTTP/1.1\r\n\r\n",
            "GET /live/cam.m3u8 HTTP/1.1\r\n\r\n",
            "GET /cam.flv HTTP/1.1\r\n\r\n",
            "GET //cam.flv HTTP/1.1\r\n\r\n",
            "GET /live/x/cam.flv HTTP/1.1\r\n\r\n",
            "GET /live/cam.flv HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        ] {
            assert!(parse(other).is_none(), "{other}");
        }
    }

    #[test]
    fn the_head_has_the_status_line_and_every_header() {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = axum::http::StatusCode::NOT_FOUND;
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(3u64));
        let head = response_head(&response, Version::HTTP_11);
        assert_eq!(
            &head[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\n\r\n"
        );
    }
}
