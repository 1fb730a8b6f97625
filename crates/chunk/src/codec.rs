//! A `tokio_util::codec` adapter for people who drive the chunk layer with `Framed`.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::{ChunkDecoder, ChunkEncoder, ChunkError, DecoderConfig, Message};

/// Decodes [`Message`]s and encodes `(csid, Message)` pairs. Needs the `tokio-codec` feature.
#[derive(Debug, Default)]
pub struct ChunkCodec {
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
}

impl ChunkCodec {
    /// A codec whose decoder enforces `config`.
    pub fn new(config: DecoderConfig) -> Self {
        Self {
            decoder: ChunkDecoder::new(config),
            encoder: ChunkEncoder::new(),
        }
    }

    /// The chunk decoder, for its settings and counters.
    pub fn decoder_mut(&mut self) -> &mut ChunkDecoder {
        &mut self.decoder
    }

    /// The chunk encoder, e.g. to change its chunk size.
    pub fn encoder_mut(&mut self) -> &mut ChunkEncoder {
        &mut self.encoder
    }
}

/// I/O failure or a chunk stream error. Needs the `tokio-codec` feature.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error(transparent)]
    /// Reading or writing the transport failed.
    Io(#[from] std::io::Error),
    #[error(transparent)]
    /// The chunk stream was malformed.
    Chunk(#[from] ChunkError),
}

impl Decoder for ChunkCodec {
    type Item = Message;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, CodecError> {
        if !src.is_empty() {
            let input = src.split();
            self.decoder.push(&input);
        }
        Ok(self.decoder.next_message()?)
    }
}

impl Encoder<(u32, Message)> for ChunkCodec {
    type Error = CodecError;

    fn encode(
        &mut self,
        (csid, message): (u32, Message),
        dst: &mut BytesMut,
    ) -> Result<(), CodecError> {
        self.encoder.encode(csid, &message, dst);
        Ok(())
    }
}
