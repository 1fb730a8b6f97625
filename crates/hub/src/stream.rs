//! Streams: the registry, publishers, subscribers, the GOP cache and the take-over rule.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rtmp_chunk::{csid, type_id, Message, SharedMessage};
use tokio::sync::{broadcast, watch};

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
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            chunk_size: 4096,
            player_queue_frames: 1024,
            gop_cache_bytes: 16 * 1024 * 1024,
            publish_policy: PublishPolicy::TakeOver {
                quiet_after: Duration::from_secs(1),
            },
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
    /// The message with its wire form (`shared.message()` is the original).
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

    pub fn message(&self) -> &Message {
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
        self.bytes += frame.message().payload.len();
        if self.bytes > limit {
            self.frames.clear();
            self.bytes = 0;
            return;
        }
        self.frames.push(frame.clone());
    }
}

#[derive(Debug)]
struct StreamState {
    publisher: Option<PublisherSlot>,
    gop: GopCache,
    stats: StreamStats,
}

#[derive(Debug)]
struct PublisherSlot {
    id: u64,
    last_media: Instant,
    kick: watch::Sender<bool>,
}

#[derive(Debug)]
struct Stream {
    key: StreamKey,
    state: Mutex<StreamState>,
    events: broadcast::Sender<SubscriberEvent>,
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
                let (events, _) = broadcast::channel(self.inner.config.player_queue_frames.max(16));
                Arc::new(Stream {
                    key: key.clone(),
                    state: Mutex::new(StreamState {
                        publisher: None,
                        gop: GopCache::default(),
                        stats: StreamStats::default(),
                    }),
                    events,
                })
            })
            .clone()
    }

    /// Drops a stream nobody publishes or plays any more.
    fn release(&self, stream: &Arc<Stream>) {
        let mut streams = self.streams();
        let idle = stream.lock().publisher.is_none() && stream.events.receiver_count() == 0;
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
        let (kick, kicked) = watch::channel(false);
        {
            let mut state = stream.lock();
            if let Some(current) = &state.publisher {
                let quiet_for = current.last_media.elapsed();
                match self.inner.config.publish_policy {
                    PublishPolicy::TakeOver { quiet_after } if quiet_for >= quiet_after => {
                        tracing::info!(stream = %key, quiet_ms = quiet_for.as_millis() as u64, "publisher taken over");
                        let _ = current.kick.send(true);
                    }
                    _ => return Err(HubError::StreamTaken(key.clone())),
                }
            }
            state.publisher = Some(PublisherSlot {
                id,
                last_media: Instant::now(),
                kick,
            });
            state.gop = GopCache::default();
            state.stats.publishing = true;
            let _ = stream.events.send(SubscriberEvent::Published);
        }
        drop(streams);
        Ok(Publisher {
            hub: self.clone(),
            stream,
            id,
            kicked,
            chunk_size: self.inner.config.chunk_size,
        })
    }

    /// Subscribes to `key`, published or not (yet).
    pub fn subscribe(&self, key: &StreamKey) -> Subscriber {
        let mut streams = self.streams();
        let stream = self.stream_locked(&mut streams, key);
        let (receiver, pending) = {
            let state = stream.lock();
            let receiver = stream.events.subscribe();
            let mut pending = VecDeque::new();
            if state.publisher.is_some() {
                pending.push_back(SubscriberEvent::Published);
                pending.extend(state.gop.snapshot().map(SubscriberEvent::Frame));
            }
            (receiver, pending)
        };
        drop(streams);
        Subscriber {
            hub: self.clone(),
            stream,
            receiver,
            pending,
            awaiting_keyframe: true,
            dropped: 0,
        }
    }

    /// Counters of a stream, if it exists.
    pub fn stats(&self, key: &StreamKey) -> Option<StreamStats> {
        let streams = self.streams();
        let stream = streams.get(key)?;
        let mut stats = stream.lock().stats.clone();
        stats.players = stream.events.receiver_count();
        Some(stats)
    }
}

/// The right to publish one stream. Dropping it ends the publication.
#[derive(Debug)]
pub struct Publisher {
    hub: Hub,
    stream: Arc<Stream>,
    id: u64,
    kicked: watch::Receiver<bool>,
    chunk_size: u32,
}

impl Publisher {
    pub fn key(&self) -> &StreamKey {
        &self.stream.key
    }

    /// Publishes an audio, video or data message to every player.
    pub fn send(&self, message: &Message) {
        let frame = Arc::new(Frame::new(message, self.chunk_size));
        let mut state = self.stream.lock();
        let Some(slot) = state.publisher.as_mut().filter(|slot| slot.id == self.id) else {
            return;
        };
        slot.last_media = Instant::now();
        state.stats.frames += 1;
        state.stats.bytes += message.payload.len() as u64;
        let limit = self.hub.inner.config.gop_cache_bytes;
        if limit > 0 {
            state.gop.add(&frame, limit);
        }
        let _ = self.stream.events.send(SubscriberEvent::Frame(frame));
    }

    /// Sets (or clears) the stream's metadata (`onMetaData`), kept for players who join later.
    pub fn set_metadata(&self, message: Option<&Message>) {
        let frame = message.map(|m| Arc::new(Frame::new(m, self.chunk_size)));
        let mut state = self.stream.lock();
        if state
            .publisher
            .as_ref()
            .is_none_or(|slot| slot.id != self.id)
        {
            return;
        }
        state.gop.metadata = frame.clone();
        if let Some(frame) = frame {
            let _ = self.stream.events.send(SubscriberEvent::Frame(frame));
        }
    }

    /// Resolves when another publisher took the stream over: the connection should close.
    pub async fn kicked(&mut self) {
        while !*self.kicked.borrow() {
            if self.kicked.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        {
            let mut state = self.stream.lock();
            if state
                .publisher
                .as_ref()
                .is_some_and(|slot| slot.id == self.id)
            {
                state.publisher = None;
                state.stats.publishing = false;
                state.gop = GopCache::default();
                let _ = self.stream.events.send(SubscriberEvent::Unpublished);
            }
        }
        self.hub.release(&self.stream);
    }
}

/// One player's view of a stream.
#[derive(Debug)]
pub struct Subscriber {
    hub: Hub,
    stream: Arc<Stream>,
    receiver: broadcast::Receiver<SubscriberEvent>,
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
        loop {
            let event = match self.pending.pop_front() {
                Some(event) => event,
                None => match self.receiver.recv().await {
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        self.lagged(skipped);
                        continue;
                    }
                    // The sender lives as long as the stream, which we hold.
                    Err(broadcast::error::RecvError::Closed) => {
                        return SubscriberEvent::Unpublished
                    }
                },
            };
            if let Some(event) = self.filter(event) {
                return event;
            }
        }
    }

    /// The next event if one is ready, without waiting.
    pub fn try_recv(&mut self) -> Option<SubscriberEvent> {
        loop {
            let event = match self.pending.pop_front() {
                Some(event) => event,
                None => match self.receiver.try_recv() {
                    Ok(event) => event,
                    Err(broadcast::error::TryRecvError::Lagged(skipped)) => {
                        self.lagged(skipped);
                        continue;
                    }
                    Err(_) => return None,
                },
            };
            if let Some(event) = self.filter(event) {
                return Some(event);
            }
        }
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
        let hub = self.hub.clone();
        let stream = self.stream.clone();
        // The receiver must be gone before the registry checks whether the stream is idle.
        let (_sender, replacement) = broadcast::channel(1);
        drop(std::mem::replace(&mut self.receiver, replacement));
        hub.release(&stream);
    }
}
