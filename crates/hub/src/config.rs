//! The hub's settings: chunk size, ring and GOP cache bounds, the publish policy and the batch window,
//! with the rule that scales the window with the hub's audience ([`HubConfig::batch_window_for`]).

use std::time::Duration;

/// What a second publisher to a live name gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishPolicy {
    /// Take the stream over when the current publisher has sent nothing for `quiet_after` (an encoder
    /// reconnecting after a network blip while its old TCP connection still looks alive); the old publisher
    /// is told to close. A publisher that is still sending keeps the stream and the newcomer is refused.
    TakeOver {
        /// How long the current publisher must have sent no media before a newcomer may replace it.
        quiet_after: Duration,
    },
    /// Always refuse a second publisher.
    Reject,
}

/// Hub settings.
///
/// The defaults: 4096-byte chunks, a 256-frame ring, a 16 MiB GOP cache, take-over after 1 s of quiet,
/// and no batch window (every frame is visible to players as soon as it is sent).
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The chunk size every player connection uses, so one encoding serves them all.
    pub chunk_size: u32,
    /// Frames each stream's ring holds; a player further behind skips to the next keyframe.
    pub player_queue_frames: usize,
    /// Most bytes of frames kept since the last keyframe for new players (0 disables the GOP cache).
    pub gop_cache_bytes: usize,
    /// What a second publisher to a live stream gets (take-over of a quiet publisher, or refusal).
    pub publish_policy: PublishPolicy,
    /// Players are woken at most once per window, and then take every frame published since in one
    /// write: fewer, larger socket writes for less than this much added latency. The players of a stream
    /// are flushed in four staggered groups, a quarter of the window apart. Zero wakes players on every
    /// frame. With a window, the publishing side calls [`crate::Publisher::flush_if_due`] by
    /// [`crate::Publisher::flush_deadline`] (publishing a frame also flushes the groups that are due).
    pub batch_window: Duration,
    /// The audience, counted over every stream of the hub, at which the whole batch window applies; with
    /// fewer players the window is shortened in proportion (writes cost CPU per player wherever they
    /// watch, so a lightly loaded server keeps the lowest latency), and below half of this audience there
    /// is none: a window shorter than half of a 30 ms one saves no writes on a typical stream
    /// (docs/benchmarks.md), it would only add latency. 0 applies the whole window whatever the audience.
    pub batch_full_players: usize,
}

impl HubConfig {
    /// The batch window while `players` players are subscribed to the hub's streams.
    ///
    /// ```
    /// use std::time::Duration;
    /// use rtmp_hub::HubConfig;
    ///
    /// let config = HubConfig {
    ///     batch_window: Duration::from_millis(30),
    ///     batch_full_players: 500,
    ///     ..HubConfig::default()
    /// };
    /// assert_eq!(config.batch_window_for(100), Duration::ZERO); // under half: none
    /// assert_eq!(config.batch_window_for(250), Duration::from_millis(15)); // in proportion
    /// assert_eq!(config.batch_window_for(2000), Duration::from_millis(30)); // the whole window
    /// ```
    pub fn batch_window_for(&self, players: usize) -> Duration {
        if self.batch_full_players == 0 || players >= self.batch_full_players {
            return self.batch_window;
        }
        if players.saturating_mul(2) < self.batch_full_players {
            return Duration::ZERO;
        }
        let scaled =
            self.batch_window.as_micros() * players as u128 / self.batch_full_players as u128;
        Duration::from_micros(u64::try_from(scaled).unwrap_or(u64::MAX))
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            chunk_size: 4096,
            player_queue_frames: 256,
            gop_cache_bytes: 16 * 1024 * 1024,
            publish_policy: PublishPolicy::TakeOver {
                quiet_after: Duration::from_secs(1),
            },
            batch_window: Duration::ZERO,
            batch_full_players: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn the_batch_window_scales_with_the_audience() {
        let config = HubConfig {
            batch_window: ms(30),
            batch_full_players: 500,
            ..HubConfig::default()
        };
        let windows: Vec<_> = [0, 249, 250, 300, 499, 500, 10_000]
            .into_iter()
            .map(|players| config.batch_window_for(players))
            .collect();
        assert_eq!(
            windows,
            vec![
                Duration::ZERO,
                Duration::ZERO,
                ms(15),
                ms(18),
                Duration::from_micros(29_940),
                ms(30),
                ms(30)
            ]
        );
        let whole = HubConfig {
            batch_full_players: 0,
            ..config.clone()
        };
        assert_eq!(whole.batch_window_for(0), ms(30));
        let none = HubConfig {
            batch_window: Duration::ZERO,
            ..config
        };
        assert_eq!(none.batch_window_for(10_000), Duration::ZERO);
    }
}
