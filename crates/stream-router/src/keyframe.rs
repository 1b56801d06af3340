//! Codec knowledge: which codec a track carries and how to tell, from one RTP
//! payload, that a keyframe *starts* in this packet.
//!
//! The router only needs this for the keyframe gate: a new (or switched)
//! video down-track forwards nothing until a keyframe begins, otherwise the
//! player would decode garbage. Every parser here is bounds-checked and
//! returns `false` on anything truncated or unexpected.

/// Media codec of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Opus audio.
    Opus,
    /// VP8 (RFC 7741 payload format).
    Vp8,
    /// VP9 (RFC 9628 payload format).
    Vp9,
    /// H.264 (RFC 6184 payload format, packetization mode 0 or 1).
    H264,
    /// AV1 (AOM RTP payload format).
    Av1,
    /// Anything else: never detected as a keyframe, so video tracks with this
    /// codec are not gated.
    Other,
}

impl Codec {
    /// Whether the router can detect keyframes for this codec.
    pub fn has_keyframe_detection(self) -> bool {
        matches!(self, Codec::Vp8 | Codec::Vp9 | Codec::H264 | Codec::Av1)
    }

    /// Whether `payload` is the first packet of a keyframe.
    pub fn is_keyframe_start(self, payload: &[u8]) -> bool {
        let r = match self {
            Codec::Vp8 => vp8(payload),
            Codec::Vp9 => vp9(payload),
            Codec::H264 => h264(payload),
            Codec::Av1 => av1(payload),
            Codec::Opus | Codec::Other => None,
        };
        r.unwrap_or(false)
    }
}

/// RFC 7741 §4.2 descriptor, then the VP8 payload header's P bit (§4.3):
/// start of partition 0 (S=1, PID=0) with P=0 is a keyframe.
fn vp8(p: &[u8]) -> Option<bool> {
    let b0 = *p.first()?;
    let extended = b0 & 0x80 != 0;
    let start = b0 & 0x10 != 0;
    let pid = b0 & 0x07;
    if !start || pid != 0 {
        return Some(false);
    }
    let mut i = 1;
    if extended {
        let x = *p.get(1)?;
        i = 2;
        if x & 0x80 != 0 {
            // I: PictureID, 7 or 15 bits (M flag).
            i += if *p.get(i)? & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // L: TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // T or K: TID/Y/KEYIDX
        }
    }
    Some(*p.get(i)? & 0x01 == 0)
}

/// RFC 9628 §4.2: byte 0 is `I P L F B E V Z` in both flexible and
/// non-flexible mode. A keyframe starts with P=0 (not inter-predicted) and
/// B=1 (beginning of frame); with layer indices (L=1) it must be spatial
/// layer 0, whose layer byte follows the picture ID.
fn vp9(p: &[u8]) -> Option<bool> {
    let b0 = *p.first()?;
    let inter = b0 & 0x40 != 0;
    let begin = b0 & 0x08 != 0;
    if inter || !begin {
        return Some(false);
    }
    if b0 & 0x20 == 0 {
        return Some(true);
    }
    let mut i = 1;
    if b0 & 0x80 != 0 {
        i += if *p.get(1)? & 0x80 != 0 { 2 } else { 1 };
    }
    let layer = *p.get(i)?;
    Some((layer >> 1) & 0x07 == 0)
}

/// What an H.264 packet starts, for the keyframe gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H264Start {
    /// A sequence parameter set (alone, or first-class in a STAP-A): the
    /// start of a keyframe that carries its SPS/PPS in band.
    Sps,
    /// An IDR slice (single NAL, in a STAP-A, or an FU-A's first fragment)
    /// without an SPS in the same packet.
    Idr,
}

/// Classify an H.264 RTP payload (RFC 6184); `None` for anything else,
/// truncated or malformed.
pub fn h264_start(p: &[u8]) -> Option<H264Start> {
    let b0 = *p.first()?;
    let of = |nal: u8| match nal & 0x1f {
        NAL_SPS => Some(H264Start::Sps),
        NAL_IDR => Some(H264Start::Idr),
        _ => None,
    };
    match b0 & 0x1f {
        NAL_STAP_A => {
            let mut found = None;
            let mut i = 1;
            while let (Some(&hi), Some(&lo)) = (p.get(i), p.get(i + 1)) {
                let size = usize::from(u16::from_be_bytes([hi, lo]));
                if size == 0 {
                    break;
                }
                match of(*p.get(i + 2)?) {
                    Some(H264Start::Sps) => return Some(H264Start::Sps),
                    Some(H264Start::Idr) => found = Some(H264Start::Idr),
                    None => {}
                }
                i += 2 + size;
            }
            found
        }
        NAL_FU_A => {
            let fu = *p.get(1)?;
            (fu & 0x80 != 0 && fu & 0x1f == NAL_IDR).then_some(H264Start::Idr)
        }
        _ => of(b0),
    }
}

const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_STAP_A: u8 = 24;
const NAL_FU_A: u8 = 28;

/// RFC 6184: single NAL unit IDR/SPS, STAP-A aggregating one, or the start
/// fragment of an FU-A carrying an IDR.
fn h264(p: &[u8]) -> Option<bool> {
    Some(h264_start(p).is_some())
}

/// AV1 aggregation header `Z Y W W N - - -`: N=1 marks the first packet of
/// a coded video sequence, i.e. a keyframe.
fn av1(p: &[u8]) -> Option<bool> {
    Some(*p.first()? & 0x08 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_basic_and_extended() {
        // S=1 PID=0, payload header P=0.
        assert!(Codec::Vp8.is_keyframe_start(&[0x10, 0x00]));
        // P=1: interframe.
        assert!(!Codec::Vp8.is_keyframe_start(&[0x10, 0x01]));
        // Not the start of the partition.
        assert!(!Codec::Vp8.is_keyframe_start(&[0x00, 0x00]));
        // Start of partition 1.
        assert!(!Codec::Vp8.is_keyframe_start(&[0x11, 0x00]));
        // X with I (15-bit picture id), L, T: descriptor = 1+1+2+1+1 bytes.
        let kf = [0x90, 0xe0, 0x80, 0x01, 0x05, 0x20, 0x9c];
        assert!(Codec::Vp8.is_keyframe_start(&kf));
        let delta = [0x90, 0xe0, 0x80, 0x01, 0x05, 0x20, 0x9d];
        assert!(!Codec::Vp8.is_keyframe_start(&delta));
        // X with I (7-bit picture id) only.
        assert!(Codec::Vp8.is_keyframe_start(&[0x90, 0x80, 0x05, 0x9c]));
        assert!(!Codec::Vp8.is_keyframe_start(&[0x90, 0x80, 0x05, 0x9d]));
        // K only.
        assert!(Codec::Vp8.is_keyframe_start(&[0x90, 0x10, 0x00, 0x00]));
        // Truncated.
        assert!(!Codec::Vp8.is_keyframe_start(&[0x90, 0xe0, 0x80]));
        assert!(!Codec::Vp8.is_keyframe_start(&[0x10]));
        assert!(!Codec::Vp8.is_keyframe_start(&[]));
    }

    #[test]
    fn vp9_modes() {
        // Non-flexible, no layers: B=1, P=0.
        assert!(Codec::Vp9.is_keyframe_start(&[0x08]));
        assert!(!Codec::Vp9.is_keyframe_start(&[0x48])); // P=1
        assert!(!Codec::Vp9.is_keyframe_start(&[0x04])); // B=0
                                                         // I + M (15-bit pid) + L: layer byte SID=0.
        assert!(Codec::Vp9.is_keyframe_start(&[0xa8, 0x81, 0x23, 0x00, 0x07]));
        // SID=1 is not the start of the keyframe.
        assert!(!Codec::Vp9.is_keyframe_start(&[0xa8, 0x81, 0x23, 0x02]));
        // Flexible mode (F) with 7-bit pid and layer byte.
        assert!(Codec::Vp9.is_keyframe_start(&[0xb8, 0x12, 0x00]));
        assert!(!Codec::Vp9.is_keyframe_start(&[0xb8, 0x12]));
        assert!(!Codec::Vp9.is_keyframe_start(&[]));
    }

    #[test]
    fn h264_starts_tell_sps_from_idr() {
        assert_eq!(h264_start(&[0x67, 0x42]), Some(H264Start::Sps));
        assert_eq!(h264_start(&[0x65, 0x88]), Some(H264Start::Idr));
        assert_eq!(h264_start(&[0x7c, 0x85, 0]), Some(H264Start::Idr));
        // STAP-A: an SPS anywhere in it wins over the IDR.
        assert_eq!(
            h264_start(&[0x78, 0, 1, 0x65, 0, 1, 0x67]),
            Some(H264Start::Sps)
        );
        assert_eq!(
            h264_start(&[0x78, 0, 1, 0x68, 0, 1, 0x65]),
            Some(H264Start::Idr)
        );
        assert_eq!(h264_start(&[0x78, 0, 1, 0x68]), None);
        assert_eq!(h264_start(&[0x41, 0x9a]), None);
        assert_eq!(h264_start(&[]), None);
    }

    #[test]
    fn h264_forms() {
        assert!(Codec::H264.is_keyframe_start(&[0x65, 0x88])); // IDR
        assert!(Codec::H264.is_keyframe_start(&[0x67, 0x42])); // SPS
        assert!(!Codec::H264.is_keyframe_start(&[0x41, 0x9a])); // non-IDR
        assert!(!Codec::H264.is_keyframe_start(&[0x68])); // PPS
                                                          // STAP-A: SPS(2 bytes) + PPS(1 byte).
        assert!(Codec::H264.is_keyframe_start(&[0x78, 0, 2, 0x67, 0x42, 0, 1, 0x68]));
        // STAP-A: PPS then IDR.
        assert!(Codec::H264.is_keyframe_start(&[0x78, 0, 1, 0x68, 0, 1, 0x65]));
        // STAP-A: only non-key NALs, and a truncated one.
        assert!(!Codec::H264.is_keyframe_start(&[0x78, 0, 1, 0x41, 0, 1, 0x68]));
        assert!(!Codec::H264.is_keyframe_start(&[0x78, 0, 1, 0x41, 0, 9]));
        assert!(!Codec::H264.is_keyframe_start(&[0x78, 0xff, 0xff]));
        // FU-A start of IDR, middle of IDR, start of non-IDR.
        assert!(Codec::H264.is_keyframe_start(&[0x7c, 0x85, 0]));
        assert!(!Codec::H264.is_keyframe_start(&[0x7c, 0x05, 0]));
        assert!(!Codec::H264.is_keyframe_start(&[0x7c, 0x81, 0]));
        assert!(!Codec::H264.is_keyframe_start(&[0x7c]));
    }

    #[test]
    fn av1_n_bit() {
        assert!(Codec::Av1.is_keyframe_start(&[0x18]));
        assert!(!Codec::Av1.is_keyframe_start(&[0x10]));
        assert!(!Codec::Av1.is_keyframe_start(&[]));
    }

    #[test]
    fn audio_and_other_never() {
        assert!(!Codec::Opus.is_keyframe_start(&[0xff; 4]));
        assert!(!Codec::Other.is_keyframe_start(&[0xff; 4]));
        assert!(!Codec::Other.has_keyframe_detection());
        assert!(Codec::Av1.has_keyframe_detection());
    }
}
