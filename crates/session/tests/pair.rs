//! An in-memory client/server pair with a virtual clock: the whole exchange real clients go through.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rtmp_amf::Amf0Value;
use rtmp_chunk::{type_id, Message, SharedMessage};
use rtmp_session::{
    ClientEvent, ClientOptions, FourCc, PublishType, ServerEvent, ServerSession, SessionConfig,
    SessionError, StatusCode, CAPS_EX_HONOURED, CAPS_EX_MOD_EX, CAPS_EX_MULTITRACK,
    CAPS_EX_RECONNECT,
};

mod support;
use support::{accept_all, fixed_random, Pair};

#[test]
fn connect_publish_and_media_flow_with_status_codes() {
    let mut pair = Pair::new();
    pair.pump(&mut accept_all);
    assert!(matches!(
        pair.client_events[0],
        ClientEvent::HandshakeComplete { .. }
    ));
    let connected = pair.client_events.iter().find_map(|e| match e {
        ClientEvent::Connected { info, .. } => Some(info.clone()),
        _ => None,
    });
    let info = connected.expect("connected");
    assert_eq!(
        info.get("code").and_then(Amf0Value::as_str),
        Some("NetConnection.Connect.Success")
    );
    assert_eq!(
        info.get("objectEncoding").and_then(Amf0Value::as_f64),
        Some(0.0)
    );
    assert!(
        matches!(&pair.server_events[1], ServerEvent::Connect(request) if request.app == "live")
    );

    pair.client.create_stream();
    pair.pump(&mut accept_all);
    assert!(pair
        .client_events
        .contains(&ClientEvent::StreamCreated { stream_id: 1 }));
    pair.client.publish(1, "key?token=abc");
    pair.pump(&mut accept_all);
    assert!(pair
        .client_events
        .contains(&ClientEvent::PublishStarted { stream_id: 1 }));
    assert!(pair.server_events.iter().any(|e| matches!(e,
        ServerEvent::Publish { stream_id: 1, stream_name, query, .. } if stream_name == "key" && query == "token=abc")));

    pair.client
        .send_metadata(1, Amf0Value::ecma_array([("width", 640.0.into())]));
    let video = Message {
        timestamp: 40,
        type_id: type_id::VIDEO,
        stream_id: 1,
        payload: Bytes::from_static(&[0x17, 1, 2, 3]),
    };
    pair.client.send_message(1, &video);
    pair.pump(&mut accept_all);
    let metadata = pair.server_events.iter().find_map(|e| match e {
        ServerEvent::Metadata {
            message: Some(m), ..
        } => Some(m.clone()),
        _ => None,
    });
    let values = rtmp_amf::decode_amf0(&metadata.unwrap().payload).unwrap();
    assert_eq!(
        values[0].as_str(),
        Some("onMetaData"),
        "@setDataFrame stripped"
    );
    assert!(pair.server_events.contains(&ServerEvent::Media {
        stream_id: 1,
        message: video
    }));

    pair.client.delete_stream(1, Some("key"));
    pair.pump(&mut accept_all);
    assert_eq!(
        pair.server_events
            .iter()
            .filter(|e| matches!(e, ServerEvent::Unpublish { stream_id: 1 }))
            .count(),
        1
    );
}

#[test]
fn play_gets_start_then_shared_media_bit_exact() {
    let mut pair = Pair::new();
    pair.pump(&mut accept_all);
    pair.client.create_stream();
    pair.pump(&mut accept_all);
    pair.client.play(1, "show");
    pair.pump(&mut accept_all);
    assert!(pair
        .client_events
        .contains(&ClientEvent::PlayStarted { stream_id: 1 }));
    let frame = Message {
        timestamp: 1000,
        type_id: type_id::AUDIO,
        stream_id: 1,
        payload: Bytes::from(vec![0xAF; 9000]),
    };
    let shared = SharedMessage::encode(rtmp_chunk::csid::AUDIO, &frame, pair.server.chunk_size());
    pair.server.send_shared(1, &shared);
    pair.server
        .send_status(1, StatusCode::PlayUnpublishNotify, "gone");
    pair.pump(&mut accept_all);
    assert!(pair.client_events.contains(&ClientEvent::Media {
        stream_id: 1,
        message: frame
    }));
    assert!(pair.client_events.iter().any(|e| matches!(e, ClientEvent::Status { code, .. } if code == "NetStream.Play.UnpublishNotify")));
}

#[test]
fn a_command_pipelined_after_connect_is_answered_after_it_in_order() {
    let mut pair = Pair::new();
    // Handshake only: the client's connect goes out, but the server holds its answer.
    pair.pump(&mut |_, _| {});
    // librtmp calls at once after RTMP_Connect: the call must wait for the connect, not fail.
    pair.client.create_stream();
    pair.pump(&mut |_, _| {});
    assert!(
        !pair
            .client_events
            .iter()
            .any(|e| matches!(e, ClientEvent::CommandFailed { .. })),
        "{:?}",
        pair.client_events
    );
    pair.server.accept_connect();
    pair.pump(&mut accept_all);
    let connected = pair
        .client_events
        .iter()
        .position(|e| matches!(e, ClientEvent::Connected { .. }));
    let created = pair
        .client_events
        .iter()
        .position(|e| matches!(e, ClientEvent::StreamCreated { stream_id: 1 }));
    assert!(
        matches!((connected, created), (Some(c), Some(s)) if c < s),
        "{:?}",
        pair.client_events
    );
}

#[test]
fn commands_waiting_for_connect_are_bounded() {
    let mut pair = Pair::new();
    pair.pump(&mut |_, _| {});
    for _ in 0..40 {
        pair.client.create_stream();
    }
    pair.pump(&mut |_, _| {});
    let refused = |events: &[ClientEvent]| {
        events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    ClientEvent::CommandFailed {
                        command: "createStream",
                        ..
                    }
                )
            })
            .count()
    };
    assert_eq!(refused(&pair.client_events), 8);
    pair.server.accept_connect();
    pair.pump(&mut accept_all);
    let created = pair
        .client_events
        .iter()
        .filter(|e| matches!(e, ClientEvent::StreamCreated { .. }))
        .count();
    assert_eq!(created, 32);
    assert_eq!(refused(&pair.client_events), 8);
}

#[test]
fn commands_pipelined_after_a_refused_connect_share_its_refusal() {
    let mut pair = Pair::new();
    pair.pump(&mut |_, _| {});
    pair.client.create_stream();
    pair.pump(&mut |_, _| {});
    pair.server
        .reject_connect(StatusCode::ConnectRejected, "Not here.");
    pair.pump(&mut |_, _| {});
    let failed: Vec<(&str, &str)> = pair
        .client_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::CommandFailed {
                command,
                description,
            } => Some((*command, description.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        [("connect", "Not here."), ("createStream", "Not here.")]
    );
    assert!(!pair
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::Connected { .. })));
}

#[test]
fn unsupported_commands_get_an_error_once_connected() {
    let mut pair = Pair::new();
    pair.pump(&mut accept_all);
    let call = Message {
        timestamp: 0,
        type_id: type_id::COMMAND_AMF0,
        stream_id: 0,
        payload: rtmp_amf::encode_amf0_values(&["nonsense".into(), 9.0.into(), Amf0Value::Null])
            .unwrap(),
    };
    pair.client.send_message(0, &call);
    pair.pump(&mut accept_all);
    assert!(pair.client_events.iter().any(|e| matches!(
        e,
        ClientEvent::CommandFailed { command: "unknown", description } if description.contains("nonsense")
    )));
}

/// A type 17 command (format byte 0, AMF0 values) whose last value switches to AMF3 and is cut short.
fn undecodable_command(name: &str, transaction_id: f64) -> Message {
    let mut payload = vec![0u8];
    payload.extend_from_slice(
        &rtmp_amf::encode_amf0_values(&[name.into(), transaction_id.into(), Amf0Value::Null])
            .unwrap(),
    );
    // AVM+ marker, then an AMF3 string claiming 7 bytes with none following.
    payload.extend_from_slice(&[0x11, 0x06, 0x0f]);
    Message {
        timestamp: 0,
        type_id: type_id::COMMAND_AMF3,
        stream_id: 0,
        payload: Bytes::from(payload),
    }
}

#[test]
fn an_undecodable_command_is_answered_and_the_session_goes_on() {
    let mut pair = Pair::new();
    pair.pump(&mut accept_all);
    pair.client
        .send_message(0, &undecodable_command("someCall", 7.0));
    // Its transaction id unreadable: nothing to answer, but still no reason to close.
    pair.client.send_message(
        0,
        &Message {
            payload: Bytes::from_static(&[0x00, 0x02, 0x00]),
            ..undecodable_command("x", 0.0)
        },
    );
    pair.pump(&mut accept_all);
    assert!(!pair.server.is_closed());
    let failures = pair
        .client_events
        .iter()
        .filter(|e| {
            matches!(
                e,
                ClientEvent::CommandFailed {
                    command: "unknown",
                    ..
                }
            )
        })
        .count();
    assert_eq!(failures, 1, "{:?}", pair.client_events);
    pair.client.create_stream();
    pair.pump(&mut accept_all);
    assert!(pair
        .client_events
        .contains(&ClientEvent::StreamCreated { stream_id: 1 }));
}

#[test]
fn an_undecodable_command_pipelined_after_connect_is_answered_after_it() {
    let mut pair = Pair::new();
    pair.pump(&mut |_, _| {});
    pair.client
        .send_message(0, &undecodable_command("someCall", 7.0));
    pair.pump(&mut |_, _| {});
    assert!(!pair
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::CommandFailed { .. })));
    pair.server.accept_connect();
    pair.pump(&mut accept_all);
    let connected = pair
        .client_events
        .iter()
        .position(|e| matches!(e, ClientEvent::Connected { .. }));
    let failed = pair
        .client_events
        .iter()
        .position(|e| matches!(e, ClientEvent::CommandFailed { .. }));
    assert!(
        matches!((connected, failed), (Some(c), Some(f)) if c < f),
        "{:?}",
        pair.client_events
    );
}

/// A pair whose client publishes on the given created streams.
fn publishing_pair(streams: &[(u32, &str)]) -> Pair {
    let mut pair = Pair::new();
    pair.pump(&mut accept_all);
    for (stream_id, name) in streams {
        pair.client.create_stream();
        pair.pump(&mut accept_all);
        pair.client.publish(*stream_id, name);
        pair.pump(&mut accept_all);
        assert!(pair.client_events.contains(&ClientEvent::PublishStarted {
            stream_id: *stream_id
        }));
    }
    pair
}

#[test]
fn media_and_data_on_stream_0_belong_to_the_only_publishing_stream() {
    // node-media-server 4's relay: publish on the created stream, then everything on stream 0.
    let mut pair = publishing_pair(&[(1, "relay")]);
    pair.client
        .send_metadata(0, Amf0Value::ecma_array([("width", 640.0.into())]));
    let audio = Message {
        timestamp: 20,
        type_id: type_id::AUDIO,
        stream_id: 0,
        payload: Bytes::from_static(&[0xaf, 0x01, 0x21]),
    };
    pair.client.send_message(0, &audio);
    pair.pump(&mut accept_all);
    assert!(pair.server_events.iter().any(|e| matches!(
        e,
        ServerEvent::Metadata { stream_id: 1, message: Some(m) } if m.stream_id == 1
    )));
    assert!(pair.server_events.contains(&ServerEvent::Media {
        stream_id: 1,
        message: Message {
            stream_id: 1,
            ..audio
        }
    }));
    assert!(!pair
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::Status { code, .. } if code == "NetStream.Failed")));
}

#[test]
fn media_on_stream_0_is_refused_when_two_streams_publish() {
    let mut pair = publishing_pair(&[(1, "one"), (2, "two")]);
    let audio = Message {
        timestamp: 20,
        type_id: type_id::AUDIO,
        stream_id: 0,
        payload: Bytes::from_static(&[0xaf, 0x01, 0x21]),
    };
    pair.client.send_message(0, &audio);
    pair.pump(&mut accept_all);
    assert!(!pair
        .server_events
        .iter()
        .any(|e| matches!(e, ServerEvent::Media { .. })));
    assert!(pair.client_events.iter().any(|e| matches!(
        e,
        ClientEvent::Status { stream_id: 0, code, .. } if code == "NetStream.Failed"
    )));
}

#[test]
fn publish_carries_its_type_and_connect_its_enhanced_codecs() {
    let mut options = ClientOptions::new("live", "rtmp://127.0.0.1/live");
    options.extra_properties.push((
        "fourCcList".into(),
        Amf0Value::StrictArray(vec!["hvc1".into(), "av01".into()]),
    ));
    let mut pair = Pair::with_options(options);
    pair.pump(&mut accept_all);
    let request = pair.server_events.iter().find_map(|e| match e {
        ServerEvent::Connect(request) => Some(request.clone()),
        _ => None,
    });
    let request = request.expect("connect");
    assert!(request.accepts_fourcc(FourCc(*b"hvc1")));
    assert!(request.accepts_fourcc(FourCc(*b"av01")));
    assert!(!request.accepts_fourcc(FourCc(*b"vp09")));
    pair.client.create_stream();
    pair.pump(&mut accept_all);
    pair.client.publish(1, "show");
    pair.pump(&mut accept_all);
    assert!(pair.server_events.iter().any(|e| matches!(
        e,
        ServerEvent::Publish {
            publish_type: PublishType::Live,
            ..
        }
    )));
}

#[test]
fn caps_ex_is_read_from_connect_and_the_answer_advertises_what_is_honoured() {
    let mut options = ClientOptions::new("live", "rtmp://127.0.0.1/live");
    options.extra_properties.extend([
        (
            "fourCcList".into(),
            Amf0Value::StrictArray(vec!["avc1".into()]),
        ),
        ("capsEx".into(), Amf0Value::Number(3.0)),
    ]);
    let mut pair = Pair::with_options(options);
    pair.pump(&mut accept_all);
    let request = pair.server_events.iter().find_map(|e| match e {
        ServerEvent::Connect(request) => Some(request.clone()),
        _ => None,
    });
    let request = request.expect("connect");
    assert_eq!(request.caps_ex, CAPS_EX_RECONNECT | CAPS_EX_MULTITRACK);
    assert!(request.declares_multitrack() && request.declares_reconnect());
    let answer = pair.client_events.iter().find_map(|e| match e {
        ClientEvent::Connected { properties, .. } => {
            properties.get("capsEx").and_then(Amf0Value::as_f64)
        }
        _ => None,
    });
    assert_eq!(
        answer,
        Some(f64::from(
            CAPS_EX_RECONNECT | CAPS_EX_MULTITRACK | CAPS_EX_MOD_EX
        ))
    );
    assert_eq!(answer, Some(f64::from(CAPS_EX_HONOURED)));
}

#[test]
fn a_reconnect_request_reaches_the_client_with_or_without_a_tc_url() {
    let mut pair = Pair::new();
    assert!(
        !pair.server.request_reconnect(None, "too early"),
        "nothing before connect is accepted"
    );
    pair.pump(&mut accept_all);
    assert!(pair
        .server
        .request_reconnect(Some("rtmp://10.0.0.2:1936/live"), "The server is draining."));
    assert!(pair.server.request_reconnect(None, "Connect again."));
    pair.pump(&mut accept_all);
    let requests: Vec<_> = pair
        .client_events
        .iter()
        .filter(|e| matches!(e, ClientEvent::ReconnectRequest { .. }))
        .cloned()
        .collect();
    assert_eq!(
        requests,
        [
            ClientEvent::ReconnectRequest {
                tc_url: Some("rtmp://10.0.0.2:1936/live".into()),
                description: "The server is draining.".into(),
            },
            ClientEvent::ReconnectRequest {
                tc_url: None,
                description: "Connect again.".into(),
            },
        ]
    );
}

#[test]
fn dead_peer_is_detected_by_the_idle_timeout_and_pings_are_sent() {
    let mut pair = Pair::new();
    pair.pump(&mut accept_all);
    let config = SessionConfig::default();
    let later = pair.now + config.ping_interval + Duration::from_millis(1);
    pair.server.handle_timeout(later).unwrap();
    let mut out = Vec::new();
    pair.server.poll_transmit(&mut out);
    assert!(!out.is_empty(), "a PingRequest was queued");
    let dead = pair.now + config.idle_timeout;
    assert!(matches!(
        pair.server.handle_timeout(dead),
        Err(SessionError::IdleTimeout(_))
    ));
}

#[test]
fn amf3_connect_is_understood_and_object_encoding_echoed() {
    // A type 17 connect as Flash sends it with objectEncoding 3: format byte 0, then AMF0 values.
    let now = Instant::now();
    let mut server = ServerSession::new(SessionConfig::default(), fixed_random(0x22), now);
    let mut client = rtmp_handshake::ClientHandshake::new(
        rtmp_handshake::ClientConfig::Simple,
        Box::new(|b: &mut [u8]| b.fill(1)),
    );
    server
        .handle_input(&client.take_output().unwrap(), now)
        .unwrap();
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    client.feed(&out.concat()).unwrap();
    let c2 = client.take_output().unwrap();
    let mut payload = vec![0u8];
    payload.extend_from_slice(
        &rtmp_amf::encode_amf0_values(&[
            "connect".into(),
            1.0.into(),
            Amf0Value::object([("app", "live".into()), ("objectEncoding", 3.0.into())]),
        ])
        .unwrap(),
    );
    let message = Message {
        timestamp: 0,
        type_id: type_id::COMMAND_AMF3,
        stream_id: 0,
        payload: Bytes::from(payload),
    };
    let mut chunks = bytes::BytesMut::new();
    rtmp_chunk::ChunkEncoder::new().encode(3, &message, &mut chunks);
    server
        .handle_input(&[&c2[..], &chunks[..]].concat(), now)
        .unwrap();
    let events: Vec<ServerEvent> = std::iter::from_fn(|| server.poll_event()).collect();
    let request = events.iter().find_map(|e| match e {
        ServerEvent::Connect(r) => Some(r.clone()),
        _ => None,
    });
    assert_eq!(request.unwrap().object_encoding, 3.0);
}

#[test]
fn a_connection_holds_at_most_max_streams() {
    let mut pair = Pair::new();
    pair.pump(&mut accept_all);
    let limit = SessionConfig::default().max_streams;
    for _ in 0..=limit {
        pair.client.create_stream();
    }
    pair.pump(&mut accept_all);
    let created = pair
        .client_events
        .iter()
        .filter(|e| matches!(e, ClientEvent::StreamCreated { .. }))
        .count();
    assert_eq!(created, limit);
    assert!(pair.client_events.iter().any(|e| matches!(
        e,
        ClientEvent::CommandFailed {
            command: "createStream",
            ..
        }
    )));
    // Playing on an id never created counts against the same limit.
    pair.client.play(1_000_000, "live");
    pair.pump(&mut accept_all);
    assert!(!pair.server_events.iter().any(|e| matches!(
        e,
        ServerEvent::Play {
            stream_id: 1_000_000,
            ..
        }
    )));
    assert!(pair.client_events.iter().any(|e| matches!(
        e,
        ClientEvent::Status { stream_id: 1_000_000, code, .. } if code == "NetStream.Play.Failed"
    )));
    // Deleting a stream makes room for a new one.
    pair.client.delete_stream(1, None);
    pair.client.create_stream();
    pair.pump(&mut accept_all);
    let created_after = pair
        .client_events
        .iter()
        .filter(|e| matches!(e, ClientEvent::StreamCreated { .. }))
        .count();
    assert_eq!(created_after, limit + 1);
}

#[test]
fn media_on_streams_that_do_not_publish_is_reported_a_bounded_number_of_times() {
    let mut pair = Pair::new();
    pair.pump(&mut accept_all);
    let limit = SessionConfig::default().max_streams;
    let audio = Message {
        timestamp: 0,
        type_id: type_id::AUDIO,
        stream_id: 0,
        payload: Bytes::from_static(&[0xaf, 0x01, 0x00]),
    };
    for stream_id in 1..=(limit as u32 * 4) {
        pair.client.send_message(stream_id, &audio);
    }
    pair.pump(&mut accept_all);
    let failures = pair
        .client_events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Status { code, .. } if code == "NetStream.Failed"))
        .count();
    assert_eq!(failures, limit);
    assert!(!pair
        .server_events
        .iter()
        .any(|e| matches!(e, ServerEvent::Media { .. })));
}
