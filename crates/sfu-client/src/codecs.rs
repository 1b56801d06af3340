//! Media kinds and the codecs the client offers.
//!
//! A publisher offers exactly the codec it will send (so the negotiated
//! payload type is unambiguous); a player offers Opus, VP8, VP9 and H.264
//! by default and takes whatever the server answers. No RTX or FEC is offered, so a
//! retransmission arrives on the media SSRC with the original payload.

use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MIME_TYPE_VP9,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};

use crate::error::{ClientError, Result};

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// An Opus track.
    Audio,
    /// A VP8, VP9 or H.264 track.
    Video,
}

impl MediaKind {
    pub(crate) fn index(self) -> usize {
        match self {
            MediaKind::Audio => 0,
            MediaKind::Video => 1,
        }
    }

    pub(crate) fn rtc(self) -> RtpCodecKind {
        match self {
            MediaKind::Audio => RtpCodecKind::Audio,
            MediaKind::Video => RtpCodecKind::Video,
        }
    }

    pub(crate) fn from_rtc(kind: RtpCodecKind) -> Option<MediaKind> {
        match kind {
            RtpCodecKind::Audio => Some(MediaKind::Audio),
            RtpCodecKind::Video => Some(MediaKind::Video),
            _ => None,
        }
    }
}

impl std::fmt::Display for MediaKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        })
    }
}

/// The video codecs a publisher can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// VP8 (RFC 7741).
    Vp8,
    /// H.264 constrained baseline, packetization-mode 1 (RFC 6184).
    H264,
    /// VP9 profile 0 (no clip ships for it: write your own packets).
    Vp9,
}

impl VideoCodec {
    /// The codec's MIME type, e.g. `video/VP8`.
    pub fn mime_type(self) -> &'static str {
        match self {
            VideoCodec::Vp8 => MIME_TYPE_VP8,
            VideoCodec::H264 => MIME_TYPE_H264,
            VideoCodec::Vp9 => MIME_TYPE_VP9,
        }
    }

    pub(crate) fn parameters(self) -> RTCRtpCodecParameters {
        match self {
            VideoCodec::Vp8 => vp8(),
            VideoCodec::H264 => h264(),
            VideoCodec::Vp9 => vp9(),
        }
    }
}

/// Payload type offered for Opus.
pub const OPUS_PT: u8 = 111;
/// Payload type offered for VP8.
pub const VP8_PT: u8 = 96;
/// Payload type offered for VP9.
pub const VP9_PT: u8 = 98;
/// Payload type offered for H.264.
pub const H264_PT: u8 = 102;

fn video_feedback() -> Vec<RTCPFeedback> {
    [
        ("goog-remb", ""),
        ("ccm", "fir"),
        ("nack", ""),
        ("nack", "pli"),
    ]
    .into_iter()
    .map(|(typ, parameter)| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    })
    .collect()
}

fn codec(
    mime: &str,
    clock_rate: u32,
    channels: u16,
    fmtp: &str,
    pt: u8,
    video: bool,
) -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: mime.to_owned(),
            clock_rate,
            channels,
            sdp_fmtp_line: fmtp.to_owned(),
            rtcp_feedback: if video { video_feedback() } else { vec![] },
        },
        payload_type: pt,
    }
}

pub(crate) fn opus() -> RTCRtpCodecParameters {
    codec(
        MIME_TYPE_OPUS,
        48_000,
        2,
        "minptime=10;useinbandfec=1",
        OPUS_PT,
        false,
    )
}

pub(crate) fn vp8() -> RTCRtpCodecParameters {
    codec(MIME_TYPE_VP8, 90_000, 0, "", VP8_PT, true)
}

pub(crate) fn vp9() -> RTCRtpCodecParameters {
    codec(MIME_TYPE_VP9, 90_000, 0, "profile-id=0", VP9_PT, true)
}

pub(crate) fn h264() -> RTCRtpCodecParameters {
    let fmtp = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";
    codec(MIME_TYPE_H264, 90_000, 0, fmtp, H264_PT, true)
}

/// A media engine holding `audio` (Opus) and `video` codecs.
pub(crate) fn media_engine(audio: bool, video: &[RTCRtpCodecParameters]) -> Result<MediaEngine> {
    let mut engine = MediaEngine::default();
    if audio {
        engine
            .register_codec(opus(), RtpCodecKind::Audio)
            .map_err(|e| ClientError::webrtc("registering Opus", e))?;
    }
    for params in video {
        let mime = params.rtp_codec.mime_type.clone();
        engine
            .register_codec(params.clone(), RtpCodecKind::Video)
            .map_err(|e| ClientError::webrtc(&format!("registering {mime}"), e))?;
    }
    Ok(engine)
}
