//! Application and stream names checked before anything else sees them: a name becomes a map key, a
//! log field and, for recorders, part of a path.

/// The longest name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Why a name is refused, or `Ok` for a usable one. `what` is "stream" or "application".
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "{what} name is {} bytes long (at most {MAX_NAME_LEN})",
            name.len()
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("{what} name contains a control character"));
    }
    if name.contains('\\') || (what == "stream" && name.contains('/')) {
        return Err(format!("{what} name contains a path separator"));
    }
    if name.split('/').any(|part| part == "..") {
        return Err(format!("{what} name contains \"..\""));
    }
    Ok(())
}

/// Splits `name?query` into the name and its query (empty when there is none).
pub fn split_query(text: &str) -> (&str, &str) {
    text.split_once('?').unwrap_or((text, ""))
}

/// The value of `key` in a URL query (`a=1&b=2`), undecoded.
pub fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find_map(|(k, v)| (k == key).then_some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("stream", "cam-1_hd.v2").is_ok());
        assert!(check_name("stream", "../etc/passwd").is_err());
        assert!(check_name("stream", "a/b").is_err());
        assert!(check_name("stream", "a\\b").is_err());
        assert!(check_name("stream", "a\0b").is_err());
        assert!(check_name("stream", "a\nb").is_err());
        assert!(check_name("stream", "a\u{7f}").is_err());
        assert!(check_name("stream", &"x".repeat(256)).is_err());
        assert!(check_name("stream", &"x".repeat(255)).is_ok());
        // An application may be nested (live/sub), but never climb.
        assert!(check_name("application", "live/sub").is_ok());
        assert!(check_name("application", "live/..").is_err());
        assert!(check_name("application", "..").is_err());
    }

    #[test]
    fn queries_split_and_read() {
        assert_eq!(
            split_query("cam?expires=1&sign=x"),
            ("cam", "expires=1&sign=x")
        );
        assert_eq!(split_query("cam"), ("cam", ""));
        assert_eq!(query_value("expires=1&sign=x", "sign"), Some("x"));
        assert_eq!(query_value("expires=1&sign=x", "user"), None);
    }
}
