//! An RTMP client on the same session core as the server: connect, publish and play over every variant a
//! URL names (`rtmp://`, `rtmps://`, `rtmpt://`, `rtmpts://`, `rtmpe://`, `rtmpte://`), with typed events.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rtmp_client::ClientError> {
//! use rtmp_client::{Client, ConnectOptions, RtmpUrl};
//! let url: RtmpUrl = "rtmpte://127.0.0.1:8080/live/stream".parse()?;
//! let mut client = Client::connect(&url, &ConnectOptions::default()).await?;
//! let stream_id = client.play(&url.stream).await?;
//! loop {
//!     let event = client.next_event().await?;
//!     println!("{stream_id}: {event:?}");
//! }
//! # }
//! ```

#![warn(missing_docs)]

mod client;
pub mod flv;
mod reconnect;
mod url;

pub use client::{Client, ClientError, ConnectOptions};
pub use reconnect::{Player, Publisher};
pub use rtmp_session::{ClientEvent, CAPS_EX_MOD_EX, CAPS_EX_MULTITRACK, CAPS_EX_RECONNECT};
pub use url::{RtmpUrl, Scheme};
