//! The server's log cannot be driven by clients: refused offers full of bad
//! `a=ssrc` lines and a spray of garbage datagrams from a connected peer's
//! own address write a bounded number of lines, even with the WebRTC
//! stack's debug logs on.

mod common;

use std::time::Duration;

use common::http::request;
use common::media::*;
use common::proxy::Proxy;
use common::*;

const CHROMIUM: &str = include_str!("../crates/sfu-core/src/media/fixtures/chromium_publish.sdp");
/// The server's default filter for the stack (`rtc*` at warn), our crates
/// at debug. (With the stack at debug too, `RateLimit`'s unit tests show the
/// bound.)
const RUST_LOG: &str = "info,rtc=warn,rtc_dtls=error,sfu_core=debug,room_signal=debug";

/// Random bytes whose first byte looks like RTP/RTCP, DTLS or STUN.
fn garbage(seed: &mut u32, i: usize) -> Vec<u8> {
    let mut next = || {
        *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (*seed >> 24) as u8
    };
    let len = 20 + usize::from(next()) * 4;
    let mut d: Vec<u8> = (0..len).map(|_| next()).collect();
    d[0] = match i % 3 {
        0 => 0x80 | (d[0] & 0x3f),
        1 => 20 + d[0] % 44,
        _ => d[0] & 0x03,
    };
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_offers_and_garbage_datagrams_log_a_bounded_number_of_lines() {
    let (server, mut logs) = TestServer::start_logged(&format!("[limits]\n{APPS}"), RUST_LOG);

    // 200 WHIP offers with 2,000 unparsable SSRCs each (56 KB): refused.
    let bad: String = CHROMIUM
        .lines()
        .map(|l| format!("{l}\r\n"))
        .chain(std::iter::repeat_n(
            "a=ssrc:4294967296 cname:x\r\n".to_string(),
            2000,
        ))
        .collect();
    let bearer = format!("Bearer {}", token(1, "obs"));
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/sdp"),
    ];
    for _ in 0..200 {
        let r = request(&server.addr, "POST", "/whip/r1/obs-cam", &headers, &bad).await;
        assert_eq!(r.status, 400, "{}", r.body);
    }
    // A login line marks the end: every line before it has been read.
    let _sentinel = member(&server, "sentinel-one", &["r1"]).await;
    let offers_lines = logs.until("sentinel-one").await;
    assert!(
        offers_lines < 50,
        "{offers_lines} lines for 200 refused offers: {:#?}",
        logs.lines
    );

    // A connected publisher whose own 5-tuple sprays 10,000 garbage datagrams.
    let media = server.media.expect("media address");
    let via_pub = Proxy::start(media).await;
    let anchor = member(&server, "anchor", &["r1"]).await;
    let viewer = member(&server, "viewer", &["r1"]).await;
    let publisher = anchor
        .publish_via("cam", Some("r1"), vp8_opus(), via_pub.addr)
        .await
        .expect("publish");
    let mut player = viewer.play("cam").await.expect("play");
    let sender = spawn_sending(publisher, Duration::from_secs(8));
    player
        .recv_timeout(Duration::from_secs(5))
        .await
        .expect("first packet");
    let _sentinel = member(&server, "sentinel-mid", &["r1"]).await;
    logs.until("sentinel-mid").await;
    let before = logs.lines.len();
    let mut seed = 11;
    for i in 0..10_000 {
        via_pub.inject(&garbage(&mut seed, i)).await;
    }
    // The publisher's own packets, sent after the spray on the same
    // 5-tuple, are handled after it: once the player has many more, the
    // spray has been processed.
    for _ in 0..200 {
        player
            .recv_timeout(Duration::from_secs(5))
            .await
            .expect("media after the spray");
    }
    let _sentinel = member(&server, "sentinel-two", &["r1"]).await;
    logs.until("sentinel-two").await;
    let spray_lines = &logs.lines[before..];
    assert!(
        spray_lines.len() < 50,
        "{} lines for 10,000 garbage datagrams: {spray_lines:#?}",
        spray_lines.len()
    );
    // The garbage did reach the WebRTC stack (it warns about it), so the
    // bound is the limiter's doing.
    assert!(
        spray_lines.iter().any(|l| l.contains(" rtc")),
        "{spray_lines:#?}"
    );
    println!(
        "{} lines for the spray: {spray_lines:#?}",
        spray_lines.len()
    );
    sender.abort();
}
