//! Enhanced RTMP: a modern FFmpeg (9, from the imageio-ffmpeg wheel) publishes HEVC and AV1 with FourCC
//! tag headers and plays them back through rtmpx, bit-exact. A player that did not announce the FourCC in
//! `connect` (FFmpeg 5.1) gets the audio and no enhanced video.

use rtmpx_interop::{Fixture, Player, Publisher, Scenario, Via};

/// The fixtures' audio stream (video is stream 0).
const AUDIO: usize = 1;

#[test]
fn hevc_over_enhanced_rtmp_round_trips_bit_exact() {
    Scenario::new("hevc_over_enhanced_rtmp_round_trips_bit_exact")
        .stream(
            "live/hevc",
            Fixture::HevcAac,
            Publisher::Ffmpeg9Enhanced,
            Via::Rtmp,
        )
        .play(Player::Ffmpeg9Enhanced.via(Via::Rtmp))
        .play(Player::Ffmpeg.via(Via::Rtmp).only_streams(&[AUDIO]))
        .run();
}

#[test]
fn av1_over_enhanced_rtmp_round_trips_bit_exact() {
    Scenario::new("av1_over_enhanced_rtmp_round_trips_bit_exact")
        .stream(
            "live/av1",
            Fixture::Av1Aac,
            Publisher::Ffmpeg9Enhanced,
            Via::Rtmp,
        )
        .play(Player::Ffmpeg9Enhanced.via(Via::Rtmp))
        .run();
}
