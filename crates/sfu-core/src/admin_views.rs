//! The admin API's JSON bodies (and their OpenAPI schemas): what
//! `room-signal`'s snapshots and the media workers' reports look like on
//! the wire. Field names follow the signaling contract (`roomID`,
//! `userID`, `streamID`, `extraInfo`, …).

use room_signal::app::{PlayEntry, RoomSummary, StreamSummary};
use room_signal::room::RoomSnapshot;
use room_signal::wire;
use serde::{Deserialize, Serialize};
use stream_router::{Codec, MediaKind};
use utoipa::ToSchema;

use crate::media::relay::PublishedMedia;

/// An error: an HTTP error status with the contract's code.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    /// The contract's error code (e.g. 1002033, 1004002).
    pub code: u32,
    pub message: String,
}

/// Success with nothing more to say.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ok0 {
    /// Always 0.
    pub code: u32,
}

/// A user as the contract shows one.
#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    #[serde(rename = "userID")]
    pub user_id: String,
    #[serde(rename = "userName")]
    pub user_name: String,
}

impl From<&wire::User> for User {
    fn from(u: &wire::User) -> Self {
        User {
            user_id: u.user_id.to_string(),
            user_name: u.user_name.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoomItem {
    #[serde(rename = "roomID")]
    pub room_id: String,
    #[serde(rename = "memberCount")]
    pub member_count: usize,
    #[serde(rename = "streamCount")]
    pub stream_count: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoomList {
    pub code: u32,
    pub rooms: Vec<RoomItem>,
}

impl From<Vec<RoomSummary>> for RoomList {
    fn from(rooms: Vec<RoomSummary>) -> Self {
        RoomList {
            code: 0,
            rooms: rooms
                .into_iter()
                .map(|r| RoomItem {
                    room_id: r.room_id.to_string(),
                    member_count: r.members,
                    stream_count: r.streams,
                })
                .collect(),
        }
    }
}

/// A stream as its room lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListedStream {
    #[serde(rename = "streamID")]
    pub stream_id: String,
    pub user: User,
    #[serde(rename = "extraInfo")]
    pub extra_info: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExtraInfoItem {
    pub key: String,
    pub value: String,
    #[serde(rename = "updateUser")]
    pub update_user: User,
    /// Unix milliseconds.
    #[serde(rename = "updateTime")]
    pub update_time: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoomDetail {
    pub code: u32,
    #[serde(rename = "roomID")]
    pub room_id: String,
    /// In join order.
    pub users: Vec<User>,
    /// In publish order.
    pub streams: Vec<ListedStream>,
    #[serde(rename = "extraInfoList")]
    pub extra_info_list: Vec<ExtraInfoItem>,
}

impl From<RoomSnapshot> for RoomDetail {
    fn from(s: RoomSnapshot) -> Self {
        RoomDetail {
            code: 0,
            room_id: s.room_id.to_string(),
            users: s.users.iter().map(User::from).collect(),
            streams: s
                .streams
                .iter()
                .map(|l| ListedStream {
                    stream_id: l.stream_id.to_string(),
                    user: User::from(&l.user),
                    extra_info: l.extra_info.clone(),
                })
                .collect(),
            extra_info_list: s
                .extra_info
                .iter()
                .map(|e| ExtraInfoItem {
                    key: e.key.clone(),
                    value: e.value.clone(),
                    update_user: User::from(&e.update_user),
                    update_time: e.update_time,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CloseResult {
    pub code: u32,
    /// Users removed from the room.
    pub kicked: usize,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtraInfoBody {
    /// 1–10 bytes; a room has one key.
    pub key: String,
    /// At most 128 bytes.
    pub value: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastBody {
    /// 1–1024 UTF-8 bytes (`limits.maxMessageBytes`).
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BroadcastResult {
    pub code: u32,
    /// The messageID members see in `IMRecvBroadcastMessage`.
    #[serde(rename = "messageID")]
    pub message_id: u64,
}

/// One track of a published stream, as its media worker measures it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackInfo {
    /// `opus`, `vp8`, `vp9`, `h264`, `av1` or `other`.
    pub codec: String,
    /// Received bitrate over the last half second.
    #[serde(rename = "bitsPerSecond")]
    pub bits_per_second: u64,
    /// RTP packets and payload bytes received so far.
    pub packets: u64,
    pub bytes: u64,
    /// Video: its simulcast layers, lowest first (one entry when the
    /// publisher sends a single encoding). The figures above are their sums.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerInfo>,
    /// Video sent as one scalable (SVC) encoding: its levels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scalable: Option<ScalableInfo>,
}

/// The levels of a scalable (SVC) video: what `setPlayVideoQuality` counts
/// in.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScalableInfo {
    /// `spatial` (VP9 with several spatial layers) or `temporal`.
    pub levels: &'static str,
    /// Lowest first.
    #[serde(rename = "levelList")]
    pub level_list: Vec<LevelInfo>,
}

/// One level of a scalable video.
#[derive(Debug, Serialize, ToSchema)]
pub struct LevelInfo {
    pub level: u8,
    /// Of this layer and those below it.
    #[serde(rename = "bitsPerSecond")]
    pub bits_per_second: u64,
    /// Players on the publisher's media worker at this level.
    pub players: usize,
}

/// One simulcast layer of a published video.
#[derive(Debug, Serialize, ToSchema)]
pub struct LayerInfo {
    /// 0 is the lowest resolution.
    pub layer: u8,
    #[serde(rename = "bitsPerSecond")]
    pub bits_per_second: u64,
    pub packets: u64,
    /// Players on the publisher's media worker that receive this layer
    /// (0: a layer nobody takes).
    pub players: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StreamInfo {
    pub code: u32,
    #[serde(rename = "streamID")]
    pub stream_id: String,
    #[serde(rename = "roomID")]
    pub room_id: String,
    /// The publisher (absent for an instant while its publish is set up).
    pub user: Option<User>,
    #[serde(rename = "extraInfo")]
    pub extra_info: String,
    /// Plays of this stream ID (receiving or waiting).
    #[serde(rename = "playerCount")]
    pub player_count: usize,
    pub audio: Option<TrackInfo>,
    pub video: Option<TrackInfo>,
}

fn codec_name(c: Codec) -> &'static str {
    match c {
        Codec::Opus => "opus",
        Codec::Vp8 => "vp8",
        Codec::Vp9 => "vp9",
        Codec::H264 => "h264",
        Codec::Av1 => "av1",
        Codec::Other => "other",
    }
}

impl StreamInfo {
    pub fn new(s: StreamSummary, media: &[PublishedMedia]) -> Self {
        let tracks = media
            .iter()
            .find(|m| m.stream_id == s.stream_id)
            .map(|m| m.tracks)
            .unwrap_or_default();
        let track = |kind: MediaKind| {
            let of_kind: Vec<_> = tracks.iter().flatten().filter(|t| t.kind == kind).collect();
            let top = of_kind.last()?;
            let layers = match kind {
                MediaKind::Audio => Vec::new(),
                MediaKind::Video => of_kind
                    .iter()
                    .map(|t| LayerInfo {
                        layer: t.layer,
                        bits_per_second: t.bits_per_second,
                        packets: t.stats.packets_received,
                        players: t.players,
                    })
                    .collect(),
            };
            let scalable = top.svc.map(|svc| ScalableInfo {
                levels: if svc.spatial { "spatial" } else { "temporal" },
                level_list: svc
                    .levels
                    .iter()
                    .enumerate()
                    .filter_map(|(l, x)| {
                        let (bits_per_second, players) = (*x)?;
                        Some(LevelInfo {
                            level: l as u8,
                            bits_per_second,
                            players,
                        })
                    })
                    .collect(),
            });
            Some(TrackInfo {
                scalable,
                codec: codec_name(top.codec).to_string(),
                bits_per_second: of_kind.iter().map(|t| t.bits_per_second).sum(),
                packets: of_kind.iter().map(|t| t.stats.packets_received).sum(),
                bytes: of_kind.iter().map(|t| t.stats.bytes_received).sum(),
                layers,
            })
        };
        StreamInfo {
            code: 0,
            stream_id: s.stream_id.to_string(),
            room_id: s.room_id.to_string(),
            user: s.listed.as_ref().map(|l| User::from(&l.user)),
            extra_info: s.listed.map(|l| l.extra_info).unwrap_or_default(),
            player_count: s.players,
            audio: track(MediaKind::Audio),
            video: track(MediaKind::Video),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StreamList {
    pub code: u32,
    pub streams: Vec<StreamInfo>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlayItem {
    pub user: User,
    /// `PLAYING` (the stream is published) or `PLAY_REQUESTING` (waiting
    /// for a publisher).
    pub state: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlayList {
    pub code: u32,
    pub plays: Vec<PlayItem>,
}

impl From<Vec<PlayEntry>> for PlayList {
    fn from(plays: Vec<PlayEntry>) -> Self {
        PlayList {
            code: 0,
            plays: plays
                .iter()
                .map(|p| PlayItem {
                    user: User::from(&p.user),
                    state: match p.waiting {
                        true => "PLAY_REQUESTING",
                        false => "PLAYING",
                    }
                    .to_string(),
                })
                .collect(),
        }
    }
}
