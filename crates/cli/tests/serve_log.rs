//! The built `rtmpx serve` and its log: a TLS client that sends an IP address as SNI (GStreamer's rtmps
//! client does) is logged at debug, not warned about on every connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A TLS 1.2 ClientHello naming `name` in its server_name extension.
fn client_hello_with_sni(name: &str) -> Vec<u8> {
    let name = name.as_bytes();
    let name_len = name.len() as u16;
    let mut server_name = Vec::new();
    server_name.extend_from_slice(&(name_len + 3).to_be_bytes());
    server_name.push(0); // host_name
    server_name.extend_from_slice(&name_len.to_be_bytes());
    server_name.extend_from_slice(name);
    let mut extensions = vec![0, 0]; // server_name
    extensions.extend_from_slice(&(server_name.len() as u16).to_be_bytes());
    extensions.extend_from_slice(&server_name);

    let mut hello = vec![3, 3];
    hello.extend_from_slice(&[7; 32]); // random
    hello.push(0); // no session id
    hello.extend_from_slice(&[0, 2, 0xC0, 0x2F]); // TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    hello.extend_from_slice(&[1, 0]); // no compression
    hello.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    hello.extend_from_slice(&extensions);

    let mut handshake = vec![1]; // client_hello
    handshake.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 3, 1];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn connect_when_listening(address: SocketAddr, server: &mut Child) -> TcpStream {
    for _ in 0..500 {
        if let Ok(stream) = TcpStream::connect(address) {
            return stream;
        }
        assert!(server.try_wait().unwrap().is_none(), "the server stopped");
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the server never listened on {address}");
}

fn wait_for_line(log: &Path, containing: &str) -> String {
    for _ in 0..250 {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|line| line.contains(containing)) {
            return line.to_owned();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "no log line with {containing:?}:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[cfg(unix)]
#[test]
fn an_ip_address_as_sni_is_logged_at_debug_not_warned() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("rtmpx.log");
    let (shared, tls, http) = (free_address(), free_address(), free_address());
    let mut server = Command::new(env!("CARGO_BIN_EXE_rtmpx"))
        .args(["serve", "--log-level", "debug"])
        .args(["--listen", &shared.to_string()])
        .args(["--listen-tls", &tls.to_string()])
        .args(["--listen-http", &http.to_string()])
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let mut client = connect_when_listening(shared, &mut server);
    client
        .write_all(&client_hello_with_sni("127.0.0.1"))
        .unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = client.read(&mut [0u8; 1024]);
    let line = wait_for_line(&log, "Illegal SNI");
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    assert!(
        line.contains("DEBUG") && !line.contains("WARN"),
        "logged as {line}"
    );
}
