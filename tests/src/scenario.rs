//! The scenario runner: an interop test declares which client publishes which fixture over which URL
//! scheme, which players (how many, joining when, over which scheme) watch, and what they must receive;
//! [`Scenario::run`] starts the server and the processes, waits for them with hard limits and checks every
//! player's packets against the published file's.
//!
//! ```no_run
//! use rtmpx_interop::scenario::{Fixture, Player, Publisher, Scenario, Via};
//! Scenario::new("rtmpdump_plays_live_bit_exact")
//!     .stream("live/dump", Fixture::H264Aac, Publisher::Ffmpeg, Via::Rtmp)
//!     .play(Player::Rtmpdump.via(Via::Rtmp))
//!     .run();
//! ```
//!
//! The pieces ([`Publisher::spawn`], [`Player::spawn`], [`Player::finish`], [`Fixture::reference`]) serve
//! the tests that do something the table cannot say (a take-over, a certificate reload, another server).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::clients::{
    ffmpeg, ffmpeg_player, ffmpeg_publisher, gst_player, gst_publisher, rtmpdump_player,
};
use crate::compare::{assert_contiguous_run, framemd5, Packet};
use crate::process::Background;
use crate::server::{binary, RtmpxServer};
use crate::{enabled, fixtures, scratch};

/// How long any one client may take to finish.
pub const LIMIT: Duration = Duration::from_secs(60);

/// The fraction of each published stream a player must get unless the scenario says otherwise.
const DEFAULT_MIN_FRACTION: f64 = 0.9;

/// GStreamer's `rtmp2src` waits for a new publisher once a stream ends: it is stopped this long after the
/// publisher finished, when everything sent has long arrived.
const GST_PLAYER_GRACE: Duration = Duration::from_millis(1000);

/// The media a scenario publishes (made by FFmpeg on first use, see [`fixtures`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fixture {
    /// 6 s of H.264 + AAC.
    H264Aac,
    /// 4 s of HEVC + AAC in enhanced FLV.
    HevcAac,
    /// 3 s of AV1 + AAC in enhanced FLV.
    Av1Aac,
}

impl Fixture {
    pub fn path(self) -> PathBuf {
        match self {
            Fixture::H264Aac => fixtures::h264_aac(),
            Fixture::HevcAac => fixtures::hevc_aac(),
            Fixture::Av1Aac => fixtures::av1_aac(),
        }
    }

    /// The FFmpeg that reads the fixture's packets (and a player's): 5.1 knows no enhanced FLV.
    pub fn judge(self) -> PathBuf {
        match self {
            Fixture::H264Aac => ffmpeg(),
            Fixture::HevcAac | Fixture::Av1Aac => fixtures::ffmpeg9(),
        }
    }

    /// The published packets.
    pub fn reference(self) -> Vec<Packet> {
        framemd5(&self.judge(), &self.path())
    }
}

/// A URL scheme on the listener that serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `rtmp://` on the shared port.
    Rtmp,
    /// `rtmpe://` on the shared port.
    Rtmpe,
    /// `rtmps://` on the TLS-only port.
    Rtmps,
    /// `rtmps://` on the shared port (TLS recognised by its first byte).
    RtmpsShared,
    /// `rtmpt://` on the HTTP-only port.
    Rtmpt,
    /// `rtmpt://` on the shared port.
    RtmptShared,
    /// `rtmpts://` on the TLS-only port.
    Rtmpts,
    /// `rtmpte://` on the HTTP-only port.
    Rtmpte,
    /// HTTP-FLV: `http://HOST/APP/NAME.flv` on the HTTP-only port (players only).
    HttpFlv,
    /// HTTP-FLV over TLS: `https://HOST/APP/NAME.flv` on the TLS-only port (players only).
    HttpsFlv,
}

impl Via {
    pub fn url(self, server: &RtmpxServer, path: &str) -> String {
        let (scheme, address, suffix) = match self {
            Via::Rtmp => ("rtmp", server.address, ""),
            Via::Rtmpe => ("rtmpe", server.address, ""),
            Via::Rtmps => ("rtmps", server.tls_address, ""),
            Via::RtmpsShared => ("rtmps", server.address, ""),
            Via::Rtmpt => ("rtmpt", server.http_address, ""),
            Via::RtmptShared => ("rtmpt", server.address, ""),
            Via::Rtmpts => ("rtmpts", server.tls_address, ""),
            Via::Rtmpte => ("rtmpte", server.http_address, ""),
            Via::HttpFlv => ("http", server.http_address, ".flv"),
            Via::HttpsFlv => ("https", server.tls_address, ".flv"),
        };
        format!("{scheme}://{address}/{path}{suffix}")
    }

    /// What the server logs as the connection's `variant` (RTMPE inside the tunnel: `rtmpte`).
    pub fn logged_transport(self) -> &'static str {
        match self {
            Via::Rtmp => "rtmp",
            Via::Rtmpe => "rtmpe",
            Via::Rtmps | Via::RtmpsShared => "rtmps",
            Via::Rtmpt | Via::RtmptShared => "rtmpt",
            Via::Rtmpte => "rtmpte",
            Via::Rtmpts => "rtmpts",
            Via::HttpFlv | Via::HttpsFlv => "http-flv",
        }
    }
}

fn is_tls(url: &str) -> bool {
    url.starts_with("rtmps://") || url.starts_with("rtmpts://")
}

/// The client that publishes a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publisher {
    /// Debian's FFmpeg 5.1 (`-re -c copy -f flv`).
    Ffmpeg,
    /// FFmpeg 9 (RTMPE, RTMPTE).
    Ffmpeg9,
    /// FFmpeg 9 announcing Enhanced RTMP (`-rtmp_enhanced_codecs hvc1,av01`).
    Ffmpeg9Enhanced,
    /// GStreamer's `rtmp2sink` (TLS certificates not validated).
    GstRtmp2,
    /// GStreamer's librtmp-based `rtmpsink` (`live=1`).
    GstLibrtmp,
    /// `rtmpx publish` (`--insecure` over TLS).
    Rtmpx,
}

const ENHANCED: &[&str] = &["-rtmp_enhanced_codecs", "hvc1,av01"];

impl Publisher {
    pub fn spawn(self, fixture: &Path, url: &str, log: &Path) -> Background {
        match self {
            Publisher::Ffmpeg => ffmpeg_publisher(&ffmpeg(), fixture, url, log, &[]),
            Publisher::Ffmpeg9 => ffmpeg_publisher(&fixtures::ffmpeg9(), fixture, url, log, &[]),
            Publisher::Ffmpeg9Enhanced => {
                ffmpeg_publisher(&fixtures::ffmpeg9(), fixture, url, log, ENHANCED)
            }
            Publisher::GstRtmp2 => {
                let location = format!("location={url}");
                let mut sink = vec!["rtmp2sink", &location];
                if is_tls(url) {
                    sink.push("tls-validation-flags=0");
                }
                gst_publisher(fixture, &sink, log)
            }
            Publisher::GstLibrtmp => gst_publisher(
                fixture,
                &["rtmpsink", &format!("location={url} live=1")],
                log,
            ),
            Publisher::Rtmpx => {
                let mut command = Command::new(binary());
                command.arg("publish").arg(fixture).arg(url);
                if is_tls(url) {
                    command.arg("--insecure");
                }
                Background::spawn("rtmpx publish", &mut command, log)
            }
        }
    }
}

/// The client that plays a stream, writing what it receives to an FLV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Player {
    /// Debian's FFmpeg 5.1 (`-c copy -f flv`).
    Ffmpeg,
    /// FFmpeg 9.
    Ffmpeg9,
    /// FFmpeg 9 announcing Enhanced RTMP.
    Ffmpeg9Enhanced,
    /// rtmpdump `-v` (live).
    Rtmpdump,
    /// GStreamer's `rtmp2src` into a file (TLS certificates not validated).
    Gst,
    /// `rtmpx play -o` (`--insecure` over TLS); must exit successfully.
    Rtmpx,
}

impl Player {
    pub fn spawn(self, url: &str, out: &Path, log: &Path) -> Background {
        match self {
            Player::Ffmpeg => ffmpeg_player(&ffmpeg(), url, out, log, &[]),
            Player::Ffmpeg9 => ffmpeg_player(&fixtures::ffmpeg9(), url, out, log, &[]),
            Player::Ffmpeg9Enhanced => ffmpeg_player(&fixtures::ffmpeg9(), url, out, log, ENHANCED),
            Player::Rtmpdump => rtmpdump_player(url, out, log),
            Player::Gst => {
                let extra: &[&str] = if is_tls(url) {
                    &["tls-validation-flags=0"]
                } else {
                    &[]
                };
                gst_player(url, extra, out, log)
            }
            Player::Rtmpx => {
                let mut command = Command::new(binary());
                command.arg("play").arg(url).arg("-o").arg(out);
                if is_tls(url) {
                    command.arg("--insecure");
                }
                Background::spawn("rtmpx play", &mut command, log)
            }
        }
    }

    /// Waits for a player whose stream has ended: GStreamer is stopped (end of stream first), the others
    /// exit by themselves; `rtmpx play` must exit successfully.
    pub fn finish(self, process: &mut Background) {
        if self == Player::Gst {
            process.signal("INT");
        }
        let status = process.wait(LIMIT);
        if self == Player::Rtmpx {
            assert!(status.success(), "rtmpx play: {}", process.log());
        }
    }

    /// This player over `via`, as one entry of a scenario.
    pub fn via(self, via: Via) -> Play {
        Play {
            client: self,
            via,
            count: 1,
            join: None,
            min_fraction: None,
            streams: None,
        }
    }
}

/// One line of a scenario's player table.
#[derive(Debug, Clone)]
pub struct Play {
    client: Player,
    via: Via,
    count: usize,
    join: Option<Duration>,
    min_fraction: Option<f64>,
    streams: Option<&'static [usize]>,
}

impl Play {
    /// `count` players alike.
    pub fn times(mut self, count: usize) -> Play {
        self.count = count;
        self
    }

    /// Joins this long after the publisher started (by default the player is in before it starts).
    pub fn joining_after(mut self, delay: Duration) -> Play {
        self.join = Some(delay);
        self
    }

    /// Must get at least this fraction of every stream (else the stream's default).
    pub fn at_least(mut self, fraction: f64) -> Play {
        self.min_fraction = Some(fraction);
        self
    }

    /// Must get exactly these of the published streams (indices in the fixture), none other.
    pub fn only_streams(mut self, streams: &'static [usize]) -> Play {
        self.streams = Some(streams);
        self
    }
}

#[derive(Debug)]
struct Stream {
    path: String,
    fixture: Fixture,
    publisher: Publisher,
    via: Via,
    min_fraction: f64,
    players: Vec<Play>,
}

/// One interop test: a server, streams published at the same time, their players, the expectations.
#[derive(Debug)]
pub struct Scenario {
    name: String,
    server_args: Vec<String>,
    streams: Vec<Stream>,
    server_log: Vec<String>,
}

/// What a finished scenario leaves for a test's own further checks.
#[derive(Debug)]
pub struct Ran {
    pub server: RtmpxServer,
    pub dir: tempfile::TempDir,
}

struct Running {
    client: Player,
    out: PathBuf,
    process: Background,
    stream: usize,
    min_fraction: f64,
    streams: Option<&'static [usize]>,
}

impl Scenario {
    /// A scenario named after its test (the name shows when the suite is skipped and names its scratch).
    pub fn new(name: &str) -> Scenario {
        Scenario {
            name: name.into(),
            server_args: Vec::new(),
            streams: Vec::new(),
            server_log: Vec::new(),
        }
    }

    /// Extra `rtmpx serve` arguments.
    pub fn server_args(mut self, args: &[&str]) -> Scenario {
        self.server_args = args.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    /// A stream `path` (`app/name`) that `publisher` publishes over `via`; the following `play` lines
    /// watch it.
    pub fn stream(
        mut self,
        path: &str,
        fixture: Fixture,
        publisher: Publisher,
        via: Via,
    ) -> Scenario {
        self.streams.push(Stream {
            path: path.into(),
            fixture,
            publisher,
            via,
            min_fraction: DEFAULT_MIN_FRACTION,
            players: Vec::new(),
        });
        self
    }

    /// The fraction of each published stream this stream's players must get at least (default 0.9).
    pub fn at_least(mut self, fraction: f64) -> Scenario {
        self.current().min_fraction = fraction;
        self
    }

    /// A player (or several alike) of the last declared stream.
    pub fn play(mut self, play: Play) -> Scenario {
        self.current().players.push(play);
        self
    }

    /// Text the server's log must hold at the end (besides each client's transport, always checked).
    pub fn server_log(mut self, text: &str) -> Scenario {
        self.server_log.push(text.into());
        self
    }

    fn current(&mut self) -> &mut Stream {
        self.streams
            .last_mut()
            .unwrap_or_else(|| panic!("declare a stream before its players"))
    }

    /// Runs the scenario; `None` when the interop suite is off.
    ///
    /// Players that join early are started and waited for (the server logs their `play`), then every
    /// publisher starts at once, late players join at their delay, and the publishers must finish
    /// successfully; then each player's packets must be one bit-exact contiguous run of each published
    /// stream (or of the streams it expects), at least its fraction of them.
    pub fn run(self) -> Option<Ran> {
        if !enabled(&self.name) {
            return None;
        }
        let dir = scratch(&self.name);
        let args: Vec<&str> = self.server_args.iter().map(String::as_str).collect();
        let server = RtmpxServer::start(&args);
        let mut players = Vec::new();
        let mut late = Vec::new();
        for (index, stream) in self.streams.iter().enumerate() {
            for play in &stream.players {
                match play.join {
                    None => {
                        for _ in 0..play.count {
                            players.push(self.start_player(
                                &server,
                                &dir,
                                index,
                                play,
                                players.len(),
                            ));
                        }
                    }
                    Some(delay) => late.push((delay, index, play)),
                }
            }
        }
        for stream in &self.streams {
            let early = stream.players.iter().filter(|p| p.join.is_none());
            server.wait_for_players(&stream.path, early.map(|p| p.count).sum(), LIMIT);
        }
        let started = Instant::now();
        let mut publishers: Vec<Background> = self
            .streams
            .iter()
            .enumerate()
            .map(|(index, stream)| {
                stream.publisher.spawn(
                    &stream.fixture.path(),
                    &stream.via.url(&server, &stream.path),
                    &dir.path().join(format!("publisher-{index}.log")),
                )
            })
            .collect();
        late.sort_by_key(|(delay, _, _)| *delay);
        for (delay, index, play) in late {
            std::thread::sleep(delay.saturating_sub(started.elapsed()));
            for _ in 0..play.count {
                players.push(self.start_player(&server, &dir, index, play, players.len()));
            }
        }
        for (publisher, stream) in publishers.iter_mut().zip(&self.streams) {
            assert!(
                publisher.wait(LIMIT).success(),
                "{:?} publishing {}: {}",
                stream.publisher,
                stream.path,
                publisher.log()
            );
        }
        if players.iter().any(|p| p.client == Player::Gst) {
            std::thread::sleep(GST_PLAYER_GRACE);
        }
        for player in &mut players {
            player.client.finish(&mut player.process);
        }
        self.check_packets(&players);
        self.check_server_log(&server);
        Some(Ran { server, dir })
    }

    /// Every player's packets: one contiguous run of each stream it expects, at least its fraction.
    fn check_packets(&self, players: &[Running]) {
        let mut references: HashMap<Fixture, Vec<Packet>> = HashMap::new();
        for player in players {
            let fixture = self.streams[player.stream].fixture;
            let sent = references
                .entry(fixture)
                .or_insert_with(|| fixture.reference());
            let expected = match player.streams {
                Some(kept) => only(sent, kept),
                None => sent.clone(),
            };
            // Names the player whose check panics, in the failed test's output.
            eprintln!("checking {}", player.out.display());
            let got = framemd5(&fixture.judge(), &player.out);
            assert_contiguous_run(&expected, &got, player.min_fraction);
        }
    }

    /// The transport of every client, and the scenario's own texts.
    fn check_server_log(&self, server: &RtmpxServer) {
        let log = server.log();
        let transports = self
            .streams
            .iter()
            .flat_map(|s| std::iter::once(s.via).chain(s.players.iter().map(|p| p.via)));
        for transport in transports.map(Via::logged_transport) {
            let logged = format!("variant=\"{transport}\"");
            assert!(
                log.contains(&logged),
                "no {logged} in the server log:\n{log}"
            );
        }
        for text in &self.server_log {
            assert!(
                log.contains(text.as_str()),
                "no {text:?} in the server log:\n{log}"
            );
        }
    }

    fn start_player(
        &self,
        server: &RtmpxServer,
        dir: &tempfile::TempDir,
        index: usize,
        play: &Play,
        n: usize,
    ) -> Running {
        let stream = &self.streams[index];
        let name = format!("{:?}-{:?}-{n}", play.client, play.via).to_lowercase();
        let out = dir.path().join(format!("{name}.flv"));
        let process = play.client.spawn(
            &play.via.url(server, &stream.path),
            &out,
            &dir.path().join(format!("{name}.log")),
        );
        Running {
            client: play.client,
            out,
            process,
            stream: index,
            min_fraction: play.min_fraction.unwrap_or(stream.min_fraction),
            streams: play.streams,
        }
    }
}

/// The packets of the `kept` streams, renumbered in order from 0 as a player that got only them numbers
/// them.
fn only(packets: &[Packet], kept: &[usize]) -> Vec<Packet> {
    packets
        .iter()
        .filter_map(|p| {
            let stream = kept.iter().position(|&k| k == p.stream)?;
            Some(Packet {
                stream,
                ..p.clone()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(stream: usize, md5: &str) -> Packet {
        Packet {
            stream,
            size: 1,
            md5: md5.into(),
        }
    }

    #[test]
    fn only_keeps_the_expected_streams_numbered_as_a_player_numbers_them() {
        let sent = [
            packet(0, "v1"),
            packet(1, "a1"),
            packet(0, "v2"),
            packet(1, "a2"),
        ];
        assert_eq!(only(&sent, &[1]), [packet(0, "a1"), packet(0, "a2")]);
        assert_eq!(only(&sent, &[0, 1]), sent);
    }
}
