//! A player that stops reading while the stream goes on: the publisher is not slowed down, the player
//! loses what fell out of the ring, and resumes on the next video keyframe (audio goes on meanwhile).
//!
//! Driven by hand on synthetic instants: no runtime, no socket, no sleep.
//!
//! Run with `cargo run -p rtmp-hub --example slow_player`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rtmp_chunk::Message;
use rtmp_hub::{Hub, HubConfig, StreamKey, Subscriber, SubscriberEvent};

/// Frames between two video keyframes (a two-second GOP at 30 fps).
const GOP: u32 = 60;

/// Video frame `index` of a 30 fps stream, a keyframe every [`GOP`] frames.
fn video(index: u32) -> Message {
    let first = if index % GOP == 0 { 0x17 } else { 0x27 }; // AVC keyframe / inter frame
    Message {
        timestamp: index * 33,
        type_id: 9,
        stream_id: 1,
        payload: Bytes::from(vec![first, 1, 0, 0, 0]),
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

/// Reads everything `player` can read now, as one line.
fn read(player: &mut Subscriber) -> String {
    let mut got = Vec::new();
    while let Some(event) = player.try_recv() {
        got.push(match event {
            SubscriberEvent::Published => "published".to_owned(),
            SubscriberEvent::Unpublished => "unpublished".to_owned(),
            SubscriberEvent::Frame(frame) => {
                let key = if frame.info.keyframe { "key " } else { "" };
                format!("{:?} {key}{}", frame.kind, frame.message().timestamp)
            }
        });
    }
    if got.is_empty() {
        "nothing".to_owned()
    } else {
        got.join(", ")
    }
}

fn main() {
    let t0 = Instant::now(); // the only clock read: the hub itself never reads one
    let config = HubConfig {
        player_queue_frames: 16, // a small ring, to fall behind quickly
        ..HubConfig::default()
    };
    let hub = Hub::new(config, t0);
    let key = StreamKey::new("live", "cam");
    let publisher = hub.publish(&key, t0).expect("nobody publishes yet");
    let mut fast = hub.subscribe(&key);
    let mut slow = hub.subscribe(&key);
    println!("fast: {}", read(&mut fast));
    println!("slow: {}", read(&mut slow));

    let send = |index: u32| {
        let now = t0 + Duration::from_millis(u64::from(index) * 33);
        publisher.send(&video(index), now);
        if index % 10 == 9 {
            publisher.send(&audio(index * 33), now);
        }
    };

    // The slow player stops reading for 41 frames, more than the ring holds;
    // the fast one keeps up.
    for index in 0..=40 {
        send(index);
        read(&mut fast);
    }
    println!("after frames 0 to 40, unread:");
    println!("  slow reads: {}", read(&mut slow));
    println!(
        "  slow lost {} frames, and waits for a keyframe",
        slow.dropped()
    );

    // It reads again as the stream goes on: audio passes, video resumes at the next keyframe (60).
    for index in 41..=63 {
        send(index);
        let got = read(&mut slow);
        if got != "nothing" {
            println!("  frame {index:>2} sent, slow reads: {got}");
        }
    }
    println!(
        "slow lost {} frames in all, fast {}: the publisher never waited for either",
        slow.dropped(),
        fast.dropped()
    );
}
