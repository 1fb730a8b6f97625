//! The API's recording routes (docs/api.md): `GET`, `POST` (start) and `DELETE` (stop) on
//! `/api/v1/streams/{app}/{name}/record`, over [`crate::outputs::recordings::Recordings`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use rtmp_hub::StreamKey;
use serde::Serialize;

use crate::api::ApiState;
use crate::outputs::recordings::RecordingError;

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn refusal(error: &RecordingError) -> Response {
    let status = match error {
        RecordingError::NoSuchStream => StatusCode::NOT_FOUND,
        RecordingError::AlreadyRecording | RecordingError::NotRecording => StatusCode::CONFLICT,
        RecordingError::Off => StatusCode::FORBIDDEN,
    };
    json(status, &serde_json::json!({ "error": error.to_string() }))
}

/// `GET .../record`: the stream's recording state.
pub async fn status(
    State(state): State<Arc<ApiState>>,
    Path((app, name)): Path<(String, String)>,
) -> Response {
    match state.recordings.info(&StreamKey { app, name }) {
        Some(info) => json(StatusCode::OK, &info),
        None => refusal(&RecordingError::NoSuchStream),
    }
}

/// `POST .../record`: starts recording (404 no such stream, 409 already recording, 403 recording off).
pub async fn start(
    State(state): State<Arc<ApiState>>,
    Path((app, name)): Path<(String, String)>,
) -> Response {
    match state.recordings.start(&StreamKey { app, name }) {
        Ok(info) => json(StatusCode::CREATED, &info),
        Err(error) => refusal(&error),
    }
}

/// `DELETE .../record`: stops recording (404 no such stream, 409 not recording).
pub async fn stop(
    State(state): State<Arc<ApiState>>,
    Path((app, name)): Path<(String, String)>,
) -> Response {
    match state.recordings.stop(&StreamKey { app, name }).await {
        Ok(info) => json(StatusCode::OK, &info),
        Err(error) => refusal(&error),
    }
}
