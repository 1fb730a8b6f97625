//! The router: every decision about one connection, made from its session's events and its players'
//! hub events, with no I/O, no clock and no runtime. It answers the session (`accept_*`, `reject_*`,
//! `send_shared`) and holds the connection's publishers and players; the driver
//! ([`crate::connection`]) owns the stream, feeds the session, and carries out what the router returns.
//!
//! **The shape.** The driver calls [`Router::route_session_events`] after every input it gave the
//! session, and [`Router::handle_player_event`] for each event a player's subscriber yields. Media costs
//! the same as a direct call: a session `Media` event goes to [`rtmp_hub::Publisher::send`], a
//! subscriber's frame to `ServerSession::send_shared`; nothing is cloned or allocated for it here.
//! `route_session_events` returns a [`Step`]:
//!
//! - [`Step::Done`]: every event was routed; wait for more input.
//! - [`Step::Close`]: the connection must end (a refused `connect`) once what the session queued is
//!   written.
//! - [`Step::Ask`]: a `connect`, `publish` or `play` needs an answer the router cannot give alone (an
//!   access rule answered by an HTTP hook). The router keeps the request pending and routes nothing more
//!   until the driver, having got the answer asynchronously, calls [`Router::answer`]; then
//!   `route_session_events` goes on where it stopped, with the events the session queued meanwhile, in
//!   order. A driver waiting for an answer stops feeding the session input: the session answers some
//!   commands itself (`createStream`, pings), which must not overtake the answer, and its event queue
//!   stays bounded.
//!
//! Which requests are asked is the [`Admission`] given at construction: [`Admission::Open`] answers
//! everything at once and never returns `Ask`; [`Admission::Hooks`] asks only the requests the
//! application has an HTTP hook for (`on_connect`, `on_publish`, `on_play`).
//!
//! The told callbacks (`on_publish_done`, `on_play_done`) are queued as [`Notice`]s the driver takes
//! with [`Router::take_notices`] and sends without waiting.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use rtmp_hub::{FrameKind, Hub, Publisher, StreamKey, Subscriber, SubscriberEvent};
use rtmp_session::{ConnectRequest, FourCc, PublishType, ServerEvent, ServerSession, StatusCode};

use crate::close_reason::CloseReason;
use crate::config::{AppConfig, SharedApps};
use crate::hooks::{Call, HookForm, RecordDoneNotifier};
use crate::outputs::recordings::{RecordingGuard, Recordings};
use crate::policy::limits::{self, Slot, OCCUPANCY};
use crate::policy::{self, Action, Refusal};
use crate::vod::path::PathRefusal;
use crate::vod::{Playback, VodEvent};

/// Messages the files a connection plays may hand its session in one turn of its task (or of a direct
/// delivery): a reader as fast as the disk does not fill the session's queue before it is written.
const VOD_MESSAGES_PER_TURN: usize = 64;

/// What a player of this connection has for it: a hub event of a live stream, an event of a file it
/// plays (`None`: the file's reader ended), or the answer to a `getStreamLength`.
#[derive(Debug)]
pub enum PlayerEvent {
    /// A live stream's subscriber event.
    Live(SubscriberEvent),
    /// A file's reader event; `None` when the reader is gone.
    Vod(Option<VodEvent>),
    /// A `getStreamLength` answer (stream id 0).
    StreamLength {
        /// The call's transaction id.
        transaction_id: f64,
        /// The duration in seconds.
        seconds: f64,
    },
}

impl From<SubscriberEvent> for PlayerEvent {
    fn from(event: SubscriberEvent) -> Self {
        PlayerEvent::Live(event)
    }
}
use crate::relay::pull::{PullFailure, PullLease};
use crate::relay::push::{Lifetime, Push};
use crate::relay::{self, Origin, RelaySettings};

/// Who answers a connection's `connect`, `publish` and `play`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The router accepts every request itself (a publish can still be refused by the hub).
    Open,
    /// Every request is asked ([`Step::Ask`]) and waits for [`Router::answer`].
    AskFirst,
    /// A request is asked when its application has the matching hook (`on_connect`, `on_publish`,
    /// `on_play`); the others are accepted at once.
    Hooks,
}

/// A stream this connection stopped publishing or playing, for the done callbacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Whether the connection was publishing (else playing).
    pub publishing: bool,
    /// The stream.
    pub key: StreamKey,
}

/// A request the router needs answered before it goes on. The `connect` itself is
/// [`Router::connect_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    /// The client asks to connect to the application.
    Connect,
    /// The client asks to publish a stream.
    Publish {
        /// The message stream it publishes on.
        stream_id: u32,
        /// The stream it publishes.
        key: StreamKey,
        /// `live`, `record` or `append`.
        publish_type: PublishType,
        /// The stream URL's query (`a=1&b=2`), for the hooks.
        query: String,
    },
    /// The client asks to play a stream.
    Play {
        /// The message stream it plays on.
        stream_id: u32,
        /// The stream it plays.
        key: StreamKey,
        /// The stream URL's query (`a=1&b=2`), for the hooks.
        query: String,
    },
}

/// An answer to a [`Question`]. Its `Debug` form masks a relay URL's stream key (it is logged).
#[derive(Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed: the router goes on.
    Accept,
    /// Refused, with the reason the peer is told.
    Refuse(String),
    /// Accepted under another stream name (an HTTP hook's 3xx); a `connect` is simply accepted.
    Rename(String),
    /// Accepted and relayed through this `rtmp://` URL (an HTTP hook's 3xx, as nginx-rtmp's
    /// `notify_relay_redirect`): a publish is pushed there, a play pulls from there; a `connect` is
    /// simply accepted.
    Relay(String),
}

impl std::fmt::Debug for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Accept => f.write_str("Accept"),
            Verdict::Refuse(why) => f.debug_tuple("Refuse").field(why).finish(),
            Verdict::Rename(name) => f.debug_tuple("Rename").field(name).finish(),
            Verdict::Relay(url) => f
                .debug_tuple("Relay")
                .field(&relay::mask::mask_url(url))
                .finish(),
        }
    }
}

/// What the driver does after [`Router::route_session_events`].
#[derive(Debug)]
pub enum Step {
    /// The session has no event left; wait for input.
    Done,
    /// Get this question answered, then call [`Router::answer`] and route again.
    Ask(Question),
    /// Write what the session queued, then close with this reason.
    Close(CloseReason),
}

/// A connection's publishers or players by message stream id. A connection has one or two (at most the
/// session's `max_streams`), so a vector searched by id is cheaper per frame than a hashed map.
#[derive(Debug)]
struct ByStream<T>(Vec<(u32, T)>);

impl<T> ByStream<T> {
    fn new() -> Self {
        Self(Vec::new())
    }

    fn get(&self, stream_id: u32) -> Option<&T> {
        self.0
            .iter()
            .find_map(|(id, value)| (*id == stream_id).then_some(value))
    }

    fn get_mut(&mut self, stream_id: u32) -> Option<&mut T> {
        self.0
            .iter_mut()
            .find_map(|(id, value)| (*id == stream_id).then_some(value))
    }

    /// Adds or replaces the entry of `stream_id`.
    fn insert(&mut self, stream_id: u32, value: T) {
        match self.get_mut(stream_id) {
            Some(slot) => *slot = value,
            None => self.0.push((stream_id, value)),
        }
    }

    fn remove(&mut self, stream_id: u32) -> Option<T> {
        let at = self.0.iter().position(|(id, _)| *id == stream_id)?;
        Some(self.0.swap_remove(at).1)
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &mut T)> {
        self.0.iter_mut().map(|(id, value)| (*id, value))
    }

    fn values(&self) -> impl Iterator<Item = &T> {
        self.0.iter().map(|(_, value)| value)
    }
}

#[derive(Debug)]
struct Player {
    subscriber: Subscriber,
    paused: bool,
    /// Counted against the application's player limits while it lives.
    _slot: Option<Slot>,
    /// The pull that feeds the stream, when this play started or joined one.
    pull: Option<PullLease>,
    /// The pull's failure, taken by the next `Unpublished` event handed to the session.
    pull_failure: Option<PullFailure>,
}

/// A player of a file (`vod_path`).
#[derive(Debug)]
struct VodPlayer {
    playback: Playback,
    key: StreamKey,
    /// `play`'s start: `-2` falls back to the live stream when there is no such file.
    start: f64,
    /// Whether the file opened (`Play.Start` was sent).
    opened: bool,
    /// Counted against the application's player limits while it lives.
    slot: Option<Slot>,
}

/// Whether a negative `play` start asks for the live stream or else a recording (`-2`, and FFmpeg's
/// `-2000`), rather than the live stream only (`-1`, and `-1000`).
fn live_or_recorded(start: f64) -> bool {
    start < 0.0 && start != -1.0 && start != -1000.0
}

/// A `getStreamLength` waiting for its file's duration.
type LengthQuery = (f64, Pin<Box<tokio::sync::oneshot::Receiver<f64>>>);

/// One connection's routing state.
#[derive(Debug)]
pub struct Router {
    hub: Hub,
    /// The connection's id (the API's, the hooks' `clientid`); 0 until the driver sets it.
    client_id: u64,
    apps: Arc<SharedApps>,
    /// The connection's application settings, resolved at `connect`.
    app_config: Arc<AppConfig>,
    peer: SocketAddr,
    transport: &'static str,
    admission: Admission,
    connect: Option<ConnectRequest>,
    publishers: ByStream<Publisher>,
    /// The publishers counted against the application's limits, by stream id.
    publisher_slots: ByStream<Slot>,
    players: ByStream<Player>,
    /// The server's recordable streams, where each publish registers (a table of the connection's own
    /// when the driver gave none, made at the first publish).
    recordings: Option<Arc<Recordings>>,
    /// This connection's published streams in `recordings` (dropped with their publisher: a recording
    /// stops).
    recorders: ByStream<RecordingGuard>,
    /// Players of files.
    vod_players: ByStream<VodPlayer>,
    /// `play`'s start and duration, from the request until the player starts.
    play_args: ByStream<(f64, f64)>,
    /// The buffer length each stream's client announced (SetBufferLength), ms.
    buffer_lengths: ByStream<u32>,
    /// `getStreamLength` calls waiting for a file's duration.
    length_queries: Vec<LengthQuery>,
    /// VOD messages left in this turn ([`VOD_MESSAGES_PER_TURN`]).
    vod_budget: usize,
    /// LL-HLS, started for each stream published in an application with `hls`.
    hls: Option<Arc<crate::outputs::hls::Hls>>,
    /// Pushes of this connection's published streams (dropped with their publisher: they stop).
    pushes: ByStream<Vec<Push>>,
    /// Where an accepted request is relayed (a hook's `Verdict::Relay`), until it is carried out.
    relay_to: Option<String>,
    /// The stream last published or played, for the close log.
    last_stream: Option<StreamKey>,
    /// The request waiting for [`Router::answer`].
    pending: Option<Question>,
    /// Set by a decision that ends the connection.
    closing: Option<CloseReason>,
    /// Streams left, for the done callbacks.
    notices: Vec<Notice>,
    /// `connect`'s `swfUrl` and `pageUrl`, for the hooks.
    swf_url: String,
    page_url: String,
    /// The wall clock signed URLs are checked against (replaced in tests).
    wall_clock: fn() -> SystemTime,
    /// Where a login challenge's random values come from (replaced in tests).
    random: fn(&mut [u8]),
    /// The user the client logged in as.
    user: Option<String>,
}

impl Router {
    /// `peer` and `transport` (rtmp, rtmps, rtmpt, rtmpts, rtmpe, rtmpte) are for the logs.
    pub fn new(
        hub: Hub,
        apps: Arc<SharedApps>,
        peer: SocketAddr,
        transport: &'static str,
        admission: Admission,
    ) -> Self {
        Self {
            hub,
            client_id: 0,
            app_config: apps.app(""),
            apps,
            peer,
            transport,
            admission,
            connect: None,
            publishers: ByStream::new(),
            publisher_slots: ByStream::new(),
            players: ByStream::new(),
            recordings: None,
            vod_players: ByStream::new(),
            play_args: ByStream::new(),
            buffer_lengths: ByStream::new(),
            length_queries: Vec::new(),
            vod_budget: VOD_MESSAGES_PER_TURN,
            recorders: ByStream::new(),
            hls: None,
            pushes: ByStream::new(),
            relay_to: None,
            last_stream: None,
            pending: None,
            closing: None,
            notices: Vec::new(),
            swf_url: String::new(),
            page_url: String::new(),
            wall_clock: SystemTime::now,
            random: |bytes| rand::fill(bytes),
            user: None,
        }
    }

    /// Registers this connection's publishes in the server's table of recordable streams (a router
    /// starts with a table of its own).
    pub fn set_recordings(&mut self, recordings: Arc<Recordings>) {
        self.recordings = Some(recordings);
    }

    /// Segments the streams this connection publishes in applications with `hls` (they stop with the
    /// stream).
    pub fn set_hls(&mut self, hls: Arc<crate::outputs::hls::Hls>) {
        self.hls = Some(hls);
    }

    /// Replaces the source of login challenges' random values.
    pub fn set_random(&mut self, random: fn(&mut [u8])) {
        self.random = random;
    }

    /// The user the client logged in as, if it did.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Salt, challenge and opaque value for a login challenge.
    fn fresh_challenge(&self) -> policy::adobe::Fresh {
        let mut bytes = [0u8; 24];
        (self.random)(&mut bytes);
        let hex = |part: &[u8]| part.iter().map(|b| format!("{b:02x}")).collect::<String>();
        policy::adobe::Fresh {
            salt: hex(&bytes[..8]),
            challenge: hex(&bytes[8..16]),
            opaque: hex(&bytes[16..]),
        }
    }

    /// Replaces the wall clock the access policy reads (signed URLs' expiry).
    pub fn set_wall_clock(&mut self, wall_clock: fn() -> SystemTime) {
        self.wall_clock = wall_clock;
    }

    /// The `connect` request, once the client sent it (its command object dropped).
    pub fn connect_request(&self) -> Option<&ConnectRequest> {
        self.connect.as_ref()
    }

    /// The settings of the application the client connected to (those of `[app."*"]` before
    /// `connect`), read once at `connect`: a reload applies to the connections that come after it.
    pub fn app_config(&self) -> &Arc<AppConfig> {
        &self.app_config
    }

    /// Names the connection as the API and the hooks know it.
    pub fn set_client_id(&mut self, client_id: u64) {
        self.client_id = client_id;
    }

    /// The `on_record_done` form of a recording of `key` made from this connection.
    fn record_done_form(&self, key: &StreamKey) -> HookForm {
        let connect = self.connect.as_ref();
        let text = |value: Option<&String>| value.cloned().unwrap_or_default();
        HookForm {
            call: Call::RecordDone,
            addr: self.peer.ip().to_string(),
            client_id: self.client_id,
            app: self.app().to_owned(),
            flashver: text(connect.and_then(|c| c.flash_ver.as_ref())),
            swfurl: self.swf_url.clone(),
            tcurl: text(connect.and_then(|c| c.tc_url.as_ref())),
            pageurl: self.page_url.clone(),
            variant: self.transport.to_owned(),
            name: Some(key.name.clone()),
            publish_type: None,
            path: None,
            args: String::new(),
        }
    }

    /// The application the client connected to; empty before `connect`.
    pub fn app(&self) -> &str {
        self.connect.as_ref().map_or("", |c| c.app.as_str())
    }

    /// `connect`'s `swfUrl` and `pageUrl` (empty when the client sent none).
    pub fn swf_and_page_url(&self) -> (&str, &str) {
        (&self.swf_url, &self.page_url)
    }

    /// `publisher` while the connection publishes a stream, `player` while it plays one, else `idle`.
    pub fn role(&self) -> &'static str {
        if self.publishers.values().next().is_some() {
            "publisher"
        } else if self.players.values().next().is_some()
            || self.vod_players.values().next().is_some()
        {
            "player"
        } else {
            "idle"
        }
    }

    /// Frames skipped so far for this connection's players that fell behind.
    pub fn dropped_frames(&self) -> u64 {
        self.players.values().map(|p| p.subscriber.dropped()).sum()
    }

    /// The stream this connection last published or played.
    pub fn last_stream(&self) -> Option<&StreamKey> {
        self.last_stream.as_ref()
    }

    /// Routes every event the session has, until one needs an answer or ends the connection.
    pub fn route_session_events(&mut self, session: &mut ServerSession, now: Instant) -> Step {
        if let Some(reason) = self.closing.take() {
            return Step::Close(reason);
        }
        if self.pending.is_some() {
            return Step::Done;
        }
        while let Some(event) = session.poll_event() {
            let Some(question) = self.route(event, now) else {
                continue;
            };
            let question = match question {
                Ok(question) => question,
                Err((question, refusal)) => {
                    self.refuse(session, question, refusal, now);
                    if let Some(reason) = self.closing.take() {
                        return Step::Close(reason);
                    }
                    continue;
                }
            };
            if self.asks(&question) {
                self.pending = Some(question.clone());
                return Step::Ask(question);
            }
            self.carry_out(session, question, Verdict::Accept, now);
            if let Some(reason) = self.closing.take() {
                return Step::Close(reason);
            }
        }
        Step::Done
    }

    /// Whether `question` waits for an answer, by the admission.
    fn asks(&self, question: &Question) -> bool {
        match self.admission {
            Admission::Open => false,
            Admission::AskFirst => true,
            Admission::Hooks => match question {
                Question::Connect => self.app_config.on_connect.is_some(),
                Question::Publish { .. } => self.app_config.on_publish.is_some(),
                Question::Play { .. } => self.app_config.on_play.is_some(),
            },
        }
    }

    /// The streams this connection left since the last call (for the done callbacks).
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Whether the connection publishes or plays anything now.
    pub fn has_streams(&self) -> bool {
        !self.publishers.0.is_empty()
            || !self.players.0.is_empty()
            || !self.vod_players.0.is_empty()
    }

    /// The streams this connection publishes (`true`) and plays (`false`) now.
    pub fn streams(&self) -> Vec<(bool, StreamKey)> {
        let publishing = self.publishers.values().map(|p| (true, p.key().clone()));
        let playing = self
            .players
            .values()
            .map(|p| (false, p.subscriber.key().clone()));
        let files = self.vod_players.values().map(|p| (false, p.key.clone()));
        publishing.chain(playing).chain(files).collect()
    }

    /// Answers the pending question (see the module's doc); a stray answer is ignored.
    pub fn answer(&mut self, session: &mut ServerSession, verdict: Verdict, now: Instant) {
        if let Some(question) = self.pending.take() {
            self.carry_out(session, question, verdict, now);
        }
    }

    /// Refuses a request the access policy turned down, logged with who and why.
    fn refuse(
        &mut self,
        session: &mut ServerSession,
        question: Question,
        refusal: Refusal,
        now: Instant,
    ) {
        tracing::warn!(peer = %self.peer, transport = self.transport, app = self.app(),
            request = ?question, reason = ?refusal.reason, why = %refusal.description, "access refused");
        if let Question::Play { stream_id, .. } = &question {
            if refusal.reason == policy::Reason::BadName && self.app_config.vod_path.is_some() {
                // In a VOD application a name is a file name: one that could leave `vod_path` names
                // no file.
                self.play_args.remove(*stream_id);
                let description = format!("No such stream: {}.", refusal.description);
                return session.reject_play(
                    *stream_id,
                    StatusCode::PlayStreamNotFound,
                    &description,
                );
            }
        }
        self.carry_out(session, question, Verdict::Refuse(refusal.description), now);
    }

    /// Checks a `publish` or `play` against the access policy.
    fn stream_question(
        &self,
        action: Action,
        stream_id: u32,
        stream_name: String,
        query: String,
        publish_type: PublishType,
    ) -> Result<Question, (Question, Refusal)> {
        let checked = policy::check_stream(
            &self.app_config,
            action,
            self.peer.ip(),
            self.app(),
            (&stream_name, &query),
            (self.wall_clock)(),
        );
        let checked = checked.and_then(|()| {
            if policy::needs_login(&self.app_config, action) && self.user.is_none() {
                return Err(Refusal::new(
                    policy::Reason::AuthRequired,
                    format!("{} needs a login (authmod=adobe)", action.as_str()),
                ));
            }
            Ok(())
        });
        let key = StreamKey::new(self.app(), stream_name);
        let question = match action {
            Action::Publish => Question::Publish {
                stream_id,
                key,
                publish_type,
                query,
            },
            Action::Play => Question::Play {
                stream_id,
                key,
                query,
            },
        };
        match checked {
            Ok(_) => Ok(question),
            Err(refusal) => Err((question, refusal)),
        }
    }

    /// Routes one session event; a request is returned as the question to decide, or with the access
    /// policy's refusal.
    #[allow(clippy::type_complexity)]
    fn route(
        &mut self,
        event: ServerEvent,
        now: Instant,
    ) -> Option<Result<Question, (Question, Refusal)>> {
        match event {
            ServerEvent::Media { stream_id, message } => {
                if let Some(publisher) = self.publishers.get(stream_id) {
                    publisher.send(&message, now);
                }
            }
            ServerEvent::HandshakeComplete { mode } => {
                tracing::debug!(peer = %self.peer, ?mode, "handshake")
            }
            ServerEvent::Connect(request) => {
                tracing::info!(peer = %self.peer, transport = self.transport, app = %request.app,
                    tc_url = request.tc_url.as_deref().unwrap_or(""),
                    flash_ver = request.flash_ver.as_deref().unwrap_or(""), "connect");
                let checked = policy::check_connect(&request.app).map(str::to_owned);
                let app = match &checked {
                    Ok(app) => app.clone(),
                    Err(_) => String::new(),
                };
                self.app_config = self.apps.app(&app);
                let publishing = request
                    .flash_ver
                    .as_deref()
                    .is_some_and(|v| v.starts_with("FMLE/"));
                let query = policy::names::split_query(&request.app).1;
                let checked = checked.and_then(|_| {
                    let fresh = self.fresh_challenge();
                    let peer = (self.peer.ip(), now);
                    policy::check_login(&self.app_config, publishing, query, peer, fresh)
                });
                if let Ok(Some(user)) = &checked {
                    tracing::info!(peer = %self.peer, app = %app, user = %user, "logged in");
                    self.user = Some(user.clone());
                }
                let text = |key: &str| {
                    let value = request.properties.get(key).and_then(|v| v.as_str());
                    value.unwrap_or_default().to_owned()
                };
                self.swf_url = text("swfUrl");
                self.page_url = text("pageUrl");
                // Kept for the close log and codec checks; the whole command object is not needed.
                self.connect = Some(ConnectRequest {
                    properties: rtmp_amf::Amf0Value::Null,
                    app,
                    ..request
                });
                return Some(match checked {
                    Ok(_) => Ok(Question::Connect),
                    Err(refusal) => Err((Question::Connect, refusal)),
                });
            }
            ServerEvent::Publish {
                stream_id,
                stream_name,
                publish_type,
                query,
                ..
            } => {
                return Some(self.stream_question(
                    Action::Publish,
                    stream_id,
                    stream_name,
                    query,
                    publish_type,
                ));
            }
            ServerEvent::Play {
                stream_id,
                stream_name,
                query,
                start,
                duration,
            } => {
                self.play_args.insert(stream_id, (start, duration));
                return Some(self.stream_question(
                    Action::Play,
                    stream_id,
                    stream_name,
                    query,
                    PublishType::Live,
                ));
            }
            ServerEvent::Metadata { stream_id, message } => {
                if let Some(publisher) = self.publishers.get(stream_id) {
                    publisher.set_metadata(message.as_ref());
                }
            }
            ServerEvent::Pause { stream_id, paused } => {
                if let Some(player) = self.players.get_mut(stream_id) {
                    player.paused = paused;
                }
                if let Some(player) = self.vod_players.get(stream_id) {
                    player.playback.pause(paused);
                }
            }
            ServerEvent::Seek {
                stream_id,
                position_ms,
            } => {
                if let Some(player) = self.vod_players.get_mut(stream_id) {
                    tracing::info!(peer = %self.peer, stream = %player.key, position_ms, "seek");
                    player.playback.seek(position_ms);
                }
            }
            ServerEvent::BufferLength {
                stream_id,
                buffer_ms,
            } => {
                self.buffer_lengths.insert(stream_id, buffer_ms);
                if let Some(player) = self.vod_players.get(stream_id) {
                    player.playback.set_buffer(buffer_ms);
                }
            }
            ServerEvent::GetStreamLength {
                transaction_id,
                stream_name,
                ..
            } => match &self.app_config.vod_path {
                Some(root) => {
                    let answer = crate::vod::stream_length(root.clone(), stream_name);
                    self.length_queries.push((transaction_id, Box::pin(answer)));
                }
                None => {
                    // Not a VOD application: the answer is 0 at once, in the same order as the others.
                    let (answer, receiver) = tokio::sync::oneshot::channel();
                    let _ = answer.send(0.0);
                    self.length_queries
                        .push((transaction_id, Box::pin(receiver)));
                }
            },
            ServerEvent::Unpublish { stream_id } => {
                self.publisher_slots.remove(stream_id);
                if let Some(publisher) = self.publishers.remove(stream_id) {
                    tracing::info!(peer = %self.peer, stream = %publisher.key(), "unpublish");
                    self.notices.push(Notice {
                        publishing: true,
                        key: publisher.key().clone(),
                    });
                }
                self.recorders.remove(stream_id);
                self.pushes.remove(stream_id);
            }
            ServerEvent::StopPlay { stream_id } => {
                if let Some(player) = self.vod_players.remove(stream_id) {
                    tracing::info!(peer = %self.peer, stream = %player.key, "stop");
                    self.notices.push(Notice {
                        publishing: false,
                        key: player.key,
                    });
                }
                if let Some(player) = self.players.remove(stream_id) {
                    tracing::info!(peer = %self.peer, stream = %player.subscriber.key(), "stop");
                    self.notices.push(Notice {
                        publishing: false,
                        key: player.subscriber.key().clone(),
                    });
                }
            }
        }
        None
    }

    fn carry_out(
        &mut self,
        session: &mut ServerSession,
        question: Question,
        verdict: Verdict,
        now: Instant,
    ) {
        let (question, verdict) = match (question, verdict) {
            (Question::Connect, Verdict::Rename(_) | Verdict::Relay(_)) => {
                (Question::Connect, Verdict::Accept)
            }
            (question, Verdict::Relay(url)) => {
                tracing::info!(peer = %self.peer, request = ?question,
                    to = %relay::mask::mask_url(&url), "relayed by the hook");
                self.relay_to = Some(url);
                (question, Verdict::Accept)
            }
            (
                Question::Publish {
                    stream_id,
                    publish_type,
                    key,
                    query,
                },
                Verdict::Rename(name),
            ) => {
                tracing::info!(peer = %self.peer, stream = %key, to = %name, "publish renamed");
                let key = StreamKey::new(self.app(), name);
                let question = Question::Publish {
                    stream_id,
                    key,
                    publish_type,
                    query,
                };
                (question, Verdict::Accept)
            }
            (
                Question::Play {
                    stream_id,
                    key,
                    query,
                },
                Verdict::Rename(name),
            ) => {
                tracing::info!(peer = %self.peer, stream = %key, to = %name, "play renamed");
                let key = StreamKey::new(self.app(), name);
                let question = Question::Play {
                    stream_id,
                    key,
                    query,
                };
                (question, Verdict::Accept)
            }
            other => other,
        };
        let relay_to = self.relay_to.take();
        match (question, verdict) {
            (_, Verdict::Rename(_) | Verdict::Relay(_)) => {}
            (Question::Connect, Verdict::Accept) => session.accept_connect(),
            (Question::Connect, Verdict::Refuse(why)) => {
                tracing::warn!(peer = %self.peer, app = self.app(), why = %why, "connect refused");
                session.reject_connect(StatusCode::ConnectRejected, &why);
                self.closing = Some(CloseReason::Refused(why));
            }
            (
                Question::Publish {
                    stream_id,
                    key,
                    publish_type,
                    query,
                },
                Verdict::Accept,
            ) => {
                let slot = match self.take_slot(Action::Publish, &key) {
                    Ok(slot) => slot,
                    Err(refusal) => {
                        let question = Question::Publish {
                            stream_id,
                            key,
                            publish_type,
                            query,
                        };
                        return self.refuse(session, question, refusal, now);
                    }
                };
                match self.hub.publish(&key, now) {
                    Ok(publisher) => {
                        if let Some(slot) = slot {
                            self.publisher_slots.insert(stream_id, slot);
                        }
                        tracing::info!(peer = %self.peer, transport = self.transport, stream = %key, "publish");
                        session.accept_publish(stream_id);
                        self.publishers.insert(stream_id, publisher);
                        let hook = Arc::new(RecordDoneNotifier::new(
                            self.app_config.clone(),
                            self.record_done_form(&key),
                        ));
                        let hub = &self.hub;
                        let recordings = self
                            .recordings
                            .get_or_insert_with(|| Arc::new(Recordings::new(hub.clone())));
                        let recording = recordings.published(
                            key.clone(),
                            self.app_config.record_settings(),
                            hook,
                        );
                        self.recorders.insert(stream_id, recording);
                        if let Some(hls) = self.hls.as_ref().filter(|_| self.app_config.hls) {
                            hls.start(&key, self.app_config.hls_settings());
                        }
                        self.start_pushes(stream_id, &key, relay_to);
                        self.last_stream = Some(key);
                    }
                    Err(error) => {
                        tracing::warn!(peer = %self.peer, stream = %key, %error, "publish refused");
                        session.reject_publish(
                            stream_id,
                            StatusCode::PublishBadName,
                            &error.to_string(),
                        );
                    }
                }
            }
            (Question::Publish { stream_id, key, .. }, Verdict::Refuse(why)) => {
                tracing::warn!(peer = %self.peer, stream = %key, why = %why, "publish refused");
                session.reject_publish(stream_id, StatusCode::PublishBadName, &why);
            }
            (
                Question::Play {
                    stream_id,
                    key,
                    query,
                },
                Verdict::Accept,
            ) => match self.take_slot(Action::Play, &key) {
                Ok(slot) => self.start_player(session, stream_id, key, slot, relay_to),
                Err(refusal) => {
                    let question = Question::Play {
                        stream_id,
                        key,
                        query,
                    };
                    self.refuse(session, question, refusal, now)
                }
            },
            (Question::Play { stream_id, key, .. }, Verdict::Refuse(why)) => {
                tracing::warn!(peer = %self.peer, stream = %key, why = %why, "play refused");
                session.reject_play(stream_id, StatusCode::PlayFailed, &why);
            }
        }
    }

    /// Counts a publisher or player against the application's limits, when it has any.
    fn take_slot(&self, action: Action, key: &StreamKey) -> Result<Option<Slot>, Refusal> {
        if !limits::limited(&self.app_config) {
            return Ok(None);
        }
        OCCUPANCY
            .take(&self.app_config, action, self.app(), &key.name)
            .map(Some)
    }

    /// Starts the pushes of a stream this connection now publishes: the application's `push` targets,
    /// and the hook's relay URL.
    fn start_pushes(&mut self, stream_id: u32, key: &StreamKey, relay_to: Option<String>) {
        let settings = RelaySettings::of(&self.app_config);
        let configured = self.app_config.push.iter().map(|template| {
            (
                relay::render_url(template, &key.app, &key.name),
                Origin::Config,
            )
        });
        let hooked = relay_to.map(|url| (url, Origin::Hook));
        let pushes: Vec<Push> = configured
            .chain(hooked)
            .map(|(url, origin)| {
                relay::push::start(
                    &self.hub,
                    key.clone(),
                    url,
                    settings.clone(),
                    origin,
                    Lifetime::Stream,
                )
            })
            .collect();
        if !pushes.is_empty() {
            self.pushes.insert(stream_id, pushes);
        }
    }

    /// Starts a player: of a file under `vod_path`, or of the live stream, which may come from an
    /// upstream (the hook's relay redirect `relay_to`, or the application's `pull`).
    fn start_player(
        &mut self,
        session: &mut ServerSession,
        stream_id: u32,
        key: StreamKey,
        slot: Option<Slot>,
        relay_to: Option<String>,
    ) {
        let (start, duration) = self.play_args.remove(stream_id).unwrap_or((-2.0, -1.0));
        match self.vod_root(start, &key).filter(|_| relay_to.is_none()) {
            Some(root) => self.start_vod_player(stream_id, key, root, (start, duration), slot),
            None => {
                let pull = relay::pull::lease_for(&self.hub, &self.app_config, &key, relay_to);
                self.start_live_player(session, stream_id, key, slot, pull)
            }
        }
    }

    /// The application's `vod_path` when `play` with this start plays a file: `start >= 0` (a recording
    /// from there), or live-or-recorded (`-2`, FFmpeg's `-2000`, any other negative start) while no one
    /// publishes the name live. `-1` (and the `-1000` of librtmp's and FFmpeg's `live`) ask for the live
    /// stream only.
    fn vod_root(&self, start: f64, key: &StreamKey) -> Option<std::path::PathBuf> {
        let root = self.app_config.vod_path.as_ref()?;
        let recorded = start >= 0.0
            || (live_or_recorded(start)
                && !self.hub.stats(key).is_some_and(|stats| stats.publishing));
        recorded.then(|| root.clone())
    }

    fn start_vod_player(
        &mut self,
        stream_id: u32,
        key: StreamKey,
        root: std::path::PathBuf,
        (start, duration): (f64, f64),
        slot: Option<Slot>,
    ) {
        tracing::info!(peer = %self.peer, transport = self.transport, stream = %key, start, duration, "play file");
        let playback = Playback::start(crate::vod::Request {
            root,
            name: key.name.clone(),
            start_ms: start,
            duration_ms: duration,
            buffer_ms: self.buffer_lengths.get(stream_id).copied().unwrap_or(0),
        });
        self.vod_players.insert(
            stream_id,
            VodPlayer {
                playback,
                key: key.clone(),
                start,
                opened: false,
                slot,
            },
        );
        self.last_stream = Some(key);
    }

    fn start_live_player(
        &mut self,
        session: &mut ServerSession,
        stream_id: u32,
        key: StreamKey,
        slot: Option<Slot>,
        pull: Option<PullLease>,
    ) {
        tracing::info!(peer = %self.peer, transport = self.transport, stream = %key, "play");
        let mut subscriber = self.hub.subscribe(&key);
        session.accept_play(stream_id, &key.name);
        // A live stream announces itself first: that is the start, not a "publish notify".
        let mut first = subscriber.try_recv();
        if matches!(first, Some(SubscriberEvent::Published)) {
            first = None;
        }
        self.players.insert(
            stream_id,
            Player {
                subscriber,
                paused: false,
                _slot: slot,
                pull,
                pull_failure: None,
            },
        );
        self.last_stream = Some(key);
        if let Some(event) = first {
            self.handle_player_event(session, stream_id, event.into());
        }
        self.handle_ready_player_events(session, stream_id);
    }

    /// Opens a new turn of the connection's task (or of a direct delivery): the files it plays may hand
    /// over `VOD_MESSAGES_PER_TURN` (64) messages again.
    pub fn start_turn(&mut self) {
        self.vod_budget = VOD_MESSAGES_PER_TURN;
    }

    /// The next event of any player; registers `cx`'s waker with every subscriber otherwise.
    pub fn poll_player_event(&mut self, cx: &mut Context<'_>) -> Poll<(u32, PlayerEvent)> {
        for (stream_id, player) in self.players.iter_mut() {
            if let Poll::Ready(event) = player.subscriber.poll_recv(cx) {
                return Poll::Ready((stream_id, PlayerEvent::Live(event)));
            }
            // A pull that failed ends the play: its status goes out with an `Unpublished`.
            if let Some(Poll::Ready(failure)) = player.pull.as_mut().map(|p| p.poll_failure(cx)) {
                player.pull_failure = Some(failure);
                return Poll::Ready((stream_id, PlayerEvent::Live(SubscriberEvent::Unpublished)));
            }
        }
        let answered = self
            .length_queries
            .iter_mut()
            .enumerate()
            .find_map(|(at, (_, answer))| match answer.as_mut().poll(cx) {
                Poll::Ready(seconds) => Some((at, seconds.unwrap_or(0.0))),
                Poll::Pending => None,
            });
        if let Some((at, seconds)) = answered {
            let (transaction_id, _) = self.length_queries.swap_remove(at);
            return Poll::Ready((
                0,
                PlayerEvent::StreamLength {
                    transaction_id,
                    seconds,
                },
            ));
        }
        if self.vod_players.0.is_empty() {
            return Poll::Pending;
        }
        if self.vod_budget == 0 {
            // The turn's share is spent: come back after this turn's write.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        for (stream_id, player) in self.vod_players.iter_mut() {
            if let Poll::Ready(event) = player.playback.poll_event(cx) {
                self.vod_budget -= 1;
                return Poll::Ready((stream_id, PlayerEvent::Vod(event)));
            }
        }
        Poll::Pending
    }

    /// Hands every event the player of `stream_id` already has to the session, so that they go out in
    /// one write.
    pub fn handle_ready_player_events(&mut self, session: &mut ServerSession, stream_id: u32) {
        while let Some(event) = self
            .players
            .get_mut(stream_id)
            .and_then(|p| p.subscriber.try_recv())
        {
            self.handle_player_event(session, stream_id, PlayerEvent::Live(event));
        }
        while self.vod_budget > 0 {
            let Some(event) = self
                .vod_players
                .get_mut(stream_id)
                .and_then(|p| p.playback.try_event())
            else {
                break;
            };
            self.vod_budget -= 1;
            self.handle_player_event(session, stream_id, PlayerEvent::Vod(Some(event)));
        }
    }

    /// One event of a player of `stream_id`, as the session should send it.
    pub fn handle_player_event(
        &mut self,
        session: &mut ServerSession,
        stream_id: u32,
        event: PlayerEvent,
    ) {
        let event = match event {
            PlayerEvent::Live(event) => event,
            PlayerEvent::Vod(event) => return self.handle_vod_event(session, stream_id, event),
            PlayerEvent::StreamLength {
                transaction_id,
                seconds,
            } => return session.answer_stream_length(transaction_id, seconds),
        };
        if matches!(event, SubscriberEvent::Unpublished) {
            let failure = self
                .players
                .get_mut(stream_id)
                .and_then(|player| player.pull_failure.take());
            if let Some(failure) = failure {
                let code = if failure.not_found {
                    StatusCode::PlayStreamNotFound
                } else {
                    StatusCode::PlayFailed
                };
                session.send_status(stream_id, code, &failure.description);
                return;
            }
        }
        let Some(player) = self.players.get(stream_id) else {
            return;
        };
        match event {
            SubscriberEvent::Published => {
                session.send_status(
                    stream_id,
                    StatusCode::PlayPublishNotify,
                    "The stream is now published.",
                );
            }
            SubscriberEvent::Unpublished => {
                session.send_status(
                    stream_id,
                    StatusCode::PlayUnpublishNotify,
                    "The stream is now unpublished.",
                );
            }
            SubscriberEvent::Frame(frame) => {
                if player.paused && frame.kind != FrameKind::Data {
                    return;
                }
                let declares_multitrack = self.connect.as_ref().is_some_and(|connect| {
                    connect.declares_multitrack()
                        || (self.app_config.multitrack_to_enhanced_players
                            && connect.declares_enhanced_codecs())
                });
                // A player that did not declare multitrack gets the default track alone, in the form
                // the hub built once for every such player.
                let frame = match (
                    frame.info.multitrack && !declares_multitrack,
                    &frame.default_track,
                ) {
                    (false, _) => &*frame,
                    (true, Some(single)) => &**single,
                    (true, None) => return,
                };
                if frame.info.enhanced {
                    let allowed = match (&self.connect, frame.info.codec) {
                        (Some(connect), Some(fourcc)) => connect.accepts_fourcc(FourCc(fourcc)),
                        _ => false,
                    };
                    if !allowed {
                        return;
                    }
                }
                session.send_shared(stream_id, &frame.shared);
            }
        }
    }

    /// One event of the file played on `stream_id`.
    fn handle_vod_event(
        &mut self,
        session: &mut ServerSession,
        stream_id: u32,
        event: Option<VodEvent>,
    ) {
        let Some(player) = self.vod_players.get_mut(stream_id) else {
            return;
        };
        if event
            .as_ref()
            .and_then(VodEvent::generation)
            .is_some_and(|generation| generation != player.playback.generation())
        {
            // Read before a later seek: not wanted any more.
            return;
        }
        let name = player.key.name.clone();
        match event {
            Some(VodEvent::Frame { message, .. }) => session.send_message(stream_id, &message),
            Some(VodEvent::Opened { duration_ms }) => {
                player.opened = true;
                tracing::debug!(peer = %self.peer, stream = %player.key, duration_ms, "file opened");
                session.accept_play_recorded(stream_id, &name);
            }
            Some(VodEvent::Seeked { position_ms, .. }) => {
                session.seek_done(stream_id, &name, position_ms);
            }
            Some(VodEvent::Ended {
                played_ms, bytes, ..
            }) => {
                tracing::info!(peer = %self.peer, stream = %player.key, played_ms, bytes, "file played to its end");
                session.end_recorded_play(stream_id, &name, played_ms / 1000.0, bytes);
            }
            Some(VodEvent::Failed { reason, .. }) => {
                tracing::warn!(peer = %self.peer, stream = %player.key, %reason, "file playback failed");
                session.send_status(stream_id, StatusCode::StreamFailed, &reason);
                session.end_recorded_play(stream_id, &name, 0.0, 0);
            }
            Some(VodEvent::Refused(PathRefusal::Missing(_))) if live_or_recorded(player.start) => {
                // `-2`: no recording of that name, so the live stream (which may come later, or
                // from the application's `pull`).
                if let Some(player) = self.vod_players.remove(stream_id) {
                    let pull =
                        relay::pull::lease_for(&self.hub, &self.app_config, &player.key, None);
                    self.start_live_player(session, stream_id, player.key, player.slot, pull);
                }
            }
            Some(VodEvent::Refused(refusal)) => {
                tracing::warn!(peer = %self.peer, transport = self.transport, stream = %player.key,
                    why = %refusal, "play refused: no such file");
                let description = match refusal {
                    PathRefusal::Root(_) => format!("{name} cannot be played here."),
                    refusal => refusal.to_string(),
                };
                self.vod_players.remove(stream_id);
                session.reject_play(stream_id, StatusCode::PlayStreamNotFound, &description);
            }
            Some(VodEvent::Unplayable(reason)) => {
                tracing::warn!(peer = %self.peer, transport = self.transport, stream = %player.key,
                    %reason, "play refused: file cannot be played");
                self.vod_players.remove(stream_id);
                session.reject_play(
                    stream_id,
                    StatusCode::PlayFailed,
                    &format!("{name} cannot be played: {reason}"),
                );
            }
            None => {
                let opened = player.opened;
                self.vod_players.remove(stream_id);
                tracing::warn!(peer = %self.peer, stream = %name, opened, "file reader stopped");
                if opened {
                    session.send_status(
                        stream_id,
                        StatusCode::StreamFailed,
                        "The file could not be read further.",
                    );
                    session.end_recorded_play(stream_id, &name, 0.0, 0);
                } else {
                    session.reject_play(
                        stream_id,
                        StatusCode::PlayFailed,
                        "The file could not be read.",
                    );
                }
            }
        }
    }

    /// Resolves when a publisher of this connection was taken over by another connection.
    pub fn poll_taken_over(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self
            .publishers
            .values()
            .any(|p| p.poll_kicked(cx).is_ready())
        {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// When the earliest publisher's batch window closes.
    pub fn next_flush_deadline(&self) -> Option<Instant> {
        self.publishers
            .values()
            .filter_map(Publisher::flush_deadline)
            .min()
    }

    /// Flushes the publishers whose batch window has closed by `now`.
    pub fn flush_due(&self, now: Instant) {
        self.publishers.values().for_each(|p| p.flush_if_due(now));
    }

    /// Leaves every stream: the subscribers hold wakers that hold the connection, so leaving is what
    /// frees it.
    pub fn leave_streams(&mut self) {
        self.players = ByStream::new();
        self.vod_players = ByStream::new();
        self.publishers = ByStream::new();
        self.publisher_slots = ByStream::new();
        self.pushes = ByStream::new();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bytes::Bytes;
    use rtmp_chunk::{type_id, Message};
    use rtmp_hub::{Hub, HubConfig, PublishPolicy, StreamKey, SubscriberEvent};
    use rtmp_session::{ClientEvent, ClientOptions, ClientSession, ServerSession, SessionConfig};

    use super::{Admission, ByStream, Question, Router, Step, Verdict};
    use crate::close_reason::CloseReason;
    use crate::config::{Apps, SharedApps};
    use std::sync::Arc;

    /// A client and a server session in memory, the server's events going through a router.
    struct Pair {
        client: ClientSession,
        server: ServerSession,
        router: Router,
        now: Instant,
        client_events: Vec<ClientEvent>,
        /// What routing returned other than [`Step::Done`].
        steps: Vec<Step>,
    }

    impl Pair {
        fn new(hub: &Hub, admission: Admission) -> Self {
            Self::with_apps(hub, admission, "live", Apps::default())
        }

        fn with_apps(hub: &Hub, admission: Admission, app: &str, apps: Apps) -> Self {
            let now = Instant::now();
            let config = SessionConfig::default();
            let options = ClientOptions::new(app, "rtmp://127.0.0.1/live");
            let peer = "192.0.2.1:50000".parse().unwrap();
            Self {
                client: ClientSession::new(config.clone(), options, fixed_random(), now),
                server: ServerSession::new(config, fixed_random(), now),
                router: Router::new(
                    hub.clone(),
                    Arc::new(SharedApps::new(apps)),
                    peer,
                    "rtmp",
                    admission,
                ),
                now,
                client_events: Vec::new(),
                steps: Vec::new(),
            }
        }

        /// Connected and one stream created (id 1), everything accepted.
        fn connected(hub: &Hub) -> Self {
            let mut pair = Self::new(hub, Admission::Open);
            pair.pump();
            pair.client.create_stream();
            pair.pump();
            assert!(pair
                .client_events
                .contains(&ClientEvent::StreamCreated { stream_id: 1 }));
            pair
        }

        /// Moves bytes both ways until quiet, routing the server's events after each input.
        fn pump(&mut self) {
            for _ in 0..50 {
                let mut out = Vec::new();
                self.client.poll_transmit(&mut out);
                let to_server: Vec<u8> = out.concat();
                let mut out = Vec::new();
                self.server.poll_transmit(&mut out);
                let to_client: Vec<u8> = out.concat();
                if to_server.is_empty() && to_client.is_empty() {
                    return;
                }
                self.server.handle_input(&to_server, self.now).unwrap();
                self.route();
                self.client.handle_input(&to_client, self.now).unwrap();
                while let Some(event) = self.client.poll_event() {
                    self.client_events.push(event);
                }
            }
            panic!("the pair never went quiet");
        }

        fn route(&mut self) {
            loop {
                match self.router.route_session_events(&mut self.server, self.now) {
                    Step::Done => return,
                    step => self.steps.push(step),
                }
            }
        }

        /// Gives the session every event the player of stream 1 has, as the driver does when woken.
        fn take_player_events(&mut self) {
            self.router.handle_ready_player_events(&mut self.server, 1);
        }

        fn statuses(&self) -> Vec<&str> {
            self.client_events
                .iter()
                .filter_map(|e| match e {
                    ClientEvent::Status { code, .. } => Some(code.as_str()),
                    _ => None,
                })
                .collect()
        }
    }

    fn fixed_random() -> rtmp_session::RandomFill {
        Box::new(|bytes: &mut [u8]| bytes.fill(7))
    }

    fn hub() -> Hub {
        Hub::new(
            HubConfig {
                publish_policy: PublishPolicy::Reject,
                ..HubConfig::default()
            },
            Instant::now(),
        )
    }

    fn video(timestamp: u32) -> Message {
        Message {
            timestamp,
            type_id: type_id::VIDEO,
            stream_id: 1,
            payload: Bytes::from_static(&[0x17, 1, 0, 0, 0, 9, 9, 9]),
        }
    }

    #[test]
    fn an_accepted_publisher_feeds_the_hub() {
        let hub = hub();
        let key = StreamKey::new("live", "cam");
        let mut watcher = hub.subscribe(&key);
        let mut publisher = Pair::connected(&hub);
        publisher.client.publish(1, "cam");
        publisher.pump();
        assert!(publisher
            .client_events
            .contains(&ClientEvent::PublishStarted { stream_id: 1 }));
        assert_eq!(publisher.router.last_stream(), Some(&key));
        assert_eq!(publisher.router.app(), "live");
        publisher.client.send_message(1, &video(40));
        publisher.pump();
        assert!(matches!(
            watcher.try_recv(),
            Some(SubscriberEvent::Published)
        ));
        let Some(SubscriberEvent::Frame(frame)) = watcher.try_recv() else {
            panic!("the frame reached the hub");
        };
        assert_eq!(frame.message().payload, video(40).payload);
        assert!(publisher.steps.is_empty());
    }

    #[test]
    fn a_second_publisher_of_a_name_is_refused_with_bad_name() {
        let hub = hub();
        let mut first = Pair::connected(&hub);
        first.client.publish(1, "cam");
        first.pump();
        let mut second = Pair::connected(&hub);
        second.client.publish(1, "cam");
        second.pump();
        assert!(!second
            .client_events
            .contains(&ClientEvent::PublishStarted { stream_id: 1 }));
        assert_eq!(second.statuses(), ["NetStream.Publish.BadName"]);
        assert_eq!(second.router.last_stream(), None);
    }

    #[test]
    fn a_player_gets_the_publishers_frames_and_notices() {
        let hub = hub();
        let mut player = Pair::connected(&hub);
        player.client.play(1, "cam");
        player.pump();
        assert!(player
            .client_events
            .contains(&ClientEvent::PlayStarted { stream_id: 1 }));
        let mut publisher = Pair::connected(&hub);
        publisher.client.publish(1, "cam");
        publisher.pump();
        publisher.client.send_message(1, &video(40));
        publisher.pump();
        player.take_player_events();
        player.pump();
        assert!(player.client_events.contains(&ClientEvent::Media {
            stream_id: 1,
            message: video(40)
        }));
        publisher.client.delete_stream(1, Some("cam"));
        publisher.pump();
        player.take_player_events();
        player.pump();
        assert_eq!(
            player.statuses(),
            [
                "NetStream.Play.Reset",
                "NetStream.Play.PublishNotify",
                "NetStream.Play.UnpublishNotify"
            ]
        );
    }

    #[test]
    fn an_asked_connect_waits_for_its_answer() {
        let hub = hub();
        let mut pair = Pair::new(&hub, Admission::AskFirst);
        pair.pump();
        assert!(matches!(pair.steps[..], [Step::Ask(Question::Connect)]));
        assert!(!pair
            .client_events
            .iter()
            .any(|e| matches!(e, ClientEvent::Connected { .. })));
        // Nothing is routed while the question is pending, nor is it asked twice.
        pair.route();
        assert_eq!(pair.steps.len(), 1);
        pair.router
            .answer(&mut pair.server, Verdict::Accept, pair.now);
        pair.route();
        pair.pump();
        pair.client.create_stream();
        pair.pump();
        assert!(pair
            .client_events
            .iter()
            .any(|e| matches!(e, ClientEvent::Connected { .. })));
        assert!(pair
            .client_events
            .contains(&ClientEvent::StreamCreated { stream_id: 1 }));
    }

    #[test]
    fn a_refused_connect_is_answered_then_closes() {
        let hub = hub();
        let mut pair = Pair::new(&hub, Admission::AskFirst);
        pair.pump();
        pair.router.answer(
            &mut pair.server,
            Verdict::Refuse("not on the list".into()),
            pair.now,
        );
        pair.route();
        pair.pump();
        assert!(matches!(
            &pair.steps[..],
            [Step::Ask(Question::Connect), Step::Close(CloseReason::Refused(why))] if why == "not on the list"
        ));
        assert!(pair.client_events.iter().any(|e| matches!(
            e,
            ClientEvent::CommandFailed { command: "connect", description } if description == "not on the list"
        )));
    }

    #[test]
    fn asked_publish_and_play_carry_their_stream_and_can_be_refused() {
        let hub = hub();
        let mut pair = Pair::new(&hub, Admission::AskFirst);
        pair.pump();
        pair.router
            .answer(&mut pair.server, Verdict::Accept, pair.now);
        pair.route();
        pair.client.create_stream();
        pair.pump();
        pair.client.play(1, "cam");
        pair.pump();
        let key = StreamKey::new("live", "cam");
        assert!(matches!(
            &pair.steps[..],
            [Step::Ask(Question::Connect), Step::Ask(Question::Play { stream_id: 1, key: asked, .. })] if *asked == key
        ));
        pair.router.answer(
            &mut pair.server,
            Verdict::Refuse("no such show".into()),
            pair.now,
        );
        pair.route();
        pair.pump();
        assert_eq!(pair.statuses(), ["NetStream.Play.Failed"]);
        assert_eq!(pair.router.last_stream(), None);
        assert_eq!(hub.players(), 0);

        pair.client.publish(1, "cam");
        pair.pump();
        assert!(matches!(
            pair.steps.last(),
            Some(Step::Ask(Question::Publish { stream_id: 1, key: asked, .. })) if *asked == key
        ));
        pair.router
            .answer(&mut pair.server, Verdict::Accept, pair.now);
        pair.route();
        pair.pump();
        assert!(pair
            .client_events
            .contains(&ClientEvent::PublishStarted { stream_id: 1 }));
    }

    fn apps(toml_text: &str) -> Apps {
        let tables: std::collections::BTreeMap<String, toml::Table> =
            toml::from_str(toml_text).unwrap();
        Apps::resolve(&tables).unwrap()
    }

    /// Connected (asking first, every question answered yes) with one stream created.
    fn asking_pair(hub: &Hub, apps: Apps) -> Pair {
        let mut pair = Pair::with_apps(hub, Admission::AskFirst, "live", apps);
        pair.pump();
        pair.router
            .answer(&mut pair.server, Verdict::Accept, pair.now);
        pair.route();
        pair.client.create_stream();
        pair.pump();
        pair
    }

    #[test]
    fn a_denied_address_is_refused_play_without_asking() {
        let hub = hub();
        let mut pair = asking_pair(&hub, apps("[live]\ndeny_play = [\"192.0.2.0/24\"]"));
        pair.client.play(1, "cam");
        pair.pump();
        assert_eq!(pair.statuses(), ["NetStream.Play.Failed"]);
        assert!(matches!(pair.steps[..], [Step::Ask(Question::Connect)]));
        assert_eq!(hub.players(), 0);
        // Publishing is not covered by the play rules.
        pair.client.publish(1, "cam");
        pair.pump();
        assert!(matches!(
            pair.steps.last(),
            Some(Step::Ask(Question::Publish { .. }))
        ));
    }

    #[test]
    fn a_bad_stream_name_is_refused_with_bad_name() {
        let hub = hub();
        let mut pair = Pair::connected(&hub);
        pair.client.publish(1, "../../etc/passwd");
        pair.pump();
        assert_eq!(pair.statuses(), ["NetStream.Publish.BadName"]);
        assert!(!pair
            .client_events
            .contains(&ClientEvent::PublishStarted { stream_id: 1 }));
    }

    #[test]
    fn a_bad_application_name_is_rejected_and_closes() {
        let hub = hub();
        let mut pair = Pair::with_apps(&hub, Admission::Open, "a\u{1}b", Apps::default());
        pair.pump();
        assert!(matches!(
            &pair.steps[..],
            [Step::Close(CloseReason::Refused(_))]
        ));
        assert!(pair.client_events.iter().any(|e| matches!(
            e,
            ClientEvent::CommandFailed {
                command: "connect",
                ..
            }
        )));
    }

    fn fixed_wall_clock() -> std::time::SystemTime {
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000)
    }

    /// Connected to `live`, which needs names signed with the secret `k`, on a fixed wall clock; stream
    /// 1 created.
    fn signed_pair(hub: &Hub) -> Pair {
        let mut pair =
            Pair::with_apps(hub, Admission::Open, "live", apps("[live]\nsecret = \"k\""));
        pair.router.set_wall_clock(fixed_wall_clock);
        pair.pump();
        pair.client.create_stream();
        pair.pump();
        pair
    }

    #[test]
    fn signed_names_are_checked_against_the_wall_clock() {
        let hub = hub();
        let mut pair = signed_pair(&hub);
        let expired = crate::policy::signed::signed_query("k", "live", "cam", 999);
        pair.client.play(1, &format!("cam?{expired}"));
        pair.pump();
        assert_eq!(pair.statuses(), ["NetStream.Play.Failed"]);
        let valid = crate::policy::signed::signed_query("k", "live", "cam", 2_000);
        pair.client.play(1, &format!("cam?{valid}"));
        pair.pump();
        assert!(pair
            .client_events
            .contains(&ClientEvent::PlayStarted { stream_id: 1 }));
        assert_eq!(
            pair.router.last_stream(),
            Some(&StreamKey::new("live", "cam"))
        );
    }

    #[test]
    fn huge_queries_and_names_with_nul_are_refused_and_the_connection_goes_on() {
        let hub = hub();
        let mut pair = signed_pair(&hub);
        let huge = format!(
            "cam?expires=2000&sign={}&pad={}",
            "A".repeat(43),
            "x".repeat(60_000)
        );
        pair.client.play(1, &huge);
        pair.pump();
        pair.client.publish(1, "c\u{0}m");
        pair.pump();
        assert_eq!(
            pair.statuses(),
            ["NetStream.Play.Failed", "NetStream.Publish.BadName"]
        );
        let valid = crate::policy::signed::signed_query("k", "live", "cam", 2_000);
        pair.client.play(1, &format!("cam?{valid}"));
        pair.pump();
        assert!(pair
            .client_events
            .contains(&ClientEvent::PlayStarted { stream_id: 1 }));
    }

    #[test]
    fn player_limits_refuse_beyond_and_free_when_a_player_leaves() {
        let hub = hub();
        let limited = || apps("[limited]\nmax_players_per_stream = 1\nmax_publishers = 1");
        let connected = || {
            let mut pair = Pair::with_apps(&hub, Admission::Open, "limited", limited());
            pair.pump();
            pair.client.create_stream();
            pair.pump();
            pair
        };
        let mut first = connected();
        first.client.play(1, "cam");
        first.pump();
        let mut second = connected();
        second.client.play(1, "cam");
        second.pump();
        assert_eq!(second.statuses(), ["NetStream.Play.Failed"]);
        // Publishing is limited on its own count.
        second.client.publish(1, "cam");
        second.pump();
        assert!(second
            .client_events
            .contains(&ClientEvent::PublishStarted { stream_id: 1 }));
        let mut third = connected();
        third.client.publish(1, "other");
        third.pump();
        assert_eq!(third.statuses(), ["NetStream.Publish.BadName"]);
        first.router.leave_streams();
        third.client.play(1, "cam");
        third.pump();
        assert!(third
            .client_events
            .contains(&ClientEvent::PlayStarted { stream_id: 1 }));
    }

    #[test]
    fn a_renamed_publish_goes_on_under_the_new_name_with_its_query_asked() {
        let hub = hub();
        let mut pair = Pair::new(&hub, Admission::AskFirst);
        pair.pump();
        pair.router
            .answer(&mut pair.server, Verdict::Accept, pair.now);
        pair.route();
        pair.client.create_stream();
        pair.pump();
        pair.client.publish(1, "cam?token=abc");
        pair.pump();
        assert!(matches!(
            pair.steps.last(),
            Some(Step::Ask(Question::Publish { query, .. })) if query == "token=abc"
        ));
        pair.router
            .answer(&mut pair.server, Verdict::Rename("other".into()), pair.now);
        pair.route();
        pair.pump();
        assert!(pair
            .client_events
            .contains(&ClientEvent::PublishStarted { stream_id: 1 }));
        assert_eq!(
            pair.router.last_stream(),
            Some(&StreamKey::new("live", "other"))
        );
    }

    #[test]
    fn hooks_admission_asks_nothing_when_the_app_has_no_hooks() {
        let hub = hub();
        let mut pair = Pair::new(&hub, Admission::Hooks);
        pair.pump();
        pair.client.create_stream();
        pair.pump();
        pair.client.publish(1, "cam");
        pair.pump();
        assert!(pair.steps.iter().all(|step| matches!(step, Step::Done)));
        assert!(pair
            .client_events
            .contains(&ClientEvent::PublishStarted { stream_id: 1 }));
    }

    #[tokio::test]
    async fn a_play_of_an_unpublished_stream_pulls_and_a_failed_pull_tells_the_player() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap();
        let hub = hub();
        let config =
            format!("[live]\npull = \"rtmp://{closed}/src/{{name}}\"\nrelay_timeout_ms = 500");
        let mut pair = Pair::with_apps(&hub, Admission::Open, "live", apps(&config));
        pair.pump();
        pair.client.create_stream();
        pair.pump();
        pair.client.play(1, "cam");
        pair.pump();
        assert!(pair
            .client_events
            .contains(&ClientEvent::PlayStarted { stream_id: 1 }));
        let (stream_id, event) = std::future::poll_fn(|cx| pair.router.poll_player_event(cx)).await;
        pair.router
            .handle_player_event(&mut pair.server, stream_id, event);
        pair.pump();
        let failed = pair.client_events.iter().find_map(|e| match e {
            ClientEvent::Status {
                code, description, ..
            } if code == "NetStream.Play.Failed" => Some(description.clone()),
            _ => None,
        });
        let failed = failed.expect("the player is told");
        assert!(failed.starts_with("pull from rtmp://"), "{failed}");
        assert!(failed.contains("/src/ca****"), "{failed}");
    }

    #[test]
    fn by_stream_inserts_replaces_and_removes_by_id() {
        let mut streams = ByStream::new();
        assert_eq!(streams.values().count(), 0);
        streams.insert(1, "first");
        streams.insert(2, "second");
        streams.insert(1, "replaced");
        assert_eq!(streams.get(1), Some(&"replaced"));
        assert_eq!(streams.values().count(), 2);
        assert_eq!(streams.remove(1), Some("replaced"));
        assert_eq!(streams.remove(1), None);
        assert_eq!(streams.get(1), None);
        if let Some(value) = streams.get_mut(2) {
            *value = "changed";
        }
        let all: Vec<_> = streams.iter_mut().map(|(id, value)| (id, *value)).collect();
        assert_eq!(all, [(2, "changed")]);
    }
}
