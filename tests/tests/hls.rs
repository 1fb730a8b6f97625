//! LL-HLS against real FFmpeg: what FFmpeg publishes over RTMP, FFmpeg reads back from
//! `http://127.0.0.1:PORT/live/NAME/index.m3u8` (`-c copy -f framemd5`) with the same payloads in order,
//! for H.264/AAC (FFmpeg 5.1) and HEVC/AAC and AV1/AAC over Enhanced RTMP (FFmpeg 9).

use std::path::Path;
use std::time::{Duration, Instant};

use rtmpx_interop::http::get;
use rtmpx_interop::{enabled, framemd5, scratch, Fixture, Publisher, RtmpxServer, Via};

fn served_bit_exact(test: &str, fixture: Fixture, publisher: Publisher, name: &str) {
    if !enabled(test) {
        return;
    }
    let dir = scratch(test);
    let server = RtmpxServer::start_with_config(
        dir.path(),
        "[app.live]\nhls = true\nhls_window = 30\n",
        &[],
    );
    let mut publishing = publisher.spawn(
        &fixture.path(),
        &Via::Rtmp.url(&server, &format!("live/{name}")),
        &dir.path().join("publisher.log"),
    );
    assert!(publishing.wait(Duration::from_secs(30)).success());
    let path = format!("/live/{name}/index.m3u8");
    let started = Instant::now();
    loop {
        let (_, answer) = get(server.http_address, &path);
        if answer.contains("#EXT-X-ENDLIST") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no ended playlist: {answer}\nserver log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let url = format!("http://{}{path}", server.http_address);
    let served = framemd5(&fixture.judge(), Path::new(&url));
    assert_eq!(served, fixture.reference(), "server log:\n{}", server.log());
}

#[test]
fn ffmpeg_reads_h264_aac_from_ll_hls() {
    served_bit_exact(
        "ffmpeg_reads_h264_aac_from_ll_hls",
        Fixture::H264Aac,
        Publisher::Ffmpeg,
        "h264",
    );
}

#[test]
fn ffmpeg9_reads_hevc_aac_from_ll_hls() {
    served_bit_exact(
        "ffmpeg9_reads_hevc_aac_from_ll_hls",
        Fixture::HevcAac,
        Publisher::Ffmpeg9Enhanced,
        "hevc",
    );
}

#[test]
fn ffmpeg9_reads_av1_aac_from_ll_hls() {
    served_bit_exact(
        "ffmpeg9_reads_av1_aac_from_ll_hls",
        Fixture::Av1Aac,
        Publisher::Ffmpeg9Enhanced,
        "av1",
    );
}
