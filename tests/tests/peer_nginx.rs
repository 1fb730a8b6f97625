//! Our client commands against another server: `rtmpx publish`, `rtmpx play` and `rtmpx probe` with
//! nginx-rtmp (Debian's libnginx-mod-rtmp) in the middle, judged by FFmpeg.

use std::process::Command;
use std::time::Duration;

use rtmpx_interop::scenario::LIMIT;
use rtmpx_interop::server::NginxRtmp;
use rtmpx_interop::{
    assert_contiguous_run, enabled, framemd5, run_with_timeout, scratch, Fixture, Player, Publisher,
};

#[test]
fn rtmpx_publish_and_play_through_nginx_rtmp_bit_exact() {
    if !enabled("rtmpx_publish_and_play_through_nginx_rtmp_bit_exact") {
        return;
    }
    let dir = scratch("peer-nginx");
    let nginx = NginxRtmp::start();
    let url = nginx.url("live/peer");
    let played = dir.path().join("played.flv");
    let mut player = Player::Rtmpx.spawn(&url, &played, &dir.path().join("play.log"));
    std::thread::sleep(Duration::from_millis(800));
    let mut publisher =
        Publisher::Rtmpx.spawn(&Fixture::H264Aac.path(), &url, &dir.path().join("pub.log"));
    // While the stream is live, probe it through nginx too.
    std::thread::sleep(Duration::from_millis(1500));
    let mut probe = Command::new(rtmpx_interop::server::binary());
    probe.args(["probe", &url]);
    let output = run_with_timeout(&mut probe, LIMIT);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "rtmpx probe against nginx-rtmp: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("avc1"), "probe saw no H.264 stream:\n{text}");

    assert!(
        publisher.wait(LIMIT).success(),
        "rtmpx publish to nginx-rtmp: {}",
        publisher.log()
    );
    // With `publish_notify on`, nginx-rtmp tells players the publisher left (UnpublishNotify) and our
    // player exits on it; without it nginx keeps idle players connected and silent.
    assert!(
        player.wait(LIMIT).success(),
        "rtmpx play from nginx-rtmp: {}\nnginx: {}",
        player.log(),
        nginx.log()
    );
    let played = framemd5(&Fixture::H264Aac.judge(), &played);
    assert_contiguous_run(&Fixture::H264Aac.reference(), &played, 0.9);
}
