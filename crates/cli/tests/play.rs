//! The built `rtmpx play -o FILE` against the server in-process: stopped by SIGTERM (what `timeout`,
//! systemd and `docker stop` send), it ends the file after a whole tag, as with Ctrl-C.

use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rtmp_chunk::Message;
use rtmp_client::{Client, ConnectOptions, RtmpUrl};
use rtmpx::{Config, Server};

/// Video frame `i` (a keyframe every 10th) of a size that falls across any buffer's boundary.
fn frame(i: u32) -> Message {
    let first = if i % 10 == 0 { 0x17 } else { 0x27 };
    let size = 5000 + (i % 7) * 311;
    let payload: Vec<u8> = [first, 1, 0, 0, 0]
        .into_iter()
        .chain((0..size).map(|b| (b * 7 + i) as u8))
        .collect();
    Message {
        timestamp: i * 5,
        type_id: 9,
        stream_id: 1,
        payload: Bytes::from(payload),
    }
}

/// Publishes frames every 5 ms until `stop` is set.
async fn publish(url: RtmpUrl, stop: Arc<AtomicBool>) {
    let mut client = Client::connect(&url, &ConnectOptions::default())
        .await
        .unwrap();
    let stream_id = client.publish(&url.stream).await.unwrap();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        client.send(stream_id, &frame(i));
        client.flush().await.unwrap();
        i += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The tags of an FLV file; fails on a tag cut short or a wrong back pointer.
fn whole_tags(file: &[u8]) -> Result<usize, String> {
    let mut rest = file.get(13..).ok_or("no FLV header")?;
    let mut tags = 0;
    while !rest.is_empty() {
        let header = rest.get(..11).ok_or(format!("tag {tags}: header cut"))?;
        let size = u32::from_be_bytes([0, header[1], header[2], header[3]]) as usize;
        let back = rest
            .get(11 + size..15 + size)
            .ok_or(format!("tag {tags}: {size} bytes of payload cut"))?;
        let back = u32::from_be_bytes([back[0], back[1], back[2], back[3]]) as usize;
        if back != size + 11 {
            return Err(format!(
                "tag {tags}: back pointer {back}, not {}",
                size + 11
            ));
        }
        rest = &rest[15 + size..];
        tags += 1;
    }
    Ok(tags)
}

fn wait_for_size(path: &Path, bytes: u64, player: &mut Child) {
    for _ in 0..500 {
        if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) >= bytes {
            return;
        }
        assert!(player.try_wait().unwrap().is_none(), "the player stopped");
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} never reached {bytes} bytes", path.display());
}

fn wait_for_exit(player: &mut Child) -> std::process::ExitStatus {
    for _ in 0..250 {
        if let Some(status) = player.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = player.kill();
    panic!("the player did not stop within 5 s of SIGTERM");
}

#[cfg(unix)]
#[test]
fn play_stopped_by_sigterm_leaves_whole_tags() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        listen_tls: vec![],
        listen_http: vec![],
        // Not the default API port: another server on this machine may hold it.
        listen_api: vec![],
        ..Config::default()
    };
    let server = runtime.block_on(Server::start(&config)).unwrap();
    let url = format!("rtmp://{}/live/term", server.local_addresses()[0]);
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = runtime.spawn(publish(url.parse().unwrap(), stop.clone()));

    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.flv");
    let mut player = Command::new(env!("CARGO_BIN_EXE_rtmpx"))
        .args(["play", &url, "-o"])
        .arg(&output)
        .spawn()
        .unwrap();
    wait_for_size(&output, 300_000, &mut player);
    let killed = Command::new("kill")
        .args(["-TERM", &player.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_for_exit(&mut player);
    stop.store(true, Ordering::Relaxed);
    runtime.block_on(publisher).unwrap();

    let file = std::fs::read(&output).unwrap();
    let tags = whole_tags(&file).unwrap_or_else(|cut| panic!("{cut} ({} bytes)", file.len()));
    assert!(tags > 40, "only {tags} tags");
    assert!(status.success(), "play exited with {status}");
}
