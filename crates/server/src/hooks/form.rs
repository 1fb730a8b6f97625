//! The body of a hook call: nginx-rtmp's fields (ngx_rtmp_notify_module.c), form-encoded, plus
//! `variant` (the transport: rtmp, rtmps, rtmpt, rtmpts, rtmpe, rtmpte).

use std::fmt::Write as _;

/// Which callback a call is (the `call` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `on_connect`: a client connected to an application.
    Connect,
    /// `on_publish`: a client asks to publish a stream.
    Publish,
    /// `on_play`: a client asks to play a stream.
    Play,
    /// `on_publish_done`: a publisher stopped.
    PublishDone,
    /// `on_play_done`: a player stopped.
    PlayDone,
    /// `on_done`: a stream stopped being published or played.
    Done,
    /// `on_update`: a stream is still being published or played.
    Update,
    /// `on_record_done`: a recording file is finished.
    RecordDone,
}

impl Call {
    /// The value of the `call` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Call::Connect => "connect",
            Call::Publish => "publish",
            Call::Play => "play",
            Call::PublishDone => "publish_done",
            Call::PlayDone => "play_done",
            Call::Done => "done",
            Call::Update => "update",
            Call::RecordDone => "record_done",
        }
    }

    /// The configuration key of this callback, for descriptions.
    pub fn key(self) -> &'static str {
        match self {
            Call::Connect => "on_connect",
            Call::Publish => "on_publish",
            Call::Play => "on_play",
            Call::PublishDone => "on_publish_done",
            Call::PlayDone => "on_play_done",
            Call::Done => "on_done",
            Call::Update => "on_update",
            Call::RecordDone => "on_record_done",
        }
    }
}

/// The fields of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookForm {
    /// Which callback this is.
    pub call: Call,
    /// The peer's address.
    pub addr: String,
    /// The connection's id in the registry.
    pub client_id: u64,
    /// The application the client connected to.
    pub app: String,
    /// The `flashVer` the client sent in `connect`.
    pub flashver: String,
    /// The `swfUrl` the client sent in `connect`.
    pub swfurl: String,
    /// The `tcUrl` the client sent in `connect`.
    pub tcurl: String,
    /// The `pageUrl` the client sent in `connect`.
    pub pageurl: String,
    /// The transport: rtmp, rtmps, rtmpt, rtmpts, rtmpe or rtmpte.
    pub variant: String,
    /// The stream name without its query; publish, play and their done callbacks.
    pub name: Option<String>,
    /// `live`, `record` or `append`; publish only.
    pub publish_type: Option<&'static str>,
    /// The recording's path; record_done only.
    pub path: Option<String>,
    /// The stream URL's query (`a=1&b=2`), appended as fields as written.
    pub args: String,
}

impl HookForm {
    /// Splits `name?args` into the name and the query the form carries.
    pub fn set_stream(&mut self, name_with_args: &str) {
        let (name, args) = name_with_args
            .split_once('?')
            .unwrap_or((name_with_args, ""));
        self.name = Some(name.to_owned());
        self.args = args.to_owned();
    }

    /// The `application/x-www-form-urlencoded` body.
    pub fn encode(&self) -> String {
        let mut body = String::new();
        let mut field = |key: &str, value: &str| {
            if !body.is_empty() {
                body.push('&');
            }
            body.push_str(key);
            body.push('=');
            percent_encode(&mut body, value);
        };
        field("app", &self.app);
        field("flashver", &self.flashver);
        field("swfurl", &self.swfurl);
        field("tcurl", &self.tcurl);
        field("pageurl", &self.pageurl);
        field("addr", &self.addr);
        field("clientid", &self.client_id.to_string());
        field("call", self.call.as_str());
        field("variant", &self.variant);
        if let Some(name) = &self.name {
            field("name", name);
        }
        if let Some(kind) = self.publish_type {
            field("type", kind);
        }
        if let Some(path) = &self.path {
            field("path", path);
        }
        if !self.args.is_empty() {
            body.push('&');
            body.push_str(&self.args);
        }
        body
    }
}

/// Form encoding: unreserved bytes as they are, space as `+`, everything else `%XX`.
fn percent_encode(out: &mut String, value: &str) {
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_nginx_rtmp_fields_and_the_query() {
        let mut form = HookForm {
            call: Call::Publish,
            addr: "127.0.0.1".into(),
            client_id: 7,
            app: "live".into(),
            flashver: "FMLE/3.0 (compatible; x)".into(),
            swfurl: String::new(),
            tcurl: "rtmp://h/live".into(),
            pageurl: String::new(),
            variant: "rtmp".into(),
            name: None,
            publish_type: Some("live"),
            path: None,
            args: String::new(),
        };
        form.set_stream("cam?token=a%2Fb&x=1");
        assert_eq!(
            form.encode(),
            "app=live&flashver=FMLE%2F3.0+%28compatible%3B+x%29&swfurl=&tcurl=rtmp%3A%2F%2Fh%2Flive\
             &pageurl=&addr=127.0.0.1&clientid=7&call=publish&variant=rtmp&name=cam&type=live\
             &token=a%2Fb&x=1"
        );
    }
}
