//! Child processes with hard time limits: nothing a test starts outlives it.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Runs a command to completion within `limit`; kills it and panics if it takes longer.
pub fn run_with_timeout(command: &mut Command, limit: Duration) -> std::process::Output {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {shown}: {e} (is the tool installed? `cargo xtask ci` installs it)"
            )
        });
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let output = child.wait_with_output().ok();
                let stderr = output
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default();
                panic!("{shown} did not finish within {limit:?}; stderr:\n{stderr}");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for {shown}: {e}"),
        }
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("collecting {shown}: {e}"))
}

/// A process running in the background, its stderr in a log file; killed on drop.
#[derive(Debug)]
pub struct Background {
    child: Option<Child>,
    name: String,
    log: std::path::PathBuf,
}

impl Background {
    pub fn spawn(name: &str, command: &mut Command, log: &Path) -> Background {
        let file = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {name}: {e} (is it installed? `cargo xtask ci` installs it)")
            });
        Background {
            child: Some(child),
            name: name.into(),
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to exit by itself within `limit`; panics (with its log) otherwise.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        let Some(child) = self.child.as_mut() else {
            panic!("{} already waited for", self.name)
        };
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                panic!(
                    "{} did not finish within {limit:?}; log:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (e.g. "STOP", "CONT", "INT") to the process.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
