//! AV1's dependency descriptor (AV1 RTP payload format, appendix A): the
//! RTP header extension that tells an SFU which spatial and temporal layer
//! a frame belongs to, since AV1's payload has no descriptor of its own.
//!
//! Every packet carries three mandatory bytes: start and end of frame,
//! the frame's *template* ID and its frame number. What a template means
//! (its spatial and temporal layer among others) is defined by the
//! *template dependency structure*, which the sender attaches to
//! keyframes; a track keeps the last one it saw ([`Templates`]) and reads
//! each packet's layers through it. Only the template layers are read:
//! decode targets, chains and frame differences are the receiver's
//! business. The extension is forwarded unchanged (`ext.rs`): receivers
//! assemble AV1 SVC frames by it, and the frames of the layers a player
//! does not get are never referenced by the ones it gets (its frame
//! numbers have gaps, as after a loss the chains say is harmless).

use crate::svc::Layering;

/// Templates a structure may define.
const MAX_TEMPLATES: usize = 64;

/// The layers of each template of the last structure received.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Templates {
    offset: u8,
    count: u8,
    /// Per template: spatial id << 4 | temporal id.
    layers: [u8; MAX_TEMPLATES],
    spatial_layers: u8,
}

/// MSB-first bit reader over an extension value.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            let bit = (byte >> (7 - self.pos % 8)) & 1;
            v = (v << 1) | u32::from(bit);
            self.pos += 1;
        }
        Some(v)
    }
}

/// The mandatory fields of one descriptor, and its structure if it has
/// one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Descriptor {
    pub(crate) start: bool,
    pub(crate) end: bool,
    pub(crate) template: u8,
    pub(crate) structure: Option<Templates>,
}

/// Parses a descriptor; `None` for one too short or whose structure is
/// malformed.
pub(crate) fn parse(data: &[u8]) -> Option<Descriptor> {
    let mut b = Bits { data, pos: 0 };
    let start = b.read(1)? == 1;
    let end = b.read(1)? == 1;
    let template = b.read(6)? as u8;
    let _frame_number = b.read(16)?;
    let mut structure = None;
    if data.len() > 3 {
        let present = b.read(1)? == 1;
        let _active_decode_targets = b.read(1)?;
        let _custom = b.read(3)?;
        if present {
            let offset = b.read(6)? as u8;
            let _dt_cnt_minus_one = b.read(5)?;
            let mut t = Templates {
                offset,
                count: 0,
                layers: [0; MAX_TEMPLATES],
                spatial_layers: 1,
            };
            let (mut spatial, mut temporal) = (0u8, 0u8);
            loop {
                let i = usize::from(t.count);
                if i >= MAX_TEMPLATES || spatial > 7 || temporal > 7 {
                    return None;
                }
                t.layers[i] = (spatial << 4) | temporal;
                t.count += 1;
                match b.read(2)? {
                    0 => {}
                    1 => temporal += 1,
                    2 => {
                        temporal = 0;
                        spatial += 1;
                    }
                    _ => break,
                }
            }
            t.spatial_layers = spatial + 1;
            structure = Some(t);
        }
    }
    Some(Descriptor {
        start,
        end,
        template,
        structure,
    })
}

impl Templates {
    /// The layers of a frame using template ID `id`, if this structure
    /// defines it.
    pub(crate) fn layers_of(&self, id: u8) -> Option<(u8, u8)> {
        let i = (usize::from(id) + MAX_TEMPLATES - usize::from(self.offset)) % MAX_TEMPLATES;
        (i < usize::from(self.count)).then(|| (self.layers[i] >> 4, self.layers[i] & 0x0f))
    }
}

/// A track's view of its AV1 stream: the structure in force and the RTP
/// timestamp of the last keyframe (its every layer frame is a switching
/// point).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Av1Layers {
    templates: Option<Templates>,
    key_timestamp: Option<u32>,
}

impl Av1Layers {
    /// The layering of a packet with descriptor `value` and timestamp
    /// `ts`; `None` before any structure, for a template the structure
    /// does not define, or a malformed descriptor (then forwarded to all).
    pub(crate) fn layering(&mut self, value: &[u8], ts: u32) -> Option<Layering> {
        let d = parse(value)?;
        if let Some(s) = d.structure {
            self.templates = Some(s);
            self.key_timestamp = Some(ts);
        }
        let t = self.templates?;
        let (spatial, temporal) = t.layers_of(d.template)?;
        Some(Layering {
            spatial,
            temporal,
            start: d.start,
            end: d.end,
            intra: self.key_timestamp == Some(ts),
            spatial_layers: d.structure.map(|s| s.spatial_layers),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MSB-first bit writer for test descriptors.
    fn bits(fields: &[(u32, usize)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut n = 0;
        for &(v, width) in fields {
            for k in (0..width).rev() {
                if n % 8 == 0 {
                    out.push(0);
                }
                let bit = ((v >> k) & 1) as u8;
                *out.last_mut().unwrap() |= bit << (7 - n % 8);
                n += 1;
            }
        }
        out
    }

    /// L2T2-like structure: templates (S0,T0) (S0,T1) (S1,T0) (S1,T1),
    /// offset 10; the frame itself uses template ID `id`.
    fn with_structure(id: u32) -> Vec<u8> {
        bits(&[
            (1, 1),
            (1, 1),
            (id, 6),
            (77, 16),
            (1, 1), // structure present
            (0, 1),
            (0, 3),
            (10, 6), // template_id_offset
            (3, 5),  // dt_cnt_minus_one
            (1, 2),  // next: temporal + 1
            (2, 2),  // next: spatial + 1
            (1, 2),
            (3, 2), // end
        ])
    }

    #[test]
    fn reads_layers_through_the_structure() {
        let d = parse(&with_structure(10)).unwrap();
        assert!(d.start && d.end);
        let s = d.structure.unwrap();
        assert_eq!((s.count, s.spatial_layers), (4, 2));
        assert_eq!(s.layers_of(10), Some((0, 0)));
        assert_eq!(s.layers_of(11), Some((0, 1)));
        assert_eq!(s.layers_of(12), Some((1, 0)));
        assert_eq!(s.layers_of(13), Some((1, 1)));
        assert_eq!(s.layers_of(14), None);
        assert_eq!(s.layers_of(9), None);

        let mut a = Av1Layers::default();
        // Nothing known before a structure.
        let plain = bits(&[(1, 1), (0, 1), (12, 6), (78, 16)]);
        assert_eq!(a.layering(&plain, 1000), None);
        let l = a.layering(&with_structure(10), 1000).unwrap();
        assert_eq!(
            (l.spatial, l.temporal, l.intra, l.spatial_layers),
            (0, 0, true, Some(2))
        );
        // S1 of the same keyframe: intra; of the next picture: not.
        let l = a.layering(&plain, 1000).unwrap();
        assert_eq!((l.spatial, l.start, l.end, l.intra), (1, true, false, true));
        let l = a.layering(&plain, 4000).unwrap();
        assert!(!l.intra);
        let t1 = bits(&[(0, 1), (1, 1), (13, 6), (79, 16)]);
        let l = a.layering(&t1, 4000).unwrap();
        assert_eq!((l.spatial, l.temporal, l.end), (1, 1, true));
    }

    #[test]
    fn malformed_descriptors_are_refused() {
        assert!(parse(&[0x80, 0x01]).is_none());
        // A structure that ends mid-way.
        let mut s = with_structure(10);
        s.truncate(5);
        assert!(parse(&s).is_none());
        // More than 64 templates: next_layer_idc 0 forever.
        let mut fields = vec![
            (1, 1),
            (1, 1),
            (0, 6),
            (0, 16),
            (1, 1),
            (0, 1),
            (0, 3),
            (0, 6),
            (0, 5),
        ];
        fields.extend(std::iter::repeat_n((0u32, 2usize), 70));
        assert!(parse(&bits(&fields)).is_none());
        let mut a = Av1Layers::default();
        assert_eq!(a.layering(&[], 0), None);
    }
}
