//! Multi-room login end to end: the seed scenario (one user in two rooms
//! exchanging every kind of message with the right `roomID`, nobody else
//! hearing it), and the room-mode rules with their error codes.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn one_user_in_two_rooms_talks_to_each_and_nothing_leaks() {
    let server = TestServer::start("");
    let mut alice = server.client(1).await;
    alice.enable_multi_room().await;
    alice.login(1, "alice", "r1").await;
    alice.login(1, "alice", "r2").await;
    let mut bob = server.client(1).await;
    bob.login(1, "bob", "r1").await;
    let mut carol = server.client(1).await;
    carol.login(1, "carol", "r2").await;
    let mut dave = server.client(1).await;
    dave.login(1, "dave", "r3").await;
    // The same room ID in another app is another room.
    let mut erin = server.client(3).await;
    erin.login(3, "erin", "r1").await;

    // Broadcast into r1: only bob hears it, with r1 and the response's messageID.
    let sent = alice
        .ok(
            "sendBroadcastMessage",
            json!({"roomID": "r1", "message": "hello r1"}),
        )
        .await;
    let got = bob.room_event("IMRecvBroadcastMessage", "r1").await;
    let msg = &got["messageList"][0];
    assert_eq!(msg["message"], "hello r1");
    assert_eq!(msg["messageID"], sent["messageID"]);
    assert_eq!(
        msg["fromUser"],
        json!({"userID": "alice", "userName": "alice name"})
    );
    assert!(msg["sendTime"].as_u64().unwrap() > 1_600_000_000_000);

    // Broadcast into r2: only carol.
    alice
        .ok(
            "sendBroadcastMessage",
            json!({"roomID": "r2", "message": "hello r2"}),
        )
        .await;
    let got = carol.room_event("IMRecvBroadcastMessage", "r2").await;
    assert_eq!(got["messageList"][0]["message"], "hello r2");

    // Replies reach alice tagged with their room.
    bob.ok(
        "sendBroadcastMessage",
        json!({"roomID": "r1", "message": "from bob"}),
    )
    .await;
    carol
        .ok(
            "sendBroadcastMessage",
            json!({"roomID": "r2", "message": "from carol"}),
        )
        .await;
    let a = alice.event("IMRecvBroadcastMessage").await;
    let b = alice.event("IMRecvBroadcastMessage").await;
    let mut seen = vec![
        (a["roomID"].clone(), a["messageList"][0]["message"].clone()),
        (b["roomID"].clone(), b["messageList"][0]["message"].clone()),
    ];
    seen.sort_by_key(|(r, _)| r.to_string());
    assert_eq!(
        seen,
        vec![
            (json!("r1"), json!("from bob")),
            (json!("r2"), json!("from carol"))
        ]
    );

    // Barrage.
    let sent = alice
        .ok(
            "sendBarrageMessage",
            json!({"roomID": "r2", "message": "barrage"}),
        )
        .await;
    let got = carol.room_event("IMRecvBarrageMessage", "r2").await;
    assert_eq!(got["messageList"][0]["messageID"], sent["messageID"]);
    assert!(sent["messageID"].is_string());

    // Custom command to bob in r1, and to everyone else in r2.
    alice
        .ok(
            "sendCustomCommand",
            json!({"roomID": "r1", "command": "cmd-r1", "toUserIDs": ["bob"]}),
        )
        .await;
    let got = bob.room_event("IMRecvCustomCommand", "r1").await;
    assert_eq!(got["command"], "cmd-r1");
    assert_eq!(got["fromUser"]["userID"], "alice");
    alice
        .ok(
            "sendCustomCommand",
            json!({"roomID": "r2", "command": "cmd-r2", "toUserIDs": []}),
        )
        .await;
    assert_eq!(
        carol.room_event("IMRecvCustomCommand", "r2").await["command"],
        "cmd-r2"
    );

    // Room extra info.
    alice
        .ok(
            "setRoomExtraInfo",
            json!({"roomID": "r1", "key": "topic", "value": "rust"}),
        )
        .await;
    let got = bob.room_event("roomExtraInfoUpdate", "r1").await;
    assert_eq!(got["roomExtraInfoList"][0]["key"], "topic");
    assert_eq!(got["roomExtraInfoList"][0]["value"], "rust");
    assert_eq!(got["roomExtraInfoList"][0]["updateUser"]["userID"], "alice");

    // A late joiner of r1 gets the extra info in its login result.
    let mut frank = server.client(1).await;
    let res = frank.login(1, "frank", "r1").await;
    assert_eq!(res["extraInfoList"][0]["value"], "rust");
    assert_eq!(res["streamList"], json!([]));

    // Nothing leaked: bob never saw r2 traffic, carol never r1, dave and erin nothing,
    // and alice never got her own messages back.
    for name in [
        "IMRecvBroadcastMessage",
        "IMRecvBarrageMessage",
        "IMRecvCustomCommand",
        "roomExtraInfoUpdate",
    ] {
        dave.no_event(name).await;
        erin.no_event(name).await;
        alice.no_event(name).await;
    }
    bob.no_event("IMRecvBarrageMessage").await;
    carol.no_event("roomExtraInfoUpdate").await;
    assert_eq!(
        bob.events_named("IMRecvBroadcastMessage"),
        Vec::<serde_json::Value>::new()
    );
    assert_eq!(
        carol.events_named("IMRecvCustomCommand"),
        Vec::<serde_json::Value>::new()
    );
}

#[tokio::test]
async fn room_limit_and_multi_room_permission() {
    let server = TestServer::start("");
    let mut c = server.client(1).await;
    c.enable_multi_room().await;
    for i in 1..=5 {
        c.login(1, "u", &format!("room{i}")).await;
    }
    c.fails(
        "loginRoom",
        json!({"roomID": "room6", "token": token(1, "u"), "user": {"userID": "u", "userName": "u"}}),
        1_000_005_022,
    )
    .await;

    // App 3 allows two rooms.
    let mut c = server.client(3).await;
    c.enable_multi_room().await;
    c.login(3, "u", "a").await;
    c.login(3, "u", "b").await;
    c.fails(
        "loginRoom",
        json!({"roomID": "c", "token": token(3, "u"), "user": {"userID": "u", "userName": "u"}}),
        1_000_005_022,
    )
    .await;

    // App 2 does not permit multi-room mode.
    let mut c = server.client(2).await;
    c.enable_multi_room().await;
    c.fails(
        "loginRoom",
        json!({"roomID": "a", "token": token(2, "u"), "user": {"userID": "u", "userName": "u"}}),
        1_100_001_016,
    )
    .await;
    // ...but single-room mode works there.
    let mut c = server.client(2).await;
    c.login(2, "u", "a").await;
}
