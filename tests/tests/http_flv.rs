//! HTTP-FLV against real clients: FFmpeg reads `http://HOST/APP/NAME.flv` and `https://` on the TLS port
//! while FFmpeg publishes over RTMP; what it received must be a contiguous, bit-identical run of what was
//! published.

use rtmpx_interop::{Fixture, Player, Publisher, Scenario, Via};

#[test]
fn ffmpeg_reads_http_flv_and_https_flv_bit_exact() {
    Scenario::new("ffmpeg_reads_http_flv_and_https_flv_bit_exact")
        .stream("live/web", Fixture::H264Aac, Publisher::Ffmpeg, Via::Rtmp)
        .play(Player::Ffmpeg.via(Via::HttpFlv))
        .play(Player::Ffmpeg.via(Via::HttpsFlv))
        .server_log("variant=\"http-flv\"")
        .server_log("cause=\"unpublished\"")
        .run();
}
