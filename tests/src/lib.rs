//! The interop harness: start the real `rtmpx` binary on a loopback port, drive real FFmpeg, rtmpdump and
//! GStreamer processes against it with hard timeouts, and compare what players received with what was
//! published, packet by packet (`ffmpeg -f framemd5 -c copy`).
//!
//! The suite runs when `RTMPX_INTEROP=1` (set by `cargo xtask ci` / `cargo xtask interop`, which also
//! install the tools). Without it each test prints one line and returns, so a plain `cargo test` on a
//! machine without FFmpeg stays green; with it, a missing tool is a hard failure.

use std::time::{Duration, Instant};

pub mod browser;
pub mod clients;
pub mod compare;
pub mod fixtures;
pub mod http;
pub mod process;
pub mod scenario;
pub mod server;

pub use compare::{assert_contiguous_run, framemd5, runs_in_reference, Packet};
pub use process::{run_with_timeout, Background};
pub use scenario::{Fixture, Play, Player, Publisher, Ran, Scenario, Via};
pub use server::{free_port, write_config, RtmpxServer};

/// True when the interop suite should run; prints why not otherwise.
pub fn enabled(test: &str) -> bool {
    if std::env::var("RTMPX_INTEROP").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("{test}: skipped (set RTMPX_INTEROP=1 or run `cargo xtask interop`)");
    false
}

/// Polls `done` until it returns `Ok`; its last `Err` is shown if `limit` passes first.
pub fn wait_for<T>(what: &str, limit: Duration, mut done: impl FnMut() -> Result<T, String>) -> T {
    let started = Instant::now();
    loop {
        let last = match done() {
            Ok(found) => return found,
            Err(last) => last,
        };
        assert!(
            started.elapsed() < limit,
            "{what} within {limit:?}; last seen:\n{last}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `done` holds of what `log` returns, for at most `limit`; panics with `what` and the last
/// log otherwise.
pub fn wait_until(
    what: &str,
    limit: Duration,
    log: impl Fn() -> String,
    done: impl Fn(&str) -> bool,
) {
    wait_for(what, limit, || {
        let text = log();
        if done(&text) {
            Ok(())
        } else {
            Err(text)
        }
    })
}

/// A scratch directory for one test, under the target directory, removed on drop.
pub fn scratch(test: &str) -> tempfile::TempDir {
    let base = fixtures::target_dir().join("interop");
    std::fs::create_dir_all(&base)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", base.display()));
    tempfile::Builder::new()
        .prefix(&format!("{test}-"))
        .tempdir_in(base)
        .unwrap_or_else(|e| panic!("tempdir: {e}"))
}
