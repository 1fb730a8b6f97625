//! The client role: connect, create streams, publish or play, as FFmpeg does it on the wire. Used by
//! rtmpx's own client, tests and the load generator.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use rtmp_amf::Amf0Value;
use rtmp_chunk::{csid, type_id, Message, RtmpMessage, SharedMessage, UserControlEvent};

use crate::commands::{decode_values, Command};
use crate::replies;
use crate::server::media_chunk_stream;
use crate::transport::Transport;
use crate::{HandshakeMode, PublishType, RandomFill, SessionConfig, SessionError};

/// What to connect to and how.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The application name (`app` in `connect`).
    pub app: String,
    /// The `tcUrl` property: the URL the client connected to.
    pub tc_url: String,
    /// Which handshake to perform (digest by default; RTMPE when configured).
    pub handshake: rtmp_handshake::ClientConfig,
    /// The `flashVer` property.
    pub flash_ver: String,
    /// Extra `connect` properties (e.g. `fourCcList` for Enhanced RTMP), appended after the usual ones.
    pub extra_properties: Vec<(String, Amf0Value)>,
}

impl ClientOptions {
    /// Options to connect to `app` with `tcUrl` `tc_url`, a digest handshake and an FMLE-like `flashVer`.
    pub fn new(app: impl Into<String>, tc_url: impl Into<String>) -> Self {
        Self {
            app: app.into(),
            tc_url: tc_url.into(),
            handshake: rtmp_handshake::ClientConfig::Digest,
            flash_ver: "FMLE/3.0 (compatible; rtmpx)".into(),
            extra_properties: Vec::new(),
        }
    }
}

/// What happened on the client session, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// The handshake completed; `connect` has been sent.
    HandshakeComplete {
        /// The handshake variant agreed.
        mode: HandshakeMode,
    },
    /// The server accepted `connect`; its properties and info objects.
    Connected {
        /// The server's properties object (`fmsVer`, `capabilities`, ...).
        properties: Amf0Value,
        /// The info object (`level`, `code`, `description`, ...).
        info: Amf0Value,
    },
    /// The server answered `createStream` with this stream id.
    StreamCreated {
        /// The message stream id (a NetStream from `createStream`).
        stream_id: u32,
    },
    /// The server answered `publish` with `NetStream.Publish.Start`.
    PublishStarted {
        /// The message stream id (a NetStream from `createStream`).
        stream_id: u32,
    },
    /// The server answered `play` with `NetStream.Play.Start`.
    PlayStarted {
        /// The message stream id (a NetStream from `createStream`).
        stream_id: u32,
    },
    /// Any other `onStatus` (errors included).
    Status {
        /// The message stream id (a NetStream from `createStream`).
        stream_id: u32,
        /// The status level (`status`, `warning`, `error`).
        level: String,
        /// The status code (`NetStream.Publish.Start`, ...).
        code: String,
        /// The human-readable description.
        description: String,
    },
    /// The server asks to connect again (E-RTMP v2 `NetConnection.Connect.ReconnectRequest`), e.g. because
    /// it drains: to `tc_url` when it names one, else to the same URL.
    ReconnectRequest {
        /// The `tcUrl` to connect to instead (`scheme://host[:port]/app`), if the server named one.
        tc_url: Option<String>,
        /// The human-readable description.
        description: String,
    },
    /// An `_error` answer to one of our commands (`connect` rejected, ...).
    CommandFailed {
        /// The command that failed.
        command: &'static str,
        /// The human-readable description.
        description: String,
    },
    /// Audio, video or data on a playing stream.
    Media {
        /// The message stream id (a NetStream from `createStream`).
        stream_id: u32,
        /// The message, as received.
        message: Message,
    },
    /// Metadata (`onMetaData`) on a playing stream.
    Metadata {
        /// The message stream id (a NetStream from `createStream`).
        stream_id: u32,
        /// The message, as received.
        message: Message,
    },
    /// The answer to [`ClientSession::get_stream_length`]: the stream's duration in seconds.
    StreamLength {
        /// The duration in seconds (0 for a live or unknown stream).
        seconds: f64,
    },
}

#[derive(Debug, Clone, Copy)]
enum Pending {
    Connect,
    CreateStream,
    StreamLength,
    Other(&'static str),
}

/// The client side of one RTMP connection.
#[derive(Debug)]
pub struct ClientSession {
    transport: Transport,
    options: ClientOptions,
    events: VecDeque<ClientEvent>,
    pending: HashMap<u64, Pending>,
    next_transaction: u64,
}

impl ClientSession {
    /// Starts a session; C0+C1 are queued for sending at once. `random` fills the handshake's random
    /// bytes.
    pub fn new(
        config: SessionConfig,
        options: ClientOptions,
        random: RandomFill,
        now: Instant,
    ) -> Self {
        let transport = Transport::client(config, options.handshake.clone(), random, now);
        Self {
            transport,
            options,
            events: VecDeque::new(),
            pending: HashMap::new(),
            next_transaction: 1,
        }
    }

    /// Feeds bytes received from the peer, at `now`; new events and transmits follow.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) -> Result<(), SessionError> {
        if self.transport.handle_input(data, now)? {
            if let Some(mode) = self.transport.mode {
                self.events
                    .push_back(ClientEvent::HandshakeComplete { mode });
            }
            self.send_connect();
        }
        while let Some(message) = self.transport.next_message()? {
            self.handle_message(message)?;
        }
        Ok(())
    }

    /// Handles the deadline [`poll_timeout`](Self::poll_timeout) announced: pings, idle and handshake timeouts.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SessionError> {
        self.transport.handle_timeout(now)
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to be called next.
    pub fn poll_timeout(&self) -> Instant {
        self.transport.poll_timeout()
    }

    /// The next event, in order; `None` when there is none for now.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
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

    /// The outgoing chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.transport.chunk_size()
    }

    fn transaction(&mut self, pending: Pending) -> f64 {
        let id = self.next_transaction;
        self.next_transaction += 1;
        self.pending.insert(id, pending);
        id as f64
    }

    fn send_connect(&mut self) {
        let chunk_size = self.transport.config.chunk_size;
        if !self.transport.is_encrypted() {
            self.transport.set_chunk_size(chunk_size);
        }
        let txn = self.transaction(Pending::Connect);
        let mut properties: Vec<(String, Amf0Value)> = vec![
            ("app".into(), self.options.app.clone().into()),
            ("type".into(), "nonprivate".into()),
            ("flashVer".into(), self.options.flash_ver.clone().into()),
            ("tcUrl".into(), self.options.tc_url.clone().into()),
            ("fpad".into(), false.into()),
            ("capabilities".into(), 15.0.into()),
            ("audioCodecs".into(), 4071.0.into()),
            ("videoCodecs".into(), 252.0.into()),
            ("videoFunction".into(), 1.0.into()),
        ];
        properties.extend(self.options.extra_properties.iter().cloned());
        let connect = replies::command(
            0,
            &["connect".into(), txn.into(), Amf0Value::Object(properties)],
        );
        self.transport.send(csid::COMMAND, &connect);
    }

    /// Asks for a new stream; [`ClientEvent::StreamCreated`] follows.
    pub fn create_stream(&mut self) {
        let txn = self.transaction(Pending::CreateStream);
        self.transport.send(
            csid::COMMAND,
            &replies::command(0, &["createStream".into(), txn.into(), Amf0Value::Null]),
        );
    }

    /// Publishes on a created stream (releaseStream and FCPublish first, as encoders do).
    pub fn publish(&mut self, stream_id: u32, stream_name: &str) {
        for name in ["releaseStream", "FCPublish"] {
            let txn = self.transaction(Pending::Other(if name == "FCPublish" {
                "FCPublish"
            } else {
                "releaseStream"
            }));
            self.transport.send(
                csid::COMMAND,
                &replies::command(
                    0,
                    &[name.into(), txn.into(), Amf0Value::Null, stream_name.into()],
                ),
            );
        }
        let txn = self.transaction(Pending::Other("publish"));
        let publish = replies::command(
            stream_id,
            &[
                "publish".into(),
                txn.into(),
                Amf0Value::Null,
                stream_name.into(),
                PublishType::Live.as_str().into(),
            ],
        );
        self.transport.send(csid::STREAM_COMMAND, &publish);
    }

    /// Plays a stream live on a created stream.
    pub fn play(&mut self, stream_id: u32, stream_name: &str) {
        self.send_play(stream_id, stream_name, &[(-1000.0).into()]);
        self.set_buffer_length(stream_id, 3000);
    }

    /// Plays a stream from `start_ms` (`-2` live or recorded, `-1` live only, `>= 0` a recording from
    /// there) for `duration_ms` (`-1`: to the end), telling the server a buffer of `buffer_ms`.
    pub fn play_from(
        &mut self,
        stream_id: u32,
        stream_name: &str,
        start_ms: f64,
        duration_ms: f64,
        buffer_ms: u32,
    ) {
        self.send_play(
            stream_id,
            stream_name,
            &[start_ms.into(), duration_ms.into()],
        );
        self.set_buffer_length(stream_id, buffer_ms);
    }

    /// Tells the server the client's buffer length for a stream (User Control SetBufferLength).
    pub fn set_buffer_length(&mut self, stream_id: u32, buffer_ms: u32) {
        let buffer = UserControlEvent::SetBufferLength {
            stream_id,
            buffer_ms,
        };
        self.transport
            .send_control(RtmpMessage::UserControl(buffer));
    }

    /// Sends `play` for `stream_name` with the position arguments that follow the name (start, and
    /// duration when given).
    fn send_play(&mut self, stream_id: u32, stream_name: &str, position: &[Amf0Value]) {
        let txn = self.transaction(Pending::Other("play"));
        let mut arguments = vec![
            "play".into(),
            txn.into(),
            Amf0Value::Null,
            stream_name.into(),
        ];
        arguments.extend_from_slice(position);
        let play = replies::command(stream_id, &arguments);
        self.transport.send(csid::STREAM_COMMAND, &play);
    }

    /// Asks a recorded stream to move to `position_ms` (`NetStream.Seek.Notify` answers).
    pub fn seek(&mut self, stream_id: u32, position_ms: f64) {
        let seek = replies::command(
            stream_id,
            &[
                "seek".into(),
                0.0.into(),
                Amf0Value::Null,
                position_ms.into(),
            ],
        );
        self.transport.send(csid::STREAM_COMMAND, &seek);
    }

    /// Pauses (`true`) or resumes a stream; `position_ms` is the client's play head.
    pub fn pause(&mut self, stream_id: u32, paused: bool, position_ms: f64) {
        let pause = replies::command(
            stream_id,
            &[
                "pause".into(),
                0.0.into(),
                Amf0Value::Null,
                paused.into(),
                position_ms.into(),
            ],
        );
        self.transport.send(csid::STREAM_COMMAND, &pause);
    }

    /// Asks a stream's duration; [`ClientEvent::StreamLength`] follows.
    pub fn get_stream_length(&mut self, stream_name: &str) {
        let txn = self.transaction(Pending::StreamLength);
        let call = replies::command(
            0,
            &[
                "getStreamLength".into(),
                txn.into(),
                Amf0Value::Null,
                stream_name.into(),
            ],
        );
        self.transport.send(csid::COMMAND, &call);
    }

    /// Stops publishing or playing a stream and deletes it.
    pub fn delete_stream(&mut self, stream_id: u32, stream_name: Option<&str>) {
        if let Some(name) = stream_name {
            let txn = self.transaction(Pending::Other("FCUnpublish"));
            self.transport.send(
                csid::COMMAND,
                &replies::command(
                    0,
                    &[
                        "FCUnpublish".into(),
                        txn.into(),
                        Amf0Value::Null,
                        name.into(),
                    ],
                ),
            );
        }
        let txn = self.transaction(Pending::Other("deleteStream"));
        let delete = replies::command(
            0,
            &[
                "deleteStream".into(),
                txn.into(),
                Amf0Value::Null,
                f64::from(stream_id).into(),
            ],
        );
        self.transport.send(csid::COMMAND, &delete);
    }

    /// Sends audio, video or a data message on a publishing stream.
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

    /// Sends stream metadata as `@setDataFrame("onMetaData", metadata)`.
    pub fn send_metadata(&mut self, stream_id: u32, metadata: Amf0Value) {
        let message = replies::data(
            stream_id,
            &["@setDataFrame".into(), "onMetaData".into(), metadata],
        );
        self.transport.send(csid::DATA, &message);
    }

    /// Sends a message encoded once (e.g. one publisher feeding several connections).
    pub fn send_shared(&mut self, stream_id: u32, shared: &SharedMessage) {
        self.transport.send_shared(shared, stream_id);
    }

    fn handle_message(&mut self, message: Message) -> Result<(), SessionError> {
        let stream_id = message.stream_id;
        match message.type_id {
            type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3 => {
                let values = decode_values(&message, "command")?;
                match Command::parse(values) {
                    Ok(command) => self.handle_command(stream_id, command),
                    Err(error) => tracing::debug!(%error, "malformed command from server"),
                }
            }
            type_id::DATA_AMF0 | type_id::DATA_AMF3 => {
                let values = decode_values(&message, "data message")?;
                let name = values.first().and_then(Amf0Value::as_str);
                if name == Some("onMetaData") {
                    self.events
                        .push_back(ClientEvent::Metadata { stream_id, message });
                } else if name == Some("onPlayStatus") {
                    let info = values.get(1);
                    let field = |key: &str| {
                        info.and_then(|info| info.get(key))
                            .and_then(Amf0Value::as_str)
                            .unwrap_or_default()
                            .to_owned()
                    };
                    self.events.push_back(ClientEvent::Status {
                        stream_id,
                        level: field("level"),
                        code: field("code"),
                        description: field("description"),
                    });
                } else {
                    self.events
                        .push_back(ClientEvent::Media { stream_id, message });
                }
            }
            type_id::AUDIO | type_id::VIDEO => self
                .events
                .push_back(ClientEvent::Media { stream_id, message }),
            _ => {}
        }
        Ok(())
    }

    fn handle_command(&mut self, stream_id: u32, command: Command) {
        match command {
            Command::Result {
                transaction_id,
                mut values,
            } => match self.pending.remove(&(transaction_id as u64)) {
                Some(Pending::Connect) => {
                    let info = values.pop().unwrap_or(Amf0Value::Null);
                    let properties = values.pop().unwrap_or(Amf0Value::Null);
                    self.events
                        .push_back(ClientEvent::Connected { properties, info });
                }
                Some(Pending::CreateStream) => {
                    let id = values
                        .iter()
                        .rev()
                        .find_map(Amf0Value::as_f64)
                        .unwrap_or(0.0);
                    self.events.push_back(ClientEvent::StreamCreated {
                        stream_id: id as u32,
                    });
                }
                Some(Pending::StreamLength) => {
                    let seconds = values
                        .iter()
                        .rev()
                        .find_map(Amf0Value::as_f64)
                        .unwrap_or(0.0);
                    self.events.push_back(ClientEvent::StreamLength { seconds });
                }
                _ => {}
            },
            Command::Error {
                transaction_id,
                values,
            } => {
                let command = match self.pending.remove(&(transaction_id as u64)) {
                    Some(Pending::Connect) => "connect",
                    Some(Pending::CreateStream) => "createStream",
                    Some(Pending::StreamLength) => "getStreamLength",
                    Some(Pending::Other(name)) => name,
                    None => "unknown",
                };
                let description = values
                    .iter()
                    .find_map(|v| v.get("description").and_then(Amf0Value::as_str))
                    .unwrap_or_default()
                    .to_owned();
                self.events.push_back(ClientEvent::CommandFailed {
                    command,
                    description,
                });
            }
            Command::OnStatus { info } => {
                let field = |key: &str| {
                    info.get(key)
                        .and_then(Amf0Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                let (level, code, description) =
                    (field("level"), field("code"), field("description"));
                let event = match code.as_str() {
                    "NetStream.Publish.Start" => ClientEvent::PublishStarted { stream_id },
                    "NetStream.Play.Start" => ClientEvent::PlayStarted { stream_id },
                    "NetConnection.Connect.ReconnectRequest" => ClientEvent::ReconnectRequest {
                        tc_url: info
                            .get("tcUrl")
                            .and_then(Amf0Value::as_str)
                            .filter(|url| !url.is_empty())
                            .map(str::to_owned),
                        description,
                    },
                    _ => ClientEvent::Status {
                        stream_id,
                        level,
                        code,
                        description,
                    },
                };
                self.events.push_back(event);
            }
            _ => {}
        }
    }
}
