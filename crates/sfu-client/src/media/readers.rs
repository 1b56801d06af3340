//! Container readers for the test clips: IVF (VP8), H.264 Annex B and Ogg
//! Opus, each turned into a list of encoded frames with their durations.
//!
//! IVF uses `rtc`'s `IVFReader`. Ogg is parsed here because `rtc`'s
//! `OggReader` returns whole pages without their lacing values, and a page
//! holds many Opus packets. Annex B is split into access units here because
//! `rtc`'s H.26x reader yields single NAL units, not frames.

use std::io::Cursor;

use bytes::{Bytes, BytesMut};
use rtc::media::io::ivf_reader::IVFReader;

use crate::error::{ClientError, Result};

/// One encoded frame of a clip.
#[derive(Debug, Clone)]
pub(crate) struct ClipFrame {
    /// Codec bytes: a VP8 frame, an Annex B access unit, an Opus packet.
    pub data: Bytes,
    /// Duration in RTP clock ticks.
    pub ticks: u32,
    /// Decodable on its own.
    pub keyframe: bool,
}

fn bad(what: &str) -> ClientError {
    ClientError::Invalid(format!("bad clip: {what}"))
}

/// VP8 frames of an IVF file, durations from the frame timestamps (90 kHz).
pub(crate) fn ivf_frames(bytes: &[u8]) -> Result<Vec<ClipFrame>> {
    let (mut reader, header) =
        IVFReader::new(Cursor::new(bytes)).map_err(|e| bad(&format!("IVF header: {e}")))?;
    if &header.four_cc != b"VP80" {
        return Err(bad("IVF is not VP8"));
    }
    let (num, den) = (
        u64::from(header.timebase_numerator),
        u64::from(header.timebase_denominator),
    );
    if num == 0 || den == 0 {
        return Err(bad("IVF timebase is zero"));
    }
    let mut raw = Vec::new();
    while let Ok((frame, frame_header)) = reader.parse_next_frame() {
        raw.push((frame.freeze(), frame_header.timestamp));
    }
    if raw.is_empty() {
        return Err(bad("IVF has no frames"));
    }
    // One timebase unit, in 90 kHz ticks: the fallback duration.
    let unit = u32::try_from(90_000 * num / den).unwrap_or(3000).max(1);
    let mut frames = Vec::with_capacity(raw.len());
    for i in 0..raw.len() {
        let (data, ts) = &raw[i];
        let ticks = match raw.get(i + 1) {
            Some((_, next)) if next > ts => {
                u32::try_from((next - ts) * 90_000 * num / den).unwrap_or(unit)
            }
            _ => frames.last().map(|f: &ClipFrame| f.ticks).unwrap_or(unit),
        };
        // VP8 frame tag: bit 0 of the first byte is 0 for a keyframe.
        let keyframe = data.first().is_some_and(|b| b & 0x01 == 0);
        frames.push(ClipFrame {
            data: data.clone(),
            ticks,
            keyframe,
        });
    }
    Ok(frames)
}

/// The NAL units of an Annex B byte stream, without start codes.
fn nal_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new(); // (start code position, payload position)
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            let code_at = if i > 0 && stream[i - 1] == 0 {
                i - 1
            } else {
                i
            };
            starts.push((code_at, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (k, &(_, from)) in starts.iter().enumerate() {
        let to = starts
            .get(k + 1)
            .map_or(stream.len(), |&(code_at, _)| code_at);
        // Trailing zero bytes belong to no NAL unit.
        let mut end = to;
        while end > from && stream[end - 1] == 0 {
            end -= 1;
        }
        if end > from {
            nals.push(&stream[from..end]);
        }
    }
    nals
}

/// H.264 access units of an Annex B stream, each re-emitted with 4-byte
/// start codes, at a constant `fps`.
pub(crate) fn annexb_frames(stream: &[u8], fps: u32) -> Result<Vec<ClipFrame>> {
    if fps == 0 {
        return Err(bad("frame rate is zero"));
    }
    let ticks = 90_000 / fps;
    let mut frames = Vec::new();
    let mut unit: Vec<&[u8]> = Vec::new();
    let mut has_slice = false;
    let flush = |unit: &mut Vec<&[u8]>, frames: &mut Vec<ClipFrame>| {
        let mut data = BytesMut::new();
        let mut keyframe = false;
        for nal in unit.drain(..) {
            keyframe |= nal[0] & 0x1f == 5;
            data.extend_from_slice(&[0, 0, 0, 1]);
            data.extend_from_slice(nal);
        }
        frames.push(ClipFrame {
            data: data.freeze(),
            ticks,
            keyframe,
        });
    };
    for nal in nal_units(stream) {
        let nal_type = nal[0] & 0x1f;
        let starts_unit = match nal_type {
            // A slice whose first_mb_in_slice is 0 (ue(v) "1") starts a picture.
            1 | 5 => nal.get(1).is_some_and(|b| b & 0x80 != 0),
            // AUD, SEI, SPS, PPS and prefix NALs come before a picture's slices.
            6..=9 | 14..=18 => true,
            _ => false,
        };
        if has_slice && starts_unit {
            flush(&mut unit, &mut frames);
            has_slice = false;
        }
        has_slice |= matches!(nal_type, 1 | 5);
        unit.push(nal);
    }
    if has_slice {
        flush(&mut unit, &mut frames);
    }
    if frames.is_empty() {
        return Err(bad("no H.264 pictures"));
    }
    Ok(frames)
}

/// Samples at 48 kHz in one Opus packet, from its TOC byte (RFC 6716 §3.1).
pub(crate) fn opus_packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let count = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3f),
    };
    Some(frame * count)
}

/// The Opus packets of an Ogg file (headers skipped), 48 kHz durations.
pub(crate) fn ogg_opus_frames(file: &[u8]) -> Result<Vec<ClipFrame>> {
    let mut packets: Vec<Bytes> = Vec::new();
    let mut partial = BytesMut::new();
    let mut at = 0;
    while at < file.len() {
        let header = file
            .get(at..at + 27)
            .ok_or_else(|| bad("truncated Ogg page header"))?;
        if &header[..4] != b"OggS" {
            return Err(bad("missing OggS capture pattern"));
        }
        let segments = usize::from(header[26]);
        let table = file
            .get(at + 27..at + 27 + segments)
            .ok_or_else(|| bad("truncated Ogg segment table"))?;
        let mut body = at + 27 + segments;
        for &lace in table {
            let len = usize::from(lace);
            let seg = file
                .get(body..body + len)
                .ok_or_else(|| bad("truncated Ogg page body"))?;
            partial.extend_from_slice(seg);
            body += len;
            if lace < 255 {
                packets.push(partial.split().freeze());
            }
        }
        at = body;
    }
    if !packets.first().is_some_and(|p| p.starts_with(b"OpusHead")) {
        return Err(bad("Ogg stream is not Opus"));
    }
    let frames: Vec<ClipFrame> = packets
        .into_iter()
        .skip(2) // OpusHead, OpusTags
        .filter(|p| !p.is_empty())
        .map(|data| ClipFrame {
            ticks: opus_packet_samples(&data).unwrap_or(960),
            data,
            keyframe: true,
        })
        .collect();
    if frames.is_empty() {
        return Err(bad("Ogg Opus stream has no audio packets"));
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nal_splitting() {
        let stream = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 0x88, 0,
        ];
        let nals = nal_units(&stream);
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 0x88][..]]
        );
    }

    #[test]
    fn opus_toc() {
        // config 31 (CELT FB 20 ms), one frame.
        assert_eq!(opus_packet_samples(&[31 << 3]), Some(960));
        // config 1 (SILK NB 20 ms), two frames.
        assert_eq!(opus_packet_samples(&[(1 << 3) | 1]), Some(1920));
        // code 3 with 3 frames of 10 ms hybrid.
        assert_eq!(opus_packet_samples(&[(12 << 3) | 3, 3]), Some(1440));
        assert_eq!(opus_packet_samples(&[]), None);
    }
}
