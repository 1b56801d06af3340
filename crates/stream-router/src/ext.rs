//! RTP header-extension vocabulary: the few extension kinds the router knows
//! ([`ExtKind`]) and a per-leg table from negotiated extension IDs to kinds
//! ([`ExtMap`]).
//!
//! Each leg (publisher or player) negotiates its own IDs in SDP, so forwarding
//! an extension means: publisher ID -> kind -> player ID. Per-hop kinds
//! (transport-wide CC, abs-send-time, MID/RID) describe one transport leg and
//! are never forwarded; the player leg's stack writes its own.

/// A header extension the router understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtKind {
    /// `urn:ietf:params:rtp-hdrext:ssrc-audio-level` (RFC 6464). Forwarded.
    AudioLevel,
    /// `urn:3gpp:video-orientation` (CVO). Forwarded.
    VideoOrientation,
    /// `http://www.webrtc.org/experiments/rtp-hdrext/playout-delay`. Forwarded.
    PlayoutDelay,
    /// `http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time`. Forwarded.
    AbsCaptureTime,
    /// Transport-wide congestion control sequence number. Per-hop: stripped.
    TransportCc,
    /// `abs-send-time`. Per-hop: stripped.
    AbsSendTime,
    /// `sdes:mid`. Per-hop: stripped.
    Mid,
    /// `sdes:rtp-stream-id`. Per-hop: stripped.
    Rid,
    /// `sdes:repaired-rtp-stream-id`. Per-hop: stripped.
    RepairedRid,
    /// AV1's dependency descriptor: read by the router (AV1 layers,
    /// `dd.rs`) and forwarded (a receiver assembles and decodes AV1 SVC
    /// frames by it; the frames a player does not get are never
    /// referenced by the ones it gets).
    DependencyDescriptor,
}

const KIND_COUNT: usize = 10;

impl ExtKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ExtKind; KIND_COUNT] = [
        ExtKind::AudioLevel,
        ExtKind::VideoOrientation,
        ExtKind::PlayoutDelay,
        ExtKind::AbsCaptureTime,
        ExtKind::TransportCc,
        ExtKind::AbsSendTime,
        ExtKind::Mid,
        ExtKind::Rid,
        ExtKind::RepairedRid,
        ExtKind::DependencyDescriptor,
    ];

    /// The kind named by an SDP `a=extmap` URI, or `None` for unknown URIs.
    pub fn from_uri(uri: &str) -> Option<ExtKind> {
        ExtKind::ALL.into_iter().find(|k| k.uri() == uri.trim())
    }

    /// The canonical URI of this kind.
    pub fn uri(self) -> &'static str {
        match self {
            ExtKind::AudioLevel => "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            ExtKind::VideoOrientation => "urn:3gpp:video-orientation",
            ExtKind::PlayoutDelay => "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
            ExtKind::AbsCaptureTime => {
                "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time"
            }
            ExtKind::TransportCc => {
                "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
            }
            ExtKind::AbsSendTime => "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            ExtKind::Mid => "urn:ietf:params:rtp-hdrext:sdes:mid",
            ExtKind::Rid => "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
            ExtKind::RepairedRid => "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
            ExtKind::DependencyDescriptor => {
                "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"
            }
        }
    }

    /// Whether the extension is end-to-end (forwarded to players) rather
    /// than per-hop (stripped).
    pub fn is_forwardable(self) -> bool {
        matches!(
            self,
            ExtKind::AudioLevel
                | ExtKind::VideoOrientation
                | ExtKind::PlayoutDelay
                | ExtKind::AbsCaptureTime
                | ExtKind::DependencyDescriptor
        )
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Position of a forwardable kind in [`FORWARDABLE`] (`None` if per-hop).
    pub(crate) fn forward_index(self) -> Option<u8> {
        FORWARDABLE.iter().position(|&k| k == self).map(|i| i as u8)
    }
}

/// The forwardable kinds, in the order of [`ExtMap::forward_ids`].
pub(crate) const FORWARDABLE: [ExtKind; FORWARDABLE_COUNT] = [
    ExtKind::AudioLevel,
    ExtKind::VideoOrientation,
    ExtKind::PlayoutDelay,
    ExtKind::AbsCaptureTime,
    ExtKind::DependencyDescriptor,
];
pub(crate) const FORWARDABLE_COUNT: usize = 5;

/// One leg's negotiated extension IDs: ID (1..=255) <-> [`ExtKind`].
///
/// A fixed 256-entry table plus a reverse index: `Copy`, no heap, O(1) both
/// ways. Each ID maps to at most one kind and each kind to at most one ID;
/// inserting replaces older mappings of either.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ExtMap {
    by_id: [Option<ExtKind>; 256],
    by_kind: [u8; KIND_COUNT],
}

impl Default for ExtMap {
    fn default() -> Self {
        ExtMap {
            by_id: [None; 256],
            by_kind: [0; KIND_COUNT],
        }
    }
}

impl std::fmt::Debug for ExtMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl ExtMap {
    /// An empty map (no extensions negotiated).
    pub fn new() -> Self {
        Self::default()
    }

    /// Builder form of [`ExtMap::insert`].
    pub fn with(mut self, id: u8, kind: ExtKind) -> Self {
        self.insert(id, kind);
        self
    }

    /// Builds a map from SDP `(id, uri)` pairs; unknown URIs are skipped.
    pub fn from_uris<'a>(pairs: impl IntoIterator<Item = (u8, &'a str)>) -> Self {
        let mut map = Self::new();
        for (id, uri) in pairs {
            if let Some(kind) = ExtKind::from_uri(uri) {
                map.insert(id, kind);
            }
        }
        map
    }

    /// Maps `id` to `kind`. ID 0 is invalid in RTP and is ignored (returns
    /// false). Any previous mapping of `id` or of `kind` is removed.
    pub fn insert(&mut self, id: u8, kind: ExtKind) -> bool {
        if id == 0 {
            return false;
        }
        if let Some(old_kind) = self.by_id[usize::from(id)] {
            self.by_kind[old_kind.index()] = 0;
        }
        let old_id = self.by_kind[kind.index()];
        if old_id != 0 {
            self.by_id[usize::from(old_id)] = None;
        }
        self.by_id[usize::from(id)] = Some(kind);
        self.by_kind[kind.index()] = id;
        true
    }

    /// The kind negotiated under `id`, if any.
    pub fn get(&self, id: u8) -> Option<ExtKind> {
        self.by_id[usize::from(id)]
    }

    /// The ID negotiated for `kind`, if any.
    pub fn id_of(&self, kind: ExtKind) -> Option<u8> {
        match self.by_kind[kind.index()] {
            0 => None,
            id => Some(id),
        }
    }

    /// `(id, kind)` pairs in ascending ID order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, ExtKind)> + '_ {
        (1..=u8::MAX).filter_map(|id| self.get(id).map(|k| (id, k)))
    }

    /// The player-leg ID to use for an extension that arrived under the
    /// publisher-leg ID `publisher_id` (with `self` being the publisher's
    /// map), or `None` when it must be stripped: unknown on either leg, or
    /// per-hop.
    #[cfg(test)]
    pub(crate) fn remap(&self, publisher_id: u8, player: &ExtMap) -> Option<u8> {
        let kind = self.get(publisher_id)?;
        if !kind.is_forwardable() {
            return None;
        }
        player.id_of(kind)
    }

    /// The IDs of the [`FORWARDABLE`] kinds on this leg (0 = not
    /// negotiated): all a player leg needs to remap forwarded extensions.
    pub(crate) fn forward_ids(&self) -> [u8; FORWARDABLE_COUNT] {
        FORWARDABLE.map(|k| self.id_of(k).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_round_trip() {
        for kind in ExtKind::ALL {
            assert_eq!(ExtKind::from_uri(kind.uri()), Some(kind));
        }
        assert_eq!(ExtKind::from_uri("urn:example:nope"), None);
        assert_eq!(
            ExtKind::from_uri(" urn:3gpp:video-orientation "),
            Some(ExtKind::VideoOrientation)
        );
    }

    #[test]
    fn forwardable_kinds() {
        let fwd: Vec<_> = ExtKind::ALL
            .into_iter()
            .filter(|k| k.is_forwardable())
            .collect();
        assert_eq!(
            fwd,
            [
                ExtKind::AudioLevel,
                ExtKind::VideoOrientation,
                ExtKind::PlayoutDelay,
                ExtKind::AbsCaptureTime,
                ExtKind::DependencyDescriptor
            ]
        );
    }

    #[test]
    fn insert_replaces_both_directions() {
        let mut m = ExtMap::new();
        assert!(!m.insert(0, ExtKind::Mid));
        assert!(m.insert(3, ExtKind::AudioLevel));
        assert_eq!(m.get(3), Some(ExtKind::AudioLevel));
        assert_eq!(m.id_of(ExtKind::AudioLevel), Some(3));
        // Same kind under a new id: old id is freed.
        m.insert(5, ExtKind::AudioLevel);
        assert_eq!(m.get(3), None);
        assert_eq!(m.id_of(ExtKind::AudioLevel), Some(5));
        // Same id for a new kind: old kind loses its id.
        m.insert(5, ExtKind::Mid);
        assert_eq!(m.id_of(ExtKind::AudioLevel), None);
        assert_eq!(m.get(5), Some(ExtKind::Mid));
        assert_eq!(m.iter().collect::<Vec<_>>(), [(5, ExtKind::Mid)]);
    }

    #[test]
    fn remap_forwards_only_end_to_end_kinds() {
        let publisher = ExtMap::new()
            .with(1, ExtKind::AudioLevel)
            .with(3, ExtKind::TransportCc)
            .with(4, ExtKind::VideoOrientation);
        let player = ExtMap::from_uris([
            (10, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
            (11, ExtKind::TransportCc.uri()),
            (12, "urn:unknown"),
        ]);
        assert_eq!(publisher.remap(1, &player), Some(10));
        assert_eq!(publisher.remap(3, &player), None); // per-hop
        assert_eq!(publisher.remap(4, &player), None); // player lacks it
        assert_eq!(publisher.remap(9, &player), None); // unknown id
        assert_eq!(player.get(12), None);
        // The compact form used on the data path agrees with `remap`.
        let ids = player.forward_ids();
        for id in 1..=u8::MAX {
            let compact = publisher
                .get(id)
                .and_then(ExtKind::forward_index)
                .map(|i| ids[usize::from(i)])
                .filter(|&x| x != 0);
            assert_eq!(compact, publisher.remap(id, &player));
        }
        for k in ExtKind::ALL {
            assert_eq!(k.forward_index().is_some(), k.is_forwardable());
        }
    }
}
