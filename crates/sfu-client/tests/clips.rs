//! The clip readers and packetizers: frame counts, keyframe spacing, packet
//! sizes, marker bits, timestamps and sequence numbers across loops.

use std::time::Duration;

use sfu_client::media::{is_h264_keyframe, is_vp8_keyframe, ClipSource, DEFAULT_MTU};
use sfu_client::MediaKind;

fn wire_size(p: &sfu_client::rtc::rtp::Packet) -> usize {
    12 + p.payload.len()
}

#[test]
fn vp8_clip_has_150_frames_keyframe_every_30() -> anyhow::Result<()> {
    let src = ClipSource::vp8()?;
    assert_eq!(src.frame_count(), 150);
    assert_eq!(src.keyframe_indices(), vec![0, 30, 60, 90, 120]);
    assert_eq!(src.kind(), MediaKind::Video);
    assert_eq!(src.clip_duration(), Duration::from_secs(5));

    let frames: Vec<_> = src.with_start(65_500, 4_294_960_000).collect();
    assert_eq!(frames.len(), 150);
    let mut expected_seq = 65_500u16;
    let mut expected_ts = 4_294_960_000u32;
    for f in &frames {
        assert_eq!(f.duration, Duration::from_nanos(33_333_333));
        assert!(!f.packets.is_empty());
        for (i, p) in f.packets.iter().enumerate() {
            assert!(
                wire_size(p) <= DEFAULT_MTU,
                "packet of {} bytes",
                wire_size(p)
            );
            assert_eq!(p.header.sequence_number, expected_seq);
            assert_eq!(p.header.timestamp, expected_ts);
            assert_eq!(
                p.header.marker,
                i + 1 == f.packets.len(),
                "marker on the last packet only"
            );
            // Only the first packet of a frame starts partition 0.
            assert_eq!(p.payload[0] & 0x10 != 0, i == 0);
            expected_seq = expected_seq.wrapping_add(1);
        }
        // The keyframe shows in the first packet, and only for keyframes.
        assert_eq!(
            is_vp8_keyframe(&f.packets[0].payload),
            f.keyframe,
            "frame {}",
            f.index
        );
        assert!(f.packets[1..].iter().all(|p| !is_vp8_keyframe(&p.payload)));
        expected_ts = expected_ts.wrapping_add(3000);
    }
    // Keyframes are big enough to be fragmented.
    assert!(frames[0].packets.len() > 1);
    Ok(())
}

#[test]
fn looping_continues_sequence_and_timestamps() -> anyhow::Result<()> {
    let src = ClipSource::vp8()?.with_start(10, 1000).looped();
    let frames: Vec<_> = src.take(320).collect();
    assert_eq!(frames.len(), 320);
    assert_eq!(frames[150].index, 0);
    assert_eq!(frames[150].pass, 1);
    assert_eq!(frames[300].pass, 2);
    let mut seq = 10u16;
    for (n, f) in frames.iter().enumerate() {
        assert_eq!(f.packets[0].header.timestamp, 1000 + 3000 * n as u32);
        for p in &f.packets {
            assert_eq!(p.header.sequence_number, seq);
            seq = seq.wrapping_add(1);
        }
    }
    // The same clip frame yields the same payloads on every pass.
    let first: Vec<_> = frames[5]
        .packets
        .iter()
        .map(|p| p.payload.clone())
        .collect();
    let again: Vec<_> = frames[155]
        .packets
        .iter()
        .map(|p| p.payload.clone())
        .collect();
    assert_eq!(first, again);
    Ok(())
}

#[test]
fn h264_clip_has_150_access_units() -> anyhow::Result<()> {
    let src = ClipSource::h264()?;
    assert_eq!(src.frame_count(), 150);
    assert_eq!(src.keyframe_indices(), vec![0, 30, 60, 90, 120]);
    let frames: Vec<_> = src.collect();
    for f in &frames {
        let last = f.packets.len() - 1;
        for (i, p) in f.packets.iter().enumerate() {
            assert!(wire_size(p) <= DEFAULT_MTU);
            assert_eq!(p.header.marker, i == last);
            assert_eq!(p.header.timestamp, f.packets[0].header.timestamp);
        }
        assert_eq!(
            f.packets.iter().any(|p| is_h264_keyframe(&p.payload)),
            f.keyframe,
            "frame {}",
            f.index
        );
    }
    // A keyframe starts with SPS+PPS aggregated in a STAP-A.
    assert_eq!(frames[0].packets[0].payload[0] & 0x1f, 24);
    assert!(is_h264_keyframe(&frames[0].packets[0].payload));
    assert_eq!(
        frames[1].packets[1]
            .header
            .timestamp
            .wrapping_sub(frames[0].packets[0].header.timestamp),
        3000
    );
    Ok(())
}

#[test]
fn opus_clip_is_20ms_packets() -> anyhow::Result<()> {
    let src = ClipSource::opus()?;
    assert_eq!(src.kind(), MediaKind::Audio);
    assert_eq!(src.clock_rate(), 48_000);
    let n = src.frame_count();
    assert!((249..=252).contains(&n), "{n} Opus packets");
    let frames: Vec<_> = src.with_start(0, 0).collect();
    for (k, f) in frames.iter().enumerate() {
        assert_eq!(f.packets.len(), 1);
        assert_eq!(f.duration, Duration::from_millis(20));
        let p = &f.packets[0];
        assert_eq!(p.header.timestamp, 960 * k as u32);
        assert_eq!(
            p.header.marker,
            k == 0,
            "marker only on the first audio packet"
        );
        assert!(wire_size(p) <= DEFAULT_MTU);
    }
    Ok(())
}

#[test]
fn small_mtu_fragments_more() -> anyhow::Result<()> {
    let big: usize = ClipSource::vp8()?.take(1).map(|f| f.packets.len()).sum();
    let small: usize = ClipSource::vp8()?
        .with_mtu(300)
        .take(1)
        .map(|f| f.packets.len())
        .sum();
    assert!(small > big);
    let frame = ClipSource::vp8()?.with_mtu(300).next();
    assert!(frame.is_some_and(|f| f.packets.iter().all(|p| wire_size(p) <= 300)));
    Ok(())
}
