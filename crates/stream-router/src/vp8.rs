//! VP8 payload descriptor continuity (RFC 7741 §4.2) across source
//! changes: simulcast layer switches and publisher changes.
//!
//! Each simulcast encoding numbers its pictures (PictureID) and base-layer
//! pictures (TL0PICIDX) on its own. A receiver tracks frame references by
//! those numbers, so after a switch to a layer whose numbers are behind
//! the previous layer's, it decodes the keyframe and then waits for
//! references that never come (seen with Chromium: a frozen picture after
//! a switch down). Like the sequence numbers (`seq.rs`), a down-track's
//! picture numbers therefore continue across epochs: at each new epoch the
//! offsets are chosen so that its first picture follows the last one sent.
//!
//! The descriptor is inside the payload, which is shared by every player:
//! the router computes the rewritten values ([`Vp8Patch`]) and the I/O
//! layer writes them into its own copy of the payload (the one it makes
//! for SRTP anyway), so no payload is copied for this.

/// PictureID and TL0PICIDX of one VP8 payload, as received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Vp8Fields {
    /// 0: no PictureID; 7 or 15: its width.
    pic_bits: u8,
    pic: u16,
    tl0: Option<u8>,
}

/// Where the PictureID (its offset and width in bits) and the TL0PICIDX
/// byte sit in a payload.
type Positions = (Option<(usize, u8)>, Option<usize>);

/// Positions of the PictureID (and its width) and TL0PICIDX bytes.
fn positions(p: &[u8]) -> Option<Positions> {
    let b0 = *p.first()?;
    if b0 & 0x80 == 0 {
        return Some((None, None));
    }
    let x = *p.get(1)?;
    let mut i = 2;
    let mut pic = None;
    if x & 0x80 != 0 {
        let bits = if *p.get(i)? & 0x80 != 0 { 15 } else { 7 };
        if bits == 15 {
            p.get(i + 1)?;
        }
        pic = Some((i, bits));
        i += if bits == 15 { 2 } else { 1 };
    }
    let tl0 = if x & 0x40 != 0 {
        p.get(i)?;
        Some(i)
    } else {
        None
    };
    Some((pic, tl0))
}

/// The descriptor's numbers; `None` when it has neither, or for a payload
/// too short to hold the descriptor it announces.
pub(crate) fn parse(p: &[u8]) -> Option<Vp8Fields> {
    let (pic, tl0) = positions(p)?;
    if pic.is_none() && tl0.is_none() {
        return None;
    }
    let (pic_bits, pic) = match pic {
        Some((i, 15)) => (15, u16::from_be_bytes([p[i] & 0x7f, p[i + 1]])),
        Some((i, _)) => (7, u16::from(p[i] & 0x7f)),
        None => (0, 0),
    };
    Some(Vp8Fields {
        pic_bits,
        pic,
        tl0: tl0.map(|i| p[i]),
    })
}

/// The rewritten PictureID and TL0PICIDX of one outgoing VP8 packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Vp8Patch {
    /// The PictureID to write (in the width the packet has).
    pub picture_id: u16,
    /// The TL0PICIDX to write, if the packet has one.
    pub tl0_pic_idx: Option<u8>,
}

impl Vp8Patch {
    /// Writes the numbers into `payload` (the packet's own copy of the
    /// publisher's payload); false if the payload has no such fields.
    pub fn apply(&self, payload: &mut [u8]) -> bool {
        let Some((pic, tl0)) = positions(payload) else {
            return false;
        };
        let mut wrote = false;
        if let Some((i, bits)) = pic {
            if bits == 15 {
                let [hi, lo] = (self.picture_id & 0x7fff).to_be_bytes();
                payload[i] = 0x80 | hi;
                payload[i + 1] = lo;
            } else {
                payload[i] = (self.picture_id & 0x7f) as u8;
            }
            wrote = true;
        }
        if let (Some(i), Some(v)) = (tl0, self.tl0_pic_idx) {
            payload[i] = v;
            wrote = true;
        }
        wrote
    }
}

/// A down-track's picture numbering: offsets of the running epoch and the
/// last numbers sent.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Vp8Rewriter {
    pic_offset: u16,
    tl0_offset: u8,
    last_pic: u16,
    last_tl0: u8,
    has_last: bool,
    /// The next packet starts an epoch.
    pending: bool,
}

fn mask(bits: u8) -> u16 {
    if bits == 15 {
        0x7fff
    } else {
        0x7f
    }
}

impl Vp8Rewriter {
    /// The next packet forwarded starts a new epoch.
    pub(crate) fn start_epoch(&mut self) {
        self.pending = true;
    }

    /// The numbers for a packet forwarded in the running epoch (the first
    /// one after [`start_epoch`](Self::start_epoch) fixes the offsets).
    pub(crate) fn rewrite(&mut self, f: Vp8Fields) -> Option<Vp8Patch> {
        if f.pic_bits == 0 && f.tl0.is_none() {
            return None;
        }
        if self.pending {
            self.pending = false;
            if self.has_last {
                self.pic_offset = self.last_pic.wrapping_add(1).wrapping_sub(f.pic);
                self.tl0_offset = match f.tl0 {
                    Some(t) => self.last_tl0.wrapping_add(1).wrapping_sub(t),
                    None => 0,
                };
            } else {
                (self.pic_offset, self.tl0_offset) = (0, 0);
            }
        }
        let patch = self.map(f);
        let m = mask(f.pic_bits.max(7));
        let ahead = |a: u16, b: u16| {
            let d = a.wrapping_sub(b) & m;
            d != 0 && d <= m / 2
        };
        if f.pic_bits != 0 && (!self.has_last || ahead(patch.picture_id, self.last_pic & m)) {
            self.last_pic = patch.picture_id;
            if let Some(t) = patch.tl0_pic_idx {
                self.last_tl0 = t;
            }
            self.has_last = true;
        }
        Some(patch)
    }

    /// The numbers for a packet of the running epoch, without moving the
    /// last numbers sent (a retransmission).
    pub(crate) fn map(&self, f: Vp8Fields) -> Vp8Patch {
        Vp8Patch {
            picture_id: f.pic.wrapping_add(self.pic_offset) & mask(f.pic_bits.max(7)),
            tl0_pic_idx: f.tl0.map(|t| t.wrapping_add(self.tl0_offset)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// X=1, I=1 (15-bit PictureID), L=1 (TL0PICIDX), S=1.
    fn payload(pic: u16, tl0: u8, key: bool) -> Vec<u8> {
        let [hi, lo] = pic.to_be_bytes();
        vec![
            0x90,
            0xC0,
            0x80 | hi,
            lo,
            tl0,
            if key { 0x9c } else { 0x9d },
            1,
            2,
        ]
    }

    #[test]
    fn parses_and_patches_both_widths() {
        let mut p = payload(0x1234, 7, true);
        let f = parse(&p).unwrap();
        assert_eq!((f.pic_bits, f.pic, f.tl0), (15, 0x1234, Some(7)));
        let patch = Vp8Patch {
            picture_id: 0x0102,
            tl0_pic_idx: Some(9),
        };
        assert!(patch.apply(&mut p));
        assert_eq!(&p[2..5], &[0x81, 0x02, 9]);
        // 7-bit PictureID, no TL0PICIDX.
        let mut p = vec![0x90, 0x80, 0x05, 0x9c];
        assert_eq!(parse(&p).unwrap().pic_bits, 7);
        assert!(Vp8Patch {
            picture_id: 0x7f,
            tl0_pic_idx: None
        }
        .apply(&mut p));
        assert_eq!(p[2], 0x7f);
        // No extension: nothing to do; truncated: refused.
        assert_eq!(parse(&[0x10, 0x9c]), None);
        assert_eq!(parse(&[0x90, 0x80, 0x85]), None);
    }

    #[test]
    fn numbers_continue_across_epochs() {
        let mut r = Vp8Rewriter::default();
        r.start_epoch();
        // First epoch: passed through as received.
        for (i, pic) in (100u16..103).enumerate() {
            let p = r
                .rewrite(parse(&payload(pic, 10 + i as u8, i == 0)).unwrap())
                .unwrap();
            assert_eq!(p.picture_id, pic);
        }
        // Switch to a layer numbered far behind: it continues at 103 / 13.
        r.start_epoch();
        let p = r.rewrite(parse(&payload(7, 200, true)).unwrap()).unwrap();
        assert_eq!((p.picture_id, p.tl0_pic_idx), (103, Some(13)));
        let p = r.rewrite(parse(&payload(8, 201, false)).unwrap()).unwrap();
        assert_eq!((p.picture_id, p.tl0_pic_idx), (104, Some(14)));
        // A retransmission of the keyframe maps the same, moves nothing.
        assert_eq!(
            r.map(parse(&payload(7, 200, true)).unwrap()).picture_id,
            103
        );
        r.start_epoch();
        let p = r
            .rewrite(parse(&payload(0x7ffe, 0, true)).unwrap())
            .unwrap();
        assert_eq!(p.picture_id, 105);
    }
}
