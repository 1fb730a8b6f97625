//! The status codes the session sends (`onStatus` info objects and `_error` answers), as a type: each
//! code carries its wire text and its level, so no caller spells either by hand.

/// The level of a status event, as the `level` field of its info object says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusLevel {
    /// A normal state change.
    Status,
    /// Something the peer may want to know; the stream goes on.
    Warning,
    /// A failure: the request was refused or the stream stopped.
    Error,
}

impl StatusLevel {
    /// The text of the `level` field.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// A status code the session sends, with its level (PROTOCOL.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusCode {
    /// `NetConnection.Connect.Success`: the `connect` answer.
    ConnectSuccess,
    /// `NetConnection.Connect.Rejected`: the connection is refused.
    ConnectRejected,
    /// `NetConnection.Connect.InvalidApp`: the application named in `connect` does not exist.
    ConnectInvalidApp,
    /// `NetConnection.Connect.ReconnectRequest` (E-RTMP v2): the server asks the client to connect
    /// again, to the `tcUrl` the info object names or to the same one.
    ConnectReconnectRequest,
    /// `NetConnection.Call.Failed`: a command could not be carried out.
    CallFailed,
    /// `NetConnection.Call.BadValue`: a command's arguments are not what it needs.
    CallBadValue,
    /// `NetStream.Publish.Start`.
    PublishStart,
    /// `NetStream.Publish.BadName`: the name is taken or not allowed.
    PublishBadName,
    /// `NetStream.Unpublish.Success`.
    UnpublishSuccess,
    /// `NetStream.Play.Reset`, sent before `Play.Start`.
    PlayReset,
    /// `NetStream.Play.Start`.
    PlayStart,
    /// `NetStream.Play.Stop`: the server stops the playback.
    PlayStop,
    /// `NetStream.Play.Complete`: the stream played to its end.
    PlayComplete,
    /// `NetStream.Play.PublishNotify`: the played stream is published (again).
    PlayPublishNotify,
    /// `NetStream.Play.UnpublishNotify`: the played stream's publisher left.
    PlayUnpublishNotify,
    /// `NetStream.Play.StreamNotFound`.
    PlayStreamNotFound,
    /// `NetStream.Play.Failed`.
    PlayFailed,
    /// `NetStream.Pause.Notify`.
    PauseNotify,
    /// `NetStream.Unpause.Notify`.
    UnpauseNotify,
    /// `NetStream.Seek.Failed`: live streams cannot seek.
    SeekFailed,
    /// `NetStream.Seek.Notify`: a recorded stream moved to a new position.
    SeekNotify,
    /// `NetStream.Failed`: something on the stream went wrong.
    StreamFailed,
}

impl StatusCode {
    /// Every code, for lookups by text.
    const ALL: [StatusCode; 22] = [
        Self::ConnectSuccess,
        Self::ConnectRejected,
        Self::ConnectInvalidApp,
        Self::ConnectReconnectRequest,
        Self::CallFailed,
        Self::CallBadValue,
        Self::PublishStart,
        Self::PublishBadName,
        Self::UnpublishSuccess,
        Self::PlayReset,
        Self::PlayStart,
        Self::PlayStop,
        Self::PlayComplete,
        Self::PlayPublishNotify,
        Self::PlayUnpublishNotify,
        Self::PlayStreamNotFound,
        Self::PlayFailed,
        Self::PauseNotify,
        Self::UnpauseNotify,
        Self::SeekFailed,
        Self::SeekNotify,
        Self::StreamFailed,
    ];

    /// The text of the `code` field.
    pub const fn code(self) -> &'static str {
        match self {
            Self::ConnectSuccess => "NetConnection.Connect.Success",
            Self::ConnectRejected => "NetConnection.Connect.Rejected",
            Self::ConnectInvalidApp => "NetConnection.Connect.InvalidApp",
            Self::ConnectReconnectRequest => "NetConnection.Connect.ReconnectRequest",
            Self::CallFailed => "NetConnection.Call.Failed",
            Self::CallBadValue => "NetConnection.Call.BadValue",
            Self::PublishStart => "NetStream.Publish.Start",
            Self::PublishBadName => "NetStream.Publish.BadName",
            Self::UnpublishSuccess => "NetStream.Unpublish.Success",
            Self::PlayReset => "NetStream.Play.Reset",
            Self::PlayStart => "NetStream.Play.Start",
            Self::PlayStop => "NetStream.Play.Stop",
            Self::PlayComplete => "NetStream.Play.Complete",
            Self::PlayPublishNotify => "NetStream.Play.PublishNotify",
            Self::PlayUnpublishNotify => "NetStream.Play.UnpublishNotify",
            Self::PlayStreamNotFound => "NetStream.Play.StreamNotFound",
            Self::PlayFailed => "NetStream.Play.Failed",
            Self::PauseNotify => "NetStream.Pause.Notify",
            Self::UnpauseNotify => "NetStream.Unpause.Notify",
            Self::SeekFailed => "NetStream.Seek.Failed",
            Self::SeekNotify => "NetStream.Seek.Notify",
            Self::StreamFailed => "NetStream.Failed",
        }
    }

    /// The level the code is sent with.
    pub const fn level(self) -> StatusLevel {
        match self {
            Self::ConnectRejected
            | Self::ConnectInvalidApp
            | Self::CallFailed
            | Self::CallBadValue
            | Self::PublishBadName
            | Self::PlayStreamNotFound
            | Self::PlayFailed
            | Self::SeekFailed
            | Self::StreamFailed => StatusLevel::Error,
            Self::ConnectSuccess
            | Self::ConnectReconnectRequest
            | Self::PublishStart
            | Self::UnpublishSuccess
            | Self::PlayReset
            | Self::PlayStart
            | Self::PlayStop
            | Self::PlayComplete
            | Self::PlayPublishNotify
            | Self::PlayUnpublishNotify
            | Self::PauseNotify
            | Self::UnpauseNotify
            | Self::SeekNotify => StatusLevel::Status,
        }
    }

    /// The code whose text is `code`, if the session knows it (for status events a peer sent).
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.code() == code)
    }
}

impl std::fmt::Display for StatusCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_from_its_text() {
        for status in StatusCode::ALL {
            assert_eq!(StatusCode::from_code(status.code()), Some(status));
        }
        assert_eq!(StatusCode::from_code("NetStream.Unknown"), None);
    }
}
