//! An RTMPS connector connecting to an acceptor on loopback. The acceptor serves a certificate from PEM
//! files (generated here for `localhost`); the connector trusts exactly that certificate; a few bytes
//! (the RTMP C0 byte, then some chunk bytes) cross the verified TLS stream and are echoed back.
//!
//! ```text
//! cargo run -p rtmp-rtmps --example loopback
//! ```

use rtmp_rtmps::{connector, TlsAcceptor, TlsSettings};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // A certificate and key as a deployment would have them: PEM files. (With no files at all,
    // `TlsSettings::default()` serves a self-signed certificate generated at start.)
    let directory = tempfile::tempdir()?;
    let (cert, key) = (
        directory.path().join("cert.pem"),
        directory.path().join("key.pem"),
    );
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    std::fs::write(&cert, generated.cert.pem())?;
    std::fs::write(&key, generated.signing_key.serialize_pem())?;

    let acceptor = TlsAcceptor::new(TlsSettings {
        cert_and_key: Some((cert.clone(), key)),
    })?;
    println!("server certificate SHA-256: {}", acceptor.fingerprint());

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let (socket, peer) = listener.accept().await?;
        let mut tls = acceptor.accept(socket).await?;
        let mut version = [0u8; 1];
        tls.read_exact(&mut version).await?;
        println!(
            "server: {peer} sent RTMP version byte {} inside TLS",
            version[0]
        );
        let mut buffer = [0u8; 1024];
        loop {
            let n = tls.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            tls.write_all(&buffer[..n]).await?;
        }
        tls.shutdown().await?;
        Ok::<_, Error>(())
    });

    // The certificate file doubles as the client's only root.
    let connector = connector::with_roots(&cert)?;
    let socket = TcpStream::connect(address).await?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost")?, socket)
        .await?;
    tls.write_all(&[3]).await?;
    tls.write_all(b"chunk bytes").await?;
    let mut echo = [0u8; 11];
    tls.read_exact(&mut echo).await?;
    println!(
        "client: {:?} echoed over a verified TLS stream",
        String::from_utf8_lossy(&echo)
    );
    tls.shutdown().await?;
    server.await??;
    Ok(())
}
