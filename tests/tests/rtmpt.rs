//! RTMPT (HTTP tunnel), RTMPTS (tunnel over TLS) and RTMPTE (RTMPE inside the tunnel) against the real
//! clients that speak them, with plain RTMP players beside them on the same stream. Over RTMPT a publishing
//! FFmpeg drops its last buffered packets when it closes (PROTOCOL.md §3.5), hence "most of the stream".

use rtmpx_interop::{Fixture, Player, Publisher, Scenario, Via};

#[test]
fn ffmpeg_and_rtmpdump_over_rtmpt_and_rtmpts_beside_plain_players() {
    Scenario::new("ffmpeg_and_rtmpdump_over_rtmpt_and_rtmpts_beside_plain_players")
        .stream(
            "live/tunnel",
            Fixture::H264Aac,
            Publisher::Ffmpeg,
            Via::Rtmpt,
        )
        .at_least(0.85)
        .play(Player::Ffmpeg.via(Via::Rtmpt))
        .play(Player::Ffmpeg.via(Via::Rtmpts))
        .play(Player::Ffmpeg.via(Via::Rtmp))
        .play(Player::Rtmpdump.via(Via::RtmptShared))
        .run();
}

/// FFmpeg 9 and rtmpdump over RTMPTE; GStreamer's librtmp sink publishes another stream over RTMPTE at the
/// same time.
#[test]
fn rtmpte_with_ffmpeg9_rtmpdump_and_gstreamer() {
    Scenario::new("rtmpte_with_ffmpeg9_rtmpdump_and_gstreamer")
        .stream("live/te", Fixture::H264Aac, Publisher::Ffmpeg9, Via::Rtmpte)
        .at_least(0.85)
        .play(Player::Ffmpeg9.via(Via::Rtmpte))
        .play(Player::Rtmpdump.via(Via::Rtmpte))
        .stream(
            "live/gst",
            Fixture::H264Aac,
            Publisher::GstLibrtmp,
            Via::Rtmpte,
        )
        .at_least(0.8)
        .play(Player::Ffmpeg.via(Via::Rtmp))
        .run();
}
