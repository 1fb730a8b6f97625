//! FLV recording against real FFmpeg: what FFmpeg publishes is recorded bit-exact, and a recording cut
//! by SIGKILL reads without error.

use std::time::Duration;

use rtmpx_interop::{enabled, framemd5, scratch, Fixture, Publisher, RtmpxServer, Via};

fn config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("rtmpx.toml");
    let template = dir.join("rec/{app}/{name}-{n}.flv");
    let text = format!(
        "[app.\"*\"]\nrecord = \"all\"\nrecord_path = {:?}\n{extra}",
        template.display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn recording_is_bit_exact_and_rotates_at_keyframes() {
    if !enabled("recording_is_bit_exact_and_rotates_at_keyframes") {
        return;
    }
    let dir = scratch("recording");
    for (extra, files) in [("", 1), ("record_max_duration_s = 2\n", 3)] {
        let _ = std::fs::remove_dir_all(dir.path().join("rec"));
        let config = config(dir.path(), extra);
        let server = RtmpxServer::start(&["--config", config.to_str().unwrap()]);
        let mut publisher = Publisher::Ffmpeg.spawn(
            &Fixture::H264Aac.path(),
            &Via::Rtmp.url(&server, "live/rec"),
            &dir.path().join("publisher.log"),
        );
        assert!(publisher.wait(Duration::from_secs(30)).success());
        std::thread::sleep(Duration::from_secs(1));
        let mut recorded = Vec::new();
        for n in 0..files {
            let file = dir.path().join(format!("rec/live/rec-{n}.flv"));
            assert!(
                file.exists(),
                "{} missing; server log:\n{}",
                file.display(),
                server.log()
            );
            recorded.extend(framemd5(&Fixture::H264Aac.judge(), &file));
        }
        assert!(!dir
            .path()
            .join(format!("rec/live/rec-{files}.flv"))
            .exists());
        assert_eq!(recorded, Fixture::H264Aac.reference(), "{extra}");
    }
}

#[test]
fn a_killed_recording_reads_to_its_last_whole_tag() {
    if !enabled("a_killed_recording_reads_to_its_last_whole_tag") {
        return;
    }
    let dir = scratch("recording-kill");
    let config = config(dir.path(), "");
    let server = RtmpxServer::start(&["--config", config.to_str().unwrap()]);
    let _publisher = Publisher::Ffmpeg.spawn(
        &Fixture::H264Aac.path(),
        &Via::Rtmp.url(&server, "live/kill"),
        &dir.path().join("publisher.log"),
    );
    std::thread::sleep(Duration::from_secs(3));
    sigkill(server.pid());
    let packets = framemd5(
        &Fixture::H264Aac.judge(),
        &dir.path().join("rec/live/kill-0.flv"),
    );
    let reference = Fixture::H264Aac.reference();
    assert!(packets.len() > 20);
    assert_eq!(packets[..], reference[..packets.len()]);
}

/// SIGKILL through the `kill` command.
fn sigkill(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn an_unwritable_record_path_is_logged_and_players_still_get_the_stream() {
    let dir = scratch("recording-unwritable");
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"a file where the directory should be").unwrap();
    let config = dir.path().join("rtmpx.toml");
    let template = blocker.join("{name}.flv");
    std::fs::write(
        &config,
        format!(
            "[app.\"*\"]\nrecord = \"all\"\nrecord_path = {:?}\n",
            template.display().to_string()
        ),
    )
    .unwrap();
    rtmpx_interop::Scenario::new(
        "an_unwritable_record_path_is_logged_and_players_still_get_the_stream",
    )
    .server_args(&["--config", config.to_str().unwrap()])
    .stream(
        "live/unwritable",
        Fixture::H264Aac,
        Publisher::Ffmpeg,
        Via::Rtmp,
    )
    .play(rtmpx_interop::Player::Ffmpeg.via(Via::Rtmp))
    .server_log("recording failed")
    .run();
}
