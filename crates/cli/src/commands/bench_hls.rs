//! The HLS viewers of `rtmpx bench --hls ADDR`: an LL-HLS client as hls.js in low-latency mode behaves
//! (blocking playlist reloads for the next part, then the part), or with `--hls-plain` a classic HLS
//! client (the plain playlist polled, whole segments fetched), over one HTTP/1.1 keep-alive connection
//! each. Bytes and samples are counted; each sample's publication (the publisher's `SendTimes`) is
//! found from its decode time in the fragment (`tfdt` + `trun` durations of each `traf`, timescale
//! 1000: rtmpx keeps RTMP timestamps as decode times) or in the MPEG-TS PES headers (nginx-rtmp writes
//! the RTMP timestamp x 90 plus its fixed 700 ms delay), and timed against the arrival of the part or
//! segment holding it.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use rtmp_hls::mp4::{AUDIO_TRACK, VIDEO_TRACK};

use super::bench::{PlayerStats, SendTimes, SteadyFrom};
use super::bench_http_flv::Dechunk;

/// The longest response head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// How much room a read gets.
const READ_SIZE: usize = 16 * 1024;
/// The largest body accepted (a segment of a high-rate stream fits many times over).
const MAX_BODY: usize = 64 * 1024 * 1024;
/// The PCR delay nginx-rtmp adds to every PTS and DTS (`NGX_RTMP_HLS_DELAY`, 90 kHz ticks).
const NGINX_HLS_DELAY: u64 = 63_000;
/// How long a viewer waits before asking again for a playlist not there yet.
const PLAYLIST_RETRY: Duration = Duration::from_millis(250);
/// A viewer of parts that gets none for this long counts a stall (a viewer of segments: twice the target
/// duration).
const PART_STALL: Duration = Duration::from_secs(1);
/// An FLV/RTMP message type: audio, video.
const AUDIO: u8 = 8;
const VIDEO: u8 = 9;

/// How a viewer follows the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HlsMode {
    /// Blocking playlist reloads and parts (LL-HLS).
    LowLatency,
    /// The plain playlist polled, whole segments fetched.
    Plain,
}

/// One HTTP/1.1 keep-alive connection, reopened when the server closes it.
struct Connection {
    address: String,
    socket: Option<TcpStream>,
    /// Bytes read past the last response.
    pending: Vec<u8>,
}

struct Response {
    status: u16,
    body: Vec<u8>,
}

impl Connection {
    fn new(address: &str) -> Self {
        Self {
            address: address.to_owned(),
            socket: None,
            pending: Vec::new(),
        }
    }

    async fn get(&mut self, path: &str) -> Result<Response, String> {
        let fresh = self.socket.is_none();
        match self.try_get(path).await {
            Ok(response) => Ok(response),
            // A kept-alive connection the server closed meanwhile: once more on a new one.
            Err(_) if !fresh => {
                self.socket = None;
                self.try_get(path).await
            }
            Err(error) => Err(error),
        }
    }

    async fn try_get(&mut self, path: &str) -> Result<Response, String> {
        if self.socket.is_none() {
            let socket = TcpStream::connect(&self.address)
                .await
                .map_err(|e| format!("{}: {e}", self.address))?;
            let _ = socket.set_nodelay(true);
            self.socket = Some(socket);
            self.pending.clear();
        }
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: rtmpx-bench\r\nAccept: */*\r\n\r\n",
            self.address
        );
        let result = self.exchange(request.as_bytes()).await;
        if result.is_err() {
            self.socket = None;
        }
        result
    }

    async fn exchange(&mut self, request: &[u8]) -> Result<Response, String> {
        let socket = self.socket.as_mut().ok_or("not connected")?;
        socket.write_all(request).await.map_err(|e| e.to_string())?;
        let mut head = std::mem::take(&mut self.pending);
        let body_start = loop {
            // A chunked body's last CRLF may be left over from the previous answer.
            while head.starts_with(b"\r\n") {
                head.drain(..2);
            }
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            if head.len() > MAX_HEAD {
                return Err("a response head over 16 KiB".into());
            }
            head.reserve(READ_SIZE);
            let n = socket
                .read_buf(&mut head)
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the server closed the connection".into());
            }
        };
        let text = String::from_utf8_lossy(&head[..body_start]).to_ascii_lowercase();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("a response without a status")?;
        let header = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name))
                .map(|v| v.trim().to_owned())
        };
        let close = header("connection:").is_some_and(|v| v == "close");
        let mut body = Vec::new();
        if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
            let mut dechunk = Dechunk::new(true);
            let mut rest = head.split_off(body_start);
            loop {
                let used = dechunk.push_until_done(&rest, &mut body)?;
                if dechunk.is_done() {
                    self.pending = rest.split_off(used);
                    break;
                }
                if body.len() > MAX_BODY {
                    return Err("a body over 64 MiB".into());
                }
                rest.clear();
                rest.reserve(READ_SIZE);
                let n = socket
                    .read_buf(&mut rest)
                    .await
                    .map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("the server closed within a body".into());
                }
            }
        } else if let Some(length) = header("content-length:") {
            let length: usize = length.parse().map_err(|_| "a bad content-length")?;
            if length > MAX_BODY {
                return Err("a body over 64 MiB".into());
            }
            body = head.split_off(body_start);
            body.reserve(length.saturating_sub(body.len()));
            while body.len() < length {
                let n = socket
                    .read_buf(&mut body)
                    .await
                    .map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("the server closed within a body".into());
                }
            }
            self.pending = body.split_off(length);
        } else {
            // No length: the body runs to the end of the connection.
            body = head.split_off(body_start);
            loop {
                body.reserve(READ_SIZE);
                let n = socket
                    .read_buf(&mut body)
                    .await
                    .map_err(|e| e.to_string())?;
                if n == 0 || body.len() > MAX_BODY {
                    break;
                }
            }
            self.socket = None;
        }
        if close {
            self.socket = None;
        }
        Ok(Response { status, body })
    }
}

/// What a viewer needs of a media playlist.
#[derive(Debug, Default, PartialEq, Eq)]
struct Playlist {
    target_duration_s: u64,
    media_sequence: u64,
    /// The init segment (`EXT-X-MAP`).
    map: Option<String>,
    /// Parts listed, with their (media sequence number, part index) from the file name.
    parts: Vec<((u64, u64), String)>,
    /// The preload hint's part.
    hint: Option<((u64, u64), String)>,
    /// Complete segments with their media sequence numbers.
    segments: Vec<(u64, String)>,
}

/// The `URI="..."` attribute of a tag's attribute list.
fn uri_attribute(attributes: &str) -> Option<String> {
    let start = attributes.find("URI=\"")? + 5;
    let end = attributes[start..].find('"')?;
    Some(attributes[start..start + end].to_owned())
}

/// (segment, part) of a part named `{run}-part{M}.{P}.m4s`.
fn part_number(uri: &str) -> Option<(u64, u64)> {
    let name = uri.rsplit('/').next()?;
    let numbers = name.rsplit_once("-part")?.1.strip_suffix(".m4s")?;
    let (msn, part) = numbers.split_once('.')?;
    Some((msn.parse().ok()?, part.parse().ok()?))
}

fn parse_playlist(text: &str) -> Playlist {
    let mut playlist = Playlist::default();
    let mut next_msn = None;
    let mut in_segment = false;
    for line in text.lines().map(str::trim) {
        if let Some(value) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            playlist.target_duration_s = value.parse().unwrap_or(0);
        } else if let Some(value) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            playlist.media_sequence = value.parse().unwrap_or(0);
        } else if let Some(attributes) = line.strip_prefix("#EXT-X-MAP:") {
            playlist.map = uri_attribute(attributes);
        } else if let Some(attributes) = line.strip_prefix("#EXT-X-PART:") {
            if let Some(uri) = uri_attribute(attributes) {
                if let Some(number) = part_number(&uri) {
                    playlist.parts.push((number, uri));
                }
            }
        } else if let Some(attributes) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            if let Some(uri) = uri_attribute(attributes) {
                playlist.hint = part_number(&uri).map(|number| (number, uri));
            }
        } else if line.starts_with("#EXTINF:") {
            in_segment = true;
        } else if !line.is_empty() && !line.starts_with('#') && in_segment {
            let msn = next_msn.unwrap_or(playlist.media_sequence);
            playlist.segments.push((msn, line.to_owned()));
            next_msn = Some(msn + 1);
            in_segment = false;
        }
    }
    playlist
}

/// Reads a big-endian integer of `N` bytes at `at`.
fn be<const N: usize>(data: &[u8], at: usize) -> Option<u64> {
    let bytes = data.get(at..at.checked_add(N)?)?;
    Some(bytes.iter().fold(0u64, |v, &b| v << 8 | u64::from(b)))
}

/// The boxes in `data`: (type, contents).
fn boxes(mut data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        let size = usize::try_from(be::<4>(data, 0)?).ok()?;
        let kind: [u8; 4] = data.get(4..8)?.try_into().ok()?;
        let (header, size) = if size == 1 {
            (16, usize::try_from(be::<8>(data, 8)?).ok()?)
        } else if size == 0 {
            (8, data.len())
        } else {
            (8, size)
        };
        let contents = data.get(header..size)?;
        data = &data[size..];
        Some((kind, contents))
    })
}

/// The (message type, RTMP timestamp) of every sample of rtmpx's fragments in `data` (`moof` boxes
/// with `traf`s of the video and audio tracks, timescale 1000).
fn fmp4_samples(data: &[u8]) -> Vec<(u8, u32)> {
    let mut samples = Vec::new();
    for (_, moof) in boxes(data).filter(|(kind, _)| kind == b"moof") {
        for (_, traf) in boxes(moof).filter(|(kind, _)| kind == b"traf") {
            traf_samples(traf, &mut samples);
        }
    }
    samples
}

fn traf_samples(traf: &[u8], samples: &mut Vec<(u8, u32)>) -> Option<()> {
    let (mut track, mut decode_time) = (None, None);
    for (kind, body) in boxes(traf) {
        match &kind {
            b"tfhd" => track = be::<4>(body, 4),
            b"tfdt" => {
                decode_time = if body.first() == Some(&1) {
                    be::<8>(body, 4)
                } else {
                    be::<4>(body, 4)
                }
            }
            b"trun" => {
                let message_type = match u32::try_from(track?).ok()? {
                    VIDEO_TRACK => VIDEO,
                    AUDIO_TRACK => AUDIO,
                    _ => return None,
                };
                let flags = be::<3>(body, 1)?;
                let count = be::<4>(body, 4)?;
                let mut at = 8 + if flags & 0x1 != 0 { 4 } else { 0 };
                at += if flags & 0x4 != 0 { 4 } else { 0 };
                let per_sample = [0x100, 0x200, 0x400, 0x800]
                    .iter()
                    .filter(|&&f| flags & f != 0)
                    .count()
                    * 4;
                let mut time = decode_time?;
                for _ in 0..count.min(body.len() as u64) {
                    samples.push((message_type, time as u32));
                    if flags & 0x100 != 0 {
                        time += be::<4>(body, at)?;
                    }
                    at += per_sample;
                }
            }
            _ => {}
        }
    }
    Some(())
}

/// The (message type, RTMP timestamp) of each PES packet start in MPEG-TS `data` (nginx-rtmp's: the
/// decode time, else the presentation time, less its 700 ms delay).
fn ts_samples(data: &[u8]) -> Vec<(u8, u32)> {
    let mut samples = Vec::new();
    for packet in data.chunks_exact(188) {
        if packet[0] != 0x47 || packet[1] & 0x40 == 0 {
            continue;
        }
        let adaptation = (packet[3] >> 4) & 0x3;
        let mut at = 4;
        if adaptation & 0x2 != 0 {
            at += 1 + usize::from(packet[4]);
        }
        if adaptation & 0x1 == 0 {
            continue;
        }
        let Some(pes) = packet.get(at..) else {
            continue;
        };
        if pes.len() < 14 || pes[..3] != [0, 0, 1] {
            continue;
        }
        let message_type = match pes[3] {
            0xE0..=0xEF => VIDEO,
            0xC0..=0xDF => AUDIO,
            _ => continue,
        };
        let timestamp = |at: usize| -> Option<u64> {
            let b = pes.get(at..at + 5)?;
            Some(
                u64::from(b[0] >> 1 & 0x7) << 30
                    | u64::from(b[1]) << 22
                    | u64::from(b[2] >> 1) << 15
                    | u64::from(b[3]) << 7
                    | u64::from(b[4] >> 1),
            )
        };
        let time = match pes[7] >> 6 {
            0b11 => timestamp(14),
            0b10 => timestamp(9),
            _ => None,
        };
        if let Some(time) = time {
            let ms = time.saturating_sub(NGINX_HLS_DELAY) / 90;
            samples.push((message_type, ms as u32));
        }
    }
    samples
}

/// Watches the stream's HLS at `http://ADDRESS{playlist}` until `until`, counting and timing its samples.
pub(super) async fn run_viewer(
    address: String,
    playlist: String,
    mode: HlsMode,
    sent: SendTimes,
    steady: SteadyFrom,
    until: Instant,
) -> PlayerStats {
    let mut viewer = Viewer {
        connection: Connection::new(&address),
        base: playlist
            .rsplit_once('/')
            .map_or("/".into(), |(dir, _)| format!("{dir}/")),
        playlist,
        sent,
        steady,
        until,
        joined: Instant::now(),
        last_arrival: Instant::now(),
        stall_after: PART_STALL,
        map: None,
        stats: PlayerStats::default(),
    };
    let result = match mode {
        HlsMode::LowLatency => viewer.follow_parts().await,
        HlsMode::Plain => viewer.follow_segments().await,
    };
    if let Err(error) = result {
        viewer.stats.error = Some(error);
    }
    viewer.stats
}

struct Viewer {
    connection: Connection,
    playlist: String,
    /// The playlist's directory, for its relative URIs.
    base: String,
    sent: SendTimes,
    steady: SteadyFrom,
    until: Instant,
    joined: Instant,
    last_arrival: Instant,
    /// A longer gap between two arrivals is a stall.
    stall_after: Duration,
    /// The init segment fetched last.
    map: Option<String>,
    stats: PlayerStats,
}

/// Why a viewer's loop ended without an error.
struct TimeUp;

impl Viewer {
    /// A GET that gives up at `until` (Ok(None)).
    async fn get(&mut self, path: &str) -> Result<Option<Response>, String> {
        let remaining = self.until.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(None);
        }
        match tokio::time::timeout(remaining, self.connection.get(path)).await {
            Err(_) => Ok(None),
            Ok(result) => result.map(Some),
        }
    }

    fn resolve(&self, uri: &str) -> String {
        if uri.starts_with('/') {
            uri.to_owned()
        } else {
            format!("{}{uri}", self.base)
        }
    }

    /// The playlist at `query`; Err(TimeUp) in an Ok when the time is up.
    async fn load_playlist(&mut self, query: &str) -> Result<Result<Playlist, TimeUp>, String> {
        let path = format!("{}{query}", self.playlist);
        let response = loop {
            let Some(response) = self.get(&path).await? else {
                return Ok(Err(TimeUp));
            };
            // A server that writes its playlist once the first segment is complete (nginx-rtmp)
            // answers 404 until then: a player tries again.
            if response.status != 404 || self.stats.playing {
                break response;
            }
            tokio::time::sleep(PLAYLIST_RETRY).await;
        };
        match response.status {
            200 => {}
            // The blocking reload waited its longest: ask again.
            503 if !query.is_empty() => return Ok(Ok(Playlist::default())),
            status => return Err(format!("{path}: status {status}")),
        }
        self.stats.playing = true;
        let playlist = parse_playlist(&String::from_utf8_lossy(&response.body));
        if let Some(map) = playlist
            .map
            .clone()
            .filter(|m| Some(m) != self.map.as_ref())
        {
            let path = self.resolve(&map);
            let Some(response) = self.get(&path).await? else {
                return Ok(Err(TimeUp));
            };
            if response.status != 200 {
                return Err(format!("{path}: status {}", response.status));
            }
            self.stats.bytes += response.body.len() as u64;
            self.map = Some(map);
        }
        Ok(Ok(playlist))
    }

    /// Fetches a part or segment and times its samples; false when the time is up.
    async fn fetch_media(&mut self, uri: &str) -> Result<bool, String> {
        let path = self.resolve(uri);
        let Some(response) = self.get(&path).await? else {
            return Ok(false);
        };
        if response.status != 200 {
            return Err(format!("{path}: status {}", response.status));
        }
        let now = Instant::now();
        if now.duration_since(self.last_arrival) > self.stall_after {
            self.stats.stalls += 1;
        }
        self.last_arrival = now;
        self.stats.bytes += response.body.len() as u64;
        let samples = if response.body.first() == Some(&0x47) {
            ts_samples(&response.body)
        } else {
            fmp4_samples(&response.body)
        };
        self.stats.frames += samples.len() as u64;
        let from = self
            .steady
            .get()
            .map_or(self.until, |steady| (*steady).max(self.joined));
        if let Ok(times) = self.sent.read() {
            for key in samples {
                if let Some(at) = times.get(&key).copied().filter(|at| *at >= from) {
                    self.stats
                        .latencies_us
                        .push(now.duration_since(at).as_micros().min(u128::from(u32::MAX)) as u32);
                }
            }
        }
        Ok(true)
    }

    /// LL-HLS: from the live edge, a blocking reload for the preload hint's part, then every part
    /// listed after the last one fetched.
    async fn follow_parts(&mut self) -> Result<(), String> {
        let Ok(playlist) = self.load_playlist("").await? else {
            return Ok(());
        };
        let mut last = playlist.parts.last().map(|(number, _)| *number);
        let mut next = playlist
            .hint
            .map(|(number, _)| number)
            .ok_or("the playlist has no preload hint: is it LL-HLS?")?;
        self.last_arrival = Instant::now();
        loop {
            let query = format!("?_HLS_msn={}&_HLS_part={}", next.0, next.1);
            let Ok(playlist) = self.load_playlist(&query).await? else {
                return Ok(());
            };
            for (number, uri) in &playlist.parts {
                if last.is_some_and(|last| *number <= last) {
                    continue;
                }
                if !self.fetch_media(uri).await? {
                    return Ok(());
                }
                last = Some(*number);
            }
            if let Some((number, _)) = playlist.hint {
                next = number;
            }
        }
    }

    /// Classic HLS: the playlist polled every half target duration, each new segment fetched.
    async fn follow_segments(&mut self) -> Result<(), String> {
        let mut last: Option<u64> = None;
        loop {
            let polled = Instant::now();
            let Ok(playlist) = self.load_playlist("").await? else {
                return Ok(());
            };
            self.stall_after = Duration::from_secs(2 * playlist.target_duration_s).max(PART_STALL);
            if last.is_none() {
                // Start at the live edge: the newest segment.
                last = playlist
                    .segments
                    .last()
                    .map(|(msn, _)| msn.saturating_sub(1));
                self.last_arrival = Instant::now();
            }
            for (msn, uri) in &playlist.segments {
                if last.is_some_and(|last| *msn <= last) {
                    continue;
                }
                if !self.fetch_media(uri).await? {
                    return Ok(());
                }
                last = Some(*msn);
            }
            let interval = Duration::from_millis(playlist.target_duration_s.max(1) * 500);
            let wake = (polled + interval).min(self.until);
            if wake <= Instant::now() && Instant::now() >= self.until {
                return Ok(());
            }
            tokio::time::sleep_until(wake.into()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_latency_playlist_gives_its_parts_hint_and_segments() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-MAP:URI=\"r-init.mp4\"\n\
                    #EXTINF:2.000,\nr-seg7.m4s\n#EXT-X-PART:DURATION=0.333,URI=\"r-part8.0.m4s\",INDEPENDENT=YES\n\
                    #EXT-X-PART:DURATION=0.333,URI=\"r-part8.1.m4s\"\n\
                    #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"r-part8.2.m4s\"\n";
        let playlist = parse_playlist(text);
        assert_eq!(playlist.target_duration_s, 2);
        assert_eq!(playlist.map.as_deref(), Some("r-init.mp4"));
        assert_eq!(playlist.segments, vec![(7, "r-seg7.m4s".to_owned())]);
        assert_eq!(playlist.parts.len(), 2);
        assert_eq!(playlist.parts[1].0, (8, 1));
        assert_eq!(playlist.hint.map(|h| h.0), Some((8, 2)));
        assert_eq!(part_number("a/b-c-part12.3.m4s"), Some((12, 3)));
        assert_eq!(part_number("r-seg7.m4s"), None);
    }

    #[test]
    fn fragment_samples_take_their_times_from_tfdt_and_durations() {
        let fragment = rtmp_hls::mp4::fragment(
            1,
            &[sample(1000, 33), sample(1033, 34)],
            &[sample(990, 23)],
            (1000, 1000),
        );
        let mut samples = fmp4_samples(&fragment);
        samples.sort_unstable();
        assert_eq!(samples, vec![(AUDIO, 990), (VIDEO, 1000), (VIDEO, 1033)]);
        // Truncated input yields what is whole, never a panic.
        for cut in 0..fragment.len() {
            let _ = fmp4_samples(&fragment[..cut]);
        }
    }

    fn sample(dts: u64, duration: u32) -> rtmp_hls::mp4::Sample {
        rtmp_hls::mp4::Sample {
            dts,
            duration,
            cts: 0,
            keyframe: true,
            data: bytes::Bytes::from_static(b"frame"),
        }
    }

    #[test]
    fn pes_times_lose_nginx_rtmps_delay() {
        let mut packet = vec![0xFFu8; 188];
        packet[..4].copy_from_slice(&[0x47, 0x41, 0x00, 0x10]);
        let pts = 1500 * 90 + NGINX_HLS_DELAY;
        let pes = [
            0,
            0,
            1,
            0xE0,
            0,
            0,
            0x80,
            0x80,
            5,
            0x21 | ((pts >> 29) & 0xE) as u8,
            (pts >> 22) as u8,
            ((pts >> 14) & 0xFE) as u8 | 1,
            (pts >> 7) as u8,
            ((pts << 1) & 0xFE) as u8 | 1,
        ];
        packet[4..4 + pes.len()].copy_from_slice(&pes);
        assert_eq!(ts_samples(&packet), vec![(VIDEO, 1500)]);
    }
}
