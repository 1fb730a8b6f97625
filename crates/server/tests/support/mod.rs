//! The in-memory RTMP client the server's own tests drive it with: the session crate's client role
//! over a tokio `TcpStream`, pumped by hand (`until`), with fixed random bytes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtmp_session::{
    io::write_all_vectored, ClientEvent, ClientOptions, ClientSession, SessionConfig,
};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A connected client.
pub struct Client {
    pub session: ClientSession,
    pub socket: TcpStream,
}

impl Client {
    /// Connects to `address` with `options` and waits for the `connect` to be accepted.
    pub async fn connect_with(address: SocketAddr, options: ClientOptions) -> Client {
        let session = ClientSession::new(
            SessionConfig::default(),
            options,
            Box::new(|bytes: &mut [u8]| bytes.fill(0x5a)),
            Instant::now(),
        );
        let socket = TcpStream::connect(address).await.unwrap();
        let mut client = Client { session, socket };
        client
            .until(|e| matches!(e, ClientEvent::Connected { .. }))
            .await;
        client
    }

    /// Writes what the session queued.
    pub async fn flush(&mut self) {
        let mut out = Vec::new();
        self.session.poll_transmit(&mut out);
        write_all_vectored(&mut self.socket, &mut out)
            .await
            .unwrap();
    }

    /// Pumps until an event matches; returns every event seen.
    pub async fn until(&mut self, done: impl Fn(&ClientEvent) -> bool) -> Vec<ClientEvent> {
        let mut seen = Vec::new();
        let mut buffer = vec![0u8; 65536];
        loop {
            self.flush().await;
            while let Some(event) = self.session.poll_event() {
                let finished = done(&event);
                seen.push(event);
                if finished {
                    return seen;
                }
            }
            let n = tokio::time::timeout(Duration::from_secs(5), self.socket.read(&mut buffer))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "server closed; events so far: {seen:?}");
            self.session
                .handle_input(&buffer[..n], Instant::now())
                .unwrap();
        }
    }

    /// Creates a stream; its id.
    pub async fn create_stream(&mut self) -> u32 {
        self.session.create_stream();
        let events = self
            .until(|e| matches!(e, ClientEvent::StreamCreated { .. }))
            .await;
        match events.last() {
            Some(ClientEvent::StreamCreated { stream_id }) => *stream_id,
            other => panic!("{other:?}"),
        }
    }
}
