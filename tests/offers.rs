//! Offers refused before a peer connection exists: every bad offer gets
//! `1005001` over WebSocket and HTTP 400 over WHIP, with a message naming
//! the problem, and leaves nothing parked behind.

mod common;

use common::http::request;
use common::*;
use serde_json::json;

const CHROMIUM: &str = include_str!("../crates/sfu-core/src/media/fixtures/chromium_publish.sdp");
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
    let bearer = format!("Bearer {}", token(1, "obs"));
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/sdp"),
    ];
    let r = request(
        &server.addr,
        "POST",
        "/whip/r1/obs-cam",
        &headers,
        &crlf(CHROMIUM),
    )
    .await;
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
