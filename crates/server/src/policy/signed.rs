//! Signed stream URLs: the stream name carries `?expires=UNIX&sign=SIG`, where SIG is the HMAC-SHA256,
//! keyed with the application's `secret`, of `APP\nNAME\nEXPIRES`, in base64url without padding. The
//! signature is checked in constant time; the current time is an input.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use super::names::query_value;

type HmacSha256 = hmac::Hmac<Sha256>;

fn mac(secret: &str, app: &str, name: &str, expires: u64) -> HmacSha256 {
    // An HMAC key may have any length; the error cannot happen.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!());
    mac.update(format!("{app}\n{name}\n{expires}").as_bytes());
    mac
}

/// The `sign` value for `app`/`name` valid until `expires` (seconds since the Unix epoch).
pub fn signature(secret: &str, app: &str, name: &str, expires: u64) -> String {
    URL_SAFE_NO_PAD.encode(mac(secret, app, name, expires).finalize().into_bytes())
}

/// The query to append to a stream name (`expires=…&sign=…`).
pub fn signed_query(secret: &str, app: &str, name: &str, expires: u64) -> String {
    format!(
        "expires={expires}&sign={}",
        signature(secret, app, name, expires)
    )
}

/// `url` (`SCHEME://HOST[:PORT]/APP/STREAM`, the stream maybe with a query already) with its stream
/// name signed until `expires`.
pub fn sign_url(url: &str, secret: &str, expires: u64) -> Result<String, String> {
    let (_, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?} is not a URL (SCHEME://HOST/APP/STREAM)"))?;
    let (_, path) = rest
        .split_once('/')
        .ok_or_else(|| format!("{url:?} has no application and stream"))?;
    let (app, stream) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("{url:?} has no stream name after its application"))?;
    let (app, _) = app.split_once('?').unwrap_or((app, ""));
    let (name, query) = stream.split_once('?').unwrap_or((stream, ""));
    if app.is_empty() || name.is_empty() {
        return Err(format!("{url:?} has an empty application or stream name"));
    }
    let separator = if query.is_empty() { "?" } else { "&" };
    Ok(format!(
        "{url}{separator}{}",
        signed_query(secret, app, name, expires)
    ))
}

/// Checks the query of a stream name (`name` without it) at `now`; the error is what the client is told.
pub fn verify(
    secret: &str,
    app: &str,
    name: &str,
    query: &str,
    now: SystemTime,
) -> Result<(), String> {
    let (Some(expires), Some(sign)) = (query_value(query, "expires"), query_value(query, "sign"))
    else {
        return Err("the stream name is not signed (expires and sign are required)".into());
    };
    let expires: u64 = expires
        .parse()
        .map_err(|_| "the signed URL's expires is not a number".to_string())?;
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if now > expires {
        return Err(format!("the signed URL expired at {expires} (now {now})"));
    }
    let sign = URL_SAFE_NO_PAD
        .decode(sign)
        .map_err(|_| "the signed URL's sign is not base64url".to_string())?;
    mac(secret, app, name, expires)
        .verify_slice(&sign)
        .map_err(|_| "the signed URL's signature is wrong".to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn a_valid_signature_passes_until_it_expires() {
        let query = signed_query("k", "live", "cam", 1_000);
        assert!(verify("k", "live", "cam", &query, at(999)).is_ok());
        assert!(verify("k", "live", "cam", &query, at(1_000)).is_ok());
        let expired = verify("k", "live", "cam", &query, at(1_001)).unwrap_err();
        assert!(expired.contains("expired"), "{expired}");
    }

    #[test]
    fn tampering_is_refused() {
        let query = signed_query("k", "live", "cam", 1_000);
        assert!(verify("k", "live", "cam2", &query, at(0)).is_err());
        assert!(verify("k", "other", "cam", &query, at(0)).is_err());
        assert!(verify("other-secret", "live", "cam", &query, at(0)).is_err());
        let later = query.replace("expires=1000", "expires=9000");
        assert!(verify("k", "live", "cam", &later, at(0))
            .unwrap_err()
            .contains("signature"));
        assert!(verify("k", "live", "cam", "", at(0)).is_err());
        assert!(verify("k", "live", "cam", "expires=x&sign=y", at(0)).is_err());
    }

    #[test]
    fn a_signed_url_carries_a_signature_of_its_app_and_stream() {
        let url = sign_url("rtmp://example.com:1935/live/cam", "k", 1_000).unwrap();
        let (_, query) = url.split_once('?').unwrap();
        assert!(url.starts_with("rtmp://example.com:1935/live/cam?expires=1000&sign="));
        assert!(verify("k", "live", "cam", query, at(0)).is_ok());
        let nested = sign_url("rtmps://h/a/b/cam?x=1", "k", 5).unwrap();
        let (_, query) = nested.split_once('?').unwrap();
        assert!(verify("k", "a/b", "cam", query, at(0)).is_ok());
        assert!(sign_url("example.com/live", "k", 5).is_err());
        assert!(sign_url("rtmp://h/live", "k", 5).is_err());
    }

    #[test]
    fn the_signature_is_base64url_without_padding() {
        let sign = signature("k", "live", "cam", 1_000);
        assert_eq!(sign.len(), 43);
        assert!(!sign.contains(['=', '+', '/']));
    }
}
