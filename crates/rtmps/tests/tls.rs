//! TLS round trips on loopback: the self-signed default, user certificates, hot reload, bad input.

use std::time::Duration;

use rtmp_rtmps::{connector, Prefixed, TlsAcceptor, TlsError, TlsSettings};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves one echo connection per accepted socket.
async fn echo_server(acceptor: TlsAcceptor) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut buffer = [0u8; 1024];
                while let Ok(n) = tls.read(&mut buffer).await {
                    if n == 0 || tls.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    address
}

async fn connect(address: std::net::SocketAddr) -> rtmp_rtmps::ClientTlsStream<TcpStream> {
    let socket = TcpStream::connect(address).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    connector::accept_invalid_certificates()
        .unwrap()
        .connect(name, socket)
        .await
        .unwrap()
}

fn leaf_fingerprint(stream: &rtmp_rtmps::ClientTlsStream<TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0]
        .as_ref()
        .to_vec()
}

async fn echo(stream: &mut rtmp_rtmps::ClientTlsStream<TcpStream>, data: &[u8]) {
    stream.write_all(data).await.unwrap();
    let mut back = vec![0u8; data.len()];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(back, data);
}

fn write_certificate(
    dir: &std::path::Path,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

#[tokio::test]
async fn self_signed_default_serves_tls_with_a_fingerprint() {
    let acceptor = TlsAcceptor::new(TlsSettings::default()).unwrap();
    assert!(acceptor.is_self_signed());
    assert_eq!(acceptor.fingerprint().split(':').count(), 32);
    let address = echo_server(acceptor).await;
    let mut stream = connect(address).await;
    echo(&mut stream, b"\x03rtmp handshake bytes").await;
}

#[tokio::test]
async fn user_certificate_is_served_and_verifies_against_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_certificate(dir.path(), "user");
    let acceptor = TlsAcceptor::new(TlsSettings {
        cert_and_key: Some((cert.clone(), key)),
    })
    .unwrap();
    assert!(!acceptor.is_self_signed());
    let address = echo_server(acceptor).await;
    let socket = TcpStream::connect(address).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut stream = connector::with_roots(&cert)
        .unwrap()
        .connect(name, socket)
        .await
        .unwrap();
    stream.write_all(b"ok").await.unwrap();
    let mut back = [0u8; 2];
    stream.read_exact(&mut back).await.unwrap();
}

#[tokio::test]
async fn reload_swaps_the_certificate_for_new_connections_only() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_certificate(dir.path(), "live");
    let acceptor = TlsAcceptor::new(TlsSettings {
        cert_and_key: Some((cert.clone(), key.clone())),
    })
    .unwrap();
    let before = acceptor.fingerprint();
    let address = echo_server(acceptor.clone()).await;
    let mut old = connect(address).await;
    let old_leaf = leaf_fingerprint(&old);

    let (new_cert, new_key) = write_certificate(dir.path(), "next");
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    let after = acceptor.reload().unwrap();
    assert_ne!(before, after);

    echo(&mut old, b"still here").await;
    let new = connect(address).await;
    assert_ne!(leaf_fingerprint(&new), old_leaf);

    std::fs::write(&cert, "not a certificate").unwrap();
    assert!(matches!(
        acceptor.reload(),
        Err(TlsError::Certificate { .. })
    ));
    assert_eq!(
        acceptor.fingerprint(),
        after,
        "a failed reload keeps the current certificate"
    );
}

#[tokio::test]
async fn bad_pem_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "hello").unwrap();
    let (cert, _) = write_certificate(dir.path(), "c");
    let missing = dir.path().join("missing.pem");
    assert!(matches!(
        TlsAcceptor::new(TlsSettings {
            cert_and_key: Some((junk, cert.clone()))
        }),
        Err(TlsError::Certificate { .. })
    ));
    assert!(matches!(
        TlsAcceptor::new(TlsSettings {
            cert_and_key: Some((cert, missing))
        }),
        Err(TlsError::PrivateKey { .. })
    ));
}

#[tokio::test]
async fn plain_rtmp_bytes_to_the_acceptor_fail_quickly() {
    let acceptor = TlsAcceptor::new(TlsSettings::default()).unwrap();
    let (mut client, server) = tokio::io::duplex(4096);
    let handshake = tokio::spawn(async move { acceptor.accept(server).await.map(|_| ()) });
    client.write_all(&[3u8; 1537]).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(2), handshake)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_err());
}

#[tokio::test]
async fn prefixed_stream_replays_the_sniffed_byte() {
    let (mut client, server) = tokio::io::duplex(64);
    client.write_all(b"BC").await.unwrap();
    drop(client);
    let mut stream = Prefixed::new(b"A".to_vec(), server);
    let mut all = Vec::new();
    stream.read_to_end(&mut all).await.unwrap();
    assert_eq!(all, b"ABC");
}
