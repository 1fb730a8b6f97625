//! Fan-out behaviour: shared bytes, GOP start, slow players, publish policies, subscribe before publish,
//! the batch window. Time is synthetic: one base instant plus durations, never a sleep.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtmp_chunk::Message;
use rtmp_hub::{FrameKind, Hub, HubConfig, HubError, PublishPolicy, StreamKey, SubscriberEvent};

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// A waker that counts its wakes.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let counter = Arc::new(CountingWaker::default());
    (counter.clone(), Waker::from(counter))
}

fn wakes(counter: &CountingWaker) -> usize {
    counter.0.load(Ordering::SeqCst)
}

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
    let t0 = Instant::now();
    let hub = Hub::new(HubConfig::default(), t0);
    let key = StreamKey::new("live", "s");
    let mut players: Vec<_> = (0..50).map(|_| hub.subscribe(&key)).collect();
    let publisher = hub.publish(&key, t0).unwrap();
    publisher.send(&video(0, true), t0);
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
    let t0 = Instant::now();
    let hub = Hub::new(HubConfig::default(), t0);
    let key = StreamKey::new("live", "s");
    let publisher = hub.publish(&key, t0).unwrap();
    let header = Message {
        timestamp: 0,
        type_id: 9,
        stream_id: 1,
        payload: Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]),
    };
    publisher.send(&header, t0);
    publisher.send(&video(0, true), t0);
    publisher.send(&video(33, false), t0 + ms(33));
    publisher.send(&video(66, true), t0 + ms(66));
    publisher.send(&audio(70), t0 + ms(70));
    publisher.send(&video(99, false), t0 + ms(99));
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
    publisher.send(&video(132, false), t0 + ms(132));
    assert_eq!(
        frame_ts(player.recv().await),
        Some((FrameKind::Video, 132)),
        "live continues contiguously"
    );
}

#[tokio::test]
async fn slow_player_skips_to_the_next_keyframe_and_publisher_never_blocks() {
    let t0 = Instant::now();
    let hub = Hub::new(
        HubConfig {
            player_queue_frames: 16,
            ..HubConfig::default()
        },
        t0,
    );
    let key = StreamKey::new("live", "s");
    let mut slow = hub.subscribe(&key);
    let publisher = hub.publish(&key, t0).unwrap();
    publisher.send(&video(0, true), t0);
    for i in 1..100 {
        publisher.send(&video(i * 10, false), t0 + ms(u64::from(i) * 10));
    }
    publisher.send(&video(1000, true), t0 + ms(1000));
    publisher.send(&video(1010, false), t0 + ms(1010));
    let mut got = Vec::new();
    while let Some(event) = slow.try_recv() {
        if let Some(frame) = frame_ts(event) {
            got.push(frame.1);
        }
    }
    assert_eq!(got, vec![1000, 1010]);
    assert!(slow.dropped() > 0);
}

#[test]
fn the_reject_policy_refuses_every_second_publisher() {
    let t0 = Instant::now();
    let key = StreamKey::new("live", "s");
    let reject = Hub::new(
        HubConfig {
            publish_policy: PublishPolicy::Reject,
            ..HubConfig::default()
        },
        t0,
    );
    let _first = reject.publish(&key, t0).unwrap();
    assert_eq!(
        reject
            .publish(&key, t0 + Duration::from_secs(3600))
            .unwrap_err(),
        HubError::StreamTaken(key.clone())
    );
}

/// A publisher quiet for `quiet_after` by the newcomer's `now` is taken over; one that sent media within
/// it keeps the stream.
#[test]
fn take_over_happens_once_the_publisher_has_been_quiet_for_the_given_time() {
    let t0 = Instant::now();
    let key = StreamKey::new("live", "s");
    let takeover = Hub::new(
        HubConfig {
            publish_policy: PublishPolicy::TakeOver {
                quiet_after: ms(50),
            },
            ..HubConfig::default()
        },
        t0,
    );
    let first = takeover.publish(&key, t0).unwrap();
    first.send(&video(0, true), t0 + ms(10));
    assert!(
        takeover.publish(&key, t0 + ms(59)).is_err(),
        "an active publisher keeps its stream"
    );
    // Media moves the quiet's start: 40 ms after the last frame is not quiet enough.
    first.send(&video(30, false), t0 + ms(40));
    assert!(takeover.publish(&key, t0 + ms(80)).is_err());
    // The old publisher is already waiting when the new one comes: only its waker can end the wait.
    let (kicks, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(first.poll_kicked(&mut cx).is_pending());
    let second = takeover
        .publish(&key, t0 + ms(90))
        .expect("quiet for 50 ms: taken over");
    assert_eq!(wakes(&kicks), 1, "the waiting publisher is woken");
    assert!(first.poll_kicked(&mut cx).is_ready());
    first.send(&video(60, true), t0 + ms(95));
    assert_eq!(
        takeover.stats(&key).unwrap().frames,
        2,
        "the old publisher's frames no longer reach the stream"
    );
    drop(first);
    assert!(
        takeover.stats(&key).unwrap().publishing,
        "dropping the stale publisher does not end the new one"
    );
    drop(second);
}

#[tokio::test]
async fn player_waits_for_a_publisher_and_survives_republish() {
    let t0 = Instant::now();
    let hub = Hub::new(HubConfig::default(), t0);
    let key = StreamKey::new("live", "s");
    let mut player = hub.subscribe(&key);
    assert!(player.try_recv().is_none());
    let publisher = hub.publish(&key, t0).unwrap();
    publisher.send(&video(0, true), t0);
    drop(publisher);
    assert!(matches!(player.recv().await, SubscriberEvent::Published));
    assert!(frame_ts(player.recv().await).is_some());
    assert!(matches!(player.recv().await, SubscriberEvent::Unpublished));
    let again = hub.publish(&key, t0 + ms(5000)).unwrap();
    again.send(&video(5000, true), t0 + ms(5000));
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

#[test]
fn batch_window_flushes_players_in_staggered_groups_within_one_window() {
    let t0 = Instant::now();
    let window = ms(400);
    let period = window / 4;
    let hub = Hub::new(
        HubConfig {
            batch_window: window,
            ..HubConfig::default()
        },
        t0,
    );
    let key = StreamKey::new("live", "s");
    let mut players: Vec<_> = (0..8).map(|_| hub.subscribe(&key)).collect();
    let publisher = hub.publish(&key, t0).unwrap();
    for player in &mut players {
        assert!(matches!(
            player.try_recv(),
            Some(SubscriberEvent::Published)
        ));
    }
    // After a quiet window, the next frame goes out to everyone at once.
    let sent_at = t0 + window;
    publisher.send(&video(0, true), sent_at);
    for player in &mut players {
        assert_eq!(drain(player), vec![0]);
    }
    // The frames after it wait for their group's turn: the next multiple of a quarter window.
    publisher.send(&audio(10), sent_at);
    publisher.send(&audio(20), sent_at);
    for player in &mut players {
        assert!(drain(player).is_empty());
    }
    let first_turn = publisher.flush_deadline().expect("frames are waiting");
    assert_eq!(first_turn, sent_at + period);
    // Each turn of the grid flushes one group of players: never all at once, and all within one window.
    let mut turns = Vec::new();
    let mut now = first_turn;
    for _ in 0..4 {
        publisher.flush_if_due(now - Duration::from_nanos(1));
        assert!(
            players.iter_mut().all(|player| drain(player).is_empty()),
            "nothing before the turn"
        );
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
            Some(next) => {
                assert_eq!(next, now + period, "turns a quarter window apart");
                now = next;
            }
            None => break,
        }
    }
    // Subscribers take wake groups in turn as they join; the turns go round the groups in order.
    assert_eq!(turns, vec![vec![0, 4], vec![1, 5], vec![2, 6], vec![3, 7]]);
    assert!(now < first_turn + window, "all groups within one window");
    assert!(publisher.flush_deadline().is_none());
}

#[test]
fn a_waiting_player_is_woken_by_its_groups_flush() {
    let t0 = Instant::now();
    let hub = Hub::new(
        HubConfig {
            batch_window: ms(20),
            ..HubConfig::default()
        },
        t0,
    );
    let key = StreamKey::new("live", "s");
    let mut player = hub.subscribe(&key);
    let publisher = hub.publish(&key, t0).unwrap();
    assert!(matches!(
        player.try_recv(),
        Some(SubscriberEvent::Published)
    ));
    let (woken, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(player.poll_recv(&mut cx).is_pending());
    // The first frame after a quiet spell goes at once.
    publisher.send(&video(0, true), t0 + ms(5));
    assert_eq!(wakes(&woken), 1);
    let Poll::Ready(event) = player.poll_recv(&mut cx) else {
        panic!("the keyframe is visible");
    };
    assert_eq!(frame_ts(event), Some((FrameKind::Video, 0)));
    assert!(player.poll_recv(&mut cx).is_pending());
    // The next waits for the player's group (the first): the other groups' turns do not wake it.
    publisher.send(&audio(5), t0 + ms(6));
    for turn in [10, 15] {
        assert_eq!(publisher.flush_deadline(), Some(t0 + ms(turn)));
        publisher.flush_if_due(t0 + ms(turn));
        assert_eq!(
            wakes(&woken),
            1,
            "woken by another group's turn at {turn} ms"
        );
    }
    assert_eq!(publisher.flush_deadline(), Some(t0 + ms(20)));
    publisher.flush_if_due(t0 + ms(20));
    assert_eq!(wakes(&woken), 2, "woken by its group's turn");
    let Poll::Ready(event) = player.poll_recv(&mut cx) else {
        panic!("the audio frame is visible");
    };
    assert_eq!(frame_ts(event), Some((FrameKind::Audio, 5)));
}

#[test]
fn a_tiny_window_flushes_at_once() {
    let t0 = Instant::now();
    let hub = Hub::new(
        HubConfig {
            batch_window: ms(30),
            batch_full_players: 500,
            ..HubConfig::default()
        },
        t0,
    );
    let key = StreamKey::new("live", "s");
    let mut player = hub.subscribe(&key);
    let publisher = hub.publish(&key, t0).unwrap();
    // One player of 500: a 60 µs window, not worth a timer.
    publisher.send(&video(0, true), t0 + ms(1));
    publisher.send(&audio(5), t0 + ms(1));
    assert_eq!(drain(&mut player), vec![0, 5]);
    assert!(publisher.flush_deadline().is_none());
}

#[test]
fn the_batch_window_applies_from_half_the_full_audience_and_grows_with_it() {
    let config = HubConfig {
        batch_window: ms(30),
        batch_full_players: 500,
        ..HubConfig::default()
    };
    assert_eq!(config.batch_window_for(0), Duration::ZERO);
    assert_eq!(config.batch_window_for(100), Duration::ZERO);
    assert_eq!(config.batch_window_for(249), Duration::ZERO);
    assert_eq!(config.batch_window_for(250), ms(15));
    assert_eq!(config.batch_window_for(400), ms(24));
    assert_eq!(config.batch_window_for(500), ms(30));
    assert_eq!(config.batch_window_for(5000), ms(30));
    let fixed = HubConfig {
        batch_full_players: 0,
        ..config
    };
    assert_eq!(fixed.batch_window_for(1), ms(30));
}

/// CPU is spent per player written to, on whichever stream: the window follows the hub's whole audience,
/// so many small streams on a busy server are batched like one large one.
#[test]
fn the_batch_window_follows_the_audience_of_every_stream() {
    let t0 = Instant::now();
    let hub = Hub::new(
        HubConfig {
            batch_window: ms(400),
            batch_full_players: 6,
            ..HubConfig::default()
        },
        t0,
    );
    let small = StreamKey::new("live", "small");
    let mut player = hub.subscribe(&small);
    let publisher = hub.publish(&small, t0).unwrap();
    assert!(matches!(
        player.try_recv(),
        Some(SubscriberEvent::Published)
    ));
    // Alone on the server: no window, every frame at once.
    publisher.send(&video(0, true), t0 + ms(1));
    publisher.send(&audio(5), t0 + ms(1));
    assert_eq!(drain(&mut player), vec![0, 5]);
    // Five players on another stream make six on the server: the whole window applies here too.
    let large = StreamKey::new("live", "large");
    let others: Vec<_> = (0..5).map(|_| hub.subscribe(&large)).collect();
    assert_eq!(hub.players(), 6);
    let later = t0 + ms(401);
    publisher.send(&audio(10), later);
    publisher.send(&audio(20), later);
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
    publisher.send(&audio(30), later);
    assert_eq!(drain(&mut player), vec![20, 30], "alone again: no window");
}

/// The streams' flush turns fall on one grid, so that their flushes (and the players they wake) come
/// together.
#[test]
fn every_stream_takes_its_turns_on_one_grid() {
    let t0 = Instant::now();
    let window = ms(400);
    let period = window / 4;
    let hub = Hub::new(
        HubConfig {
            batch_window: window,
            ..HubConfig::default()
        },
        t0,
    );
    let deadline_after_a_burst = |name: &str, now: Instant| {
        let key = StreamKey::new("live", name);
        let _player = hub.subscribe(&key);
        let publisher = hub.publish(&key, now).unwrap();
        publisher.send(&video(0, true), now);
        publisher.send(&audio(10), now);
        publisher
            .flush_deadline()
            .expect("a frame waits for its turn")
    };
    let first = deadline_after_a_burst("a", t0 + ms(10));
    let second = deadline_after_a_burst("b", t0 + ms(40));
    let third = deadline_after_a_burst("c", t0 + ms(130));
    assert_eq!(first, t0 + period);
    assert_eq!(second, t0 + period, "the same turn of the grid");
    assert_eq!(third, t0 + 2 * period, "the grid's next turn");
}
