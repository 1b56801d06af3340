//! What the server's admin API reads and does across one app: its rooms,
//! its published streams and their plays, removing a stream and closing a
//! room. Reads are snapshots taken under the owners' locks one at a time
//! (never two locks at once but the streams map around one room, in that
//! order), so they never stall signaling for long.

use super::*;

use crate::error::code;
use crate::room::{DeleteReason, ListedStream};

/// A room in the list of an app's rooms.
#[derive(Debug, Clone)]
pub struct RoomSummary {
    pub room_id: Arc<str>,
    pub members: usize,
    pub streams: usize,
}

/// A published stream of the app.
#[derive(Debug, Clone)]
pub struct StreamSummary {
    pub stream_id: Arc<str>,
    pub room_id: Arc<str>,
    /// The publisher as the room lists it (`None` for an instant while the
    /// publish is being set up or torn down).
    pub listed: Option<ListedStream>,
    /// Plays of this stream ID, waiting or receiving.
    pub players: usize,
}

/// One play of a stream ID.
#[derive(Debug, Clone)]
pub struct PlayEntry {
    pub user: User,
    /// True while the stream has no publisher (the play waits for one).
    pub waiting: bool,
}

/// The room of a stream whose publish is set up.
fn published_room(e: &StreamEntry) -> Option<Arc<str>> {
    e.published
        .as_ref()
        .filter(|p| p.publish.is_some())
        .map(|p| p.room_id.clone())
}

impl App {
    /// Every room with someone in it, by room ID.
    pub fn room_summaries(&self) -> Vec<RoomSummary> {
        let mut rooms: Vec<RoomSummary> = self
            .rooms()
            .into_iter()
            .map(|r| {
                let (members, streams) = r.counts();
                RoomSummary {
                    room_id: r.id.clone(),
                    members,
                    streams,
                }
            })
            .filter(|r| r.members > 0)
            .collect();
        rooms.sort_by(|a, b| a.room_id.cmp(&b.room_id));
        rooms
    }

    /// Every published stream (with its publish set up), by stream ID.
    pub fn stream_summaries(&self) -> Vec<StreamSummary> {
        let published: Vec<(Arc<str>, Arc<str>, usize)> = {
            let streams = self.streams.lock();
            streams
                .iter()
                .filter_map(|(id, e)| Some((id.clone(), published_room(e)?, e.players.len())))
                .collect()
        };
        let mut out: Vec<StreamSummary> = published
            .into_iter()
            .map(|(stream_id, room_id, players)| self.summary(stream_id, room_id, players))
            .collect();
        out.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
        out
    }

    /// One published stream, or `None`.
    pub fn stream_summary(&self, stream_id: &str) -> Option<StreamSummary> {
        let (room_id, players) = {
            let streams = self.streams.lock();
            let e = streams.get(stream_id)?;
            (published_room(e)?, e.players.len())
        };
        Some(self.summary(Arc::from(stream_id), room_id, players))
    }

    /// A published stream with its room's listing (taken after the streams
    /// map's lock is released: the room's lock alone).
    fn summary(&self, stream_id: Arc<str>, room_id: Arc<str>, players: usize) -> StreamSummary {
        StreamSummary {
            listed: self.room(&room_id).and_then(|r| r.listed(&stream_id)),
            stream_id,
            room_id,
            players,
        }
    }

    /// The plays of a stream ID (published or awaited) in the order they
    /// started; `None` if the ID is neither published nor played.
    pub fn stream_plays(&self, stream_id: &str) -> Option<Vec<PlayEntry>> {
        let streams = self.streams.lock();
        let e = streams.get(stream_id)?;
        let waiting = e.published.is_none();
        Some(
            e.players
                .iter()
                .map(|p| PlayEntry {
                    user: p.user.clone(),
                    waiting,
                })
                .collect(),
        )
    }

    /// The server removes a published stream: the room delists it (reason
    /// 6), its media stops, its players wait for the next publisher, and
    /// the publisher's connection gets `publisherStateUpdate NO_PUBLISH
    /// 1002055`. False if the stream is not published (or its publish is
    /// still being set up).
    pub fn remove_stream(&self, stream_id: &str) -> bool {
        let taken = {
            let mut streams = self.streams.lock();
            let Some(room_id) = streams.get(stream_id).and_then(published_room) else {
                return false;
            };
            // Delist while the ID cannot be claimed again (streams, then
            // the room: the only order these two locks are ever nested in).
            if let Some(room) = self.room(&room_id) {
                room.remove_stream(stream_id, DeleteReason::RemovedByServer);
            }
            Self::take_published(&mut streams, stream_id)
        };
        let Some((published, players)) = taken else {
            return false;
        };
        published.publisher.send(Outbound::PublishRemoved {
            stream_id: Arc::from(stream_id),
            media: published.publish.unwrap_or_default(),
        });
        tracing::info!(
            app = self.id(),
            stream = stream_id,
            "stream removed by the server"
        );
        self.finish_end(stream_id, published, players);
        true
    }

    /// The server closes a room: every member is kicked out of it
    /// (`roomStateChanged KICKOUT 1002055`, streams deleted with reason 4).
    /// The number of users removed, or `None` if nobody is in the room.
    pub fn close_room(&self, room_id: &str) -> Option<usize> {
        let room = self.room(room_id)?;
        let users = room.member_ids();
        if users.is_empty() {
            return None;
        }
        let kicked = users
            .iter()
            .filter(|u| self.kick_with(room_id, u, code::KICKED_BY_SERVER))
            .count();
        tracing::info!(
            app = self.id(),
            room = room_id,
            kicked,
            "room closed by the server"
        );
        Some(kicked)
    }
}
