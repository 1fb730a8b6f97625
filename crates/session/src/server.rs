//! The server role: answers `connect`, `createStream`, `publish`, `play` and the rest as FFmpeg, librtmp
//! and OBS expect (PROTOCOL.md §6), and reports what the application must decide or route.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use rtmp_amf::Amf0Value;
use rtmp_chunk::{
    aggregate::SubMessages, csid, type_id, Message, RtmpMessage, SharedMessage, UserControlEvent,
};

use rtmp_handshake::RandomFill;

use crate::commands::{decode_values, readable_transaction_id, strip_set_data_frame, Command};
use crate::replies::{self, info, on_status};
use crate::transport::Transport;
use crate::{
    split_stream_name, FourCc, FourCcList, HandshakeMode, PublishType, SessionConfig, SessionError,
    StatusCode,
};

/// Commands a client may send after `connect` before the application has answered it; they are
/// handled, in order, once it is accepted. Real clients pipeline one or two (librtmp a call).
const MAX_DEFERRED_COMMANDS: usize = 32;

/// What a client asked for in `connect`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectRequest {
    /// The application name (`app` in `connect`).
    pub app: String,
    /// The `tcUrl` property: the URL the client connected to.
    pub tc_url: Option<String>,
    /// The `flashVer` property.
    pub flash_ver: Option<String>,
    /// 0 (AMF0) or 3 (AMF3), echoed in the answer.
    pub object_encoding: f64,
    /// Enhanced RTMP: the FourCCs the client accepts (`fourCcList`, or the keys of `videoFourCcInfoMap` /
    /// `audioFourCcInfoMap`); `None` when it announced nothing (a legacy client).
    pub fourcc_list: Option<FourCcList>,
    /// The E-RTMP v2 `capsEx` bits the client declared (0 when it sent none or a value out of range).
    pub caps_ex: u8,
    /// The whole command object.
    pub properties: Amf0Value,
}

impl ConnectRequest {
    /// Whether this client announced it can take media in `fourcc` (or any codec, `"*"`).
    pub fn accepts_fourcc(&self, fourcc: FourCc) -> bool {
        self.fourcc_list
            .as_ref()
            .is_some_and(|list| list.accepts(fourcc))
    }

    /// Whether the client declared E-RTMP codecs (`fourCcList`, or a `*InfoMap`).
    pub fn declares_enhanced_codecs(&self) -> bool {
        self.fourcc_list.is_some()
    }

    /// Whether the client declared it takes E-RTMP v2 multitrack messages (`capsEx` Multitrack).
    pub fn declares_multitrack(&self) -> bool {
        self.caps_ex & CAPS_EX_MULTITRACK != 0
    }

    /// Whether the client declared it honours `NetConnection.Connect.ReconnectRequest` (`capsEx`
    /// Reconnect).
    pub fn declares_reconnect(&self) -> bool {
        self.caps_ex & CAPS_EX_RECONNECT != 0
    }
}

/// E-RTMP v2 `CapsExMask.Reconnect`: honours `NetConnection.Connect.ReconnectRequest`.
pub const CAPS_EX_RECONNECT: u8 = 0x01;
/// E-RTMP v2 `CapsExMask.Multitrack`: takes multitrack audio and video messages.
pub const CAPS_EX_MULTITRACK: u8 = 0x02;
/// E-RTMP v2 `CapsExMask.ModEx`: parses ModEx packet-type prefixes.
pub const CAPS_EX_MOD_EX: u8 = 0x04;
/// The `capsEx` bits the server side advertises in its `connect` answer: what it honours.
pub const CAPS_EX_HONOURED: u8 = CAPS_EX_RECONNECT | CAPS_EX_MULTITRACK | CAPS_EX_MOD_EX;

/// What happened on the session, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// The handshake completed; the chunk stream starts.
    HandshakeComplete {
        /// The handshake variant agreed.
        mode: HandshakeMode,
    },
    /// Answer with [`ServerSession::accept_connect`] or [`ServerSession::reject_connect`].
    Connect(ConnectRequest),
    /// Answer with [`ServerSession::accept_publish`] or [`ServerSession::reject_publish`].
    Publish {
        /// The message stream id (a NetStream from `createStream`).
        stream_id: u32,
        /// The stream name, without its query.
        stream_name: String,
        /// What followed `?` in the stream name (without the `?`).
        query: String,
        /// How the publisher asked to publish.
        publish_type: PublishType,
    },
    /// Answer with [`ServerSession::accept_play`] or [`ServerSession::reject_play`].
    Play {
        /// The message stream id (a NetStream from `createStream`).
        stream_id: u32,
        /// The stream name, without its query.
        stream_name: String,
        /// What followed `?` in the stream name (without the `?`).
        query: String,
        /// The requested start (`-2` live or recorded, `-1` live only, `>= 0` recorded from there, ms).
        start: f64,
        /// How long to play a recorded stream, in milliseconds (`-1`: to the end).
        duration: f64,
    },
    /// Audio, video or data (other than metadata) from a publishing stream, untouched but for its stream
    /// id: media a publisher sends on stream 0 is its publishing stream's when it publishes only one.
    Media {
        /// The message stream id (a NetStream from `createStream`).
        stream_id: u32,
        /// The message, as received.
        message: Message,
    },
    /// The publisher's metadata as players should get it (`onMetaData`, without `@setDataFrame`); `None`
    /// when the publisher cleared it.
    Metadata {
        /// The message stream id (a NetStream from `createStream`).
        stream_id: u32,
        /// The metadata message, `None` when cleared.
        message: Option<Message>,
    },
    /// A player paused or resumed its stream.
    Pause {
        /// The message stream id (a NetStream from `createStream`).
        stream_id: u32,
        /// Whether the stream is now paused.
        paused: bool,
    },
    /// The publisher of this stream stopped (FCUnpublish, deleteStream, closeStream).
    Unpublish {
        /// The message stream id (a NetStream from `createStream`).
        stream_id: u32,
    },
    /// The player of this stream stopped.
    StopPlay {
        /// The message stream id (a NetStream from `createStream`).
        stream_id: u32,
    },
    /// A player of a recorded stream ([`ServerSession::accept_play_recorded`]) asked to move; answer
    /// with [`ServerSession::seek_done`] once the position is known. Live streams are answered
    /// `NetStream.Seek.Failed` by the session itself.
    Seek {
        /// The message stream id (a NetStream from `createStream`).
        stream_id: u32,
        /// The position asked for, in milliseconds (never negative).
        position_ms: f64,
    },
    /// `getStreamLength`: answer with [`ServerSession::answer_stream_length`].
    GetStreamLength {
        /// The transaction id the answer echoes.
        transaction_id: f64,
        /// The stream name, without its query.
        stream_name: String,
        /// What followed `?` in the stream name (without the `?`).
        query: String,
    },
    /// The client told its buffer length for a stream (User Control SetBufferLength).
    BufferLength {
        /// The message stream id.
        stream_id: u32,
        /// The buffer length in milliseconds.
        buffer_ms: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum StreamRole {
    Idle,
    PublishRequested {
        name: String,
    },
    Publishing {
        name: String,
    },
    PlayRequested,
    Playing,
    /// Playing a recording: seek is the application's.
    PlayingRecorded,
}

/// What waits for the pending `connect` to be answered.
#[derive(Debug)]
enum Deferred {
    Command {
        stream_id: u32,
        command: Command,
    },
    /// An undecodable command's `_error`, answered in its turn.
    Failure {
        transaction_id: f64,
        description: String,
    },
}

/// The server side of one RTMP connection. See the crate documentation for the calling pattern.
#[derive(Debug)]
pub struct ServerSession {
    transport: Transport,
    events: VecDeque<ServerEvent>,
    connect: Option<(f64, ConnectRequest)>,
    connected: bool,
    /// Commands received while `connect` awaits the application's answer.
    deferred: VecDeque<Deferred>,
    streams: HashMap<u32, StreamRole>,
    next_stream_id: u32,
    warned_streams: std::collections::HashSet<u32>,
    closed: bool,
}

impl ServerSession {
    /// A session that answers a client's handshake; `random` fills the handshake's random bytes.
    pub fn new(config: SessionConfig, random: RandomFill, now: Instant) -> Self {
        Self {
            transport: Transport::server(config, random, now),
            events: VecDeque::new(),
            connect: None,
            connected: false,
            deferred: VecDeque::new(),
            streams: HashMap::new(),
            next_stream_id: 1,
            warned_streams: std::collections::HashSet::new(),
            closed: false,
        }
    }

    /// Feeds bytes received from the client.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) -> Result<(), SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        if self.transport.handle_input(data, now)? {
            if let Some(mode) = self.transport.mode {
                self.events
                    .push_back(ServerEvent::HandshakeComplete { mode });
            }
        }
        while let Some(message) = self.transport.next_message()? {
            self.handle_message(message)?;
        }
        Ok(())
    }

    /// Sends pings and detects dead peers; call when [`ServerSession::poll_timeout`] is reached.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SessionError> {
        self.transport.handle_timeout(now)
    }

    /// When [`ServerSession::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Instant {
        self.transport.poll_timeout()
    }

    /// The next event, in order; `None` when there is none for now.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Moves every queued wire buffer into `out`, in order.
    pub fn poll_transmit(&mut self, out: &mut Vec<bytes::Bytes>) {
        self.transport.poll_transmit(out);
    }

    /// Bytes queued for sending that [`poll_transmit`](Self::poll_transmit) has not taken yet.
    pub fn pending_transmit_bytes(&self) -> usize {
        self.transport.pending_transmit_bytes()
    }

    /// The handshake mode, once known.
    pub fn mode(&self) -> Option<HandshakeMode> {
        self.transport.mode
    }

    /// Bytes received and sent so far (handshake included).
    pub fn byte_counts(&self) -> (u64, u64) {
        (self.transport.bytes_in, self.transport.bytes_out)
    }

    /// The outgoing chunk size players' shared messages must be encoded with to be sent zero-copy.
    pub fn chunk_size(&self) -> u32 {
        self.transport.chunk_size()
    }

    /// Whether the session closed (an error, a timeout or [`close`](Self::close)); drop the connection then.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Marks the session closed; nothing more is sent or accepted.
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// Accepts the pending `connect`: window, bandwidth, chunk size, then `_result` with
    /// `NetConnection.Connect.Success` (PROTOCOL.md §6.2); then handles the commands that came after it.
    pub fn accept_connect(&mut self) {
        let Some((transaction_id, request)) = self.connect.take() else {
            return;
        };
        let config = &self.transport.config;
        let (window, bandwidth, chunk_size) = (
            config.window_ack_size,
            config.peer_bandwidth,
            config.chunk_size,
        );
        let fms_version = config.fms_version.clone();
        self.transport
            .send_control(RtmpMessage::WindowAckSize(window));
        self.transport.send_control(RtmpMessage::SetPeerBandwidth {
            window_size: bandwidth,
            limit_type: rtmp_chunk::LimitType::Dynamic,
        });
        self.transport
            .send_control(RtmpMessage::UserControl(UserControlEvent::StreamBegin(0)));
        // RTMPE: an FFmpeg publisher corrupts its chunk size when it echoes ours (PROTOCOL.md §2.3).
        if !self.transport.is_encrypted() {
            self.transport.set_chunk_size(chunk_size);
        }
        let mut properties: Vec<(String, Amf0Value)> = vec![
            ("fmsVer".into(), fms_version.into()),
            ("capabilities".into(), 31.0.into()),
            ("mode".into(), 1.0.into()),
        ];
        if request.fourcc_list.is_some() || request.caps_ex != 0 {
            // Enhanced RTMP: we forward every codec (CanForward). capsEx says what is honoured: a
            // ReconnectRequest is sent when the server drains, multitrack messages are passed on (a
            // player that did not declare Multitrack gets the default track alone), and ModEx prefixes
            // are parsed where media is classified.
            properties.push((
                "videoFourCcInfoMap".into(),
                Amf0Value::object([("*", Amf0Value::Number(4.0))]),
            ));
            properties.push((
                "audioFourCcInfoMap".into(),
                Amf0Value::object([("*", Amf0Value::Number(4.0))]),
            ));
            properties.push(("capsEx".into(), f64::from(CAPS_EX_HONOURED).into()));
        }
        let mut info = info(StatusCode::ConnectSuccess, "Connection succeeded.", None);
        if let Amf0Value::Object(fields) = &mut info {
            fields.push(("objectEncoding".into(), request.object_encoding.into()));
        }
        let reply = replies::result(transaction_id, &[Amf0Value::Object(properties), info]);
        self.transport.send(csid::COMMAND, &reply);
        self.connected = true;
        while let Some(deferred) = self.deferred.pop_front() {
            match deferred {
                Deferred::Command { stream_id, command } => self.handle_command(stream_id, command),
                Deferred::Failure {
                    transaction_id,
                    description,
                } => self.answer_undecodable(transaction_id, &description),
            }
        }
    }

    /// Refuses the pending `connect` with an error status (e.g. `NetConnection.Connect.Rejected`), and
    /// the commands that came after it with the same; close after flushing.
    pub fn reject_connect(&mut self, code: StatusCode, description: &str) {
        let Some((transaction_id, _)) = self.connect.take() else {
            return;
        };
        let reply = replies::error(transaction_id, code, description);
        self.transport.send(csid::COMMAND, &reply);
        for deferred in std::mem::take(&mut self.deferred) {
            let transaction_id = match deferred {
                Deferred::Command { command, .. } => transaction_of(&command),
                Deferred::Failure { transaction_id, .. } => Some(transaction_id),
            };
            if let Some(transaction_id) = transaction_id {
                let reply = replies::error(transaction_id, code, description);
                self.transport.send(csid::COMMAND, &reply);
            }
        }
    }

    /// Starts the requested publication: StreamBegin and `NetStream.Publish.Start`.
    pub fn accept_publish(&mut self, stream_id: u32) {
        let Some(StreamRole::PublishRequested { name }) = self.streams.get(&stream_id).cloned()
        else {
            return;
        };
        self.streams
            .insert(stream_id, StreamRole::Publishing { name: name.clone() });
        self.send_user_control(UserControlEvent::StreamBegin(stream_id));
        let status = info(
            StatusCode::PublishStart,
            &format!("{name} is now published."),
            Some(&name),
        );
        self.send_stream_command(stream_id, on_status(stream_id, status));
    }

    /// Refuses the requested publication with an error status (e.g. `NetStream.Publish.BadName`).
    pub fn reject_publish(&mut self, stream_id: u32, code: StatusCode, description: &str) {
        self.streams.insert(stream_id, StreamRole::Idle);
        self.send_stream_command(
            stream_id,
            on_status(stream_id, info(code, description, None)),
        );
    }

    /// Starts the requested playback: chunk size, StreamBegin, Play.Reset, Play.Start, `|RtmpSampleAccess`.
    pub fn accept_play(&mut self, stream_id: u32, stream_name: &str) {
        self.streams.insert(stream_id, StreamRole::Playing);
        let chunk_size = self.transport.config.chunk_size;
        if self.transport.chunk_size() != chunk_size {
            self.transport.set_chunk_size(chunk_size);
        }
        self.send_user_control(UserControlEvent::StreamBegin(stream_id));
        self.send_play_reset_and_start(stream_id, stream_name);
        let access = replies::data(
            stream_id,
            &["|RtmpSampleAccess".into(), true.into(), true.into()],
        );
        self.transport.send(csid::DATA, &access);
    }

    /// Starts the requested playback of a recording: StreamIsRecorded, then as [`accept_play`]
    /// (StreamBegin, Play.Reset, Play.Start, `|RtmpSampleAccess`); the stream's `seek` then comes to the
    /// application as [`ServerEvent::Seek`].
    ///
    /// [`accept_play`]: Self::accept_play
    pub fn accept_play_recorded(&mut self, stream_id: u32, stream_name: &str) {
        self.send_user_control(UserControlEvent::StreamIsRecorded(stream_id));
        self.accept_play(stream_id, stream_name);
        self.streams.insert(stream_id, StreamRole::PlayingRecorded);
    }

    /// Answers a [`ServerEvent::Seek`] as Adobe's server does: StreamIsRecorded, StreamBegin,
    /// `NetStream.Seek.Notify`, `NetStream.Play.Reset`, `NetStream.Play.Start`; the media from the new
    /// position follows. `position_ms` is where playback restarts (the keyframe at or before the target).
    pub fn seek_done(&mut self, stream_id: u32, stream_name: &str, position_ms: f64) {
        self.send_user_control(UserControlEvent::StreamIsRecorded(stream_id));
        self.send_user_control(UserControlEvent::StreamBegin(stream_id));
        let notify = info(
            StatusCode::SeekNotify,
            &format!("Seeking {position_ms:.0} (stream ID: {stream_id})."),
            Some(stream_name),
        );
        self.send_stream_command(stream_id, on_status(stream_id, notify));
        self.send_play_reset_and_start(stream_id, stream_name);
    }

    /// `NetStream.Play.Reset` then `NetStream.Play.Start` for `stream_name`: how a play, or a seek in a
    /// recording, tells the player its media (re)starts.
    fn send_play_reset_and_start(&mut self, stream_id: u32, stream_name: &str) {
        let reset = info(
            StatusCode::PlayReset,
            &format!("Playing and resetting {stream_name}."),
            Some(stream_name),
        );
        self.send_stream_command(stream_id, on_status(stream_id, reset));
        let start = info(
            StatusCode::PlayStart,
            &format!("Started playing {stream_name}."),
            Some(stream_name),
        );
        self.send_stream_command(stream_id, on_status(stream_id, start));
    }

    /// Ends the playback of a recording that reached its end (or its requested duration):
    /// `NetStream.Play.Stop`, `onPlayStatus` `NetStream.Play.Complete` with the duration played (s) and
    /// the bytes sent, then StreamEOF. The stream stays a recorded stream: a seek may restart it.
    pub fn end_recorded_play(
        &mut self,
        stream_id: u32,
        stream_name: &str,
        duration_s: f64,
        bytes: u64,
    ) {
        let stop = info(
            StatusCode::PlayStop,
            &format!("Stopped playing {stream_name}."),
            Some(stream_name),
        );
        self.send_stream_command(stream_id, on_status(stream_id, stop));
        let mut complete = info(StatusCode::PlayComplete, "", None);
        if let Amf0Value::Object(fields) = &mut complete {
            fields.retain(|(key, _)| key != "description");
            fields.push(("duration".into(), duration_s.into()));
            fields.push(("bytes".into(), (bytes as f64).into()));
        }
        let status = replies::data(stream_id, &["onPlayStatus".into(), complete]);
        self.transport.send(csid::STREAM_COMMAND, &status);
        self.send_user_control(UserControlEvent::StreamEof(stream_id));
    }

    /// Answers a [`ServerEvent::GetStreamLength`] with the stream's duration in seconds (0 for a live
    /// or unknown stream).
    pub fn answer_stream_length(&mut self, transaction_id: f64, seconds: f64) {
        if transaction_id > 0.0 {
            self.transport.send(
                csid::COMMAND,
                &replies::result(transaction_id, &[Amf0Value::Null, seconds.into()]),
            );
        }
    }

    /// Refuses the requested playback (e.g. `NetStream.Play.StreamNotFound`).
    pub fn reject_play(&mut self, stream_id: u32, code: StatusCode, description: &str) {
        self.streams.insert(stream_id, StreamRole::Idle);
        self.send_stream_command(
            stream_id,
            on_status(stream_id, info(code, description, None)),
        );
    }

    /// Asks the client to connect again (E-RTMP v2 `NetConnection.Connect.ReconnectRequest`): an
    /// `onStatus` on stream 0 with `tcUrl` when the client should move to another URL, without it when
    /// it should reuse its own. Only for a client whose `connect` declared `capsEx` Reconnect
    /// ([`ConnectRequest::declares_reconnect`]); the caller decides when. Nothing is sent before the
    /// `connect` was accepted (false then).
    pub fn request_reconnect(&mut self, tc_url: Option<&str>, description: &str) -> bool {
        if !self.connected || self.is_closed() {
            return false;
        }
        let mut info = info(StatusCode::ConnectReconnectRequest, description, None);
        if let (Amf0Value::Object(fields), Some(tc_url)) = (&mut info, tc_url) {
            fields.push(("tcUrl".into(), tc_url.into()));
        }
        self.transport.send(csid::COMMAND, &on_status(0, info));
        true
    }

    /// Sends a status event on a stream, with the user control event that goes with it: StreamEOF before
    /// `NetStream.Play.UnpublishNotify` / `Play.Stop`, StreamBegin before `NetStream.Play.PublishNotify`.
    pub fn send_status(&mut self, stream_id: u32, code: StatusCode, description: &str) {
        match code {
            StatusCode::PlayUnpublishNotify | StatusCode::PlayStop => {
                self.send_user_control(UserControlEvent::StreamEof(stream_id));
            }
            StatusCode::PlayPublishNotify => {
                self.send_user_control(UserControlEvent::StreamBegin(stream_id))
            }
            _ => {}
        }
        self.send_stream_command(
            stream_id,
            on_status(stream_id, info(code, description, None)),
        );
    }

    /// Sends a message encoded once for many players; zero-copy when the chunk sizes match.
    pub fn send_shared(&mut self, stream_id: u32, shared: &SharedMessage) {
        self.transport.send_shared(shared, stream_id);
    }

    /// Sends one message on a stream (metadata, a sequence header): encoded for this connection only.
    pub fn send_message(&mut self, stream_id: u32, message: &Message) {
        let csid = media_chunk_stream(message.type_id);
        self.transport.send(
            csid,
            &Message {
                stream_id,
                ..message.clone()
            },
        );
    }

    fn send_user_control(&mut self, event: UserControlEvent) {
        self.transport.send_control(RtmpMessage::UserControl(event));
    }

    fn send_stream_command(&mut self, _stream_id: u32, message: Message) {
        self.transport.send(csid::STREAM_COMMAND, &message);
    }

    fn handle_message(&mut self, message: Message) -> Result<(), SessionError> {
        match message.type_id {
            type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3 => {
                let values = match decode_values(&message, "command") {
                    Ok(values) => values,
                    Err(error) => {
                        // The session goes on: one command it cannot read is that command's failure.
                        tracing::debug!(%error, "undecodable command");
                        if let Some(transaction_id) = readable_transaction_id(&message) {
                            let description = error.to_string();
                            if self.connect_pending() {
                                self.defer(Deferred::Failure {
                                    transaction_id,
                                    description,
                                });
                            } else {
                                self.answer_undecodable(transaction_id, &description);
                            }
                        }
                        return Ok(());
                    }
                };
                match Command::parse(values) {
                    Ok(command) => self.handle_command(message.stream_id, command),
                    Err(error) => {
                        tracing::debug!(%error, "malformed command");
                        // The transaction id cannot be trusted either; answer with txn 0 so no client trips.
                        let reply =
                            replies::error(0.0, StatusCode::CallBadValue, &error.to_string());
                        self.transport.send(csid::COMMAND, &reply);
                    }
                }
            }
            type_id::DATA_AMF0 | type_id::DATA_AMF3 => self.handle_data(message)?,
            type_id::AUDIO | type_id::VIDEO => self.handle_media(message),
            type_id::USER_CONTROL => {
                if let Ok(RtmpMessage::UserControl(UserControlEvent::SetBufferLength {
                    stream_id,
                    buffer_ms,
                })) = RtmpMessage::decode(&message)
                {
                    self.events.push_back(ServerEvent::BufferLength {
                        stream_id,
                        buffer_ms,
                    });
                }
            }
            type_id::AGGREGATE => {
                for sub in SubMessages::new(&message) {
                    match sub {
                        Ok(sub) if matches!(sub.type_id, type_id::AUDIO | type_id::VIDEO) => {
                            self.handle_media(sub)
                        }
                        Ok(sub) if sub.type_id == type_id::DATA_AMF0 => self.handle_data(sub)?,
                        Ok(_) => {}
                        Err(error) => {
                            tracing::debug!(%error, "malformed aggregate message dropped");
                            break;
                        }
                    }
                }
            }
            other => tracing::trace!(
                type_id = other,
                "message ignored (shared objects are not supported)"
            ),
        }
        Ok(())
    }

    /// Whether `stream_id` may be used: an existing stream, or a new one within `max_streams` (clients
    /// may publish or play on an id they never created).
    fn admits_stream(&self, stream_id: u32) -> bool {
        self.streams.contains_key(&stream_id)
            || self.streams.len() < self.transport.config.max_streams
    }

    /// Answers a command with `_error` (`NetConnection.Call.Failed`).
    fn fail_call(&mut self, transaction_id: f64, description: &str) {
        let reply = replies::error(transaction_id, StatusCode::CallFailed, description);
        self.transport.send(csid::COMMAND, &reply);
    }

    /// Answers a command whose body did not decode with `_error` (`NetConnection.Call.BadValue`).
    fn answer_undecodable(&mut self, transaction_id: f64, description: &str) {
        let reply = replies::error(transaction_id, StatusCode::CallBadValue, description);
        self.transport.send(csid::COMMAND, &reply);
    }

    /// Whether a `connect` awaits the application's answer.
    fn connect_pending(&self) -> bool {
        !self.connected && self.connect.is_some()
    }

    /// Keeps what came after a pending `connect` for when it is answered; past the bound, a command is
    /// refused at once.
    fn defer(&mut self, deferred: Deferred) {
        if self.deferred.len() < MAX_DEFERRED_COMMANDS {
            self.deferred.push_back(deferred);
            return;
        }
        let transaction_id = match &deferred {
            Deferred::Command { command, .. } => transaction_of(command),
            Deferred::Failure { transaction_id, .. } => Some(*transaction_id),
        };
        tracing::warn!("too many commands before the connect was answered");
        if let Some(transaction_id) = transaction_id {
            self.fail_call(
                transaction_id,
                "Too many commands before the connect was answered.",
            );
        }
    }

    fn refuse_stream(&mut self, stream_id: u32, code: StatusCode) {
        tracing::warn!(
            stream_id,
            streams = self.streams.len(),
            "refused: too many streams on one connection"
        );
        let status = info(code, "Too many streams on this connection.", None);
        self.send_stream_command(stream_id, on_status(stream_id, status));
    }

    /// The publishing stream media received on `stream_id` belongs to: that stream when it publishes, or
    /// the connection's only publishing stream for media on stream 0 (node-media-server's relay publishes
    /// on the stream it created, then sends everything on stream 0; nginx-rtmp takes it).
    fn publishing_stream(&mut self, stream_id: u32) -> Option<u32> {
        if matches!(
            self.streams.get(&stream_id),
            Some(StreamRole::Publishing { .. })
        ) {
            return Some(stream_id);
        }
        if stream_id == 0 {
            if let Some(only) = self.only_publishing_stream() {
                return Some(only);
            }
        }
        // Media on a stream that does not publish: say so once per stream (for as many stream ids as a
        // connection may hold, so a peer cycling through ids cannot grow the set), then ignore it.
        if self.warned_streams.len() < self.transport.config.max_streams
            && self.warned_streams.insert(stream_id)
        {
            let status = info(
                StatusCode::StreamFailed,
                "Media received on a stream that is not publishing.",
                None,
            );
            self.send_stream_command(stream_id, on_status(stream_id, status));
        }
        None
    }

    /// The one stream this connection publishes, if it publishes exactly one.
    fn only_publishing_stream(&self) -> Option<u32> {
        let mut publishing = self
            .streams
            .iter()
            .filter(|(_, role)| matches!(role, StreamRole::Publishing { .. }))
            .map(|(id, _)| *id);
        let only = publishing.next()?;
        publishing.next().is_none().then_some(only)
    }

    fn handle_media(&mut self, mut message: Message) {
        if let Some(stream_id) = self.publishing_stream(message.stream_id) {
            message.stream_id = stream_id;
            self.events
                .push_back(ServerEvent::Media { stream_id, message });
        }
    }

    fn handle_data(&mut self, mut message: Message) -> Result<(), SessionError> {
        let Some(stream_id) = self.publishing_stream(message.stream_id) else {
            return Ok(());
        };
        message.stream_id = stream_id;
        let values = decode_values(&message, "data message")?;
        let first = values.first().and_then(Amf0Value::as_str);
        let metadata = match first {
            Some("@setDataFrame") => strip_set_data_frame(&values),
            Some("onMetaData") => rtmp_amf::encode_amf0_values(&values).ok(),
            Some("@clearDataFrame") => {
                self.events.push_back(ServerEvent::Metadata {
                    stream_id,
                    message: None,
                });
                return Ok(());
            }
            _ => None,
        };
        match metadata {
            Some(payload) => {
                let message = Message {
                    timestamp: message.timestamp,
                    type_id: type_id::DATA_AMF0,
                    stream_id,
                    payload,
                };
                self.events.push_back(ServerEvent::Metadata {
                    stream_id,
                    message: Some(message),
                });
            }
            None => self
                .events
                .push_back(ServerEvent::Media { stream_id, message }),
        }
        Ok(())
    }

    fn handle_command(&mut self, stream_id: u32, command: Command) {
        let answer = matches!(
            command,
            Command::Result { .. } | Command::Error { .. } | Command::OnStatus { .. }
        );
        if self.connect_pending() && !answer {
            // RTMP is one ordered stream: what follows `connect` is answered after it.
            self.defer(Deferred::Command { stream_id, command });
            return;
        }
        if !self.connected && !answer && !matches!(command, Command::Connect { .. }) {
            if let Some(transaction_id) = transaction_of(&command) {
                self.fail_call(transaction_id, "connect first");
            }
            return;
        }
        match command {
            Command::Connect {
                transaction_id,
                properties,
                ..
            } => {
                if self.connected || self.connect.is_some() {
                    self.fail_call(transaction_id, "already connected");
                    return;
                }
                let request = connect_request(properties);
                self.connect = Some((transaction_id, request.clone()));
                self.events.push_back(ServerEvent::Connect(request));
            }
            Command::CreateStream { transaction_id } => {
                if self.streams.len() >= self.transport.config.max_streams {
                    tracing::warn!(
                        streams = self.streams.len(),
                        "createStream refused: too many streams on one connection"
                    );
                    self.fail_call(transaction_id, "Too many streams on this connection.");
                    return;
                }
                let id = self.next_stream_id;
                // Ids are not reused while a stream holds them, even after 2^32 create/delete cycles.
                loop {
                    self.next_stream_id = self.next_stream_id.checked_add(1).unwrap_or(1);
                    if !self.streams.contains_key(&self.next_stream_id) {
                        break;
                    }
                }
                self.streams.insert(id, StreamRole::Idle);
                let reply =
                    replies::result(transaction_id, &[Amf0Value::Null, f64::from(id).into()]);
                self.transport.send(csid::COMMAND, &reply);
            }
            Command::ReleaseStream { transaction_id, .. }
            | Command::CheckBandwidth { transaction_id } => {
                self.transport
                    .send(csid::COMMAND, &replies::result(transaction_id, &[]));
            }
            Command::FcPublish {
                transaction_id,
                stream_name,
            } => {
                let notice = info(StatusCode::PublishStart, &stream_name, None);
                self.transport.send(
                    csid::COMMAND,
                    &replies::command(
                        0,
                        &["onFCPublish".into(), 0.0.into(), Amf0Value::Null, notice],
                    ),
                );
                self.transport
                    .send(csid::COMMAND, &replies::result(transaction_id, &[]));
            }
            Command::FcUnpublish {
                transaction_id,
                stream_name,
            } => {
                let notice = info(StatusCode::UnpublishSuccess, &stream_name, None);
                self.transport.send(
                    csid::COMMAND,
                    &replies::command(
                        0,
                        &["onFCUnpublish".into(), 0.0.into(), Amf0Value::Null, notice],
                    ),
                );
                self.transport
                    .send(csid::COMMAND, &replies::result(transaction_id, &[]));
                let publishing: Vec<u32> = self
                    .streams
                    .iter()
                    .filter(|(_, role)| matches!(role, StreamRole::Publishing { name } if *name == split_stream_name(&stream_name).0))
                    .map(|(id, _)| *id)
                    .collect();
                for id in publishing {
                    self.end_stream(id);
                }
            }
            Command::FcSubscribe { stream_name, .. } => {
                let notice = info(StatusCode::PlayStart, &stream_name, None);
                self.transport.send(
                    csid::COMMAND,
                    &replies::command(
                        0,
                        &["onFCSubscribe".into(), 0.0.into(), Amf0Value::Null, notice],
                    ),
                );
            }
            Command::Publish {
                stream_name,
                publish_type,
                ..
            } => {
                let (name, query) = split_stream_name(&stream_name);
                if !self.admits_stream(stream_id) {
                    self.refuse_stream(stream_id, StatusCode::PublishBadName);
                    return;
                }
                if matches!(
                    self.streams.get(&stream_id),
                    Some(
                        StreamRole::Publishing { .. }
                            | StreamRole::Playing
                            | StreamRole::PlayingRecorded
                    )
                ) {
                    let status = info(
                        StatusCode::PublishBadName,
                        "This stream is already in use.",
                        None,
                    );
                    self.send_stream_command(stream_id, on_status(stream_id, status));
                    return;
                }
                self.streams.insert(
                    stream_id,
                    StreamRole::PublishRequested { name: name.clone() },
                );
                self.events.push_back(ServerEvent::Publish {
                    stream_id,
                    stream_name: name,
                    query,
                    publish_type,
                });
            }
            Command::Play {
                stream_name,
                start,
                duration,
                ..
            } => {
                let (name, query) = split_stream_name(&stream_name);
                if !self.admits_stream(stream_id) {
                    self.refuse_stream(stream_id, StatusCode::PlayFailed);
                    return;
                }
                self.streams.insert(stream_id, StreamRole::PlayRequested);
                self.events.push_back(ServerEvent::Play {
                    stream_id,
                    stream_name: name,
                    query,
                    start,
                    duration,
                });
            }
            Command::Pause { paused, .. } => {
                let kind = match self.streams.get(&stream_id) {
                    Some(StreamRole::PlayingRecorded) => "recorded",
                    _ => "live",
                };
                if paused {
                    self.send_status(
                        stream_id,
                        StatusCode::PauseNotify,
                        &format!("Paused {kind} stream."),
                    );
                } else {
                    self.send_user_control(UserControlEvent::StreamBegin(stream_id));
                    self.send_status(
                        stream_id,
                        StatusCode::UnpauseNotify,
                        &format!("Unpaused {kind} stream."),
                    );
                }
                self.events
                    .push_back(ServerEvent::Pause { stream_id, paused });
            }
            Command::Seek { position_ms, .. } => {
                if matches!(
                    self.streams.get(&stream_id),
                    Some(StreamRole::PlayingRecorded)
                ) {
                    let position_ms = if position_ms.is_finite() {
                        position_ms.max(0.0)
                    } else {
                        0.0
                    };
                    self.events.push_back(ServerEvent::Seek {
                        stream_id,
                        position_ms,
                    });
                } else {
                    self.send_status(
                        stream_id,
                        StatusCode::SeekFailed,
                        "Live streams cannot seek.",
                    );
                }
            }
            Command::DeleteStream {
                stream_id: target, ..
            } => {
                self.end_stream(target);
                self.streams.remove(&target);
            }
            Command::CloseStream { .. } => self.end_stream(stream_id),
            Command::GetStreamLength {
                transaction_id,
                stream_name,
            } => {
                let (stream_name, query) = split_stream_name(&stream_name);
                self.events.push_back(ServerEvent::GetStreamLength {
                    transaction_id,
                    stream_name,
                    query,
                });
            }
            Command::Receive { media, enabled, .. } => {
                tracing::debug!(media, enabled, "receive flag noted (always on)")
            }
            Command::Result { .. } | Command::Error { .. } | Command::OnStatus { .. } => {}
            Command::Other {
                name,
                transaction_id,
                ..
            } => {
                tracing::debug!(%name, "unsupported command");
                if transaction_id > 0.0 {
                    self.fail_call(transaction_id, &format!("unsupported command {name}"));
                }
            }
        }
    }

    /// Ends whatever a stream was doing, telling the application.
    fn end_stream(&mut self, stream_id: u32) {
        match self.streams.insert(stream_id, StreamRole::Idle) {
            Some(StreamRole::Publishing { .. }) => {
                self.events.push_back(ServerEvent::Unpublish { stream_id });
            }
            Some(StreamRole::Playing | StreamRole::PlayingRecorded | StreamRole::PlayRequested) => {
                self.events.push_back(ServerEvent::StopPlay { stream_id });
            }
            _ => {}
        }
    }
}

fn transaction_of(command: &Command) -> Option<f64> {
    match command {
        Command::CreateStream { transaction_id }
        | Command::ReleaseStream { transaction_id, .. }
        | Command::FcPublish { transaction_id, .. }
        | Command::Publish { transaction_id, .. }
        | Command::Play { transaction_id, .. }
        | Command::Other { transaction_id, .. } => Some(*transaction_id).filter(|t| *t > 0.0),
        _ => None,
    }
}

fn connect_request(properties: Amf0Value) -> ConnectRequest {
    let text = |key: &str| {
        properties
            .get(key)
            .and_then(Amf0Value::as_str)
            .map(str::to_owned)
    };
    let mut fourccs: Option<FourCcList> = match properties.get("fourCcList") {
        Some(Amf0Value::StrictArray(items)) => {
            Some(items.iter().filter_map(Amf0Value::as_str).collect())
        }
        _ => None,
    };
    for map in ["videoFourCcInfoMap", "audioFourCcInfoMap"] {
        if let Some(entries) = properties.get(map).and_then(Amf0Value::properties) {
            // CanDecode (0x01) or CanForward (0x04).
            let usable = entries
                .iter()
                .filter(|(_, flags)| flags.as_f64().is_some_and(|f| (f as u32) & 0x05 != 0));
            let list = fourccs.get_or_insert_with(FourCcList::default);
            usable.for_each(|(fourcc, _)| list.add(fourcc));
        }
    }
    ConnectRequest {
        app: text("app").unwrap_or_default(),
        tc_url: text("tcUrl"),
        flash_ver: text("flashVer"),
        object_encoding: properties
            .get("objectEncoding")
            .and_then(Amf0Value::as_f64)
            .unwrap_or(0.0),
        fourcc_list: fourccs,
        caps_ex: match properties.get("capsEx").and_then(Amf0Value::as_f64) {
            Some(value) if (0.0..=255.0).contains(&value) => value as u8,
            _ => 0,
        },
        properties,
    }
}

/// The chunk stream rtmpx sends a message type on.
pub(crate) fn media_chunk_stream(type_id: u8) -> u32 {
    match type_id {
        type_id::AUDIO => csid::AUDIO,
        type_id::VIDEO => csid::VIDEO,
        _ => csid::DATA,
    }
}
