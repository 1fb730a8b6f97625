//! RTMPS against real clients: FFmpeg and rtmpdump (GnuTLS) and GStreamer (GLib TLS) over TLS, on the
//! TLS-only listener and on the shared one, with the self-signed default and a user certificate.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use rtmpx_interop::clients::{
    ffmpeg, ffmpeg_player, ffmpeg_publisher, gst_player, gst_publisher, rtmpdump_player,
};
use rtmpx_interop::{assert_contiguous_run, enabled, fixtures, framemd5, scratch, RtmpxServer};

const LIMIT: Duration = Duration::from_secs(40);

#[test]
fn ffmpeg_and_rtmpdump_over_rtmps_bit_exact() {
    if !enabled("ffmpeg_and_rtmpdump_over_rtmps_bit_exact") {
        return;
    }
    let dir = scratch("rtmps");
    let fixture = fixtures::h264_aac();
    let server = RtmpxServer::start(&[]);
    let played = dir.path().join("played.flv");
    let dumped = dir.path().join("dumped.flv");
    let mut player = ffmpeg_player(
        &ffmpeg(),
        &server.rtmps_url("live/tls"),
        &played,
        &dir.path().join("player.log"),
        &[],
    );
    let mut dumper = rtmpdump_player(
        &server.rtmps_shared_url("live/tls"),
        &dumped,
        &dir.path().join("rtmpdump.log"),
    );
    server.wait_for_players("live/tls", 2, LIMIT);
    let url = server.rtmps_shared_url("live/tls");
    let mut publisher = ffmpeg_publisher(
        &ffmpeg(),
        &fixture,
        &url,
        &dir.path().join("publisher.log"),
        &[],
    );
    assert!(
        publisher.wait(LIMIT).success(),
        "publisher: {}",
        publisher.log()
    );
    player.wait(LIMIT);
    dumper.wait(LIMIT);
    let sent = framemd5(&ffmpeg(), &fixture);
    assert_contiguous_run(&sent, &framemd5(&ffmpeg(), &played), 0.9);
    assert_contiguous_run(&sent, &framemd5(&ffmpeg(), &dumped), 0.9);
    assert!(server.log().contains("transport=\"rtmps\""));
}

#[test]
fn gstreamer_publishes_and_plays_over_rtmps() {
    if !enabled("gstreamer_publishes_and_plays_over_rtmps") {
        return;
    }
    let dir = scratch("rtmps-gst");
    let fixture = fixtures::h264_aac();
    let server = RtmpxServer::start(&[]);
    let url = server.rtmps_url("live/gst");
    let played = dir.path().join("played.flv");
    // GStreamer validates certificates; tls-validation-flags=0 accepts the self-signed default.
    let mut player = gst_player(
        &url,
        &["tls-validation-flags=0"],
        &played,
        &dir.path().join("player.log"),
    );
    std::thread::sleep(Duration::from_millis(700));
    let mut publisher = gst_publisher(
        &fixture,
        &[
            "rtmp2sink",
            &format!("location={url}"),
            "tls-validation-flags=0",
        ],
        &dir.path().join("publisher.log"),
    );
    assert!(
        publisher.wait(LIMIT).success(),
        "rtmp2sink: {}",
        publisher.log()
    );
    std::thread::sleep(Duration::from_millis(1000));
    player.signal("INT");
    player.wait(LIMIT);
    assert_contiguous_run(
        &framemd5(&ffmpeg(), &fixture),
        &framemd5(&ffmpeg(), &played),
        0.8,
    );
}

#[test]
fn user_certificate_is_served_and_reloaded_on_sighup() {
    if !enabled("user_certificate_is_served_and_reloaded_on_sighup") {
        return;
    }
    let dir = scratch("rtmps-cert");
    let write = |name: &str| {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(dir.path().join(format!("{name}.crt")), generated.cert.pem()).unwrap();
        std::fs::write(
            dir.path().join(format!("{name}.key")),
            generated.signing_key.serialize_pem(),
        )
        .unwrap();
    };
    write("server");
    let cert = dir.path().join("server.crt");
    let key = dir.path().join("server.key");
    let server = RtmpxServer::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(
        server.log().contains("RTMPS certificate loaded"),
        "log:\n{}",
        server.log()
    );
    // A real client gets through with the user's certificate.
    let fixture = fixtures::h264_aac();
    let played = dir.path().join("played.flv");
    let mut player = ffmpeg_player(
        &ffmpeg(),
        &server.rtmps_url("live/c"),
        &played,
        &dir.path().join("player.log"),
        &[],
    );
    std::thread::sleep(Duration::from_millis(700));
    let mut publisher = ffmpeg_publisher(
        &ffmpeg(),
        &fixture,
        &server.url("live/c"),
        &dir.path().join("pub.log"),
        &[],
    );
    assert!(publisher.wait(LIMIT).success());
    player.wait(LIMIT);
    assert_contiguous_run(
        &framemd5(&ffmpeg(), &fixture),
        &framemd5(&ffmpeg(), &played),
        0.9,
    );
    // SIGHUP reloads a replaced certificate.
    write("next");
    std::fs::rename(dir.path().join("next.crt"), &cert).unwrap();
    std::fs::rename(dir.path().join("next.key"), &key).unwrap();
    let _ = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status();
    let started = std::time::Instant::now();
    while !server.log().contains("RTMPS certificate reloaded") {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no reload logged:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn plain_rtmp_or_garbage_on_the_tls_port_is_closed_cleanly() {
    if !enabled("plain_rtmp_or_garbage_on_the_tls_port_is_closed_cleanly") {
        return;
    }
    let server = RtmpxServer::start(&[]);
    for first in [
        &[3u8; 1537][..],
        b"GET / HTTP/1.1\r\n\r\n",
        &[0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5, 6, 7][..],
    ] {
        let mut socket = TcpStream::connect(server.tls_address).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(12)))
            .unwrap();
        socket.write_all(first).unwrap();
        let mut reply = Vec::new();
        let result = socket.read_to_end(&mut reply);
        assert!(
            result.is_ok() || reply.is_empty(),
            "connection not closed: {result:?}"
        );
        assert!(
            reply.len() < 100,
            "no RTMP handshake on the TLS port ({} bytes back)",
            reply.len()
        );
    }
    // The server still serves afterwards.
    assert!(TcpStream::connect(server.tls_address).is_ok());
}
