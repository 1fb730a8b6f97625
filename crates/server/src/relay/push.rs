//! A push: one local stream sent on to one target. The target is one more hub subscriber (bounded: a
//! target that falls behind skips to the next keyframe, as a slow player does) feeding an `rtmp-client`
//! publisher task. Each connection starts from a fresh subscriber, so it begins with the stream's
//! metadata, sequence headers and last keyframe; the `connect` announces the Enhanced RTMP codecs
//! (`fourCcList`) the stream carries. A refused, unreachable or stalled target (a write that takes longer
//! than `relay_timeout_ms`) is retried with backoff and jitter while the stream lives; the publisher,
//! its players and the other targets never wait for it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtmp_chunk::{type_id, Message};
use rtmp_client::{Client, ClientEvent, RtmpUrl};
use rtmp_hub::{Frame, FrameKind, Hub, StreamKey, Subscriber, SubscriberEvent};
use tokio::sync::watch;

use super::{backoff_delay, registry, Backoff, Kind, Origin, RelaySettings, RelayStatus, State};

/// The AMF0 string `@setDataFrame`: metadata is published wrapped in it, as encoders do.
const SET_DATA_FRAME: &[u8] = b"\x02\x00\x0d@setDataFrame";
/// The AMF0 string `onMetaData`.
const ON_METADATA: &[u8] = b"\x02\x00\x0aonMetaData";
/// Frames taken from the subscriber before the target's codecs are decided (an audio-only stream).
const HEAD_FRAMES: usize = 32;
/// How long to wait for video once the first frame arrived, before connecting without it.
const HEAD_WAIT: Duration = Duration::from_secs(1);
/// Frames queued on the connection between two writes.
const FRAMES_PER_WRITE: usize = 64;
/// How long the task waits for a frame before it looks at the target's answers anyway.
const QUIET_TICK: Duration = Duration::from_millis(500);

/// A running push; dropping it stops the push once the stream's end reached the target (or at once
/// while it is not connected).
#[derive(Debug)]
pub struct Push {
    _stop: watch::Sender<()>,
    id: u64,
}

impl Push {
    /// The relay's id in the API.
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// How long a push lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Until the stream's publisher leaves (a static or hook push started by the publish).
    Stream,
    /// Until stopped, across publications (a push created through the API).
    UntilStopped,
}

/// Starts pushing `key` to `url` (a URL with `{app}`/`{name}` already filled in). Needs a Tokio runtime.
pub fn start(
    hub: &Hub,
    key: StreamKey,
    url: String,
    settings: RelaySettings,
    origin: Origin,
    lifetime: Lifetime,
) -> Push {
    let registration = registry().register(Kind::Push, origin, &key.app, &key.name, &url);
    let id = registration.status().id;
    let (stop, stopped) = watch::channel(());
    let hub = hub.clone();
    let status = registration.status().clone();
    let abort = status.clone();
    let task = tokio::spawn(async move {
        let _registration = registration;
        run(hub, key, url, settings, status, lifetime, stopped).await;
    });
    abort.set_task(&task);
    Push { _stop: stop, id }
}

/// How one connection to the target ended.
enum Ended {
    /// The stream's publisher left and the target was told.
    Unpublished,
    /// The target asked the client to connect again.
    Reconnect,
}

async fn run(
    hub: Hub,
    key: StreamKey,
    url: String,
    settings: RelaySettings,
    status: Arc<RelayStatus>,
    lifetime: Lifetime,
    mut stopped: watch::Receiver<()>,
) {
    let target = status.target.clone();
    let parsed: RtmpUrl = match super::parse_url(&url) {
        Ok(parsed) => parsed,
        Err(error) => {
            status.failed(&error);
            tracing::warn!(stream = %key, %target, %error, "push target unusable");
            return;
        }
    };
    let mut backoff = Backoff::default();
    let mut connections = 0u64;
    loop {
        // A fresh subscriber per connection: it starts at the metadata, sequence headers and keyframe.
        let mut subscriber = hub.subscribe(&key);
        status.set_state(State::Waiting);
        let head = tokio::select! {
            _ = stopped.changed() => return,
            head = wait_for_media(&mut subscriber, lifetime) => match head {
                Some(head) => head,
                None => return,
            },
        };
        status.set_state(State::Connecting);
        let connected = tokio::select! {
            _ = stopped.changed() => return,
            connected = connect(&parsed, &settings, &head) => connected,
        };
        let result = match connected {
            Ok((client, stream_id)) => {
                connections += 1;
                if connections > 1 {
                    status.reconnected();
                }
                backoff.reset();
                status.set_state(State::Relaying);
                tracing::info!(stream = %key, %target, "push connected");
                let connection = Connection {
                    client,
                    stream_id,
                    url: &parsed,
                };
                relay(
                    connection,
                    subscriber,
                    head,
                    &settings,
                    &status,
                    &mut stopped,
                )
                .await
            }
            Err(error) => Err(error),
        };
        match result {
            Ok(Ended::Reconnect) => {
                tracing::info!(stream = %key, %target, "push reconnecting: the target asked");
            }
            Ok(Ended::Unpublished) => {
                tracing::info!(stream = %key, %target, "push ended with the stream");
                if lifetime == Lifetime::Stream {
                    return;
                }
            }
            Err(error) => {
                let error = super::mask::scrub(&error, &parsed.stream);
                status.failed(&error);
                status.set_state(State::Retrying);
                let delay = backoff_delay(&mut backoff);
                tracing::warn!(stream = %key, %target, %error, retry_ms = delay.as_millis() as u64,
                    "push failed; retrying");
                tokio::select! {
                    _ = stopped.changed() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// The frames that come first (from the GOP cache, or the first live ones): until the first video
/// frame, [`HEAD_FRAMES`] frames, or [`HEAD_WAIT`] after the first. `None` when the stream ended first
/// and the push lives only as long as the stream.
async fn wait_for_media(
    subscriber: &mut Subscriber,
    lifetime: Lifetime,
) -> Option<Vec<Arc<Frame>>> {
    let mut head: Vec<Arc<Frame>> = Vec::new();
    let mut first_at: Option<tokio::time::Instant> = None;
    loop {
        let event = match first_at {
            None => subscriber.recv().await,
            Some(at) => match tokio::time::timeout_at(at + HEAD_WAIT, subscriber.recv()).await {
                Ok(event) => event,
                Err(_) => return Some(head),
            },
        };
        match event {
            SubscriberEvent::Frame(frame) => {
                let video = frame.kind == FrameKind::Video;
                head.push(frame);
                first_at.get_or_insert_with(tokio::time::Instant::now);
                if video || head.len() >= HEAD_FRAMES {
                    return Some(head);
                }
            }
            SubscriberEvent::Published => head.clear(),
            SubscriberEvent::Unpublished if lifetime == Lifetime::Stream => return None,
            SubscriberEvent::Unpublished => {
                head.clear();
                first_at = None;
            }
        }
    }
}

/// The Enhanced RTMP FourCCs the first frames use (`hvc1`, `av01`, `vp09`, `Opus`, ...).
fn enhanced_fourccs(head: &[Arc<Frame>]) -> Vec<String> {
    let mut list: Vec<String> = Vec::new();
    for frame in head {
        if let (true, Some(codec)) = (frame.info.enhanced, frame.info.codec) {
            let name = String::from_utf8_lossy(&codec).into_owned();
            if !list.contains(&name) {
                list.push(name);
            }
        }
    }
    list
}

async fn connect(
    url: &RtmpUrl,
    settings: &RelaySettings,
    head: &[Arc<Frame>],
) -> Result<(Client, u32), String> {
    let options = settings.connect_options(enhanced_fourccs(head));
    let attempt = async {
        let mut client = Client::connect(url, &options).await?;
        let stream_id = client.publish(&url.stream).await?;
        Ok::<_, rtmp_client::ClientError>((client, stream_id))
    };
    match tokio::time::timeout(settings.timeout, attempt).await {
        Ok(Ok(connected)) => Ok(connected),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {:?}", settings.timeout)),
    }
}

/// Queues one frame on the connection: metadata wrapped in `@setDataFrame`, everything else as the hub
/// encoded it.
fn queue(client: &mut Client, stream_id: u32, frame: &Frame) {
    if frame.kind != FrameKind::Data {
        client.send_shared(stream_id, &frame.shared);
        return;
    }
    let payload = frame.shared.message().payload;
    if payload.starts_with(ON_METADATA) {
        let mut wrapped = BytesMut::with_capacity(SET_DATA_FRAME.len() + payload.len());
        wrapped.extend_from_slice(SET_DATA_FRAME);
        wrapped.extend_from_slice(&payload);
        let message = Message {
            timestamp: frame.shared.timestamp(),
            type_id: type_id::DATA_AMF0,
            stream_id,
            payload: Bytes::from(wrapped),
        };
        client.send(stream_id, &message);
    } else {
        client.send_shared(stream_id, &frame.shared);
    }
}

/// What the target's answers ask for.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// Go on.
    Continue,
    /// `NetConnection.Connect.ReconnectRequest` (E-RTMP): connect again, at once, from a keyframe.
    Reconnect,
}

/// Writes what is queued (giving up after `timeout`: the target stopped reading) and takes the target's
/// answers; an error status ends the connection.
async fn exchange(client: &mut Client, timeout: Duration) -> Result<Answer, String> {
    loop {
        let event = tokio::time::timeout(timeout, client.next_event_before(Instant::now()))
            .await
            .map_err(|_| format!("the target took nothing for {timeout:?}"))?
            .map_err(|error| error.to_string())?;
        match event {
            None => return Ok(Answer::Continue),
            Some(ClientEvent::Status { code, .. }) if code == super::RECONNECT_REQUEST => {
                return Ok(Answer::Reconnect)
            }
            Some(ClientEvent::Status {
                level,
                code,
                description,
                ..
            }) if level == "error" => return Err(format!("{code}: {description}")),
            Some(_) => {}
        }
    }
}

/// A connection publishing to the target.
struct Connection<'a> {
    client: Client,
    stream_id: u32,
    url: &'a RtmpUrl,
}

/// Feeds the target until the stream ends, the push is stopped (what the subscriber already holds is
/// sent first: a publisher that leaves drops its push right after its last frame) or the connection
/// fails.
async fn relay(
    connection: Connection<'_>,
    mut subscriber: Subscriber,
    head: Vec<Arc<Frame>>,
    settings: &RelaySettings,
    status: &RelayStatus,
    stopped: &mut watch::Receiver<()>,
) -> Result<Ended, String> {
    let Connection {
        mut client,
        stream_id,
        url,
    } = connection;
    for frame in &head {
        queue(&mut client, stream_id, frame);
    }
    drop(head);
    let mut counted = 0u64;
    loop {
        let answer = exchange(&mut client, settings.timeout).await;
        let sent = client.byte_counts().1;
        status.add_bytes(sent.saturating_sub(counted));
        counted = sent;
        if answer? == Answer::Reconnect {
            client.unpublish(stream_id, &url.stream).await.ok();
            return Ok(Ended::Reconnect);
        }
        let mut stopping = false;
        let mut next = tokio::select! {
            biased;
            _ = stopped.changed() => {
                stopping = true;
                subscriber.try_recv()
            }
            event = tokio::time::timeout(QUIET_TICK, subscriber.recv()) => event.ok(),
        };
        let mut queued = 0;
        while let Some(event) = next.take() {
            match event {
                SubscriberEvent::Frame(frame) => queue(&mut client, stream_id, &frame),
                SubscriberEvent::Published => {}
                SubscriberEvent::Unpublished => {
                    client.unpublish(stream_id, &url.stream).await.ok();
                    return Ok(Ended::Unpublished);
                }
            }
            queued += 1;
            if stopping || queued < FRAMES_PER_WRITE {
                next = subscriber.try_recv();
            }
        }
        if stopping {
            exchange(&mut client, settings.timeout).await?;
            client.unpublish(stream_id, &url.stream).await.ok();
            return Ok(Ended::Unpublished);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtmp_hub::HubConfig;

    #[test]
    fn enhanced_codecs_are_announced_and_legacy_ones_are_not() {
        let hub = Hub::new(HubConfig::default(), Instant::now());
        let key = StreamKey::new("live", "x");
        let mut subscriber = hub.subscribe(&key);
        let publisher = hub.publish(&key, Instant::now()).unwrap();
        let video = |payload: &'static [u8]| Message {
            timestamp: 0,
            type_id: type_id::VIDEO,
            stream_id: 1,
            payload: Bytes::from_static(payload),
        };
        // An enhanced HEVC SequenceStart (0x80 | key frame << 4 | packet type 0), then legacy AVC.
        publisher.send(&video(b"\x90hvc1\x01\x02"), Instant::now());
        publisher.send(&video(&[0x17, 0, 0, 0, 0]), Instant::now());
        let mut head = Vec::new();
        while let Some(event) = subscriber.try_recv() {
            if let SubscriberEvent::Frame(frame) = event {
                head.push(frame);
            }
        }
        assert_eq!(enhanced_fourccs(&head), ["hvc1"]);
    }
}
