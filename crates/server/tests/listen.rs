//! The listeners' kernel accept queue: a burst of connections (an audience reconnecting at once) must wait
//! there, complete, instead of being dropped for TCP's SYN retries.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const BURST: usize = 500;

#[tokio::test]
async fn a_burst_of_connections_completes_in_the_accept_queue() {
    let config = rtmpx::Config::default();
    assert!(config.listen_backlog as usize > BURST);
    let listener =
        rtmpx::listener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config.listen_backlog)
            .expect("bind");
    let address = listener.local_addr().expect("local address");
    // Nothing accepts while the burst connects: each connection must find room in the queue at once
    // (a dropped SYN would be retried only after a second, past the timeout).
    let completed = tokio::task::spawn_blocking(move || {
        (0..BURST)
            .map_while(|_| TcpStream::connect_timeout(&address, Duration::from_millis(500)).ok())
            .collect::<Vec<_>>()
    })
    .await
    .expect("connecting thread");
    assert_eq!(
        completed.len(),
        BURST,
        "connections completed without an accept"
    );
    drop(listener);
}
