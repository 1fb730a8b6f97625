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
    let first = takeover.publish(&key).unwrap();
    first.send(&video(0, true));
    assert!(
        takeover.publish(&key).is_err(),
        "an active publisher keeps its stream"
    );
    // The old publisher is already waiting when the new one comes: only its waker can end the wait.
    let kicker = tokio::spawn({
        let (takeover, key) = (takeover.clone(), key.clone());
        async move {
            tokio::time::sleep(Duration::from_millis(80)).await;
            takeover.publish(&key)
        }
    });
    tokio::time::timeout(Duration::from_secs(1), first.kicked())
        .await
        .expect("the waiting publisher is woken when taken over");
    let second = kicker.await.unwrap().unwrap();
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

/// Drains what a subscriber can take now: the timestamps of its frames.
fn drain(player: &mut rtmp_hub::Subscriber) -> Vec<u32> {
    let mut got = Vec::new();
    while let Some(event) = player.try_recv() {
        got.extend(frame_ts(event).map(|(_, ts)| ts));
    }
    got
}

#[tokio::test]
async fn batch_window_flushes_players_in_staggered_groups_within_one_window() {
    // Long enough that setting up never crosses a turn of the grid (a quarter window) by itself.
    let window = Duration::from_millis(400);
    let hub = Hub::new(HubConfig {
        batch_window: window,
        ..HubConfig::default()
    });
    let key = StreamKey::new("live", "s");
    let mut players: Vec<_> = (0..8).map(|_| hub.subscribe(&key)).collect();
    let publisher = hub.publish(&key).unwrap();
    for player in &mut players {
        assert!(matches!(player.recv().await, SubscriberEvent::Published));
    }
    // After a quiet window, the next frame goes out to everyone at once.
    std::thread::sleep(window);
    publisher.send(&video(0, true));
    for player in &mut players {
        assert_eq!(drain(player), vec![0]);
    }
    // The frames after it wait for their group's turn.
    publisher.send(&audio(10));
    publisher.send(&audio(20));
    let sent_at = std::time::Instant::now();
    for player in &mut players {
        assert!(drain(player).is_empty());
    }
    let first_turn = publisher.flush_deadline().expect("frames are waiting");
    assert!(first_turn <= sent_at + window);
    // Each turn of the grid flushes one group of players: never all at once, and all within one window.
    let mut turns = Vec::new();
    let mut now = first_turn;
    for _ in 0..4 {
        publisher.flush_if_due(now);
        let served: Vec<usize> = players
            .iter_mut()
            .enumerate()
            .filter_map(|(index, player)| {
                let got = drain(player);
                (!got.is_empty()).then(|| {
                    assert_eq!(got, vec![10, 20], "player {index} got a partial batch");
                    index
                })
            })
            .collect();
        turns.push(served);
        match publisher.flush_deadline() {
            Some(next) => now = next,
            None => break,
        }
    }
    let served: usize = turns.iter().map(Vec::len).sum();
    assert_eq!(
        served,
        players.len(),
        "every player got the batch: {turns:?}"
    );
    assert!(
        turns.iter().all(|turn| turn.len() < players.len()),
        "groups: {turns:?}"
    );
    assert!(now < first_turn + window, "all groups within one window");
    assert!(publisher.flush_deadline().is_none());
}

#[tokio::test]
async fn a_waiting_player_is_woken_by_its_groups_flush() {
    let hub = Hub::new(HubConfig {
        batch_window: Duration::from_millis(20),
        ..HubConfig::default()
    });
    let key = StreamKey::new("live", "s");
    let mut player = hub.subscribe(&key);
    let publisher = hub.publish(&key).unwrap();
    assert!(matches!(player.recv().await, SubscriberEvent::Published));
    let waiting = tokio::spawn(async move {
        let first = frame_ts(player.recv().await);
        let second = frame_ts(player.recv().await);
        (first, second)
    });
    tokio::time::sleep(Duration::from_millis(5)).await;
    publisher.send(&video(0, true));
    publisher.send(&audio(5));
    // Drive the grid as the publishing connection does, with real time.
    let result = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if waiting.is_finished() {
                return waiting.await.unwrap();
            }
            if let Some(at) = publisher.flush_deadline() {
                tokio::time::sleep_until(at.into()).await;
                publisher.flush_if_due(std::time::Instant::now());
            } else {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        result,
        (Some((FrameKind::Video, 0)), Some((FrameKind::Audio, 5)))
    );
}

#[test]
fn a_tiny_window_flushes_at_once() {
    let hub = Hub::new(HubConfig {
        batch_window: Duration::from_millis(30),
        batch_full_players: 500,
        ..HubConfig::default()
    });
    let key = StreamKey::new("live", "s");
    let mut player = hub.subscribe(&key);
    let publisher = hub.publish(&key).unwrap();
    // One player of 500: a 60 µs window, not worth a timer.
    publisher.send(&video(0, true));
    publisher.send(&audio(5));
    assert_eq!(drain(&mut player), vec![0, 5]);
    assert!(publisher.flush_deadline().is_none());
}

#[test]
fn the_batch_window_applies_from_half_the_full_audience_and_grows_with_it() {
    let config = HubConfig {
        batch_window: Duration::from_millis(30),
        batch_full_players: 500,
        ..HubConfig::default()
    };
    assert_eq!(config.batch_window_for(0), Duration::ZERO);
    assert_eq!(config.batch_window_for(100), Duration::ZERO);
    assert_eq!(config.batch_window_for(249), Duration::ZERO);
    assert_eq!(config.batch_window_for(250), Duration::from_millis(15));
    assert_eq!(config.batch_window_for(400), Duration::from_millis(24));
    assert_eq!(config.batch_window_for(500), Duration::from_millis(30));
    assert_eq!(config.batch_window_for(5000), Duration::from_millis(30));
    let fixed = HubConfig {
        batch_full_players: 0,
        ..config
    };
    assert_eq!(fixed.batch_window_for(1), Duration::from_millis(30));
}

/// CPU is spent per player written to, on whichever stream: the window follows the hub's whole audience,
/// so many small streams on a busy server are batched like one large one.
#[test]
fn the_batch_window_follows_the_audience_of_every_stream() {
    let hub = Hub::new(HubConfig {
        batch_window: Duration::from_millis(400),
        batch_full_players: 6,
        ..HubConfig::default()
    });
    let small = StreamKey::new("live", "small");
    let mut player = hub.subscribe(&small);
    let publisher = hub.publish(&small).unwrap();
    assert!(matches!(
        player.try_recv(),
        Some(SubscriberEvent::Published)
    ));
    // Alone on the server: no window, every frame at once.
    publisher.send(&video(0, true));
    publisher.send(&audio(5));
    assert_eq!(drain(&mut player), vec![0, 5]);
    // Five players on another stream make six on the server: the whole window applies here too.
    let large = StreamKey::new("live", "large");
    let others: Vec<_> = (0..5).map(|_| hub.subscribe(&large)).collect();
    assert_eq!(hub.players(), 6);
    std::thread::sleep(Duration::from_millis(400));
    publisher.send(&audio(10));
    publisher.send(&audio(20));
    assert_eq!(
        drain(&mut player),
        vec![10],
        "the frame after a quiet window goes at once"
    );
    assert!(
        publisher.flush_deadline().is_some(),
        "the next one waits for its turn"
    );
    drop(others);
    assert_eq!(hub.players(), 1);
    publisher.send(&audio(30));
    assert_eq!(drain(&mut player), vec![20, 30], "alone again: no window");
}

/// The streams' flush turns fall on one grid, so that their flushes (and the players they wake) come
/// together.
#[test]
fn every_stream_takes_its_turns_on_one_grid() {
    let window = Duration::from_millis(400);
    let period = window / 4;
    let hub = Hub::new(HubConfig {
        batch_window: window,
        ..HubConfig::default()
    });
    let deadline_after_a_burst = |name: &str| {
        let key = StreamKey::new("live", name);
        let _player = hub.subscribe(&key);
        let publisher = hub.publish(&key).unwrap();
        publisher.send(&video(0, true));
        publisher.send(&audio(10));
        publisher
            .flush_deadline()
            .expect("a frame waits for its turn")
    };
    let first = deadline_after_a_burst("a");
    std::thread::sleep(Duration::from_millis(30));
    let second = deadline_after_a_burst("b");
    let apart = second.duration_since(first).as_nanos();
    assert_eq!(apart % period.as_nanos(), 0, "deadlines {apart} ns apart");
}
