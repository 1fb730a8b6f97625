//! The accepted TCP stream, written with `sendmsg(2)` rather than `writev(2)`.
//!
//! A `writev` on a socket goes through the file layer (`vfs_writev`, the write-position and
//! permission checks, an fsnotify event) before reaching the socket's `sendmsg`; calling `sendmsg`
//! directly skips all of it. With every player written to about 30 times a second, the system-call
//! layer's share of the server's profile goes from about 7% to 5% at 1000 players (docs/benchmarks.md).
//! Reads are rare (the publisher's stream, the players' acknowledgements) and stay tokio's.
//!
//! The stream is shared ([`SendmsgStream::sender`]): a player's frames are written from the publisher's
//! task as well as from the player's own (see the connection module, "direct delivery").

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// A peer that has gone away gets `EPIPE`, never a `SIGPIPE` (whatever the embedding program does with
/// that signal).
#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: libc::c_int = 0;

/// A socket that can be written without waiting, from any thread.
pub trait SendNow: Send + Sync {
    /// Sends as much of `buffers` as the socket takes now; `WouldBlock` when it takes nothing.
    fn send_now(&self, buffers: &[IoSlice<'_>]) -> io::Result<usize>;
}

/// A plain `sendmsg`, outside tokio's readiness tracking: a full socket (`WouldBlock`) leaves tokio's
/// readiness as it was, and the stream's own write, which goes through tokio, then finds out and waits.
impl SendNow for TcpStream {
    fn send_now(&self, buffers: &[IoSlice<'_>]) -> io::Result<usize> {
        SockRef::from(self).send_vectored_with_flags(buffers, SEND_FLAGS)
    }
}

/// A connected TCP stream whose writes are `sendmsg` calls; reads and readiness are tokio's.
#[derive(Debug)]
pub struct SendmsgStream {
    inner: Arc<TcpStream>,
}

impl SendmsgStream {
    /// Wraps an accepted TCP stream.
    pub fn new(inner: TcpStream) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The same socket, for writes made outside this stream's task.
    pub fn sender(&self) -> Arc<dyn SendNow> {
        self.inner.clone()
    }

    fn poll_send(&self, cx: &mut Context<'_>, buffers: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.inner.poll_write_ready(cx))?;
            // Through tokio, so that a full socket clears its readiness and the next poll waits for room.
            match self
                .inner
                .try_io(Interest::WRITABLE, || self.inner.send_now(buffers))
            {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

impl AsyncRead for SendmsgStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.inner.poll_read_ready(cx))?;
            match self.inner.try_read(buf.initialize_unfilled()) {
                Ok(read) => {
                    buf.advance(read);
                    return Poll::Ready(Ok(()));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }
}

impl AsyncWrite for SendmsgStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_send(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffers: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_send(cx, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(SockRef::from(&*self.inner).shutdown(std::net::Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (SendmsgStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(address), listener.accept());
        (SendmsgStream::new(accepted.unwrap().0), client.unwrap())
    }

    #[tokio::test]
    async fn vectored_writes_arrive_in_order_and_reads_pass_through() {
        let (mut server, mut client) = pair().await;
        let pieces: [&[u8]; 3] = [b"chunk header ", b"payload ", b"next"];
        let mut expected = Vec::new();
        for piece in pieces {
            expected.extend_from_slice(piece);
        }
        let slices: Vec<IoSlice<'_>> = pieces.iter().map(|piece| IoSlice::new(piece)).collect();
        let written = server.write_vectored(&slices).await.unwrap();
        server.write_all(&expected[written..]).await.unwrap();
        server.write_all(b" and more").await.unwrap();
        server.shutdown().await.unwrap();
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.unwrap();
        expected.extend_from_slice(b" and more");
        assert_eq!(received, expected);

        client.write_all(b"from the peer").await.unwrap();
        let mut read = [0u8; 13];
        server.read_exact(&mut read).await.unwrap();
        assert_eq!(&read, b"from the peer");
    }

    #[tokio::test]
    async fn a_full_socket_waits_for_room_instead_of_failing() {
        let (mut server, mut client) = pair().await;
        let block = vec![7u8; 1 << 20];
        let sender = tokio::spawn(async move {
            for _ in 0..16 {
                server.write_all(&block).await.unwrap();
            }
            server.shutdown().await.unwrap();
        });
        let mut total = 0usize;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = client.read(&mut buffer).await.unwrap();
            if n == 0 {
                break;
            }
            assert!(buffer[..n].iter().all(|&byte| byte == 7));
            total += n;
        }
        sender.await.unwrap();
        assert_eq!(total, 16 << 20);
    }

    #[tokio::test]
    async fn writing_to_a_closed_peer_fails() {
        let (mut server, client) = pair().await;
        drop(client);
        let block = vec![0u8; 64 * 1024];
        let mut failed = None;
        for _ in 0..64 {
            if let Err(error) = server.write_all(&block).await {
                failed = Some(error.kind());
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(
            matches!(
                failed,
                Some(io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset)
            ),
            "{failed:?}"
        );
    }
}
