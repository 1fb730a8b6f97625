//! The tunnel over real loopback HTTP: exact response framing (what librtmp parses), open/send/idle/close,
//! pipelining, unknown sessions, expiry, and bytes flowing both ways.

use std::net::SocketAddr;
use std::time::Duration;

use rtmp_rtmpt::server::{NewTunnel, RtmptConfig, RtmptServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

async fn start(config: RtmptConfig) -> (SocketAddr, RtmptServer, mpsc::Receiver<NewTunnel>) {
    let (server, tunnels) = RtmptServer::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let serving = server.clone();
    tokio::spawn(async move {
        while let Ok((socket, peer)) = listener.accept().await {
            let serving = serving.clone();
            tokio::spawn(async move { serving.serve_connection(socket, peer, false).await });
        }
    });
    (address, server, tunnels)
}

fn request(path: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-fcs\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Reads one response; returns (head, body).
async fn response(socket: &mut TcpStream) -> (String, Vec<u8>) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        socket.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("title-case Content-Length with one space, as librtmp parses it")
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; length];
    socket.read_exact(&mut body).await.unwrap();
    (head, body)
}

#[tokio::test]
async fn open_send_idle_close_with_exact_framing() {
    let (address, server, mut tunnels) = start(RtmptConfig::default()).await;
    let mut socket = TcpStream::connect(address).await.unwrap();
    socket.write_all(&request("/open/1", &[0])).await.unwrap();
    let (head, body) = response(&mut socket).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(head.contains("Content-Type: application/x-fcs"));
    assert_eq!(body.len(), 17);
    assert_eq!(
        body[16], b'\n',
        "the id ends with a newline (librtmp drops the last byte)"
    );
    let id = String::from_utf8(body[..16].to_vec()).unwrap();
    let mut tunnel = tunnels.recv().await.unwrap().stream;

    // Client bytes reach the RTMP side; the RTMP side's answer comes back after the polling byte.
    socket
        .write_all(&request(&format!("/send/{id}/0"), b"\x03hello"))
        .await
        .unwrap();
    let (_, first) = response(&mut socket).await;
    assert_eq!(first[0], 1);
    let mut got = [0u8; 6];
    tunnel.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"\x03hello");
    tunnel.write_all(b"world").await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    socket
        .write_all(&request(&format!("/idle/{id}/1"), &[0]))
        .await
        .unwrap();
    let (_, polled) = response(&mut socket).await;
    assert_eq!(polled, b"\x01world");

    // Pipelined requests are answered in order.
    let mut pipelined = request(&format!("/idle/{id}/2"), &[0]);
    pipelined.extend(request(&format!("/idle/{id}/3"), &[0]));
    socket.write_all(&pipelined).await.unwrap();
    assert_eq!(response(&mut socket).await.1, vec![1]);
    assert_eq!(response(&mut socket).await.1, vec![1]);

    socket
        .write_all(&request(&format!("/close/{id}/4"), &[0]))
        .await
        .unwrap();
    assert_eq!(response(&mut socket).await.1, vec![0]);
    assert_eq!(server.session_count(), 0);
    let mut rest = Vec::new();
    assert_eq!(
        tunnel.read_to_end(&mut rest).await.unwrap(),
        0,
        "the RTMP side reads end of file"
    );
}

#[tokio::test]
async fn unknown_sessions_and_bad_requests_get_http_errors() {
    let (address, _server, _tunnels) = start(RtmptConfig::default()).await;
    let mut socket = TcpStream::connect(address).await.unwrap();
    socket
        .write_all(&request("/idle/0123456789abcdef/0", &[0]))
        .await
        .unwrap();
    assert!(response(&mut socket).await.0.starts_with("HTTP/1.1 404"));
    socket
        .write_all(&request("/fcs/ident2", &[0]))
        .await
        .unwrap();
    assert!(response(&mut socket).await.0.starts_with("HTTP/1.1 404"));
    socket
        .write_all(b"GET /open/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(response(&mut socket).await.0.starts_with("HTTP/1.1 405"));
}

#[tokio::test]
async fn bodies_are_capped_and_idle_sessions_expire() {
    let config = RtmptConfig {
        idle_timeout: Duration::from_millis(100),
        max_body: 1024,
        ..RtmptConfig::default()
    };
    let (address, server, mut tunnels) = start(config).await;
    let mut socket = TcpStream::connect(address).await.unwrap();
    socket.write_all(&request("/open/1", &[0])).await.unwrap();
    let id = String::from_utf8(response(&mut socket).await.1[..16].to_vec()).unwrap();
    let mut tunnel = tunnels.recv().await.unwrap().stream;
    socket
        .write_all(&request(&format!("/send/{id}/0"), &[0u8; 2048]))
        .await
        .unwrap();
    assert!(response(&mut socket).await.0.starts_with("HTTP/1.1 413"));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(server.expire_idle_sessions(), 1);
    let mut rest = Vec::new();
    assert_eq!(
        tunnel.read_to_end(&mut rest).await.unwrap(),
        0,
        "an expired session ends its RTMP stream"
    );
}

#[tokio::test]
async fn megabytes_flow_both_ways() {
    let (address, _server, mut tunnels) = start(RtmptConfig::default()).await;
    let mut socket = TcpStream::connect(address).await.unwrap();
    socket.write_all(&request("/open/1", &[0])).await.unwrap();
    let id = String::from_utf8(response(&mut socket).await.1[..16].to_vec()).unwrap();
    let mut tunnel = tunnels.recv().await.unwrap().stream;
    // The RTMP side echoes everything.
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 65536];
        while let Ok(n) = tunnel.read(&mut buffer).await {
            if n == 0 || tunnel.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
    });
    let total = 8 * 1024 * 1024;
    let chunk: Vec<u8> = (0..32 * 1024).map(|i| (i % 251) as u8).collect();
    let (mut sent, mut received, mut seq) = (0usize, Vec::new(), 0u64);
    while received.len() < total {
        let body: &[u8] = if sent < total { &chunk } else { &[0] };
        let command = if sent < total { "send" } else { "idle" };
        socket
            .write_all(&request(&format!("/{command}/{id}/{seq}"), body))
            .await
            .unwrap();
        seq += 1;
        if sent < total {
            sent += chunk.len();
        }
        let (_, answer) = response(&mut socket).await;
        received.extend_from_slice(&answer[1..]);
    }
    assert_eq!(received.len(), total);
    assert!(received.chunks(chunk.len()).all(|c| c == &chunk[..c.len()]));
}

#[tokio::test]
async fn a_full_queue_holds_the_rtmp_side_back_until_the_client_polls() {
    let config = RtmptConfig {
        max_queued: 4096,
        ..RtmptConfig::default()
    };
    let (address, _server, mut tunnels) = start(config).await;
    let mut socket = TcpStream::connect(address).await.unwrap();
    socket.write_all(&request("/open/1", &[0])).await.unwrap();
    let id = String::from_utf8(response(&mut socket).await.1[..16].to_vec()).unwrap();
    let mut tunnel = tunnels.recv().await.unwrap().stream;
    let total = 64 * 1024;
    let written = tokio::spawn(async move {
        let data: Vec<u8> = (0..total).map(|i| (i % 253) as u8).collect();
        tunnel.write_all(&data).await.unwrap();
        tunnel
    });
    let mut received = Vec::new();
    for seq in 0u64.. {
        socket
            .write_all(&request(&format!("/idle/{id}/{seq}"), &[0]))
            .await
            .unwrap();
        let (_, answer) = response(&mut socket).await;
        assert!(
            answer.len() <= 1 + 4096,
            "an answer carries at most the queue"
        );
        received.extend_from_slice(&answer[1..]);
        if received.len() == total {
            break;
        }
        tokio::task::yield_now().await;
    }
    let tunnel = written.await.unwrap();
    assert!(received
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i % 253) as u8));
    // The RTMP side closes: the next answer's polling byte is 0 and the session is gone.
    drop(tunnel);
    socket
        .write_all(&request(&format!("/idle/{id}/100000"), &[0]))
        .await
        .unwrap();
    assert_eq!(response(&mut socket).await.1, vec![0]);
    socket
        .write_all(&request(&format!("/idle/{id}/100001"), &[0]))
        .await
        .unwrap();
    assert!(response(&mut socket).await.0.starts_with("HTTP/1.1 404"));
}
