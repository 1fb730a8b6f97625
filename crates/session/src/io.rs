//! Async helpers to drive a session over any `AsyncRead + AsyncWrite` stream (tokio).

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Buffers a writer's vector keeps between writes; a burst (a new player's GOP) grows it only for a while.
const RETAINED_BUFFERS: usize = 16;

/// Writes every buffer with vectored writes, handling partial writes without copying; `buffers` is empty
/// afterwards, and keeps at most room for [`RETAINED_BUFFERS`].
pub async fn write_all_vectored<W: AsyncWrite + Unpin>(
    writer: &mut W,
    buffers: &mut Vec<Bytes>,
) -> std::io::Result<()> {
    const MAX_SLICES: usize = 64;
    let mut first = 0;
    while first < buffers.len() {
        let mut slices = [std::io::IoSlice::new(&[]); MAX_SLICES];
        let mut count = 0;
        for (slot, buffer) in slices.iter_mut().zip(buffers.iter().skip(first)) {
            *slot = std::io::IoSlice::new(buffer);
            count += 1;
        }
        let mut written = writer
            .write_vectored(slices.get(..count).unwrap_or_default())
            .await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let Some(buffer) = buffers.get_mut(first) else {
                break;
            };
            if written >= buffer.len() {
                written -= buffer.len();
                first += 1;
            } else {
                *buffer = buffer.slice(written..);
                written = 0;
            }
        }
    }
    buffers.clear();
    buffers.shrink_to(RETAINED_BUFFERS);
    writer.flush().await
}
