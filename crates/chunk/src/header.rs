//! Basic header (fmt + chunk stream id) and timestamp field encoding shared by the encoder and the shared
//! message builder.

use bytes::{BufMut, BytesMut};

/// The largest value the 3-byte timestamp field carries; at or above it, the extended field is used.
pub(crate) const EXTENDED_TIMESTAMP_MARK: u32 = 0xFF_FFFF;

/// Writes the basic header in the shortest form for `csid` (2..=65599).
pub(crate) fn put_basic_header(fmt: u8, csid: u32, out: &mut BytesMut) {
    let fmt_bits = (fmt & 0b11) << 6;
    match csid {
        2..=63 => out.put_u8(fmt_bits | csid as u8),
        64..=319 => {
            out.put_u8(fmt_bits);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            let id = csid.clamp(64, 65599) - 64;
            out.put_u8(fmt_bits | 1);
            out.put_u8((id & 0xFF) as u8);
            out.put_u8((id >> 8) as u8);
        }
    }
}

/// Writes a 24-bit big-endian value.
pub(crate) fn put_u24(value: u32, out: &mut BytesMut) {
    out.put_u8((value >> 16) as u8);
    out.put_u8((value >> 8) as u8);
    out.put_u8(value as u8);
}

/// The 3-byte timestamp field for a timestamp or delta: the value itself, or the extended mark.
pub(crate) fn timestamp_field(value: u32) -> u32 {
    value.min(EXTENDED_TIMESTAMP_MARK)
}
