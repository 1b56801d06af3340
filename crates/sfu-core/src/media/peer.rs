//! Building `rtc` peer connections for publishers and players: the codecs,
//! header extensions, interceptors and ICE settings of each role, the SDP
//! answer, and what was negotiated (codec per kind, player legs with their
//! SSRC, payload type and extension IDs). Pure construction: no sockets.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rtc::crypto::RTCCryptoProvider;
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::ice::tcp_type::TcpType;
use rtc::interceptor::{Attribute, Interceptor, Packet, Registry, Slot, StreamInfo, TaggedPacket};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::{
    SctpMaxMessageSize, SettingEngineBuilder,
};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::header::PacketType;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};

use room_signal::{code, SignalError};
use rtc::sansio::Protocol;
use rtc::shared::error::Error as RtcError;
use stream_router::{Codec, ExtMap, MediaKind};

use super::codec_match;
pub use super::codec_match::codec_profile;
use super::offer_check::Setup;
use super::srtp::Profile;

/// Keepalive interval of the lite agent.
const ICE_KEEPALIVE: Duration = Duration::from_secs(2);

/// The SCTP message size we accept and advertise (`a=max-message-size`).
/// The SFU carries no data channels, but `rtc` answers an offer's
/// `m=application` section and then zero-fills a buffer of the negotiated
/// message size per connection (64 KiB by default, 256 KiB at most): a
/// browser that opened a data channel cost 67 KiB more per connection.
const SCTP_MAX_MESSAGE: u32 = 1024;

/// Header extensions we negotiate (and forward where they are end-to-end).
const AUDIO_EXTS: &[&str] = &["urn:ietf:params:rtp-hdrext:ssrc-audio-level"];
const VIDEO_EXTS: &[&str] = &["urn:3gpp:video-orientation"];
/// AV1's dependency descriptor (`stream-router/src/dd.rs`): read from an
/// AV1 publisher and forwarded to players. A publisher's answer accepts it
/// only when its video is AV1: Chromium, once it is negotiated, signals a
/// VP8 publish's temporal layers in it instead of the VP8 descriptor.
/// Players always accept it (a later publisher of the stream may be AV1).
const DD_EXT: &str =
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";
/// Transport-wide congestion control (players only): the sequence number
/// our egress writes into every packet (`twcc.rs`) and the feedback it asks
/// for (`bwe.rs`).
const TWCC_EXT: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// The codec a publisher sends for one kind, as negotiated.
#[derive(Debug, Clone)]
pub struct Negotiated {
    pub kind: MediaKind,
    pub codec: RTCRtpCodec,
    pub payload_type: u8,
}

/// A codec a player leg's answer accepted, with its payload type there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegCodec {
    pub codec: Codec,
    /// See [`codec_profile`].
    pub profile: u32,
    pub payload_type: u8,
}

/// One sending leg of a player connection.
#[derive(Debug, Clone)]
pub struct Leg {
    pub kind: MediaKind,
    pub sender_id: rtc::rtp_transceiver::RTCRtpSenderId,
    pub track_id: String,
    pub ssrc: u32,
    /// The payload type it starts with (its first codec's).
    pub payload_type: u8,
    pub clock_rate: u32,
    pub extensions: ExtMap,
    /// Every codec of its kind the answer accepted: whichever of them a
    /// publisher sends, now or after a republish, the leg can carry.
    pub codecs: Vec<LegCodec>,
}

impl Leg {
    /// The payload type this leg sends a publisher's `codec`/`profile`
    /// with (the closest accepted line, see [`codec_match`]); `None` if its
    /// answer accepted no line that can carry it.
    pub fn payload_type_for(&self, codec: Codec, profile: u32) -> Option<u8> {
        self.codecs
            .iter()
            .filter(|c| c.codec == codec && codec_match::accepts(codec, c.profile, profile))
            .min_by_key(|c| codec_match::distance(codec, c.profile, profile))
            .map(|c| c.payload_type)
    }
}

/// What every answer needs besides the offer: the addresses written into it
/// as host candidates, and the ICE timeouts. Consent checks come every
/// 4–6 s, so the disconnected timeout must be well above the 5 s default
/// (15 s and 30 s by default).
#[derive(Clone)]
pub struct CandidateAddrs {
    pub addrs: Vec<SocketAddr>,
    /// The ICE-TCP port (RFC 6544): every address above is also announced
    /// as a passive TCP host candidate on it (`None`: UDP only).
    pub tcp_port: Option<u16>,
    pub ice_disconnected: Duration,
    pub ice_failed: Duration,
    /// The crypto provider of every connection built with these settings
    /// (`None`: `rtc`'s default). Players get their own
    /// [`super::srtp::KeyCapture`] (see [`CandidateAddrs::with_crypto`]).
    pub crypto: Option<Arc<dyn RTCCryptoProvider>>,
    /// SRTP protection profiles offered in the DTLS handshake, preferred
    /// first (both are ones our egress fast path protects itself).
    pub srtp_profiles: Vec<Profile>,
}

impl CandidateAddrs {
    /// The same settings with `crypto` as the connection's provider.
    pub fn with_crypto(&self, crypto: Arc<dyn RTCCryptoProvider>) -> CandidateAddrs {
        CandidateAddrs {
            crypto: Some(crypto),
            ..self.clone()
        }
    }
}

impl std::fmt::Debug for CandidateAddrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CandidateAddrs")
            .field("addrs", &self.addrs)
            .field("tcp_port", &self.tcp_port)
            .field("ice_disconnected", &self.ice_disconnected)
            .field("ice_failed", &self.ice_failed)
            .field("crypto", &self.crypto.as_ref().map(|c| c.name()))
            .field("srtp_profiles", &self.srtp_profiles)
            .finish()
    }
}

pub fn bad_sdp(why: impl std::fmt::Display) -> SignalError {
    SignalError::new(code::BAD_SDP, format!("bad SDP offer: {why}"))
}

pub fn media_kind(kind: RtpCodecKind) -> Option<MediaKind> {
    match kind {
        RtpCodecKind::Audio => Some(MediaKind::Audio),
        RtpCodecKind::Video => Some(MediaKind::Video),
        _ => None,
    }
}

pub fn codec_of(mime: &str) -> Codec {
    match mime.to_ascii_lowercase().as_str() {
        "audio/opus" => Codec::Opus,
        "video/vp8" => Codec::Vp8,
        "video/vp9" => Codec::Vp9,
        "video/h264" => Codec::H264,
        "video/av1" => Codec::Av1,
        _ => Codec::Other,
    }
}

fn is_media_codec(mime: &str) -> bool {
    matches!(
        codec_of(mime),
        Codec::Opus | Codec::Vp8 | Codec::Vp9 | Codec::H264 | Codec::Av1
    )
}

fn video_feedback() -> Vec<RTCPFeedback> {
    [("nack", ""), ("nack", "pli"), ("ccm", "fir")]
        .iter()
        .map(|(t, p)| RTCPFeedback {
            typ: t.to_string(),
            parameter: p.to_string(),
        })
        .collect()
}

fn register_exts(engine: &mut MediaEngine, twcc: bool, dd: bool) -> Result<(), RtcError> {
    if dd {
        engine.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: DD_EXT.to_string(),
            },
            RtpCodecKind::Video,
            None,
        )?;
    }
    if twcc {
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            engine.register_header_extension(
                RTCRtpHeaderExtensionCapability {
                    uri: TWCC_EXT.to_string(),
                },
                kind,
                None,
            )?;
        }
    }
    for uri in AUDIO_EXTS {
        engine.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: uri.to_string(),
            },
            RtpCodecKind::Audio,
            None,
        )?;
    }
    for uri in VIDEO_EXTS {
        engine.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: uri.to_string(),
            },
            RtpCodecKind::Video,
            None,
        )?;
    }
    Ok(())
}

/// Marks inbound keyframe requests and NACKs for the application, so that a
/// player's PLI/FIR/NACK reach the router (see `rtc-notes.md`, pitfall 1).
#[derive(Default)]
struct DeliverFeedback {
    reads: Passing,
    writes: Passing,
}

/// The packets an interceptor passes on, oldest first. rtc's chain hands an
/// interceptor one packet and polls it empty before the next
/// (`rtc-interceptor` `Chain::walk`), so one slot is all it ever needs; a
/// `VecDeque` allocates four (~1 KiB) per direction and connection.
#[derive(Default)]
struct Passing {
    next: Option<TaggedPacket>,
    /// Behind `next`, only if a caller ever hands over several at once.
    more: VecDeque<TaggedPacket>,
}

impl Passing {
    fn push(&mut self, msg: TaggedPacket) {
        if self.next.is_none() && self.more.is_empty() {
            self.next = Some(msg);
        } else {
            self.more.push_back(msg);
        }
    }

    fn pop(&mut self) -> Option<TaggedPacket> {
        self.next.take().or_else(|| self.more.pop_front())
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for DeliverFeedback {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = RtcError;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let wanted = packets.iter().any(|p| {
                matches!(
                    p.header().packet_type,
                    PacketType::PayloadSpecificFeedback | PacketType::TransportSpecificFeedback
                )
            });
            if wanted {
                msg.message.add(Attribute::DeliverToApplication);
            }
        }
        self.reads.push(msg);
        Ok(())
    }
    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop()
    }
    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push(msg);
        Ok(())
    }
    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop()
    }
    fn handle_timeout(&mut self, _now: Instant) -> Result<(), Self::Error> {
        Ok(())
    }
    fn poll_timeout(&mut self) -> Option<Self::Time> {
        None
    }
}

impl Interceptor for DeliverFeedback {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// The process's one DTLS certificate (ECDSA P-256, self-signed, valid
/// until 4096), made on first use. Without it `rtc` generates a key pair
/// and certificate for every peer connection. `None` if generating failed:
/// then each connection makes its own, as before.
pub fn certificate() -> Option<&'static RTCCertificate> {
    static CERTIFICATE: OnceLock<Option<RTCCertificate>> = OnceLock::new();
    CERTIFICATE
        .get_or_init(|| {
            let made = rtc::crypto::default_provider()
                .map_err(|e| e.to_string())
                .and_then(|provider| {
                    let params = CertificateParams::new(vec!["sfu".to_owned()])
                        .map_err(|e| e.to_string())?;
                    RTCCertificate::generate(
                        provider.crypto(),
                        rtc::crypto::SignatureScheme::EcdsaP256Sha256,
                        params,
                    )
                    .map_err(|e| e.to_string())
                });
            match made {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "no shared DTLS certificate; one per connection");
                    None
                }
            }
        })
        .as_ref()
}

fn build(
    engine: MediaEngine,
    registry: Registry,
    role: RTCDtlsRole,
    ufrag: &str,
    pwd: &str,
    settings: &CandidateAddrs,
    now: Instant,
) -> Result<RTCPeerConnection, RtcError> {
    let mut builder = SettingEngineBuilder::new();
    if let Some(crypto) = &settings.crypto {
        builder = builder.with_crypto_provider(crypto.clone());
    }
    if !settings.srtp_profiles.is_empty() {
        builder = builder.with_srtp_protection_profiles(
            settings
                .srtp_profiles
                .iter()
                .map(|p| match p {
                    Profile::AeadAes128Gcm => SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
                    Profile::AesCm128HmacSha1_80 => {
                        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80
                    }
                })
                .collect(),
        );
    }
    let settings = builder
        .with_lite(true)
        .with_ice_credentials(ufrag.to_string(), pwd.to_string())
        .with_answering_dtls_role(role)
        .with_sctp_max_message_size(SctpMaxMessageSize::Bounded(SCTP_MAX_MESSAGE))
        .with_ice_timeouts(
            Some(settings.ice_disconnected),
            Some(settings.ice_failed),
            Some(ICE_KEEPALIVE),
        )
        .build();
    RTCPeerConnectionBuilder::new()
        .with_configuration(
            RTCConfigurationBuilder::new()
                .with_certificates(certificate().into_iter().cloned().collect())
                .build(),
        )
        .with_setting_engine(settings)
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .build(now)
}

fn add_candidates(pc: &mut RTCPeerConnection, addrs: &CandidateAddrs) -> Result<(), RtcError> {
    for addr in &addrs.addrs {
        let udp = host_candidate(*addr, "udp", TcpType::Unspecified)?;
        pc.add_local_candidate(RTCIceCandidate::from(&udp).to_json()?)?;
    }
    // The passive TCP candidates after the UDP ones: a client that can
    // reach UDP prefers it anyway (RFC 6544 priorities are lower).
    if let Some(port) = addrs.tcp_port {
        for addr in &addrs.addrs {
            let addr = SocketAddr::new(addr.ip(), port);
            let tcp = host_candidate(addr, "tcp", TcpType::Passive)?;
            pc.add_local_candidate(RTCIceCandidate::from(&tcp).to_json()?)?;
        }
    }
    Ok(())
}

/// A host candidate on `addr` (`network` "udp" or "tcp").
pub(crate) fn host_candidate(
    addr: SocketAddr,
    network: &str,
    tcp_type: TcpType,
) -> Result<rtc::ice::candidate::Candidate, RtcError> {
    CandidateHostConfig {
        base_config: CandidateConfig {
            network: network.to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        tcp_type,
    }
    .new_candidate_host()
}

fn answer(
    pc: &mut RTCPeerConnection,
    now: Instant,
    offer_sdp: &str,
) -> Result<String, SignalError> {
    let answer = pc.create_answer(None).map_err(bad_sdp)?;
    pc.set_local_description(now, answer).map_err(bad_sdp)?;
    let sdp = pc
        .local_description()
        .map(|d| d.sdp)
        .ok_or_else(|| bad_sdp("no local description"))?;
    check_answer(offer_sdp, &sdp)?;
    Ok(sdp)
}

/// RFC 3264 §6: the answer has one m-line per m-line of the offer, and it
/// must accept one of them (else it carries no ICE credentials and the
/// connection can never come up). `rtc` can drop m-sections: found by
/// fuzzing (`fuzz/`, `sdp_offer`), an offer whose first section lists only
/// an unknown codec got an answer without its second one.
fn check_answer(offer_sdp: &str, answer_sdp: &str) -> Result<(), SignalError> {
    let sections = |sdp: &str| -> Vec<bool> {
        sdp.lines()
            .filter_map(|l| l.strip_prefix("m="))
            .map(|m| m.split_whitespace().nth(1) != Some("0"))
            .collect()
    };
    let (offered, answered) = (sections(offer_sdp), sections(answer_sdp));
    if offered.len() != answered.len() {
        return Err(bad_sdp(format!(
            "could not answer every m-section ({} of {})",
            answered.len(),
            offered.len()
        )));
    }
    if !answered.contains(&true) {
        return Err(bad_sdp("no m-section of the offer could be accepted"));
    }
    Ok(())
}

/// Which kinds (`m=audio` / `m=video`) an offer has, in order.
fn offered_kinds(offer: &RTCSessionDescription) -> Result<Vec<MediaKind>, SignalError> {
    let parsed = offer.unmarshal().map_err(bad_sdp)?;
    Ok(parsed
        .media_descriptions
        .iter()
        .filter_map(|m| match m.media_name.media.as_str() {
            "audio" => Some(MediaKind::Audio),
            "video" => Some(MediaKind::Video),
            _ => None,
        })
        .collect())
}

/// The offer, checked, and the DTLS role our answer takes for it.
fn parse_offer(sdp: &str) -> Result<(RTCSessionDescription, RTCDtlsRole), SignalError> {
    if sdp.trim().is_empty() {
        return Err(bad_sdp("empty"));
    }
    let setup = super::offer_check::check(sdp).map_err(bad_sdp)?;
    let offer = RTCSessionDescription::offer(sdp.to_string()).map_err(bad_sdp)?;
    Ok((offer, answering_role(setup)))
}

/// RFC 8842 §5.3: the answerer takes the role the offer leaves it. For
/// `actpass` we are the DTLS server (`a=setup:passive`): the client's
/// ClientHello then starts the handshake as soon as its ICE check succeeds,
/// and an ICE-lite server never has to guess when to send one.
fn answering_role(setup: Setup) -> RTCDtlsRole {
    match setup {
        Setup::Passive => RTCDtlsRole::Client,
        Setup::Active | Setup::ActPass => RTCDtlsRole::Server,
    }
}

/// The first codec per kind that the offer lists and we forward, in the
/// offer's preference order, with the offer's payload type and fmtp.
fn choose_codecs(offer: &RTCSessionDescription) -> Result<Vec<Negotiated>, SignalError> {
    offered_codecs(offer, true)
}

/// The codecs the offer lists that we forward (all of them, or only the
/// first per kind), in the offer's order, with its payload types and
/// fmtp. Only the first media section of each kind counts.
fn offered_codecs(
    offer: &RTCSessionDescription,
    first_only: bool,
) -> Result<Vec<Negotiated>, SignalError> {
    let parsed = offer.unmarshal().map_err(bad_sdp)?;
    let mut chosen: Vec<Negotiated> = Vec::new();
    let mut seen: Vec<MediaKind> = Vec::new();
    for m in &parsed.media_descriptions {
        let kind = match m.media_name.media.as_str() {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            _ => continue,
        };
        if seen.contains(&kind) {
            continue;
        }
        seen.push(kind);
        let attr = |key: &str, pt: &str| {
            m.attributes
                .iter()
                .filter(|a| a.key == key)
                .filter_map(|a| a.value.as_deref())
                .find_map(|v| v.strip_prefix(pt).and_then(|rest| rest.strip_prefix(' ')))
                .map(str::to_string)
        };
        for fmt in &m.media_name.formats {
            let Ok(pt) = fmt.parse::<u8>() else { continue };
            let Some(rtpmap) = attr("rtpmap", fmt) else {
                continue;
            };
            let mut parts = rtpmap.split('/');
            let name = parts.next().unwrap_or_default();
            let clock_rate = parts.next().and_then(|c| c.parse().ok()).unwrap_or(90_000);
            let channels = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            let mime = match kind {
                MediaKind::Audio => format!("audio/{name}"),
                MediaKind::Video => format!("video/{name}"),
            };
            if !is_media_codec(&mime) || codec_of(&mime) == Codec::Opus && kind != MediaKind::Audio
            {
                continue;
            }
            let fmtp = attr("fmtp", fmt).unwrap_or_default();
            // H.264 must be packetization-mode 1 (FU-A), which is what we parse.
            if codec_of(&mime) == Codec::H264 && !fmtp.contains("packetization-mode=1") {
                continue;
            }
            chosen.push(Negotiated {
                kind,
                codec: RTCRtpCodec {
                    mime_type: mime,
                    clock_rate,
                    channels,
                    sdp_fmtp_line: fmtp,
                    rtcp_feedback: Vec::new(),
                },
                payload_type: pt,
            });
            if first_only {
                break;
            }
        }
    }
    Ok(chosen)
}

fn register(engine: &mut MediaEngine, n: &Negotiated, twcc: bool) -> Result<(), SignalError> {
    let (kind, mut feedback) = match n.kind {
        MediaKind::Audio => (RtpCodecKind::Audio, vec![]),
        MediaKind::Video => (RtpCodecKind::Video, video_feedback()),
    };
    if twcc {
        // Players: transport-cc for our send-side estimate; goog-remb for
        // players that only estimate on their side (aiortc).
        for typ in ["transport-cc", "goog-remb"] {
            feedback.push(RTCPFeedback {
                typ: typ.to_string(),
                parameter: String::new(),
            });
        }
    }
    let mut codec = n.codec.clone();
    codec.rtcp_feedback = feedback;
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: codec,
                payload_type: n.payload_type,
            },
            kind,
        )
        .map_err(bad_sdp)
}

/// A publisher connection: answer its offer with one codec per kind, the
/// first one the offer prefers among those we forward.
pub fn publisher(
    offer_sdp: &str,
    ufrag: &str,
    pwd: &str,
    candidates: &CandidateAddrs,
    now: Instant,
) -> Result<(RTCPeerConnection, String, Vec<Negotiated>), SignalError> {
    let (offer, role) = parse_offer(offer_sdp)?;
    if offered_kinds(&offer)?.is_empty() {
        return Err(bad_sdp("no audio or video section"));
    }
    let negotiated = choose_codecs(&offer)?;
    if negotiated.is_empty() {
        return Err(bad_sdp(
            "no supported codec (Opus, VP8, VP9, H.264 packetization-mode 1, AV1) in the offer",
        ));
    }
    let mut engine = MediaEngine::default();
    for n in &negotiated {
        register(&mut engine, n, false)?;
    }
    let av1 = negotiated
        .iter()
        .any(|n| n.kind == MediaKind::Video && codec_of(&n.codec.mime_type) == Codec::Av1);
    register_exts(&mut engine, false, av1).map_err(bad_sdp)?;
    let registry = register_default_interceptors(Registry::new(), &mut engine).map_err(bad_sdp)?;
    let mut pc = build(engine, registry, role, ufrag, pwd, candidates, now).map_err(bad_sdp)?;
    pc.set_remote_description(now, offer).map_err(bad_sdp)?;
    add_candidates(&mut pc, candidates).map_err(bad_sdp)?;
    let sdp = answer(&mut pc, now, offer_sdp)?;
    Ok((pc, sdp, negotiated))
}

/// A player connection for a stream whose publisher (if there is one yet)
/// negotiated `publishing`: one sending leg per kind the offer receives,
/// accepting every codec of ours the offer lists (the publisher's first),
/// so that any later publisher of the stream ID can be forwarded.
pub fn player(
    offer_sdp: &str,
    stream_id: &str,
    publishing: &[Negotiated],
    ufrag: &str,
    pwd: &str,
    candidates: &CandidateAddrs,
    now: Instant,
) -> Result<(RTCPeerConnection, String, Vec<Leg>), SignalError> {
    let (offer, role) = parse_offer(offer_sdp)?;
    let mut offered = offered_codecs(&offer, false)?;
    // The publisher's codecs first: its leg starts with that payload type.
    let live = |n: &Negotiated| {
        let c = codec_of(&n.codec.mime_type);
        publishing.iter().any(|p| {
            codec_of(&p.codec.mime_type) == c
                && codec_match::accepts(
                    c,
                    codec_profile(c, &n.codec.sdp_fmtp_line),
                    codec_profile(c, &p.codec.sdp_fmtp_line),
                )
        })
    };
    // A live publisher's kind that the offer receives but cannot take in
    // any codec line would play black (or silent): refuse the play.
    for p in publishing {
        let c = codec_of(&p.codec.mime_type);
        let receives = offered_kinds(&offer)?.contains(&p.kind);
        if receives && !offered.iter().any(|n| n.kind == p.kind && live(n)) {
            let key = codec_profile(c, &p.codec.sdp_fmtp_line);
            return Err(bad_sdp(format!(
                "the offer cannot receive the stream's {} ({})",
                format!("{:?}", p.kind).to_lowercase(),
                codec_match::describe(c, key)
            )));
        }
    }
    offered.sort_by_key(|n| !live(n));
    let mut kinds: Vec<MediaKind> = Vec::new();
    let mut engine = MediaEngine::default();
    for n in &offered {
        register(&mut engine, n, true)?;
        if !kinds.contains(&n.kind) {
            kinds.push(n.kind);
        }
    }
    if kinds.is_empty() {
        return Err(bad_sdp(
            "the offer receives no codec we forward (Opus, VP8, VP9, H.264 packetization-mode 1, AV1)",
        ));
    }
    register_exts(&mut engine, true, true).map_err(bad_sdp)?;
    // A player only sends RTP: it needs its feedback delivered, and sender
    // reports (lip sync, RTT), which the worker makes itself
    // (`sender_report.rs`) since the fast path's RTP never passes through
    // `rtc`; no receiver reports — every interceptor on the chain costs two
    // moves of each outgoing packet.
    let registry = Registry::new().with(Slot::from(14_000), DeliverFeedback::default());
    let mut pc = build(engine, registry, role, ufrag, pwd, candidates, now).map_err(bad_sdp)?;
    let mut senders = Vec::new();
    for kind in kinds {
        let Some(first) = offered.iter().find(|n| n.kind == kind) else {
            continue;
        };
        let rtc_kind = match kind {
            MediaKind::Audio => RtpCodecKind::Audio,
            MediaKind::Video => RtpCodecKind::Video,
        };
        let ssrc = loop {
            let s: u32 = rand::random();
            if s != 0 && !senders.iter().any(|(_, _, _, x, _)| *x == s) {
                break s;
            }
        };
        let track_id = format!("{stream_id}-{kind:?}").to_lowercase();
        let track = MediaStreamTrack::new(
            stream_id.to_string(),
            track_id.clone(),
            format!("{stream_id} {kind:?}"),
            rtc_kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: first.codec.clone(),
                ..Default::default()
            }],
        );
        let sender_id = pc.add_track(track).map_err(bad_sdp)?;
        senders.push((kind, sender_id, track_id, ssrc, first.codec.clock_rate));
    }
    pc.set_remote_description(now, offer).map_err(bad_sdp)?;
    add_candidates(&mut pc, candidates).map_err(bad_sdp)?;
    let sdp = answer(&mut pc, now, offer_sdp)?;
    let mut legs = Vec::new();
    for (kind, sender_id, track_id, ssrc, clock_rate) in senders {
        let Some(mut sender) = pc.rtp_sender(sender_id) else {
            continue;
        };
        let params = sender.get_parameters();
        let codecs: Vec<LegCodec> = params
            .rtp_parameters
            .codecs
            .iter()
            .filter_map(|c| {
                let codec = codec_of(&c.rtp_codec.mime_type);
                (codec != Codec::Other).then(|| LegCodec {
                    codec,
                    profile: codec_profile(codec, &c.rtp_codec.sdp_fmtp_line),
                    payload_type: c.payload_type,
                })
            })
            .collect();
        let Some(pt) = codecs.first().map(|c| c.payload_type) else {
            continue;
        };
        let extensions = ExtMap::from_uris(
            params
                .rtp_parameters
                .header_extensions
                .iter()
                .filter_map(|h| u8::try_from(h.id).ok().map(|id| (id, h.uri.as_str()))),
        );
        legs.push(Leg {
            kind,
            sender_id,
            track_id,
            ssrc,
            payload_type: pt,
            clock_rate,
            extensions,
            codecs,
        });
    }
    if legs.is_empty() {
        return Err(bad_sdp("no codec in common with the offer"));
    }
    Ok((pc, sdp, legs))
}

/// The publisher leg's extension IDs for `kind` (to map incoming extensions).
pub fn receiver_extensions(
    pc: &mut RTCPeerConnection,
    receiver_id: rtc::rtp_transceiver::RTCRtpReceiverId,
) -> ExtMap {
    match pc.rtp_receiver(receiver_id) {
        Some(mut r) => ExtMap::from_uris(
            r.get_parameters()
                .rtp_parameters
                .header_extensions
                .iter()
                .filter_map(|h| u8::try_from(h.id).ok().map(|id| (id, h.uri.as_str()))),
        ),
        None => ExtMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn candidates() -> CandidateAddrs {
        CandidateAddrs {
            addrs: vec![SocketAddr::from(([127, 0, 0, 1], 7882))],
            tcp_port: None,
            ice_disconnected: Duration::from_secs(15),
            ice_failed: Duration::from_secs(30),
            crypto: None,
            srtp_profiles: Vec::new(),
        }
    }

    #[test]
    fn answers_must_answer_every_section_and_accept_one() {
        let offer = "v=0\r\nm=audio 9 X 0\r\nm=video 9 X 96\r\n";
        let one = "v=0\r\nm=audio 9 X 0\r\n";
        assert!(check_answer(offer, one).is_err());
        let none = "v=0\r\nm=audio 0 X 0\r\nm=video 0 X 96\r\n";
        assert!(check_answer(offer, none).is_err());
        let ok = "v=0\r\nm=audio 0 X 0\r\nm=video 9 X 96\r\n";
        assert!(check_answer(offer, ok).is_ok());
    }

    fn crlf(sdp: &str) -> String {
        sdp.lines().map(|l| format!("{l}\r\n")).collect()
    }

    /// The answer check refuses none of the real offers, a data channel
    /// section included (it is answered, rejected or not).
    #[test]
    fn real_offers_are_still_answered() {
        let (u, p, c) = (
            "testUfrag0000001",
            "testPassword00000000000000000001",
            candidates(),
        );
        for sdp in [
            include_str!("fixtures/chromium_publish.sdp"),
            include_str!("fixtures/firefox_publish.sdp"),
            include_str!("fixtures/aiortc_publish.sdp"),
            include_str!("fixtures/ffmpeg_whip.sdp"),
            include_str!("fixtures/gstreamer_whip.sdp"),
            include_str!("fixtures/rtc_client_publish.sdp"),
        ] {
            if let Err(e) = publisher(&crlf(sdp), u, p, &c, Instant::now()) {
                panic!("{e:?}\n{sdp}");
            }
        }
        let play = include_str!("fixtures/chromium_play.sdp");
        let data_channel = "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\n\
            c=IN IP4 0.0.0.0\na=ice-ufrag:w9Zq\na=ice-pwd:Hh3k8Lm2Pq7Rs1Tv6Wx0Yz4B\n\
            a=fingerprint:sha-256 0E:93:7A:C1:54:28:BF:66:D3:19:A0:4E:87:F2:3B:C5:6D:10:E9:72:A8:35:CB:04:5F:96:21:DE:8B:47:F0:1A\n\
            a=setup:actpass\na=mid:2\na=sctp-port:5000\na=max-message-size:262144\n";
        let with_dc = play.replace("BUNDLE 0 1", "BUNDLE 0 1 2") + data_channel;
        for sdp in [play.to_string(), with_dc] {
            if let Err(e) = player(&crlf(&sdp), "s", &[], u, p, &c, Instant::now()) {
                panic!("{e:?}\n{sdp}");
            }
        }
    }

    /// A publisher's answer accepts AV1's dependency descriptor only when
    /// the video it takes is AV1 (with it negotiated, Chromium moves a VP8
    /// publish's temporal layer indices out of the VP8 descriptor); a
    /// player's always does.
    #[test]
    fn the_dependency_descriptor_is_negotiated_for_av1_publishers_and_players() {
        let (u, p, c) = (
            "testUfrag0000001",
            "testPassword00000000000000000001",
            candidates(),
        );
        let offer = crlf(include_str!("fixtures/chromium_publish.sdp")).replace(
            "a=extmap:13 urn:3gpp:video-orientation\r\n",
            &format!("a=extmap:13 urn:3gpp:video-orientation\r\na=extmap:12 {DD_EXT}\r\n"),
        );
        assert!(offer.contains(DD_EXT));
        let answer = |sdp: &str| publisher(sdp, u, p, &c, Instant::now()).map(|(_, a, _)| a);
        let vp8 = answer(&offer).expect("VP8 answer");
        assert!(vp8.contains("VP8/90000") && !vp8.contains(DD_EXT), "{vp8}");
        let av1_first = offer.replace("UDP/TLS/RTP/SAVPF 96 97 ", "UDP/TLS/RTP/SAVPF 45 96 97 ");
        let av1 = answer(&av1_first).expect("AV1 answer");
        assert!(av1.contains("AV1/90000"), "{av1}");
        assert!(av1.contains(&format!("a=extmap:12 {DD_EXT}")), "{av1}");

        let play = crlf(include_str!("fixtures/chromium_play.sdp"));
        let play = play.replacen(
            "a=extmap:13 urn:3gpp:video-orientation\r\n",
            &format!("a=extmap:13 urn:3gpp:video-orientation\r\na=extmap:12 {DD_EXT}\r\n"),
            1,
        );
        let (_, played, _) = player(&play, "s", &[], u, p, &c, Instant::now()).expect("play");
        assert!(
            played.contains(&format!("a=extmap:12 {DD_EXT}")),
            "{played}"
        );
    }

    /// Found by `fuzz/` (`sdp_offer`): `rtc` answered this play offer (its
    /// audio section lists only an unknown codec) without its video
    /// section, and with no ICE credentials; it is now refused.
    #[test]
    fn fuzz_play_offer_answered_without_a_section_is_refused() {
        let offer = include_str!("fixtures/fuzz_player_dropped_section.sdp");
        let r = player(
            offer,
            "s",
            &[],
            "fuzzUfrag0000001",
            "fuzzPassword00000000000000000001",
            &candidates(),
            Instant::now(),
        );
        let err = r.map(|(_, sdp, _)| sdp).expect_err("refused");
        assert_eq!(err.code, code::BAD_SDP, "{err:?}");
    }
}
