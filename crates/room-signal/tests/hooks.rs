//! The events the control plane emits for an app's backend (webhooks):
//! exactly which, with which reason, in each room's order.

mod common;

use std::sync::Arc;

use common::{answer, login, AcceptAll as FakeMedia};
use room_signal::hooks::RecordedHooks;
use room_signal::{CloseReason, Hub, Session, SignalConfig};
use serde_json::{json, Value};

/// Send one request; it must succeed.
fn call(s: &mut Session, req: Value) {
    let r = answer(s, req.clone());
    assert_eq!(r["code"], 0, "{req} → {r}");
}

/// `room event user stream reason` of each recorded event, in order.
fn lines(hooks: &RecordedHooks) -> Vec<String> {
    hooks
        .0
        .lock()
        .drain(..)
        .map(|e| {
            assert_eq!(e.app_id, 1);
            let mut s = format!("{} {}", e.room_id, e.kind.name());
            for part in [e.user_id.as_deref(), e.stream_id.as_deref()]
                .into_iter()
                .flatten()
            {
                s += &format!(" {part}");
            }
            if let Some(r) = e.reason {
                s += &format!(" {r}");
            }
            s
        })
        .collect()
}

#[test]
fn rooms_users_streams_and_plays_emit_in_order_with_reasons() {
    let hooks = Arc::new(RecordedHooks::default());
    let hub = Hub::with_hooks(
        SignalConfig::dev(),
        Arc::new(FakeMedia::default()),
        hooks.clone(),
    )
    .unwrap();
    let app = hub.app(1).unwrap();
    let (mut a, _a_in) = hub.connect(app.clone());
    let (mut b, _b_in) = hub.connect(app.clone());
    call(
        &mut b,
        json!({"id": 0, "op": "enableMultiRoom", "enable": true}),
    );
    login(&mut a, "a", "r1");
    login(&mut b, "b", "r1");
    login(&mut b, "b", "r2");
    call(
        &mut a,
        json!({"id": 2, "op": "startPublishingStream", "streamID": "s1", "sdp": "v=0"}),
    );
    // b plays s1 (bound to r1, which lists it) and one not yet published.
    call(
        &mut b,
        json!({"id": 3, "op": "startPlayingStream", "streamID": "s1", "sdp": "v=0"}),
    );
    call(
        &mut b,
        json!({"id": 4, "op": "startPlayingStream", "streamID": "later", "sdp": "v=0"}),
    );
    call(
        &mut b,
        json!({"id": 5, "op": "stopPlayingStream", "streamID": "s1"}),
    );
    assert_eq!(
        lines(&hooks),
        [
            "r1 room_created",
            "r1 user_logged_in a",
            "r1 user_logged_in b",
            "r2 room_created",
            "r2 user_logged_in b",
            "r1 stream_published a s1",
            "r1 play_started b s1",
            "r1 play_started b later",
            "r1 play_stopped b s1 1",
        ]
    );
    // The server kicks a: its stream goes (reason 4), then a (reason 4).
    assert!(app.kick("r1", "a"));
    assert_eq!(
        lines(&hooks),
        ["r1 stream_stopped a s1 4", "r1 user_logged_out a 4"]
    );
    // a same-userID login replaces b in r2 only (reason 3).
    let (mut b2, _b2_in) = hub.connect(app.clone());
    login(&mut b2, "b", "r2");
    assert_eq!(
        lines(&hooks),
        ["r2 user_logged_out b 3", "r2 user_logged_in b"]
    );
    // b's connection drops: its waiting play ends first (5), then it
    // leaves r1 (5), which closes.
    b.close(CloseReason::Disconnected);
    assert_eq!(
        lines(&hooks),
        [
            "r1 play_stopped b later 5",
            "r1 user_logged_out b 5",
            "r1 room_closed"
        ]
    );
    b2.close(CloseReason::HeartbeatTimeout);
    assert_eq!(lines(&hooks), ["r2 user_logged_out b 2", "r2 room_closed"]);
    drop(a);
    assert!(lines(&hooks).is_empty(), "a had left already");
}
