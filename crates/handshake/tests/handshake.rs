//! Server and client handshakes against real client captures and against each other.

use std::sync::Arc;

use rtmp_handshake::{
    digest_offset, CipherPair, ClientConfig, ClientHandshake, ClientKeyExchange, HandshakeError,
    HandshakeMode, KeyExchangeFactory, Scheme, ServerHandshake, ServerKeys, StreamCipher,
    HANDSHAKE_SIZE,
};

fn counter_random() -> rtmp_handshake::RandomFill {
    let mut state = 0x1234_5678u32;
    Box::new(move |buf: &mut [u8]| {
        for byte in buf {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            *byte = (state >> 16) as u8;
        }
    })
}

/// Drives a client and a server to completion, `step` bytes at a time.
fn run_pair(
    mut client: ClientHandshake,
    mut server: ServerHandshake,
    step: usize,
) -> (ClientHandshake, ServerHandshake) {
    let mut to_server = client.take_output().unwrap().to_vec();
    let mut to_client = Vec::new();
    for _ in 0..100_000 {
        if client.is_done() && server.is_done() {
            break;
        }
        if !to_server.is_empty() && !server.is_done() {
            let n = server
                .feed(&to_server[..step.min(to_server.len())])
                .unwrap();
            to_server.drain(..n);
            if let Some(out) = server.take_output() {
                to_client.extend_from_slice(&out);
            }
        }
        if !to_client.is_empty() && !client.is_done() {
            let n = client
                .feed(&to_client[..step.min(to_client.len())])
                .unwrap();
            to_client.drain(..n);
            if let Some(out) = client.take_output() {
                to_server.extend_from_slice(&out);
            }
        }
    }
    assert!(client.is_done() && server.is_done());
    (client, server)
}

#[test]
fn ffmpeg_c1_gets_a_digest_answer_that_ffmpeg_would_accept() {
    let c0c1 = include_bytes!("fixtures/ffmpeg51_publish_c0c1.bin");
    let mut server = ServerHandshake::new(None, counter_random());
    assert_eq!(server.feed(c0c1).unwrap(), 1537);
    assert_eq!(
        server.mode(),
        HandshakeMode::Digest {
            scheme: Scheme::Zero
        }
    );
    let reply = server.take_output().unwrap();
    assert_eq!(reply.len(), 1 + 2 * HANDSHAKE_SIZE);
    assert_eq!(reply[0], 3);
    assert!(
        reply[1 + 4] >= 3,
        "S1 version >= 3 so FFmpeg checks (and accepts) our digests"
    );
    // FFmpeg's own checks, done here with the public helpers: S1 digest with the FMS partial key at either
    // scheme; S2 signature keyed from the C1 digest.
    let s1: [u8; HANDSHAKE_SIZE] = reply[1..1 + HANDSHAKE_SIZE].try_into().unwrap();
    let s2: [u8; HANDSHAKE_SIZE] = reply[1 + HANDSHAKE_SIZE..].try_into().unwrap();
    let c1: [u8; HANDSHAKE_SIZE] = c0c1[1..].try_into().unwrap();
    assert!(verify_s1_s2(&c1, &s1, &s2));
    // FFmpeg publishing answers with C2 = S1; the handshake completes.
    assert_eq!(server.feed(&s1).unwrap(), HANDSHAKE_SIZE);
    assert!(server.is_done());
    let outcome = server.into_outcome();
    assert!(outcome.peer_c2_valid && outcome.cipher.is_none());
}

/// An independent check, written from the specification rather than through the crate's server code.
fn verify_s1_s2(
    c1: &[u8; HANDSHAKE_SIZE],
    s1: &[u8; HANDSHAKE_SIZE],
    s2: &[u8; HANDSHAKE_SIZE],
) -> bool {
    use hmac::{KeyInit, Mac};
    let hmac = |key: &[u8], parts: &[&[u8]]| -> [u8; 32] {
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
        parts.iter().for_each(|p| mac.update(p));
        mac.finalize().into_bytes().into()
    };
    let tail: [u8; 32] = [
        0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E,
        0x57, 0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB,
        0x31, 0xAE,
    ];
    let check = |block: &[u8; HANDSHAKE_SIZE], key: &[u8]| {
        [Scheme::Zero, Scheme::One].into_iter().any(|scheme| {
            let off = digest_offset(block, scheme);
            hmac(key, &[&block[..off], &block[off + 32..]]) == block[off..off + 32]
        })
    };
    let c1_off = digest_offset(c1, Scheme::Zero);
    let c1_digest = &c1[c1_off..c1_off + 32];
    let s1_ok = check(s1, b"Genuine Adobe Flash Media Server 001");
    let key = hmac(
        &[&b"Genuine Adobe Flash Media Server 001"[..], &tail].concat(),
        &[c1_digest],
    );
    s1_ok && hmac(&key, &[&s2[..1504]]) == s2[1504..]
}

#[test]
fn librtmp_c1_gets_the_simple_handshake_with_c1_echoed() {
    let c0c1 = include_bytes!("fixtures/rtmpdump24_play_c0c1.bin");
    let mut server = ServerHandshake::new(None, counter_random());
    // Byte by byte: the server never consumes more than C0+C1.
    for byte in c0c1.iter() {
        assert_eq!(server.feed(std::slice::from_ref(byte)).unwrap(), 1);
    }
    assert_eq!(server.mode(), HandshakeMode::Simple);
    let reply = server.take_output().unwrap();
    assert_eq!(
        &reply[1 + HANDSHAKE_SIZE..],
        &c0c1[1..],
        "S2 = C1 byte for byte"
    );
    let mut c2_and_more = reply[1..1 + HANDSHAKE_SIZE].to_vec();
    c2_and_more.extend_from_slice(b"chunk data");
    assert_eq!(
        server.feed(&c2_and_more).unwrap(),
        HANDSHAKE_SIZE,
        "bytes after C2 are not consumed"
    );
    assert!(server.is_done());
}

#[test]
fn client_and_server_agree_in_every_plain_mode_and_split() {
    for (config, expected) in [
        (
            ClientConfig::Digest,
            HandshakeMode::Digest {
                scheme: Scheme::Zero,
            },
        ),
        (ClientConfig::Simple, HandshakeMode::Simple),
    ] {
        for step in [1, 7, 1536, 5000] {
            let client = ClientHandshake::new(config.clone(), counter_random());
            let server = ServerHandshake::new(None, counter_random());
            let (client, server) = run_pair(client, server, step);
            let server_outcome = server.into_outcome();
            assert_eq!(server_outcome.mode, expected);
            assert!(
                server_outcome.peer_c2_valid,
                "our C2 is signed or echoed correctly"
            );
            assert_eq!(client.into_outcome().mode, expected);
        }
    }
}

#[test]
fn unknown_version_fails_on_the_first_byte() {
    let mut server = ServerHandshake::new(None, counter_random());
    assert_eq!(
        server.feed(b"GET / HTTP/1.1"),
        Err(HandshakeError::UnsupportedVersion(b'G'))
    );
    assert_eq!(server.feed(&[3]), Err(HandshakeError::Finished));
}

#[test]
fn rtmpe_without_a_key_exchange_is_refused() {
    let mut c0c1 = include_bytes!("fixtures/ffmpeg51_publish_c0c1.bin").to_vec();
    c0c1[0] = 6;
    let mut server = ServerHandshake::new(None, counter_random());
    assert_eq!(
        server.feed(&c0c1),
        Err(HandshakeError::EncryptionUnsupported(6))
    );
}

/// A stand-in key exchange (XOR "cipher", public key = a fixed pattern) to prove the hook's plumbing.
#[derive(Debug)]
struct FakeExchange;
struct Xor(u8);
impl StreamCipher for Xor {
    fn apply(&mut self, data: &mut [u8]) {
        data.iter_mut().for_each(|b| *b ^= self.0);
    }
}
struct FakeClient;
impl ClientKeyExchange for FakeClient {
    fn public_key(&self) -> [u8; 128] {
        [0xC1; 128]
    }
    fn finish(self: Box<Self>, server: &[u8; 128]) -> Result<CipherPair, HandshakeError> {
        if server != &[0x5E; 128] {
            return Err(HandshakeError::InvalidPublicKey);
        }
        Ok(CipherPair {
            decrypt: Box::new(Xor(0x55)),
            encrypt: Box::new(Xor(0xAA)),
        })
    }
}
impl KeyExchangeFactory for FakeExchange {
    fn server_keys(
        &self,
        client: &[u8; 128],
        _: &mut dyn FnMut(&mut [u8]),
    ) -> Result<ServerKeys, HandshakeError> {
        if client != &[0xC1; 128] {
            return Err(HandshakeError::InvalidPublicKey);
        }
        Ok(ServerKeys {
            public_key: [0x5E; 128],
            cipher: CipherPair {
                decrypt: Box::new(Xor(0xAA)),
                encrypt: Box::new(Xor(0x55)),
            },
        })
    }
    fn client_exchange(&self, _: &mut dyn FnMut(&mut [u8])) -> Box<dyn ClientKeyExchange> {
        Box::new(FakeClient)
    }
    fn transform_signature(&self, version: u8, key: &[u8; 32], signature: &mut [u8; 32]) {
        if version != 6 {
            signature[0] ^= key[0] | 1;
        }
    }
}

#[test]
fn rtmpe_versions_route_keys_and_transforms_through_the_hook() {
    for version in [6u8, 8, 9] {
        let factory: Arc<dyn KeyExchangeFactory> = Arc::new(FakeExchange);
        let client = ClientHandshake::new(
            ClientConfig::Encrypted {
                version,
                key_exchange: factory.clone(),
            },
            counter_random(),
        );
        let server = ServerHandshake::new(Some(factory), counter_random());
        let (client, server) = run_pair(client, server, 100);
        let (client, server) = (client.into_outcome(), server.into_outcome());
        assert_eq!(
            server.mode,
            HandshakeMode::Encrypted {
                version,
                scheme: Scheme::One
            }
        );
        assert!(
            server.peer_c2_valid,
            "the C2 signature went through the same transform"
        );
        let (mut client_cipher, mut server_cipher) =
            (client.cipher.unwrap(), server.cipher.unwrap());
        let mut data = *b"connect";
        client_cipher.encrypt.apply(&mut data);
        server_cipher.decrypt.apply(&mut data);
        assert_eq!(&data, b"connect");
    }
}
