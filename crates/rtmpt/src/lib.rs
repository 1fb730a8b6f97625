//! RTMPT: the unchanged RTMP byte stream carried in HTTP/1.1 POST bodies (PROTOCOL.md §3).
//!
//! * [`route`] (no runtime): what a request path means (`/open/1`, `/send/<id>/<seq>`, `/idle/...`,
//!   `/close/...`, `/fcs/ident2`) and the polling-interval byte (1 while data flows; 3, 5, 9, 17, 33
//!   after ten empty answers in a row, as Red5 does).
//! * [`table`] (no runtime, no clock, no randomness): the session table. Session ids from random bytes
//!   the caller draws (URL-safe, never a counter), sequence numbers, idle expiry at the caller's `now`,
//!   the bytes queued each way, and the caps (sessions, queued bytes, request body size).
//! * [`server`] (feature `server`, hyper): thin over the table; serves HTTP connections (keep-alive,
//!   pipelining, answered in order and at once) and turns every tunnel session into an `RtmptStream`, a
//!   duplex byte stream the unchanged RTMP session core runs on. RTMPTE needs nothing more: the RTMPE
//!   bytes ride the same tunnel.
//! * [`client`] (feature `client`): the other end, for rtmpx's own client and tests.
//!
//! The tunnel server over loopback, with a client speaking raw HTTP to it (the `tunnel` example does the
//! same with [`client`]):
//!
//! ```
//! # #[cfg(feature = "server")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use rtmp_rtmpt::server::{RtmptConfig, RtmptServer};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let (server, mut tunnels) = RtmptServer::new(RtmptConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let address = listener.local_addr()?;
//! tokio::spawn(async move {
//!     let (socket, peer) = listener.accept().await.expect("one connection");
//!     server.serve_connection(socket, peer, false).await
//! });
//! let mut http = tokio::net::TcpStream::connect(address).await?;
//! http.write_all(b"POST /open/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n\0").await?;
//! // The tunnel session arrives as a duplex byte stream for the RTMP session core.
//! let tunnel = tunnels.recv().await.expect("the session /open/1 made");
//! println!("tunnel from {}", tunnel.peer);
//! # let mut answer = [0u8; 12];
//! # http.read_exact(&mut answer).await?;
//! # assert_eq!(&answer, b"HTTP/1.1 200");
//! # Ok(()) }
//! # #[cfg(not(feature = "server"))]
//! # fn main() {}
//! ```

#![warn(missing_docs)]

#[cfg(feature = "client")]
pub mod client;
pub mod route;
#[cfg(feature = "server")]
pub mod server;
pub mod table;
