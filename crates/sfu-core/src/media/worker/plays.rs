//! Plays that wait for and survive their publisher, on the worker's side.
//! A player's down-tracks stay subscribed by stream key whether or not a
//! publisher feeds it (the router re-attaches them, continuing their
//! numbering); what changes with each new publisher track is the codec. So
//! whenever a router track starts feeding a stream — a local publisher's
//! first packet, a relayed copy's — every player leg of that kind gets the
//! payload type its answer has for the codec, or, when its answer has none,
//! the play ends (`1005001`). Each such player is told that media flows
//! (`MediaEvent::Playing`, which the session reports to a waiting play).

use room_signal::media::{MediaEvent, MediaId};
use stream_router::{Codec, DownTrackHandle, MediaKind, StreamHandle};

use super::super::notify;
use super::{Origin, Role, Worker};

impl Worker {
    /// A track of `codec`/`profile` now feeds `stream`'s `kind`.
    pub(crate) fn on_track_added(
        &mut self,
        stream: StreamHandle,
        kind: MediaKind,
        codec: Codec,
        profile: u32,
    ) {
        let subscribers: Vec<DownTrackHandle> = self.router.subscribers(stream, kind).collect();
        let mut playing: Vec<MediaId> = Vec::new();
        let mut refused: Vec<MediaId> = Vec::new();
        for dt in subscribers {
            match self.assign_codec(dt, codec, profile) {
                Some((id, true)) if !playing.contains(&id) => playing.push(id),
                Some((id, false)) if !refused.contains(&id) => refused.push(id),
                _ => {}
            }
        }
        for id in playing.iter().filter(|id| !refused.contains(id)) {
            if let Some(peer) = self.peers.get(id) {
                notify(&peer.notify, *id, MediaEvent::Playing);
            }
        }
        for id in refused {
            self.refuse_codec(id);
        }
    }

    /// A player adopted here subscribed to a stream that may already have
    /// tracks: give its legs their payload types (or refuse it) now.
    pub(crate) fn on_player_adopted(&mut self, id: MediaId) {
        let Some(Role::Player { legs, .. }) = self.peers.get(&id).map(|p| &p.role) else {
            return;
        };
        let downtracks: Vec<(DownTrackHandle, MediaKind)> =
            legs.iter().map(|l| (l.downtrack, l.leg.kind)).collect();
        let mut fed = false;
        for (dt, kind) in downtracks {
            let Some(stream) = self.router.downtrack_stream(dt) else {
                continue;
            };
            let Some(track) = self.router.stream_track(stream, kind) else {
                continue;
            };
            let Some((codec, profile)) = self.track_codec(track) else {
                continue;
            };
            match self.assign_codec(dt, codec, profile) {
                Some((_, true)) => fed = true,
                Some((_, false)) => return self.refuse_codec(id),
                None => {}
            }
        }
        if fed {
            if let Some(peer) = self.peers.get(&id) {
                notify(&peer.notify, id, MediaEvent::Playing);
            }
        }
    }

    /// Set down-track `dt`'s payload type for `codec`: `(its player, true)`,
    /// or `(its player, false)` if the player's answer lacks the codec.
    fn assign_codec(
        &mut self,
        dt: DownTrackHandle,
        codec: Codec,
        profile: u32,
    ) -> Option<(MediaId, bool)> {
        let (id, leg) = *self.downtracks.get(&dt)?;
        let Role::Player { legs, .. } = &self.peers.get(&id)?.role else {
            return None;
        };
        match legs.get(leg)?.leg.payload_type_for(codec, profile) {
            Some(pt) => {
                let _ = self.router.set_payload_type(dt, pt);
                Some((id, true))
            }
            None => Some((id, false)),
        }
    }

    /// The codec of a router track of this worker (local or relayed).
    fn track_codec(&self, track: stream_router::TrackHandle) -> Option<(Codec, u32)> {
        let codec = self.router.track_info(track)?.codec;
        let profile = match self.router_tracks.get(&track)? {
            Origin::Publisher(id, i) => match &self.peers.get(id)?.role {
                Role::Publisher { tracks, .. } => tracks.get(*i)?.profile,
                Role::Player { .. } => return None,
            },
            Origin::Relayed { profile, .. } => *profile,
        };
        Some((codec, profile))
    }

    /// The stream's new codec is not in player `id`'s answer: end the play.
    fn refuse_codec(&mut self, id: MediaId) {
        self.end_peer_as(
            id,
            "its answer has no payload type for the publisher's codec",
            MediaEvent::CodecRefused,
        );
    }
}
