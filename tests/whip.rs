//! WHIP and WHEP over HTTP: the resource lifecycle, CORS, and every error
//! answered with an HTTP status and a `{code, message}` body.

mod common;

use common::http::{post_sdp, request, HttpResponse};
use common::*;
use serde_json::json;

/// A browser-like publish offer (Opus + VP8, send-only).
fn offer(direction: &str) -> String {
    let fp = (0..32)
        .map(|i| format!("{:02X}", i * 7 % 256))
        .collect::<Vec<_>>()
        .join(":");
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=msid-semantic: WMS stream",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuvwx",
        "a=ice-options:trickle",
        &format!("a=fingerprint:sha-256 {fp}"),
        "a=setup:actpass",
        "a=mid:0",
        &format!("a={direction}"),
        "a=msid:stream audio0",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=ssrc:1111 cname:test",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuvwx",
        "a=ice-options:trickle",
        &format!("a=fingerprint:sha-256 {fp}"),
        "a=setup:actpass",
        "a=mid:1",
        &format!("a={direction}"),
        "a=msid:stream video0",
        "a=rtcp-mux",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 nack",
        "a=rtcp-fb:96 nack pli",
        "a=ssrc:2222 cname:test",
        "",
    ]
    .join("\r\n")
}

#[tokio::test]
async fn whip_resource_lifecycle_and_whep_play() {
    let server = TestServer::start("");
    let mut watcher = server.client(1).await;
    watcher.login(1, "watcher", "r1").await;
    let bearer = format!("Bearer {}", token(1, "obs"));
    let sdp_headers = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/sdp"),
    ];

    let created = request(
        &server.addr,
        "POST",
        "/whip/r1/obs-cam",
        &sdp_headers,
        &offer("sendonly"),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("Content-Type"), Some("application/sdp"));
    assert!(created.body.starts_with("v=0"), "{}", created.body);
    assert!(
        created.body.contains("a=candidate:"),
        "answer has no candidate"
    );
    assert_eq!(created.header("Access-Control-Allow-Origin"), Some("*"));
    let location = created.header("Location").expect("Location").to_string();
    assert!(location.starts_with("/whip/resource/"), "{location}");

    // The WHIP user appears in the room with its stream.
    let add = watcher.room_event("roomStreamUpdate", "r1").await;
    assert_eq!(add["updateType"], "ADD");
    assert_eq!(add["streamList"][0]["streamID"], "obs-cam");
    assert_eq!(add["streamList"][0]["user"]["userID"], "obs");
    assert_eq!(
        watcher.user_update("r1", "ADD", "obs").await["roomID"],
        "r1"
    );

    // WHEP plays it from anywhere with a login token.
    let viewer = format!("Bearer {}", token(1, "viewer"));
    let play_headers = [
        ("Authorization", viewer.as_str()),
        ("Content-Type", "application/sdp"),
    ];
    let played = request(
        &server.addr,
        "POST",
        "/whep/obs-cam",
        &play_headers,
        &offer("recvonly"),
    )
    .await;
    assert_eq!(played.status, 201, "{}", played.body);
    let whep_location = played.header("Location").expect("Location").to_string();
    assert!(whep_location.starts_with("/whep/resource/"));

    // Trickle: right content type → 204, wrong → 415.
    let frag = [
        ("Content-Type", "application/trickle-ice-sdpfrag"),
        ("Authorization", bearer.as_str()),
    ];
    assert_eq!(
        request(
            &server.addr,
            "PATCH",
            &location,
            &frag,
            "a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n"
        )
        .await
        .status,
        204
    );
    assert_eq!(
        request(
            &server.addr,
            "PATCH",
            &location,
            &[
                ("Content-Type", "text/plain"),
                ("Authorization", bearer.as_str())
            ],
            "x"
        )
        .await
        .status,
        415
    );

    // A second WHIP publish of the same ID by another user conflicts.
    let other = format!("Bearer {}", token(1, "obs2"));
    let other_headers = [
        ("Authorization", other.as_str()),
        ("Content-Type", "application/sdp"),
    ];
    let again = request(
        &server.addr,
        "POST",
        "/whip/r2/obs-cam",
        &other_headers,
        &offer("sendonly"),
    )
    .await;
    assert_eq!(
        (again.status, again.json()["code"].clone()),
        (409, json!(1_003_028))
    );

    // DELETE by its owner ends the resource: the stream leaves the room (reason 1).
    let owner = [("Authorization", bearer.as_str())];
    assert_eq!(
        request(&server.addr, "DELETE", &location, &owner, "")
            .await
            .status,
        200
    );
    let del = watcher.room_event("roomStreamUpdate", "r1").await;
    assert_eq!(del["updateType"], "DELETE");
    let reasons: serde_json::Value =
        serde_json::from_str(del["extendedData"].as_str().unwrap()).unwrap();
    assert_eq!(
        reasons["stream_delete_reason"],
        json!([{"stream_id": "obs-cam", "code": 1}])
    );
    assert_eq!(
        request(&server.addr, "DELETE", &location, &owner, "")
            .await
            .status,
        404
    );
    // The WHEP play ended with its publisher: its resource is gone.
    let viewer_auth = [("Authorization", viewer.as_str())];
    let _ = request(&server.addr, "DELETE", &whep_location, &viewer_auth, "").await;
}

#[tokio::test]
async fn whip_and_whep_errors() {
    let server = TestServer::start("");
    let sdp = offer("sendonly");
    let ok_token = format!("Bearer {}", token(1, "u"));
    let post = |path: &'static str, auth: Option<String>, ctype: &'static str, body: String| {
        let addr = server.addr.clone();
        async move {
            let mut headers = vec![("Content-Type", ctype)];
            let auth_owned = auth.unwrap_or_default();
            if !auth_owned.is_empty() {
                headers.push(("Authorization", auth_owned.as_str()));
            }
            request(&addr, "POST", path, &headers, &body).await
        }
    };
    let r = post("/whip/r1/s", None, "application/sdp", sdp.clone()).await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (401, json!(1_002_067))
    );
    let r = post(
        "/whip/r1/s",
        Some("Bearer garbage".into()),
        "application/sdp",
        sdp.clone(),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (401, json!(1_002_033))
    );
    let wrong = format!("Bearer {}", sign("not-the-secret", &claims(1, "u")));
    let r = post("/whip/r1/s", Some(wrong), "application/sdp", sdp.clone()).await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (401, json!(1_002_033))
    );
    let r = post(
        "/whip/r1/s",
        Some(ok_token.clone()),
        "text/plain",
        sdp.clone(),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (400, json!(1_000_001))
    );
    let r = post(
        "/whip/r1/s",
        Some(ok_token.clone()),
        "application/sdp",
        "garbage".into(),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (400, json!(1_005_001))
    );
    let r = post(
        "/whip/r1/bad%20id",
        Some(ok_token.clone()),
        "application/sdp",
        sdp.clone(),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (400, json!(1_000_016))
    );
    let mut no_publish = claims(1, "u");
    no_publish["privilege"] = json!({"login": true, "publish": false});
    let r = post(
        "/whip/r1/s",
        Some(format!("Bearer {}", sign(secret(1), &no_publish))),
        "application/sdp",
        sdp.clone(),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (403, json!(1_003_072))
    );
    let r = post(
        "/whep/nope",
        Some(ok_token.clone()),
        "application/sdp",
        offer("recvonly"),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (404, json!(1_004_002))
    );
    let r = request(&server.addr, "DELETE", "/whep/resource/999", &[], "").await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (404, json!(1_004_002))
    );
    // The demo's token endpoint exists only in --dev mode.
    let r = request(&server.addr, "GET", "/dev/token?appID=1&userID=u", &[], "").await;
    assert_eq!(r.status, 404);
    // CORS preflight.
    let r = request(&server.addr, "OPTIONS", "/whip/r1/s", &[], "").await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(r
        .header("Access-Control-Allow-Methods")
        .unwrap_or_default()
        .contains("DELETE"));
    assert!(r
        .header("Access-Control-Allow-Headers")
        .unwrap_or_default()
        .contains("Authorization"));
    // A failed WHIP request left nothing behind: the ID is free.
    let r = post("/whip/r1/s", Some(ok_token), "application/sdp", sdp).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

/// Publish `stream` into `room` as `user` of app 1; returns the Location.
async fn publish(server: &TestServer, room: &str, stream: &str, user: &str) -> String {
    let bearer = format!("Bearer {}", token(1, user));
    let r = post_sdp(
        &server.addr,
        &format!("/whip/{room}/{stream}"),
        bearer.as_str(),
        &offer("sendonly"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.header("Location").expect("Location").to_string()
}

/// `DELETE path` with `Authorization: auth`.
async fn delete(server: &TestServer, path: &str, auth: &str) -> HttpResponse {
    request(&server.addr, "DELETE", path, &[("Authorization", auth)], "").await
}

#[tokio::test]
async fn resource_ids_are_random_and_only_the_owner_or_the_app_secret_may_delete() {
    let server = TestServer::start("");
    let mut watcher = server.client(1).await;
    watcher.login(1, "watcher", "r1").await;
    let location = publish(&server, "r1", "cam", "obs").await;
    let id = location.strip_prefix("/whip/resource/").expect("WHIP path");
    assert!(
        id.len() >= 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "id is not 128 bits of hex: {id}"
    );
    assert_eq!(
        watcher.room_event("roomStreamUpdate", "r1").await["updateType"],
        "ADD"
    );
    let other_app = format!("Bearer {}", token(2, "obs"));
    let other_user = format!("Bearer {}", token(1, "mallory"));
    let forged = format!("Bearer {}", sign("not-the-secret", &claims(1, "obs")));
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let refusals: [(Headers, u16, u64); 6] = [
        (&[], 401, 1_002_067),
        (&[("Authorization", "Bearer garbage")], 401, 1_002_033),
        (&[("Authorization", "Basic b2JzOm9icw==")], 401, 1_002_067),
        (&[("Authorization", forged.as_str())], 401, 1_002_033),
        (&[("Authorization", other_app.as_str())], 404, 1_004_002),
        (&[("Authorization", other_user.as_str())], 404, 1_004_002),
    ];
    for (headers, status, code) in refusals {
        for method in ["DELETE", "PATCH"] {
            let r = request(&server.addr, method, &location, headers, "").await;
            assert_eq!(
                (r.status, r.json()["code"].clone()),
                (status, json!(code)),
                "{method} with {headers:?}: {}",
                r.body
            );
            assert!(r.json()["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
    // The resource lives on: no DELETE reached the room.
    watcher.no_event("roomStreamUpdate").await;
    // Unknown and malformed ids are 404 JSON, whatever the token.
    let owner = format!("Bearer {}", token(1, "obs"));
    for path in [
        "/whip/resource/1",
        "/whip/resource/abc",
        "/whip/resource/%FF%FE",
        "/whip/resource/-5",
    ] {
        let r = delete(&server, path, owner.as_str()).await;
        assert_eq!(
            (r.status, r.json()["code"].clone()),
            (404, json!(1_004_002)),
            "{path}"
        );
    }
    // A WHIP id is not a WHEP resource.
    let r = delete(&server, &format!("/whep/resource/{id}"), owner.as_str()).await;
    assert_eq!(r.status, 404);
    // The owner's token deletes it.
    let r = delete(&server, &location, owner.as_str()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        watcher.room_event("roomStreamUpdate", "r1").await["updateType"],
        "DELETE"
    );
    // The app's secret deletes any of the app's resources.
    let second = publish(&server, "r1", "cam2", "obs2").await;
    assert_ne!(second, location);
    let secret_auth = format!("Bearer {}", secret(1));
    let r = delete(&server, &second, secret_auth.as_str()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        watcher.room_event("roomStreamUpdate", "r1").await["streamList"][0]["streamID"],
        "cam2"
    );
    // Another app's secret does not.
    let third = publish(&server, "r1", "cam3", "obs3").await;
    let other_secret = format!("Bearer {}", secret(2));
    let r = delete(&server, &third, other_secret.as_str()).await;
    assert_eq!(r.status, 401, "{}", r.body);
    // WHEP resources have the same owner rule: the publisher of the stream
    // is not the viewer.
    let viewer = format!("Bearer {}", token(1, "viewer"));
    let played = post_sdp(
        &server.addr,
        "/whep/cam3",
        viewer.as_str(),
        &offer("recvonly"),
    )
    .await;
    assert_eq!(played.status, 201, "{}", played.body);
    let whep = played.header("Location").expect("Location").to_string();
    let publisher = format!("Bearer {}", token(1, "obs3"));
    let r = delete(&server, &whep, publisher.as_str()).await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (404, json!(1_004_002))
    );
    let r = request(&server.addr, "DELETE", &whep, &[], "").await;
    assert_eq!(r.status, 401);
    let r = delete(&server, &whep, viewer.as_str()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = delete(&server, &whep, viewer.as_str()).await;
    assert_eq!(r.status, 404, "deleted once");
}
