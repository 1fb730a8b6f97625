//! The publishing side of a stream: [`Publisher`] sends frames into the ring and the GOP cache, drives
//! the batch window's flush turns on the `now` it is given, and learns through [`Kick`] when another
//! connection took the stream over.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use rtmp_chunk::Message;

use crate::frame::{Frame, SubscriberEvent};
use crate::gop::GopCache;
use crate::registry::{Hub, Stream, StreamKey, StreamState};
use crate::ring::wake_all;

/// The current publisher of a stream, as the stream's state knows it.
#[derive(Debug)]
pub(crate) struct PublisherSlot {
    pub(crate) id: u64,
    /// When it last sent media: the take-over rule measures its quiet from here.
    pub(crate) last_media: Instant,
    pub(crate) kick: Arc<Kick>,
}

/// Tells a publisher that another connection took its stream over. Polled by the publishing connection
/// on every turn, so polling it neither allocates nor takes more than an uncontended lock.
#[derive(Debug, Default)]
pub(crate) struct Kick {
    kicked: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Kick {
    fn waker(&self) -> MutexGuard<'_, Option<Waker>> {
        self.waker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn kick(&self) {
        self.kicked.store(true, Ordering::Release);
        if let Some(waker) = self.waker().take() {
            waker.wake();
        }
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.kicked.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        {
            let mut registered = self.waker();
            match registered.as_ref() {
                Some(current) if current.will_wake(cx.waker()) => {}
                _ => *registered = Some(cx.waker().clone()),
            }
        }
        // A kick between the first check and the registration found no waker to wake.
        if self.kicked.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// The right to publish one stream, from [`Hub::publish`]. Dropping it ends the publication: players
/// read [`SubscriberEvent::Unpublished`] and stay subscribed.
///
/// The publishing connection calls [`Publisher::send`] for each media message, keeps a timer on
/// [`Publisher::flush_deadline`] and calls [`Publisher::flush_if_due`] when it fires (only with a batch
/// window), and closes when [`Publisher::kicked`] resolves.
#[derive(Debug)]
pub struct Publisher {
    hub: Hub,
    stream: Arc<Stream>,
    id: u64,
    kick: Arc<Kick>,
    chunk_size: u32,
    /// When frames this publisher sent are waiting for the batch window (kept here so the publishing
    /// connection can ask on every turn without taking the stream's lock).
    flush_at: Cell<Option<Instant>>,
}

impl Publisher {
    pub(crate) fn new(hub: Hub, stream: Arc<Stream>, id: u64, kick: Arc<Kick>) -> Self {
        let chunk_size = hub.config().chunk_size;
        Self {
            hub,
            stream,
            id,
            kick,
            chunk_size,
            flush_at: Cell::new(None),
        }
    }

    /// The stream this publisher publishes.
    pub fn key(&self) -> &StreamKey {
        &self.stream.key
    }

    /// Publishes an audio, video or data message, received at `now`, to every player: at once without a
    /// batch window, otherwise at its wake group's next turn (see [`Publisher::flush_deadline`]).
    pub fn send(&self, message: &Message, now: Instant) {
        let frame = Arc::new(Frame::new(message, self.chunk_size));
        let config = self.hub.config();
        let wakers = {
            let mut state = self.stream.lock();
            let Some(slot) = state.publisher.as_mut().filter(|slot| slot.id == self.id) else {
                return;
            };
            slot.last_media = now;
            state.stats.count(&frame, message);
            if config.gop_cache_bytes > 0 {
                state.gop.add(&frame, config.gop_cache_bytes);
            }
            state.ring.push(SubscriberEvent::Frame(frame));
            self.take_turns(&mut state, now)
        };
        wake_all(wakers);
    }

    /// Flushes the wake groups whose turn has come and remembers when the next one is.
    fn take_turns(&self, state: &mut StreamState, now: Instant) -> Vec<Waker> {
        let window = self.hub.config().batch_window_for(self.hub.players());
        let woken = state.ring.flush_due(now, window);
        self.flush_at.set(state.ring.next_deadline());
        woken
    }

    /// When frames sent within the batch window must be flushed to players (None: nothing waits).
    pub fn flush_deadline(&self) -> Option<Instant> {
        self.flush_at.get()
    }

    /// Flushes the frames waiting for the batch window if its deadline has come.
    pub fn flush_if_due(&self, now: Instant) {
        if self.flush_at.get().is_none_or(|at| at > now) {
            return;
        }
        let wakers = self.take_turns(&mut self.stream.lock(), now);
        wake_all(wakers);
    }

    /// Sets (or clears) the stream's metadata (`onMetaData`), kept for players who join later. It reaches
    /// the players at once, whatever the batch window, so it needs no time.
    pub fn set_metadata(&self, message: Option<&Message>) {
        let frame = message.map(|m| Arc::new(Frame::new(m, self.chunk_size)));
        let wakers = {
            let mut state = self.stream.lock();
            if state
                .publisher
                .as_ref()
                .is_none_or(|slot| slot.id != self.id)
            {
                return;
            }
            state.gop.metadata = frame.clone();
            match frame {
                Some(frame) => state.push_now(SubscriberEvent::Frame(frame)),
                None => return,
            }
        };
        wake_all(wakers);
    }

    /// Resolves when another publisher took the stream over: the connection should close.
    pub async fn kicked(&self) {
        std::future::poll_fn(|cx| self.poll_kicked(cx)).await
    }

    /// Ready once another connection took the stream over (see [`Publisher::kicked`]); registers the
    /// task's waker otherwise. Allocation-free, for a connection that polls it on every turn.
    pub fn poll_kicked(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.kick.poll(cx)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let wakers = {
            let mut state = self.stream.lock();
            if state
                .publisher
                .as_ref()
                .is_some_and(|slot| slot.id == self.id)
            {
                state.publisher = None;
                state.stats.publishing = false;
                state.gop = GopCache::default();
                state.push_now(SubscriberEvent::Unpublished)
            } else {
                Vec::new()
            }
        };
        wake_all(wakers);
        self.hub.release(&self.stream);
    }
}
