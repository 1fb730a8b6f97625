//! The HTTP-FLV player of `rtmpx bench --http-flv ADDR`: `GET /APP/STREAM.flv` over HTTP/1.1 as browsers
//! send it, the chunked body taken apart, the FLV tags read with `rtmp-flv`, and each media tag counted
//! and timed as the RTMP player counts and times its messages.

use std::time::{Duration, Instant};

use rtmp_flv::{TagReader, TAG_AUDIO, TAG_VIDEO};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::bench::{PlayerStats, SendTimes, SteadyFrom};

/// The longest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Takes a chunked body apart (`Transfer-Encoding: chunked`), or passes a plain one through.
#[derive(Debug)]
pub(super) struct Dechunk {
    chunked: bool,
    state: ChunkState,
    line: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk-size line.
    Size,
    /// This many data bytes of the chunk are left.
    Data(usize),
    /// This many bytes of the CRLF after the data are left.
    Crlf(usize),
    /// The last chunk was read.
    Done,
}

impl Dechunk {
    pub(super) fn new(chunked: bool) -> Self {
        Self {
            chunked,
            state: ChunkState::Size,
            line: Vec::new(),
        }
    }

    /// Appends the body bytes in `input` to `out`.
    fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        self.push_until_done(input, out).map(|_| ())
    }

    /// Whether the last chunk was read.
    pub(super) fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Appends the body bytes in `input` to `out`; how many bytes of `input` belong to the body (the
    /// rest, after the last chunk, to what follows on the connection).
    pub(super) fn push_until_done(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<usize, String> {
        let total = input.len();
        if !self.chunked {
            out.extend_from_slice(input);
            return Ok(total);
        }
        while !input.is_empty() {
            match self.state {
                ChunkState::Size => {
                    let Some(end) = input.iter().position(|&b| b == b'\n') else {
                        self.line.extend_from_slice(input);
                        if self.line.len() > 1024 {
                            return Err("a chunk-size line over 1 KiB".into());
                        }
                        return Ok(total);
                    };
                    self.line.extend_from_slice(&input[..end]);
                    input = &input[end + 1..];
                    let text = String::from_utf8_lossy(&self.line);
                    let digits = text.split(';').next().unwrap_or_default().trim();
                    let size = usize::from_str_radix(digits, 16)
                        .map_err(|_| format!("a bad chunk size {digits:?}"))?;
                    self.line.clear();
                    self.state = if size == 0 {
                        ChunkState::Done
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    let take = left.min(input.len());
                    out.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    self.state = match left - take {
                        0 => ChunkState::Crlf(2),
                        left => ChunkState::Data(left),
                    };
                }
                ChunkState::Crlf(left) => {
                    let take = left.min(input.len());
                    input = &input[take..];
                    self.state = match left - take {
                        0 => ChunkState::Size,
                        left => ChunkState::Crlf(left),
                    };
                }
                ChunkState::Done => break,
            }
        }
        Ok(total - input.len())
    }
}

/// Plays `http://ADDRESS{path}` until `until`, counting and timing its media tags.
pub(super) async fn run_player(
    address: String,
    path: String,
    sent: SendTimes,
    steady: SteadyFrom,
    until: Instant,
) -> PlayerStats {
    let mut stats = PlayerStats::default();
    if let Err(error) = play(&address, &path, &sent, &steady, until, &mut stats).await {
        stats.error = Some(error);
    }
    stats
}

async fn play(
    address: &str,
    path: &str,
    sent: &SendTimes,
    steady: &SteadyFrom,
    until: Instant,
    stats: &mut PlayerStats,
) -> Result<(), String> {
    let mut socket = TcpStream::connect(address)
        .await
        .map_err(|e| format!("{address}: {e}"))?;
    let _ = socket.set_nodelay(true);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: rtmpx-bench\r\nAccept: */*\r\n\r\n"
    );
    socket
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut head = Vec::new();
    let body_start = loop {
        let n = socket.read(&mut buffer).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server closed before answering".into());
        }
        head.extend_from_slice(&buffer[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if head.len() > MAX_HEAD {
            return Err("a response head over 16 KiB".into());
        }
    };
    let text = String::from_utf8_lossy(&head[..body_start]).to_ascii_lowercase();
    let status = text.split(' ').nth(1).unwrap_or_default().to_owned();
    if status != "200" {
        let line = text.lines().next().unwrap_or_default().to_owned();
        return Err(format!("{path}: {line}"));
    }
    stats.playing = true;
    let mut dechunk = Dechunk::new(text.contains("transfer-encoding: chunked"));
    let mut reader = TagReader::default();
    let mut body = Vec::new();
    dechunk.push(&head[body_start..], &mut body)?;
    let joined = Instant::now();
    let mut last_frame = joined;
    loop {
        reader.push(&body);
        body.clear();
        while let Some(tag) = reader.next_tag().map_err(|e| e.to_string())? {
            if tag.tag_type != TAG_AUDIO && tag.tag_type != TAG_VIDEO {
                continue;
            }
            let now = Instant::now();
            if now.duration_since(last_frame) > Duration::from_secs(1) {
                stats.stalls += 1;
            }
            last_frame = now;
            stats.bytes += tag.payload.len() as u64;
            stats.frames += 1;
            let published = sent
                .read()
                .ok()
                .and_then(|times| times.get(&(tag.tag_type, tag.timestamp)).copied());
            let from = steady.get().map_or(until, |steady| (*steady).max(joined));
            if let Some(at) = published.filter(|at| *at >= from) {
                stats
                    .latencies_us
                    .push(now.duration_since(at).as_micros().min(u128::from(u32::MAX)) as u32);
            }
        }
        let remaining = until.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(());
        }
        match tokio::time::timeout(remaining, socket.read(&mut buffer)).await {
            Err(_) => return Ok(()),
            Ok(Err(error)) => return Err(error.to_string()),
            Ok(Ok(0)) => return Err("the server ended the stream".into()),
            Ok(Ok(n)) => dechunk.push(&buffer[..n], &mut body)?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_body_comes_out_whole_however_it_is_split() {
        let wire = b"5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n";
        for split in 1..wire.len() {
            let mut dechunk = Dechunk::new(true);
            let mut out = Vec::new();
            for piece in wire.chunks(split) {
                dechunk.push(piece, &mut out).unwrap();
            }
            assert_eq!(out, b"hello world", "split every {split}");
        }
        assert!(Dechunk::new(true).push(b"zz\r\n", &mut Vec::new()).is_err());
    }
}
