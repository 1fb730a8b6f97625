//! The in-memory client/server pair the session tests share: both roles with a fixed "random" source
//! and a virtual clock, pumped until quiet, the server's decisions made by the test.
#![allow(dead_code)]

use std::time::Instant;

use rtmp_session::{
    ClientEvent, ClientOptions, ClientSession, RandomFill, ServerEvent, ServerSession,
    SessionConfig,
};

/// A fixed "random" source: the exchange is the same on every run.
pub fn fixed_random(byte: u8) -> RandomFill {
    Box::new(move |bytes: &mut [u8]| bytes.fill(byte))
}

pub struct Pair {
    pub client: ClientSession,
    pub server: ServerSession,
    pub now: Instant,
    pub server_events: Vec<ServerEvent>,
    pub client_events: Vec<ClientEvent>,
}

impl Pair {
    pub fn new() -> Self {
        Self::with_options(ClientOptions::new("live", "rtmp://127.0.0.1/live"))
    }

    pub fn with_options(options: ClientOptions) -> Self {
        let now = Instant::now();
        let config = SessionConfig::default();
        Self {
            client: ClientSession::new(config.clone(), options, fixed_random(0x11), now),
            server: ServerSession::new(config, fixed_random(0x22), now),
            now,
            server_events: Vec::new(),
            client_events: Vec::new(),
        }
    }

    /// Moves bytes both ways until quiet, answering the server's decisions with `decide`.
    pub fn pump(&mut self, decide: &mut dyn FnMut(&mut ServerSession, &ServerEvent)) {
        for _ in 0..50 {
            let mut out = Vec::new();
            self.client.poll_transmit(&mut out);
            let to_server: Vec<u8> = out.concat();
            let mut out = Vec::new();
            self.server.poll_transmit(&mut out);
            let to_client: Vec<u8> = out.concat();
            if to_server.is_empty() && to_client.is_empty() {
                return;
            }
            self.server.handle_input(&to_server, self.now).unwrap();
            while let Some(event) = self.server.poll_event() {
                decide(&mut self.server, &event);
                self.server_events.push(event);
            }
            self.client.handle_input(&to_client, self.now).unwrap();
            while let Some(event) = self.client.poll_event() {
                self.client_events.push(event);
            }
        }
        panic!("the pair never went quiet");
    }
}

pub fn accept_all(server: &mut ServerSession, event: &ServerEvent) {
    match event {
        ServerEvent::Connect(_) => server.accept_connect(),
        ServerEvent::Publish { stream_id, .. } => server.accept_publish(*stream_id),
        ServerEvent::Play {
            stream_id,
            stream_name,
            ..
        } => server.accept_play(*stream_id, stream_name),
        _ => {}
    }
}
