//! The interop harness: start the real `rtmpx` binary on a loopback port, drive real FFmpeg, rtmpdump and
//! GStreamer processes against it with hard timeouts, and compare what players received with what was
//! published, packet by packet (`ffmpeg -f framemd5 -c copy`).
//!
//! The suite runs when `RTMPX_INTEROP=1` (set by `cargo xtask ci` / `cargo xtask interop`, which also
//! install the tools). Without it each test prints one line and returns, so a plain `cargo test` on a
//! machine without FFmpeg stays green; with it, a missing tool is a hard failure.

pub mod browser;
pub mod clients;
pub mod compare;
pub mod fixtures;
pub mod process;
pub mod scenario;
pub mod server;

pub use compare::{assert_contiguous_run, framemd5, runs_in_reference, Packet};
pub use process::{run_with_timeout, Background};
pub use scenario::{Fixture, Play, Player, Publisher, Ran, Scenario, Via};
pub use server::RtmpxServer;

/// True when the interop suite should run; prints why not otherwise.
pub fn enabled(test: &str) -> bool {
    if std::env::var("RTMPX_INTEROP").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("{test}: skipped (set RTMPX_INTEROP=1 or run `cargo xtask interop`)");
    false
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
