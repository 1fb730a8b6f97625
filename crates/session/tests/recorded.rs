//! Recorded streams between an in-memory client and server: `play` with a start and a duration, the
//! buffer length, `seek`, `pause` and `getStreamLength` reach the application as events, and its answers
//! reach the client as Adobe's server sends them.

use rtmp_session::{ClientEvent, ClientOptions, ServerEvent};

mod support;
use support::Pair;

/// A connected pair with a created stream whose `play` is accepted as a recording (else live).
struct Vod {
    pair: Pair,
    recorded: bool,
}

impl std::ops::Deref for Vod {
    type Target = Pair;
    fn deref(&self) -> &Pair {
        &self.pair
    }
}

impl std::ops::DerefMut for Vod {
    fn deref_mut(&mut self) -> &mut Pair {
        &mut self.pair
    }
}

impl Vod {
    fn connected(recorded: bool) -> Self {
        let options = ClientOptions::new("vod", "rtmp://127.0.0.1/vod");
        let mut vod = Self {
            pair: Pair::with_options(options),
            recorded,
        };
        vod.pump();
        vod.client.create_stream();
        vod.pump();
        vod
    }

    fn pump(&mut self) {
        let recorded = self.recorded;
        self.pair.pump(&mut |server, event| match event {
            ServerEvent::Connect(_) => server.accept_connect(),
            ServerEvent::Play {
                stream_id,
                stream_name,
                ..
            } if recorded => server.accept_play_recorded(*stream_id, stream_name),
            ServerEvent::Play {
                stream_id,
                stream_name,
                ..
            } => server.accept_play(*stream_id, stream_name),
            _ => {}
        });
    }

    fn codes(&self) -> Vec<&str> {
        self.client_events
            .iter()
            .filter_map(|event| match event {
                ClientEvent::Status { code, .. } => Some(code.as_str()),
                ClientEvent::PlayStarted { .. } => Some("NetStream.Play.Start"),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn play_arguments_and_the_buffer_length_reach_the_application() {
    let mut pair = Vod::connected(true);
    pair.client.play_from(1, "clip", 5000.0, 2000.0, 1500);
    pair.pump();
    assert!(pair.server_events.iter().any(|event| matches!(
        event,
        ServerEvent::Play { stream_id: 1, stream_name, start, duration, .. }
            if stream_name == "clip" && *start == 5000.0 && *duration == 2000.0
    )));
    assert!(pair.server_events.contains(&ServerEvent::BufferLength {
        stream_id: 1,
        buffer_ms: 1500
    }));
}

#[test]
fn a_recorded_stream_seeks_through_the_application() {
    let mut pair = Vod::connected(true);
    pair.client.play_from(1, "clip", 0.0, -1.0, 0);
    pair.pump();
    pair.client.seek(1, 3500.0);
    pair.pump();
    assert!(pair.server_events.contains(&ServerEvent::Seek {
        stream_id: 1,
        position_ms: 3500.0
    }));
    pair.client_events.clear();
    pair.server.seek_done(1, "clip", 3000.0);
    pair.pump();
    assert_eq!(
        pair.codes(),
        [
            "NetStream.Seek.Notify",
            "NetStream.Play.Reset",
            "NetStream.Play.Start"
        ]
    );
    // Pause and unpause are answered by the session, and told to the application.
    pair.client.pause(1, true, 3000.0);
    pair.client.pause(1, false, 3000.0);
    pair.pump();
    assert!(pair.server_events.contains(&ServerEvent::Pause {
        stream_id: 1,
        paused: true
    }));
    assert!(pair
        .codes()
        .ends_with(&["NetStream.Pause.Notify", "NetStream.Unpause.Notify"]));
    // The end: Play.Stop, then onPlayStatus Play.Complete.
    pair.server.end_recorded_play(1, "clip", 6.0, 1000);
    pair.pump();
    assert!(pair
        .codes()
        .ends_with(&["NetStream.Play.Stop", "NetStream.Play.Complete"]));
}

#[test]
fn a_live_stream_refuses_to_seek_by_itself() {
    let mut pair = Vod::connected(false);
    pair.client.play(1, "live");
    pair.pump();
    pair.client.seek(1, 3500.0);
    pair.pump();
    assert!(!pair
        .server_events
        .iter()
        .any(|event| matches!(event, ServerEvent::Seek { .. })));
    assert!(pair.codes().contains(&"NetStream.Seek.Failed"));
}

#[test]
fn get_stream_length_is_the_applications_to_answer() {
    let mut pair = Vod::connected(true);
    pair.client.get_stream_length("clip?token=1");
    pair.pump();
    let transaction_id = pair
        .server_events
        .iter()
        .find_map(|event| match event {
            ServerEvent::GetStreamLength {
                transaction_id,
                stream_name,
                query,
            } if stream_name == "clip" && query == "token=1" => Some(*transaction_id),
            _ => None,
        })
        .expect("a GetStreamLength event");
    pair.server.answer_stream_length(transaction_id, 6.08);
    pair.pump();
    assert!(pair
        .client_events
        .contains(&ClientEvent::StreamLength { seconds: 6.08 }));
}
