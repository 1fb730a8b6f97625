//! Why a connection ended: one typed reason per connection, written once in its close log line
//! ([`std::fmt::Display`]) and counted by a short stable label ([`CloseReason::as_str`]); and, for a
//! connection that never finished its handshake, why ([`HandshakeFailure`], counted by `/metrics`).

use std::fmt;
use std::io;
use std::time::Duration;

use rtmp_handshake::HandshakeError;
use rtmp_session::SessionError;

/// Why a connection ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed its side (an end of stream, or a TLS peer leaving without `close_notify`).
    PeerClosed,
    /// Reading from or writing to the stream failed.
    Io {
        /// Whether reading or writing failed.
        direction: Direction,
        /// The kind of the I/O error.
        kind: io::ErrorKind,
        /// The error as the system described it.
        message: String,
    },
    /// The peer broke the protocol: the session's error.
    Protocol(SessionError),
    /// The peer did not finish the handshake in time, or went silent.
    Timeout(Timeout),
    /// The connection's publisher was replaced by a new connection publishing the same stream.
    TakenOver,
    /// The server refused the connection.
    Refused(String),
    /// The server is shutting down.
    Shutdown,
    /// An operator closed the connection through the API (`DELETE /api/v1/clients/{id}`).
    Kicked,
    /// The server drained (SIGTERM, `POST /api/v1/server/drain`) and the connection was still open at
    /// the drain timeout.
    Draining,
    /// The stream an HTTP-FLV or WS-FLV player watched was unpublished: its response ends with it.
    Unpublished,
    /// The server sent its whole answer and ended it: an HTTP `HEAD`, or a file played over HTTP-FLV to
    /// its end.
    Complete,
}

/// Which way a failed I/O went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Reading from the peer failed.
    Read,
    /// Writing to the peer failed.
    Write,
}

/// Which of the session's timers expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// The handshake did not finish within this time.
    Handshake(Duration),
    /// The peer sent nothing for this long.
    Idle(Duration),
    /// The peer read nothing of what the server had to send for this long (an HTTP reader that
    /// stopped reading).
    WriteStalled(Duration),
}

impl CloseReason {
    /// A failed read or write.
    pub fn io(direction: Direction, error: &io::Error) -> Self {
        Self::Io {
            direction,
            kind: error.kind(),
            message: error.to_string(),
        }
    }

    /// A short stable label, for metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::PeerClosed => "peer_closed",
            Self::Io {
                direction: Direction::Read,
                ..
            } => "read_error",
            Self::Io {
                direction: Direction::Write,
                ..
            } => "write_error",
            Self::Protocol(_) => "protocol_error",
            Self::Timeout(Timeout::Handshake(_)) => "handshake_timeout",
            Self::Timeout(Timeout::Idle(_)) => "idle_timeout",
            Self::Timeout(Timeout::WriteStalled(_)) => "write_stalled",
            Self::TakenOver => "taken_over",
            Self::Refused(_) => "refused",
            Self::Shutdown => "shutdown",
            Self::Kicked => "kicked",
            Self::Draining => "draining",
            Self::Unpublished => "unpublished",
            Self::Complete => "complete",
        }
    }
}

/// Why a connection failed before its handshake was done (the listener's sniffing and TLS, or the
/// RTMP/RTMPE handshake itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeFailure {
    /// Nothing, or not the whole handshake, arrived within the handshake timeout.
    Timeout,
    /// The peer closed, or its connection failed, before the handshake was done.
    PeerClosed,
    /// The TLS handshake of an RTMPS connection failed.
    Tls,
    /// The first byte is no protocol this listener speaks (or TLS inside TLS).
    UnknownProtocol,
    /// An RTMPE handshake where RTMPE is not enabled.
    RtmpeDisabled,
    /// A C0 version byte the server does not speak.
    UnsupportedVersion,
    /// An RTMPE C1 without a valid digest.
    BadDigest,
    /// An RTMPE Diffie-Hellman key out of range.
    BadKey,
}

impl HandshakeFailure {
    /// A short stable label, for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::PeerClosed => "peer_closed",
            Self::Tls => "tls",
            Self::UnknownProtocol => "unknown_protocol",
            Self::RtmpeDisabled => "rtmpe_disabled",
            Self::UnsupportedVersion => "unsupported_version",
            Self::BadDigest => "bad_digest",
            Self::BadKey => "bad_key",
        }
    }

    /// Every failure, for exporting each label (a zero is a sample too).
    pub const ALL: [HandshakeFailure; 8] = [
        Self::Timeout,
        Self::PeerClosed,
        Self::Tls,
        Self::UnknownProtocol,
        Self::RtmpeDisabled,
        Self::UnsupportedVersion,
        Self::BadDigest,
        Self::BadKey,
    ];
}

impl CloseReason {
    /// Why the handshake failed, if it did: a handshake error or timeout, or the connection ending
    /// before the handshake got as far as its mode (`handshaken` false); `None` for any other end.
    pub fn handshake_failure(&self, handshaken: bool) -> Option<HandshakeFailure> {
        match self {
            Self::Timeout(Timeout::Handshake(_)) => Some(HandshakeFailure::Timeout),
            Self::Protocol(SessionError::Handshake(error)) => Some(match error {
                HandshakeError::UnsupportedVersion(_) => HandshakeFailure::UnsupportedVersion,
                HandshakeError::EncryptionUnsupported(_) => HandshakeFailure::RtmpeDisabled,
                HandshakeError::InvalidPublicKey => HandshakeFailure::BadKey,
                _ => HandshakeFailure::BadDigest,
            }),
            Self::PeerClosed | Self::Io { .. } if !handshaken => Some(HandshakeFailure::PeerClosed),
            Self::Timeout(_) if !handshaken => Some(HandshakeFailure::Timeout),
            _ => None,
        }
    }
}

/// The session's timers become [`CloseReason::Timeout`]; everything else it reports is the peer's fault.
impl From<SessionError> for CloseReason {
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::HandshakeTimeout(after) => Self::Timeout(Timeout::Handshake(after)),
            SessionError::IdleTimeout(after) => Self::Timeout(Timeout::Idle(after)),
            other => Self::Protocol(other),
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PeerClosed => f.write_str("peer closed the connection"),
            Self::Io {
                direction: Direction::Read,
                message,
                ..
            } => write!(f, "read failed: {message}"),
            Self::Io {
                direction: Direction::Write,
                message,
                ..
            } => write!(f, "write failed: {message}"),
            Self::Protocol(error) => write!(f, "protocol error: {error}"),
            Self::Timeout(Timeout::Handshake(after)) => {
                write!(f, "handshake did not complete within {after:?}")
            }
            Self::Timeout(Timeout::Idle(after)) => write!(f, "peer silent for {after:?}"),
            Self::Timeout(Timeout::WriteStalled(after)) => {
                write!(f, "peer read nothing for {after:?}")
            }
            Self::TakenOver => f.write_str("publisher taken over by a new connection"),
            Self::Refused(why) => write!(f, "refused: {why}"),
            Self::Shutdown => f.write_str("server shutting down"),
            Self::Kicked => f.write_str("closed through the API"),
            Self::Draining => f.write_str("server drained: still open at the drain timeout"),
            Self::Unpublished => f.write_str("the stream was unpublished"),
            Self::Complete => f.write_str("the response was sent whole"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_timeouts_are_timeouts_and_other_errors_the_peers_fault() {
        let idle = CloseReason::from(SessionError::IdleTimeout(Duration::from_secs(30)));
        assert_eq!(idle.as_str(), "idle_timeout");
        assert_eq!(idle.to_string(), "peer silent for 30s");
        let handshake = CloseReason::from(SessionError::HandshakeTimeout(Duration::from_secs(5)));
        assert_eq!(handshake.as_str(), "handshake_timeout");
        let closed = CloseReason::from(SessionError::Closed);
        assert_eq!(closed.as_str(), "protocol_error");
        assert_eq!(closed.to_string(), "protocol error: session already closed");
    }

    #[test]
    fn only_an_unfinished_handshake_is_a_handshake_failure() {
        let version = CloseReason::from(SessionError::Handshake(
            HandshakeError::UnsupportedVersion(7),
        ));
        assert_eq!(
            version.handshake_failure(false),
            Some(HandshakeFailure::UnsupportedVersion)
        );
        assert_eq!(CloseReason::PeerClosed.handshake_failure(true), None);
        let timeout = CloseReason::from(SessionError::HandshakeTimeout(Duration::from_secs(5)));
        assert_eq!(
            timeout
                .handshake_failure(false)
                .map(HandshakeFailure::as_str),
            Some("timeout")
        );
        assert_eq!(CloseReason::Shutdown.handshake_failure(false), None);
        assert_eq!(
            CloseReason::PeerClosed.handshake_failure(false),
            Some(HandshakeFailure::PeerClosed)
        );
    }

    #[test]
    fn io_errors_keep_their_kind_and_direction() {
        let error = io::Error::new(io::ErrorKind::ConnectionReset, "reset by peer");
        let reason = CloseReason::io(Direction::Write, &error);
        assert!(matches!(
            reason,
            CloseReason::Io {
                kind: io::ErrorKind::ConnectionReset,
                ..
            }
        ));
        assert_eq!(reason.as_str(), "write_error");
        assert_eq!(reason.to_string(), "write failed: reset by peer");
    }
}
