//! Project chores that cargo cannot express on its own.
//!
//! * `cargo xtask ci` — everything CI checks, in order: tools, fmt, clippy, layering, tests, interop, fuzz.
//! * `cargo xtask interop [FILTER]` — only the end-to-end suite against real FFmpeg/rtmpdump/GStreamer.
//! * `cargo xtask fuzz TARGET [--time SECONDS]` — run one fuzz target with libFuzzer on the stable toolchain.
//!
//! * `cargo xtask bench [...]` — rtmpx beside nginx-rtmp and node-media-server, written to docs/benchmarks.md.
//! * `cargo xtask vendor` — refresh the browser players the built-in page embeds, from npm (pinned).
//! * `cargo xtask floor` — the kernel's own cost of a fan-out's writes on this machine (bench's reference).
//!
//! Few dependencies (rlimit; tokio's reactor for the floor's reader), so the chores build in seconds on a
//! fresh machine.

mod bench;
mod bench_outputs;
mod fleet;
mod floor;
mod tools;
mod vendor;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

const FUZZ_TARGETS: &[&str] = &["amf0", "amf3", "chunk", "handshake", "flv", "hls"];

type StepResult = Result<(), String>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(&args[1..]),
        Some("interop") => tools::ensure_interop_tools()
            .and_then(|env| interop(args.get(1).map(String::as_str), &env)),
        Some("fuzz") => fuzz_command(&args[1..]),
        Some("bench") => bench::bench(&args[1..]),
        Some("floor") => bench::floor(),
        Some("vendor") => vendor::vendor(),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n  ci [--skip STEP]...       fmt, clippy, layering, tests, interop, fuzz \
                 (steps: tools, fmt, clippy, layering, test, docs, package, interop, bench-smoke, fuzz)\n  interop [FILTER]          the \
                 interop suite only\n  fuzz TARGET [--time S]    run one fuzz target ({})\n  bench [--smoke [--api] [--outputs]] [--players N,N..] [--fleet N,N..] [--windows MS,MS..] [--streams K,K..] [--http-flv N,N..] [--api-players N]\n                            [--hls N,N..] [--relay K,K..] [--record 0|1] [--rounds R]\n                            rtmpx vs nginx-rtmp and node-media-server, with rtmpx bench \
                 (--players, default 100,500,1000,2000) and rtmpdump fleets (--fleet, default 100,300,500; empty: none), \
                 rtmpx's batch windows at 1000 players (--windows, default 0,15,30,45,60,100,200; empty: none), \
                 1000 players over many streams (--streams, default 100; empty: none), HTTP-FLV players of rtmpx and \
                 node-media-server (--http-flv, default 1000; empty: none) and the API's cost, rtmpx with and without \
                 an API poller (--api-players, default 1000; empty: none), LL-HLS viewers beside rtmpx's HTTP-FLV and RTMP \
                 and nginx-rtmp's HLS (--hls, default 1000; empty: none), one stream pushed to K targets by rtmpx \
                 and nginx-rtmp (--relay, default 0,1,10; empty: none) and recorded (--record, default 1; 0: none), \
                 in --rounds alternating rounds (default 2), written to docs/benchmarks.md; --smoke: RTMP, HTTP-FLV \
                 and LL-HLS with 10 players each; --smoke --api: the API row at 50 players; --smoke --outputs: the HLS, relay \
                 and recording rows once at 10 viewers, printed\n  \
                 floor                     the kernel's cost of the same writes without a server (part of bench)\n  \
                 vendor                    refresh the vendored browser players (mpegts.js, hls.js) from npm",
                FUZZ_TARGETS.join(", ")
            );
            Err("unknown or missing command".into())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("\nxtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn ci(args: &[String]) -> StepResult {
    let mut skip: Vec<&str> = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--skip" => skip.push(iter.next().ok_or("--skip needs a step name")?.as_str()),
            other => return Err(format!("unknown ci option {other}")),
        }
    }
    let mut timings: Vec<(&str, f64, bool)> = Vec::new();
    let mut interop_env = Vec::new();
    let steps: &[&str] = &[
        "tools",
        "fmt",
        "clippy",
        "layering",
        "test",
        "docs",
        "package",
        "interop",
        "bench-smoke",
        "fuzz",
    ];
    let mut failure = None;
    for &step in steps {
        if skip.contains(&step) {
            println!("\n==> {step}: skipped (--skip)");
            continue;
        }
        println!("\n==> {step}");
        let started = Instant::now();
        let outcome = match step {
            "tools" => tools::ensure_interop_tools().map(|env| interop_env = env),
            "fmt" => run(cargo().args(["fmt", "--all", "--check"])),
            "clippy" => run(cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ])),
            "layering" => layering(),
            "test" => unit_tests(),
            "docs" => docs(),
            "package" => package(),
            "interop" => interop(None, &interop_env),
            "bench-smoke" => bench::bench(&["--smoke".to_owned()]),
            "fuzz" => FUZZ_TARGETS.iter().try_for_each(|target| fuzz(target, 5)),
            _ => unreachable!("every step is listed"),
        };
        let ok = outcome.is_ok();
        timings.push((step, started.elapsed().as_secs_f64(), ok));
        if let Err(message) = outcome {
            failure = Some(format!("step `{step}` failed: {message}"));
            break;
        }
    }
    println!("\n==> summary");
    for (step, seconds, ok) in &timings {
        println!(
            "  {:<10} {:>7.1} s  {}",
            step,
            seconds,
            if *ok { "ok" } else { "FAILED" }
        );
    }
    let passed = timings.iter().filter(|(_, _, ok)| *ok).count();
    println!("steps: {passed} passed, {} failed", timings.len() - passed);
    match failure {
        Some(message) => Err(message),
        None => Ok(()),
    }
}

fn unit_tests() -> StepResult {
    if tools::has_command("cargo-nextest") {
        run(cargo().args([
            "nextest",
            "run",
            "--workspace",
            "--exclude",
            "rtmpx-interop",
            "--no-fail-fast",
        ]))?;
        // nextest does not run doctests.
        run(cargo().args(["test", "--workspace", "--exclude", "rtmpx-interop", "--doc"]))
    } else {
        run(cargo().args(["test", "--workspace", "--exclude", "rtmpx-interop"]))
    }
}

/// The library crates, each published on its own: `cargo xtask ci` packages them (dry run).
const LIBRARY_CRATES: &[&str] = &[
    "rtmp-amf",
    "rtmp-chunk",
    "rtmp-handshake",
    "rtmp-rtmpe",
    "rtmp-rtmps",
    "rtmp-rtmpt",
    "rtmp-session",
    "rtmp-hub",
    "rtmp-flv",
    "rtmp-hls",
    "rtmp-client",
    "rtmpx",
];

/// The workspace's documentation with every rustdoc warning an error (broken intra-doc links included),
/// and every example built (the doc tests run in the test step).
fn docs() -> StepResult {
    run(cargo()
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    run(cargo().args(["build", "--workspace", "--examples"]))
}

/// `cargo package` of every library crate as a dry run: metadata, readme and file list complete. The
/// crates depend on each other by path and are not on the registry yet, so the lock file is left out
/// and nothing is verified by building against the registry.
fn package() -> StepResult {
    let mut command = cargo();
    command.arg("package");
    for name in LIBRARY_CRATES {
        command.args(["--package", name]);
    }
    run(command.args(["--no-verify", "--allow-dirty", "--exclude-lockfile"]))
}

/// Runs the interop suite: builds the server binary once and hands its path to the tests.
fn interop(filter: Option<&str>, extra_env: &[(String, String)]) -> StepResult {
    run(cargo().args(["build", "--package", "rtmpx-cli", "--bin", "rtmpx"]))?;
    let bin = target_dir().join("debug").join("rtmpx");
    let mut command = cargo();
    command.args(["test", "--package", "rtmpx-interop", "--"]);
    if let Some(filter) = filter {
        command.arg(filter);
    }
    command.env("RTMPX_INTEROP", "1").env("RTMPX_BIN", &bin);
    for (key, value) in extra_env {
        command.env(key, value);
    }
    run(&mut command)
}

/// The layering rule (sans-IO crates depend on no runtime, HTTP or TLS crate) is an ordinary test,
/// `tests/tests/layering.rs`; the step runs it alone so a broken layer fails early.
fn layering() -> StepResult {
    run(cargo().args(["test", "--package", "rtmpx-interop", "--test", "layering"]))
}

fn fuzz_command(args: &[String]) -> StepResult {
    let target = args
        .first()
        .ok_or("usage: cargo xtask fuzz TARGET [--time SECONDS]")?;
    let mut seconds = 60;
    if let Some(pos) = args.iter().position(|a| a == "--time") {
        seconds = args
            .get(pos + 1)
            .and_then(|s| s.parse().ok())
            .ok_or("--time needs a number of seconds")?;
    }
    fuzz(target, seconds)
}

/// Builds one target with libFuzzer's coverage instrumentation (stable flags only) and runs it.
fn fuzz(target: &str, seconds: u64) -> StepResult {
    if !FUZZ_TARGETS.contains(&target) {
        return Err(format!(
            "unknown fuzz target {target}; known: {}",
            FUZZ_TARGETS.join(", ")
        ));
    }
    let root = workspace_root();
    let fuzz_dir = root.join("fuzz");
    let rustflags = [
        "--cfg fuzzing",
        "-Cpasses=sancov-module",
        "-Cllvm-args=-sanitizer-coverage-level=4",
        "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
        "-Cllvm-args=-sanitizer-coverage-pc-table",
        "-Cllvm-args=-sanitizer-coverage-trace-compares",
        "-Cdebug-assertions",
        "-Coverflow-checks",
    ]
    .join(" ");
    // With an explicit --target, RUSTFLAGS reach only the target's code, not build scripts and proc
    // macros, which must not be instrumented (they are not linked with libFuzzer).
    let host = host_triple()?;
    run(cargo()
        .current_dir(&fuzz_dir)
        .env("RUSTFLAGS", rustflags)
        .args(["build", "--release", "--target", &host, "--bin", target]))?;
    let corpus = fuzz_dir.join("corpus").join(target);
    std::fs::create_dir_all(&corpus)
        .map_err(|e| format!("cannot create {}: {e}", corpus.display()))?;
    let artifacts = fuzz_dir.join("artifacts").join(target);
    std::fs::create_dir_all(&artifacts)
        .map_err(|e| format!("cannot create {}: {e}", artifacts.display()))?;
    let binary = fuzz_dir
        .join("target")
        .join(&host)
        .join("release")
        .join(target);
    run(Command::new(binary)
        .arg(format!("-max_total_time={seconds}"))
        .arg("-rss_limit_mb=1024")
        .arg("-timeout=5")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(&corpus))
}

fn host_triple() -> Result<String, String> {
    let output = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| format!("cannot run rustc -vV: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: ").map(str::to_owned))
        .ok_or_else(|| "rustc -vV printed no host triple".into())
}

fn run(command: &mut Command) -> StepResult {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .map_err(|e| format!("cannot start {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} exited with {status}"))
    }
}

fn cargo_path() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn cargo() -> Command {
    let mut command = Command::new(cargo_path());
    command.current_dir(workspace_root());
    command
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}
