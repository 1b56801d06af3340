//! Room rules end to end: login modes and their codes, switchRoom,
//! logoutRoom, user events, the same-userID kick, heartbeats and the online
//! user count.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

fn login_req(app: u32, user: &str, room: &str) -> serde_json::Value {
    json!({"roomID": room, "token": token(app, user), "user": {"userID": user, "userName": user}})
}

#[tokio::test]
async fn enable_multi_room_only_once_and_before_login() {
    let server = TestServer::start("");
    let mut c = server.client(1).await;
    c.enable_multi_room().await;
    c.fails("enableMultiRoom", json!({"enable": true}), 1_001_020)
        .await;

    let mut c = server.client(1).await;
    c.login(1, "u", "r1").await;
    c.fails("enableMultiRoom", json!({"enable": true}), 1_001_020)
        .await;
    // Still single-room: a second login fails, even into the same room.
    c.fails("loginRoom", login_req(1, "u", "r2"), 1_002_001)
        .await;
    c.fails("loginRoom", login_req(1, "u", "r1"), 1_002_001)
        .await;

    // Leaving every room does not change the mode.
    c.ok("logoutRoom", json!({})).await;
    c.fails("enableMultiRoom", json!({"enable": true}), 1_001_020)
        .await;
    c.login(1, "u", "r2").await;
    c.fails("loginRoom", login_req(1, "u", "r3"), 1_002_001)
        .await;
}

#[tokio::test]
async fn multi_room_login_rules() {
    let server = TestServer::start("");
    let mut c = server.client(1).await;
    c.enable_multi_room().await;
    c.login(1, "u", "r1").await;
    c.fails("loginRoom", login_req(1, "u", "r1"), 1_002_056)
        .await;
    // Another userID on the same connection.
    c.fails("loginRoom", login_req(1, "v", "r2"), 1_002_018)
        .await;
    // After leaving every room, another userID is fine.
    c.ok("logoutRoom", json!({})).await;
    c.login(1, "v", "r2").await;
    c.login(1, "v", "r3").await;
}

#[tokio::test]
async fn logout_rules_and_user_events() {
    let server = TestServer::start("");
    let mut watcher = server.client(1).await;
    watcher.enable_multi_room().await;
    watcher.login(1, "watcher", "r1").await;
    watcher.login(1, "watcher", "r2").await;
    // A member without userUpdate hears no user events.
    let mut quiet = server.client(1).await;
    quiet.ok("loginRoom", login_req(1, "quiet", "r1")).await;

    let mut u = server.client(1).await;
    u.enable_multi_room().await;
    let res = u.login(1, "u", "r1").await;
    // userList excludes the joiner and lists the others.
    let mut listed: Vec<String> = res["userList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userID"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, vec!["quiet", "watcher"]);
    watcher.user_update("r1", "ADD", "quiet").await;
    let add = watcher.user_update("r1", "ADD", "u").await;
    assert_eq!(
        add["userList"],
        json!([{"userID": "u", "userName": "u name"}])
    );
    u.login(1, "u", "r2").await;
    assert_eq!(
        watcher.room_event("roomUserUpdate", "r2").await["updateType"],
        "ADD"
    );

    u.fails("logoutRoom", json!({"roomID": "nope"}), 1_002_002)
        .await;
    u.ok("logoutRoom", json!({"roomID": "r1"})).await;
    let del = watcher.room_event("roomUserUpdate", "r1").await;
    assert_eq!(del["updateType"], "DELETE");
    assert_eq!(del["userList"][0]["userID"], "u");
    // Still in r2: messages there work, r1 is gone.
    u.ok(
        "sendBroadcastMessage",
        json!({"roomID": "r2", "message": "still here"}),
    )
    .await;
    u.fails(
        "sendBroadcastMessage",
        json!({"roomID": "r1", "message": "x"}),
        1_009_005,
    )
    .await;
    assert_eq!(
        watcher.room_event("IMRecvBroadcastMessage", "r2").await["messageList"][0]["message"],
        "still here"
    );
    // Logout of everything always succeeds, also twice.
    u.ok("logoutRoom", json!({})).await;
    assert_eq!(
        watcher.room_event("roomUserUpdate", "r2").await["updateType"],
        "DELETE"
    );
    u.ok("logoutRoom", json!({})).await;
    u.fails("logoutRoom", json!({"roomID": "r2"}), 1_002_002)
        .await;

    quiet.no_event("roomUserUpdate").await;
    // The receiver is never listed in its own user events.
    assert_eq!(
        watcher.events_named("roomUserUpdate"),
        Vec::<serde_json::Value>::new()
    );
}

#[tokio::test]
async fn switch_room_rules() {
    let server = TestServer::start("");
    let mut watcher = server.client(1).await;
    watcher.enable_multi_room().await;
    watcher.login(1, "w", "a").await;
    watcher.login(1, "w", "b").await;
    watcher
        .ok(
            "setRoomExtraInfo",
            json!({"roomID": "b", "key": "k", "value": "in b"}),
        )
        .await;

    // Single-room mode may switch.
    let mut u = server.client(1).await;
    u.fails(
        "switchRoom",
        json!({"fromRoomID": "a", "toRoomID": "b", "token": token(1, "u")}),
        1_002_002,
    )
    .await;
    u.login(1, "u", "a").await;
    assert_eq!(
        watcher.room_event("roomUserUpdate", "a").await["updateType"],
        "ADD"
    );
    u.fails(
        "switchRoom",
        json!({"fromRoomID": "x", "toRoomID": "b", "token": token(1, "u")}),
        1_002_002,
    )
    .await;
    u.fails(
        "switchRoom",
        json!({"fromRoomID": "a", "toRoomID": "a", "token": token(1, "u")}),
        1_002_064,
    )
    .await;
    let res = u
        .ok(
            "switchRoom",
            json!({"fromRoomID": "a", "toRoomID": "b", "token": token(1, "u"),
                   "config": {"userUpdate": true}}),
        )
        .await;
    assert_eq!(res["extraInfoList"][0]["value"], "in b");
    assert_eq!(res["userList"][0]["userID"], "w");
    watcher.user_update("a", "DELETE", "u").await;
    watcher.user_update("b", "ADD", "u").await;
    u.fails(
        "sendBroadcastMessage",
        json!({"roomID": "a", "message": "m"}),
        1_009_005,
    )
    .await;
    u.ok(
        "sendBroadcastMessage",
        json!({"roomID": "b", "message": "m"}),
    )
    .await;

    // Multi-room: the target must not be joined already.
    let mut m = server.client(1).await;
    m.enable_multi_room().await;
    m.login(1, "m", "a").await;
    m.login(1, "m", "b").await;
    m.fails(
        "switchRoom",
        json!({"fromRoomID": "a", "toRoomID": "b", "token": token(1, "m")}),
        1_002_064,
    )
    .await;
    // A failed switch (target full) leaves the user where it was.
    let mut owner = server.client(1).await;
    owner
        .ok(
            "loginRoom",
            json!({"roomID": "full", "token": token(1, "o"), "user": {"userID": "o"},
                   "config": {"maxMemberCount": 1}}),
        )
        .await;
    m.fails(
        "switchRoom",
        json!({"fromRoomID": "a", "toRoomID": "full", "token": token(1, "m")}),
        1_002_034,
    )
    .await;
    m.ok(
        "sendBroadcastMessage",
        json!({"roomID": "a", "message": "still in a"}),
    )
    .await;
}

#[tokio::test]
async fn same_user_id_elsewhere_is_kicked_out_of_that_room_only() {
    let server = TestServer::start("");
    let mut watcher = server.client(1).await;
    watcher.login(1, "w", "r1").await;
    let mut first = server.client(1).await;
    first.enable_multi_room().await;
    first.login(1, "dup", "r1").await;
    first.login(1, "dup", "r2").await;
    watcher.event("roomUserUpdate").await;

    let mut second = server.client(1).await;
    second.login(1, "dup", "r1").await;
    let kicked = first.room_event("roomStateChanged", "r1").await;
    assert_eq!(kicked["reason"], "KICKOUT");
    assert_eq!(kicked["errorCode"], 1_002_050);
    // The old connection lost r1 but keeps r2.
    first
        .fails(
            "sendBroadcastMessage",
            json!({"roomID": "r1", "message": "m"}),
            1_009_005,
        )
        .await;
    first
        .ok(
            "sendBroadcastMessage",
            json!({"roomID": "r2", "message": "m"}),
        )
        .await;
    // The room still has dup (the new connection): no user event for the swap,
    // and messages reach the new connection only.
    watcher.no_event("roomUserUpdate").await;
    watcher
        .ok(
            "sendBroadcastMessage",
            json!({"roomID": "r1", "message": "to dup"}),
        )
        .await;
    assert_eq!(
        second.room_event("IMRecvBroadcastMessage", "r1").await["messageList"][0]["message"],
        "to dup"
    );
    first.no_event("IMRecvBroadcastMessage").await;
    // The same userID in another app is another user: no kick.
    let mut other_app = server.client(3).await;
    other_app.login(3, "dup", "r1").await;
    second.no_event("roomStateChanged").await;
}

#[tokio::test]
async fn heartbeat_timeout_ends_the_session() {
    let server = TestServer::start("heartbeatTimeoutMs = 800");
    let mut watcher = server.client(1).await;
    watcher.login(1, "w", "r").await;
    let mut silent = server.client(1).await;
    silent.login(1, "silent", "r").await;
    let mut alive = server.client(1).await;
    alive.login(1, "alive", "r").await;
    watcher.user_update("r", "ADD", "silent").await;
    watcher.user_update("r", "ADD", "alive").await;

    // `alive` sends heartbeats (with and without id) for 1.6 s; `watcher` pings.
    for i in 0..8 {
        if i % 2 == 0 {
            alive.send_text(r#"{"op":"heartbeat"}"#);
        } else {
            let r = alive.request("heartbeat", json!({})).await;
            assert_eq!(r["code"], 0);
        }
        watcher.send_raw(tokio_tungstenite::tungstenite::Message::Ping(
            vec![1].into(),
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(silent.closed_code(Duration::from_secs(3)).await, Some(4008));
    watcher.user_update("r", "DELETE", "silent").await;
    watcher.no_event("roomUserUpdate").await;
    // The heartbeating clients are still served.
    alive
        .ok(
            "sendBroadcastMessage",
            json!({"roomID": "r", "message": "alive"}),
        )
        .await;
    assert_eq!(
        watcher.event("IMRecvBroadcastMessage").await["messageList"][0]["message"],
        "alive"
    );
}

#[tokio::test]
async fn online_user_count_is_pushed_per_room() {
    let server = TestServer::start("onlineCountIntervalMs = 200");
    let mut a = server.client(1).await;
    a.enable_multi_room().await;
    a.login(1, "a", "r1").await;
    a.login(1, "a", "r2").await;
    let mut b = server.client(1).await;
    b.login(1, "b", "r1").await;
    // Skip counts taken before b joined.
    let mut counts = std::collections::HashMap::new();
    for _ in 0..10 {
        let e = a.event("roomOnlineUserCountUpdate").await;
        counts.insert(
            e["roomID"].as_str().unwrap().to_string(),
            e["count"].as_u64().unwrap(),
        );
        if counts.get("r1") == Some(&2) && counts.contains_key("r2") {
            break;
        }
    }
    assert_eq!(counts.get("r1"), Some(&2));
    assert_eq!(counts.get("r2"), Some(&1));
    let e = b.event("roomOnlineUserCountUpdate").await;
    assert_eq!(e["roomID"], "r1");
}

#[tokio::test]
async fn user_events_are_off_in_large_rooms() {
    let server = TestServer::start("userUpdateMaxMembers = 3");
    let mut w = server.client(1).await;
    w.login(1, "w", "big").await;
    let mut others = Vec::new();
    for name in ["u1", "u2"] {
        let mut c = server.client(1).await;
        c.login(1, name, "big").await;
        assert_eq!(
            w.event("roomUserUpdate").await["userList"][0]["userID"],
            name
        );
        others.push(c);
    }
    // The fourth member takes the room over the limit: no event, no userList.
    let mut c = server.client(1).await;
    let res = c.login(1, "u3", "big").await;
    assert!(res.get("userList").is_none(), "{res}");
    w.no_event("roomUserUpdate").await;
    c.ok("logoutRoom", json!({})).await;
    w.no_event("roomUserUpdate").await;
    // Back at the limit, events flow again.
    others.pop().unwrap().ok("logoutRoom", json!({})).await;
    assert_eq!(w.event("roomUserUpdate").await["updateType"], "DELETE");
}

#[tokio::test]
async fn disconnect_leaves_every_room() {
    let server = TestServer::start("");
    let mut w = server.client(1).await;
    w.enable_multi_room().await;
    w.login(1, "w", "r1").await;
    w.login(1, "w", "r2").await;
    let mut u = server.client(1).await;
    u.enable_multi_room().await;
    u.login(1, "u", "r1").await;
    u.login(1, "u", "r2").await;
    w.clear_events();
    drop(u);
    let mut rooms = vec![
        w.event("roomUserUpdate").await["roomID"]
            .as_str()
            .unwrap()
            .to_string(),
        w.event("roomUserUpdate").await["roomID"]
            .as_str()
            .unwrap()
            .to_string(),
    ];
    rooms.sort();
    assert_eq!(rooms, vec!["r1", "r2"]);
}

#[tokio::test]
async fn many_connections_at_once() {
    let server = TestServer::start("");
    let n = 40;
    let mut clients = Vec::new();
    for _ in 0..n {
        clients.push(server.client(1).await);
    }
    // Everybody logs in concurrently.
    let joins = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| async move {
            c.ok(
                "loginRoom",
                json!({"roomID": format!("room{}", i % 4), "token": token(1, &format!("u{i}")),
                   "user": {"userID": format!("u{i}")}}),
            )
            .await;
            c
        });
    let mut clients = futures_util::future::join_all(joins).await;
    // One broadcast per room reaches exactly the other 9 members of that room.
    for (r, c) in clients.iter_mut().take(4).enumerate() {
        c.ok(
            "sendBroadcastMessage",
            json!({"roomID": format!("room{r}"), "message": format!("m{r}")}),
        )
        .await;
    }
    for (i, c) in clients.iter_mut().enumerate() {
        if i >= 4 {
            let e = c.event("IMRecvBroadcastMessage").await;
            assert_eq!(e["roomID"], format!("room{}", i % 4));
            assert_eq!(e["messageList"][0]["message"], format!("m{}", i % 4));
        }
    }
    futures_util::future::join_all(
        clients
            .iter_mut()
            .map(|c| c.no_event("IMRecvBroadcastMessage")),
    )
    .await;
}

#[tokio::test]
async fn a_slow_reader_is_dropped_without_hurting_the_room() {
    // A tiny send queue so that the test fills it quickly.
    let server = TestServer::start(
        "outboxCapacity = 64\ncommandToManyPerSec = 0\nrequestsPerConnectionPerSec = 0\nmaxMessageBytes = 60000",
    );
    let mut sender = server.client(1).await;
    sender.login(1, "sender", "r").await;
    let mut reader = server.client(1).await;
    reader.login(1, "reader", "r").await;
    sender.user_update("r", "ADD", "reader").await;
    // The slow client never reads its socket.
    let url = format!("ws://{}/ws?appID=1", server.addr);
    let (mut slow, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    {
        use futures_util::SinkExt;
        let login = json!({"id": 1, "op": "loginRoom", "roomID": "r", "token": token(1, "slow"),
                           "user": {"userID": "slow"}});
        slow.send(tokio_tungstenite::tungstenite::Message::Text(
            login.to_string().into(),
        ))
        .await
        .unwrap();
    }
    sender.user_update("r", "ADD", "slow").await;
    // Flood the room with 60 KB commands until the slow client's socket
    // buffers (tens of MB on loopback) and its 64-entry queue are full.
    let body = "x".repeat(60_000);
    let total = 5_000;
    let payload = json!({"roomID": "r", "command": body, "toUserIDs": []});
    let mut dropped_at = None;
    let mut received = 0;
    for i in 0..total {
        sender.ok("sendCustomCommand", payload.clone()).await;
        // Keep the healthy reader drained as we go.
        if i % 50 == 0 {
            while let Ok(e) = tokio::time::timeout(
                Duration::from_millis(1),
                reader.event("IMRecvCustomCommand"),
            )
            .await
            {
                assert_eq!(e["command"].as_str().map(str::len), Some(60_000));
                received += 1;
            }
        }
        if sender
            .events_named("roomUserUpdate")
            .iter()
            .any(|e| e["updateType"] == "DELETE")
        {
            dropped_at = Some(i);
            break;
        }
    }
    assert!(dropped_at.is_some(), "the slow reader was never dropped");
    let gone = sender.user_update("r", "DELETE", "slow").await;
    assert_eq!(gone["roomID"], "r");
    // The healthy reader got every command sent so far, and keeps getting them.
    let sent = dropped_at.unwrap_or(0) + 1;
    while received < sent {
        reader.event("IMRecvCustomCommand").await;
        received += 1;
    }
    reader.no_event("IMRecvCustomCommand").await;
    sender
        .ok(
            "sendBroadcastMessage",
            json!({"roomID": "r", "message": "after"}),
        )
        .await;
    assert_eq!(
        reader.event("IMRecvBroadcastMessage").await["messageList"][0]["message"],
        "after"
    );
    eprintln!("slow reader dropped after {sent} commands of 60 KB");
    drop(slow);
}

#[tokio::test]
async fn the_server_can_kick_a_user_out_of_a_room() {
    let server = TestServer::start("");
    let mut w = server.client(1).await;
    w.login(1, "w", "r1").await;
    let mut u = server.client(1).await;
    u.enable_multi_room().await;
    u.login(1, "u", "r1").await;
    u.login(1, "u", "r2").await;
    w.user_update("r1", "ADD", "u").await;
    let kick = |secret: &str, body: serde_json::Value| {
        let (addr, auth) = (server.addr.clone(), format!("Bearer {secret}"));
        async move {
            common::http::request(
                &addr,
                "POST",
                "/admin/kick",
                &[("Authorization", auth.as_str())],
                &body.to_string(),
            )
            .await
        }
    };
    let r = kick("wrong", json!({"appID": 1, "roomID": "r1", "userID": "u"})).await;
    assert_eq!(r.status, 401);
    let r = kick(
        secret(1),
        json!({"appID": 1, "roomID": "r1", "userID": "nobody"}),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (404, json!(1_002_002))
    );
    let r = kick(
        secret(1),
        json!({"appID": 1, "roomID": "r1", "userID": "u"}),
    )
    .await;
    assert_eq!((r.status, r.json()["code"].clone()), (200, json!(0)));
    let e = u.room_event("roomStateChanged", "r1").await;
    assert_eq!(
        (e["reason"].as_str(), e["errorCode"].as_u64()),
        (Some("KICKOUT"), Some(1_002_055))
    );
    w.user_update("r1", "DELETE", "u").await;
    // Still in r2.
    u.ok(
        "sendBroadcastMessage",
        json!({"roomID": "r2", "message": "here"}),
    )
    .await;
    u.fails(
        "sendBroadcastMessage",
        json!({"roomID": "r1", "message": "x"}),
        1_009_005,
    )
    .await;
}

#[tokio::test]
async fn app_wide_login_rate_limit() {
    let server = TestServer::start("loginPerAppPerSec = 3");
    let mut codes = Vec::new();
    let mut clients = Vec::new();
    for i in 0..4 {
        let mut c = server.client(1).await;
        let r = c
            .request(
                "loginRoom",
                json!({"roomID": format!("room{i}"), "token": token(1, &format!("u{i}")),
                                              "user": {"userID": format!("u{i}")}}),
            )
            .await;
        codes.push(r["code"].as_u64().unwrap());
        clients.push(c);
    }
    assert_eq!(codes, vec![0, 0, 0, 1_002_071]);
    // The app budget is per app: app 3 is not affected.
    let mut other = server.client(3).await;
    other.login(3, "x", "room0").await;
}
