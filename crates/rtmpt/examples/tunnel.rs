//! An RTMPT tunnel on loopback: the tunnel server (feature `server`) on an ephemeral port, the tunnel
//! client (feature `client`) over one HTTP connection to it, and bytes echoed through both ends.
//!
//! `cargo run -p rtmp-rtmpt --features client --example tunnel`

use rtmp_rtmpt::server::{RtmptConfig, RtmptServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // The server: every HTTP connection served by the tunnel; every tunnel session arrives as a stream.
    let (server, mut tunnels) = RtmptServer::new(RtmptConfig::default());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let serving = server.clone();
    tokio::spawn(async move {
        while let Ok((socket, peer)) = listener.accept().await {
            let serving = serving.clone();
            tokio::spawn(async move { serving.serve_connection(socket, peer, false).await });
        }
    });
    // The RTMP side of each tunnel: here an echo, where a server would run its RTMP session.
    tokio::spawn(async move {
        while let Some(tunnel) = tunnels.recv().await {
            let (mut reader, mut writer) = tokio::io::split(tunnel.stream);
            tokio::spawn(async move { tokio::io::copy(&mut reader, &mut writer).await });
        }
    });

    // The client: one HTTP connection, an RTMP byte stream back.
    let http = TcpStream::connect(address).await?;
    let mut rtmp = rtmp_rtmpt::client::connect(http, &address.to_string()).await?;
    for line in ["hello", "through", "the tunnel"] {
        rtmp.write_all(line.as_bytes()).await?;
        let mut echoed = vec![0u8; line.len()];
        rtmp.read_exact(&mut echoed).await?;
        println!("echoed: {}", String::from_utf8_lossy(&echoed));
    }
    println!("{} tunnel session(s) open", server.session_count());
    Ok(())
}
