//! What a server makes of a stream besides playing it: recordings, HTTP-FLV and WS-FLV players,
//! LL-HLS, the built-in page (and, later, relays).

pub mod hls;
pub mod http_flv;
pub mod page;
pub mod recorder;
pub mod recorder_api;
pub mod recordings;
