//! Relay targets as logs and the API show them: the stream key (the URL's path after the application),
//! any query value and any password masked, so that a platform's secret key never leaves the config.

/// `url` with its secrets masked: `rtmps://live.example:443/app/ab****?token=****`. The scheme, host,
/// port and application stay readable; of the stream key only the first two characters are kept.
pub fn mask_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (scheme, rest),
        None => return mask_key(url),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            format!("{user}:****@{host}")
        }
        None => authority.to_owned(),
    };
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    };
    let mut masked = format!("{scheme}://{authority}");
    if !path.is_empty() || rest.contains('/') {
        masked.push('/');
    }
    match path.split_once('/') {
        Some((app, key)) => {
            masked.push_str(app);
            masked.push('/');
            masked.push_str(&mask_key(key));
        }
        None => masked.push_str(path),
    }
    if let Some(query) = query {
        masked.push('?');
        let fields: Vec<String> = query
            .split('&')
            .map(|field| match field.split_once('=') {
                Some((name, _)) => format!("{name}=****"),
                None => "****".to_owned(),
            })
            .collect();
        masked.push_str(&fields.join("&"));
    }
    masked
}

/// `text` (an error, a peer's description) with the stream key `key` masked wherever it appears, with or
/// without its query: a target may quote the key back in its refusal.
pub fn scrub(text: &str, key: &str) -> String {
    let name = key.split_once('?').map_or(key, |(name, _)| name);
    let mut scrubbed = text.to_owned();
    for secret in [key, name] {
        if secret.len() > 2 {
            scrubbed = scrubbed.replace(secret, &mask_key(secret));
        }
    }
    scrubbed
}

/// A stream key with all but its first two characters replaced (an empty key stays empty).
fn mask_key(key: &str) -> String {
    if key.is_empty() {
        return String::new();
    }
    let shown: String = key.chars().take(2).collect();
    format!("{shown}****")
}

#[cfg(test)]
mod tests {
    use super::mask_url;

    #[test]
    fn keys_queries_and_passwords_are_masked() {
        assert_eq!(
            mask_url("rtmps://live-api-s.facebook.com:443/rtmp/FB-123456-0-AbCdEf"),
            "rtmps://live-api-s.facebook.com:443/rtmp/FB****"
        );
        assert_eq!(
            mask_url("rtmp://a.example/live/secret?token=abc&x"),
            "rtmp://a.example/live/se****?token=****&****"
        );
        assert_eq!(
            mask_url("rtmp://user:pw@h:1935/app/k"),
            "rtmp://user:****@h:1935/app/k****"
        );
        assert_eq!(mask_url("rtmp://h/app"), "rtmp://h/app");
        assert!(!mask_url("rtmp://h/app/a/b/secretkey").contains("secret"));
        assert_eq!(
            super::scrub("stream live/secretkey?t=1 is taken", "secretkey?t=1"),
            "stream live/se**** is taken"
        );
    }
}
