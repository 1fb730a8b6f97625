//! FLV recording: one hub subscriber per recorded stream (bounded queue, drops to the next keyframe when
//! slow, like a player) feeding a writer thread through a bounded channel, so a slow or full disk never
//! slows the publisher. Files rotate on duration or size at a keyframe, each starting with metadata and
//! sequence headers; each tag is one write, so a killed server leaves a file readable to its last whole
//! tag; at close the first tag's `onMetaData` is rewritten in place with the duration and keyframe index.

use std::fmt;
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Component, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rtmp_flv::{FlvHeader, MetadataBuilder, Tag, TagWriter, TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO};
use rtmp_hub::{Hub, StreamKey, SubscriberEvent};
use serde::{Deserialize, Deserializer};

/// What `record` asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
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

/// The container of recordings: only FLV for now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecordFormat {
    /// FLV.
    #[default]
    Flv,
}

impl<'de> Deserialize<'de> for RecordFormat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        match name.as_str() {
            "flv" => Ok(RecordFormat::Flv),
            "mp4" => Err(serde::de::Error::custom(
                "record_format \"mp4\" is not yet supported (only \"flv\")",
            )),
            other => Err(serde::de::Error::custom(format!(
                "unknown record_format {other:?} (only \"flv\")"
            ))),
        }
    }
}

/// The file name template of recordings: `{app}`, `{name}`, `{start}` (UTC, `20261203-114500`) and `{n}`
/// (the file's number in a rotated recording, from 0).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct RecordPath(pub String);

impl Default for RecordPath {
    fn default() -> Self {
        Self("recordings/{app}/{name}-{start}.flv".to_owned())
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

/// `20261203-114500` for a time in UTC.
pub fn utc_stamp(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The path of file `n` of a recording of `app`/`name` started at `start` (see [`utc_stamp`]).
pub fn render_path(
    template: &str,
    app: &str,
    name: &str,
    start: &str,
    n: u32,
) -> Result<PathBuf, PathError> {
    let rendered = template
        .replace("{app}", safe_component(app)?)
        .replace("{name}", safe_component(name)?)
        .replace("{start}", start)
        .replace("{n}", &n.to_string());
    let path = PathBuf::from(rendered);
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
}

/// Frames waiting for the writer thread; past this the recorder drops to the next keyframe.
const WRITER_QUEUE: usize = 512;

/// Stream milliseconds after a failed write before a file is opened again.
const RETRY_AFTER_MS: u32 = 10_000;

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
    /// Starts recording `key` from `hub` (call right after the publish is accepted). Needs a tokio
    /// runtime.
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
            let mut waiting_for_keyframe = false;
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
                if waiting_for_keyframe && !keyframe && !essential {
                    task_status.dropped_frames.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                waiting_for_keyframe = false;
                match sender.try_send(tag) {
                    Ok(()) => {}
                    Err(mpsc::TrySendError::Full(_)) => {
                        waiting_for_keyframe = true;
                        let dropped = task_status.dropped_frames.fetch_add(1, Ordering::Relaxed);
                        if dropped % 100 == 0 {
                            tracing::warn!(
                                app = %key.app,
                                stream = %key.name,
                                dropped = dropped + 1,
                                "recorder behind the stream (slow disk): dropping to the next keyframe"
                            );
                        }
                    }
                    Err(mpsc::TrySendError::Disconnected(_)) => break,
                }
            }
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

/// An open recording file.
#[derive(Debug)]
struct OpenFile {
    file: File,
    path: PathBuf,
    writer: TagWriter,
    metadata: MetadataBuilder,
    /// Offset and length of the first `onMetaData` payload, to rewrite it at close.
    metadata_at: (u64, usize),
    base_timestamp: u32,
    last_timestamp: u32,
}

/// The writer thread's state: the current file, the headers every new file starts with, rotation.
struct FileWriter {
    key: StreamKey,
    settings: RecordSettings,
    status: Arc<RecorderStatus>,
    hook: Arc<dyn RecordDoneHook>,
    start: String,
    file_number: u32,
    current: Option<OpenFile>,
    metadata: Option<Bytes>,
    video_header: Option<Tag>,
    audio_header: Option<Tag>,
    /// Stream time of the last failure: opening again waits for a keyframe 10 s later.
    failed_at: Option<u32>,
}

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
            self.file_number += 1;
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
                return;
            }
            if let Err(error) = self.open(tag.timestamp) {
                self.fail(tag.timestamp, &error);
                return;
            }
        }
        if let Err(error) = self.append(tag, keyframe) {
            let at = self.current.as_ref().map_or(0, |open| open.last_timestamp);
            self.current = None;
            self.fail(at, &error);
        }
    }

    fn over_limits(&self, open: &OpenFile, timestamp: u32) -> bool {
        let duration_ms = u64::from(timestamp.wrapping_sub(open.base_timestamp));
        let over_duration = self
            .settings
            .max_duration_s
            .is_some_and(|max| duration_ms >= max.saturating_mul(1000));
        let over_bytes = self
            .settings
            .max_bytes
            .is_some_and(|max| open.writer.position() >= max);
        over_duration || over_bytes
    }

    fn fail(&mut self, timestamp: u32, error: &str) {
        tracing::error!(
            app = %self.key.app,
            stream = %self.key.name,
            error,
            "recording failed; the stream goes on, recording retries at a later keyframe"
        );
        *self
            .status
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error.to_owned());
        self.failed_at = Some(timestamp);
    }

    fn open(&mut self, base_timestamp: u32) -> Result<(), String> {
        let path = render_path(
            &self.settings.path.0,
            &self.key.app,
            &self.key.name,
            &self.start,
            self.file_number,
        )
        .map_err(|error| error.to_string())?;
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
        }
        let mut file = File::create(&path)
            .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
        let mut writer = TagWriter::new();
        let header = FlvHeader {
            has_audio: self.settings.mode != RecordMode::Video,
            has_video: self.settings.mode != RecordMode::Audio,
        };
        let metadata = self
            .metadata
            .as_deref()
            .map(MetadataBuilder::from_data_message)
            .unwrap_or_default();
        let payload = metadata
            .payload_with_room(METADATA_ROOM)
            .map_err(|error| error.to_string())?;
        let write_error =
            |error: std::io::Error| format!("cannot write {}: {error}", path.display());
        file.write_all(&writer.file_header(header))
            .map_err(write_error)?;
        let metadata_at = (writer.position() + 11, payload.len());
        let metadata_tag = Tag {
            tag_type: TAG_SCRIPT,
            timestamp: 0,
            payload,
        };
        let bytes = writer
            .tag(&metadata_tag)
            .map_err(|error| error.to_string())?;
        file.write_all(&bytes).map_err(write_error)?;
        for header in [&self.video_header, &self.audio_header]
            .into_iter()
            .flatten()
        {
            let tag = Tag {
                timestamp: 0,
                ..header.clone()
            };
            let bytes = writer.tag(&tag).map_err(|error| error.to_string())?;
            file.write_all(&bytes).map_err(write_error)?;
        }
        tracing::info!(
            app = %self.key.app,
            stream = %self.key.name,
            path = %path.display(),
            "recording started"
        );
        *self
            .status
            .current_path
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(path.clone());
        *self
            .status
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.failed_at = None;
        self.current = Some(OpenFile {
            file,
            path,
            writer,
            metadata,
            metadata_at,
            base_timestamp,
            last_timestamp: base_timestamp,
        });
        Ok(())
    }

    fn append(&mut self, tag: Tag, keyframe: bool) -> Result<(), String> {
        let Some(open) = self.current.as_mut() else {
            return Ok(());
        };
        let relative = tag.timestamp.wrapping_sub(open.base_timestamp);
        // A late frame from before the file's first keyframe (audio interleaving) stays at 0.
        let timestamp = if relative > u32::MAX / 2 { 0 } else { relative };
        if keyframe {
            open.metadata
                .keyframe(f64::from(timestamp) / 1000.0, open.writer.position());
        }
        let position = open.writer.position();
        let bytes = open
            .writer
            .tag(&Tag { timestamp, ..tag })
            .map_err(|error| error.to_string())?;
        // One write per tag: a killed server leaves whole tags only.
        if let Err(error) = open.file.write_all(&bytes) {
            // Cut back to the last whole tag so the file stays valid.
            let _ = open.file.set_len(position);
            return Err(format!("cannot write {}: {error}", open.path.display()));
        }
        if keyframe {
            let _ = open.file.sync_data();
        }
        open.last_timestamp = open.last_timestamp.max(tag.timestamp);
        self.status
            .bytes_written
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn close(&mut self) {
        let Some(mut open) = self.current.take() else {
            return;
        };
        let duration_ms = u64::from(open.last_timestamp.wrapping_sub(open.base_timestamp));
        open.metadata.duration(duration_ms as f64 / 1000.0);
        let (offset, len) = open.metadata_at;
        // The file is valid without the rewrite; with it, players know the duration and can seek.
        if let Ok(Some(payload)) = open.metadata.payload_of_len(len) {
            let rewrite = open
                .file
                .seek(SeekFrom::Start(offset))
                .and_then(|_| open.file.write_all(&payload))
                .and_then(|()| open.file.seek(SeekFrom::End(0)).map(drop));
            if let Err(error) = rewrite {
                tracing::warn!(path = %open.path.display(), %error, "cannot rewrite the recording's onMetaData");
            }
        }
        let _ = open.file.sync_all();
        *self
            .status
            .current_path
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.hook.record_done(&RecordDone {
            key: self.key.clone(),
            path: open.path,
            bytes: open.writer.position(),
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
