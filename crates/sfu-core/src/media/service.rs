//! What a worker does with one connection's output after an input: state
//! changes, newly opened publisher tracks, published RTP into the router
//! (and to the workers it is relayed to), players' feedback into the
//! router; and the other way, router output into players' connections and
//! keyframe requests into publishers'.

use std::sync::Arc;
use std::time::Instant;

use room_signal::media::{MediaEvent, MediaId};
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::sansio::Protocol;
use stream_router::{Codec, Feedback, TrackInfo};

use super::convert::{self, PlayerFeedback};
use super::notify;
use super::peer;
use super::relay::Relay;
use super::worker::{Origin, PubTrack, Role, Worker};
use room_signal::simulcast;

// The control plane names the same layers the router forwards.
const _: () = assert!(simulcast::MAX_LAYERS == stream_router::MAX_LAYERS);

impl Worker {
    /// Drain a peer's events and messages after an input.
    pub(super) fn service(&mut self, id: MediaId, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        while let Some(event) = peer.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                    peer.state = state;
                    if state == RTCPeerConnectionState::Connected && !peer.connected {
                        peer.connected = true;
                        notify(&peer.notify, id, MediaEvent::Connected);
                        tracing::debug!(media = id, "connected");
                    }
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    if let Role::Publisher { tracks, .. } = &mut peer.role {
                        let Some(mut receiver) = peer.pc.rtp_receiver(init.receiver_id) else {
                            continue;
                        };
                        let Some(kind) = peer::media_kind(receiver.track().kind()) else {
                            continue;
                        };
                        let codec = receiver
                            .get_parameters()
                            .rtp_parameters
                            .codecs
                            .first()
                            .cloned();
                        // A simulcast encoding: its layer among the section's RIDs.
                        let layer = match init.rid.as_deref() {
                            Some(rid) => {
                                let rids: Vec<&str> = receiver
                                    .track()
                                    .codings()
                                    .iter()
                                    .map(|c| c.rtp_coding_parameters.rid.as_str())
                                    .filter(|r| !r.is_empty())
                                    .collect();
                                match simulcast::layer_of(rid, &rids) {
                                    Some(l) => Some(l),
                                    None => {
                                        tracing::debug!(
                                            media = id,
                                            rid,
                                            "encoding beyond the layers we forward"
                                        );
                                        continue;
                                    }
                                }
                            }
                            None => None,
                        };
                        let extensions = peer::receiver_extensions(&mut peer.pc, init.receiver_id);
                        let (codec, profile, clock_rate) = codec
                            .map(|c| {
                                let codec = peer::codec_of(&c.rtp_codec.mime_type);
                                (
                                    codec,
                                    peer::codec_profile(codec, &c.rtp_codec.sdp_fmtp_line),
                                    c.rtp_codec.clock_rate,
                                )
                            })
                            .unwrap_or((Codec::Other, 0, 90_000));
                        tracks.push(PubTrack {
                            track_id: init.track_id.to_string(),
                            receiver_id: init.receiver_id,
                            simulcast: layer.map(|l| (init.ssrc, l)),
                            kind,
                            codec,
                            profile,
                            clock_rate,
                            extensions,
                            router: None,
                        });
                    }
                }
                _ => {}
            }
        }
        // Whether a player's congestion feedback came in (its layer is then
        // chosen again, `layers.rs` in sfu-core).
        let mut bwe_fed = false;
        // Router tracks this call created (a publisher's first packet per
        // track): their codec goes to the players after the loop.
        let mut added = Vec::new();
        while let Some(TaggedRTCMessage { message, .. }) = peer.pc.poll_read() {
            match message {
                RTCMessage::RtpPacket(track_id, packet) => {
                    let Role::Publisher {
                        stream: Some(stream),
                        tracks,
                        targets,
                        ..
                    } = &mut peer.role
                    else {
                        continue;
                    };
                    #[cfg(debug_assertions)]
                    if self.panic_stream.as_deref() == Some(&*peer.key.stream_id) {
                        panic!(
                            "test hook: injected panic for stream {}",
                            peer.key.stream_id
                        );
                    }
                    let ssrc = packet.header.ssrc;
                    let Some((i, t)) = tracks.iter_mut().enumerate().find(|(_, t)| {
                        t.track_id == track_id && t.simulcast.is_none_or(|(s, _)| s == ssrc)
                    }) else {
                        continue;
                    };
                    let (track, info) = match &t.router {
                        Some((h, info)) => (*h, info.clone()),
                        None => {
                            let info = TrackInfo {
                                kind: t.kind,
                                codec: t.codec,
                                clock_rate: t.clock_rate,
                                ssrc: packet.header.ssrc,
                                payload_type: packet.header.payload_type,
                                extensions: t.extensions,
                                layer: t.simulcast.map_or(0, |(_, l)| l),
                            };
                            let Ok(h) = self.router.add_track(*stream, info) else {
                                continue;
                            };
                            let info = Arc::new(info);
                            t.router = Some((h, info.clone()));
                            self.router_tracks.insert(h, Origin::Publisher(id, i));
                            added.push((*stream, t.kind, t.codec, t.profile));
                            (h, info)
                        }
                    };
                    let packet = convert::to_router(packet);
                    for &to in targets.iter() {
                        self.shared.relay(
                            to,
                            Relay {
                                key: peer.key.clone(),
                                publisher: id,
                                from: self.idx,
                                profile: t.profile,
                                info: info.clone(),
                                received: now,
                                packet: packet.clone(),
                            },
                        );
                    }
                    let _ = self.router.push_rtp(track, packet, now);
                }
                RTCMessage::RtcpPacket(_, packets) => {
                    let Role::Player { legs, bwe } = &mut peer.role else {
                        continue;
                    };
                    for p in &packets {
                        if let Some(fb) = p.as_any().downcast_ref::<TransportLayerCc>() {
                            bwe.bwe.on_feedback(fb, now);
                            bwe_fed = true;
                            continue;
                        }
                        if let Some(remb) =
                            p.as_any().downcast_ref::<ReceiverEstimatedMaximumBitrate>()
                        {
                            bwe.bwe.on_remb(remb.bitrate);
                            bwe_fed = true;
                            continue;
                        }
                        let Some(fb) = convert::player_feedback(p.as_ref(), &mut self.nacks) else {
                            continue;
                        };
                        let (ssrc, is_nack) = match fb {
                            PlayerFeedback::KeyFrame { media_ssrc } => (media_ssrc, false),
                            PlayerFeedback::Nack { media_ssrc } => (media_ssrc, true),
                        };
                        let Some(leg) = legs.iter().find(|l| l.leg.ssrc == ssrc) else {
                            continue;
                        };
                        let feedback = if is_nack {
                            Feedback::Nack(&self.nacks)
                        } else {
                            Feedback::Pli
                        };
                        let _ = self
                            .router
                            .handle_player_feedback(leg.downtrack, feedback, now);
                    }
                }
                _ => {}
            }
        }
        for (stream, kind, codec, profile) in added {
            self.on_track_added(stream, kind, codec, profile);
        }
        if bwe_fed {
            self.choose_layer(id, now);
        }
        self.dirty.push(id);
    }

    /// Ask publisher `id` for a keyframe on its track `t`.
    pub(super) fn send_pli(&mut self, id: MediaId, t: usize, media_ssrc: u32, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let Role::Publisher { tracks, .. } = &peer.role else {
            return;
        };
        let Some(receiver_id) = tracks.get(t).map(|t| t.receiver_id) else {
            return;
        };
        let pc = &mut peer.pc;
        let sent = super::worker::guarded(|| {
            if let Some(mut receiver) = pc.rtp_receiver(receiver_id) {
                let pli = PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc,
                };
                let _ = receiver.write_rtcp(now, vec![Box::new(pli)]);
            }
        });
        match sent {
            Ok(()) => self.dirty.push(id),
            Err(()) => self.panicked.push(id),
        }
    }
}
