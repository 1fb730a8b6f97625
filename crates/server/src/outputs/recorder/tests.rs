//! The path template, the config keys, and recording a synthetic stream through a real hub to files
//! read back with the FLV reader.

use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use rtmp_amf::Amf0Value;
use rtmp_chunk::Message;
use rtmp_flv::TagReader;
use rtmp_hub::HubConfig;

use super::*;
use crate::config::AppConfig;

#[test]
fn path_template_fills_fields_and_refuses_escapes() {
    let path = render_path(
        "rec/{app}/{name}-{start}-{n}.flv",
        "live",
        "cam",
        "20261203-114500",
        2,
        "flv",
    );
    assert_eq!(
        path,
        Ok(PathBuf::from("rec/live/cam-20261203-114500-2.flv"))
    );
    for bad in ["..", ".", "", "a/b", "a\\b", "../x", "x\0"] {
        assert_eq!(
            render_path("rec/{app}/{name}.flv", "live", bad, "s", 0, "flv"),
            Err(PathError::UnsafeName(bad.to_owned())),
            "{bad:?}"
        );
        assert!(render_path("rec/{app}/{name}.flv", bad, "cam", "s", 0, "flv").is_err());
    }
    assert!(matches!(
        render_path("../{name}.flv", "live", "cam", "s", 0, "flv"),
        Err(PathError::UnsafeTemplate(_))
    ));
    // Dots inside a name are fine.
    assert!(render_path("{name}.flv", "live", "cam..1", "s", 0, "flv").is_ok());
    // Without `{n}`, later files are numbered rather than overwriting the first.
    assert_eq!(
        render_path("rec/{name}-{start}.{ext}", "live", "cam", "s", 0, "mp4"),
        Ok(PathBuf::from("rec/cam-s.mp4"))
    );
    assert_eq!(
        render_path("rec/{name}-{start}.{ext}", "live", "cam", "s", 2, "mp4"),
        Ok(PathBuf::from("rec/cam-s-2.mp4"))
    );
}

#[test]
fn utc_stamp_is_the_civil_date() {
    let at = UNIX_EPOCH + Duration::from_secs(1_796_298_300);
    assert_eq!(utc_stamp(at), "20261203-114500");
    assert_eq!(utc_stamp(UNIX_EPOCH), "19700101-000000");
    // 2024-02-29 23:59:59
    assert_eq!(
        utc_stamp(UNIX_EPOCH + Duration::from_secs(1_709_251_199)),
        "20240229-235959"
    );
}

#[test]
fn config_keys_parse() {
    let config: AppConfig = toml::from_str(
        "record = \"all\"\nrecord_path = \"r/{name}.flv\"\nrecord_max_duration_s = 60\n",
    )
    .unwrap();
    assert_eq!(config.record, RecordMode::All);
    assert_eq!(config.record_settings().path.0, "r/{name}.flv");
    assert_eq!(config.record_settings().max_duration_s, Some(60));
    assert_eq!(AppConfig::default().record, RecordMode::Off);
    assert_eq!(
        AppConfig::default().record_path.0,
        "recordings/{app}/{name}-{start}.{ext}"
    );
    let mp4: AppConfig = toml::from_str("record_format = \"mp4\"").unwrap();
    assert_eq!(mp4.record_settings().format, RecordFormat::Mp4);
    assert!(toml::from_str::<AppConfig>("record_format = \"flv\"").is_ok());
    assert!(toml::from_str::<AppConfig>("record_format = \"avi\"").is_err());
    assert!(toml::from_str::<AppConfig>("record = \"sometimes\"").is_err());
}

/// Sends each finished file to the test.
#[derive(Debug)]
struct Collect(Mutex<std_mpsc::Sender<RecordDone>>);

impl RecordDoneHook for Collect {
    fn record_done(&self, done: &RecordDone) {
        let _ = self.0.lock().unwrap().send(done.clone());
    }
}

fn message(type_id: u8, timestamp: u32, payload: Vec<u8>) -> Message {
    Message {
        timestamp,
        type_id,
        stream_id: 1,
        payload: Bytes::from(payload),
    }
}

fn read_tags(path: &std::path::Path) -> Vec<Tag> {
    let mut reader = TagReader::default();
    reader.push(&fs::read(path).unwrap());
    let mut tags = Vec::new();
    while let Some(tag) = reader.next_tag().unwrap() {
        tags.push(tag);
    }
    reader.finish().unwrap();
    tags
}

fn record(settings: RecordSettings) -> (Vec<RecordDone>, Arc<RecorderStatus>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let t0 = Instant::now();
        let hub = Hub::new(HubConfig::default(), t0);
        let key = StreamKey::new("live", "cam");
        let (sender, done) = std_mpsc::channel();
        let publisher = hub.publish(&key, t0).unwrap();
        let recorder = Recorder::start(&hub, key, settings, Arc::new(Collect(Mutex::new(sender))));
        let status = recorder.status().clone();
        let metadata = rtmp_amf::encode_amf0_values(&[
            Amf0Value::String("@setDataFrame".into()),
            Amf0Value::String("onMetaData".into()),
            Amf0Value::ecma_array([("width", Amf0Value::Number(320.0))]),
        ])
        .unwrap();
        publisher.set_metadata(Some(&message(18, 0, metadata.to_vec())));
        // An AVC sequence header with a minimal avcC record (enough for the MP4 sample entry).
        publisher.send(
            &message(
                9,
                0,
                vec![0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe0, 0],
            ),
            t0,
        );
        publisher.send(&message(8, 0, vec![0xAF, 0, 0x12, 0x10]), t0);
        // 6 s: a keyframe each second, 25 video and ~43 audio frames a second.
        for ms in (0..6000u32).step_by(40) {
            let frame_type = if ms % 1000 == 0 { 0x17 } else { 0x27 };
            publisher.send(
                &message(9, ms, vec![frame_type, 1, 0, 0, 0, (ms % 251) as u8]),
                t0,
            );
            publisher.send(&message(8, ms + 3, vec![0xAF, 1, (ms % 253) as u8]), t0);
            tokio::task::yield_now().await;
        }
        drop(publisher);
        recorder.stop().await;
        let mut files = Vec::new();
        while let Ok(file) = done.recv_timeout(Duration::from_secs(10)) {
            files.push(file);
            if files.iter().map(|f| f.duration_ms).sum::<u64>() >= 5990 - 40 * files.len() as u64 {
                break;
            }
        }
        (files, status)
    })
}

#[test]
fn records_a_stream_to_one_file_with_duration_and_keyframe_index() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir
        .path()
        .join("{app}/{name}-{n}.flv")
        .display()
        .to_string();
    let (files, status) = record(RecordSettings {
        mode: RecordMode::All,
        path: RecordPath(template),
        ..RecordSettings::default()
    });
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(status.dropped_frames.load(Ordering::Relaxed), 0);
    let tags = read_tags(&files[0].path);
    assert_eq!(tags.len(), 1 + 2 + 150 * 2);
    let metadata = rtmp_amf::decode_amf0(&tags[0].payload).unwrap();
    assert_eq!(metadata[0].as_str(), Some("onMetaData"));
    assert_eq!(
        metadata[1].get("width").and_then(Amf0Value::as_f64),
        Some(320.0)
    );
    let duration = metadata[1]
        .get("duration")
        .and_then(Amf0Value::as_f64)
        .unwrap();
    assert!((duration - 5.963).abs() < 0.01, "{duration}");
    let Some(Amf0Value::StrictArray(positions)) = metadata[1]
        .get("keyframes")
        .and_then(|k| k.get("filepositions"))
        .cloned()
    else {
        panic!("no keyframe index");
    };
    assert_eq!(positions.len(), 6);
    let bytes = fs::read(&files[0].path).unwrap();
    for position in positions {
        let at = position.as_f64().unwrap() as usize;
        assert_eq!(bytes[at], 9);
        assert_eq!(bytes[at + 11], 0x17);
    }
    assert!(tags[1].is_sequence_header() && tags[2].is_sequence_header());
}

#[test]
fn rotates_at_keyframes_each_file_starting_with_metadata_and_headers() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("{name}-{n}.flv").display().to_string();
    let (files, _) = record(RecordSettings {
        mode: RecordMode::All,
        path: RecordPath(template),
        max_duration_s: Some(2),
        ..RecordSettings::default()
    });
    assert_eq!(files.len(), 3, "{files:?}");
    let mut media = 0;
    for file in &files {
        let tags = read_tags(&file.path);
        assert_eq!(tags[0].tag_type, TAG_SCRIPT);
        assert!(tags[1].is_sequence_header() && tags[2].is_sequence_header());
        assert!(tags[3].is_keyframe());
        assert_eq!(tags[3].timestamp, 0);
        media += tags.len() - 3;
    }
    assert_eq!(media, 300, "the files together hold every frame");
}

#[test]
fn an_unwritable_directory_is_reported_and_the_stream_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    fs::write(&blocker, b"not a directory").unwrap();
    let template = blocker.join("{name}.flv").display().to_string();
    let (files, status) = record(RecordSettings {
        mode: RecordMode::All,
        path: RecordPath(template),
        ..RecordSettings::default()
    });
    assert!(files.is_empty());
    assert!(status
        .error()
        .is_some_and(|error| error.contains("cannot create")));
}

fn settings(template: &std::path::Path, mode: RecordMode, format: RecordFormat) -> RecordSettings {
    RecordSettings {
        mode,
        path: RecordPath(template.display().to_string()),
        format,
        ..RecordSettings::default()
    }
}

/// The top-level boxes of an MP4 file.
fn top_level_boxes(mut data: &[u8]) -> Vec<String> {
    let mut kinds = Vec::new();
    while data.len() >= 8 {
        let size = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
        assert!(size >= 8 && size <= data.len(), "a whole box");
        kinds.push(String::from_utf8_lossy(&data[4..8]).into_owned());
        data = &data[size..];
    }
    assert!(data.is_empty(), "nothing after the last whole box");
    kinds
}

#[test]
fn mp4_recording_is_an_init_segment_then_a_fragment_per_gop() {
    let dir = tempfile::tempdir().unwrap();
    let (files, status) = record(settings(
        &dir.path().join("{name}-{n}.{ext}"),
        RecordMode::All,
        RecordFormat::Mp4,
    ));
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].path, dir.path().join("cam-0.mp4"));
    assert_eq!(status.dropped_frames.load(Ordering::Relaxed), 0);
    let bytes = fs::read(&files[0].path).unwrap();
    assert_eq!(files[0].bytes, bytes.len() as u64);
    let boxes = top_level_boxes(&bytes);
    assert_eq!(boxes[..2], ["ftyp", "moov"]);
    // A keyframe each second for 6 s: six GOPs, one fragment each.
    assert_eq!(
        boxes.iter().filter(|b| *b == "moof").count(),
        6,
        "{boxes:?}"
    );
    assert_eq!(boxes.iter().filter(|b| *b == "mdat").count(), 6);
    let moov = bytes.windows(4).position(|w| w == b"moov").unwrap();
    let moof = bytes.windows(4).position(|w| w == b"moof").unwrap();
    let init = &bytes[moov..moof];
    assert!(init.windows(4).any(|w| w == b"avc1") && init.windows(4).any(|w| w == b"mp4a"));
}

#[test]
fn video_and_audio_modes_keep_one_kind_of_frame() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("{name}-video.flv");
    let (files, _) = record(settings(&template, RecordMode::Video, RecordFormat::Flv));
    let tags = read_tags(&files[0].path);
    assert!(tags.iter().all(|t| t.tag_type != TAG_AUDIO));
    assert_eq!(
        tags.iter().filter(|t| t.tag_type == TAG_VIDEO).count(),
        1 + 150
    );

    let template = dir.path().join("{name}-audio.flv");
    let (files, _) = record(settings(&template, RecordMode::Audio, RecordFormat::Flv));
    let tags = read_tags(&files[0].path);
    assert!(tags.iter().all(|t| t.tag_type != TAG_VIDEO));
    assert_eq!(
        tags.iter().filter(|t| t.tag_type == TAG_AUDIO).count(),
        1 + 150
    );

    let template = dir.path().join("{name}-audio.{ext}");
    let (files, _) = record(settings(&template, RecordMode::Audio, RecordFormat::Mp4));
    let bytes = fs::read(&files[0].path).unwrap();
    let boxes = top_level_boxes(&bytes);
    assert!(
        boxes.iter().filter(|b| *b == "moof").count() >= 5,
        "{boxes:?}"
    );
    assert!(!bytes.windows(4).any(|w| w == b"avc1"));
    assert!(bytes.windows(4).any(|w| w == b"mp4a"));
}

#[test]
fn max_bytes_rotates_at_keyframes_for_both_containers() {
    for format in [RecordFormat::Flv, RecordFormat::Mp4] {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = settings(
            &dir.path().join("{name}-{n}.{ext}"),
            RecordMode::All,
            format,
        );
        // About 2 s of this stream per file (the FLV grows a tag at a time, the MP4 a GOP at a time).
        settings.max_bytes = Some(if format == RecordFormat::Flv {
            9000
        } else {
            1000
        });
        let (files, _) = record(settings);
        assert!(files.len() >= 3, "{format:?}: {files:?}");
        for (n, file) in files.iter().enumerate() {
            let name = format!("cam-{n}.{}", format.extension());
            assert_eq!(file.path, dir.path().join(name));
        }
        if format == RecordFormat::Flv {
            let media: usize = files.iter().map(|f| read_tags(&f.path).len() - 3).sum();
            assert_eq!(media, 300, "the files together hold every frame");
        } else {
            for file in &files {
                let boxes = top_level_boxes(&fs::read(&file.path).unwrap());
                assert_eq!(
                    boxes[..3],
                    ["ftyp", "moov", "moof"],
                    "each file stands alone"
                );
            }
        }
    }
}

#[test]
fn a_full_disk_is_reported_and_recording_resumes_in_a_new_file() {
    // The first file is /dev/full (every write fails with ENOSPC); the next one is a real file.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/full", dir.path().join("cam-0.flv")).unwrap();
    let (files, status) = record(settings(
        &dir.path().join("{name}-{n}.flv"),
        RecordMode::All,
        RecordFormat::Flv,
    ));
    let error = status.error();
    assert!(
        error.is_none(),
        "cleared once writing works again: {error:?}"
    );
    let resumed = files
        .iter()
        .find(|f| f.path == dir.path().join("cam-1.flv"));
    let resumed = resumed.unwrap_or_else(|| panic!("no second file: {files:?}"));
    let tags = read_tags(&resumed.path);
    assert!(tags[3].is_keyframe() && tags[3].timestamp == 0);
    // The frames of the failed stretch (about 2 s up to a keyframe) are counted as dropped.
    let dropped = status.dropped_frames.load(Ordering::Relaxed);
    assert!((90..=200).contains(&dropped), "{dropped}");
    assert!(
        tags.len() - 3 + dropped as usize >= 290,
        "{} {dropped}",
        tags.len()
    );
}

#[test]
fn the_recordings_table_starts_and_stops_manual_recordings() {
    use crate::outputs::recordings::{RecordingError, Recordings};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Instant::now();
        let hub = Hub::new(HubConfig::default(), t0);
        let recordings = Arc::new(Recordings::new(hub.clone()));
        let key = StreamKey::new("live", "cam");
        let publisher = hub.publish(&key, t0).unwrap();
        let manual = settings(
            &dir.path().join("{name}-{n}.flv"),
            RecordMode::Manual,
            RecordFormat::Flv,
        );
        let guard = recordings.published(key.clone(), manual, Arc::new(LogRecordDone));
        assert!(!recordings.info(&key).unwrap().recording);
        let missing = StreamKey::new("live", "nobody");
        assert_eq!(
            recordings.start(&missing),
            Err(RecordingError::NoSuchStream)
        );
        assert!(recordings.start(&key).unwrap().recording);
        assert_eq!(
            recordings.start(&key),
            Err(RecordingError::AlreadyRecording)
        );
        publisher.send(
            &message(
                9,
                0,
                vec![0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe0, 0],
            ),
            t0,
        );
        for ms in (0..2000u32).step_by(40) {
            let frame_type = if ms % 1000 == 0 { 0x17 } else { 0x27 };
            publisher.send(&message(9, ms, vec![frame_type, 1, 0, 0, 0, 1]), t0);
            tokio::task::yield_now().await;
        }
        let stopped = recordings.stop(&key).await.unwrap();
        assert!(!stopped.recording);
        assert_eq!(
            recordings.stop(&key).await,
            Err(RecordingError::NotRecording)
        );
        // The writer thread closes the file right after the subscriber ended.
        let file = dir.path().join("cam-0.flv");
        let started = Instant::now();
        while read_tags_lenient(&file) < 51 && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(read_tags_lenient(&file), 1 + 1 + 50);
        assert!(recordings.info(&key).unwrap().bytes > 0);
        // Started again: a new file, the first one kept.
        assert!(recordings.start(&key).unwrap().recording);
        publisher.send(&message(9, 2000, vec![0x17, 1, 0, 0, 0, 1]), t0);
        tokio::task::yield_now().await;
        recordings.stop(&key).await.unwrap();
        let second = dir.path().join("cam-1.flv");
        let started = Instant::now();
        while read_tags_lenient(&second) < 3 && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(read_tags_lenient(&second) >= 3);
        assert_eq!(read_tags_lenient(&file), 1 + 1 + 50);
        drop(guard);
        assert!(recordings.info(&key).is_none(), "gone with its publisher");

        let off = StreamKey::new("live", "off");
        let _publisher = hub.publish(&off, t0).unwrap();
        let _guard = recordings.published(
            off.clone(),
            RecordSettings::default(),
            Arc::new(LogRecordDone),
        );
        assert_eq!(recordings.start(&off), Err(RecordingError::Off));
    });
}

/// Whole tags in a file that may still be growing.
fn read_tags_lenient(path: &std::path::Path) -> usize {
    let mut reader = TagReader::default();
    reader.push(&fs::read(path).unwrap_or_default());
    let mut count = 0;
    while let Ok(Some(_)) = reader.next_tag() {
        count += 1;
    }
    count
}

#[test]
fn a_stuck_disk_drops_frames_to_keyframes_and_never_holds_the_publisher() {
    // The file is a FIFO nobody reads yet: the writer thread blocks opening it, like a stuck disk.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("cam-0.flv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = runtime.block_on(async {
        let t0 = Instant::now();
        let hub = Hub::new(HubConfig::default(), t0);
        let key = StreamKey::new("live", "cam");
        let publisher = hub.publish(&key, t0).unwrap();
        let recorder = Recorder::start(
            &hub,
            key,
            settings(
                &dir.path().join("{name}-{n}.flv"),
                RecordMode::All,
                RecordFormat::Flv,
            ),
            Arc::new(LogRecordDone),
        );
        let status = recorder.status().clone();
        publisher.send(
            &message(
                9,
                0,
                vec![0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe0, 0],
            ),
            t0,
        );
        // 40 s of video: far more frames than the writer's queue holds.
        let started = Instant::now();
        for ms in (0..40_000u32).step_by(40) {
            let frame_type = if ms % 1000 == 0 { 0x17 } else { 0x27 };
            publisher.send(&message(9, ms, vec![frame_type, 1, 0, 0, 0, 1]), t0);
            tokio::task::yield_now().await;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the publisher was held"
        );
        drop(publisher);
        recorder.stop().await;
        status
    });
    let dropped = status.dropped_frames.load(Ordering::Relaxed);
    // 1000 frames: the queue took 512 and the header, the rest were dropped to keyframes.
    assert!((400..=500).contains(&dropped), "{dropped}");
    // Unblock the writer: it writes what it queued and closes the file.
    let written = fs::read(&fifo).unwrap();
    let mut reader = TagReader::default();
    reader.push(&written);
    let mut video = 0;
    while let Some(tag) = reader.next_tag().unwrap() {
        video += usize::from(tag.tag_type == TAG_VIDEO);
    }
    assert_eq!(
        video as u64 + dropped,
        1001,
        "every frame recorded or counted"
    );
}
