//! The registry of streams: [`Hub`] maps a [`StreamKey`] to one stream's state (publisher slot, GOP
//! cache, counters, fan-out ring), hands out publishers under the publish policy and subscribers, and
//! drops streams nobody uses any more.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;

use crate::config::{HubConfig, PublishPolicy};
use crate::frame::{Frame, FrameKind, SubscriberEvent};
use crate::gop::GopCache;
use crate::publisher::{Kick, Publisher, PublisherSlot};
use crate::ring::{wake_all, Ring};
use crate::subscriber::Subscriber;

/// A stream's name within the server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamKey {
    /// The application, as named by the RTMP `connect` command (e.g. `live`).
    pub app: String,
    /// The stream name within the application (the publish or play name).
    pub name: String,
}

impl StreamKey {
    /// The key of stream `name` in application `app`.
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

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    /// The stream has a publisher that the publish policy does not let the newcomer replace.
    #[error("stream {0} is already being published")]
    StreamTaken(StreamKey),
}

/// Counters of one stream.
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    /// Whether the stream has a publisher.
    pub publishing: bool,
    /// Subscribers of the stream.
    pub players: usize,
    /// Audio, video and data messages sent by its publishers.
    pub frames: u64,
    /// Payload bytes of those messages.
    pub bytes: u64,
    /// The video codec of the latest video message that named one: a legacy codec id mapped to its
    /// FourCC (`avc1`, `hvc1`, ...) or an Enhanced RTMP FourCC (`hvc1`, `av01`, `vp09`, ...).
    pub video_codec: Option<[u8; 4]>,
    /// The audio codec of the latest audio message that named one (`mp4a`, `.mp3`, `Opus`, ...).
    pub audio_codec: Option<[u8; 4]>,
    /// The first byte of the latest audio message: a legacy FLV audio header carries the sample rate
    /// and the channels there.
    pub audio_flags: Option<u8>,
    /// Video frames published (sequence headers and metadata packets not counted).
    pub video_frames: u64,
    /// The timestamps, in ms, of the first and the latest of those video frames.
    pub video_timestamps: Option<(u32, u32)>,
    /// Payload bytes the GOP cache holds (metadata, sequence headers and the frames since the last
    /// keyframe), for a joining player.
    pub gop_cache_bytes: usize,
}

impl StreamStats {
    /// Counts one published message (its frame already classified).
    pub(crate) fn count(&mut self, frame: &Frame, message: &rtmp_chunk::Message) {
        self.frames += 1;
        self.bytes += message.payload.len() as u64;
        match frame.kind {
            FrameKind::Video => {
                if frame.info.codec.is_some() {
                    self.video_codec = frame.info.codec;
                }
                if !frame.info.sequence_header && !frame.info.metadata {
                    self.video_frames += 1;
                    let first = self
                        .video_timestamps
                        .map_or(message.timestamp, |(first, _)| first);
                    self.video_timestamps = Some((first, message.timestamp));
                }
            }
            FrameKind::Audio => {
                if frame.info.codec.is_some() {
                    self.audio_codec = frame.info.codec;
                }
                self.audio_flags = message.payload.first().copied();
            }
            FrameKind::Data => {}
        }
    }
}

/// The latest sequence headers of a stream's default track (id 0, else the lowest), as published: what a
/// codec parser reads width, height, profile, level, sample rate and channels from.
#[derive(Debug, Clone, Default)]
pub struct SequenceHeaders {
    /// The video sequence start (AVC/HEVC decoder configuration record, ...), with its FLV header.
    pub video: Option<bytes::Bytes>,
    /// The audio sequence start (AAC AudioSpecificConfig, OpusHead, ...), with its FLV header.
    pub audio: Option<bytes::Bytes>,
}

/// A published stream as [`Hub::published`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedStream {
    /// The stream.
    pub key: StreamKey,
    /// The FourCC of its video codec (`avc1`, `hvc1`, `av01`...), once its sequence header arrived.
    pub video: Option<[u8; 4]>,
    /// The FourCC of its audio codec (`mp4a`, `.mp3`, `Opus`...), once known.
    pub audio: Option<[u8; 4]>,
}

/// One stream's state, behind its lock: the publisher and the players meet here.
#[derive(Debug)]
pub(crate) struct StreamState {
    pub(crate) publisher: Option<PublisherSlot>,
    pub(crate) gop: GopCache,
    pub(crate) stats: StreamStats,
    pub(crate) ring: Ring,
}

impl StreamState {
    /// Queues an event that must reach players at once (publish, unpublish, metadata).
    pub(crate) fn push_now(&mut self, event: SubscriberEvent) -> Vec<Waker> {
        self.ring.push(event);
        self.ring.flush_all()
    }
}

#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) key: StreamKey,
    state: Mutex<StreamState>,
}

impl Stream {
    pub(crate) fn lock(&self) -> MutexGuard<'_, StreamState> {
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

/// The registry of streams. Cheap to clone: clones share the streams.
///
/// A stream exists while it has a [`Publisher`] or a [`Subscriber`]; [`Hub::publish`] and
/// [`Hub::subscribe`] create it on first use. See the [crate documentation](crate) for an example.
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

impl Hub {
    /// A hub whose flush grid starts at `now`.
    pub fn new(config: HubConfig, now: Instant) -> Self {
        Self {
            inner: Arc::new(HubInner {
                config,
                streams: Mutex::new(HashMap::new()),
                next_publisher: AtomicU64::new(1),
                players: AtomicUsize::new(0),
                epoch: now,
            }),
        }
    }

    /// The settings the hub was created with.
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
    pub(crate) fn release(&self, stream: &Arc<Stream>) {
        let mut streams = self.streams();
        let idle = {
            let state = stream.lock();
            state.publisher.is_none() && state.ring.subscribers() == 0
        };
        if idle
            && streams
                .get(&stream.key)
                .is_some_and(|s| Arc::ptr_eq(s, stream))
        {
            streams.remove(&stream.key);
        }
    }

    /// Starts publishing `key` at `now`, or refuses per the publish policy: under
    /// [`PublishPolicy::TakeOver`] the current publisher is replaced if it has sent no media for
    /// `quiet_after` by `now`.
    ///
    /// ```
    /// use std::task::{Context, Waker};
    /// use std::time::{Duration, Instant};
    /// use rtmp_hub::{Hub, HubConfig, HubError, StreamKey};
    ///
    /// let t0 = Instant::now();
    /// let hub = Hub::new(HubConfig::default(), t0); // take-over after 1 s without media
    /// let key = StreamKey::new("live", "cam");
    /// let first = hub.publish(&key, t0)?;
    /// // A second encoder while the first one is sending: refused.
    /// let refused = hub.publish(&key, t0 + Duration::from_millis(500));
    /// assert_eq!(refused.err(), Some(HubError::StreamTaken(key.clone())));
    /// // The first has been quiet for a second (a stale connection): taken over, and told so.
    /// let second = hub.publish(&key, t0 + Duration::from_secs(1))?;
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(first.poll_kicked(&mut cx).is_ready());
    /// assert!(second.poll_kicked(&mut cx).is_pending());
    /// # Ok::<(), HubError>(())
    /// ```
    pub fn publish(&self, key: &StreamKey, now: Instant) -> Result<Publisher, HubError> {
        let mut streams = self.streams();
        let stream = self.stream_locked(&mut streams, key);
        let id = self.inner.next_publisher.fetch_add(1, Ordering::Relaxed);
        let kick = Arc::new(Kick::default());
        let wakers = {
            let mut state = stream.lock();
            if let Some(current) = &state.publisher {
                let quiet_for = now.saturating_duration_since(current.last_media);
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
                last_media: now,
                kick: Arc::clone(&kick),
            });
            state.gop = GopCache::default();
            state.stats.publishing = true;
            // A new publisher's timestamps and codecs start afresh.
            state.stats.video_frames = 0;
            state.stats.video_timestamps = None;
            state.stats.video_codec = None;
            state.stats.audio_codec = None;
            state.stats.audio_flags = None;
            state.push_now(SubscriberEvent::Published)
        };
        drop(streams);
        wake_all(wakers);
        Ok(Publisher::new(self.clone(), stream, id, kick))
    }

    /// Subscribes to `key`, published or not (yet).
    ///
    /// A live stream's subscriber first reads [`SubscriberEvent::Published`], then the GOP cache
    /// (metadata, sequence headers, the frames since the last keyframe), then live frames.
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
        Subscriber::new(self.clone(), stream, slot, cursor, pending)
    }

    /// A subscriber left (its slot in the ring is already free).
    pub(crate) fn player_left(&self) {
        self.inner.players.fetch_sub(1, Ordering::Relaxed);
    }

    /// Players subscribed to any stream.
    pub fn players(&self) -> usize {
        self.inner.players.load(Ordering::Relaxed)
    }

    /// The streams that have a publisher now, by key, with the codecs of their first video and audio
    /// tracks (FourCC, e.g. `avc1`, `mp4a`) once their sequence headers arrived.
    pub fn published(&self) -> Vec<PublishedStream> {
        let streams: Vec<Arc<Stream>> = self.streams().values().cloned().collect();
        let mut published: Vec<PublishedStream> = streams
            .iter()
            .filter_map(|stream| {
                let state = stream.lock();
                state.publisher.as_ref()?;
                let (video, audio) = state.gop.codecs();
                Some(PublishedStream {
                    key: stream.key.clone(),
                    video,
                    audio,
                })
            })
            .collect();
        published.sort_by(|a, b| (&a.key.app, &a.key.name).cmp(&(&b.key.app, &b.key.name)));
        published
    }

    /// Counters of a stream, if it exists.
    pub fn stats(&self, key: &StreamKey) -> Option<StreamStats> {
        let streams = self.streams();
        let stream = streams.get(key)?;
        let state = stream.lock();
        let mut stats = state.stats.clone();
        stats.players = state.ring.subscribers();
        stats.gop_cache_bytes = state.gop.bytes_held();
        Some(stats)
    }

    /// The latest sequence headers of a stream, if it exists (payloads shared, not copied).
    pub fn sequence_headers(&self, key: &StreamKey) -> Option<SequenceHeaders> {
        let (video, audio) = {
            let streams = self.streams();
            let stream = streams.get(key)?;
            let state = stream.lock();
            (
                state.gop.video_header().cloned(),
                state.gop.audio_header().cloned(),
            )
        };
        // Rebuilt from the shared chunks outside the stream's lock: the publisher never waits for it.
        Some(SequenceHeaders {
            video: video.map(|frame| frame.message().payload),
            audio: audio.map(|frame| frame.message().payload),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn hub(quiet_after: Duration, now: Instant) -> Hub {
        Hub::new(
            HubConfig {
                publish_policy: PublishPolicy::TakeOver { quiet_after },
                ..HubConfig::default()
            },
            now,
        )
    }

    #[test]
    fn stats_describe_the_media_and_the_gop_cache_and_headers_are_readable() {
        let t0 = Instant::now();
        let hub = Hub::new(HubConfig::default(), t0);
        let key = StreamKey::new("live", "described");
        let publisher = hub.publish(&key, t0).expect("publish");
        let message = |type_id: u8, timestamp: u32, payload: &'static [u8]| rtmp_chunk::Message {
            timestamp,
            type_id,
            stream_id: 1,
            payload: bytes::Bytes::from_static(payload),
        };
        const AVC_HEADER: &[u8] = b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f";
        const AAC_HEADER: &[u8] = b"\xaf\x00\x12\x10";
        publisher.send(&message(9, 0, AVC_HEADER), t0);
        publisher.send(&message(8, 0, AAC_HEADER), t0);
        for (index, timestamp) in [0u32, 40, 80, 120].into_iter().enumerate() {
            let payload: &'static [u8] = if index == 0 {
                b"\x17\x01\x00\x00\x00\xaa"
            } else {
                b"\x27\x01\x00\x00\x00\xbb"
            };
            publisher.send(&message(9, timestamp, payload), t0);
        }
        let stats = hub.stats(&key).expect("stats");
        assert_eq!(stats.video_codec, Some(*b"avc1"));
        assert_eq!(stats.audio_codec, Some(*b"mp4a"));
        assert_eq!(stats.audio_flags, Some(0xaf));
        assert_eq!(stats.video_frames, 4);
        assert_eq!(stats.video_timestamps, Some((0, 120)));
        assert_eq!(
            stats.gop_cache_bytes,
            AVC_HEADER.len() + AAC_HEADER.len() + 4 * 6
        );
        let headers = hub.sequence_headers(&key).expect("headers");
        assert_eq!(headers.video.as_deref(), Some(AVC_HEADER));
        assert_eq!(headers.audio.as_deref(), Some(AAC_HEADER));
    }

    #[test]
    fn take_over_counts_the_quiet_from_the_publish_to_the_given_now() {
        let t0 = Instant::now();
        let quiet_after = Duration::from_millis(1000);
        let hub = hub(quiet_after, t0);
        let key = StreamKey::new("live", "s");
        let first = hub.publish(&key, t0).expect("publish");
        assert_eq!(
            hub.publish(&key, t0 + quiet_after - Duration::from_nanos(1))
                .err(),
            Some(HubError::StreamTaken(key.clone()))
        );
        assert!(
            hub.publish(&key, t0).is_err(),
            "no quiet at the last media's instant"
        );
        let second = hub.publish(&key, t0 + quiet_after).expect("taken over");
        drop(first);
        assert!(hub.stats(&key).is_some_and(|stats| stats.publishing));
        drop(second);
        assert!(hub.stats(&key).is_none(), "idle streams are removed");
    }
}
