//! Building the tool's sans-IO `rtc` peer connections: the offerer side of a
//! publisher (VP8 + Opus send tracks with fixed SSRCs; VP8 optionally as
//! three simulcast layers) or a player (two
//! receive-only transceivers), each with a host candidate for its own UDP
//! socket. Only VP8 (PT 96) and Opus (PT 111) are offered, so the server's
//! answer reuses those payload types and the receive path can tell the
//! kinds apart by payload type alone.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use bytes::Bytes;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers,
};
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
use rtc::sdp::extmap::{SDES_MID_URI, SDES_RTP_STREAM_ID_URI};

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

/// A publisher's sending side: the sender of each kind and its SSRC(s).
pub struct PubTracks {
    /// The video sender and the SSRC of its (top) encoding.
    pub video: (RTCRtpSenderId, u32),
    /// The video encodings: one, or the three simulcast layers lowest
    /// first.
    pub layers: Vec<PubLayer>,
    pub audio: (RTCRtpSenderId, u32),
    /// The `sdes:mid` extension ID and the video section's MID, and the
    /// `sdes:rtp-stream-id` extension ID, of the offer (simulcast only: how
    /// the server tells the layers apart).
    pub rid_ext: Option<(u8, Bytes, u8)>,
}

/// One video encoding a publisher sends.
pub struct PubLayer {
    pub ssrc: u32,
    pub rid: &'static str,
    /// Its share of `--video-kbps`, percent.
    pub share: u32,
}

/// Simulcast layers, lowest first, at the shares of the top layer's
/// bitrate Chromium's 320/640/1280 px encodings showed (≈150/370/780
/// kbit/s, BENCHMARKS.md).
pub const SIMULCAST: [(&str, u32); 3] = [("q", 20), ("h", 45), ("f", 100)];

fn track(
    stream: &str,
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
    codings: &[(u32, &str)],
) -> MediaStreamTrack {
    let name = format!("{stream}-{kind:?}").to_lowercase();
    MediaStreamTrack::new(
        stream.to_string(),
        name.clone(),
        name,
        kind,
        codings
            .iter()
            .map(|&(ssrc, rid)| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    rid: rid.to_string(),
                    ..Default::default()
                },
                codec: codec.clone(),
                ..Default::default()
            })
            .collect(),
    )
}

/// The ID an `a=extmap` line of `sdp` gives `uri`.
fn extmap_id(sdp: &str, uri: &str) -> Option<u8> {
    sdp.lines().find_map(|l| {
        let (id, rest) = l.strip_prefix("a=extmap:")?.split_once(' ')?;
        (rest.split_whitespace().next()? == uri)
            .then(|| id.split('/').next()?.parse().ok())
            .flatten()
    })
}

/// A publisher connection and its offer.
pub fn publisher(
    stream: &str,
    local: SocketAddr,
    now: Instant,
) -> Result<(RTCPeerConnection, String, PubTracks)> {
    publisher_with(stream, local, now, false)
}

/// A publisher connection and its offer; with `simulcast`, its video as
/// the three [`SIMULCAST`] layers (RIDs, no SSRC lines: the server learns
/// each layer's SSRC from the RID extension, as with browsers).
pub fn publisher_with(
    stream: &str,
    local: SocketAddr,
    now: Instant,
    simulcast: bool,
) -> Result<(RTCPeerConnection, String, PubTracks)> {
    let mut engine = engine()?;
    if simulcast {
        configure_simulcast_extension_headers(&mut engine)?;
    }
    let mut pc = build(engine, now)?;
    let audio_ssrc: u32 = rand::random::<u32>() | 1;
    let layers: Vec<PubLayer> = if simulcast {
        SIMULCAST
            .iter()
            .zip(1u32..)
            .map(|(&(rid, share), i)| PubLayer {
                ssrc: audio_ssrc.wrapping_add(2 * i),
                rid,
                share,
            })
            .collect()
    } else {
        vec![PubLayer {
            ssrc: audio_ssrc.wrapping_add(2),
            rid: "",
            share: 100,
        }]
    };
    let codings: Vec<(u32, &str)> = layers.iter().map(|l| (l.ssrc, l.rid)).collect();
    let audio = pc.add_track(track(
        stream,
        RtpCodecKind::Audio,
        opus(),
        &[(audio_ssrc, "")],
    ))?;
    let video = pc.add_track(track(stream, RtpCodecKind::Video, vp8(), &codings))?;
    let sdp = offer(&mut pc, local, now)?;
    let rid_ext = if simulcast {
        let mid = extmap_id(&sdp, SDES_MID_URI);
        let rid = extmap_id(&sdp, SDES_RTP_STREAM_ID_URI);
        let video_mid = sdp
            .split("m=")
            .find(|m| m.starts_with("video"))
            .and_then(|m| m.lines().find_map(|l| l.strip_prefix("a=mid:")))
            .map(|m| Bytes::copy_from_slice(m.trim().as_bytes()));
        match (mid, video_mid, rid) {
            (Some(m), Some(v), Some(r)) => Some((m, v, r)),
            _ => return Err(anyhow!("the simulcast offer has no mid/rid extensions")),
        }
    } else {
        None
    };
    Ok((
        pc,
        sdp,
        PubTracks {
            video: (video, layers[layers.len() - 1].ssrc),
            layers,
            audio: (audio, audio_ssrc),
            rid_ext,
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
