//! What a hook's answer means, as nginx-rtmp reads it: 2xx allows; 3xx with a bare name in `Location`
//! renames the stream (publish and play go on under the new name); a 3xx to an `rtmp://` (or `rtmps://`,
//! ...) URL relays, as nginx-rtmp's `notify_relay_redirect`: a publish is accepted and pushed there, a
//! play pulls from there; anything else refuses. A 3xx to `connect` is an allow (there is no stream to
//! rename).

use super::client::HookError;
use super::{Call, HookFailure};
use crate::router::Verdict;

/// The part of an answer that counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookAnswer {
    /// The HTTP status code.
    pub status: u16,
    /// The `Location` header, a new stream name when the status is 3xx.
    pub location: Option<String>,
}

/// The verdict a call's result means; a call without an answer is `failure`'s.
pub fn verdict_for(
    call: Call,
    result: &Result<HookAnswer, HookError>,
    failure: HookFailure,
) -> Verdict {
    let answer = match result {
        Ok(answer) => answer,
        Err(error) => {
            return match failure {
                HookFailure::Allow => Verdict::Accept,
                HookFailure::Deny => Verdict::Refuse(format!("{} failed ({error})", call.key())),
            }
        }
    };
    match answer.status {
        200..=299 => Verdict::Accept,
        300..=399 => match answer.location.as_deref().map(str::trim) {
            _ if call == Call::Connect => Verdict::Accept,
            Some(location) if !bare_name(location).is_empty() && !location.contains("://") => {
                Verdict::Rename(bare_name(location).to_owned())
            }
            Some(location)
                if location.contains("://") && crate::relay::check_url(location).is_ok() =>
            {
                Verdict::Relay(location.to_owned())
            }
            Some(location) if location.contains("://") => {
                tracing::warn!(
                    call = call.as_str(),
                    location = %crate::relay::mask::mask_url(location),
                    "hook redirect to a URL that is not an RTMP one, refused"
                );
                Verdict::Refuse(format!(
                    "{} redirects to a URL that cannot be relayed",
                    call.key()
                ))
            }
            _ => Verdict::Refuse(format!(
                "refused by {} (HTTP {})",
                call.key(),
                answer.status
            )),
        },
        status => Verdict::Refuse(format!("refused by {} (HTTP {status})", call.key())),
    }
}

/// The stream name a `Location` names: without leading slashes or a query.
fn bare_name(location: &str) -> &str {
    let name = location.trim_start_matches('/');
    name.split_once('?').map_or(name, |(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, location: Option<&str>) -> Result<HookAnswer, HookError> {
        Ok(HookAnswer {
            status,
            location: location.map(str::to_owned),
        })
    }

    #[test]
    fn answers_mean_what_they_mean_in_nginx_rtmp() {
        let deny = HookFailure::Deny;
        assert_eq!(
            verdict_for(Call::Publish, &answer(200, None), deny),
            Verdict::Accept
        );
        assert_eq!(
            verdict_for(Call::Publish, &answer(302, Some("other")), deny),
            Verdict::Rename("other".into())
        );
        assert_eq!(
            verdict_for(Call::Connect, &answer(302, Some("other")), deny),
            Verdict::Accept
        );
        assert_eq!(
            verdict_for(Call::Play, &answer(302, Some("rtmp://h/app/s")), deny),
            Verdict::Relay("rtmp://h/app/s".into())
        );
        assert!(matches!(
            verdict_for(Call::Play, &answer(302, Some("http://h/app/s")), deny),
            Verdict::Refuse(_)
        ));
        assert_eq!(
            verdict_for(Call::Publish, &answer(403, None), deny),
            Verdict::Refuse("refused by on_publish (HTTP 403)".into())
        );
        let failed = Err(HookError::Timeout);
        assert_eq!(
            verdict_for(Call::Play, &failed, HookFailure::Allow),
            Verdict::Accept
        );
        assert_eq!(
            verdict_for(Call::Play, &failed, deny),
            Verdict::Refuse("on_play failed (timed out)".into())
        );
    }
}
