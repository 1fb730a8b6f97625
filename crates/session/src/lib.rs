//! The RTMP session core: one NetConnection with its NetStreams, in the server role
//! ([`ServerSession`]) and the client role ([`ClientSession`]), shared by every RTMP variant (plain, TLS,
//! HTTP tunnel, RTMPE). It never knows which transport it runs on.
//!
//! # Design
//!
//! Sans-IO in the quinn-proto manner: bytes and `now` in, events and transmits out.
//!
//! - [`ServerSession::handle_input`] takes the bytes received from the peer and the current time;
//! - [`ServerSession::poll_event`] yields what happened ([`ServerEvent`]), in order;
//! - [`ServerSession::poll_transmit`] yields the bytes to write to the peer;
//! - [`ServerSession::poll_timeout`] says when [`ServerSession::handle_timeout`] wants to be called
//!   (pings, idle and handshake timeouts).
//!
//! [`ClientSession`] has the same cycle. The session opens no sockets, spawns no tasks, reads no clock and
//! draws no randomness: the handshake's random bytes come from the [`RandomFill`] the caller passes, so
//! tests can run with a fixed one. It keeps no registry of streams: every decision is the caller's. A
//! [`ServerEvent::Connect`] is answered with [`ServerSession::accept_connect`] or
//! [`ServerSession::reject_connect`], a [`ServerEvent::Publish`] with [`ServerSession::accept_publish`] or
//! [`ServerSession::reject_publish`], a [`ServerEvent::Play`] with [`ServerSession::accept_play`] or
//! [`ServerSession::reject_play`]. Inside, bytes go through the handshake (`rtmp-handshake`, with the
//! RTMPE hook), the RC4 keystream when RTMPE was negotiated, the chunk codec (`rtmp-chunk`) and AMF
//! command decoding (`rtmp-amf`).
//!
//! # Example
//!
//! A server and a client wired to each other in memory, with fixed random bytes and a synthetic `now`,
//! through the handshake and `connect`:
//!
//! ```
//! use std::time::Instant;
//! use rtmp_session::{
//!     ClientEvent, ClientOptions, ClientSession, RandomFill, ServerEvent, ServerSession,
//!     SessionConfig,
//! };
//!
//! fn fixed(byte: u8) -> RandomFill {
//!     Box::new(move |bytes: &mut [u8]| bytes.fill(byte))
//! }
//!
//! let now = Instant::now();
//! let options = ClientOptions::new("live", "rtmp://127.0.0.1/live");
//! let mut client = ClientSession::new(SessionConfig::default(), options, fixed(1), now);
//! let mut server = ServerSession::new(SessionConfig::default(), fixed(2), now);
//! let mut connected = false;
//!
//! for _ in 0..10 {
//!     let mut out = Vec::new();
//!     client.poll_transmit(&mut out);
//!     server.handle_input(&out.concat(), now)?;
//!     while let Some(event) = server.poll_event() {
//!         if let ServerEvent::Connect(request) = event {
//!             assert_eq!(request.app, "live");
//!             server.accept_connect();
//!         }
//!     }
//!     let mut out = Vec::new();
//!     server.poll_transmit(&mut out);
//!     client.handle_input(&out.concat(), now)?;
//!     while let Some(event) = client.poll_event() {
//!         connected |= matches!(event, ClientEvent::Connected { .. });
//!     }
//! }
//! assert!(connected);
//! # Ok::<(), rtmp_session::SessionError>(())
//! ```
//!
//! # Features
//!
//! - `tokio` (off by default) adds the `io` module: small helpers to write a session's buffers to a
//!   tokio `AsyncWrite` with vectored writes.

#![warn(missing_docs)]
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
    ConnectRequest, ServerEvent, ServerSession, CAPS_EX_HONOURED, CAPS_EX_MOD_EX,
    CAPS_EX_MULTITRACK, CAPS_EX_RECONNECT,
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

/// The README's example, compiled as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
