//! The reader thread against files written with `rtmp-flv`: start positions, durations, seeks, and files
//! that are cut short, corrupt or out of bounds. A buffer far longer than the files keeps the pacing
//! clock from waiting, so the tests do not depend on time.

use std::path::Path;

use bytes::Bytes;
use rtmp_flv::{FlvHeader, MetadataBuilder, Tag, TagWriter, TAG_AUDIO, TAG_VIDEO};

use super::path::PathRefusal;
use super::{Playback, Request, VodEvent};

const NO_WAIT: u32 = u32::MAX;

/// 4 s of fake media: metadata (duration 4 s), sequence headers, a video keyframe every second and
/// inter frames every 100 ms between, audio every 100 ms.
fn media_file() -> Vec<u8> {
    let mut writer = TagWriter::new();
    let mut file = writer.file_header(FlvHeader::default()).to_vec();
    let mut metadata = MetadataBuilder::new();
    metadata.duration(4.0);
    let tag = |tag_type, timestamp, payload: &[u8]| Tag {
        tag_type,
        timestamp,
        payload: Bytes::copy_from_slice(payload),
    };
    let mut tags = vec![
        metadata.tag().unwrap(),
        tag(TAG_VIDEO, 0, &[0x17, 0, 0, 0, 0, 1]),
        tag(TAG_AUDIO, 0, &[0xAF, 0, 0x12, 0x10]),
    ];
    for timestamp in (0..4000).step_by(100) {
        let video = if timestamp % 1000 == 0 { 0x17 } else { 0x27 };
        tags.push(tag(TAG_VIDEO, timestamp, &[video, 1, 0, 0, 0, 9]));
        tags.push(tag(TAG_AUDIO, timestamp, &[0xAF, 1, 7]));
    }
    for tag in &tags {
        file.extend_from_slice(&writer.tag(tag).unwrap());
    }
    file
}

fn request(root: &Path, name: &str, start_ms: f64, duration_ms: f64) -> Request {
    Request {
        root: root.to_owned(),
        name: name.into(),
        start_ms,
        duration_ms,
        buffer_ms: NO_WAIT,
    }
}

/// Every event until the end (or a failure) of the current generation, or the first refusal.
fn until_end(playback: &mut Playback) -> Vec<VodEvent> {
    let mut events = Vec::new();
    while let Some(event) = playback.events.blocking_recv() {
        let last = matches!(
            event,
            VodEvent::Ended { generation, .. } | VodEvent::Failed { generation, .. }
                if generation == playback.generation()
        ) || matches!(event, VodEvent::Refused(_) | VodEvent::Unplayable(_));
        events.push(event);
        if last {
            break;
        }
    }
    events
}

/// `(type, timestamp)` of the frames among `events`.
fn frames(events: &[VodEvent]) -> Vec<(u8, u32)> {
    events
        .iter()
        .filter_map(|event| match event {
            VodEvent::Frame { message, .. } => Some((message.type_id, message.timestamp)),
            _ => None,
        })
        .collect()
}

fn media_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("clip.flv"), media_file()).unwrap();
    dir
}

#[test]
fn a_file_plays_whole_from_its_first_tag() {
    let dir = media_dir();
    let mut playback = Playback::start(request(dir.path(), "clip", -2.0, -1.0));
    let events = until_end(&mut playback);
    assert!(
        matches!(events.first(), Some(VodEvent::Opened { duration_ms }) if *duration_ms == 4000.0)
    );
    let frames = frames(&events);
    assert_eq!(frames.len(), 3 + 80);
    assert_eq!(frames[0], (18, 0));
    assert!(
        matches!(events.last(), Some(VodEvent::Ended { played_ms, .. }) if *played_ms == 3900.0)
    );
}

#[test]
fn a_start_restarts_at_the_keyframe_at_or_before_it_with_the_prelude_first() {
    let dir = media_dir();
    let mut playback = Playback::start(request(dir.path(), "clip", 2500.0, 1000.0));
    let frames = frames(&until_end(&mut playback));
    // Metadata and both sequence headers, stamped at the keyframe, then 2000..=3500 (the duration
    // counts from the requested start).
    assert_eq!(&frames[..3], &[(18, 2000), (9, 2000), (8, 2000)]);
    assert_eq!(frames[3], (9, 2000));
    assert_eq!(frames.last(), Some(&(8, 3500)));
}

#[test]
fn a_seek_brings_a_new_generation_from_its_keyframe() {
    let dir = media_dir();
    let mut playback = Playback::start(request(dir.path(), "clip", 0.0, -1.0));
    let first = until_end(&mut playback);
    assert!(matches!(
        first.last(),
        Some(VodEvent::Ended { generation: 0, .. })
    ));
    // After the end, a seek starts the file again from there.
    let generation = playback.seek(1700.0);
    let events = until_end(&mut playback);
    let seeked = events.iter().find_map(|event| match event {
        VodEvent::Seeked {
            generation: g,
            position_ms,
        } if *g == generation => Some(*position_ms),
        _ => None,
    });
    assert_eq!(seeked, Some(1000.0));
    let frames = frames(&events);
    assert_eq!(frames[3], (9, 1000));
    assert_eq!(frames.len(), 3 + 60);
}

#[test]
fn a_truncated_file_plays_to_its_last_whole_tag() {
    let dir = tempfile::tempdir().unwrap();
    let whole = media_file();
    std::fs::write(dir.path().join("cut.flv"), &whole[..whole.len() - 7]).unwrap();
    let mut playback = Playback::start(request(dir.path(), "cut", 0.0, -1.0));
    let events = until_end(&mut playback);
    assert_eq!(frames(&events).len(), 3 + 79);
    assert!(matches!(events.last(), Some(VodEvent::Ended { .. })));
}

#[test]
fn a_corrupt_file_fails_where_the_damage_is() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = media_file();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 40].fill(0xFF);
    std::fs::write(dir.path().join("bad.flv"), &bytes).unwrap();
    let mut playback = Playback::start(request(dir.path(), "bad", 0.0, -1.0));
    let events = until_end(&mut playback);
    assert!(
        matches!(events.last(), Some(VodEvent::Failed { reason, .. }) if reason.contains("corrupt"))
    );
    assert!(frames(&events).len() > 10);
}

#[test]
fn names_outside_and_files_that_are_not_flv_are_refused() {
    let dir = media_dir();
    std::fs::write(dir.path().join("text.flv"), b"hello").unwrap();
    std::fs::write(dir.path().join("movie.mp4"), b"").unwrap();
    for (name, refused) in [
        ("../clip", true),
        ("nothing", true),
        ("text", false),
        ("mp4:movie.mp4", false),
    ] {
        let mut playback = Playback::start(request(dir.path(), name, 0.0, -1.0));
        let events = until_end(&mut playback);
        match events.as_slice() {
            [VodEvent::Refused(PathRefusal::BadName(_) | PathRefusal::Missing(_))] => {
                assert!(refused, "{name}")
            }
            [VodEvent::Unplayable(_)] => assert!(!refused, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn stream_length_is_the_metadata_duration_or_zero() {
    let dir = media_dir();
    let length = super::stream_length(dir.path().to_owned(), "clip".into());
    assert_eq!(length.blocking_recv(), Ok(4.0));
    let length = super::stream_length(dir.path().to_owned(), "../etc/passwd".into());
    assert_eq!(length.blocking_recv(), Ok(0.0));
}
