//! `rtmpx probe URL`: connects, prints the handshake mode, what the server says about itself, the stream's
//! metadata and codecs, then exits.

use std::time::Duration;

use rtmp_amf::Amf0Value;
use rtmp_client::{Client, ClientEvent};
use rtmp_hub::media::{classify_audio, classify_video};

use super::{parse_url, ClientArgs};

fn show(value: &Amf0Value) -> String {
    match value {
        Amf0Value::String(s) | Amf0Value::LongString(s) => s.clone(),
        Amf0Value::Number(n) => format!("{n}"),
        Amf0Value::Boolean(b) => format!("{b}"),
        other => format!("{other:?}"),
    }
}

pub async fn probe(url: &str, args: &ClientArgs) -> Result<(), String> {
    let url = parse_url(url)?;
    let mut client = Client::connect(&url, &args.options())
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "url:        {}://{}:{}/{}/{}",
        url.scheme.as_str(),
        url.host,
        url.port,
        url.app,
        url.stream
    );
    println!("handshake:  {:?}", client.mode());
    for (key, value) in client.server_properties().properties().unwrap_or_default() {
        println!("server:     {key} = {}", show(value));
    }
    client.play(&url.stream).await.map_err(|e| e.to_string())?;
    let (mut audio, mut video, mut metadata) = (None, None, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while audio.is_none() || video.is_none() || !metadata {
        let event = match tokio::time::timeout_at(deadline, client.next_event()).await {
            Ok(event) => event.map_err(|e| e.to_string())?,
            Err(_) => break,
        };
        match event {
            ClientEvent::Metadata { message, .. } if !metadata => {
                metadata = true;
                let values = rtmp_amf::decode_amf0(&message.payload).unwrap_or_default();
                for (key, value) in values
                    .get(1)
                    .and_then(Amf0Value::properties)
                    .unwrap_or_default()
                {
                    println!("metadata:   {key} = {}", show(value));
                }
            }
            ClientEvent::Media { message, .. } if message.type_id == 9 && video.is_none() => {
                video = Some(classify_video(&message.payload));
            }
            ClientEvent::Media { message, .. } if message.type_id == 8 && audio.is_none() => {
                audio = Some(classify_audio(&message.payload));
            }
            _ => {}
        }
    }
    let codec = |info: Option<rtmp_hub::media::MediaInfo>| match info {
        Some(info) => format!(
            "{}{}",
            info.codec
                .map(|c| String::from_utf8_lossy(&c).into_owned())
                .unwrap_or_else(|| "unknown".into()),
            if info.enhanced {
                " (Enhanced RTMP)"
            } else {
                ""
            }
        ),
        None => "none seen within 10 s".into(),
    };
    println!("video:      {}", codec(video));
    println!("audio:      {}", codec(audio));
    Ok(())
}
