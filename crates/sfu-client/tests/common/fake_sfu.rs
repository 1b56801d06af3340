//! A minimal stand-in for the SFU's media ops, for testing the client's
//! publish and play without the real server: a WebSocket endpoint that
//! answers `startPublishingStream`/`startPlayingStream` with answers from
//! plain `webrtc` peer connections (full ICE, loopback only), relays the
//! published RTP to every player (SSRC and payload type rewritten per leg)
//! and relays players' PLIs to the publisher; NACKed sequence numbers are
//! recorded. Every other op gets `code: 0`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sfu_client::rtc::media_stream::MediaStreamTrack;
use sfu_client::rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use sfu_client::rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use sfu_client::rtc::rtp;
use sfu_client::rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use sfu_client::rtcp_tap::{FeedbackTap, TAP_SLOT};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCConfigurationBuilder, RTCIceGatheringState,
    RTCPeerConnectionState, RTCSessionDescription, Registry, SettingEngineBuilder,
};

type Pc = Arc<dyn PeerConnection>;

/// A published stream: its RTP fan-out and its video track (for PLIs).
struct Stream {
    rtp: broadcast::Sender<(RtpCodecKind, rtp::Packet)>,
    video: Arc<Mutex<Option<Arc<dyn TrackRemote>>>>,
}

#[derive(Default)]
struct State {
    streams: HashMap<String, Arc<Stream>>,
    /// Keeps every peer connection alive for the test's duration.
    pcs: Vec<Pc>,
}

/// Sequence numbers players have NACKed, per media SSRC of the fake's leg.
pub type Nacks = Arc<Mutex<Vec<(u32, u16)>>>;

/// The running fake.
pub struct FakeSfu {
    pub addr: String,
    /// Number of player legs that reached `Connected` on the fake's side.
    pub players_connected: watch::Receiver<usize>,
    /// NACKs received from players.
    pub nacks: Nacks,
}

struct Handler {
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    tracks: mpsc::UnboundedSender<Arc<dyn TrackRemote>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.state.send_replace(state);
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send(track);
    }
}

struct Leg {
    pc: Pc,
    gathered: watch::Receiver<bool>,
    state: watch::Receiver<RTCPeerConnectionState>,
    tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
}

async fn leg() -> anyhow::Result<Leg> {
    let mut engine = MediaEngine::default();
    engine.register_default_codecs()?;
    let registry = register_default_interceptors(Registry::new(), &mut engine)?
        .with(TAP_SLOT.into(), FeedbackTap::default());
    let (gathered_tx, gathered) = watch::channel(false);
    let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
    let (tracks_tx, tracks) = mpsc::unbounded_channel();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(engine)
        .with_setting_engine(
            SettingEngineBuilder::new()
                .with_multicast_dns_mode(sfu_client::rtc::ice::mdns::MulticastDnsMode::Disabled)
                // Answer `setup:passive`: the client starts DTLS as soon as ICE
                // connects. (As DTLS client this full-ICE answerer would wait for
                // its own 200 ms check tick, which would hide the client's speed.)
                .with_answering_dtls_role(
                    sfu_client::rtc::peer_connection::transport::RTCDtlsRole::Server,
                )
                .build(),
        )
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Handler {
            gathered: gathered_tx,
            state: state_tx,
            tracks: tracks_tx,
        }))
        .with_udp_addrs(vec!["127.0.0.1:0"])
        .build()
        .await?;
    Ok(Leg {
        pc: Arc::new(pc),
        gathered,
        state,
        tracks,
    })
}

/// Apply the offer and return the answer with the candidates in it.
async fn answer(leg: &mut Leg, offer: &str) -> anyhow::Result<String> {
    leg.pc
        .set_remote_description(RTCSessionDescription::offer(offer.to_owned())?)
        .await?;
    let answer = leg.pc.create_answer(None).await?;
    leg.pc.set_local_description(answer).await?;
    tokio::time::timeout(Duration::from_secs(2), leg.gathered.wait_for(|g| *g)).await??;
    Ok(leg
        .pc
        .local_description()
        .await
        .map(|d| d.sdp)
        .unwrap_or_default())
}

impl FakeSfu {
    pub async fn start() -> anyhow::Result<FakeSfu> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let (players_tx, players_connected) = watch::channel(0usize);
        let players_tx = Arc::new(players_tx);
        let nacks = Nacks::default();
        let recorded = nacks.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (state, players, nacks) = (state.clone(), players_tx.clone(), recorded.clone());
                tokio::spawn(async move {
                    if let Err(e) = serve(tcp, state, players, nacks).await {
                        eprintln!("fake sfu connection: {e}");
                    }
                });
            }
        });
        Ok(FakeSfu {
            addr,
            players_connected,
            nacks,
        })
    }
}

async fn serve(
    tcp: tokio::net::TcpStream,
    state: Arc<Mutex<State>>,
    players: Arc<watch::Sender<usize>>,
    nacks: Nacks,
) -> anyhow::Result<()> {
    let mut ws = tokio_tungstenite::accept_async(tcp).await?;
    while let Some(msg) = ws.next().await {
        let Message::Text(text) = msg? else { continue };
        let req: Value = serde_json::from_str(text.as_str())?;
        let Some(id) = req.get("id").cloned() else {
            continue;
        }; // heartbeat
        let op = req["op"].as_str().unwrap_or_default();
        let stream_id = req["streamID"].as_str().unwrap_or_default().to_owned();
        let sdp = req["sdp"].as_str().unwrap_or_default();
        let result = match op {
            "startPublishingStream" => publish(&state, &stream_id, sdp).await,
            "startPlayingStream" => {
                play(&state, &stream_id, sdp, players.clone(), nacks.clone()).await
            }
            _ => Ok(json!({})),
        };
        let mut res = match result {
            Ok(v) => v,
            Err(e) => json!({"code": 1005001, "message": e.to_string()}),
        };
        res["id"] = id;
        if res.get("code").is_none() {
            res["code"] = json!(0);
        }
        ws.send(Message::text(res.to_string())).await?;
    }
    Ok(())
}

async fn publish(state: &Arc<Mutex<State>>, stream_id: &str, offer: &str) -> anyhow::Result<Value> {
    let mut leg = leg().await?;
    let sdp = answer(&mut leg, offer).await?;
    let (rtp_tx, _) = broadcast::channel(4096);
    let stream = Arc::new(Stream {
        rtp: rtp_tx,
        video: Arc::new(Mutex::new(None)),
    });
    let mut tracks = std::mem::replace(&mut leg.tracks, mpsc::unbounded_channel().1);
    let fanout = stream.clone();
    tokio::spawn(async move {
        while let Some(track) = tracks.recv().await {
            let kind = track.kind().await;
            if kind == RtpCodecKind::Video {
                *fanout.video.lock().unwrap_or_else(|p| p.into_inner()) = Some(track.clone());
            }
            let tx = fanout.rtp.clone();
            tokio::spawn(async move {
                while let Some(ev) = track.poll().await {
                    if let TrackRemoteEvent::OnRtpPacket(p) = ev {
                        let _ = tx.send((kind, p));
                    }
                }
            });
        }
    });
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    st.streams.insert(stream_id.to_owned(), stream);
    st.pcs.push(leg.pc.clone());
    Ok(json!({ "sdp": sdp }))
}

async fn play(
    state: &Arc<Mutex<State>>,
    stream_id: &str,
    offer: &str,
    players: Arc<watch::Sender<usize>>,
    nacks: Nacks,
) -> anyhow::Result<Value> {
    let stream = state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .streams
        .get(stream_id)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no stream {stream_id}"))?;
    let mut leg = leg().await?;
    let mut outs = Vec::new();
    for (kind, mime, ssrc) in [
        (RtpCodecKind::Audio, "audio/opus", 1111u32),
        (RtpCodecKind::Video, "video/VP8", 2222u32),
    ] {
        let codec = sfu_client::rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
            mime_type: mime.to_owned(),
            clock_rate: if kind == RtpCodecKind::Audio {
                48_000
            } else {
                90_000
            },
            channels: if kind == RtpCodecKind::Audio { 2 } else { 0 },
            ..Default::default()
        };
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            format!("fake-{stream_id}"),
            format!("fake-{stream_id}-{kind}"),
            format!("fake {kind}"),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        )));
        let sender = leg.pc.add_track(track.clone()).await?;
        outs.push((kind, mime, ssrc, track, sender));
    }
    let sdp = answer(&mut leg, offer).await?;
    let mut routes = Vec::new();
    for (kind, mime, ssrc, track, sender) in outs {
        let params = sender.get_parameters().await?;
        let pt = params
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
            .map(|c| c.payload_type)
            .ok_or_else(|| anyhow::anyhow!("{mime} not negotiated"))?;
        // Relay PLIs from the player to the publisher's video track.
        let upstream = stream.video.clone();
        let feedback = track.clone();
        let nacks = nacks.clone();
        tokio::spawn(async move {
            while let Some(ev) = feedback.poll().await {
                let TrackLocalEvent::OnRtcpPacket(packets) = ev else {
                    continue;
                };
                for nack in packets
                    .iter()
                    .filter_map(|p| p.as_any().downcast_ref::<TransportLayerNack>())
                {
                    let mut seen = nacks.lock().unwrap_or_else(|p| p.into_inner());
                    for pair in &nack.nacks {
                        seen.extend(
                            pair.packet_list()
                                .into_iter()
                                .map(|seq| (nack.media_ssrc, seq)),
                        );
                    }
                }
                if !packets
                    .iter()
                    .any(|p| p.as_any().is::<PictureLossIndication>())
                {
                    continue;
                }
                let target = upstream.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if let Some(target) = target {
                    let media_ssrc = target.ssrcs().await.first().copied().unwrap_or(0);
                    let pli = PictureLossIndication {
                        sender_ssrc: 0,
                        media_ssrc,
                    };
                    let _ = target.write_rtcp(vec![Box::new(pli)]).await;
                }
            }
        });
        routes.push((kind, ssrc, pt, track));
    }
    // Forward once this leg is connected.
    let mut rx = stream.rtp.subscribe();
    let mut connected = leg.state.clone();
    tokio::spawn(async move {
        if connected
            .wait_for(|s| *s == RTCPeerConnectionState::Connected)
            .await
            .is_err()
        {
            return;
        }
        rx = rx.resubscribe();
        players.send_modify(|n| *n += 1);
        while let Ok((kind, mut packet)) = rx.recv().await {
            if let Some((_, ssrc, pt, track)) = routes.iter().find(|r| r.0 == kind) {
                packet.header.ssrc = *ssrc;
                packet.header.payload_type = *pt;
                let _ = track.write_rtp(packet).await;
            }
        }
    });
    state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pcs
        .push(leg.pc.clone());
    Ok(json!({ "sdp": sdp }))
}
