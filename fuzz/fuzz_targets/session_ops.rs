//! The control plane's session state machine driven by a sequence of ops:
//! up to three connections of one app log in and out, switch rooms, send
//! messages, publish, play, trickle, get media events, are kicked, time out
//! and reconnect, against a fake media plane. Invariants: no panic; every
//! request is answered once with its own id, as a JSON object with a code;
//! queued items and timers only produce JSON events; and once every
//! connection is gone the app holds no session, room, stream entry or live
//! media connection.

#![no_main]

use std::collections::BTreeSet;
use std::sync::Arc;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use parking_lot::Mutex;
use room_signal::media::{
    Accepted, MediaControl, MediaEvent, MediaId, PlayRequest, PublishRequest,
};
use room_signal::outbox::{Inbox, Outbound, Outbox};
use room_signal::token::{mint, Claims, Privilege};
use room_signal::{code, CloseReason, Hub, Session, SignalConfig, SignalError};
use serde_json::{json, Value};

const SECRET: &str = "devsecret";
const START_MS: u64 = 1_900_000_000_000;
const CONNS: usize = 3;

/// Accepts every offer but `"refuse"`; remembers which connections are live.
#[derive(Default)]
struct FakeMedia {
    state: Mutex<MediaState>,
}

#[derive(Default)]
struct MediaState {
    next: MediaId,
    live: BTreeSet<MediaId>,
    notify: Vec<(MediaId, Outbox)>,
}

impl FakeMedia {
    fn accept(&self, sdp: &str, notify: Outbox) -> Result<Accepted, SignalError> {
        if sdp == "refuse" {
            return Err(SignalError::new(code::BAD_SDP, "refused"));
        }
        let mut s = self.state.lock();
        s.next += 1;
        let id = s.next;
        s.live.insert(id);
        s.notify.push((id, notify));
        Ok(Accepted {
            id,
            answer_sdp: format!("v=0 answer {id}"),
        })
    }
}

impl MediaControl for FakeMedia {
    fn publish(&self, req: PublishRequest<'_>) -> Result<Accepted, SignalError> {
        self.accept(req.offer_sdp, req.notify)
    }
    fn play(&self, req: PlayRequest<'_>) -> Result<Accepted, SignalError> {
        self.accept(req.offer_sdp, req.notify)
    }
    fn add_candidate(&self, id: MediaId, _c: &str) -> Result<(), SignalError> {
        if self.state.lock().live.contains(&id) {
            Ok(())
        } else {
            Err(SignalError::new(code::STREAM_NOT_FOUND, "gone"))
        }
    }
    fn stop(&self, id: MediaId) {
        self.state.lock().live.remove(&id);
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Tok {
    None,
    Valid,
    /// Valid for this room only.
    RoomBound,
    ExpiresSoon,
    Expired,
    OtherUser,
    NoPublish,
    NoLogin,
    /// May publish stream `s0` only.
    OneStream,
    BadSignature,
}

#[derive(Arbitrary, Debug)]
enum Req {
    EnableMultiRoom(bool),
    Login {
        room: u8,
        user: u8,
        token: Tok,
        user_update: bool,
        max_members: u8,
        no_name: bool,
    },
    Switch {
        from: u8,
        to: u8,
        token: Tok,
    },
    Logout(Option<u8>),
    Renew {
        room: u8,
        token: Tok,
    },
    Broadcast {
        room: u8,
        message: String,
    },
    Barrage {
        room: u8,
        message: String,
    },
    Custom {
        room: u8,
        command: String,
        to: Vec<u8>,
    },
    RoomExtra {
        room: u8,
        key: u8,
        value: String,
    },
    Publish {
        stream: u8,
        room: Option<u8>,
        refuse: bool,
        extra: Option<String>,
    },
    StopPublish(u8),
    Play {
        stream: u8,
        refuse: bool,
    },
    StopPlay(u8),
    Ice {
        stream: u8,
        candidate: String,
        mid: Option<String>,
        index: Option<u16>,
    },
    StreamExtra {
        stream: u8,
        extra: Option<String>,
    },
}

#[derive(Arbitrary, Debug)]
enum Op {
    Request {
        conn: u8,
        id: Option<u16>,
        req: Req,
    },
    Raw {
        conn: u8,
        text: String,
    },
    Heartbeat {
        conn: u8,
        id: Option<u16>,
    },
    /// Deliver what other parts of the control plane queued for `conn`.
    Drain {
        conn: u8,
    },
    /// The media plane reports an event on one of its connections.
    Media {
        which: u8,
        event: u8,
    },
    Advance {
        ms: u32,
    },
    Close {
        conn: u8,
        reason: u8,
    },
    ServerClosing {
        conn: u8,
    },
    Kick {
        room: u8,
        user: u8,
    },
    /// The admin API removes a published stream.
    RemoveStream {
        stream: u8,
    },
}

fn room_id(n: u8) -> String {
    format!("r{}", n % 4)
}
fn user_id(n: u8) -> String {
    format!("u{}", n % 4)
}
fn stream_id(n: u8) -> String {
    format!("s{}", n % 4)
}

fn token(kind: Tok, user: &str, room: &str, now_ms: u64) -> Option<String> {
    let now = now_ms / 1000;
    let mut claims = Claims {
        app_id: 1,
        user_id: user.into(),
        iat: now,
        exp: now + 3600,
        room_id: None,
        privilege: None,
        stream_id_list: None,
    };
    match kind {
        Tok::None => return None,
        Tok::Valid => {}
        Tok::RoomBound => claims.room_id = Some(room.into()),
        Tok::ExpiresSoon => claims.exp = now + 40,
        Tok::Expired => claims.exp = now.saturating_sub(100),
        Tok::OtherUser => claims.user_id = format!("{user}x"),
        Tok::NoPublish => {
            claims.privilege = Some(Privilege {
                login: true,
                publish: false,
            })
        }
        Tok::NoLogin => {
            claims.privilege = Some(Privilege {
                login: false,
                publish: true,
            })
        }
        Tok::OneStream => claims.stream_id_list = Some(vec!["s0".into()]),
        Tok::BadSignature => return Some(mint("not-the-secret", &claims)),
    }
    Some(mint(SECRET, &claims))
}

struct Conn {
    session: Session,
    inbox: Inbox,
    /// The user of its last login request (tokens are minted for it).
    user: String,
}

fn assert_event(frame: &[u8]) {
    let v: Value = serde_json::from_slice(frame).expect("events are JSON");
    assert!(v.get("event").and_then(Value::as_str).is_some(), "{v}");
}

fn request(conn: &mut Conn, id: Option<u16>, req: &Req, now: u64) -> Value {
    let mut body = match req {
        Req::EnableMultiRoom(enable) => json!({"op": "enableMultiRoom", "enable": enable}),
        Req::Login {
            room,
            user,
            token: tok,
            user_update,
            max_members,
            no_name,
        } => {
            conn.user = user_id(*user);
            let room = room_id(*room);
            let mut user = json!({"userID": conn.user});
            if !no_name {
                user["userName"] = json!(format!("name {}", conn.user));
            }
            json!({"op": "loginRoom", "roomID": room, "user": user,
                   "token": token(*tok, &conn.user, &room, now),
                   "config": {"userUpdate": user_update, "maxMemberCount": max_members % 4}})
        }
        Req::Switch {
            from,
            to,
            token: tok,
        } => {
            let to = room_id(*to);
            json!({"op": "switchRoom", "fromRoomID": room_id(*from), "toRoomID": to,
                   "token": token(*tok, &conn.user, &to, now)})
        }
        Req::Logout(room) => match room {
            Some(r) => json!({"op": "logoutRoom", "roomID": room_id(*r)}),
            None => json!({"op": "logoutRoom"}),
        },
        Req::Renew { room, token: tok } => {
            let room = room_id(*room);
            json!({"op": "renewToken", "roomID": room, "token": token(*tok, &conn.user, &room, now)})
        }
        Req::Broadcast { room, message } => {
            json!({"op": "sendBroadcastMessage", "roomID": room_id(*room), "message": message})
        }
        Req::Barrage { room, message } => {
            json!({"op": "sendBarrageMessage", "roomID": room_id(*room), "message": message})
        }
        Req::Custom { room, command, to } => {
            let to: Vec<String> = to.iter().take(6).map(|u| user_id(*u)).collect();
            json!({"op": "sendCustomCommand", "roomID": room_id(*room), "command": command, "toUserIDs": to})
        }
        Req::RoomExtra { room, key, value } => {
            json!({"op": "setRoomExtraInfo", "roomID": room_id(*room), "key": format!("k{}", key % 3), "value": value})
        }
        Req::Publish {
            stream,
            room,
            refuse,
            extra,
        } => {
            let mut v = json!({"op": "startPublishingStream", "streamID": stream_id(*stream),
                               "sdp": if *refuse { "refuse" } else { "v=0" }});
            if let Some(r) = room {
                v["roomID"] = json!(room_id(*r));
            }
            if let Some(e) = extra {
                v["extraInfo"] = json!(e);
            }
            v
        }
        Req::StopPublish(s) => json!({"op": "stopPublishingStream", "streamID": stream_id(*s)}),
        Req::Play { stream, refuse } => {
            json!({"op": "startPlayingStream", "streamID": stream_id(*stream),
                                               "sdp": if *refuse { "refuse" } else { "v=0" }})
        }
        Req::StopPlay(s) => json!({"op": "stopPlayingStream", "streamID": stream_id(*s)}),
        Req::Ice {
            stream,
            candidate,
            mid,
            index,
        } => json!({"op": "iceCandidate", "streamID": stream_id(*stream), "candidate": candidate,
                    "sdpMid": mid, "sdpMLineIndex": index}),
        Req::StreamExtra { stream, extra } => {
            json!({"op": "setStreamExtraInfo", "streamID": stream_id(*stream), "extraInfo": extra})
        }
    };
    if let Some(id) = id {
        body["id"] = json!(id);
    }
    let answer = conn
        .session
        .handle_text(&body.to_string(), now)
        .expect("every request but a heartbeat is answered");
    let v: Value = serde_json::from_slice(&answer).expect("answers are JSON");
    assert!(v["code"].is_u64(), "{v}");
    match id {
        Some(id) => assert_eq!(v["id"], json!(id), "{v}"),
        None => {
            assert_eq!(v["id"], Value::Null);
            assert_eq!(v["code"], json!(code::MALFORMED));
        }
    }
    v
}

fn drain(conn: &mut Conn, now: u64) {
    // Bounded: handling an item never queues more on the same connection
    // than it consumed, but stay safe.
    for _ in 0..4096 {
        let Ok(item) = conn.inbox.rx.try_recv() else {
            return;
        };
        for frame in conn.session.on_outbound(item, now) {
            assert_event(&frame);
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let media = Arc::new(FakeMedia::default());
    let mut config = SignalConfig::dev();
    config.apps[0].max_rooms = 3;
    config.limits.max_publishes_per_connection = 2;
    config.limits.max_plays_per_connection = 3;
    config.limits.play_wait_ms = 10_000;
    let hub = Hub::with_media(config, media.clone()).expect("hub");
    let app = hub.app(1).expect("app 1");
    let connect = || {
        let (session, inbox) = hub.connect(app.clone());
        Conn {
            session,
            inbox,
            user: user_id(0),
        }
    };
    let mut conns: Vec<Option<Conn>> = (0..CONNS).map(|_| Some(connect())).collect();
    let mut now = START_MS;
    for op in ops.iter().take(256) {
        match op {
            Op::Request { conn, id, req } => {
                let slot = &mut conns[usize::from(*conn) % CONNS];
                let c = slot.get_or_insert_with(connect);
                let v = request(c, *id, req, now);
                if v["code"] == 0 {
                    if let Req::Login { user, .. } = req {
                        assert_eq!(c.session.user_id(), Some(user_id(*user).as_str()));
                    }
                }
            }
            Op::Raw { conn, text } => {
                let c = conns[usize::from(*conn) % CONNS].get_or_insert_with(connect);
                if let Some(answer) = c.session.handle_text(text, now) {
                    let v: Value = serde_json::from_slice(&answer).expect("answers are JSON");
                    assert!(v["code"].is_u64(), "{v}");
                }
            }
            Op::Heartbeat { conn, id } => {
                let c = conns[usize::from(*conn) % CONNS].get_or_insert_with(connect);
                let mut body = json!({"op": "heartbeat"});
                if let Some(id) = id {
                    body["id"] = json!(id);
                }
                let answer = c.session.handle_text(&body.to_string(), now);
                assert_eq!(answer.is_some(), id.is_some());
            }
            Op::Drain { conn } => {
                if let Some(c) = &mut conns[usize::from(*conn) % CONNS] {
                    drain(c, now);
                }
            }
            Op::Media { which, event } => {
                let target = {
                    let s = media.state.lock();
                    let live: Vec<_> = s
                        .notify
                        .iter()
                        .filter(|(id, _)| s.live.contains(id))
                        .collect();
                    (!live.is_empty()).then(|| live[usize::from(*which) % live.len()].clone())
                };
                if let Some((id, outbox)) = target {
                    let event = match event % 4 {
                        0 => MediaEvent::Connected,
                        1 => MediaEvent::Playing,
                        2 => MediaEvent::Failed,
                        _ => MediaEvent::CodecRefused,
                    };
                    if matches!(event, MediaEvent::Failed | MediaEvent::CodecRefused) {
                        // The media plane ended that connection itself.
                        media.state.lock().live.remove(&id);
                    }
                    outbox.send(Outbound::Media { id, event });
                }
            }
            Op::Advance { ms } => {
                now += u64::from(*ms % 120_000);
                for c in conns.iter_mut().flatten() {
                    if c.session.next_deadline_ms().is_some_and(|d| d <= now) {
                        for frame in c.session.on_timer(now) {
                            assert_event(&frame);
                        }
                    }
                }
            }
            Op::Close { conn, reason } => {
                if let Some(mut c) = conns[usize::from(*conn) % CONNS].take() {
                    c.session.close(match reason % 3 {
                        0 => CloseReason::HeartbeatTimeout,
                        1 => CloseReason::Disconnected,
                        _ => CloseReason::SlowConsumer,
                    });
                    assert!(!c.session.has_media());
                }
            }
            Op::ServerClosing { conn } => {
                if let Some(c) = &mut conns[usize::from(*conn) % CONNS] {
                    for frame in c.session.server_closing() {
                        assert_event(&frame);
                    }
                    assert!(!c.session.has_media());
                    assert_eq!(c.session.user_id(), None);
                }
            }
            Op::Kick { room, user } => {
                app.kick(&room_id(*room), &user_id(*user));
            }
            Op::RemoveStream { stream } => {
                app.remove_stream(&stream_id(*stream));
            }
        }
    }
    for c in conns.iter_mut().flatten() {
        drain(c, now);
    }
    drop(conns);
    assert_eq!(app.session_count(), 0);
    assert!(
        app.rooms().is_empty(),
        "rooms left after every session ended"
    );
    assert_eq!(app.stream_entries(), 0, "stream entries left");
    let live = media.state.lock().live.clone();
    assert!(live.is_empty(), "media connections never stopped: {live:?}");
});
