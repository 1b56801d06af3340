//! Peer-connection plumbing shared by [`crate::Publisher`] and [`crate::Player`].
//!
//! Builds a `webrtc` peer connection that stays on loopback (one UDP socket
//! on `127.0.0.1:0`, no ICE servers, mDNS off), with `rtc`'s default
//! interceptors (NACK, RTCP reports, TWCC receive; NACK optional) and
//! optionally the feedback tap. Negotiation is non-trickle: the offer is sent once local
//! gathering has completed (host candidates only, so that takes a few
//! milliseconds), and the server's ICE-lite answer carries its candidate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    configure_nack, configure_rtcp_reports, configure_simulcast_extension_headers,
    configure_twcc_receiver_only, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCConfigurationBuilder, RTCIceGatheringState,
    RTCPeerConnectionState, RTCSessionDescription, Registry, SettingEngineBuilder,
};

use crate::error::{ClientError, Result};
use crate::rtcp_tap::{FeedbackTap, TAP_SLOT};

/// Longest wait for local ICE gathering before the offer is sent anyway.
const GATHER_LIMIT: Duration = Duration::from_secs(2);
/// Gap between ICE connectivity checks while connecting. `rtc`'s default
/// (200 ms) is also the wait before the nominating check, which made up
/// ~180 ms of a ~205 ms loopback connect; at 5 ms a connect takes ~10 ms.
/// Only while checking: keepalives keep their own interval.
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(5);
/// Checks per candidate pair: 2000 x 5 ms, a 10 s budget for busy machines.
const ICE_MAX_CHECKS: u16 = 2000;

/// What the driver reports back about one peer connection.
pub(crate) struct PeerEvents {
    pub state: watch::Receiver<RTCPeerConnectionState>,
    pub gathered: watch::Receiver<bool>,
    pub tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
}

struct Handler {
    state: watch::Sender<RTCPeerConnectionState>,
    gathered: watch::Sender<bool>,
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
        tracing::debug!("peer connection state: {state}");
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send(track);
    }
}

/// Which interceptors a peer connection gets besides RTCP reports, TWCC
/// (receive side) and the simulcast header extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Interceptors {
    /// NACK generator and responder (what `register_default_interceptors`
    /// adds); off for a player whose test sends every NACK itself.
    pub nack: bool,
    /// The feedback tap (publishers).
    pub tap: bool,
}

/// A loopback-only peer connection with `engine`'s codecs.
pub(crate) async fn build(
    mut engine: MediaEngine,
    interceptors: Interceptors,
) -> Result<(Arc<dyn PeerConnection>, PeerEvents)> {
    let wrap = |e| ClientError::webrtc("registering interceptors", e);
    let mut registry = Registry::new();
    if interceptors.nack {
        registry = configure_nack(registry, &mut engine);
    }
    configure_simulcast_extension_headers(&mut engine).map_err(wrap)?;
    registry = configure_twcc_receiver_only(registry, &mut engine).map_err(wrap)?;
    registry = configure_rtcp_reports(registry);
    if interceptors.tap {
        registry = registry.with(TAP_SLOT.into(), FeedbackTap::default());
    }
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_MAX_CHECKS))
        .build();
    let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
    let (gathered_tx, gathered) = watch::channel(false);
    let (tracks_tx, tracks) = mpsc::unbounded_channel();
    let handler = Arc::new(Handler {
        state: state_tx,
        gathered: gathered_tx,
        tracks: tracks_tx,
    });
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(engine)
        .with_setting_engine(settings)
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_udp_addrs(vec!["127.0.0.1:0"])
        .build()
        .await
        .map_err(|e| ClientError::webrtc("building the peer connection", e))?;
    let pc: Arc<dyn PeerConnection> = Arc::new(pc);
    Ok((
        pc,
        PeerEvents {
            state,
            gathered,
            tracks,
        },
    ))
}

/// Create the offer, apply it, wait for gathering and return the SDP with
/// the local candidates in it.
pub(crate) async fn offer(pc: &Arc<dyn PeerConnection>, events: &mut PeerEvents) -> Result<String> {
    let offer = pc
        .create_offer(None)
        .await
        .map_err(|e| ClientError::webrtc("creating the offer", e))?;
    pc.set_local_description(offer)
        .await
        .map_err(|e| ClientError::webrtc("applying the offer", e))?;
    let gathered = tokio::time::timeout(GATHER_LIMIT, events.gathered.wait_for(|done| *done)).await;
    if !matches!(gathered, Ok(Ok(_))) {
        tracing::warn!(
            "ICE gathering not complete after {GATHER_LIMIT:?}; sending the offer as is"
        );
    }
    pc.local_description()
        .await
        .map(|d| d.sdp)
        .ok_or_else(|| ClientError::WebRtc("no local description after applying the offer".into()))
}

/// The answer SDP of a `startPublishingStream`/`startPlayingStream`
/// response: `sdp` as a string (or, leniently, `{type, sdp}`).
pub(crate) fn answer_sdp(res: &Value) -> Result<String> {
    let sdp = match res.get("sdp") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(o)) => o.get("sdp").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    sdp.filter(|s| !s.is_empty())
        .ok_or_else(|| ClientError::Protocol(format!("response carries no answer sdp: {res}")))
}

/// Point every host candidate of `sdp` at `addr`.
pub(crate) fn redirect_candidates(sdp: &str, addr: std::net::SocketAddr) -> String {
    sdp.split("\r\n")
        .map(|line| {
            let Some(rest) = line.strip_prefix("a=candidate:") else {
                return line.to_string();
            };
            // foundation component transport priority address port typ ...
            let mut fields: Vec<String> = rest.split(' ').map(str::to_string).collect();
            if fields.len() > 5 {
                fields[4] = addr.ip().to_string();
                fields[5] = addr.port().to_string();
            }
            format!("a=candidate:{}", fields.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// Apply the server's answer.
pub(crate) async fn apply_answer(pc: &Arc<dyn PeerConnection>, sdp: String) -> Result<()> {
    let answer = RTCSessionDescription::answer(sdp)
        .map_err(|e| ClientError::webrtc("parsing the answer", e))?;
    pc.set_remote_description(answer)
        .await
        .map_err(|e| ClientError::webrtc("applying the answer", e))
}

/// Wait until the connection is `Connected`; fail on `Failed`/`Closed` or
/// after `limit`. Returns when it connected.
pub(crate) async fn wait_connected(events: &mut PeerEvents, limit: Duration) -> Result<Instant> {
    let waited = tokio::time::timeout(
        limit,
        events.state.wait_for(|s| {
            matches!(
                s,
                RTCPeerConnectionState::Connected
                    | RTCPeerConnectionState::Failed
                    | RTCPeerConnectionState::Closed
            )
        }),
    )
    .await;
    match waited {
        Ok(Ok(state)) if *state == RTCPeerConnectionState::Connected => Ok(Instant::now()),
        Ok(Ok(state)) => Err(ClientError::WebRtc(format!("peer connection {}", *state))),
        Ok(Err(_)) => Err(ClientError::WebRtc("peer connection dropped".into())),
        Err(_) => Err(ClientError::Timeout(
            limit,
            "the peer connection to connect",
        )),
    }
}

/// A random SSRC (never 0).
pub(crate) fn random_ssrc() -> u32 {
    rand::random::<u32>().max(1)
}

/// Send `op` (`stopPublishingStream` / `stopPlayingStream`) for `stream_id`,
/// then close the peer connection.
pub(crate) async fn stop(
    client: &crate::Client,
    op: &str,
    stream_id: &str,
    pc: &Arc<dyn PeerConnection>,
) -> Result<()> {
    let res = client
        .request(op, serde_json::json!({ "streamID": stream_id }))
        .await;
    let _ = pc.close().await;
    res.map(drop)
}

/// [`stop`] from a `Drop`: in the background, if a runtime is running.
pub(crate) fn stop_in_background(
    client: &crate::Client,
    op: &'static str,
    stream_id: String,
    pc: &Arc<dyn PeerConnection>,
) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let (client, pc) = (client.clone(), pc.clone());
    rt.spawn(async move {
        let _ = stop(&client, op, &stream_id, &pc).await;
    });
}
