//! Peer connections counted by role and by the state `rtc` last reported
//! for them, for `/metrics`: the directory counts the parked ones (built
//! from an offer, no STUN check yet: `new`), each worker the ones it runs.

use rtc::peer_connection::state::RTCPeerConnectionState;

use super::directory::Role;

/// The states, in the order of [`PeerStates`]' rows (the W3C names).
pub const STATES: [&str; 6] = [
    "new",
    "connecting",
    "connected",
    "disconnected",
    "failed",
    "closed",
];

/// Counts per role, one per [`STATES`] entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStates {
    pub publish: [u64; 6],
    pub play: [u64; 6],
}

impl PeerStates {
    /// Counts one connection of `role` in `state`.
    pub(crate) fn count(&mut self, role: Role, state: RTCPeerConnectionState) {
        let row = match role {
            Role::Publish => &mut self.publish,
            Role::Play => &mut self.play,
        };
        row[index(state)] += 1;
    }

    pub(crate) fn add(&mut self, o: &PeerStates) {
        for i in 0..STATES.len() {
            self.publish[i] += o.publish[i];
            self.play[i] += o.play[i];
        }
    }
}

/// Row of a state (`Unspecified`, before the first report, counts as new;
/// so would a state a later `rtc` adds).
fn index(state: RTCPeerConnectionState) -> usize {
    match state {
        RTCPeerConnectionState::Connecting => 1,
        RTCPeerConnectionState::Connected => 2,
        RTCPeerConnectionState::Disconnected => 3,
        RTCPeerConnectionState::Failed => 4,
        RTCPeerConnectionState::Closed => 5,
        _ => 0,
    }
}

/// Whether a connection in `state` ended on its own (to be reported and
/// removed).
pub(crate) fn is_dead(state: RTCPeerConnectionState) -> bool {
    matches!(
        state,
        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_role_and_state() {
        let mut a = PeerStates::default();
        a.count(Role::Publish, RTCPeerConnectionState::Connected);
        a.count(Role::Play, RTCPeerConnectionState::Unspecified);
        a.count(Role::Play, RTCPeerConnectionState::Failed);
        let mut b = a;
        b.add(&a);
        assert_eq!(b.publish, [0, 0, 2, 0, 0, 0]);
        assert_eq!(b.play, [2, 0, 0, 0, 2, 0]);
        assert!(is_dead(RTCPeerConnectionState::Closed));
        assert!(!is_dead(RTCPeerConnectionState::Disconnected));
    }
}
