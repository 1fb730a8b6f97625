//! The LL-HLS segmenter on arbitrary tag sequences (kind, timestamp step, payload): never panics, keeps
//! its window and the parts it lists bounded, renders a playlist at every step, and reads codec
//! parameters from any configuration record without panicking.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rtmp_hls::codec::{parse_video, video_params, VideoTag};
use rtmp_hls::{HlsConfig, Segmenter};

fuzz_target!(|data: &[u8]| {
    let mut hls = Segmenter::new(HlsConfig {
        part_target_ms: 100,
        segment_target_ms: 300,
        window: 3,
        max_segment_ms: 1000,
        uri_prefix: "r-".into(),
    });
    let mut timestamp = 0u32;
    let mut rest = data;
    while let [kind, step, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let payload = Bytes::copy_from_slice(&tail[..len]);
        rest = &tail[len..];
        // Mostly forward, sometimes backwards (a timestamp jump).
        timestamp = if step & 0x80 == 0 {
            timestamp.wrapping_add(u32::from(*step) * 4)
        } else {
            timestamp.saturating_sub(u32::from(step & 0x7f) * 40)
        };
        if kind & 1 == 0 {
            if let Ok(VideoTag::Config(config)) = parse_video(&payload) {
                let _ = video_params(&config);
            }
            let _ = hls.push_video(timestamp, &payload);
        } else {
            let _ = hls.push_audio(timestamp, &payload);
        }
        let playlist = hls.playlist();
        assert!(playlist.matches("#EXTINF").count() <= 3);
        // Parts are listed for the open segment and the last two complete ones, 256 at most each.
        assert!(playlist.matches("#EXT-X-PART:").count() <= 3 * 256);
        let sequence = hls.media_sequence();
        assert!(playlist.contains(&format!("#EXT-X-MEDIA-SEQUENCE:{sequence}\n")));
    }
    hls.finish();
    let _ = hls.playlist();
});
