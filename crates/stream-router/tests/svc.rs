//! SVC in one track: VP9 spatial/temporal layers and VP8 temporal layers
//! dropped per player, with continuous numbering, markers at the end of
//! each player's picture, NACKs across the gaps and switch-ups on
//! keyframes.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use stream_router::*;

const PT_VP9: u8 = 98;

struct Svc {
    r: Router,
    stream: StreamHandle,
    info: TrackInfo,
    track: TrackHandle,
    seq: u16,
    ts: u32,
    pic: u16,
}

/// L3T3 temporal pattern.
const TIDS: [u8; 4] = [0, 2, 1, 2];

impl Svc {
    fn new(codec: Codec) -> Self {
        let mut r = Router::new();
        let stream = r.add_stream(StreamKey::new(1, "svc")).unwrap();
        let info = TrackInfo {
            codec,
            payload_type: if codec == Codec::Vp9 { PT_VP9 } else { PT_VP8 },
            ..video_info(0x500)
        };
        let track = r.add_track(stream, info).unwrap();
        Svc {
            r,
            stream,
            info,
            track,
            seq: 65_530,
            ts: 9_000,
            pic: 0x7ff0,
        }
    }

    fn push(&mut self, payload: Vec<u8>, marker: bool, seq: u16, now: Instant) -> PushSummary {
        let mut p = packet(&self.info, seq, self.ts, Bytes::from(payload));
        p.marker = marker;
        self.r.push_rtp(self.track, p, now).unwrap()
    }

    /// One VP9 layer-frame packet (k-SVC: keyframes predict S1/S2 from
    /// the layer below only, delta frames from their own layer).
    fn vp9(&self, key: bool, sid: u8, tid: u8, start: bool, end: bool) -> Vec<u8> {
        let mut b0 = 0x80 | 0x20;
        if !key {
            b0 |= 0x40;
        }
        if start {
            b0 |= 0x08;
        }
        if end {
            b0 |= 0x04;
        }
        let [hi, lo] = self.pic.to_be_bytes();
        let l = (tid << 5) | (sid << 1) | u8::from(key && sid > 0);
        let mut p = vec![b0, 0x80 | hi, lo, l, 0];
        if key && sid == 0 && start {
            // The scalability structure: three spatial layers.
            p[0] |= 0x02;
            p.push(0x40);
        }
        p.extend([sid, tid, u8::from(key)]);
        p
    }

    /// One VP9 picture: three spatial layers of two packets each; the
    /// marker on the very last one.
    fn picture(&mut self, key: bool, now: Instant) {
        let tid = if key {
            0
        } else {
            TIDS[usize::from(self.pic % 4)]
        };
        for sid in 0..3 {
            for part in 0..2 {
                let p = self.vp9(key, sid, tid, part == 0, part == 1);
                let seq = self.seq;
                self.seq = self.seq.wrapping_add(1);
                self.push(p, sid == 2 && part == 1, seq, now);
            }
        }
        self.pic = self.pic.wrapping_add(1) & 0x7fff;
        self.ts = self.ts.wrapping_add(3_000);
    }

    /// One VP8 frame of temporal layer `tid`, one packet.
    fn vp8_frame(&mut self, key: bool, tid: u8, now: Instant) {
        let [hi, lo] = self.pic.to_be_bytes();
        let p = vec![
            0x90,
            0xe0,
            0x80 | hi,
            lo,
            3,
            tid << 6,
            if key { 0x9c } else { 0x9d },
            1,
        ];
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.push(p, true, seq, now);
        self.pic = self.pic.wrapping_add(1) & 0x7fff;
        self.ts = self.ts.wrapping_add(3_000);
    }

    /// A video player with a 256-packet queue.
    fn play(&mut self, ssrc: u32) -> DownTrackHandle {
        self.r
            .subscribe(self.stream, MediaKind::Video, player(ssrc, 256))
            .unwrap()
    }

    fn sent(&mut self, dt: DownTrackHandle) -> Vec<OutPacket> {
        std::iter::from_fn(|| self.r.poll_downtrack(dt)).collect()
    }

    fn plis(&mut self, now: Instant) -> usize {
        std::iter::from_fn(|| self.r.poll_upstream(now)).count()
    }
}

/// (spatial, temporal) of a forwarded VP9 packet (as the test payload
/// repeats them at its end).
fn layers(p: &OutPacket) -> (u8, u8) {
    let n = p.payload.len();
    (p.payload[n - 3], p.payload[n - 2])
}

fn assert_continuous(ps: &[OutPacket]) {
    for w in ps.windows(2) {
        assert_eq!(
            w[1].sequence_number,
            w[0].sequence_number.wrapping_add(1),
            "{:?}",
            ps.iter().map(|p| p.sequence_number).collect::<Vec<_>>()
        );
    }
}

#[test]
fn vp9_players_get_their_spatial_layers_numbered_without_gaps() {
    let mut s = Svc::new(Codec::Vp9);
    let t0 = Instant::now();
    let full = s.play(1);
    let low = s.play(2);
    let mid = s.play(3);
    s.r.set_max_layer(low, 0).unwrap();
    s.r.set_max_layer(mid, 1).unwrap();
    s.picture(true, t0);
    for i in 1..8 {
        s.picture(false, t0 + Duration::from_millis(33 * i));
    }
    let full_out = s.sent(full);
    let low_out = s.sent(low);
    let mid_out = s.sent(mid);
    // Everything, and the publisher's markers: one per picture.
    assert_eq!(full_out.len(), 8 * 6);
    assert_eq!(full_out.iter().filter(|p| p.marker).count(), 8);
    assert_continuous(&full_out);
    // Only S0 (S0 and S1): numbered without gaps, each picture ending
    // (marker) with the player's top layer.
    assert_eq!(low_out.len(), 8 * 2);
    assert!(low_out.iter().all(|p| layers(p).0 == 0));
    assert_continuous(&low_out);
    let ends: Vec<bool> = low_out.iter().map(|p| p.marker).collect();
    assert_eq!(ends, [false, true].repeat(8));
    assert_eq!(mid_out.len(), 8 * 4);
    assert!(mid_out.iter().all(|p| layers(p).0 <= 1));
    assert_continuous(&mid_out);
    assert_eq!(
        mid_out.iter().filter(|p| p.marker).count(),
        8,
        "marker on S1's last packet"
    );
    assert!(mid_out
        .iter()
        .filter(|p| p.marker)
        .all(|p| layers(p).0 == 1));
    let st = s.r.downtrack_stats(low).unwrap();
    assert_eq!(st.dropped_layer, 8 * 4);
    assert_eq!(s.r.downtrack_stats(full).unwrap().dropped_layer, 0);

    // A NACK of the player's own numbers finds the packet behind the gap
    // (its third packet: picture 1, S0 start), marker as first sent.
    let lost = low_out[3].sequence_number;
    let summary =
        s.r.handle_player_feedback(low, Feedback::Nack(&[lost]), t0 + Duration::from_secs(1))
            .unwrap();
    assert_eq!(summary.retransmitted, 1);
    let rtx = s.sent(low);
    assert_eq!(rtx.len(), 1);
    assert!(rtx[0].is_retransmission);
    assert_eq!(rtx[0].sequence_number, lost);
    assert_eq!(rtx[0].payload, low_out[3].payload);
    assert_eq!(rtx[0].timestamp, low_out[3].timestamp);
    assert!(rtx[0].marker);

    // Levels and their rates: three, cumulative.
    let t1 = t0 + Duration::from_secs(1);
    s.r.measure(t1);
    for i in 0..30 {
        s.picture(false, t1 + Duration::from_millis(10 * i));
    }
    s.r.measure(t1 + Duration::from_millis(500));
    let rates = s.r.layer_rates(s.stream);
    let r: Vec<u64> = rates.iter().map(|r| r.unwrap()).collect();
    assert!(r[0] > 0 && r[0] < r[1] && r[1] < r[2], "{rates:?}");
    assert_eq!(r[2], 30 * 6 * 8 * 8 * 2, "{rates:?}");
    let state = s.r.downtrack_layer(low).unwrap();
    assert_eq!(
        (state.current, state.target, state.max),
        (Some(0), Some(0), 0)
    );
    assert_eq!(s.r.downtrack_layer(full).unwrap().current, Some(2));
    assert_eq!(s.r.downtrack_layer(mid).unwrap().current, Some(1));
    let media = s.r.stream_media(s.stream)[1].unwrap().svc.unwrap();
    assert!(media.spatial);
    let players: Vec<usize> = media.levels.iter().map(|l| l.unwrap().1).collect();
    assert_eq!(players, [1, 1, 1]);
    let totals = s.r.totals();
    assert_eq!((totals.layers_forwarded, totals.layers_unused), (3, 0));
    s.r.set_max_layer(full, 1).unwrap();
    s.r.set_max_layer(mid, 0).unwrap();
    s.picture(false, t1 + Duration::from_millis(600));
    let totals = s.r.totals();
    assert_eq!((totals.layers_forwarded, totals.layers_unused), (2, 1));
}

#[test]
fn vp9_switch_up_waits_for_a_keyframe_and_asks_for_it() {
    let mut s = Svc::new(Codec::Vp9);
    let t0 = Instant::now();
    let low = s.play(2);
    s.r.set_max_layer(low, 0).unwrap();
    s.picture(true, t0);
    s.picture(false, t0);
    assert_eq!(s.sent(low).len(), 4);
    s.plis(t0);

    // Up to S2: predicted S1/S2 frames cannot be decoded without their
    // own layer's past, so it keeps S0 and asks for a keyframe, once.
    s.r.set_max_layer(low, 2).unwrap();
    let t1 = t0 + Duration::from_secs(2);
    s.picture(false, t1);
    s.picture(false, t1 + Duration::from_millis(33));
    let out = s.sent(low);
    assert!(out.iter().all(|p| layers(p).0 == 0), "{out:?}");
    assert_eq!(s.plis(t1 + Duration::from_millis(33)), 1);
    // Down-switch mid-picture is never needed: the keyframe switches all.
    s.picture(true, t1 + Duration::from_millis(66));
    s.picture(false, t1 + Duration::from_millis(99));
    let after = s.sent(low);
    assert_eq!(after.len(), 12);
    let mut all = out.clone();
    all.extend(after);
    assert_continuous(&all);
    assert_eq!(s.r.downtrack_layer(low).unwrap().current, Some(2));
    // S0 -> S1 -> S2 inside the keyframe.
    assert_eq!(s.r.downtrack_stats(low).unwrap().layer_switches, 2);
}

#[test]
fn reordered_packet_behind_a_drop_keeps_its_number() {
    let mut s = Svc::new(Codec::Vp9);
    let t0 = Instant::now();
    let low = s.play(2);
    s.r.set_max_layer(low, 0).unwrap();
    s.picture(true, t0);
    let base = s.sent(low);
    assert_eq!(base.len(), 2);
    // Picture 2 arrives as S0 start (n), S1 start (n+2, dropped), then
    // S0 end (n+1, late), S1 end (n+3), S2 (n+4, n+5).
    let n = s.seq;
    let p0 = s.vp9(false, 0, 0, true, false);
    let p1 = s.vp9(false, 0, 0, false, true);
    let q0 = s.vp9(false, 1, 0, true, false);
    let q1 = s.vp9(false, 1, 0, false, true);
    s.push(p0, false, n, t0);
    s.push(q0, false, n.wrapping_add(2), t0);
    s.push(p1, false, n.wrapping_add(1), t0);
    s.push(q1, false, n.wrapping_add(3), t0);
    s.seq = n.wrapping_add(4);
    s.picture(false, t0);
    let out = s.sent(low);
    let mut all = base.clone();
    all.extend(out.iter().cloned());
    assert_continuous(&all);
    assert_eq!(out.len(), 4);
    assert_eq!(layers(&out[1]), (0, 0));
    assert!(out[1].marker);
    assert_eq!(s.r.downtrack_stats(low).unwrap().dropped_late, 0);
}

#[test]
fn vp8_temporal_cap_keeps_the_lower_frame_rates() {
    let mut s = Svc::new(Codec::Vp8);
    let t0 = Instant::now();
    let full = s.play(1);
    let base = s.play(2);
    s.r.set_max_layer(base, 0).unwrap();
    let tid_of = |p: &OutPacket| p.payload[5] >> 6;
    s.vp8_frame(true, 0, t0);
    for i in 1..12 {
        s.vp8_frame(false, TIDS[i % 4], t0);
    }
    let f = s.sent(full);
    let b = s.sent(base);
    assert_eq!(f.len(), 12);
    assert_continuous(&f);
    // A quarter of the frames: TL0 only.
    assert_eq!(b.len(), 3);
    assert!(b.iter().all(|p| tid_of(p) == 0));
    assert_continuous(&b);
    // Up to TL1: from the next TL0 frame on.
    s.r.set_max_layer(base, 1).unwrap();
    for i in 12..20 {
        s.vp8_frame(false, TIDS[i % 4], t0);
    }
    let b2 = s.sent(base);
    let tids: Vec<u8> = b2.iter().map(tid_of).collect();
    assert_eq!(tids, [0, 1, 0, 1]);
    let mut all = b.clone();
    all.extend(b2);
    assert_continuous(&all);
    // Levels count temporal layers here.
    s.r.measure(t0);
    for i in 20..40 {
        s.vp8_frame(false, TIDS[i % 4], t0 + Duration::from_millis(i as u64));
    }
    s.r.measure(t0 + Duration::from_millis(500));
    let rates = s.r.layer_rates(s.stream);
    assert!(rates.iter().all(|r| r.is_some()), "{rates:?}");
    assert_eq!(s.r.downtrack_layer(base).unwrap().current, Some(1));
}

#[test]
fn a_lossy_player_falling_a_level_gets_a_keyframe() {
    let mut s = Svc::new(Codec::Vp9);
    let t0 = Instant::now();
    let p = s.play(2);
    s.picture(true, t0);
    s.picture(false, t0);
    let out = s.sent(p);
    s.plis(t0);
    // A clean down-switch: no keyframe.
    s.r.set_max_layer(p, 1).unwrap();
    assert_eq!(s.plis(t0 + Duration::from_secs(5)), 0);
    // Lost packets (a NACK), then a lower level: a keyframe is asked for.
    let seq = out[2].sequence_number;
    s.r.handle_player_feedback(p, Feedback::Nack(&[seq]), t0 + Duration::from_secs(5))
        .unwrap();
    s.r.set_max_layer(p, 0).unwrap();
    assert_eq!(s.plis(t0 + Duration::from_secs(10)), 1);
    // The NACK counted once: the next down-switch is clean again.
    s.r.set_max_layer(p, 2).unwrap();
    s.plis(t0 + Duration::from_secs(15));
    s.r.set_max_layer(p, 0).unwrap();
    assert_eq!(s.plis(t0 + Duration::from_secs(20)), 0);
}

/// Loss is reported a round trip after it happened, and congestion lowers
/// a player's level at once: the first NACK after a clean fall still gets
/// the keyframe, once; a fall undone by a rise expects none.
#[test]
fn a_loss_reported_after_the_fall_still_gets_a_keyframe() {
    let mut s = Svc::new(Codec::Vp9);
    let t0 = Instant::now();
    let p = s.play(2);
    s.picture(true, t0);
    s.picture(false, t0);
    let out = s.sent(p);
    s.plis(t0);
    s.r.set_max_layer(p, 0).unwrap();
    assert_eq!(s.plis(t0 + Duration::from_secs(5)), 0);
    let seq = out[2].sequence_number;
    let nack = |s: &mut Svc, at| {
        s.r.handle_player_feedback(p, Feedback::Nack(&[seq]), at)
            .unwrap()
    };
    nack(&mut s, t0 + Duration::from_secs(5));
    assert_eq!(s.plis(t0 + Duration::from_secs(5)), 1);
    nack(&mut s, t0 + Duration::from_secs(10));
    assert_eq!(s.plis(t0 + Duration::from_secs(10)), 0, "once");
    // Up, down (lossy: a NACK since the last change), up again: the rise
    // clears the watch.
    s.r.set_max_layer(p, 2).unwrap();
    s.r.set_max_layer(p, 1).unwrap();
    s.r.set_max_layer(p, 2).unwrap();
    s.plis(t0 + Duration::from_secs(15));
    nack(&mut s, t0 + Duration::from_secs(20));
    assert_eq!(s.plis(t0 + Duration::from_secs(20)), 0);
}

/// A simulcast layer with temporal layers (Chromium's VP8 simulcast sends
/// three per encoding) goes to its players whole: their cap chose the
/// simulcast layer, not a frame rate. Also when the stream's other layers
/// are paused (held) and silent: it is still one layer of several, never
/// an SVC track of its own.
#[test]
fn a_simulcast_layers_temporal_layers_all_go_to_its_players() {
    let mut s = Svc::new(Codec::Vp8);
    let upper = TrackInfo {
        layer: 1,
        ..video_info(0x501)
    };
    let t1 = s.r.add_track(s.stream, upper).unwrap();
    let t0 = Instant::now();
    let first = packet(&upper, 1, 1, Bytes::from_static(VP8_KEY));
    s.r.push_rtp(t1, first, t0).unwrap();
    let low = s.play(2);
    s.r.set_max_layer(low, 0).unwrap();
    s.vp8_frame(true, 0, t0);
    for i in 1..12 {
        s.vp8_frame(false, TIDS[i % 4], t0);
    }
    let b = s.sent(low);
    assert_eq!(b.len(), 12, "every frame of layer 0");
    assert_continuous(&b);
    // Layer 1 paused: held, and silent long enough to stall.
    s.r.set_held(s.stream, [None, Some(500_000), None]);
    let mut now = t0;
    for i in 12..72 {
        now += Duration::from_millis(33);
        s.vp8_frame(false, TIDS[i % 4], now);
        s.r.measure(now);
    }
    assert_eq!(s.sent(low).len(), 60);
    let rates = s.r.layer_rates(s.stream);
    assert_eq!(
        rates[1],
        Some(500_000),
        "simulcast rates, not levels: {rates:?}"
    );
}
