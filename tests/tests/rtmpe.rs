//! RTMPE (Diffie-Hellman + RC4 "encrypted" RTMP) against the real clients that speak it: FFmpeg 9
//! publishes and plays, rtmpdump plays, GStreamer's librtmp-based `rtmpsink` publishes. Bit-exact.

use rtmpx_interop::{Fixture, Player, Publisher, Scenario, Via};

#[test]
fn ffmpeg9_publishes_and_plays_over_rtmpe_and_rtmpdump_plays_too() {
    Scenario::new("ffmpeg9_publishes_and_plays_over_rtmpe_and_rtmpdump_plays_too")
        .stream(
            "live/secret",
            Fixture::H264Aac,
            Publisher::Ffmpeg9,
            Via::Rtmpe,
        )
        .play(Player::Ffmpeg9.via(Via::Rtmpe))
        .play(Player::Rtmpdump.via(Via::Rtmpe))
        .run();
}

#[test]
fn gstreamer_librtmp_sink_publishes_over_rtmpe() {
    Scenario::new("gstreamer_librtmp_sink_publishes_over_rtmpe")
        .stream(
            "live/gst",
            Fixture::H264Aac,
            Publisher::GstLibrtmp,
            Via::Rtmpe,
        )
        .at_least(0.8)
        .play(Player::Ffmpeg.via(Via::Rtmp))
        .run();
}
