//! `rtmpx play URL -o OUT.flv` (or `-o -` for standard output): writes what the server sends as FLV
//! until the stream ends, or until SIGINT or SIGTERM (Ctrl-C, `timeout`, systemd, `docker stop`), which
//! end the file after the last whole tag. A server's ReconnectRequest is followed: the output goes on
//! from the new connection without a gap or a repeated frame (`rtmp_client::Player`).

use std::io::Write;
use std::path::Path;

use rtmp_client::flv::FlvWriter;
use rtmp_client::{ClientError, ClientEvent, Player};

use super::progress::Progress;
use super::{parse_url, ClientArgs};

/// The buffer a recording is played with: the server sends this far ahead of real time.
const RECORDING_BUFFER_MS: u32 = 3000;

pub async fn play(
    url: &str,
    output: &Path,
    start_ms: Option<u64>,
    args: &ClientArgs,
) -> Result<(), String> {
    let url = parse_url(url)?;
    let sink: Box<dyn Write + Send> = if output == Path::new("-") {
        Box::new(std::io::stdout())
    } else {
        Box::new(
            std::fs::File::create(output)
                .map_err(|e| format!("cannot create {}: {e}", output.display()))?,
        )
    };
    // Unbuffered: each tag is written whole as it arrives (a live pipe gets it at once).
    let mut writer = FlvWriter::new(sink).map_err(|e| e.to_string())?;
    let mut client = match start_ms {
        Some(start) => {
            Player::start_from(&url, &args.options(), start as f64, RECORDING_BUFFER_MS).await
        }
        None => Player::start(&url, &args.options()).await,
    }
    .map_err(|e| e.to_string())?;
    let mut progress = Progress::new("played");
    let stop = super::stop_signal();
    tokio::pin!(stop);
    loop {
        let event = tokio::select! {
            event = client.next_event() => event,
            _ = &mut stop => break,
        };
        match event {
            Ok(ClientEvent::Media { message, .. } | ClientEvent::Metadata { message, .. }) => {
                progress.add(message.payload.len());
                writer.write_message(&message).map_err(|e| e.to_string())?;
                writer.flush().map_err(|e| e.to_string())?;
            }
            Ok(ClientEvent::Status { code, .. })
                if matches!(
                    code.as_str(),
                    "NetStream.Play.UnpublishNotify"
                        | "NetStream.Play.Stop"
                        | "NetStream.Play.Complete"
                ) =>
            {
                break
            }
            Ok(ClientEvent::Status {
                level,
                code,
                description,
                ..
            }) if level == "error" => {
                return Err(format!("{code}: {description}"));
            }
            Ok(_) => {}
            Err(ClientError::Closed) => break,
            Err(error) => return Err(error.to_string()),
        }
    }
    writer.flush().map_err(|e| e.to_string())?;
    progress.finish();
    Ok(())
}
