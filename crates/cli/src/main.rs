//! The `rtmpx` command: `rtmpx serve` (the default) runs the server; `publish`, `play`, `probe` and
//! `bench` are its client tools, on `rtmp-client`.

mod commands;
mod logging;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use commands::ClientArgs;
use rtmpx::config::{Config, PublishPolicyName};
use rtmpx::{limits, Server};

#[derive(Debug, Parser)]
#[command(
    name = "rtmpx",
    version,
    about = "An RTMP media server: publish with OBS or FFmpeg, play with anything."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default when no command is given).
    Serve(ServeArgs),
    /// Publish an FLV file to a URL in real time.
    Publish {
        /// The FLV file to send.
        file: PathBuf,
        /// rtmp://, rtmps://, rtmpt://, rtmpts://, rtmpe:// or rtmpte://HOST[:PORT]/APP/STREAM
        url: String,
        /// Start again at the end of the file, with increasing timestamps.
        #[arg(long = "loop")]
        looped: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Play a URL and write it as FLV (`-o -` for standard output, e.g. `| ffplay -`).
    Play {
        url: String,
        #[arg(short, long, value_name = "OUT.flv")]
        output: PathBuf,
        /// Play a recording from this many milliseconds in (the server restarts at the keyframe at or
        /// before it); without it, the live stream.
        #[arg(long, value_name = "MS")]
        start: Option<u64>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Load test: one publisher and N players on a stream; delivery, latency, stalls, server CPU and RSS.
    Bench(commands::BenchArgs),
    /// Connect, print the handshake mode, server information, metadata and codecs, then exit.
    Probe {
        url: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print URL with its stream name signed for an application's `secret`.
    Sign {
        /// SCHEME://HOST[:PORT]/APP/STREAM
        url: String,
        /// The application's `secret`.
        #[arg(long)]
        secret: String,
        /// Seconds the signed URL stays valid.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
}

#[derive(Debug, Clone, Args, Default)]
struct ServeArgs {
    /// Address to listen on for RTMP, RTMPE and RTMPS (repeatable). Default 0.0.0.0:1935.
    #[arg(long = "listen", value_name = "ADDR")]
    listen: Vec<SocketAddr>,
    /// TLS-only (RTMPS) address (repeatable). Default 0.0.0.0:4443.
    #[arg(long = "listen-tls", value_name = "ADDR")]
    listen_tls: Vec<SocketAddr>,
    /// HTTP-only (RTMPT) address (repeatable). Default 0.0.0.0:8080.
    #[arg(long = "listen-http", value_name = "ADDR")]
    listen_http: Vec<SocketAddr>,
    /// API address (health, JSON API, /metrics; docs/api.md) (repeatable). Default 127.0.0.1:1985.
    #[arg(long = "listen-api", value_name = "ADDR")]
    listen_api: Vec<SocketAddr>,
    /// PEM certificate chain for RTMPS (default: a generated self-signed certificate for localhost).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// TOML configuration file; command-line options override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log filter (e.g. info, debug, rtmpx=debug). RUST_LOG works too.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Log line format: text (readable) or json (one object per line).
    #[arg(long, value_enum, value_name = "FORMAT")]
    log_format: Option<rtmpx::config::LogFormat>,
    /// What a second publisher to a live stream gets.
    #[arg(long, value_enum)]
    publish_policy: Option<PublishPolicyName>,
    /// Outgoing chunk size.
    #[arg(long, value_name = "BYTES")]
    chunk_size: Option<u32>,
    /// Write to players at most once per this window, batching frames (0: every frame at once).
    #[arg(long, value_name = "MS")]
    batch_window_ms: Option<u64>,
    /// Runtime worker threads (default: one per CPU).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
}

/// The configuration file (if any) with the command line's options over it, validated.
fn load_config(args: &ServeArgs) -> Result<Config, String> {
    let args = args.clone();
    let mut config = match &args.config {
        Some(path) => Config::from_file(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    if !args.listen.is_empty() {
        config.listen = args.listen;
    }
    if !args.listen_tls.is_empty() {
        config.listen_tls = args.listen_tls;
    }
    if !args.listen_http.is_empty() {
        config.listen_http = args.listen_http;
    }
    if !args.listen_api.is_empty() {
        config.listen_api = args.listen_api;
    }
    if args.tls_cert.is_some() {
        config.tls_cert = args.tls_cert;
        config.tls_key = args.tls_key;
    }
    if let Some(level) = args.log_level {
        config.log_level = level;
    }
    if let Some(format) = args.log_format {
        config.log_format = format;
    }
    if let Some(policy) = args.publish_policy {
        config.publish_policy = policy;
    }
    if let Some(size) = args.chunk_size {
        config.chunk_size = size;
    }
    if let Some(window) = args.batch_window_ms {
        config.batch_window_ms = window;
    }
    if let Some(workers) = args.workers {
        config.workers = Some(workers);
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

/// `rtmpx sign`: prints the signed URL.
fn sign(url: &str, secret: &str, ttl: u64) -> ExitCode {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match rtmpx::policy::signed::sign_url(url, secret, now.saturating_add(ttl)) {
        Ok(signed) => {
            println!("{signed}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("rtmpx: {error}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Sign { url, secret, ttl }) => return sign(&url, &secret, ttl),
        None => cli.serve,
        Some(client_command) => return run_client_command(client_command),
    };
    let config = match load_config(&args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("rtmpx: {error}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: log files and journald get plain text.
    logging::init(
        filter,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        config.log_format,
    );
    let config = fit_open_file_limit(config);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = config.workers {
        builder.worker_threads(workers);
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rtmpx: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let server = match Server::start(&config).await {
            Ok(server) => server,
            Err(error) => {
                tracing::error!(%error, "cannot start");
                return ExitCode::FAILURE;
            }
        };
        wait_for_shutdown_signal(&server, &args).await;
        tracing::info!("shutting down");
        server.shutdown(Duration::from_secs(3)).await;
        ExitCode::SUCCESS
    })
}

/// Raises the open-file limit for `max_connections`; where the hard limit is lower, lowers
/// `max_connections` to what fits, so that connections beyond it are refused at once instead of waiting
/// in the accept queue of a listener out of file descriptors.
fn fit_open_file_limit(mut config: Config) -> Config {
    let wanted = config.max_connections as u64;
    match limits::raise_open_files(wanted) {
        Ok(files) => {
            if files.now > files.before {
                tracing::debug!(
                    from = files.before,
                    to = files.now,
                    "raised the open-file limit"
                );
            }
            if !files.fits(wanted) {
                let fitting = usize::try_from(files.connections())
                    .unwrap_or(usize::MAX)
                    .max(1);
                tracing::warn!(
                    open_files = files.now,
                    hard_limit = files.hard,
                    max_connections = config.max_connections,
                    "the open-file limit leaves room for {fitting} connections: raise the hard limit \
                     (`ulimit -Hn`, LimitNOFILE= for systemd) to serve max_connections"
                );
                config.max_connections = fitting;
            }
        }
        Err(error) => tracing::warn!(%error, "cannot read or raise the open-file limit"),
    }
    config
}

/// Waits until the server should stop. SIGTERM (or `POST /api/v1/server/drain`) starts a graceful drain
/// (docs/drain.md) and returns when it is over; SIGINT, or a second SIGTERM during the drain, returns at
/// once. SIGHUP meanwhile re-reads the configuration and applies what it can.
async fn wait_for_shutdown_signal(server: &Server, args: &ServeArgs) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut terminate), Ok(mut hangup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::warn!("cannot listen for SIGTERM/SIGHUP; stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        let drain = server.drain().clone();
        loop {
            let draining = drain.is_draining();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return,
                _ = terminate.recv() => {
                    if draining {
                        tracing::info!("SIGTERM during the drain: stopping now");
                        return;
                    }
                    drain.start();
                }
                _ = hangup.recv() => reload(server, args),
                _ = drain.finished() => {
                    tracing::info!("drained");
                    return;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (server, args);
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// On SIGHUP: the configuration file is read again (with the same command-line options over it) and
/// what can change at run time is applied. A file that cannot be used leaves the configuration as it
/// is; the certificate files are re-read all the same, so that a renewed certificate is never held up.
fn reload(server: &Server, args: &ServeArgs) {
    match load_config(args) {
        Ok(config) => {
            let config = fit_open_file_limit(config);
            let plan = server.reload(&config);
            let file = args
                .config
                .as_ref()
                .map_or_else(|| "none".to_owned(), |path| path.display().to_string());
            tracing::info!(
                %file,
                restart_needed = plan.needs_restart.len(),
                "configuration reloaded"
            );
        }
        Err(error) => {
            tracing::error!(%error, "configuration not reloaded; keeping the current one");
            server.reload_tls();
        }
    }
}

/// Runs `publish`, `play` or `probe`; errors go to standard error with exit code 1.
fn run_client_command(command: Command) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    logging::init(
        filter,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        rtmpx::config::LogFormat::Text,
    );
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rtmpx: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Publish {
                file,
                url,
                looped,
                client,
            } => commands::publish(&file, &url, looped, &client).await,
            Command::Play {
                url,
                output,
                start,
                client,
            } => commands::play(&url, &output, start, &client).await,
            Command::Probe { url, client } => commands::probe(&url, &client).await,
            Command::Bench(args) => commands::bench(&args).await,
            Command::Serve(_) | Command::Sign { .. } => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rtmpx: {error}");
            ExitCode::FAILURE
        }
    }
}
