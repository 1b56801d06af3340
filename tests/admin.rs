//! The admin REST API (`/admin/v1/apps/{appID}/…`) against a running
//! server: who may call it, what it lists, and what members see when the
//! server kicks, closes a room, sets extra info, broadcasts or removes a
//! stream.

mod common;

use std::time::Duration;

use common::http::{request, HttpResponse};
use common::media::*;
use common::*;
use serde_json::{json, Value};

const ADMIN: &str = "the-admin-token";

fn config() -> String {
    format!(
        "[server]\nmediaWorkers = 2\nadminToken = \"{ADMIN}\"\n{}",
        common::APPS
    )
}

async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    bearer: &str,
    body: &str,
) -> HttpResponse {
    let auth = format!("Bearer {bearer}");
    request(
        &server.addr,
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .await
}

/// `call` that must answer `200` with code 0.
async fn ok(server: &TestServer, method: &str, path: &str, body: &str) -> Value {
    let r = call(server, method, path, secret(1), body).await;
    assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    let v = r.json();
    assert_eq!(v["code"], 0, "{v}");
    v
}

fn status_code(r: &HttpResponse) -> (u16, u64) {
    (r.status, r.json()["code"].as_u64().unwrap_or(u64::MAX))
}

#[tokio::test]
async fn only_the_apps_secret_or_the_admin_token_opens_the_api() {
    let server = TestServer::start_with(&config());
    let mut alice = server.client(1).await;
    alice.login(1, "alice", "r1").await;
    let rooms = "/admin/v1/apps/1/rooms";
    let none = request(&server.addr, "GET", rooms, &[], "").await;
    assert_eq!(status_code(&none), (401, 1002067));
    let basic = request(
        &server.addr,
        "GET",
        rooms,
        &[("Authorization", "Basic eDp5")],
        "",
    )
    .await;
    assert_eq!(status_code(&basic), (401, 1002067));
    // An empty bearer is no bearer.
    let empty = call(&server, "GET", rooms, "", "").await;
    assert_eq!(status_code(&empty), (401, 1002067));
    for wrong in ["secret-on", "secret-one2", "secret-two", "x"] {
        let r = call(&server, "GET", rooms, wrong, "").await;
        assert_eq!(status_code(&r), (401, 1002033), "bearer {wrong:?}");
    }
    // Another app's secret opens only that app.
    let two = call(&server, "GET", "/admin/v1/apps/2/rooms", secret(2), "").await;
    assert_eq!(two.status, 200);
    assert_eq!(two.json()["rooms"], json!([]));
    // An unknown app looks like a wrong secret, unless the admin token asks.
    let unknown = call(&server, "GET", "/admin/v1/apps/99/rooms", secret(1), "").await;
    assert_eq!(status_code(&unknown), (401, 1002033));
    let unknown = call(&server, "GET", "/admin/v1/apps/99/rooms", ADMIN, "").await;
    assert_eq!(status_code(&unknown), (404, 1001004));
    for bearer in [secret(1), ADMIN] {
        let r = call(&server, "GET", rooms, bearer, "").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.json(),
            json!({"code": 0, "rooms": [{"roomID": "r1", "memberCount": 1, "streamCount": 0}]})
        );
    }
    // A path that is no app ID.
    let bad = call(&server, "GET", "/admin/v1/apps/x/rooms", secret(1), "").await;
    assert_eq!(status_code(&bad), (400, 1000001));
    // The document is public and lists every operation.
    let doc = request(&server.addr, "GET", "/admin/v1/openapi.json", &[], "").await;
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert!(doc["paths"]["/admin/v1/apps/{appID}/rooms/{roomID}"]["delete"].is_object());
}

#[tokio::test]
async fn rooms_kick_close_extra_info_and_broadcast_as_the_server() {
    let server = TestServer::start_with(&config());
    let mut alice = server.client(1).await;
    alice.enable_multi_room().await;
    alice.login(1, "alice", "r1").await;
    alice.login(1, "alice", "r2").await;
    let mut bob = server.client(1).await;
    bob.login(1, "bob", "r1").await;
    let mut carol = server.client(1).await;
    carol.login(1, "carol", "r1").await;

    let room = ok(&server, "GET", "/admin/v1/apps/1/rooms/r1", "").await;
    let users: Vec<&str> = room["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userID"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["alice", "bob", "carol"], "join order: {room}");
    assert_eq!(room["streams"], json!([]));
    let missing = call(
        &server,
        "GET",
        "/admin/v1/apps/1/rooms/nobody",
        secret(1),
        "",
    )
    .await;
    assert_eq!(status_code(&missing), (404, 1002002));
    let illegal = call(
        &server,
        "GET",
        "/admin/v1/apps/1/rooms/a%3Ab",
        secret(1),
        "",
    )
    .await;
    assert_eq!(status_code(&illegal), (400, 1002012));

    // Extra info and a broadcast from the server reach every member.
    ok(
        &server,
        "PUT",
        "/admin/v1/apps/1/rooms/r1/extra-info",
        r#"{"key":"topic","value":"launch"}"#,
    )
    .await;
    for c in [&mut alice, &mut bob, &mut carol] {
        let e = c.room_event("roomExtraInfoUpdate", "r1").await;
        let list = &e["roomExtraInfoList"][0];
        assert_eq!(
            (&list["key"], &list["value"]),
            (&json!("topic"), &json!("launch"))
        );
        assert_eq!(list["updateUser"]["userID"], "$server");
    }
    let room = ok(&server, "GET", "/admin/v1/apps/1/rooms/r1", "").await;
    assert_eq!(room["extraInfoList"][0]["updateUser"]["userID"], "$server");
    let second = call(
        &server,
        "PUT",
        "/admin/v1/apps/1/rooms/r1/extra-info",
        secret(1),
        r#"{"key":"other","value":"x"}"#,
    )
    .await;
    assert_eq!(status_code(&second), (400, 1002017));
    let bad = call(
        &server,
        "PUT",
        "/admin/v1/apps/1/rooms/r1/extra-info",
        secret(1),
        "{",
    )
    .await;
    assert_eq!(status_code(&bad), (400, 1000001));

    let sent = ok(
        &server,
        "POST",
        "/admin/v1/apps/1/rooms/r1/broadcast",
        r#"{"message":"maintenance at noon"}"#,
    )
    .await;
    // A member's broadcast comes next in the same numbering.
    let next = bob
        .ok(
            "sendBroadcastMessage",
            json!({"roomID": "r1", "message": "hi"}),
        )
        .await;
    assert_eq!(
        next["messageID"].as_u64(),
        Some(sent["messageID"].as_u64().unwrap() + 1)
    );
    for c in [&mut alice, &mut bob, &mut carol] {
        let e = c.room_event("IMRecvBroadcastMessage", "r1").await;
        let m = &e["messageList"][0];
        assert_eq!(
            m["fromUser"],
            json!({"userID": "$server", "userName": "server"})
        );
        assert_eq!(m["message"], "maintenance at noon");
        assert_eq!(m["messageID"], sent["messageID"]);
    }
    let empty = call(
        &server,
        "POST",
        "/admin/v1/apps/1/rooms/r1/broadcast",
        secret(1),
        r#"{"message":""}"#,
    )
    .await;
    assert_eq!(status_code(&empty), (400, 1009001));
    // Nobody may log in as the server's user.
    let mut fake = server.client(1).await;
    fake.fails(
        "loginRoom",
        json!({"roomID": "r1", "token": token(1, "$server"), "user": {"userID": "$server"}}),
        1002006,
    )
    .await;

    // Kick: bob leaves r1, the others see him go.
    ok(&server, "DELETE", "/admin/v1/apps/1/rooms/r1/users/bob", "").await;
    let e = bob.room_event("roomStateChanged", "r1").await;
    assert_eq!(
        (&e["reason"], &e["errorCode"]),
        (&json!("KICKOUT"), &json!(1002055))
    );
    alice.user_update("r1", "DELETE", "bob").await;
    let again = call(
        &server,
        "DELETE",
        "/admin/v1/apps/1/rooms/r1/users/bob",
        secret(1),
        "",
    )
    .await;
    assert_eq!(status_code(&again), (404, 1002002));

    // Close r1: alice and carol are kicked out of it; alice stays in r2.
    let closed = ok(&server, "DELETE", "/admin/v1/apps/1/rooms/r1", "").await;
    assert_eq!(closed["kicked"], 2);
    for c in [&mut alice, &mut carol] {
        let e = c.room_event("roomStateChanged", "r1").await;
        assert_eq!(
            (&e["reason"], &e["errorCode"]),
            (&json!("KICKOUT"), &json!(1002055))
        );
    }
    let rooms = ok(&server, "GET", "/admin/v1/apps/1/rooms", "").await;
    assert_eq!(
        rooms["rooms"],
        json!([{"roomID": "r2", "memberCount": 1, "streamCount": 0}])
    );
    alice
        .ok(
            "sendBroadcastMessage",
            json!({"roomID": "r2", "message": "still here"}),
        )
        .await;
    alice
        .fails(
            "sendBroadcastMessage",
            json!({"roomID": "r1", "message": "x"}),
            1009005,
        )
        .await;
}

async fn event_of(client: &sfu_client::Client, name: &str) -> Value {
    client
        .wait_event(name, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("no {name}: {e}"))
        .fields
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_with_their_media_and_plays_and_a_removed_stream() {
    let server = TestServer::start_with(&config());
    let anchor = member(&server, "anchor", &["r1"]).await;
    let watcher = member(&server, "watcher", &["r1"]).await;
    let viewer = member(&server, "viewer", &["r2"]).await;
    let publisher = anchor
        .publish("cam", Some("r1"), vp8_opus())
        .await
        .expect("publish");
    event_of(&watcher, "roomStreamUpdate").await;
    let mut player = viewer.play("cam").await.expect("play");
    let sending = tokio::spawn(async move {
        send_clips(&publisher, Duration::from_secs(4)).await;
        publisher
    });
    // Media flows: wait until the player has video and the worker has
    // measured a bitrate for both tracks.
    while player.packets(sfu_client::MediaKind::Video) == 0 {
        player
            .recv_timeout(Duration::from_secs(5))
            .await
            .expect("media");
    }
    let stream = loop {
        let list = ok(&server, "GET", "/admin/v1/apps/1/streams", "").await;
        let s = list["streams"][0].clone();
        if s["video"]["bitsPerSecond"].as_u64() > Some(0)
            && s["audio"]["bitsPerSecond"].as_u64() > Some(0)
        {
            assert_eq!(list["streams"].as_array().unwrap().len(), 1);
            break s;
        }
        player
            .recv_timeout(Duration::from_secs(5))
            .await
            .expect("media");
    };
    assert_eq!(stream["streamID"], "cam");
    assert_eq!(stream["roomID"], "r1");
    assert_eq!(stream["user"]["userID"], "anchor");
    assert_eq!(stream["playerCount"], 1);
    assert_eq!(stream["video"]["codec"], "vp8");
    assert_eq!(stream["audio"]["codec"], "opus");
    let one = ok(&server, "GET", "/admin/v1/apps/1/streams/cam", "").await;
    assert_eq!(one["streamID"], "cam");
    let plays = ok(&server, "GET", "/admin/v1/apps/1/streams/cam/plays", "").await;
    assert_eq!(
        plays["plays"],
        json!([{"user": {"userID": "viewer", "userName": "viewer"}, "state": "PLAYING"}])
    );
    let room = ok(&server, "GET", "/admin/v1/apps/1/rooms/r1", "").await;
    assert_eq!(room["streams"][0]["streamID"], "cam");

    // Remove it: the room sees reason 6, the publisher NO_PUBLISH 1002055,
    // the player waits.
    ok(&server, "DELETE", "/admin/v1/apps/1/streams/cam", "").await;
    let deleted = event_of(&watcher, "roomStreamUpdate").await;
    assert_eq!(deleted["updateType"], "DELETE");
    let reason: Value = serde_json::from_str(deleted["extendedData"].as_str().unwrap()).unwrap();
    assert_eq!(
        reason,
        json!({"stream_delete_reason": [{"stream_id": "cam", "code": 6}]})
    );
    let state = event_of(&anchor, "publisherStateUpdate").await;
    assert_eq!(
        (&state["streamID"], &state["state"], &state["errorCode"]),
        (&json!("cam"), &json!("NO_PUBLISH"), &json!(1002055))
    );
    let waiting = event_of(&viewer, "playerStateUpdate").await;
    assert_eq!(
        (&waiting["state"], &waiting["errorCode"]),
        (&json!("PLAY_REQUESTING"), &json!(1004002))
    );
    let plays = ok(&server, "GET", "/admin/v1/apps/1/streams/cam/plays", "").await;
    assert_eq!(plays["plays"][0]["state"], "PLAY_REQUESTING");
    let gone = call(
        &server,
        "GET",
        "/admin/v1/apps/1/streams/cam",
        secret(1),
        "",
    )
    .await;
    assert_eq!(status_code(&gone), (404, 1004002));
    let again = call(
        &server,
        "DELETE",
        "/admin/v1/apps/1/streams/cam",
        secret(1),
        "",
    )
    .await;
    assert_eq!(status_code(&again), (404, 1004002));
    let list = ok(&server, "GET", "/admin/v1/apps/1/streams", "").await;
    assert_eq!(list["streams"], json!([]));
    // The ID is free again: the anchor publishes it anew.
    let _old = sending.await.expect("sender");
    anchor
        .publish("cam", Some("r1"), vp8_opus())
        .await
        .expect("publish again");
    let unknown = call(
        &server,
        "GET",
        "/admin/v1/apps/1/streams/nobody/plays",
        secret(1),
        "",
    )
    .await;
    assert_eq!(status_code(&unknown), (404, 1004002));
    let illegal = call(
        &server,
        "GET",
        "/admin/v1/apps/1/streams/a.b",
        secret(1),
        "",
    )
    .await;
    assert_eq!(status_code(&illegal), (400, 1000016));
}
