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
//! See docs/hub.md for the reasoning.

pub mod media;
mod stream;

pub use stream::{
    Frame, FrameKind, Hub, HubConfig, HubError, PublishPolicy, Publisher, StreamKey, StreamStats,
    Subscriber, SubscriberEvent,
};
