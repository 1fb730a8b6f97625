//! The HTTP front: one axum router for every HTTP listener (the HTTP-only port, HTTPS on the TLS port,
//! and HTTP sniffed on the shared port), served on hyper 1 with the settings RTMPT clients need.
//!
//! It routes the RTMPT tunnel (`/fcs/ident2`, `/open/1`, `/idle/…`, `/send/…`, `/close/…`), HTTP-FLV and
//! WS-FLV (`/{app}/{name}.flv`, [`crate::outputs::http_flv`]), LL-HLS (`/{app}/{name}/{file}`,
//! [`crate::outputs::hls`]) and the built-in page (`/`, `/assets/…`, `/streams.json`,
//! [`crate::outputs::page`]), and answers everything else with 404. Media routes go in [`router`], next
//! to the tunnel's. On plain TCP the first request of a connection is read by [`take_over`], so that a
//! live HTTP-FLV player can be taken from hyper and written as RTMP players are.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rtmp_rtmpt::server::RtmptServer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::outputs::http_flv::{self, HttpFlv, WriteDeadline, WriteStall};
use crate::outputs::page;
use crate::socket::SendNow;

pub mod take_over;

/// Where a request came from: put in every request's extensions by [`serve_connection`].
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The peer's address and port.
    pub address: SocketAddr,
    /// Whether the HTTP connection runs over TLS (HTTPS; RTMPTS for the tunnel).
    pub secure: bool,
}

/// The router of every media HTTP listener. `rtmpt` is the tunnel, if enabled; `flv` serves
/// `/{app}/{name}.flv` over HTTP and WebSocket; `hls` serves LL-HLS (`/{app}/{name}/index.m3u8` and its
/// files); `page` (the hub it lists) the built-in page.
///
/// The tunnel's first path segments (`fcs`, `open`, `idle`, `send`, `close`) and, with the page,
/// `assets` are reserved.
pub fn router(
    rtmpt: Option<RtmptServer>,
    flv: Option<Arc<HttpFlv>>,
    hls: Option<Arc<crate::outputs::hls::Hls>>,
    page: Option<rtmp_hub::Hub>,
) -> Router {
    let mut router = Router::new();
    if let Some(flv) = flv {
        router = router.merge(
            Router::new()
                .route("/{app}/{file}", any(http_flv::serve))
                .with_state(flv),
        );
    }
    if let Some(hls) = hls {
        router = router.merge(crate::outputs::hls::routes(hls));
    }
    if let Some(hub) = page {
        router = router.merge(page::routes(hub));
    }
    if let Some(rtmpt) = rtmpt {
        let tunnel = Router::new()
            .route("/fcs/{*rest}", any(tunnel))
            .route("/open/{*rest}", any(tunnel))
            .route("/idle/{*rest}", any(tunnel))
            .route("/send/{*rest}", any(tunnel))
            .route("/close/{*rest}", any(tunnel))
            .with_state(rtmpt);
        router = router.merge(tunnel);
    }
    router.fallback(not_found)
}

/// An RTMPT request: the tunnel decides (404 for a malformed path or an unknown session, 405 for
/// anything but POST).
async fn tunnel(State(rtmpt): State<RtmptServer>, request: Request) -> Response {
    let peer = request.extensions().get::<Peer>().copied();
    let Some(peer) = peer else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    rtmpt
        .handle(request, peer.address, peer.secure)
        .await
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not found\n",
    )
        .into_response()
}

/// How long an HTTP connection may take over its request head, and a write to it may wait for the peer
/// to read.
#[derive(Debug, Clone, Copy)]
pub struct HttpTimeouts {
    /// The request line and headers must arrive within this (then the connection is closed).
    pub head: Duration,
    /// A write the peer does not read for this long fails, and the connection ends (a stalled
    /// HTTP-FLV reader).
    pub write: Duration,
}

impl Default for HttpTimeouts {
    /// 10 s for the head, 30 s for a write (the API listener's).
    fn default() -> Self {
        Self {
            head: Duration::from_secs(10),
            write: Duration::from_secs(30),
        }
    }
}

impl HttpTimeouts {
    /// The session's handshake timeout for the head, its idle timeout for writes.
    pub fn of(session: &rtmp_session::SessionConfig) -> Self {
        Self {
            head: session.handshake_timeout,
            write: session.idle_timeout,
        }
    }
}

/// Serves one HTTP/1.1 connection with `router` until the peer closes it; on shutdown, finishes the
/// request in flight and closes. Title-case headers (librtmp looks for `Content-Length`), keep-alive and
/// pipelining, as the tunnel needs; upgrades (WS-FLV); the head and stalled writes bounded by `timeouts`.
///
/// With `socket` (plain TCP), a first request that is a live HTTP-FLV play is served by
/// [`take_over`], and its player written by the stream's flushes; everything else goes to hyper.
/// hyper writes vectored, without its pipeline flush (which would copy every body chunk into one buffer
/// per connection: a queued GOP made that buffer hundreds of KiB per HTTP-FLV player).
pub async fn serve_connection<I>(
    io: I,
    peer: Peer,
    router: Router,
    timeouts: HttpTimeouts,
    shutdown: watch::Receiver<bool>,
    socket: Option<Arc<dyn SendNow>>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = match socket {
        Some(socket) => match take_over::first_request(io, peer, &router, timeouts, socket).await {
            Some(io) => io,
            None => return,
        },
        None => rtmp_rtmps::Prefixed::new(Vec::new(), io),
    };
    serve_with_hyper(io, peer, router, timeouts, shutdown).await;
}

async fn serve_with_hyper<I>(
    io: I,
    peer: Peer,
    router: Router,
    timeouts: HttpTimeouts,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let stall = WriteStall::new(timeouts.write);
    let io = WriteDeadline::new(io, stall.clone());
    let service = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(peer);
        request.extensions_mut().insert(stall.clone());
        hyper::service::Service::call(&service, request)
    });
    let mut builder = rtmp_rtmpt::server::http1_builder();
    builder
        .pipeline_flush(false)
        .writev(true)
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.head);
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        _ = shutdown.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = served {
        tracing::debug!(peer = %peer.address, %error, "HTTP connection ended");
    }
}
