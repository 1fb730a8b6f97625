//! The client-side commands of the `rtmpx` binary: `publish`, `play`, `probe` and `bench` (with its
//! HTTP-FLV and HLS viewers), on `rtmp-client`.

mod bench;
mod bench_hls;
mod bench_http_flv;
mod play;
mod probe;
mod progress;
mod publish;

pub use bench::{bench, BenchArgs};
pub use play::play;
pub use probe::probe;
pub use publish::publish;

use rtmp_client::{ConnectOptions, RtmpUrl};

/// Options every client command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// For rtmps/rtmpts: PEM file of the certificate authorities to trust.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// For rtmps/rtmpts: accept any certificate (self-signed test servers only).
    #[arg(long)]
    pub insecure: bool,
    /// Enhanced RTMP codecs to announce, e.g. hvc1,av01 (a player gets such streams only if it asks).
    #[arg(long, value_delimiter = ',', value_name = "FOURCCS")]
    pub enhanced_codecs: Vec<String>,
}

impl ClientArgs {
    fn options(&self) -> ConnectOptions {
        ConnectOptions {
            ca_file: self.ca_file.clone(),
            insecure: self.insecure,
            fourcc_list: self.enhanced_codecs.clone(),
            ..ConnectOptions::default()
        }
    }

    /// For the commands that do not follow a ReconnectRequest (`probe`, `bench`): Reconnect is not
    /// declared, so a draining server ends them at its timeout instead of asking.
    fn options_without_reconnect(&self) -> ConnectOptions {
        let options = self.options();
        ConnectOptions {
            caps_ex: options.caps_ex & !rtmp_client::CAPS_EX_RECONNECT,
            ..options
        }
    }
}

fn parse_url(url: &str) -> Result<RtmpUrl, String> {
    let url: RtmpUrl = url
        .parse()
        .map_err(|e: rtmp_client::ClientError| e.to_string())?;
    if url.stream.is_empty() {
        return Err(format!(
            "{}: the URL names no stream (scheme://host/app/stream)",
            url.tc_url()
        ));
    }
    Ok(url)
}

/// Resolves on the first SIGINT or SIGTERM (elsewhere: Ctrl-C), so that a command stopped by `timeout`,
/// systemd or `docker stop` ends as cleanly as one stopped with Ctrl-C.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; stop with Ctrl-C");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
