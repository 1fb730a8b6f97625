//! `rtmpx bench URL --players N --duration S`: one publisher and N players on one stream, in one process
//! (so publisher and players share a clock), reporting delivery, latency, stalls and, given the server's
//! PID, its CPU time and peak memory from /proc.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rtmp_client::flv::FlvReader;
use rtmp_client::{Client, ClientEvent};

use super::{parse_url, ClientArgs};

/// `rtmpx bench` options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The stream to load: rtmp://HOST:PORT/APP/STREAM (any variant).
    pub url: String,
    /// Players to keep on the stream (spread evenly over the streams).
    #[arg(long, default_value_t = 10)]
    pub players: usize,
    /// Independent streams, each with its own publisher: STREAM-0, STREAM-1, ... (1: the URL's stream).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub streams: u32,
    /// Seconds to measure after the ramp.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Players started per second (0: all at once).
    #[arg(long, default_value_t = 0)]
    pub ramp: usize,
    /// FLV file to publish in a loop (without it, an already published stream is played and latency is
    /// not measured).
    #[arg(long, value_name = "FILE")]
    pub publish: Option<PathBuf>,
    /// The server's process id, to report its CPU seconds and peak RSS.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Players read HTTP-FLV from this HTTP listener (`http://ADDR/APP/STREAM.flv`) instead of playing
    /// the RTMP URL; the publisher still publishes over the URL.
    #[arg(long, value_name = "HOST:PORT")]
    pub http_flv: Option<String>,
    /// Viewers watch LL-HLS from this HTTP listener (`http://ADDR/APP/STREAM/index.m3u8`) as hls.js in
    /// low-latency mode does (blocking playlist reloads, then each part); the publisher still publishes
    /// over the URL.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "http_flv")]
    pub hls: Option<String>,
    /// With `--hls`: classic HLS viewers instead (the plain playlist polled every half target duration,
    /// whole segments fetched), as a player without low-latency mode, e.g. for nginx-rtmp's HLS.
    #[arg(long, requires = "hls")]
    pub hls_plain: bool,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// When each published message left the publisher, by (type, timestamp).
pub(super) type SendTimes = Arc<RwLock<HashMap<(u8, u32), Instant>>>;

/// When the steady state begins: every player started, plus a second to settle.
pub(super) type SteadyFrom = Arc<std::sync::OnceLock<Instant>>;

#[derive(Debug, Default, Clone)]
pub(super) struct PlayerStats {
    pub(super) playing: bool,
    pub(super) bytes: u64,
    pub(super) frames: u64,
    pub(super) stalls: u64,
    pub(super) latencies_us: Vec<u32>,
    pub(super) error: Option<String>,
}

async fn run_player(
    url: rtmp_client::RtmpUrl,
    options: rtmp_client::ConnectOptions,
    sent: SendTimes,
    steady: SteadyFrom,
    until: Instant,
) -> PlayerStats {
    let mut stats = PlayerStats::default();
    let mut client = match Client::connect(&url, &options).await {
        Ok(client) => client,
        Err(error) => {
            return PlayerStats {
                error: Some(error.to_string()),
                ..stats
            }
        }
    };
    if let Err(error) = client.play(&url.stream).await {
        return PlayerStats {
            error: Some(error.to_string()),
            ..stats
        };
    }
    stats.playing = true;
    // Frames from the GOP cache left the publisher before this player joined: latency counts live frames,
    // and only once every player has joined (the ramp's GOP bursts are not the steady state measured).
    let joined = Instant::now();
    let mut last_frame = joined;
    while Instant::now() < until {
        let remaining = until.saturating_duration_since(Instant::now());
        let event = match tokio::time::timeout(remaining, client.next_event()).await {
            Err(_) => break,
            Ok(Err(error)) => {
                stats.error = Some(error.to_string());
                break;
            }
            Ok(Ok(event)) => event,
        };
        if let ClientEvent::Media { message, .. } = event {
            let now = Instant::now();
            if now.duration_since(last_frame) > Duration::from_secs(1) {
                stats.stalls += 1;
            }
            last_frame = now;
            stats.bytes += message.payload.len() as u64;
            stats.frames += 1;
            let published = sent
                .read()
                .ok()
                .and_then(|times| times.get(&(message.type_id, message.timestamp)).copied());
            let from = steady.get().map_or(until, |steady| (*steady).max(joined));
            if let Some(at) = published.filter(|at| *at >= from) {
                stats
                    .latencies_us
                    .push(now.duration_since(at).as_micros().min(u128::from(u32::MAX)) as u32);
            }
        }
    }
    stats
}

async fn run_publisher(
    file: PathBuf,
    url: rtmp_client::RtmpUrl,
    options: rtmp_client::ConnectOptions,
    sent: SendTimes,
    until: Instant,
) -> Result<(), String> {
    let mut client = Client::connect(&url, &options)
        .await
        .map_err(|e| e.to_string())?;
    let stream_id = client
        .publish(&url.stream)
        .await
        .map_err(|e| e.to_string())?;
    let started = tokio::time::Instant::now();
    let (mut offset, mut last) = (0u32, 0u32);
    let open = || {
        std::fs::File::open(&file)
            .map(std::io::BufReader::new)
            .and_then(FlvReader::new)
            .map_err(|e| format!("{}: {e}", file.display()))
    };
    let mut reader = open()?;
    while Instant::now() < until {
        let Some(message) = reader.next_message().map_err(|e| e.to_string())? else {
            reader = open()?;
            offset = last.wrapping_add(40);
            continue;
        };
        if message.type_id != 8 && message.type_id != 9 {
            continue;
        }
        let timestamp = message.timestamp.wrapping_add(offset);
        last = timestamp;
        tokio::time::sleep_until(started + Duration::from_millis(u64::from(timestamp))).await;
        if let Ok(mut times) = sent.write() {
            times.insert((message.type_id, timestamp), Instant::now());
        }
        client.send(
            stream_id,
            &rtmp_chunk::Message {
                timestamp,
                ..message
            },
        );
        client.flush().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// CPU seconds (user + system) and peak RSS in KiB of a process, from /proc.
fn process_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .ok()?;
    Some((ticks / 100.0, peak))
}

/// Above this share of its one thread, the load generator's own queueing shows in the latencies.
const GENERATOR_SATURATED_PERCENT: f64 = 90.0;

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted.get(index).copied().unwrap_or_default()) / 1000.0
}

pub async fn bench(args: &BenchArgs) -> Result<(), String> {
    let url = parse_url(&args.url)?;
    let streams = args.streams as usize;
    let connections = (args.players + streams) as u64;
    let files = crate::limits::raise_open_files(connections)
        .map_err(|e| format!("cannot read or raise the open-file limit: {e}"))?;
    if !files.fits(connections) {
        return Err(format!(
            "{} players need about {} open files but the limit is {} (hard limit {}): raise it with `ulimit -Hn`",
            args.players,
            connections + crate::limits::RESERVED_FILES,
            files.now,
            files.hard
        ));
    }
    let options = args.client.options_without_reconnect();
    let urls: Vec<rtmp_client::RtmpUrl> = if streams == 1 {
        vec![url]
    } else {
        (0..streams)
            .map(|index| rtmp_client::RtmpUrl {
                stream: format!("{}-{index}", url.stream),
                ..url.clone()
            })
            .collect()
    };
    // One clock of send times per stream: every publisher sends the same file.
    let sent: Vec<SendTimes> = urls.iter().map(|_| SendTimes::default()).collect();
    let steady: SteadyFrom = Arc::default();
    let ramp_secs = if args.ramp == 0 {
        0
    } else {
        args.players.div_ceil(args.ramp) as u64
    };
    let start = Instant::now();
    let until = start + Duration::from_secs(ramp_secs + args.duration + 2);
    let usage_before = args.server_pid.and_then(process_usage);
    let own_before = process_usage(std::process::id());
    let publishers: Vec<_> = match &args.publish {
        Some(file) => urls
            .iter()
            .zip(&sent)
            .map(|(url, sent)| {
                tokio::spawn(run_publisher(
                    file.clone(),
                    url.clone(),
                    options.clone(),
                    sent.clone(),
                    until,
                ))
            })
            .collect(),
        None => Vec::new(),
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut players = Vec::with_capacity(args.players);
    for index in 0..args.players {
        if args.ramp > 0 && index > 0 && index % args.ramp == 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let stream = index % streams;
        let player = match (&args.http_flv, &args.hls) {
            (Some(address), _) => tokio::spawn(super::bench_http_flv::run_player(
                address.clone(),
                format!("/{}/{}.flv", urls[stream].app, urls[stream].stream),
                sent[stream].clone(),
                steady.clone(),
                until,
            )),
            (None, Some(address)) => tokio::spawn(super::bench_hls::run_viewer(
                address.clone(),
                format!("/{}/{}/index.m3u8", urls[stream].app, urls[stream].stream),
                if args.hls_plain {
                    super::bench_hls::HlsMode::Plain
                } else {
                    super::bench_hls::HlsMode::LowLatency
                },
                sent[stream].clone(),
                steady.clone(),
                until,
            )),
            (None, None) => tokio::spawn(run_player(
                urls[stream].clone(),
                options.clone(),
                sent[stream].clone(),
                steady.clone(),
                until,
            )),
        };
        players.push(player);
    }
    let _ = steady.set(Instant::now() + Duration::from_secs(1));
    let mut all = Vec::with_capacity(players.len());
    for player in players {
        all.push(player.await.unwrap_or_else(|e| PlayerStats {
            error: Some(e.to_string()),
            ..PlayerStats::default()
        }));
    }
    for publisher in publishers {
        match publisher.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(format!("publisher: {error}")),
            Err(error) => return Err(format!("publisher: {error}")),
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let usage_after = args.server_pid.and_then(process_usage);
    let own_cpu = match (own_before, process_usage(std::process::id())) {
        (Some((before, _)), Some((after, _))) => Some(after - before),
        _ => None,
    };
    let playing = all
        .iter()
        .filter(|p| p.playing && p.error.is_none())
        .count();
    let failed = all.len() - playing;
    let bytes: u64 = all.iter().map(|p| p.bytes).sum();
    let frames: u64 = all.iter().map(|p| p.frames).sum();
    let stalls: u64 = all.iter().map(|p| p.stalls).sum();
    let mut latencies: Vec<u32> = all
        .iter()
        .flat_map(|p| p.latencies_us.iter().copied())
        .collect();
    latencies.sort_unstable();
    let mbps = bytes as f64 * 8.0 / 1e6 / elapsed;
    let (p50, p99, max) = (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
    let (cpu, rss) = match (usage_before, usage_after) {
        (Some((before, _)), Some((after, peak))) => (Some(after - before), Some(peak)),
        _ => (None, None),
    };
    if streams > 1 {
        println!("streams              {streams}");
    }
    println!("players playing      {playing}");
    println!("players failed       {failed}");
    println!(
        "delivered            {mbps:.1} Mbit/s ({frames} frames, {bytes} bytes in {elapsed:.1} s)"
    );
    println!(
        "latency p50/p99/max  {p50:.1} / {p99:.1} / {max:.1} ms ({} samples, after every player joined)",
        latencies.len()
    );
    println!("stalls (> 1 s)       {stalls}");
    if let (Some(cpu), Some(rss)) = (cpu, rss) {
        println!(
            "server CPU           {cpu:.2} s ({:.1}% of a core)",
            cpu / elapsed * 100.0
        );
        println!("server peak RSS      {:.1} MiB", rss as f64 / 1024.0);
    }
    if let Some(own_cpu) = own_cpu {
        let share = own_cpu / elapsed * 100.0;
        println!("generator CPU        {own_cpu:.2} s ({share:.1}% of its one core)");
        if share > GENERATOR_SATURATED_PERCENT {
            println!(
                "warning              the load generator was busy {share:.0}% of the time: its own queueing \
                 is part of the latency; use fewer players per generator"
            );
        }
    }
    if let Some(first_error) = all.iter().find_map(|p| p.error.clone()) {
        println!("first error          {first_error}");
    }
    if let Some(path) = &args.json {
        let json = format!(
            "{{\"players\":{},\"streams\":{streams},\"playing\":{playing},\"failed\":{failed},\"seconds\":{elapsed:.3},\"mbit_per_s\":{mbps:.3},\"frames\":{frames},\"bytes\":{bytes},\"latency_ms\":{{\"p50\":{p50:.3},\"p99\":{p99:.3},\"max\":{max:.3},\"samples\":{}}},\"stalls\":{stalls},\"server_cpu_s\":{},\"server_peak_rss_kib\":{},\"generator_cpu_s\":{}}}\n",
            args.players,
            latencies.len(),
            cpu.map_or("null".into(), |c| format!("{c:.3}")),
            rss.map_or("null".into(), |r| r.to_string()),
            own_cpu.map_or("null".into(), |c| format!("{c:.3}")),
        );
        std::fs::write(path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if failed > 0 {
        return Err(format!("{failed} of {} players failed", all.len()));
    }
    Ok(())
}
