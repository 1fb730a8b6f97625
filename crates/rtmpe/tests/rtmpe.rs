//! RTMPE known answers and round trips: DH agreement, key validation, the cipher vectors behind the type
//! 8/9 transforms, and full handshakes of versions 6, 8 and 9 through the handshake crate.

use std::sync::Arc;

use num_bigint::BigUint;
use rtmp_handshake::{
    ClientConfig, ClientHandshake, HandshakeMode, KeyExchangeFactory, ServerHandshake,
};
use rtmp_rtmpe::dh::{self, KeyPair};
use rtmp_rtmpe::{transform_signature, Rtmpe};

fn seeded(seed: u32) -> rtmp_handshake::RandomFill {
    let mut state = seed;
    Box::new(move |buf: &mut [u8]| {
        for byte in buf {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *byte = state as u8;
        }
    })
}

#[test]
fn both_sides_derive_the_same_secret() {
    let alice = KeyPair::from_private(BigUint::from(0x1234_5678_9abc_def0u64));
    let bob = KeyPair::from_private(BigUint::from(0x0fed_cba9_8765_4321u64));
    let a = dh::validate_public_key(&alice.public_key).unwrap();
    let b = dh::validate_public_key(&bob.public_key).unwrap();
    assert_eq!(alice.shared_secret(&b), bob.shared_secret(&a));
    // 2^1 = 2: the public key of exponent 1 is the byte 2 right-aligned in 128 bytes.
    let one = KeyPair::from_private(BigUint::from(1u32));
    assert_eq!(one.public_key[127], 2);
    assert!(one.public_key[..127].iter().all(|&b| b == 0));
}

#[test]
fn invalid_public_keys_are_rejected() {
    let p = dh::prime();
    let encode = |value: &BigUint| {
        let bytes = value.to_bytes_be();
        let mut out = [0u8; 128];
        out[128 - bytes.len()..].copy_from_slice(&bytes);
        out
    };
    for bad in [BigUint::from(0u32), BigUint::from(1u32), &p - 1u32] {
        assert!(dh::validate_public_key(&encode(&bad)).is_none(), "{bad:x}");
    }
    assert!(
        dh::validate_public_key(&[0xFF; 128]).is_none(),
        "values >= p"
    );
    // A quadratic non-residue (not in the order-q subgroup) fails the y^q = 1 check FFmpeg applies.
    let mut found_non_member = false;
    for candidate in 3u32..50 {
        if dh::validate_public_key(&encode(&BigUint::from(candidate))).is_none() {
            found_non_member = true;
        }
    }
    assert!(found_non_member);
}

#[test]
fn xtea_and_blowfish_match_their_published_vectors() {
    // Standard XTEA vector (key 00..0f, plaintext "ABCDEFGH", 32 rounds) = 497df3d0 72612cb5, expressed in
    // the little-endian word layout the type 8 transform uses: each word's bytes reversed.
    let reverse_words = |bytes: [u8; 8]| {
        [
            bytes[3], bytes[2], bytes[1], bytes[0], bytes[7], bytes[6], bytes[5], bytes[4],
        ]
    };
    let key: [u8; 16] = core::array::from_fn(|i| i as u8);
    let key_le: [u8; 16] = core::array::from_fn(|i| key[(i / 4) * 4 + 3 - i % 4]);
    let cipher = <xtea::Xtea as xtea::cipher::KeyInit>::new(&key_le.into());
    let mut block = reverse_words(*b"ABCDEFGH").into();
    xtea::cipher::BlockCipherEncrypt::encrypt_block(&cipher, &mut block);
    let out: [u8; 8] = block.into();
    assert_eq!(
        reverse_words(out),
        [0x49, 0x7d, 0xf3, 0xd0, 0x72, 0x61, 0x2c, 0xb5]
    );
    // Standard Blowfish vector: key 0x0000000000000000, plaintext 0 -> 4EF997456198DD78 (big-endian halves).
    let cipher =
        <blowfish::BlowfishLE as blowfish::cipher::KeyInit>::new_from_slice(&[0u8; 8]).unwrap();
    let mut block = [0u8; 8].into();
    blowfish::cipher::BlockCipherEncrypt::encrypt_block(&cipher, &mut block);
    let out: [u8; 8] = block.into();
    assert_eq!(
        reverse_words(out),
        [0x4E, 0xF9, 0x97, 0x45, 0x61, 0x98, 0xDD, 0x78]
    );
}

#[test]
fn transforms_change_signatures_only_for_8_and_9_and_pick_keys_by_index() {
    let key = [7u8; 32];
    let original = [0x5Au8; 32];
    let mut six = original;
    transform_signature(6, &key, &mut six);
    assert_eq!(six, original);
    let (mut eight, mut nine) = (original, original);
    transform_signature(8, &key, &mut eight);
    transform_signature(9, &key, &mut nine);
    assert_ne!(eight, original);
    assert_ne!(nine, original);
    assert_ne!(eight, nine);
    // Same key byte at every block offset and same input: every block transforms identically.
    assert!(eight.chunks(8).all(|c| c == &eight[..8]));
}

#[test]
fn handshakes_of_versions_6_8_and_9_agree_on_both_keystreams() {
    for (version, seed) in [(6u8, 1u32), (8, 2), (9, 3), (6, 4), (9, 5)] {
        let factory: Arc<dyn KeyExchangeFactory> = Rtmpe::factory();
        let mut client = ClientHandshake::new(
            ClientConfig::Encrypted {
                version,
                key_exchange: factory.clone(),
            },
            seeded(seed),
        );
        let mut server = ServerHandshake::new(Some(factory), seeded(seed + 100));
        server.feed(&client.take_output().unwrap()).unwrap();
        client.feed(&server.take_output().unwrap()).unwrap();
        server.feed(&client.take_output().unwrap()).unwrap();
        assert!(client.is_done() && server.is_done());
        let (client, server) = (client.into_outcome(), server.into_outcome());
        assert!(matches!(server.mode, HandshakeMode::Encrypted { version: v, .. } if v == version));
        assert!(
            server.peer_c2_valid,
            "the client's C2 signature (transformed for {version}) checks out"
        );
        let (mut client_cipher, mut server_cipher) =
            (client.cipher.unwrap(), server.cipher.unwrap());
        for message in [&b"connect"[..], &[0u8; 5000][..]] {
            let mut up = message.to_vec();
            client_cipher.encrypt.apply(&mut up);
            assert_ne!(up, message);
            server_cipher.decrypt.apply(&mut up);
            assert_eq!(up, message);
            let mut down = message.to_vec();
            server_cipher.encrypt.apply(&mut down);
            client_cipher.decrypt.apply(&mut down);
            assert_eq!(down, message);
        }
    }
}
