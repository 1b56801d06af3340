//! Test media: the repository's clips (`media/` at the workspace root,
//! embedded at build time) packetized into RTP, and real-time pacing.
//!
//! [`ClipSource`] is an iterator of [`Frame`]s: one encoded frame's RTP
//! packets (at most [`DEFAULT_MTU`] bytes each, marker on the last packet
//! of a video frame and on the very first audio packet) and its duration.
//! Sequence numbers and timestamps run on across loops of the clip, so a
//! looped source is one continuous stream. Payloaders are `rtc`'s (VP8
//! without picture ID, H.264 with STAP-A for SPS/PPS, Opus), so payloads
//! are deterministic: the same clip frame always yields the same payloads.

mod readers;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rtc::rtp;
use rtc::rtp::codec::h264::H264Payloader;
use rtc::rtp::codec::opus::OpusPayloader;
use rtc::rtp::codec::vp8::Vp8Payloader;
use rtc::rtp::packetizer::Payloader;

use crate::codecs::{MediaKind, VideoCodec, H264_PT, OPUS_PT, VP8_PT};
use crate::error::{ClientError, Result};
use crate::publish::Publisher;
use readers::ClipFrame;

/// The VP8 clip: 320x240, 30 fps, 150 frames, keyframe every 30 (IVF).
pub static VP8_CLIP: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../media/test-320x240-vp8.ivf"
));
/// The H.264 clip: the same picture, constrained baseline (Annex B).
pub static H264_CLIP: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../media/test-320x240-h264.h264"
));
/// The Opus clip: 5 s, 48 kHz stereo, 20 ms frames (Ogg).
pub static OPUS_CLIP: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../media/test-opus-48k.ogg"
));

/// Largest RTP packet a source emits (header included), in bytes.
pub const DEFAULT_MTU: usize = 1200;
const RTP_HEADER: usize = 12;

/// The codec of a clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipCodec {
    /// VP8 video (90 kHz).
    Vp8,
    /// H.264 video (90 kHz).
    H264,
    /// Opus audio (48 kHz).
    Opus,
}

/// One encoded frame as RTP.
#[derive(Debug, Clone)]
pub struct Frame {
    /// How long the frame lasts (the gap to the next frame).
    pub duration: Duration,
    /// Its RTP packets, in sending order.
    pub packets: Vec<rtp::Packet>,
    /// Decodable on its own (always true for audio).
    pub keyframe: bool,
    /// Index of the frame in the clip.
    pub index: usize,
    /// How many times the clip had wrapped around before this frame.
    pub pass: u64,
}

/// An RTP source that reads a clip, optionally forever.
pub struct ClipSource {
    codec: ClipCodec,
    frames: Arc<Vec<ClipFrame>>,
    payloader: Box<dyn Payloader>,
    mtu: usize,
    ssrc: u32,
    payload_type: u8,
    seq: u16,
    ts: u32,
    next: usize,
    pass: u64,
    looping: bool,
    sent_any: bool,
}

impl std::fmt::Debug for ClipSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipSource")
            .field("codec", &self.codec)
            .field("frames", &self.frames.len())
            .field("next", &self.next)
            .field("pass", &self.pass)
            .field("seq", &self.seq)
            .field("ts", &self.ts)
            .finish()
    }
}

impl ClipSource {
    fn new(codec: ClipCodec, frames: Vec<ClipFrame>) -> ClipSource {
        let (payloader, payload_type): (Box<dyn Payloader>, u8) = match codec {
            ClipCodec::Vp8 => (Box::new(Vp8Payloader::default()), VP8_PT),
            ClipCodec::H264 => (Box::new(H264Payloader::default()), H264_PT),
            ClipCodec::Opus => (Box::new(OpusPayloader), OPUS_PT),
        };
        ClipSource {
            codec,
            frames: Arc::new(frames),
            payloader,
            mtu: DEFAULT_MTU,
            ssrc: rand::random(),
            payload_type,
            seq: rand::random(),
            ts: rand::random(),
            next: 0,
            pass: 0,
            looping: false,
            sent_any: false,
        }
    }

    /// The repository's VP8 clip.
    pub fn vp8() -> Result<ClipSource> {
        Self::from_ivf(VP8_CLIP)
    }

    /// The repository's H.264 clip (30 fps).
    pub fn h264() -> Result<ClipSource> {
        Self::from_annexb(H264_CLIP, 30)
    }

    /// The repository's Opus clip.
    pub fn opus() -> Result<ClipSource> {
        Self::from_ogg(OPUS_CLIP)
    }

    /// The repository's clip for `codec` (there is none for VP9).
    pub fn video(codec: VideoCodec) -> Result<ClipSource> {
        match codec {
            VideoCodec::Vp8 => Self::vp8(),
            VideoCodec::H264 => Self::h264(),
            VideoCodec::Vp9 => Err(ClientError::Invalid("no VP9 clip in media/".into())),
        }
    }

    /// VP8 from an IVF file.
    pub fn from_ivf(bytes: &[u8]) -> Result<ClipSource> {
        Ok(Self::new(ClipCodec::Vp8, readers::ivf_frames(bytes)?))
    }

    /// H.264 from an Annex B stream at a constant `fps`.
    pub fn from_annexb(bytes: &[u8], fps: u32) -> Result<ClipSource> {
        Ok(Self::new(
            ClipCodec::H264,
            readers::annexb_frames(bytes, fps)?,
        ))
    }

    /// Opus from an Ogg file.
    pub fn from_ogg(bytes: &[u8]) -> Result<ClipSource> {
        Ok(Self::new(ClipCodec::Opus, readers::ogg_opus_frames(bytes)?))
    }

    /// Loop the clip forever instead of ending after one pass.
    pub fn looped(mut self) -> Self {
        self.looping = true;
        self
    }

    /// Use `ssrc` (a publisher overwrites it anyway).
    pub fn with_ssrc(mut self, ssrc: u32) -> Self {
        self.ssrc = ssrc;
        self
    }

    /// Use `pt` (a publisher overwrites it anyway).
    pub fn with_payload_type(mut self, pt: u8) -> Self {
        self.payload_type = pt;
        self
    }

    /// Start at sequence number `seq` and timestamp `ts` instead of random ones.
    pub fn with_start(mut self, seq: u16, ts: u32) -> Self {
        self.seq = seq;
        self.ts = ts;
        self
    }

    /// Cap packets at `mtu` bytes, header included (minimum 64).
    pub fn with_mtu(mut self, mtu: usize) -> Self {
        self.mtu = mtu.max(64);
        self
    }

    /// The clip's codec.
    pub fn codec(&self) -> ClipCodec {
        self.codec
    }

    /// Audio or video.
    pub fn kind(&self) -> MediaKind {
        match self.codec {
            ClipCodec::Opus => MediaKind::Audio,
            _ => MediaKind::Video,
        }
    }

    /// RTP clock rate.
    pub fn clock_rate(&self) -> u32 {
        match self.codec {
            ClipCodec::Opus => 48_000,
            _ => 90_000,
        }
    }

    /// Frames in one pass of the clip.
    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }

    /// Indices of the clip's keyframes.
    pub fn keyframe_indices(&self) -> Vec<usize> {
        (0..self.frames.len())
            .filter(|&i| self.frames[i].keyframe)
            .collect()
    }

    /// Length of one pass of the clip.
    pub fn clip_duration(&self) -> Duration {
        let ticks: u64 = self.frames.iter().map(|f| u64::from(f.ticks)).sum();
        Duration::from_nanos(ticks * 1_000_000_000 / u64::from(self.clock_rate()))
    }

    /// The raw codec bytes of clip frame `index` (a VP8 frame, an Annex B
    /// access unit with 4-byte start codes, or an Opus packet).
    pub fn frame_data(&self, index: usize) -> Option<Bytes> {
        self.frames.get(index).map(|f| f.data.clone())
    }

    /// The next sequence number and timestamp the source will use.
    pub fn position(&self) -> (u16, u32) {
        (self.seq, self.ts)
    }
}

impl Iterator for ClipSource {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        if self.next >= self.frames.len() {
            if !self.looping || self.frames.is_empty() {
                return None;
            }
            self.next = 0;
            self.pass += 1;
        }
        let index = self.next;
        self.next += 1;
        let frame = &self.frames[index];
        // The bundled payloaders cannot fail on a non-empty frame.
        let payloads = self
            .payloader
            .payload(self.mtu - RTP_HEADER, &frame.data)
            .unwrap_or_default();
        let count = payloads.len();
        let video = self.kind() == MediaKind::Video;
        let mut packets = Vec::with_capacity(count);
        for (i, payload) in payloads.into_iter().enumerate() {
            let marker = if video {
                i + 1 == count
            } else {
                !self.sent_any
            };
            self.sent_any = true;
            packets.push(rtp::Packet {
                header: rtp::Header {
                    version: 2,
                    marker,
                    payload_type: self.payload_type,
                    sequence_number: self.seq,
                    timestamp: self.ts,
                    ssrc: self.ssrc,
                    ..Default::default()
                },
                payload,
            });
            self.seq = self.seq.wrapping_add(1);
        }
        self.ts = self.ts.wrapping_add(frame.ticks);
        Some(Frame {
            duration: Duration::from_nanos(
                u64::from(frame.ticks) * 1_000_000_000 / u64::from(self.clock_rate()),
            ),
            packets,
            keyframe: frame.keyframe,
            index,
            pass: self.pass,
        })
    }
}

/// What [`pace`] sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaceStats {
    /// Frames sent.
    pub frames: u64,
    /// RTP packets sent.
    pub packets: u64,
    /// RTP payload bytes sent.
    pub bytes: u64,
    /// Keyframes among the frames.
    pub keyframes: u64,
}

/// Send `source` on its kind's track in real time until `duration` of
/// media has been sent (or the source ends). Frame `n` leaves at
/// start + the durations of frames `0..n`, so timing does not drift.
pub async fn pace(
    publisher: &Publisher,
    source: &mut ClipSource,
    duration: Duration,
) -> Result<PaceStats> {
    let kind = source.kind();
    pace_frames(publisher, kind, source, duration).await
}

/// [`pace`] for any iterator of frames on the `kind` track.
pub async fn pace_frames(
    publisher: &Publisher,
    kind: MediaKind,
    frames: impl Iterator<Item = Frame>,
    duration: Duration,
) -> Result<PaceStats> {
    let start = tokio::time::Instant::now();
    let mut offset = Duration::ZERO;
    let mut stats = PaceStats::default();
    for frame in frames {
        if offset >= duration {
            break;
        }
        tokio::time::sleep_until(start + offset).await;
        stats.frames += 1;
        stats.keyframes += u64::from(frame.keyframe);
        for packet in frame.packets {
            stats.packets += 1;
            stats.bytes += packet.payload.len() as u64;
            publisher.write_rtp(kind, packet).await?;
        }
        offset += frame.duration;
    }
    Ok(stats)
}

/// Whether an RTP VP8 payload (descriptor included) starts a keyframe:
/// the start of partition 0 with the frame tag's P bit clear.
pub fn is_vp8_keyframe(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    let start_of_partition_0 = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    let mut at = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = payload.get(1) else {
            return false;
        };
        at = 2;
        if x & 0x80 != 0 {
            let Some(&pid) = payload.get(at) else {
                return false;
            };
            at += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1;
        }
        if x & 0x30 != 0 {
            at += 1;
        }
    }
    start_of_partition_0 && payload.get(at).is_some_and(|tag| tag & 0x01 == 0)
}

/// Whether an RTP H.264 payload carries (the start of) an IDR slice or an
/// SPS, alone, in a STAP-A or as the first FU-A fragment.
pub fn is_h264_keyframe(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    match b0 & 0x1f {
        5 | 7 => true,
        24 => {
            let mut at = 1;
            while let Some(len) = payload
                .get(at..at + 2)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            {
                if payload
                    .get(at + 2)
                    .is_some_and(|nal| matches!(nal & 0x1f, 5 | 7))
                {
                    return true;
                }
                at += 2 + len;
            }
            false
        }
        28 => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && fu & 0x1f == 5),
        _ => false,
    }
}
