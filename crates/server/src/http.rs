//! The HTTP front: one axum router for every HTTP listener (the HTTP-only port, HTTPS on the TLS port,
//! and HTTP sniffed on the shared port), served on hyper 1 with the settings RTMPT clients need.
//!
//! It routes the RTMPT tunnel (`/fcs/ident2`, `/open/1`, `/idle/…`, `/send/…`, `/close/…`) and LL-HLS
//! (`/{app}/{name}/{file}`, [`crate::outputs::hls`]) and answers everything else with 404. Media routes go
//! in [`router`], next to the tunnel's.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rtmp_rtmpt::server::RtmptServer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

/// Where a request came from: put in every request's extensions by [`serve_connection`].
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The peer's address and port.
    pub address: SocketAddr,
    /// Whether the HTTP connection runs over TLS (HTTPS; RTMPTS for the tunnel).
    pub secure: bool,
}

/// The router of every media HTTP listener. `rtmpt` is the tunnel, if enabled; `hls` serves LL-HLS
/// (`/{app}/{name}/index.m3u8` and its files).
///
/// Next routes go here, before the fallback: `/{app}/{name}.flv` (HTTP-FLV). The tunnel's first path
/// segments (`fcs`, `open`, `idle`, `send`, `close`) are reserved for it.
pub fn router(
    rtmpt: Option<RtmptServer>,
    hls: Option<std::sync::Arc<crate::outputs::hls::Hls>>,
) -> Router {
    let mut router = Router::new();
    if let Some(hls) = hls {
        router = router.merge(crate::outputs::hls::routes(hls));
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

/// Serves one HTTP/1.1 connection with `router` until the peer closes it; on shutdown, finishes the
/// request in flight and closes. Title-case headers (librtmp looks for `Content-Length`), keep-alive and
/// pipelining, as the tunnel needs.
pub async fn serve_connection<I>(
    io: I,
    peer: Peer,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(peer);
        hyper::service::Service::call(&service, request)
    });
    let connection =
        rtmp_rtmpt::server::http1_builder().serve_connection(TokioIo::new(io), service);
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
