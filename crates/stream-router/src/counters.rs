//! Down-track counters: the public [`DownTrackStats`] and [`Sent`], the
//! per-queue tally `Router::drain_output` accumulates while it drains one
//! down-track and adds to its stats once.

use crate::downtrack::Entry;
use crate::track::TrackStats;

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
    /// NACKed sequence numbers answered: a retransmission was queued.
    pub nack_answered: u64,
    /// NACKed sequence numbers not answered because the same number was
    /// resent within the rate-limit interval.
    pub nack_rate_limited: u64,
    /// PLI/FIR received from the player.
    pub keyframe_requests: u64,
    /// Layer switches made: simulcast (on a keyframe of the new layer)
    /// and SVC (each change of the operating point's level, `svc.rs`).
    pub layer_switches: u64,
    /// SVC packets not forwarded: layers above the player's operating
    /// point (`svc.rs`).
    pub dropped_layer: u64,
    /// Padding packets sent (bandwidth probes).
    pub padding_sent: u64,
}

impl DownTrackStats {
    fn add(&mut self, o: &DownTrackStats) {
        self.packets_sent += o.packets_sent;
        self.bytes_sent += o.bytes_sent;
        self.retransmitted += o.retransmitted;
        self.dropped_queue += o.dropped_queue;
        self.dropped_keyframe_gate += o.dropped_keyframe_gate;
        self.layer_switches += o.layer_switches;
        self.dropped_layer += o.dropped_layer;
        self.padding_sent += o.padding_sent;
        self.dropped_late += o.dropped_late;
        self.nacked += o.nacked;
        self.nack_answered += o.nack_answered;
        self.nack_rate_limited += o.nack_rate_limited;
        self.keyframe_requests += o.keyframe_requests;
    }
}

/// A router's cumulative counters: every track's and down-track's,
/// including those already removed (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterTotals {
    /// Summed over publisher tracks.
    pub ingress: TrackStats,
    /// Summed over down-tracks.
    pub egress: DownTrackStats,
    /// Now (not summed over time): simulcast layers of streams this router
    /// has video players of, live and forwarded to at least one of them.
    pub layers_forwarded: u64,
    /// ... live and forwarded to none of them.
    pub layers_unused: u64,
    /// Simulcast layers its publisher was asked to pause. Not counted by
    /// the router (it only holds them, `Router::set_held`): the I/O layer
    /// that decides fills it in, once per stream.
    pub layers_paused: u64,
}

impl RouterTotals {
    /// Add another router's totals (several event loops).
    pub fn add(&mut self, o: &RouterTotals) {
        self.add_track(&o.ingress);
        self.add_downtrack(&o.egress);
        self.layers_forwarded += o.layers_forwarded;
        self.layers_unused += o.layers_unused;
        self.layers_paused += o.layers_paused;
    }

    pub(crate) fn add_track(&mut self, t: &TrackStats) {
        let i = &mut self.ingress;
        i.packets_received += t.packets_received;
        i.bytes_received += t.bytes_received;
        i.rejected += t.rejected;
        i.duplicates += t.duplicates;
        i.keyframes += t.keyframes;
        i.keyframe_requests += t.keyframe_requests;
        i.plis_sent += t.plis_sent;
    }

    pub(crate) fn add_downtrack(&mut self, d: &DownTrackStats) {
        self.egress.add(d);
    }
}

/// Counters of one drained queue (see `DownTrack::drained`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sent {
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
    pub(crate) retransmitted: u64,
    pub(crate) padding: u64,
}

impl Sent {
    #[inline]
    pub(crate) fn count(&mut self, e: &Entry, payload_len: usize) {
        if e.slot == crate::downtrack::PADDING_SLOT {
            self.padding += 1;
        } else if e.rtx {
            self.retransmitted += 1;
        } else {
            self.packets += 1;
            self.bytes += payload_len as u64;
        }
    }

    pub(crate) fn total(&self) -> usize {
        (self.packets + self.retransmitted + self.padding) as usize
    }
}
