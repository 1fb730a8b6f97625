//! `GET /metrics`: the OpenMetrics exposition (which Prometheus scrapes), through `prometheus-client`.
//!
//! Two kinds of numbers: [`Counters`], kept as events happen (a connection starts or ends, a handshake
//! fails; never per frame), and gauges read at scrape time from the connection registry and the hub.
//! Nothing here runs on the frame path. Counters another module keeps as plain atomics (relay,
//! recording, HLS) are exported in [`render`]'s "other modules" section with [`atomic_counter`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::clients::{Clients, Role};
use crate::close_reason::HandshakeFailure;
use crate::policy::{Reason, REFUSALS};

/// The content type of [`render`]'s text (OpenMetrics, which Prometheus asks for).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of [`classic_text`]'s (the Prometheus text format 0.0.4, for other readers).
pub const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether a request's `Accept` header asks for OpenMetrics (Prometheus' scrapes do).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| accept.contains("application/openmetrics-text"))
}

/// [`render`]'s exposition in the Prometheus text format 0.0.4: the two formats differ, for what is
/// exported here, in a counter family's name (OpenMetrics names it without `_total`, the samples with
/// it) and in the final `# EOF`.
pub fn classic_text(openmetrics: &str) -> String {
    let mut counters: Vec<&str> = Vec::new();
    for line in openmetrics.lines() {
        if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|rest| rest.strip_suffix(" counter"))
        {
            counters.push(name);
        }
    }
    let mut text = String::with_capacity(openmetrics.len() + counters.len() * 16);
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let family = ["# HELP ", "# TYPE "].into_iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match family {
            Some(renamed) => text.push_str(&renamed),
            None => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Variant {
    variant: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Version {
    version: &'static str,
}

/// What is counted as it happens: once per connection, never per frame.
#[derive(Debug, Default)]
pub struct Counters {
    connections: Family<Variant, Counter>,
    ends: Family<ReasonLabel, Counter>,
    handshake_failures: Family<ReasonLabel, Counter>,
    /// Bytes received and sent by connections that ended, by variant.
    ended_bytes: Mutex<Vec<(&'static str, u64, u64)>>,
    /// Frames skipped for the players of connections that ended.
    ended_dropped: AtomicU64,
}

impl Counters {
    /// Connections that came in as `variant` so far.
    pub fn started(&self, variant: &'static str) -> u64 {
        self.connections.get_or_create(&Variant { variant }).get()
    }

    /// Connections that ended for `reason` so far.
    pub fn ended(&self, reason: &'static str) -> u64 {
        self.ends.get_or_create(&ReasonLabel { reason }).get()
    }

    /// A connection came in as `variant`.
    pub fn connection_started(&self, variant: &'static str) {
        self.connections.get_or_create(&Variant { variant }).inc();
    }

    /// A connection ended for `reason`, as `variant`, with `bytes` received and sent and `dropped`
    /// frames skipped for its players.
    pub fn connection_ended(
        &self,
        reason: &'static str,
        variant: &'static str,
        bytes: (u64, u64),
        dropped: u64,
    ) {
        self.ends.get_or_create(&ReasonLabel { reason }).inc();
        self.ended_dropped.fetch_add(dropped, Ordering::Relaxed);
        let mut ended = self
            .ended_bytes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match ended.iter_mut().find(|(seen, ..)| *seen == variant) {
            Some((_, bytes_in, bytes_out)) => {
                *bytes_in += bytes.0;
                *bytes_out += bytes.1;
            }
            None => ended.push((variant, bytes.0, bytes.1)),
        }
    }

    /// A connection failed before its handshake was done.
    pub fn handshake_failed(&self, failure: HandshakeFailure) {
        self.handshake_failures
            .get_or_create(&ReasonLabel {
                reason: failure.as_str(),
            })
            .inc();
    }

    /// Connections ended for `reason` so far.
    pub fn ends(&self, reason: &'static str) -> u64 {
        self.ends.get_or_create(&ReasonLabel { reason }).get()
    }

    /// Handshake failures of `failure` so far.
    pub fn handshake_failures(&self, failure: HandshakeFailure) -> u64 {
        self.handshake_failures
            .get_or_create(&ReasonLabel {
                reason: failure.as_str(),
            })
            .get()
    }
}

/// Exports `value`, a counter another module keeps as a plain atomic, as `rtmpx_NAME_total`.
pub fn atomic_counter(registry: &mut Registry, name: &str, help: &str, value: &AtomicU64) {
    registry.register(name, help, ConstCounter::new(value.load(Ordering::Relaxed)));
}

fn gauge_family(
    registry: &mut Registry,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (&'static str, i64)>,
) {
    let family = Family::<Variant, Gauge>::default();
    // The RTMP variants are always there, at zero when no connection has them.
    for variant in RTMP_VARIANTS {
        family.get_or_create(&Variant { variant }).inc_by(0);
    }
    for (variant, value) in values {
        family.get_or_create(&Variant { variant }).set(value);
    }
    registry.register(name, help, family);
}

fn counter_family(
    registry: &mut Registry,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (&'static str, u64)>,
) {
    let family = Family::<Variant, Counter>::default();
    for (variant, value) in values {
        family.get_or_create(&Variant { variant }).inc_by(value);
    }
    registry.register(name, help, family);
}

/// The variants every connection gauge shows, at zero when none is open.
const RTMP_VARIANTS: [&str; 6] = ["rtmp", "rtmps", "rtmpt", "rtmpts", "rtmpe", "rtmpte"];

const REFUSAL_REASONS: [(Reason, &str); 6] = [
    (Reason::BadName, "bad_name"),
    (Reason::AddressDenied, "address_denied"),
    (Reason::BadSignature, "bad_signature"),
    (Reason::LimitReached, "limit_reached"),
    (Reason::AuthRequired, "auth_required"),
    (Reason::AuthFailed, "auth_failed"),
];

/// Tallies per label, in the order first seen (a handful of variants: a vector beats a map).
fn tally(tallies: &mut Vec<(&'static str, u64)>, label: &'static str, value: u64) {
    match tallies.iter_mut().find(|(seen, _)| *seen == label) {
        Some((_, total)) => *total += value,
        None => tallies.push((label, value)),
    }
}

/// The exposition of every metric.
pub fn render(clients: &Clients) -> String {
    let open = clients.list();
    let counters = &clients.counters;
    let mut connections = Vec::new();
    let mut players = Vec::new();
    let mut bytes_in = Vec::new();
    let mut bytes_out = Vec::new();
    let mut streams = 0i64;
    let mut dropped = 0u64;
    for client in &open {
        tally(&mut connections, client.variant, 1);
        tally(&mut bytes_in, client.variant, client.bytes_in);
        tally(&mut bytes_out, client.variant, client.bytes_out);
        match client.role {
            Role::Player => tally(&mut players, client.variant, 1),
            Role::Publisher => streams += 1,
            Role::Idle => {}
        }
        dropped += client.dropped_frames;
    }
    for (variant, ended_in, ended_out) in counters
        .ended_bytes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
    {
        tally(&mut bytes_in, variant, *ended_in);
        tally(&mut bytes_out, variant, *ended_out);
    }
    let as_gauge = |tallies: Vec<(&'static str, u64)>| {
        tallies
            .into_iter()
            .map(|(label, value)| (label, i64::try_from(value).unwrap_or(i64::MAX)))
            .collect::<Vec<_>>()
    };

    for variant in RTMP_VARIANTS {
        counters
            .connections
            .get_or_create(&Variant { variant })
            .inc_by(0);
    }
    for failure in HandshakeFailure::ALL {
        counters
            .handshake_failures
            .get_or_create(&ReasonLabel {
                reason: failure.as_str(),
            })
            .inc_by(0);
    }
    let mut registry = Registry::with_prefix("rtmpx");
    let build = Family::<Version, Gauge>::default();
    build
        .get_or_create(&Version {
            version: env!("CARGO_PKG_VERSION"),
        })
        .set(1);
    registry.register("build_info", "The running build", build);
    gauge_family(
        &mut registry,
        "connections",
        "Open connections, by variant",
        as_gauge(connections),
    );
    registry.register(
        "connections_accepted",
        "Connections accepted, by the variant they came in as",
        counters.connections.clone(),
    );
    registry.register(
        "handshake_failures",
        "Connections that failed before their handshake was done, by reason",
        counters.handshake_failures.clone(),
    );
    registry.register(
        "connection_ends",
        "Connections ended, by close reason",
        counters.ends.clone(),
    );
    let publishing = Gauge::<i64>::default();
    publishing.set(streams);
    registry.register("streams", "Streams being published", publishing);
    gauge_family(
        &mut registry,
        "players",
        "Connections playing a stream, by variant",
        as_gauge(players),
    );
    counter_family(
        &mut registry,
        "received_bytes",
        "Bytes received from peers, by variant",
        bytes_in,
    );
    counter_family(
        &mut registry,
        "sent_bytes",
        "Bytes sent to peers, by variant",
        bytes_out,
    );
    let skipped = Counter::<u64>::default();
    skipped.inc_by(dropped + counters.ended_dropped.load(Ordering::Relaxed));
    registry.register(
        "dropped_frames",
        "Frames skipped for players that fell behind (each skips to the next keyframe)",
        skipped,
    );
    let refusals = Family::<ReasonLabel, Counter>::default();
    for (reason, label) in REFUSAL_REASONS {
        refusals
            .get_or_create(&ReasonLabel { reason: label })
            .inc_by(REFUSALS.get(reason));
    }
    registry.register(
        "refusals",
        "Publish and play requests (and logins) refused by the access rules, by reason",
        refusals,
    );

    // Other modules: counters kept as plain atomics in their own module (relay, recording, HLS), one
    // `atomic_counter(&mut registry, "NAME", "HELP", &module::COUNTER)` line each, or a function of
    // theirs, here.
    relays(&mut registry, crate::relay::counters());

    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    text
}

/// Relays (crate::relay): counters the relay module keeps as plain atomics, read at scrape time.
fn relays(registry: &mut Registry, relays: crate::relay::RelayCounters) {
    let running = Gauge::<i64>::default();
    running.set(i64::try_from(relays.running).unwrap_or(i64::MAX));
    registry.register("relays", "Relays (push and pull) running", running);
    let started = Family::<Kind, Counter>::default();
    started
        .get_or_create(&Kind { kind: "push" })
        .inc_by(relays.pushes_started);
    started
        .get_or_create(&Kind { kind: "pull" })
        .inc_by(relays.pulls_started);
    registry.register("relays_started", "Relays started, by kind", started);
    registry.register(
        "relay_reconnects",
        "Relay connections after a relay's first",
        ConstCounter::new(relays.reconnects),
    );
    registry.register(
        "relay_failures",
        "Relay attempts that failed (refused, unreachable, timed out, lost)",
        ConstCounter::new(relays.failures),
    );
    registry.register(
        "relay_sent_bytes",
        "Bytes sent to push targets",
        ConstCounter::new(relays.bytes_sent),
    );
    registry.register(
        "relay_received_bytes",
        "Bytes received from pull upstreams",
        ConstCounter::new(relays.bytes_received),
    );
}

/// A relay's kind, `push` or `pull`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_exposition_counts_connections_ends_and_failures_by_label() {
        let clients = Arc::new(Clients::default());
        let peer = ([127, 0, 0, 1], 1935).into();
        let open = clients.register(peer, "rtmps");
        let ended = clients.register(peer, "rtmp");
        ended.stats().set_counts(10, 20, 4);
        ended.ended("kicked", "rtmp", (10, 20));
        drop(ended);
        clients
            .counters
            .handshake_failed(HandshakeFailure::UnsupportedVersion);
        let text = render(&clients);
        for line in [
            "# TYPE rtmpx_connections gauge",
            r#"rtmpx_connections{variant="rtmps"} 1"#,
            r#"rtmpx_connections_accepted_total{variant="rtmp"} 1"#,
            r#"rtmpx_connection_ends_total{reason="kicked"} 1"#,
            r#"rtmpx_handshake_failures_total{reason="unsupported_version"} 1"#,
            r#"rtmpx_received_bytes_total{variant="rtmp"} 10"#,
            r#"rtmpx_sent_bytes_total{variant="rtmp"} 20"#,
            r#"rtmpx_build_info{version=""#,
            "rtmpx_streams 0",
            "rtmpx_dropped_frames_total 4",
            r#"rtmpx_refusals_total{reason="bad_name"} "#,
            "# EOF",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        let classic = classic_text(&text);
        for line in [
            "# HELP rtmpx_connections Open connections, by variant.",
            "# TYPE rtmpx_connections gauge",
            "# TYPE rtmpx_connections_accepted_total counter",
            "# HELP rtmpx_connection_ends_total Connections ended, by close reason.",
            r#"rtmpx_connection_ends_total{reason="kicked"} 1"#,
        ] {
            assert!(classic.contains(line), "{line} in\n{classic}");
        }
        assert!(!classic.contains("# EOF"), "{classic}");
        drop(open);
    }
}
