//! Following a server's `NetConnection.Connect.ReconnectRequest` (E-RTMP v2, sent by a server that
//! drains): [`Publisher`] and [`Player`] connect to the URL the request names (or again to their own)
//! while the old connection keeps going, and move over at a keyframe so that nothing is lost.
//!
//! - A publisher opens the new connection in the background; at the next video keyframe (any audio
//!   frame for audio alone) it unpublishes on the old one, publishes on the new one (retrying briefly if
//!   the old publication is still being closed: the same server's take-over path), sends the metadata and
//!   sequence headers again, then that keyframe. Every frame goes to exactly one of the two.
//! - A player plays the new connection in the background and keeps what it gets; it reads the old one
//!   until that stream ends or catches up with where the new one starts, then continues with the new
//!   one from the first frame newer than the last it returned (sequence headers and metadata repeated
//!   only when they changed).

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use rtmp_amf::Amf0Value;
use rtmp_chunk::{type_id, Message};
use tokio::task::JoinHandle;

use crate::{Client, ClientError, ClientEvent, ConnectOptions, RtmpUrl};

/// How long a publisher retries `publish` on the new connection while the server still holds the old
/// publication.
const PUBLISH_RETRY_FOR: Duration = Duration::from_secs(2);

/// Events a player keeps from its new connection before the old one has ended.
const MAX_BUFFERED_EVENTS: usize = 8192;

/// How a media message counts for a switch.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MediaRole {
    /// A sequence header (decoder configuration), with the bytes that name its codec and track.
    Header(Vec<u8>),
    /// A video keyframe.
    Keyframe,
    /// Any other audio or video frame.
    Frame,
    /// Not audio or video.
    Other,
}

/// The role of `message`, from its FLV audio/video header (legacy and Enhanced RTMP, multitrack
/// included).
fn media_role(message: &Message) -> MediaRole {
    let payload = &message.payload;
    let Some(&first) = payload.first() else {
        return MediaRole::Other;
    };
    let second = payload.get(1).copied();
    let key = |len: usize| payload.get(..len.min(payload.len())).unwrap_or_default();
    match message.type_id {
        type_id::VIDEO if first & 0x80 != 0 => {
            // Enhanced: frame type in bits 4-6, packet type in bits 0-3.
            let packet_type = first & 0x0F;
            let inner = match packet_type {
                6 => second.map_or(0xFF, |b| b & 0x0F),
                other => other,
            };
            match inner {
                0 | 5 => MediaRole::Header(key(if packet_type == 6 { 7 } else { 5 }).to_vec()),
                _ if (first >> 4) & 0x07 == 1 => MediaRole::Keyframe,
                _ => MediaRole::Frame,
            }
        }
        type_id::VIDEO => {
            let codec = first & 0x0F;
            // AVC, HEVC (legacy id 12): packet type 0 is the sequence header.
            if matches!(codec, 7 | 12) && second == Some(0) {
                MediaRole::Header(key(1).to_vec())
            } else if first >> 4 == 1 {
                MediaRole::Keyframe
            } else {
                MediaRole::Frame
            }
        }
        type_id::AUDIO if first >> 4 == 9 => {
            let packet_type = first & 0x0F;
            let inner = match packet_type {
                5 => second.map_or(0xFF, |b| b & 0x0F),
                other => other,
            };
            if inner == 0 {
                MediaRole::Header(key(if packet_type == 5 { 7 } else { 5 }).to_vec())
            } else {
                MediaRole::Frame
            }
        }
        type_id::AUDIO if first >> 4 == 10 && second == Some(0) => {
            MediaRole::Header(key(1).to_vec())
        }
        type_id::AUDIO => MediaRole::Frame,
        _ => MediaRole::Other,
    }
}

/// A connection a reconnect opened: the client, its stream id and its URL.
type Opened = Result<(Client, u32, RtmpUrl), ClientError>;

/// The connection a reconnect is opening, in the background.
type Opening = JoinHandle<Opened>;

/// How the background opening ended.
type OpeningOutcome = Result<Opened, tokio::task::JoinError>;

/// A publisher that follows ReconnectRequests (declare `capsEx` Reconnect, the default of
/// [`ConnectOptions`]).
#[derive(Debug)]
pub struct Publisher {
    url: RtmpUrl,
    options: ConnectOptions,
    client: Client,
    stream_id: u32,
    metadata: Option<Amf0Value>,
    headers: Vec<(Vec<u8>, Message)>,
    seen_video: bool,
    opening: Option<Opening>,
    reconnects: u32,
}

impl Publisher {
    /// Connects and publishes `url`'s stream.
    pub async fn start(url: &RtmpUrl, options: &ConnectOptions) -> Result<Publisher, ClientError> {
        let mut client = Client::connect(url, options).await?;
        let stream_id = client.publish(&url.stream).await?;
        Ok(Publisher {
            url: url.clone(),
            options: options.clone(),
            client,
            stream_id,
            metadata: None,
            headers: Vec::new(),
            seen_video: false,
            opening: None,
            reconnects: 0,
        })
    }

    /// The URL published to now (it changes when the server asked to reconnect elsewhere).
    pub fn url(&self) -> &RtmpUrl {
        &self.url
    }

    /// How many times the publisher moved to a new connection.
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    /// Sends metadata (`@setDataFrame("onMetaData", ...)`); it is sent again after a reconnect.
    pub fn send_metadata(&mut self, metadata: Amf0Value) {
        self.metadata = Some(metadata.clone());
        self.client.send_metadata(self.stream_id, metadata);
    }

    /// Sends one audio, video or data message and flushes; moves to the new connection first when a
    /// reconnect is ready and `message` is where a player can start.
    pub async fn send(&mut self, message: &Message) -> Result<(), ClientError> {
        if let Err(error) = self.read_requests().await {
            return self.recover(error, message).await;
        }
        let role = media_role(message);
        self.seen_video |= message.type_id == type_id::VIDEO;
        let switch_point = match role {
            MediaRole::Keyframe => true,
            MediaRole::Frame => !self.seen_video,
            MediaRole::Header(_) | MediaRole::Other => false,
        };
        if switch_point && self.opening.as_ref().is_some_and(JoinHandle::is_finished) {
            self.switch(message.timestamp).await;
        }
        if let MediaRole::Header(key) = role {
            match self.headers.iter_mut().find(|(known, _)| *known == key) {
                Some((_, header)) => *header = message.clone(),
                None => self.headers.push((key, message.clone())),
            }
        }
        self.client.send(self.stream_id, message);
        match self.client.flush().await {
            Ok(()) => Ok(()),
            Err(error) => self.recover(error, message).await,
        }
    }

    /// Ends the publication cleanly.
    pub async fn finish(mut self) -> Result<(), ClientError> {
        if let Some(opening) = self.opening.take() {
            opening.abort();
        }
        self.client
            .unpublish(self.stream_id, &self.url.stream)
            .await
    }

    /// Reads what the server sent meanwhile: a ReconnectRequest starts opening the new connection.
    async fn read_requests(&mut self) -> Result<(), ClientError> {
        while let Some(event) = self.client.try_next_event().await? {
            match event {
                ClientEvent::ReconnectRequest {
                    tc_url,
                    description,
                } if self.opening.is_none() => {
                    let target = self.url.reconnect_target(tc_url.as_deref())?;
                    tracing::info!(to = %target.tc_url(), %description, "reconnect requested");
                    let options = self.options.clone();
                    self.opening = Some(tokio::spawn(async move {
                        let mut client = Client::connect(&target, &options).await?;
                        let stream_id = client.create_stream().await?;
                        Ok((client, stream_id, target))
                    }));
                }
                ClientEvent::Status {
                    level,
                    code,
                    description,
                    ..
                } if level == "error" => {
                    return Err(ClientError::status_refused("publish", &code, &description))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The old connection failed: with a reconnect under way, move now and send `message` there.
    async fn recover(&mut self, error: ClientError, message: &Message) -> Result<(), ClientError> {
        if self.opening.is_none() {
            return Err(error);
        }
        tracing::warn!(%error, "the old connection failed before the switch");
        if !self.switch(message.timestamp).await {
            return Err(error);
        }
        self.client.send(self.stream_id, message);
        self.client.flush().await
    }

    /// Moves to the opened connection: unpublish on the old one, publish on the new one, headers
    /// again. False when the new connection failed (the old one is kept).
    async fn switch(&mut self, timestamp: u32) -> bool {
        let Some(opening) = self.opening.take() else {
            return false;
        };
        let (mut client, stream_id, url) = match opening.await {
            Ok(Ok(opened)) => opened,
            Ok(Err(error)) => {
                tracing::warn!(%error, "reconnect failed; staying on the current connection");
                return false;
            }
            Err(error) => {
                tracing::warn!(%error, "reconnect task failed");
                return false;
            }
        };
        // Unpublish first: on the same server the new publication is refused while the old one lasts.
        let _ = self
            .client
            .unpublish(self.stream_id, &self.url.stream)
            .await;
        let started = tokio::time::Instant::now();
        loop {
            match client.publish_on(stream_id, &url.stream).await {
                Ok(()) => break,
                Err(ClientError::Refused { .. }) if started.elapsed() < PUBLISH_RETRY_FOR => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => {
                    tracing::warn!(%error, "publish on the new connection failed");
                    return false;
                }
            }
        }
        if let Some(metadata) = &self.metadata {
            client.send_metadata(stream_id, metadata.clone());
        }
        for (_, header) in &self.headers {
            client.send(
                stream_id,
                &Message {
                    timestamp,
                    ..header.clone()
                },
            );
        }
        tracing::info!(to = %url.tc_url(), "moved to the new connection");
        self.client = client;
        self.stream_id = stream_id;
        self.url = url;
        self.reconnects += 1;
        true
    }
}

/// The new connection of a player, once it plays: what it sent so far.
#[derive(Debug)]
struct Incoming {
    client: Client,
    url: RtmpUrl,
    events: VecDeque<ClientEvent>,
    /// The timestamp of its first audio or video frame (not a header): where it starts.
    starts_at: Option<u32>,
}

/// What a player's connections gave first.
enum Next {
    /// An event of the current connection.
    Old(Result<ClientEvent, ClientError>),
    /// The new connection finished opening (or failed to).
    Opened(Box<OpeningOutcome>),
    /// An event of the new connection.
    New(Result<ClientEvent, ClientError>),
}

/// The outcome of the connection a reconnect opened.
async fn opened(opening: &mut Option<Opening>) -> OpeningOutcome {
    match opening {
        Some(opening) => opening.await,
        None => std::future::pending().await,
    }
}

/// The next event of the new connection.
async fn incoming_event(incoming: &mut Option<Incoming>) -> Result<ClientEvent, ClientError> {
    match incoming {
        Some(incoming) => incoming.client.next_event().await,
        None => std::future::pending().await,
    }
}

/// The new connection, if it opened.
fn incoming_from(opened: OpeningOutcome) -> Option<Incoming> {
    match opened {
        Ok(Ok((client, _, url))) => Some(Incoming {
            client,
            url,
            events: VecDeque::new(),
            starts_at: None,
        }),
        Ok(Err(error)) => {
            tracing::warn!(%error, "reconnect failed; staying on the current connection");
            None
        }
        Err(error) => {
            tracing::warn!(%error, "reconnect task failed");
            None
        }
    }
}

/// A player that follows ReconnectRequests (declare `capsEx` Reconnect, the default of
/// [`ConnectOptions`]). [`Player::next_event`] gives the events of one continuous stream across
/// connections.
#[derive(Debug)]
pub struct Player {
    url: RtmpUrl,
    options: ConnectOptions,
    client: Client,
    opening: Option<Opening>,
    incoming: Option<Incoming>,
    /// The last frame timestamp returned, audio and video.
    last_audio: Option<u32>,
    last_video: Option<u32>,
    /// The last metadata and sequence headers returned, not repeated after a move unless changed.
    last_metadata: Option<Bytes>,
    last_headers: Vec<(Vec<u8>, Bytes)>,
    moved: VecDeque<ClientEvent>,
    reconnects: u32,
}

impl Player {
    /// Connects and plays `url`'s stream.
    pub async fn start(url: &RtmpUrl, options: &ConnectOptions) -> Result<Player, ClientError> {
        let mut client = Client::connect(url, options).await?;
        client.play(&url.stream).await?;
        Ok(Self::playing(url, options, client))
    }

    /// Connects and plays `url`'s recorded stream from `start_ms` (a file under the server's
    /// `vod_path`), asking the server to send `buffer_ms` ahead (see [`Client::play_from`]).
    pub async fn start_from(
        url: &RtmpUrl,
        options: &ConnectOptions,
        start_ms: f64,
        buffer_ms: u32,
    ) -> Result<Player, ClientError> {
        let mut client = Client::connect(url, options).await?;
        client
            .play_from(&url.stream, start_ms, -1.0, buffer_ms)
            .await?;
        Ok(Self::playing(url, options, client))
    }

    fn playing(url: &RtmpUrl, options: &ConnectOptions, client: Client) -> Player {
        Player {
            url: url.clone(),
            options: options.clone(),
            client,
            opening: None,
            incoming: None,
            last_audio: None,
            last_video: None,
            last_metadata: None,
            last_headers: Vec::new(),
            moved: VecDeque::new(),
            reconnects: 0,
        }
    }

    /// The URL played now.
    pub fn url(&self) -> &RtmpUrl {
        &self.url
    }

    /// How many times the player moved to a new connection.
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    /// The next event of the stream. A ReconnectRequest is acted on, not returned; the old
    /// connection's end (UnpublishNotify, a close) is not returned when a new connection takes over.
    pub async fn next_event(&mut self) -> Result<ClientEvent, ClientError> {
        loop {
            if let Some(event) = self.moved.pop_front() {
                if let Some(event) = self.filter(event) {
                    return Ok(event);
                }
                continue;
            }
            let next = {
                let Player {
                    client,
                    opening,
                    incoming,
                    ..
                } = &mut *self;
                tokio::select! {
                    old = client.next_event() => Next::Old(old),
                    opened = opened(opening), if opening.is_some() => Next::Opened(Box::new(opened)),
                    new = incoming_event(incoming), if incoming.is_some() => Next::New(new),
                }
            };
            let old = match next {
                Next::Old(old) => old,
                Next::Opened(opened) => {
                    self.opening = None;
                    self.incoming = incoming_from(*opened);
                    continue;
                }
                Next::New(Ok(event)) => {
                    if let Some(incoming) = self.incoming.as_mut() {
                        if let ClientEvent::Media { message, .. } = &event {
                            if matches!(media_role(message), MediaRole::Keyframe | MediaRole::Frame)
                            {
                                incoming.starts_at.get_or_insert(message.timestamp);
                            }
                        }
                        incoming.events.push_back(event);
                        if incoming.events.len() >= MAX_BUFFERED_EVENTS {
                            self.switch();
                        }
                    }
                    continue;
                }
                Next::New(Err(error)) => {
                    tracing::warn!(%error, "the new connection failed; staying on the current one");
                    self.incoming = None;
                    continue;
                }
            };
            match old {
                Ok(ClientEvent::ReconnectRequest {
                    tc_url,
                    description,
                }) => {
                    if self.opening.is_none() && self.incoming.is_none() {
                        let target = self.url.reconnect_target(tc_url.as_deref())?;
                        tracing::info!(to = %target.tc_url(), %description, "reconnect requested");
                        let options = self.options.clone();
                        self.opening = Some(tokio::spawn(async move {
                            let mut client = Client::connect(&target, &options).await?;
                            let stream_id = client.play(&target.stream).await?;
                            Ok((client, stream_id, target))
                        }));
                    }
                }
                Ok(ClientEvent::Media { message, .. })
                    if self
                        .incoming
                        .as_ref()
                        .and_then(|i| i.starts_at)
                        .is_some_and(|starts| {
                            matches!(media_role(&message), MediaRole::Keyframe | MediaRole::Frame)
                                && message.timestamp >= starts
                        }) =>
                {
                    // The old connection caught up with where the new one starts.
                    self.switch();
                }
                Ok(ClientEvent::Status { code, .. })
                    if self.moving()
                        && matches!(
                            code.as_str(),
                            "NetStream.Play.UnpublishNotify"
                                | "NetStream.Play.Stop"
                                | "NetStream.Play.Complete"
                        ) =>
                {
                    self.wait_for_new().await;
                    self.switch();
                }
                Ok(event) => {
                    if let Some(event) = self.filter(event) {
                        return Ok(event);
                    }
                }
                Err(error) if self.moving() => {
                    tracing::debug!(%error, "the old connection ended; moving to the new one");
                    self.wait_for_new().await;
                    if self.incoming.is_none() {
                        return Err(error);
                    }
                    self.switch();
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Whether a new connection is opening or open.
    fn moving(&self) -> bool {
        self.opening.is_some() || self.incoming.is_some()
    }

    /// Waits for a connection still opening (the old one has ended).
    async fn wait_for_new(&mut self) {
        if let Some(opening) = self.opening.take() {
            self.incoming = incoming_from(opening.await);
        }
    }

    /// Continues on the new connection with what it sent so far.
    fn switch(&mut self) {
        let Some(incoming) = self.incoming.take() else {
            return;
        };
        tracing::info!(to = %incoming.url.tc_url(), "moved to the new connection");
        self.client = incoming.client;
        self.url = incoming.url;
        self.moved.extend(incoming.events);
        self.reconnects += 1;
    }

    /// What to return of an event: frames not older than the last returned, headers and metadata
    /// not identical to the last returned.
    fn filter(&mut self, event: ClientEvent) -> Option<ClientEvent> {
        match &event {
            ClientEvent::Metadata { message, .. } => {
                if self.last_metadata.as_ref() == Some(&message.payload) {
                    return None;
                }
                self.last_metadata = Some(message.payload.clone());
            }
            ClientEvent::Media { message, .. } => match media_role(message) {
                MediaRole::Header(key) => {
                    match self
                        .last_headers
                        .iter_mut()
                        .find(|(known, _)| *known == key)
                    {
                        Some((_, last)) if *last == message.payload => return None,
                        Some((_, last)) => *last = message.payload.clone(),
                        None => self.last_headers.push((key, message.payload.clone())),
                    }
                }
                MediaRole::Keyframe | MediaRole::Frame => {
                    let last = if message.type_id == type_id::VIDEO {
                        &mut self.last_video
                    } else {
                        &mut self.last_audio
                    };
                    if self.reconnects > 0 && last.is_some_and(|last| message.timestamp <= last) {
                        return None;
                    }
                    *last = Some(message.timestamp);
                }
                MediaRole::Other => {}
            },
            ClientEvent::ReconnectRequest { .. } => return None,
            _ => {}
        }
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(type_id: u8, payload: &'static [u8]) -> Message {
        Message {
            timestamp: 0,
            type_id,
            stream_id: 1,
            payload: Bytes::from_static(payload),
        }
    }

    #[test]
    fn headers_keyframes_and_frames_are_told_apart() {
        assert_eq!(
            media_role(&message(type_id::VIDEO, b"\x17\x00\x00\x00\x00")),
            MediaRole::Header(vec![0x17])
        );
        assert_eq!(
            media_role(&message(type_id::VIDEO, b"\x17\x01\x00\x00\x00")),
            MediaRole::Keyframe
        );
        assert_eq!(
            media_role(&message(type_id::VIDEO, b"\x27\x01\x00\x00\x00")),
            MediaRole::Frame
        );
        // Enhanced HEVC: SequenceStart, CodedFramesX keyframe.
        assert_eq!(
            media_role(&message(type_id::VIDEO, b"\x90hvc1\x01")),
            MediaRole::Header(b"\x90hvc1".to_vec())
        );
        assert_eq!(
            media_role(&message(type_id::VIDEO, b"\x93hvc1")),
            MediaRole::Keyframe
        );
        // AAC sequence header and frame; E-RTMP multitrack audio SequenceStart of track 1.
        assert_eq!(
            media_role(&message(type_id::AUDIO, b"\xaf\x00\x12\x10")),
            MediaRole::Header(vec![0xaf])
        );
        assert_eq!(
            media_role(&message(type_id::AUDIO, b"\xaf\x01\x21")),
            MediaRole::Frame
        );
        assert_eq!(
            media_role(&message(type_id::AUDIO, b"\x95\x00mp4a\x01\x12\x10")),
            MediaRole::Header(b"\x95\x00mp4a\x01".to_vec())
        );
        assert_eq!(
            media_role(&message(type_id::DATA_AMF0, b"\x02")),
            MediaRole::Other
        );
        assert_eq!(media_role(&message(type_id::VIDEO, b"")), MediaRole::Other);
    }
}
