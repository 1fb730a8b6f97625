//! What a relay needs beyond publishing from a file: frames already chunk-encoded by a server's hub sent
//! as they are, the byte counts, and a wait for the server's next event that gives up at a deadline
//! (so one task can both feed a publication and keep its timers).

use std::time::Instant;

use rtmp_chunk::SharedMessage;
use rtmp_session::io::write_all_vectored;
use rtmp_session::ClientEvent;
use tokio::io::AsyncReadExt;

use super::{unwrap_set_data_frame, Client, ClientError};

impl Client {
    /// Queues a message encoded once elsewhere (a hub's frame) on a publishing stream: its chunks are
    /// sent as they are when the chunk sizes agree, re-chunked otherwise.
    pub fn send_shared(&mut self, stream_id: u32, shared: &SharedMessage) {
        self.session.send_shared(stream_id, shared);
    }

    /// Bytes received and sent on this connection so far (handshake included).
    pub fn byte_counts(&self) -> (u64, u64) {
        self.session.byte_counts()
    }

    /// Bytes queued and not yet written.
    pub fn pending_transmit_bytes(&self) -> usize {
        self.session.pending_transmit_bytes()
    }

    /// Writes everything queued, then returns the server's next event, or `None` once `deadline` has
    /// passed with none. Only the wait for input is given up at the deadline, never a write, so a
    /// caller may call it again with no byte lost; an already-passed deadline only takes what has
    /// arrived.
    pub async fn next_event_before(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<ClientEvent>, ClientError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(Some(event));
            }
            let mut out = Vec::new();
            self.session.poll_transmit(&mut out);
            write_all_vectored(&mut self.io, &mut out).await?;
            if let Some(event) = self.session.poll_event() {
                return Ok(Some(unwrap_set_data_frame(event)));
            }
            let timer = self.session.poll_timeout();
            let wake = tokio::time::Instant::from_std(timer.min(deadline));
            tokio::select! {
                biased;
                read = self.io.read(&mut self.buffer) => self.take_read(read?)?,
                _ = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if now >= timer {
                        self.session.handle_timeout(now)?;
                    }
                    if now >= deadline {
                        return Ok(self.session.poll_event().map(unwrap_set_data_frame));
                    }
                }
            }
        }
    }
}
