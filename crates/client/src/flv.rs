//! FLV files over `std::io`: reading tags to publish them, writing what a player receives. The container
//! itself is `rtmp-flv`'s; this module only moves the bytes. Payloads are the RTMP message bodies,
//! untouched.

use std::io::{self, Read, Write};

use rtmp_chunk::Message;
use rtmp_flv::{FlvError, FlvHeader, ReaderConfig, Tag, TagReader, TagWriter};

/// Bytes read from the input at a time.
const READ_SIZE: usize = 64 * 1024;

fn invalid(error: FlvError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// Reads the tags of an FLV file as RTMP messages (audio 8, video 9, script data 18) on message stream 1.
/// PreviousTagSize fields are not checked: files from lax muxers play too.
#[derive(Debug)]
pub struct FlvReader<R> {
    input: R,
    reader: TagReader,
    read_buffer: Vec<u8>,
    /// A tag read along with the header.
    pending: Option<Tag>,
}

impl<R: Read> FlvReader<R> {
    /// Checks the FLV header.
    pub fn new(input: R) -> io::Result<Self> {
        let config = ReaderConfig {
            max_tag_size: (1 << 24) - 1,
            check_previous_tag_size: false,
        };
        let mut this = Self {
            input,
            reader: TagReader::new(config),
            read_buffer: vec![0; READ_SIZE],
            pending: None,
        };
        while this.reader.header().is_none() {
            if this.fill()? == 0 {
                return Err(invalid(
                    this.reader.finish().err().unwrap_or(FlvError::NotFlv),
                ));
            }
            this.pending = this.reader.next_tag().map_err(invalid)?;
        }
        Ok(this)
    }

    fn fill(&mut self) -> io::Result<usize> {
        let count = self.input.read(&mut self.read_buffer)?;
        self.reader
            .push(self.read_buffer.get(..count).unwrap_or_default());
        Ok(count)
    }

    /// The next tag, or `None` at the end of the file; a file cut inside a tag is an error.
    pub fn next_message(&mut self) -> io::Result<Option<Message>> {
        if let Some(tag) = self.pending.take() {
            return Ok(Some(tag.into_message(1)));
        }
        loop {
            if let Some(tag) = self.reader.next_tag().map_err(invalid)? {
                return Ok(Some(tag.into_message(1)));
            }
            if self.fill()? == 0 {
                self.reader.finish().map_err(invalid)?;
                return Ok(None);
            }
        }
    }
}

/// Writes RTMP messages as an FLV file (audio and video flags set). Each tag goes to the output in one
/// `write_all`, so an unbuffered output stopped between two messages holds whole tags only.
#[derive(Debug)]
pub struct FlvWriter<W> {
    output: W,
    writer: TagWriter,
}

impl<W: Write> FlvWriter<W> {
    /// Writes the FLV header.
    pub fn new(mut output: W) -> io::Result<Self> {
        let mut writer = TagWriter::new();
        output.write_all(&writer.file_header(FlvHeader::default()))?;
        Ok(Self { output, writer })
    }

    /// Appends one audio, video or script-data message as a tag; other message types are skipped. A
    /// payload too large for FLV's 24-bit size is refused.
    pub fn write_message(&mut self, message: &Message) -> io::Result<()> {
        let Some(tag) = Tag::from_message(message) else {
            return Ok(());
        };
        let bytes = self
            .writer
            .tag(&tag)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        self.output.write_all(&bytes)
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.output.flush()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

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
        assert!(FlvReader::new(&b""[..]).is_err());
        // A file cut inside a tag is an error after the whole tags.
        let mut reader = FlvReader::new(&file[..file.len() - 6]).unwrap();
        assert!(reader.next_message().unwrap().is_some());
        assert!(reader.next_message().unwrap().is_some());
        assert!(reader.next_message().is_err());
    }
}
