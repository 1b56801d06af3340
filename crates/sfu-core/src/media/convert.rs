//! Conversions at the seam between the `rtc` stack and the stream router:
//! RTP packets both ways (payload `Bytes` moved, never copied) and player
//! RTCP feedback into router feedback.

use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp::header::{Extension, Header};
use stream_router::{nack_sequence_numbers, Extensions, OutPacket, RtpPacket};

const ONE_BYTE_PROFILE: u16 = 0xBEDE;
const TWO_BYTE_PROFILE: u16 = 0x1000;

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

/// A router output packet, as the stack sends it.
pub fn to_rtc(out: OutPacket) -> rtc::rtp::Packet {
    let extensions: Vec<Extension> = out
        .extensions
        .iter()
        .map(|e| Extension {
            id: e.id,
            payload: e.value.clone(),
        })
        .collect();
    let two_byte = extensions
        .iter()
        .any(|e| e.id > 14 || e.payload.len() > 16 || e.payload.is_empty());
    rtc::rtp::Packet {
        header: Header {
            version: 2,
            padding: false,
            extension: !extensions.is_empty(),
            marker: out.marker,
            payload_type: out.payload_type,
            sequence_number: out.sequence_number,
            timestamp: out.timestamp,
            ssrc: out.ssrc,
            csrc: Vec::new(),
            extension_profile: match (extensions.is_empty(), two_byte) {
                (true, _) => 0,
                (false, false) => ONE_BYTE_PROFILE,
                (false, true) => TWO_BYTE_PROFILE,
            },
            extensions,
            extensions_padding: 0,
        },
        payload: out.payload,
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
