//! Conversions at the seam between the `rtc` stack and the stream router:
//! publishers' RTP into the router (payload `Bytes` moved, never copied)
//! and player RTCP feedback into router feedback. (Players' RTP leaves
//! through `egress.rs`.)

use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use stream_router::{nack_sequence_numbers, Extensions, RtpPacket};

/// An RTP packet from the stack, as the router takes it.
pub fn to_router(pkt: rtc::rtp::Packet) -> RtpPacket {
    let mut extensions = Extensions::new();
    for e in pkt.header.extensions {
        extensions.push(e.id, e.payload);
    }
    RtpPacket {
        marker: pkt.header.marker,
        payload_type: pkt.header.payload_type,
        sequence_number: pkt.header.sequence_number,
        timestamp: pkt.header.timestamp,
        ssrc: pkt.header.ssrc,
        extensions,
        payload: pkt.payload,
    }
}

/// What a player's RTCP packet asks of the router.
pub enum PlayerFeedback {
    KeyFrame { media_ssrc: u32 },
    Nack { media_ssrc: u32 },
}

/// Classify one RTCP packet from a player; NACKed sequence numbers are
/// appended to `seqs`.
pub fn player_feedback(p: &dyn rtc::rtcp::Packet, seqs: &mut Vec<u16>) -> Option<PlayerFeedback> {
    let any = p.as_any();
    if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
        return Some(PlayerFeedback::KeyFrame {
            media_ssrc: pli.media_ssrc,
        });
    }
    if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
        let media_ssrc = fir.fir.first().map_or(fir.media_ssrc, |e| e.ssrc);
        return Some(PlayerFeedback::KeyFrame { media_ssrc });
    }
    if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
        seqs.clear();
        for pair in &nack.nacks {
            seqs.extend(nack_sequence_numbers(pair.packet_id, pair.lost_packets));
        }
        return Some(PlayerFeedback::Nack {
            media_ssrc: nack.media_ssrc,
        });
    }
    None
}
