//! The outputs' rows of `cargo xtask bench`: LL-HLS viewers beside HTTP-FLV and RTMP players and
//! beside nginx-rtmp's HLS; relay pushes and recording, rtmpx beside nginx-rtmp doing the same, by the
//! server's CPU. Each comparison alternates the servers on fresh processes and notes the load average.

use crate::bench::{bench_run, field, start_nginx_with, start_rtmpx_configured, Load, Row};
use std::fmt::Write as _;

/// LL-HLS viewer counts (`--hls N,N..`).
pub(crate) const HLS_COUNTS: &[usize] = &[1000];
/// Push targets per stream (`--relay K,K..`); 0 is the same stream without a push.
pub(crate) const RELAY_TARGETS: &[usize] = &[0, 1, 10];
/// Alternating rounds of the relay and recording rows (`--rounds R`; `--record 0` leaves recording out).
pub(crate) const ROUNDS: usize = 2;
/// Seconds measured per relay and recording run in the full bench: a stream without players costs a
/// server little, and /proc counts CPU in 10 ms ticks.
const CPU_RUN_SECONDS: u64 = 30;
/// Viewers of `--smoke`'s LL-HLS check.
pub(crate) const SMOKE_VIEWERS: usize = 10;

/// The stream's application in rtmpx with LL-HLS (docs/hls.md defaults: 333 ms parts, 2 s segments).
const RTMPX_HLS: &str = "[app.live]\nhls = true\n";
/// nginx-rtmp's HLS as close to rtmpx's as it goes: 2 s fragments cut at keyframes, 6 in the
/// playlist (rtmpx's window), one directory per stream (`/live/NAME/index.m3u8`, as rtmpx's path).
const NGINX_HLS: &str = "hls on; hls_nested on; hls_fragment 2s; hls_playlist_length 12s;";

/// The load average (1, 5, 15 min) now.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".into())
}

/// CPU seconds (user + system) of a process so far.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some((fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?) / 100.0)
}

/// One viewer count's HLS comparison.
pub(crate) struct HlsBlock {
    viewers: usize,
    load_average: String,
    rows: Vec<Row>,
}

/// One run of the relay or recording rows: a fresh server with one publisher and no player.
pub(crate) struct CpuRun {
    server: &'static str,
    /// What it did: "no push", "push x 10", "no recording", "record = \"all\" (FLV)", ...
    case: String,
    /// Push targets (relay rows).
    targets: usize,
    round: usize,
    row: Row,
    /// The push target's CPU seconds over the run (relay rows): it shows the pushes flowed.
    target_cpu_s: Option<f64>,
    load_average: String,
}

impl CpuRun {
    fn cpu_percent(&self) -> f64 {
        self.row.cpu_percent()
    }
}

/// Everything the outputs' rows measured.
#[derive(Default)]
pub(crate) struct Outputs {
    hls: Vec<HlsBlock>,
    relay: Vec<CpuRun>,
    record: Vec<CpuRun>,
}

impl Outputs {
    pub(crate) fn is_empty(&self) -> bool {
        self.hls.is_empty() && self.relay.is_empty() && self.record.is_empty()
    }
}

/// What the outputs' rows measure, from `cargo xtask bench`'s options.
pub(crate) struct Plan {
    pub(crate) hls: Vec<usize>,
    pub(crate) relay: Vec<usize>,
    pub(crate) record: bool,
    pub(crate) rounds: usize,
    /// Seconds per relay and recording run (None: the load's).
    pub(crate) cpu_run_seconds: Option<u64>,
}

impl Plan {
    /// `--smoke --outputs`: every row once, at the smoke's size.
    pub(crate) fn smoke() -> Self {
        Self {
            hls: vec![SMOKE_VIEWERS],
            relay: vec![0, 1],
            record: true,
            rounds: 1,
            cpu_run_seconds: None,
        }
    }

    pub(crate) fn from_args(args: &[String]) -> Result<Self, String> {
        let list = crate::bench::list_option;
        let rounds = list(args, "--rounds", &[ROUNDS], "round count")?
            .first()
            .copied()
            .unwrap_or(ROUNDS)
            .max(1);
        Ok(Self {
            hls: list(args, "--hls", HLS_COUNTS, "viewer count")?,
            relay: list(args, "--relay", RELAY_TARGETS, "push target count")?,
            record: list(args, "--record", &[1], "0 or 1")?.first() != Some(&0),
            rounds,
            cpu_run_seconds: Some(CPU_RUN_SECONDS),
        })
    }
}

fn hls_viewers(http: u16, plain: bool) -> Vec<String> {
    let mut viewers = vec![format!("--hls=127.0.0.1:{http}")];
    if plain {
        viewers.push("--hls-plain".into());
    }
    viewers
}

/// rtmpx's LL-HLS at `viewers`: the smoke check (10 viewers, a few seconds).
pub(crate) fn smoke(load: &Load<'_>) -> Result<(), String> {
    let (server, port, http) = start_rtmpx_configured(load.binary, load.dir, RTMPX_HLS)?;
    let viewers = hls_viewers(http, false);
    let row = bench_run(
        load,
        "rtmpx LL-HLS".into(),
        (port, &viewers),
        server.0.id(),
        SMOKE_VIEWERS,
        1,
    )?;
    println!("{}", row.json.trim());
    if field(&row.json, "failed") != 0.0
        || field(&row.json, "frames") < 100.0
        || field(&row.json, "samples") < 10.0
    {
        return Err(format!("LL-HLS smoke bench failed: {}", row.json.trim()));
    }
    Ok(())
}

/// Measures the rows `plan` asks for.
pub(crate) fn measure(load: &Load<'_>, plan: &Plan) -> Result<Outputs, String> {
    let mut outputs = Outputs::default();
    for &viewers in &plan.hls {
        outputs.hls.push(hls_block(load, viewers)?);
    }
    let load = &Load {
        seconds: plan.cpu_run_seconds.unwrap_or(load.seconds),
        ..*load
    };
    if !plan.relay.is_empty() {
        for round in 1..=plan.rounds {
            for &targets in &plan.relay {
                for server in ["rtmpx", "nginx-rtmp"] {
                    let run = relay_run(load, server, targets, round)?;
                    println!(
                        "{server} {}, round {round}: {:.2}% of a core",
                        run.case,
                        run.cpu_percent()
                    );
                    outputs.relay.push(run);
                }
            }
        }
    }
    if plan.record {
        for round in 1..=plan.rounds {
            for (server, format) in [
                ("rtmpx", None),
                ("nginx-rtmp", None),
                ("rtmpx", Some("flv")),
                ("nginx-rtmp", Some("flv")),
                ("rtmpx", Some("mp4")),
            ] {
                let run = record_run(load, server, format, round)?;
                println!(
                    "{server} {}, round {round}: {:.2}% of a core",
                    run.case,
                    run.cpu_percent()
                );
                outputs.record.push(run);
            }
        }
    }
    Ok(outputs)
}

/// `viewers` LL-HLS viewers of rtmpx, nginx-rtmp's HLS and rtmpx's with plain viewers, rtmpx's
/// HTTP-FLV and RTMP players: each on a fresh server, rtmpx and nginx-rtmp alternating.
fn hls_block(load: &Load<'_>, viewers: usize) -> Result<HlsBlock, String> {
    let load_average = load_average();
    let mut rows = Vec::new();
    let mut record = |row: Row| {
        println!("{} {viewers} viewers: {}", row.server, row.json.trim());
        rows.push(row);
    };
    let (server, port, http) = start_rtmpx_configured(load.binary, load.dir, RTMPX_HLS)?;
    let args = hls_viewers(http, false);
    record(bench_run(
        load,
        "rtmpx LL-HLS".into(),
        (port, &args),
        server.0.id(),
        viewers,
        1,
    )?);
    drop(server);
    let root = load.dir.join("nginx-hls");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    let directives = format!("{NGINX_HLS} hls_path {};", root.display());
    let (server, port, http) = start_nginx_with(load.dir, &directives, Some(&root))?;
    let http = http.ok_or("nginx started without its HTTP listener")?;
    let args = hls_viewers(http, true);
    record(bench_run(
        load,
        "nginx-rtmp HLS (plain viewers)".into(),
        (port, &args),
        server.0.id(),
        viewers,
        1,
    )?);
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
    let (server, port, http) = start_rtmpx_configured(load.binary, load.dir, RTMPX_HLS)?;
    let args = hls_viewers(http, true);
    record(bench_run(
        load,
        "rtmpx HLS (plain viewers)".into(),
        (port, &args),
        server.0.id(),
        viewers,
        1,
    )?);
    drop(server);
    let (server, port, http) = start_rtmpx_configured(load.binary, load.dir, "")?;
    let args = vec![format!("--http-flv=127.0.0.1:{http}")];
    record(bench_run(
        load,
        "rtmpx HTTP-FLV".into(),
        (port, &args),
        server.0.id(),
        viewers,
        1,
    )?);
    drop(server);
    let (server, port, _) = start_rtmpx_configured(load.binary, load.dir, "")?;
    record(bench_run(
        load,
        "rtmpx RTMP".into(),
        (port, &[]),
        server.0.id(),
        viewers,
        1,
    )?);
    Ok(HlsBlock {
        viewers,
        load_average,
        rows,
    })
}

/// One stream from `server` pushed to `targets` streams of a second rtmpx (the same target for both
/// servers), no player: the source's CPU, and the target's.
fn relay_run(
    load: &Load<'_>,
    server: &'static str,
    targets: usize,
    round: usize,
) -> Result<CpuRun, String> {
    let load_average = load_average();
    let target_dir = load.dir.join("relay-target");
    std::fs::create_dir_all(&target_dir).map_err(|e| e.to_string())?;
    let (target, target_port, _) = start_rtmpx_configured(load.binary, &target_dir, "")?;
    let urls: Vec<String> = (0..targets)
        .map(|k| format!("rtmp://127.0.0.1:{target_port}/live/bench-{k}"))
        .collect();
    let target_before = cpu_seconds(target.0.id());
    let case = match targets {
        0 => "no push".to_owned(),
        k => format!("push x {k}"),
    };
    let row = if server == "rtmpx" {
        let config = if urls.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
            format!("[app.live]\npush = [{}]\n", quoted.join(", "))
        };
        let (source, port, _) = start_rtmpx_configured(load.binary, load.dir, &config)?;
        let label = format!("rtmpx {case}");
        bench_run(load, label, (port, &[]), source.0.id(), 0, 1)?
    } else {
        let directives: String = urls.iter().map(|u| format!("push {u}; ")).collect();
        let (source, port, _) = start_nginx_with(load.dir, &directives, None)?;
        let label = format!("nginx-rtmp {case}");
        bench_run(load, label, (port, &[]), source.0.id(), 0, 1)?
    };
    let target_cpu_s = match (target_before, cpu_seconds(target.0.id())) {
        (Some(before), Some(after)) => Some(after - before),
        _ => None,
    };
    Ok(CpuRun {
        server,
        case,
        targets,
        round,
        row,
        target_cpu_s,
        load_average,
    })
}

/// One stream to `server` recorded in `format` (None: not recorded), no player.
fn record_run(
    load: &Load<'_>,
    server: &'static str,
    format: Option<&str>,
    round: usize,
) -> Result<CpuRun, String> {
    let load_average = load_average();
    let files = load.dir.join("recordings");
    let _ = std::fs::remove_dir_all(&files);
    std::fs::create_dir_all(&files).map_err(|e| e.to_string())?;
    let case = match (server, format) {
        (_, None) => "no recording".to_owned(),
        ("rtmpx", Some(format)) => format!("record = \"all\" ({})", format.to_uppercase()),
        (_, Some(_)) => "record all (FLV)".to_owned(),
    };
    let label = format!("{server} {case}");
    let row = if server == "rtmpx" {
        let config = format.map_or(String::new(), |format| {
            format!(
                "[app.live]\nrecord = \"all\"\nrecord_format = \"{format}\"\nrecord_path = \"{}/{{name}}-{{start}}.{{ext}}\"\n",
                files.display()
            )
        });
        let (source, port, _) = start_rtmpx_configured(load.binary, load.dir, &config)?;
        bench_run(load, label, (port, &[]), source.0.id(), 0, 1)?
    } else {
        let directives = format.map_or(String::new(), |_| {
            format!(
                "record all; record_path {}; record_unique on;",
                files.display()
            )
        });
        let (source, port, _) = start_nginx_with(load.dir, &directives, None)?;
        bench_run(load, label, (port, &[]), source.0.id(), 0, 1)?
    };
    let written: u64 = std::fs::read_dir(&files)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    let _ = std::fs::remove_dir_all(&files);
    if format.is_some() && written == 0 {
        return Err(format!("{server} recorded nothing ({case})"));
    }
    Ok(CpuRun {
        server,
        case,
        targets: 0,
        round,
        row,
        target_cpu_s: None,
        load_average,
    })
}

/// The mean CPU (% of a core) of the runs of `server` doing `case`.
fn mean_cpu(runs: &[CpuRun], server: &str, case: &str) -> Option<f64> {
    let cpus: Vec<f64> = runs
        .iter()
        .filter(|r| r.server == server && r.case == case)
        .map(CpuRun::cpu_percent)
        .collect();
    (!cpus.is_empty()).then(|| cpus.iter().sum::<f64>() / cpus.len() as f64)
}

/// The outputs' sections of docs/benchmarks.md.
pub(crate) fn write(md: &mut String, outputs: &Outputs) {
    for block in &outputs.hls {
        write_hls(md, block);
    }
    if !outputs.relay.is_empty() {
        write_relay(md, &outputs.relay);
    }
    if !outputs.record.is_empty() {
        write_record(md, &outputs.record);
    }
    if !outputs.relay.is_empty() || !outputs.record.is_empty() {
        let _ = writeln!(md, "\n{NOISE_NOTE}");
    }
}

fn write_hls(md: &mut String, block: &HlsBlock) {
    let viewers = block.viewers;
    let _ = writeln!(md, "\n## HLS viewers ({viewers} viewers, `rtmpx bench --hls`)\n\nThe same publisher over RTMP; {viewers} viewers on one stream, each on its own servers in turn (load average before: {}). **rtmpx LL-HLS**: each viewer behaves as hls.js in low-latency mode, over one HTTP/1.1 keep-alive connection: a blocking playlist reload (`_HLS_msn`/`_HLS_part` of the preload hint's part), then every part it lists that the viewer has not fetched (333 ms parts, 2 s segments). **Plain viewers** poll the playlist every half target duration and fetch each new segment whole, as a player without low-latency mode: against nginx-rtmp's HLS (MPEG-TS on disk, 2 s fragments cut at keyframes, 6 in the playlist, served by the same nginx process's `http` block) and against rtmpx's own segments. Latency is from a frame's publication to the arrival of the part or segment holding it: rtmpx keeps the RTMP timestamps as decode times (`tfdt` and `trun` durations, timescale 1000), nginx-rtmp writes them x 90 plus its fixed 700 ms delay; every sample found is timed, video and audio. Delivered bytes are the bodies (playlists not counted; init segments counted). The HTTP-FLV and RTMP rows are the same audience of rtmpx's other outputs. A stall is a gap over 1 s between two parts, or over two target durations between two segments.\n", block.load_average);
    let _ = writeln!(md, "| server | viewers | playing | failed | delivered Mbit/s | server CPU % of a core | CPU s per delivered Gbit | peak RSS MiB | latency p50 / p99 / max ms | stalls | generator CPU % |\n|---|---|---|---|---|---|---|---|---|---|---|");
    for row in &block.rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.0} |",
            row.server,
            row.players,
            row.delivery_cells(),
            field(&row.json, "stalls"),
            row.generator_cpu_percent()
        );
    }
    let Some(ours) = block.rows.iter().find(|r| r.server == "rtmpx LL-HLS") else {
        return;
    };
    let _ = writeln!(md, "\n| rtmpx LL-HLS against | viewers | CPU per delivered Gbit | p50 latency | p99 latency |\n|---|---|---|---|---|");
    for theirs in block.rows.iter().filter(|r| r.server != ours.server) {
        let _ = writeln!(
            md,
            "| {} | {viewers} | {:.2} | {:.2} | {:.2} |",
            theirs.server,
            ours.cpu_per_gbit() / theirs.cpu_per_gbit(),
            field(&ours.json, "p50") / field(&theirs.json, "p50"),
            field(&ours.json, "p99") / field(&theirs.json, "p99")
        );
    }
}

fn write_cpu_runs(md: &mut String, runs: &[CpuRun], with_target: bool) {
    let target_head = if with_target {
        " push target's CPU % |"
    } else {
        ""
    };
    let _ = writeln!(
        md,
        "| round | server | case | server CPU % of a core |{target_head} load average before |"
    );
    let _ = writeln!(
        md,
        "|---|---|---|---|{}---|",
        if with_target { "---|" } else { "" }
    );
    for run in runs {
        let target = match (with_target, run.target_cpu_s) {
            (false, _) => String::new(),
            (true, Some(cpu)) => format!(" {:.2} |", cpu / field(&run.row.json, "seconds") * 100.0),
            (true, None) => " |".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.2} |{target} {} |",
            run.round,
            run.server,
            run.case,
            run.cpu_percent(),
            run.load_average
        );
    }
}

fn write_relay(md: &mut String, runs: &[CpuRun]) {
    let _ = writeln!(md, "\n## Relay: pushing one stream on (`push`)\n\nOne publisher (the same ~2.5 Mbit/s file) and no player; the server pushes the stream to K streams of a second rtmpx (`push = [...]` in rtmpx, K `push rtmp://...;` lines in nginx-rtmp's application), or not at all (K = 0), so the pushes' own cost shows as the difference. The target is the same for both servers; its CPU shows the pushes flowed. Rounds alternate rtmpx and nginx-rtmp, each run on fresh processes.\n");
    write_cpu_runs(md, runs, true);
    let mut targets: Vec<usize> = runs.iter().map(|r| r.targets).collect();
    targets.sort_unstable();
    targets.dedup();
    let _ = writeln!(md, "\n| pushes | rtmpx CPU % (mean) | nginx-rtmp CPU % (mean) | rtmpx / nginx-rtmp | rtmpx's push cost, points per target | nginx-rtmp's push cost, points per target |\n|---|---|---|---|---|---|");
    let case = |k: usize| match k {
        0 => "no push".to_owned(),
        k => format!("push x {k}"),
    };
    let base = |server: &str| mean_cpu(runs, server, &case(0));
    for &k in &targets {
        let ours = mean_cpu(runs, "rtmpx", &case(k)).unwrap_or(f64::NAN);
        let theirs = mean_cpu(runs, "nginx-rtmp", &case(k)).unwrap_or(f64::NAN);
        let per_target = |mean: f64, server: &str| match (k, base(server)) {
            (0, _) | (_, None) => "".to_owned(),
            (k, Some(base)) => format!("{:.2}", (mean - base) / k as f64),
        };
        let _ = writeln!(
            md,
            "| {k} | {ours:.2} | {theirs:.2} | {:.2} | {} | {} |",
            ours / theirs,
            per_target(ours, "rtmpx"),
            per_target(theirs, "nginx-rtmp")
        );
    }
}

fn write_record(md: &mut String, runs: &[CpuRun]) {
    let _ = writeln!(md, "\n## Recording (`record`)\n\nOne publisher (the same ~2.5 Mbit/s file) and no player; the server records the stream (rtmpx: `record = \"all\"` with `record_format = \"flv\"` or `\"mp4\"`; nginx-rtmp: `record all;`, FLV) or not, to this machine's disk. Rounds alternate rtmpx and nginx-rtmp, each run on fresh processes; the files are checked to be written and deleted after each run.\n");
    write_cpu_runs(md, runs, false);
    let _ = writeln!(md, "\n| server | recording | CPU % (mean) | against the same server without recording | against nginx-rtmp's `record all` |\n|---|---|---|---|---|");
    let nginx_record = mean_cpu(runs, "nginx-rtmp", "record all (FLV)");
    let mut cases: Vec<(&str, &str)> = runs.iter().map(|r| (r.server, r.case.as_str())).collect();
    cases.sort_unstable();
    cases.dedup();
    for (server, case) in cases {
        let Some(mean) = mean_cpu(runs, server, case) else {
            continue;
        };
        let without = mean_cpu(runs, server, "no recording");
        let ratio =
            |other: Option<f64>| other.map_or(String::new(), |o| format!("{:.2}", mean / o));
        let _ = writeln!(
            md,
            "| {server} | {case} | {mean:.2} | {} | {} |",
            ratio(without),
            if case == "no recording" {
                String::new()
            } else {
                ratio(nginx_record)
            }
        );
    }
}

/// How to read the relay and recording means.
const NOISE_NOTE: &str = "A stream with no player costs a server a few percent of a core, so these differences are small against the machine's noise: read the means over the rounds beside each round's spread, and measure again with more `--rounds` when they overlap.";
