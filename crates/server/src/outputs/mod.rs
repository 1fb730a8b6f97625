//! What a server makes of a stream besides playing it: recordings (and, later, HLS and relays).

pub mod recorder;
pub mod recorder_api;
pub mod recordings;
