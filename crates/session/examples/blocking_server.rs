//! A minimal blocking RTMP server over `std::net::TcpListener`, no async runtime: it takes one
//! connection, accepts every `connect` and `publish`, and prints that connection's events.
//!
//! ```text
//! cargo run -p rtmp-session --example blocking_server -- 127.0.0.1:1935
//! ffmpeg -re -i input.mp4 -c copy -f flv rtmp://127.0.0.1:1935/app/name
//! ```
//!
//! Timeouts are driven with the socket's read timeout: `poll_timeout` says when `handle_timeout` is due.
//! The handshake's random bytes here come from the clock and the process id, which is enough for an
//! example; a real server passes a proper random source.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtmp_session::{RandomFill, ServerEvent, ServerSession, SessionConfig};

/// A small xorshift generator seeded from the clock: not cryptographic, fine for a demo handshake.
fn demo_random() -> RandomFill {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    let mut state = nanos ^ u64::from(std::process::id()) | 1;
    Box::new(move |bytes: &mut [u8]| {
        for byte in bytes {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
    })
}

fn serve(mut socket: TcpStream) -> Result<(), Box<dyn std::error::Error>> {
    let mut session = ServerSession::new(SessionConfig::default(), demo_random(), Instant::now());
    let mut buffer = vec![0u8; 64 * 1024];
    let mut transmit = Vec::new();
    loop {
        session.poll_transmit(&mut transmit);
        for bytes in transmit.drain(..) {
            match socket.write_all(&bytes) {
                Ok(()) => {}
                // The peer hung up (FFmpeg closes right after its last message).
                Err(error)
                    if matches!(
                        error.kind(),
                        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
                    ) =>
                {
                    println!("connection closed by the peer");
                    return Ok(());
                }
                Err(error) => return Err(error.into()),
            }
        }
        if session.is_closed() {
            return Ok(());
        }
        let wait = session
            .poll_timeout()
            .saturating_duration_since(Instant::now());
        socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        match socket.read(&mut buffer) {
            Ok(0) => {
                println!("connection closed by the peer");
                return Ok(());
            }
            Ok(read) => session.handle_input(&buffer[..read], Instant::now())?,
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                session.handle_timeout(Instant::now())?;
            }
            Err(error) => return Err(error.into()),
        }
        while let Some(event) = session.poll_event() {
            match &event {
                ServerEvent::Media { stream_id, message } => println!(
                    "media on stream {stream_id}: type {} at {} ms, {} bytes",
                    message.type_id,
                    message.timestamp,
                    message.payload.len()
                ),
                other => println!("{other:?}"),
            }
            match event {
                ServerEvent::Connect(_) => session.accept_connect(),
                ServerEvent::Publish { stream_id, .. } => session.accept_publish(stream_id),
                _ => {}
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:1935".to_owned());
    let listener = TcpListener::bind(&address)?;
    println!("listening on {address}");
    let (socket, peer) = listener.accept()?;
    println!("connection from {peer}");
    serve(socket)
}
