//! RTMPS against real clients: FFmpeg and rtmpdump (GnuTLS) and GStreamer (GLib TLS) over TLS, on the
//! TLS-only listener and on the shared one, with the self-signed default and a user certificate.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use rtmpx_interop::{enabled, scratch, Fixture, Player, Publisher, RtmpxServer, Scenario, Via};

#[test]
fn ffmpeg_and_rtmpdump_over_rtmps_bit_exact() {
    Scenario::new("ffmpeg_and_rtmpdump_over_rtmps_bit_exact")
        .stream(
            "live/tls",
            Fixture::H264Aac,
            Publisher::Ffmpeg,
            Via::RtmpsShared,
        )
        .play(Player::Ffmpeg.via(Via::Rtmps))
        .play(Player::Rtmpdump.via(Via::RtmpsShared))
        .run();
}

/// GStreamer validates certificates; the runner passes tls-validation-flags=0 for the self-signed default.
#[test]
fn gstreamer_publishes_and_plays_over_rtmps() {
    Scenario::new("gstreamer_publishes_and_plays_over_rtmps")
        .stream(
            "live/gst",
            Fixture::H264Aac,
            Publisher::GstRtmp2,
            Via::Rtmps,
        )
        .at_least(0.8)
        .play(Player::Gst.via(Via::Rtmps))
        .run();
}

#[test]
fn user_certificate_is_served_and_reloaded_on_sighup() {
    let name = "user_certificate_is_served_and_reloaded_on_sighup";
    if !enabled(name) {
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
    // A real client gets through with the user's certificate.
    let Some(ran) = Scenario::new(name)
        .server_args(&[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ])
        .stream("live/c", Fixture::H264Aac, Publisher::Ffmpeg, Via::Rtmp)
        .play(Player::Ffmpeg.via(Via::Rtmps))
        .server_log("RTMPS certificate loaded")
        .run()
    else {
        return;
    };
    let server = ran.server;
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
