//! Fan-out behaviour: shared bytes, GOP start, slow players, publish policies, subscribe before publish.

use std::time::Duration;

use bytes::Bytes;
use rtmp_chunk::Message;
use rtmp_hub::{FrameKind, Hub, HubConfig, HubError, PublishPolicy, StreamKey, SubscriberEvent};

fn video(ts: u32, key: bool) -> Message {
    let first = if key { 0x17 } else { 0x27 };
    Message {
        timestamp: ts,
        type_id: 9,
        stream_id: 1,
        payload: Bytes::from(vec![first, 1, 0, 0, 0, ts as u8]),
    }
}

fn audio(ts: u32) -> Message {
    Message {
        timestamp: ts,
        type_id: 8,
        stream_id: 1,
        payload: Bytes::from(vec![0xAF, 1, ts as u8]),
    }
}

fn frame_ts(event: SubscriberEvent) -> Option<(FrameKind, u32)> {
    match event {
        SubscriberEvent::Frame(frame) => Some((frame.kind, frame.message().timestamp)),
        _ => None,
    }
}

#[tokio::test]
async fn every_player_shares_the_same_encoded_bytes() {
    let hub = Hub::new(HubConfig::default());
    let key = StreamKey::new("live", "s");
    let mut players: Vec<_> = (0..50).map(|_| hub.subscribe(&key)).collect();
    let publisher = hub.publish(&key).unwrap();
    publisher.send(&video(0, true));
    let mut pointers = Vec::new();
    for player in &mut players {
        assert!(matches!(player.recv().await, SubscriberEvent::Published));
        match player.recv().await {
            SubscriberEvent::Frame(frame) => pointers.push(frame.shared.wire().as_ptr()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        pointers.windows(2).all(|w| w[0] == w[1]),
        "one encoding shared by all"
    );
    assert_eq!(hub.stats(&key).unwrap().players, 50);
}

#[tokio::test]
async fn late_player_starts_on_the_last_keyframe_with_headers_first() {
    let hub = Hub::new(HubConfig::default());
    let key = StreamKey::new("live", "s");
    let publisher = hub.publish(&key).unwrap();
    let header = Message {
        timestamp: 0,
        type_id: 9,
        stream_id: 1,
        payload: Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]),
    };
    publisher.send(&header);
    publisher.send(&video(0, true));
    publisher.send(&video(33, false));
    publisher.send(&video(66, true));
    publisher.send(&audio(70));
    publisher.send(&video(99, false));
    let mut player = hub.subscribe(&key);
    assert!(matches!(player.recv().await, SubscriberEvent::Published));
    let mut got = Vec::new();
    while let Some(event) = player.try_recv() {
        got.push(frame_ts(event).unwrap());
    }
    assert_eq!(
        got,
        vec![
            (FrameKind::Video, 0),
            (FrameKind::Video, 66),
            (FrameKind::Audio, 70),
            (FrameKind::Video, 99)
        ]
    );
    publisher.send(&video(132, false));
    assert_eq!(
        frame_ts(player.recv().await),
        Some((FrameKind::Video, 132)),
        "live continues contiguously"
    );
}

#[tokio::test]
async fn slow_player_skips_to_the_next_keyframe_and_publisher_never_blocks() {
    let hub = Hub::new(HubConfig {
        player_queue_frames: 16,
        ..HubConfig::default()
    });
    let key = StreamKey::new("live", "s");
    let mut slow = hub.subscribe(&key);
    let publisher = hub.publish(&key).unwrap();
    publisher.send(&video(0, true));
    for i in 1..100 {
        publisher.send(&video(i * 10, false));
    }
    publisher.send(&video(1000, true));
    publisher.send(&video(1010, false));
    let mut got = Vec::new();
    while let Some(event) = slow.try_recv() {
        if let Some(frame) = frame_ts(event) {
            got.push(frame.1);
        }
    }
    assert_eq!(got, vec![1000, 1010]);
    assert!(slow.dropped() > 0);
}

#[tokio::test]
async fn publish_policies() {
    let key = StreamKey::new("live", "s");
    let reject = Hub::new(HubConfig {
        publish_policy: PublishPolicy::Reject,
        ..HubConfig::default()
    });
    let _first = reject.publish(&key).unwrap();
    assert_eq!(
        reject.publish(&key).unwrap_err(),
        HubError::StreamTaken(key.clone())
    );

    let takeover = Hub::new(HubConfig {
        publish_policy: PublishPolicy::TakeOver {
            quiet_after: Duration::from_millis(50),
        },
        ..HubConfig::default()
    });
    let mut first = takeover.publish(&key).unwrap();
    first.send(&video(0, true));
    assert!(
        takeover.publish(&key).is_err(),
        "an active publisher keeps its stream"
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    let second = takeover.publish(&key).unwrap();
    tokio::time::timeout(Duration::from_secs(1), first.kicked())
        .await
        .expect("old publisher told to close");
    drop(first);
    assert!(
        takeover.stats(&key).unwrap().publishing,
        "dropping the stale publisher does not end the new one"
    );
    drop(second);
}

#[tokio::test]
async fn player_waits_for_a_publisher_and_survives_republish() {
    let hub = Hub::new(HubConfig::default());
    let key = StreamKey::new("live", "s");
    let mut player = hub.subscribe(&key);
    assert!(player.try_recv().is_none());
    let publisher = hub.publish(&key).unwrap();
    publisher.send(&video(0, true));
    drop(publisher);
    assert!(matches!(player.recv().await, SubscriberEvent::Published));
    assert!(frame_ts(player.recv().await).is_some());
    assert!(matches!(player.recv().await, SubscriberEvent::Unpublished));
    let again = hub.publish(&key).unwrap();
    again.send(&video(5000, true));
    assert!(matches!(player.recv().await, SubscriberEvent::Published));
    assert_eq!(
        frame_ts(player.recv().await),
        Some((FrameKind::Video, 5000))
    );
    drop(player);
    drop(again);
    assert!(hub.stats(&key).is_none(), "idle streams are removed");
}

#[tokio::test]
async fn batch_window_delivers_frames_together_at_the_deadline() {
    let window = Duration::from_millis(50);
    let hub = Hub::new(HubConfig {
        batch_window: window,
        ..HubConfig::default()
    });
    let key = StreamKey::new("live", "s");
    let mut player = hub.subscribe(&key);
    let publisher = hub.publish(&key).unwrap();
    assert!(matches!(player.recv().await, SubscriberEvent::Published));
    // Announcing the publisher was a flush too; the first frame after a quiet window goes out at once.
    std::thread::sleep(window);
    publisher.send(&video(0, true));
    assert_eq!(
        frame_ts(player.try_recv().unwrap()),
        Some((FrameKind::Video, 0))
    );
    assert!(publisher.flush_deadline().is_none());
    // The next ones wait for the window, then arrive in one batch.
    publisher.send(&audio(10));
    publisher.send(&video(33, false));
    assert!(player.try_recv().is_none());
    let deadline = publisher.flush_deadline().expect("frames are waiting");
    publisher.flush_if_due(deadline - Duration::from_millis(1));
    assert!(player.try_recv().is_none());
    let waiting = tokio::spawn(async move {
        let first = frame_ts(player.recv().await);
        let second = player.try_recv().and_then(frame_ts);
        (first, second)
    });
    tokio::time::sleep(Duration::from_millis(5)).await;
    publisher.flush_if_due(deadline);
    let (first, second) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, Some((FrameKind::Audio, 10)));
    assert_eq!(second, Some((FrameKind::Video, 33)));
    assert!(publisher.flush_deadline().is_none());
}

#[tokio::test]
async fn a_frame_after_the_window_flushes_what_waited() {
    let hub = Hub::new(HubConfig {
        batch_window: Duration::from_millis(20),
        ..HubConfig::default()
    });
    let key = StreamKey::new("live", "s");
    let mut player = hub.subscribe(&key);
    let publisher = hub.publish(&key).unwrap();
    publisher.send(&video(0, true));
    publisher.send(&audio(5));
    assert!(publisher.flush_deadline().is_some());
    std::thread::sleep(Duration::from_millis(25));
    publisher.send(&audio(30));
    let mut got = Vec::new();
    while let Some(event) = player.try_recv() {
        got.extend(frame_ts(event).map(|(_, ts)| ts));
    }
    assert_eq!(got, vec![0, 5, 30]);
}

#[test]
fn the_batch_window_grows_with_the_audience() {
    let config = HubConfig {
        batch_window: Duration::from_millis(30),
        batch_full_players: 500,
        ..HubConfig::default()
    };
    assert_eq!(config.batch_window_for(0), Duration::ZERO);
    assert_eq!(config.batch_window_for(100), Duration::from_millis(6));
    assert_eq!(config.batch_window_for(500), Duration::from_millis(30));
    assert_eq!(config.batch_window_for(5000), Duration::from_millis(30));
    let fixed = HubConfig {
        batch_full_players: 0,
        ..config
    };
    assert_eq!(fixed.batch_window_for(1), Duration::from_millis(30));
}
