//! Typed commands: AMF values of a command message (type 20, or 17 for AMF3 clients) become a
//! [`Command`], with errors that name the argument that was wrong.

use bytes::Bytes;
use rtmp_amf::{decode_amf0, Amf0Decoder, Amf0Value};
use rtmp_chunk::{type_id, Message};

use crate::SessionError;

/// A command from the peer, by name. Anything not listed is kept as [`Command::Other`].
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `connect`: opens the NetConnection.
    Connect {
        /// The transaction id the answer echoes.
        transaction_id: f64,
        /// The command object.
        properties: Amf0Value,
        /// Optional arguments after the command object.
        extra: Vec<Amf0Value>,
    },
    /// `createStream`: asks for a new NetStream.
    CreateStream {
        /// The transaction id the answer echoes.
        transaction_id: f64,
    },
    /// `releaseStream`: FMLE's request to free a stream name before publishing.
    ReleaseStream {
        /// The transaction id the answer echoes.
        transaction_id: f64,
        /// The stream name as sent.
        stream_name: String,
    },
    /// `FCPublish`: FMLE's announcement of a publish.
    FcPublish {
        /// The transaction id the answer echoes.
        transaction_id: f64,
        /// The stream name as sent.
        stream_name: String,
    },
    /// `FCUnpublish`: FMLE's announcement that publishing stops.
    FcUnpublish {
        /// The transaction id the answer echoes.
        transaction_id: f64,
        /// The stream name as sent.
        stream_name: String,
    },
    /// `FCSubscribe`: a CDN-style subscribe before `play`.
    FcSubscribe {
        /// The transaction id the answer echoes.
        transaction_id: f64,
        /// The stream name as sent.
        stream_name: String,
    },
    /// `publish`: starts publishing on the message's stream.
    Publish {
        /// The transaction id the answer echoes.
        transaction_id: f64,
        /// The stream name as sent.
        stream_name: String,
        /// How the publisher asked to publish.
        publish_type: PublishType,
    },
    /// `play`: starts playing on the message's stream.
    Play {
        /// The transaction id the answer echoes.
        transaction_id: f64,
        /// The stream name as sent.
        stream_name: String,
        /// The requested start (`-2` live or recorded, `-1` live only, `>= 0` recorded from there, ms).
        start: f64,
        /// How long to play, in milliseconds (`-1`, also when absent: to the end).
        duration: f64,
    },
    /// `pause`: pauses or resumes playback.
    Pause {
        /// The transaction id the answer echoes.
        transaction_id: f64,
        /// Whether the stream is now paused.
        paused: bool,
        /// The position in milliseconds.
        position_ms: f64,
    },
    /// `seek`: moves playback to a position.
    Seek {
        /// The transaction id the answer echoes.
        transaction_id: f64,
        /// The position in milliseconds.
        position_ms: f64,
    },
    /// `deleteStream`: frees a NetStream.
    DeleteStream {
        /// The transaction id the answer echoes.
        transaction_id: f64,
        /// The message stream id (a NetStream from `createStream`).
        stream_id: u32,
    },
    /// `closeStream`: stops what the message's stream does.
    CloseStream {
        /// The transaction id the answer echoes.
        transaction_id: f64,
    },
    /// `getStreamLength`: asks a recorded stream's duration.
    GetStreamLength {
        /// The transaction id the answer echoes.
        transaction_id: f64,
        /// The stream name as sent.
        stream_name: String,
    },
    /// `_checkbw`: a bandwidth check some clients send.
    CheckBandwidth {
        /// The transaction id the answer echoes.
        transaction_id: f64,
    },
    /// `receiveAudio` / `receiveVideo` (Flash players).
    Receive {
        /// The transaction id the answer echoes.
        transaction_id: f64,
        /// `"audio"` or `"video"`.
        media: &'static str,
        /// Whether the player wants that media.
        enabled: bool,
    },
    /// `_result` to one of our commands.
    Result {
        /// The transaction id the answer echoes.
        transaction_id: f64,
        /// The command's arguments after the command object.
        values: Vec<Amf0Value>,
    },
    /// `_error` to one of our commands.
    Error {
        /// The transaction id the answer echoes.
        transaction_id: f64,
        /// The command's arguments after the command object.
        values: Vec<Amf0Value>,
    },
    /// `onStatus(0, null, info)`.
    OnStatus {
        /// The info object (`level`, `code`, `description`, ...).
        info: Amf0Value,
    },
    /// Any other command, undecoded beyond its name and transaction id.
    Other {
        /// The command name.
        name: String,
        /// The transaction id the answer echoes.
        transaction_id: f64,
        /// The command's arguments after the command object.
        values: Vec<Amf0Value>,
    },
}

/// How a publisher asked to publish (the `publish` command's type argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PublishType {
    /// `live` (also what a missing or unknown type means, as for FMS and nginx-rtmp).
    #[default]
    Live,
    /// `record`: record, replacing an earlier recording.
    Record,
    /// `append` (or `appendWithGap`): record after an earlier recording.
    Append,
}

impl PublishType {
    /// The type a publisher named; a missing or unknown type is [`PublishType::Live`].
    pub fn parse(text: Option<&str>) -> Self {
        match text {
            Some("record") => Self::Record,
            Some("append" | "appendWithGap") => Self::Append,
            _ => Self::Live,
        }
    }

    /// The type as the `publish` command spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Record => "record",
            Self::Append => "append",
        }
    }
}

/// A command whose arguments are not of the types the command needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{command}: argument {argument} must be {expected}")]
pub struct CommandArgumentError {
    pub command: String,
    pub argument: &'static str,
    pub expected: &'static str,
}

/// The AMF0 values of a command or data message (type 20/18, or 17/15 with its leading format byte).
pub(crate) fn decode_values(
    message: &Message,
    context: &'static str,
) -> Result<Vec<Amf0Value>, SessionError> {
    let values =
        decode_amf0(amf0_body(message)).map_err(|source| SessionError::Amf { context, source })?;
    Ok(values.into_iter().map(Amf0Value::into_amf0).collect())
}

/// The transaction id of a command whose body does not decode as a whole: its name and transaction id,
/// the first two values, may still be readable. `None` when they are not, or the id is 0 (no answer due).
pub(crate) fn readable_transaction_id(message: &Message) -> Option<f64> {
    let mut decoder = Amf0Decoder::new(amf0_body(message));
    let name = decoder.next_value().ok().flatten()?;
    name.as_str()?;
    let transaction_id = decoder.next_value().ok().flatten()?.as_f64()?;
    Some(transaction_id).filter(|id| *id > 0.0)
}

/// The AMF0 body of a command or data message: type 17/15 bodies start with a format byte (0).
fn amf0_body(message: &Message) -> &[u8] {
    match message.type_id {
        type_id::COMMAND_AMF3 | type_id::DATA_AMF3 => match message.payload.first() {
            Some(0) => message.payload.get(1..).unwrap_or_default(),
            _ => &message.payload,
        },
        _ => &message.payload,
    }
}

struct Args {
    name: String,
    values: std::vec::IntoIter<Amf0Value>,
}

impl Args {
    fn error(&self, argument: &'static str, expected: &'static str) -> CommandArgumentError {
        CommandArgumentError {
            command: self.name.clone(),
            argument,
            expected,
        }
    }

    fn next(&mut self) -> Option<Amf0Value> {
        self.values.next()
    }

    fn string(&mut self, argument: &'static str) -> Result<String, CommandArgumentError> {
        match self.next() {
            Some(Amf0Value::String(s) | Amf0Value::LongString(s)) => Ok(s),
            _ => Err(self.error(argument, "a string")),
        }
    }

    fn number_or(
        &mut self,
        argument: &'static str,
        default: f64,
    ) -> Result<f64, CommandArgumentError> {
        match self.next() {
            None | Some(Amf0Value::Null | Amf0Value::Undefined) => Ok(default),
            Some(value) => value
                .as_f64()
                .ok_or_else(|| self.error(argument, "a number")),
        }
    }

    fn rest(self) -> Vec<Amf0Value> {
        self.values.collect()
    }
}

impl Command {
    /// Interprets the values of a command message: name, transaction id, command object, arguments.
    pub fn parse(values: Vec<Amf0Value>) -> Result<Command, CommandArgumentError> {
        let mut values = values.into_iter();
        let name = match values.next() {
            Some(Amf0Value::String(name)) => name,
            _ => {
                return Err(CommandArgumentError {
                    command: "?".into(),
                    argument: "name",
                    expected: "a string",
                });
            }
        };
        let transaction_id = values.next().and_then(|v| v.as_f64()).unwrap_or(0.0);
        let command_object = values.next().unwrap_or(Amf0Value::Null);
        let mut args = Args { name, values };
        let txn = transaction_id;
        Ok(match args.name.as_str() {
            "connect" => {
                if command_object.properties().is_none() {
                    return Err(args.error("command object", "an object"));
                }
                Command::Connect {
                    transaction_id: txn,
                    properties: command_object,
                    extra: args.rest(),
                }
            }
            "createStream" => Command::CreateStream {
                transaction_id: txn,
            },
            "releaseStream" => Command::ReleaseStream {
                transaction_id: txn,
                stream_name: args.string("stream name")?,
            },
            "FCPublish" => Command::FcPublish {
                transaction_id: txn,
                stream_name: args.string("stream name")?,
            },
            "FCUnpublish" => Command::FcUnpublish {
                transaction_id: txn,
                stream_name: args.string("stream name")?,
            },
            "FCSubscribe" => Command::FcSubscribe {
                transaction_id: txn,
                stream_name: args.string("stream name")?,
            },
            "publish" => {
                let stream_name = args.string("stream name")?;
                let publish_type =
                    PublishType::parse(args.next().as_ref().and_then(Amf0Value::as_str));
                Command::Publish {
                    transaction_id: txn,
                    stream_name,
                    publish_type,
                }
            }
            "play" => {
                let stream_name = args.string("stream name")?;
                let start = args.number_or("start", -2.0)?;
                let duration = args.number_or("duration", -1.0)?;
                Command::Play {
                    transaction_id: txn,
                    stream_name,
                    start,
                    duration,
                }
            }
            "play2" => {
                let params = args.next().unwrap_or(Amf0Value::Null);
                let stream_name = params
                    .get("streamName")
                    .and_then(Amf0Value::as_str)
                    .ok_or_else(|| args.error("parameters.streamName", "a string"))?
                    .to_owned();
                let start = params
                    .get("start")
                    .and_then(Amf0Value::as_f64)
                    .unwrap_or(-2.0);
                let duration = params
                    .get("len")
                    .and_then(Amf0Value::as_f64)
                    .unwrap_or(-1.0);
                Command::Play {
                    transaction_id: txn,
                    stream_name,
                    start,
                    duration,
                }
            }
            "pause" | "pauseRaw" => {
                let paused = match args.next() {
                    Some(Amf0Value::Boolean(paused)) => paused,
                    _ => return Err(args.error("pause flag", "a boolean")),
                };
                let position_ms = args.number_or("position", 0.0)?;
                Command::Pause {
                    transaction_id: txn,
                    paused,
                    position_ms,
                }
            }
            "seek" => Command::Seek {
                transaction_id: txn,
                position_ms: args.number_or("position", 0.0)?,
            },
            "deleteStream" => {
                let stream_id = args.number_or("stream id", 0.0)?;
                Command::DeleteStream {
                    transaction_id: txn,
                    stream_id: stream_id as u32,
                }
            }
            "closeStream" => Command::CloseStream {
                transaction_id: txn,
            },
            "getStreamLength" => Command::GetStreamLength {
                transaction_id: txn,
                stream_name: args.string("stream name").unwrap_or_default(),
            },
            "_checkbw" | "checkbw" | "checkBandwidth" => Command::CheckBandwidth {
                transaction_id: txn,
            },
            "receiveAudio" | "receiveVideo" => Command::Receive {
                transaction_id: txn,
                media: if args.name == "receiveAudio" {
                    "audio"
                } else {
                    "video"
                },
                enabled: args.next().and_then(|v| v.as_bool()).unwrap_or(true),
            },
            "_result" => Command::Result {
                transaction_id: txn,
                values: [vec![command_object], args.rest()].concat(),
            },
            "_error" => Command::Error {
                transaction_id: txn,
                values: [vec![command_object], args.rest()].concat(),
            },
            "onStatus" => Command::OnStatus {
                info: args.next().unwrap_or(Amf0Value::Null),
            },
            _ => {
                let name = std::mem::take(&mut args.name);
                Command::Other {
                    name,
                    transaction_id: txn,
                    values: [vec![command_object], args.rest()].concat(),
                }
            }
        })
    }
}

/// The payload of a data message that is `@setDataFrame` metadata, re-encoded without the prefix (`None`
/// for other data, and for metadata that cannot be re-encoded).
pub(crate) fn strip_set_data_frame(values: &[Amf0Value]) -> Option<Bytes> {
    match values.first().and_then(Amf0Value::as_str) {
        Some("@setDataFrame") => {
            rtmp_amf::encode_amf0_values(values.get(1..).unwrap_or_default()).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(values: &[Amf0Value]) -> Option<PublishType> {
        let mut all = vec!["publish".into(), 4.0.into(), Amf0Value::Null, "key".into()];
        all.extend_from_slice(values);
        match Command::parse(all) {
            Ok(Command::Publish { publish_type, .. }) => Some(publish_type),
            _ => None,
        }
    }

    #[test]
    fn publish_types_are_read_with_live_as_the_default() {
        assert_eq!(publish(&["record".into()]), Some(PublishType::Record));
        assert_eq!(publish(&["append".into()]), Some(PublishType::Append));
        assert_eq!(
            publish(&["appendWithGap".into()]),
            Some(PublishType::Append)
        );
        assert_eq!(publish(&["live".into()]), Some(PublishType::Live));
        assert_eq!(publish(&[]), Some(PublishType::Live));
        assert_eq!(publish(&[3.0.into()]), Some(PublishType::Live));
    }

    #[test]
    fn a_transaction_id_is_read_from_a_body_that_does_not_decode_whole() {
        let mut payload = rtmp_amf::encode_amf0_values(&["call".into(), 5.0.into()])
            .unwrap()
            .to_vec();
        payload.push(0xff);
        let message = Message {
            timestamp: 0,
            type_id: type_id::COMMAND_AMF0,
            stream_id: 0,
            payload: Bytes::from(payload),
        };
        assert!(decode_values(&message, "command").is_err());
        assert_eq!(readable_transaction_id(&message), Some(5.0));
        let unnamed = Message {
            payload: rtmp_amf::encode_amf0_values(&[5.0.into(), 5.0.into()]).unwrap(),
            ..message
        };
        assert_eq!(readable_transaction_id(&unnamed), None);
    }
}
