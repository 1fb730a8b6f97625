//! A client and a server session wired to each other in memory: the client connects, creates a
//! stream, publishes `live/demo` and sends one video message; every event the server sees is printed.
//!
//! No sockets, no runtime: bytes are moved between the two sessions by hand, with fixed random bytes and
//! one synthetic `now`. Run with `cargo run -p rtmp-session --example in_memory`.

use std::time::Instant;

use bytes::Bytes;
use rtmp_chunk::{type_id, Message};
use rtmp_session::{
    ClientEvent, ClientOptions, ClientSession, RandomFill, ServerEvent, ServerSession,
    SessionConfig, SessionError,
};

fn fixed_random(byte: u8) -> RandomFill {
    Box::new(move |bytes: &mut [u8]| bytes.fill(byte))
}

/// Moves bytes both ways until neither side has anything to send; the server accepts everything.
fn pump(
    client: &mut ClientSession,
    server: &mut ServerSession,
    now: Instant,
    client_events: &mut Vec<ClientEvent>,
) -> Result<(), SessionError> {
    loop {
        let mut to_server = Vec::new();
        client.poll_transmit(&mut to_server);
        let mut to_client = Vec::new();
        server.poll_transmit(&mut to_client);
        if to_server.is_empty() && to_client.is_empty() {
            return Ok(());
        }
        server.handle_input(&to_server.concat(), now)?;
        while let Some(event) = server.poll_event() {
            println!("server: {event:?}");
            match event {
                ServerEvent::Connect(_) => server.accept_connect(),
                ServerEvent::Publish { stream_id, .. } => server.accept_publish(stream_id),
                _ => {}
            }
        }
        client.handle_input(&to_client.concat(), now)?;
        client_events.extend(std::iter::from_fn(|| client.poll_event()));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let now = Instant::now();
    let options = ClientOptions::new("live", "rtmp://127.0.0.1/live");
    let mut client = ClientSession::new(SessionConfig::default(), options, fixed_random(1), now);
    let mut server = ServerSession::new(SessionConfig::default(), fixed_random(2), now);
    let mut client_events = Vec::new();

    pump(&mut client, &mut server, now, &mut client_events)?;
    client.create_stream();
    pump(&mut client, &mut server, now, &mut client_events)?;
    let stream_id = client_events
        .iter()
        .find_map(|event| match event {
            ClientEvent::StreamCreated { stream_id } => Some(*stream_id),
            _ => None,
        })
        .ok_or("the server created no stream")?;
    client.publish(stream_id, "demo");
    pump(&mut client, &mut server, now, &mut client_events)?;

    // An AVC keyframe header (FLV video tag body), as an encoder would send first.
    let video = Message {
        timestamp: 0,
        type_id: type_id::VIDEO,
        stream_id,
        payload: Bytes::from_static(&[0x17, 0x00, 0x00, 0x00, 0x00]),
    };
    client.send_message(stream_id, &video);
    pump(&mut client, &mut server, now, &mut client_events)?;

    for event in &client_events {
        println!("client: {event:?}");
    }
    Ok(())
}
