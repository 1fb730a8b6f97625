//! Publish an FLV file to a URL in real time, or play a URL and write FLV to standard output.
//!
//! `cargo run -p rtmp-client --example publish_play -- rtmp://127.0.0.1/live/cam movie.flv` publishes;
//! `cargo run -p rtmp-client --example publish_play -- rtmp://127.0.0.1/live/cam | ffplay -` plays.

use std::time::Duration;

use rtmp_client::flv::{FlvReader, FlvWriter};
use rtmp_client::{Client, ClientEvent, ConnectOptions, RtmpUrl};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url: RtmpUrl = args
        .next()
        .ok_or("usage: publish_play URL [FILE.flv]")?
        .parse()?;
    let mut client = Client::connect(&url, &ConnectOptions::default()).await?;
    match args.next() {
        Some(file) => {
            let mut flv = FlvReader::new(std::io::BufReader::new(std::fs::File::open(file)?))?;
            let stream_id = client.publish(&url.stream).await?;
            let started = tokio::time::Instant::now();
            while let Some(message) = flv.next_message()? {
                // Real time: each tag leaves at its timestamp.
                let due = started + Duration::from_millis(message.timestamp.into());
                tokio::time::sleep_until(due).await;
                client.send(stream_id, &message);
                client.flush().await?;
            }
            client.unpublish(stream_id, &url.stream).await?;
        }
        None => {
            client.play(&url.stream).await?;
            let mut flv = FlvWriter::new(std::io::stdout().lock())?;
            loop {
                match client.next_event().await? {
                    ClientEvent::Media { message, .. } | ClientEvent::Metadata { message, .. } => {
                        flv.write_message(&message)?;
                        flv.flush()?;
                    }
                    ClientEvent::Status { code, .. }
                        if code == "NetStream.Play.UnpublishNotify" =>
                    {
                        return Ok(());
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}
