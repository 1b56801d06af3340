//! Playing a stream: `startPlayingStream` plus a receive-only peer
//! connection (one audio and one video transceiver, offering Opus, VP8, VP9
//! and H.264 by default) that hands every RTP packet to the caller.
//!
//! Each remote track gets a reader task that stamps packets with their
//! arrival [`Instant`] and counts them; [`Player::recv`] yields them in
//! arrival order. [`Player::send_pli`] and [`Player::send_nack`] send
//! feedback upstream, for tests of the server's keyframe and retransmission
//! paths.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    nack_pairs_from_sequence_numbers, TransportLayerNack,
};
use rtc::rtp;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState};

use crate::codecs::{self, MediaKind, VideoCodec};
use crate::error::{ClientError, Result};
use crate::peer;
use crate::signal::Client;

/// How a [`Player`] negotiates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayOptions {
    /// Video codecs offered, in preference order; empty: no video
    /// transceiver. Default: VP8, VP9, H.264.
    pub video_codecs: Vec<VideoCodec>,
    /// Offer an Opus transceiver. Default: true.
    pub audio: bool,
    /// Let `rtc`'s NACK generator request lost packets by itself. Turn it
    /// off when a test sends every NACK with [`Player::send_nack`].
    /// Default: true.
    pub auto_nack: bool,
    /// Send media to this address instead of the server's candidate (a
    /// test proxy in front of the server, for instance). Default: none.
    pub server_addr: Option<std::net::SocketAddr>,
}

impl Default for PlayOptions {
    fn default() -> Self {
        PlayOptions {
            video_codecs: vec![VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264],
            audio: true,
            auto_nack: true,
            server_addr: None,
        }
    }
}

/// One RTP packet received by a [`Player`].
#[derive(Debug, Clone)]
pub struct Received {
    /// The track it arrived on.
    pub kind: MediaKind,
    /// The packet as decrypted (header and payload).
    pub packet: rtp::Packet,
    /// When the client's reader saw it.
    pub at: Instant,
}

#[derive(Default)]
struct Remote {
    track: Option<Arc<dyn TrackRemote>>,
    mime: Option<String>,
}

/// State shared with the reader tasks.
#[derive(Default)]
struct Shared {
    remotes: Mutex<[Remote; 2]>,
    /// Last SSRC seen per kind (0 = none yet).
    ssrcs: [AtomicU32; 2],
    packets: [AtomicU64; 2],
    bytes: [AtomicU64; 2],
}

impl Shared {
    fn remotes(&self) -> std::sync::MutexGuard<'_, [Remote; 2]> {
        self.remotes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A played stream. Dropping it without [`Player::stop`] stops it in the
/// background.
pub struct Player {
    client: Client,
    stream_id: String,
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Received>,
    state: watch::Receiver<RTCPeerConnectionState>,
    /// SSRC this player names as the sender of its feedback.
    feedback_ssrc: u32,
    connect_time: Duration,
    stopped: bool,
}

impl Client {
    /// Play `stream_id` with the default [`PlayOptions`]; resolves once the
    /// peer connection is connected (packets may arrive before or after).
    pub async fn play(&self, stream_id: &str) -> Result<Player> {
        self.play_with(stream_id, PlayOptions::default()).await
    }

    /// Play `stream_id` with explicit options.
    pub async fn play_with(&self, stream_id: &str, options: PlayOptions) -> Result<Player> {
        let started = Instant::now();
        let video: Vec<_> = options
            .video_codecs
            .iter()
            .map(|c| c.parameters())
            .collect();
        if video.is_empty() && !options.audio {
            return Err(ClientError::Invalid("play needs audio or video".into()));
        }
        let engine = codecs::media_engine(options.audio, &video)?;
        let interceptors = peer::Interceptors {
            nack: options.auto_nack,
            tap: false,
        };
        let (pc, mut events) = peer::build(engine, interceptors).await?;
        let kinds = [
            (MediaKind::Audio, options.audio),
            (MediaKind::Video, !video.is_empty()),
        ];
        for kind in kinds.into_iter().filter_map(|(k, on)| on.then_some(k)) {
            let init = RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                streams: vec![],
                send_encodings: vec![],
            };
            pc.add_transceiver_from_kind(kind.rtc(), Some(init))
                .await
                .map_err(|e| ClientError::webrtc(&format!("adding the {kind} transceiver"), e))?;
        }

        // Readers start before the answer is applied: a track may open as
        // soon as the connection does.
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::unbounded_channel();
        let mut tracks = std::mem::replace(&mut events.tracks, mpsc::unbounded_channel().1);
        let dispatch_shared = shared.clone();
        tokio::spawn(async move {
            while let Some(track) = tracks.recv().await {
                tokio::spawn(read_track(track, dispatch_shared.clone(), tx.clone()));
            }
        });

        let offer = peer::offer(&pc, &mut events).await?;
        let res = match self
            .request(
                "startPlayingStream",
                json!({ "streamID": stream_id, "sdp": offer }),
            )
            .await
        {
            Ok(res) => res,
            Err(e) => {
                let _ = pc.close().await;
                return Err(e);
            }
        };
        let negotiated = async {
            let mut answer = peer::answer_sdp(&res)?;
            if let Some(addr) = options.server_addr {
                answer = peer::redirect_candidates(&answer, addr);
            }
            peer::apply_answer(&pc, answer).await?;
            peer::wait_connected(&mut events, self.options().media_timeout).await
        };
        if let Err(e) = negotiated.await {
            let _ = self
                .request("stopPlayingStream", json!({ "streamID": stream_id }))
                .await;
            let _ = pc.close().await;
            return Err(e);
        }
        Ok(Player {
            client: self.clone(),
            stream_id: stream_id.to_owned(),
            pc,
            shared,
            rx,
            state: events.state,
            feedback_ssrc: peer::random_ssrc(),
            connect_time: started.elapsed(),
            stopped: false,
        })
    }
}

/// Forward one remote track's packets until it ends.
async fn read_track(
    track: Arc<dyn TrackRemote>,
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Received>,
) {
    let Some(kind) = MediaKind::from_rtc(track.kind().await) else {
        tracing::warn!("ignoring a remote track of unknown kind");
        return;
    };
    let i = kind.index();
    shared.remotes()[i].track = Some(track.clone());
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                let at = Instant::now();
                let ssrc = packet.header.ssrc;
                if shared.ssrcs[i].swap(ssrc, Ordering::Relaxed) != ssrc {
                    let mime = track.codec(ssrc).await.map(|c| c.mime_type);
                    shared.remotes()[i].mime = mime;
                }
                shared.packets[i].fetch_add(1, Ordering::Relaxed);
                shared.bytes[i].fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
                let _ = tx.send(Received { kind, packet, at });
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}

impl Player {
    /// The played stream ID.
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    /// Time from the start of `play` to the peer connection connecting.
    pub fn connect_time(&self) -> Duration {
        self.connect_time
    }

    /// Whether the peer connection is (still) connected.
    pub fn is_connected(&self) -> bool {
        *self.state.borrow() == RTCPeerConnectionState::Connected
    }

    /// The next received packet; `None` once the connection is gone and
    /// every packet has been read.
    pub async fn recv(&mut self) -> Option<Received> {
        self.rx.recv().await
    }

    /// [`Player::recv`] with a deadline; `None` on timeout too.
    pub async fn recv_timeout(&mut self, limit: Duration) -> Option<Received> {
        tokio::time::timeout(limit, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// A packet already received, without waiting.
    pub fn try_recv(&mut self) -> Option<Received> {
        self.rx.try_recv().ok()
    }

    /// RTP packets received on the `kind` track.
    pub fn packets(&self, kind: MediaKind) -> u64 {
        self.shared.packets[kind.index()].load(Ordering::Relaxed)
    }

    /// RTP payload bytes received on the `kind` track.
    pub fn bytes(&self, kind: MediaKind) -> u64 {
        self.shared.bytes[kind.index()].load(Ordering::Relaxed)
    }

    /// The SSRC of the latest packet on the `kind` track.
    pub fn ssrc(&self, kind: MediaKind) -> Option<u32> {
        match self.shared.ssrcs[kind.index()].load(Ordering::Relaxed) {
            0 => None,
            ssrc => Some(ssrc),
        }
    }

    /// The MIME type of the `kind` track's codec (e.g. `video/VP8`), once
    /// a packet has arrived.
    pub fn codec(&self, kind: MediaKind) -> Option<String> {
        self.shared.remotes()[kind.index()].mime.clone()
    }

    fn target(&self, kind: MediaKind) -> Result<(Arc<dyn TrackRemote>, u32)> {
        let track = self.shared.remotes()[kind.index()].track.clone();
        match (track, self.ssrc(kind)) {
            (Some(track), Some(ssrc)) => Ok((track, ssrc)),
            _ => Err(ClientError::Invalid(format!(
                "no {kind} packet received yet"
            ))),
        }
    }

    /// Ask the server for a video keyframe.
    pub async fn send_pli(&self) -> Result<()> {
        let (track, media_ssrc) = self.target(MediaKind::Video)?;
        let pli = PictureLossIndication {
            sender_ssrc: self.feedback_ssrc,
            media_ssrc,
        };
        track
            .write_rtcp(vec![Box::new(pli)])
            .await
            .map_err(|e| ClientError::webrtc("sending PLI", e))
    }

    /// Ask the server to retransmit `seqs` of the `kind` track.
    pub async fn send_nack(&self, kind: MediaKind, seqs: &[u16]) -> Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        let (track, media_ssrc) = self.target(kind)?;
        let nack = TransportLayerNack {
            sender_ssrc: self.feedback_ssrc,
            media_ssrc,
            nacks: nack_pairs_from_sequence_numbers(seqs),
        };
        track
            .write_rtcp(vec![Box::new(nack)])
            .await
            .map_err(|e| ClientError::webrtc("sending NACK", e))
    }

    /// `stopPlayingStream`, then close the peer connection.
    pub async fn stop(mut self) -> Result<()> {
        self.stopped = true;
        peer::stop(&self.client, "stopPlayingStream", &self.stream_id, &self.pc).await
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        if !self.stopped {
            let stream_id = std::mem::take(&mut self.stream_id);
            peer::stop_in_background(&self.client, "stopPlayingStream", stream_id, &self.pc);
        }
    }
}
