//! RTMPS: RTMP over TLS, with rustls (no OpenSSL). The session core runs unchanged on the decrypted
//! stream; this crate only makes that stream.
//!
//! * [`TlsAcceptor`]: certificates from PEM files (full chain; PKCS#8, PKCS#1 RSA or SEC1 EC keys), or a
//!   self-signed certificate for `localhost`, `127.0.0.1` and `::1` generated at start so the first run
//!   serves RTMPS with no set-up. [`TlsAcceptor::reload`] swaps the certificate without touching open
//!   connections (the server calls it on SIGHUP); a failed reload keeps the old one.
//! * TLS 1.2 and 1.3. No TLS 1.3 session tickets are sent: librtmp built with GnuTLS (Debian's rtmpdump)
//!   reads them as stream data and fails. SNI is not required (one certificate serves every name, and
//!   clients that send no SNI). ALPN: none needed; `http/1.1` is offered for RTMPTS.
//! * [`connector`]: the client side, with a custom root store or, for tests, no verification at all.
//! * [`Prefixed`]: a stream with bytes put back in front, for sniffing the first byte inside TLS.
//!
//! # Example
//!
//! Serve the self-signed certificate and connect to it (a client that trusts a real certificate uses
//! [`connector::with_roots`] instead):
//!
//! ```
//! use rtmp_rtmps::{connector, TlsAcceptor, TlsSettings};
//! use rustls::pki_types::ServerName;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let acceptor = TlsAcceptor::new(TlsSettings::default())?; // self-signed for localhost
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let address = listener.local_addr()?;
//! let server = tokio::spawn(async move {
//!     let (socket, _) = listener.accept().await?;
//!     let mut tls = acceptor.accept(socket).await?;
//!     let mut c0 = [0u8; 1];
//!     tls.read_exact(&mut c0).await?;
//!     std::io::Result::Ok(c0[0])
//! });
//!
//! let socket = tokio::net::TcpStream::connect(address).await?;
//! let mut tls = connector::accept_invalid_certificates()?
//!     .connect(ServerName::try_from("localhost")?, socket)
//!     .await?;
//! tls.write_all(&[3]).await?; // C0: RTMP version 3, inside TLS
//! tls.flush().await?;
//! assert_eq!(server.await??, 3);
//! # Ok(())
//! # }
//! ```
//!
//! `examples/loopback.rs` serves a certificate from PEM files and verifies it with
//! [`connector::with_roots`].
#![warn(missing_docs)]

mod acceptor;
pub mod connector;
mod prefixed;

pub use acceptor::{TlsAcceptor, TlsError, TlsSettings};
pub use prefixed::Prefixed;
pub use tokio_rustls::{
    client::TlsStream as ClientTlsStream, server::TlsStream as ServerTlsStream,
};

/// The README examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
