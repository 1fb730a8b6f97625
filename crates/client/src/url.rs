//! RTMP URLs: `scheme://host[:port]/app/stream`.

use std::str::FromStr;

use crate::ClientError;

/// The six variants a URL can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `rtmp://`: plain TCP, port 1935.
    Rtmp,
    /// `rtmps://`: TLS, port 443.
    Rtmps,
    /// `rtmpt://`: tunnelled over HTTP, port 80.
    Rtmpt,
    /// `rtmpts://`: tunnelled over HTTPS, port 443.
    Rtmpts,
    /// `rtmpe://`: RTMPE encryption over TCP, port 1935.
    Rtmpe,
    /// `rtmpte://`: RTMPE through the HTTP tunnel, port 80.
    Rtmpte,
}

impl Scheme {
    /// The port a URL without one means.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Rtmp | Scheme::Rtmpe => 1935,
            Scheme::Rtmps | Scheme::Rtmpts => 443,
            Scheme::Rtmpt | Scheme::Rtmpte => 80,
        }
    }

    /// Whether the connection runs over TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Scheme::Rtmps | Scheme::Rtmpts)
    }

    /// Whether RTMP rides the HTTP tunnel (RTMPT).
    pub fn is_tunnel(self) -> bool {
        matches!(self, Scheme::Rtmpt | Scheme::Rtmpts | Scheme::Rtmpte)
    }

    /// Whether the handshake negotiates RTMPE encryption.
    pub fn is_encrypted(self) -> bool {
        matches!(self, Scheme::Rtmpe | Scheme::Rtmpte)
    }

    /// The scheme as written in a URL, without `://`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Rtmp => "rtmp",
            Scheme::Rtmps => "rtmps",
            Scheme::Rtmpt => "rtmpt",
            Scheme::Rtmpts => "rtmpts",
            Scheme::Rtmpe => "rtmpe",
            Scheme::Rtmpte => "rtmpte",
        }
    }
}

/// A parsed RTMP URL. The first path element is the application, the rest the stream name (which may
/// keep a `?query`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// How to connect.
    pub scheme: Scheme,
    /// The host name or address.
    pub host: String,
    /// The port, or the scheme's default.
    pub port: u16,
    /// The application (`connect`'s `app`).
    pub app: String,
    /// The stream name to publish or play, with any `?query`.
    pub stream: String,
}

impl RtmpUrl {
    /// The `tcUrl` sent in `connect`.
    pub fn tc_url(&self) -> String {
        format!(
            "{}://{}:{}/{}",
            self.scheme.as_str(),
            self.host,
            self.port,
            self.app
        )
    }
}

impl RtmpUrl {
    /// Where a `NetConnection.Connect.ReconnectRequest` sends this URL: the request's `tcUrl`
    /// (`scheme://host[:port]/app`) with this URL's stream name, or this URL itself when the request
    /// named none.
    pub fn reconnect_target(&self, tc_url: Option<&str>) -> Result<RtmpUrl, ClientError> {
        let Some(tc_url) = tc_url else {
            return Ok(self.clone());
        };
        let target: RtmpUrl = tc_url.trim_end_matches('/').parse()?;
        Ok(RtmpUrl {
            stream: self.stream.clone(),
            ..target
        })
    }
}

impl FromStr for RtmpUrl {
    type Err = ClientError;

    fn from_str(url: &str) -> Result<Self, ClientError> {
        let bad = |reason: &str| ClientError::Url(format!("{url}: {reason}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "rtmp" => Scheme::Rtmp,
            "rtmps" => Scheme::Rtmps,
            "rtmpt" => Scheme::Rtmpt,
            "rtmpts" => Scheme::Rtmpts,
            "rtmpe" => Scheme::Rtmpe,
            "rtmpte" => Scheme::Rtmpte,
            other => return Err(bad(&format!("unknown scheme {other}"))),
        };
        let (authority, path) = rest.split_once('/').ok_or_else(|| bad("no application"))?;
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => (
                host.trim_matches(['[', ']']),
                port.parse().map_err(|_| bad("bad port"))?,
            ),
            _ => (authority, scheme.default_port()),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let (app, stream) = path.split_once('/').unwrap_or((path, ""));
        if app.is_empty() {
            return Err(bad("no application"));
        }
        Ok(RtmpUrl {
            scheme,
            host: host.to_owned(),
            port,
            app: app.to_owned(),
            stream: stream.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme_with_default_ports() {
        let url: RtmpUrl = "rtmpte://example.com/live/key?token=1".parse().unwrap();
        assert_eq!(
            (url.scheme, url.port, url.app.as_str(), url.stream.as_str()),
            (Scheme::Rtmpte, 80, "live", "key?token=1")
        );
        assert_eq!(url.tc_url(), "rtmpte://example.com:80/live");
        let url: RtmpUrl = "rtmps://127.0.0.1:4443/app/a/b".parse().unwrap();
        assert_eq!((url.port, url.stream.as_str()), (4443, "a/b"));
        assert!("http://x/y".parse::<RtmpUrl>().is_err());
        assert!("rtmp://host".parse::<RtmpUrl>().is_err());
        assert!("rtmp://host:x/app".parse::<RtmpUrl>().is_err());
    }

    #[test]
    fn a_reconnect_target_keeps_the_stream_name() {
        let url: RtmpUrl = "rtmp://a.example/live/cam?k=1".parse().unwrap();
        let moved = url
            .reconnect_target(Some("rtmps://b.example:4443/live2"))
            .unwrap();
        assert_eq!(
            (moved.scheme, moved.host.as_str(), moved.port),
            (Scheme::Rtmps, "b.example", 4443)
        );
        assert_eq!(
            (moved.app.as_str(), moved.stream.as_str()),
            ("live2", "cam?k=1")
        );
        assert_eq!(url.reconnect_target(None).unwrap(), url);
        assert!(url.reconnect_target(Some("http://x/y")).is_err());
    }
}
