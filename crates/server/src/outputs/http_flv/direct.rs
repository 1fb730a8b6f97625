//! Direct delivery of HTTP-FLV (docs/http-flv.md, "Cost"): a live HTTP-FLV player on plain TCP is
//! written as an RTMP player is, by whichever task flushes the stream, with one `sendmsg` of the shared
//! FLV tags per batch, instead of waking the player's task to go through hyper one body chunk per tag.
//!
//! The connection is taken from hyper after its request was decided ([`crate::http`] reads the first
//! request of a plain-TCP connection itself when it is a `GET` of a `.flv`, and writes the response
//! head). From then on:
//! - **The subscriber's waker is the player** ([`Player`]): a flush of the stream runs
//!   [`Player::deliver`], which takes every event ready and writes the tags at once, without waiting:
//!   it only `try_lock`s the player, writes only when nothing is left unsent and the player's task is not
//!   writing, and takes a write from the turn's budget as RTMP deliveries do
//!   ([`crate::connection::take_direct_write`]). Anything else wakes the player's task.
//! - **The task** ([`play`]) writes what a delivery could not (a full socket waits for room, bounded by
//!   the connection's write limit: a reader that stops reading is closed as stalled), notices the peer closing, and
//!   ends the player on unpublish, kick or shutdown, with the chunked body's last chunk.
//!
//! The bytes are those hyper would send: HTTP/1.1 chunked coding (one chunk per write), or the bare
//! tags to the close for an HTTP/1.0 request.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rtmp_session::io::{write_all_now, write_all_vectored};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::{stop_signal, Feed, Playback};
use crate::close_reason::{CloseReason, Timeout};
use crate::connection::TaskWaker;
use crate::http::take_over::{Connection, Io};
use crate::socket::SendNow;

const CRLF: Bytes = Bytes::from_static(b"\r\n");
const LAST_CHUNK: Bytes = Bytes::from_static(b"0\r\n\r\n");
/// How long the last chunk may take to go out when the player ends.
const LAST_CHUNK_WAIT: Duration = Duration::from_secs(1);

/// A live player on its own socket, shared by its task and the flushers of its stream.
struct Player {
    state: Mutex<State>,
    socket: Arc<dyn SendNow>,
    /// The player's task, for a delivery that hands over.
    task: TaskWaker,
    chunked: bool,
}

struct State {
    /// The subscriber and the registry entry; `None` once the player ended (which also drops the
    /// subscriber, and with it the wakers that keep the player alive).
    playing: Option<Playing>,
    /// The task is writing: nothing else may write until it is done.
    task_writing: bool,
    /// Wire bytes a delivery could not send; the task sends them before anything else.
    unsent: Vec<Bytes>,
    /// A delivery's buffers, kept for the next one.
    delivered: Vec<Bytes>,
    /// Where the chunk size lines are written, one small allocation for many chunks.
    chunk_size_lines: BytesMut,
}

struct Playing {
    feed: Feed,
    playback: Playback,
}

/// What the player's task does next.
enum Turn {
    /// Write these (the socket was full, or a delivery could not run).
    Write(Vec<Bytes>),
    /// The stream ended for the player (unpublished).
    Ended(CloseReason),
}

impl Player {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes every event ready (registering the player as the subscriber's waker) and appends their
    /// wire bytes to `pieces`.
    fn collect(self: &Arc<Self>, state: &mut State, pieces: &mut Vec<Bytes>) {
        let State {
            playing,
            chunk_size_lines,
            ..
        } = state;
        let Some(playing) = playing.as_mut() else {
            return;
        };
        let waker = Waker::from(Arc::clone(self));
        let mut cx = Context::from_waker(&waker);
        let feed = &mut playing.feed;
        while feed.ended.is_none() {
            match feed.subscriber.poll_recv(&mut cx) {
                Poll::Ready(event) => feed.take(event),
                Poll::Pending => break,
            }
        }
        playing.playback.dropped(feed.subscriber.dropped());
        if feed.out.is_empty() {
            return;
        }
        let len: usize = feed.out.iter().map(Bytes::len).sum();
        if self.chunked {
            pieces.push(chunk_size_line(chunk_size_lines, len));
        }
        pieces.extend(feed.out.drain(..));
        if self.chunked {
            pieces.push(CRLF);
        }
        feed.out.shrink_to(super::RETAINED_QUEUE);
        playing.playback.sent(len as u64);
    }

    /// Runs the player's turn here and now: every event ready, then one write. Returns whether all of
    /// it was sent; otherwise the task must run.
    fn deliver(self: &Arc<Self>) -> bool {
        let Ok(mut state) = self.state.try_lock() else {
            return false;
        };
        if state.task_writing
            || !state.unsent.is_empty()
            || state.playing.is_none()
            || !crate::connection::take_direct_write()
        {
            return false;
        }
        let mut pieces = std::mem::take(&mut state.delivered);
        self.collect(&mut state, &mut pieces);
        let ended = state
            .playing
            .as_ref()
            .is_some_and(|playing| playing.feed.ended.is_some());
        match write_all_now(&mut pieces, |slices| self.socket.send_now(slices)) {
            Ok(()) => {
                state.delivered = pieces;
                !ended
            }
            // A full socket or a failed one: the task waits for room or finds the error.
            Err(_) => {
                state.unsent = pieces;
                false
            }
        }
    }

    /// The task's side of a turn: what a delivery left unsent, else the events ready, written now
    /// where the socket takes them.
    fn poll_turn(self: &Arc<Self>, cx: &mut Context<'_>) -> Poll<Turn> {
        self.task.register(cx.waker());
        let mut state = self.lock();
        if !state.unsent.is_empty() {
            state.task_writing = true;
            return Poll::Ready(Turn::Write(std::mem::take(&mut state.unsent)));
        }
        let mut pieces = std::mem::take(&mut state.delivered);
        self.collect(&mut state, &mut pieces);
        match write_all_now(&mut pieces, |slices| self.socket.send_now(slices)) {
            Ok(()) => state.delivered = pieces,
            Err(_) => {
                state.task_writing = true;
                return Poll::Ready(Turn::Write(pieces));
            }
        }
        let ended = state
            .playing
            .as_mut()
            .and_then(|playing| playing.feed.ended.take());
        match ended {
            Some(reason) => Poll::Ready(Turn::Ended(reason)),
            None => Poll::Pending,
        }
    }

    /// The task wrote what it took; deliveries may write again.
    fn written(&self, mut pieces: Vec<Bytes>) {
        let mut state = self.lock();
        state.task_writing = false;
        pieces.clear();
        if state.delivered.capacity() < pieces.capacity() {
            state.delivered = pieces;
        }
    }

    /// Ends the player: its close line, its registry entry, its hooks; drops the subscriber. Returns
    /// whether the body stopped between two chunks (nothing left unsent), where its last chunk may follow.
    fn finish(&self, reason: CloseReason) -> bool {
        let (playing, between_chunks) = {
            let mut state = self.lock();
            (state.playing.take(), state.unsent.is_empty())
        };
        if let Some(mut playing) = playing {
            playing.playback.finish(reason);
        }
        between_chunks
    }
}

impl Wake for Player {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.deliver() {
            self.task.wake();
        }
    }
}

/// The size line of a chunk of `len` bytes (`{len:X}\r\n`), cut from `lines`.
fn chunk_size_line(lines: &mut BytesMut, len: usize) -> Bytes {
    const LONGEST: usize = 2 * std::mem::size_of::<usize>() + 2;
    if lines.capacity() < LONGEST {
        *lines = BytesMut::with_capacity(64 * LONGEST);
    }
    // Writing to a `BytesMut` cannot fail: it grows.
    let _ = std::fmt::Write::write_fmt(lines, format_args!("{len:X}\r\n"));
    lines.split().freeze()
}

/// Ends the player however its task ends (dropped on shutdown included), so that the subscriber, and the
/// wakers it holds, go.
struct Finish(Arc<Player>);

impl Drop for Finish {
    fn drop(&mut self) {
        let _ = self.0.finish(CloseReason::PeerClosed);
    }
}

/// Plays the live stream of `feed` (its start already queued) to the taken connection until the stream
/// ends for it, the peer goes, its writes stall, or the server shuts down or kicks it.
pub(crate) async fn play(
    connection: Connection,
    feed: Feed,
    playback: Playback,
    shutdown: watch::Receiver<bool>,
) {
    let Connection {
        io,
        socket,
        chunked,
        write_limit,
    } = connection;
    let mut stop = stop_signal(shutdown, playback.registration.clone());
    let span = playback.span.clone();
    let player = Arc::new(Player {
        state: Mutex::new(State {
            playing: Some(Playing { feed, playback }),
            task_writing: false,
            unsent: Vec::new(),
            delivered: Vec::new(),
            chunk_size_lines: BytesMut::new(),
        }),
        socket,
        task: TaskWaker::default(),
        chunked,
    });
    let finish = Finish(Arc::clone(&player));
    tracing::debug!(parent: &span, chunked, "HTTP-FLV player taken from hyper: written by the stream's flushes");
    let (mut reader, mut writer) = tokio::io::split(io);
    // A write of the task's cut short by a stop: the body ends inside a chunk.
    let mut cut_short = false;
    let reason = loop {
        let turn = tokio::select! {
            biased;
            reason = &mut stop => break reason,
            () = peer_gone(&mut reader) => break CloseReason::PeerClosed,
            turn = std::future::poll_fn(|cx| player.poll_turn(cx)) => turn,
        };
        let mut pieces = match turn {
            Turn::Write(pieces) => pieces,
            Turn::Ended(reason) => break reason,
        };
        let written = tokio::select! {
            biased;
            reason = &mut stop => {
                cut_short = true;
                break reason;
            }
            written = write_all_vectored(&mut writer, &mut pieces) => written,
        };
        match written {
            Ok(()) => player.written(pieces),
            Err(error) if error.kind() == io::ErrorKind::TimedOut => {
                break CloseReason::Timeout(Timeout::WriteStalled(write_limit))
            }
            Err(error) => {
                tracing::debug!(parent: &span, %error, "HTTP-FLV write failed");
                break CloseReason::PeerClosed;
            }
        }
    };
    let closing = !matches!(
        reason,
        CloseReason::PeerClosed | CloseReason::Timeout(Timeout::WriteStalled(_))
    );
    let between_chunks = player.finish(reason) && !cut_short;
    drop(finish);
    if closing {
        end_body(&mut writer, chunked && between_chunks).await;
    }
}

/// Resolves when the peer closes its side or the connection fails; whatever it sends is read and
/// dropped (a player sends nothing after its request).
async fn peer_gone(reader: &mut tokio::io::ReadHalf<Box<dyn Io>>) {
    let mut scratch = [0u8; 256];
    loop {
        match reader.read(&mut scratch).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// The chunked body's last chunk (when `last_chunk`), then the close of the sending side; bounded, best
/// effort.
async fn end_body(writer: &mut tokio::io::WriteHalf<Box<dyn Io>>, last_chunk: bool) {
    let ending = async {
        if last_chunk {
            writer.write_all(&LAST_CHUNK).await?;
        }
        writer.shutdown().await
    };
    let _: Result<io::Result<()>, _> = tokio::time::timeout(LAST_CHUNK_WAIT, ending).await;
}

/// The task of a taken connection, boxed for [`crate::http::take_over::TakeOver`].
pub(crate) fn task(
    feed: Feed,
    playback: Playback,
    shutdown: watch::Receiver<bool>,
) -> impl FnOnce(Connection) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + 'static {
    move |connection| Box::pin(play(connection, feed, playback, shutdown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_lines_are_upper_hex_and_share_their_buffer() {
        let mut lines = BytesMut::new();
        let cut: Vec<Bytes> = [0, 9, 10, 255, 4096, 0x1234_5678]
            .into_iter()
            .map(|len| chunk_size_line(&mut lines, len))
            .collect();
        let text: Vec<&[u8]> = cut.iter().map(|line| &line[..]).collect();
        assert_eq!(
            text,
            [
                &b"0\r\n"[..],
                b"9\r\n",
                b"A\r\n",
                b"FF\r\n",
                b"1000\r\n",
                b"12345678\r\n"
            ]
        );
        for len in [1usize, 0xABCDEF, usize::MAX] {
            let line = chunk_size_line(&mut lines, len);
            assert_eq!(line, format!("{len:X}\r\n").as_bytes());
        }
    }
}
