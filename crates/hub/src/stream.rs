//! Streams: the registry, publishers, subscribers, the GOP cache and the take-over rule.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rtmp_chunk::{csid, type_id, Message, SharedMessage};

use crate::media::{classify_audio, classify_video, MediaInfo};

/// A stream's name within the server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub app: String,
    pub name: String,
}

impl StreamKey {
    pub fn new(app: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            app: app.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.app, self.name)
    }
}

/// What a second publisher to a live name gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishPolicy {
    /// Take the stream over when the current publisher has sent nothing for `quiet_after` (an encoder
    /// reconnecting after a network blip while its old TCP connection still looks alive); the old publisher
    /// is told to close. A publisher that is still sending keeps the stream and the newcomer is refused.
    TakeOver { quiet_after: Duration },
    /// Always refuse a second publisher.
    Reject,
}

/// Hub settings.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The chunk size every player connection uses, so one encoding serves them all.
    pub chunk_size: u32,
    /// Frames each stream's ring holds; a player further behind skips to the next keyframe.
    pub player_queue_frames: usize,
    /// Most bytes of frames kept since the last keyframe for new players (0 disables the GOP cache).
    pub gop_cache_bytes: usize,
    pub publish_policy: PublishPolicy,
    /// Players are woken at most once per window, and then take every frame published since in one
    /// write: fewer, larger socket writes for less than this much added latency. The players of a stream
    /// are flushed in four staggered groups, a quarter of the window apart. Zero wakes players on every
    /// frame. With a window, the publishing side calls [`Publisher::flush_if_due`] by
    /// [`Publisher::flush_deadline`] (publishing a frame also flushes the groups that are due).
    pub batch_window: Duration,
    /// The audience, counted over every stream of the hub, at which the whole batch window applies; with
    /// fewer players the window is shortened in proportion (writes cost CPU per player wherever they
    /// watch, so a lightly loaded server keeps the lowest latency), and below half of this audience there
    /// is none: a window shorter than half of a 30 ms one saves no writes on a typical stream
    /// (docs/benchmarks.md), it would only add latency. 0 applies the whole window whatever the audience.
    pub batch_full_players: usize,
}

impl HubConfig {
    /// The batch window while `players` players are subscribed to the hub's streams.
    pub fn batch_window_for(&self, players: usize) -> Duration {
        if self.batch_full_players == 0 || players >= self.batch_full_players {
            return self.batch_window;
        }
        if players.saturating_mul(2) < self.batch_full_players {
            return Duration::ZERO;
        }
        let scaled =
            self.batch_window.as_micros() * players as u128 / self.batch_full_players as u128;
        Duration::from_micros(u64::try_from(scaled).unwrap_or(u64::MAX))
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            chunk_size: 4096,
            player_queue_frames: 256,
            gop_cache_bytes: 16 * 1024 * 1024,
            publish_policy: PublishPolicy::TakeOver {
                quiet_after: Duration::from_secs(1),
            },
            batch_window: Duration::ZERO,
            batch_full_players: 0,
        }
    }
}

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    #[error("stream {0} is already being published")]
    StreamTaken(StreamKey),
}

/// The kind of a frame, which decides its chunk stream and how a lagging player treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Audio,
    Video,
    /// `onMetaData` and other data messages.
    Data,
}

/// A published message, encoded once and shared by every player.
#[derive(Debug)]
pub struct Frame {
    pub kind: FrameKind,
    pub info: MediaInfo,
    /// The message in its wire form (`shared.message()` rebuilds the original).
    pub shared: SharedMessage,
}

impl Frame {
    fn new(message: &Message, chunk_size: u32) -> Self {
        let (kind, info, chunk_stream) = match message.type_id {
            type_id::AUDIO => (
                FrameKind::Audio,
                classify_audio(&message.payload),
                csid::AUDIO,
            ),
            type_id::VIDEO => (
                FrameKind::Video,
                classify_video(&message.payload),
                csid::VIDEO,
            ),
            _ => (FrameKind::Data, MediaInfo::default(), csid::DATA),
        };
        Self {
            kind,
            info,
            shared: SharedMessage::encode(chunk_stream, message, chunk_size),
        }
    }

    /// The message as published (rebuilt from the shared chunks; see [`SharedMessage::message`]).
    pub fn message(&self) -> Message {
        self.shared.message()
    }

    fn is_video_keyframe(&self) -> bool {
        self.kind == FrameKind::Video && self.info.keyframe && !self.info.sequence_header
    }
}

/// What a subscriber receives, in order.
#[derive(Debug, Clone)]
pub enum SubscriberEvent {
    /// A publisher started (or took over); metadata, sequence headers and cached frames follow.
    Published,
    Frame(Arc<Frame>),
    /// The publisher left; the subscriber stays and resumes when a publisher returns.
    Unpublished,
}

/// Counters of one stream.
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    pub publishing: bool,
    pub players: usize,
    pub frames: u64,
    pub bytes: u64,
}

#[derive(Debug, Default)]
struct GopCache {
    metadata: Option<Arc<Frame>>,
    video_header: Option<Arc<Frame>>,
    audio_header: Option<Arc<Frame>>,
    frames: Vec<Arc<Frame>>,
    bytes: usize,
}

impl GopCache {
    fn snapshot(&self) -> impl Iterator<Item = Arc<Frame>> + '_ {
        self.metadata
            .iter()
            .chain(&self.video_header)
            .chain(&self.audio_header)
            .chain(&self.frames)
            .cloned()
    }

    fn add(&mut self, frame: &Arc<Frame>, limit: usize) {
        match frame.kind {
            FrameKind::Data => {}
            FrameKind::Video if frame.info.sequence_header => {
                self.video_header = Some(frame.clone())
            }
            FrameKind::Audio if frame.info.sequence_header => {
                self.audio_header = Some(frame.clone())
            }
            _ if frame.is_video_keyframe() => {
                self.frames.clear();
                self.bytes = 0;
                self.push(frame, limit);
            }
            // Until the first keyframe there is nothing a player could start on.
            _ if !self.frames.is_empty() => self.push(frame, limit),
            _ => {}
        }
    }

    fn push(&mut self, frame: &Arc<Frame>, limit: usize) {
        self.bytes += frame.shared.payload_len();
        if self.bytes > limit {
            self.frames.clear();
            self.bytes = 0;
            return;
        }
        self.frames.push(frame.clone());
    }
}

/// Subscribers are split into this many wake groups, flushed in turn at staggered times within the batch
/// window: a large audience is written to in several smaller waves instead of one burst per window.
const WAKE_GROUPS: usize = 4;

/// Below this a batch window is not worth a timer: frames are flushed at once.
const MIN_BATCH_WINDOW: Duration = Duration::from_millis(2);

/// The first multiple of `period` after `epoch` that is later than `now`.
fn next_turn_after(epoch: Instant, now: Instant, period: Duration) -> Instant {
    let period_nanos = period.as_nanos().max(1);
    let periods = now.saturating_duration_since(epoch).as_nanos() / period_nanos + 1;
    u64::try_from(periods * period_nanos)
        .ok()
        .and_then(|offset| epoch.checked_add(Duration::from_nanos(offset)))
        .unwrap_or(now + period)
}

/// Ring length from which events every subscriber has read are dropped on the next push: a few dozen
/// frames of slack, so that the check over every subscriber's cursor is not made on every frame.
const DROP_READ_FROM: usize = 32;

/// The per-stream fan-out ring: events in publish order, numbered, read by every subscriber at its own
/// cursor. Events become visible to a subscriber (and it is woken) only when its wake group is flushed,
/// which is how a batch window turns many small player writes into a few larger ones.
///
/// Flushes take turns: every `window / WAKE_GROUPS` one group (in order) gets everything pushed so far,
/// so each subscriber is flushed once per window, and an event waits less than one window. Turns that
/// passed while nothing was waiting are taken at once by the next event (a quiet stream's next frame
/// goes out immediately).
#[derive(Debug)]
struct Ring {
    events: VecDeque<SubscriberEvent>,
    capacity: usize,
    /// The sequence number of `events[0]`.
    first: u64,
    /// Per wake group: events numbered below this are visible to its subscribers.
    visible: [u64; WAKE_GROUPS],
    /// When the next group's turn comes, and which group it is. Turns fall on one grid for every stream
    /// of the hub (multiples of the turn period since `epoch`), so that the streams' flushes, and the
    /// players they wake, come together instead of keeping the runtime's threads waking all the time.
    next_turn: Instant,
    epoch: Instant,
    next_group: usize,
    /// One slot per subscriber (its wake group is `slot % WAKE_GROUPS`), holding its waker while it waits.
    wakers: Vec<Option<Waker>>,
    /// Per slot: the sequence number of the next event its subscriber reads (`u64::MAX` when free).
    /// Events every subscriber has read are dropped: the GOP cache, not the ring, serves new players.
    cursors: Vec<u64>,
    free_slots: Vec<usize>,
    subscribers: usize,
}

impl Ring {
    fn new(capacity: usize, epoch: Instant) -> Self {
        Self {
            events: VecDeque::with_capacity(capacity.min(1024)),
            capacity,
            first: 0,
            visible: [0; WAKE_GROUPS],
            next_turn: epoch,
            epoch,
            next_group: 0,
            wakers: Vec::new(),
            cursors: Vec::new(),
            free_slots: Vec::new(),
            subscribers: 0,
        }
    }

    fn end(&self) -> u64 {
        self.first + self.events.len() as u64
    }

    fn visible_to(&self, slot: usize) -> u64 {
        self.visible
            .get(slot % WAKE_GROUPS)
            .copied()
            .unwrap_or_else(|| self.end())
    }

    fn push(&mut self, event: SubscriberEvent) {
        if self.events.len() >= DROP_READ_FROM {
            self.drop_read_by_all();
        }
        if self.events.len() >= self.capacity {
            self.events.pop_front();
            self.first += 1;
            for visible in &mut self.visible {
                *visible = (*visible).max(self.first);
            }
        }
        self.events.push_back(event);
    }

    /// Drops the events every subscriber has read.
    fn drop_read_by_all(&mut self) {
        let oldest_unread = self
            .cursors
            .iter()
            .copied()
            .min()
            .unwrap_or(u64::MAX)
            .min(self.end());
        while self.first < oldest_unread && self.events.pop_front().is_some() {
            self.first += 1;
        }
        for visible in &mut self.visible {
            *visible = (*visible).max(self.first);
        }
    }

    fn read_up_to(&mut self, slot: usize, cursor: u64) {
        if let Some(slot_cursor) = self.cursors.get_mut(slot) {
            *slot_cursor = cursor;
        }
    }

    fn has_unflushed(&self) -> bool {
        let end = self.end();
        self.visible.iter().any(|&visible| visible < end)
    }

    /// Makes everything pushed so far visible to every group; returns the wakers to wake once the lock
    /// is released.
    fn flush_all(&mut self) -> Vec<Waker> {
        self.visible = [self.end(); WAKE_GROUPS];
        self.wakers.iter_mut().filter_map(Option::take).collect()
    }

    fn flush_group(&mut self, group: usize, woken: &mut Vec<Waker>) {
        let end = self.end();
        if let Some(visible) = self.visible.get_mut(group) {
            if *visible == end {
                return;
            }
            *visible = end;
        }
        woken.extend(
            self.wakers
                .iter_mut()
                .skip(group)
                .step_by(WAKE_GROUPS)
                .filter_map(Option::take),
        );
    }

    fn tick_period(window: Duration) -> Duration {
        window / WAKE_GROUPS as u32
    }

    /// Flushes the groups whose turn has come by `now`.
    fn flush_due(&mut self, now: Instant, window: Duration) -> Vec<Waker> {
        if window < MIN_BATCH_WINDOW {
            return self.flush_all();
        }
        let period = Self::tick_period(window);
        let mut woken = Vec::new();
        for _ in 0..WAKE_GROUPS {
            if self.next_turn > now {
                return woken;
            }
            self.flush_group(self.next_group, &mut woken);
            self.next_group = (self.next_group + 1) % WAKE_GROUPS;
            self.next_turn += period;
        }
        // Every group had its turn: start the cycle again at the grid's next turn.
        if self.next_turn <= now {
            self.next_turn = next_turn_after(self.epoch, now, period);
        }
        woken
    }

    /// When the next group's turn comes, if something waits to be flushed.
    fn next_deadline(&self) -> Option<Instant> {
        self.has_unflushed().then_some(self.next_turn)
    }

    /// A slot for a new subscriber, which reads from the end of the ring.
    fn add_subscriber(&mut self) -> usize {
        self.subscribers += 1;
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.wakers.push(None);
                self.cursors.push(u64::MAX);
                self.wakers.len() - 1
            }
        };
        let end = self.end();
        self.read_up_to(slot, end);
        slot
    }

    fn remove_subscriber(&mut self, slot: usize) {
        self.subscribers = self.subscribers.saturating_sub(1);
        if let Some(waker) = self.wakers.get_mut(slot) {
            *waker = None;
            self.free_slots.push(slot);
        }
        self.read_up_to(slot, u64::MAX);
    }

    fn register(&mut self, slot: usize, waker: &Waker) {
        if let Some(registered) = self.wakers.get_mut(slot) {
            match registered {
                Some(current) if current.will_wake(waker) => {}
                _ => *registered = Some(waker.clone()),
            }
        }
    }
}

fn wake_all(wakers: Vec<Waker>) {
    wakers.into_iter().for_each(Waker::wake);
}

#[derive(Debug)]
struct StreamState {
    publisher: Option<PublisherSlot>,
    gop: GopCache,
    stats: StreamStats,
    ring: Ring,
}

impl StreamState {
    /// Queues an event that must reach players at once (publish, unpublish, metadata).
    fn push_now(&mut self, event: SubscriberEvent) -> Vec<Waker> {
        self.ring.push(event);
        self.ring.flush_all()
    }
}

#[derive(Debug)]
struct PublisherSlot {
    id: u64,
    last_media: Instant,
    kick: Arc<Kick>,
}

/// Tells a publisher that another connection took its stream over. Polled by the publishing connection
/// on every turn, so polling it neither allocates nor takes more than an uncontended lock.
#[derive(Debug, Default)]
struct Kick {
    kicked: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Kick {
    fn waker(&self) -> MutexGuard<'_, Option<Waker>> {
        self.waker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn kick(&self) {
        self.kicked.store(true, Ordering::Release);
        if let Some(waker) = self.waker().take() {
            waker.wake();
        }
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.kicked.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        {
            let mut registered = self.waker();
            match registered.as_ref() {
                Some(current) if current.will_wake(cx.waker()) => {}
                _ => *registered = Some(cx.waker().clone()),
            }
        }
        // A kick between the first check and the registration found no waker to wake.
        if self.kicked.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[derive(Debug)]
struct Stream {
    key: StreamKey,
    state: Mutex<StreamState>,
}

impl Stream {
    fn lock(&self) -> MutexGuard<'_, StreamState> {
        // A panic while holding the lock cannot leave the state half-updated in a way that matters more
        // than stopping the stream, so a poisoned lock is taken as it is.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Debug)]
struct HubInner {
    config: HubConfig,
    streams: Mutex<HashMap<StreamKey, Arc<Stream>>>,
    next_publisher: AtomicU64,
    /// Subscribers over every stream: the audience the batch window follows.
    players: AtomicUsize,
    /// The origin of the grid every stream's flush turns fall on.
    epoch: Instant,
}

/// The registry of streams. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

impl Hub {
    pub fn new(config: HubConfig) -> Self {
        Self {
            inner: Arc::new(HubInner {
                config,
                streams: Mutex::new(HashMap::new()),
                next_publisher: AtomicU64::new(1),
                players: AtomicUsize::new(0),
                epoch: Instant::now(),
            }),
        }
    }

    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    fn streams(&self) -> MutexGuard<'_, HashMap<StreamKey, Arc<Stream>>> {
        self.inner.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stream of `key`, created if needed. The caller holds the registry lock while it sets up its
    /// publisher or subscriber, so [`Hub::release`] never removes a stream someone is joining.
    fn stream_locked(
        &self,
        streams: &mut HashMap<StreamKey, Arc<Stream>>,
        key: &StreamKey,
    ) -> Arc<Stream> {
        streams
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Stream {
                    key: key.clone(),
                    state: Mutex::new(StreamState {
                        publisher: None,
                        gop: GopCache::default(),
                        stats: StreamStats::default(),
                        ring: Ring::new(
                            self.inner.config.player_queue_frames.max(16),
                            self.inner.epoch,
                        ),
                    }),
                })
            })
            .clone()
    }

    /// Drops a stream nobody publishes or plays any more.
    fn release(&self, stream: &Arc<Stream>) {
        let mut streams = self.streams();
        let idle = {
            let state = stream.lock();
            state.publisher.is_none() && state.ring.subscribers == 0
        };
        if idle
            && streams
                .get(&stream.key)
                .is_some_and(|s| Arc::ptr_eq(s, stream))
        {
            streams.remove(&stream.key);
        }
    }

    /// Starts publishing `key`, or refuses per the publish policy.
    pub fn publish(&self, key: &StreamKey) -> Result<Publisher, HubError> {
        let mut streams = self.streams();
        let stream = self.stream_locked(&mut streams, key);
        let id = self.inner.next_publisher.fetch_add(1, Ordering::Relaxed);
        let kick = Arc::new(Kick::default());
        let wakers = {
            let mut state = stream.lock();
            if let Some(current) = &state.publisher {
                let quiet_for = current.last_media.elapsed();
                match self.inner.config.publish_policy {
                    PublishPolicy::TakeOver { quiet_after } if quiet_for >= quiet_after => {
                        tracing::info!(stream = %key, quiet_ms = quiet_for.as_millis() as u64, "publisher taken over");
                        current.kick.kick();
                    }
                    _ => return Err(HubError::StreamTaken(key.clone())),
                }
            }
            state.publisher = Some(PublisherSlot {
                id,
                last_media: Instant::now(),
                kick: Arc::clone(&kick),
            });
            state.gop = GopCache::default();
            state.stats.publishing = true;
            state.push_now(SubscriberEvent::Published)
        };
        drop(streams);
        wake_all(wakers);
        Ok(Publisher {
            hub: self.clone(),
            stream,
            id,
            kick,
            chunk_size: self.inner.config.chunk_size,
            flush_at: Cell::new(None),
        })
    }

    /// Subscribes to `key`, published or not (yet).
    pub fn subscribe(&self, key: &StreamKey) -> Subscriber {
        let mut streams = self.streams();
        let stream = self.stream_locked(&mut streams, key);
        let (slot, cursor, pending) = {
            let mut state = stream.lock();
            let slot = state.ring.add_subscriber();
            let mut pending = VecDeque::new();
            if state.publisher.is_some() {
                pending.push_back(SubscriberEvent::Published);
                pending.extend(state.gop.snapshot().map(SubscriberEvent::Frame));
            }
            // Frames not yet flushed are already in the GOP snapshot: start after them.
            (slot, state.ring.end(), pending)
        };
        drop(streams);
        self.inner.players.fetch_add(1, Ordering::Relaxed);
        Subscriber {
            hub: self.clone(),
            stream,
            slot,
            cursor,
            pending,
            awaiting_keyframe: true,
            dropped: 0,
        }
    }

    /// Players subscribed to any stream.
    pub fn players(&self) -> usize {
        self.inner.players.load(Ordering::Relaxed)
    }

    /// Counters of a stream, if it exists.
    pub fn stats(&self, key: &StreamKey) -> Option<StreamStats> {
        let streams = self.streams();
        let stream = streams.get(key)?;
        let state = stream.lock();
        let mut stats = state.stats.clone();
        stats.players = state.ring.subscribers;
        Some(stats)
    }
}

/// The right to publish one stream. Dropping it ends the publication.
#[derive(Debug)]
pub struct Publisher {
    hub: Hub,
    stream: Arc<Stream>,
    id: u64,
    kick: Arc<Kick>,
    chunk_size: u32,
    /// When frames this publisher sent are waiting for the batch window (kept here so the publishing
    /// connection can ask on every turn without taking the stream's lock).
    flush_at: Cell<Option<Instant>>,
}

impl Publisher {
    pub fn key(&self) -> &StreamKey {
        &self.stream.key
    }

    /// Publishes an audio, video or data message to every player: at once without a batch window,
    /// otherwise at its wake group's next turn (see [`Publisher::flush_deadline`]).
    pub fn send(&self, message: &Message) {
        let frame = Arc::new(Frame::new(message, self.chunk_size));
        let now = Instant::now();
        let config = &self.hub.inner.config;
        let wakers = {
            let mut state = self.stream.lock();
            let Some(slot) = state.publisher.as_mut().filter(|slot| slot.id == self.id) else {
                return;
            };
            slot.last_media = now;
            state.stats.frames += 1;
            state.stats.bytes += message.payload.len() as u64;
            if config.gop_cache_bytes > 0 {
                state.gop.add(&frame, config.gop_cache_bytes);
            }
            state.ring.push(SubscriberEvent::Frame(frame));
            self.take_turns(&mut state, now)
        };
        wake_all(wakers);
    }

    /// Flushes the wake groups whose turn has come and remembers when the next one is.
    fn take_turns(&self, state: &mut StreamState, now: Instant) -> Vec<Waker> {
        let window = self.hub.inner.config.batch_window_for(self.hub.players());
        let woken = state.ring.flush_due(now, window);
        self.flush_at.set(state.ring.next_deadline());
        woken
    }

    /// When frames sent within the batch window must be flushed to players (None: nothing waits).
    pub fn flush_deadline(&self) -> Option<Instant> {
        self.flush_at.get()
    }

    /// Flushes the frames waiting for the batch window if its deadline has come.
    pub fn flush_if_due(&self, now: Instant) {
        if self.flush_at.get().is_none_or(|at| at > now) {
            return;
        }
        let wakers = self.take_turns(&mut self.stream.lock(), now);
        wake_all(wakers);
    }

    /// Sets (or clears) the stream's metadata (`onMetaData`), kept for players who join later.
    pub fn set_metadata(&self, message: Option<&Message>) {
        let frame = message.map(|m| Arc::new(Frame::new(m, self.chunk_size)));
        let wakers = {
            let mut state = self.stream.lock();
            if state
                .publisher
                .as_ref()
                .is_none_or(|slot| slot.id != self.id)
            {
                return;
            }
            state.gop.metadata = frame.clone();
            match frame {
                Some(frame) => state.push_now(SubscriberEvent::Frame(frame)),
                None => return,
            }
        };
        wake_all(wakers);
    }

    /// Resolves when another publisher took the stream over: the connection should close.
    pub async fn kicked(&self) {
        std::future::poll_fn(|cx| self.poll_kicked(cx)).await
    }

    /// Ready once another connection took the stream over (see [`Publisher::kicked`]); registers the
    /// task's waker otherwise. Allocation-free, for a connection that polls it on every turn.
    pub fn poll_kicked(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.kick.poll(cx)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let wakers = {
            let mut state = self.stream.lock();
            if state
                .publisher
                .as_ref()
                .is_some_and(|slot| slot.id == self.id)
            {
                state.publisher = None;
                state.stats.publishing = false;
                state.gop = GopCache::default();
                state.push_now(SubscriberEvent::Unpublished)
            } else {
                Vec::new()
            }
        };
        wake_all(wakers);
        self.hub.release(&self.stream);
    }
}

/// Room a subscriber keeps for events between reads (see `Subscriber::pending`).
const RETAINED_PENDING_EVENTS: usize = 16;

/// One player's view of a stream.
#[derive(Debug)]
pub struct Subscriber {
    hub: Hub,
    stream: Arc<Stream>,
    /// This subscriber's waker slot in the ring.
    slot: usize,
    /// The sequence number of the next ring event to read.
    cursor: u64,
    /// Events taken from the ring, not yet returned; back to [`RETAINED_PENDING_EVENTS`] of room once
    /// empty, so that joining (the whole GOP at once) does not hold memory for the player's life.
    pending: VecDeque<SubscriberEvent>,
    awaiting_keyframe: bool,
    dropped: u64,
}

impl Subscriber {
    pub fn key(&self) -> &StreamKey {
        &self.stream.key
    }

    /// Frames this subscriber skipped because it fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The next event; frames before the first video keyframe (after joining or lagging) are skipped,
    /// except audio, data and sequence headers.
    pub async fn recv(&mut self) -> SubscriberEvent {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next event, registering the task to be woken by the next flush of the stream.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<SubscriberEvent> {
        match self.next_event(Some(cx.waker())) {
            Some(event) => Poll::Ready(event),
            None => Poll::Pending,
        }
    }

    /// The next event if one is ready, without waiting.
    pub fn try_recv(&mut self) -> Option<SubscriberEvent> {
        self.next_event(None)
    }

    fn next_event(&mut self, waker: Option<&Waker>) -> Option<SubscriberEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if let Some(event) = self.filter(event) {
                    return Some(event);
                }
                continue;
            }
            self.pending.shrink_to(RETAINED_PENDING_EVENTS);
            if !self.take_visible(waker) {
                return None;
            }
        }
    }

    /// Moves every visible ring event after the cursor into `pending` under one lock; registers `waker`
    /// when there is none. Returns whether anything was taken.
    fn take_visible(&mut self, waker: Option<&Waker>) -> bool {
        let mut skipped = 0;
        let taken = {
            let mut state = self.stream.lock();
            let ring = &mut state.ring;
            if self.cursor < ring.first {
                skipped = ring.first - self.cursor;
                self.cursor = ring.first;
            }
            let visible = ring.visible_to(self.slot);
            if self.cursor < visible {
                let from = (self.cursor - ring.first) as usize;
                let to = (visible - ring.first) as usize;
                self.pending.extend(ring.events.range(from..to).cloned());
                self.cursor = visible;
                ring.read_up_to(self.slot, visible);
                true
            } else {
                if let Some(waker) = waker {
                    ring.register(self.slot, waker);
                }
                false
            }
        };
        if skipped > 0 {
            self.lagged(skipped);
        }
        taken
    }

    fn lagged(&mut self, skipped: u64) {
        self.dropped += skipped;
        self.awaiting_keyframe = true;
        tracing::debug!(stream = %self.stream.key, skipped, "slow player skips to the next keyframe");
    }

    fn filter(&mut self, event: SubscriberEvent) -> Option<SubscriberEvent> {
        match &event {
            SubscriberEvent::Published | SubscriberEvent::Unpublished => {
                self.awaiting_keyframe = true
            }
            SubscriberEvent::Frame(frame)
                if frame.kind == FrameKind::Video && !frame.info.sequence_header =>
            {
                if frame.is_video_keyframe() {
                    self.awaiting_keyframe = false;
                } else if self.awaiting_keyframe {
                    self.dropped += 1;
                    return None;
                }
            }
            SubscriberEvent::Frame(_) => {}
        }
        Some(event)
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stream.lock().ring.remove_subscriber(self.slot);
        self.hub.inner.players.fetch_sub(1, Ordering::Relaxed);
        self.hub.release(&self.stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn joining_on_a_long_gop_does_not_keep_its_room_once_read() {
        let hub = Hub::new(HubConfig::default());
        let key = StreamKey::new("live", "long-gop");
        let publisher = hub.publish(&key).expect("publish");
        for index in 0..600u32 {
            let first = if index == 0 { 0x17 } else { 0x27 };
            publisher.send(&Message {
                timestamp: index * 33,
                type_id: 9,
                stream_id: 1,
                payload: Bytes::from(vec![first, 1, 0, 0, 0]),
            });
        }
        let mut player = hub.subscribe(&key);
        let mut events = 0;
        while player.try_recv().is_some() {
            events += 1;
        }
        assert!(events > 500, "the GOP reached the player ({events} events)");
        assert!(player.pending.capacity() <= RETAINED_PENDING_EVENTS);
    }

    fn frame(index: u32) -> Message {
        let first = if index % 60 == 0 { 0x17 } else { 0x27 };
        Message {
            timestamp: index * 33,
            type_id: 9,
            stream_id: 1,
            payload: Bytes::from(vec![first, 1, 0, 0, 0]),
        }
    }

    #[test]
    fn the_ring_keeps_only_what_some_player_has_not_read() {
        let hub = Hub::new(HubConfig::default());
        let key = StreamKey::new("live", "ring");
        let publisher = hub.publish(&key).expect("publish");
        let mut reader = hub.subscribe(&key);
        let idle = hub.subscribe(&key);
        let ring_len = |player: &Subscriber| player.stream.lock().ring.events.len();
        for index in 0..200 {
            publisher.send(&frame(index));
            while reader.try_recv().is_some() {}
        }
        assert_eq!(
            ring_len(&reader),
            200,
            "a player that has not read holds its frames"
        );
        drop(idle);
        for index in 200..300 {
            publisher.send(&frame(index));
            while reader.try_recv().is_some() {}
        }
        assert!(
            ring_len(&reader) <= DROP_READ_FROM,
            "{} events kept",
            ring_len(&reader)
        );
    }
}
