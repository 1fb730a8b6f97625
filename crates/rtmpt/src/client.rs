//! The client side of the tunnel: turns one HTTP/1.1 connection (TCP, or TLS for RTMPTS) into a duplex
//! byte stream, as FFmpeg does it: `/open/1`, then a `/send` whenever there are bytes to send, an `/idle`
//! poll otherwise (every 20 ms while nothing comes back), and `/close` when the stream is dropped.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

/// How long to wait before polling again after an exchange that moved no data.
const IDLE_POLL: Duration = Duration::from_millis(20);

/// Opens a tunnel session over `io` (an HTTP connection to `host`) and returns the RTMP side of it. The
/// tunnel runs in a background task until the returned stream is dropped or the server ends the session.
pub async fn connect<I>(io: I, host: &str) -> io::Result<DuplexStream>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(io::Error::other)?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "RTMPT client connection ended");
        }
    });
    let opened = post(&mut sender, host, "/open/1", Bytes::from_static(&[0])).await?;
    let id = String::from_utf8_lossy(&opened).trim().to_owned();
    if !crate::route::is_session_id(&id) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad RTMPT session id {id:?}"),
        ));
    }
    let (rtmp_side, mut tunnel) = tokio::io::duplex(1024 * 1024);
    let host = host.to_owned();
    tokio::spawn(async move {
        let mut seq = 0u64;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            // Whatever the RTMP side wrote goes in a /send; otherwise poll with /idle.
            let outgoing = match try_read(&mut tunnel, &mut buffer).await {
                Some(Ok(0)) | Some(Err(_)) => break,
                Some(Ok(n)) => Some(Bytes::copy_from_slice(buffer.get(..n).unwrap_or_default())),
                None => None,
            };
            let sent = outgoing.is_some();
            let (path, body) = match outgoing {
                Some(bytes) => (format!("/send/{id}/{seq}"), bytes),
                None => (format!("/idle/{id}/{seq}"), Bytes::from_static(&[0])),
            };
            seq += 1;
            let Ok(answer) = post(&mut sender, &host, &path, body).await else {
                return;
            };
            let Some((&interval, data)) = answer.split_first() else {
                return;
            };
            if !data.is_empty() && tunnel.write_all(data).await.is_err() {
                break;
            }
            if interval == 0 {
                // The server ended the session.
                return;
            }
            if data.is_empty() && !sent {
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
        let _ = post(
            &mut sender,
            &host,
            &format!("/close/{id}/{seq}"),
            Bytes::from_static(&[0]),
        )
        .await;
    });
    Ok(rtmp_side)
}

/// Whatever the RTMP side has written so far, without waiting: `None` when it has written nothing yet.
async fn try_read(tunnel: &mut DuplexStream, buffer: &mut [u8]) -> Option<io::Result<usize>> {
    poll_fn(|cx| {
        let mut read = ReadBuf::new(buffer);
        Poll::Ready(match Pin::new(&mut *tunnel).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) => Some(Ok(read.filled().len())),
            Poll::Ready(Err(error)) => Some(Err(error)),
            Poll::Pending => None,
        })
    })
    .await
}

async fn post(
    sender: &mut SendRequest<Full<Bytes>>,
    host: &str,
    path: &str,
    body: Bytes,
) -> io::Result<Bytes> {
    sender.ready().await.map_err(io::Error::other)?;
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::CONTENT_TYPE, "application/x-fcs")
        .header(hyper::header::USER_AGENT, "Shockwave Flash")
        .body(Full::new(body))
        .map_err(io::Error::other)?;
    let response = sender
        .send_request(request)
        .await
        .map_err(io::Error::other)?;
    if !response.status().is_success() {
        return Err(io::Error::other(format!(
            "RTMPT {path}: HTTP {}",
            response.status()
        )));
    }
    Ok(response
        .into_body()
        .collect()
        .await
        .map_err(io::Error::other)?
        .to_bytes())
}
