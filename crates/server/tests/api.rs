//! The API listener: routes, the bearer token, errors, and a kick ending a connection, spoken to with
//! raw HTTP/1.1 against an in-process server.

use std::time::Duration;

use rtmpx::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;

const TOKEN: &str = "s3cret";

async fn start(token: Option<&str>) -> Server {
    let config = Config {
        api_token: token.map(str::to_owned),
        ..Config::default()
    };
    support::start(config, false, true).await
}

/// Sends one request and returns the status code and the body.
async fn request(server: &Server, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let authorization = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    support::request(server.api_addresses()[0], method, path, &authorization, "").await
}

/// Opens an RTMP connection and sends C0 and C1, waiting for S0: the server now has it registered.
async fn rtmp_connection(server: &Server) -> TcpStream {
    let mut socket = TcpStream::connect(server.local_addresses()[0])
        .await
        .unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.extend(std::iter::repeat_n(0u8, 1536));
    socket.write_all(&c0c1).await.unwrap();
    let mut s0 = [0u8; 1];
    socket.read_exact(&mut s0).await.unwrap();
    socket
}

#[tokio::test]
async fn probes_and_routes_answer_json() {
    let server = start(None).await;
    assert_eq!(
        request(&server, "GET", "/healthz", None).await,
        (200, r#"{"status":"ok"}"#.into())
    );
    assert_eq!(request(&server, "GET", "/readyz", None).await.0, 200);
    server.set_ready(false);
    assert_eq!(request(&server, "GET", "/readyz", None).await.0, 503);
    server.set_ready(true);
    let (status, body) = request(&server, "GET", "/api/v1/server", None).await;
    assert_eq!(status, 200);
    assert!(
        body.contains(r#""version""#) && body.contains(r#""listeners""#),
        "{body}"
    );
    let (status, body) = request(&server, "GET", "/api/v1/streams", None).await;
    assert_eq!((status, body.as_str()), (200, r#"{"streams":[]}"#));
    let (status, body) = request(&server, "GET", "/api/v1/streams/live/none", None).await;
    assert_eq!(
        (status, body.as_str()),
        (404, r#"{"error":"no such stream"}"#)
    );
    let (status, body) = request(&server, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE rtmpx_connections gauge"), "{body}");
    assert!(body.contains("rtmpx_build_info{version="), "{body}");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn unknown_routes_and_malformed_ids_are_json_errors() {
    let server = start(None).await;
    let (status, body) = request(&server, "GET", "/api/v1/nothing", None).await;
    assert_eq!((status, body.as_str()), (404, r#"{"error":"not found"}"#));
    let (status, body) = request(&server, "DELETE", "/api/v1/clients/abc", None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.starts_with(r#"{"error":"#), "{body}");
    let (status, _) = request(&server, "DELETE", "/api/v1/clients/-1", None).await;
    assert_eq!(status, 400);
    let (status, body) = request(&server, "DELETE", "/api/v1/clients/999", None).await;
    assert_eq!(
        (status, body.as_str()),
        (404, r#"{"error":"no such client"}"#)
    );
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn the_token_is_asked_for_on_every_route_but_the_probes() {
    let server = start(Some(TOKEN)).await;
    assert_eq!(request(&server, "GET", "/healthz", None).await.0, 200);
    assert_eq!(request(&server, "GET", "/readyz", None).await.0, 200);
    for path in [
        "/api/v1/server",
        "/api/v1/clients",
        "/metrics",
        "/api/v1/nothing",
    ] {
        let (status, body) = request(&server, "GET", path, None).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body.starts_with(r#"{"error":"#), "{body}");
        assert_eq!(
            request(&server, "GET", path, Some("wrong")).await.0,
            401,
            "{path}"
        );
    }
    assert_eq!(
        request(&server, "GET", "/api/v1/server", Some(TOKEN))
            .await
            .0,
        200
    );
    assert_eq!(
        request(&server, "GET", "/metrics", Some(TOKEN)).await.0,
        200
    );
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn an_open_api_without_a_token_refuses_to_start() {
    let config = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        listen_tls: vec![],
        listen_http: vec![],
        listen_api: vec!["0.0.0.0:0".parse().unwrap()],
        ..Config::default()
    };
    let error = Server::start(&config).await.unwrap_err();
    assert!(error.to_string().contains("set api_token"), "{error}");
    assert!(config.validate().is_err());
}

#[tokio::test]
async fn a_kick_ends_the_connection() {
    let server = start(None).await;
    let mut connection = rtmp_connection(&server).await;
    let (status, body) = request(&server, "GET", "/api/v1/clients", None).await;
    assert_eq!(status, 200);
    assert!(
        body.contains(r#""id":1"#) && body.contains(r#""variant":"rtmp""#),
        "{body}"
    );
    assert!(body.contains(r#""role":"idle""#), "{body}");
    let (status, body) = request(&server, "GET", "/api/v1/server", None).await;
    assert!(
        body.contains(r#""connections":{"rtmp":1}"#),
        "{status} {body}"
    );
    assert_eq!(
        request(&server, "DELETE", "/api/v1/clients/1", None)
            .await
            .0,
        200
    );
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), connection.read_to_end(&mut rest))
        .await
        .expect("the kicked connection is closed")
        .ok();
    // The registry forgets it once its task ends.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, body) = request(&server, "GET", "/api/v1/clients", None).await;
        if body == r#"{"clients":[]}"# {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, metrics) = request(&server, "GET", "/metrics", None).await;
    assert!(
        metrics.contains(r#"rtmpx_connection_ends_total{reason="kicked"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"rtmpx_connections_accepted_total{variant="rtmp"} 1"#),
        "{metrics}"
    );
    server.shutdown(Duration::from_secs(1)).await;
}
