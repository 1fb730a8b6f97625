//! Video on demand: `play NAME` of a file under the application's `vod_path` (docs/vod.md).
//!
//! A [`Playback`] is one player's file: a reader thread opens it (through [`path::resolve`], which never
//! leaves `vod_path`), reads its tags (FLV with `rtmp-flv`, MP4 with the `mp4` crate, [`mp4_file`]) and
//! hands them, paced in real time with the client's
//! buffer length as read-ahead, to the connection through a bounded channel whose receiver wakes the
//! connection like a hub subscriber does. The router decides (accept, seek, pause, end) from the
//! [`VodEvent`]s; the thread does all the file I/O and keeps the clock. Seek, pause and the buffer
//! length reach the thread as [`Control`]s; events of a superseded seek carry an older generation and are
//! dropped by the router.

pub mod flv_file;
pub mod http;
pub mod mp4_file;
pub mod path;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rtmp_chunk::Message;
use rtmp_flv::{Tag, TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO};
use tokio::sync::{mpsc, oneshot};

use flv_file::{FlvFile, Index};
use mp4_file::Mp4File;
use path::{Container, PathRefusal};

/// Messages a reader may have ready for the connection: its read-ahead beyond the client's buffer.
const CHANNEL_MESSAGES: usize = 32;
/// A timestamp jump larger than this restarts the pacing clock instead of waiting it out.
const MAX_TIMESTAMP_GAP_MS: u32 = 10_000;
/// `getStreamLength` look-ups running at once over the whole server; more are answered 0.
const MAX_LENGTH_PROBES: usize = 16;

/// Files played at once over the whole server (one reader thread each); more are refused.
const MAX_READERS: usize = 1024;
/// A reader thread's stack: it holds a read buffer and a tag at a time.
const READER_STACK: usize = 256 * 1024;

static LENGTH_PROBES: AtomicUsize = AtomicUsize::new(0);
static READERS: AtomicUsize = AtomicUsize::new(0);

/// One running reader, counted against [`MAX_READERS`] until dropped.
struct ReaderSlot;

impl ReaderSlot {
    fn take() -> Option<Self> {
        if READERS.fetch_add(1, Ordering::AcqRel) >= MAX_READERS {
            READERS.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(ReaderSlot)
    }
}

impl Drop for ReaderSlot {
    fn drop(&mut self) {
        READERS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What the reader of a [`Playback`] reports, in order.
#[derive(Debug)]
pub enum VodEvent {
    /// The file is open and playable; `Play.Start` may be sent. Its duration in milliseconds.
    Opened {
        /// The file's duration, ms.
        duration_ms: f64,
    },
    /// The name names no file that may be played.
    Refused(PathRefusal),
    /// The file exists but cannot be played (not FLV, unreadable, an unsupported container).
    Unplayable(String),
    /// The next message to send (stream id 0; the caller sets it).
    Frame {
        /// The seek generation it belongs to.
        generation: u64,
        /// Audio, video or data.
        message: Message,
    },
    /// A seek was carried out; frames from `position_ms` follow.
    Seeked {
        /// The seek's generation.
        generation: u64,
        /// Where playback restarts: the sync point at or before the target, ms.
        position_ms: f64,
    },
    /// The file (or the requested duration) was played to its end.
    Ended {
        /// The seek generation it belongs to.
        generation: u64,
        /// Milliseconds of media played since the last start or seek.
        played_ms: f64,
        /// Payload bytes sent since the last start or seek.
        bytes: u64,
    },
    /// The file turned out corrupt (or unreadable) while playing; nothing more follows until a seek.
    Failed {
        /// The seek generation it belongs to.
        generation: u64,
        /// What was wrong, for the client and the log.
        reason: String,
    },
}

impl VodEvent {
    /// The seek generation of a media-path event (`None` for the opening events).
    pub fn generation(&self) -> Option<u64> {
        match self {
            VodEvent::Frame { generation, .. }
            | VodEvent::Seeked { generation, .. }
            | VodEvent::Ended { generation, .. }
            | VodEvent::Failed { generation, .. } => Some(*generation),
            _ => None,
        }
    }
}

/// What the connection tells a reader.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Control {
    /// Restart at the sync point at or before `position_ms`, under a new generation.
    Seek {
        /// The target, ms.
        position_ms: f64,
        /// The generation the frames after it carry.
        generation: u64,
    },
    /// Stop (`true`) or resume sending.
    Pause(bool),
    /// The client's buffer length, ms: how far ahead of real time the reader may send.
    Buffer(u32),
}

/// What a player asked to play.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The application's `vod_path`.
    pub root: PathBuf,
    /// The stream name as played (`NAME`, `NAME.flv`, `flv:NAME`, `mp4:NAME.mp4`).
    pub name: String,
    /// Where to start, ms (negative: the beginning).
    pub start_ms: f64,
    /// How long to play, ms (negative: to the end).
    pub duration_ms: f64,
    /// The client's buffer length so far, ms.
    pub buffer_ms: u32,
}

/// One player's file: the reader thread's events and its controls. Dropping it stops the thread.
#[derive(Debug)]
pub struct Playback {
    events: mpsc::Receiver<VodEvent>,
    control: std_mpsc::Sender<Control>,
    generation: u64,
}

impl Playback {
    /// Starts the reader thread for `request`; its first event is `Opened`, `Refused` or `Unplayable`.
    pub fn start(request: Request) -> Self {
        let (events_tx, events) = mpsc::channel(CHANNEL_MESSAGES);
        let (control, control_rx) = std_mpsc::channel();
        let failure = events_tx.clone();
        let spawned = match ReaderSlot::take() {
            Some(slot) => std::thread::Builder::new()
                .name("rtmpx-vod".into())
                .stack_size(READER_STACK)
                .spawn(move || {
                    let _slot = slot;
                    let name = request.name.clone();
                    let run = std::panic::AssertUnwindSafe(|| {
                        Reader::run(request, events_tx, control_rx)
                    });
                    // A demuxer that panics on a malformed file ends this player only.
                    if std::panic::catch_unwind(run).is_err() {
                        tracing::warn!(%name, "vod: the reader stopped on a malformed file");
                    }
                })
                .map(drop)
                .map_err(|error| format!("no reader thread could be started: {error}")),
            None => Err(format!(
                "{MAX_READERS} files are playing already; try again later"
            )),
        };
        if let Err(reason) = spawned {
            tracing::warn!(%reason, "vod: a file cannot be played now");
            let _ = failure.try_send(VodEvent::Unplayable(reason));
        }
        Self {
            events,
            control,
            generation: 0,
        }
    }

    /// Asks for a seek; returns the generation whose events follow it.
    pub fn seek(&mut self, position_ms: f64) -> u64 {
        self.generation += 1;
        let _ = self.control.send(Control::Seek {
            position_ms,
            generation: self.generation,
        });
        self.generation
    }

    /// Pauses or resumes the reader.
    pub fn pause(&self, paused: bool) {
        let _ = self.control.send(Control::Pause(paused));
    }

    /// Tells the reader the client's buffer length.
    pub fn set_buffer(&self, buffer_ms: u32) {
        let _ = self.control.send(Control::Buffer(buffer_ms));
    }

    /// The generation current events carry (older ones are stale).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The next event, registering `cx`'s waker otherwise. `Ready(None)`: the reader ended.
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<VodEvent>> {
        self.events.poll_recv(cx)
    }

    /// The next event if one is ready.
    pub fn try_event(&mut self) -> Option<VodEvent> {
        self.events.try_recv().ok()
    }
}

/// Looks up the duration of `name` under `root` on a thread of its own: the answer to
/// `getStreamLength`, in seconds (0 when there is no such file, or too many look-ups are running).
pub fn stream_length(root: PathBuf, name: String) -> oneshot::Receiver<f64> {
    let (answer, receiver) = oneshot::channel();
    if LENGTH_PROBES.fetch_add(1, Ordering::AcqRel) >= MAX_LENGTH_PROBES {
        LENGTH_PROBES.fetch_sub(1, Ordering::AcqRel);
        let _ = answer.send(0.0);
        return receiver;
    }
    let spawned = std::thread::Builder::new()
        .name("rtmpx-vod-length".into())
        .spawn(move || {
            let seconds = file_duration_ms(&root, &name).map_or(0.0, |ms| ms / 1000.0);
            LENGTH_PROBES.fetch_sub(1, Ordering::AcqRel);
            let _ = answer.send(seconds);
        });
    if spawned.is_err() {
        LENGTH_PROBES.fetch_sub(1, Ordering::AcqRel);
    }
    receiver
}

/// The duration of a playable file, ms: its `onMetaData` duration, else its last timestamp.
fn file_duration_ms(root: &Path, name: &str) -> Option<f64> {
    let (path, container) = path::resolve(root, name).ok()?;
    if container == Container::Mp4 {
        return Some(Mp4File::open(&path).ok()?.prelude().1);
    }
    let mut file = FlvFile::open(&path).ok()?;
    let (_, duration) = file.prelude().ok()?;
    match duration {
        Some(duration) => Some(duration),
        None => Some(f64::from(flv_file::scan(&path).ok()?.last_timestamp)),
    }
}

/// The pacing clock: a tag is due `timestamp - anchor` after the anchor instant, less the buffer.
#[derive(Debug, Default)]
struct Clock {
    anchor: Option<(Instant, u32)>,
    last_timestamp: u32,
    buffer_ms: u32,
}

impl Clock {
    /// When the tag stamped `timestamp` may be sent.
    fn due(&mut self, timestamp: u32, now: Instant) -> Instant {
        let jumped = timestamp.abs_diff(self.last_timestamp) > MAX_TIMESTAMP_GAP_MS;
        self.last_timestamp = timestamp;
        let (instant, base) = match self.anchor {
            Some(anchor) if !jumped => anchor,
            _ => {
                self.anchor = Some((now, timestamp));
                (now, timestamp)
            }
        };
        let ahead = i64::from(timestamp.saturating_sub(base)) - i64::from(self.buffer_ms);
        instant + Duration::from_millis(ahead.max(0) as u64)
    }

    /// Starts the clock again at the next tag (after a seek or a pause).
    fn restart(&mut self) {
        self.anchor = None;
    }
}

/// The reader thread's state.
struct Reader {
    events: mpsc::Sender<VodEvent>,
    control: std_mpsc::Receiver<Control>,
    source: Source,
    path: PathBuf,
    prelude: Vec<Tag>,
    clock: Clock,
    generation: u64,
    paused: bool,
    /// Nothing more to send until a seek (the end, or a failure).
    finished: bool,
    /// Tags to send before the file's next ones (the prelude after a seek), and a tag held back by a
    /// control that arrived while it waited.
    queued: std::collections::VecDeque<Tag>,
    duration_ms: f64,
    /// The duration `play` asked for (negative: to the end); it counts again from a seek's position.
    play_duration_ms: f64,
    stop_at: Option<u32>,
    first_sent: Option<u32>,
    last_sent: u32,
    bytes: u64,
}

/// The file a reader reads, by container.
enum Source {
    Flv {
        file: FlvFile,
        /// Built on the first seek (or start past 0), or at open for a file without a duration.
        index: Option<Index>,
    },
    Mp4(Box<Mp4File>),
}

impl Source {
    fn next_tag(&mut self) -> Result<Option<Tag>, String> {
        match self {
            Source::Flv { file, .. } => file.next_tag().map_err(|error| error.to_string()),
            Source::Mp4(file) => file.next_tag(),
        }
    }

    /// At the end: the bytes a cut-short last FLV tag misses.
    fn truncated(&self) -> Option<usize> {
        match self {
            Source::Flv { file, .. } => file.truncated(),
            Source::Mp4(_) => None,
        }
    }

    /// Moves to the sync point at or before `position_ms`; its timestamp.
    fn restart_at(&mut self, path: &Path, position_ms: f64) -> Result<u32, String> {
        match self {
            Source::Flv { file, index } => {
                let index = index.get_or_insert_with(|| flv_file::scan(path).unwrap_or_default());
                let point = index.at_or_before(position_ms);
                match point {
                    Some(point) => file.seek_to(point.offset),
                    None => file.rewind(),
                }
                .map_err(|error| error.to_string())?;
                Ok(point.map_or(0, |point| point.timestamp))
            }
            Source::Mp4(file) => Ok(file.seek(position_ms)),
        }
    }
}

/// Why the reader thread stops: the connection dropped its [`Playback`].
struct Gone;

impl Reader {
    fn run(request: Request, events: mpsc::Sender<VodEvent>, control: std_mpsc::Receiver<Control>) {
        let opened = Self::open(&request, &events, control);
        if let Some(mut reader) = opened {
            let _ = reader.play(&request);
        }
    }

    fn open(
        request: &Request,
        events: &mpsc::Sender<VodEvent>,
        control: std_mpsc::Receiver<Control>,
    ) -> Option<Self> {
        let refuse = |event| {
            let _ = events.blocking_send(event);
            None
        };
        let (path, container) = match path::resolve(&request.root, &request.name) {
            Ok(found) => found,
            Err(refusal) => return refuse(VodEvent::Refused(refusal)),
        };
        let (source, prelude, duration_ms) = match container {
            Container::Mp4 => match Mp4File::open(&path) {
                Ok(file) => {
                    let (prelude, duration_ms) = file.prelude();
                    (Source::Mp4(Box::new(file)), prelude, duration_ms)
                }
                Err(error) => return refuse(VodEvent::Unplayable(error)),
            },
            Container::Flv => {
                let mut file = match FlvFile::open(&path) {
                    Ok(file) => file,
                    Err(error) => return refuse(VodEvent::Unplayable(error.to_string())),
                };
                let (prelude, duration) = match file.prelude() {
                    Ok(found) => found,
                    Err(error) => return refuse(VodEvent::Unplayable(error.to_string())),
                };
                let mut index = None;
                let duration_ms = match duration {
                    Some(duration) => duration,
                    None => {
                        let scanned = flv_file::scan(&path).unwrap_or_default();
                        let last = f64::from(scanned.last_timestamp);
                        index = Some(scanned);
                        last
                    }
                };
                (Source::Flv { file, index }, prelude, duration_ms)
            }
        };
        // An MP4 file holds no FLV metadata or sequence header tags: they are sent first.
        let queued = match &source {
            Source::Mp4(_) => prelude.iter().cloned().collect(),
            Source::Flv { .. } => Default::default(),
        };
        Some(Self {
            events: events.clone(),
            control,
            source,
            path,
            prelude,
            clock: Clock {
                buffer_ms: request.buffer_ms,
                ..Clock::default()
            },
            generation: 0,
            paused: false,
            finished: false,
            queued,
            duration_ms,
            play_duration_ms: request.duration_ms,
            stop_at: None,
            first_sent: None,
            last_sent: 0,
            bytes: 0,
        })
    }

    fn send(&self, event: VodEvent) -> Result<(), Gone> {
        self.events.blocking_send(event).map_err(|_| Gone)
    }

    fn play(&mut self, request: &Request) -> Result<(), Gone> {
        self.send(VodEvent::Opened {
            duration_ms: self.duration_ms,
        })?;
        if request.start_ms > 0.0 {
            self.restart_at(request.start_ms)?;
        }
        self.stop_at = until(request.start_ms, request.duration_ms);
        loop {
            while let Some(control) = self.next_control(None)? {
                self.apply(control)?;
            }
            if self.paused || self.finished {
                // Nothing to send: wait for a control (or the end of the connection).
                let control = self.control.recv().map_err(|_| Gone)?;
                self.apply(control)?;
                continue;
            }
            let tag = match self.queued.pop_front() {
                Some(tag) => tag,
                None => match self.source.next_tag() {
                    Ok(Some(tag)) => tag,
                    Ok(None) => {
                        if let Some(missing) = self.source.truncated() {
                            tracing::info!(path = %self.path.display(), missing,
                                "vod: the file ends inside a tag (truncated, or still being written); played to its last whole tag");
                        }
                        self.finish()?;
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(path = %self.path.display(), %error, "vod: file unreadable while playing");
                        self.finished = true;
                        self.send(VodEvent::Failed {
                            generation: self.generation,
                            reason: format!("the file is corrupt: {error}"),
                        })?;
                        continue;
                    }
                },
            };
            if !matches!(tag.tag_type, TAG_AUDIO | TAG_VIDEO | TAG_SCRIPT) {
                continue;
            }
            if tag.tag_type != TAG_SCRIPT && self.stop_at.is_some_and(|stop| tag.timestamp > stop) {
                self.finish()?;
                continue;
            }
            let due = self.clock.due(tag.timestamp, Instant::now());
            if let Some(control) = self.next_control(Some(due))? {
                // Something changed while the tag waited: keep it for after.
                self.queued.push_front(tag);
                self.apply(control)?;
                continue;
            }
            if matches!(tag.tag_type, TAG_AUDIO | TAG_VIDEO) {
                self.first_sent.get_or_insert(tag.timestamp);
                self.last_sent = self.last_sent.max(tag.timestamp);
            }
            self.bytes += tag.payload.len() as u64;
            self.send(VodEvent::Frame {
                generation: self.generation,
                message: tag.into_message(0),
            })?;
        }
    }

    /// The next control: at once (`None`), or waiting until `until`.
    fn next_control(&self, until: Option<Instant>) -> Result<Option<Control>, Gone> {
        let result = match until {
            None => self.control.try_recv().map_err(|error| match error {
                std_mpsc::TryRecvError::Empty => None,
                std_mpsc::TryRecvError::Disconnected => Some(Gone),
            }),
            Some(until) => {
                let wait = until.saturating_duration_since(Instant::now());
                if wait.is_zero() {
                    return self.next_control(None);
                }
                self.control
                    .recv_timeout(wait)
                    .map_err(|error| match error {
                        std_mpsc::RecvTimeoutError::Timeout => None,
                        std_mpsc::RecvTimeoutError::Disconnected => Some(Gone),
                    })
            }
        };
        match result {
            Ok(control) => Ok(Some(control)),
            Err(None) => Ok(None),
            Err(Some(gone)) => Err(gone),
        }
    }

    fn apply(&mut self, control: Control) -> Result<(), Gone> {
        match control {
            Control::Pause(paused) => {
                if self.paused && !paused {
                    self.clock.restart();
                }
                self.paused = paused;
            }
            Control::Buffer(buffer_ms) => self.clock.buffer_ms = buffer_ms,
            Control::Seek {
                position_ms,
                generation,
            } => {
                self.generation = generation;
                let position = self.restart_at(position_ms)?;
                self.stop_at = until(position, self.play_duration_ms);
                self.send(VodEvent::Seeked {
                    generation,
                    position_ms: position,
                })?;
            }
        }
        Ok(())
    }

    /// Moves to the sync point at or before `position_ms`, the prelude first; returns its timestamp.
    fn restart_at(&mut self, position_ms: f64) -> Result<f64, Gone> {
        let moved = self.source.restart_at(&self.path, position_ms);
        self.queued.clear();
        self.finished = false;
        self.first_sent = None;
        self.last_sent = 0;
        self.bytes = 0;
        self.clock.restart();
        if let Err(error) = moved {
            self.finished = true;
            self.send(VodEvent::Failed {
                generation: self.generation,
                reason: format!("the file cannot be read: {error}"),
            })?;
            return Ok(position_ms);
        }
        let timestamp = moved.unwrap_or(0);
        if timestamp > 0 || matches!(self.source, Source::Mp4(_)) {
            // The decoder's configuration and the metadata come first, at the new position.
            self.queued = self
                .prelude
                .iter()
                .map(|tag| Tag {
                    timestamp,
                    ..tag.clone()
                })
                .collect();
        }
        Ok(f64::from(timestamp))
    }

    /// The end of the file or of the requested duration.
    fn finish(&mut self) -> Result<(), Gone> {
        self.finished = true;
        let played = self
            .last_sent
            .saturating_sub(self.first_sent.unwrap_or(self.last_sent));
        self.send(VodEvent::Ended {
            generation: self.generation,
            played_ms: f64::from(played),
            bytes: self.bytes,
        })
    }
}

/// The last timestamp to play for a start and a duration (ms); `None` to play to the end.
fn until(start_ms: f64, duration_ms: f64) -> Option<u32> {
    (duration_ms >= 0.0 && duration_ms.is_finite())
        .then(|| (start_ms.max(0.0) + duration_ms).min(f64::from(u32::MAX)) as u32)
}

#[cfg(test)]
mod tests;
