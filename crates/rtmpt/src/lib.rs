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

#[cfg(feature = "client")]
pub mod client;
pub mod route;
#[cfg(feature = "server")]
pub mod server;
pub mod table;
