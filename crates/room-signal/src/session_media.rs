//! The media ops of a session: publish, play, stop, trickle, stream extra
//! info, and what happens to them when rooms are left, the publisher goes
//! away or a media connection fails. The media itself is behind
//! [`MediaControl`](crate::media::MediaControl); this file keeps the
//! contract's rules (play binding, delete reasons, state events).

use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;

use crate::error::{code, Result, SignalError};
use crate::ids;
use crate::media::{MediaEvent, MediaId, PlayRequest, PublishRequest};
use crate::outbox::Outbound;
use crate::room::{DeleteReason, Room};
use crate::session::{not_in_room, one, OpResult, Play, Publish, Session};
use crate::simulcast;
use crate::token::EXP_LEEWAY_SECS;
use crate::wire::{self, User};

/// What a limit check is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Publish,
    /// A play; `replaced` is the index of the play of the same stream it
    /// replaces (which then does not count).
    Play {
        replaced: Option<usize>,
    },
}

/// `playerStateUpdate PLAY_REQUESTING 1004002`: the play waits for its
/// stream's publisher.
/// `play_stopped` reasons besides error codes (see `hooks::HookEvent`).
const PLAY_STOPPED: u32 = 1;
const PLAYER_LEFT: u32 = 5;

fn requesting(stream_id: &str) -> Bytes {
    wire::event(
        "playerStateUpdate",
        json!({"streamID": stream_id, "state": "PLAY_REQUESTING", "errorCode": code::STREAM_NOT_FOUND}),
    )
}

/// `playerStateUpdate NO_PLAY <code>`: the server ended the play.
fn no_play(stream_id: &str, code: u32) -> Bytes {
    wire::event(
        "playerStateUpdate",
        json!({"streamID": stream_id, "state": "NO_PLAY", "errorCode": code}),
    )
}

/// Longest stream extra info, in bytes.
pub const MAX_STREAM_EXTRA_INFO: usize = 1024;

fn unknown_stream(stream_id: &str) -> SignalError {
    SignalError::new(
        code::STREAM_NOT_FOUND,
        format!("stream `{stream_id}` does not exist"),
    )
}

fn extra_info_len(extra: &str) -> Result<()> {
    if extra.len() > MAX_STREAM_EXTRA_INFO {
        return Err(SignalError::new(
            code::STREAM_EXTRA_TOO_LONG,
            format!("stream extra info longer than {MAX_STREAM_EXTRA_INFO} bytes"),
        ));
    }
    Ok(())
}

impl Session {
    pub(crate) fn start_publishing(&mut self, req: wire::StartPublishing, now_ms: u64) -> OpResult {
        if req.room_id.is_none() && self.multi_room {
            return Err(SignalError::malformed(
                "missing field `roomID` (required in multi-room mode)",
            ));
        }
        ids::stream_id(&req.stream_id)?;
        let room_id = match req.room_id {
            Some(r) => {
                ids::room_id(&r)?;
                r
            }
            None => match self.rooms.first() {
                Some(r) => r.room.id.to_string(),
                None => {
                    return Err(SignalError::new(
                        code::NOT_IN_ROOM,
                        "not logged into a room",
                    ))
                }
            },
        };
        let extra = req.extra_info.unwrap_or_default();
        extra_info_len(&extra)?;
        let idx = self.joined(&room_id).ok_or_else(|| not_in_room(&room_id))?;
        let Some(joined) = self.rooms.get(idx) else {
            return Err(not_in_room(&room_id));
        };
        if joined.claims.exp.saturating_add(EXP_LEEWAY_SECS) < now_ms / 1000 {
            return Err(SignalError::new(
                code::TOKEN_EXPIRED,
                "room token expired: renew it first",
            ));
        }
        if !joined.claims.may_publish(&req.stream_id) {
            return Err(SignalError::new(
                code::PUBLISH_FORBIDDEN,
                "the room token does not permit publishing this stream",
            ));
        }
        self.check_media_limits(Want::Publish)
            .inspect_err(|e| _ = self.app.refusals.count(e.code))?;
        let stream: Arc<str> = Arc::from(req.stream_id);
        let room = joined.room.clone();
        let join = joined.join;
        if !self.app.claim_stream(&stream, &room.id, &self.outbox) {
            return Err(SignalError::new(
                code::STREAM_ID_TAKEN,
                "stream ID already published in this app",
            ));
        }
        let accepted = match self.app.media.publish(PublishRequest {
            app_id: self.app.id(),
            stream_id: &stream,
            offer_sdp: &req.sdp,
            notify: self.outbox.clone(),
        }) {
            Ok(a) => a,
            Err(e) => {
                self.app.refusals.count(e.code);
                self.app.end_stream(&stream);
                return Err(e);
            }
        };
        self.app.set_publish_media(&stream, accepted.id);
        let user_id = self.user_id().unwrap_or_default().to_string();
        let layers = wire::simulcast_rids(&req.sdp);
        if let Err(e) = room.add_stream(&user_id, join, stream.clone(), extra, layers.clone()) {
            self.app.end_stream(&stream);
            return Err(e);
        }
        tracing::info!(app = self.app.id(), room = %room.id, user = %user_id, stream = %stream,
            conn = self.conn_id, "publish");
        self.publishes.push(Publish {
            stream_id: stream,
            room_id: room.id.clone(),
            media: accepted.id,
            connected: false,
            layers,
            paused: 0,
        });
        Ok(Some(one("sdp", json!(accepted.answer_sdp))))
    }

    /// Remove the publish of `stream_id` from this session, delist it with
    /// `reason` and end it for its players. False if we don't publish it.
    fn end_publish(&mut self, stream_id: &str, reason: DeleteReason) -> bool {
        let Some(pos) = self
            .publishes
            .iter()
            .position(|p| &*p.stream_id == stream_id)
        else {
            return false;
        };
        let p = self.publishes.remove(pos);
        if let Some(room) = self.joined(&p.room_id).and_then(|i| self.rooms.get(i)) {
            room.room.remove_stream(&p.stream_id, reason);
        }
        self.app.end_stream(&p.stream_id);
        tracing::info!(app = self.app.id(), stream = %p.stream_id, conn = self.conn_id, ?reason,
            "publish ended");
        true
    }

    pub(crate) fn stop_publishing(&mut self, req: wire::StreamOnly) -> OpResult {
        ids::stream_id(&req.stream_id)?;
        if !self.end_publish(&req.stream_id, DeleteReason::Stopped) {
            return Err(unknown_stream(&req.stream_id));
        }
        Ok(None)
    }

    pub(crate) fn start_playing(&mut self, req: wire::StartPlaying, now_ms: u64) -> OpResult {
        ids::stream_id(&req.stream_id)?;
        let cap = match req.video_quality.as_deref() {
            None => None,
            Some(q) => Some(wire::video_quality_cap(q).ok_or_else(bad_quality)?),
        };
        if self.rooms.is_empty() {
            return Err(SignalError::new(
                code::NOT_LOGGED_IN,
                "log into a room before playing",
            ));
        }
        // Playing the same stream again replaces the earlier play (which
        // then does not count against the limits).
        let replaced = self
            .plays
            .iter()
            .position(|p| *p.stream_id == *req.stream_id);
        self.check_media_limits(Want::Play { replaced })
            .inspect_err(|e| _ = self.app.refusals.count(e.code))?;
        if let Some(pos) = replaced {
            let old = self.plays.remove(pos);
            self.end_play_media(&old, PLAY_STOPPED);
        }
        // An ID nobody publishes is not an error: the play waits for it.
        let accepted = self
            .app
            .media
            .play(PlayRequest {
                app_id: self.app.id(),
                stream_id: &req.stream_id,
                offer_sdp: &req.sdp,
                notify: self.outbox.clone(),
            })
            .inspect_err(|e| _ = self.app.refusals.count(e.code))?;
        let user = self.user.clone().unwrap_or_else(|| User {
            user_id: Arc::from(""),
            user_name: Arc::from(""),
        });
        if let Some(cap) = cap {
            self.app.media.set_play_quality(accepted.id, cap);
        }
        let live = self
            .app
            .add_player(&req.stream_id, &self.outbox, accepted.id, &user);
        let bound = self.play_room(&req.stream_id);
        tracing::info!(app = self.app.id(), room = %bound, user = ?self.user_id(),
            stream = %req.stream_id, conn = self.conn_id, waiting = !live, "play");
        let stream_id: Arc<str> = Arc::from(req.stream_id);
        let user_id = self.user.as_ref().map(|u| &u.user_id);
        self.app.play_hook(true, &bound, user_id, &stream_id, None);
        if !live {
            // After the answer, which the signaling task writes first.
            self.outbox.send(Outbound::Frame(requesting(&stream_id)));
        }
        self.plays.push(Play {
            stream_id,
            room_id: bound,
            media: accepted.id,
            connected: false,
            waiting_since: (!live).then_some(now_ms),
        });
        Ok(Some(one("sdp", json!(accepted.answer_sdp))))
    }

    /// The room a play of `stream_id` is bound to: the user's room that
    /// lists the stream, else the earliest one.
    fn play_room(&self, stream_id: &str) -> Arc<str> {
        let listed_in = self.app.stream_room(stream_id).map(|(r, _)| r);
        listed_in
            .filter(|r| self.joined(r).is_some())
            .or_else(|| self.rooms.first().map(|r| r.room.id.clone()))
            .unwrap_or_else(|| Arc::from(""))
    }

    /// Stop a play's media, forget it in the app and tell the app's
    /// backend why (`play_stopped` reason).
    fn end_play_media(&self, play: &Play, reason: u32) {
        self.app.media.stop(play.media);
        self.app.remove_player(&play.stream_id, play.media);
        let user = self.user.as_ref().map(|u| &u.user_id);
        self.app
            .play_hook(false, &play.room_id, user, &play.stream_id, Some(reason));
    }

    pub(crate) fn stop_playing(&mut self, req: wire::StreamOnly) -> OpResult {
        ids::stream_id(&req.stream_id)?;
        let Some(pos) = self
            .plays
            .iter()
            .position(|p| *p.stream_id == *req.stream_id)
        else {
            return Err(unknown_stream(&req.stream_id));
        };
        let play = self.plays.remove(pos);
        self.end_play_media(&play, PLAY_STOPPED);
        Ok(None)
    }

    /// Caps the simulcast layer of a play (`auto`, `low`, `medium`, `high`).
    pub(crate) fn set_play_video_quality(&mut self, req: wire::SetPlayVideoQuality) -> OpResult {
        ids::stream_id(&req.stream_id)?;
        let cap = wire::video_quality_cap(&req.quality).ok_or_else(bad_quality)?;
        let Some(play) = self.plays.iter().find(|p| *p.stream_id == *req.stream_id) else {
            return Err(unknown_stream(&req.stream_id));
        };
        self.app.media.set_play_quality(play.media, cap);
        Ok(None)
    }

    pub(crate) fn ice_candidate(&mut self, req: wire::IceCandidate) -> OpResult {
        ids::stream_id(&req.stream_id)?;
        let media = self
            .publishes
            .iter()
            .find(|p| *p.stream_id == *req.stream_id)
            .map(|p| p.media)
            .or_else(|| {
                self.plays
                    .iter()
                    .find(|p| *p.stream_id == *req.stream_id)
                    .map(|p| p.media)
            })
            .ok_or_else(|| unknown_stream(&req.stream_id))?;
        self.app.media.add_candidate(media, &req.candidate)?;
        Ok(None)
    }

    pub(crate) fn set_stream_extra_info(&mut self, req: wire::SetStreamExtraInfo) -> OpResult {
        ids::stream_id(&req.stream_id)?;
        let Some(extra) = req.extra_info else {
            return Err(SignalError::new(
                code::STREAM_EXTRA_MISSING,
                "extraInfo is missing",
            ));
        };
        extra_info_len(&extra)?;
        let publish = self
            .publishes
            .iter()
            .find(|p| *p.stream_id == *req.stream_id)
            .ok_or_else(|| unknown_stream(&req.stream_id))?;
        let room = self
            .joined(&publish.room_id)
            .and_then(|i| self.rooms.get(i))
            .ok_or_else(|| unknown_stream(&req.stream_id))?;
        room.room.set_stream_extra_info(&req.stream_id, extra);
        Ok(None)
    }

    /// Plays bound to `room` that end when it is left: those whose stream
    /// the room lists, or all of them when it is the last room.
    pub(crate) fn plays_to_end(&self, room: &Room) -> Vec<MediaId> {
        self.plays_to_end_if(&room.id, |s| room.lists_stream(s))
    }

    /// Plays bound to `room_id` that end when it is left: those of a
    /// stream that `listed` says the room lists, or all of them when it is
    /// the last room.
    pub(crate) fn plays_to_end_if(
        &self,
        room_id: &str,
        listed: impl Fn(&str) -> bool,
    ) -> Vec<MediaId> {
        let last = self.rooms.iter().all(|r| *r.room.id == *room_id);
        self.plays
            .iter()
            .filter(|p| *p.room_id == *room_id && (last || listed(&p.stream_id)))
            .map(|p| p.media)
            .collect()
    }

    /// After leaving `room`: end the plays in `ending`, re-bind its other
    /// plays to the room listing their stream, else the earliest room.
    pub(crate) fn rebind_or_end_plays(&mut self, room: &Room, ending: Vec<MediaId>) {
        let (ended, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.plays)
            .into_iter()
            .partition(|p| ending.contains(&p.media));
        self.plays = kept;
        for p in &ended {
            self.end_play_media(p, PLAYER_LEFT);
        }
        let listed: Vec<(usize, Option<Arc<str>>)> = self
            .plays
            .iter()
            .enumerate()
            .filter(|(_, p)| p.room_id == room.id)
            .map(|(i, p)| (i, self.app.stream_room(&p.stream_id).map(|(r, _)| r)))
            .collect();
        for (i, listed_in) in listed {
            let target = listed_in
                .filter(|r| self.joined(r).is_some())
                .or_else(|| self.rooms.first().map(|r| r.room.id.clone()));
            if let (Some(target), Some(play)) = (target, self.plays.get_mut(i)) {
                play.room_id = target;
            }
        }
    }

    /// The per-connection limits for one more publish or play.
    fn check_media_limits(&self, want: Want) -> Result<()> {
        let limits = &self.app.limits;
        let replaced = match want {
            Want::Publish => None,
            Want::Play { replaced } => replaced,
        };
        if want == Want::Publish && self.publishes.len() >= limits.max_publishes_per_connection {
            return Err(SignalError::new(
                code::TOO_MANY_PUBLISHES,
                format!(
                    "this connection publishes {} streams already (limits.maxPublishesPerConnection)",
                    limits.max_publishes_per_connection
                ),
            ));
        }
        let counted = self.plays.len() - usize::from(replaced.is_some());
        if want != Want::Publish && counted >= limits.max_plays_per_connection {
            return Err(SignalError::new(
                code::TOO_MANY_PLAYS,
                format!(
                    "this connection plays {} streams already (limits.maxPlaysPerConnection)",
                    limits.max_plays_per_connection
                ),
            ));
        }
        let connecting = self.publishes.iter().filter(|p| !p.connected).count()
            + self
                .plays
                .iter()
                .enumerate()
                .filter(|(i, p)| !p.connected && Some(*i) != replaced)
                .count();
        if connecting >= limits.max_connecting_peers_per_connection {
            return Err(SignalError::new(
                code::TOO_MANY_CONNECTING,
                format!(
                    "{connecting} media connections of this connection have not connected yet \
                     (limits.maxConnectingPeersPerConnection)"
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn on_media_event(&mut self, id: MediaId, event: MediaEvent) -> Vec<Bytes> {
        if event == MediaEvent::Connected {
            if let Some(p) = self.publishes.iter_mut().find(|p| p.media == id) {
                p.connected = true;
            }
            if let Some(p) = self.plays.iter_mut().find(|p| p.media == id) {
                p.connected = true;
            }
            return Vec::new();
        }
        if event == MediaEvent::Playing {
            return match self.plays.iter_mut().find(|p| p.media == id) {
                Some(p) if p.waiting_since.is_some() => {
                    p.waiting_since = None;
                    vec![wire::event(
                        "playerStateUpdate",
                        json!({"streamID": &*p.stream_id, "state": "PLAYING", "errorCode": 0}),
                    )]
                }
                _ => Vec::new(),
            };
        }
        if let MediaEvent::VideoLayers { paused } = event {
            return self.on_paused_layers(id, paused).into_iter().collect();
        }
        if let MediaEvent::PlayLayer { layer } = event {
            return match self.plays.iter().find(|p| p.media == id) {
                Some(p) => vec![wire::event(
                    "playerVideoLayerUpdate",
                    json!({"streamID": &*p.stream_id, "layer": layer}),
                )],
                None => Vec::new(),
            };
        }
        if event == MediaEvent::CodecRefused {
            return self.end_play(id, code::BAD_SDP).into_iter().collect();
        }
        if event != MediaEvent::Failed {
            return Vec::new();
        }
        if let Some(stream) = self
            .publishes
            .iter()
            .find(|p| p.media == id)
            .map(|p| p.stream_id.clone())
        {
            self.end_publish(&stream, DeleteReason::Disconnected);
            return vec![wire::event(
                "publisherStateUpdate",
                json!({"streamID": &*stream, "state": "NO_PUBLISH", "errorCode": code::MEDIA_DISCONNECTED}),
            )];
        }
        self.end_play(id, code::MEDIA_DISCONNECTED)
            .into_iter()
            .collect()
    }

    /// The media plane paused (or resumed) simulcast layers of publish
    /// `id`: tell its publisher which RIDs it may stop sending.
    fn on_paused_layers(&mut self, id: MediaId, paused: u8) -> Option<Bytes> {
        let p = self.publishes.iter_mut().find(|p| p.media == id)?;
        if p.layers.is_empty() || p.paused == paused {
            return None;
        }
        p.paused = paused;
        let rids: Vec<&str> = p.layers.iter().map(|r| &**r).collect();
        let names: Vec<&str> = rids
            .iter()
            .copied()
            .filter(|r| simulcast::layer_of(r, &rids).is_some_and(|l| paused & (1 << l) != 0))
            .collect();
        Some(wire::event(
            "publisherVideoLayersUpdate",
            json!({"streamID": &*p.stream_id, "pausedLayers": names}),
        ))
    }

    /// The server ends play `id` (media failure, codec refused): its
    /// `NO_PLAY` event, if it is still a play of this session.
    fn end_play(&mut self, id: MediaId, code: u32) -> Option<Bytes> {
        let pos = self.plays.iter().position(|p| p.media == id)?;
        let play = self.plays.remove(pos);
        self.end_play_media(&play, code);
        tracing::info!(app = self.app.id(), stream = %play.stream_id, conn = self.conn_id,
            code, "play ended by the server");
        Some(no_play(&play.stream_id, code))
    }

    /// The publisher of a played stream went away: the play waits for the
    /// next one on the same connection.
    pub(crate) fn on_stream_ended(
        &mut self,
        stream_id: &str,
        play: MediaId,
        now_ms: u64,
    ) -> Vec<Bytes> {
        match self.plays.iter_mut().find(|p| p.media == play) {
            Some(p) if p.waiting_since.is_none() => {
                p.waiting_since = Some(now_ms);
                vec![requesting(stream_id)]
            }
            _ => Vec::new(),
        }
    }

    /// The server removed our publish of `stream_id` (admin API): the room
    /// already delisted it (reason 6) and its players wait; forget it and
    /// tell the client. Nothing if that publish already ended.
    pub(crate) fn on_publish_removed(&mut self, stream_id: &str, media: MediaId) -> Vec<Bytes> {
        let Some(pos) = self
            .publishes
            .iter()
            .position(|p| &*p.stream_id == stream_id && p.media == media)
        else {
            return Vec::new();
        };
        self.publishes.remove(pos);
        tracing::info!(app = self.app.id(), stream = %stream_id, conn = self.conn_id,
            "publish removed by the server");
        vec![wire::event(
            "publisherStateUpdate",
            json!({"streamID": stream_id, "state": "NO_PUBLISH", "errorCode": code::KICKED_BY_SERVER}),
        )]
    }

    /// When waiting plays run out of time (unix ms).
    pub(crate) fn play_wait_deadlines(&self) -> impl Iterator<Item = u64> + '_ {
        let wait = self.app.limits.play_wait_ms;
        self.plays
            .iter()
            .filter_map(move |p| p.waiting_since.map(|t| t.saturating_add(wait)))
    }

    /// End the plays that waited `limits.playWaitMs` for a publisher.
    pub(crate) fn end_expired_waits(&mut self, now_ms: u64) -> Vec<Bytes> {
        let wait = self.app.limits.play_wait_ms;
        let (expired, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.plays).into_iter().partition(|p| {
                p.waiting_since
                    .is_some_and(|t| t.saturating_add(wait) <= now_ms)
            });
        self.plays = kept;
        expired
            .iter()
            .map(|p| {
                self.end_play_media(p, code::STREAM_NOT_FOUND);
                tracing::info!(app = self.app.id(), stream = %p.stream_id, conn = self.conn_id,
                    "play ended: no publisher within limits.playWaitMs");
                no_play(&p.stream_id, code::STREAM_NOT_FOUND)
            })
            .collect()
    }

    /// Does this session publish or play anything? (A WHIP/WHEP resource
    /// ends with its one publish or play.)
    pub fn has_media(&self) -> bool {
        !self.publishes.is_empty() || !self.plays.is_empty()
    }

    /// List a stream in one of this session's rooms without media (for
    /// control-plane tests and fakes): what `startPublishingStream` does
    /// once the media plane accepted the offer.
    pub fn list_stream(
        &mut self,
        room_id: &str,
        stream_id: &str,
        extra_info: String,
    ) -> Result<()> {
        ids::stream_id(stream_id)?;
        let idx = self.joined(room_id).ok_or_else(|| not_in_room(room_id))?;
        let Some(joined) = self.rooms.get(idx) else {
            return Err(not_in_room(room_id));
        };
        let stream: Arc<str> = Arc::from(stream_id);
        let (room, join) = (joined.room.clone(), joined.join);
        if !self.app.claim_stream(&stream, &room.id, &self.outbox) {
            return Err(SignalError::new(
                code::STREAM_ID_TAKEN,
                "stream ID already published in this app",
            ));
        }
        let user_id = self.user_id().unwrap_or_default().to_string();
        if let Err(e) = room.add_stream(&user_id, join, stream.clone(), extra_info, Arc::from([])) {
            self.app.end_stream(&stream);
            return Err(e);
        }
        self.app.set_publish_media(&stream, 0);
        self.publishes.push(Publish {
            stream_id: stream,
            room_id: room.id.clone(),
            media: 0,
            connected: true,
            layers: Arc::from([]),
            paused: 0,
        });
        Ok(())
    }

    /// Stop a stream listed by [`Session::list_stream`] with `reason`.
    pub fn delist_stream(&mut self, stream_id: &str, reason: DeleteReason) -> bool {
        self.end_publish(stream_id, reason)
    }
}

fn bad_quality() -> SignalError {
    SignalError::malformed("videoQuality must be auto, low, medium or high")
}
