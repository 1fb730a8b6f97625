//! `/api/v1/relays`: list every relay, start a push or a pull, stop one (docs/api.md). The route lines
//! are in [`crate::api::router`]; the handlers are here.
//!
//! Relays started here live until `DELETE`: a push waits for its stream and follows it across
//! publications, a pull runs whether or not anyone plays it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use rtmp_hub::StreamKey;
use serde::{Deserialize, Serialize};

use super::pull::PullLease;
use super::push::{Lifetime, Push};
use super::{check_url, registry, Kind, Origin, RelaySettings};
use crate::api::ApiState;

/// `POST /api/v1/relays`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRelay {
    /// `push` or `pull`.
    pub kind: Kind,
    /// The local stream's application.
    pub app: String,
    /// The local stream's name.
    pub name: String,
    /// The target (push) or upstream (pull); `{app}` and `{name}` are filled in.
    pub url: String,
    /// For rtmps/rtmpts: accept any certificate (a self-signed server you control).
    #[serde(default)]
    pub insecure_tls: bool,
    /// Connect, answer and write timeout in milliseconds (default 5000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// What keeps a relay started through the API running.
#[derive(Debug)]
enum Held {
    // Held for their `Drop`: dropping either stops the relay.
    Push(#[allow(dead_code)] Push),
    Pull(#[allow(dead_code)] PullLease),
}

fn held() -> std::sync::MutexGuard<'static, BTreeMap<u64, Held>> {
    static HELD: OnceLock<Mutex<BTreeMap<u64, Held>>> = OnceLock::new();
    HELD.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    json(status, &serde_json::json!({ "error": message }))
}

/// `GET /api/v1/relays`.
pub async fn list() -> Response {
    json(
        StatusCode::OK,
        &serde_json::json!({ "relays": registry().list() }),
    )
}

/// `POST /api/v1/relays`: starts a push or a pull; `201 {"id": N, ...}`.
pub async fn create(State(state): State<Arc<ApiState>>, body: axum::body::Bytes) -> Response {
    let Ok(relay) = serde_json::from_slice::<NewRelay>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the body must be JSON: {\"kind\": \"push\"|\"pull\", \"app\", \"name\", \"url\"}",
        );
    };
    let names_ok = [&relay.app, &relay.name]
        .into_iter()
        .all(|part| !part.is_empty() && crate::policy::names::check_name("name", part).is_ok());
    if !names_ok {
        return error(StatusCode::BAD_REQUEST, "app and name must be stream names");
    }
    if let Err(why) = check_url(&relay.url) {
        return error(StatusCode::BAD_REQUEST, &why);
    }
    let url = super::render_url(&relay.url, &relay.app, &relay.name);
    let key = StreamKey::new(relay.app.clone(), relay.name.clone());
    let mut settings = RelaySettings {
        insecure_tls: relay.insecure_tls,
        ..RelaySettings::default()
    };
    if let Some(ms) = relay.timeout_ms {
        settings.timeout = std::time::Duration::from_millis(ms.clamp(100, 60_000));
    }
    let (id, handle) = match relay.kind {
        Kind::Push => {
            let push = super::push::start(
                &state.hub,
                key,
                url,
                settings,
                Origin::Api,
                Lifetime::UntilStopped,
            );
            (push.id(), Held::Push(push))
        }
        Kind::Pull => {
            let lease = super::pull::join(&state.hub, &key, &url, settings, Origin::Api);
            (lease.id(), Held::Pull(lease))
        }
    };
    held().insert(id, handle);
    tracing::info!(id, kind = ?relay.kind, app = %relay.app, name = %relay.name,
        target = %super::mask::mask_url(&relay.url), "relay started through the API");
    let info = registry().list().into_iter().find(|r| r.id == id);
    json(StatusCode::CREATED, &info)
}

/// `DELETE /api/v1/relays/{id}`: stops any relay (configured ones too, until the stream's next
/// publish or play starts them again).
pub async fn remove(Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "relay id must be a positive integer",
        );
    };
    let held = held().remove(&id);
    let stopped = registry().stop(id);
    if held.is_some() || stopped {
        tracing::info!(id, "relay stopped through the API");
        json(StatusCode::OK, &serde_json::json!({ "stopped": id }))
    } else {
        error(StatusCode::NOT_FOUND, "no such relay")
    }
}
