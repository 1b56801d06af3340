//! Offers refused before a peer connection exists: every bad offer gets
//! `1005001` over WebSocket and HTTP 400 over WHIP, with a message naming
//! the problem, and leaves nothing parked behind.

mod common;

use common::http::{post_sdp, request};
use common::*;
use serde_json::json;

const CHROMIUM: &str = include_str!("../crates/sfu-core/src/media/fixtures/chromium_publish.sdp");
const CHROMIUM_PLAY: &str = include_str!("../crates/sfu-core/src/media/fixtures/chromium_play.sdp");
const FP: &str = "a=fingerprint:sha-256 5D:41:8B:0C:7F:92:3A:E4:11:6B:C8:20:D9:5E:A7:34:FF:02:8E:61:B3:4C:9A:17:E0:55:2D:C6:78:1F:A9:03";

fn crlf(sdp: &str) -> String {
    sdp.lines().map(|l| format!("{l}\r\n")).collect()
}

/// Bad offers, each with a piece of the message it must get.
fn bad_offers() -> Vec<(String, &'static str)> {
    let with = |from: &str, to: &str| crlf(&CHROMIUM.replacen(from, to, 1));
    let bad_ssrcs = "a=ssrc:4294967296 cname:x\n".repeat(2000);
    vec![
        (
            crlf(&format!(
                "{CHROMIUM}{}",
                "a=x-pad:0123456789\n".repeat(4000)
            )),
            "over the limit of 65536",
        ),
        (
            crlf(&format!(
                "{CHROMIUM}{}",
                "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\n".repeat(15)
            )),
            "more than 16 m-sections",
        ),
        (
            crlf(&format!("{CHROMIUM}{}", "a=ssrc:1234 cname:x\n".repeat(60))),
            "more than 64 a=ssrc lines",
        ),
        (
            crlf(&format!("{CHROMIUM}{bad_ssrcs}")),
            "a=ssrc `4294967296` is not a 32-bit SSRC",
        ),
        (with(FP, "a=fingerprint:md5 5D:41"), "algorithm `md5`"),
        (with(FP, &FP[..FP.len() - 3]), "has 31 bytes, expected 32"),
        (
            with(FP, &FP.replacen("5D", "GG", 1)),
            "`GG` is not a hex pair",
        ),
        (
            with(FP, "a=fingerprint:sha-256 xyz 12:34"),
            "more than an algorithm and a value",
        ),
        (
            with("a=setup:actpass", "a=setup:holdconn"),
            "setup role `holdconn`",
        ),
        (
            with("a=ice-ufrag:Kp3x", "a=ice-ufrag:Kp:3x"),
            "ice-ufrag `Kp:3x`",
        ),
        (
            with("a=ice-pwd:q0Vh2mYxT8rG1nB7cLzA5wE4", "a=ice-pwd:short"),
            "ice-pwd is 5 characters long",
        ),
        (
            crlf(&CHROMIUM.replace(&format!("{FP}\n"), "")),
            "m-section 0 (audio) has no a=fingerprint",
        ),
    ]
}

#[tokio::test]
async fn bad_offers_are_refused_over_websocket_and_whip_and_park_nothing() {
    // One peer connection in the whole server: anything parked by a refused
    // offer would make the good publish at the end fail with 1005011.
    let server = TestServer::start_with(&format!(
        "[server]\nmaxPeerConnections = 1\n[limits]\n{APPS}"
    ));
    let mut client = server.client(1).await;
    client.login(1, "pub", "r1").await;
    let bearer = format!("Bearer {}", token(1, "obs"));
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/sdp"),
    ];
    let mut over_ws = 0;
    for (sdp, why) in bad_offers() {
        // A WebSocket frame is at most 64 KiB: a larger offer never gets
        // to the media plane that way (the socket is closed with 1009).
        if json!(sdp).to_string().len() < 64 * 1024 - 200 {
            over_ws += 1;
            let v = client
                .fails(
                    "startPublishingStream",
                    json!({"streamID": "cam", "sdp": sdp}),
                    1_005_001,
                )
                .await;
            let message = v["message"].as_str().unwrap_or_default();
            assert!(message.contains(why), "{why}: {v}");
            assert!(message.len() < 200, "{message}");
        }

        let r = request(&server.addr, "POST", "/whip/r1/obs-cam", &headers, &sdp).await;
        assert_eq!(r.status, 400, "{why}: {}", r.body);
        let body = r.json();
        assert_eq!(body["code"], 1_005_001, "{why}: {body}");
        assert!(
            body["message"].as_str().unwrap_or_default().contains(why),
            "{why}: {body}"
        );
    }
    assert!(over_ws >= 10, "{over_ws}");
    // The stream ID and the only peer-connection slot are still free.
    let v = client
        .ok(
            "startPublishingStream",
            json!({"streamID": "cam", "sdp": crlf(CHROMIUM)}),
        )
        .await;
    assert!(
        v["sdp"].as_str().is_some_and(|s| s.starts_with("v=0")),
        "{v}"
    );
}

/// A WHIP publish of `obs-cam` into `r1` (Chromium's offer).
async fn whip_publish(server: &TestServer) -> common::http::HttpResponse {
    let bearer = format!("Bearer {}", token(1, "obs"));
    post_sdp(&server.addr, "/whip/r1/obs-cam", &bearer, &crlf(CHROMIUM)).await
}

fn fingerprints(answer: &str) -> Vec<&str> {
    answer
        .lines()
        .filter(|l| l.starts_with("a=fingerprint:"))
        .collect()
}

#[tokio::test]
async fn every_answer_carries_the_same_certificate_fingerprint_and_bad_plays_are_refused() {
    let server = TestServer::start("");
    let mut client = server.client(1).await;
    client.login(1, "pub", "r1").await;
    let mut seen = Vec::new();
    for stream in ["cam-a", "cam-b"] {
        let v = client
            .ok(
                "startPublishingStream",
                json!({"streamID": stream, "sdp": crlf(CHROMIUM)}),
            )
            .await;
        let answer = v["sdp"].as_str().unwrap_or_default().to_string();
        let fps: Vec<String> = fingerprints(&answer)
            .into_iter()
            .map(String::from)
            .collect();
        assert!(!fps.is_empty(), "{answer}");
        seen.push(fps);
    }
    // A WHIP answer from the same process too.
    let r = whip_publish(&server).await;
    assert_eq!(r.status, 201, "{}", r.body);
    seen.push(
        fingerprints(&r.body)
            .into_iter()
            .map(String::from)
            .collect(),
    );
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], seen[2]);

    // Plays of a published stream go through the same check.
    let mut viewer = server.client(1).await;
    viewer.login(1, "viewer", "r1").await;
    let whep = format!("Bearer {}", token(1, "watcher"));
    let whep_headers = [
        ("Authorization", whep.as_str()),
        ("Content-Type", "application/sdp"),
    ];
    for (sdp, why) in bad_offers().into_iter().skip(4) {
        let v = viewer
            .fails(
                "startPlayingStream",
                json!({"streamID": "cam-a", "sdp": sdp}),
                1_005_001,
            )
            .await;
        assert!(
            v["message"].as_str().unwrap_or_default().contains(why),
            "{why}: {v}"
        );
        let r = request(&server.addr, "POST", "/whep/cam-a", &whep_headers, &sdp).await;
        assert_eq!(r.status, 400, "{why}: {}", r.body);
        assert!(r.body.contains(why), "{why}: {}", r.body);
    }
}

/// The `a=candidate` lines of an answer, split into fields.
fn candidates(answer: &str) -> Vec<Vec<String>> {
    answer
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=candidate:"))
        .map(|c| c.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// Every answer (publish, play, WHIP) carries the UDP host candidate and,
/// beside it, the ICE-TCP passive host candidate (RFC 6544) on the TCP port.
#[tokio::test]
async fn answers_carry_a_udp_and_a_passive_tcp_candidate() {
    let server = TestServer::start("");
    let udp = server.media.expect("media udp address");
    let tcp = server.media_tcp.expect("media tcp address");
    assert_ne!(tcp.port(), 0);
    let mut client = server.client(1).await;
    client.login(1, "pub", "r1").await;
    let mut answers = Vec::new();
    let v = client
        .ok(
            "startPublishingStream",
            json!({"streamID": "cam", "sdp": crlf(CHROMIUM)}),
        )
        .await;
    answers.push(v["sdp"].as_str().unwrap_or_default().to_string());
    let v = client
        .ok(
            "startPlayingStream",
            json!({"streamID": "cam", "sdp": crlf(CHROMIUM_PLAY)}),
        )
        .await;
    answers.push(v["sdp"].as_str().unwrap_or_default().to_string());
    let r = whip_publish(&server).await;
    assert_eq!(r.status, 201, "{}", r.body);
    answers.push(r.body);
    for answer in &answers {
        let mut found: Vec<(String, String, String, String)> = candidates(answer)
            .into_iter()
            .map(|f| {
                // foundation component transport priority address port typ host [tcptype t]
                let tcptype = f
                    .iter()
                    .position(|w| w == "tcptype")
                    .and_then(|i| f.get(i + 1).cloned())
                    .unwrap_or_default();
                let get = |i: usize| f.get(i).cloned().unwrap_or_default();
                (
                    get(2).to_lowercase(),
                    format!("{}:{}", get(4), get(5)),
                    get(7),
                    tcptype,
                )
            })
            .collect();
        // One candidate per transport (each m-section may repeat them).
        found.sort();
        found.dedup();
        assert_eq!(
            found,
            vec![
                (
                    "tcp".into(),
                    tcp.to_string(),
                    "host".into(),
                    "passive".into()
                ),
                ("udp".into(), udp.to_string(), "host".into(), String::new()),
            ],
            "{answer}"
        );
    }
}
