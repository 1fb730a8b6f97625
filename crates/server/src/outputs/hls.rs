//! LL-HLS served from memory: one [`rtmp_hls::Segmenter`] per published stream of an application with
//! `hls = true`, fed by one hub subscriber (encode once: one segmenter however many viewers), its
//! playlist, init segment, parts and segments shared as `Bytes` with the HTTP handlers of every HTTP
//! listener (`/APP/NAME/index.m3u8` and the files it names).
//!
//! A playlist request with `_HLS_msn` (and `_HLS_part`) is a blocking reload (RFC 8216bis 6.2.5.2): it
//! is answered the moment the playlist holds that part, waits at most `hls_block_ms` (then 503), and
//! gets 400 at once when it asks for more than two segments ahead. A request for the part the
//! playlist's preload hint names waits the same way. Waiting requests hold a permit of a bounded pool
//! and a `watch` receiver: the segmenter's task never waits for them.
//!
//! Viewers: the first playlist request of a client address for a stream is decided as an RTMP `play`
//! is (names, address rules, signed names, `on_play`); the viewer is then a session in the client
//! registry (variant `hls`) until it asks for no playlist for [`VIEWER_IDLE`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use rtmp_hls::{BlockingRequest, HlsConfig, Segmenter};
use rtmp_hub::{FrameKind, Hub, StreamKey, SubscriberEvent};
use tokio::sync::{watch, Semaphore};

use crate::clients::{Clients, Identity, Registration, Role};
use crate::config::{AppConfig, SharedApps};
use crate::hooks::{self, Call, HookForm};
use crate::policy::limits::{self, Slot, OCCUPANCY};
use crate::policy::{self, Action, Reason, Refusal};
use crate::router::Verdict;

/// A viewer that asked for no playlist for this long is no longer counted.
pub const VIEWER_IDLE: Duration = Duration::from_secs(10);
/// Blocking requests (playlist reloads and preload hints) waiting at once, server-wide; more get 503.
pub const MAX_WAITING: usize = 16_384;
/// How long an ended stream's playlist (with `EXT-X-ENDLIST`) stays served.
pub const ENDED_LINGER: Duration = Duration::from_secs(30);

/// The segmenter settings of an application, defaulted and bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlsSettings {
    /// What the segmenter is given (its `uri_prefix` is set per run).
    pub segmenter: HlsConfig,
    /// How long a blocking request waits at most.
    pub block: Duration,
}

impl HlsSettings {
    /// From the `hls_*` keys of an application's table.
    pub fn from_app(app: &AppConfig) -> Self {
        let part = app.hls_part_ms.unwrap_or(333).clamp(100, 5_000);
        let segment = app.hls_segment_ms.unwrap_or(2_000).clamp(part, 60_000);
        let window = app.hls_window.unwrap_or(6).clamp(2, 100);
        let block = app
            .hls_block_ms
            .unwrap_or(3 * u64::from(segment))
            .clamp(100, 60_000);
        Self {
            segmenter: HlsConfig {
                part_target_ms: part,
                segment_target_ms: segment,
                window,
                max_segment_ms: 0,
                uri_prefix: String::new(),
            },
            block: Duration::from_millis(block),
        }
    }
}

/// A stream's segmenter as the handlers read it, from its first publish until it has been gone for
/// [`ENDED_LINGER`] (a publisher coming back within that time continues it after a discontinuity).
struct Run {
    /// Names this run's files (`{run}-seg3.m4s`), so that caches never mix two runs of a stream.
    id: String,
    segmenter: Segmenter,
    /// The playlist as last rendered (at `version`).
    playlist: Bytes,
    version: u64,
}

impl Run {
    fn new(settings: &HlsSettings) -> Self {
        let id = run_id();
        let config = HlsConfig {
            uri_prefix: format!("{id}-"),
            ..settings.segmenter.clone()
        };
        let segmenter = Segmenter::new(config);
        Self {
            id,
            playlist: Bytes::from(segmenter.playlist()),
            version: segmenter.version(),
            segmenter,
        }
    }

    /// Renders the playlist again if the segmenter changed it; true when it did.
    fn refresh(&mut self) -> bool {
        if self.segmenter.version() == self.version {
            return false;
        }
        self.version = self.segmenter.version();
        self.playlist = Bytes::from(self.segmenter.playlist());
        true
    }

    fn has_media(&self) -> bool {
        self.segmenter.init().is_some()
    }
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A run id: milliseconds since the epoch in base 36, made unique in the process.
fn run_id() -> String {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = unix_ms(SystemTime::now());
    let previous = LAST.fetch_max(now, Ordering::Relaxed);
    let id = if previous >= now {
        LAST.fetch_add(1, Ordering::Relaxed) + 1
    } else {
        now
    };
    let mut digits = Vec::new();
    let mut rest = id;
    loop {
        digits.push(char::from_digit((rest % 36) as u32, 36).unwrap_or('0'));
        rest /= 36;
        if rest == 0 {
            break;
        }
    }
    digits.iter().rev().collect()
}

/// One stream's segmenter, shared by its task and the handlers.
pub struct HlsStream {
    key: StreamKey,
    settings: HlsSettings,
    run: Mutex<Run>,
    /// Bumped (to the playlist version) whenever the playlist changes; blocked requests wait on it.
    changed: watch::Sender<u64>,
}

impl std::fmt::Debug for HlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HlsStream").field("key", &self.key).finish()
    }
}

impl HlsStream {
    fn lock(&self) -> MutexGuard<'_, Run> {
        self.run.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The playlist as last rendered.
    pub fn playlist(&self) -> Bytes {
        self.lock().playlist.clone()
    }

    fn notify(&self, run: &mut Run) {
        if run.refresh() {
            self.changed.send_replace(run.version);
        }
    }
}

/// A viewer: one client address watching one stream.
struct Viewer {
    last_seen: Instant,
    bytes_out: Arc<AtomicU64>,
    registration: Registration,
    /// Counted against the application's player limits while the viewer lives.
    _slot: Option<Slot>,
    /// `on_play_done` (URL, form, timeout), told when the viewer expires.
    done: Option<(Arc<str>, HookForm, Duration)>,
}

/// LL-HLS for the whole server: the streams being segmented, the viewers, the waiting pool.
pub struct Hls {
    hub: Hub,
    apps: Arc<SharedApps>,
    clients: Arc<Clients>,
    streams: Mutex<HashMap<StreamKey, Arc<HlsStream>>>,
    viewers: Mutex<HashMap<(IpAddr, StreamKey), Viewer>>,
    waiting: Semaphore,
    /// Requests refused because too many were waiting.
    pub overflowed: AtomicU64,
}

impl std::fmt::Debug for Hls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hls")
            .field("streams", &self.lock_streams().len())
            .finish()
    }
}

impl Hls {
    /// LL-HLS over `hub`, reading each application's settings from `apps`, counting viewers in
    /// `clients`.
    pub fn new(hub: Hub, apps: Arc<SharedApps>, clients: Arc<Clients>) -> Arc<Self> {
        Arc::new(Self {
            hub,
            apps,
            clients,
            streams: Mutex::new(HashMap::new()),
            viewers: Mutex::new(HashMap::new()),
            waiting: Semaphore::new(MAX_WAITING),
            overflowed: AtomicU64::new(0),
        })
    }

    fn lock_streams(&self) -> MutexGuard<'_, HashMap<StreamKey, Arc<HlsStream>>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_viewers(&self) -> MutexGuard<'_, HashMap<(IpAddr, StreamKey), Viewer>> {
        self.viewers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The stream being segmented under `key`, if any.
    pub fn stream(&self, key: &StreamKey) -> Option<Arc<HlsStream>> {
        self.lock_streams().get(key).cloned()
    }

    /// HLS viewers counted now.
    pub fn viewers(&self) -> usize {
        self.lock_viewers().len()
    }

    /// Starts segmenting `key` (call when its publish is accepted, for an application with `hls`); a
    /// stream already segmented goes on (its task continues with the new publisher after a
    /// discontinuity). Needs a Tokio runtime.
    pub fn start(self: &Arc<Self>, key: &StreamKey, settings: HlsSettings) {
        let mut streams = self.lock_streams();
        if streams.contains_key(key) {
            return;
        }
        let stream = Arc::new(HlsStream {
            key: key.clone(),
            run: Mutex::new(Run::new(&settings)),
            settings,
            changed: watch::channel(0).0,
        });
        streams.insert(key.clone(), stream.clone());
        drop(streams);
        tracing::info!(app = %key.app, stream = %key.name, "hls started");
        let subscriber = self.hub.subscribe(key);
        tokio::spawn(self.clone().segment(stream, subscriber));
    }

    /// The stream's task: hub events into the segmenter, until the stream has ended and lingered.
    async fn segment(
        self: Arc<Self>,
        stream: Arc<HlsStream>,
        mut subscriber: rtmp_hub::Subscriber,
    ) {
        let linger = tokio::time::sleep(Duration::from_secs(86_400 * 365));
        tokio::pin!(linger);
        let mut ended = false;
        loop {
            let event = tokio::select! {
                biased;
                event = subscriber.recv() => event,
                () = &mut linger, if ended => {
                    // Under the map's lock: a publish that found this stream in the map has already
                    // queued its `Published`, which keeps the task going.
                    let mut streams = self.lock_streams();
                    match subscriber.try_recv() {
                        Some(event) => event,
                        None => {
                            if streams.get(&stream.key).is_some_and(|s| Arc::ptr_eq(s, &stream)) {
                                streams.remove(&stream.key);
                            }
                            break;
                        }
                    }
                }
            };
            // Rebuilt before the lock: the handlers never wait for it.
            let frame = match &event {
                SubscriberEvent::Frame(frame) => {
                    let frame = frame.default_track.as_deref().unwrap_or(frame);
                    Some((frame.kind, frame.message()))
                }
                _ => None,
            };
            let mut run = stream.lock();
            match event {
                SubscriberEvent::Published => {
                    if run.has_media() || ended {
                        // A new publisher: media sequence numbers go on after a discontinuity.
                        run.segmenter.discontinuity();
                        tracing::info!(app = %stream.key.app, stream = %stream.key.name, "hls: new publisher, discontinuity");
                    }
                    ended = false;
                }
                SubscriberEvent::Unpublished => {
                    run.segmenter.finish();
                    ended = true;
                    linger
                        .as_mut()
                        .reset(tokio::time::Instant::now() + ENDED_LINGER);
                }
                SubscriberEvent::Frame(_) => {
                    let Some((kind, message)) = frame else {
                        continue;
                    };
                    let pushed = match kind {
                        FrameKind::Video => run
                            .segmenter
                            .push_video(message.timestamp, &message.payload),
                        FrameKind::Audio => run
                            .segmenter
                            .push_audio(message.timestamp, &message.payload),
                        FrameKind::Data => Ok(()),
                    };
                    if !run.segmenter.is_anchored() {
                        run.segmenter.anchor_wall_clock(unix_ms(SystemTime::now()));
                    }
                    if let Err(error) = pushed {
                        tracing::debug!(app = %stream.key.app, stream = %stream.key.name, %error, "hls: frame skipped");
                    }
                }
            }
            stream.notify(&mut run);
        }
        tracing::info!(app = %stream.key.app, stream = %stream.key.name, "hls stopped");
    }

    /// Forgets viewers idle for [`VIEWER_IDLE`]; run every second by [`Hls::run_expiry`].
    pub fn expire_viewers(&self, now: Instant) {
        let mut left = Vec::new();
        self.lock_viewers().retain(|(peer, key), viewer| {
            let stays = now.duration_since(viewer.last_seen) < VIEWER_IDLE;
            if !stays {
                let sent = viewer.bytes_out.load(Ordering::Relaxed);
                // An HLS viewer ends by no longer asking: counted as the peer's close.
                viewer.registration.ended(
                    crate::close_reason::CloseReason::PeerClosed.as_str(),
                    "hls",
                    (0, sent),
                );
                left.push((*peer, key.clone(), viewer.done.take()));
            }
            stays
        });
        for (peer, key, done) in left {
            tracing::info!(%peer, variant = "hls", stream = %key, "stop");
            if let Some((url, form, timeout)) = done {
                hooks::notify(url, form, timeout);
            }
        }
    }

    /// Expires idle viewers every second, for as long as the server runs.
    pub async fn run_expiry(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            self.expire_viewers(Instant::now());
        }
    }

    /// Counts bytes sent to a known viewer; true when the viewer is known.
    fn seen(&self, peer: IpAddr, key: &StreamKey, bytes: usize, playlist: bool) -> bool {
        let mut viewers = self.lock_viewers();
        let Some(viewer) = viewers.get_mut(&(peer, key.clone())) else {
            return false;
        };
        if playlist {
            viewer.last_seen = Instant::now();
        }
        let total = viewer.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed) + bytes as u64;
        viewer.registration.stats().set_counts(0, total, 0);
        true
    }

    /// A new viewer's place in the client registry (variant `hls`, role `player`) and its byte count.
    fn register(&self, peer: SocketAddr, key: &StreamKey) -> (Registration, Arc<AtomicU64>) {
        let bytes_out = Arc::new(AtomicU64::new(0));
        let registration = self.clients.register(peer, "hls");
        registration.stats().set_identity(
            Role::Player,
            Identity {
                variant: "hls",
                app: key.app.clone(),
                stream: key.name.clone(),
                flash_ver: String::new(),
            },
        );
        (registration, bytes_out)
    }
}

/// The LL-HLS routes, merged into [`crate::http::router`].
pub fn routes(hls: Arc<Hls>) -> Router {
    Router::new()
        .route("/{app}/{name}/{file}", get(serve_file).options(preflight))
        .layer(axum::middleware::from_fn_with_state(
            hls.clone(),
            app_cors_origin,
        ))
        .with_state(hls)
}

/// Every answer carries `Access-Control-Allow-Origin: *` (see [`cors`]) unless the application's
/// `http_cors_origin` says otherwise: then its origin, or none when it is set empty.
async fn app_cors_origin(
    State(hls): State<Arc<Hls>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let app = request
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut response = next.run(request).await;
    let config = hls.apps.app(&app);
    let headers = response.headers_mut();
    match config.cors_origin().map(HeaderValue::from_str) {
        Some(Ok(origin)) => {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
        Some(Err(_)) | None => {
            headers.remove(header::ACCESS_CONTROL_ALLOW_ORIGIN);
        }
    }
    response
}

/// The default origin policy, before [`app_cors_origin`]: `Access-Control-Allow-Origin: *`.
const CORS_ORIGIN: &str = "*";
const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn answer(status: StatusCode, why: &str) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{why}\n"),
    )
        .into_response();
    cors(&mut response);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn cors(response: &mut Response) {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static(CORS_ORIGIN),
    );
}

fn media(body: Bytes, content_type: &'static str, cache: &'static str) -> Response {
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response();
    cors(&mut response);
    response
}

async fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    cors(&mut response);
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

/// A playlist request's query: the blocking-reload directives and the rest (for signed names and
/// hooks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaylistQuery {
    /// `_HLS_msn`.
    pub msn: Option<u64>,
    /// `_HLS_part`.
    pub part: Option<usize>,
    /// Every other parameter, as sent.
    pub rest: String,
}

/// Reads a playlist query; `Err` names what is malformed (answered 400).
pub fn parse_query(query: &str) -> Result<PlaylistQuery, String> {
    let mut parsed = PlaylistQuery::default();
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "_HLS_msn" => {
                let msn = value
                    .parse()
                    .map_err(|_| format!("_HLS_msn {value:?} is not a number"))?;
                if parsed.msn.replace(msn).is_some() {
                    return Err("_HLS_msn given twice".into());
                }
            }
            "_HLS_part" => {
                let part = value
                    .parse()
                    .map_err(|_| format!("_HLS_part {value:?} is not a number"))?;
                if parsed.part.replace(part).is_some() {
                    return Err("_HLS_part given twice".into());
                }
            }
            "_HLS_skip" => {
                if value != "YES" && value != "v2" {
                    return Err(format!("_HLS_skip {value:?} is not YES or v2"));
                }
            }
            key if key.starts_with("_HLS_") => {
                return Err(format!("unknown directive {key}"));
            }
            _ => rest.push(pair),
        }
    }
    if parsed.part.is_some() && parsed.msn.is_none() {
        return Err("_HLS_part without _HLS_msn".into());
    }
    parsed.rest = rest.join("&");
    Ok(parsed)
}

/// What a file name under `/APP/NAME/` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum File<'a> {
    Playlist,
    Init(&'a str, u32),
    Segment(&'a str, u64),
    Part(&'a str, u64, usize),
}

fn parse_file(file: &str) -> Option<File<'_>> {
    if file == "index.m3u8" {
        return Some(File::Playlist);
    }
    let (run, rest) = file.split_once('-')?;
    if let Some(init) = rest.strip_suffix(".mp4") {
        let number = match init.strip_prefix("init")? {
            "" => 0,
            n => n.parse().ok()?,
        };
        return Some(File::Init(run, number));
    }
    let rest = rest.strip_suffix(".m4s")?;
    if let Some(part) = rest.strip_prefix("part") {
        let (msn, index) = part.split_once('.')?;
        return Some(File::Part(run, msn.parse().ok()?, index.parse().ok()?));
    }
    Some(File::Segment(run, rest.strip_prefix("seg")?.parse().ok()?))
}

async fn serve_file(
    State(hls): State<Arc<Hls>>,
    Path((app, name, file)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    let Some(peer) = request.extensions().get::<crate::http::Peer>().copied() else {
        return answer(StatusCode::INTERNAL_SERVER_ERROR, "no peer");
    };
    let Some(wanted) = parse_file(&file) else {
        return answer(StatusCode::NOT_FOUND, "not found");
    };
    let key = StreamKey::new(app, name);
    let app_config = hls.apps.app(&key.app);
    if !app_config.hls {
        return answer(StatusCode::NOT_FOUND, "not found");
    }
    match wanted {
        File::Playlist => playlist(&hls, &app_config, peer, key, query.as_deref()).await,
        File::Init(run, number) => {
            let Some(stream) = hls.stream(&key) else {
                return answer(StatusCode::NOT_FOUND, "no such stream");
            };
            let init = {
                let run_now = stream.lock();
                (run_now.id == run)
                    .then(|| run_now.segmenter.init_by_number(number))
                    .flatten()
            };
            match init {
                Some(init) => {
                    hls.seen(peer.address.ip(), &key, init.len(), false);
                    media(init, "video/mp4", IMMUTABLE)
                }
                None => answer(StatusCode::NOT_FOUND, "no such init segment"),
            }
        }
        File::Segment(run, msn) => {
            let Some(stream) = hls.stream(&key) else {
                return answer(StatusCode::NOT_FOUND, "no such stream");
            };
            let segment = {
                let run_now = stream.lock();
                (run_now.id == run)
                    .then(|| run_now.segmenter.segment(msn))
                    .flatten()
            };
            match segment {
                Some(data) => {
                    hls.seen(peer.address.ip(), &key, data.len(), false);
                    media(data, "video/iso.segment", IMMUTABLE)
                }
                None => answer(StatusCode::NOT_FOUND, "no such segment"),
            }
        }
        File::Part(run, msn, index) => part(&hls, peer, key, run, msn, index).await,
    }
}

/// What a blocked request waits for.
enum Wanted {
    /// The playlist holding segment `msn` (and part).
    Playlist(u64, Option<usize>),
    /// The part itself (a preload hint).
    Part(u64, usize),
}

/// Why a blocked request is answered without what it waited for.
type Refused = (StatusCode, &'static str);

/// Waits until `wanted` is there, the stream ends, or `block` passes; `Err` is the answer to give.
async fn wait_for(hls: &Hls, stream: &HlsStream, wanted: Wanted) -> Result<(), Refused> {
    let ready = |run: &Run| match wanted {
        Wanted::Playlist(msn, part) => match run.segmenter.blocking_request(msn, part) {
            BlockingRequest::Ready => Ok(true),
            BlockingRequest::TooFar => Err((
                StatusCode::BAD_REQUEST,
                "_HLS_msn is more than two segments ahead of the playlist",
            )),
            BlockingRequest::Wait if run.segmenter.is_ended() => Err((
                StatusCode::NOT_FOUND,
                "the stream has ended before that part",
            )),
            BlockingRequest::Wait => Ok(false),
        },
        Wanted::Part(msn, index) => {
            if run.segmenter.part(msn, index).is_some() {
                return Ok(true);
            }
            // Only the part the preload hint names (or the one after it) is worth waiting for.
            match run.segmenter.blocking_request(msn, Some(index)) {
                BlockingRequest::Wait if !run.segmenter.is_ended() => Ok(false),
                _ => Err((StatusCode::NOT_FOUND, "no such part")),
            }
        }
    };
    let mut changed = stream.changed.subscribe();
    if ready(&stream.lock())? {
        return Ok(());
    }
    let Ok(_permit) = hls.waiting.try_acquire() else {
        let overflowed = hls.overflowed.fetch_add(1, Ordering::Relaxed);
        if overflowed % 1000 == 0 {
            tracing::warn!(stream = %stream.key, waiting = MAX_WAITING, refused = overflowed + 1,
                "hls: too many blocking requests waiting; answered 503");
        }
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "too many blocking requests waiting",
        ));
    };
    let deadline = tokio::time::Instant::now() + stream.settings.block;
    loop {
        tokio::select! {
            changed = changed.changed() => {
                if changed.is_err() {
                    return Err((StatusCode::NOT_FOUND, "the stream is gone"));
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                return Err((StatusCode::SERVICE_UNAVAILABLE, "the requested part did not arrive in time"));
            }
        }
        if ready(&stream.lock())? {
            return Ok(());
        }
    }
}

async fn part(
    hls: &Hls,
    peer: crate::http::Peer,
    key: StreamKey,
    run: &str,
    msn: u64,
    index: usize,
) -> Response {
    let Some(stream) = hls.stream(&key) else {
        return answer(StatusCode::NOT_FOUND, "no such stream");
    };
    if stream.lock().id != run {
        return answer(StatusCode::NOT_FOUND, "no such part");
    }
    if let Err((status, why)) = wait_for(hls, &stream, Wanted::Part(msn, index)).await {
        return answer(status, why);
    }
    let data = {
        let run_now = stream.lock();
        (run_now.id == run)
            .then(|| run_now.segmenter.part(msn, index))
            .flatten()
    };
    match data {
        Some(data) => {
            hls.seen(peer.address.ip(), &key, data.len(), false);
            media(data, "video/iso.segment", IMMUTABLE)
        }
        None => answer(StatusCode::NOT_FOUND, "no such part"),
    }
}

async fn playlist(
    hls: &Arc<Hls>,
    app_config: &Arc<AppConfig>,
    peer: crate::http::Peer,
    key: StreamKey,
    query: Option<&str>,
) -> Response {
    let query = match parse_query(query.unwrap_or("")) {
        Ok(query) => query,
        Err(why) => {
            tracing::info!(peer = %peer.address, stream = %key, why = %why, "hls: bad playlist request");
            return answer(StatusCode::BAD_REQUEST, &why);
        }
    };
    let Some(stream) = hls.stream(&key) else {
        return answer(StatusCode::NOT_FOUND, "the stream is not published");
    };
    let known = hls.seen(peer.address.ip(), &key, 0, true);
    if !known {
        if let Err(response) = admit(hls, app_config, peer, &key, &query.rest).await {
            return response;
        }
    }
    if let Some(msn) = query.msn {
        if let Err((status, why)) = wait_for(hls, &stream, Wanted::Playlist(msn, query.part)).await
        {
            return answer(status, why);
        }
    }
    let body = stream.playlist();
    hls.seen(peer.address.ip(), &key, body.len(), false);
    // A blocking reload's URL names one playlist version: a CDN may keep it briefly.
    let cache = if query.msn.is_some() {
        "public, max-age=2"
    } else {
        "no-cache"
    };
    media(body, PLAYLIST_TYPE, cache)
}

/// Decides a new viewer as an RTMP `play` is decided; registers it when allowed.
async fn admit(
    hls: &Arc<Hls>,
    app_config: &Arc<AppConfig>,
    peer: crate::http::Peer,
    key: &StreamKey,
    query: &str,
) -> Result<(), Response> {
    let checked = policy::check_stream(
        app_config,
        Action::Play,
        peer.address.ip(),
        &key.app,
        (&key.name, query),
        SystemTime::now(),
    )
    .and_then(|()| {
        if policy::needs_login(app_config, Action::Play) {
            // An RTMP login (authmod=adobe) has no HLS equivalent: such players use RTMP.
            return Err(Refusal::new(
                Reason::AuthRequired,
                "play needs a login (authmod=adobe), which HLS cannot give".into(),
            ));
        }
        Ok(())
    });
    let slot = checked.and_then(|()| {
        if !limits::limited(app_config) {
            return Ok(None);
        }
        OCCUPANCY
            .take(app_config, Action::Play, &key.app, &key.name)
            .map(Some)
    });
    let slot = match slot {
        Ok(slot) => slot,
        Err(refusal) => {
            tracing::warn!(peer = %peer.address, variant = "hls", stream = %key,
                reason = ?refusal.reason, why = %refusal.description, "access refused");
            return Err(answer(StatusCode::FORBIDDEN, &refusal.description));
        }
    };
    // Listed from now on (as an RTMP player is while its hook is asked); dropped if refused.
    let (registration, bytes_out) = hls.register(peer.address, key);
    let form = |call: Call| HookForm {
        call,
        addr: peer.address.ip().to_string(),
        client_id: registration.id(),
        app: key.app.clone(),
        flashver: String::new(),
        swfurl: String::new(),
        tcurl: String::new(),
        pageurl: String::new(),
        variant: "hls".to_owned(),
        name: Some(key.name.clone()),
        publish_type: None,
        path: None,
        args: query.to_owned(),
    };
    if let Some(url) = &app_config.on_play {
        let verdict = hooks::ask(
            url,
            &form(Call::Play),
            app_config.hook_timeout(),
            app_config.hook_failure,
        )
        .await;
        match verdict {
            Verdict::Accept => {}
            Verdict::Refuse(why) => {
                tracing::warn!(peer = %peer.address, variant = "hls", stream = %key, why = %why, "play refused");
                return Err(answer(StatusCode::FORBIDDEN, &why));
            }
            Verdict::Relay(_) => {
                // A segmenter starts with a publish through the router; a pulled stream has none.
                let why = "the on_play hook redirects to an upstream: relayed streams are played \
                           over RTMP or HTTP-FLV, not LL-HLS";
                tracing::warn!(peer = %peer.address, variant = "hls", stream = %key, why, "play refused");
                return Err(answer(StatusCode::FORBIDDEN, why));
            }
            Verdict::Rename(name) => {
                let mut response = answer(StatusCode::FOUND, "renamed");
                let location = format!("/{}/{}/index.m3u8", key.app, name);
                if let Ok(location) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(header::LOCATION, location);
                }
                return Err(response);
            }
        }
    }
    tracing::info!(peer = %peer.address, variant = "hls", stream = %key, "play");
    let done = app_config.on_play_done.as_ref().map(|url| {
        let url: Arc<str> = url.as_str().into();
        (url, form(Call::PlayDone), app_config.hook_timeout())
    });
    hls.lock_viewers().insert(
        (peer.address.ip(), key.clone()),
        Viewer {
            last_seen: Instant::now(),
            bytes_out,
            registration,
            _slot: slot,
            done,
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_read_strictly() {
        let query = parse_query("_HLS_msn=4&_HLS_part=2&sign=ab&expires=9").unwrap();
        assert_eq!(query.msn, Some(4));
        assert_eq!(query.part, Some(2));
        assert_eq!(query.rest, "sign=ab&expires=9");
        for bad in [
            "_HLS_msn=x",
            "_HLS_part=1",
            "_HLS_msn=1&_HLS_msn=2",
            "_HLS_msn=-1",
            "_HLS_msn=99999999999999999999999",
            "_HLS_foo=1",
            "_HLS_skip=NO",
        ] {
            assert!(parse_query(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_query("").unwrap(), PlaylistQuery::default());
    }

    #[test]
    fn file_names() {
        assert_eq!(parse_file("index.m3u8"), Some(File::Playlist));
        assert_eq!(parse_file("r1-init.mp4"), Some(File::Init("r1", 0)));
        assert_eq!(parse_file("r1-init2.mp4"), Some(File::Init("r1", 2)));
        assert_eq!(parse_file("r1-seg7.m4s"), Some(File::Segment("r1", 7)));
        assert_eq!(parse_file("r1-part7.3.m4s"), Some(File::Part("r1", 7, 3)));
        for bad in ["seg7.m4s", "r1-seg.m4s", "r1-part7.m4s", "r1-x.mp4", "x"] {
            assert_eq!(parse_file(bad), None, "{bad}");
        }
    }

    #[test]
    fn settings_are_bounded() {
        let app = AppConfig {
            hls_part_ms: Some(1),
            hls_segment_ms: Some(10),
            hls_window: Some(0),
            ..AppConfig::default()
        };
        let settings = HlsSettings::from_app(&app);
        assert_eq!(settings.segmenter.part_target_ms, 100);
        assert_eq!(settings.segmenter.segment_target_ms, 100);
        assert_eq!(settings.segmenter.window, 2);
        assert_eq!(settings.block, Duration::from_millis(300));
    }
}
