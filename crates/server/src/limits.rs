//! The process's open-file limit: every connection is a file descriptor, and the usual soft limit (1024)
//! is far below what a media server or a load generator holds. Raised towards the hard limit at start,
//! like Go's runtime does, and reported when even the hard limit is too low.

use std::io;

/// Descriptors kept aside for listeners, the runtime, logs and certificate files.
pub const RESERVED_FILES: u64 = 64;

/// The open-file limit before and after [`raise_open_files`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The soft limit the process started with.
    pub before: u64,
    /// The soft limit in force now.
    pub now: u64,
    /// The hard limit, the most the soft limit can be raised to.
    pub hard: u64,
}

impl OpenFiles {
    /// Whether `connections` connections fit beside the reserved descriptors.
    pub fn fits(&self, connections: u64) -> bool {
        self.now >= connections.saturating_add(RESERVED_FILES)
    }

    /// How many connections the limit leaves room for.
    pub fn connections(&self) -> u64 {
        self.now.saturating_sub(RESERVED_FILES)
    }
}

/// Raises the soft open-file limit so that `connections` connections fit, never above the hard limit
/// and never lowering it.
pub fn raise_open_files(connections: u64) -> io::Result<OpenFiles> {
    let (before, hard) = rlimit::Resource::NOFILE.get()?;
    let wanted = connections.saturating_add(RESERVED_FILES).min(hard);
    if wanted > before {
        rlimit::Resource::NOFILE.set(wanted, hard)?;
    }
    let (now, hard) = rlimit::Resource::NOFILE.get()?;
    Ok(OpenFiles { before, now, hard })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_for_fewer_connections_than_the_limit_changes_nothing() {
        let (soft, _) = rlimit::Resource::NOFILE.get().expect("getrlimit");
        let files = raise_open_files(0).expect("raise");
        assert_eq!(files.before, soft);
        assert_eq!(files.now, soft);
    }

    #[test]
    fn the_limit_never_passes_the_hard_limit() {
        let files = raise_open_files(u64::MAX).expect("raise");
        assert_eq!(files.now, files.hard);
        assert!(files.now >= files.before);
        assert_eq!(files.fits(u64::MAX), files.hard == u64::MAX);
    }
}
