//! Video on demand against real clients: files under an application's `vod_path` played bit-exact by
//! FFmpeg over every kind of transport (HTTP-FLV included), `rtmpdump --start`, seek, pause, `getStreamLength` and a play
//! duration with the project's client, and names or files that must be refused.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rtmp_client::{Client, ClientError, ClientEvent, ConnectOptions, RtmpUrl};
use rtmpx_interop::{enabled, framemd5, scratch, Fixture, Player, RtmpxServer, Via};

/// A server whose application `vod` plays the files of `dir/media`, which holds the 6 s H.264 + AAC
/// fixture as `clip.flv`.
fn vod_server(dir: &Path) -> (RtmpxServer, PathBuf) {
    let media = dir.join("media");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::copy(Fixture::H264Aac.path(), media.join("clip.flv")).unwrap();
    let config = dir.join("rtmpx.toml");
    std::fs::write(
        &config,
        format!("[app.vod]\nvod_path = {:?}\n", media.display().to_string()),
    )
    .unwrap();
    let server = RtmpxServer::start(&["--config", config.to_str().unwrap()]);
    (server, media)
}

#[test]
fn ffmpeg_plays_a_file_bit_exact_over_every_transport() {
    if !enabled("ffmpeg_plays_a_file_bit_exact_over_every_transport") {
        return;
    }
    let dir = scratch("vod-bit-exact");
    let (server, _media) = vod_server(dir.path());
    let reference = Fixture::H264Aac.reference();
    let players = [
        (Player::Ffmpeg, Via::Rtmp),
        (Player::Ffmpeg, Via::Rtmps),
        (Player::Ffmpeg, Via::Rtmpt),
        (Player::Ffmpeg9, Via::Rtmpe),
        // `http://HOST/vod/clip.flv` and `https://` on the TLS port: the file over HTTP-FLV.
        (Player::Ffmpeg, Via::HttpFlv),
        (Player::Ffmpeg, Via::HttpsFlv),
    ];
    let started = Instant::now();
    let mut running: Vec<_> = players
        .iter()
        .enumerate()
        .map(|(n, (player, via))| {
            let out = dir.path().join(format!("played-{n}.flv"));
            let log = dir.path().join(format!("player-{n}.log"));
            let process = player.spawn(&via.url(&server, "vod/clip"), &out, &log);
            (process, out, *via)
        })
        .collect();
    for (process, out, via) in &mut running {
        assert!(
            process.wait(Duration::from_secs(60)).success(),
            "{via:?}: {}\nserver:\n{}",
            process.log(),
            server.log()
        );
        let played = framemd5(&Fixture::H264Aac.judge(), out);
        assert_eq!(
            played, reference,
            "{via:?}: the played packets differ from the file's"
        );
    }
    // Paced in real time: FFmpeg's 3 s buffer is sent at once, the rest as the clock goes.
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "a 6 s file was played in {:?}",
        started.elapsed()
    );
    let log = server.log();
    assert!(log.contains("file played to its end"));
    assert!(
        log.contains("variant=\"http-flv\"") && log.contains("cause=\"complete\""),
        "the HTTP-FLV players' close lines: {log}"
    );
}

/// The packets of each stream of a file, in order, streams sorted (FLV and MP4 number them apart).
fn per_stream(packets: &[rtmpx_interop::Packet]) -> Vec<Vec<(usize, String)>> {
    let streams = packets.iter().map(|p| p.stream + 1).max().unwrap_or(0);
    let mut all: Vec<Vec<(usize, String)>> = (0..streams)
        .map(|stream| {
            packets
                .iter()
                .filter(|p| p.stream == stream)
                .map(|p| (p.size, p.md5.clone()))
                .collect()
        })
        .collect();
    all.sort();
    all
}

#[test]
fn an_mp4_file_plays_with_the_same_packets_and_seeks() {
    if !enabled("an_mp4_file_plays_with_the_same_packets_and_seeks") {
        return;
    }
    let dir = scratch("vod-mp4");
    let (server, media) = vod_server(dir.path());
    let mp4 = media.join("movie.mp4");
    let mut command = std::process::Command::new("ffmpeg");
    command
        .args(["-loglevel", "error", "-y", "-i"])
        .arg(media.join("clip.flv"))
        .args(["-c", "copy", "-movflags", "+faststart"])
        .arg(&mp4);
    assert!(
        rtmpx_interop::run_with_timeout(&mut command, Duration::from_secs(30))
            .status
            .success()
    );
    let out = dir.path().join("played.flv");
    let mut player = Player::Ffmpeg.spawn(
        &Via::Rtmp.url(&server, "vod/mp4:movie.mp4"),
        &out,
        &dir.path().join("player.log"),
    );
    assert!(
        player.wait(Duration::from_secs(60)).success(),
        "{}\nserver:\n{}",
        player.log(),
        server.log()
    );
    let judge = Fixture::H264Aac.judge();
    assert_eq!(
        per_stream(&framemd5(&judge, &out)),
        per_stream(&framemd5(&judge, &mp4))
    );
    runtime().block_on(async {
        let mut client = connect(&server, "rtmp").await;
        let seconds = client.stream_length("mp4:movie.mp4").await.unwrap();
        assert!(
            (5.9..6.2).contains(&seconds),
            "getStreamLength answered {seconds}"
        );
        let stream = client
            .play_from("mp4:movie.mp4", 2500.0, -1.0, 60_000)
            .await
            .unwrap();
        let played = receive(&mut client, Duration::from_secs(10), |e| {
            is_status(e, "NetStream.Play.Complete")
        })
        .await;
        let first_video = played.media.iter().find(|(kind, _)| *kind == 9);
        assert_eq!(
            first_video.map(|(_, ts)| *ts),
            Some(keyframe_at_or_before(&media.join("clip.flv"), 2500)),
            "{played:?}"
        );
        client.seek(stream, 4200.0).await.unwrap();
        let restart = receive(&mut client, Duration::from_secs(2), |e| {
            matches!(e, ClientEvent::PlayStarted { .. })
        })
        .await;
        assert!(!restart.codes.is_empty());
        let after = receive(&mut client, Duration::from_secs(1), |_| false).await;
        let first_video = after.media.iter().find(|(kind, _)| *kind == 9);
        assert_eq!(
            first_video.map(|(_, ts)| *ts),
            Some(keyframe_at_or_before(&media.join("clip.flv"), 4200)),
        );

        // Cut short (the mp4 crate refuses a box running past the end of the file) and garbage: clear
        // answers, and the server goes on.
        let whole = std::fs::read(&mp4).unwrap();
        std::fs::write(media.join("cut.mp4"), &whole[..whole.len() / 2]).unwrap();
        std::fs::write(media.join("garbage.mp4"), b"not an mp4 at all").unwrap();
        for name in ["mp4:cut.mp4", "mp4:garbage.mp4"] {
            let mut client = connect(&server, "rtmp").await;
            let error = client.play_from(name, 0.0, -1.0, 0).await.unwrap_err();
            assert!(
                error.to_string().contains("NetStream.Play.Failed"),
                "{name}: {error}"
            );
        }
        let mut client = connect(&server, "rtmp").await;
        client
            .play_from("mp4:movie.mp4", 0.0, 500.0, 0)
            .await
            .unwrap();
    });
}

#[test]
fn rtmpdump_start_begins_at_the_keyframe_at_or_before_it() {
    if !enabled("rtmpdump_start_begins_at_the_keyframe_at_or_before_it") {
        return;
    }
    let dir = scratch("vod-rtmpdump-start");
    let (server, media) = vod_server(dir.path());
    let out = dir.path().join("from-5s.flv");
    // rtmpdump's --start is in seconds: it plays with start = 5000 ms.
    let mut command = std::process::Command::new("rtmpdump");
    command
        .args(["-q", "-r", &server.url("vod/clip"), "--start=5", "-o"])
        .arg(&out);
    let output = rtmpx_interop::run_with_timeout(&mut command, Duration::from_secs(30));
    assert!(
        output.status.code().is_some_and(|code| code <= 2),
        "rtmpdump: {}\nserver:\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.log()
    );
    // The first video packet received is the file's last keyframe at or before 5 s.
    let keyframes = video_keyframes(&media.join("clip.flv"));
    let expected = keyframes
        .iter()
        .rfind(|(dts, _)| *dts <= 5.0)
        .expect("a keyframe before 5 s");
    let played = video_packets(&out);
    assert_eq!(
        played.first().map(|(_, md5)| md5),
        Some(&expected.1),
        "rtmpdump --start=5 did not start at the keyframe of {} s",
        expected.0
    );
    // And it went on from there to the end: the file's video packets after it, all of them.
    let from_keyframe: Vec<_> = video_packets(&media.join("clip.flv"))
        .into_iter()
        .skip_while(|(_, md5)| *md5 != expected.1)
        .map(|(_, md5)| md5)
        .collect();
    let received: Vec<_> = played.into_iter().map(|(_, md5)| md5).collect();
    assert_eq!(received, from_keyframe);

    // The project's own player: `rtmpx play --start 3000`.
    let out = dir.path().join("from-3s.flv");
    let mut command = std::process::Command::new(rtmpx_interop::server::binary());
    command
        .args(["play", &server.url("vod/clip"), "--start", "3000", "-o"])
        .arg(&out);
    let output = rtmpx_interop::run_with_timeout(&mut command, Duration::from_secs(30));
    assert!(
        output.status.success(),
        "rtmpx play: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected = keyframes
        .iter()
        .rfind(|(dts, _)| *dts <= 3.0)
        .expect("a keyframe before 3 s");
    assert_eq!(
        video_packets(&out).first().map(|(_, md5)| md5),
        Some(&expected.1)
    );
}

/// `(dts seconds, md5)` of each video packet, read with ffprobe-style framemd5 (the file's time base).
fn video_packets(file: &Path) -> Vec<(f64, String)> {
    let mut command = std::process::Command::new("ffmpeg");
    command
        .args(["-loglevel", "error", "-i"])
        .arg(file)
        .args(["-map", "0:v", "-c", "copy", "-f", "framemd5", "-"]);
    let output = rtmpx_interop::run_with_timeout(&mut command, Duration::from_secs(30));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let dts: f64 = fields.get(1)?.parse().ok()?;
            // framemd5 writes dts in the stream's time base, 1/1000 for FLV.
            Some((dts / 1000.0, fields.get(5)?.to_string()))
        })
        .collect()
}

/// `(dts seconds, md5)` of each video keyframe of a file.
fn video_keyframes(file: &Path) -> Vec<(f64, String)> {
    let mut command = std::process::Command::new("ffprobe");
    command
        .args(["-v", "error", "-select_streams", "v", "-show_entries"])
        .args(["packet=dts_time,flags", "-of", "csv=p=0"])
        .arg(file);
    let output = rtmpx_interop::run_with_timeout(&mut command, Duration::from_secs(30));
    let flags: Vec<bool> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.contains('K'))
        .collect();
    video_packets(file)
        .into_iter()
        .zip(flags)
        .filter(|(_, keyframe)| *keyframe)
        .map(|(packet, _)| packet)
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(server: &RtmpxServer, scheme: &str) -> Client {
    let url: RtmpUrl = server.variant_url(scheme, "vod/clip").parse().unwrap();
    let options = ConnectOptions {
        insecure: true,
        ..ConnectOptions::default()
    };
    Client::connect(&url, &options).await.unwrap()
}

/// What a player got until `until` said stop (or `limit` passed): media timestamps of video and audio
/// messages, and the status codes, in order.
#[derive(Debug, Default)]
struct Received {
    media: Vec<(u8, u32)>,
    codes: Vec<String>,
}

async fn receive(
    client: &mut Client,
    limit: Duration,
    until: impl Fn(&ClientEvent) -> bool,
) -> Received {
    let mut received = Received::default();
    let _ = tokio::time::timeout(limit, async {
        loop {
            let event = match client.next_event().await {
                Ok(event) => event,
                Err(ClientError::Closed) => return,
                Err(error) => panic!("{error}"),
            };
            match &event {
                ClientEvent::Media { message, .. } if matches!(message.type_id, 8 | 9) => {
                    received.media.push((message.type_id, message.timestamp))
                }
                ClientEvent::Status { code, .. } => received.codes.push(code.clone()),
                _ => {}
            }
            if until(&event) {
                return;
            }
        }
    })
    .await;
    received
}

/// The offset of each FLV tag header of a file.
fn tag_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offset = u32::from_be_bytes(bytes[5..9].try_into().unwrap()) as usize + 4;
    let mut offsets = Vec::new();
    while offset + 11 <= bytes.len() {
        offsets.push(offset);
        let size = u32::from_be_bytes([0, bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]]);
        offset += 11 + size as usize + 4;
    }
    offsets
}

/// The timestamp of the file's last video keyframe at or before `position_ms` (its FLV tags walked).
fn keyframe_at_or_before(file: &Path, position_ms: u32) -> u32 {
    let bytes = std::fs::read(file).unwrap();
    let mut offset = u32::from_be_bytes(bytes[5..9].try_into().unwrap()) as usize + 4;
    let mut found = 0;
    while offset + 12 <= bytes.len() {
        let tag = &bytes[offset..];
        let size = u32::from_be_bytes([0, tag[1], tag[2], tag[3]]) as usize;
        let timestamp = u32::from_be_bytes([tag[7], tag[4], tag[5], tag[6]]);
        let keyframe = tag[0] == 9 && tag[11] >> 4 == 1;
        if keyframe && timestamp <= position_ms {
            found = found.max(timestamp);
        }
        offset += 11 + size + 4;
    }
    found
}

fn is_status(event: &ClientEvent, wanted: &str) -> bool {
    matches!(event, ClientEvent::Status { code, .. } if code == wanted)
}

#[test]
fn the_client_gets_the_length_seeks_pauses_and_plays_a_duration() {
    if !enabled("the_client_gets_the_length_seeks_pauses_and_plays_a_duration") {
        return;
    }
    let dir = scratch("vod-client");
    let (server, media) = vod_server(dir.path());
    runtime().block_on(async {
        // getStreamLength: the file's duration (onMetaData), and 0 for a name with no file.
        let mut client = connect(&server, "rtmp").await;
        let seconds = client.stream_length("clip").await.unwrap();
        assert!(
            (5.9..6.2).contains(&seconds),
            "getStreamLength answered {seconds}"
        );
        assert_eq!(client.stream_length("nothing").await.unwrap(), 0.0);

        // Seek: Seek.Notify, then media from the keyframe at or before the target (one per second).
        let stream = client.play_from("clip", 0.0, -1.0, 500).await.unwrap();
        let before = receive(&mut client, Duration::from_millis(800), |_| false).await;
        assert!(!before.media.is_empty(), "nothing played before the seek");
        client.seek(stream, 3500.0).await.unwrap();
        // What came before Seek.Notify was read before the seek; the new position starts at Play.Start.
        let restart = receive(&mut client, Duration::from_secs(2), |e| {
            matches!(e, ClientEvent::PlayStarted { .. })
        })
        .await;
        assert_eq!(
            restart.codes.last().map(String::as_str),
            Some("NetStream.Play.Reset")
        );
        let after = receive(&mut client, Duration::from_millis(600), |_| false).await;
        let first_video = after.media.iter().find(|(kind, _)| *kind == 9);
        assert_eq!(
            first_video.map(|(_, ts)| *ts),
            Some(keyframe_at_or_before(&media.join("clip.flv"), 3500)),
            "{after:?}"
        );

        // Pause: nothing new beyond what was in flight; unpause: playback goes on from there.
        client.pause(stream, true, 4000.0).await.unwrap();
        let in_flight = receive(&mut client, Duration::from_millis(300), |_| false).await;
        let paused = receive(&mut client, Duration::from_millis(1200), |_| false).await;
        assert!(
            paused.media.is_empty(),
            "{} messages came while paused (after {} in flight)",
            paused.media.len(),
            in_flight.media.len()
        );
        client.pause(stream, false, 4000.0).await.unwrap();
        let resumed = receive(&mut client, Duration::from_secs(10), |e| {
            is_status(e, "NetStream.Play.Complete")
        })
        .await;
        assert!(!resumed.media.is_empty());
        assert!(
            resumed.codes.iter().any(|c| c == "NetStream.Play.Complete"),
            "{:?}",
            resumed.codes
        );

        // A duration: 2 s from 1 s, in about real time with no buffer, then Play.Stop.
        let mut client = connect(&server, "rtmp").await;
        let started = Instant::now();
        client.play_from("clip", 1000.0, 2000.0, 0).await.unwrap();
        let played = receive(&mut client, Duration::from_secs(10), |e| {
            is_status(e, "NetStream.Play.Complete")
        })
        .await;
        let elapsed = started.elapsed();
        assert!(played.codes.iter().any(|c| c == "NetStream.Play.Stop"));
        let last = played.media.iter().map(|(_, ts)| *ts).max().unwrap_or(0);
        let first = played.media.iter().map(|(_, ts)| *ts).min().unwrap_or(0);
        assert_eq!(
            first,
            keyframe_at_or_before(&media.join("clip.flv"), 1000),
            "{played:?}"
        );
        assert!((2900..=3000).contains(&last), "last timestamp {last}");
        assert!(
            (Duration::from_millis(1500)..Duration::from_secs(4)).contains(&elapsed),
            "2 s played in {elapsed:?}"
        );
    });
}

#[test]
fn bad_names_and_bad_files_get_clear_answers_and_the_server_goes_on() {
    if !enabled("bad_names_and_bad_files_get_clear_answers_and_the_server_goes_on") {
        return;
    }
    let dir = scratch("vod-bad-input");
    let (server, media) = vod_server(dir.path());
    let outside = dir.path().join("outside.flv");
    std::fs::copy(media.join("clip.flv"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, media.join("link.flv")).unwrap();
    let whole = std::fs::read(media.join("clip.flv")).unwrap();
    std::fs::write(media.join("truncated.flv"), &whole[..whole.len() / 2]).unwrap();
    // Garbage over a tag boundary in the middle: a PreviousTagSize and the next tag's header.
    let mut corrupt = whole.clone();
    let boundary = tag_offsets(&whole)
        .into_iter()
        .find(|offset| *offset > whole.len() / 2)
        .unwrap();
    corrupt[boundary - 4..boundary + 11].fill(0xA5);
    std::fs::write(media.join("corrupt.flv"), &corrupt).unwrap();
    std::fs::write(media.join("text.flv"), b"not a video").unwrap();
    runtime().block_on(async {
        for name in [
            "../../etc/passwd",
            "/etc/passwd",
            "link",
            "../outside",
            "nothing",
        ] {
            let mut client = connect(&server, "rtmp").await;
            let error = client.play_from(name, 0.0, -1.0, 0).await.unwrap_err();
            assert!(
                error.to_string().contains("NetStream.Play.StreamNotFound"),
                "{name}: {error}"
            );
        }
        let mut client = connect(&server, "rtmp").await;
        let error = client.play_from("text", 0.0, -1.0, 0).await.unwrap_err();
        assert!(
            error.to_string().contains("NetStream.Play.Failed"),
            "{error}"
        );

        // A truncated file plays to its last whole tag, then ends as any file does.
        let mut client = connect(&server, "rtmp").await;
        client
            .play_from("truncated", 0.0, -1.0, 60_000)
            .await
            .unwrap();
        let played = receive(&mut client, Duration::from_secs(10), |e| {
            is_status(e, "NetStream.Play.Complete")
        })
        .await;
        assert!(played.media.len() > 50, "{}", played.media.len());
        assert!(played.codes.iter().any(|c| c == "NetStream.Play.Stop"));

        // A corrupt one plays up to the damage, then says so and ends.
        let mut client = connect(&server, "rtmp").await;
        client
            .play_from("corrupt", 0.0, -1.0, 60_000)
            .await
            .unwrap();
        let played = receive(&mut client, Duration::from_secs(10), |e| {
            is_status(e, "NetStream.Play.Complete")
        })
        .await;
        assert!(
            played.codes.iter().any(|c| c == "NetStream.Failed"),
            "{:?}",
            played.codes
        );
        assert!(played.codes.iter().any(|c| c == "NetStream.Play.Stop"));

        // The server is fine: the good file still plays.
        let mut client = connect(&server, "rtmp").await;
        client.play_from("clip", 0.0, -1.0, 60_000).await.unwrap();
        let played = receive(&mut client, Duration::from_secs(10), |e| {
            is_status(e, "NetStream.Play.Complete")
        })
        .await;
        assert!(played.media.len() > 300, "{}", played.media.len());
    });
    let log = server.log();
    for expected in [
        "no such file",
        "resolves outside",
        "path separator",
        "file playback failed",
    ] {
        assert!(log.contains(expected), "no {expected:?} in the log:\n{log}");
    }
}

#[test]
fn a_file_growing_while_it_plays_is_played_as_far_as_it_is_written() {
    if !enabled("a_file_growing_while_it_plays_is_played_as_far_as_it_is_written") {
        return;
    }
    let dir = scratch("vod-growing");
    let (server, media) = vod_server(dir.path());
    let whole = std::fs::read(media.join("clip.flv")).unwrap();
    let growing = media.join("growing.flv");
    let first_part = whole.len() / 3;
    std::fs::write(&growing, &whole[..first_part]).unwrap();
    runtime().block_on(async {
        let mut client = connect(&server, "rtmp").await;
        client.play_from("growing", 0.0, -1.0, 0).await.unwrap();
        // The rest is appended while the first third plays in real time (about 2 s).
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&growing)
            .unwrap();
        file.write_all(&whole[first_part..]).unwrap();
        let played = receive(&mut client, Duration::from_secs(15), |e| {
            is_status(e, "NetStream.Play.Complete")
        })
        .await;
        let last = played.media.iter().map(|(_, ts)| *ts).max().unwrap_or(0);
        assert!(last > 5000, "played to {last} ms only");
        assert!(played.codes.iter().any(|c| c == "NetStream.Play.Stop"));
    });
}
