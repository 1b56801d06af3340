//! RTCP-level messages crossing the router: player feedback coming in
//! ([`Feedback`]), keyframe requests going upstream ([`Upstream`]), and
//! sender reports translated for a player leg ([`SenderReport`]).
//!
//! These are plain data; the I/O layer (de)serialises actual RTCP.

/// Minimum spacing of upstream keyframe requests per publisher track.
/// Requests arriving inside the window are coalesced into one PLI emitted
/// when the window ends.
pub const PLI_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Feedback received from a player about one of its down-tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback<'a> {
    /// Picture Loss Indication (RFC 4585).
    Pli,
    /// Full Intra Request (RFC 5104); handled like a PLI.
    Fir,
    /// Generic NACK: lost sequence numbers in the *player's* (rewritten)
    /// numbering. Use [`nack_sequence_numbers`] to expand RTCP PID/BLP
    /// pairs.
    Nack(&'a [u16]),
}

/// Expands one generic-NACK FCI entry (RFC 4585 §6.2.1: packet ID plus a
/// bitmask of the 16 following losses) into its sequence numbers.
pub fn nack_sequence_numbers(pid: u16, blp: u16) -> impl Iterator<Item = u16> {
    std::iter::once(pid).chain(
        (0..16u16)
            .filter(move |bit| blp & (1 << bit) != 0)
            .map(move |bit| pid.wrapping_add(bit + 1)),
    )
}

/// A message for the publisher of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// Send a PLI for the publisher's `media_ssrc`.
    Pli {
        /// The publisher track's SSRC.
        media_ssrc: u32,
    },
}

/// What one down-track should put in its RTCP sender report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderReport {
    /// The player leg's SSRC.
    pub ssrc: u32,
    /// NTP timestamp, unchanged from the publisher's report.
    pub ntp: u64,
    /// The publisher's RTP time shifted by the down-track's timestamp offset.
    pub rtp_time: u32,
    /// Packets sent on this down-track (retransmissions excluded), wrapping.
    pub packet_count: u32,
    /// Payload octets sent on this down-track (retransmissions excluded),
    /// wrapping.
    pub octet_count: u32,
}

/// Result of [`Router::handle_player_feedback`](crate::Router::handle_player_feedback).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedbackSummary {
    /// Retransmissions enqueued on the down-track.
    pub retransmitted: u32,
    /// NACKed numbers ignored by the rate limit.
    pub rate_limited: u32,
    /// NACKed numbers not (or no longer) retransmittable, or dropped because
    /// the down-track's queue was full.
    pub ignored: u32,
    /// Whether a keyframe request was registered upstream.
    pub keyframe_requested: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nack_fci_expansion() {
        let v: Vec<u16> = nack_sequence_numbers(100, 0).collect();
        assert_eq!(v, [100]);
        let v: Vec<u16> = nack_sequence_numbers(65534, 0b1000_0000_0000_0101).collect();
        assert_eq!(v, [65534, 65535, 1, 14]);
    }
}
