//! RTMPT: the unchanged RTMP byte stream carried in HTTP/1.1 POST bodies (PROTOCOL.md §3).
//!
//! * [`route`] (no runtime): what a request path means (`/open/1`, `/send/<id>/<seq>`, `/idle/...`,
//!   `/close/...`, `/fcs/ident2`), session ids (random, URL-safe, never a counter) and the polling-interval
//!   byte (1 while data flows; 3, 5, 9, 17, 33 after ten empty answers in a row, as Red5 does).
//! * [`server`] (feature `server`, hyper): serves HTTP connections (keep-alive, pipelining, answered in
//!   order and at once) and turns every tunnel session into an `RtmptStream`, a duplex byte stream the
//!   unchanged RTMP session core runs on. RTMPTE needs nothing more: the RTMPE bytes ride the same tunnel.
//!   Sessions that are never closed expire; request bodies are size-capped; an unknown session gets 404.
//! * [`client`] (feature `client`): the other end, for rtmpx's own client and tests.

#[cfg(feature = "client")]
pub mod client;
pub mod route;
#[cfg(feature = "server")]
pub mod server;
