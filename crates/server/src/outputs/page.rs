//! The built-in page of the HTTP listeners (`http_page = true`, the default): `/` lists the live streams
//! and plays one in the browser, `/assets/mpegts.js` and `/assets/hls.min.js` are the vendored players
//! (crates/server/assets/vendor, pinned in its VERSIONS.md), embedded in the binary, and
//! `/streams.json` lists the published streams with their codecs.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rtmp_hub::Hub;
use serde::Serialize;

const INDEX_HTML: &[u8] = include_bytes!("../../assets/index.html");
const MPEGTS_JS: &[u8] = include_bytes!("../../assets/vendor/mpegts.js");
const HLS_JS: &[u8] = include_bytes!("../../assets/vendor/hls.min.js");

/// How long browsers keep the vendored players (a week: they change only with the server).
const ASSET_CACHE: &str = "public, max-age=604800";

/// The page's routes, reading the streams from `hub`.
pub fn routes(hub: Hub) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/mpegts.js", get(mpegts))
        .route("/assets/hls.min.js", get(hls))
        .route("/streams.json", get(streams))
        .with_state(hub)
}

fn asset(content_type: &'static str, cache: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", "no-cache", INDEX_HTML)
}

async fn mpegts() -> Response {
    asset("text/javascript; charset=utf-8", ASSET_CACHE, MPEGTS_JS)
}

async fn hls() -> Response {
    asset("text/javascript; charset=utf-8", ASSET_CACHE, HLS_JS)
}

/// One published stream as `/streams.json` lists it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ListedStream {
    /// The application.
    pub app: String,
    /// The stream name.
    pub name: String,
    /// `h264`, `hevc`, `av1`, `vp9`... (empty until its sequence header arrived).
    pub video: String,
    /// `aac`, `mp3`, `opus`... (empty until known).
    pub audio: String,
}

/// The codec name a page shows for a FourCC.
pub fn codec_name(fourcc: Option<[u8; 4]>) -> String {
    let Some(fourcc) = fourcc else {
        return String::new();
    };
    match &fourcc {
        b"avc1" => "h264",
        b"hvc1" => "hevc",
        b"av01" => "av1",
        b"vp09" => "vp9",
        b"vp08" => "vp8",
        b"mp4a" => "aac",
        b".mp3" => "mp3",
        b"Opus" => "opus",
        b"fLaC" => "flac",
        b"ac-3" => "ac3",
        b"ec-3" => "eac3",
        other => return String::from_utf8_lossy(other).trim().to_owned(),
    }
    .to_owned()
}

/// The published streams of `hub`, by application and name.
pub fn list(hub: &Hub) -> Vec<ListedStream> {
    hub.published()
        .into_iter()
        .map(|stream| ListedStream {
            app: stream.key.app,
            name: stream.key.name,
            video: codec_name(stream.video),
            audio: codec_name(stream.audio),
        })
        .collect()
}

async fn streams(State(hub): State<Hub>) -> Response {
    let mut response = match serde_json::to_vec(&list(&hub)) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_are_named_as_people_know_them() {
        assert_eq!(codec_name(Some(*b"avc1")), "h264");
        assert_eq!(codec_name(Some(*b"mp4a")), "aac");
        assert_eq!(codec_name(Some(*b"hvc1")), "hevc");
        assert_eq!(codec_name(None), "");
    }
}
