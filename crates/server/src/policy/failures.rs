//! Failed logins per address: after [`MAX_FAILURES`] failures within [`WINDOW`], an address is refused
//! logins until the window has passed since its last failure. The table is bounded ([`MAX_ADDRESSES`]):
//! when full, expired entries go, then the oldest.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failures within [`WINDOW`] after which an address is refused logins.
pub const MAX_FAILURES: u32 = 5;
/// How long failures count, and how long a refused address waits after its last failure.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Most addresses the table holds.
pub const MAX_ADDRESSES: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
}

/// The failure table.
#[derive(Debug)]
pub struct Failures(Mutex<Option<HashMap<IpAddr, Record>>>);

/// Every application's failed logins.
pub static FAILURES: Failures = Failures::new();

impl Failures {
    /// An empty table.
    pub const fn new() -> Self {
        Self(Mutex::new(None))
    }

    /// Whether `ip` is refused logins at `now`.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> bool {
        let table = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        table
            .as_ref()
            .and_then(|t| t.get(&ip.to_canonical()))
            .is_some_and(|r| r.failures >= MAX_FAILURES && now.duration_since(r.last) < WINDOW)
    }

    /// Counts a failed login of `ip` at `now`.
    pub fn record(&self, ip: IpAddr, now: Instant) {
        let mut table = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let table = table.get_or_insert_with(HashMap::new);
        let ip = ip.to_canonical();
        if !table.contains_key(&ip) && table.len() >= MAX_ADDRESSES {
            table.retain(|_, r| now.duration_since(r.last) < WINDOW);
            if table.len() >= MAX_ADDRESSES {
                if let Some(oldest) = table.iter().min_by_key(|(_, r)| r.last).map(|(ip, _)| *ip) {
                    table.remove(&oldest);
                }
            }
        }
        let record = table.entry(ip).or_insert(Record {
            failures: 0,
            last: now,
        });
        if now.duration_since(record.last) >= WINDOW {
            record.failures = 0;
        }
        record.failures = record.failures.saturating_add(1);
        record.last = now;
    }

    /// Addresses in the table.
    pub fn len(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(0, HashMap::len)
    }

    /// Whether no address has failures recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Failures {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_failures_block_an_address_for_a_while() {
        let failures = Failures::new();
        let now = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..MAX_FAILURES - 1 {
            failures.record(ip, now);
        }
        assert!(!failures.blocked(ip, now));
        failures.record("::ffff:192.0.2.1".parse().unwrap(), now);
        assert!(failures.blocked(ip, now));
        assert!(!failures.blocked("192.0.2.2".parse().unwrap(), now));
        assert!(!failures.blocked(ip, now + WINDOW));
    }

    #[test]
    fn the_table_is_bounded() {
        let failures = Failures::new();
        let now = Instant::now();
        for n in 0..MAX_ADDRESSES as u32 + 100 {
            failures.record(
                IpAddr::from(n.to_be_bytes()),
                now + Duration::from_millis(n.into()),
            );
        }
        assert_eq!(failures.len(), MAX_ADDRESSES);
        // The newest stayed.
        let newest = IpAddr::from((MAX_ADDRESSES as u32 + 99).to_be_bytes());
        failures.record(newest, now + Duration::from_secs(5));
        assert_eq!(failures.len(), MAX_ADDRESSES);
    }
}
