//! Building the tool's sans-IO `rtc` peer connections: the offerer side of a
//! publisher (VP8 + Opus send tracks with fixed SSRCs) or a player (two
//! receive-only transceivers), each with a host candidate for its own UDP
//! socket. Only VP8 (PT 96) and Opus (PT 111) are offered, so the server's
//! answer reuses those payload types and the receive path can tell the
//! kinds apart by payload type alone.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::configure_rtcp_reports;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

/// Payload type offered for VP8.
pub const VP8_PT: u8 = 96;
/// Payload type offered for Opus.
pub const OPUS_PT: u8 = 111;
/// RTP clock rates.
pub const VIDEO_CLOCK: u32 = 90_000;
pub const AUDIO_CLOCK: u32 = 48_000;

/// Consent checks are ours to send (we are the full agent), but keep the
/// timeouts as lax as the server's so a busy loop never flaps.
const ICE_DISCONNECTED: Duration = Duration::from_secs(15);
const ICE_FAILED: Duration = Duration::from_secs(30);
const ICE_KEEPALIVE: Duration = Duration::from_secs(2);

fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "video/VP8".to_string(),
        clock_rate: VIDEO_CLOCK,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "audio/opus".to_string(),
        clock_rate: AUDIO_CLOCK,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_string(),
        rtcp_feedback: vec![],
    }
}

fn engine() -> Result<MediaEngine> {
    let mut engine = MediaEngine::default();
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus(),
            payload_type: OPUS_PT,
        },
        RtpCodecKind::Audio,
    )?;
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: vp8(),
            payload_type: VP8_PT,
        },
        RtpCodecKind::Video,
    )?;
    Ok(engine)
}

fn build(engine: MediaEngine, now: Instant) -> Result<RTCPeerConnection> {
    let settings = SettingEngineBuilder::new()
        .with_ice_timeouts(
            Some(ICE_DISCONNECTED),
            Some(ICE_FAILED),
            Some(ICE_KEEPALIVE),
        )
        .build();
    // Sender/receiver reports only: no NACK, no TWCC, so the measured loss
    // is the forwarding path's and the per-packet cost stays small.
    let registry = configure_rtcp_reports(Registry::new());
    Ok(RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(settings)
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .build(now)?)
}

fn offer(pc: &mut RTCPeerConnection, local: SocketAddr, now: Instant) -> Result<String> {
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: local.ip().to_string(),
            port: local.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()?;
    pc.add_local_candidate(RTCIceCandidate::from(&candidate).to_json()?)?;
    let offer = pc.create_offer(None)?;
    pc.set_local_description(now, offer)?;
    pc.local_description()
        .map(|d| d.sdp)
        .ok_or_else(|| anyhow!("no local description"))
}

/// Apply the server's answer.
pub fn apply_answer(pc: &mut RTCPeerConnection, sdp: String, now: Instant) -> Result<()> {
    pc.set_remote_description(now, RTCSessionDescription::answer(sdp)?)?;
    Ok(())
}

/// A publisher's sending side: the sender of each kind and its SSRC.
pub struct PubTracks {
    pub video: (RTCRtpSenderId, u32),
    pub audio: (RTCRtpSenderId, u32),
}

fn track(stream: &str, kind: RtpCodecKind, codec: RTCRtpCodec, ssrc: u32) -> MediaStreamTrack {
    let name = format!("{stream}-{kind:?}").to_lowercase();
    MediaStreamTrack::new(
        stream.to_string(),
        name.clone(),
        name,
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )
}

/// A publisher connection and its offer.
pub fn publisher(
    stream: &str,
    local: SocketAddr,
    now: Instant,
) -> Result<(RTCPeerConnection, String, PubTracks)> {
    let mut pc = build(engine()?, now)?;
    let audio_ssrc: u32 = rand::random::<u32>() | 1;
    let video_ssrc: u32 = audio_ssrc.wrapping_add(2);
    let audio = pc.add_track(track(stream, RtpCodecKind::Audio, opus(), audio_ssrc))?;
    let video = pc.add_track(track(stream, RtpCodecKind::Video, vp8(), video_ssrc))?;
    let sdp = offer(&mut pc, local, now)?;
    Ok((
        pc,
        sdp,
        PubTracks {
            video: (video, video_ssrc),
            audio: (audio, audio_ssrc),
        },
    ))
}

/// A player connection (receive-only audio + video) and its offer.
pub fn player(local: SocketAddr, now: Instant) -> Result<(RTCPeerConnection, String)> {
    let mut pc = build(engine()?, now)?;
    for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
        pc.add_transceiver_from_kind(
            kind,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )?;
    }
    let sdp = offer(&mut pc, local, now)?;
    Ok((pc, sdp))
}
