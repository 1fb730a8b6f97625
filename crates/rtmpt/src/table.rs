//! The tunnel's session table, sans-IO: session ids made from caller-supplied random bytes, sequence
//! numbers, idle expiry driven by the caller's `now`, the polling-interval byte, and the caps (sessions,
//! bytes queued per session in each direction, request body size). No runtime, clock or randomness here:
//! the hyper adapter ([`crate::server`]) feeds it requests and bytes and moves what it answers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::route::{is_session_id, PollInterval};

/// Tunnel settings and caps.
#[derive(Debug, Clone)]
pub struct RtmptConfig {
    /// A session with no request for this long is closed (its RTMP stream reads end of file).
    pub idle_timeout: Duration,
    /// Largest request body accepted.
    pub max_body: usize,
    /// Bytes queued in each direction of a session; past it the writer waits (back-pressure).
    pub max_queued: usize,
    /// Most bytes returned in one response.
    pub max_response: usize,
    /// Most sessions open at once; `/open` beyond it is refused.
    pub max_sessions: usize,
}

impl Default for RtmptConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            max_body: 4 * 1024 * 1024,
            max_queued: 1024 * 1024,
            max_response: 1024 * 1024,
            max_sessions: 10_000,
        }
    }
}

/// Why the table refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The session id names no open session.
    #[error("no such RTMPT session")]
    UnknownSession,
    /// The sequence number is not after the last one seen.
    #[error("stale or repeated RTMPT sequence number")]
    StaleSequence,
    /// The table holds its maximum of sessions.
    #[error("too many RTMPT sessions")]
    TooManySessions,
    /// The caller's random bytes made an id already open.
    #[error("RTMPT session id already in use")]
    IdInUse,
    /// The request body is over the configured size.
    #[error("RTMPT request body too large")]
    BodyTooLarge,
    /// The session has more client bytes queued than allowed.
    #[error("RTMPT session's incoming queue is full")]
    QueueFull,
}

/// One answer to `/send` or `/idle`: the polling byte, then the bytes the server had pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The polling-interval byte; 0 means the session has ended (the client should stop).
    pub interval: u8,
    /// The bytes the server had pending for the client.
    pub data: Bytes,
}

#[derive(Debug)]
struct Session {
    last_request: Instant,
    /// The highest sequence number seen: FFmpeg and librtmp count up from 0 across send, idle and close.
    last_seq: Option<u64>,
    interval: PollInterval,
    /// Client bytes not yet read by the RTMP side.
    incoming: BytesMut,
    /// Server bytes not yet sent to the client.
    outgoing: BytesMut,
    /// The RTMP side has closed: answer what is queued, then interval 0.
    server_ended: bool,
}

/// Every open tunnel session.
#[derive(Debug)]
pub struct Table {
    config: RtmptConfig,
    sessions: HashMap<String, Session>,
}

impl Table {
    /// An empty table with these caps and timeouts.
    pub fn new(config: RtmptConfig) -> Self {
        Self {
            config,
            sessions: HashMap::new(),
        }
    }

    /// The caps and timeouts in force.
    pub fn config(&self) -> &RtmptConfig {
        &self.config
    }

    /// Open sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Whether `id` names an open session.
    pub fn contains(&self, id: &str) -> bool {
        self.sessions.contains_key(id)
    }

    /// Opens a session whose id is `random` as 16 hex digits (the caller draws the bytes).
    pub fn open(&mut self, now: Instant, random: [u8; 8]) -> Result<String, Refusal> {
        if self.sessions.len() >= self.config.max_sessions {
            return Err(Refusal::TooManySessions);
        }
        let id = session_id(random);
        if self.sessions.contains_key(&id) {
            return Err(Refusal::IdInUse);
        }
        self.sessions.insert(
            id.clone(),
            Session {
                last_request: now,
                last_seq: None,
                interval: PollInterval::default(),
                incoming: BytesMut::new(),
                outgoing: BytesMut::new(),
                server_ended: false,
            },
        );
        Ok(id)
    }

    /// Admits a `/send`, `/idle` or `/close` with sequence number `seq`: the session must exist and the
    /// number must go up (a repeated or older one is a replayed or stale request). Refreshes idle expiry.
    pub fn admit(&mut self, now: Instant, id: &str, seq: u64) -> Result<(), Refusal> {
        let session = self.sessions.get_mut(id).ok_or(Refusal::UnknownSession)?;
        if session.last_seq.is_some_and(|last| seq <= last) {
            return Err(Refusal::StaleSequence);
        }
        session.last_seq = Some(seq);
        session.last_request = now;
        Ok(())
    }

    /// Whether a body of `len` bytes may be read at all.
    pub fn check_body(&self, len: usize) -> Result<(), Refusal> {
        if len > self.config.max_body {
            return Err(Refusal::BodyTooLarge);
        }
        Ok(())
    }

    /// Queues a `/send` body for the RTMP side. Refused with [`Refusal::QueueFull`] while earlier bytes
    /// fill the queue (the caller waits for the RTMP side to read, then tries again); a body is always
    /// accepted into an empty queue.
    pub fn deliver(&mut self, id: &str, body: &[u8]) -> Result<(), Refusal> {
        self.check_body(body.len())?;
        let max_queued = self.config.max_queued;
        let session = self.sessions.get_mut(id).ok_or(Refusal::UnknownSession)?;
        if !session.incoming.is_empty() && session.incoming.len() + body.len() > max_queued {
            return Err(Refusal::QueueFull);
        }
        session.incoming.extend_from_slice(body);
        Ok(())
    }

    /// Takes up to `max` client bytes for the RTMP side: `None` once the session is gone (end of file),
    /// an empty buffer when nothing is queued yet.
    pub fn read_incoming(&mut self, id: &str, max: usize) -> Option<Bytes> {
        let session = self.sessions.get_mut(id)?;
        let n = session.incoming.len().min(max);
        Some(session.incoming.split_to(n).freeze())
    }

    /// Queues server bytes for the client; returns how many fit (0 when the queue is full, the writer
    /// waits), or `None` once the session is gone.
    pub fn queue_outgoing(&mut self, id: &str, bytes: &[u8]) -> Option<usize> {
        let max_queued = self.config.max_queued;
        let session = self.sessions.get_mut(id)?;
        let room = max_queued.saturating_sub(session.outgoing.len());
        let n = room.min(bytes.len());
        session
            .outgoing
            .extend_from_slice(bytes.get(..n).unwrap_or_default());
        Some(n)
    }

    /// Bytes queued for the client.
    pub fn queued_outgoing(&self, id: &str) -> usize {
        self.sessions.get(id).map_or(0, |s| s.outgoing.len())
    }

    /// The RTMP side has closed: the next answer that empties the queue ends the session.
    pub fn end_from_server(&mut self, id: &str) {
        if let Some(session) = self.sessions.get_mut(id) {
            session.server_ended = true;
        }
    }

    /// The answer to an admitted `/send` or `/idle`: the pending server bytes (at most `max_response`) and
    /// the polling byte. When the RTMP side has closed and nothing more is queued, the byte is 0 (as Red5
    /// does) and the session is forgotten.
    pub fn answer(&mut self, id: &str) -> Result<Answer, Refusal> {
        let max_response = self.config.max_response;
        let session = self.sessions.get_mut(id).ok_or(Refusal::UnknownSession)?;
        let n = session.outgoing.len().min(max_response);
        let data = session.outgoing.split_to(n).freeze();
        if session.server_ended && session.outgoing.is_empty() {
            self.sessions.remove(id);
            return Ok(Answer { interval: 0, data });
        }
        let interval = session.interval.next(!data.is_empty());
        Ok(Answer { interval, data })
    }

    /// Closes a session (`/close`); false when there was none.
    pub fn close(&mut self, id: &str) -> bool {
        self.sessions.remove(id).is_some()
    }

    /// Closes the sessions with no request for the idle timeout as of `now`; returns their ids.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let limit = self.config.idle_timeout;
        let expired: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| now.saturating_duration_since(s.last_request) >= limit)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            self.sessions.remove(id);
        }
        expired
    }
}

/// A session id from 64 random bits: 16 lowercase hex digits (URL-safe, never a counter).
pub fn session_id(random: [u8; 8]) -> String {
    let id = format!("{:016x}", u64::from_be_bytes(random));
    debug_assert!(is_session_id(&id));
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(config: RtmptConfig) -> (Table, Instant) {
        (Table::new(config), Instant::now())
    }

    #[test]
    fn ids_come_from_the_callers_bytes() {
        let (mut t, now) = table(RtmptConfig::default());
        let id = t.open(now, [0x3c, 0x16, 0x42, 0x45, 0xbf, 0x82, 0xc1, 0x85]);
        assert_eq!(id.as_deref(), Ok("3c164245bf82c185"));
        assert_eq!(
            t.open(now, [0x3c, 0x16, 0x42, 0x45, 0xbf, 0x82, 0xc1, 0x85]),
            Err(Refusal::IdInUse)
        );
        assert!(is_session_id(&session_id([0; 8])));
    }

    #[test]
    fn session_cap() {
        let (mut t, now) = table(RtmptConfig {
            max_sessions: 2,
            ..RtmptConfig::default()
        });
        assert!(t.open(now, [1; 8]).is_ok());
        assert!(t.open(now, [2; 8]).is_ok());
        assert_eq!(t.open(now, [3; 8]), Err(Refusal::TooManySessions));
        assert!(t.close(&session_id([1; 8])));
        assert!(t.open(now, [3; 8]).is_ok());
    }

    #[test]
    fn sequence_numbers_must_go_up() {
        let (mut t, now) = table(RtmptConfig::default());
        let id = t.open(now, [7; 8]).unwrap();
        assert_eq!(t.admit(now, &id, 0), Ok(()));
        assert_eq!(t.admit(now, &id, 0), Err(Refusal::StaleSequence));
        assert_eq!(t.admit(now, &id, 5), Ok(()));
        assert_eq!(t.admit(now, &id, 3), Err(Refusal::StaleSequence));
        assert_eq!(t.admit(now, "nope", 9), Err(Refusal::UnknownSession));
    }

    #[test]
    fn idle_sessions_expire_at_the_timeout() {
        let (mut t, start) = table(RtmptConfig {
            idle_timeout: Duration::from_secs(30),
            ..RtmptConfig::default()
        });
        let quiet = t.open(start, [1; 8]).unwrap();
        let busy = t.open(start, [2; 8]).unwrap();
        t.admit(start + Duration::from_secs(20), &busy, 0).unwrap();
        assert!(t.expire(start + Duration::from_secs(29)).is_empty());
        assert_eq!(
            t.expire(start + Duration::from_secs(30)),
            vec![quiet.clone()]
        );
        assert!(!t.contains(&quiet) && t.contains(&busy));
        assert_eq!(t.expire(start + Duration::from_secs(50)), vec![busy]);
        assert!(t.is_empty());
    }

    #[test]
    fn bytes_flow_both_ways_within_the_caps() {
        let (mut t, now) = table(RtmptConfig {
            max_queued: 8,
            max_response: 5,
            max_body: 10,
            ..RtmptConfig::default()
        });
        let id = t.open(now, [1; 8]).unwrap();
        // Client to server: a body always fits an empty queue; more waits until the RTMP side reads.
        assert_eq!(t.deliver(&id, b"0123456789"), Ok(()));
        assert_eq!(t.deliver(&id, b"a"), Err(Refusal::QueueFull));
        assert_eq!(t.deliver(&id, &[0; 11]), Err(Refusal::BodyTooLarge));
        assert_eq!(t.read_incoming(&id, 4).as_deref(), Some(&b"0123"[..]));
        assert_eq!(t.read_incoming(&id, 100).as_deref(), Some(&b"456789"[..]));
        assert_eq!(t.read_incoming(&id, 100).as_deref(), Some(&b""[..]));
        // Server to client: queued up to the cap, answered at most max_response at a time.
        assert_eq!(t.queue_outgoing(&id, b"abcdef"), Some(6));
        assert_eq!(t.queue_outgoing(&id, b"ghijk"), Some(2));
        assert_eq!(t.queue_outgoing(&id, b"x"), Some(0));
        assert_eq!(
            t.answer(&id),
            Ok(Answer {
                interval: 1,
                data: Bytes::from_static(b"abcde")
            })
        );
        assert_eq!(t.queued_outgoing(&id), 3);
        assert_eq!(
            t.answer(&id).map(|a| a.data),
            Ok(Bytes::from_static(b"fgh"))
        );
        assert_eq!(t.answer(&id).map(|a| a.data), Ok(Bytes::new()));
    }

    #[test]
    fn a_closed_rtmp_side_ends_the_session_after_its_last_bytes() {
        let (mut t, now) = table(RtmptConfig {
            max_response: 2,
            ..RtmptConfig::default()
        });
        let id = t.open(now, [1; 8]).unwrap();
        t.queue_outgoing(&id, b"abc");
        t.end_from_server(&id);
        assert_eq!(t.answer(&id).map(|a| a.interval), Ok(1));
        assert_eq!(
            t.answer(&id),
            Ok(Answer {
                interval: 0,
                data: Bytes::from_static(b"c")
            })
        );
        assert!(!t.contains(&id));
        assert_eq!(t.read_incoming(&id, 1), None);
        assert_eq!(t.queue_outgoing(&id, b"x"), None);
    }

    #[test]
    fn polling_byte_backs_off_when_nothing_flows() {
        let (mut t, now) = table(RtmptConfig::default());
        let id = t.open(now, [1; 8]).unwrap();
        let bytes: Vec<u8> = (0..13)
            .map(|_| t.answer(&id).map_or(255, |a| a.interval))
            .collect();
        assert_eq!(bytes, vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 5, 9]);
        t.queue_outgoing(&id, b"x");
        assert_eq!(t.answer(&id).map(|a| a.interval), Ok(1));
    }
}
