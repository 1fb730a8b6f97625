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
#![warn(missing_docs)]

mod acceptor;
pub mod connector;
mod prefixed;

pub use acceptor::{TlsAcceptor, TlsError, TlsSettings};
pub use prefixed::Prefixed;
pub use tokio_rustls::{
    client::TlsStream as ClientTlsStream, server::TlsStream as ServerTlsStream,
};
