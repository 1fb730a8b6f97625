//! The server under test: the built `rtmpx` binary on a free loopback port.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::Background;

#[derive(Debug)]
pub struct RtmpxServer {
    /// The shared listener (RTMP, RTMPE, RTMPS).
    pub address: SocketAddr,
    /// The TLS-only listener.
    pub tls_address: SocketAddr,
    /// The HTTP-only (RTMPT) listener.
    pub http_address: SocketAddr,
    process: Background,
    _dir: tempfile::TempDir,
}

/// The binary: `RTMPX_BIN` (set by the xtask), else target/debug/rtmpx.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("RTMPX_BIN") {
        return PathBuf::from(path);
    }
    crate::fixtures::target_dir().join("debug").join("rtmpx")
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// Writes `text` to `dir/rtmpx.toml`; its path.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("rtmpx.toml");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write the config: {e}"));
    path
}

impl RtmpxServer {
    pub fn start(extra_args: &[&str]) -> RtmpxServer {
        RtmpxServer::start_wrapped(&[], extra_args)
    }

    /// Starts the server with the configuration `text` (written to `dir/rtmpx.toml`) and `extra_args`.
    pub fn start_with_config(dir: &Path, text: &str, extra_args: &[&str]) -> RtmpxServer {
        let config = write_config(dir, text);
        let config = config.display().to_string();
        let mut args = vec!["--config", config.as_str()];
        args.extend_from_slice(extra_args);
        RtmpxServer::start(&args)
    }

    /// Starts the server through a wrapper command (e.g. `prlimit --nofile=64:4096 --`).
    pub fn start_wrapped(wrapper: &[&str], extra_args: &[&str]) -> RtmpxServer {
        let dir = crate::scratch("server");
        let binary = binary();
        assert!(
            binary.exists(),
            "{} does not exist: run `cargo build -p rtmpx-cli` or `cargo xtask interop`",
            binary.display()
        );
        for _ in 0..5 {
            let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let tls_address = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let http_address = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let mut command = match wrapper.split_first() {
                Some((program, wrapper_args)) => {
                    let mut command = Command::new(program);
                    command.args(wrapper_args).arg(&binary);
                    command
                }
                None => Command::new(&binary),
            };
            command
                .args([
                    "serve",
                    "--listen",
                    &address.to_string(),
                    "--listen-tls",
                    &tls_address.to_string(),
                ])
                .args([
                    "--listen-http",
                    &http_address.to_string(),
                    "--listen-api",
                    "127.0.0.1:0",
                    "--log-level",
                    "info",
                ])
                .args(extra_args);
            let process = Background::spawn("rtmpx", &mut command, &dir.path().join("rtmpx.log"));
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if TcpStream::connect(address).is_ok() && TcpStream::connect(tls_address).is_ok() {
                    return RtmpxServer {
                        address,
                        tls_address,
                        http_address,
                        process,
                        _dir: dir,
                    };
                }
                if process.log().contains("cannot listen") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            let log = process.log();
            drop(process);
            if !log.contains("cannot listen") {
                panic!("rtmpx did not start listening on {address}; log:\n{log}");
            }
        }
        panic!("rtmpx could not bind a free loopback port");
    }

    pub fn url(&self, app_and_stream: &str) -> String {
        format!("rtmp://{}/{app_and_stream}", self.address)
    }

    /// An `rtmps://` URL on the TLS-only listener.
    pub fn rtmps_url(&self, app_and_stream: &str) -> String {
        format!("rtmps://{}/{app_and_stream}", self.tls_address)
    }

    /// A URL of another scheme (`rtmpt`, `rtmpte`, `rtmpts`, `rtmpe`) on the listener that serves it.
    pub fn variant_url(&self, scheme: &str, app_and_stream: &str) -> String {
        let address = match scheme {
            "rtmpt" | "rtmpte" => self.http_address,
            "rtmps" | "rtmpts" => self.tls_address,
            _ => self.address,
        };
        format!("{scheme}://{address}/{app_and_stream}")
    }

    /// An `rtmps://` URL on the shared listener (TLS recognised by its first byte).
    pub fn rtmps_shared_url(&self, app_and_stream: &str) -> String {
        format!("rtmps://{}/{app_and_stream}", self.address)
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The API listener's address, from the server's `listening ... serves="api"` log line (waited
    /// for up to 5 s).
    pub fn api_address(&self) -> SocketAddr {
        let started = Instant::now();
        loop {
            let log = self.log();
            let address = log
                .lines()
                .find(|line| line.contains("serves=\"api\"") || line.contains("serves=api"))
                .and_then(|line| {
                    line.split_whitespace()
                        .find_map(|field| field.strip_prefix("address="))
                })
                .and_then(|address| address.parse().ok());
            if let Some(address) = address {
                return address;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "no API address; log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits (up to 15 s) until the server logs the publish of `app_and_stream`.
    pub fn wait_for_publish(&self, app_and_stream: &str) {
        let needle = format!("stream={app_and_stream}");
        crate::wait_until(
            &format!("the publish of {app_and_stream}"),
            Duration::from_secs(15),
            || self.log(),
            |log| {
                log.lines()
                    .any(|line| line.contains(" publish ") && line.contains(&needle))
            },
        );
    }

    /// Waits until `count` players have started playing `app_and_stream` (the server's `play` log lines),
    /// so a test's publisher starts only once its players are in, however slow the machine is.
    pub fn wait_for_players(&self, app_and_stream: &str, count: usize, limit: Duration) {
        let needle = format!("stream={app_and_stream}");
        let started = Instant::now();
        loop {
            let log = self.log();
            let playing = log
                .lines()
                .filter(|line| line.contains(" play ") && line.ends_with(&needle))
                .count();
            if playing >= count {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "{playing} of {count} players started on {app_and_stream} within {limit:?}; log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// nginx with libnginx-mod-rtmp on a free loopback port: a peer server for our client commands.
#[derive(Debug)]
pub struct NginxRtmp {
    pub address: SocketAddr,
    process: Background,
    _dir: tempfile::TempDir,
}

/// Where Debian puts the RTMP module.
pub fn nginx_rtmp_module() -> Option<PathBuf> {
    [
        "/usr/lib/nginx/modules/ngx_rtmp_module.so",
        "/usr/share/nginx/modules/ngx_rtmp_module.so",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

impl NginxRtmp {
    pub fn start() -> NginxRtmp {
        let dir = crate::scratch("nginx");
        let module = nginx_rtmp_module().unwrap_or_else(|| {
            panic!("ngx_rtmp_module.so missing: `cargo xtask ci` installs libnginx-mod-rtmp")
        });
        let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let root = dir.path().display().to_string();
        let config = format!(
            "load_module {};\ndaemon off;\nmaster_process off;\nworker_processes 1;\nerror_log {root}/error.log info;\npid {root}/nginx.pid;\nevents {{ worker_connections 256; }}\nrtmp {{ server {{ listen {address}; chunk_size 4096; application live {{ live on; publish_notify on; }} }} }}\n",
            module.display()
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, config).unwrap_or_else(|e| panic!("cannot write nginx.conf: {e}"));
        let mut command = Command::new("nginx");
        command.arg("-c").arg(&path).arg("-p").arg(dir.path());
        let process = Background::spawn("nginx", &mut command, &dir.path().join("stderr.log"));
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if TcpStream::connect(address).is_ok() {
                return NginxRtmp {
                    address,
                    process,
                    _dir: dir,
                };
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("nginx did not listen on {address}: {}", process.log());
    }

    pub fn url(&self, app_and_stream: &str) -> String {
        format!("rtmp://{}/{app_and_stream}", self.address)
    }

    /// What nginx wrote to standard error.
    pub fn log(&self) -> String {
        self.process.log()
    }
}
