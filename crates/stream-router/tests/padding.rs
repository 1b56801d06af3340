//! Padding packets (bandwidth probes) numbered into a player's sequence:
//! no gap, the P bit, NACKs of media behind them still answered.

mod common;

use std::time::Instant;

use bytes::Bytes;
use common::*;
use stream_router::*;

#[test]
fn padding_is_numbered_into_the_players_sequence() {
    let mut r = Router::new();
    let stream = r.add_stream(StreamKey::new(1, "pad")).unwrap();
    let info = video_info(0x700);
    let track = r.add_track(stream, info).unwrap();
    let dt = r
        .subscribe(stream, MediaKind::Video, player(9, 64))
        .unwrap();
    let audio = r
        .subscribe(stream, MediaKind::Audio, player(10, 64))
        .unwrap();
    let t0 = Instant::now();
    // Nothing forwarded yet: nothing to number padding after.
    assert_eq!(r.queue_padding(dt, 3), 0);
    assert_eq!(r.queue_padding(audio, 3), 0);
    let frames: [&'static [u8]; 4] = [VP8_KEY, VP8_DELTA, VP8_DELTA, VP8_DELTA];
    for (i, f) in frames[..3].iter().enumerate() {
        let mut p = packet(
            &info,
            100 + i as u16,
            3000 * i as u32,
            Bytes::from_static(f),
        );
        p.marker = true;
        r.push_rtp(track, p, t0).unwrap();
    }
    assert_eq!(r.queue_padding(dt, 3), 3);
    // A frame of two packets: no padding between them.
    let p = packet(&info, 103, 9000, Bytes::from_static(frames[3]));
    r.push_rtp(track, p, t0).unwrap();
    assert_eq!(r.queue_padding(dt, 1), 0);
    let mut p = packet(&info, 104, 9000, Bytes::from_static(VP8_CONT));
    p.marker = true;
    r.push_rtp(track, p, t0).unwrap();
    let mut sent = Vec::new();
    r.drain_output(|_, out| {
        sent.push((
            out.header.to_vec(),
            out.payload.clone(),
            out.padding,
            out.sequence_number,
            out.timestamp,
        ))
    });
    assert_eq!(sent.len(), 8);
    let seqs: Vec<u16> = sent.iter().map(|s| s.3).collect();
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1), "{seqs:?}");
    }
    let flags: Vec<bool> = sent.iter().map(|s| s.2).collect();
    assert_eq!(flags, [false, false, false, true, true, true, false, false]);
    for (header, payload, padding, _, ts) in &sent[3..6] {
        assert!(*padding);
        assert_eq!(header.len(), 12);
        assert_eq!(header[0], 0xa0, "V=2, P=1, no extension block");
        assert_eq!(header[1], 120);
        assert_eq!(&header[8..12], &9u32.to_be_bytes());
        assert_eq!(payload.len(), PADDING_LEN);
        assert_eq!(payload[PADDING_LEN - 1] as usize, PADDING_LEN);
        assert_eq!(*ts, sent[2].4, "the last media packet's timestamp");
    }
    assert_eq!(sent[6].0[0] & 0x20, 0);
    let st = r.downtrack_stats(dt).unwrap();
    assert_eq!((st.packets_sent, st.padding_sent), (5, 3));

    // NACKs: of padding ignored; of media before and after answered.
    let nack = [sent[4].3, sent[1].3, sent[6].3];
    let s = r
        .handle_player_feedback(dt, Feedback::Nack(&nack), t0)
        .unwrap();
    assert_eq!((s.retransmitted, s.ignored), (2, 1));
    let rtx: Vec<OutPacket> = std::iter::from_fn(|| r.poll_downtrack(dt)).collect();
    assert_eq!(rtx.len(), 2);
    assert_eq!(rtx[0].sequence_number, sent[1].3);
    assert_eq!(rtx[0].payload, sent[1].1);
    assert_eq!(rtx[1].sequence_number, sent[6].3);
    assert_eq!(rtx[1].payload, sent[6].1);

    // The owned path (poll_downtrack) says padding too.
    assert_eq!(r.queue_padding(dt, 1), 1);
    let p = r.poll_downtrack(dt).unwrap();
    assert!(p.padding && p.payload.is_empty());
    assert_eq!(p.sequence_number, sent[7].3.wrapping_add(1));
    let mut buf = [0u8; MAX_HEADER_LEN];
    assert_eq!(p.write_header(&mut buf), 12);
    assert_eq!(buf[0], 0xa0);
    // The queue keeps room for media.
    assert_eq!(r.queue_padding(dt, 1000), 48);
    assert_eq!(r.downtrack_stats(dt).unwrap().padding_sent, 4);
}
