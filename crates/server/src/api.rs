//! The API listener (`listen_api`, default 127.0.0.1:1985): its own axum router, apart from the media
//! ports, for operators and orchestration. Today: `GET /healthz`.
//!
//! Next routes go in [`router`]: `/api/v1/*` (streams, clients, kicks), `/metrics` (Prometheus) and
//! `/readyz`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The API's routes; anything else is a JSON 404.
pub fn router() -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .fallback(not_found)
}

/// Liveness: the process is up and serving.
async fn healthz() -> Response {
    json(StatusCode::OK, r#"{"status":"ok"}"#)
}

async fn not_found() -> Response {
    json(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#)
}

fn json(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Accepts API connections on `listener` until shutdown.
pub async fn run(listener: TcpListener, router: Router, mut shutdown: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, address) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "API accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let peer = crate::http::Peer {
            address,
            secure: false,
        };
        tokio::spawn(crate::http::serve_connection(
            stream,
            peer,
            router.clone(),
            shutdown.clone(),
        ));
    }
}
