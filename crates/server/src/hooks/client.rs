//! One hook call: a POST over HTTP/1.1 on a connection of its own, bounded by a timeout, reading only
//! the status and `Location` (the body is never read).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use super::HookAnswer;

/// Why a call got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("bad hook url: {0}")]
    Url(String),
    #[error("timed out")]
    Timeout,
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
}

/// POSTs `body` as a form to `url` (`http://` only) and returns the status and `Location`.
pub async fn post_form(
    url: &str,
    body: String,
    timeout: Duration,
) -> Result<HookAnswer, HookError> {
    match tokio::time::timeout(timeout, post(url, body)).await {
        Ok(result) => result,
        Err(_) => Err(HookError::Timeout),
    }
}

async fn post(url: &str, body: String) -> Result<HookAnswer, HookError> {
    let uri: http::Uri = url.parse().map_err(|_| HookError::Url(url.into()))?;
    if uri.scheme_str() != Some("http") {
        return Err(HookError::Url(format!("{url}: only http:// is supported")));
    }
    let host = uri.host().ok_or_else(|| HookError::Url(url.into()))?;
    let port = uri.port_u16().unwrap_or(80);
    let authority = uri
        .authority()
        .map_or(host.to_owned(), |a| a.as_str().to_owned());
    let host_for_connect = host.trim_start_matches('[').trim_end_matches(']');
    let stream = tokio::net::TcpStream::connect((host_for_connect, port))
        .await
        .map_err(HookError::Connect)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // Drives the connection; ends with the call (the future is dropped with it on timeout).
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = http::Request::post(path)
        .header(http::header::HOST, authority)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::CONNECTION, "close")
        .body(Full::new(Bytes::from(body)))
        .map_err(|error| HookError::Url(error.to_string()))?;
    let result = sender.send_request(request).await;
    driver.abort();
    let response = result?;
    let location = response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    Ok(HookAnswer {
        status: response.status().as_u16(),
        location,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::{post_form, HookError};

    /// A server that reads one request and writes `answer`, then returns the request.
    async fn serve_once(answer: Vec<u8>) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook?secret=1", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0; 4096];
            let n = socket.read(&mut request).await.unwrap();
            let _ = socket.write_all(&answer).await;
            String::from_utf8_lossy(&request[..n]).into_owned()
        });
        (url, task)
    }

    #[tokio::test]
    async fn status_and_location_are_read_and_the_form_is_posted() {
        let (url, task) = serve_once(
            b"HTTP/1.1 302 Found\r\nLocation: other\r\nContent-Length: 0\r\n\r\n".to_vec(),
        )
        .await;
        let answer = post_form(&url, "call=publish".into(), Duration::from_secs(3))
            .await
            .unwrap();
        assert_eq!(
            (answer.status, answer.location.as_deref()),
            (302, Some("other"))
        );
        let request = task.await.unwrap();
        assert!(request.starts_with("POST /hook?secret=1 HTTP/1.1"));
        assert!(request.contains("application/x-www-form-urlencoded"));
        assert!(request.ends_with("call=publish"));
    }

    #[tokio::test]
    async fn a_huge_body_is_not_read() {
        let mut answer = b"HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n".to_vec();
        answer.extend(std::iter::repeat_n(b'x', 64 * 1024));
        let (url, _task) = serve_once(answer).await;
        let answer = post_form(&url, String::new(), Duration::from_secs(3))
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
    }

    #[tokio::test]
    async fn garbage_slow_and_down_are_errors() {
        let (url, _task) = serve_once(b"garbage\r\n\r\n".to_vec()).await;
        assert!(matches!(
            post_form(&url, String::new(), Duration::from_secs(3)).await,
            Err(HookError::Http(_))
        ));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let slow = format!("http://{}/", listener.local_addr().unwrap());
        let started = std::time::Instant::now();
        assert!(matches!(
            post_form(&slow, String::new(), Duration::from_millis(200)).await,
            Err(HookError::Timeout)
        ));
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(listener);

        assert!(matches!(
            post_form(&slow, String::new(), Duration::from_secs(3)).await,
            Err(HookError::Connect(_))
        ));
    }
}
