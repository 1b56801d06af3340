//! The roomStreamUpdate plumbing the media plane builds on, driven through
//! sessions directly (no sockets): listing, delisting with every reason the
//! control plane produces, the own-stream exclusion, and the app-wide
//! stream-ID uniqueness.

mod common;

use common::{answer as call, login, token};
use room_signal::outbox::{Inbox, Outbound};
use room_signal::room::DeleteReason;
use room_signal::{CloseReason, Hub, SignalConfig};
use serde_json::{json, Value};

fn hub() -> Hub {
    Hub::new(SignalConfig::dev()).unwrap()
}

/// Every event frame queued so far.
fn events(inbox: &mut Inbox) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(item) = inbox.rx.try_recv() {
        match item {
            Outbound::Frame(f) => out.push(serde_json::from_slice(&f).unwrap()),
            Outbound::Kicked { room_id, .. } => out.push(json!({"kicked": &*room_id})),
            other => out.push(json!({"other": format!("{other:?}")})),
        }
    }
    out
}

fn stream_updates(inbox: &mut Inbox) -> Vec<Value> {
    events(inbox)
        .into_iter()
        .filter(|e| e["event"] == "roomStreamUpdate")
        .collect()
}

fn delete_reason(e: &Value) -> Value {
    let ext: Value = serde_json::from_str(e["extendedData"].as_str().unwrap()).unwrap();
    ext["stream_delete_reason"].clone()
}

#[test]
fn listing_reaches_the_room_but_not_the_publisher_or_other_rooms() {
    let hub = hub();
    let app = hub.app(1).unwrap();
    let (mut alice, mut alice_in) = hub.connect(app.clone());
    let (mut bob, mut bob_in) = hub.connect(app.clone());
    let (mut carol, mut carol_in) = hub.connect(app.clone());
    login(&mut alice, "alice", "r1");
    login(&mut bob, "bob", "r1");
    login(&mut carol, "carol", "r2");
    events(&mut alice_in);

    alice.list_stream("r1", "cam", "hi".into()).unwrap();
    let adds = stream_updates(&mut bob_in);
    assert_eq!(adds.len(), 1);
    assert_eq!(adds[0]["updateType"], "ADD");
    assert_eq!(adds[0]["roomID"], "r1");
    assert_eq!(
        adds[0]["streamList"],
        json!([{"streamID": "cam", "user": {"userID": "alice", "userName": "alice"}, "extraInfo": "hi"}])
    );
    assert!(stream_updates(&mut alice_in).is_empty());
    assert!(stream_updates(&mut carol_in).is_empty());

    // The ID is unique in the app, whatever the room.
    let err = carol.list_stream("r2", "cam", String::new()).unwrap_err();
    assert_eq!(err.code, 1_003_028);
    // A room not joined.
    assert_eq!(
        carol
            .list_stream("r1", "x", String::new())
            .unwrap_err()
            .code,
        1_002_002
    );
    // Bad stream IDs.
    assert_eq!(
        carol
            .list_stream("r2", "a b", String::new())
            .unwrap_err()
            .code,
        1_000_016
    );

    // A late joiner gets the stream in its login result, not as an event.
    let (mut dave, mut dave_in) = hub.connect(app.clone());
    let r = login(&mut dave, "dave", "r1");
    assert_eq!(r["streamList"][0]["streamID"], "cam");
    assert!(stream_updates(&mut dave_in).is_empty());

    // Stopping delists with reason 1.
    assert!(alice.delist_stream("cam", DeleteReason::Stopped));
    let dels = stream_updates(&mut bob_in);
    assert_eq!(dels[0]["updateType"], "DELETE");
    assert_eq!(
        delete_reason(&dels[0]),
        json!([{"stream_id": "cam", "code": 1}])
    );
    // ...and frees the ID.
    carol.list_stream("r2", "cam", String::new()).unwrap();
}

#[test]
fn leaving_delists_with_the_right_reason() {
    let hub = hub();
    let app = hub.app(1).unwrap();
    let (mut watcher, mut watcher_in) = hub.connect(app.clone());
    assert_eq!(
        call(
            &mut watcher,
            json!({"id": 1, "op": "enableMultiRoom", "enable": true})
        )["code"],
        0
    );
    login(&mut watcher, "w", "r1");
    login(&mut watcher, "w", "r2");

    // logoutRoom(r1) delists only r1's stream, reason 1.
    let (mut p, _p_in) = hub.connect(app.clone());
    assert_eq!(
        call(
            &mut p,
            json!({"id": 1, "op": "enableMultiRoom", "enable": true})
        )["code"],
        0
    );
    login(&mut p, "p", "r1");
    login(&mut p, "p", "r2");
    p.list_stream("r1", "s1", String::new()).unwrap();
    p.list_stream("r2", "s2", String::new()).unwrap();
    stream_updates(&mut watcher_in);
    assert_eq!(
        call(&mut p, json!({"id": 2, "op": "logoutRoom", "roomID": "r1"}))["code"],
        0
    );
    let dels = stream_updates(&mut watcher_in);
    assert_eq!(dels.len(), 1);
    assert_eq!(dels[0]["roomID"], "r1");
    assert_eq!(
        delete_reason(&dels[0]),
        json!([{"stream_id": "s1", "code": 1}])
    );

    // Heartbeat timeout: reason 2.
    p.close(CloseReason::HeartbeatTimeout);
    let dels = stream_updates(&mut watcher_in);
    assert_eq!(
        delete_reason(&dels[0]),
        json!([{"stream_id": "s2", "code": 2}])
    );

    // Same userID elsewhere: reason 3, and the old connection is told.
    let (mut q1, mut q1_in) = hub.connect(app.clone());
    login(&mut q1, "q", "r1");
    q1.list_stream("r1", "s3", String::new()).unwrap();
    stream_updates(&mut watcher_in);
    let (mut q2, _q2_in) = hub.connect(app.clone());
    login(&mut q2, "q", "r1");
    let dels = stream_updates(&mut watcher_in);
    assert_eq!(
        delete_reason(&dels[0]),
        json!([{"stream_id": "s3", "code": 3}])
    );
    let kicked = events(&mut q1_in);
    assert!(kicked.contains(&json!({"kicked": "r1"})), "{kicked:?}");
    // The kicked stream's ID is free again.
    q2.list_stream("r1", "s3", String::new()).unwrap();

    // Dropping a session (connection gone): reason 5.
    stream_updates(&mut watcher_in);
    drop(q2);
    let dels = stream_updates(&mut watcher_in);
    assert_eq!(
        delete_reason(&dels[0]),
        json!([{"stream_id": "s3", "code": 5}])
    );

    // switchRoom delists the source room's streams with reason 1.
    let (mut s, _s_in) = hub.connect(app.clone());
    login(&mut s, "s", "r1");
    s.list_stream("r1", "s4", String::new()).unwrap();
    stream_updates(&mut watcher_in);
    let r = call(
        &mut s,
        json!({"id": 3, "op": "switchRoom", "fromRoomID": "r1", "toRoomID": "r3", "token": token("s")}),
    );
    assert_eq!(r["code"], 0, "{r}");
    let dels = stream_updates(&mut watcher_in);
    assert_eq!(dels[0]["roomID"], "r1");
    assert_eq!(
        delete_reason(&dels[0]),
        json!([{"stream_id": "s4", "code": 1}])
    );
}
