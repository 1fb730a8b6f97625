//! Packet-level comparison of what was published with what a player received.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::process::run_with_timeout;

/// One packet as `-f framemd5` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub stream: usize,
    pub size: usize,
    pub md5: String,
}

/// Parses framemd5 output: `stream, dts, pts, duration, size, md5` lines.
pub fn parse_framemd5(text: &str) -> Vec<Packet> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            Some(Packet {
                stream: fields.first()?.parse().ok()?,
                size: fields.get(4)?.parse().ok()?,
                md5: fields.get(5)?.to_string(),
            })
        })
        .collect()
}

/// The packets of a media file (or URL), read with `-c copy` (no decoding) by `ffmpeg` or another binary.
pub fn framemd5(ffmpeg: &Path, input: &Path) -> Vec<Packet> {
    let mut command = Command::new(ffmpeg);
    command
        .args(["-loglevel", "error", "-i"])
        .arg(input)
        .args(["-c", "copy", "-f", "framemd5", "-"]);
    let output = run_with_timeout(&mut command, Duration::from_secs(60));
    assert!(
        output.status.success(),
        "framemd5 of {} failed: {}",
        input.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    parse_framemd5(&String::from_utf8_lossy(&output.stdout))
}

fn by_stream(packets: &[Packet]) -> Vec<Vec<(usize, &str)>> {
    let streams = packets.iter().map(|p| p.stream + 1).max().unwrap_or(0);
    (0..streams)
        .map(|s| {
            packets
                .iter()
                .filter(|p| p.stream == s)
                .map(|p| (p.size, p.md5.as_str()))
                .collect()
        })
        .collect()
}

/// Splits `played` into maximal runs that appear contiguously in `reference`: `(start in reference,
/// length)` for each run, in order. Greedy: each run is extended as far as it matches.
pub fn runs_in_reference<T: PartialEq>(
    reference: &[T],
    played: &[T],
) -> Option<Vec<(usize, usize)>> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < played.len() {
        let mut best: Option<(usize, usize)> = None;
        for start in (0..reference.len()).filter(|&s| reference[s] == played[i]) {
            let len = reference[start..]
                .iter()
                .zip(&played[i..])
                .take_while(|(a, b)| a == b)
                .count();
            if best.is_none_or(|(_, l)| len > l) {
                best = Some((start, len));
            }
        }
        let (start, len) = best?;
        runs.push((start, len));
        i += len;
    }
    Some(runs)
}

/// Asserts that every stream a player received is one contiguous, bit-identical run of a published
/// stream, holding at least `min_fraction` of its packets, and that every published stream arrived.
pub fn assert_contiguous_run(reference: &[Packet], played: &[Packet], min_fraction: f64) {
    let reference = by_stream(reference);
    let played = by_stream(played);
    assert_eq!(
        played.len(),
        reference.len(),
        "player got {} streams, publisher sent {}",
        played.len(),
        reference.len()
    );
    for (index, got) in played.iter().enumerate() {
        let matched = reference.iter().find_map(|sent| {
            let runs = runs_in_reference(sent, got)?;
            (runs.len() == 1).then_some(sent)
        });
        let Some(sent) = matched else {
            panic!("played stream {index} ({} packets) is not one contiguous run of any published stream", got.len());
        };
        let fraction = got.len() as f64 / sent.len().max(1) as f64;
        assert!(
            fraction >= min_fraction,
            "played stream {index} has {} of {} packets ({fraction:.2} < {min_fraction})",
            got.len(),
            sent.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets(stream: usize, hashes: &[&str]) -> Vec<Packet> {
        hashes
            .iter()
            .map(|h| Packet {
                stream,
                size: h.len(),
                md5: (*h).into(),
            })
            .collect()
    }

    #[test]
    fn parses_framemd5_lines() {
        let text = "#format: frame checksums\n#stream#, dts, pts, duration, size, hash\n0, 0, 0, 33, 1234, abc\n1, 0, 0, 23, 10, def\n";
        assert_eq!(
            parse_framemd5(text),
            vec![
                Packet {
                    stream: 0,
                    size: 1234,
                    md5: "abc".into()
                },
                Packet {
                    stream: 1,
                    size: 10,
                    md5: "def".into()
                }
            ]
        );
    }

    #[test]
    fn contiguous_runs_are_found_and_gaps_are_not_one_run() {
        let reference = ["a", "b", "c", "d", "e"];
        assert_eq!(
            runs_in_reference(&reference, &["b", "c", "d"]),
            Some(vec![(1, 3)])
        );
        assert_eq!(
            runs_in_reference(&reference, &["a", "b", "d", "e"]),
            Some(vec![(0, 2), (3, 2)])
        );
        assert_eq!(runs_in_reference(&reference, &["a", "x"]), None);
    }

    #[test]
    fn the_assertion_accepts_a_late_join_and_rejects_a_gap() {
        let reference = [
            packets(0, &["k1", "p1", "k2", "p2"]),
            packets(1, &["a1", "a2"]),
        ]
        .concat();
        assert_contiguous_run(
            &reference,
            &[packets(0, &["k2", "p2"]), packets(1, &["a2"])].concat(),
            0.5,
        );
        let gap = [packets(0, &["k1", "k2", "p2"]), packets(1, &["a1", "a2"])].concat();
        assert!(std::panic::catch_unwind(|| assert_contiguous_run(&reference, &gap, 0.5)).is_err());
    }
}
