//! Down-track counters: the public [`DownTrackStats`] and [`Sent`], the
//! per-queue tally `Router::drain_output` accumulates while it drains one
//! down-track and adds to its stats once.

use crate::downtrack::Entry;

/// Counters of one down-track.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DownTrackStats {
    /// Original packets handed out by a poll.
    pub packets_sent: u64,
    /// Payload bytes of those packets.
    pub bytes_sent: u64,
    /// Retransmissions handed out by a poll.
    pub retransmitted: u64,
    /// Packets (original or retransmission) dropped because the queue was full.
    pub dropped_queue: u64,
    /// Video packets dropped while waiting for a keyframe.
    pub dropped_keyframe_gate: u64,
    /// Packets older than the first packet forwarded from the current source.
    pub dropped_late: u64,
    /// Sequence numbers received in NACKs.
    pub nacked: u64,
    /// PLI/FIR received from the player.
    pub keyframe_requests: u64,
}

/// Counters of one drained queue (see `DownTrack::drained`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sent {
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
    pub(crate) retransmitted: u64,
}

impl Sent {
    #[inline]
    pub(crate) fn count(&mut self, e: &Entry, payload_len: usize) {
        if e.rtx {
            self.retransmitted += 1;
        } else {
            self.packets += 1;
            self.bytes += payload_len as u64;
        }
    }

    pub(crate) fn total(&self) -> usize {
        (self.packets + self.retransmitted) as usize
    }
}
