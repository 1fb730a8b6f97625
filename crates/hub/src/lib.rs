//! The stream registry and fan-out of rtmpx: publishers in, players out, media shared, never copied.
//!
//! * [`Hub`] maps a [`StreamKey`] (app, stream name) to a stream; streams are independent.
//! * [`Publisher::send`] classifies a media message ([`media`]), chunk-encodes it **once**
//!   ([`rtmp_chunk::SharedMessage`]) and hands the same `Arc<Frame>` to every player through one
//!   fan-out ring per stream (docs/hub.md): O(1) work per frame for the publisher whatever the number of
//!   players, and memory bounded by the ring whatever a player does.
//! * A player that falls behind the ring loses frames and skips to the next video keyframe (audio goes on);
//!   the publisher is never slowed down by a player.
//! * The GOP cache (metadata, latest sequence headers, frames since the last keyframe, bounded in bytes)
//!   lets a new player start at once, on a keyframe. Snapshot and live frames are taken under one lock, so
//!   a joining player sees a contiguous run.
//! * Publish policy: a new publisher takes over a name whose publisher has gone quiet (the stale
//!   connection is told to close), otherwise it is refused; or always refused ([`PublishPolicy::Reject`]).
//!
//! * Time is an input: every entry point that needs it takes `now` from the caller, and the crate never
//!   reads a clock.
//!
//! Code map: `registry` ([`Hub`], streams by key, the publish policy), `publisher` and `subscriber` (the
//! two ends of a stream), `ring` (the fan-out ring, batch window, flush grid and wake groups), `gop` (the
//! GOP cache), `frame` (what is carried), `config` (settings), [`media`] (classification).
//!
//! See docs/hub.md for the reasoning.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod config;
mod frame;
mod gop;
pub mod media;
mod publisher;
mod registry;
mod ring;
mod subscriber;

pub use config::{HubConfig, PublishPolicy};
pub use frame::{Frame, FrameKind, SubscriberEvent};
pub use publisher::Publisher;
pub use registry::{Hub, HubError, StreamKey, StreamStats};
pub use subscriber::Subscriber;
