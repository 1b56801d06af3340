//! Every refusal by a resource limit is counted per app (`Hub::refusals`),
//! whichever side refuses: the session's per-connection limits, the app's
//! session limit, or the media plane's peer-connection limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use room_signal::media::{Accepted, MediaControl, MediaId, PlayRequest, PublishRequest};
use room_signal::token::{mint, Claims};
use room_signal::{code, Hub, Session, SignalConfig, SignalError};
use serde_json::{json, Value};

const NOW_MS: u64 = 1_900_000_000_000;

/// Accepts `room` peer connections, then refuses with `1005011`.
struct FakeMedia {
    room: u64,
    next: AtomicU64,
}

impl FakeMedia {
    fn accept(&self) -> Result<Accepted, SignalError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if id >= self.room {
            return Err(SignalError::new(code::PEER_LIMIT, "full"));
        }
        Ok(Accepted {
            id,
            answer_sdp: "v=0".into(),
        })
    }
}

impl MediaControl for FakeMedia {
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

fn call(s: &mut Session, req: Value) -> Value {
    let out = s.handle_text(&req.to_string(), NOW_MS).expect("an answer");
    serde_json::from_slice(&out).unwrap()
}

fn login(s: &mut Session, user: &str) {
    let token = mint(
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
    );
    let r = call(
        s,
        json!({"id": 1, "op": "loginRoom", "roomID": "r1", "token": token,
               "user": {"userID": user, "userName": user}}),
    );
    assert_eq!(r["code"], 0, "{r}");
}

fn publish(s: &mut Session, stream: &str) -> u64 {
    let r = call(
        s,
        json!({"id": 2, "op": "startPublishingStream", "streamID": stream, "sdp": "v=0"}),
    );
    r["code"].as_u64().unwrap()
}

fn count(hub: &Hub, code: u32) -> u64 {
    hub.refusals(1)
        .into_iter()
        .find(|(c, _)| *c == code)
        .map_or(0, |(_, n)| n)
}

#[test]
fn limit_refusals_are_counted_per_app() {
    let mut config = SignalConfig::dev();
    config.limits.max_publishes_per_connection = 2;
    config.limits.max_sessions_per_app = 3;
    let media = Arc::new(FakeMedia {
        room: 3,
        next: AtomicU64::new(0),
    });
    let hub = Hub::with_media(config, media).unwrap();
    let app = hub.app(1).unwrap();
    let (mut a, _a_in) = hub.try_connect(app.clone()).unwrap();
    login(&mut a, "a");
    assert_eq!(publish(&mut a, "s1"), 0);
    assert_eq!(publish(&mut a, "s2"), 0);
    assert_eq!(publish(&mut a, "s3"), u64::from(code::TOO_MANY_PUBLISHES));
    assert_eq!(publish(&mut a, "s4"), u64::from(code::TOO_MANY_PUBLISHES));
    let (mut b, _b_in) = hub.try_connect(app.clone()).unwrap();
    login(&mut b, "b");
    assert_eq!(publish(&mut b, "s5"), 0);
    assert_eq!(publish(&mut b, "s6"), u64::from(code::PEER_LIMIT));
    let (_c, _c_in) = hub.try_connect(app.clone()).unwrap();
    let refused = hub.try_connect(app.clone()).map(|_| ()).unwrap_err();
    assert_eq!(refused.code, code::APP_SESSION_LIMIT);
    assert_eq!(count(&hub, code::TOO_MANY_PUBLISHES), 2);
    assert_eq!(count(&hub, code::PEER_LIMIT), 1);
    assert_eq!(count(&hub, code::APP_SESSION_LIMIT), 1);
    assert_eq!(count(&hub, code::TOO_MANY_PLAYS), 0);
    // Another app's counters are its own.
    assert!(hub.refusals(2).is_empty());
}
