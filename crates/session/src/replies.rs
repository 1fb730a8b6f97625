//! Builders for what the session sends: command replies, status objects, control messages. The shapes
//! follow PROTOCOL.md §5.8 and §6: null command objects (never undefined), AMF0 objects for info (never
//! ECMA arrays), transaction ids echoed.

use rtmp_amf::{encode_amf0_values, Amf0Value};
use rtmp_chunk::{type_id, Message};

use crate::StatusCode;

/// An AMF0 command message (type 20).
pub(crate) fn command(stream_id: u32, values: &[Amf0Value]) -> Message {
    Message {
        timestamp: 0,
        type_id: type_id::COMMAND_AMF0,
        stream_id,
        payload: encodable(values),
    }
}

/// The encoding of values the session built itself: constant keys, shallow nesting, no AMF3, which always
/// encode; anything else would become an empty body rather than a panic.
fn encodable(values: &[Amf0Value]) -> bytes::Bytes {
    encode_amf0_values(values).unwrap_or_default()
}

/// An AMF0 data message (type 18).
pub(crate) fn data(stream_id: u32, values: &[Amf0Value]) -> Message {
    Message {
        timestamp: 0,
        type_id: type_id::DATA_AMF0,
        stream_id,
        payload: encodable(values),
    }
}

/// `_result(txn, null, values...)`.
pub(crate) fn result(transaction_id: f64, values: &[Amf0Value]) -> Message {
    let mut all = vec!["_result".into(), transaction_id.into()];
    if values.is_empty() {
        all.push(Amf0Value::Null);
    }
    all.extend_from_slice(values);
    command(0, &all)
}

/// `_error(txn, null, {level, code, description})`.
pub(crate) fn error(transaction_id: f64, code: StatusCode, description: &str) -> Message {
    command(
        0,
        &[
            "_error".into(),
            transaction_id.into(),
            Amf0Value::Null,
            info(code, description, None),
        ],
    )
}

/// The info object of a status event.
pub(crate) fn info(code: StatusCode, description: &str, details: Option<&str>) -> Amf0Value {
    let mut properties: Vec<(String, Amf0Value)> = vec![
        ("level".into(), code.level().as_str().into()),
        ("code".into(), code.code().into()),
        ("description".into(), description.into()),
    ];
    if let Some(details) = details {
        properties.push(("details".into(), details.into()));
    }
    Amf0Value::Object(properties)
}

/// `onStatus(0, null, info)` on a stream.
pub(crate) fn on_status(stream_id: u32, info: Amf0Value) -> Message {
    command(
        stream_id,
        &["onStatus".into(), 0.0.into(), Amf0Value::Null, info],
    )
}
