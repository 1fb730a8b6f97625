//! The stream registry and encode-once fan-out of an RTMP server: publishers in, players out, media
//! shared, never copied.
//!
//! `rtmp-hub` sits between the connections that publish a stream and the connections that play it. It is
//! sans-IO: it opens no socket, spawns no task, reads no clock and speaks no RTMP session. The caller
//! hands it [`rtmp_chunk::Message`]s and the current [`Instant`](std::time::Instant), and takes
//! [`SubscriberEvent`]s out, by polling ([`Subscriber::try_recv`], [`Subscriber::poll_recv`]) or
//! awaiting ([`Subscriber::recv`]) on any executor, or none.
//!
//! # Example
//!
//! One publisher, one player, a 30 ms batch window, driven by hand on synthetic instants:
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! use bytes::Bytes;
//! use rtmp_chunk::Message;
//! use rtmp_hub::{Hub, HubConfig, StreamKey, SubscriberEvent};
//!
//! # fn main() -> Result<(), rtmp_hub::HubError> {
//! let t0 = Instant::now(); // the only clock read: every later instant is t0 + a duration
//! let ms = |millis| t0 + Duration::from_millis(millis);
//! let config = HubConfig { batch_window: Duration::from_millis(30), ..HubConfig::default() };
//! let hub = Hub::new(config, t0);
//! let key = StreamKey::new("live", "cam");
//!
//! let mut player = hub.subscribe(&key); // before or after the publisher: both work
//! let publisher = hub.publish(&key, t0)?;
//! let keyframe = Message {
//!     timestamp: 0,
//!     type_id: 9,                                       // video
//!     stream_id: 1,
//!     payload: Bytes::from_static(&[0x17, 1, 0, 0, 0]), // AVC keyframe (NALUs elided)
//! };
//! let audio = Message {
//!     timestamp: 2,
//!     type_id: 8,                                       // audio
//!     stream_id: 1,
//!     payload: Bytes::from_static(&[0xAF, 1, 0x21]),    // AAC raw frame
//! };
//! publisher.send(&keyframe, ms(40)); // after a quiet spell: visible at once
//! publisher.send(&audio, ms(42)); // within the window: waits for the player's turn
//!
//! assert!(matches!(player.try_recv(), Some(SubscriberEvent::Published)));
//! assert!(matches!(player.try_recv(), Some(SubscriberEvent::Frame(f)) if f.info.keyframe));
//! assert!(player.try_recv().is_none(), "the audio waits for the batch window");
//!
//! // The publishing side keeps a timer on the next turn and calls flush_if_due when it fires.
//! let deadline = publisher.flush_deadline().expect("a frame waits");
//! assert!(deadline <= ms(42) + Duration::from_millis(30));
//! publisher.flush_if_due(deadline);
//! match player.try_recv() {
//!     Some(SubscriberEvent::Frame(frame)) => assert_eq!(frame.message(), audio),
//!     other => panic!("expected the audio frame, got {other:?}"),
//! }
//! drop(publisher);
//! assert!(matches!(player.try_recv(), Some(SubscriberEvent::Unpublished)));
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! ```text
//!                      encode once          one ring per stream         each at its own cursor
//!  Publisher::send ──▶ Arc<Frame> ──┬──▶ [ f1 f2 f3 f4 f5 f6 ... ] ──┬──▶ Subscriber (wake group 0)
//!   (Message, now)                  │         ▲ flushed in turns     ├──▶ Subscriber (wake group 1)
//!                                   └──▶ GOP cache                   └──▶ Subscriber (too slow: skips
//!                                        (new players start here)         to the next keyframe)
//! ```
//!
//! * **Registry.** [`Hub`] maps a [`StreamKey`] (app, stream name) to a stream; streams are
//!   independent, created on first use and dropped when nobody publishes or plays them.
//!   [`Hub::publish`] returns a [`Publisher`], [`Hub::subscribe`] a [`Subscriber`]; dropping either
//!   leaves the stream.
//! * **Encode once, zero-copy fan-out.** [`Publisher::send`] classifies a message ([`media`]),
//!   chunk-encodes it **once** into a [`Frame`] ([`rtmp_chunk::SharedMessage`], at
//!   [`HubConfig::chunk_size`]) and pushes the same `Arc<Frame>` into the stream's ring: O(1) work per
//!   frame for the publisher whatever the number of players, and every player writes the same bytes.
//! * **GOP cache.** The latest metadata ([`Publisher::set_metadata`]), sequence headers and the frames
//!   since the last video keyframe (bounded by [`HubConfig::gop_cache_bytes`]) let a new player start at
//!   once, on a keyframe. The snapshot and the live frames are taken under one lock, so a joining player
//!   sees a contiguous run: nothing doubled, nothing lost.
//! * **Slow-player policy.** The ring holds [`HubConfig::player_queue_frames`] frames. A player that
//!   falls further behind loses the oldest, skips video to the next keyframe (audio and data go on) and
//!   counts what it lost ([`Subscriber::dropped`]). The publisher never waits for a player, and memory is
//!   bounded by the ring whatever a player does.
//! * **Batch window.** With a [`HubConfig::batch_window`], frames become visible, and waiting players are
//!   woken, in turns: players are split into four wake groups, one flushed every quarter window, so each
//!   player gets one larger write per window instead of one per frame. The window follows the hub's
//!   audience ([`HubConfig::batch_window_for`]). The publishing side drives it with
//!   [`Publisher::flush_deadline`] and [`Publisher::flush_if_due`].
//! * **Publish policy.** A second publisher to a live stream takes it over when the current one has sent
//!   no media for a while ([`PublishPolicy::TakeOver`]; the old one learns it through
//!   [`Publisher::kicked`]), or is refused ([`PublishPolicy::Reject`], [`HubError::StreamTaken`]).
//! * **Time is an input.** [`Hub::new`], [`Hub::publish`], [`Publisher::send`] and
//!   [`Publisher::flush_if_due`] take `now` from the caller; the crate never reads a clock, so tests and
//!   simulations run on synthetic instants, without sleeps.
//!
//! Code map: `registry` ([`Hub`], streams by key, the publish policy), `publisher` and `subscriber` (the
//! two ends of a stream), `ring` (the fan-out ring, batch window, flush grid and wake groups), `gop` (the
//! GOP cache), `frame` ([`Frame`], [`SubscriberEvent`]), `config` ([`HubConfig`]), [`media`]
//! (classification of audio and video payloads, legacy and Enhanced RTMP). The reasoning and the
//! measurements behind these choices are in the repository's `docs/hub.md`.
//!
//! # Cargo features
//!
//! None: the crate has no optional parts, and builds the same with `--no-default-features`.

#![warn(missing_docs)]
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
pub use registry::{Hub, HubError, PublishedStream, SequenceHeaders, StreamKey, StreamStats};
pub use subscriber::Subscriber;

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
