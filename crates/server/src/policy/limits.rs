//! Per-application limits (`max_publishers`, `max_players`, `max_players_per_stream`): the streams
//! published and played on the whole server, counted while a [`Slot`] lives. The table holds only
//! applications and streams with a live publisher or player, so it is bounded by the connections.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::{Action, Reason, Refusal};
use crate::config::AppConfig;

#[derive(Debug, Default)]
struct AppCount {
    publishers: usize,
    players: usize,
    players_per_stream: HashMap<String, usize>,
}

/// Live publishers and players per application.
#[derive(Debug, Default)]
pub struct Occupancy(Mutex<Option<HashMap<String, AppCount>>>);

/// Every application of the process.
pub static OCCUPANCY: Occupancy = Occupancy(Mutex::new(None));

/// A counted publisher or player, released when dropped.
#[derive(Debug)]
pub struct Slot {
    occupancy: &'static Occupancy,
    action: Action,
    app: String,
    stream: String,
}

/// Whether `config` sets any limit (without one, nothing is counted).
pub fn limited(config: &AppConfig) -> bool {
    config.max_publishers.is_some()
        || config.max_players.is_some()
        || config.max_players_per_stream.is_some()
}

impl Occupancy {
    /// Counts a publisher or player of `app`/`stream`, unless a limit of `config` is reached.
    pub fn take(
        &'static self,
        config: &AppConfig,
        action: Action,
        app: &str,
        stream: &str,
    ) -> Result<Slot, Refusal> {
        let mut apps = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = apps
            .get_or_insert_with(HashMap::new)
            .entry(app.to_owned())
            .or_default();
        let full = |current: usize, limit: Option<usize>, key: &str| {
            limit
                .filter(|limit| current >= *limit)
                .map(|limit| Refusal::new(Reason::LimitReached, format!("{key} ({limit}) reached")))
        };
        let refused = match action {
            Action::Publish => full(count.publishers, config.max_publishers, "max_publishers"),
            Action::Play => full(count.players, config.max_players, "max_players").or_else(|| {
                full(
                    count.players_per_stream.get(stream).copied().unwrap_or(0),
                    config.max_players_per_stream,
                    "max_players_per_stream",
                )
            }),
        };
        if let Some(refusal) = refused {
            if count.publishers == 0 && count.players == 0 {
                apps.as_mut().map(|apps| apps.remove(app));
            }
            return Err(refusal);
        }
        match action {
            Action::Publish => count.publishers += 1,
            Action::Play => {
                count.players += 1;
                *count
                    .players_per_stream
                    .entry(stream.to_owned())
                    .or_default() += 1;
            }
        }
        Ok(Slot {
            occupancy: self,
            action,
            app: app.to_owned(),
            stream: stream.to_owned(),
        })
    }

    fn release(&self, slot: &Slot) {
        let mut apps = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(apps) = apps.as_mut() else {
            return;
        };
        let Some(count) = apps.get_mut(&slot.app) else {
            return;
        };
        match slot.action {
            Action::Publish => count.publishers = count.publishers.saturating_sub(1),
            Action::Play => {
                count.players = count.players.saturating_sub(1);
                if let Some(players) = count.players_per_stream.get_mut(&slot.stream) {
                    *players = players.saturating_sub(1);
                    if *players == 0 {
                        count.players_per_stream.remove(&slot.stream);
                    }
                }
            }
        }
        if count.publishers == 0 && count.players == 0 {
            apps.remove(&slot.app);
        }
    }

    /// Applications with a live counted publisher or player.
    pub fn apps(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(0, HashMap::len)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.occupancy.release(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static TEST_OCCUPANCY: Occupancy = Occupancy(Mutex::new(None));

    #[test]
    fn limits_refuse_beyond_and_release_on_drop() {
        let config = AppConfig {
            max_publishers: Some(1),
            max_players: Some(3),
            max_players_per_stream: Some(2),
            ..AppConfig::default()
        };
        let o = &TEST_OCCUPANCY;
        let publisher = o.take(&config, Action::Publish, "live", "a").unwrap();
        let refusal = o.take(&config, Action::Publish, "live", "b").unwrap_err();
        assert_eq!(refusal.reason, Reason::LimitReached);
        assert!(refusal.description.contains("max_publishers"));
        let a1 = o.take(&config, Action::Play, "live", "a").unwrap();
        let a2 = o.take(&config, Action::Play, "live", "a").unwrap();
        let third = o.take(&config, Action::Play, "live", "a").unwrap_err();
        assert!(third.description.contains("max_players_per_stream"));
        let b1 = o.take(&config, Action::Play, "live", "b").unwrap();
        assert!(o
            .take(&config, Action::Play, "live", "c")
            .unwrap_err()
            .description
            .contains("max_players ("));
        // Another application has its own counts.
        let other = o.take(&config, Action::Publish, "other", "a").unwrap();
        drop(a1);
        let a3 = o.take(&config, Action::Play, "live", "a").unwrap();
        drop((publisher, a2, a3, b1, other));
        assert_eq!(o.apps(), 0);
    }
}
