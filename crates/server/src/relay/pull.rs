//! A pull: a remote stream fetched by an `rtmp-client` player and published into the hub here, so that
//! every local player (RTMP, and the HTTP outputs that subscribe to the hub) shares one upstream
//! connection. Started by the first play of a stream nobody publishes here ([`join`]), kept while
//! leases ([`PullLease`], one per player) live, stopped `pull_idle_ms` after the last one is dropped. An
//! upstream that refuses, is unreachable or does not answer within `relay_timeout_ms` fails the pull:
//! each waiting player's lease reports it ([`PullLease::poll_failure`]) and the router tells the player.
//! A connection lost mid-stream is retried with backoff while players remain.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rtmp_client::{Client, ClientError, ClientEvent, RtmpUrl};
use rtmp_hub::{Hub, Publisher, StreamKey};

use super::{backoff_delay, registry, Backoff, Kind, Origin, RelaySettings, RelayStatus, State};

/// How often an idle pull looks at its players when nothing arrives.
const TICK: Duration = Duration::from_millis(250);

/// Why a pull could not start, as its waiting players are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullFailure {
    /// The upstream answered that it has no such stream (`NetStream.Play.StreamNotFound`); otherwise
    /// the pull failed (`NetStream.Play.Failed`).
    pub not_found: bool,
    /// What went wrong, naming the upstream with its key masked.
    pub description: String,
}

#[derive(Debug, Default)]
struct FailureSlot {
    failure: Option<PullFailure>,
    wakers: Vec<Waker>,
}

/// What a pull's task and its leases share.
#[derive(Debug)]
struct PullShared {
    /// The relay's id in the API.
    id: u64,
    players: AtomicUsize,
    failure: Mutex<FailureSlot>,
}

impl PullShared {
    fn slot(&self) -> std::sync::MutexGuard<'_, FailureSlot> {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fail(&self, failure: PullFailure) {
        let wakers = {
            let mut slot = self.slot();
            slot.failure = Some(failure);
            std::mem::take(&mut slot.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    fn failed(&self) -> bool {
        self.slot().failure.is_some()
    }
}

/// A running pull's place: the hub it publishes into (by address: several servers may share a
/// process) and the stream.
type PullKey = (usize, StreamKey);

/// The hub's identity while it lives (a pull's task holds its hub, so no other hub takes the address
/// while the pull is listed).
fn hub_id(hub: &Hub) -> usize {
    std::ptr::from_ref(hub.config()) as usize
}

fn pulls() -> std::sync::MutexGuard<'static, HashMap<PullKey, Arc<PullShared>>> {
    static PULLS: OnceLock<Mutex<HashMap<PullKey, Arc<PullShared>>>> = OnceLock::new();
    PULLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// One player's share of a pull: the pull goes on while any lease lives.
#[derive(Debug)]
pub struct PullLease {
    shared: Arc<PullShared>,
    reported: bool,
}

impl PullLease {
    /// The pull's relay id in the API.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// Ready once, with the failure, if the pull could not start; registers `cx`'s waker otherwise.
    pub fn poll_failure(&mut self, cx: &mut Context<'_>) -> Poll<PullFailure> {
        if self.reported {
            return Poll::Pending;
        }
        let mut slot = self.shared.slot();
        if let Some(failure) = &slot.failure {
            self.reported = true;
            return Poll::Ready(failure.clone());
        }
        if !slot.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            slot.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for PullLease {
    fn drop(&mut self) {
        self.shared.players.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A lease on the pull of `key` into `hub` if one runs (and has not failed), whoever started it.
pub fn join_running(hub: &Hub, key: &StreamKey) -> Option<PullLease> {
    let place = (hub_id(hub), key.clone());
    let running = pulls();
    let shared = running.get(&place).filter(|shared| !shared.failed())?;
    shared.players.fetch_add(1, Ordering::Relaxed);
    Some(PullLease {
        shared: shared.clone(),
        reported: false,
    })
}

/// A lease on the pull of `key` from `url`, starting the pull when none runs (a failed one is not
/// joined: a new play tries again). Needs a Tokio runtime.
pub fn join(
    hub: &Hub,
    key: &StreamKey,
    url: &str,
    settings: RelaySettings,
    origin: Origin,
) -> PullLease {
    let place = (hub_id(hub), key.clone());
    let mut running = pulls();
    if let Some(shared) = running.get(&place).filter(|shared| !shared.failed()) {
        shared.players.fetch_add(1, Ordering::Relaxed);
        return PullLease {
            shared: shared.clone(),
            reported: false,
        };
    }
    let registration = registry().register(Kind::Pull, origin, &key.app, &key.name, url);
    let shared = Arc::new(PullShared {
        id: registration.status().id,
        players: AtomicUsize::new(1),
        failure: Mutex::new(FailureSlot::default()),
    });
    running.insert(place.clone(), shared.clone());
    drop(running);
    let status = registration.status().clone();
    let abort = status.clone();
    let (hub, key, url, task_shared) = (hub.clone(), key.clone(), url.to_owned(), shared.clone());
    let task = tokio::spawn(async move {
        let _registration = registration;
        run(&hub, &key, &url, &settings, &status, &task_shared).await;
        let mut running = pulls();
        if running
            .get(&place)
            .is_some_and(|listed| Arc::ptr_eq(listed, &task_shared))
        {
            running.remove(&place);
        }
    });
    abort.set_task(&task);
    PullLease {
        shared,
        reported: false,
    }
}

/// How a pull's connection ended.
enum Ended {
    /// No player for `pull_idle_ms`, or a local publisher took the stream.
    Done,
    /// The connection failed.
    Lost(String),
}

async fn run(
    hub: &Hub,
    key: &StreamKey,
    url: &str,
    settings: &RelaySettings,
    status: &RelayStatus,
    shared: &PullShared,
) {
    let upstream = status.target.clone();
    let stream = url.split_once("://").map_or("", |(_, rest)| rest);
    let stream = stream.splitn(3, '/').nth(2).unwrap_or_default();
    let fail = |not_found: bool, error: &str| {
        let error = super::mask::scrub(error, stream);
        status.failed(&error);
        status.set_state(State::Failed);
        tracing::warn!(stream = %key, %upstream, %error, "pull failed");
        shared.fail(PullFailure {
            not_found,
            description: format!("pull from {upstream} failed: {error}"),
        });
    };
    let parsed: RtmpUrl = match super::parse_url(url) {
        Ok(parsed) => parsed,
        Err(error) => return fail(false, &error),
    };
    let mut backoff = Backoff::default();
    let mut connections = 0u64;
    let mut idle = Idle::default();
    loop {
        status.set_state(State::Connecting);
        match connect(&parsed, settings).await {
            Ok((client, _)) => {
                connections += 1;
                if connections > 1 {
                    status.reconnected();
                }
                backoff.reset();
                status.set_state(State::Relaying);
                tracing::info!(stream = %key, %upstream, "pull connected");
                match forward(hub, key, client, settings, status, shared, &mut idle).await {
                    Ended::Done => {
                        tracing::info!(stream = %key, %upstream, "pull stopped");
                        return;
                    }
                    Ended::Lost(error) => {
                        let error = super::mask::scrub(&error, stream);
                        status.failed(&error);
                        tracing::warn!(stream = %key, %upstream, %error, "pull lost");
                    }
                }
            }
            // A pull started through the API keeps trying; one started by players tells them.
            Err(error) if connections == 0 && status.origin != Origin::Api => {
                let not_found = matches!(&error, ClientError::Refused { description, .. }
                    if description.contains("StreamNotFound"));
                return fail(not_found, &error.to_string());
            }
            Err(error) => {
                let error = super::mask::scrub(&error.to_string(), stream);
                status.failed(&error);
                tracing::warn!(stream = %key, %upstream, %error, "pull reconnect failed");
            }
        }
        status.set_state(State::Retrying);
        let until = Instant::now() + backoff_delay(&mut backoff);
        while Instant::now() < until {
            if idle.over(shared, settings.idle) {
                return;
            }
            tokio::time::sleep(TICK.min(until.saturating_duration_since(Instant::now()))).await;
        }
    }
}

/// Since when a pull has had no player.
#[derive(Debug, Default)]
struct Idle(Option<Instant>);

impl Idle {
    /// Whether the pull has had no player for `limit`; notes when the last one left.
    fn over(&mut self, shared: &PullShared, limit: Duration) -> bool {
        if shared.players.load(Ordering::Relaxed) > 0 {
            self.0 = None;
            return false;
        }
        let since = *self.0.get_or_insert_with(Instant::now);
        since.elapsed() >= limit
    }

    fn deadline(&self, limit: Duration) -> Option<Instant> {
        self.0.map(|since| since + limit)
    }
}

async fn connect(url: &RtmpUrl, settings: &RelaySettings) -> Result<(Client, u32), ClientError> {
    // Every codec: what the upstream sends is passed on as it is, Enhanced RTMP included.
    let options = settings.connect_options(vec!["*".to_owned()]);
    let attempt = async {
        let mut client = Client::connect(url, &options).await?;
        let stream_id = client.play(&url.stream).await?;
        Ok((client, stream_id))
    };
    tokio::time::timeout(settings.timeout, attempt)
        .await
        .unwrap_or(Err(ClientError::Timeout(settings.timeout)))
}

/// Publishes what the upstream sends until the pull is idle or the connection fails. The hub's
/// publisher is taken at the first message (and again after the upstream's publisher came back).
async fn forward(
    hub: &Hub,
    key: &StreamKey,
    mut client: Client,
    settings: &RelaySettings,
    status: &RelayStatus,
    shared: &PullShared,
    idle: &mut Idle,
) -> Ended {
    let mut publisher: Option<Publisher> = None;
    let mut counted = 0u64;
    loop {
        if idle.over(shared, settings.idle) {
            return Ended::Done;
        }
        let now = Instant::now();
        let deadline = [
            publisher.as_ref().and_then(Publisher::flush_deadline),
            idle.deadline(settings.idle),
            Some(now + TICK),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + TICK);
        let event = match client.next_event_before(deadline).await {
            Ok(event) => event,
            Err(error) => return Ended::Lost(error.to_string()),
        };
        let received = client.byte_counts().0;
        status.add_bytes(received.saturating_sub(counted));
        counted = received;
        let now = Instant::now();
        match event {
            Some(ClientEvent::Media { message, .. }) => match take(hub, key, &mut publisher, now) {
                Some(publisher) => publisher.send(&message, now),
                None => return Ended::Done,
            },
            Some(ClientEvent::Metadata { message, .. }) => {
                match take(hub, key, &mut publisher, now) {
                    Some(publisher) => publisher.set_metadata(Some(&message)),
                    None => return Ended::Done,
                }
            }
            Some(ClientEvent::Status { code, .. })
                if code == "NetStream.Play.UnpublishNotify" || code == "NetStream.Play.Stop" =>
            {
                // The upstream's publisher left: so does ours, and the players are told.
                publisher = None;
            }
            Some(ClientEvent::Status { code, .. }) if code == super::RECONNECT_REQUEST => {
                return Ended::Lost("the upstream asked to reconnect".into());
            }
            Some(ClientEvent::Status {
                level,
                code,
                description,
                ..
            }) if level == "error" => return Ended::Lost(format!("{code}: {description}")),
            _ => {}
        }
        if let Some(publisher) = &publisher {
            publisher.flush_if_due(now);
            let mut cx = Context::from_waker(Waker::noop());
            if publisher.poll_kicked(&mut cx).is_ready() {
                tracing::info!(stream = %key, "pull ends: a local publisher took the stream over");
                return Ended::Done;
            }
        }
    }
}

/// The hub's publisher of `key`, taken now if the pull has none; `None` when a local publisher holds
/// the stream (the pull then ends: the stream is published here).
fn take<'a>(
    hub: &Hub,
    key: &StreamKey,
    publisher: &'a mut Option<Publisher>,
    now: Instant,
) -> Option<&'a Publisher> {
    if publisher.is_none() {
        match hub.publish(key, now) {
            Ok(taken) => *publisher = Some(taken),
            Err(error) => {
                tracing::info!(stream = %key, %error, "pull ends: the stream is published here");
                return None;
            }
        }
    }
    publisher.as_ref()
}

/// The pull a play of `key` starts or joins: from a hook's relay URL (`relay_to`), or the
/// application's `pull` when nobody publishes the stream here; a pull already running is joined. Used
/// by every kind of play (RTMP, HTTP-FLV). Needs a Tokio runtime when a pull starts.
pub fn lease_for(
    hub: &Hub,
    config: &crate::config::AppConfig,
    key: &StreamKey,
    relay_to: Option<String>,
) -> Option<PullLease> {
    // A pull already running feeds the stream (and counts as its publisher): join it.
    if let Some(lease) = join_running(hub, key) {
        return Some(lease);
    }
    let published_here = hub.stats(key).is_some_and(|stats| stats.publishing);
    let (url, origin) = match relay_to {
        Some(url) if !published_here => (url, Origin::Hook),
        Some(_) => return None,
        None => (pull_url(config, key, published_here)?, Origin::Config),
    };
    Some(join(hub, key, &url, RelaySettings::of(config), origin))
}

/// Whether a play of a stream should start (or join) a pull, and from where: the application has
/// `pull` and nobody publishes the stream here.
pub fn pull_url(
    config: &crate::config::AppConfig,
    key: &StreamKey,
    published_here: bool,
) -> Option<String> {
    let template = config.pull.as_deref()?;
    (!published_here).then(|| super::render_url(template, &key.app, &key.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_play_pulls_only_what_nobody_publishes_here() {
        let config = crate::config::AppConfig {
            pull: Some("rtmp://up.example/src/{name}".into()),
            ..Default::default()
        };
        let key = StreamKey::new("live", "cam");
        assert_eq!(
            pull_url(&config, &key, false).as_deref(),
            Some("rtmp://up.example/src/cam")
        );
        assert_eq!(pull_url(&config, &key, true), None);
        assert_eq!(pull_url(&Default::default(), &key, false), None);
    }

    #[tokio::test]
    async fn an_upstream_that_refuses_fails_every_waiting_lease() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let hub = Hub::new(Default::default(), Instant::now());
        let key = StreamKey::new("live", "refused");
        let settings = RelaySettings {
            timeout: Duration::from_millis(500),
            ..Default::default()
        };
        let url = format!("rtmp://{address}/live/secretkey");
        let mut first = join(&hub, &key, &url, settings.clone(), Origin::Config);
        let mut second = join(&hub, &key, &url, settings, Origin::Config);
        let failure = std::future::poll_fn(|cx| first.poll_failure(cx)).await;
        assert!(!failure.not_found);
        assert!(failure.description.contains("cannot connect"));
        assert!(!failure.description.contains("secretkey"));
        let again = std::future::poll_fn(|cx| second.poll_failure(cx)).await;
        assert_eq!(again, failure);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(first.poll_failure(&mut cx).is_pending(), "reported once");
    }
}
