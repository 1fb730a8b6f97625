//! A one-line progress display on a terminal (bytes, bitrate, frames), silent otherwise.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Progress {
    verb: &'static str,
    started: Instant,
    last_shown: Instant,
    bytes: u64,
    frames: u64,
    enabled: bool,
}

impl Progress {
    pub fn new(verb: &'static str) -> Self {
        let now = Instant::now();
        Self {
            verb,
            started: now,
            last_shown: now,
            bytes: 0,
            frames: 0,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    pub fn add(&mut self, bytes: usize) {
        self.bytes += bytes as u64;
        self.frames += 1;
        if self.enabled && self.last_shown.elapsed() >= Duration::from_secs(1) {
            self.last_shown = Instant::now();
            self.show("\r");
        }
    }

    fn show(&self, prefix: &str) {
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        let kbps = self.bytes as f64 * 8.0 / 1000.0 / seconds;
        let _ = write!(
            std::io::stderr(),
            "{prefix}{}: {} bytes, {kbps:.0} kbit/s, {} frames, {seconds:.1} s   ",
            self.verb,
            self.bytes,
            self.frames
        );
    }

    /// The closing summary line (always printed).
    pub fn finish(&self) {
        self.show(if self.enabled { "\r" } else { "" });
        let _ = writeln!(std::io::stderr());
    }
}
