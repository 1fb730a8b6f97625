//! Access control decided without waiting: name checks, address rules (nginx-rtmp's `allow`/`deny`)
//! and signed stream URLs, from an application's [`AppConfig`], the peer, the request and the current
//! time given by the caller. The router asks here before anything else sees a request; every refusal is
//! counted in [`REFUSALS`].

pub mod adobe;
pub mod failures;
pub mod ip;
pub mod limits;
pub mod names;
pub mod signed;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use crate::config::AppConfig;

pub use ip::{IpMatch, IpRules};

/// What a stream request asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Publish a stream.
    Publish,
    /// Play a stream.
    Play,
}

impl Action {
    /// The action as logs and hooks name it: `publish` or `play`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Play => "play",
        }
    }
}

/// Why a request was refused, one counter each in [`Refusals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The stream name is not one the application accepts.
    BadName,
    /// The address rules deny the peer.
    AddressDenied,
    /// The signed URL is missing, wrong or expired.
    BadSignature,
    /// A limit on publishers or players was reached.
    LimitReached,
    /// A step of a login exchange, or a request that needs a login.
    AuthRequired,
    /// A wrong user name or password.
    AuthFailed,
}

/// A refused request: why, and the description the client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why, for the metrics.
    pub reason: Reason,
    /// What the client is told.
    pub description: String,
}

impl Refusal {
    pub(crate) fn new(reason: Reason, description: String) -> Self {
        REFUSALS.count(reason);
        Self {
            reason,
            description,
        }
    }
}

/// Refusals counted since the start, per reason, for metrics.
#[derive(Debug, Default)]
pub struct Refusals {
    /// Names refused ([`Reason::BadName`]).
    pub bad_name: AtomicU64,
    /// Addresses denied ([`Reason::AddressDenied`]).
    pub address_denied: AtomicU64,
    /// Bad signatures ([`Reason::BadSignature`]).
    pub bad_signature: AtomicU64,
    /// Limits reached ([`Reason::LimitReached`]).
    pub limit_reached: AtomicU64,
    /// Login steps and requests needing a login ([`Reason::AuthRequired`]).
    pub auth_required: AtomicU64,
    /// Wrong user names or passwords ([`Reason::AuthFailed`]).
    pub auth_failed: AtomicU64,
}

impl Refusals {
    fn count(&self, reason: Reason) {
        let counter = match reason {
            Reason::BadName => &self.bad_name,
            Reason::AddressDenied => &self.address_denied,
            Reason::BadSignature => &self.bad_signature,
            Reason::LimitReached => &self.limit_reached,
            Reason::AuthRequired => &self.auth_required,
            Reason::AuthFailed => &self.auth_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The count of one reason.
    pub fn get(&self, reason: Reason) -> u64 {
        match reason {
            Reason::BadName => &self.bad_name,
            Reason::AddressDenied => &self.address_denied,
            Reason::BadSignature => &self.bad_signature,
            Reason::LimitReached => &self.limit_reached,
            Reason::AuthRequired => &self.auth_required,
            Reason::AuthFailed => &self.auth_failed,
        }
        .load(Ordering::Relaxed)
    }
}

/// Every refusal of the process.
pub static REFUSALS: Refusals = Refusals {
    bad_name: AtomicU64::new(0),
    address_denied: AtomicU64::new(0),
    bad_signature: AtomicU64::new(0),
    limit_reached: AtomicU64::new(0),
    auth_required: AtomicU64::new(0),
    auth_failed: AtomicU64::new(0),
};

/// Whether `action` needs a login in an application with `config`.
pub fn needs_login(config: &AppConfig, action: Action) -> bool {
    config.auth.is_some() && (action == Action::Publish || config.auth_play)
}

/// Decides the login of a `connect` whose application carried `query`, in an application with Adobe
/// authentication: `Ok(None)` when no login is needed now (a player where players need none), the user
/// name when logged in.
pub fn check_login(
    config: &AppConfig,
    publishing: bool,
    query: &str,
    (peer, now): (IpAddr, Instant),
    fresh: adobe::Fresh,
) -> Result<Option<String>, Refusal> {
    if config.auth.is_none() || (!publishing && !config.auth_play && query.is_empty()) {
        return Ok(None);
    }
    if failures::FAILURES.blocked(peer, now) {
        return Err(Refusal::new(
            Reason::AuthFailed,
            "[ AccessManager.Reject ] : [ authmod=adobe ] : ?reason=authfailed (too many failed logins from this address; retry later)".into(),
        ));
    }
    let users = |user: &str| config.users.get(user).map(String::as_str);
    match adobe::CHALLENGES.decide(users, query, fresh) {
        adobe::Outcome::Accept(user) => Ok(Some(user)),
        adobe::Outcome::Refuse {
            description,
            failed,
        } => {
            if failed {
                failures::FAILURES.record(peer, now);
            }
            Err(Refusal::new(
                if failed {
                    Reason::AuthFailed
                } else {
                    Reason::AuthRequired
                },
                description,
            ))
        }
    }
}

/// The application name of a `connect` (its query, which some encoders send there, left off), or why
/// it is refused.
pub fn check_connect(app_with_query: &str) -> Result<&str, Refusal> {
    let (app, _) = names::split_query(app_with_query);
    names::check_name("application", app).map_err(|why| Refusal::new(Reason::BadName, why))?;
    Ok(app)
}

/// Decides a `publish` or `play` of `name` (sent as `name?query`) in `app` by `peer` at `now`.
pub fn check_stream(
    config: &AppConfig,
    action: Action,
    peer: IpAddr,
    app: &str,
    (name, query): (&str, &str),
    now: SystemTime,
) -> Result<(), Refusal> {
    names::check_name("stream", name).map_err(|why| Refusal::new(Reason::BadName, why))?;
    let rules = match action {
        Action::Publish => IpRules::new(&config.allow_publish, &config.deny_publish),
        Action::Play => IpRules::new(&config.allow_play, &config.deny_play),
    };
    if let Some((ip::RuleKind::Deny, rule)) = rules.decide(peer) {
        return Err(Refusal::new(
            Reason::AddressDenied,
            format!("{} is denied for {peer} (rule {rule})", action.as_str()),
        ));
    }
    if let Some(secret) = &config.secret {
        signed::verify(secret, app, name, query, now)
            .map_err(|why| Refusal::new(Reason::BadSignature, why))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn peer() -> IpAddr {
        "127.0.0.1".parse().unwrap()
    }

    #[test]
    fn play_denied_for_loopback_but_publish_allowed() {
        let config = AppConfig {
            deny_play: vec!["127.0.0.0/8".parse().unwrap()],
            ..AppConfig::default()
        };
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(
            check_stream(&config, Action::Publish, peer(), "live", ("cam", ""), now),
            Ok(())
        );
        let refusal =
            check_stream(&config, Action::Play, peer(), "live", ("cam", ""), now).unwrap_err();
        assert_eq!(refusal.reason, Reason::AddressDenied);
        assert!(refusal.description.contains("127.0.0.0/8"));
    }

    #[test]
    fn a_signed_name_passes_and_an_unsigned_one_is_counted() {
        let config = AppConfig {
            secret: Some("k".into()),
            ..AppConfig::default()
        };
        let now = UNIX_EPOCH + Duration::from_secs(100);
        let query = signed::signed_query("k", "live", "cam", 200);
        assert_eq!(
            check_stream(&config, Action::Play, peer(), "live", ("cam", &query), now),
            Ok(())
        );
        let before = REFUSALS.get(Reason::BadSignature);
        assert!(check_stream(&config, Action::Play, peer(), "live", ("cam", ""), now).is_err());
        assert!(REFUSALS.get(Reason::BadSignature) > before);
    }

    #[test]
    fn a_bad_rule_in_the_configuration_is_named() {
        let tables: std::collections::BTreeMap<String, toml::Table> =
            toml::from_str("[live]\ndeny_play = [\"10.0.0.0/8\", \"10.1.2.300\"]").unwrap();
        let error = crate::config::Apps::resolve(&tables)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("10.1.2.300") && error.contains("live"),
            "{error}"
        );
        let tables: std::collections::BTreeMap<String, toml::Table> =
            toml::from_str("[live]\nauth = \"basic\"").unwrap();
        assert!(crate::config::Apps::resolve(&tables).is_err());
    }

    #[test]
    fn bad_names_are_refused_first() {
        let config = AppConfig::default();
        let now = UNIX_EPOCH;
        let refusal =
            check_stream(&config, Action::Publish, peer(), "live", ("../x", ""), now).unwrap_err();
        assert_eq!(refusal.reason, Reason::BadName);
        assert_eq!(check_connect("live?authmod=adobe"), Ok("live"));
        assert!(check_connect("a\0b").is_err());
    }
}
