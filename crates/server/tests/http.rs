//! The HTTP front on every HTTP listener and the API listener, spoken to with raw HTTP/1.1 as librtmp
//! and FFmpeg speak it.

use std::time::Duration;

use rtmpx::{Config, Server};

mod support;

async fn start() -> Server {
    support::start(Config::default(), true, true).await
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
}

#[tokio::test]
async fn unknown_paths_get_404_on_the_http_and_shared_ports() {
    let server = start().await;
    let [shared, http] = [0, 1].map(|i| server.local_addresses()[i]);
    for address in [shared, http] {
        let answer = support::exchange(address, &get("/live/stream.txt")).await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{address}: {answer}");
        assert!(answer.ends_with("not found\n"), "{address}: {answer}");
    }
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn the_tunnel_answers_pipelined_requests_with_title_case_headers() {
    let server = start().await;
    let http = server.local_addresses()[1];
    let open = "POST /open/1 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-fcs\r\n\
                Content-Length: 1\r\n\r\n\0";
    let requests = format!("{open}{}", get("/idle/0/0"));
    let answer = support::exchange(http, &requests).await;
    let (opened, rest) = answer.split_once("\r\n\r\n").unwrap();
    assert!(opened.starts_with("HTTP/1.1 200"), "{answer}");
    // librtmp looks for "Content-Length" exactly so.
    assert!(opened.contains("Content-Length: 17"), "{answer}");
    assert!(
        rest.contains("HTTP/1.1 405"),
        "a GET to the tunnel: {answer}"
    );
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn the_api_listener_answers_healthz_and_json_404() {
    let server = start().await;
    let api = server.api_addresses()[0];
    assert!(!server.local_addresses().contains(&api));
    let answer = support::exchange(api, &get("/healthz")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("application/json"), "{answer}");
    assert!(answer.ends_with(r#"{"status":"ok"}"#), "{answer}");
    let answer = support::exchange(api, &get("/api/v1/nothing")).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(answer.ends_with(r#"{"error":"not found"}"#), "{answer}");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn an_empty_api_list_disables_the_api() {
    let server = support::start(Config::default(), false, false).await;
    assert!(server.api_addresses().is_empty());
    server.shutdown(Duration::from_secs(1)).await;
}
