//! What a server makes of a stream besides playing it: recordings, LL-HLS (and, later, relays).

pub mod hls;
pub mod recorder;
