//! The digest ("complex") handshake arithmetic: keys, offsets of the two schemes, HMAC-SHA256 digests.

use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::HANDSHAKE_SIZE;

const KEY_TAIL: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];
pub(crate) const FP_KEY_PARTIAL: &[u8] = b"Genuine Adobe Flash Player 001";
pub(crate) const FMS_KEY_PARTIAL: &[u8] = b"Genuine Adobe Flash Media Server 001";

pub(crate) fn fp_key_full() -> Vec<u8> {
    [FP_KEY_PARTIAL, &KEY_TAIL].concat()
}

pub(crate) fn fms_key_full() -> Vec<u8> {
    [FMS_KEY_PARTIAL, &KEY_TAIL].concat()
}

/// The two layouts of C1/S1 (PROTOCOL.md 1.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Digest offset from bytes 8..12, DH key offset from bytes 1532..1536.
    Zero,
    /// Digest offset from bytes 772..776, DH key offset from bytes 768..772.
    One,
}

fn byte_sum(block: &[u8; HANDSHAKE_SIZE], at: usize) -> usize {
    block.iter().skip(at).take(4).map(|&b| usize::from(b)).sum()
}

/// Where the 32-byte digest sits in a C1/S1 block.
pub fn digest_offset(block: &[u8; HANDSHAKE_SIZE], scheme: Scheme) -> usize {
    match scheme {
        Scheme::Zero => byte_sum(block, 8) % 728 + 12,
        Scheme::One => byte_sum(block, 772) % 728 + 776,
    }
}

/// Where the 128-byte Diffie-Hellman public key sits in a C1/S1 block (RTMPE).
pub fn dh_offset(block: &[u8; HANDSHAKE_SIZE], scheme: Scheme) -> usize {
    match scheme {
        Scheme::Zero => byte_sum(block, 1532) % 632 + 772,
        Scheme::One => byte_sum(block, 768) % 632 + 8,
    }
}

pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut mac =
        <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The HMAC over every byte of the block except the 32 at `offset`.
pub(crate) fn block_digest(block: &[u8; HANDSHAKE_SIZE], offset: usize, key: &[u8]) -> [u8; 32] {
    let (before, rest) = block.split_at(offset.min(HANDSHAKE_SIZE));
    let after = rest.get(32..).unwrap_or_default();
    hmac_sha256(key, &[before, after])
}

pub(crate) fn stored_digest(block: &[u8; HANDSHAKE_SIZE], offset: usize) -> [u8; 32] {
    let mut digest = [0u8; 32];
    if let Some(stored) = block.get(offset..offset + 32) {
        digest.copy_from_slice(stored);
    }
    digest
}

/// Writes the digest of the block at the scheme's offset; returns the digest.
pub(crate) fn sign_block(block: &mut [u8; HANDSHAKE_SIZE], scheme: Scheme, key: &[u8]) -> [u8; 32] {
    let offset = digest_offset(block, scheme);
    let digest = block_digest(block, offset, key);
    if let Some(slot) = block.get_mut(offset..offset + 32) {
        slot.copy_from_slice(&digest);
    }
    digest
}

/// The scheme whose digest validates with `key`, and the digest.
pub(crate) fn find_digest(
    block: &[u8; HANDSHAKE_SIZE],
    key: &[u8],
    order: [Scheme; 2],
) -> Option<(Scheme, [u8; 32])> {
    order.into_iter().find_map(|scheme| {
        let offset = digest_offset(block, scheme);
        let digest = stored_digest(block, offset);
        (block_digest(block, offset, key) == digest).then_some((scheme, digest))
    })
}

/// The 32-byte signature at the end of a C2/S2 block: HMAC(HMAC(full key, peer digest), block[..1504]).
pub(crate) fn block_signature(
    block: &[u8; HANDSHAKE_SIZE],
    full_key: &[u8],
    peer_digest: &[u8; 32],
) -> ([u8; 32], [u8; 32]) {
    let signing_key = hmac_sha256(full_key, &[peer_digest]);
    let signature = hmac_sha256(
        &signing_key,
        &[block.get(..HANDSHAKE_SIZE - 32).unwrap_or_default()],
    );
    (signing_key, signature)
}
