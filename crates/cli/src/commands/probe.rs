//! `rtmpx probe URL`: connects, prints the handshake mode, what the server says about itself, the stream's
//! metadata and codecs, then exits.

use std::time::Duration;

use rtmp_amf::Amf0Value;
use rtmp_client::{Client, ClientEvent};
use rtmp_handshake::{HandshakeMode, Scheme};
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

/// The handshake as a user reads it, e.g. `digest (version 3, scheme 0)`.
fn describe_handshake(mode: Option<HandshakeMode>) -> String {
    let scheme = |scheme: Scheme| match scheme {
        Scheme::Zero => 0,
        Scheme::One => 1,
    };
    match mode {
        Some(HandshakeMode::Simple) => "simple (version 3, no digest)".into(),
        Some(HandshakeMode::Digest { scheme: s }) => {
            format!("digest (version 3, scheme {})", scheme(s))
        }
        Some(HandshakeMode::Encrypted { version, scheme: s }) => {
            format!("RTMPE (version {version}, digest scheme {})", scheme(s))
        }
        None => "not completed".into(),
    }
}

pub async fn probe(url: &str, args: &ClientArgs) -> Result<(), String> {
    let url = parse_url(url)?;
    let mut client = Client::connect(&url, &args.options_without_reconnect())
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
    println!("handshake:  {}", describe_handshake(client.mode()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handshake_reads_as_words_not_rust_debug_text() {
        assert_eq!(
            describe_handshake(Some(HandshakeMode::Digest {
                scheme: Scheme::Zero
            })),
            "digest (version 3, scheme 0)"
        );
        assert_eq!(
            describe_handshake(Some(HandshakeMode::Encrypted {
                version: 9,
                scheme: Scheme::One
            })),
            "RTMPE (version 9, digest scheme 1)"
        );
        assert_eq!(
            describe_handshake(Some(HandshakeMode::Simple)),
            "simple (version 3, no digest)"
        );
    }
}
