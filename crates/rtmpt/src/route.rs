//! The sans-IO part of the tunnel: request paths, well-formed session ids, the polling-interval byte.

/// What an RTMPT request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// `/fcs/ident2` or `/fcs/ident`: Flash Player's probe before `/open`.
    Ident,
    /// `/open/1`: a new session.
    Open,
    /// `/send/<id>/<seq>`: client bytes in the body; pending server bytes in the answer.
    Send {
        /// The session id from `/open`.
        session: &'a str,
        /// The request's sequence number.
        seq: u64,
    },
    /// `/idle/<id>/<seq>`: a poll for pending server bytes.
    Idle {
        /// The session id from `/open`.
        session: &'a str,
        /// The request's sequence number.
        seq: u64,
    },
    /// `/close/<id>/<seq>`: the end of the session.
    Close {
        /// The session id from `/open`.
        session: &'a str,
        /// The request's sequence number.
        seq: u64,
    },
}

/// Parses a request path; `None` for anything that is not RTMPT.
pub fn parse(path: &str) -> Option<Request<'_>> {
    let mut parts = path.trim_start_matches('/').split('/');
    let command = parts.next()?;
    let request = match command {
        "fcs" => match parts.next()? {
            "ident" | "ident2" => Request::Ident,
            _ => return None,
        },
        "open" => Request::Open,
        "send" | "idle" | "close" => {
            let session = parts.next().filter(|id| is_session_id(id))?;
            let seq = parts.next()?.parse().ok()?;
            match command {
                "send" => Request::Send { session, seq },
                "idle" => Request::Idle { session, seq },
                _ => Request::Close { session, seq },
            }
        }
        _ => return None,
    };
    Some(request)
}

/// Session ids are 16 hex digits here; any `[0-9A-Za-z]{1,31}` is accepted as well-formed.
pub fn is_session_id(id: &str) -> bool {
    (1..=31).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The polling-interval byte policy: 1 while data flows; after more than ten empty answers in a row,
/// 3, 5, 9, 17 and at most 33 (Red5's series, which Flash Player uses to space its polls; FFmpeg and
/// librtmp ignore the byte).
#[derive(Debug, Clone, Default)]
pub struct PollInterval {
    empty_in_a_row: u32,
    value: u8,
}

impl PollInterval {
    /// The byte for the next answer, given whether it carries data.
    pub fn next(&mut self, has_data: bool) -> u8 {
        if has_data {
            self.empty_in_a_row = 0;
            self.value = 1;
            return 1;
        }
        self.empty_in_a_row += 1;
        self.value = match (self.empty_in_a_row > 10, self.value) {
            (false, _) | (true, 0) => 1,
            (true, 1) => 3,
            (true, v) if v < 33 => (v - 1) * 2 + 1,
            (true, v) => v,
        };
        if self.empty_in_a_row > 10 {
            // Grow one step per further empty answer.
            self.empty_in_a_row = 10;
        }
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_ffmpeg_and_librtmp_send_them() {
        assert_eq!(parse("/open/1"), Some(Request::Open));
        assert_eq!(parse("/fcs/ident2"), Some(Request::Ident));
        assert_eq!(
            parse("/send/3c164245bf82c185/0"),
            Some(Request::Send {
                session: "3c164245bf82c185",
                seq: 0
            })
        );
        assert_eq!(
            parse("/idle/abc/17"),
            Some(Request::Idle {
                session: "abc",
                seq: 17
            })
        );
        assert_eq!(
            parse("/close/abc/18"),
            Some(Request::Close {
                session: "abc",
                seq: 18
            })
        );
        assert_eq!(parse("/send/abc"), None);
        assert_eq!(parse("/send/../1"), None);
        assert_eq!(parse("/send/abc/x"), None);
        assert_eq!(parse("/index.html"), None);
    }

    #[test]
    fn polling_interval_follows_the_red5_series() {
        let mut interval = PollInterval::default();
        assert_eq!(interval.next(true), 1);
        let empties: Vec<u8> = (0..16).map(|_| interval.next(false)).collect();
        assert_eq!(
            empties,
            vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 5, 9, 17, 33, 33]
        );
        assert_eq!(interval.next(true), 1);
    }
}
