//! Headless Chromium for the browser tests: the system `chromium` (Debian's package), driven by
//! `tests/browser/watch.mjs` (puppeteer-core, pinned in `tests/browser/package.json`), opening a page
//! that exposes `window.rtmpxStats()` (the server's built-in page does) and sampling it twice a second.
//!
//! `cargo xtask ci` installs Chromium and the npm packages when missing; a browser test runs under
//! `RTMPX_INTEROP=1` like every interop test, and a missing browser is then a failure, not a skip.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::process::run_with_timeout;

/// One sample of what the page played, `t_ms` after it was opened.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Milliseconds since the page was opened.
    pub t_ms: u64,
    /// Video frames the browser decoded so far (`getVideoPlaybackQuality().totalVideoFrames`).
    pub decoded_frames: u64,
    /// The video element's `currentTime`, in seconds.
    pub current_time: f64,
    /// How far behind live the player is, in seconds (hls.js's `latency`; for FLV, the buffer ahead).
    pub latency: f64,
    /// The video's decoded size.
    pub width: u32,
    /// The video's decoded size.
    pub height: u32,
    /// The player's last error, if any.
    pub error: Option<String>,
}

/// What a page played over a watch, with the browser's own complaints.
#[derive(Debug)]
pub struct Watched {
    /// Twice a second, in order; samples before the page defined `rtmpxStats` are left out.
    pub samples: Vec<Sample>,
    /// Console errors, page errors and failed requests.
    pub browser_log: String,
}

impl Watched {
    /// Asserts the page played: no player error, decoded frames rose and `currentTime` advanced by at
    /// least `seconds` between the first sample that shows a frame and the last.
    pub fn assert_played(&self, seconds: f64) {
        let context = || format!("samples: {:?}\nbrowser: {}", self.samples, self.browser_log);
        if let Some(error) = self.samples.iter().find_map(|s| s.error.clone()) {
            panic!("the player reported an error: {error}\n{}", context());
        }
        let first = self
            .samples
            .iter()
            .find(|s| s.decoded_frames > 0)
            .unwrap_or_else(|| panic!("no video frame was decoded\n{}", context()));
        let last = self.samples.last().unwrap_or(first);
        assert!(
            last.decoded_frames > first.decoded_frames,
            "decoded frames did not rise ({} then {})\n{}",
            first.decoded_frames,
            last.decoded_frames,
            context()
        );
        assert!(
            last.current_time - first.current_time >= seconds,
            "currentTime advanced {:.2} s, less than {seconds} s\n{}",
            last.current_time - first.current_time,
            context()
        );
    }

    /// The largest latency among the samples that show playback.
    pub fn worst_latency(&self) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.decoded_frames > 0)
            .map(|s| s.latency)
            .fold(0.0, f64::max)
    }
}

/// The browser to drive: `RTMPX_CHROMIUM`, else Debian's `/usr/bin/chromium`.
pub fn chromium() -> PathBuf {
    std::env::var_os("RTMPX_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

fn harness_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Panics with what to do when Chromium or the harness's npm packages are missing.
pub fn require() {
    let chromium = chromium();
    assert!(
        chromium.exists(),
        "{} is missing: install Debian's chromium (`cargo xtask ci` does)",
        chromium.display()
    );
    let puppeteer = harness_dir().join("node_modules/puppeteer-core/package.json");
    assert!(
        puppeteer.exists(),
        "{} is missing: run `npm ci` in tests/browser (`cargo xtask ci` does)",
        puppeteer.display()
    );
}

/// Opens `url` in headless Chromium for `seconds` and returns what the page reported.
pub fn watch(url: &str, seconds: u32) -> Watched {
    require();
    let output = run_with_timeout(
        Command::new("node")
            .arg(harness_dir().join("watch.mjs"))
            .arg(url)
            .arg(seconds.to_string())
            .env("RTMPX_CHROMIUM", chromium()),
        Duration::from_secs(u64::from(seconds) + 30),
    );
    let browser_log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "watch.mjs failed ({}) on {url}:\n{browser_log}",
        output.status
    );
    let samples = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(parse_sample)
        .collect();
    Watched {
        samples,
        browser_log,
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let stats = value.get("stats").filter(|s| !s.is_null())?;
    let number = |name: &str| stats.get(name).and_then(serde_json::Value::as_f64);
    Some(Sample {
        t_ms: value.get("t").and_then(serde_json::Value::as_u64)?,
        decoded_frames: number("decodedFrames").unwrap_or(0.0) as u64,
        current_time: number("currentTime").unwrap_or(0.0),
        latency: number("latency").unwrap_or(0.0),
        width: number("width").unwrap_or(0.0) as u32,
        height: number("height").unwrap_or(0.0) as u32,
        error: stats
            .get("error")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_line_parses_and_a_line_without_stats_does_not() {
        let sample = parse_sample(
            r#"{"t":1500,"stats":{"decodedFrames":42,"currentTime":1.25,"latency":0.8,"width":640,"height":360,"error":null}}"#,
        );
        assert_eq!(
            sample,
            Some(Sample {
                t_ms: 1500,
                decoded_frames: 42,
                current_time: 1.25,
                latency: 0.8,
                width: 640,
                height: 360,
                error: None,
            })
        );
        assert_eq!(parse_sample(r#"{"t":500,"stats":null}"#), None);
        assert_eq!(parse_sample("not json"), None);
    }
}
