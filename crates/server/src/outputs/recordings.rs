//! The server's table of recordable streams: every accepted publish registers here (through the router),
//! with its application's recording settings; an automatic recording starts with it, a manual one on
//! request ([`Recordings::start`], the API's `POST .../record`). The API reads each recording's state from
//! here ([`Recordings::info`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rtmp_hub::{Hub, StreamKey};
use serde::Serialize;

use crate::outputs::recorder::{
    RecordDoneHook, RecordFormat, RecordMode, RecordSettings, Recorder, RecorderStatus,
};

/// A stream's recording as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordingInfo {
    /// Whether a recorder runs for the stream now.
    pub recording: bool,
    /// The application's `record` mode.
    pub mode: RecordMode,
    /// The container.
    pub format: RecordFormat,
    /// The file being written (none between files, after a failure or when stopped).
    pub path: Option<PathBuf>,
    /// Bytes written by the last recording of this publish.
    pub bytes: u64,
    /// Frames it could not record (slow disk, failed disk, queue overrun).
    pub dropped_frames: u64,
    /// The last write error while it is failing (cleared when a file opens again).
    pub last_error: Option<String>,
}

/// Why a recording could not be started or stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordingError {
    /// No publisher for the stream.
    #[error("no such stream")]
    NoSuchStream,
    /// A recorder runs already.
    #[error("the stream is already being recorded")]
    AlreadyRecording,
    /// Nothing to stop.
    #[error("the stream is not being recorded")]
    NotRecording,
    /// The application has `record = "off"`.
    #[error("recording is off for this application")]
    Off,
}

#[derive(Debug)]
struct Entry {
    generation: u64,
    settings: RecordSettings,
    hook: Arc<dyn RecordDoneHook>,
    recorder: Option<Recorder>,
    /// The state of the last recorder of this publish, kept after it stops.
    status: Option<Arc<RecorderStatus>>,
}

impl Entry {
    fn info(&self) -> RecordingInfo {
        let status = self.status.as_deref();
        RecordingInfo {
            recording: self.recorder.is_some(),
            mode: self.settings.mode,
            format: self.settings.format,
            path: status.and_then(RecorderStatus::path),
            bytes: status.map_or(0, |s| s.bytes_written.load(Ordering::Relaxed)),
            dropped_frames: status.map_or(0, |s| s.dropped_frames.load(Ordering::Relaxed)),
            last_error: status.and_then(RecorderStatus::error),
        }
    }

    fn start(&mut self, hub: &Hub, key: &StreamKey) {
        let recorder = Recorder::start(hub, key.clone(), self.settings.clone(), self.hook.clone());
        self.status = Some(recorder.status().clone());
        self.recorder = Some(recorder);
    }
}

/// The recordable streams of one server (shared by every connection's router and the API).
#[derive(Debug)]
pub struct Recordings {
    hub: Hub,
    streams: Mutex<HashMap<StreamKey, Entry>>,
    generations: AtomicU64,
}

impl Recordings {
    /// An empty table for the streams of `hub`.
    pub fn new(hub: Hub) -> Self {
        Self {
            hub,
            streams: Mutex::new(HashMap::new()),
            generations: AtomicU64::new(0),
        }
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<StreamKey, Entry>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A publish of `key` was accepted (call right after `Hub::publish`): registers it and, when its
    /// application records automatically, starts recording. The stream stays registered, and its
    /// recording runs, until the returned guard is dropped (the publisher leaves). Needs a tokio
    /// runtime.
    pub fn published(
        self: &Arc<Self>,
        key: StreamKey,
        settings: RecordSettings,
        hook: Arc<dyn RecordDoneHook>,
    ) -> RecordingGuard {
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        let mut entry = Entry {
            generation,
            settings,
            hook,
            recorder: None,
            status: None,
        };
        if entry.settings.mode.is_automatic() {
            entry.start(&self.hub, &key);
        }
        // A take-over replaces the previous publisher's entry (its recorder stops with it).
        self.streams().insert(key.clone(), entry);
        RecordingGuard {
            recordings: self.clone(),
            key,
            generation,
        }
    }

    /// Starts recording a published stream on request (`record = "manual"`, or an automatic recording
    /// stopped through [`stop`](Self::stop)). Needs a tokio runtime.
    pub fn start(&self, key: &StreamKey) -> Result<RecordingInfo, RecordingError> {
        let mut streams = self.streams();
        let entry = streams.get_mut(key).ok_or(RecordingError::NoSuchStream)?;
        if entry.settings.mode == RecordMode::Off {
            return Err(RecordingError::Off);
        }
        if entry.recorder.is_some() {
            return Err(RecordingError::AlreadyRecording);
        }
        entry.start(&self.hub, key);
        tracing::info!(app = %key.app, stream = %key.name, "recording started on request");
        Ok(entry.info())
    }

    /// Stops a stream's recording on request; returns once what the hub delivered is written and the
    /// subscriber has ended (the writer thread then closes the file).
    pub async fn stop(&self, key: &StreamKey) -> Result<RecordingInfo, RecordingError> {
        let recorder = {
            let mut streams = self.streams();
            let entry = streams.get_mut(key).ok_or(RecordingError::NoSuchStream)?;
            entry.recorder.take().ok_or(RecordingError::NotRecording)?
        };
        tracing::info!(app = %key.app, stream = %key.name, "recording stopped on request");
        recorder.stop().await;
        self.info(key).ok_or(RecordingError::NoSuchStream)
    }

    /// A published stream's recording state (`None`: no such stream).
    pub fn info(&self, key: &StreamKey) -> Option<RecordingInfo> {
        self.streams().get(key).map(Entry::info)
    }
}

/// Keeps a published stream in [`Recordings`]; dropping it (the publisher left) stops its recording.
#[derive(Debug)]
pub struct RecordingGuard {
    recordings: Arc<Recordings>,
    key: StreamKey,
    generation: u64,
}

impl Drop for RecordingGuard {
    fn drop(&mut self) {
        let mut streams = self.recordings.streams();
        if streams
            .get(&self.key)
            .is_some_and(|entry| entry.generation == self.generation)
        {
            // The recorder, if any, stops in the background: what the hub delivered is written.
            streams.remove(&self.key);
        }
    }
}
