//! The HTTP listener's limits and the WebSocket's RFC 6455 conformance: each
//! limit is configured small, hit, and answered as `docs/protocol.md` says
//! (`{code, message}` JSON bodies, close codes), and each refusal is one
//! that would not happen without the limit.

mod common;

use common::http::{post_sdp, read_response, request, wait_closed};
use common::*;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// The standard apps with `server` and `limits` lines.
fn start(server: &str, limits: &str) -> TestServer {
    TestServer::start_with(&format!("[server]\n{server}\n[limits]\n{limits}\n{APPS}"))
}

fn assert_json_error(r: &common::http::HttpResponse, status: u16, code: u64) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json"),
        "{}",
        r.body
    );
    let v = r.json();
    assert_eq!(v["code"], json!(code), "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

/// A raw TCP connection that sent `head` (and nothing more).
async fn send(server: &TestServer, head: &str) -> TcpStream {
    let mut s = TcpStream::connect(&server.addr).await.expect("connect");
    s.write_all(head.as_bytes()).await.expect("write");
    s
}

#[tokio::test]
async fn connection_limit_answers_503_json_and_closes() {
    let server = start("maxHttpConnections = 3", "");
    // Two WebSockets keep their TCP places after the upgrade.
    let mut a = server.client(1).await;
    let mut b = server.client(1).await;
    a.ok("heartbeat", json!({})).await;
    b.ok("heartbeat", json!({})).await;
    // The third connection is served (and kept alive).
    let mut third = send(&server, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(read_response(&mut third, WAIT).await.status, 200);
    // The fourth is refused.
    let mut fourth = send(&server, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let r = read_response(&mut fourth, WAIT).await;
    assert_json_error(&r, 503, 1_000_090);
    wait_closed(&mut fourth, WAIT).await;
    // The admitted ones still work.
    a.ok("heartbeat", json!({})).await;
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(read_response(&mut third, WAIT).await.status, 200);
}

#[tokio::test]
async fn header_timeout_closes_silent_and_half_sent_requests() {
    let server = start("httpHeaderTimeoutMs = 300", "");
    let mut silent = send(&server, "").await;
    let mut half = send(&server, "GET /health HTTP/1.1\r\nHost: x\r\n").await;
    wait_closed(&mut silent, WAIT).await;
    wait_closed(&mut half, WAIT).await;
    // A request that arrives in time is served.
    let r = request(&server.addr, "GET", "/health", &[], "").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn websocket_limit_answers_503_before_the_upgrade() {
    let server = start("maxWebSocketConnections = 2", "");
    let mut a = server.client(1).await;
    let mut b = server.client(1).await;
    a.ok("heartbeat", json!({})).await;
    b.ok("heartbeat", json!({})).await;
    let url = format!("ws://{}/ws?appID=1", server.addr);
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), 503);
            let body: Value =
                serde_json::from_slice(r.body().as_deref().unwrap_or_default()).expect("JSON body");
            assert_eq!(body["code"], json!(1_000_090), "{body}");
        }
        other => panic!("third WebSocket was not refused: {:?}", other.map(|_| ())),
    }
    // The two admitted connections still work.
    a.ok("heartbeat", json!({})).await;
}

#[tokio::test]
async fn app_session_limit_refuses_websockets_and_whip() {
    let server = start("", "maxSessionsPerApp = 1");
    let mut first = server.client(1).await;
    first.login(1, "alice", "r1").await;
    // A second session of app 1: the error event, then close 1013.
    let mut second = server.client(1).await;
    let e = second.event("error").await;
    assert_eq!(e["code"], json!(1_001_005), "{e}");
    assert_eq!(second.closed_code(WAIT).await, Some(1013));
    // WHIP is a session too: 503 with 1001005.
    let bearer = format!("Bearer {}", token(1, "obs"));
    let r = post_sdp(&server.addr, "/whip/r1/cam", bearer.as_str(), "v=0\r\n").await;
    assert_json_error(&r, 503, 1_001_005);
    // The limit is per app: app 2 still has room.
    let mut other = server.client(2).await;
    other.login(2, "bob", "r1").await;
    first.ok("heartbeat", json!({})).await;
}

#[tokio::test]
async fn body_over_the_limit_is_413_json() {
    let server = start("maxRequestBodyBytes = 1024", "");
    let bearer = format!("Bearer {}", token(1, "obs"));
    for path in ["/whip/r1/cam", "/whep/cam", "/admin/kick"] {
        let mut s = send(
            &server,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {bearer}\r\n\
                 Content-Type: application/sdp\r\nContent-Length: 5000\r\n\r\n"
            ),
        )
        .await;
        assert_json_error(&read_response(&mut s, WAIT).await, 413, 1_000_091);
    }
    // Exactly the limit is read (and refused for what it says, not its size).
    let r = post_sdp(
        &server.addr,
        "/whip/r1/cam",
        bearer.as_str(),
        &"x".repeat(1024),
    )
    .await;
    assert_json_error(&r, 400, 1_005_001);
}

#[tokio::test]
async fn slow_body_is_408_json() {
    let server = start("httpBodyTimeoutMs = 300", "");
    let bearer = format!("Bearer {}", token(1, "obs"));
    let mut s = send(
        &server,
        &format!(
            "POST /whip/r1/cam HTTP/1.1\r\nHost: x\r\nAuthorization: {bearer}\r\n\
             Content-Type: application/sdp\r\nContent-Length: 100\r\n\r\nv=0\r\n"
        ),
    )
    .await;
    assert_json_error(&read_response(&mut s, WAIT).await, 408, 1_000_092);
    // Nothing was published: the room does not list the stream.
    let mut w = server.client(1).await;
    let joined = w.login(1, "w", "r1").await;
    assert_eq!(joined["streamList"], json!([]), "{joined}");
}

#[tokio::test]
async fn every_http_error_is_json() {
    let server = start("", "");
    // GET /ws without an upgrade.
    assert_json_error(
        &request(&server.addr, "GET", "/ws?appID=1", &[], "").await,
        400,
        1_000_001,
    );
    // Unknown path, wrong method.
    assert_json_error(
        &request(&server.addr, "GET", "/no/such/page", &[], "").await,
        404,
        1_000_001,
    );
    assert_json_error(
        &request(&server.addr, "GET", "/admin/kick", &[], "").await,
        405,
        1_000_001,
    );
    // A path segment that is not UTF-8 (an extractor's rejection).
    let bearer = format!("Bearer {}", token(1, "obs"));
    let r = post_sdp(&server.addr, "/whip/%FF/cam", bearer.as_str(), "v=0").await;
    assert_eq!(r.status / 100, 4, "{}", r.body);
    assert!(r.json()["code"].is_u64(), "{}", r.body);
    // Malformed resource ids.
    for path in [
        "/whip/resource/abc",
        "/whep/resource/%FF",
        "/whip/resource/12",
    ] {
        assert_json_error(
            &request(&server.addr, "DELETE", path, &[], "").await,
            404,
            1_004_002,
        );
    }
}

#[tokio::test]
async fn invalid_utf8_closes_1007() {
    let server = start("", "");
    let mut c = server.client(1).await;
    c.send_raw(Message::Frame(Frame::message(
        vec![b'{', 0xff, 0xfe, b'}'],
        OpCode::Data(Data::Text),
        true,
    )));
    assert_eq!(c.closed_code(WAIT).await, Some(1007));
}

#[tokio::test]
async fn message_over_the_limit_closes_1009_whole_or_fragmented() {
    let server = start("", "");
    let mut whole = server.client(1).await;
    whole.send_raw(Message::Frame(Frame::message(
        vec![b' '; 64 * 1024 + 1],
        OpCode::Data(Data::Text),
        true,
    )));
    assert_eq!(whole.closed_code(WAIT).await, Some(1009));
    // Two fragments, each under the limit, together over it.
    let mut fragmented = server.client(1).await;
    fragmented.send_raw(Message::Frame(Frame::message(
        vec![b' '; 40_000],
        OpCode::Data(Data::Text),
        false,
    )));
    fragmented.send_raw(Message::Frame(Frame::message(
        vec![b' '; 40_000],
        OpCode::Data(Data::Continue),
        true,
    )));
    assert_eq!(fragmented.closed_code(WAIT).await, Some(1009));
    // Fragments that stay under the limit are one message.
    let mut fine = server.client(1).await;
    fine.send_raw(Message::Frame(Frame::message(
        br#"{"id":7,"op":"#.to_vec(),
        OpCode::Data(Data::Text),
        false,
    )));
    fine.send_raw(Message::Frame(Frame::message(
        br#""heartbeat"}"#.to_vec(),
        OpCode::Data(Data::Continue),
        true,
    )));
    assert_eq!(fine.response().await, json!({"id": 7, "code": 0}));
}

#[tokio::test]
async fn a_client_close_is_echoed_and_protocol_errors_close_1002() {
    let server = start("", "");
    let mut c = server.client(1).await;
    c.send_raw(Message::Close(Some(CloseFrame {
        code: 3001.into(),
        reason: "bye".into(),
    })));
    assert_eq!(c.closed_code(WAIT).await, Some(3001));
    // A frame with a reserved bit set (no extension was negotiated).
    let mut bad = server.client(1).await;
    let mut frame = Frame::message(
        br#"{"op":"heartbeat"}"#.to_vec(),
        OpCode::Data(Data::Text),
        true,
    );
    frame.header_mut().rsv1 = true;
    bad.send_raw(Message::Frame(frame));
    assert_eq!(bad.closed_code(WAIT).await, Some(1002));
}

#[tokio::test]
async fn unreadable_ids_are_answered_with_null_even_on_heartbeats() {
    let server = start("", "");
    let mut c = server.client(1).await;
    for id in ["-5", "5.0", "18446744073709551616"] {
        for op in ["heartbeat", "logoutRoom"] {
            c.send_text(&format!(r#"{{"id":{id},"op":"{op}"}}"#));
            let v = c.response().await;
            assert_eq!(
                (&v["id"], &v["code"]),
                (&Value::Null, &json!(1_000_001)),
                "{id} {op}: {v}"
            );
        }
    }
    // `"id": null` is no id: a heartbeat without an answer, so the next
    // response is the one of the request after it.
    c.send_text(r#"{"id":null,"op":"heartbeat"}"#);
    assert_eq!(c.request("heartbeat", json!({})).await["code"], json!(0));
}

#[tokio::test]
async fn sigterm_still_shuts_the_listener_down_gracefully() {
    let mut server = start("", "");
    // An idle keep-alive connection and a WebSocket do not hold it up.
    let mut idle = send(&server, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(read_response(&mut idle, WAIT).await.status, 200);
    let mut c = server.client(1).await;
    c.ok("heartbeat", json!({})).await;
    assert!(
        server.terminate(WAIT * 3).await,
        "non-zero exit after SIGTERM"
    );
    wait_closed(&mut idle, WAIT).await;
}

#[tokio::test]
async fn running_out_of_file_descriptors_is_survived() {
    let mut server = TestServer::start_with_fd_limit(&format!("[limits]\n{APPS}"), 64);
    // More connections than the server has descriptors: accept fails
    // (EMFILE) for some, which wait in the backlog.
    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(send(&server, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await);
    }
    let mut served = 0;
    for s in held.iter_mut().take(10) {
        if read_response(s, WAIT).await.status == 200 {
            served += 1;
        }
    }
    assert_eq!(served, 10, "the first connections are served");
    drop(held);
    // Once descriptors are free again, the listener is still accepting.
    let r = request(&server.addr, "GET", "/health", &[], "").await;
    assert_eq!(r.status, 200);
    assert!(
        server.terminate(WAIT * 3).await,
        "non-zero exit after SIGTERM"
    );
}
