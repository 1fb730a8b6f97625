//! The Adobe challenge/response FFmpeg speaks for `rtmp://user:password@host/app` (authmod=adobe): the
//! first `connect` is refused with "need auth", the second (`?authmod=adobe&user=U` in the application)
//! with a salt, a challenge and an opaque value, and the third carries
//! `?authmod=adobe&user=U&challenge=C2&response=R&opaque=O`, where
//! R = base64(md5(base64(md5(U + salt + password)) + O + C2)). Salt, challenge and opaque are drawn by
//! the caller; issued challenges wait in a bounded table until answered once.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use md5::{Digest, Md5};

use super::names::query_value;

/// The description that makes FFmpeg retry with its user name.
pub const NEED_AUTH: &str = "[ AccessManager.Reject ] : [ code=403 need auth; authmod=adobe ] : ";

/// Challenges issued and not yet answered; the oldest are forgotten beyond this.
const MAX_PENDING: usize = 1024;

/// The response a client holding `password` sends (FFmpeg's `do_adobe_auth`).
pub fn response(user: &str, password: &str, salt: &str, opaque: &str, challenge2: &str) -> String {
    let first = STANDARD.encode(Md5::digest(format!("{user}{salt}{password}")));
    STANDARD.encode(Md5::digest(format!("{first}{opaque}{challenge2}")))
}

/// A challenge issued to `user`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Issued {
    user: String,
    salt: String,
    opaque: String,
}

/// Challenges issued and waiting for their answer, at most `MAX_PENDING`.
#[derive(Debug)]
pub struct Challenges(Mutex<VecDeque<Issued>>);

/// Every application's challenges.
pub static CHALLENGES: Challenges = Challenges(Mutex::new(VecDeque::new()));

/// What to do with a `connect` to an application with Adobe authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Authenticated as this user.
    Accept(String),
    /// Refuse with this description (a step of the exchange, or a failure).
    Refuse {
        /// The description the client is told: the next step of the exchange, or why the login failed.
        description: String,
        /// Whether the login failed (counted against the address) rather than asking for its next step.
        failed: bool,
    },
}

/// Fresh random values for one challenge, drawn by the caller.
#[derive(Debug, Clone)]
pub struct Fresh {
    /// The salt the password is hashed with, sent to the client.
    pub salt: String,
    /// The server's challenge, sent to the client and kept to check its answer.
    pub challenge: String,
    /// The opaque value the client sends back with its answer.
    pub opaque: String,
}

impl Challenges {
    /// Decides a `connect` whose application carried `query` (empty when none), `users` being the
    /// application's names and passwords.
    pub fn decide<'a>(
        &self,
        users: impl Fn(&str) -> Option<&'a str>,
        query: &str,
        fresh: Fresh,
    ) -> Outcome {
        let failed = |why: &str| Outcome::Refuse {
            description: format!("[ AccessManager.Reject ] : [ authmod=adobe ] : ?reason={why}"),
            failed: true,
        };
        if query_value(query, "authmod") != Some("adobe") {
            return Outcome::Refuse {
                description: NEED_AUTH.into(),
                failed: false,
            };
        }
        let Some(user) = query_value(query, "user") else {
            return failed("nosuchuser");
        };
        let Some(password) = users(user) else {
            return failed("nosuchuser");
        };
        let mut pending = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (Some(challenge2), Some(answer), Some(opaque)) = (
            query_value(query, "challenge"),
            query_value(query, "response"),
            query_value(query, "opaque"),
        ) else {
            if pending.len() >= MAX_PENDING {
                pending.pop_front();
            }
            let description = format!(
                "[ AccessManager.Reject ] : [ authmod=adobe ] : ?reason=needauth&user={user}&salt={}&challenge={}&opaque={}",
                fresh.salt, fresh.challenge, fresh.opaque
            );
            pending.push_back(Issued {
                user: user.to_owned(),
                salt: fresh.salt,
                opaque: fresh.opaque,
            });
            return Outcome::Refuse {
                description,
                failed: false,
            };
        };
        // Each challenge is answered once, right or wrong.
        let Some(at) = pending
            .iter()
            .position(|issued| issued.opaque == opaque && issued.user == user)
        else {
            return failed("authfailed");
        };
        let issued = pending.remove(at);
        drop(pending);
        let Some(issued) = issued else {
            return failed("authfailed");
        };
        let expected = response(user, password, &issued.salt, opaque, challenge2);
        if constant_time_eq(expected.as_bytes(), answer.as_bytes()) {
            Outcome::Accept(user.to_owned())
        } else {
            failed("authfailed")
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Fresh {
        Fresh {
            salt: "c2FsdA".into(),
            challenge: "Y2hhbA".into(),
            opaque: "b3BhcXVl".into(),
        }
    }

    fn users(user: &str) -> Option<&'static str> {
        (user == "alice").then_some("s3cret")
    }

    #[test]
    fn the_response_is_ffmpegs() {
        // base64(md5(base64(md5("alice" "c2FsdA" "s3cret")) "b3BhcXVl" "0badf00d")), computed apart.
        assert_eq!(
            response("alice", "s3cret", "c2FsdA", "b3BhcXVl", "0badf00d"),
            "4HGC3RbDHfI5PvILXOTS7Q=="
        );
    }

    #[test]
    fn the_exchange_accepts_the_right_password_once() {
        let challenges = Challenges(Mutex::new(VecDeque::new()));
        let first = challenges.decide(users, "", fresh());
        assert!(
            matches!(&first, Outcome::Refuse { description, failed: false } if description == NEED_AUTH)
        );
        let second = challenges.decide(users, "authmod=adobe&user=alice", fresh());
        let Outcome::Refuse {
            description,
            failed: false,
        } = second
        else {
            panic!("a challenge is issued");
        };
        assert!(description
            .ends_with("?reason=needauth&user=alice&salt=c2FsdA&challenge=Y2hhbA&opaque=b3BhcXVl"));
        let answer = response("alice", "s3cret", "c2FsdA", "b3BhcXVl", "0badf00d");
        let query = format!(
            "authmod=adobe&user=alice&challenge=0badf00d&response={answer}&opaque=b3BhcXVl"
        );
        assert_eq!(
            challenges.decide(users, &query, fresh()),
            Outcome::Accept("alice".into())
        );
        // Replayed: the challenge was used.
        assert!(matches!(
            challenges.decide(users, &query, fresh()),
            Outcome::Refuse { failed: true, .. }
        ));
    }

    #[test]
    fn a_wrong_password_or_user_fails_and_the_table_is_bounded() {
        let challenges = Challenges(Mutex::new(VecDeque::new()));
        challenges.decide(users, "authmod=adobe&user=alice", fresh());
        let wrong = response("alice", "guess", "c2FsdA", "b3BhcXVl", "1");
        let query =
            format!("authmod=adobe&user=alice&challenge=1&response={wrong}&opaque=b3BhcXVl");
        let Outcome::Refuse {
            description,
            failed: true,
        } = challenges.decide(users, &query, fresh())
        else {
            panic!("a wrong password fails");
        };
        assert!(description.contains("authmod=adobe") && description.contains("reason=authfailed"));
        assert!(matches!(
            challenges.decide(users, "authmod=adobe&user=mallory", fresh()),
            Outcome::Refuse { failed: true, .. }
        ));
        for _ in 0..MAX_PENDING + 10 {
            challenges.decide(users, "authmod=adobe&user=alice", fresh());
        }
        assert_eq!(challenges.0.lock().unwrap().len(), MAX_PENDING);
    }
}
