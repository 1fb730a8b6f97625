//! Recording against real FFmpeg: what FFmpeg publishes is recorded bit-exact to FLV and to fragmented
//! MP4 with the right duration, rotated files play back to back, a recording cut by SIGKILL reads
//! without error, video-only and audio-only modes, manual recording through the API, and a full disk
//! (a small tmpfs) that leaves the stream and its players untouched.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rtmpx_interop::http::request;
use rtmpx_interop::{
    assert_contiguous_run, enabled, framemd5, run_with_timeout, scratch, wait_for, write_config,
    Fixture, Player, Publisher, RtmpxServer, Via,
};

/// A configuration recording every stream to `dir/rec/APP/NAME-N.EXT`, with `extra` keys.
fn config(dir: &Path, extra: &str) -> PathBuf {
    record_all_to(dir, &dir.join("rec/{app}/{name}-{n}.{ext}"), extra)
}

/// A configuration (in `dir`) recording every stream to `template`, with `extra` keys.
fn record_all_to(dir: &Path, template: &Path, extra: &str) -> PathBuf {
    let text = format!(
        "[app.\"*\"]\nrecord = \"all\"\nrecord_path = {:?}\n{extra}",
        template.display().to_string()
    );
    write_config(dir, &text)
}

/// An application table recording with `keys` to `dir/rec/APP/NAME-N.EXT`.
fn app(dir: &Path, name: &str, keys: &str) -> String {
    let template = dir.join("rec/{app}/{name}-{n}.{ext}");
    format!(
        "[app.{name}]\nrecord_path = {:?}\n{keys}\n",
        template.display().to_string()
    )
}

/// Whether a file has a stream of a kind (`v` or `a`).
fn has_stream(file: &Path, kind: &str) -> bool {
    let mut command = Command::new("ffprobe");
    command
        .args(["-v", "error", "-select_streams", kind])
        .args(["-show_entries", "stream=index", "-of", "csv=p=0"])
        .arg(file);
    let output = run_with_timeout(&mut command, Duration::from_secs(30));
    assert!(output.status.success(), "ffprobe {}", file.display());
    !String::from_utf8_lossy(&output.stdout).trim().is_empty()
}

/// The packets of one kind of stream (`v` or `a`) of a file, as `(size, md5)` in order; FFmpeg reading
/// the file to its end without an error.
fn packets_of(file: &Path, kind: &str) -> Vec<(usize, String)> {
    if !has_stream(file, kind) {
        return Vec::new();
    }
    let mut command = Command::new(Fixture::H264Aac.judge());
    command.args(["-loglevel", "error", "-i"]).arg(file).args([
        "-map",
        &format!("0:{kind}"),
        "-c",
        "copy",
        "-f",
        "framemd5",
        "-",
    ]);
    let output = run_with_timeout(&mut command, Duration::from_secs(60));
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "framemd5 of {}: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    rtmpx_interop::compare::parse_framemd5(&String::from_utf8_lossy(&output.stdout))
        .into_iter()
        .map(|packet| (packet.size, packet.md5))
        .collect()
}

/// The packets of `files` read one after the other, per kind.
fn concatenated(files: &[PathBuf], kind: &str) -> Vec<(usize, String)> {
    files
        .iter()
        .flat_map(|file| packets_of(file, kind))
        .collect()
}

/// ffprobe's duration of a file, in seconds.
fn duration(file: &Path) -> f64 {
    let mut command = Command::new("ffprobe");
    command
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(file);
    let output = run_with_timeout(&mut command, Duration::from_secs(30));
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("no duration for {}: {text}", file.display()))
}

/// The files `dir/NAME-0.EXT`, `NAME-1.EXT`, ... that exist.
fn numbered(dir: &Path, name: &str, ext: &str) -> Vec<PathBuf> {
    (0..)
        .map(|n| dir.join(format!("{name}-{n}.{ext}")))
        .take_while(|file| file.exists())
        .collect()
}

#[test]
fn recording_is_bit_exact_and_rotates_at_keyframes() {
    if !enabled("recording_is_bit_exact_and_rotates_at_keyframes") {
        return;
    }
    let dir = scratch("recording");
    let source_duration = duration(&Fixture::H264Aac.path());
    for (extra, files) in [("", 1), ("record_max_duration_s = 2\n", 3)] {
        let _ = std::fs::remove_dir_all(dir.path().join("rec"));
        let config = config(dir.path(), extra);
        let server = RtmpxServer::start(&["--config", config.to_str().unwrap()]);
        let mut publisher = Publisher::Ffmpeg.spawn(
            &Fixture::H264Aac.path(),
            &Via::Rtmp.url(&server, "live/rec"),
            &dir.path().join("publisher.log"),
        );
        assert!(publisher.wait(Duration::from_secs(30)).success());
        std::thread::sleep(Duration::from_secs(1));
        let mut recorded = Vec::new();
        let mut total = 0.0;
        for n in 0..files {
            let file = dir.path().join(format!("rec/live/rec-{n}.flv"));
            assert!(
                file.exists(),
                "{} missing; server log:\n{}",
                file.display(),
                server.log()
            );
            recorded.extend(framemd5(&Fixture::H264Aac.judge(), &file));
            total += duration(&file);
        }
        assert!(!dir
            .path()
            .join(format!("rec/live/rec-{files}.flv"))
            .exists());
        assert_eq!(recorded, Fixture::H264Aac.reference(), "{extra}");
        if files == 1 {
            // Within two frames (30 fps) of the source's.
            assert!(
                (total - source_duration).abs() < 0.07,
                "{total} vs {source_duration}"
            );
        }
    }
}

/// One server, four recordings at once: MP4 (bit-exact, duration), MP4 rotated by size (files back to
/// back), FLV video only and FLV audio only.
#[test]
fn mp4_and_single_track_recordings_are_bit_exact() {
    if !enabled("mp4_and_single_track_recordings_are_bit_exact") {
        return;
    }
    let dir = scratch("recording-mp4");
    let tables = [
        app(
            dir.path(),
            "mp4",
            "record = \"all\"\nrecord_format = \"mp4\"",
        ),
        app(
            dir.path(),
            "mp4rot",
            "record = \"all\"\nrecord_format = \"mp4\"\nrecord_max_bytes = 300000",
        ),
        app(dir.path(), "video", "record = \"video\""),
        app(
            dir.path(),
            "audio",
            "record = \"audio\"\nrecord_format = \"mp4\"",
        ),
    ];
    let config = dir.path().join("rtmpx.toml");
    std::fs::write(&config, tables.concat()).unwrap();
    let server = RtmpxServer::start(&["--config", config.to_str().unwrap()]);
    let fixture = Fixture::H264Aac.path();
    let mut publishers: Vec<_> = ["mp4", "mp4rot", "video", "audio"]
        .iter()
        .map(|app| {
            Publisher::Ffmpeg.spawn(
                &fixture,
                &Via::Rtmp.url(&server, &format!("{app}/rec")),
                &dir.path().join(format!("publisher-{app}.log")),
            )
        })
        .collect();
    for publisher in &mut publishers {
        assert!(publisher.wait(Duration::from_secs(40)).success());
    }
    std::thread::sleep(Duration::from_secs(1));
    let rec = dir.path().join("rec");
    let source_video = packets_of(&fixture, "v");
    let source_audio = packets_of(&fixture, "a");
    assert!(source_video.len() > 150 && source_audio.len() > 200);
    let log = server.log();

    let mp4 = numbered(&rec.join("mp4"), "rec", "mp4");
    assert_eq!(mp4.len(), 1, "log:\n{log}");
    assert_eq!(packets_of(&mp4[0], "v"), source_video);
    assert_eq!(packets_of(&mp4[0], "a"), source_audio);
    let (recorded, source) = (duration(&mp4[0]), duration(&fixture));
    assert!((recorded - source).abs() < 0.07, "{recorded} vs {source}");

    let rotated = numbered(&rec.join("mp4rot"), "rec", "mp4");
    assert!(rotated.len() >= 3, "{rotated:?}; log:\n{log}");
    assert_eq!(concatenated(&rotated, "v"), source_video);
    assert_eq!(concatenated(&rotated, "a"), source_audio);

    let video = numbered(&rec.join("video"), "rec", "flv");
    assert_eq!(video.len(), 1, "log:\n{log}");
    assert_eq!(packets_of(&video[0], "v"), source_video);
    assert!(packets_of(&video[0], "a").is_empty());

    let audio = numbered(&rec.join("audio"), "rec", "mp4");
    assert_eq!(audio.len(), 1, "log:\n{log}");
    assert_eq!(packets_of(&audio[0], "a"), source_audio);
    assert!(packets_of(&audio[0], "v").is_empty());
}

#[test]
fn a_killed_recording_reads_to_its_last_whole_tag_or_fragment() {
    if !enabled("a_killed_recording_reads_to_its_last_whole_tag_or_fragment") {
        return;
    }
    let dir = scratch("recording-kill");
    let config = config(
        dir.path(),
        &app(
            dir.path(),
            "mp4",
            "record = \"all\"\nrecord_format = \"mp4\"",
        ),
    );
    let server = RtmpxServer::start(&["--config", config.to_str().unwrap()]);
    let _publishers: Vec<_> = ["live", "mp4"]
        .iter()
        .map(|app| {
            Publisher::Ffmpeg.spawn(
                &Fixture::H264Aac.path(),
                &Via::Rtmp.url(&server, &format!("{app}/kill")),
                &dir.path().join(format!("publisher-{app}.log")),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_secs(4));
    sigkill(server.pid());
    let packets = framemd5(
        &Fixture::H264Aac.judge(),
        &dir.path().join("rec/live/kill-0.flv"),
    );
    let reference = Fixture::H264Aac.reference();
    assert!(packets.len() > 20);
    assert_eq!(packets[..], reference[..packets.len()]);

    // FFmpeg reads the MP4 to its last whole fragment without an error (packets_of asserts success).
    let mp4 = dir.path().join("rec/mp4/kill-0.mp4");
    let video = packets_of(&mp4, "v");
    let audio = packets_of(&mp4, "a");
    let fixture = Fixture::H264Aac.path();
    assert!(
        video.len() >= 30,
        "at least one whole fragment: {}",
        video.len()
    );
    assert_eq!(video[..], packets_of(&fixture, "v")[..video.len()]);
    assert_eq!(audio[..], packets_of(&fixture, "a")[..audio.len()]);
}

/// SIGKILL through the `kill` command.
fn sigkill(pid: u32) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn an_unwritable_record_path_is_logged_and_players_still_get_the_stream() {
    let dir = scratch("recording-unwritable");
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"a file where the directory should be").unwrap();
    let config = record_all_to(dir.path(), &blocker.join("{name}.flv"), "");
    rtmpx_interop::Scenario::new(
        "an_unwritable_record_path_is_logged_and_players_still_get_the_stream",
    )
    .server_args(&["--config", config.to_str().unwrap()])
    .stream(
        "live/unwritable",
        Fixture::H264Aac,
        Publisher::Ffmpeg,
        Via::Rtmp,
    )
    .play(rtmpx_interop::Player::Ffmpeg.via(Via::Rtmp))
    .server_log("recording failed")
    .run();
}

/// Asks until `path` answers `status`, within `limit`; the body.
fn until(api: SocketAddr, method: &str, path: &str, status: u16, limit: Duration) -> String {
    wait_for(
        &format!("{method} {path} answering {status}"),
        limit,
        || match request(api, method, path) {
            (got, body) if got == status => Ok(body),
            (got, body) => Err(format!("{got} {body}")),
        },
    )
}

#[test]
fn manual_recording_is_started_and_stopped_through_the_api() {
    if !enabled("manual_recording_is_started_and_stopped_through_the_api") {
        return;
    }
    let dir = scratch("recording-manual");
    let config = dir.path().join("rtmpx.toml");
    let tables = [
        app(dir.path(), "\"*\"", "record = \"manual\""),
        app(dir.path(), "off", "record = \"off\""),
    ];
    std::fs::write(&config, tables.concat()).unwrap();
    let server = RtmpxServer::start(&["--config", config.to_str().unwrap()]);
    let api = server.api_address();
    let record = "/api/v1/streams/live/manual/record";
    assert_eq!(request(api, "POST", record).0, 404, "no such stream yet");
    let mut publisher = Publisher::Ffmpeg.spawn(
        &Fixture::H264Aac.path(),
        &Via::Rtmp.url(&server, "live/manual"),
        &dir.path().join("publisher.log"),
    );
    let _off = Publisher::Ffmpeg.spawn(
        &Fixture::H264Aac.path(),
        &Via::Rtmp.url(&server, "off/manual"),
        &dir.path().join("publisher-off.log"),
    );
    let idle = until(api, "GET", record, 200, Duration::from_secs(10));
    assert!(idle.contains("\"recording\":false"), "{idle}");
    assert!(idle.contains("\"mode\":\"manual\""), "{idle}");
    std::thread::sleep(Duration::from_secs(1));
    let started = until(api, "POST", record, 201, Duration::from_secs(5));
    assert!(started.contains("\"recording\":true"), "{started}");
    assert_eq!(request(api, "POST", record).0, 409, "already recording");
    let off = until(
        api,
        "POST",
        "/api/v1/streams/off/manual/record",
        403,
        Duration::from_secs(10),
    );
    assert!(off.contains("off"), "{off}");
    std::thread::sleep(Duration::from_secs(3));
    let recording = request(api, "GET", record).1;
    assert!(recording.contains("manual-0.flv"), "{recording}");
    let (status, stopped) = request(api, "DELETE", record);
    assert_eq!(status, 200, "{stopped}");
    assert!(stopped.contains("\"recording\":false"), "{stopped}");
    assert_eq!(request(api, "DELETE", record).0, 409, "not recording");
    assert!(publisher.wait(Duration::from_secs(30)).success());
    assert_eq!(
        request(api, "GET", record).0,
        404,
        "gone with its publisher"
    );

    let file = dir.path().join("rec/live/manual-0.flv");
    assert!(file.exists(), "log:\n{}", server.log());
    assert!(!dir.path().join("rec/live/manual-1.flv").exists());
    assert!(!dir.path().join("rec/off").exists());
    // About 3 s out of the middle of the stream, one contiguous run of each track.
    let recorded = framemd5(&Fixture::H264Aac.judge(), &file);
    assert_contiguous_run(&Fixture::H264Aac.reference(), &recorded, 0.3);
}

/// A tmpfs mounted for a test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .ok()?;
        status.success().then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_logged_once_shown_in_the_api_and_players_are_unaffected() {
    if !enabled("a_full_disk_is_logged_once_shown_in_the_api_and_players_are_unaffected") {
        return;
    }
    let dir = scratch("recording-full");
    // A 512 KiB tmpfs fills about 3 s into the 1.5 Mbit/s stream. Where mounting is not permitted, the
    // first file is /dev/full instead (every write fails with ENOSPC, "No space left on device").
    let disk = dir.path().join("disk");
    let mounted = Tmpfs::mount(&disk, "512k");
    if mounted.is_none() {
        eprintln!("mount -t tmpfs not permitted: recording to /dev/full instead");
        std::fs::create_dir_all(disk.join("live")).unwrap();
        std::os::unix::fs::symlink("/dev/full", disk.join("live/full-0.flv")).unwrap();
    }
    let config = record_all_to(dir.path(), &disk.join("{app}/{name}-{n}.{ext}"), "");
    let server = RtmpxServer::start(&["--config", config.to_str().unwrap()]);
    let api = server.api_address();
    let path = "live/full";
    let mut player = Player::Ffmpeg.spawn(
        &server.url(path),
        &dir.path().join("player.flv"),
        &dir.path().join("player.log"),
    );
    server.wait_for_players(path, 1, Duration::from_secs(10));
    let mut publisher = Publisher::Ffmpeg.spawn(
        &Fixture::H264Aac.path(),
        &Via::Rtmp.url(&server, path),
        &dir.path().join("publisher.log"),
    );
    let record = "/api/v1/streams/live/full/record";
    let started = Instant::now();
    let failing = loop {
        let (status, body) = request(api, "GET", record);
        if status == 200 && body.contains("No space left on device") {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no disk-full error in the API: {status} {body}; log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        failing.contains("\"last_error\":\"cannot write"),
        "{failing}"
    );
    assert!(failing.contains("\"recording\":true"), "{failing}");
    assert!(publisher.wait(Duration::from_secs(30)).success());
    player.wait(Duration::from_secs(15));
    let log = server.log();
    let failures = log.matches("recording failed").count();
    assert_eq!(failures, 1, "one line for the episode; log:\n{log}");
    assert!(log.contains("No space left on device"), "{log}");
    // The player got the whole stream.
    let played = framemd5(&Fixture::H264Aac.judge(), &dir.path().join("player.flv"));
    assert_contiguous_run(&Fixture::H264Aac.reference(), &played, 0.95);
    // What was recorded before the disk filled plays, up to its last whole tag.
    if mounted.is_some() {
        let recorded = framemd5(&Fixture::H264Aac.judge(), &disk.join("live/full-0.flv"));
        assert!(recorded.len() > 50, "{}", recorded.len());
        assert_eq!(recorded[..], Fixture::H264Aac.reference()[..recorded.len()]);
    }
    drop(mounted);
}
