//! The command's log: tracing events to standard error, and the `log` records of dependencies (rustls)
//! forwarded into it, with rustls's warnings about what a peer wrote in its TLS hello demoted to debug.

use rtmpx::config::LogFormat;
use tracing_log::AsLog;
use tracing_subscriber::EnvFilter;

/// Where rustls decodes a peer's handshake messages; its warnings there are about the peer (an IP
/// address sent as SNI, which GStreamer's rtmps client does, an invalid or duplicate host name), which
/// rustls already handles: nothing the server's operator can act on.
const PEER_HELLO_TARGET: &str = "rustls::msgs::handshake";

/// The level a dependency's `log` record is shown at.
fn shown_level(target: &str, level: log::Level) -> log::Level {
    if level == log::Level::Warn && target.starts_with(PEER_HELLO_TARGET) {
        log::Level::Debug
    } else {
        level
    }
}

/// Forwards `log` records to tracing at [`shown_level`].
#[derive(Debug)]
struct LogRecords {
    tracer: tracing_log::LogTracer,
}

impl log::Log for LogRecords {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        let shown = log::Metadata::builder()
            .level(shown_level(metadata.target(), metadata.level()))
            .target(metadata.target())
            .build();
        self.tracer.enabled(&shown)
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = shown_level(record.target(), record.level());
        if level == record.level() {
            self.tracer.log(record);
        } else {
            self.tracer.log(
                &log::Record::builder()
                    .args(*record.args())
                    .level(level)
                    .target(record.target())
                    .module_path(record.module_path())
                    .file(record.file())
                    .line(record.line())
                    .build(),
            );
        }
    }

    fn flush(&self) {}
}

/// Installs the log for the process: `filter` chooses what is shown; colours only when `ansi` (text).
pub fn init(filter: EnvFilter, ansi: bool, format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => {
            tracing::subscriber::set_global_default(builder.with_ansi(ansi).finish())
        }
        LogFormat::Json => tracing::subscriber::set_global_default(
            builder
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .finish(),
        ),
    };
    if installed.is_err() {
        return;
    }
    // Records below the subscriber's most verbose level are skipped before they are formatted.
    let most_verbose = tracing::level_filters::LevelFilter::current().as_log();
    let logger = LogRecords {
        tracer: tracing_log::LogTracer::new(),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(most_verbose);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_warnings_about_a_peers_hello_are_debug_and_others_keep_their_level() {
        assert_eq!(
            shown_level("rustls::msgs::handshake", log::Level::Warn),
            log::Level::Debug
        );
        assert_eq!(
            shown_level("rustls::conn", log::Level::Warn),
            log::Level::Warn
        );
        assert_eq!(
            shown_level("rustls::msgs::handshake", log::Level::Error),
            log::Level::Error
        );
    }
}
