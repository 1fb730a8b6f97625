//! Recording to FLV or fragmented MP4: one hub subscriber per recorded stream (bounded queue, drops to the
//! next keyframe when slow, like a player) feeding a writer thread through a bounded channel, so a slow or
//! full disk never slows the publisher. Files rotate on duration or size at a keyframe, each starting with
//! metadata and sequence headers (FLV) or an init segment (MP4). Each FLV tag and each MP4 fragment is one
//! write, so a killed server leaves a file readable to its last whole tag or fragment; at close the first
//! FLV tag's `onMetaData` is rewritten in place with the duration and keyframe index.

use std::fmt;
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Component, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rtmp_flv::{FlvHeader, MetadataBuilder, Tag, TagWriter, TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO};
use rtmp_hls::{Fragmenter, FragmenterConfig};
use rtmp_hub::{Hub, StreamKey, SubscriberEvent};
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;

/// What `record` asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordMode {
    /// No recording.
    #[default]
    Off,
    /// Audio, video and metadata.
    All,
    /// Video and metadata only.
    Video,
    /// Audio and metadata only.
    Audio,
    /// Nothing automatic: [`Recorder::start`] and [`Recorder::stop`] are called on request.
    Manual,
}

impl RecordMode {
    /// Whether a publish starts a recorder by itself.
    pub fn is_automatic(self) -> bool {
        matches!(
            self,
            RecordMode::All | RecordMode::Video | RecordMode::Audio
        )
    }

    fn keeps(self, tag_type: u8) -> bool {
        match self {
            RecordMode::Video => tag_type != TAG_AUDIO,
            RecordMode::Audio => tag_type != TAG_VIDEO,
            _ => true,
        }
    }
}

/// The container of recordings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    /// FLV.
    #[default]
    Flv,
    /// Fragmented MP4 (CMAF-style: an init segment, then a `moof` + `mdat` fragment per GOP).
    Mp4,
}

impl RecordFormat {
    /// The file name extension (`{ext}` in the path template).
    pub fn extension(self) -> &'static str {
        match self {
            RecordFormat::Flv => "flv",
            RecordFormat::Mp4 => "mp4",
        }
    }
}

impl<'de> Deserialize<'de> for RecordFormat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        match name.as_str() {
            "flv" => Ok(RecordFormat::Flv),
            "mp4" => Ok(RecordFormat::Mp4),
            other => Err(serde::de::Error::custom(format!(
                "unknown record_format {other:?} (\"flv\" or \"mp4\")"
            ))),
        }
    }
}

/// The file name template of recordings: `{app}`, `{name}`, `{start}` (UTC, `20261203-114500`), `{n}`
/// (the file's number in a recording, from 0) and `{ext}` (`flv` or `mp4`, from `record_format`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct RecordPath(pub String);

impl Default for RecordPath {
    fn default() -> Self {
        Self("recordings/{app}/{name}-{start}.{ext}".to_owned())
    }
}

/// Why a recording path could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The application or stream name could escape the template's directory.
    #[error("{0:?} cannot be part of a recording path (empty, `.`/`..`, a path separator or NUL)")]
    UnsafeName(String),
    /// The template itself climbs out with `..`.
    #[error("recording path template {0:?} contains `..`")]
    UnsafeTemplate(String),
}

fn safe_component(value: &str) -> Result<&str, PathError> {
    let unsafe_name =
        value.is_empty() || value == "." || value == ".." || value.contains(['/', '\\', '\0']);
    if unsafe_name {
        return Err(PathError::UnsafeName(value.to_owned()));
    }
    Ok(value)
}

/// `20261203-114500` for a time in UTC (the epoch for a time before it or past year 9999).
pub fn utc_stamp(time: SystemTime) -> String {
    let at = time
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|elapsed| i64::try_from(elapsed.as_secs()).ok())
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// The path of file `n` of a recording of `app`/`name` started at `start` (see [`utc_stamp`]), with
/// `ext` for `{ext}`. A template without `{n}` gets `-N` before its extension from the second file on, so
/// a later file never overwrites an earlier one.
pub fn render_path(
    template: &str,
    app: &str,
    name: &str,
    start: &str,
    n: u32,
    ext: &str,
) -> Result<PathBuf, PathError> {
    let rendered = template
        .replace("{app}", safe_component(app)?)
        .replace("{name}", safe_component(name)?)
        .replace("{start}", start)
        .replace("{n}", &n.to_string())
        .replace("{ext}", ext);
    let mut path = PathBuf::from(rendered);
    if n > 0 && !template.contains("{n}") {
        let stem = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned());
        let extension = path
            .extension()
            .map(|ext| ext.to_string_lossy().into_owned());
        let numbered = match (stem, extension) {
            (Some(stem), Some(extension)) => format!("{stem}-{n}.{extension}"),
            (Some(stem), None) => format!("{stem}-{n}"),
            _ => format!("{n}"),
        };
        path.set_file_name(numbered);
    }
    if path.components().any(|part| part == Component::ParentDir) {
        return Err(PathError::UnsafeTemplate(template.to_owned()));
    }
    Ok(path)
}

/// The recording settings of an application (the `record*` keys of its table).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordSettings {
    /// What to record.
    pub mode: RecordMode,
    /// The file name template.
    pub path: RecordPath,
    /// The container.
    pub format: RecordFormat,
    /// Start a new file at the next keyframe once a file spans this many seconds.
    pub max_duration_s: Option<u64>,
    /// Start a new file at the next keyframe once a file holds this many bytes.
    pub max_bytes: Option<u64>,
}

/// A finished recording file.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordDone {
    /// The stream recorded.
    pub key: StreamKey,
    /// The file written.
    pub path: PathBuf,
    /// Bytes in the file.
    pub bytes: u64,
    /// Milliseconds of media in the file.
    pub duration_ms: u64,
}

/// Told of each finished recording file (the `on_record_done` hook fills this slot).
pub trait RecordDoneHook: Send + Sync + fmt::Debug {
    /// Called from the writer thread when a file is closed.
    fn record_done(&self, done: &RecordDone);
}

/// The default hook: a log line.
#[derive(Debug, Default)]
pub struct LogRecordDone;

impl RecordDoneHook for LogRecordDone {
    fn record_done(&self, done: &RecordDone) {
        tracing::info!(
            app = %done.key.app,
            stream = %done.key.name,
            path = %done.path.display(),
            bytes = done.bytes,
            duration_ms = done.duration_ms,
            "recording done"
        );
    }
}

/// What others (the API) can read of a running recorder.
#[derive(Debug, Default)]
pub struct RecorderStatus {
    /// Frames the recorder had to drop (slow disk or subscriber queue overrun).
    pub dropped_frames: AtomicU64,
    /// Bytes written to files so far.
    pub bytes_written: AtomicU64,
    /// The last write error, if recording is currently failing.
    pub last_error: Mutex<Option<String>>,
    /// The file being written.
    pub current_path: Mutex<Option<PathBuf>>,
}

impl RecorderStatus {
    /// The last write error, if any.
    pub fn error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The file being written, if any.
    pub fn path(&self) -> Option<PathBuf> {
        self.current_path
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_error(&self, error: Option<String>) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error;
    }

    fn set_path(&self, path: Option<PathBuf>) {
        *self
            .current_path
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = path;
    }
}

/// Frames waiting for the writer thread; past this the recorder drops to the next keyframe.
const WRITER_QUEUE: usize = 512;

/// Stream milliseconds after a failed write before a file is opened again (at the next keyframe).
const RETRY_AFTER_MS: u32 = 2_000;

/// Bytes reserved in the first `onMetaData` for the keyframe index written at close (18 per keyframe).
const METADATA_ROOM: usize = 8 * 1024;

/// One recording of one stream: a hub subscriber task and a writer thread. Dropping it (or
/// [`stop`](Self::stop)) closes the current file.
#[derive(Debug)]
pub struct Recorder {
    status: Arc<RecorderStatus>,
    task: tokio::task::JoinHandle<()>,
    stop: Arc<tokio::sync::Notify>,
}

impl Recorder {
    /// Starts recording `key` from `hub` (call right after the publish is accepted, or on request while
    /// the stream is published). Needs a tokio runtime.
    pub fn start(
        hub: &Hub,
        key: StreamKey,
        settings: RecordSettings,
        hook: Arc<dyn RecordDoneHook>,
    ) -> Recorder {
        let status = Arc::new(RecorderStatus::default());
        let mut subscriber = hub.subscribe(&key);
        let (sender, receiver) = mpsc::sync_channel::<Tag>(WRITER_QUEUE);
        let writer_status = status.clone();
        let writer_key = key.clone();
        let writer_settings = settings.clone();
        std::thread::Builder::new()
            .name("rtmpx-recorder".to_owned())
            .spawn(move || {
                let mut writer = FileWriter::new(writer_key, writer_settings, writer_status, hook);
                for tag in receiver {
                    writer.write(tag);
                }
                writer.close();
            })
            .ok();
        let task_status = status.clone();
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut drops = DropEpisode::default();
            let mut seen_dropped = 0;
            loop {
                let event = tokio::select! {
                    biased;
                    event = subscriber.recv() => event,
                    _ = stopped.notified() => match subscriber.try_recv() {
                        // What the hub already holds is written before the file closes.
                        Some(event) => {
                            stopped.notify_one();
                            event
                        }
                        None => break,
                    },
                };
                let frame = match event {
                    SubscriberEvent::Frame(frame) => frame,
                    SubscriberEvent::Unpublished => break,
                    SubscriberEvent::Published => continue,
                };
                let hub_dropped = subscriber.dropped();
                if hub_dropped > seen_dropped {
                    task_status
                        .dropped_frames
                        .fetch_add(hub_dropped - seen_dropped, Ordering::Relaxed);
                    seen_dropped = hub_dropped;
                }
                let Some(tag) = Tag::from_message(&frame.message()) else {
                    continue;
                };
                if !settings.mode.keeps(tag.tag_type) {
                    continue;
                }
                let keyframe = tag.is_keyframe() && !tag.is_sequence_header();
                let essential = tag.tag_type == TAG_SCRIPT || tag.is_sequence_header();
                if drops.active() && !keyframe && !essential {
                    drops.dropped(&task_status);
                    continue;
                }
                match sender.try_send(tag) {
                    Ok(()) => drops.end(&key, keyframe),
                    Err(mpsc::TrySendError::Full(_)) => {
                        drops.begin(&key);
                        drops.dropped(&task_status);
                    }
                    Err(mpsc::TrySendError::Disconnected(_)) => break,
                }
            }
            drops.end(&key, true);
            // Dropping the sender ends the writer thread, which closes the file.
        });
        Recorder { status, task, stop }
    }

    /// What the API can read of this recording.
    pub fn status(&self) -> &Arc<RecorderStatus> {
        &self.status
    }

    /// Stops recording (call when the publisher leaves, or on request): what the hub already delivered
    /// is written, then the writer thread closes the file. Returns once the subscriber task has ended.
    pub async fn stop(mut self) {
        self.stop.notify_one();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Recorder {
    /// A dropped recorder stops in the background: what the hub already delivered is written, then the
    /// file is closed.
    fn drop(&mut self) {
        self.stop.notify_one();
    }
}

/// A run of frames dropped because the writer thread is behind (a slow disk): one log line when it
/// starts and one when recording catches up at a keyframe, never one per frame.
#[derive(Debug, Default)]
struct DropEpisode {
    /// Frames dropped in the current episode; `None` while not dropping.
    count: Option<u64>,
}

impl DropEpisode {
    fn active(&self) -> bool {
        self.count.is_some()
    }

    fn begin(&mut self, key: &StreamKey) {
        if self.count.is_none() {
            tracing::warn!(
                app = %key.app,
                stream = %key.name,
                "recorder behind the stream (slow disk): dropping frames until the next keyframe"
            );
            self.count = Some(0);
        }
    }

    fn dropped(&mut self, status: &RecorderStatus) {
        status.dropped_frames.fetch_add(1, Ordering::Relaxed);
        if let Some(count) = self.count.as_mut() {
            *count += 1;
        }
    }

    /// A frame went through: a keyframe ends the episode.
    fn end(&mut self, key: &StreamKey, keyframe: bool) {
        if let (true, Some(dropped)) = (keyframe, self.count) {
            tracing::warn!(
                app = %key.app,
                stream = %key.name,
                dropped,
                "recorder caught up at a keyframe"
            );
            self.count = None;
        }
    }
}

/// What one open file is written as.
#[derive(Debug)]
enum Container {
    Flv {
        writer: TagWriter,
        metadata: MetadataBuilder,
        /// Offset and length of the first `onMetaData` payload, to rewrite it at close.
        metadata_at: (u64, usize),
    },
    Mp4 {
        fragmenter: Box<Fragmenter>,
    },
}

/// An open recording file.
#[derive(Debug)]
struct OpenFile {
    file: File,
    path: PathBuf,
    container: Container,
    /// Bytes written whole so far (the file is cut back here when a write fails).
    position: u64,
    /// A write failed: the file is closed as it is, nothing more is written to it.
    failed: bool,
    base_timestamp: u32,
    last_timestamp: u32,
}

impl OpenFile {
    /// Writes `bytes` whole, or cuts the file back to its last whole tag or fragment.
    fn write_whole(&mut self, bytes: &[u8]) -> Result<(), String> {
        if let Err(error) = self.file.write_all(bytes) {
            let _ = self.file.set_len(self.position);
            let _ = self.file.seek(SeekFrom::Start(self.position));
            self.failed = true;
            return Err(format!("cannot write {}: {error}", self.path.display()));
        }
        self.position += bytes.len() as u64;
        Ok(())
    }
}

/// The writer thread's state: the current file, the headers every new file starts with, rotation.
struct FileWriter {
    key: StreamKey,
    settings: RecordSettings,
    status: Arc<RecorderStatus>,
    hook: Arc<dyn RecordDoneHook>,
    start: String,
    /// The number of the next file opened.
    file_number: u32,
    current: Option<OpenFile>,
    metadata: Option<Bytes>,
    video_header: Option<Tag>,
    audio_header: Option<Tag>,
    /// Stream time of the last failure: opening again waits for a keyframe `RETRY_AFTER_MS` later.
    failed_at: Option<u32>,
    /// The failure episode logged last: its cause, when it was logged, and whether its end was.
    episode: Option<Episode>,
}

/// A run of write failures with one cause (the disk full, the directory unwritable), logged once.
#[derive(Debug)]
struct Episode {
    cause: String,
    logged_at: u32,
    resumed: bool,
}

/// Names tried for a new file before giving up (each an existing recording).
const MAX_NAME_TRIES: u32 = 1000;

/// Stream milliseconds after which a failure with the same cause is logged again.
const RELOG_AFTER_MS: u32 = 60_000;

impl FileWriter {
    fn new(
        key: StreamKey,
        settings: RecordSettings,
        status: Arc<RecorderStatus>,
        hook: Arc<dyn RecordDoneHook>,
    ) -> Self {
        Self {
            key,
            settings,
            status,
            hook,
            start: utc_stamp(SystemTime::now()),
            file_number: 0,
            current: None,
            metadata: None,
            video_header: None,
            audio_header: None,
            failed_at: None,
            episode: None,
        }
    }

    fn write(&mut self, tag: Tag) {
        let keyframe = tag.is_keyframe() && !tag.is_sequence_header();
        if tag.tag_type == TAG_SCRIPT || tag.is_sequence_header() {
            match tag.tag_type {
                TAG_SCRIPT => self.metadata = Some(tag.payload.clone()),
                TAG_VIDEO => self.video_header = Some(tag.clone()),
                _ => self.audio_header = Some(tag.clone()),
            }
            // A new file starts with them; an open one takes the update in place.
            if self.current.is_none() {
                return;
            }
        }
        let over_limits = self
            .current
            .as_ref()
            .is_some_and(|open| keyframe && self.over_limits(open, tag.timestamp));
        if over_limits {
            self.close();
        }
        if self.current.is_none() {
            let no_video = self.settings.mode == RecordMode::Audio
                || (self.video_header.is_none() && tag.tag_type == TAG_AUDIO);
            let retry_due = self
                .failed_at
                .is_none_or(|failed| tag.timestamp.wrapping_sub(failed) >= RETRY_AFTER_MS);
            // The first file starts with the stream (the hub holds video back to a keyframe already), so
            // audio sent just before the first keyframe is kept; later files start at a keyframe.
            let first_file = self.file_number == 0 && self.failed_at.is_none();
            if !(retry_due && (keyframe || no_video || first_file)) {
                if self.failed_at.is_some() {
                    // Not recorded while the disk refuses: counted with the dropped frames.
                    self.status.dropped_frames.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            if let Err(error) = self.open(tag.timestamp) {
                self.fail(tag.timestamp, &error);
                return;
            }
        }
        if let Err(error) = self.append(tag, keyframe) {
            let at = self.current.as_ref().map_or(0, |open| open.last_timestamp);
            // The file holds whole tags or fragments only: closed as it is, still readable.
            self.close();
            self.fail(at, &error);
        }
    }

    fn over_limits(&self, open: &OpenFile, timestamp: u32) -> bool {
        let duration_ms = u64::from(timestamp.wrapping_sub(open.base_timestamp));
        let over_duration = self
            .settings
            .max_duration_s
            .is_some_and(|max| duration_ms >= max.saturating_mul(1000));
        let pending = match &open.container {
            Container::Mp4 { fragmenter } => fragmenter.pending_bytes(),
            Container::Flv { .. } => 0,
        };
        let over_bytes = self
            .settings
            .max_bytes
            .is_some_and(|max| open.position + pending >= max);
        over_duration || over_bytes
    }

    /// A failed open or write: one error line per failure episode (retries failing for the same cause
    /// within a minute of stream time are not logged again), the error kept for the API.
    fn fail(&mut self, timestamp: u32, error: &str) {
        // "cannot write PATH: No space left on device (os error 28)": the cause is after the path.
        let cause = error.rsplit_once(": ").map_or(error, |(_, cause)| cause);
        let new_episode = self.episode.as_ref().is_none_or(|episode| {
            episode.cause != cause || timestamp.wrapping_sub(episode.logged_at) >= RELOG_AFTER_MS
        });
        if new_episode {
            self.episode = Some(Episode {
                cause: cause.to_owned(),
                logged_at: timestamp,
                resumed: false,
            });
            tracing::error!(
                app = %self.key.app,
                stream = %self.key.name,
                error,
                "recording failed; the stream goes on, recording retries at a keyframe {} s later",
                RETRY_AFTER_MS / 1000
            );
        }
        self.status.set_error(Some(error.to_owned()));
        self.failed_at = Some(timestamp);
    }

    /// Creates the next file of the recording. A name that is an existing regular file (an earlier
    /// recording of the same name) is skipped for the next `{n}`: a recording never overwrites one.
    fn create(&mut self) -> Result<(PathBuf, File), String> {
        for _ in 0..MAX_NAME_TRIES {
            let path = render_path(
                &self.settings.path.0,
                &self.key.app,
                &self.key.name,
                &self.start,
                self.file_number,
                self.settings.format.extension(),
            )
            .map_err(|error| error.to_string())?;
            // The next file never reuses this name, even when this one fails.
            self.file_number += 1;
            if fs::metadata(&path).is_ok_and(|existing| existing.is_file()) {
                continue;
            }
            if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                fs::create_dir_all(dir)
                    .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
            }
            let file = File::create(&path)
                .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
            return Ok((path, file));
        }
        Err(format!(
            "no free file name for {:?} after {MAX_NAME_TRIES} tries",
            self.settings.path.0
        ))
    }

    fn open(&mut self, base_timestamp: u32) -> Result<(), String> {
        let (path, file) = self.create()?;
        let container = match self.settings.format {
            RecordFormat::Flv => Container::Flv {
                writer: TagWriter::new(),
                metadata: self
                    .metadata
                    .as_deref()
                    .map(MetadataBuilder::from_data_message)
                    .unwrap_or_default(),
                metadata_at: (0, 0),
            },
            RecordFormat::Mp4 => Container::Mp4 {
                fragmenter: Box::new(Fragmenter::new(FragmenterConfig::default())),
            },
        };
        let mut open = OpenFile {
            file,
            path,
            container,
            position: 0,
            failed: false,
            base_timestamp,
            last_timestamp: base_timestamp,
        };
        match &mut open.container {
            Container::Flv {
                writer,
                metadata,
                metadata_at,
            } => {
                let header = FlvHeader {
                    has_audio: self.settings.mode != RecordMode::Video,
                    has_video: self.settings.mode != RecordMode::Audio,
                };
                let payload = metadata
                    .payload_with_room(METADATA_ROOM)
                    .map_err(|error| error.to_string())?;
                let mut head = writer.file_header(header).to_vec();
                *metadata_at = (writer.position() + 11, payload.len());
                let metadata_tag = Tag {
                    tag_type: TAG_SCRIPT,
                    timestamp: 0,
                    payload,
                };
                head.extend_from_slice(&writer.tag(&metadata_tag).map_err(|e| e.to_string())?);
                for header in [&self.video_header, &self.audio_header]
                    .into_iter()
                    .flatten()
                {
                    let tag = Tag {
                        timestamp: 0,
                        ..header.clone()
                    };
                    head.extend_from_slice(&writer.tag(&tag).map_err(|e| e.to_string())?);
                }
                if let Err(error) = open.write_whole(&head) {
                    // Nothing whole in it: no file is left behind.
                    let _ = fs::remove_file(&open.path);
                    return Err(error);
                }
            }
            Container::Mp4 { fragmenter } => {
                // The init segment is written with the first frame, once the tracks are known.
                for header in [&self.video_header, &self.audio_header]
                    .into_iter()
                    .flatten()
                {
                    let pushed = if header.tag_type == TAG_VIDEO {
                        fragmenter.push_video(0, &header.payload)
                    } else {
                        fragmenter.push_audio(0, &header.payload)
                    };
                    pushed.map_err(|error| format!("cannot record this codec to MP4: {error}"))?;
                }
            }
        }
        tracing::info!(
            app = %self.key.app,
            stream = %self.key.name,
            path = %open.path.display(),
            "recording started"
        );
        let resumed = self.failed_at.take().is_some();
        if let Some(episode) = self.episode.as_mut().filter(|e| resumed && !e.resumed) {
            episode.resumed = true;
            tracing::info!(app = %self.key.app, stream = %self.key.name, "recording resumed");
        }
        self.status.set_path(Some(open.path.clone()));
        self.status.set_error(None);
        self.current = Some(open);
        Ok(())
    }

    fn append(&mut self, tag: Tag, keyframe: bool) -> Result<(), String> {
        let Some(open) = self.current.as_mut() else {
            return Ok(());
        };
        let relative = tag.timestamp.wrapping_sub(open.base_timestamp);
        // A late frame from before the file's first keyframe (audio interleaving) stays at 0.
        let timestamp = if relative > u32::MAX / 2 { 0 } else { relative };
        let before = open.position;
        match &mut open.container {
            Container::Flv {
                writer, metadata, ..
            } => {
                if keyframe {
                    metadata.keyframe(f64::from(timestamp) / 1000.0, writer.position());
                }
                let bytes = writer
                    .tag(&Tag { timestamp, ..tag })
                    .map_err(|error| error.to_string())?;
                // One write per tag: a killed server leaves whole tags only.
                open.write_whole(&bytes)?;
                if keyframe {
                    let _ = open.file.sync_data();
                }
            }
            Container::Mp4 { fragmenter } => {
                let pushed = match tag.tag_type {
                    TAG_VIDEO => fragmenter.push_video(timestamp, &tag.payload),
                    TAG_AUDIO => fragmenter.push_audio(timestamp, &tag.payload),
                    _ => Ok(None),
                };
                match pushed {
                    // One write per fragment, synced: a killed server leaves whole fragments only.
                    Ok(Some(bytes)) => {
                        open.write_whole(&bytes)?;
                        let _ = open.file.sync_data();
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::debug!(stream = %self.key, %error, "frame not recordable to MP4, skipped");
                        self.status.dropped_frames.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        open.last_timestamp = open.last_timestamp.max(tag.timestamp);
        self.status
            .bytes_written
            .fetch_add(open.position - before, Ordering::Relaxed);
        Ok(())
    }

    fn close(&mut self) {
        let Some(mut open) = self.current.take() else {
            return;
        };
        let duration_ms = u64::from(open.last_timestamp.wrapping_sub(open.base_timestamp));
        match &mut open.container {
            Container::Flv {
                metadata,
                metadata_at: (offset, len),
                ..
            } => {
                metadata.duration(duration_ms as f64 / 1000.0);
                // The file is valid without the rewrite; with it, players know the duration and can
                // seek.
                if let Ok(Some(payload)) = metadata.payload_of_len(*len) {
                    let rewrite = open
                        .file
                        .seek(SeekFrom::Start(*offset))
                        .and_then(|_| open.file.write_all(&payload))
                        .and_then(|()| open.file.seek(SeekFrom::End(0)).map(drop));
                    if let Err(error) = rewrite {
                        tracing::warn!(path = %open.path.display(), %error, "cannot rewrite the recording's onMetaData");
                    }
                }
            }
            Container::Mp4 { fragmenter } if !open.failed => {
                if let Some(last) = fragmenter.finish() {
                    if let Err(error) = open.write_whole(&last) {
                        tracing::warn!(path = %open.path.display(), %error, "cannot write the recording's last fragment");
                    }
                }
            }
            // After a failed write the file ends at its last whole fragment.
            Container::Mp4 { .. } => {}
        }
        self.status.set_path(None);
        if open.position == 0 {
            // Nothing whole was written (a write failed at once): no file is left behind.
            let _ = fs::remove_file(&open.path);
            return;
        }
        let _ = open.file.sync_all();
        self.hook.record_done(&RecordDone {
            key: self.key.clone(),
            path: open.path,
            bytes: open.position,
            duration_ms,
        });
    }
}

impl fmt::Debug for FileWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileWriter")
            .field("key", &self.key)
            .field("file_number", &self.file_number)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
