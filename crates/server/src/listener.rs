//! Listeners: accept connections, sniff the first byte, hand each connection to its driver.
//!
//! First byte: 0x03 RTMP, 0x06/0x08/0x09 RTMPE (served by the session when a key exchange is configured),
//! 0x16 a TLS ClientHello (RTMPS: after the TLS handshake the first byte decides again), an ASCII letter
//! an HTTP request (RTMPT; RTMPTS inside TLS), served by the HTTP front ([`crate::http`]). TLS-only and
//! HTTP-only listeners close anything else.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

use axum::Router;

use crate::close_reason::HandshakeFailure;
use crate::connection::{self, ServerContext};
use crate::http::Peer;
use crate::socket::{SendNow, SendmsgStream};

/// What the first byte of a connection says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// Plain RTMP (version byte 3).
    Rtmp,
    /// RTMPE (version byte 6, 8 or 9).
    Rtmpe,
    /// A TLS ClientHello: RTMPS, or HTTPS for RTMPTS.
    Tls,
    /// An HTTP request: RTMPT, or the HTTP routes.
    Http,
    /// Anything else, with the byte; the connection is closed.
    Unknown(u8),
}

/// Tells what a connection is from its first byte.
pub fn sniff(first: u8) -> Sniffed {
    match first {
        0x03 => Sniffed::Rtmp,
        0x06 | 0x08 | 0x09 => Sniffed::Rtmpe,
        0x16 => Sniffed::Tls,
        b'A'..=b'Z' => Sniffed::Http,
        other => Sniffed::Unknown(other),
    }
}

/// Counts live connections so shutdown can wait for them and the limits can be enforced: in all, and
/// per address when `max_per_ip` is set (the table holds only addresses with a live connection).
#[derive(Debug, Default)]
pub struct ConnectionCount {
    total: AtomicUsize,
    max_per_ip: usize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl ConnectionCount {
    /// Counts with at most `max_per_ip` connections per address (0: no limit).
    pub fn with_per_ip_limit(max_per_ip: usize) -> Self {
        Self {
            max_per_ip,
            ..Self::default()
        }
    }

    /// Connections open now.
    pub fn current(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Counts a connection from `ip`, unless that address is at its limit.
    fn admit_ip(&self, ip: IpAddr) -> bool {
        if self.max_per_ip == 0 {
            return true;
        }
        let mut per_ip = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return false;
        }
        *count += 1;
        true
    }

    fn release_ip(&self, ip: IpAddr) {
        if self.max_per_ip == 0 {
            return;
        }
        let mut per_ip = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = per_ip.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                per_ip.remove(&ip);
            }
        }
    }

    /// Addresses with a live connection counted (0 without a per-address limit).
    pub fn addresses(&self) -> usize {
        self.per_ip
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Counts one admitted connection until dropped.
struct ConnectionGuard {
    count: Arc<ConnectionCount>,
    ip: IpAddr,
}

impl ConnectionGuard {
    /// Admits a connection from `ip`, or says which limit refused it.
    fn admit(
        count: &Arc<ConnectionCount>,
        ip: IpAddr,
        max_connections: usize,
    ) -> Result<Self, &'static str> {
        let ip = ip.to_canonical();
        if count.total.fetch_add(1, Ordering::Relaxed) >= max_connections {
            count.total.fetch_sub(1, Ordering::Relaxed);
            return Err("max_connections");
        }
        if !count.admit_ip(ip) {
            count.total.fetch_sub(1, Ordering::Relaxed);
            return Err("max_connections_per_ip");
        }
        Ok(Self {
            count: count.clone(),
            ip,
        })
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.count.release_ip(self.ip);
        self.count.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// RTMP, RTMPE and RTMPS, told apart by the first byte.
    Shared,
    /// RTMPS only.
    TlsOnly,
    /// HTTP only (RTMPT and the other HTTP routes).
    HttpOnly,
}

/// A listening socket on `address` whose kernel accept queue holds `backlog` connections (the standard
/// library's fixed 128 overflows when hundreds of players connect at once).
pub fn bind(address: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(backlog)
}

/// Accepts connections on `listener` until shutdown; HTTP ones are served by `http` (the HTTP front).
pub async fn run(
    listener: TcpListener,
    kind: ListenerKind,
    context: Arc<ServerContext>,
    http: Router,
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
        let guard = match ConnectionGuard::admit(&connections, peer.ip(), max_connections) {
            Ok(guard) => guard,
            Err(limit) => {
                tracing::warn!(%peer, limit, "connection refused: limit reached");
                continue;
            }
        };
        let context = context.clone();
        let (http, shutdown) = (http.clone(), shutdown.clone());
        tokio::spawn(async move {
            let _guard = guard;
            handle(stream, peer, kind, context, http, shutdown).await;
        });
    }
}

async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    kind: ListenerKind,
    context: Arc<ServerContext>,
    http: Router,
    shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let mut first = [0u8; 1];
    let peeked =
        tokio::time::timeout(context.session.handshake_timeout, stream.peek(&mut first)).await;
    match peeked {
        Ok(Ok(1)) => {}
        Ok(Ok(_)) => {
            handshake_failed(&context, HandshakeFailure::PeerClosed);
            return;
        }
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "connection failed before its first byte");
            handshake_failed(&context, HandshakeFailure::PeerClosed);
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "connection closed: nothing received within the handshake timeout");
            handshake_failed(&context, HandshakeFailure::Timeout);
            return;
        }
    }
    let stream = SendmsgStream::new(stream);
    match (kind, sniff(first[0])) {
        // Each way of serving is boxed: a task's future is as large as its largest branch, and the TLS
        // and HTTP ones are several KiB a plain RTMP connection would otherwise carry for nothing.
        (ListenerKind::Shared | ListenerKind::TlsOnly, Sniffed::Tls) => {
            Box::pin(serve_tls(stream, peer, context, http, shutdown)).await
        }
        (ListenerKind::TlsOnly, other) => {
            tracing::info!(%peer, first = ?other, "connection closed: this listener only speaks RTMPS (TLS)");
            handshake_failed(&context, HandshakeFailure::UnknownProtocol);
        }
        (ListenerKind::HttpOnly, Sniffed::Http) => {
            let carrier = Carrier::Tcp(Some(stream.sender()));
            Box::pin(serve_sniffed(
                stream,
                Sniffed::Http,
                peer,
                carrier,
                context,
                http,
                shutdown,
            ))
            .await
        }
        (ListenerKind::HttpOnly, other) => {
            tracing::info!(%peer, first = ?other, "connection closed: this listener only speaks HTTP (RTMPT)");
            handshake_failed(&context, HandshakeFailure::UnknownProtocol);
        }
        (ListenerKind::Shared, sniffed) => {
            let carrier = Carrier::Tcp(Some(stream.sender()));
            Box::pin(serve_sniffed(
                stream, sniffed, peer, carrier, context, http, shutdown,
            ))
            .await
        }
    }
}

/// Counts a connection the listener closed before any handshake was done.
fn handshake_failed(context: &ServerContext, failure: HandshakeFailure) {
    context.clients.counters.handshake_failed(failure);
}

/// What a sniffed stream runs on.
enum Carrier {
    /// Plain TCP; with the socket itself when the stream writes to it as it is (see `connection::serve`).
    Tcp(Option<Arc<dyn SendNow>>),
    /// Inside TLS.
    Tls,
}

/// Serves a stream whose first byte was `sniffed`.
async fn serve_sniffed<S>(
    stream: S,
    sniffed: Sniffed,
    peer: SocketAddr,
    carrier: Carrier,
    context: Arc<ServerContext>,
    http: Router,
    shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (outer, socket) = match carrier {
        Carrier::Tcp(socket) => ("rtmp", socket),
        Carrier::Tls => ("rtmps", None),
    };
    match sniffed {
        Sniffed::Rtmp => {
            Box::pin(connection::serve(
                stream, peer, outer, context, shutdown, socket,
            ))
            .await
        }
        Sniffed::Rtmpe if context.session.key_exchange.is_some() => {
            let transport = if outer == "rtmps" {
                "rtmps+rtmpe"
            } else {
                "rtmpe"
            };
            Box::pin(connection::serve(
                stream, peer, transport, context, shutdown, socket,
            ))
            .await
        }
        Sniffed::Rtmpe => {
            tracing::info!(%peer, "connection closed: RTMPE is not enabled");
            handshake_failed(&context, HandshakeFailure::RtmpeDisabled);
        }
        Sniffed::Tls => {
            tracing::info!(%peer, "connection closed: TLS inside TLS");
            handshake_failed(&context, HandshakeFailure::UnknownProtocol);
        }
        Sniffed::Http => {
            let peer = Peer {
                address: peer,
                secure: outer == "rtmps",
            };
            let timeouts = crate::http::HttpTimeouts::of(&context.session);
            Box::pin(crate::http::serve_connection(
                stream, peer, http, timeouts, shutdown, socket,
            ))
            .await
        }
        Sniffed::Unknown(byte) => {
            tracing::info!(%peer, first_byte = byte, "connection closed: not an RTMP connection");
            handshake_failed(&context, HandshakeFailure::UnknownProtocol);
        }
    }
}

/// The TLS handshake, then the first byte inside it decides again.
async fn serve_tls(
    stream: SendmsgStream,
    peer: SocketAddr,
    context: Arc<ServerContext>,
    http: Router,
    shutdown: watch::Receiver<bool>,
) {
    let Some(acceptor) = context.tls.clone() else {
        tracing::info!(%peer, "connection closed: RTMPS (TLS) is not enabled");
        return;
    };
    let accepted = tokio::time::timeout(context.session.handshake_timeout, async {
        let mut tls = acceptor.accept(stream).await?;
        let mut first = [0u8; 1];
        let n = tls.read(&mut first).await?;
        Ok::<_, std::io::Error>((tls, first, n))
    })
    .await;
    match accepted {
        Ok(Ok((tls, first, 1))) => {
            let stream = rtmp_rtmps::Prefixed::new(first.to_vec(), tls);
            serve_sniffed(
                stream,
                sniff(first[0]),
                peer,
                Carrier::Tls,
                context,
                http,
                shutdown,
            )
            .await;
        }
        Ok(Ok(_)) => {
            tracing::debug!(%peer, "TLS connection closed before any data");
            handshake_failed(&context, HandshakeFailure::PeerClosed);
        }
        Ok(Err(error)) => {
            tracing::info!(%peer, %error, "connection closed: TLS handshake failed");
            handshake_failed(&context, HandshakeFailure::Tls);
        }
        Err(_) => {
            tracing::info!(%peer, "connection closed: TLS handshake timed out");
            handshake_failed(&context, HandshakeFailure::Timeout);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::Arc;

    use super::{ConnectionCount, ConnectionGuard};

    #[test]
    fn connections_are_limited_per_address_and_released() {
        let count = Arc::new(ConnectionCount::with_per_ip_limit(2));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let first = ConnectionGuard::admit(&count, ip, 100).unwrap();
        let second = ConnectionGuard::admit(&count, mapped, 100).unwrap();
        assert_eq!(
            ConnectionGuard::admit(&count, ip, 100).err(),
            Some("max_connections_per_ip")
        );
        let other = ConnectionGuard::admit(&count, "192.0.2.2".parse().unwrap(), 100).unwrap();
        assert_eq!(count.current(), 3);
        assert_eq!(
            ConnectionGuard::admit(&count, "192.0.2.3".parse().unwrap(), 3).err(),
            Some("max_connections")
        );
        drop(first);
        let again = ConnectionGuard::admit(&count, ip, 100).unwrap();
        drop((second, again, other));
        assert_eq!(count.current(), 0);
        assert_eq!(count.addresses(), 0);
    }
}
