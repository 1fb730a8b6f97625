//! Listeners: accept connections, sniff the first byte, hand each connection to its driver.
//!
//! First byte: 0x03 RTMP, 0x06/0x08/0x09 RTMPE (served by the session when a key exchange is configured),
//! 0x16 a TLS ClientHello (RTMPS), an ASCII letter an HTTP request (RTMPT). TLS and HTTP are not served
//! yet and are closed with a clear log line.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::connection::{self, ServerContext};

/// What the first byte of a connection says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Rtmp,
    Rtmpe,
    Tls,
    Http,
    Unknown(u8),
}

pub fn sniff(first: u8) -> Sniffed {
    match first {
        0x03 => Sniffed::Rtmp,
        0x06 | 0x08 | 0x09 => Sniffed::Rtmpe,
        0x16 => Sniffed::Tls,
        b'A'..=b'Z' => Sniffed::Http,
        other => Sniffed::Unknown(other),
    }
}

/// Counts live connections so shutdown can wait for them and the limit can be enforced.
#[derive(Debug, Default)]
pub struct ConnectionCount(AtomicUsize);

impl ConnectionCount {
    pub fn current(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

struct ConnectionGuard(Arc<ConnectionCount>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts connections on `listener` until shutdown.
pub async fn run(
    listener: TcpListener,
    context: Arc<ServerContext>,
    connections: Arc<ConnectionCount>,
    max_connections: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if connections.0.fetch_add(1, Ordering::Relaxed) >= max_connections {
            connections.0.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(%peer, max_connections, "connection refused: limit reached");
            continue;
        }
        let guard = ConnectionGuard(connections.clone());
        let context = context.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _guard = guard;
            handle(stream, peer, context, shutdown).await;
        });
    }
}

async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    context: Arc<ServerContext>,
    shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let mut first = [0u8; 1];
    let peeked =
        tokio::time::timeout(context.session.handshake_timeout, stream.peek(&mut first)).await;
    match peeked {
        Ok(Ok(1)) => {}
        Ok(Ok(_)) => return,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "connection failed before its first byte");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "connection closed: nothing received within the handshake timeout");
            return;
        }
    }
    match sniff(first[0]) {
        Sniffed::Rtmp => connection::serve(stream, peer, "rtmp", context, shutdown).await,
        Sniffed::Rtmpe if context.session.key_exchange.is_some() => {
            connection::serve(stream, peer, "rtmpe", context, shutdown).await
        }
        Sniffed::Rtmpe => {
            tracing::info!(%peer, "connection closed: RTMPE is not enabled on this listener")
        }
        Sniffed::Tls => {
            tracing::info!(%peer, "connection closed: RTMPS (TLS) is not enabled on this listener")
        }
        Sniffed::Http => {
            tracing::info!(%peer, "connection closed: RTMPT (HTTP) is not enabled on this listener")
        }
        Sniffed::Unknown(byte) => {
            tracing::info!(%peer, first_byte = byte, "connection closed: not an RTMP connection")
        }
    }
}
