//! A chunk-stream echo over `std::net::TcpStream`, with no async runtime: a server thread decodes the
//! messages it receives and sends each one back; the client sends a few, switching to a larger chunk
//! size on the way, and checks what comes back.
//!
//! The RTMP handshake is left out (see `rtmp-handshake`): both ends speak chunks from the first byte.
//!
//! ```text
//! cargo run -p rtmp-chunk --example echo
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use bytes::{Bytes, BytesMut};
use rtmp_chunk::{csid, AmfEncoding, ChunkDecoder, ChunkEncoder, Message, RtmpMessage};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One end of a chunk stream over a blocking socket.
struct ChunkSocket {
    socket: TcpStream,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
}

impl ChunkSocket {
    fn new(socket: TcpStream) -> Self {
        Self {
            socket,
            decoder: ChunkDecoder::default(),
            encoder: ChunkEncoder::new(),
        }
    }

    /// Sends one message; a Set Chunk Size also switches our own encoder, after it is sent.
    fn send(&mut self, csid: u32, message: &Message) -> Result<(), Error> {
        let mut out = BytesMut::new();
        self.encoder.encode(csid, message, &mut out);
        self.socket.write_all(&out)?;
        if let Ok(RtmpMessage::SetChunkSize(size)) = RtmpMessage::decode(message) {
            self.encoder.set_chunk_size(size)?;
        }
        Ok(())
    }

    /// The next message, `None` when the peer closed the connection between messages.
    fn receive(&mut self) -> Result<Option<Message>, Error> {
        let mut buffer = [0u8; 4096];
        loop {
            // The decoder applies the peer's Set Chunk Size itself.
            if let Some(message) = self.decoder.next_message()? {
                return Ok(Some(message));
            }
            let read = self.socket.read(&mut buffer)?;
            if read == 0 {
                return match self.decoder.buffered() {
                    0 => Ok(None),
                    _ => Err("connection closed in the middle of a message".into()),
                };
            }
            self.decoder.push(&buffer[..read]);
        }
    }
}

/// The chunk stream each kind of message travels on, as RTMP servers choose them.
fn csid_for(message: &Message) -> u32 {
    match RtmpMessage::decode(message) {
        Ok(RtmpMessage::SetChunkSize(_) | RtmpMessage::WindowAckSize(_)) => csid::PROTOCOL_CONTROL,
        Ok(RtmpMessage::Audio(_)) => csid::AUDIO,
        Ok(RtmpMessage::Video(_)) => csid::VIDEO,
        Ok(RtmpMessage::Data { .. }) => csid::DATA,
        _ => csid::COMMAND,
    }
}

fn serve(socket: TcpStream) -> Result<usize, Error> {
    let mut connection = ChunkSocket::new(socket);
    let mut echoed = 0;
    while let Some(message) = connection.receive()? {
        connection.send(csid_for(&message), &message)?;
        echoed += 1;
    }
    Ok(echoed)
}

fn main() -> Result<(), Error> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let server = std::thread::spawn(move || -> Result<usize, Error> {
        let (socket, _) = listener.accept()?;
        serve(socket)
    });

    let mut client = ChunkSocket::new(TcpStream::connect(address)?);
    let messages = [
        RtmpMessage::Command {
            encoding: AmfEncoding::Amf0,
            payload: Bytes::from_static(b"\x02\x00\x07connect\x00\x3f\xf0\0\0\0\0\0\0\x05"),
        }
        .into_message(0, 0),
        RtmpMessage::SetChunkSize(4096).into_message(0, 0),
        // Larger than 128 bytes: split into several chunks before and one chunk after the switch.
        RtmpMessage::Video(Bytes::from(vec![0x17; 3000])).into_message(40, 1),
        RtmpMessage::Audio(Bytes::from(vec![0xAF; 200])).into_message(46, 1),
    ];
    for message in &messages {
        client.send(csid_for(message), message)?;
        let echo = client
            .receive()?
            .ok_or("the server closed the connection")?;
        println!(
            "type {:2} stream {} ts {:3}: {:5} bytes echoed (incoming chunk size {})",
            echo.type_id,
            echo.stream_id,
            echo.timestamp,
            echo.payload.len(),
            client.decoder.chunk_size()
        );
        assert_eq!(&echo, message);
    }
    client.socket.shutdown(std::net::Shutdown::Write)?;
    let echoed = server.join().map_err(|_| "server thread panicked")??;
    println!("{echoed} messages echoed");
    Ok(())
}
