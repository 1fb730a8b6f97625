//! The RTMP session core: one NetConnection with its NetStreams, server and client roles, shared by every
//! RTMP variant (plain, TLS, HTTP tunnel, RTMPE). It never knows which transport it runs on.
//!
//! Sans-IO in the quinn-proto manner: the caller feeds received bytes and the current time
//! (`handle_input`, `handle_timeout`), drains wire bytes (`poll_transmit`) and events (`poll_event`), and
//! answers decisions (`accept_publish`, `accept_play`, ...). Inside, bytes go through the handshake
//! (`rtmp-handshake`, with the RTMPE hook), the RC4 keystream when RTMPE was negotiated, the chunk codec
//! (`rtmp-chunk`) and AMF command decoding (`rtmp-amf`).
//!
//! No randomness is drawn inside: the handshake's random bytes come from the source the caller passes
//! ([`RandomFill`]), so tests can run with a fixed one.
//!
//! The opt-in `tokio` feature adds the `io` module: small helpers to drive a session over any
//! `AsyncRead + AsyncWrite` stream with vectored writes.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod client;
mod commands;
mod config;
mod error;
mod fourcc;
#[cfg(feature = "tokio")]
pub mod io;
mod replies;
mod server;
mod status;
mod transport;

pub use client::{ClientEvent, ClientOptions, ClientSession};
pub use commands::{Command, PublishType};
pub use config::SessionConfig;
pub use error::SessionError;
pub use fourcc::{FourCc, FourCcList};
pub use server::{
    ConnectRequest, ServerEvent, ServerSession, CAPS_EX_MOD_EX, CAPS_EX_MULTITRACK,
    CAPS_EX_RECONNECT,
};
pub use status::{StatusCode, StatusLevel};

pub use rtmp_handshake::{HandshakeMode, RandomFill};

/// Splits `name?query` as publishers and players send stream names.
pub fn split_stream_name(raw: &str) -> (String, String) {
    match raw.split_once('?') {
        Some((name, query)) => (name.to_owned(), query.to_owned()),
        None => (raw.to_owned(), String::new()),
    }
}
