//! Plain HTTP/1.1 requests to the server's listeners (API, RTMPT/HLS port) and to other local services,
//! one connection per request, with a read timeout so a silent peer fails the test instead of hanging it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a request waits for the whole answer.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One request without a body (`Connection: close`); the status and the body.
pub fn request(address: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut socket =
        TcpStream::connect(address).unwrap_or_else(|e| panic!("connect to {address}: {e}"));
    socket
        .set_read_timeout(Some(READ_TIMEOUT))
        .unwrap_or_else(|e| panic!("{e}"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    socket
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {path} to {address}: {e}"));
    let mut answer = String::new();
    socket
        .read_to_string(&mut answer)
        .unwrap_or_else(|e| panic!("{method} {path} from {address}: {e}"));
    let status = answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {answer}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_owned())
}

/// `GET path`; the status and the body.
pub fn get(address: SocketAddr, path: &str) -> (u16, String) {
    request(address, "GET", path)
}
