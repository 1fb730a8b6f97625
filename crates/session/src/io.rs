//! Helpers to write a session's wire buffers to a stream: async over any `AsyncWrite` (tokio), or
//! synchronously with a caller's non-blocking write.

use std::io::IoSlice;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Buffers a writer's vector keeps between writes; a burst (a new player's GOP) grows it only for a while.
const RETAINED_BUFFERS: usize = 16;

/// Buffers handed to one vectored write.
const MAX_SLICES: usize = 64;

/// The buffers from `first` on (at most [`MAX_SLICES`]), as slices for one vectored write.
fn slices_from(buffers: &[Bytes], first: usize) -> ([IoSlice<'_>; MAX_SLICES], usize) {
    let mut slices = [IoSlice::new(&[]); MAX_SLICES];
    let mut count = 0;
    for (slot, buffer) in slices.iter_mut().zip(buffers.iter().skip(first)) {
        *slot = IoSlice::new(buffer);
        count += 1;
    }
    (slices, count)
}

/// Accounts `written` bytes from buffer `first` on: whole buffers move `first` past them, a partly
/// written one keeps its unwritten rest (a slice, no copy).
fn consume(buffers: &mut [Bytes], first: &mut usize, mut written: usize) {
    while written > 0 {
        let Some(buffer) = buffers.get_mut(*first) else {
            break;
        };
        if written >= buffer.len() {
            written -= buffer.len();
            *first += 1;
        } else {
            *buffer = buffer.slice(written..);
            written = 0;
        }
    }
}

/// Writes every buffer with vectored writes, handling partial writes without copying; `buffers` is empty
/// afterwards, and keeps at most room for `RETAINED_BUFFERS` buffers.
pub async fn write_all_vectored<W: AsyncWrite + Unpin>(
    writer: &mut W,
    buffers: &mut Vec<Bytes>,
) -> std::io::Result<()> {
    let mut first = 0;
    while first < buffers.len() {
        let (slices, count) = slices_from(buffers, first);
        let written = writer
            .write_vectored(slices.get(..count).unwrap_or_default())
            .await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        consume(buffers, &mut first, written);
    }
    buffers.clear();
    buffers.shrink_to(RETAINED_BUFFERS);
    writer.flush().await
}

/// Writes buffers with `write_now`, a non-blocking vectored write, until all are written or it fails
/// (`WouldBlock` included). `buffers` keeps what was not written, in order (nothing on success).
pub fn write_all_now(
    buffers: &mut Vec<Bytes>,
    mut write_now: impl FnMut(&[IoSlice<'_>]) -> std::io::Result<usize>,
) -> std::io::Result<()> {
    let mut first = 0;
    let mut outcome = Ok(());
    while first < buffers.len() {
        let (slices, count) = slices_from(buffers, first);
        match write_now(slices.get(..count).unwrap_or_default()) {
            Ok(0) => {
                outcome = Err(std::io::ErrorKind::WriteZero.into());
                break;
            }
            Ok(written) => consume(buffers, &mut first, written),
            Err(error) => {
                outcome = Err(error);
                break;
            }
        }
    }
    buffers.drain(..first);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concat(buffers: &[Bytes]) -> Vec<u8> {
        buffers.iter().flat_map(|b| b.iter().copied()).collect()
    }

    #[test]
    fn write_all_now_keeps_the_unwritten_rest_in_order() {
        let mut buffers: Vec<Bytes> = ["abc", "defg", "h"]
            .iter()
            .map(|s| Bytes::from_static(s.as_bytes()))
            .collect();
        let mut sent = Vec::new();
        let mut room = 5;
        let outcome = write_all_now(&mut buffers, |slices| {
            if room == 0 {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            let all: Vec<u8> = slices.iter().flat_map(|s| s.iter().copied()).collect();
            let taken = all.len().min(room).min(2);
            room -= taken;
            sent.extend_from_slice(&all[..taken]);
            Ok(taken)
        });
        assert_eq!(
            outcome.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::WouldBlock)
        );
        assert_eq!(sent, b"abcde");
        assert_eq!(concat(&buffers), b"fgh");

        let outcome = write_all_now(&mut buffers, |slices| {
            let all: Vec<u8> = slices.iter().flat_map(|s| s.iter().copied()).collect();
            sent.extend_from_slice(&all);
            Ok(all.len())
        });
        assert!(outcome.is_ok());
        assert!(buffers.is_empty());
        assert_eq!(sent, b"abcdefgh");
    }

    #[test]
    fn write_all_now_fails_on_a_write_of_nothing() {
        let mut buffers = vec![Bytes::from_static(b"x")];
        let outcome = write_all_now(&mut buffers, |_| Ok(0));
        assert_eq!(
            outcome.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::WriteZero)
        );
        assert_eq!(concat(&buffers), b"x");
    }

    #[tokio::test]
    async fn a_burst_written_out_does_not_keep_its_room() {
        let mut buffers: Vec<Bytes> = (0..1000).map(|_| Bytes::from_static(b"piece")).collect();
        let mut sink = tokio::io::sink();
        write_all_vectored(&mut sink, &mut buffers)
            .await
            .expect("write");
        assert!(buffers.is_empty());
        assert!(buffers.capacity() <= 16, "capacity {}", buffers.capacity());
    }
}
