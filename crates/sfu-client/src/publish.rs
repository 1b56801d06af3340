//! Publishing a stream: `startPublishingStream` plus a send-only peer
//! connection whose RTP the caller writes packet by packet.
//!
//! Each published kind gets a `TrackLocalStaticRTP` with a random SSRC.
//! [`Publisher::write_rtp`] stamps the track's SSRC and negotiated payload
//! type on the packet and leaves everything else (sequence number,
//! timestamp, marker, payload) exactly as given. PLI, FIR and NACK from the
//! server are counted and queued as [`FeedbackEvent`]s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState};
use webrtc::rtp_transceiver::RtpSender;

use crate::codecs::{self, MediaKind, VideoCodec};
use crate::error::{ClientError, Result};
use crate::peer;
use crate::signal::Client;

/// What to publish: an optional video track and an optional Opus track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishTracks {
    /// The video codec, or `None` for audio only.
    pub video: Option<VideoCodec>,
    /// Publish an Opus track.
    pub audio: bool,
}

impl PublishTracks {
    /// VP8 video and Opus audio.
    pub fn vp8_opus() -> Self {
        PublishTracks {
            video: Some(VideoCodec::Vp8),
            audio: true,
        }
    }
}

/// Feedback the server sent about a published track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feedback {
    /// Picture loss indication: send a keyframe.
    Pli,
    /// Full intra request: send a keyframe.
    Fir,
    /// Negative acknowledgement of these sequence numbers (the NACK
    /// responder has already retransmitted what it still had).
    Nack(Vec<u16>),
}

/// One [`Feedback`] with the track it is about and when it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackEvent {
    /// The track the feedback is about.
    pub kind: MediaKind,
    /// What the server asked for.
    pub feedback: Feedback,
    /// When it reached the client.
    pub at: Instant,
}

#[derive(Default)]
struct Counters {
    plis: AtomicU64,
    firs: AtomicU64,
    nacked: AtomicU64,
    packets: [AtomicU64; 2],
    bytes: [AtomicU64; 2],
}

struct LocalTrack {
    track: Arc<TrackLocalStaticRTP>,
    sender: Arc<dyn RtpSender>,
    ssrc: u32,
    mime: String,
    payload_type: u8,
}

/// A published stream. Dropping it without [`Publisher::stop`] stops it in
/// the background.
pub struct Publisher {
    client: Client,
    stream_id: String,
    pc: Arc<dyn PeerConnection>,
    tracks: [Option<LocalTrack>; 2],
    counters: Arc<Counters>,
    feedback: mpsc::UnboundedReceiver<FeedbackEvent>,
    state: watch::Receiver<RTCPeerConnectionState>,
    connect_time: Duration,
    stopped: bool,
}

impl Client {
    /// Publish `stream_id` in `room_id` (required in multi-room mode) with
    /// `tracks`; resolves once the peer connection is connected.
    pub async fn publish(
        &self,
        stream_id: &str,
        room_id: Option<&str>,
        tracks: PublishTracks,
    ) -> Result<Publisher> {
        self.publish_with(stream_id, room_id, tracks, None).await
    }

    /// [`Client::publish`] with the stream's initial `extraInfo`.
    pub async fn publish_with(
        &self,
        stream_id: &str,
        room_id: Option<&str>,
        tracks: PublishTracks,
        extra_info: Option<&str>,
    ) -> Result<Publisher> {
        self.publish_inner(stream_id, room_id, tracks, extra_info, None)
            .await
    }

    /// [`Client::publish`], sending media to `server_addr` instead of the
    /// server's candidate (a test proxy in front of the server, for
    /// instance), like [`crate::PlayOptions::server_addr`] for a player.
    pub async fn publish_via(
        &self,
        stream_id: &str,
        room_id: Option<&str>,
        tracks: PublishTracks,
        server_addr: std::net::SocketAddr,
    ) -> Result<Publisher> {
        self.publish_inner(stream_id, room_id, tracks, None, Some(server_addr))
            .await
    }

    async fn publish_inner(
        &self,
        stream_id: &str,
        room_id: Option<&str>,
        tracks: PublishTracks,
        extra_info: Option<&str>,
        server_addr: Option<std::net::SocketAddr>,
    ) -> Result<Publisher> {
        if tracks.video.is_none() && !tracks.audio {
            return Err(ClientError::Invalid(
                "publish needs at least one track".into(),
            ));
        }
        let started = Instant::now();
        let video = tracks.video.map(VideoCodec::parameters);
        let engine = codecs::media_engine(tracks.audio, video.as_slice())?;
        let interceptors = peer::Interceptors {
            nack: true,
            tap: true,
        };
        let (pc, mut events) = peer::build(engine, interceptors).await?;

        let mut locals: [Option<LocalTrack>; 2] = [None, None];
        let wanted = [
            (MediaKind::Audio, tracks.audio.then(codecs::opus)),
            (MediaKind::Video, video),
        ];
        for (kind, params) in wanted {
            let Some(params) = params else { continue };
            let ssrc = peer::random_ssrc();
            let encoding = RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: params.rtp_codec.clone(),
                ..Default::default()
            };
            let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                stream_id.to_owned(),
                format!("{stream_id}-{kind}"),
                format!("{stream_id} {kind}"),
                kind.rtc(),
                vec![encoding],
            )));
            let init = RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                streams: vec![stream_id.to_owned()],
                send_encodings: vec![],
            };
            let transceiver = pc
                .add_transceiver_from_track(track.clone(), Some(init))
                .await
                .map_err(|e| ClientError::webrtc(&format!("adding the {kind} track"), e))?;
            let sender = transceiver
                .sender()
                .await
                .map_err(|e| ClientError::webrtc("reading the sender", e))?
                .ok_or_else(|| ClientError::WebRtc(format!("{kind} transceiver has no sender")))?;
            locals[kind.index()] = Some(LocalTrack {
                track,
                sender,
                ssrc,
                mime: params.rtp_codec.mime_type.clone(),
                payload_type: params.payload_type,
            });
        }

        let offer = peer::offer(&pc, &mut events).await?;
        let mut fields = json!({ "streamID": stream_id, "sdp": offer });
        if let Some(room) = room_id {
            fields["roomID"] = json!(room);
        }
        if let Some(extra) = extra_info {
            fields["extraInfo"] = json!(extra);
        }
        let res = match self.request("startPublishingStream", fields).await {
            Ok(res) => res,
            Err(e) => {
                let _ = pc.close().await;
                return Err(e);
            }
        };
        let negotiated = async {
            let mut answer = peer::answer_sdp(&res)?;
            if let Some(addr) = server_addr {
                answer = peer::redirect_candidates(&answer, addr);
            }
            peer::apply_answer(&pc, answer).await?;
            peer::wait_connected(&mut events, self.options().media_timeout).await
        };
        if let Err(e) = negotiated.await {
            let _ = self
                .request("stopPublishingStream", json!({ "streamID": stream_id }))
                .await;
            let _ = pc.close().await;
            return Err(e);
        }
        let connect_time = started.elapsed();

        let counters = Arc::new(Counters::default());
        let (feedback_tx, feedback) = mpsc::unbounded_channel();
        for (i, local) in locals.iter_mut().enumerate() {
            let Some(local) = local else { continue };
            let kind = if i == 0 {
                MediaKind::Audio
            } else {
                MediaKind::Video
            };
            local.payload_type = negotiated_pt(local).await.unwrap_or(local.payload_type);
            tokio::spawn(read_feedback(
                kind,
                local.track.clone(),
                counters.clone(),
                feedback_tx.clone(),
            ));
        }
        Ok(Publisher {
            client: self.clone(),
            stream_id: stream_id.to_owned(),
            pc,
            tracks: locals,
            counters,
            feedback,
            state: events.state,
            connect_time,
            stopped: false,
        })
    }
}

/// The payload type the answer settled on for the track's codec.
async fn negotiated_pt(local: &LocalTrack) -> Option<u8> {
    let params = local.sender.get_parameters().await.ok()?;
    let codecs = &params.rtp_parameters.codecs;
    codecs
        .iter()
        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(&local.mime))
        .or_else(|| codecs.first())
        .map(|c| c.payload_type)
}

/// Turn the RTCP the tap delivers for one track into feedback events.
async fn read_feedback(
    kind: MediaKind,
    track: Arc<TrackLocalStaticRTP>,
    counters: Arc<Counters>,
    tx: mpsc::UnboundedSender<FeedbackEvent>,
) {
    while let Some(event) = track.poll().await {
        let TrackLocalEvent::OnRtcpPacket(packets) = event else {
            continue;
        };
        let at = Instant::now();
        for packet in packets {
            let any = packet.as_any();
            let feedback = if any.is::<PictureLossIndication>() {
                counters.plis.fetch_add(1, Ordering::Relaxed);
                Feedback::Pli
            } else if any.is::<FullIntraRequest>() {
                counters.firs.fetch_add(1, Ordering::Relaxed);
                Feedback::Fir
            } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                let seqs: Vec<u16> = nack.nacks.iter().flat_map(|p| p.packet_list()).collect();
                counters
                    .nacked
                    .fetch_add(seqs.len() as u64, Ordering::Relaxed);
                Feedback::Nack(seqs)
            } else {
                continue;
            };
            let _ = tx.send(FeedbackEvent { kind, feedback, at });
        }
    }
}

impl Publisher {
    /// The published stream ID.
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    /// Time from the start of `publish` to the peer connection connecting.
    pub fn connect_time(&self) -> Duration {
        self.connect_time
    }

    /// Whether the peer connection is (still) connected.
    pub fn is_connected(&self) -> bool {
        *self.state.borrow() == RTCPeerConnectionState::Connected
    }

    fn local(&self, kind: MediaKind) -> Result<&LocalTrack> {
        self.tracks[kind.index()]
            .as_ref()
            .ok_or_else(|| ClientError::Invalid(format!("no {kind} track was published")))
    }

    /// The SSRC of the `kind` track, if published.
    pub fn ssrc(&self, kind: MediaKind) -> Option<u32> {
        self.local(kind).ok().map(|t| t.ssrc)
    }

    /// The negotiated payload type of the `kind` track, if published.
    pub fn payload_type(&self, kind: MediaKind) -> Option<u8> {
        self.local(kind).ok().map(|t| t.payload_type)
    }

    /// Send one RTP packet on the `kind` track. SSRC and payload type are
    /// overwritten with the track's; the rest goes out as given.
    pub async fn write_rtp(&self, kind: MediaKind, mut packet: rtp::Packet) -> Result<()> {
        let local = self.local(kind)?;
        packet.header.ssrc = local.ssrc;
        packet.header.payload_type = local.payload_type;
        let bytes = packet.payload.len() as u64;
        local
            .track
            .write_rtp(packet)
            .await
            .map_err(|e| ClientError::webrtc(&format!("writing {kind} RTP"), e))?;
        self.counters.packets[kind.index()].fetch_add(1, Ordering::Relaxed);
        self.counters.bytes[kind.index()].fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }

    /// RTP packets written on the `kind` track.
    pub fn packets_sent(&self, kind: MediaKind) -> u64 {
        self.counters.packets[kind.index()].load(Ordering::Relaxed)
    }

    /// RTP payload bytes written on the `kind` track.
    pub fn bytes_sent(&self, kind: MediaKind) -> u64 {
        self.counters.bytes[kind.index()].load(Ordering::Relaxed)
    }

    /// PLIs received so far.
    pub fn pli_count(&self) -> u64 {
        self.counters.plis.load(Ordering::Relaxed)
    }

    /// FIRs received so far.
    pub fn fir_count(&self) -> u64 {
        self.counters.firs.load(Ordering::Relaxed)
    }

    /// PLIs plus FIRs received so far.
    pub fn keyframe_requests(&self) -> u64 {
        self.pli_count() + self.fir_count()
    }

    /// Sequence numbers NACKed so far (summed over NACK packets).
    pub fn nacked_count(&self) -> u64 {
        self.counters.nacked.load(Ordering::Relaxed)
    }

    /// The next feedback event; `None` once the connection is gone.
    pub async fn next_feedback(&mut self) -> Option<FeedbackEvent> {
        self.feedback.recv().await
    }

    /// Wait up to `limit` for the next PLI or FIR (other feedback on the way
    /// is consumed).
    pub async fn wait_keyframe_request(&mut self, limit: Duration) -> Result<FeedbackEvent> {
        let wait = async {
            while let Some(ev) = self.feedback.recv().await {
                if matches!(ev.feedback, Feedback::Pli | Feedback::Fir) {
                    return Some(ev);
                }
            }
            None
        };
        match tokio::time::timeout(limit, wait).await {
            Ok(Some(ev)) => Ok(ev),
            Ok(None) => Err(ClientError::WebRtc("peer connection closed".into())),
            Err(_) => Err(ClientError::Timeout(limit, "a keyframe request")),
        }
    }

    /// `stopPublishingStream`, then close the peer connection.
    pub async fn stop(mut self) -> Result<()> {
        self.stopped = true;
        peer::stop(
            &self.client,
            "stopPublishingStream",
            &self.stream_id,
            &self.pc,
        )
        .await
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if !self.stopped {
            let stream_id = std::mem::take(&mut self.stream_id);
            peer::stop_in_background(&self.client, "stopPublishingStream", stream_id, &self.pc);
        }
    }
}
