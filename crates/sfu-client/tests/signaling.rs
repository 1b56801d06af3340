//! The client's signaling against an in-process server (`sfu-core` with the
//! `--dev` app): login, broadcast between two clients, events, error codes
//! surfacing as `ClientError::Server`, pipelined requests matched by id, and
//! the unknown-app close, and heartbeats keeping a session alive.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use room_signal::token::{mint, Claims};
use room_signal::SignalConfig;
use serde_json::json;
use sfu_client::{Client, ClientError, ConnectOptions};
use sfu_core::{Server, ServerConfig};

const WAIT: Duration = Duration::from_secs(5);

async fn start_server() -> anyhow::Result<String> {
    start_server_with(SignalConfig::dev()).await
}

async fn start_server_with(signal: SignalConfig) -> anyhow::Result<String> {
    let server = Server::bind(ServerConfig {
        bind: "127.0.0.1:0".parse()?,
        signal,
        media: None,
        http: Default::default(),
        dev: false,
        admin_token: None,
        webhooks: Default::default(),
        cluster: None,
    })
    .await?;
    let addr = server.local_addr()?.to_string();
    tokio::spawn(server.run(std::future::pending()));
    Ok(addr)
}

fn token(user: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = Claims {
        app_id: 1,
        user_id: user.into(),
        iat: now,
        exp: now + 3600,
        room_id: None,
        privilege: None,
        stream_id_list: None,
    };
    mint("devsecret", &claims)
}

async fn login(addr: &str, room: &str, user: &str) -> anyhow::Result<Client> {
    let client = Client::connect(addr, 1).await?;
    client
        .login_room(room, &token(user), user, &format!("{user} name"), true)
        .await?;
    Ok(client)
}

#[tokio::test]
async fn two_clients_broadcast_in_a_room() -> anyhow::Result<()> {
    let addr = start_server().await?;
    let alice = login(&addr, "r1", "alice").await?;
    let bob = Client::connect(&addr, 1).await?;
    let res = bob
        .login_room("r1", &token("bob"), "bob", "bob name", true)
        .await?;
    assert_eq!(
        res["userList"],
        json!([{"userID": "alice", "userName": "alice name"}])
    );

    // Alice logged in with userUpdate and hears bob arrive.
    let joined = alice.wait_event("roomUserUpdate", WAIT).await?;
    assert_eq!(joined.fields["roomID"], "r1");
    assert_eq!(joined.fields["updateType"], "ADD");
    assert_eq!(joined.fields["userList"][0]["userID"], "bob");

    let id = bob.send_broadcast_message("r1", "hello alice").await?;
    let got = alice.wait_event("IMRecvBroadcastMessage", WAIT).await?;
    assert_eq!(got.fields["roomID"], "r1");
    let msg = &got.fields["messageList"][0];
    assert_eq!(msg["message"], "hello alice");
    assert_eq!(msg["messageID"], json!(id));
    assert_eq!(
        msg["fromUser"],
        json!({"userID": "bob", "userName": "bob name"})
    );

    // The sender never hears its own message.
    assert!(bob
        .wait_event("IMRecvBroadcastMessage", Duration::from_millis(200))
        .await
        .is_err());

    alice.send_custom_command("r1", "ping", &["bob"]).await?;
    let cmd = bob.wait_event("IMRecvCustomCommand", WAIT).await?;
    assert_eq!(cmd.fields["command"], "ping");
    assert_eq!(cmd.fields["fromUser"]["userID"], "alice");

    alice.set_room_extra_info("r1", "topic", "rust").await?;
    let info = bob.wait_event("roomExtraInfoUpdate", WAIT).await?;
    assert_eq!(info.fields["roomExtraInfoList"][0]["key"], "topic");
    assert_eq!(info.fields["roomExtraInfoList"][0]["value"], "rust");

    let barrage = alice.send_barrage_message("r1", "woo").await?;
    let got = bob.wait_event("IMRecvBarrageMessage", WAIT).await?;
    assert_eq!(got.fields["messageList"][0]["messageID"], json!(barrage));

    // Bob leaves: alice hears it.
    bob.logout_room(Some("r1")).await?;
    let left = alice.wait_event("roomUserUpdate", WAIT).await?;
    assert_eq!(left.fields["updateType"], "DELETE");
    Ok(())
}

#[tokio::test]
async fn server_errors_carry_the_contract_code() -> anyhow::Result<()> {
    let addr = start_server().await?;
    let alice = Client::connect(&addr, 1).await?;
    alice.enable_multi_room(true).await?;
    alice
        .login_room("r1", &token("alice"), "alice", "alice", false)
        .await?;
    alice
        .login_room("r2", &token("alice"), "alice", "alice", false)
        .await?;

    let again = alice
        .login_room("r1", &token("alice"), "alice", "alice", false)
        .await;
    assert_eq!(
        again.as_ref().err().and_then(ClientError::code),
        Some(1_002_056),
        "{again:?}"
    );
    let twice = alice.enable_multi_room(true).await;
    assert_eq!(twice.err().and_then(|e| e.code()), Some(1_001_020));
    let unknown = alice.logout_room(Some("nowhere")).await;
    assert_eq!(unknown.err().and_then(|e| e.code()), Some(1_002_002));
    let other_user = alice
        .login_room("r3", &token("mallory"), "mallory", "m", false)
        .await;
    assert_eq!(other_user.err().and_then(|e| e.code()), Some(1_002_018));
    let empty = alice.send_broadcast_message("r1", "").await;
    match empty {
        Err(ClientError::Server { code, message }) => {
            assert_eq!(code, 1_009_001);
            assert!(!message.is_empty());
        }
        other => panic!("expected 1009001, got {other:?}"),
    }
    let malformed = alice.request("noSuchOp", json!({})).await;
    assert_eq!(malformed.err().and_then(|e| e.code()), Some(1_000_001));

    // The connection is still usable, and logging out of everything works.
    alice.logout_room(None).await?;
    alice.logout_room(None).await?;
    Ok(())
}

#[tokio::test]
async fn pipelined_requests_are_matched_by_id() -> anyhow::Result<()> {
    let addr = start_server().await?;
    let alice = login(&addr, "r1", "alice").await?;
    let _bob = login(&addr, "r1", "bob").await?;
    // Interleave successes and failures; each caller gets its own answer.
    let (a, b, c, d) = tokio::join!(
        alice.set_room_extra_info("r1", "k1", "v1"),
        alice.logout_room(Some("r9")),
        alice.send_custom_command("r1", "hi", &[]),
        alice.request(
            "setRoomExtraInfo",
            json!({"roomID": "r1", "key": "", "value": "x"})
        ),
    );
    a?;
    assert_eq!(b.err().and_then(|e| e.code()), Some(1_002_002));
    c?;
    assert_eq!(d.err().and_then(|e| e.code()), Some(1_002_014));

    // A raw frame with an unreadable id comes back as an unmatched response.
    alice.send_raw("{not json")?;
    let unmatched = alice
        .wait_event(sfu_client::signal::UNMATCHED_RESPONSE, WAIT)
        .await?;
    assert_eq!(unmatched.fields["code"], json!(1_000_001));
    assert_eq!(unmatched.fields["id"], serde_json::Value::Null);
    Ok(())
}

#[tokio::test]
async fn unknown_app_gets_an_error_event_and_a_close() -> anyhow::Result<()> {
    let addr = start_server().await?;
    let client = Client::connect(&format!("http://{addr}"), 4242).await?;
    let err = client.wait_event("error", WAIT).await?;
    assert_eq!(err.fields["code"], json!(1_001_004));
    // The server closes with 1008; requests then fail with that reason.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !client.is_closed() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match client.close_reason() {
        Some(ClientError::Closed { code, .. }) => assert_eq!(code, Some(1008)),
        other => panic!("expected a close with 1008, got {other:?}"),
    }
    assert!(matches!(
        client.heartbeat().await,
        Err(ClientError::Closed { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn heartbeats_keep_the_session_alive() -> anyhow::Result<()> {
    let mut signal = SignalConfig::dev();
    signal.limits.heartbeat_timeout_ms = 600;
    let addr = start_server_with(signal).await?;
    let beating = ConnectOptions {
        heartbeat: Some(Duration::from_millis(150)),
        ..ConnectOptions::default()
    };
    let alive = Client::connect_with(&addr, 1, beating).await?;
    let silent = ConnectOptions {
        heartbeat: None,
        ..ConnectOptions::default()
    };
    let quiet = Client::connect_with(&addr, 1, silent).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The silent one was ended with 4008; the other still answers.
    match quiet.close_reason() {
        Some(ClientError::Closed { code, .. }) => assert_eq!(code, Some(4008)),
        other => panic!("expected a 4008 close, got {other:?}"),
    }
    alive.heartbeat().await?;
    alive
        .login_room("r1", &token("alice"), "alice", "a", false)
        .await?;
    Ok(())
}
