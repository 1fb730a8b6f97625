//! LL-HLS served over HTTP: the playlist rules, blocking reloads and preload hints, bad requests,
//! thousands of waiting requests, a publisher without keyframes, access rules and viewer counting,
//! and FFmpeg reading the served playlist back with the published payloads.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtmp_chunk::Message;
use rtmp_client::{Client, ConnectOptions, RtmpUrl};
use rtmpx::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;

const APPS: &str = r#"
[app.live]
hls = true
hls_part_ms = 200
hls_segment_ms = 1000
hls_window = 30
hls_block_ms = 600

[app.private]
hls = true
deny_play = ["127.0.0.1"]

[app.one]
hls = true
max_players_per_stream = 1
"#;

async fn start() -> Server {
    support::start(support::config(APPS), true, false).await
}

/// One HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn get(address: SocketAddr, path: &str) -> Answer {
    get_from("127.0.0.1", address, path).await
}

/// A GET from a given loopback address (a second viewer).
async fn get_from(local: &str, address: SocketAddr, path: &str) -> Answer {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(local.parse().unwrap(), 0))
        .unwrap();
    let mut socket = socket.connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut raw))
        .await
        .expect("answered")
        .unwrap();
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&raw[..at]).into_owned();
    let status = head[9..12].parse().unwrap();
    Answer {
        status,
        head,
        body: Bytes::copy_from_slice(&raw[at + 4..]),
    }
}

struct Publisher {
    client: Client,
    stream_id: u32,
}

impl Publisher {
    async fn start(address: SocketAddr, app: &str, name: &str) -> Publisher {
        let url: RtmpUrl = format!("rtmp://{address}/{app}/{name}").parse().unwrap();
        let mut client = Client::connect(&url, &ConnectOptions::default())
            .await
            .unwrap();
        let stream_id = client.publish(&url.stream).await.unwrap();
        Publisher { client, stream_id }
    }

    async fn send(&mut self, type_id: u8, timestamp: u32, payload: Bytes) {
        let message = Message {
            timestamp,
            type_id,
            stream_id: self.stream_id,
            payload,
        };
        self.client.send(self.stream_id, &message);
        self.client.flush().await.unwrap();
    }

    /// Synthetic H.264: the sequence header.
    async fn sequence_header(&mut self) {
        const AVCC: [u8; 12] = [0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe0, 0];
        self.send(9, 0, Bytes::from_static(&AVCC)).await;
    }

    /// Synthetic H.264 frames `from..to` at 25 fps (frame n at 40 n ms), a keyframe every 25 unless
    /// `keyframes` is false.
    async fn frames(&mut self, from: u32, to: u32, keyframes: bool) {
        for n in from..to {
            let key = keyframes && n % 25 == 0;
            let head = if key { 0x17 } else { 0x27 };
            let payload = vec![head, 1, 0, 0, 0, 0, 0, 0, 1, 0x65, n as u8];
            self.send(9, n * 40, Bytes::from(payload)).await;
            if n % 10 == 9 {
                // Ten times real time: a burst beyond the hub's queue would skip to a keyframe.
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        }
    }
}

/// Polls until the playlist satisfies `done` (the segmenter runs on its own task).
async fn playlist_until(address: SocketAddr, path: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = get(address, path).await;
        let text = answer.text();
        if answer.status == 200 && done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{}: {text}", answer.status);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn tag_value<'a>(playlist: &'a str, tag: &str) -> Option<&'a str> {
    playlist.lines().find_map(|l| l.strip_prefix(tag))
}

/// (msn of the last complete segment, the open segment's parts) read from a playlist.
fn edge(playlist: &str) -> (u64, usize) {
    let sequence: u64 = tag_value(playlist, "#EXT-X-MEDIA-SEQUENCE:")
        .unwrap()
        .parse()
        .unwrap();
    let complete = playlist
        .lines()
        .filter(|l| l.starts_with("#EXTINF"))
        .count() as u64;
    let mut open_parts = 0;
    for line in playlist.lines() {
        if line.starts_with("#EXTINF") {
            open_parts = 0;
        } else if line.starts_with("#EXT-X-PART:") {
            open_parts += 1;
        }
    }
    (sequence + complete - 1, open_parts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playlist_rules_blocking_reloads_and_bad_requests() {
    let _ = rtmpx::limits::raise_open_files(8192);
    let server = start().await;
    let address = server.local_addresses()[1];
    let playlist_path = "/live/cam/index.m3u8";

    assert_eq!(get(address, playlist_path).await.status, 404);
    assert_eq!(get(address, "/other/cam/index.m3u8").await.status, 404);

    let mut publisher = Publisher::start(server.local_addresses()[0], "live", "cam").await;
    publisher.sequence_header().await;
    publisher.frames(0, 100, true).await; // 4 s: segments 0..=2 complete, 3 open
    let playlist = playlist_until(address, playlist_path, |p| p.contains("seg2.m4s")).await;

    // The playlist rules.
    let answer = get(address, playlist_path).await;
    assert_eq!(
        answer.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(answer.header("cache-control"), Some("no-cache"));
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    assert_eq!(tag_value(&playlist, "#EXT-X-TARGETDURATION:"), Some("1"));
    assert_eq!(
        tag_value(&playlist, "#EXT-X-PART-INF:"),
        Some("PART-TARGET=0.200")
    );
    assert!(playlist.contains("CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600"));
    assert_eq!(tag_value(&playlist, "#EXT-X-MEDIA-SEQUENCE:"), Some("0"));
    let date = tag_value(&playlist, "#EXT-X-PROGRAM-DATE-TIME:").unwrap();
    assert!(date.len() == 24 && date.ends_with('Z'), "{date}");
    let mut previous_segment = None;
    let mut first_part_of_segment = true;
    for line in playlist.lines() {
        if let Some(part) = line.strip_prefix("#EXT-X-PART:") {
            let duration: f64 = part[9..part.find(',').unwrap()].parse().unwrap();
            assert!(duration <= 0.2 + 1e-9, "{line}");
            if first_part_of_segment {
                assert!(part.ends_with("INDEPENDENT=YES"), "{line}");
            }
            first_part_of_segment = false;
        } else if let Some(duration) = line.strip_prefix("#EXTINF:") {
            let duration: f64 = duration.trim_end_matches(',').parse().unwrap();
            assert!(duration <= 1.0 + 1e-9 && duration > 0.5, "{line}");
            first_part_of_segment = true;
        } else if let Some(segment) = line.split('-').nth(1).filter(|_| !line.starts_with('#')) {
            let msn: u64 = segment
                .trim_start_matches("seg")
                .trim_end_matches(".m4s")
                .parse()
                .unwrap();
            if let Some(previous) = previous_segment {
                assert_eq!(msn, previous + 1, "media sequence continuity");
            }
            previous_segment = Some(msn);
        }
    }
    assert_eq!(previous_segment, Some(2));

    // The files it names, with their types and cache headers.
    let uri = |prefix: &str| {
        playlist
            .lines()
            .find_map(|l| {
                let at = l.find(prefix)?;
                let uri = &l[..at + prefix.len()];
                Some(uri.rsplit(['"', ',']).next().unwrap_or(uri).to_owned())
            })
            .unwrap()
    };
    let run = uri("-init.mp4").trim_end_matches("-init.mp4").to_owned();
    let init = get(address, &format!("/live/cam/{run}-init.mp4")).await;
    assert_eq!(init.status, 200);
    assert_eq!(init.header("content-type"), Some("video/mp4"));
    assert_eq!(
        init.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(&init.body[4..8], b"ftyp");
    let segment = get(address, &format!("/live/cam/{run}-seg1.m4s")).await;
    assert_eq!(segment.status, 200);
    assert_eq!(segment.header("content-type"), Some("video/iso.segment"));
    assert_eq!(&segment.body[4..8], b"moof");
    assert_eq!(
        get(address, &format!("/live/cam/{run}-seg99.m4s"))
            .await
            .status,
        404
    );
    assert_eq!(get(address, "/live/cam/stale-seg1.m4s").await.status, 404);

    // Malformed queries: 400 at once.
    for query in [
        "_HLS_msn=x",
        "_HLS_part=1",
        "_HLS_msn=1&_HLS_msn=2",
        "_HLS_msn=-3",
    ] {
        let answer = get(address, &format!("{playlist_path}?{query}")).await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.text());
    }
    // Far in the future: 400 at once.
    let started = Instant::now();
    let (last, parts) = edge(&playlist);
    let answer = get(address, &format!("{playlist_path}?_HLS_msn={}", last + 10)).await;
    assert_eq!(answer.status, 400);
    assert!(started.elapsed() < Duration::from_millis(500));
    // Already there: at once, with a short cache life.
    let answer = get(address, &format!("{playlist_path}?_HLS_msn={last}")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("cache-control"), Some("public, max-age=2"));

    // The next part: held until it exists (within the bounded wait), then the playlist that has it.
    let next = (last + 1, parts);
    let hint = format!("/live/cam/{run}-part{}.{}.m4s", next.0, next.1);
    assert!(playlist.contains(&format!("PRELOAD-HINT:TYPE=PART,URI=\"{}", &hint[10..])));
    let blocked = tokio::spawn(async move {
        get(
            address,
            &format!(
                "/live/cam/index.m3u8?_HLS_msn={}&_HLS_part={}",
                next.0, next.1
            ),
        )
        .await
    });
    let hinted = tokio::spawn(async move { get(address, &hint).await });
    // Thousands of blocked requests at once: memory bounded, the publisher unaffected.
    let crowd: Vec<_> = (0..2000)
        .map(|_| {
            tokio::spawn(async move {
                get(
                    address,
                    &format!("/live/cam/index.m3u8?_HLS_msn={}", next.0 + 1),
                )
                .await
                .status
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!blocked.is_finished() && !hinted.is_finished());
    let sent = Instant::now();
    publisher.frames(100, 125, true).await; // the rest of segment 3 and the start of 4
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "the publisher was held up"
    );
    let answer = blocked.await.unwrap();
    assert_eq!(answer.status, 200);
    assert!(answer
        .text()
        .contains(&format!("part{}.{}.m4s", next.0, next.1)));
    let part = hinted.await.unwrap();
    assert_eq!(part.status, 200, "{}", part.text());
    assert_eq!(&part.body[4..8], b"moof");
    publisher.frames(125, 150, true).await;
    let mut answered = 0;
    for request in crowd {
        let status = request.await.unwrap();
        assert!(status == 200 || status == 503, "{status}");
        answered += usize::from(status == 200);
    }
    assert!(answered > 1000, "only {answered} of 2000 got the playlist");

    // Near future that never comes: the bounded wait (hls_block_ms), then 503.
    let playlist = get(address, playlist_path).await.text();
    let (last, _) = edge(&playlist);
    let started = Instant::now();
    let answer = get(address, &format!("{playlist_path}?_HLS_msn={}", last + 2)).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert!(started.elapsed() >= Duration::from_millis(500));

    // A viewer is counted with the players.
    let viewers: Vec<_> = server
        .clients()
        .list()
        .into_iter()
        .filter(|c| c.variant == "hls")
        .collect();
    assert_eq!(viewers.len(), 1, "{viewers:?}");
    assert_eq!(viewers[0].role, rtmpx::clients::Role::Player);
    assert_eq!(viewers[0].stream, "cam");
    assert!(viewers[0].bytes_out > 0);

    // Access rules apply to the playlist as to an RTMP play.
    let mut private = Publisher::start(server.local_addresses()[0], "private", "cam").await;
    private.sequence_header().await;
    private.frames(0, 30, true).await;
    let answer = get(address, "/private/cam/index.m3u8").await;
    assert_eq!(answer.status, 403, "{}", answer.text());
    assert!(answer.text().contains("denied"));
    // Player limits count HLS viewers (one per address and stream).
    let mut one = Publisher::start(server.local_addresses()[0], "one", "cam").await;
    one.sequence_header().await;
    one.frames(0, 30, true).await;
    playlist_until(address, "/one/cam/index.m3u8", |p| {
        p.contains("#EXT-X-PART:")
    })
    .await;
    let second = get_from("127.0.0.2", address, "/one/cam/index.m3u8").await;
    assert_eq!(second.status, 403, "{}", second.text());

    // The publisher leaves: the playlist ends.
    drop(publisher);
    let ended = playlist_until(address, playlist_path, |p| p.contains("#EXT-X-ENDLIST")).await;
    let (ended_last, _) = edge(&ended);
    // A publisher comes back: the media sequence goes on after a discontinuity, with a new init.
    let mut publisher = Publisher::start(server.local_addresses()[0], "live", "cam").await;
    publisher.sequence_header().await;
    publisher.frames(0, 60, true).await;
    let again = playlist_until(address, playlist_path, |p| {
        !p.contains("#EXT-X-ENDLIST") && p.contains("-init1.mp4") && edge(p).0 > ended_last
    })
    .await;
    assert!(again.contains("#EXT-X-DISCONTINUITY\n"), "{again}");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_without_keyframes_keeps_memory_bounded() {
    let server = start().await;
    let address = server.local_addresses()[1];
    let mut publisher = Publisher::start(server.local_addresses()[0], "live", "nokey").await;
    publisher.sequence_header().await;
    publisher.frames(0, 1, true).await;
    // 20 s without a keyframe (500 frames): segments are cut at five segment targets at most, and
    // nothing more is kept until a keyframe.
    publisher.frames(1, 500, false).await;
    let path = "/live/nokey/index.m3u8";
    let playlist = playlist_until(address, path, |p| p.contains("seg0.m4s")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let playlist_later = get(address, path).await.text();
    assert_eq!(
        playlist, playlist_later,
        "nothing is added without a keyframe"
    );
    for line in playlist.lines() {
        if let Some(duration) = line.strip_prefix("#EXTINF:") {
            let duration: f64 = duration.trim_end_matches(',').parse().unwrap();
            assert!(duration <= 5.0 + 1e-9, "{line}");
        }
    }
    assert_eq!(playlist.matches("#EXTINF").count(), 1, "{playlist}");
    // A keyframe: segmenting goes on.
    publisher.frames(500, 560, true).await;
    playlist_until(address, path, |p| p.contains("seg1.m4s")).await;
    server.shutdown(Duration::from_secs(1)).await;
}

fn ffmpeg(variable: Option<&str>) -> Option<String> {
    let program = match variable {
        Some(name) => std::env::var(name).ok()?,
        None => "ffmpeg".to_owned(),
    };
    let present = Command::new(&program).arg("-version").output().is_ok();
    if !present {
        assert!(
            std::env::var_os("RTMPX_INTEROP").is_none(),
            "{program} missing"
        );
        eprintln!("skipped: {program} not found");
        return None;
    }
    Some(program)
}

/// The FLV tags: (type, timestamp, payload).
fn flv_tags(flv: &[u8]) -> Vec<(u8, u32, Bytes)> {
    let header = u32::from_be_bytes(flv[5..9].try_into().unwrap()) as usize;
    let mut at = header + 4;
    let mut tags = Vec::new();
    while at + 11 <= flv.len() {
        let kind = flv[at] & 0x1f;
        let size = u32::from_be_bytes([0, flv[at + 1], flv[at + 2], flv[at + 3]]) as usize;
        let ts = u32::from_be_bytes([flv[at + 7], flv[at + 4], flv[at + 5], flv[at + 6]]);
        tags.push((
            kind,
            ts,
            Bytes::copy_from_slice(&flv[at + 11..at + 11 + size]),
        ));
        at += 11 + size + 4;
    }
    tags
}

/// The payload hashes FFmpeg reads from `input`, per stream index, in order.
fn packet_hashes(ffmpeg: &str, input: &str) -> Vec<(String, String)> {
    let out = Command::new(ffmpeg)
        .args([
            "-v", "error", "-i", input, "-c", "copy", "-f", "framemd5", "-",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let fields: Vec<&str> = l.split(',').map(str::trim).collect();
            (fields[0].to_owned(), fields[5].to_owned())
        })
        .collect()
}

/// Publishes an FFmpeg-made FLV (paced at four times real time) and has FFmpeg read the served
/// playlist once the stream has ended: the same payloads, in order, per stream.
async fn round_trip(ffmpeg: &str, video_codec: &[&str], name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let flv = dir.path().join("source.flv");
    let made = Command::new(ffmpeg)
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x240:rate=25:duration=4")
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=4"])
        .args(video_codec)
        .args(["-g", "25", "-c:a", "aac", "-f", "flv"])
        .arg(&flv)
        .status()
        .unwrap();
    assert!(made.success());
    let server = start().await;
    let address = server.local_addresses()[1];
    let mut publisher = Publisher::start(server.local_addresses()[0], "live", name).await;
    let started = Instant::now();
    for (kind, timestamp, payload) in flv_tags(&std::fs::read(&flv).unwrap()) {
        if kind != 8 && kind != 9 {
            continue;
        }
        let due = started + Duration::from_millis(u64::from(timestamp) / 4);
        tokio::time::sleep_until(due.into()).await;
        publisher.send(kind, timestamp, payload).await;
    }
    publisher
        .client
        .unpublish(publisher.stream_id, name)
        .await
        .unwrap();
    let path = format!("/live/{name}/index.m3u8");
    let playlist = playlist_until(address, &path, |p| p.contains("#EXT-X-ENDLIST")).await;
    assert!(playlist.matches("#EXTINF").count() >= 2, "{playlist}");
    let url = format!("http://{address}{path}");
    let (source, served) = tokio::task::spawn_blocking({
        let ffmpeg = ffmpeg.to_owned();
        let flv = flv.display().to_string();
        move || (packet_hashes(&ffmpeg, &flv), packet_hashes(&ffmpeg, &url))
    })
    .await
    .unwrap();
    for stream in ["0", "1"] {
        let pick = |packets: &[(String, String)]| -> Vec<String> {
            packets
                .iter()
                .filter(|p| p.0 == stream)
                .map(|p| p.1.clone())
                .collect()
        };
        let (a, b) = (pick(&source), pick(&served));
        assert!(!a.is_empty());
        assert_eq!(a, b, "stream {stream} payloads differ\n{playlist}");
    }
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_reads_h264_aac_from_the_served_playlist() {
    let Some(ffmpeg) = ffmpeg(None) else { return };
    round_trip(&ffmpeg, &["-c:v", "libx264", "-bf", "2"], "h264").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg9_reads_hevc_aac_from_the_served_playlist() {
    let Some(ffmpeg) = ffmpeg(Some("RTMPX_FFMPEG9")) else {
        return;
    };
    round_trip(
        &ffmpeg,
        &["-c:v", "libx265", "-x265-params", "log-level=error"],
        "hevc",
    )
    .await;
}

/// A hook server: `/allow` records the form and allows, `/deny` refuses, `/rename` answers 302 `other`.
async fn start_hook_server(received: Arc<Mutex<Vec<String>>>) -> SocketAddr {
    use axum::extract::State;
    use axum::http::{header, StatusCode};
    use axum::routing::post;
    type Received = Arc<Mutex<Vec<String>>>;
    let app = axum::Router::new()
        .route(
            "/allow",
            post(|State(r): State<Received>, body: String| async move {
                r.lock().unwrap().push(body);
                StatusCode::OK
            }),
        )
        .route("/deny", post(|| async { StatusCode::FORBIDDEN }))
        .route(
            "/rename",
            post(|| async { (StatusCode::FOUND, [(header::LOCATION, "other")]) }),
        )
        .with_state(received);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_play_decides_hls_viewers() {
    let received = Arc::new(Mutex::new(Vec::new()));
    let hooks = start_hook_server(received.clone()).await;
    let text = format!(
        r#"
[app.allowed]
hls = true
on_play = "http://{hooks}/allow"
[app.denied]
hls = true
on_play = "http://{hooks}/deny"
[app.renamed]
hls = true
on_play = "http://{hooks}/rename"
"#
    );
    let mut config: Config = toml::from_str(&text).unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    config.listen = vec![any];
    config.listen_tls = vec![];
    config.listen_http = vec![any];
    config.listen_api = vec![];
    let server = Server::start(&config).await.unwrap();
    let (rtmp, http) = (server.local_addresses()[0], server.local_addresses()[1]);
    let mut publishers = Vec::new();
    for app in ["allowed", "denied", "renamed"] {
        let mut publisher = Publisher::start(rtmp, app, "cam").await;
        publisher.sequence_header().await;
        publisher.frames(0, 30, true).await;
        publishers.push(publisher);
    }
    let allowed = playlist_until(http, "/allowed/cam/index.m3u8?token=t", |p| {
        p.contains("#EXT-X-PART:")
    })
    .await;
    assert!(allowed.contains("#EXT-X-MAP"));
    let form = received.lock().unwrap().first().cloned().unwrap();
    for field in [
        "call=play",
        "variant=hls",
        "name=cam",
        "app=allowed",
        "&token=t",
    ] {
        assert!(form.contains(field), "{field} missing in {form}");
    }
    assert!(!form.contains("clientid=0&"), "{form}");
    let denied = get(http, "/denied/cam/index.m3u8").await;
    assert_eq!(denied.status, 403, "{}", denied.text());
    let renamed = get(http, "/renamed/cam/index.m3u8").await;
    assert_eq!(renamed.status, 302);
    assert_eq!(
        renamed.header("location"),
        Some("/renamed/other/index.m3u8")
    );
    let listed = server.clients().list();
    assert_eq!(listed.iter().filter(|c| c.variant == "hls").count(), 1);
    server.shutdown(Duration::from_secs(1)).await;
}
