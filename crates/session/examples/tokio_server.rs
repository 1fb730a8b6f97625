//! The `blocking_server` example over tokio (feature `tokio`): a listener that serves every connection
//! on its own task, accepts every `connect` and `publish`, and prints each connection's events.
//!
//! ```text
//! cargo run -p rtmp-session --features tokio --example tokio_server -- 127.0.0.1:1935
//! ffmpeg -re -i input.mp4 -c copy -f flv rtmp://127.0.0.1:1935/app/name
//! ```
//!
//! Reads race the session's own deadline (`poll_timeout`), and its buffers go out with
//! [`rtmp_session::io::write_all_vectored`]. The handshake's random bytes come from a clock-seeded
//! generator, enough for an example; a real server passes a proper random source.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rtmp_session::io::write_all_vectored;
use rtmp_session::{RandomFill, ServerEvent, ServerSession, SessionConfig};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// A small xorshift generator seeded from the clock: not cryptographic, fine for a demo handshake.
fn demo_random() -> RandomFill {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    let mut state = nanos | 1;
    Box::new(move |bytes: &mut [u8]| {
        for byte in bytes {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
    })
}

async fn serve(mut socket: TcpStream, peer: String) -> Result<(), Box<dyn std::error::Error>> {
    let mut session = ServerSession::new(SessionConfig::default(), demo_random(), Instant::now());
    let mut buffer = vec![0u8; 64 * 1024];
    let mut transmit = Vec::new();
    loop {
        session.poll_transmit(&mut transmit);
        write_all_vectored(&mut socket, &mut transmit).await?;
        if session.is_closed() {
            return Ok(());
        }
        let deadline = tokio::time::Instant::from_std(session.poll_timeout());
        tokio::select! {
            read = socket.read(&mut buffer) => match read? {
                0 => return Ok(()),
                read => session.handle_input(&buffer[..read], Instant::now())?,
            },
            () = tokio::time::sleep_until(deadline) => session.handle_timeout(Instant::now())?,
        }
        while let Some(event) = session.poll_event() {
            match &event {
                ServerEvent::Media { stream_id, message } => println!(
                    "{peer}: media on stream {stream_id}: type {} at {} ms, {} bytes",
                    message.type_id,
                    message.timestamp,
                    message.payload.len()
                ),
                other => println!("{peer}: {other:?}"),
            }
            match event {
                ServerEvent::Connect(_) => session.accept_connect(),
                ServerEvent::Publish { stream_id, .. } => session.accept_publish(stream_id),
                _ => {}
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:1935".to_owned());
    let listener = TcpListener::bind(&address).await?;
    println!("listening on {address}");
    loop {
        let (socket, peer) = listener.accept().await?;
        let peer = peer.to_string();
        tokio::spawn(async move {
            if let Err(error) = serve(socket, peer.clone()).await {
                println!("{peer}: {error}");
            }
        });
    }
}
