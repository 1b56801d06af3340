//! Scalable video inside one RTP stream: VP9's spatial and temporal layers
//! (payload descriptor, RFC 9628 §4.2), VP8's temporal layers (RFC 7741
//! §4.2, TID) and AV1's (dependency descriptor, `dd.rs`). Where simulcast sends each quality as its own track
//! (`layers.rs`), SVC sends them all under one SSRC and a player gets a
//! lower quality by *not* receiving some packets: a down-track drops the
//! layer frames above its operating point (`downtrack.rs`) and its
//! sequence numbers close the gaps this leaves (`skips.rs`).
//!
//! A stream's *levels* are what a player's cap (`Router::set_max_layer`)
//! counts in: its spatial layers when it has more than one, else its
//! temporal layers. Level *n* is layer *n* and everything below it.
//!
//! Switching points, as the formats define them:
//! - down (fewer layers): at the start of any picture;
//! - up one temporal layer: at a picture of temporal layer 0 (every
//!   higher-layer frame after it references only frames the player has);
//! - up one spatial layer: at a layer frame of that layer without
//!   inter-picture prediction (VP9 `P=0`; every layer of a keyframe), which
//!   the router asks for with a PLI.

use std::time::Instant;

use crate::keyframe::Codec;
use crate::rate::RateMeter;

/// Highest layer index the router tells apart (deeper layers are treated
/// as the top one in rates and levels).
pub(crate) const MAX_SVC_LAYERS: usize = 3;

/// Where one packet sits in a scalable stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Layering {
    pub(crate) spatial: u8,
    pub(crate) temporal: u8,
    /// First packet of a layer frame (VP8: of a frame).
    pub(crate) start: bool,
    /// Last packet of a layer frame (VP9 `E`; VP8 does not say).
    pub(crate) end: bool,
    /// The layer frame uses no inter-picture prediction (VP9 `P=0`): a
    /// spatial switch-up point.
    pub(crate) intra: bool,
    /// VP9 keyframes: the number of spatial layers (scalability
    /// structure).
    pub(crate) spatial_layers: Option<u8>,
}

impl Layering {
    /// The start of a picture (its lowest layer frame begins).
    pub(crate) fn picture_start(&self) -> bool {
        self.start && self.spatial == 0
    }

    /// Its index in per-layer tables.
    pub(crate) fn spatial_index(&self) -> usize {
        usize::from(self.spatial).min(MAX_SVC_LAYERS - 1)
    }

    pub(crate) fn temporal_index(&self) -> usize {
        usize::from(self.temporal).min(MAX_SVC_LAYERS - 1)
    }
}

/// The layering of a packet, for codecs that carry one in their payload
/// descriptor; `None` for a packet without layer indices (a non-scalable
/// stream), other codecs and truncated descriptors.
#[inline]
pub(crate) fn parse(codec: Codec, payload: &[u8]) -> Option<Layering> {
    match codec {
        Codec::Vp8 => vp8(payload),
        Codec::Vp9 => vp9(payload),
        _ => None,
    }
}

/// VP8: `X R N S R PID` then, with X, `I L T K` and the optional
/// PictureID, TL0PICIDX and `TID Y KEYIDX` bytes. Layered only with `T`.
fn vp8(p: &[u8]) -> Option<Layering> {
    let b0 = *p.first()?;
    if b0 & 0x80 == 0 {
        return None;
    }
    let x = *p.get(1)?;
    if x & 0x20 == 0 {
        return None;
    }
    let mut i = 2;
    if x & 0x80 != 0 {
        i += if *p.get(i)? & 0x80 != 0 { 2 } else { 1 };
    }
    if x & 0x40 != 0 {
        i += 1;
    }
    let t = *p.get(i)?;
    let start = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    Some(Layering {
        spatial: 0,
        temporal: t >> 6,
        start,
        end: false,
        // A VP8 keyframe is intra; `keyframe.rs` tells, and the spatial
        // rule never applies to VP8 (one spatial layer).
        intra: false,
        spatial_layers: None,
    })
}

/// VP9: `I P L F B E V Z`, then the PictureID (with I) and, with L, the
/// layer indices `TID U SID D`.
fn vp9(p: &[u8]) -> Option<Layering> {
    let b0 = *p.first()?;
    if b0 & 0x20 == 0 {
        return None;
    }
    let mut i = 1;
    if b0 & 0x80 != 0 {
        i += if *p.get(i)? & 0x80 != 0 { 2 } else { 1 };
    }
    let l = *p.get(i)?;
    i += 1;
    // The scalability structure (V, on keyframes) says how many spatial
    // layers there are, before any of them above S0 arrived.
    let mut spatial_layers = None;
    if b0 & 0x02 != 0 {
        if b0 & 0x10 == 0 {
            i += 1; // TL0PICIDX
        } else if b0 & 0x40 != 0 {
            // Up to three P_DIFF bytes, N=1 while more follow.
            for _ in 0..3 {
                let d = *p.get(i)?;
                i += 1;
                if d & 0x01 == 0 {
                    break;
                }
            }
        }
        spatial_layers = Some((*p.get(i)? >> 5) + 1);
    }
    Some(Layering {
        spatial: (l >> 1) & 0x07,
        temporal: l >> 5,
        start: b0 & 0x08 != 0,
        end: b0 & 0x04 != 0,
        intra: b0 & 0x40 == 0,
        spatial_layers,
    })
}

/// A player's operating point in a scalable stream: the highest spatial
/// and temporal layers it forwards now, moved towards its cap at the
/// switching points the formats allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OperatingPoint {
    pub(crate) spatial: u8,
    pub(crate) temporal: u8,
}

impl Default for OperatingPoint {
    fn default() -> Self {
        OperatingPoint {
            spatial: u8::MAX,
            temporal: u8::MAX,
        }
    }
}

/// What [`OperatingPoint::admit`] decided for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    Forward,
    Drop,
    /// Dropped, and a spatial layer the cap allows is waiting for a
    /// switch-up point (a keyframe is worth asking for).
    DropWaiting,
}

impl OperatingPoint {
    /// The operating point at an epoch's keyframe: the cap itself (every
    /// layer of a keyframe is a switching point).
    pub(crate) fn at_keyframe(cap: OperatingPoint) -> Self {
        cap
    }

    /// Its level (the cap's unit, `svc.rs` docs): the spatial layer of a
    /// spatially scalable stream, else the temporal one.
    pub(crate) fn level(&self, spatial: bool) -> u8 {
        let l = if spatial { self.spatial } else { self.temporal };
        l.min((MAX_SVC_LAYERS - 1) as u8)
    }

    /// Moves towards `cap` where `l` allows it and decides whether the
    /// packet is forwarded.
    #[inline]
    pub(crate) fn admit(&mut self, l: &Layering, cap: OperatingPoint) -> Admit {
        let start = l.picture_start();
        if start
            && (cap.temporal < self.temporal || (cap.temporal > self.temporal && l.temporal == 0))
        {
            self.temporal = cap.temporal;
        }
        if start && cap.spatial < self.spatial {
            // Only at a picture's start: dropping from a higher layer
            // frame's start would leave the picture without the marker
            // that ends it for this player (its last layer frame already
            // went out unmarked), and a receiver waiting for that end
            // decodes nothing more until a keyframe.
            self.spatial = cap.spatial;
        }
        if l.start
            && l.intra
            && l.spatial > self.spatial
            && l.spatial <= cap.spatial
            && l.temporal <= self.temporal
        {
            self.spatial = l.spatial;
        }
        if l.spatial <= self.spatial && l.temporal <= self.temporal {
            Admit::Forward
        } else if l.spatial > self.spatial && l.spatial <= cap.spatial {
            Admit::DropWaiting
        } else {
            Admit::Drop
        }
    }

    /// The marker a forwarded packet carries: a picture ends at the end of
    /// the highest spatial layer this player receives (VP9 marks only the
    /// end of the whole picture).
    #[inline]
    pub(crate) fn marker(&self, l: &Layering, marker: bool) -> bool {
        marker || (l.end && l.spatial == self.spatial)
    }
}

/// Per-layer byte counters of a scalable track, the deepest layers seen
/// and each level's bitrate (sampled by `Router::measure`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LayerBytes {
    spatial: [u64; MAX_SVC_LAYERS],
    temporal: [u64; MAX_SVC_LAYERS],
    /// Highest spatial / temporal index seen since the last sample
    /// (`None`: no layered packet).
    seen: Option<(u8, u8)>,
    /// The same over the last sampled period.
    levels: Option<(u8, u8)>,
    /// Bitrate of each level (that layer and those below it).
    rates: [RateMeter; MAX_SVC_LAYERS],
}

impl LayerBytes {
    #[inline]
    pub(crate) fn count(&mut self, l: &Layering, bytes: usize) {
        self.spatial[l.spatial_index()] += bytes as u64;
        self.temporal[l.temporal_index()] += bytes as u64;
        let (s, t) = self.seen.unwrap_or((0, 0));
        let top = l.spatial_layers.map_or(0, |n| n.saturating_sub(1));
        self.seen = Some((s.max(l.spatial).max(top), t.max(l.temporal)));
    }

    /// The levels count spatial layers (the track has more than one).
    #[inline]
    pub(crate) fn spatial(&self) -> bool {
        let deeper = |x: Option<(u8, u8)>| x.is_some_and(|(s, _)| s > 0);
        deeper(self.levels) || deeper(self.seen)
    }

    /// Ends a measurement period.
    pub(crate) fn sample(&mut self, now: Instant) {
        let spatial = self.spatial();
        let per_layer = if spatial {
            &self.spatial
        } else {
            &self.temporal
        };
        let mut sum = 0;
        for (rate, bytes) in self.rates.iter_mut().zip(per_layer) {
            sum += bytes;
            rate.sample(sum, now);
        }
        self.levels = self.seen.take();
    }

    /// The highest level of a track that had more than one lately (in
    /// the last period or since); `None`: not scalable.
    pub(crate) fn top_level(&self) -> Option<u8> {
        let spatial = self.spatial();
        let level = |x: Option<(u8, u8)>| x.map(|(s, t)| if spatial { s } else { t });
        let l = level(self.levels).max(level(self.seen))?;
        (l > 0).then(|| l.min((MAX_SVC_LAYERS - 1) as u8))
    }

    /// Each level's bitrate (0 until measured), for a scalable track
    /// (`None` otherwise).
    pub(crate) fn level_rates(&self) -> Option<[Option<u64>; MAX_SVC_LAYERS]> {
        let top = self.top_level()?;
        let mut out = [None; MAX_SVC_LAYERS];
        for (i, r) in out.iter_mut().enumerate() {
            if i <= usize::from(top) {
                *r = Some(self.rates[i].bits_per_second());
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vp9_pkt(b0: u8, tid: u8, u: bool, sid: u8) -> Vec<u8> {
        // I=1 with a 15-bit PictureID, L=1, non-flexible (TL0PICIDX).
        let l = (tid << 5) | (u8::from(u) << 4) | (sid << 1);
        vec![0x80 | 0x20 | b0, 0x80 | 0x12, 0x34, l, 7, 0xaa]
    }

    #[test]
    fn parses_vp9_layer_indices() {
        let l = parse(Codec::Vp9, &vp9_pkt(0x08, 2, true, 1)).unwrap();
        assert_eq!(
            (l.spatial, l.temporal, l.start, l.end, l.intra),
            (1, 2, true, false, true)
        );
        let l = parse(Codec::Vp9, &vp9_pkt(0x40 | 0x04, 0, false, 2)).unwrap();
        assert_eq!(
            (l.spatial, l.temporal, l.start, l.end, l.intra),
            (2, 0, false, true, false)
        );
        // A keyframe's scalability structure: three spatial layers, after
        // TL0PICIDX (non-flexible) or P_DIFF (flexible, none when P=0).
        let ss = [0xaa, 0x80 | 0x12, 0x34, 0x00, 7, 0x40 | 0x10, 0, 0];
        assert_eq!(parse(Codec::Vp9, &ss).unwrap().spatial_layers, Some(3));
        let flex = [0xba, 0x80 | 0x12, 0x34, 0x00, 0x20];
        assert_eq!(parse(Codec::Vp9, &flex).unwrap().spatial_layers, Some(2));
        assert_eq!(parse(Codec::Vp9, &ss[..5]), None);
        // 7-bit PictureID.
        let l = parse(Codec::Vp9, &[0xa8, 0x05, 0x22, 0x01]).unwrap();
        assert_eq!((l.spatial, l.temporal), (1, 1));
        // No layer indices, no PictureID byte, truncated: not layered.
        assert_eq!(parse(Codec::Vp9, &[0x88, 0x05, 0x00]), None);
        assert_eq!(parse(Codec::Vp9, &[0xa8, 0x85, 0x00]), None);
        assert_eq!(parse(Codec::Vp9, &[]), None);
    }

    #[test]
    fn parses_vp8_temporal_index() {
        // X, I (15-bit), L, T: TID 2, Y.
        let p = [0x90, 0xe0, 0x80, 0x01, 9, 0xa0, 0x9d];
        let l = parse(Codec::Vp8, &p).unwrap();
        assert_eq!((l.spatial, l.temporal, l.start), (0, 2, true));
        // Continuation packet (S=0).
        let p = [0x80, 0x20, 0x40];
        assert!(!parse(Codec::Vp8, &p).unwrap().start);
        // No T bit, no X, truncated.
        assert_eq!(parse(Codec::Vp8, &[0x90, 0x80, 0x05, 0x9c]), None);
        assert_eq!(parse(Codec::Vp8, &[0x10, 0x9c]), None);
        assert_eq!(parse(Codec::Vp8, &[0x90, 0xe0, 0x80, 0x01]), None);
        assert_eq!(parse(Codec::H264, &p), None);
    }

    fn layer(spatial: u8, temporal: u8, start: bool, intra: bool) -> Layering {
        Layering {
            spatial,
            temporal,
            start,
            end: false,
            intra,
            spatial_layers: None,
        }
    }

    #[test]
    fn temporal_moves_down_at_once_and_up_on_the_base_layer() {
        let all = OperatingPoint::default();
        let t1 = OperatingPoint {
            spatial: u8::MAX,
            temporal: 1,
        };
        let mut op = OperatingPoint::at_keyframe(all);
        // L1T3 pattern 0 2 1 2: all forwarded.
        for t in [0, 2, 1, 2] {
            assert_eq!(op.admit(&layer(0, t, true, false), all), Admit::Forward);
        }
        // Cap to T1: the next TL2 picture is dropped, its packets too.
        assert_eq!(op.admit(&layer(0, 2, true, false), t1), Admit::Drop);
        assert_eq!(op.admit(&layer(0, 2, false, false), t1), Admit::Drop);
        assert_eq!(op.admit(&layer(0, 0, true, false), t1), Admit::Forward);
        assert_eq!(op.admit(&layer(0, 1, true, false), t1), Admit::Forward);
        // Uncapped: TL2 waits for the next TL0 picture.
        assert_eq!(op.admit(&layer(0, 2, true, false), all), Admit::Drop);
        assert_eq!(op.admit(&layer(0, 0, true, false), all), Admit::Forward);
        assert_eq!(op.admit(&layer(0, 2, true, false), all), Admit::Forward);
    }

    #[test]
    fn spatial_moves_up_only_on_intra_layer_frames() {
        let s0 = OperatingPoint {
            spatial: 0,
            temporal: u8::MAX,
        };
        let s2 = OperatingPoint {
            spatial: 2,
            temporal: u8::MAX,
        };
        let mut op = OperatingPoint::at_keyframe(s2);
        assert_eq!(op.admit(&layer(0, 0, true, true), s2), Admit::Forward);
        assert_eq!(op.admit(&layer(2, 0, true, true), s2), Admit::Forward);
        // Down to S0 at the next picture; inside it S1 and S2 are dropped.
        assert_eq!(op.admit(&layer(0, 1, true, false), s0), Admit::Forward);
        assert_eq!(op.admit(&layer(1, 1, true, false), s0), Admit::Drop);
        assert_eq!(op.admit(&layer(2, 1, true, false), s0), Admit::Drop);
        // Back up: predicted S1 frames wait (and say so) ...
        assert_eq!(op.admit(&layer(0, 0, true, false), s2), Admit::Forward);
        assert_eq!(op.admit(&layer(1, 0, true, false), s2), Admit::DropWaiting);
        assert_eq!(op.admit(&layer(1, 0, false, false), s2), Admit::DropWaiting);
        // ... until a keyframe: every layer switches.
        assert_eq!(op.admit(&layer(0, 0, true, true), s2), Admit::Forward);
        assert_eq!(op.admit(&layer(1, 0, true, true), s2), Admit::Forward);
        assert_eq!(op.admit(&layer(1, 0, false, true), s2), Admit::Forward);
        assert_eq!(op.admit(&layer(2, 0, true, true), s2), Admit::Forward);
        assert_eq!(op.spatial, 2);
    }

    #[test]
    fn marker_ends_the_highest_forwarded_layer() {
        let op = OperatingPoint {
            spatial: 1,
            temporal: u8::MAX,
        };
        let mut l = layer(1, 0, false, false);
        l.end = true;
        assert!(op.marker(&l, false));
        l.spatial = 0;
        assert!(!op.marker(&l, false));
        assert!(op.marker(&l, true));
    }
}
