//! What the control plane's integration tests share: a fixed clock, dev
//! tokens, a request helper, a login, and a media plane that accepts every
//! offer.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use room_signal::media::{Accepted, MediaControl, MediaId, PlayRequest, PublishRequest};
use room_signal::token::{mint, Claims};
use room_signal::{Session, SignalError};
use serde_json::{json, Value};

/// The tests' "now" (unix ms).
pub const NOW_MS: u64 = 1_900_000_000_000;

/// A token of app 1 (the dev app) for `user`, valid an hour from `NOW_MS`.
pub fn token(user: &str) -> String {
    mint(
        "devsecret",
        &Claims {
            app_id: 1,
            user_id: user.into(),
            iat: NOW_MS / 1000,
            exp: NOW_MS / 1000 + 3600,
            room_id: None,
            privilege: None,
            stream_id_list: None,
        },
    )
}

/// Send one request; its answer.
pub fn answer(s: &mut Session, req: Value) -> Value {
    let out = s.handle_text(&req.to_string(), NOW_MS).expect("an answer");
    serde_json::from_slice(&out).unwrap()
}

/// Log `user` into `room`; panics unless that succeeds.
pub fn login(s: &mut Session, user: &str, room: &str) -> Value {
    let r = answer(
        s,
        json!({"id": 1, "op": "loginRoom", "roomID": room, "token": token(user),
               "user": {"userID": user, "userName": user}}),
    );
    assert_eq!(r["code"], 0, "{r}");
    r
}

/// A media plane that accepts every publish and play, numbering them from
/// 0, and remembers the IDs it gave out; or, [`AcceptAll::up_to`], only so
/// many, then refuses with `1005011` (its peer-connection limit).
#[derive(Default)]
pub struct AcceptAll {
    next: AtomicU64,
    limit: Option<u64>,
    pub given: Mutex<Vec<MediaId>>,
}

impl AcceptAll {
    pub fn up_to(limit: u64) -> Self {
        AcceptAll {
            limit: Some(limit),
            ..AcceptAll::default()
        }
    }

    fn accept(&self) -> Result<Accepted, SignalError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if self.limit.is_some_and(|l| id >= l) {
            return Err(SignalError::new(room_signal::code::PEER_LIMIT, "full"));
        }
        self.given.lock().unwrap().push(id);
        Ok(Accepted {
            id,
            answer_sdp: "v=0".into(),
        })
    }
}

impl MediaControl for AcceptAll {
    fn publish(&self, _req: PublishRequest<'_>) -> Result<Accepted, SignalError> {
        self.accept()
    }
    fn play(&self, _req: PlayRequest<'_>) -> Result<Accepted, SignalError> {
        self.accept()
    }
    fn add_candidate(&self, _id: MediaId, _c: &str) -> Result<(), SignalError> {
        Ok(())
    }
    fn stop(&self, _id: MediaId) {}
}
