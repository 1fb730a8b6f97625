//! One publisher and two players on one stream, driven by hand: no runtime, no socket, no sleep.
//!
//! Time is synthetic (one base instant plus durations). The loop does what a server's publishing
//! connection does: at each step it waits for whichever comes first, the next message from the encoder or
//! the batch window's next turn ([`Publisher::flush_deadline`]), and then lets the players read what has
//! become visible to them.
//!
//! Run with `cargo run -p rtmp-hub --example fanout`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtmp_chunk::Message;
use rtmp_hub::{Hub, HubConfig, StreamKey, Subscriber, SubscriberEvent};

/// A 30 fps video frame (a keyframe every 4 frames here, to keep the output short) at `index`.
fn video(index: u32) -> Message {
    let first = if index % 4 == 0 { 0x17 } else { 0x27 }; // AVC keyframe / inter frame
    Message {
        timestamp: index * 33,
        type_id: 9,
        stream_id: 1,
        payload: Bytes::from(vec![first, 1, 0, 0, 0, index as u8]),
    }
}

/// An AAC audio frame at `timestamp`.
fn audio(timestamp: u32) -> Message {
    Message {
        timestamp,
        type_id: 8,
        stream_id: 1,
        payload: Bytes::from_static(&[0xAF, 1, 0x21, 0x10]),
    }
}

fn describe(event: &SubscriberEvent) -> String {
    match event {
        SubscriberEvent::Published => "published".to_owned(),
        SubscriberEvent::Unpublished => "unpublished".to_owned(),
        SubscriberEvent::Frame(frame) => {
            let message = frame.message();
            let key = if frame.info.keyframe { " key" } else { "" };
            format!(
                "{:?}{key} ts={} ({} bytes on the wire)",
                frame.kind,
                message.timestamp,
                frame.shared.wire_len()
            )
        }
    }
}

/// Everything `player` can read now; the frames it got, to compare with the other player's.
fn drain(name: &str, at: Duration, player: &mut Subscriber) -> Vec<SubscriberEvent> {
    let mut got = Vec::new();
    while let Some(event) = player.try_recv() {
        println!(
            "{:>6.1} ms  {name}: {}",
            at.as_secs_f64() * 1e3,
            describe(&event)
        );
        got.push(event);
    }
    got
}

fn main() {
    let t0 = Instant::now(); // the only clock read: the hub itself never reads one
    let config = HubConfig {
        batch_window: Duration::from_millis(30),
        ..HubConfig::default()
    };
    let hub = Hub::new(config, t0);
    let key = StreamKey::new("live", "cam");

    // Players may come before the publisher; they are told when it starts.
    let mut alice = hub.subscribe(&key);
    let mut bob = hub.subscribe(&key);
    let publisher = hub.publish(&key, t0).expect("nobody publishes yet");

    // What the encoder sends, and when it arrives: video every 33 ms, audio every 23 ms.
    let mut input: Vec<(Duration, Message)> = (0..8)
        .map(|index| (Duration::from_millis(u64::from(index) * 33), video(index)))
        .chain((0..11).map(|index| (Duration::from_millis(index * 23), audio(index as u32 * 23))))
        .collect();
    input.sort_by_key(|(at, _)| *at);

    let mut alice_frames = Vec::new();
    let mut bob_frames = Vec::new();
    let mut pending = input.into_iter().peekable();
    let mut at = Duration::ZERO;
    loop {
        // The next thing to happen: the batch window's next turn, or the next message.
        let deadline = publisher.flush_deadline();
        let next_message = pending.peek().map(|(at, _)| t0 + *at);
        let now = match (deadline, next_message) {
            (Some(deadline), Some(next)) if deadline < next => {
                publisher.flush_if_due(deadline);
                deadline
            }
            (_, Some(next)) => {
                let (_, message) = pending.next().expect("peeked");
                publisher.send(&message, next);
                next
            }
            (Some(deadline), None) => {
                publisher.flush_if_due(deadline);
                deadline
            }
            (None, None) => break,
        };
        at = now - t0;
        alice_frames.extend(drain("alice", at, &mut alice));
        bob_frames.extend(drain("bob  ", at, &mut bob));
    }
    // The encoder disconnects: the players are told, and stay subscribed for the next publisher.
    drop(publisher);
    drain("alice", at, &mut alice);
    drain("bob  ", at, &mut bob);

    // Both players received the very same encoded frames: one allocation each, shared.
    let shared = alice_frames
        .iter()
        .zip(&bob_frames)
        .filter(|pair| matches!(pair, (SubscriberEvent::Frame(a), SubscriberEvent::Frame(b)) if Arc::ptr_eq(a, b)))
        .count();
    println!(
        "alice got {} events, bob {}; {shared} frames were the same allocation for both",
        alice_frames.len(),
        bob_frames.len()
    );
}
