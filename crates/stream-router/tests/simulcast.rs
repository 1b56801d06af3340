//! Simulcast: three layers of one stream, players on different layers,
//! switches on keyframes with continuous numbering, stalled layers.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use stream_router::*;

struct Sim {
    r: Router,
    stream: StreamHandle,
    infos: [TrackInfo; 3],
    tracks: [TrackHandle; 3],
    seq: [u16; 3],
    ts: [u32; 3],
}

impl Sim {
    fn new() -> Self {
        let mut r = Router::new();
        let stream = r.add_stream(StreamKey::new(1, "sim")).unwrap();
        let infos = [0u8, 1, 2].map(|l| TrackInfo {
            layer: l,
            ..video_info(0x100 + u32::from(l))
        });
        let tracks = infos.map(|i| r.add_track(stream, i).unwrap());
        Sim {
            r,
            stream,
            infos,
            tracks,
            // Different bases per layer, as browsers send them.
            seq: [100, 30_000, 65_500],
            ts: [1_000, 5_000_000, 4_000_000_000],
        }
    }

    /// One packet of every layer (a frame of each), keyframes if `key`.
    fn frame(&mut self, key: bool, now: Instant) {
        self.frame_of(0..3, key, now);
    }

    /// One packet (a frame) of each of `layers`.
    fn frame_of(&mut self, layers: std::ops::Range<usize>, key: bool, now: Instant) {
        for l in layers {
            let payload = if key { VP8_KEY } else { VP8_DELTA };
            let p = packet(
                &self.infos[l],
                self.seq[l],
                self.ts[l],
                Bytes::from_static(payload),
            );
            self.r.push_rtp(self.tracks[l], p, now).unwrap();
            self.seq[l] = self.seq[l].wrapping_add(1);
            self.ts[l] = self.ts[l].wrapping_add(3_000);
        }
    }

    /// What `dt` was sent: (its SSRC, output sequence number) per packet.
    fn sent(&mut self, dt: DownTrackHandle) -> Vec<(u32, u16)> {
        std::iter::from_fn(|| self.r.poll_downtrack(dt))
            .map(|p| (p.ssrc, p.sequence_number))
            .collect()
    }
}

#[test]
fn players_get_their_layer_and_switch_on_keyframes() {
    let mut s = Sim::new();
    let t0 = Instant::now();
    let top =
        s.r.subscribe(s.stream, MediaKind::Video, player(1, 64))
            .unwrap();
    let low =
        s.r.subscribe(s.stream, MediaKind::Video, player(2, 64))
            .unwrap();
    assert_eq!(
        s.r.set_max_layer(low, 0),
        Some(LayerState {
            current: Some(0),
            target: Some(0),
            max: 0
        })
    );
    assert_eq!(s.r.downtrack_layer(top).unwrap().current, Some(2));

    s.frame(true, t0);
    // Each gets exactly one packet per frame: its own layer's.
    assert_eq!(s.sent(top).len(), 1);
    assert_eq!(s.sent(low).len(), 1);
    let counts = |s: &Sim| {
        s.r.stream_media(s.stream)
            .iter()
            .flatten()
            .map(|m| (m.layer, m.players))
            .collect::<Vec<_>>()
    };
    assert_eq!(counts(&s), vec![(0, 1), (1, 0), (2, 1)]);
    let totals = s.r.totals();
    assert_eq!((totals.layers_forwarded, totals.layers_unused), (2, 1));

    // Cap the top player to layer 1: it keeps layer 2 until layer 1's
    // keyframe, then continues its numbering on layer 1.
    let state = s.r.set_max_layer(top, 1).unwrap();
    assert_eq!((state.current, state.target), (Some(2), Some(1)));
    let mut pli = Vec::new();
    while let Some((t, Upstream::Pli { media_ssrc })) = s.r.poll_upstream(t0) {
        pli.push((t, media_ssrc));
    }
    assert!(pli.contains(&(s.tracks[1], 0x101)), "{pli:?}");
    let mut seqs = Vec::new();
    for i in 1..=3 {
        s.frame(false, t0 + Duration::from_millis(33 * i));
        seqs.extend(s.sent(top).into_iter().map(|(_, q)| q));
    }
    assert_eq!(s.r.downtrack_layer(top).unwrap().current, Some(2));
    s.frame(true, t0 + Duration::from_millis(133));
    let after = s.sent(top);
    assert_eq!(after.len(), 1, "one packet: layer 1's keyframe only");
    seqs.extend(after.iter().map(|(_, q)| *q));
    s.frame(false, t0 + Duration::from_millis(166));
    seqs.extend(s.sent(top).into_iter().map(|(_, q)| q));
    let state = s.r.downtrack_layer(top).unwrap();
    assert_eq!((state.current, state.target), (Some(1), Some(1)));
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1), "gapless output: {seqs:?}");
    }
    assert_eq!(s.r.downtrack_stats(top).unwrap().layer_switches, 1);
    assert_eq!(counts(&s), vec![(0, 1), (1, 1), (2, 0)]);
    // The low player never moved.
    assert_eq!(s.r.downtrack_stats(low).unwrap().layer_switches, 0);
}

#[test]
fn stalled_layer_moves_its_players_down_and_back() {
    let mut s = Sim::new();
    let t0 = Instant::now();
    let dt =
        s.r.subscribe(s.stream, MediaKind::Video, player(1, 64))
            .unwrap();
    s.frame(true, t0);
    s.sent(dt);
    // Only layers 0 and 1 keep sending.
    let mut now = t0;
    for _ in 0..60 {
        now += Duration::from_millis(33);
        s.frame_of(0..2, false, now);
        s.r.measure(now);
    }
    let state = s.r.downtrack_layer(dt).unwrap();
    assert_eq!(state.target, Some(1), "layer 2 stalled: target 1");
    // Layer 2 comes back: the target goes up again, switched on its keyframe.
    now += Duration::from_millis(33);
    s.frame(false, now);
    assert_eq!(s.r.downtrack_layer(dt).unwrap().target, Some(2));
    s.frame(true, now + Duration::from_millis(33));
    assert_eq!(s.r.downtrack_layer(dt).unwrap().current, Some(2));
    // Stalled again, it comes back with a keyframe (a resumed encoding):
    // that very keyframe is the switch point.
    for _ in 0..60 {
        now += Duration::from_millis(33);
        s.frame_of(0..2, false, now);
        s.r.measure(now);
    }
    assert_eq!(s.r.downtrack_layer(dt).unwrap().current, Some(1));
    s.sent(dt);
    now += Duration::from_millis(33);
    s.frame_of(2..3, true, now);
    assert_eq!(s.r.downtrack_layer(dt).unwrap().current, Some(2));
    assert_eq!(
        s.sent(dt).len(),
        1,
        "the resumed layer's keyframe is forwarded"
    );
}

#[test]
fn a_missing_layer_is_replaced_by_the_nearest() {
    let mut r = Router::new();
    let stream = r.add_stream(StreamKey::new(1, "two")).unwrap();
    let dt = r.subscribe(stream, MediaKind::Video, player(1, 8)).unwrap();
    assert_eq!(r.downtrack_layer(dt).unwrap().current, None);
    let l1 = TrackInfo {
        layer: 1,
        ..video_info(7)
    };
    let t1 = r.add_track(stream, l1).unwrap();
    assert_eq!(r.downtrack_layer(dt).unwrap().current, Some(1));
    let p = packet(&l1, 1, 1, Bytes::from_static(VP8_KEY));
    assert_eq!(r.push_rtp(t1, p, Instant::now()).unwrap().enqueued, 1);
    // Capped below every layer: the lowest there is.
    r.set_max_layer(dt, 0);
    assert_eq!(r.downtrack_layer(dt).unwrap().target, Some(1));
    r.remove_track(t1).unwrap();
    assert_eq!(r.downtrack_layer(dt).unwrap().current, None);
}

/// A held (paused) layer stays in the rates at its held bitrate while it
/// sends nothing, players wanting it are its demand, and no player is
/// switched to it before it is live again.
#[test]
fn a_held_layer_keeps_its_rate_and_its_demand() {
    let mut s = Sim::new();
    let t0 = Instant::now();
    let low =
        s.r.subscribe(s.stream, MediaKind::Video, player(1, 64))
            .unwrap();
    s.r.set_max_layer(low, 0);
    // No players at all would want nothing; this one wants layer 0.
    assert_eq!(s.r.layer_demand(s.stream), [true, false, false]);
    s.frame(true, t0);
    // Layers 1 and 2 paused by their publisher: held, then silent.
    s.r.set_held(s.stream, [None, Some(400_000), Some(1_200_000)]);
    let mut now = t0;
    for _ in 0..60 {
        now += Duration::from_millis(33);
        s.frame_of(0..1, false, now);
        s.r.measure(now);
    }
    assert_eq!(s.r.live_layers(s.stream), [true, false, false]);
    let rates = s.r.layer_rates(s.stream);
    assert_eq!((rates[1], rates[2]), (Some(400_000), Some(1_200_000)));
    // A player that may take anything wants the top layer (held), but is
    // served layer 0 until layer 2 is live.
    let top =
        s.r.subscribe(s.stream, MediaKind::Video, player(2, 64))
            .unwrap();
    assert_eq!(s.r.layer_demand(s.stream), [true, false, true]);
    assert_eq!(s.r.downtrack_layer(top).unwrap().target, Some(0));
    s.r.set_max_layer(top, 1);
    assert_eq!(s.r.layer_demand(s.stream), [true, true, false]);
    // Not held any more and still silent: absent, demanded as the nearest
    // existing track (its track is still there).
    s.r.set_held(s.stream, [None; 3]);
    let rates = s.r.layer_rates(s.stream);
    assert!(
        rates[0].is_some() && rates[1..] == [None, None],
        "{rates:?}"
    );
    assert_eq!(s.r.layer_demand(s.stream), [true, true, false]);
    // Layer 1 resumes: the capped player switches on its keyframe.
    now += Duration::from_millis(33);
    s.frame_of(0..2, true, now);
    assert_eq!(s.r.downtrack_layer(top).unwrap().current, Some(1));
    s.sent(top);
    s.sent(low);
}

/// A router that relays a stream may never have seen a held layer's track
/// (it paused before this router's players came): the held layer still
/// counts, so its players can ask for it.
#[test]
fn a_held_layer_without_a_track_is_still_wanted() {
    let mut r = Router::new();
    let stream = r.add_stream(StreamKey::new(1, "relayed")).unwrap();
    r.add_track(stream, video_info(9)).unwrap();
    let dt = r.subscribe(stream, MediaKind::Video, player(1, 8)).unwrap();
    assert_eq!(r.layer_demand(stream), [true, false, false]);
    r.set_held(stream, [None, None, Some(1_000_000)]);
    assert_eq!(r.layer_demand(stream), [false, false, true]);
    assert_eq!(r.layer_rates(stream)[2], Some(1_000_000));
    assert_eq!(r.downtrack_layer(dt).unwrap().target, Some(0));
}
