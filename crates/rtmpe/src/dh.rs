//! Diffie-Hellman over the 1024-bit MODP group RTMPE uses (RFC 2409 "Second Oakley Group", g = 2).
//! Constant time is not claimed (RTMPE offers no real security anyway); keys are random per connection
//! and peer keys are validated.

use num_bigint::BigUint;

/// Public keys and shared secrets are 128 bytes, big-endian, left-padded with zeros.
pub const PUBLIC_KEY_SIZE: usize = 128;

const PRIME_HEX: &[u8] = b"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF";

/// The group prime P.
pub fn prime() -> BigUint {
    BigUint::parse_bytes(PRIME_HEX, 16).unwrap_or_default()
}

/// The order Q = (P - 1) / 2 of the subgroup every honest public key lies in.
pub fn subgroup_order() -> BigUint {
    (prime() - 1u32) >> 1
}

fn to_fixed(value: &BigUint) -> [u8; PUBLIC_KEY_SIZE] {
    let bytes = value.to_bytes_be();
    let mut out = [0u8; PUBLIC_KEY_SIZE];
    let start = PUBLIC_KEY_SIZE.saturating_sub(bytes.len());
    if let Some(slot) = out.get_mut(start..) {
        slot.copy_from_slice(
            bytes
                .get(bytes.len().saturating_sub(PUBLIC_KEY_SIZE)..)
                .unwrap_or_default(),
        );
    }
    out
}

/// A private exponent and its public key.
#[derive(Clone)]
pub struct KeyPair {
    private: BigUint,
    /// The public key `g^private mod p`, big-endian, left-padded to 128 bytes.
    pub public_key: [u8; PUBLIC_KEY_SIZE],
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair").finish_non_exhaustive()
    }
}

impl KeyPair {
    /// A fresh pair: a 1016-bit random exponent (as FFmpeg draws it).
    pub fn generate(random: &mut dyn FnMut(&mut [u8])) -> KeyPair {
        let mut bytes = [0u8; PUBLIC_KEY_SIZE - 1];
        loop {
            random(&mut bytes);
            let private = BigUint::from_bytes_be(&bytes);
            if private > BigUint::from(1u32) {
                return KeyPair::from_private(private);
            }
        }
    }

    /// The pair of a given exponent (for known-answer tests).
    pub fn from_private(private: BigUint) -> KeyPair {
        let public = BigUint::from(2u32).modpow(&private, &prime());
        KeyPair {
            private,
            public_key: to_fixed(&public),
        }
    }

    /// `peer ^ private mod P` as 128 big-endian bytes.
    pub fn shared_secret(&self, peer: &BigUint) -> [u8; PUBLIC_KEY_SIZE] {
        to_fixed(&peer.modpow(&self.private, &prime()))
    }
}

/// Checks a peer's public key as FFmpeg does: 1 < y < P - 1 and y^Q mod P = 1.
pub fn validate_public_key(bytes: &[u8; PUBLIC_KEY_SIZE]) -> Option<BigUint> {
    let p = prime();
    let y = BigUint::from_bytes_be(bytes);
    let one = BigUint::from(1u32);
    if y <= one || y >= &p - &one {
        return None;
    }
    (y.modpow(&subgroup_order(), &p) == one).then_some(y)
}
