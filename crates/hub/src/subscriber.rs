//! The playing side of a stream: [`Subscriber`] reads the ring at its own cursor, starts from the GOP
//! cache, and skips a lagging player's video to the next keyframe.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::frame::{FrameKind, SubscriberEvent};
use crate::registry::{Hub, Stream, StreamKey};

/// Room a subscriber keeps for events between reads (see `Subscriber::pending`).
pub(crate) const RETAINED_PENDING_EVENTS: usize = 16;

/// One player's view of a stream, from [`Hub::subscribe`]: it reads the stream's events in order with
/// [`Subscriber::try_recv`], [`Subscriber::poll_recv`] or [`Subscriber::recv`].
///
/// It starts on a video keyframe, and when it falls more than
/// [`HubConfig::player_queue_frames`](crate::HubConfig::player_queue_frames) behind it skips video to
/// the next keyframe ([`Subscriber::dropped`] counts what it lost and skipped); audio and data go on
/// meanwhile.
#[derive(Debug)]
pub struct Subscriber {
    hub: Hub,
    stream: Arc<Stream>,
    /// This subscriber's waker slot in the ring.
    slot: usize,
    /// The sequence number of the next ring event to read.
    cursor: u64,
    /// Events taken from the ring, not yet returned; back to [`RETAINED_PENDING_EVENTS`] of room once
    /// empty, so that joining (the whole GOP at once) does not hold memory for the player's life.
    pending: VecDeque<SubscriberEvent>,
    awaiting_keyframe: bool,
    dropped: u64,
}

impl Subscriber {
    /// A subscriber at `cursor` of the ring's `slot`, with `pending` (the GOP snapshot) to read first.
    pub(crate) fn new(
        hub: Hub,
        stream: Arc<Stream>,
        slot: usize,
        cursor: u64,
        pending: VecDeque<SubscriberEvent>,
    ) -> Self {
        Self {
            hub,
            stream,
            slot,
            cursor,
            pending,
            awaiting_keyframe: true,
            dropped: 0,
        }
    }

    /// The stream this subscriber plays.
    pub fn key(&self) -> &StreamKey {
        &self.stream.key
    }

    /// Frames this subscriber skipped because it fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The next event; frames before the first video keyframe (after joining or lagging) are skipped,
    /// except audio, data and sequence headers.
    pub async fn recv(&mut self) -> SubscriberEvent {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next event, registering the task to be woken by the next flush of the stream.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<SubscriberEvent> {
        match self.next_event(Some(cx.waker())) {
            Some(event) => Poll::Ready(event),
            None => Poll::Pending,
        }
    }

    /// The next event if one is ready, without waiting.
    pub fn try_recv(&mut self) -> Option<SubscriberEvent> {
        self.next_event(None)
    }

    #[cfg(test)]
    pub(crate) fn pending_capacity(&self) -> usize {
        self.pending.capacity()
    }

    /// Events the stream's ring holds now.
    #[cfg(test)]
    pub(crate) fn ring_len(&self) -> usize {
        self.stream.lock().ring.len()
    }

    fn next_event(&mut self, waker: Option<&Waker>) -> Option<SubscriberEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if let Some(event) = self.filter(event) {
                    return Some(event);
                }
                continue;
            }
            self.pending.shrink_to(RETAINED_PENDING_EVENTS);
            if !self.take_visible(waker) {
                return None;
            }
        }
    }

    /// Moves every visible ring event after the cursor into `pending` under one lock; registers `waker`
    /// when there is none. Returns whether anything was taken.
    fn take_visible(&mut self, waker: Option<&Waker>) -> bool {
        let read =
            self.stream
                .lock()
                .ring
                .read(self.slot, &mut self.cursor, &mut self.pending, waker);
        if read.skipped > 0 {
            self.lagged(read.skipped);
        }
        read.taken
    }

    fn lagged(&mut self, skipped: u64) {
        self.dropped += skipped;
        self.awaiting_keyframe = true;
        tracing::debug!(stream = %self.stream.key, skipped, "slow player skips to the next keyframe");
    }

    fn filter(&mut self, event: SubscriberEvent) -> Option<SubscriberEvent> {
        match &event {
            SubscriberEvent::Published | SubscriberEvent::Unpublished => {
                self.awaiting_keyframe = true
            }
            SubscriberEvent::Frame(frame)
                if frame.kind == FrameKind::Video && !frame.info.sequence_header =>
            {
                if frame.is_video_keyframe() {
                    self.awaiting_keyframe = false;
                } else if self.awaiting_keyframe {
                    self.dropped += 1;
                    return None;
                }
            }
            SubscriberEvent::Frame(_) => {}
        }
        Some(event)
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stream.lock().ring.remove_subscriber(self.slot);
        self.hub.player_left();
        self.hub.release(&self.stream);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use rtmp_chunk::Message;

    use super::*;
    use crate::ring::DROP_READ_FROM;
    use crate::HubConfig;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    /// Video at `index * 33` ms, a keyframe every 60 frames.
    fn frame(index: u32) -> Message {
        let first = if index % 60 == 0 { 0x17 } else { 0x27 };
        Message {
            timestamp: index * 33,
            type_id: 9,
            stream_id: 1,
            payload: Bytes::from(vec![first, 1, 0, 0, 0]),
        }
    }

    fn audio(timestamp: u32) -> Message {
        Message {
            timestamp,
            type_id: 8,
            stream_id: 1,
            payload: Bytes::from(vec![0xAF, 1, 0]),
        }
    }

    fn timestamps(player: &mut Subscriber) -> Vec<u32> {
        let mut got = Vec::new();
        while let Some(event) = player.try_recv() {
            if let SubscriberEvent::Frame(frame) = event {
                got.push(frame.message().timestamp);
            }
        }
        got
    }

    #[test]
    fn joining_on_a_long_gop_does_not_keep_its_room_once_read() {
        let t0 = Instant::now();
        let hub = Hub::new(HubConfig::default(), t0);
        let key = StreamKey::new("live", "long-gop");
        let publisher = hub.publish(&key, t0).expect("publish");
        for index in 0..600u32 {
            let first = if index == 0 { 0x17 } else { 0x27 };
            let message = Message {
                payload: Bytes::from(vec![first, 1, 0, 0, 0]),
                ..frame(index)
            };
            publisher.send(&message, t0 + ms(u64::from(index) * 33));
        }
        let mut player = hub.subscribe(&key);
        let mut events = 0;
        while player.try_recv().is_some() {
            events += 1;
        }
        assert!(events > 500, "the GOP reached the player ({events} events)");
        assert!(player.pending_capacity() <= RETAINED_PENDING_EVENTS);
    }

    #[test]
    fn the_ring_keeps_only_what_some_player_has_not_read() {
        let t0 = Instant::now();
        let hub = Hub::new(HubConfig::default(), t0);
        let key = StreamKey::new("live", "ring");
        let publisher = hub.publish(&key, t0).expect("publish");
        let mut reader = hub.subscribe(&key);
        let idle = hub.subscribe(&key);
        for index in 0..200 {
            publisher.send(&frame(index), t0 + ms(u64::from(index) * 33));
            while reader.try_recv().is_some() {}
        }
        assert_eq!(
            reader.ring_len(),
            200,
            "a player that has not read holds its frames"
        );
        drop(idle);
        for index in 200..300 {
            publisher.send(&frame(index), t0 + ms(u64::from(index) * 33));
            while reader.try_recv().is_some() {}
        }
        assert!(
            reader.ring_len() <= DROP_READ_FROM,
            "{} events kept",
            reader.ring_len()
        );
    }

    #[test]
    fn a_slow_player_drops_to_the_next_keyframe_and_audio_goes_on() {
        let t0 = Instant::now();
        let hub = Hub::new(
            HubConfig {
                player_queue_frames: 16,
                ..HubConfig::default()
            },
            t0,
        );
        let key = StreamKey::new("live", "slow");
        let publisher = hub.publish(&key, t0).expect("publish");
        let mut slow = hub.subscribe(&key);
        assert!(matches!(slow.try_recv(), Some(SubscriberEvent::Published)));
        // Frames 1..=40: the ring keeps the last 16, from the middle of the GOP.
        for index in 1..=40 {
            publisher.send(&frame(index), t0 + ms(u64::from(index) * 33));
        }
        publisher.send(&audio(1330), t0 + ms(1330));
        assert_eq!(timestamps(&mut slow), vec![1330], "only the audio");
        assert_eq!(
            slow.dropped(),
            40,
            "24 lost in the ring, 16 before a keyframe"
        );
        for index in 41..=61 {
            publisher.send(&frame(index), t0 + ms(u64::from(index) * 33));
        }
        let got = timestamps(&mut slow);
        assert_eq!(got, vec![60 * 33, 61 * 33], "from the next keyframe on");
    }

    /// A player joining while frames wait for the batch window gets them from the GOP cache, and then
    /// the live frames after them: nothing doubled, nothing lost.
    #[test]
    fn a_joining_player_sees_a_contiguous_run_from_the_gop_cache() {
        let t0 = Instant::now();
        let window = ms(400);
        let hub = Hub::new(
            HubConfig {
                batch_window: window,
                ..HubConfig::default()
            },
            t0,
        );
        let key = StreamKey::new("live", "join");
        let publisher = hub.publish(&key, t0).expect("publish");
        let mut watching = hub.subscribe(&key);
        let at = |index: u32| t0 + window + ms(u64::from(index));
        // A quiet window, then a keyframe (flushed at once) and three frames waiting for their turn.
        for index in 0..4 {
            publisher.send(&frame(index), at(index));
        }
        assert!(publisher.flush_deadline().is_some(), "frames wait");
        let mut joining = hub.subscribe(&key);
        assert!(matches!(
            joining.try_recv(),
            Some(SubscriberEvent::Published)
        ));
        assert_eq!(timestamps(&mut joining), vec![0, 33, 66, 99]);
        for index in 4..8 {
            publisher.send(&frame(index), at(index));
        }
        // Every turn of one window has come.
        publisher.flush_if_due(at(8) + window);
        assert_eq!(publisher.flush_deadline(), None);
        assert_eq!(timestamps(&mut joining), vec![132, 165, 198, 231]);
        assert_eq!(joining.dropped(), 0);
        let seen = timestamps(&mut watching);
        assert_eq!(seen, (0..8).map(|index| index * 33).collect::<Vec<_>>());
    }
}
