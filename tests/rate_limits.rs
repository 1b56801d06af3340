//! Rate limits end to end: broadcast (per user and per room), barrage, custom
//! commands (to one / to several), room extra info and logins, each with its
//! code; receivers get exactly what was accepted; a rejected call consumes
//! nothing; buckets refill.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const BROADCAST_TOO_FREQUENT: u64 = 1_009_015;
const ROOM_LIMITED: u64 = 1_002_072;
const SIGNALING_LIMITED: u64 = 1_002_073;

/// Send every `(op, fields)` back to back (ids from 1_000_000), then read the
/// responses, which must come back in request order.
async fn pipelined(c: &mut Client, reqs: &[(&str, Value)]) -> Vec<Value> {
    for (i, (op, fields)) in reqs.iter().enumerate() {
        let mut req = fields.clone();
        req["id"] = json!(1_000_000 + i);
        req["op"] = json!(op);
        c.send_text(&req.to_string());
    }
    let mut out = Vec::with_capacity(reqs.len());
    for i in 0..reqs.len() {
        let v = c.response().await;
        assert_eq!(v["id"], json!(1_000_000 + i), "response out of order: {v}");
        out.push(v);
    }
    out
}

/// Put every client's requests on the wire before awaiting any answer, so
/// that the server sees the whole burst within one refill interval; returns
/// each client's answer codes.
async fn burst(clients: &mut [Client], reqs: &[Vec<(&str, Value)>]) -> Vec<Vec<u64>> {
    for (c, reqs) in clients.iter_mut().zip(reqs) {
        for (i, (op, fields)) in reqs.iter().enumerate() {
            let mut req = fields.clone();
            req["id"] = json!(2_000_000 + i);
            req["op"] = json!(op);
            c.send_text(&req.to_string());
        }
    }
    let mut out = Vec::new();
    for (c, reqs) in clients.iter_mut().zip(reqs) {
        let mut codes = Vec::new();
        for i in 0..reqs.len() {
            let v = c.response().await;
            assert_eq!(v["id"], json!(2_000_000 + i), "response out of order: {v}");
            codes.push(v["code"].as_u64().unwrap());
        }
        out.push(codes);
    }
    out
}

fn codes(answers: &[Value]) -> Vec<u64> {
    answers
        .iter()
        .map(|v| v["code"].as_u64().unwrap())
        .collect()
}

/// Let pending frames arrive, then return the `name` events (with `roomID`
/// `room`) received so far.
async fn received(c: &mut Client, name: &str, room: &str) -> Vec<Value> {
    c.no_event("none").await;
    let all = c.events_named(name);
    for e in &all {
        assert_eq!(e["roomID"], json!(room), "{e}");
    }
    all
}

fn messages(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .flat_map(|e| e["messageList"].as_array().unwrap().clone())
        .map(|m| m["message"].as_str().unwrap().to_string())
        .collect()
}

fn msg(room: &str, text: &str) -> Value {
    json!({"roomID": room, "message": text})
}

async fn clients_in(server: &TestServer, room: &str, users: &[&str]) -> Vec<Client> {
    let mut out = Vec::new();
    for u in users {
        let mut c = server.client(1).await;
        c.login(1, u, room).await;
        out.push(c);
    }
    out
}

#[tokio::test]
async fn broadcast_two_per_second_per_user_then_refill() {
    let server = TestServer::start("");
    let mut cs = clients_in(&server, "r1", &["alice", "bob", "carol"]).await;
    let reqs: Vec<_> = (1..=3)
        .map(|i| ("sendBroadcastMessage", msg("r1", &format!("a{i}"))))
        .collect();
    let answers = pipelined(&mut cs[0], &reqs).await;
    assert_eq!(
        codes(&answers),
        vec![0, 0, BROADCAST_TOO_FREQUENT],
        "{answers:?}"
    );
    // Another user in the room is not limited by alice's budget.
    cs[2].ok("sendBroadcastMessage", msg("r1", "c1")).await;
    let bob = &mut cs[1];
    let got = received(bob, "IMRecvBroadcastMessage", "r1").await;
    assert_eq!(messages(&got), vec!["a1", "a2", "c1"]);
    bob.clear_events();

    // The bucket refills: after a bit over a second alice may send again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    cs[0].ok("sendBroadcastMessage", msg("r1", "a4")).await;
    let got = received(&mut cs[1], "IMRecvBroadcastMessage", "r1").await;
    assert_eq!(messages(&got), vec!["a4"]);
}

#[tokio::test]
async fn broadcast_ten_per_second_per_room() {
    let server = TestServer::start("");
    let users = ["u1", "u2", "u3", "u4", "u5", "u6"];
    let mut senders = clients_in(&server, "r1", &users).await;
    let mut listener = server.client(1).await;
    listener.login(1, "listener", "r1").await;
    // Another room has its own budget.
    let mut other = clients_in(&server, "r2", &["x1", "x2"]).await;

    let reqs: Vec<Vec<_>> = users
        .iter()
        .map(|u| {
            (1..=2)
                .map(|n| ("sendBroadcastMessage", msg("r1", &format!("{u}-{n}"))))
                .collect()
        })
        .collect();
    let answers = burst(&mut senders, &reqs).await;
    let mut accepted: Vec<String> = Vec::new();
    for (u, codes) in users.iter().zip(&answers) {
        for (n, code) in codes.iter().enumerate() {
            if *code == 0 {
                accepted.push(format!("{u}-{}", n + 1));
            }
        }
    }
    let mut results: Vec<u64> = answers.concat();
    results.sort_unstable();
    let mut want = vec![0; 10];
    want.extend([BROADCAST_TOO_FREQUENT; 2]);
    assert_eq!(results, want);
    other[0].ok("sendBroadcastMessage", msg("r2", "x")).await;
    assert_eq!(
        messages(&received(&mut other[1], "IMRecvBroadcastMessage", "r2").await),
        vec!["x"]
    );

    // The listener got exactly the ten accepted messages.
    let got = received(&mut listener, "IMRecvBroadcastMessage", "r1").await;
    let mut got_messages = messages(&got);
    got_messages.sort();
    accepted.sort();
    assert_eq!(got_messages, accepted);
    let ids: Vec<u64> = got
        .iter()
        .map(|e| e["messageList"][0]["messageID"].as_u64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

#[tokio::test]
async fn rejected_broadcast_consumes_nothing() {
    let server = TestServer::start("");
    let users = ["u1", "u2", "u3", "u4", "u5", "late"];
    let mut cs = clients_in(&server, "r1", &users).await;
    // u1..u5 use up the room's ten.
    let reqs: Vec<Vec<_>> = (0..5)
        .map(|_| {
            vec![
                ("sendBroadcastMessage", msg("r1", "m")),
                ("sendBroadcastMessage", msg("r1", "m")),
            ]
        })
        .collect();
    assert_eq!(burst(&mut cs[..5], &reqs).await, vec![vec![0, 0]; 5]);
    // `late` is refused twice by the room limit; that must not spend its own
    // per-user budget (2/s, one cell per 500 ms).
    let late = &mut cs[5];
    let reqs = [
        ("sendBroadcastMessage", msg("r1", "no")),
        ("sendBroadcastMessage", msg("r1", "no")),
    ];
    assert_eq!(
        codes(&pipelined(late, &reqs).await),
        vec![BROADCAST_TOO_FREQUENT; 2]
    );
    // 300 ms later the room has cells again (10/s) but a spent per-user bucket
    // would still be empty (2/s): both of late's cells must be there.
    tokio::time::sleep(Duration::from_millis(300)).await;
    late.ok("sendBroadcastMessage", msg("r1", "yes")).await;
}

#[tokio::test]
async fn broadcast_refused_per_user_spends_no_room_budget() {
    let server = TestServer::start("");
    let users = ["u1", "u2", "u3", "u4", "u5", "u6"];
    let mut cs = clients_in(&server, "r1", &users).await;
    // u1: two accepted, then five refused by its own limit.
    let reqs: Vec<_> = (0..7)
        .map(|i| ("sendBroadcastMessage", msg("r1", &format!("u1-{i}"))))
        .collect();
    let mut want = vec![0, 0];
    want.extend([BROADCAST_TOO_FREQUENT; 5]);
    assert_eq!(codes(&pipelined(&mut cs[0], &reqs).await), want);
    // The room still has eight of its ten: u2..u5 may send two each.
    let reqs: Vec<Vec<_>> = users[1..5]
        .iter()
        .map(|u| {
            (0..2)
                .map(|n| ("sendBroadcastMessage", msg("r1", &format!("{u}-{n}"))))
                .collect()
        })
        .collect();
    assert_eq!(burst(&mut cs[1..5], &reqs).await, vec![vec![0, 0]; 4]);
    // Now the ten are spent: u6, with a fresh per-user budget, is refused.
    cs[5]
        .fails(
            "sendBroadcastMessage",
            msg("r1", "u6"),
            BROADCAST_TOO_FREQUENT,
        )
        .await;
}

#[tokio::test]
async fn barrage_twenty_per_second_per_room() {
    let server = TestServer::start("");
    let mut cs = clients_in(&server, "r1", &["alice", "bob", "carol"]).await;
    // alice and bob share the room's budget: 12 + 9 = 21.
    let batch = |who: &str, n: usize| -> Vec<(&'static str, Value)> {
        (1..=n)
            .map(|i| ("sendBarrageMessage", msg("r1", &format!("{who}{i}"))))
            .collect()
    };
    let started = std::time::Instant::now();
    let a = pipelined(&mut cs[0], &batch("a", 12)).await;
    assert_eq!(codes(&a), vec![0; 12]);
    let b = pipelined(&mut cs[1], &batch("b", 9)).await;
    // The bucket refills one barrage per 50 ms: on a loaded machine the
    // two batches may straddle a refill, and then b9 fits too.
    let refilled = started.elapsed() >= std::time::Duration::from_millis(50);
    let b_codes = codes(&b);
    assert_eq!(b_codes[..8], vec![0; 8][..], "{b:?}");
    if refilled {
        assert!(matches!(b_codes[8], 0 | ROOM_LIMITED), "{b:?}");
    } else {
        assert_eq!(b_codes[8], ROOM_LIMITED, "{b:?}");
    }
    assert!(b[..8].iter().all(|v| v["messageID"].is_string()), "{b:?}");
    if b_codes[8] == 0 {
        return;
    }

    // Receivers got at most the twenty accepted ones, never the dropped one.
    let got = messages(&received(&mut cs[2], "IMRecvBarrageMessage", "r1").await);
    assert!(!got.is_empty() && got.len() <= 20, "{got:?}");
    assert!(
        !got.contains(&"b9".to_string()),
        "dropped barrage delivered: {got:?}"
    );
    let got = messages(&received(&mut cs[0], "IMRecvBarrageMessage", "r1").await);
    assert!(
        got.iter().all(|m| m.starts_with('b')),
        "alice got her own: {got:?}"
    );
    assert!(
        !got.contains(&"b9".to_string()),
        "dropped barrage delivered: {got:?}"
    );
}

#[tokio::test]
async fn custom_command_to_one_two_hundred_per_second() {
    let server = TestServer::start("");
    let mut cs = clients_in(&server, "r1", &["alice", "bob", "carol"]).await;
    let reqs: Vec<_> = (0..260)
        .map(|i| {
            let f = json!({"roomID": "r1", "command": format!("c{i}"), "toUserIDs": ["bob"]});
            ("sendCustomCommand", f)
        })
        .collect();
    let answers = codes(&pipelined(&mut cs[0], &reqs).await);
    // The burst is 200: the first 200 pass, then the limit bites.
    assert_eq!(answers[..200], vec![0; 200][..]);
    assert!(answers.contains(&SIGNALING_LIMITED), "never limited");
    assert!(answers.iter().all(|c| *c == 0 || *c == SIGNALING_LIMITED));
    let accepted = answers.iter().filter(|c| **c == 0).count();
    // bob got exactly the accepted commands; carol none.
    cs[1].no_event("none").await;
    let got = cs[1].events_named("IMRecvCustomCommand");
    assert_eq!(got.len(), accepted);
    let want: Vec<String> = (0..260)
        .filter(|i| answers[*i] == 0)
        .map(|i| format!("c{i}"))
        .collect();
    let got: Vec<String> = got
        .iter()
        .map(|e| e["command"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, want);
    cs[2].no_event("IMRecvCustomCommand").await;
    // Another sender in the room has its own budget.
    cs[2]
        .ok(
            "sendCustomCommand",
            json!({"roomID": "r1", "command": "x", "toUserIDs": ["bob"]}),
        )
        .await;
}

#[tokio::test]
async fn custom_command_to_several_ten_per_second() {
    let server = TestServer::start("");
    let mut cs = clients_in(&server, "r1", &["alice", "bob", "carol"]).await;
    let to = |list: Value, c: &str| {
        (
            "sendCustomCommand",
            json!({"roomID": "r1", "command": c, "toUserIDs": list}),
        )
    };
    let mut reqs: Vec<_> = (0..5).map(|i| to(json!([]), &format!("all{i}"))).collect();
    reqs.extend((0..5).map(|i| to(json!(["bob", "carol"]), &format!("two{i}"))));
    reqs.push(to(json!([]), "all-late"));
    reqs.push(to(json!(["bob", "carol"]), "two-late"));
    // To one user is a separate bucket.
    reqs.push(to(json!(["bob"]), "one"));
    let answers = codes(&pipelined(&mut cs[0], &reqs).await);
    let mut want = vec![0; 10];
    want.extend([SIGNALING_LIMITED, SIGNALING_LIMITED, 0]);
    assert_eq!(answers, want);

    let names = |c: &Client| -> Vec<String> {
        c.events_named("IMRecvCustomCommand")
            .iter()
            .map(|e| e["command"].as_str().unwrap().to_string())
            .collect()
    };
    cs[1].no_event("none").await;
    cs[2].no_event("none").await;
    let mut want_bob: Vec<String> = (0..5).map(|i| format!("all{i}")).collect();
    want_bob.extend((0..5).map(|i| format!("two{i}")));
    let want_carol = want_bob.clone();
    want_bob.push("one".into());
    assert_eq!(names(&cs[1]), want_bob);
    assert_eq!(names(&cs[2]), want_carol);
    // The budget is the sender's: bob may still send to several.
    cs[1]
        .ok(
            "sendCustomCommand",
            json!({"roomID": "r1", "command": "b", "toUserIDs": []}),
        )
        .await;
}

#[tokio::test]
async fn room_extra_info_ten_per_second_per_room() {
    let server = TestServer::start("");
    let mut cs = clients_in(&server, "r1", &["alice", "bob", "carol"]).await;
    let set = |v: String| {
        (
            "setRoomExtraInfo",
            json!({"roomID": "r1", "key": "k", "value": v}),
        )
    };
    let a = pipelined(
        &mut cs[0],
        &(0..6).map(|i| set(format!("a{i}"))).collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(codes(&a), vec![0; 6]);
    let b = pipelined(
        &mut cs[1],
        &(0..5).map(|i| set(format!("b{i}"))).collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(codes(&b), vec![0, 0, 0, 0, ROOM_LIMITED], "{b:?}");
    // carol saw the ten accepted values, the last one being b3.
    let got = received(&mut cs[2], "roomExtraInfoUpdate", "r1").await;
    assert_eq!(got.len(), 10);
    assert_eq!(got[9]["roomExtraInfoList"][0]["value"], "b3");
    // A late joiner sees the last accepted value, not the refused one.
    let mut dave = server.client(1).await;
    let res = dave.login(1, "dave", "r1").await;
    assert_eq!(res["extraInfoList"][0]["value"], "b3");
}

#[tokio::test]
async fn login_per_room_limit() {
    let server = TestServer::start("loginPerRoomPerSec = 3");
    let mut cs = clients_in(&server, "r1", &["u1", "u2", "u3"]).await;
    let mut fourth = server.client(1).await;
    let login = |room: &str| json!({"roomID": room, "token": token(1, "u4"), "user": {"userID": "u4", "userName": "u4"}});
    fourth.fails("loginRoom", login("r1"), ROOM_LIMITED).await;
    // The token is checked before the limit.
    let bad = json!({"roomID": "r1", "token": token(1, "zzz"), "user": {"userID": "u4", "userName": "u4"}});
    fourth.fails("loginRoom", bad, 1_002_077).await;
    // Nobody saw u4 arrive.
    cs[0].no_event("none").await;
    let adds: Vec<Value> = cs[0].events_named("roomUserUpdate");
    assert!(
        adds.iter().all(|e| e["userList"][0]["userID"] != "u4"),
        "{adds:?}"
    );
    cs[0].clear_events();
    // Another room is not limited.
    let mut elsewhere = server.client(1).await;
    elsewhere
        .ok(
            "loginRoom",
            json!({"roomID": "r2", "token": token(1, "u5"), "user": {"userID": "u5"}}),
        )
        .await;
    // After the bucket refills the refused user gets in.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = fourth.ok("loginRoom", login("r1")).await;
    assert_eq!(res["streamList"], json!([]));
    let e = cs[0].room_event("roomUserUpdate", "r1").await;
    assert_eq!(
        (&e["updateType"], &e["userList"][0]["userID"]),
        (&json!("ADD"), &json!("u4"))
    );
}
