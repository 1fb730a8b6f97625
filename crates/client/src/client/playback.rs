//! Playing recordings: `play` with a start and a duration, `seek`, `pause` and `getStreamLength`
//! (answered by a server that plays files, such as rtmpx with `vod_path`).

use rtmp_session::ClientEvent;

use super::{Client, ClientError};

impl Client {
    /// Plays `stream_name` from `start_ms` (`-2` live or recorded, `-1` live only, `>= 0` a recording
    /// from there, ms) for `duration_ms` (`-1`: to the end), announcing a buffer of `buffer_ms` (how far
    /// ahead of real time the server may send). Returns the stream id once `NetStream.Play.Start` came.
    pub async fn play_from(
        &mut self,
        stream_name: &str,
        start_ms: f64,
        duration_ms: f64,
        buffer_ms: u32,
    ) -> Result<u32, ClientError> {
        let stream_id = self.create_stream().await?;
        self.session
            .play_from(stream_id, stream_name, start_ms, duration_ms, buffer_ms);
        self.wait_for("play", |e| matches!(e, ClientEvent::PlayStarted { .. }))
            .await?;
        Ok(stream_id)
    }

    /// Moves a recorded stream to `position_ms`; returns once `NetStream.Seek.Notify` came (the media
    /// received meanwhile stays queued for [`Client::next_event`], in order).
    pub async fn seek(&mut self, stream_id: u32, position_ms: f64) -> Result<(), ClientError> {
        self.session.seek(stream_id, position_ms);
        self.wait_for("seek", |e| is_status(e, "NetStream.Seek.Notify"))
            .await?;
        Ok(())
    }

    /// Pauses (`true`) or resumes a stream at the play head `position_ms`; returns once
    /// `NetStream.Pause.Notify` (or `Unpause.Notify`) came.
    pub async fn pause(
        &mut self,
        stream_id: u32,
        paused: bool,
        position_ms: f64,
    ) -> Result<(), ClientError> {
        self.session.pause(stream_id, paused, position_ms);
        let code = if paused {
            "NetStream.Pause.Notify"
        } else {
            "NetStream.Unpause.Notify"
        };
        self.wait_for("pause", |e| is_status(e, code)).await?;
        Ok(())
    }

    /// Tells the server the client's buffer length for a stream.
    pub async fn set_buffer_length(
        &mut self,
        stream_id: u32,
        buffer_ms: u32,
    ) -> Result<(), ClientError> {
        self.session.set_buffer_length(stream_id, buffer_ms);
        self.flush().await
    }

    /// A stream's duration in seconds as the server answers `getStreamLength` (0 for a live stream).
    pub async fn stream_length(&mut self, stream_name: &str) -> Result<f64, ClientError> {
        self.session.get_stream_length(stream_name);
        match self
            .wait_for("getStreamLength", |e| {
                matches!(e, ClientEvent::StreamLength { .. })
            })
            .await?
        {
            ClientEvent::StreamLength { seconds } => Ok(seconds),
            _ => Err(ClientError::Closed),
        }
    }
}

fn is_status(event: &ClientEvent, wanted: &str) -> bool {
    matches!(event, ClientEvent::Status { code, .. } if code == wanted)
}
