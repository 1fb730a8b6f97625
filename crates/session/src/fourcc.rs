//! Enhanced RTMP codec identifiers (FourCCs) and the set of them a client announced in `connect`, so a
//! frame's codec is checked against it without building text per frame.

/// An Enhanced RTMP codec identifier, e.g. `hvc1`, `av01`, `Opus`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    /// The FourCC spelled by `text`, which must be exactly four bytes.
    pub fn parse(text: &str) -> Option<Self> {
        <[u8; 4]>::try_from(text.as_bytes()).ok().map(Self)
    }

    /// The four bytes, as on the wire.
    pub const fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }
}

impl std::fmt::Display for FourCc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl std::fmt::Debug for FourCc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FourCc({self})")
    }
}

/// FourCCs a list keeps; a peer announcing more cannot make the session remember (or search) them all.
const MAX_LISTED: usize = 64;

/// The codecs an Enhanced RTMP client announced (`fourCcList`, or the keys of `videoFourCcInfoMap` /
/// `audioFourCcInfoMap`): listed FourCCs, or any codec (`"*"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FourCcList {
    any: bool,
    listed: Vec<FourCc>,
}

impl FourCcList {
    /// Adds one announced entry: `"*"` for any codec, or a FourCC; anything else, and entries past the
    /// first 64 FourCCs, are ignored.
    pub fn add(&mut self, text: &str) {
        if text == "*" {
            self.any = true;
        } else if let Some(fourcc) = FourCc::parse(text) {
            if self.listed.len() < MAX_LISTED && !self.listed.contains(&fourcc) {
                self.listed.push(fourcc);
            }
        }
    }

    /// Whether the client takes media in `fourcc`.
    pub fn accepts(&self, fourcc: FourCc) -> bool {
        self.any || self.listed.contains(&fourcc)
    }

    /// Whether the client announced `"*"` (any codec).
    pub fn accepts_any(&self) -> bool {
        self.any
    }

    /// The FourCCs listed by name.
    pub fn listed(&self) -> &[FourCc] {
        &self.listed
    }
}

impl<'a> FromIterator<&'a str> for FourCcList {
    fn from_iter<I: IntoIterator<Item = &'a str>>(entries: I) -> Self {
        let mut list = Self::default();
        entries.into_iter().for_each(|entry| list.add(entry));
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_take_four_byte_codes_and_the_wildcard_only() {
        let list: FourCcList = ["hvc1", "av1", "Opus", "hvc1"].into_iter().collect();
        assert_eq!(
            list.listed(),
            [FourCc(*b"hvc1"), FourCc(*b"Opus")].as_slice()
        );
        assert!(list.accepts(FourCc(*b"hvc1")));
        assert!(!list.accepts(FourCc(*b"av01")));
        let any: FourCcList = ["*"].into_iter().collect();
        assert!(any.accepts(FourCc(*b"av01")));
    }
}
