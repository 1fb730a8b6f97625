//! AMF3 decoder on arbitrary bytes: never panics; what decodes re-encodes to something that decodes the same.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(values) = rtmp_amf::decode_amf3(data) {
        let mut encoder = rtmp_amf::Amf3Encoder::new();
        let mut out = BytesMut::new();
        for value in &values {
            // References can expand into values nested deeper than the decoder accepts; only those may be
            // refused.
            match encoder.encode(value, &mut out) {
                Ok(()) => {}
                Err(rtmp_amf::EncodeError::DepthExceeded { .. }) => return,
                Err(error) => panic!("decoded AMF3 must re-encode: {error}"),
            }
        }
        let again = rtmp_amf::decode_amf3(&out).expect("re-encoded AMF3 must decode");
        assert_eq!(values.len(), again.len());
    }
});
