//! Our client commands against another server: `rtmpx publish`, `rtmpx play` and `rtmpx probe` with
//! nginx-rtmp (Debian's libnginx-mod-rtmp) in the middle, judged by FFmpeg.

use std::process::Command;
use std::time::Duration;

use rtmpx_interop::clients::ffmpeg;
use rtmpx_interop::server::NginxRtmp;
use rtmpx_interop::{
    assert_contiguous_run, enabled, fixtures, framemd5, run_with_timeout, scratch, Background,
};

const LIMIT: Duration = Duration::from_secs(40);

#[test]
fn rtmpx_publish_and_play_through_nginx_rtmp_bit_exact() {
    if !enabled("rtmpx_publish_and_play_through_nginx_rtmp_bit_exact") {
        return;
    }
    let dir = scratch("peer-nginx");
    let fixture = fixtures::h264_aac();
    let nginx = NginxRtmp::start();
    let binary = rtmpx_interop::server::binary();
    let played = dir.path().join("played.flv");
    let mut play = Command::new(&binary);
    play.args(["play", &nginx.url("live/peer"), "-o"])
        .arg(&played);
    let mut player = Background::spawn("rtmpx play", &mut play, &dir.path().join("play.log"));
    std::thread::sleep(Duration::from_millis(800));

    let mut publisher = Command::new(&binary);
    publisher
        .arg("publish")
        .arg(&fixture)
        .arg(nginx.url("live/peer"));
    let mut publisher =
        Background::spawn("rtmpx publish", &mut publisher, &dir.path().join("pub.log"));
    // While the stream is live, probe it through nginx too.
    std::thread::sleep(Duration::from_millis(1500));
    let mut probe = Command::new(&binary);
    probe.args(["probe", &nginx.url("live/peer")]);
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
    let sent = framemd5(&ffmpeg(), &fixture);
    assert_contiguous_run(&sent, &framemd5(&ffmpeg(), &played), 0.9);
}
