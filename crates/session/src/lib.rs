//! The RTMP session core: one NetConnection with its NetStreams, server and client roles, shared by every
//! RTMP variant (plain, TLS, HTTP tunnel, RTMPE). It never knows which transport it runs on.
//!
//! Sans-IO in the quinn-proto manner: the caller feeds received bytes and the current time
//! (`handle_input`, `handle_timeout`), drains wire bytes (`poll_transmit`) and events (`poll_event`), and
//! answers decisions (`accept_publish`, `accept_play`, ...). Inside, bytes go through the handshake
//! (`rtmp-handshake`, with the RTMPE hook), the RC4 keystream when RTMPE was negotiated, the chunk codec
//! (`rtmp-chunk`) and AMF command decoding (`rtmp-amf`).
//!
//! The optional `tokio` feature (default) adds [`io`]: small helpers to drive a session over any
//! `AsyncRead + AsyncWrite` stream with vectored writes.

mod client;
mod commands;
mod config;
mod error;
#[cfg(feature = "tokio")]
pub mod io;
mod replies;
mod server;
mod transport;

pub use client::{ClientEvent, ClientOptions, ClientSession};
pub use commands::Command;
pub use config::SessionConfig;
pub use error::SessionError;
pub use server::{ConnectRequest, ServerEvent, ServerSession};

pub use rtmp_handshake::HandshakeMode;

/// Splits `name?query` as publishers and players send stream names.
pub fn split_stream_name(raw: &str) -> (String, String) {
    match raw.split_once('?') {
        Some((name, query)) => (name.to_owned(), query.to_owned()),
        None => (raw.to_owned(), String::new()),
    }
}
