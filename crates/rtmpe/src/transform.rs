//! The type 8 (XTEA) and type 9 (Blowfish) transforms of a handshake signature (PROTOCOL.md §2.7): each of
//! the four 8-byte blocks of the signature is encrypted with the table key chosen by `key[i] % 15`, the
//! block's halves read as little-endian words.

use blowfish::cipher::{BlockCipherEncrypt, KeyInit};

use crate::tables::{BLOWFISH_KEYS, XTEA_KEYS};

/// Transforms `signature` (computed with HMAC key `key`) for handshake version 8 or 9; other versions
/// leave it as it is.
pub fn transform_signature(version: u8, key: &[u8; 32], signature: &mut [u8; 32]) {
    for offset in [0usize, 8, 16, 24] {
        let index = usize::from(key.get(offset).copied().unwrap_or_default() % 15);
        let Some(block) = signature.get_mut(offset..offset + 8) else {
            continue;
        };
        match version {
            8 => xtea_encrypt(XTEA_KEYS.get(index), block),
            9 => blowfish_encrypt(BLOWFISH_KEYS.get(index), block),
            _ => return,
        }
    }
}

fn xtea_encrypt(key: Option<&[u8; 16]>, block: &mut [u8]) {
    let Some(key) = key else { return };
    // The xtea crate reads the key and both halves as little-endian words, as RTMPE's transform does.
    let cipher = <xtea::Xtea as xtea::cipher::KeyInit>::new(&(*key).into());
    encrypt_in_place(&cipher, block);
}

fn blowfish_encrypt(key: Option<&[u8; 24]>, block: &mut [u8]) {
    let Some(key) = key else { return };
    // Blowfish accepts keys of 4 to 56 bytes: 24 always fits.
    let Ok(cipher) = blowfish::BlowfishLE::new_from_slice(key) else {
        return;
    };
    encrypt_in_place(&cipher, block);
}

fn encrypt_in_place<C: BlockCipherEncrypt<BlockSize = blowfish::cipher::consts::U8>>(
    cipher: &C,
    block: &mut [u8],
) {
    let Ok(bytes) = <[u8; 8]>::try_from(&*block) else {
        return;
    };
    let mut array = bytes.into();
    cipher.encrypt_block(&mut array);
    let out: [u8; 8] = array.into();
    block.copy_from_slice(&out);
}
