//! A bounds-checked cursor over untrusted bytes, shared by the AMF0 and AMF3 decoders.

use crate::AmfError;

#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    /// A reader over the same input, positioned at `offset`.
    pub(crate) fn at(&self, offset: usize) -> Self {
        Self {
            input: self.input,
            pos: offset.min(self.input.len()),
        }
    }

    pub(crate) fn input_len(&self) -> usize {
        self.input.len()
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn peek_u8(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], AmfError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.input.len())
            .ok_or(AmfError::UnexpectedEof {
                offset: self.pos,
                needed: n.saturating_sub(self.remaining()),
            })?;
        let bytes = self
            .input
            .get(self.pos..end)
            .ok_or(AmfError::UnexpectedEof {
                offset: self.pos,
                needed: n,
            })?;
        self.pos = end;
        Ok(bytes)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], AmfError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, AmfError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, AmfError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i16(&mut self) -> Result<i16, AmfError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, AmfError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn f64(&mut self) -> Result<f64, AmfError> {
        Ok(f64::from_be_bytes(self.array()?))
    }

    pub(crate) fn utf8(&mut self, len: usize) -> Result<String, AmfError> {
        let offset = self.pos;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| AmfError::InvalidUtf8 { offset })
    }

    /// Fails unless `count` items of at least `min_item_len` bytes each can still be present.
    pub(crate) fn check_count(
        &self,
        what: &'static str,
        count: u64,
        min_item_len: usize,
    ) -> Result<(), AmfError> {
        let needed = count.saturating_mul(min_item_len as u64);
        if needed > self.remaining() as u64 {
            return Err(AmfError::LengthExceedsInput {
                what,
                claimed: count,
                available: self.remaining(),
                offset: self.pos,
            });
        }
        Ok(())
    }
}
