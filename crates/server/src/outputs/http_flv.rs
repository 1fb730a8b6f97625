//! HTTP-FLV and WebSocket-FLV playback: `GET`/`HEAD /{app}/{name}.flv` on every HTTP listener, and the
//! same path upgraded to a WebSocket (binary messages of FLV, as mpegts.js and flv.js read them).
//!
//! A player is a hub subscriber like an RTMP player: the same access decisions (names, address rules,
//! signed names, `on_play`, player limits: [`crate::policy`], [`crate::hooks`]), the same bounded ring
//! that skips a slow reader to the next keyframe, the same batch window. What it sends is the FLV file
//! header, then each frame's FLV tag as [`rtmp_hub::Frame::flv_tag`] built it once for every player:
//! metadata, sequence headers and the GOP cache first (the subscriber's start), then live tags.
//! Timestamps are the stream's own, as RTMP players get them.
//!
//! Which FLV: legacy FLV (AVC, AAC, MP3) unless the player asks for Enhanced FLV (`?enhanced=1`, or
//! `http_flv_enhanced = true` for the application). A legacy request for a stream whose video is an
//! E-RTMP codec (HEVC, AV1, VP9) is answered `406 Not Acceptable` saying how to ask; enhanced frames
//! that show up later (another publisher) are left out for it, as for an RTMP player that did not
//! announce the codec. Multitrack (E-RTMP v2) players get the default track unless they ask
//! `?multitrack=1` together with Enhanced FLV.
//!
//! Files: in an application with `vod_path`, `/{app}/{name}.flv` plays the file `NAME` (`.flv`, else
//! `.mp4`) when nobody publishes `NAME` live, or whenever `?start=MS` is asked (RTMP's `play` start `-2`
//! and `>= 0`), through [`crate::vod::http::FlvBytes`]: paced in real time with 2 s of read-ahead,
//! `?duration=MS` to stop early, after the same access decisions; a name that would leave `vod_path` is
//! answered 404. The response (or the WebSocket) ends with the file, closed as `complete`.
//!
//! A reader that stops reading is closed by [`WriteDeadline`] once a write has waited the server's
//! `idle_timeout_ms`; its subscriber meanwhile skips to keyframes without holding more memory.
//!
//! How the bytes go out: a live player whose connection [`crate::http::take_over`] offers is written by
//! the stream's flushes (module `direct`); any other (HTTPS, a kept-alive connection's later request, a
//! file) is a hyper response body (`FlvBody`) or WebSocket messages. The bytes are the same.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{SinkExt, Stream, StreamExt};
use rtmp_amf::Amf0Value;
use rtmp_flv::{FlvHeader, TagWriter};
use rtmp_hub::{Frame, FrameKind, Hub, StreamKey, Subscriber, SubscriberEvent};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use crate::clients::{Clients, Identity, Registration, Role};
use crate::close_reason::{CloseReason, Direction, Timeout};
use crate::config::{AppConfig, SharedApps};
use crate::hooks::{self, Call, HookForm};
use crate::http::Peer;
use crate::policy::limits::{self, Slot, OCCUPANCY};
use crate::policy::{self, Action, Reason};
use crate::router::Verdict;
use crate::vod::{self, http::FlvBytes, http::OpenError, path::PathRefusal};

mod direct;

/// Events taken from the subscriber in one turn at most, so one player's turn stays short.
const EVENTS_PER_TURN: usize = 256;
/// Room the outgoing queue keeps once empty (joining queues a whole GOP at once).
const RETAINED_QUEUE: usize = 16;

/// What the HTTP-FLV routes share: the hub, the per-application settings, the client registry.
#[derive(Debug, Clone)]
pub struct HttpFlv {
    /// The hub players subscribe to.
    pub hub: Hub,
    /// The per-application settings in force.
    pub apps: Arc<SharedApps>,
    /// Every open connection: HTTP-FLV and WS-FLV players are registered as `http-flv` and `ws-flv`.
    pub clients: Arc<Clients>,
    /// Set to true when the server shuts down: responses end.
    pub shutdown: watch::Receiver<bool>,
}

/// `/{app}/{file}`: `file` must be `NAME.flv`. GET and HEAD play, OPTIONS answers a CORS preflight,
/// a WebSocket upgrade plays over WS-FLV.
pub async fn serve(
    State(state): State<Arc<HttpFlv>>,
    Path((app, file)): Path<(String, String)>,
    request: Request,
) -> Response {
    let Some(name) = file.strip_suffix(".flv") else {
        return text(StatusCode::NOT_FOUND, "not found\n", None);
    };
    let config = state.apps.app(&app);
    let cors = config.cors_origin().map(str::to_owned);
    let cors = cors.as_deref();
    let method = request.method().clone();
    if method == Method::OPTIONS {
        return preflight(cors, request.headers());
    }
    if method != Method::GET && method != Method::HEAD {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET, HEAD and OPTIONS\n",
            cors,
        );
        response.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        return response;
    }
    let Some(peer) = request.extensions().get::<Peer>().copied() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let stall = request.extensions().get::<WriteStall>().cloned();
    let may_take_over = request
        .extensions()
        .get::<crate::http::take_over::MayTakeOver>()
        .is_some();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let wants_websocket = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let headers = request.headers();
    let ask = Ask {
        peer,
        app,
        name: name.to_owned(),
        query,
        variant: if wants_websocket {
            "ws-flv"
        } else {
            "http-flv"
        },
        user_agent: header_text(headers, header::USER_AGENT),
        page_url: header_text(headers, header::REFERER),
        url: format!(
            "{}://{}{}",
            if peer.secure { "https" } else { "http" },
            header_text(headers, header::HOST),
            request.uri().path()
        ),
        wait: method == Method::GET,
        stall,
    };
    if wants_websocket {
        let (mut parts, _) = request.into_parts();
        let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(upgrade) => upgrade,
            Err(rejection) => return rejection.into_response(),
        };
        match admit(&state, config.clone(), ask).await {
            Ok(start) => {
                let shutdown = state.shutdown.clone();
                upgrade
                    .on_upgrade(move |socket| run_websocket(socket, start, shutdown))
                    .into_response()
            }
            Err(refused) => refused.response(cors),
        }
    } else {
        match admit(&state, config.clone(), ask).await {
            Ok(start) if method == Method::HEAD => {
                let mut start = start;
                // The head is the whole answer: nothing of the stream (or file) follows it.
                start.playback.finish(CloseReason::Complete);
                flv_response(Body::empty(), cors)
            }
            Ok(Start {
                source: Source::Live(feed),
                playback,
            }) if may_take_over => {
                let task = direct::task(feed, playback, state.shutdown.clone());
                let mut response = flv_response(Body::empty(), cors);
                response
                    .extensions_mut()
                    .insert(crate::http::take_over::TakeOver::new(task));
                response
            }
            Ok(start) => {
                let body = FlvBody::new(start, state.shutdown.clone());
                flv_response(Body::new(body), cors)
            }
            Err(refused) => refused.response(cors),
        }
    }
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A request to play, as the access decisions see it.
struct Ask {
    peer: Peer,
    app: String,
    name: String,
    query: String,
    variant: &'static str,
    user_agent: String,
    page_url: String,
    url: String,
    /// Whether to wait for a stream not yet published (GET), or answer at once (HEAD).
    wait: bool,
    stall: Option<WriteStall>,
}

/// A request turned down: its status and the reason told to the client.
struct Refused {
    status: StatusCode,
    why: String,
}

impl Refused {
    fn response(self, cors: Option<&str>) -> Response {
        text(self.status, &format!("{}\n", self.why), cors)
    }
}

/// A player admitted: what it plays, and its registration.
struct Start {
    source: Source,
    playback: Playback,
}

/// What an admitted player reads.
enum Source {
    /// The live stream: its subscriber, and the tags its start already holds.
    Live(Feed),
    /// A file under the application's `vod_path`, as paced FLV chunks (header first).
    File(FileChunks),
}

/// A file's FLV bytes, chunk by chunk, as [`FlvBytes::next_chunk`] yields them.
type FileChunks = Pin<Box<dyn Stream<Item = Bytes> + Send>>;

/// How far ahead of real time a file is sent over HTTP (no HTTP player announces a buffer length).
const VOD_READ_AHEAD_MS: u32 = 2000;

/// Decides a play request as an RTMP `play` is decided, registers the client, opens the file where a
/// `vod_path` file is played, else waits (bounded) for the stream to be published, and checks that the
/// player can read it.
async fn admit(state: &HttpFlv, config: Arc<AppConfig>, ask: Ask) -> Result<Start, Refused> {
    let live = Arc::new(Live {
        stream: Mutex::new(ask.name.clone()),
        app: ask.app.clone(),
        user_agent: ask.user_agent.clone(),
        variant: ask.variant,
        bytes_out: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
    });
    let registration = Arc::new(state.clients.register(ask.peer.address, ask.variant));
    publish_identity(&registration, &live);
    let registration_id = registration.id();
    let mut playback = Playback {
        registration,
        live,
        peer: ask.peer.address,
        started: Instant::now(),
        config: config.clone(),
        slot: None,
        playing: false,
        stall: ask.stall.clone(),
        closed: false,
        pull: None,
        // Every line of the player is inside this span, as an RTMP connection's are.
        span: tracing::info_span!(
            "connection",
            id = registration_id,
            variant = ask.variant,
            address = %ask.peer.address,
            app = %ask.app,
            stream = %ask.name
        ),
    };
    let refuse = |playback: &mut Playback, status: StatusCode, why: String| {
        tracing::warn!(parent: &playback.span, peer = %ask.peer.address, variant = ask.variant,
            app = %ask.app, stream = %ask.name, status = status.as_u16(), why = %why, "play refused");
        playback.finish(CloseReason::Refused(why.clone()));
        Refused { status, why }
    };
    // The same access decisions as an RTMP play, in the same order: names and address rules and signed
    // names (policy), a login (which HTTP cannot do), the `on_play` hook, then the player limits.
    let checked = policy::check_connect(&ask.app).and_then(|_| {
        policy::check_stream(
            &config,
            Action::Play,
            ask.peer.address.ip(),
            &ask.app,
            (&ask.name, &ask.query),
            SystemTime::now(),
        )
    });
    if let Err(refusal) = checked {
        let status = match refusal.reason {
            // In a VOD application a name is a file name: one that could leave `vod_path` names no
            // file (as an RTMP play answers StreamNotFound).
            Reason::BadName if config.vod_path.is_some() => StatusCode::NOT_FOUND,
            Reason::BadName => StatusCode::BAD_REQUEST,
            _ => StatusCode::FORBIDDEN,
        };
        return Err(refuse(&mut playback, status, refusal.description));
    }
    if policy::needs_login(&config, Action::Play) {
        let why =
            "play needs a login (authmod=adobe), which HTTP-FLV players cannot make".to_owned();
        return Err(refuse(&mut playback, StatusCode::FORBIDDEN, why));
    }
    let mut name = ask.name.clone();
    let mut relay_to = None;
    if let Some(url) = &config.on_play {
        let form = HookForm {
            call: Call::Play,
            addr: ask.peer.address.ip().to_string(),
            client_id: playback.registration.id(),
            app: ask.app.clone(),
            flashver: ask.user_agent.clone(),
            swfurl: String::new(),
            tcurl: ask.url.clone(),
            pageurl: ask.page_url.clone(),
            variant: ask.variant.to_owned(),
            name: Some(ask.name.clone()),
            publish_type: None,
            path: None,
            args: ask.query.clone(),
        };
        match hooks::ask(url, &form, config.hook_timeout(), config.hook_failure).await {
            Verdict::Accept => {}
            Verdict::Rename(to) => {
                tracing::info!(parent: &playback.span, peer = %ask.peer.address, stream = %name,
                    to = %to, "play renamed");
                name = to;
            }
            Verdict::Refuse(why) => return Err(refuse(&mut playback, StatusCode::FORBIDDEN, why)),
            Verdict::Relay(url) => relay_to = Some(url),
        }
    }
    if limits::limited(&config) {
        match OCCUPANCY.take(&config, Action::Play, &ask.app, &name) {
            Ok(slot) => playback.slot = Some(slot),
            Err(refusal) => {
                return Err(refuse(
                    &mut playback,
                    StatusCode::SERVICE_UNAVAILABLE,
                    refusal.description,
                ))
            }
        }
    }
    let key = StreamKey::new(ask.app.clone(), name.clone());
    *playback
        .live
        .stream
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = name.clone();
    publish_identity(&playback.registration, &playback.live);
    let options = Options::of(&config, &ask.query);
    playback
        .span
        .record("stream", tracing::field::display(&name));
    // A file under `vod_path` when the request asks for one (`?start=`), or when nobody publishes the
    // name live (an RTMP play's start -2); a name with no file then plays the live stream.
    let root = config.vod_path.clone().filter(|_| relay_to.is_none());
    let range = match root.as_ref().map(|_| FileRange::of(&ask.query)).transpose() {
        Ok(range) => range.unwrap_or(FileRange::WHOLE),
        Err(why) => return Err(refuse(&mut playback, StatusCode::BAD_REQUEST, why)),
    };
    if let Some(root) = root.filter(|_| range.start_ms >= 0.0 || !is_live(&state.hub, &key)) {
        match open_file(root, &name, range).await {
            Ok(chunks) => {
                tracing::info!(parent: &playback.span, peer = %ask.peer.address, variant = ask.variant,
                    clientid = playback.registration.id(), stream = %key, start = range.start_ms,
                    duration = range.duration_ms, "play file");
                playback.playing = true;
                return Ok(Start {
                    source: Source::File(chunks),
                    playback,
                });
            }
            Err(OpenError::NotFound(PathRefusal::Missing(_))) if range.start_ms < 0.0 => {}
            Err(OpenError::NotFound(refusal)) => {
                let why = match refusal {
                    PathRefusal::Root(_) => format!("{key} cannot be played here"),
                    refusal => refusal.to_string(),
                };
                return Err(refuse(&mut playback, StatusCode::NOT_FOUND, why));
            }
            Err(OpenError::Unplayable(reason)) => {
                let why = format!("{key} cannot be played: {reason}");
                return Err(refuse(
                    &mut playback,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    why,
                ));
            }
        }
    }
    tracing::info!(parent: &playback.span, peer = %ask.peer.address, variant = ask.variant,
        clientid = playback.registration.id(), stream = %key, "play");
    // A stream nobody publishes here may come from an upstream: the hook's relay redirect, or the
    // application's `pull`; the pull is shared with every other player and held while this one plays.
    playback.pull = crate::relay::pull::lease_for(&state.hub, &config, &key, relay_to);
    let mut subscriber = state.hub.subscribe(&key);
    let wait = if ask.wait {
        config.http_flv_wait()
    } else {
        Duration::ZERO
    };
    if !published(&mut subscriber, wait).await {
        let why = match &config.vod_path {
            Some(_) => format!("{key} is not published (waited {wait:?}) and has no file"),
            None => format!("{key} is not published (waited {wait:?})"),
        };
        return Err(refuse(&mut playback, StatusCode::NOT_FOUND, why));
    }
    let mut initial = Vec::new();
    while let Some(event) = subscriber.try_recv() {
        initial.push(event);
    }
    if !options.enhanced {
        if let Some(codec) = enhanced_video(&initial, options) {
            let why = format!(
                "{key} carries {codec} video, which needs Enhanced FLV: ask with ?enhanced=1 \
                 (or set http_flv_enhanced = true for the application)"
            );
            return Err(refuse(&mut playback, StatusCode::NOT_ACCEPTABLE, why));
        }
    }
    playback.playing = true;
    let mut feed = Feed {
        subscriber,
        options,
        out: std::collections::VecDeque::new(),
        ended: None,
    };
    feed.out
        .push_back(TagWriter::new().file_header(flv_header(&initial)));
    for event in initial {
        feed.take(event);
    }
    Ok(Start {
        source: Source::Live(feed),
        playback,
    })
}

/// Whether someone publishes `key` live now.
fn is_live(hub: &Hub, key: &StreamKey) -> bool {
    hub.stats(key).is_some_and(|stats| stats.publishing)
}

/// The part of a file a request asks for: `?start=MS` (from the keyframe at or before it; none: the
/// beginning, or the live stream when one is published) and `?duration=MS` (none: to the end).
#[derive(Debug, Clone, Copy, PartialEq)]
struct FileRange {
    start_ms: f64,
    duration_ms: f64,
}

impl FileRange {
    /// The whole file, or the live stream while one is published (RTMP's start -2).
    const WHOLE: FileRange = FileRange {
        start_ms: -2.0,
        duration_ms: -1.0,
    };

    /// The range `query` asks for; a value that is not a number of milliseconds is refused.
    fn of(query: &str) -> Result<FileRange, String> {
        let number = |key: &str| {
            let Some(value) = policy::names::query_value(query, key) else {
                return Ok(None);
            };
            match value.parse::<f64>() {
                Ok(ms) if ms.is_finite() && ms >= 0.0 => Ok(Some(ms)),
                _ => Err(format!(
                    "{key}={value:?} is not a number of milliseconds (0 or more)"
                )),
            }
        };
        Ok(FileRange {
            start_ms: number("start")?.unwrap_or(Self::WHOLE.start_ms),
            duration_ms: number("duration")?.unwrap_or(Self::WHOLE.duration_ms),
        })
    }
}

/// Opens the file `name` names under `root`: `NAME`, `NAME.flv`, else `NAME.mp4`.
async fn open_file(
    root: std::path::PathBuf,
    name: &str,
    range: FileRange,
) -> Result<FileChunks, OpenError> {
    let request = |name: String| vod::Request {
        root: root.clone(),
        name,
        start_ms: range.start_ms,
        duration_ms: range.duration_ms,
        buffer_ms: VOD_READ_AHEAD_MS,
    };
    let flv = match FlvBytes::open(request(name.to_owned())).await {
        Err(OpenError::NotFound(PathRefusal::Missing(missing))) => {
            match FlvBytes::open(request(format!("mp4:{name}"))).await {
                Err(OpenError::NotFound(PathRefusal::Missing(_))) => {
                    return Err(OpenError::NotFound(PathRefusal::Missing(missing)))
                }
                opened => opened?,
            }
        }
        opened => opened?,
    };
    let chunks = futures_util::stream::unfold(flv, |mut flv| async move {
        let chunk = flv.next_chunk().await?;
        Some((chunk, flv))
    });
    Ok(Box::pin(chunks))
}

/// Waits up to `wait` for the stream to be published; true once it is.
async fn published(subscriber: &mut Subscriber, wait: Duration) -> bool {
    if wait.is_zero() {
        // Without waiting: a live stream announces itself at once.
        return matches!(subscriber.try_recv(), Some(SubscriberEvent::Published));
    }
    let published = async {
        loop {
            if let SubscriberEvent::Published = subscriber.recv().await {
                return;
            }
        }
    };
    tokio::time::timeout(wait, published).await.is_ok()
}

/// What FLV a player reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Options {
    /// Enhanced FLV (E-RTMP codecs) allowed.
    enhanced: bool,
    /// Every track of a multitrack message (only with `enhanced`); else the default track.
    multitrack: bool,
}

impl Options {
    fn of(config: &AppConfig, query: &str) -> Options {
        let asks = |key: &str| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .any(|(k, v)| k == key && matches!(v, "1" | "true"))
        };
        let enhanced = config.http_flv_enhanced || asks("enhanced");
        Options {
            enhanced,
            multitrack: enhanced && asks("multitrack"),
        }
    }

    /// The form of `frame` this player gets, `None` when it gets nothing of it.
    fn select(self, frame: &Frame) -> Option<&Frame> {
        let frame = match (
            frame.info.multitrack && !self.multitrack,
            &frame.default_track,
        ) {
            (false, _) => frame,
            (true, Some(single)) => single,
            (true, None) => return None,
        };
        (self.enhanced || !frame.info.enhanced).then_some(frame)
    }
}

/// The FourCC of the first video frame in `events` that needs Enhanced FLV, as text.
fn enhanced_video(events: &[SubscriberEvent], options: Options) -> Option<String> {
    events.iter().find_map(|event| match event {
        SubscriberEvent::Frame(frame) if frame.kind == FrameKind::Video => {
            let frame = match (frame.info.multitrack, &frame.default_track) {
                (true, Some(single)) => single,
                _ => &**frame,
            };
            let needs = frame.info.enhanced && !options.enhanced;
            needs.then(|| {
                frame.info.codec.map_or_else(
                    || "E-RTMP".to_owned(),
                    |c| String::from_utf8_lossy(&c).into_owned(),
                )
            })
        }
        _ => None,
    })
}

/// The FLV header's audio and video flags: from `onMetaData` (`audiocodecid`, `videocodecid`) and the
/// frames the start holds; both when nothing tells.
fn flv_header(initial: &[SubscriberEvent]) -> FlvHeader {
    let mut has_audio = false;
    let mut has_video = false;
    for event in initial {
        let SubscriberEvent::Frame(frame) = event else {
            continue;
        };
        match frame.kind {
            FrameKind::Audio => has_audio = true,
            FrameKind::Video => has_video = true,
            FrameKind::Data => {
                let values = rtmp_amf::decode_amf0(&frame.message().payload).unwrap_or_default();
                for value in values {
                    if let Amf0Value::EcmaArray(properties) | Amf0Value::Object(properties) = value
                    {
                        for (key, _) in properties {
                            has_audio |= key == "audiocodecid";
                            has_video |= key == "videocodecid";
                        }
                    }
                }
            }
        }
    }
    if !has_audio && !has_video {
        return FlvHeader::default();
    }
    FlvHeader {
        has_audio,
        has_video,
    }
}

/// A player's subscriber and the tags waiting to be sent.
struct Feed {
    subscriber: Subscriber,
    options: Options,
    out: std::collections::VecDeque<Bytes>,
    /// Set when the stream ended for this player.
    ended: Option<CloseReason>,
}

impl Feed {
    /// Queues what `event` means for the player.
    fn take(&mut self, event: SubscriberEvent) {
        match event {
            SubscriberEvent::Frame(frame) => {
                if let Some(tag) = self.options.select(&frame).and_then(Frame::flv_tag) {
                    self.out.push_back(tag.clone());
                }
            }
            // A new publisher: its metadata and sequence headers follow.
            SubscriberEvent::Published => {}
            SubscriberEvent::Unpublished => self.ended = Some(CloseReason::Unpublished),
        }
    }

    /// Takes every event ready now (at most a turn's worth).
    fn take_ready(&mut self) {
        for _ in 0..EVENTS_PER_TURN {
            if self.ended.is_some() {
                return;
            }
            match self.subscriber.try_recv() {
                Some(event) => self.take(event),
                None => return,
            }
        }
    }

    fn pop(&mut self) -> Option<Bytes> {
        let next = self.out.pop_front();
        if self.out.is_empty() {
            self.out.shrink_to(RETAINED_QUEUE);
        }
        next
    }
}

/// What the API reads of an HTTP-FLV or WS-FLV player.
#[derive(Debug)]
struct Live {
    stream: Mutex<String>,
    app: String,
    user_agent: String,
    variant: &'static str,
    bytes_out: AtomicU64,
    dropped: AtomicU64,
}

/// Tells the registry who this player is (at admission, and again once its stream name is final).
fn publish_identity(registration: &Registration, live: &Live) {
    let stream = live
        .stream
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    registration.stats().set_identity(
        Role::Player,
        Identity {
            variant: live.variant,
            app: live.app.clone(),
            stream,
            flash_ver: live.user_agent.clone(),
        },
    );
}

impl Playback {
    /// Counts `len` bytes sent, for the close line and the registry.
    fn sent(&self, len: u64) {
        let total = self.live.bytes_out.fetch_add(len, Ordering::Relaxed) + len;
        self.registration
            .stats()
            .set_counts(0, total, self.live.dropped.load(Ordering::Relaxed));
    }

    /// Records the frames the player's subscriber skipped so far.
    fn dropped(&self, dropped: u64) {
        self.live.dropped.store(dropped, Ordering::Relaxed);
        self.registration.stats().set_counts(
            0,
            self.live.bytes_out.load(Ordering::Relaxed),
            dropped,
        );
    }
}

/// A player's place in the registry, its limits slot, and its one close line.
struct Playback {
    registration: Arc<Registration>,
    live: Arc<Live>,
    peer: SocketAddr,
    started: Instant,
    config: Arc<AppConfig>,
    slot: Option<Slot>,
    /// Accepted and streaming (for `on_play_done`).
    playing: bool,
    stall: Option<WriteStall>,
    closed: bool,
    /// The pull feeding the stream, when it comes from an upstream (crate::relay::pull).
    pull: Option<crate::relay::pull::PullLease>,
    /// The player's `connection` span: id, variant, address, app, stream.
    span: tracing::Span,
}

impl Playback {
    /// Why a connection that went away without the server ending it ended.
    fn gone(&self) -> CloseReason {
        match &self.stall {
            Some(stall) if stall.flag.load(Ordering::Relaxed) => {
                CloseReason::Timeout(Timeout::WriteStalled(stall.limit))
            }
            _ => CloseReason::PeerClosed,
        }
    }

    /// Logs the close line, counts the end, and tells `on_play_done`; once.
    fn finish(&mut self, reason: CloseReason) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        self.slot = None;
        let stream = self
            .live
            .stream
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let bytes_out = self.live.bytes_out.load(Ordering::Relaxed);
        tracing::info!(
            parent: &self.span,
            peer = %self.peer,
            clientid = self.registration.id(),
            variant = self.live.variant,
            app = %self.live.app,
            stream = %stream,
            duration_ms = self.started.elapsed().as_millis() as u64,
            bytes_in = 0u64,
            bytes_out,
            dropped_frames = self.live.dropped.load(Ordering::Relaxed),
            reason = %reason,
            cause = reason.as_str(),
            "close"
        );
        self.registration
            .ended(reason.as_str(), self.live.variant, (0, bytes_out));
        if self.playing {
            for (call, url) in [
                (Call::PlayDone, &self.config.on_play_done),
                (Call::Done, &self.config.on_done),
            ] {
                let Some(url) = url else { continue };
                let mut form = HookForm {
                    call,
                    addr: self.peer.ip().to_string(),
                    client_id: self.registration.id(),
                    app: self.live.app.clone(),
                    flashver: self.live.user_agent.clone(),
                    swfurl: String::new(),
                    tcurl: String::new(),
                    pageurl: String::new(),
                    variant: self.live.variant.to_owned(),
                    name: None,
                    publish_type: None,
                    path: None,
                    args: String::new(),
                };
                form.set_stream(&stream);
                hooks::notify(url.as_str().into(), form, self.config.hook_timeout());
            }
        }
    }
}

impl Drop for Playback {
    fn drop(&mut self) {
        let reason = self.gone();
        self.finish(reason);
    }
}

type Signal = Pin<Box<dyn Future<Output = CloseReason> + Send>>;

/// Resolves with the reason when the server shuts down or the API kicks the player.
fn stop_signal(mut shutdown: watch::Receiver<bool>, kicked: Arc<Registration>) -> Signal {
    Box::pin(async move {
        tokio::select! {
            _ = shutdown.wait_for(|down| *down) => CloseReason::Shutdown,
            _ = kicked.kicked() => CloseReason::Kicked,
        }
    })
}

/// The HTTP-FLV response body: the queued tags, then what the subscriber yields, until the stream is
/// unpublished, the server shuts down or the API kicks the player. Each tag goes out as the same
/// `Bytes` every player shares. A file's body is its chunks, to its end.
struct FlvBody {
    source: Source,
    playback: Playback,
    stop: Signal,
}

impl FlvBody {
    fn new(start: Start, shutdown: watch::Receiver<bool>) -> FlvBody {
        let Start { source, playback } = start;
        FlvBody {
            stop: stop_signal(shutdown, playback.registration.clone()),
            source,
            playback,
        }
    }
}

impl hyper::body::Body for FlvBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let feed = match &mut this.source {
            Source::Live(feed) => feed,
            Source::File(chunks) => {
                if let Poll::Ready(reason) = this.stop.as_mut().poll(cx) {
                    this.playback.finish(reason);
                    return Poll::Ready(None);
                }
                return match chunks.poll_next_unpin(cx) {
                    Poll::Ready(Some(bytes)) => {
                        this.playback.sent(bytes.len() as u64);
                        Poll::Ready(Some(Ok(hyper::body::Frame::data(bytes))))
                    }
                    Poll::Ready(None) => {
                        this.playback.finish(CloseReason::Complete);
                        Poll::Ready(None)
                    }
                    Poll::Pending => Poll::Pending,
                };
            }
        };
        loop {
            if let Some(bytes) = feed.pop() {
                this.playback.sent(bytes.len() as u64);
                return Poll::Ready(Some(Ok(hyper::body::Frame::data(bytes))));
            }
            if let Some(reason) = feed.ended.take() {
                this.playback.finish(reason);
                return Poll::Ready(None);
            }
            if let Poll::Ready(reason) = this.stop.as_mut().poll(cx) {
                this.playback.finish(reason);
                return Poll::Ready(None);
            }
            match feed.subscriber.poll_recv(cx) {
                Poll::Ready(event) => {
                    feed.take(event);
                    feed.take_ready();
                    this.playback.dropped(feed.subscriber.dropped());
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A WS-FLV player: binary messages of FLV, written as the subscriber yields them; a close or an error
/// from the peer ends it.
async fn run_websocket(socket: WebSocket, start: Start, shutdown: watch::Receiver<bool>) {
    let Start {
        source,
        mut playback,
    } = start;
    let stop = stop_signal(shutdown, playback.registration.clone());
    let reason = match source {
        Source::Live(feed) => websocket_live(socket, feed, &playback, stop).await,
        Source::File(chunks) => websocket_file(socket, chunks, &playback, stop).await,
    };
    playback.finish(reason);
}

/// A file over WS-FLV: one binary message per chunk, to the file's end.
async fn websocket_file(
    mut socket: WebSocket,
    mut chunks: FileChunks,
    playback: &Playback,
    mut stop: Signal,
) -> CloseReason {
    loop {
        tokio::select! {
            reason = &mut stop => {
                let _ = socket.send(Message::Close(None)).await;
                return reason;
            }
            chunk = chunks.next() => {
                let Some(bytes) = chunk else {
                    let _ = socket.send(Message::Close(None)).await;
                    return CloseReason::Complete;
                };
                let len = bytes.len() as u64;
                if let Err(error) = socket.send(Message::Binary(bytes)).await {
                    return written(playback, &error);
                }
                playback.sent(len);
            }
            message = socket.recv() => match message {
                None | Some(Ok(Message::Close(_))) => return CloseReason::PeerClosed,
                Some(Err(error)) => return CloseReason::io(
                    Direction::Read,
                    &io::Error::other(error.to_string()),
                ),
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Why a WebSocket whose write failed ended: its write stalled, or it broke.
fn written(playback: &Playback, error: &axum::Error) -> CloseReason {
    match playback.gone() {
        CloseReason::PeerClosed => CloseReason::io(
            Direction::Write,
            &io::Error::new(io::ErrorKind::BrokenPipe, error.to_string()),
        ),
        stalled => stalled,
    }
}

/// The live stream over WS-FLV.
async fn websocket_live(
    mut socket: WebSocket,
    mut feed: Feed,
    playback: &Playback,
    mut stop: Signal,
) -> CloseReason {
    loop {
        let mut sent = false;
        let mut failed = None;
        while let Some(bytes) = feed.pop() {
            let len = bytes.len() as u64;
            if let Err(error) = socket.feed(Message::Binary(bytes)).await {
                failed = Some(error);
                break;
            }
            playback.sent(len);
            sent = true;
        }
        if failed.is_none() && sent {
            failed = socket.flush().await.err();
        }
        if let Some(error) = failed {
            return written(playback, &error);
        }
        if let Some(reason) = feed.ended.take() {
            let _ = socket.send(Message::Close(None)).await;
            break reason;
        }
        tokio::select! {
            reason = &mut stop => {
                let _ = socket.send(Message::Close(None)).await;
                break reason;
            }
            event = feed.subscriber.recv() => {
                feed.take(event);
                feed.take_ready();
                playback.dropped(feed.subscriber.dropped());
            }
            message = socket.recv() => match message {
                None | Some(Ok(Message::Close(_))) => break CloseReason::PeerClosed,
                Some(Err(error)) => break CloseReason::io(
                    Direction::Read,
                    &io::Error::other(error.to_string()),
                ),
                // Pings are answered by the socket itself; anything else a player sends is ignored.
                Some(Ok(_)) => {}
            },
        }
    }
}

fn flv_response(body: Body, cors: Option<&str>) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("video/x-flv"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    add_cors(headers, cors);
    response
}

/// A plain-text answer with the CORS header.
fn text(status: StatusCode, body: &str, cors: Option<&str>) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.to_owned(),
    )
        .into_response();
    add_cors(response.headers_mut(), cors);
    response
}

fn add_cors(headers: &mut HeaderMap, cors: Option<&str>) {
    if let Some(origin) = cors.and_then(|o| HeaderValue::from_str(o).ok()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
}

/// The answer to a CORS preflight.
fn preflight(cors: Option<&str>, request: &HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::ALLOW,
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    );
    if cors.is_some() {
        add_cors(headers, cors);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        if let Some(asked) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
    }
    response
}

/// Whether an HTTP connection's writes stalled past their limit: set by [`WriteDeadline`], read by the
/// player to name its close reason. Put in every request's extensions by [`crate::http`].
#[derive(Debug, Clone)]
pub struct WriteStall {
    flag: Arc<AtomicBool>,
    limit: Duration,
}

impl WriteStall {
    /// A flag for writes that may wait at most `limit`.
    pub fn new(limit: Duration) -> Self {
        Self {
            flag: Arc::new(AtomicBool::new(false)),
            limit,
        }
    }
}

/// An HTTP connection's stream whose writes fail with `TimedOut` once one has waited longer than the
/// limit: a reader that stopped reading is let go, however the response is made.
#[derive(Debug)]
pub struct WriteDeadline<I> {
    io: I,
    stall: WriteStall,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// Whether `timer` runs for the write waiting now.
    armed: bool,
}

impl<I> WriteDeadline<I> {
    /// Wraps `io`; `stall` says how long a write may wait and records that one waited longer.
    pub fn new(io: I, stall: WriteStall) -> Self {
        Self {
            io,
            timer: Box::pin(tokio::time::sleep(stall.limit)),
            stall,
            armed: false,
        }
    }

    fn waited<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.armed = false;
            return polled;
        }
        if !self.armed {
            self.armed = true;
            let deadline = tokio::time::Instant::now() + self.stall.limit;
            self.timer.as_mut().reset(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.stall.flag.store(true, Ordering::Relaxed);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the peer read nothing for {:?}", self.stall.limit),
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for WriteDeadline<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.waited(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.waited(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        this.waited(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_flv_is_asked_for_by_the_query_or_the_application() {
        let legacy = AppConfig::default();
        assert_eq!(
            Options::of(&legacy, "a=1"),
            Options {
                enhanced: false,
                multitrack: false
            }
        );
        assert!(Options::of(&legacy, "enhanced=1").enhanced);
        assert!(
            !Options::of(&legacy, "multitrack=1").multitrack,
            "needs enhanced"
        );
        assert!(Options::of(&legacy, "enhanced=true&multitrack=1").multitrack);
        let enhanced = AppConfig {
            http_flv_enhanced: true,
            ..AppConfig::default()
        };
        assert!(Options::of(&enhanced, "").enhanced);
    }

    #[test]
    fn a_file_range_comes_from_start_and_duration_and_refuses_what_is_no_number() {
        assert_eq!(FileRange::of("sign=x"), Ok(FileRange::WHOLE));
        assert_eq!(
            FileRange::of("start=1500&duration=250.5"),
            Ok(FileRange {
                start_ms: 1500.0,
                duration_ms: 250.5
            })
        );
        for bad in ["start=-5", "start=abc", "duration=inf", "start=NaN"] {
            assert!(FileRange::of(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_cors_origin_defaults_to_any_and_can_be_turned_off() {
        let mut config = AppConfig::default();
        assert_eq!(config.cors_origin(), Some("*"));
        config.http_cors_origin = Some(String::new());
        assert_eq!(config.cors_origin(), None);
        config.http_cors_origin = Some("https://a.example".into());
        assert_eq!(config.cors_origin(), Some("https://a.example"));
    }

    #[test]
    fn the_header_flags_come_from_the_metadata_and_default_to_both() {
        assert_eq!(flv_header(&[]), FlvHeader::default());
        let hub = Hub::new(rtmp_hub::HubConfig::default(), Instant::now());
        let key = StreamKey::new("live", "audio-only");
        let publisher = hub.publish(&key, Instant::now()).unwrap();
        let metadata = rtmp_amf::encode_amf0_values(&[
            Amf0Value::String("onMetaData".into()),
            Amf0Value::EcmaArray(vec![("audiocodecid".into(), Amf0Value::Number(10.0))]),
        ])
        .unwrap();
        publisher.set_metadata(Some(&rtmp_chunk::Message {
            timestamp: 0,
            type_id: 18,
            stream_id: 1,
            payload: metadata,
        }));
        let mut subscriber = hub.subscribe(&key);
        let mut events = Vec::new();
        while let Some(event) = subscriber.try_recv() {
            events.push(event);
        }
        assert_eq!(
            flv_header(&events),
            FlvHeader {
                has_audio: true,
                has_video: false
            }
        );
    }
}
