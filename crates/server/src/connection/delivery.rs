//! Direct delivery (docs/hub.md): the waker a plain-TCP connection gives its subscribers, which writes
//! the player's frames from whichever task flushes the stream (the publisher's) instead of waking the
//! player's own task.
//!
//! Invariants:
//! - **No hub lock is held while a waker runs.** The hub wakes subscribers after releasing its ring's
//!   lock, so a delivery may take the player's events (which locks the ring again) and write.
//! - **A waker only `try_lock`s the connection.** A connection busy elsewhere (its task routing input,
//!   writing, or another flusher delivering) is never waited for: its task is woken instead.
//! - **A per-turn budget.** One task makes at most [`DIRECT_WRITES_PER_TURN`] direct writes in one turn
//!   of its loop ([`DirectWriteTurn`]); the players beyond are woken, so that the runtime's other threads
//!   share a large audience. Outside a turn (a waker run from a thread of no connection) writes are not
//!   counted.
//! - **Hand-over, oldest bytes first.** A write the socket does not take whole keeps the rest in
//!   [`Connection::unsent`] and wakes the connection's task, which writes that before anything else; while
//!   `unsent` is not empty or the task is writing ([`Connection::task_writing`]), no delivery writes.
//!   Streams other than plain TCP (TLS, HTTP tunnels) have no socket to write to from outside, and
//!   always hand over.
//!
//! A delivery runs the same code as the task ([`Router::handle_player_event`], then the session's
//! `poll_transmit`), so chunk headers, RTMPE's cipher and byte counts stay the session's.

use std::cell::Cell;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use bytes::Bytes;
use rtmp_session::io::write_all_now;
use rtmp_session::ServerSession;

use crate::clients::ConnectionStats;
use crate::router::{PlayerEvent, Router};
use crate::socket::SendNow;

/// Direct writes one task makes in one turn of its loop (a flush of a stream's wake group is one turn of
/// the publisher's task); about 2.5 ms of writes. The players beyond are handed to their own tasks.
pub(super) const DIRECT_WRITES_PER_TURN: u32 = 256;

thread_local! {
    /// Direct writes left to the task running on this thread in its current turn; `None` outside a turn.
    static DIRECT_WRITES_LEFT: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Opens a turn's budget of direct writes on this thread; the budget closes when this is dropped.
pub(super) struct DirectWriteTurn;

impl DirectWriteTurn {
    pub(super) fn start() -> Self {
        DIRECT_WRITES_LEFT.set(Some(DIRECT_WRITES_PER_TURN));
        DirectWriteTurn
    }
}

impl Drop for DirectWriteTurn {
    fn drop(&mut self) {
        DIRECT_WRITES_LEFT.set(None);
    }
}

/// Takes one direct write from the current turn's budget (always granted outside a turn); HTTP-FLV's
/// direct delivery takes from the same budget.
pub(crate) fn take_direct_write() -> bool {
    match DIRECT_WRITES_LEFT.get() {
        None => true,
        Some(0) => false,
        Some(left) => {
            DIRECT_WRITES_LEFT.set(Some(left - 1));
            true
        }
    }
}

/// A connection's state, shared by its task and the flushers of the streams it plays.
pub(super) struct Connection {
    pub(super) session: ServerSession,
    pub(super) router: Router,
    /// The connection's task is writing: nothing else may write until it is done.
    pub(super) task_writing: bool,
    /// Wire bytes a direct delivery could not send; the task sends them before anything else.
    pub(super) unsent: Vec<Bytes>,
    /// A direct delivery's buffers, kept for the next one.
    delivered: Vec<Bytes>,
    /// Where the connection's counters are published for the API (stores only).
    pub(super) stats: Arc<ConnectionStats>,
}

impl Connection {
    pub(super) fn new(session: ServerSession, router: Router, stats: Arc<ConnectionStats>) -> Self {
        Self {
            session,
            router,
            task_writing: false,
            unsent: Vec::new(),
            delivered: Vec::new(),
            stats,
        }
    }

    /// Publishes the byte counts and dropped frames for the API: three relaxed stores.
    pub(super) fn publish_counts(&self) {
        let (bytes_in, bytes_out) = self.session.byte_counts();
        self.stats
            .set_counts(bytes_in, bytes_out, self.router.dropped_frames());
    }

    /// Hands the player's event, and every event it already has after it, to the session.
    pub(super) fn handle_player_events(&mut self, stream_id: u32, event: PlayerEvent) {
        let Connection {
            session, router, ..
        } = self;
        router.handle_player_event(session, stream_id, event);
        router.handle_ready_player_events(session, stream_id);
    }
}

/// A connection as its task and the flushers of the streams it plays share it, and the waker its
/// subscribers are given when it is delivered to directly.
pub(super) struct Shared {
    connection: Mutex<Connection>,
    /// The socket, when frames may be written to it from outside the task (plain TCP).
    socket: Option<Arc<dyn SendNow>>,
    /// The connection task's waker, for a delivery that hands over.
    task: TaskWaker,
}

/// The waker of the task that owns a directly delivered player, for a delivery that hands over.
#[derive(Default)]
pub(crate) struct TaskWaker(Mutex<Option<Waker>>);

impl TaskWaker {
    /// Keeps `waker` (unless it wakes the same task as the one kept).
    pub(crate) fn register(&self, waker: &Waker) {
        let mut task = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match task.as_ref() {
            Some(current) if current.will_wake(waker) => {}
            _ => *task = Some(waker.clone()),
        }
    }

    /// Wakes the task, if it registered.
    pub(crate) fn wake(&self) {
        if let Some(task) = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            task.wake_by_ref();
        }
    }
}

impl Shared {
    pub(super) fn new(connection: Connection, socket: Option<Arc<dyn SendNow>>) -> Arc<Self> {
        Arc::new(Self {
            connection: Mutex::new(connection),
            socket,
            task: TaskWaker::default(),
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The waker to give the subscribers: this connection's delivery, when it has a socket to write to
    /// from outside its task. Held by the task, not in `Shared`: the subscribers' wakers keep `Shared`
    /// alive, never the reverse.
    pub(super) fn delivery_waker(self: &Arc<Self>) -> Option<Waker> {
        self.socket.is_some().then(|| Waker::from(Arc::clone(self)))
    }

    /// Waits for the next event of any player on this connection (never, if there is none). With direct
    /// delivery the subscribers are given `delivery` (the flusher then writes the frames itself and wakes
    /// this task only to hand over); otherwise the task's own waker.
    pub(super) async fn next_player_event(&self, delivery: Option<&Waker>) -> (u32, PlayerEvent) {
        std::future::poll_fn(|cx| {
            let Some(delivery) = delivery else {
                let mut connection = self.lock();
                connection.router.start_turn();
                return connection.router.poll_player_event(cx);
            };
            self.task.register(cx.waker());
            let mut connection = self.lock();
            connection.router.start_turn();
            connection
                .router
                .poll_player_event(&mut Context::from_waker(delivery))
        })
        .await
    }

    /// Runs the players' turn here and now: every event ready, then one write of what the session
    /// queued. Returns whether all of it was sent; otherwise the task must run (the connection is busy,
    /// the socket full, or there is no socket to write to from here).
    fn deliver(self: &Arc<Self>) -> bool {
        let Some(socket) = &self.socket else {
            return false;
        };
        let Ok(mut guard) = self.connection.try_lock() else {
            return false;
        };
        if guard.task_writing || !guard.unsent.is_empty() || !take_direct_write() {
            return false;
        }
        let delivery = Waker::from(Arc::clone(self));
        let mut cx = Context::from_waker(&delivery);
        let connection = &mut *guard;
        connection.router.start_turn();
        while let Poll::Ready((stream_id, event)) = connection.router.poll_player_event(&mut cx) {
            connection
                .router
                .handle_player_event(&mut connection.session, stream_id, event);
        }
        let mut pieces = std::mem::take(&mut connection.delivered);
        connection.session.poll_transmit(&mut pieces);
        let written = write_all_now(&mut pieces, |slices| socket.send_now(slices));
        connection.publish_counts();
        match written {
            Ok(()) => {
                connection.delivered = pieces;
                true
            }
            // A full socket or a failed one: the task waits for room or reports the error.
            Err(_) => {
                connection.unsent = pieces;
                false
            }
        }
    }
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.deliver() {
            self.task.wake();
        }
    }
}
