//! The per-stream fan-out ring: events in publish order, read by every subscriber at its own cursor, and
//! the batch window that decides when they see them: the flush grid (turns a quarter window apart on one
//! grid for the whole hub) and the wake groups that take those turns. Time is an input: every decision
//! is made on the `now` the caller passes.

use std::collections::VecDeque;
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::frame::SubscriberEvent;

/// Subscribers are split into this many wake groups, flushed in turn at staggered times within the batch
/// window: a large audience is written to in several smaller waves instead of one burst per window.
pub(crate) const WAKE_GROUPS: usize = 4;

/// Below this a batch window is not worth a timer: frames are flushed at once.
const MIN_BATCH_WINDOW: Duration = Duration::from_millis(2);

/// Ring length from which events every subscriber has read are dropped on the next push: a few dozen
/// frames of slack, so that the check over every subscriber's cursor is not made on every frame.
pub(crate) const DROP_READ_FROM: usize = 32;

/// The first multiple of `period` after `epoch` that is later than `now`.
fn next_turn_after(epoch: Instant, now: Instant, period: Duration) -> Instant {
    let period_nanos = period.as_nanos().max(1);
    let periods = now.saturating_duration_since(epoch).as_nanos() / period_nanos + 1;
    u64::try_from(periods * period_nanos)
        .ok()
        .and_then(|offset| epoch.checked_add(Duration::from_nanos(offset)))
        .unwrap_or(now + period)
}

/// Wakes the wakers a flush collected (once the stream's lock is released).
pub(crate) fn wake_all(wakers: Vec<Waker>) {
    wakers.into_iter().for_each(Waker::wake);
}

/// What [`Ring::read`] did for a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Read {
    /// Events the subscriber lost because the ring dropped them before it read them.
    pub(crate) skipped: u64,
    /// Whether any event was taken.
    pub(crate) taken: bool,
}

/// The per-stream fan-out ring: events in publish order, numbered, read by every subscriber at its own
/// cursor. Events become visible to a subscriber (and it is woken) only when its wake group is flushed,
/// which is how a batch window turns many small player writes into a few larger ones.
///
/// Flushes take turns: every `window / WAKE_GROUPS` one group (in order) gets everything pushed so far,
/// so each subscriber is flushed once per window, and an event waits less than one window. Turns that
/// passed while nothing was waiting are taken at once by the next event (a quiet stream's next frame
/// goes out immediately).
#[derive(Debug)]
pub(crate) struct Ring {
    events: VecDeque<SubscriberEvent>,
    capacity: usize,
    /// The sequence number of `events[0]`.
    first: u64,
    /// Per wake group: events numbered below this are visible to its subscribers.
    visible: [u64; WAKE_GROUPS],
    /// When the next group's turn comes, and which group it is. Turns fall on one grid for every stream
    /// of the hub (multiples of the turn period since `epoch`), so that the streams' flushes, and the
    /// players they wake, come together instead of keeping the runtime's threads waking all the time.
    next_turn: Instant,
    epoch: Instant,
    next_group: usize,
    /// One slot per subscriber (its wake group is `slot % WAKE_GROUPS`), holding its waker while it waits.
    wakers: Vec<Option<Waker>>,
    /// Per slot: the sequence number of the next event its subscriber reads (`u64::MAX` when free).
    /// Events every subscriber has read are dropped: the GOP cache, not the ring, serves new players.
    cursors: Vec<u64>,
    free_slots: Vec<usize>,
    subscribers: usize,
}

impl Ring {
    pub(crate) fn new(capacity: usize, epoch: Instant) -> Self {
        Self {
            events: VecDeque::with_capacity(capacity.min(1024)),
            capacity,
            first: 0,
            visible: [0; WAKE_GROUPS],
            next_turn: epoch,
            epoch,
            next_group: 0,
            wakers: Vec::new(),
            cursors: Vec::new(),
            free_slots: Vec::new(),
            subscribers: 0,
        }
    }

    /// The subscribers reading the ring.
    pub(crate) fn subscribers(&self) -> usize {
        self.subscribers
    }

    /// The sequence number the next pushed event gets.
    pub(crate) fn end(&self) -> u64 {
        self.first + self.events.len() as u64
    }

    /// Events held (read by some subscriber or not).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    fn visible_to(&self, slot: usize) -> u64 {
        self.visible
            .get(slot % WAKE_GROUPS)
            .copied()
            .unwrap_or_else(|| self.end())
    }

    #[inline]
    pub(crate) fn push(&mut self, event: SubscriberEvent) {
        if self.events.len() >= DROP_READ_FROM {
            self.drop_read_by_all();
        }
        if self.events.len() >= self.capacity {
            self.events.pop_front();
            self.first += 1;
            for visible in &mut self.visible {
                *visible = (*visible).max(self.first);
            }
        }
        self.events.push_back(event);
    }

    /// Drops the events every subscriber has read.
    fn drop_read_by_all(&mut self) {
        let oldest_unread = self
            .cursors
            .iter()
            .copied()
            .min()
            .unwrap_or(u64::MAX)
            .min(self.end());
        while self.first < oldest_unread && self.events.pop_front().is_some() {
            self.first += 1;
        }
        for visible in &mut self.visible {
            *visible = (*visible).max(self.first);
        }
    }

    fn read_up_to(&mut self, slot: usize, cursor: u64) {
        if let Some(slot_cursor) = self.cursors.get_mut(slot) {
            *slot_cursor = cursor;
        }
    }

    /// Moves every event visible to `slot` after `cursor` into `into` and advances `cursor` past them; a
    /// cursor the ring has dropped events under first jumps to the oldest event kept. Registers `waker`
    /// when nothing is visible.
    #[inline]
    pub(crate) fn read(
        &mut self,
        slot: usize,
        cursor: &mut u64,
        into: &mut VecDeque<SubscriberEvent>,
        waker: Option<&Waker>,
    ) -> Read {
        let mut skipped = 0;
        if *cursor < self.first {
            skipped = self.first - *cursor;
            *cursor = self.first;
        }
        let visible = self.visible_to(slot);
        if *cursor < visible {
            let from = (*cursor - self.first) as usize;
            let to = (visible - self.first) as usize;
            into.extend(self.events.range(from..to).cloned());
            *cursor = visible;
            self.read_up_to(slot, visible);
            Read {
                skipped,
                taken: true,
            }
        } else {
            if let Some(waker) = waker {
                self.register(slot, waker);
            }
            Read {
                skipped,
                taken: false,
            }
        }
    }

    fn has_unflushed(&self) -> bool {
        let end = self.end();
        self.visible.iter().any(|&visible| visible < end)
    }

    /// Makes everything pushed so far visible to every group; returns the wakers to wake once the lock
    /// is released.
    pub(crate) fn flush_all(&mut self) -> Vec<Waker> {
        self.visible = [self.end(); WAKE_GROUPS];
        self.wakers.iter_mut().filter_map(Option::take).collect()
    }

    fn flush_group(&mut self, group: usize, woken: &mut Vec<Waker>) {
        let end = self.end();
        if let Some(visible) = self.visible.get_mut(group) {
            if *visible == end {
                return;
            }
            *visible = end;
        }
        woken.extend(
            self.wakers
                .iter_mut()
                .skip(group)
                .step_by(WAKE_GROUPS)
                .filter_map(Option::take),
        );
    }

    fn tick_period(window: Duration) -> Duration {
        window / WAKE_GROUPS as u32
    }

    /// Flushes the groups whose turn has come by `now`.
    #[inline]
    pub(crate) fn flush_due(&mut self, now: Instant, window: Duration) -> Vec<Waker> {
        if window < MIN_BATCH_WINDOW {
            return self.flush_all();
        }
        let period = Self::tick_period(window);
        let mut woken = Vec::new();
        for _ in 0..WAKE_GROUPS {
            if self.next_turn > now {
                return woken;
            }
            self.flush_group(self.next_group, &mut woken);
            self.next_group = (self.next_group + 1) % WAKE_GROUPS;
            self.next_turn += period;
        }
        // Every group had its turn: start the cycle again at the grid's next turn.
        if self.next_turn <= now {
            self.next_turn = next_turn_after(self.epoch, now, period);
        }
        woken
    }

    /// When the next group's turn comes, if something waits to be flushed.
    #[inline]
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.has_unflushed().then_some(self.next_turn)
    }

    /// A slot for a new subscriber, which reads from the end of the ring.
    pub(crate) fn add_subscriber(&mut self) -> usize {
        self.subscribers += 1;
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.wakers.push(None);
                self.cursors.push(u64::MAX);
                self.wakers.len() - 1
            }
        };
        let end = self.end();
        self.read_up_to(slot, end);
        slot
    }

    pub(crate) fn remove_subscriber(&mut self, slot: usize) {
        self.subscribers = self.subscribers.saturating_sub(1);
        if let Some(waker) = self.wakers.get_mut(slot) {
            *waker = None;
            self.free_slots.push(slot);
        }
        self.read_up_to(slot, u64::MAX);
    }

    fn register(&mut self, slot: usize, waker: &Waker) {
        if let Some(registered) = self.wakers.get_mut(slot) {
            match registered {
                Some(current) if current.will_wake(waker) => {}
                _ => *registered = Some(waker.clone()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    /// Counts its wakes; one per subscriber slot.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A ring with `players` subscribers waiting (their wakers registered), one per slot.
    struct Fixture {
        ring: Ring,
        cursors: Vec<u64>,
        counters: Vec<Arc<Counter>>,
    }

    impl Fixture {
        fn new(capacity: usize, epoch: Instant, players: usize) -> Self {
            let mut ring = Ring::new(capacity, epoch);
            let mut cursors = Vec::new();
            let mut counters = Vec::new();
            for slot in 0..players {
                assert_eq!(ring.add_subscriber(), slot);
                cursors.push(ring.end());
                counters.push(Arc::new(Counter::default()));
            }
            let mut fixture = Self {
                ring,
                cursors,
                counters,
            };
            for slot in 0..players {
                assert_eq!(fixture.read(slot).len(), 0);
            }
            fixture
        }

        /// What `slot` can read now; registers its waker when nothing is visible.
        fn read(&mut self, slot: usize) -> Vec<SubscriberEvent> {
            let waker = Waker::from(self.counters[slot].clone());
            let mut into = VecDeque::new();
            self.ring
                .read(slot, &mut self.cursors[slot], &mut into, Some(&waker));
            into.into()
        }

        fn flush_due(&mut self, now: Instant, window: Duration) -> usize {
            let woken = self.ring.flush_due(now, window);
            let count = woken.len();
            wake_all(woken);
            count
        }

        fn wakes(&self) -> Vec<usize> {
            self.counters
                .iter()
                .map(|counter| counter.0.load(Ordering::SeqCst))
                .collect()
        }
    }

    #[test]
    fn a_window_below_the_minimum_flushes_everything_at_once() {
        let t0 = Instant::now();
        let mut fixture = Fixture::new(16, t0, 5);
        fixture.ring.push(SubscriberEvent::Published);
        assert_eq!(fixture.flush_due(t0 + ms(7), ms(1)), 5);
        assert_eq!(fixture.ring.next_deadline(), None);
        assert_eq!(fixture.wakes(), vec![1; 5]);
        for slot in 0..5 {
            assert_eq!(fixture.read(slot).len(), 1);
        }
    }

    /// Turns fall every quarter window from the epoch; turns that passed while nothing waited are taken
    /// at once, the others wait for their time.
    #[test]
    fn groups_take_turns_a_quarter_window_apart_on_the_grid() {
        let t0 = Instant::now();
        let window = ms(40);
        let mut fixture = Fixture::new(16, t0, 4);
        fixture.ring.push(SubscriberEvent::Published);
        assert_eq!(
            fixture.flush_due(t0 + ms(25), window),
            3,
            "turns at 0, 10, 20 ms"
        );
        assert_eq!(fixture.wakes(), vec![1, 1, 1, 0]);
        assert_eq!(fixture.ring.next_deadline(), Some(t0 + ms(30)));
        assert_eq!(fixture.read(3).len(), 0, "not the last group's turn yet");
        assert_eq!(fixture.flush_due(t0 + ms(29), window), 0, "before the turn");
        assert_eq!(fixture.flush_due(t0 + ms(30), window), 1);
        assert_eq!(fixture.wakes(), vec![1, 1, 1, 1]);
        assert_eq!(fixture.ring.next_deadline(), None, "nothing waits");
        for slot in 0..4 {
            assert_eq!(fixture.read(slot).len(), 1);
            assert_eq!(fixture.read(slot).len(), 0, "waits again");
        }
        // The next event waits for the next turn: the first group's, at 40 ms.
        fixture.ring.push(SubscriberEvent::Unpublished);
        assert_eq!(fixture.flush_due(t0 + ms(31), window), 0);
        assert_eq!(fixture.ring.next_deadline(), Some(t0 + ms(40)));
        assert_eq!(fixture.flush_due(t0 + ms(40), window), 1);
        assert_eq!(fixture.wakes(), vec![2, 1, 1, 1]);
    }

    #[test]
    fn after_a_quiet_spell_the_next_event_goes_at_once_and_the_cycle_restarts_on_the_grid() {
        let t0 = Instant::now();
        let window = ms(40);
        let mut fixture = Fixture::new(16, t0, 4);
        fixture.ring.push(SubscriberEvent::Published);
        assert_eq!(fixture.flush_due(t0 + ms(1003), window), 4);
        assert_eq!(fixture.ring.next_deadline(), None);
        fixture.ring.push(SubscriberEvent::Unpublished);
        assert_eq!(fixture.flush_due(t0 + ms(1004), window), 0);
        assert_eq!(
            fixture.ring.next_deadline(),
            Some(t0 + ms(1010)),
            "the grid's next turn"
        );
    }

    #[test]
    fn the_window_scales_the_turn_period() {
        let t0 = Instant::now();
        let mut fixture = Fixture::new(16, t0, 4);
        fixture.ring.push(SubscriberEvent::Published);
        fixture.flush_due(t0 + ms(1), ms(400));
        assert_eq!(fixture.ring.next_deadline(), Some(t0 + ms(100)));
        let mut fixture = Fixture::new(16, t0, 4);
        fixture.ring.push(SubscriberEvent::Published);
        fixture.flush_due(t0 + ms(1), ms(20));
        assert_eq!(fixture.ring.next_deadline(), Some(t0 + ms(5)));
    }

    #[test]
    fn a_subscriber_behind_the_ring_skips_what_it_dropped() {
        let t0 = Instant::now();
        let mut fixture = Fixture::new(16, t0, 1);
        for _ in 0..20 {
            fixture.ring.push(SubscriberEvent::Published);
        }
        fixture.ring.flush_all();
        let mut into = VecDeque::new();
        let read = fixture
            .ring
            .read(0, &mut fixture.cursors[0], &mut into, None);
        assert_eq!(
            read,
            Read {
                skipped: 4,
                taken: true
            }
        );
        assert_eq!(into.len(), 16);
        assert_eq!(fixture.cursors[0], 20);
    }

    #[test]
    fn a_freed_slot_is_reused_and_holds_nothing_back() {
        let t0 = Instant::now();
        let mut fixture = Fixture::new(64, t0, 2);
        fixture.ring.remove_subscriber(1);
        assert_eq!(fixture.ring.subscribers(), 1);
        for _ in 0..40 {
            fixture.ring.push(SubscriberEvent::Published);
        }
        fixture.ring.flush_all();
        assert_eq!(fixture.read(0).len(), 40);
        fixture.ring.push(SubscriberEvent::Published);
        assert_eq!(
            fixture.ring.len(),
            1,
            "read by the only subscriber: dropped"
        );
        assert_eq!(fixture.ring.add_subscriber(), 1);
    }
}
