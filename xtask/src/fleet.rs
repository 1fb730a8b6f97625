//! The second load generator of `cargo xtask bench`: N real librtmp players, one `rtmpdump` process each,
//! reading as promptly as a player application does. `rtmpx bench` publishes and keeps a few players of
//! its own on the stream to measure latency; the bytes delivered to everyone are read from the kernel's
//! socket counters (`ss`), the server's CPU and memory from /proc.
//!
//! The two generators load a server differently: `rtmpx bench` serves all its players from one thread,
//! so it reads in bursts and acknowledges late (which lets a server's small writes coalesce in the
//! kernel), while a process per player wakes up and acknowledges for every segment.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::{Killed, Load};

/// Players started per second (each is a process: the fork and the handshakes are not free).
const RAMP_PER_SECOND: usize = 100;
/// Latency probes: `rtmpx bench` players among the fleet.
pub const PROBES: usize = 10;

/// One load point measured with the fleet.
pub struct FleetRow {
    pub server: String,
    pub players: usize,
    /// Fleet players still running at the end.
    pub alive: usize,
    pub seconds: f64,
    pub mbit_per_s: f64,
    pub server_cpu_s: f64,
    /// CPU seconds of every client process over the window: the rtmpdump players and the probes.
    pub clients_cpu_s: f64,
    pub server_peak_rss_kib: f64,
    /// The probes' report (`rtmpx bench --json`): latency percentiles.
    pub probes_json: String,
}

impl FleetRow {
    fn delivered_gbit(&self) -> f64 {
        self.mbit_per_s * self.seconds / 1000.0
    }

    pub fn cpu_per_gbit(&self) -> f64 {
        self.server_cpu_s / self.delivered_gbit()
    }

    /// The server's and its clients' CPU together (see `Row::both_cpu_per_gbit` in bench.rs).
    pub fn both_cpu_per_gbit(&self) -> f64 {
        (self.server_cpu_s + self.clients_cpu_s) / self.delivered_gbit()
    }
}

/// CPU seconds each client process has used so far (None once it is gone).
fn clients_cpu(pids: &[u32]) -> Vec<Option<f64>> {
    pids.iter().map(|&pid| cpu_seconds(pid).ok()).collect()
}

/// CPU used between two readings by the clients alive at both.
fn clients_cpu_used(before: &[Option<f64>], after: &[Option<f64>]) -> f64 {
    before
        .iter()
        .zip(after)
        .filter_map(|(before, after)| Some(after.as_ref()? - before.as_ref()?))
        .sum()
}

/// CPU seconds (user + system) of a process, from /proc (clock ticks are 1/100 s in the Linux ABI).
fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("server {pid} is gone: {e}"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => Ok((user + system) / 100.0),
        _ => Err(format!("unreadable /proc/{pid}/stat")),
    }
}

fn peak_rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(f64::NAN)
}

/// Bytes received so far by every client socket connected to `port` on loopback.
fn bytes_received_from(port: u16) -> Result<u64, String> {
    let output = Command::new("ss")
        .args(["-tinH", "state", "established"])
        .arg(format!("( dport = :{port} )"))
        .output()
        .map_err(|e| format!("cannot run ss: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "ss failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("bytes_received:"))
        .filter_map(|v| v.parse::<u64>().ok())
        .sum())
}

/// Runs `players` rtmpdump processes (plus the probes) against the server for `load.seconds`.
pub fn fleet_one(
    load: &Load<'_>,
    server: String,
    port: u16,
    pid: u32,
    players: usize,
) -> Result<FleetRow, String> {
    let url = format!("rtmp://127.0.0.1:{port}/live/bench");
    // The fleet subscribes first and waits for the publisher, so its ramp is not in the measurement.
    let mut fleet = Vec::with_capacity(players);
    let ramp_started = Instant::now();
    for started in 0..players {
        let child = Command::new("rtmpdump")
            .args(["-q", "-v", "-r", &url, "-o", "/dev/null"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start rtmpdump: {e}"))?;
        fleet.push(Killed(child));
        if (started + 1) % RAMP_PER_SECOND == 0 {
            let due = Duration::from_secs(((started + 1) / RAMP_PER_SECOND) as u64);
            std::thread::sleep(due.saturating_sub(ramp_started.elapsed()));
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    let json = load.dir.join(format!(
        "fleet-{}-{players}.json",
        crate::bench::file_label(&server)
    ));
    let settle = Duration::from_secs(3);
    let mut probes = Command::new(load.binary)
        .args(["bench", &url, "--players", &PROBES.to_string()])
        .arg("--duration")
        .arg((load.seconds + settle.as_secs() + 1).to_string())
        .arg("--publish")
        .arg(load.fixture)
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start rtmpx bench: {e}"))?;
    std::thread::sleep(settle);
    let clients: Vec<u32> = fleet
        .iter()
        .map(|player| player.0.id())
        .chain([probes.id()])
        .collect();
    let (t0, cpu0, clients0, bytes0) = (
        Instant::now(),
        cpu_seconds(pid)?,
        clients_cpu(&clients),
        bytes_received_from(port)?,
    );
    std::thread::sleep(Duration::from_secs(load.seconds));
    let (cpu1, clients1, bytes1) = (
        cpu_seconds(pid)?,
        clients_cpu(&clients),
        bytes_received_from(port)?,
    );
    let seconds = t0.elapsed().as_secs_f64();
    let alive = fleet
        .iter_mut()
        .map(|player| matches!(player.0.try_wait(), Ok(None)))
        .filter(|&running| running)
        .count();
    let server_peak_rss_kib = peak_rss_kib(pid);
    let status = probes.wait().map_err(|e| e.to_string())?;
    drop(fleet);
    let probes_json = std::fs::read_to_string(&json)
        .map_err(|e| format!("no report from the probes ({status}): {e}"))?;
    Ok(FleetRow {
        server,
        players,
        alive,
        seconds,
        // A player that left mid-window makes the sum drop: count only growth.
        mbit_per_s: bytes1.saturating_sub(bytes0) as f64 * 8.0 / seconds / 1e6,
        server_cpu_s: cpu1 - cpu0,
        clients_cpu_s: clients_cpu_used(&clients0, &clients1),
        server_peak_rss_kib,
        probes_json,
    })
}
