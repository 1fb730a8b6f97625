//! FLV files: reading tags to publish them, writing what a player receives. Only the container framing;
//! payloads are the RTMP message bodies, untouched.

use std::io::{self, Read, Write};

use bytes::Bytes;
use rtmp_chunk::Message;

/// Reads the tags of an FLV file as RTMP messages (audio 8, video 9, script data 18).
#[derive(Debug)]
pub struct FlvReader<R> {
    input: R,
}

impl<R: Read> FlvReader<R> {
    /// Checks the FLV header and skips to the first tag.
    pub fn new(mut input: R) -> io::Result<Self> {
        let mut header = [0u8; 9];
        input.read_exact(&mut header)?;
        if &header[..3] != b"FLV" {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not an FLV file",
            ));
        }
        let data_offset = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) as usize;
        let mut skip = vec![0u8; data_offset.saturating_sub(9) + 4];
        input.read_exact(&mut skip)?;
        Ok(Self { input })
    }

    /// The next tag, or `None` at the end of the file.
    pub fn next_message(&mut self) -> io::Result<Option<Message>> {
        let mut header = [0u8; 11];
        match self.input.read_exact(&mut header) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(error) => return Err(error),
        }
        let type_id = header[0] & 0x1F;
        let size = u32::from_be_bytes([0, header[1], header[2], header[3]]) as usize;
        let timestamp = u32::from_be_bytes([header[7], header[4], header[5], header[6]]);
        let mut payload = vec![0u8; size];
        self.input.read_exact(&mut payload)?;
        let mut previous_size = [0u8; 4];
        // The last tag's back pointer may be missing in truncated files.
        let _ = self.input.read_exact(&mut previous_size);
        Ok(Some(Message {
            timestamp,
            type_id,
            stream_id: 1,
            payload: Bytes::from(payload),
        }))
    }
}

/// Writes RTMP messages as an FLV file (audio and video flags set). Each tag goes to the output in one
/// `write_all`, so an unbuffered output stopped between two messages holds whole tags only.
#[derive(Debug)]
pub struct FlvWriter<W> {
    output: W,
    tag: Vec<u8>,
}

/// Bytes of a tag header (the back pointer after a tag counts them with the payload).
const TAG_HEADER_LEN: usize = 11;

impl<W: Write> FlvWriter<W> {
    /// Writes the FLV header (audio and video flagged) and returns the writer.
    pub fn new(mut output: W) -> io::Result<Self> {
        output.write_all(&[b'F', b'L', b'V', 1, 0x05, 0, 0, 0, 9, 0, 0, 0, 0])?;
        Ok(Self {
            output,
            tag: Vec::new(),
        })
    }

    /// Appends one audio, video or script-data message as a tag. A payload too large for FLV's 24-bit
    /// size is refused.
    pub fn write_message(&mut self, message: &Message) -> io::Result<()> {
        let size = u32::try_from(message.payload.len())
            .ok()
            .filter(|size| *size < 1 << 24)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a message over 16 MiB does not fit an FLV tag",
                )
            })?;
        let ts = message.timestamp.to_be_bytes();
        let size_bytes = size.to_be_bytes();
        self.tag.clear();
        self.tag.extend_from_slice(&[
            message.type_id,
            size_bytes[1],
            size_bytes[2],
            size_bytes[3],
            ts[1],
            ts[2],
            ts[3],
            ts[0],
            0,
            0,
            0,
        ]);
        self.tag.extend_from_slice(&message.payload);
        self.tag
            .extend_from_slice(&(size + TAG_HEADER_LEN as u32).to_be_bytes());
        self.output.write_all(&self.tag)
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.output.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_back_tags_with_extended_timestamps() {
        let messages = vec![
            Message {
                timestamp: 0,
                type_id: 18,
                stream_id: 1,
                payload: Bytes::from_static(b"\x02\x00\x0aonMetaData"),
            },
            Message {
                timestamp: 40,
                type_id: 9,
                stream_id: 1,
                payload: Bytes::from_static(&[0x17, 1, 2]),
            },
            Message {
                timestamp: 0x0123_4567,
                type_id: 8,
                stream_id: 1,
                payload: Bytes::from_static(&[0xAF, 1]),
            },
        ];
        let mut file = Vec::new();
        let mut writer = FlvWriter::new(&mut file).unwrap();
        for message in &messages {
            writer.write_message(message).unwrap();
        }
        let mut reader = FlvReader::new(file.as_slice()).unwrap();
        let mut read = Vec::new();
        while let Some(message) = reader.next_message().unwrap() {
            read.push(message);
        }
        assert_eq!(read, messages);
        assert!(FlvReader::new(&b"NOT A FLV"[..]).is_err());
    }
}
