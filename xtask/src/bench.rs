//! `cargo xtask bench`: rtmpx and nginx-rtmp side by side on this machine, under the same load from
//! `rtmpx bench`, written to docs/benchmarks.md. `--smoke` runs a short check of rtmpx alone (CI does).

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{cargo, run, target_dir, workspace_root, StepResult};

const NGINX_PACKAGES: &[&str] = &["nginx", "libnginx-mod-rtmp", "iperf3"];

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

fn wait_for_port(port: u16) -> StepResult {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("nothing listens on 127.0.0.1:{port}"))
}

/// An H.264 + AAC FLV made with FFmpeg (cached): `seconds` long at about `video_kbps` + 128 kbit/s.
fn fixture(dir: &Path, size: &str, seconds: u32, video_kbps: u32) -> Result<PathBuf, String> {
    let path = dir.join(format!("bench_{size}_{seconds}s_{video_kbps}k.flv"));
    if !path.exists() {
        let rate = format!("{video_kbps}k");
        let buffer = format!("{}k", video_kbps * 2);
        run(Command::new("ffmpeg")
            .args([
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                &format!("testsrc2=size={size}:rate=30"),
            ])
            .args([
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440",
                "-t",
                &seconds.to_string(),
                "-c:v",
                "libx264",
            ])
            .args([
                "-preset", "veryfast", "-b:v", &rate, "-maxrate", &rate, "-bufsize", &buffer, "-g",
                "60",
            ])
            .args(["-c:a", "aac", "-b:a", "128k", "-f", "flv"])
            .arg(&path))?;
    }
    Ok(path)
}

fn start_rtmpx(
    binary: &Path,
    dir: &Path,
    batch_window_ms: Option<u64>,
) -> Result<(Killed, u16), String> {
    let (port, tls, http) = (free_port()?, free_port()?, free_port()?);
    let log = std::fs::File::create(dir.join("rtmpx.log")).map_err(|e| e.to_string())?;
    let child = Command::new(binary)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--listen-tls",
            &format!("127.0.0.1:{tls}"),
            "--listen-http",
            &format!("127.0.0.1:{http}"),
            "--log-level",
            "warn",
        ])
        .args(batch_window_ms.map(|ms| format!("--batch-window-ms={ms}")))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start rtmpx: {e}"))?;
    let child = Killed(child);
    wait_for_port(port)?;
    Ok((child, port))
}

fn start_nginx(dir: &Path) -> Result<(Killed, u16), String> {
    let port = free_port()?;
    let module = [
        "/usr/lib/nginx/modules/ngx_rtmp_module.so",
        "/usr/share/nginx/modules/ngx_rtmp_module.so",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .ok_or("ngx_rtmp_module.so not found (libnginx-mod-rtmp)")?;
    let config = format!(
        "load_module {module};\ndaemon off;\nmaster_process off;\nworker_processes 1;\nerror_log {}/nginx-error.log warn;\npid {}/nginx.pid;\nevents {{ worker_connections 10000; }}\nrtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096; application live {{ live on; }} }} }}\n",
        dir.display(),
        dir.display()
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, config).map_err(|e| e.to_string())?;
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start nginx: {e}"))?;
    let child = Killed(child);
    wait_for_port(port)?;
    Ok((child, port))
}

/// A server configuration under test.
#[derive(Clone, Copy)]
enum Target {
    /// rtmpx with this batch window (None: its default).
    Rtmpx(Option<u64>),
    Nginx,
}

impl Target {
    fn label(self) -> String {
        match self {
            Target::Rtmpx(None) => "rtmpx (default)".into(),
            Target::Rtmpx(Some(ms)) => format!("rtmpx (batch {ms} ms)"),
            Target::Nginx => "nginx-rtmp".into(),
        }
    }
}

struct Row {
    server: String,
    players: usize,
    json: String,
}

fn field(json: &str, key: &str) -> f64 {
    json.split(&format!("\"{key}\":"))
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// What every load point shares.
struct Load<'a> {
    binary: &'a Path,
    fixture: &'a Path,
    dir: &'a Path,
    seconds: u64,
}

fn bench_one(
    load: &Load<'_>,
    server: String,
    port: u16,
    pid: u32,
    players: usize,
) -> Result<Row, String> {
    let (binary, fixture, dir, seconds) = (load.binary, load.fixture, load.dir, load.seconds);
    let file_label: String = server
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let json = dir.join(format!("{file_label}-{players}.json"));
    let ramp = (players / 4).max(50).to_string();
    let status = Command::new(binary)
        .args([
            "bench",
            &format!("rtmp://127.0.0.1:{port}/live/bench"),
            "--players",
            &players.to_string(),
            "--duration",
            &seconds.to_string(),
            "--ramp",
            &ramp,
            "--server-pid",
            &pid.to_string(),
            "--publish",
        ])
        .arg(fixture)
        .arg("--json")
        .arg(&json)
        .status()
        .map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(&json)
        .map_err(|e| format!("no report from the bench ({status}): {e}"))?;
    Ok(Row {
        server,
        players,
        json: text,
    })
}

pub fn bench(args: &[String]) -> StepResult {
    let smoke = args.iter().any(|a| a == "--smoke");
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if smoke {
        run(cargo().args(["build", "--package", "rtmpx"]))?;
        let binary = target_dir().join("debug").join("rtmpx");
        let fixture = fixture(&dir, "640x360", 5, 800)?;
        let (server, port) = start_rtmpx(&binary, &dir, None)?;
        let load = Load {
            binary: &binary,
            fixture: &fixture,
            dir: &dir,
            seconds: 5,
        };
        let row = bench_one(&load, "rtmpx".into(), port, server.0.id(), 10)?;
        println!("{}", row.json.trim());
        if field(&row.json, "failed") != 0.0 || field(&row.json, "frames") < 100.0 {
            return Err(format!("smoke bench failed: {}", row.json.trim()));
        }
        return Ok(());
    }
    crate::tools::ensure_packages(NGINX_PACKAGES, &["nginx", "iperf3"])?;
    run(cargo().args(["build", "--release", "--package", "rtmpx"]))?;
    let binary = target_dir().join("release").join("rtmpx");
    let fixture = fixture(&dir, "1280x720", 30, 2400)?;
    let seconds = 20;
    let counts = [100usize, 500, 1000, 2000];
    // rtmpx as shipped, rtmpx writing every frame at once (no batch window), and nginx-rtmp.
    let targets = [Target::Rtmpx(None), Target::Rtmpx(Some(0)), Target::Nginx];
    let mut rows = Vec::new();
    for target in targets {
        for &players in &counts {
            let (child, port) = match target {
                Target::Rtmpx(window) => start_rtmpx(&binary, &dir, window)?,
                Target::Nginx => start_nginx(&dir)?,
            };
            let load = Load {
                binary: &binary,
                fixture: &fixture,
                dir: &dir,
                seconds,
            };
            let row = bench_one(&load, target.label(), port, child.0.id(), players)?;
            println!("{} {players}: {}", row.server, row.json.trim());
            rows.push(row);
        }
    }
    let iperf = loopback_reference();
    write_report(&rows, &iperf, seconds)
}

fn loopback_reference() -> String {
    let Ok(port) = free_port() else {
        return "not measured".into();
    };
    let server = Command::new("iperf3")
        .args(["-s", "-1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(server) = server else {
        return "not measured (iperf3 missing)".into();
    };
    let _server = Killed(server);
    std::thread::sleep(Duration::from_millis(300));
    let output = Command::new("iperf3")
        .args([
            "-c",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "3",
            "-f",
            "g",
        ])
        .output();
    output
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| l.contains("receiver"))
                .map(|l| {
                    l.split_whitespace()
                        .rev()
                        .nth(2)
                        .map_or(String::new(), |v| format!("{v} Gbit/s"))
                })
        })
        .unwrap_or_else(|| "not measured".into())
}

const NOTES_MARKER: &str = "<!-- notes: kept when cargo xtask bench rewrites the tables above -->";

fn write_report(rows: &[Row], iperf: &str, seconds: u64) -> StepResult {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks: rtmpx and nginx-rtmp side by side\n");
    let _ = writeln!(md, "Made by `cargo xtask bench` on this project's 2-core machine: one publisher (H.264 + AAC, ~2.5 Mbit/s, looped) and N players on one stream, loaded by `rtmpx bench` (same process for publisher and players, so latency is measured on one clock), {seconds} s after the ramp. Servers: rtmpx (release build) and nginx {} with libnginx-mod-rtmp (Debian), one worker, `master_process off`, chunk size 4096. Loopback reference (iperf3, one stream): {iperf}.\n", nginx_version());
    let _ = writeln!(md, "| server | players | playing | failed | delivered Mbit/s | server CPU % of a core | CPU s per delivered Gbit | peak RSS MiB | RSS KiB per player | latency p50 / p99 / max ms | stalls |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let j = &row.json;
        let secs = field(j, "seconds");
        let mbps = field(j, "mbit_per_s");
        let cpu = field(j, "server_cpu_s");
        let rss = field(j, "server_peak_rss_kib");
        let delivered_gbit = mbps * secs / 1000.0;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.0} | {:.1} | {:.2} | {:.1} | {:.0} | {:.1} / {:.1} / {:.1} | {} |",
            row.server, row.players, field(j, "playing"), field(j, "failed"), mbps, cpu / secs * 100.0, cpu / delivered_gbit, rss / 1024.0, rss / row.players as f64,
            field(j, "p50"), field(j, "p99"), field(j, "max"), field(j, "stalls")
        );
    }
    let _ = writeln!(md, "\n## Ratios rtmpx / nginx-rtmp (lower is better)\n\n| rtmpx | players | CPU per delivered Gbit | RSS per player | p99 latency |\n|---|---|---|---|---|");
    let nginx = Target::Nginx.label();
    for ours in rows.iter().filter(|r| r.server != nginx) {
        if let Some(theirs) = rows
            .iter()
            .find(|r| r.server == nginx && r.players == ours.players)
        {
            let per_gbit = |j: &str| {
                field(j, "server_cpu_s") / (field(j, "mbit_per_s") * field(j, "seconds") / 1000.0)
            };
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} | {:.2} | {:.2} |",
                ours.server,
                ours.players,
                per_gbit(&ours.json) / per_gbit(&theirs.json),
                field(&ours.json, "server_peak_rss_kib")
                    / field(&theirs.json, "server_peak_rss_kib"),
                field(&ours.json, "p99") / field(&theirs.json, "p99")
            );
        }
    }
    let _ = writeln!(md, "\nThe numbers come from one run on a shared machine: compare the two servers within this table (measured back to back), not across runs. The load generator shares the machine's two cores with the server, so absolute latencies include its own scheduling.\n\nReproduce: `cargo xtask bench` (installs nginx, libnginx-mod-rtmp and iperf3 from Debian when missing). One load point by hand: `rtmpx bench rtmp://127.0.0.1:1935/live/bench --players 1000 --duration 20 --ramp 250 --publish FILE.flv --server-pid PID`.");
    let path = workspace_root().join("docs").join("benchmarks.md");
    // The hand-written reading of the numbers below the marker survives a re-run.
    if let Some(notes) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|old| old.find(NOTES_MARKER).map(|at| old[at..].to_owned()))
    {
        let _ = write!(md, "\n{notes}");
    }
    std::fs::write(&path, md).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn nginx_version() -> String {
    Command::new("nginx")
        .arg("-v")
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .trim_start_matches("nginx version: nginx/")
                .to_owned()
        })
        .unwrap_or_default()
}
