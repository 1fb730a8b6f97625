//! `GET /metrics`: the Prometheus text exposition, written at scrape time from the connection
//! registry (connection counts and bytes read from each open connection, totals of those that ended).
//! Nothing here runs on the frame path.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::clients::Clients;

/// The exposition of every metric.
pub fn render(clients: &Clients) -> String {
    let open = clients.list();
    let totals = clients.totals();
    let mut connections: BTreeMap<&str, u64> = BTreeMap::new();
    let mut players: BTreeMap<&str, u64> = BTreeMap::new();
    let mut bytes_in = totals.bytes_in.clone();
    let mut bytes_out = totals.bytes_out.clone();
    let mut streams = 0u64;
    let mut dropped = 0u64;
    for client in &open {
        *connections.entry(client.variant).or_default() += 1;
        match client.role {
            "player" => *players.entry(client.variant).or_default() += 1,
            "publisher" => streams += 1,
            _ => {}
        }
        dropped += client.dropped_frames;
        *bytes_in.entry(client.variant).or_default() += client.bytes_in;
        *bytes_out.entry(client.variant).or_default() += client.bytes_out;
    }
    let mut out = String::new();
    family(&mut out, "rtmpx_build_info", "gauge", "The running build.");
    let _ = writeln!(
        out,
        "rtmpx_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    labelled(
        &mut out,
        "rtmpx_connections",
        "gauge",
        "Open connections.",
        "variant",
        &connections,
    );
    labelled(
        &mut out,
        "rtmpx_connections_total",
        "counter",
        "Connections accepted, by the transport they came in on.",
        "variant",
        &totals.started,
    );
    labelled(
        &mut out,
        "rtmpx_connection_ends_total",
        "counter",
        "Connections ended, by close reason.",
        "reason",
        &totals.ended,
    );
    family(
        &mut out,
        "rtmpx_streams",
        "gauge",
        "Streams being published.",
    );
    let _ = writeln!(out, "rtmpx_streams {streams}");
    family(
        &mut out,
        "rtmpx_dropped_frames",
        "gauge",
        "Frames skipped for the open connections' players that fell behind.",
    );
    let _ = writeln!(out, "rtmpx_dropped_frames {dropped}");
    labelled(
        &mut out,
        "rtmpx_players",
        "gauge",
        "Connections playing a stream.",
        "variant",
        &players,
    );
    labelled(
        &mut out,
        "rtmpx_received_bytes_total",
        "counter",
        "Bytes received from peers.",
        "variant",
        &bytes_in,
    );
    labelled(
        &mut out,
        "rtmpx_sent_bytes_total",
        "counter",
        "Bytes sent to peers.",
        "variant",
        &bytes_out,
    );
    relays(&mut out, crate::relay::counters());
    out
}

// Relays (crate::relay): counters kept as plain atomics by the relay module, read here.
fn relays(out: &mut String, relays: crate::relay::RelayCounters) {
    family(
        out,
        "rtmpx_relays",
        "gauge",
        "Relays (push and pull) running.",
    );
    let _ = writeln!(out, "rtmpx_relays {}", relays.running);
    family(
        out,
        "rtmpx_relays_started_total",
        "counter",
        "Relays started, by kind.",
    );
    let _ = writeln!(
        out,
        "rtmpx_relays_started_total{{kind=\"push\"}} {}",
        relays.pushes_started
    );
    let _ = writeln!(
        out,
        "rtmpx_relays_started_total{{kind=\"pull\"}} {}",
        relays.pulls_started
    );
    family(
        out,
        "rtmpx_relay_reconnects_total",
        "counter",
        "Relay connections after a relay's first.",
    );
    let _ = writeln!(out, "rtmpx_relay_reconnects_total {}", relays.reconnects);
    family(
        out,
        "rtmpx_relay_failures_total",
        "counter",
        "Relay attempts that failed (refused, unreachable, timed out, lost).",
    );
    let _ = writeln!(out, "rtmpx_relay_failures_total {}", relays.failures);
    family(
        out,
        "rtmpx_relay_sent_bytes_total",
        "counter",
        "Bytes sent to push targets.",
    );
    let _ = writeln!(out, "rtmpx_relay_sent_bytes_total {}", relays.bytes_sent);
    family(
        out,
        "rtmpx_relay_received_bytes_total",
        "counter",
        "Bytes received from pull upstreams.",
    );
    let _ = writeln!(
        out,
        "rtmpx_relay_received_bytes_total {}",
        relays.bytes_received
    );
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn labelled(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    label: &str,
    values: &BTreeMap<&str, u64>,
) {
    family(out, name, kind, help);
    for (value, count) in values {
        // Label values are the server's own fixed labels: no escaping needed.
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {count}");
    }
}
