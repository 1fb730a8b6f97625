//! `cargo xtask bench`: rtmpx, nginx-rtmp and node-media-server side by side on this machine, under the same load from
//! `rtmpx bench`, written to docs/benchmarks.md. `--smoke` runs a short check of rtmpx alone (CI does).

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{cargo, run, target_dir, workspace_root, StepResult};

const NGINX_PACKAGES: &[&str] = &["nginx", "libnginx-mod-rtmp", "iperf3"];
/// The second load generator's tools: librtmp's player and the socket statistics reader.
const FLEET_PACKAGES: &[&str] = &["rtmpdump", "iproute2"];
/// Load points of `rtmpx bench`.
const COUNTS: &[usize] = &[100, 500, 1000, 2000];
/// Fleet sizes: a process per player, so the machine's two cores bound them well below `rtmpx bench`'s.
const FLEET_COUNTS: &[usize] = &[100, 300, 500];
/// rtmpx batch windows (ms) measured at [`SWEEP_PLAYERS`]: how its CPU trades against latency.
const SWEEP_WINDOWS: &[usize] = &[0, 15, 30, 45, 60, 100, 200];
/// The kernel's floor (see `floor`): the writes per player per second of rtmpx without a window, with
/// its default 30 ms window, with the 37 ms one that is the longest a p99 latency of 40 ms leaves room
/// for, and with a 60 ms one, at the issue's reference load and the fixture's rate.
const FLOOR_WRITES_PER_S: &[f64] = &[62.0, 33.0, 27.0, 17.0];
const FLOOR_PLAYERS: usize = 1000;
const FLOOR_BITS_PER_S: f64 = 2.5e6;

/// The audience of the batch window sweep: the issue's reference load.
const SWEEP_PLAYERS: usize = 1000;
/// Stream counts of the many-streams load: [`MANY_STREAMS_PLAYERS`] players spread over each.
const MANY_STREAMS: &[usize] = &[100];
const MANY_STREAMS_PLAYERS: usize = 1000;
/// HTTP-FLV players (`rtmpx bench --http-flv`) on one stream, beside RTMP players at the same count.
const HTTP_FLV_COUNTS: &[usize] = &[1000];

/// The audience of the API cost row: rtmpx with and without an API poller.
const API_PLAYERS: usize = 1000;
/// Alternating rounds (without, with) of the API cost row.
const API_ROUNDS: usize = 2;
/// The audience of `--smoke --api`.
const API_SMOKE_PLAYERS: usize = 50;
/// What the poller asks for each second: what a dashboard and a Prometheus would.
const API_POLLED: &[&str] = &["/api/v1/clients", "/metrics"];

/// `--OPTION 100,500` (empty: none), or the default; `what` names one number in errors.
pub(crate) fn list_option(
    args: &[String],
    option: &str,
    default: &[usize],
    what: &str,
) -> Result<Vec<usize>, String> {
    let Some(at) = args.iter().position(|a| a == option) else {
        return Ok(default.to_vec());
    };
    let value = args
        .get(at + 1)
        .ok_or(format!("{option} needs a comma-separated list of {what}s"))?;
    value
        .split(',')
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| format!("{option}: not a {what}: {v}"))
        })
        .collect()
}

pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

pub(crate) fn wait_for_port(port: u16) -> StepResult {
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
    start_rtmpx_with(binary, dir, batch_window_ms, None, None).map(|(child, port, _)| (child, port))
}

/// rtmpx, with the port of its RTMP listener and of its HTTP listener (HTTP-FLV).
fn start_rtmpx_with_http(
    binary: &Path,
    dir: &Path,
    batch_window_ms: Option<u64>,
) -> Result<(Killed, u16, u16), String> {
    start_rtmpx_with(binary, dir, batch_window_ms, None, None)
}

/// rtmpx, with its API listening on `api` when given.
fn start_rtmpx_with_api(
    binary: &Path,
    dir: &Path,
    batch_window_ms: Option<u64>,
    api: Option<u16>,
) -> Result<(Killed, u16), String> {
    start_rtmpx_with(binary, dir, batch_window_ms, api, None).map(|(child, port, _)| (child, port))
}

/// rtmpx with this configuration file (TOML), without its API (so that two can run at once), with
/// the ports of its RTMP and HTTP listeners.
pub(crate) fn start_rtmpx_configured(
    binary: &Path,
    dir: &Path,
    config: &str,
) -> Result<(Killed, u16, u16), String> {
    let path = dir.join("rtmpx.toml");
    std::fs::write(&path, format!("listen_api = []\n{config}"))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    start_rtmpx_with(binary, dir, None, None, Some(&path))
}

/// rtmpx, with the ports of its RTMP and HTTP listeners, its API on `api` when given, reading
/// `config` when given.
fn start_rtmpx_with(
    binary: &Path,
    dir: &Path,
    batch_window_ms: Option<u64>,
    api: Option<u16>,
    config: Option<&Path>,
) -> Result<(Killed, u16, u16), String> {
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
        .args(api.map(|api| format!("--listen-api=127.0.0.1:{api}")))
        .args(config.map(|config| format!("--config={}", config.display())))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start rtmpx: {e}"))?;
    let child = Killed(child);
    wait_for_port(port)?;
    wait_for_port(http)?;
    Ok((child, port, http))
}

/// node-media-server, pinned to its current release, installed with npm into the bench directory when missing.
const NODE_MEDIA_SERVER_VERSION: &str = "4.4.3";
/// The oldest Node.js that node-media-server 4 supports (its `engines` field).
const NODE_MEDIA_SERVER_NODE_MAJOR: u32 = 20;

/// A harness that runs node-media-server bound to loopback, without its admin console, with its defaults
/// otherwise (chunk size 65535, GOP cache on). Arguments: the RTMP port, a data directory, and, for its
/// HTTP-FLV (`http://127.0.0.1:PORT/APP/STREAM.flv`), an HTTP port: without it, RTMP only.
const NODE_MEDIA_SERVER_APP: &str = r#"// Generated by cargo xtask bench: node-media-server on 127.0.0.1.
const NodeMediaServer = require('node-media-server');
const port = parseInt(process.argv[2], 10);
const data = process.argv[3];
const httpPort = process.argv[4] ? parseInt(process.argv[4], 10) : null;
const config = {
  bind: '127.0.0.1',
  rtmp: { port },
  store: { path: data + '/store' },
  record: { auto: false, path: data + '/record' },
  auth: { play: false, publish: false, secret: '' },
  webadmin: { enable: false },
};
if (httpPort !== null) config.http = { port: httpPort };
new NodeMediaServer(config).run();
"#;

/// The major version of the `node` on PATH, if it runs.
fn node_major_version() -> Option<u32> {
    node_version().split('.').next()?.parse().ok()
}

/// Installs the pinned node-media-server (unless that version is there) and writes the harness; None, with the
/// reason printed, when this machine's Node.js cannot run it.
fn ensure_node_media_server(dir: &Path) -> Result<Option<PathBuf>, String> {
    if !crate::tools::has_command("node") || !crate::tools::has_command("npm") {
        println!("node or npm missing: node-media-server is not compared");
        return Ok(None);
    }
    match node_major_version() {
        Some(major) if major >= NODE_MEDIA_SERVER_NODE_MAJOR => {}
        found => {
            println!(
                "node-media-server {NODE_MEDIA_SERVER_VERSION} needs Node.js {NODE_MEDIA_SERVER_NODE_MAJOR} or newer \
                 (found {}): node-media-server is not compared",
                found.map_or("none that runs".into(), |v| format!("major version {v}"))
            );
            return Ok(None);
        }
    }
    let home = dir.join("node-media-server");
    std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    if node_media_server_version(dir) != NODE_MEDIA_SERVER_VERSION {
        run(Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&home)
            .arg(format!("node-media-server@{NODE_MEDIA_SERVER_VERSION}")))?;
    }
    let app = home.join("app.js");
    std::fs::write(&app, NODE_MEDIA_SERVER_APP).map_err(|e| e.to_string())?;
    Ok(Some(app))
}

fn node_media_server_version(dir: &Path) -> String {
    std::fs::read_to_string(
        dir.join("node-media-server/node_modules/node-media-server/package.json"),
    )
    .ok()
    .and_then(|text| {
        text.split("\"version\":")
            .nth(1)
            .and_then(|rest| rest.split('"').nth(1))
            .map(str::to_owned)
    })
    .unwrap_or_default()
}

/// node-media-server on a free RTMP port, and with `http` on a free HTTP port too (its HTTP-FLV):
/// the process and its ports.
fn start_node_media_server(app: &Path, http: bool) -> Result<(Killed, u16, Option<u16>), String> {
    let port = free_port()?;
    let http = if http { Some(free_port()?) } else { None };
    let mut command = Command::new("node");
    command
        .arg(app)
        .arg(port.to_string())
        .arg(app.with_file_name("data"));
    if let Some(http) = http {
        command.arg(http.to_string());
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start node: {e}"))?;
    let child = Killed(child);
    wait_for_port(port)?;
    if let Some(http) = http {
        wait_for_port(http)?;
    }
    Ok((child, port, http))
}

fn start_nginx(dir: &Path) -> Result<(Killed, u16), String> {
    start_nginx_with(dir, "", None).map(|(child, port, _)| (child, port))
}

/// nginx-rtmp with `directives` added to its `live` application and, given `http_root`, an HTTP
/// listener serving that directory as `/live/` (its HLS): the RTMP port and the HTTP one.
pub(crate) fn start_nginx_with(
    dir: &Path,
    directives: &str,
    http_root: Option<&Path>,
) -> Result<(Killed, u16, Option<u16>), String> {
    let port = free_port()?;
    let module = crate::tools::nginx_rtmp_module()
        .ok_or("ngx_rtmp_module.so not found (libnginx-mod-rtmp)")?;
    let http = match http_root {
        Some(root) => {
            let http = free_port()?;
            let temp = dir.join("nginx-temp");
            std::fs::create_dir_all(&temp).map_err(|e| e.to_string())?;
            let temp = temp.display();
            let paths: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
                .iter()
                .map(|kind| format!("{kind}_temp_path {temp}/{kind}; "))
                .collect();
            Some((http, format!("http {{ access_log off; {paths}server {{ listen 127.0.0.1:{http}; location /live/ {{ alias {}/; }} }} }}\n", root.display())))
        }
        None => None,
    };
    let config = format!(
        "load_module {module};\ndaemon off;\nmaster_process off;\nworker_processes 1;\nerror_log {}/nginx-error.log warn;\npid {}/nginx.pid;\nevents {{ worker_connections 10000; }}\nrtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096; application live {{ live on; {directives} }} }} }}\n{}",
        dir.display(),
        dir.display(),
        http.as_ref().map_or("", |(_, block)| block.as_str())
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
    if let Some((http, _)) = &http {
        wait_for_port(*http)?;
    }
    Ok((child, port, http.map(|(http, _)| http)))
}

/// A server configuration under test.
#[derive(Clone, Copy)]
enum Target {
    /// rtmpx with this batch window (None: its default).
    Rtmpx(Option<u64>),
    Nginx,
    NodeMediaServer,
}

impl Target {
    fn label(self) -> String {
        match self {
            Target::Rtmpx(None) => "rtmpx (default)".into(),
            Target::Rtmpx(Some(ms)) => format!("rtmpx (batch {ms} ms)"),
            Target::Nginx => "nginx-rtmp".into(),
            Target::NodeMediaServer => "node-media-server".into(),
        }
    }
}

pub(crate) struct Row {
    pub(crate) server: String,
    pub(crate) players: usize,
    pub(crate) streams: usize,
    pub(crate) json: String,
}

impl Row {
    /// The cells every delivery table shares: playing | failed | delivered Mbit/s | server CPU % |
    /// CPU s per delivered Gbit | peak RSS MiB | latency p50 / p99 / max ms.
    pub(crate) fn delivery_cells(&self) -> String {
        let j = &self.json;
        format!(
            "{} | {} | {:.0} | {:.1} | {:.2} | {:.1} | {:.1} / {:.1} / {:.1}",
            field(j, "playing"),
            field(j, "failed"),
            field(j, "mbit_per_s"),
            self.cpu_percent(),
            self.cpu_per_gbit(),
            field(j, "server_peak_rss_kib") / 1024.0,
            field(j, "p50"),
            field(j, "p99"),
            field(j, "max"),
        )
    }

    pub(crate) fn cpu_percent(&self) -> f64 {
        field(&self.json, "server_cpu_s") / field(&self.json, "seconds") * 100.0
    }

    pub(crate) fn generator_cpu_percent(&self) -> f64 {
        field(&self.json, "generator_cpu_s") / field(&self.json, "seconds") * 100.0
    }

    fn delivered_gbit(&self) -> f64 {
        field(&self.json, "mbit_per_s") * field(&self.json, "seconds") / 1000.0
    }

    pub(crate) fn cpu_per_gbit(&self) -> f64 {
        field(&self.json, "server_cpu_s") / self.delivered_gbit()
    }

    /// The server's and the load generator's CPU together: on loopback part of a sender's transmit work
    /// runs in the receiving process (docs/benchmarks.md), so this is the fair total.
    fn both_cpu_per_gbit(&self) -> f64 {
        (field(&self.json, "server_cpu_s") + field(&self.json, "generator_cpu_s"))
            / self.delivered_gbit()
    }

    fn figures(&self) -> Figures<'_> {
        Figures {
            server: &self.server,
            players: self.players,
            cpu_per_gbit: self.cpu_per_gbit(),
            both_cpu_per_gbit: self.both_cpu_per_gbit(),
            rss_kib: field(&self.json, "server_peak_rss_kib"),
            p99: field(&self.json, "p99"),
        }
    }
}

pub(crate) fn field(json: &str, key: &str) -> f64 {
    json.split(&format!("\"{key}\":"))
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// What every load point shares.
pub(crate) struct Load<'a> {
    pub(crate) binary: &'a Path,
    pub(crate) fixture: &'a Path,
    pub(crate) dir: &'a Path,
    pub(crate) seconds: u64,
}

/// A server's label as a file name part: "rtmpx (batch 0 ms)" -> "rtmpx--batch-0-ms-".
pub(crate) fn file_label(server: &str) -> String {
    server
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// `players` players spread over `streams` streams, each with its own publisher; with `http_flv`, the
/// players read HTTP-FLV from that port.
fn bench_streams(
    load: &Load<'_>,
    server: String,
    (port, http_flv): (u16, Option<u16>),
    pid: u32,
    players: usize,
    streams: usize,
) -> Result<Row, String> {
    let viewers: Vec<String> = http_flv
        .map(|http| format!("--http-flv=127.0.0.1:{http}"))
        .into_iter()
        .collect();
    bench_run(load, server, (port, &viewers), pid, players, streams)
}

/// `rtmpx bench` publishing to the RTMP `port`, with `viewers` (its options choosing how players
/// watch: none for RTMP, `--http-flv=...`, `--hls=...`).
pub(crate) fn bench_run(
    load: &Load<'_>,
    server: String,
    (port, viewers): (u16, &[String]),
    pid: u32,
    players: usize,
    streams: usize,
) -> Result<Row, String> {
    let (binary, fixture, dir, seconds) = (load.binary, load.fixture, load.dir, load.seconds);
    let json = dir.join(format!("{}-{players}-{streams}s.json", file_label(&server)));
    let ramp = (players / 4).max(50).to_string();
    let status = Command::new(binary)
        .args([
            "bench",
            &format!("rtmp://127.0.0.1:{port}/live/bench"),
            "--players",
            &players.to_string(),
            "--streams",
            &streams.to_string(),
            "--duration",
            &seconds.to_string(),
            "--ramp",
            &ramp,
            "--server-pid",
            &pid.to_string(),
            "--publish",
        ])
        .arg(fixture)
        .args(viewers)
        .arg("--json")
        .arg(&json)
        .status()
        .map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(&json)
        .map_err(|e| format!("no report from the bench ({status}): {e}"))?;
    Ok(Row {
        server,
        players,
        streams,
        json: text,
    })
}

/// nginx-rtmp and node-media-server inherit this process's open-file limit, and a soft limit of 1024
/// (usual in a login shell) would have them refuse players at 1000 and 2000: raise it towards the hard limit.
fn raise_open_files_for_servers(players: usize) {
    let wanted = players as u64 + 256;
    match rlimit::increase_nofile_limit(wanted) {
        Ok(limit) if limit < wanted => println!(
            "warning: the open-file limit is {limit} (hard limit), below the {wanted} that {players} players \
             need: the servers will refuse players beyond it; raise it with `ulimit -Hn`"
        ),
        Ok(_) => {}
        Err(error) => println!("warning: cannot raise the open-file limit: {error}"),
    }
}

pub fn bench(args: &[String]) -> StepResult {
    let smoke = args.iter().any(|a| a == "--smoke");
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if smoke {
        run(cargo().args(["build", "--package", "rtmpx-cli"]))?;
        let binary = target_dir().join("debug").join("rtmpx");
        let fixture = fixture(&dir, "640x360", 5, 800)?;
        let (server, port) = start_rtmpx(&binary, &dir, None)?;
        let load = Load {
            binary: &binary,
            fixture: &fixture,
            dir: &dir,
            seconds: 5,
        };
        let row = bench_streams(&load, "rtmpx".into(), (port, None), server.0.id(), 10, 1)?;
        println!("{}", row.json.trim());
        if field(&row.json, "failed") != 0.0 || field(&row.json, "frames") < 100.0 {
            return Err(format!("smoke bench failed: {}", row.json.trim()));
        }
        drop(server);
        let (server, port, http) = start_rtmpx_with_http(&binary, &dir, None)?;
        let label = "rtmpx HTTP-FLV".to_owned();
        let row = bench_streams(&load, label, (port, Some(http)), server.0.id(), 10, 1)?;
        println!("{}", row.json.trim());
        if field(&row.json, "failed") != 0.0 || field(&row.json, "frames") < 100.0 {
            return Err(format!("HTTP-FLV smoke bench failed: {}", row.json.trim()));
        }
        drop(server);
        crate::bench_outputs::smoke(&load)?;
        if args.iter().any(|a| a == "--outputs") {
            crate::tools::ensure_packages(&["nginx", "libnginx-mod-rtmp"], &["nginx"])?;
            let plan = crate::bench_outputs::Plan::smoke();
            let outputs = crate::bench_outputs::measure(&load, &plan)?;
            let mut md = String::new();
            crate::bench_outputs::write(&mut md, &outputs);
            println!("{md}");
        }
        if args.iter().any(|a| a == "--api") {
            let cost = api_cost(&load, API_SMOKE_PLAYERS, 1)?;
            println!("{}", cost.summary());
            if cost.polls == 0 {
                return Err("the API poller got no answer".into());
            }
        }
        return Ok(());
    }
    crate::tools::ensure_packages(NGINX_PACKAGES, &["nginx", "iperf3"])?;
    crate::tools::ensure_packages(FLEET_PACKAGES, &["rtmpdump", "ss"])?;
    run(cargo().args(["build", "--release", "--package", "rtmpx-cli"]))?;
    let binary = target_dir().join("release").join("rtmpx");
    let fixture = fixture(&dir, "1280x720", 30, 2400)?;
    let seconds = 20;
    let counts = list_option(args, "--players", COUNTS, "player count")?;
    let fleet_counts = list_option(args, "--fleet", FLEET_COUNTS, "player count")?;
    let windows = list_option(args, "--windows", SWEEP_WINDOWS, "batch window in ms")?;
    let stream_counts = list_option(args, "--streams", MANY_STREAMS, "stream count")?;
    let http_flv_counts = list_option(args, "--http-flv", HTTP_FLV_COUNTS, "player count")?;
    let outputs_plan = crate::bench_outputs::Plan::from_args(args)?;
    let api_players = list_option(args, "--api-players", &[API_PLAYERS], "player count")?
        .first()
        .copied()
        .unwrap_or(0);
    let most_players = counts
        .iter()
        .chain(&fleet_counts)
        .chain(&outputs_plan.hls)
        .copied()
        .max()
        .unwrap_or(0);
    raise_open_files_for_servers(most_players);
    // rtmpx as shipped, rtmpx writing every frame at once (no batch window), nginx-rtmp and, where this
    // machine's Node.js can run it, node-media-server.
    let node_app = ensure_node_media_server(&dir)?;
    let mut targets = vec![Target::Rtmpx(None), Target::Rtmpx(Some(0)), Target::Nginx];
    if node_app.is_some() {
        targets.push(Target::NodeMediaServer);
    }
    let start = |target: Target| match target {
        Target::Rtmpx(window) => start_rtmpx(&binary, &dir, window),
        Target::Nginx => start_nginx(&dir),
        Target::NodeMediaServer => match &node_app {
            Some(app) => start_node_media_server(app, false).map(|(child, port, _)| (child, port)),
            None => Err("node-media-server is not installed".into()),
        },
    };
    let load = Load {
        binary: &binary,
        fixture: &fixture,
        dir: &dir,
        seconds,
    };
    // One `rtmpx bench` load point against a freshly started server.
    let measure = |target: Target, players: usize, streams: usize| -> Result<Row, String> {
        let (child, port) = start(target)?;
        let row = bench_streams(
            &load,
            target.label(),
            (port, None),
            child.0.id(),
            players,
            streams,
        )?;
        println!(
            "{} {players} players, {streams} streams: {}",
            row.server,
            row.json.trim()
        );
        Ok(row)
    };
    let mut rows = Vec::new();
    for &target in &targets {
        for &players in &counts {
            rows.push(measure(target, players, 1)?);
        }
    }
    let mut fleet_rows = Vec::new();
    for &target in &targets {
        for &players in &fleet_counts {
            let (child, port) = start(target)?;
            let row = crate::fleet::fleet_one(&load, target.label(), port, child.0.id(), players)?;
            println!(
                "{} {players} rtmpdump players: {}/{players} alive, {:.0} Mbit/s, {:.2} CPU s",
                row.server, row.alive, row.mbit_per_s, row.server_cpu_s
            );
            fleet_rows.push(row);
        }
    }
    let mut sweep_rows = Vec::new();
    for &window in &windows {
        sweep_rows.push(measure(
            Target::Rtmpx(Some(window as u64)),
            SWEEP_PLAYERS,
            1,
        )?);
    }
    let mut many_rows = Vec::new();
    for &streams in &stream_counts {
        for &target in targets
            .iter()
            .filter(|t| !matches!(t, Target::Rtmpx(Some(_))))
        {
            many_rows.push(measure(target, MANY_STREAMS_PLAYERS, streams)?);
        }
    }
    // HTTP-FLV players: rtmpx's and, where it runs, node-media-server's.
    let mut http_flv_rows = Vec::new();
    for &players in &http_flv_counts {
        let (child, port, http) = start_rtmpx_with_http(&binary, &dir, None)?;
        let label = "rtmpx HTTP-FLV".to_owned();
        let row = bench_streams(&load, label, (port, Some(http)), child.0.id(), players, 1)?;
        println!("{} {players} players: {}", row.server, row.json.trim());
        http_flv_rows.push(row);
        drop(child);
        if let Some(app) = &node_app {
            let (child, port, http) = start_node_media_server(app, true)?;
            let label = "node-media-server HTTP-FLV".to_owned();
            let row = bench_streams(&load, label, (port, http), child.0.id(), players, 1)?;
            println!("{} {players} players: {}", row.server, row.json.trim());
            http_flv_rows.push(row);
        }
    }
    let api = if api_players > 0 {
        let cost = api_cost(&load, api_players, API_ROUNDS)?;
        println!("{}", cost.summary());
        Some(cost)
    } else {
        None
    };
    let outputs = crate::bench_outputs::measure(&load, &outputs_plan)?;
    let iperf = loopback_reference();
    let floor = write_floor_reference();
    let node_version = node_app.as_ref().map(|_| node_media_server_version(&dir));
    let report = Report {
        rows: &rows,
        fleet: &fleet_rows,
        sweep: &sweep_rows,
        many: &many_rows,
        http_flv: &http_flv_rows,
        api: api.as_ref(),
        outputs: &outputs,
        iperf: &iperf,
        floor: &floor,
        seconds,
        node: node_version.as_deref(),
    };
    write_report(&report)
}

/// `cargo xtask floor`: the floor's table alone, printed.
pub fn floor() -> StepResult {
    raise_open_files_for_servers(FLOOR_PLAYERS);
    let floor = write_floor_reference();
    let mut md = String::new();
    write_floor(&mut md, &floor, &[]);
    println!("{md}");
    Ok(())
}

fn write_floor_reference() -> Vec<(f64, Result<crate::floor::Floor, String>)> {
    FLOOR_WRITES_PER_S
        .iter()
        .map(|&writes_per_s| {
            let load = crate::floor::Load {
                players: FLOOR_PLAYERS,
                bits_per_s: FLOOR_BITS_PER_S,
                writes_per_s,
                seconds: 10.0,
            };
            let measured = crate::floor::measure(load).map_err(|e| e.to_string());
            println!("kernel floor, {writes_per_s} writes per player per s: {measured:?}");
            (writes_per_s, measured)
        })
        .collect()
}

/// The kernel's floor beside the servers' own figures at the same audience.
fn write_floor(
    md: &mut String,
    floor: &[(f64, Result<crate::floor::Floor, String>)],
    rows: &[Row],
) {
    let _ = writeln!(md, "\n## The kernel's floor: the writes alone ({FLOOR_PLAYERS} players)\n\nOne thread writes {:.1} Mbit/s to each of {FLOOR_PLAYERS} loopback TCP connections (`TCP_NODELAY`) in N equal writes per connection per second, four staggered groups as rtmpx's wake groups, while another thread reads them all (epoll); the writing thread's CPU is what any server making those writes pays at least on this machine, with no RTMP and no other work. rtmpx makes about 62 writes per player per second without a window, 33 with its default 30 ms one, 27 with 37 ms (its p99 latency is about the window plus 3-4 ms, so the fewest writes a p99 of at most 40 ms allows), 17 with 60 ms.\n", FLOOR_BITS_PER_S / 1e6);
    let _ = writeln!(md, "| writes per player per s | bytes per write | writing thread CPU % of a core | CPU s per delivered Gbit |");
    let _ = writeln!(md, "|---|---|---|---|");
    for (writes_per_s, measured) in floor {
        let bytes = (FLOOR_BITS_PER_S / 8.0 / writes_per_s).round();
        match measured {
            Ok(f) => {
                let _ = writeln!(
                    md,
                    "| {writes_per_s:.0} | {bytes:.0} | {:.1} | {:.2} |",
                    f.core_percent, f.cpu_s_per_gbit
                );
            }
            Err(error) => {
                let _ = writeln!(
                    md,
                    "| {writes_per_s:.0} | {bytes:.0} | not measured: {error} | |"
                );
            }
        }
    }
    let references: Vec<String> = rows
        .iter()
        .filter(|r| r.players == FLOOR_PLAYERS)
        .map(|r| format!("{} {:.2}", r.server, r.cpu_per_gbit()))
        .collect();
    if !references.is_empty() {
        let _ = writeln!(md, "\nThe servers at {FLOOR_PLAYERS} players, CPU s per delivered Gbit (the first table): {}.", references.join(", "));
    }
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

/// Everything `cargo xtask bench` measured.
struct Report<'a> {
    rows: &'a [Row],
    fleet: &'a [crate::fleet::FleetRow],
    /// rtmpx at [`SWEEP_PLAYERS`] under each batch window.
    sweep: &'a [Row],
    /// [`MANY_STREAMS_PLAYERS`] players over each of [`MANY_STREAMS`] streams.
    many: &'a [Row],
    /// HTTP-FLV players, rtmpx's and node-media-server's, at each of [`HTTP_FLV_COUNTS`].
    http_flv: &'a [Row],
    /// The API's cost: rtmpx with and without an API poller, at [`API_PLAYERS`].
    api: Option<&'a ApiCost>,
    /// LL-HLS, relay and recording rows.
    outputs: &'a crate::bench_outputs::Outputs,
    iperf: &'a str,
    /// The kernel's cost of the writes alone, per [`FLOOR_WRITES_PER_S`].
    floor: &'a [(f64, Result<crate::floor::Floor, String>)],
    seconds: u64,
    node: Option<&'a str>,
}

/// One server's figures at one load point, whichever generator measured them.
struct Figures<'a> {
    server: &'a str,
    players: usize,
    cpu_per_gbit: f64,
    /// The server's and its clients' (the load generator's) CPU together.
    both_cpu_per_gbit: f64,
    rss_kib: f64,
    p99: f64,
}

/// Ratio tables of every rtmpx configuration against each reference server measured at the same load.
fn write_ratios(md: &mut String, figures: &[Figures<'_>]) {
    for reference in [Target::Nginx.label(), Target::NodeMediaServer.label()] {
        if !figures.iter().any(|f| f.server == reference) {
            continue;
        }
        let _ = writeln!(md, "\n### Ratios rtmpx / {reference} (lower is better)\n\n| rtmpx | players | CPU per delivered Gbit | server + clients CPU per delivered Gbit | RSS per player | p99 latency |\n|---|---|---|---|---|---|");
        for ours in figures.iter().filter(|f| f.server.starts_with("rtmpx")) {
            let Some(theirs) = figures
                .iter()
                .find(|f| f.server == reference && f.players == ours.players)
            else {
                continue;
            };
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
                ours.server,
                ours.players,
                ours.cpu_per_gbit / theirs.cpu_per_gbit,
                ours.both_cpu_per_gbit / theirs.both_cpu_per_gbit,
                ours.rss_kib / theirs.rss_kib,
                ours.p99 / theirs.p99
            );
        }
    }
}

/// rtmpx's CPU against its latency as the batch window grows, beside the reference servers measured at the
/// same audience: where rtmpx's curve passes the reference's latency, and where it reaches half its CPU.
fn write_sweep(md: &mut String, sweep: &[Row], rows: &[Row]) {
    let references: Vec<&Row> = rows
        .iter()
        .filter(|r| !r.server.starts_with("rtmpx") && r.players == SWEEP_PLAYERS)
        .collect();
    let _ = writeln!(md, "\n## rtmpx's batch window: CPU against latency ({SWEEP_PLAYERS} players, `rtmpx bench`)\n\nThe same load with `--batch-window-ms` from 0 (every frame written at once) upwards: a longer window means fewer, larger writes per player (the kernel's cost is mostly per write) and a longer wait for the frames in it.\n");
    let mut header = String::from("| batch window ms | server CPU % of a core | CPU s per delivered Gbit | latency p50 / p99 / max ms |");
    let mut rule = String::from("|---|---|---|---|");
    for reference in &references {
        let _ = write!(header, " CPU vs {} |", reference.server);
        rule.push_str("---|");
    }
    let _ = writeln!(md, "{header}\n{rule}");
    for row in sweep {
        let j = &row.json;
        let window = row
            .server
            .trim_start_matches("rtmpx (batch ")
            .trim_end_matches(" ms)");
        let _ = write!(
            md,
            "| {window} | {:.1} | {:.2} | {:.1} / {:.1} / {:.1} |",
            row.cpu_percent(),
            row.cpu_per_gbit(),
            field(j, "p50"),
            field(j, "p99"),
            field(j, "max")
        );
        for reference in &references {
            let _ = write!(
                md,
                " {:.2} |",
                row.cpu_per_gbit() / reference.cpu_per_gbit()
            );
        }
        let _ = writeln!(md);
    }
    for reference in &references {
        let _ = writeln!(
            md,
            "\n{} at {SWEEP_PLAYERS} players (table above): {:.2} CPU s per delivered Gbit, p99 {:.1} ms.",
            reference.server,
            reference.cpu_per_gbit(),
            field(&reference.json, "p99")
        );
    }
}

/// HTTP-FLV players beside RTMP players of rtmpx at the same count, and beside node-media-server's HTTP-FLV.
fn write_http_flv(md: &mut String, http_flv: &[Row], rows: &[Row]) {
    let _ = writeln!(md, "\n## HTTP-FLV players (`rtmpx bench --http-flv`)\n\nThe same publisher over RTMP; the players read `http://HOST/live/bench.flv` over HTTP/1.1 (chunked), as browsers' mpegts.js does, and are timed as RTMP players are.\n\n| server | players | playing | failed | delivered Mbit/s | server CPU % of a core | CPU s per delivered Gbit | peak RSS MiB | latency p50 / p99 / max ms | generator CPU % |\n|---|---|---|---|---|---|---|---|---|---|");
    for row in http_flv {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.0} |",
            row.server,
            row.players,
            row.delivery_cells(),
            row.generator_cpu_percent()
        );
    }
    let _ = writeln!(md, "\n| rtmpx HTTP-FLV against | players | CPU per delivered Gbit | p99 latency |\n|---|---|---|---|");
    for ours in http_flv.iter().filter(|r| r.server.starts_with("rtmpx")) {
        let references = rows
            .iter()
            .filter(|r| r.server == Target::Rtmpx(None).label())
            .chain(http_flv.iter().filter(|r| !r.server.starts_with("rtmpx")))
            .filter(|r| r.players == ours.players);
        for theirs in references {
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} | {:.2} |",
                theirs.server,
                ours.players,
                ours.cpu_per_gbit() / theirs.cpu_per_gbit(),
                field(&ours.json, "p99") / field(&theirs.json, "p99")
            );
        }
    }
}

/// Many small streams: the same players spread over streams of their own, each with a publisher.
fn write_many_streams(md: &mut String, many: &[Row]) {
    let _ = writeln!(md, "\n## Many streams ({MANY_STREAMS_PLAYERS} players, `rtmpx bench --streams K`)\n\nK publishers of the same file on streams of their own, the players spread evenly over them (100 streams: 10 players each).\n\n| server | streams | players | playing | failed | delivered Mbit/s | server CPU % of a core | CPU s per delivered Gbit | peak RSS MiB | latency p50 / p99 / max ms | generator CPU % |\n|---|---|---|---|---|---|---|---|---|---|---|");
    for row in many {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.0} |",
            row.server,
            row.streams,
            row.players,
            row.delivery_cells(),
            row.generator_cpu_percent()
        );
    }
    let mut counts: Vec<usize> = many.iter().map(|row| row.streams).collect();
    counts.dedup();
    for streams in counts {
        let figures: Vec<Figures<'_>> = many
            .iter()
            .filter(|row| row.streams == streams)
            .map(Row::figures)
            .collect();
        write_ratios(md, &figures);
    }
}

fn write_report(report: &Report<'_>) -> StepResult {
    let (rows, seconds) = (report.rows, report.seconds);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Benchmarks: rtmpx, nginx-rtmp and node-media-server side by side\n"
    );
    let node_text = report.node.map_or(String::new(), |v| {
        format!(", and node-media-server {v} (npm, on Node.js {}, RTMP only, its defaults: chunk size 65535, GOP cache on)", node_version())
    });
    let _ = writeln!(md, "Made by `cargo xtask bench` on this project's 2-core machine: one publisher (H.264 + AAC, ~2.5 Mbit/s, looped) and N players on one stream (and, in one table, 1000 players over many streams, each with its publisher), {seconds} s of measurement per load point, with two load generators. Servers: rtmpx (release build; as shipped, with `--batch-window-ms 0`, and a sweep of batch windows at {SWEEP_PLAYERS} players), nginx {} with libnginx-mod-rtmp (Debian), one worker, `master_process off`, chunk size 4096{node_text}. Loopback reference (iperf3, one stream): {}.\n", nginx_version(), report.iperf);
    if !rows.is_empty() {
        let _ = writeln!(md, "## Load generator 1: `rtmpx bench`\n\nOne process holds the publisher and every player (latency measured on one clock, counted once every player has joined). Its own CPU is in the table too: on loopback a segment's receive path runs in the sending process, and a segment a server leaves queued until the player's acknowledgement (Nagle's algorithm) is sent from the acknowledging process, so a server writing many small pieces without `TCP_NODELAY` moves part of its transmit work into the generator. The server + generator column counts both.\n");
        let _ = writeln!(md, "| server | players | playing | failed | delivered Mbit/s | server CPU % of a core | CPU s per delivered Gbit | generator CPU % | server + generator CPU s per Gbit | peak RSS MiB | RSS KiB per player | latency p50 / p99 / max ms | stalls |");
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for row in rows {
            let j = &row.json;
            let rss = field(j, "server_peak_rss_kib");
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.0} | {:.1} | {:.2} | {:.0} | {:.2} | {:.1} | {:.0} | {:.1} / {:.1} / {:.1} | {} |",
                row.server, row.players, field(j, "playing"), field(j, "failed"), field(j, "mbit_per_s"), row.cpu_percent(), row.cpu_per_gbit(), row.generator_cpu_percent(), row.both_cpu_per_gbit(), rss / 1024.0, rss / row.players as f64,
                field(j, "p50"), field(j, "p99"), field(j, "max"), field(j, "stalls")
            );
        }
        let figures: Vec<Figures<'_>> = rows.iter().map(Row::figures).collect();
        write_ratios(&mut md, &figures);
    }
    if !report.sweep.is_empty() {
        write_sweep(&mut md, report.sweep, rows);
    }
    if !report.floor.is_empty() {
        write_floor(&mut md, report.floor, rows);
    }
    if !report.many.is_empty() {
        write_many_streams(&mut md, report.many);
    }
    if !report.http_flv.is_empty() {
        write_http_flv(&mut md, report.http_flv, rows);
    }
    if let Some(api) = report.api {
        write_api_cost(&mut md, api);
    }
    if !report.outputs.is_empty() {
        crate::bench_outputs::write(&mut md, report.outputs);
    }
    if !report.fleet.is_empty() {
        let _ = writeln!(md, "\n## Load generator 2: a fleet of `rtmpdump` processes\n\nN librtmp players, one `rtmpdump -v -r URL -o /dev/null` process each, reading as promptly as a player application (each wakes up and acknowledges per segment, where `rtmpx bench` reads its players in bursts from one thread). `rtmpx bench` publishes and keeps {} players of its own on the stream to measure latency; delivered bytes are the kernel's counters of every client socket (`ss`), the server's CPU is read from /proc over the window. A process per player costs far more than a task, so the fleet stops at 500 players on this machine.\n", crate::fleet::PROBES);
        let _ = writeln!(md, "| server | rtmpdump players | still playing | delivered Mbit/s | server CPU % of a core | CPU s per delivered Gbit | clients' CPU % of a core | server + clients CPU s per Gbit | peak RSS MiB | RSS KiB per player | probes' latency p50 / p99 / max ms |");
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
        for row in report.fleet {
            let j = &row.probes_json;
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.0} | {:.1} | {:.2} | {:.0} | {:.2} | {:.1} | {:.0} | {:.1} / {:.1} / {:.1} |",
                row.server,
                row.players,
                row.alive,
                row.mbit_per_s,
                row.server_cpu_s / row.seconds * 100.0,
                row.cpu_per_gbit(),
                row.clients_cpu_s / row.seconds * 100.0,
                row.both_cpu_per_gbit(),
                row.server_peak_rss_kib / 1024.0,
                row.server_peak_rss_kib / (row.players + crate::fleet::PROBES) as f64,
                field(j, "p50"),
                field(j, "p99"),
                field(j, "max")
            );
        }
        let fleet_figures: Vec<Figures<'_>> = report
            .fleet
            .iter()
            .map(|row| Figures {
                server: &row.server,
                players: row.players,
                cpu_per_gbit: row.cpu_per_gbit(),
                both_cpu_per_gbit: row.both_cpu_per_gbit(),
                rss_kib: row.server_peak_rss_kib,
                p99: field(&row.probes_json, "p99"),
            })
            .collect();
        write_ratios(&mut md, &fleet_figures);
    }
    let _ = writeln!(md, "\nThe numbers come from one run on a shared machine: compare the servers within a table (measured back to back), not across runs. The load generators share the machine's two cores with the server, so absolute latencies include their own scheduling.\n\nReproduce: `cargo xtask bench` (installs nginx, libnginx-mod-rtmp, iperf3, rtmpdump and iproute2 from Debian, and node-media-server {NODE_MEDIA_SERVER_VERSION} with npm into target/bench, when missing, if Node.js {NODE_MEDIA_SERVER_NODE_MAJOR} or newer is there). One load point by hand: `rtmpx bench rtmp://127.0.0.1:1935/live/bench --players 1000 --duration 20 --ramp 250 --publish FILE.flv --server-pid PID`.");
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
    version_line("nginx", "nginx version: nginx/")
}

fn node_version() -> String {
    version_line("node", "v")
}

/// What `PROGRAM -v` prints of its version (on stdout or stderr), without `prefix`; empty if it does not run.
fn version_line(program: &str, prefix: &str) -> String {
    Command::new(program)
        .arg("-v")
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .trim()
                .trim_start_matches(prefix)
                .to_owned()
        })
        .unwrap_or_default()
}

/// The API's cost at one load: the same `rtmpx bench` run without and with a poller asking for
/// [`API_POLLED`] every second, in alternating rounds.
struct ApiCost {
    players: usize,
    without: Vec<Row>,
    with: Vec<Row>,
    /// Answers the poller got, over every round with it.
    polls: usize,
}

impl ApiCost {
    fn mean_cpu(rows: &[Row]) -> f64 {
        rows.iter().map(Row::cpu_percent).sum::<f64>() / rows.len().max(1) as f64
    }

    fn summary(&self) -> String {
        let (without, with) = (Self::mean_cpu(&self.without), Self::mean_cpu(&self.with));
        format!(
            "API cost at {} players: {without:.1}% of a core without the poller, {with:.1}% with it \
             ({} answers): ratio {:.3}, {:+.1} points; stalls {} / {}",
            self.players,
            self.polls,
            with / without,
            with - without,
            self.without.iter().map(|r| field(&r.json, "stalls")).sum::<f64>(),
            self.with.iter().map(|r| field(&r.json, "stalls")).sum::<f64>(),
        )
    }
}

/// Asks the API for [`API_POLLED`] once a second until stopped; counts the answers with status 200.
struct ApiPoller {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<usize>,
}

impl ApiPoller {
    fn start(api: u16) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut answers = 0;
            while !stopped.load(Ordering::Relaxed) {
                let turn = Instant::now();
                for path in API_POLLED {
                    if api_get(api, path) == Some(200) {
                        answers += 1;
                    }
                }
                std::thread::sleep(Duration::from_secs(1).saturating_sub(turn.elapsed()));
            }
            answers
        });
        Self { stop, thread }
    }

    fn finish(self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

/// One `GET` on the API; its status code, reading the whole answer.
fn api_get(api: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", api)).ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).ok()?;
    std::str::from_utf8(answer.get(9..12)?).ok()?.parse().ok()
}

/// The API cost row: `rounds` alternating pairs of runs at `players`, each on a fresh server.
fn api_cost(load: &Load<'_>, players: usize, rounds: usize) -> Result<ApiCost, String> {
    let mut cost = ApiCost {
        players,
        without: Vec::new(),
        with: Vec::new(),
        polls: 0,
    };
    for _ in 0..rounds {
        for polled in [false, true] {
            let api = free_port()?;
            let (child, port) = start_rtmpx_with_api(load.binary, load.dir, None, Some(api))?;
            let label = if polled {
                "rtmpx (API polled)"
            } else {
                "rtmpx (API idle)"
            };
            let poller = polled.then(|| ApiPoller::start(api));
            let row = bench_streams(load, label.into(), (port, None), child.0.id(), players, 1)?;
            if let Some(poller) = poller {
                cost.polls += poller.finish();
            }
            println!("{label} {players} players: {}", row.json.trim());
            if polled {
                cost.with.push(row);
            } else {
                cost.without.push(row);
            }
        }
    }
    Ok(cost)
}

/// The API cost table: each round's CPU without and with the poller, and the means.
fn write_api_cost(md: &mut String, cost: &ApiCost) {
    let _ = writeln!(md, "\n## The API's cost\n\nrtmpx (as shipped) at {} players, the same `rtmpx bench` run without and with a poller asking for {} every second, in alternating runs on fresh servers. Aim: within the noise, under 2% of a core.\n", cost.players, API_POLLED.join(" and "));
    let _ = writeln!(
        md,
        "| run | server CPU % of a core | delivered Mbit/s | latency p99 ms | stalls |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|");
    for (without, with) in cost.without.iter().zip(&cost.with) {
        for row in [without, with] {
            let _ = writeln!(
                md,
                "| {} | {:.1} | {:.0} | {:.1} | {} |",
                row.server,
                row.cpu_percent(),
                field(&row.json, "mbit_per_s"),
                field(&row.json, "p99"),
                field(&row.json, "stalls")
            );
        }
    }
    let _ = writeln!(md, "\n{}.", cost.summary());
}
