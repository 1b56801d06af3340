//! The seam between the control plane and the media plane. Sessions ask the
//! media side to publish, play, trickle and stop through [`MediaControl`];
//! the media side answers with SDP and later reports transport events by
//! queueing [`Outbound::Media`](crate::outbox::Outbound) on the session's
//! outbox. No media or socket types cross this seam, so the control plane is
//! tested with a fake and the media stack can change without touching it.

use crate::error::{code, SignalError};
use crate::outbox::Outbox;

/// Identifies one peer connection of the media plane (one publish or play).
pub type MediaId = u64;

/// A publish: the offer of a client that sends media for `stream_id`.
pub struct PublishRequest<'a> {
    pub app_id: u32,
    pub stream_id: &'a str,
    pub offer_sdp: &'a str,
    /// Where transport events for this publish go.
    pub notify: Outbox,
}

/// A play: the offer of a client that wants to receive `stream_id`.
pub struct PlayRequest<'a> {
    pub app_id: u32,
    pub stream_id: &'a str,
    pub offer_sdp: &'a str,
    pub notify: Outbox,
}

/// An accepted publish or play.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub id: MediaId,
    pub answer_sdp: String,
}

/// Transport events the media plane reports for one publish or play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    /// ICE and DTLS are up.
    Connected,
    /// The connection failed or closed without being asked to.
    Failed,
    /// A play: a publisher's media started flowing to it (told on every
    /// new publisher track; the session reports it only to a waiting play).
    Playing,
    /// A play: the stream's new publisher sends a codec the play's answer
    /// did not accept; the media plane ended the connection (`1005001`).
    CodecRefused,
    /// A publish: the simulcast layers (a bit per layer, 0 the lowest) no
    /// player takes, which the publisher may stop sending (told on every
    /// change; 0: send them all).
    VideoLayers { paused: u8 },
    /// A play: the video layer (simulcast layer, or SVC level; 0 the
    /// lowest) it receives now (told on every change).
    PlayLayer { layer: u8 },
}

/// What the control plane needs from the media plane.
pub trait MediaControl: Send + Sync + 'static {
    /// Answer a publish offer. Errors: `1005001` for an unusable offer.
    fn publish(&self, req: PublishRequest<'_>) -> Result<Accepted, SignalError>;
    /// Answer a play offer, whether or not the stream is published yet (a
    /// play waits for its publisher). Errors: `1005001` for an unusable
    /// offer.
    fn play(&self, req: PlayRequest<'_>) -> Result<Accepted, SignalError>;
    /// A trickled remote candidate (`a=candidate:...` or `candidate:...`).
    fn add_candidate(&self, id: MediaId, candidate: &str) -> Result<(), SignalError>;
    /// End a publish or play (idempotent).
    fn stop(&self, id: MediaId);
    /// Cap a play's simulcast layer (0 lowest; `u8::MAX`: automatic). A
    /// media plane without layers ignores it.
    fn set_play_quality(&self, _id: MediaId, _cap: u8) {}
}

/// A control plane without media: every publish and play is refused.
pub struct NoMedia;

impl MediaControl for NoMedia {
    fn publish(&self, _req: PublishRequest<'_>) -> Result<Accepted, SignalError> {
        Err(SignalError::new(
            code::BAD_SDP,
            "this server has no media plane",
        ))
    }
    fn play(&self, _req: PlayRequest<'_>) -> Result<Accepted, SignalError> {
        Err(SignalError::new(
            code::BAD_SDP,
            "this server has no media plane",
        ))
    }
    fn add_candidate(&self, _id: MediaId, _candidate: &str) -> Result<(), SignalError> {
        Ok(())
    }
    fn stop(&self, _id: MediaId) {}
}
