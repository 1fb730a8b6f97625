//! `rtmpx publish FILE.flv URL`: sends an FLV file in real time (paced by its timestamps), optionally in
//! a loop with timestamps that keep increasing. A server's ReconnectRequest is followed (the publication
//! moves at a keyframe, nothing lost: `rtmp_client::Publisher`).

use std::path::Path;
use std::time::Duration;

use rtmp_client::flv::FlvReader;
use rtmp_client::Publisher;

use super::progress::Progress;
use super::{parse_url, ClientArgs};

pub async fn publish(
    file: &Path,
    url: &str,
    looped: bool,
    args: &ClientArgs,
) -> Result<(), String> {
    let url = parse_url(url)?;
    let open = || {
        std::fs::File::open(file)
            .map(std::io::BufReader::new)
            .map_err(|e| format!("cannot open {}: {e}", file.display()))
            .and_then(|f| FlvReader::new(f).map_err(|e| format!("{}: {e}", file.display())))
    };
    let mut reader = open()?;
    let mut client = Publisher::start(&url, &args.options())
        .await
        .map_err(|e| e.to_string())?;
    let mut progress = Progress::new("published");
    let started = tokio::time::Instant::now();
    let (mut offset, mut last) = (0u32, 0u32);
    let mut first: Option<u32> = None;
    let stop = super::stop_signal();
    tokio::pin!(stop);
    loop {
        let message = match reader
            .next_message()
            .map_err(|e| format!("{}: {e}", file.display()))?
        {
            Some(message) => message,
            None if looped => {
                reader = open()?;
                offset = last.wrapping_add(40);
                continue;
            }
            None => break,
        };
        let timestamp = message.timestamp.wrapping_add(offset);
        let base = *first.get_or_insert(timestamp);
        last = timestamp;
        let due = started + Duration::from_millis(u64::from(timestamp.wrapping_sub(base)));
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = &mut stop => break,
        }
        let message = rtmp_chunk::Message {
            timestamp,
            ..message
        };
        if message.type_id == rtmp_chunk::type_id::DATA_AMF0 {
            let values = rtmp_amf::decode_amf0(&message.payload).unwrap_or_default();
            if values.first().and_then(rtmp_amf::Amf0Value::as_str) == Some("onMetaData") {
                if let Some(metadata) = values.into_iter().nth(1) {
                    client.send_metadata(metadata);
                }
                continue;
            }
        }
        progress.add(message.payload.len());
        client.send(&message).await.map_err(|e| e.to_string())?;
    }
    client.finish().await.map_err(|e| e.to_string())?;
    progress.finish();
    Ok(())
}
