//! The client: opens the transport a URL names, runs a `ClientSession` over it, and waits for the answers
//! a publish or play needs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rtmp_chunk::Message;
use rtmp_session::{ClientEvent, ClientOptions, ClientSession, SessionConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::RtmpUrl;

mod relay;

/// Why the client stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL does not parse (see [`RtmpUrl`](crate::RtmpUrl)).
    #[error("invalid URL {0}")]
    Url(String),
    /// The TCP connection (or the tunnel's HTTP connection) failed.
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    /// The TLS handshake of `rtmps` or `rtmpts` failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// Reading or writing the established connection failed.
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    /// The server broke the protocol (handshake, chunk stream or commands).
    #[error(transparent)]
    Session(#[from] rtmp_session::SessionError),
    /// The server answered a command with an error or a failure status.
    #[error("server refused {command}: {description}")]
    Refused {
        /// The refused command (`connect`, `publish`, `play`, ...).
        command: String,
        /// The server's description, or its status code.
        description: String,
    },
    /// The server closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// No answer came within the configured time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl ClientError {
    /// The refusal an `error` status (`code`, `description`) answering `command` means.
    pub(crate) fn status_refused(command: &str, code: &str, description: &str) -> Self {
        ClientError::Refused {
            command: command.to_owned(),
            description: format!("{code}: {description}"),
        }
    }
}

/// The AMF0 encoding of the string `@setDataFrame`, which begins a wrapped metadata message.
const SET_DATA_FRAME: &[u8] = b"\x02\x00\x0d@setDataFrame";

/// Metadata as a publisher sends it, `@setDataFrame("onMetaData", ...)`, relayed unchanged by some
/// servers (node-media-server 4): the [`ClientEvent::Metadata`] a player expects, without the prefix, as
/// the server side strips it too. Any other event is returned as it is.
pub(crate) fn unwrap_set_data_frame(event: ClientEvent) -> ClientEvent {
    let ClientEvent::Media { stream_id, message } = event else {
        return event;
    };
    let wrapped = message.type_id == rtmp_chunk::type_id::DATA_AMF0
        && message.payload.starts_with(SET_DATA_FRAME);
    let values = match wrapped.then(|| rtmp_amf::decode_amf0(&message.payload)) {
        Some(Ok(values)) => values,
        _ => return ClientEvent::Media { stream_id, message },
    };
    match values.get(1..) {
        Some([name, ..]) if name.as_str() == Some("onMetaData") => ClientEvent::Metadata {
            stream_id,
            // The bytes after the prefix are the metadata as sent: sliced, not re-encoded.
            message: Message {
                payload: message.payload.slice(SET_DATA_FRAME.len()..),
                ..message
            },
        },
        _ => ClientEvent::Media { stream_id, message },
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// For rtmps/rtmpts: PEM roots to verify the server against.
    pub ca_file: Option<PathBuf>,
    /// For rtmps/rtmpts: accept any certificate (tests, self-signed servers you control).
    pub insecure: bool,
    /// Enhanced RTMP FourCCs to announce in `connect` (`fourCcList`).
    pub fourcc_list: Vec<String>,
    /// E-RTMP v2 `capsEx` bits to declare in `connect` (none when 0). The default declares Multitrack
    /// (the client passes every message through, multitrack ones included) and Reconnect: a
    /// `NetConnection.Connect.ReconnectRequest` reaches the caller as [`ClientEvent::ReconnectRequest`],
    /// and [`Publisher`](crate::Publisher) and [`Player`](crate::Player) act on it. A caller of the bare
    /// [`Client`] that does not should leave Reconnect out.
    pub caps_ex: u8,
    /// How long to wait for each answer.
    pub timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            ca_file: None,
            insecure: false,
            fourcc_list: Vec::new(),
            caps_ex: rtmp_session::CAPS_EX_MULTITRACK | rtmp_session::CAPS_EX_RECONNECT,
            timeout: Duration::from_secs(10),
        }
    }
}

trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

/// A connected client.
pub struct Client {
    session: ClientSession,
    io: Box<dyn Duplex>,
    buffer: Vec<u8>,
    timeout: Duration,
    pending: std::collections::VecDeque<ClientEvent>,
    server_properties: rtmp_amf::Amf0Value,
    /// Bytes the session queued that are not written yet: kept here so that a flush cut short (its
    /// future dropped in a `select!`) loses and repeats nothing.
    unsent: std::collections::VecDeque<bytes::Bytes>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

async fn transport(
    url: &RtmpUrl,
    options: &ConnectOptions,
) -> Result<Box<dyn Duplex>, ClientError> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(ClientError::Connect)?;
    let _ = tcp.set_nodelay(true);
    let host = format!("{}:{}", url.host, url.port);
    if url.scheme.is_tls() {
        let connector = match (&options.ca_file, options.insecure) {
            (Some(file), _) => rtmp_rtmps::connector::with_roots(file),
            (None, true) => rtmp_rtmps::connector::accept_invalid_certificates(),
            (None, false) => {
                return Err(ClientError::Tls(
                    "give a CA file, or allow insecure TLS for tests".into(),
                ))
            }
        }
        .map_err(|e| ClientError::Tls(e.to_string()))?;
        let name = rustls_pki_types::ServerName::try_from(url.host.clone())
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        if url.scheme.is_tunnel() {
            return Ok(Box::new(rtmp_rtmpt::client::connect(tls, &host).await?));
        }
        return Ok(Box::new(tls));
    }
    if url.scheme.is_tunnel() {
        return Ok(Box::new(rtmp_rtmpt::client::connect(tcp, &host).await?));
    }
    Ok(Box::new(tcp))
}

impl Client {
    /// Connects to the URL's server and application (`connect` accepted).
    pub async fn connect(url: &RtmpUrl, options: &ConnectOptions) -> Result<Client, ClientError> {
        let io = transport(url, options).await?;
        let mut session_options = ClientOptions::new(url.app.clone(), url.tc_url());
        if url.scheme.is_encrypted() {
            session_options.handshake = rtmp_handshake::ClientConfig::Encrypted {
                version: 6,
                key_exchange: rtmp_rtmpe::Rtmpe::factory(),
            };
        }
        if !options.fourcc_list.is_empty() {
            let list = options
                .fourcc_list
                .iter()
                .map(|f| rtmp_amf::Amf0Value::from(f.as_str()))
                .collect();
            session_options
                .extra_properties
                .push(("fourCcList".into(), rtmp_amf::Amf0Value::StrictArray(list)));
        }
        if options.caps_ex != 0 {
            session_options
                .extra_properties
                .push(("capsEx".into(), f64::from(options.caps_ex).into()));
        }
        let session = ClientSession::new(
            SessionConfig::default(),
            session_options,
            Box::new(|bytes: &mut [u8]| rand::fill(bytes)),
            Instant::now(),
        );
        let mut client = Client {
            session,
            io,
            buffer: vec![0u8; 64 * 1024],
            timeout: options.timeout,
            pending: Default::default(),
            server_properties: rtmp_amf::Amf0Value::Null,
            unsent: Default::default(),
        };
        let connected = client
            .wait_for("connect", |e| matches!(e, ClientEvent::Connected { .. }))
            .await?;
        if let ClientEvent::Connected { properties, .. } = connected {
            client.server_properties = properties;
        }
        Ok(client)
    }

    /// The properties object of the server's `connect` answer (`fmsVer`, `capabilities`, ...).
    pub fn server_properties(&self) -> &rtmp_amf::Amf0Value {
        &self.server_properties
    }

    /// The handshake mode negotiated.
    pub fn mode(&self) -> Option<rtmp_session::HandshakeMode> {
        self.session.mode()
    }

    /// Sends everything queued. Cancel-safe: when the future is dropped, what was not written is kept
    /// for the next flush.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        let mut queued = Vec::new();
        self.session.poll_transmit(&mut queued);
        self.unsent.extend(queued);
        while !self.unsent.is_empty() {
            let slices: Vec<std::io::IoSlice<'_>> = self
                .unsent
                .iter()
                .take(64)
                .map(|buffer| std::io::IoSlice::new(buffer))
                .collect();
            let written = self.io.write_vectored(&slices).await?;
            if written == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
            }
            let mut left = written;
            while left > 0 {
                let Some(front) = self.unsent.front_mut() else {
                    break;
                };
                if left >= front.len() {
                    left -= front.len();
                    self.unsent.pop_front();
                } else {
                    *front = front.slice(left..);
                    left = 0;
                }
            }
        }
        self.io.flush().await?;
        Ok(())
    }

    /// Feeds the `n` bytes just read into the buffer to the session; a read of nothing is the server
    /// closing.
    fn take_read(&mut self, n: usize) -> Result<(), ClientError> {
        if n == 0 {
            return Err(ClientError::Closed);
        }
        let input = self.buffer.get(..n).unwrap_or_default();
        self.session.handle_input(input, Instant::now())?;
        Ok(())
    }

    /// The next event from the server. Cancel-safe.
    pub async fn next_event(&mut self) -> Result<ClientEvent, ClientError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            self.flush().await?;
            if let Some(event) = self.session.poll_event() {
                return Ok(unwrap_set_data_frame(event));
            }
            let deadline = tokio::time::Instant::from_std(self.session.poll_timeout());
            tokio::select! {
                read = self.io.read(&mut self.buffer) => self.take_read(read?)?,
                _ = tokio::time::sleep_until(deadline) => self.session.handle_timeout(Instant::now())?,
            }
        }
    }

    /// An event the server already sent, without waiting for one: for a publisher, which mostly
    /// writes, to see a status or a ReconnectRequest between two sends.
    pub async fn try_next_event(&mut self) -> Result<Option<ClientEvent>, ClientError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(Some(event));
            }
            if let Some(event) = self.session.poll_event() {
                return Ok(Some(unwrap_set_data_frame(event)));
            }
            let Client { io, buffer, .. } = self;
            let mut read = tokio::io::ReadBuf::new(buffer);
            let ready = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(
                    match std::pin::Pin::new(&mut *io).poll_read(cx, &mut read) {
                        std::task::Poll::Ready(result) => Some(result),
                        std::task::Poll::Pending => None,
                    },
                )
            })
            .await;
            match ready {
                None => {
                    if Instant::now() >= self.session.poll_timeout() {
                        self.session.handle_timeout(Instant::now())?;
                    }
                    self.flush().await?;
                    return Ok(None);
                }
                Some(Err(error)) => return Err(error.into()),
                Some(Ok(())) if read.filled().is_empty() => return Err(ClientError::Closed),
                Some(Ok(())) => {
                    let n = read.filled().len();
                    let input = self.buffer.get(..n).unwrap_or_default();
                    self.session.handle_input(input, Instant::now())?;
                }
            }
        }
    }

    /// Waits for the event `done` accepts; other events are kept for [`Client::next_event`].
    async fn wait_for(
        &mut self,
        command: &str,
        done: impl Fn(&ClientEvent) -> bool,
    ) -> Result<ClientEvent, ClientError> {
        let limit = self.timeout;
        let mut kept = Vec::new();
        let result = tokio::time::timeout(limit, async {
            loop {
                let event = self.next_event().await?;
                match &event {
                    e if done(e) => return Ok(event),
                    ClientEvent::CommandFailed {
                        command: failed,
                        description,
                    } => {
                        return Err(ClientError::Refused {
                            command: (*failed).to_owned(),
                            description: description.clone(),
                        });
                    }
                    ClientEvent::Status {
                        level,
                        code,
                        description,
                        ..
                    } if level == "error" => {
                        return Err(ClientError::status_refused(command, code, description));
                    }
                    _ => kept.push(event),
                }
            }
        })
        .await
        .map_err(|_| ClientError::Timeout(limit))?;
        self.pending.extend(kept);
        result
    }

    /// Creates a NetStream (`createStream`); returns its id, for [`Client::publish_on`].
    pub async fn create_stream(&mut self) -> Result<u32, ClientError> {
        self.session.create_stream();
        match self
            .wait_for("createStream", |e| {
                matches!(e, ClientEvent::StreamCreated { .. })
            })
            .await?
        {
            ClientEvent::StreamCreated { stream_id } => Ok(stream_id),
            _ => Err(ClientError::Closed),
        }
    }

    /// Publishes `stream_name`; returns the stream id to send media on once the server said
    /// `NetStream.Publish.Start`.
    pub async fn publish(&mut self, stream_name: &str) -> Result<u32, ClientError> {
        let stream_id = self.create_stream().await?;
        self.publish_on(stream_id, stream_name).await?;
        Ok(stream_id)
    }

    /// Publishes `stream_name` on a stream from [`Client::create_stream`], once the server said
    /// `NetStream.Publish.Start`.
    pub async fn publish_on(
        &mut self,
        stream_id: u32,
        stream_name: &str,
    ) -> Result<(), ClientError> {
        self.session.publish(stream_id, stream_name);
        self.wait_for("publish", |e| {
            matches!(e, ClientEvent::PublishStarted { .. })
        })
        .await?;
        Ok(())
    }

    /// Plays `stream_name` live; media follows as [`ClientEvent::Media`] and [`ClientEvent::Metadata`].
    pub async fn play(&mut self, stream_name: &str) -> Result<u32, ClientError> {
        let stream_id = self.create_stream().await?;
        self.session.play(stream_id, stream_name);
        self.wait_for("play", |e| matches!(e, ClientEvent::PlayStarted { .. }))
            .await?;
        Ok(stream_id)
    }

    /// Queues a media or data message on a publishing stream (sent on the next flush or event wait).
    pub fn send(&mut self, stream_id: u32, message: &Message) {
        self.session.send_message(stream_id, message);
    }

    /// Sends metadata as `@setDataFrame("onMetaData", ...)`.
    pub fn send_metadata(&mut self, stream_id: u32, metadata: rtmp_amf::Amf0Value) {
        self.session.send_metadata(stream_id, metadata);
    }

    /// Ends a publication cleanly (FCUnpublish, deleteStream) and flushes.
    pub async fn unpublish(
        &mut self,
        stream_id: u32,
        stream_name: &str,
    ) -> Result<(), ClientError> {
        self.session.delete_stream(stream_id, Some(stream_name));
        self.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtmp_amf::Amf0Value;

    fn data_message(values: &[Amf0Value]) -> Message {
        Message {
            timestamp: 0,
            type_id: rtmp_chunk::type_id::DATA_AMF0,
            stream_id: 1,
            payload: rtmp_amf::encode_amf0_values(values).unwrap(),
        }
    }

    fn metadata() -> Amf0Value {
        Amf0Value::Object(vec![("width".into(), Amf0Value::Number(1280.0))])
    }

    #[test]
    fn set_data_frame_metadata_is_metadata_without_the_prefix() {
        let wrapped = data_message(&["@setDataFrame".into(), "onMetaData".into(), metadata()]);
        let event = unwrap_set_data_frame(ClientEvent::Media {
            stream_id: 1,
            message: wrapped,
        });
        assert_eq!(
            event,
            ClientEvent::Metadata {
                stream_id: 1,
                message: data_message(&["onMetaData".into(), metadata()]),
            }
        );
    }

    #[test]
    fn other_data_messages_and_broken_ones_pass_unchanged() {
        let cue = data_message(&["onCuePoint".into(), metadata()]);
        let other_frame = data_message(&["@setDataFrame".into(), "onTextData".into()]);
        let mut cut = data_message(&["@setDataFrame".into(), "onMetaData".into(), metadata()]);
        cut.payload = cut.payload.slice(..cut.payload.len() - 3);
        for message in [cue, other_frame, cut] {
            let event = ClientEvent::Media {
                stream_id: 1,
                message,
            };
            assert_eq!(unwrap_set_data_frame(event.clone()), event);
        }
    }
}

mod playback;
