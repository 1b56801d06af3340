//! The contract's publish/play rules with real media: one user publishing
//! into two rooms, logout stopping exactly the right publishes and plays,
//! publisher disconnect, duplicate stream IDs and bad media requests.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::media::*;
use common::proxy::{is_rtcp, Proxy};
use common::*;
use serde_json::{json, Value};
use sfu_client::{Client, MediaKind, PlayOptions, PublishTracks, VideoCodec};
use tokio::net::UdpSocket;

fn delete_reason(fields: &Value) -> Value {
    let ext: Value = serde_json::from_str(fields["extendedData"].as_str().unwrap()).unwrap();
    ext["stream_delete_reason"].clone()
}

async fn stream_event(c: &Client, kind: &str, room: &str, stream: &str) -> Value {
    let (kind, room, stream) = (kind.to_string(), room.to_string(), stream.to_string());
    c.wait_event_where(
        move |e| {
            e.name == "roomStreamUpdate"
                && e.fields["updateType"] == kind.as_str()
                && e.fields["roomID"] == room.as_str()
                && e.fields["streamList"][0]["streamID"] == stream.as_str()
        },
        Duration::from_secs(3),
    )
    .await
    .expect("roomStreamUpdate")
    .fields
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_publishes_into_two_rooms() {
    let server = TestServer::start("");
    let host = member(&server, "host", &["r1", "r2"]).await;
    let w1 = member(&server, "w1", &["r1"]).await;
    let w2 = member(&server, "w2", &["r2"]).await;
    let p1 = host
        .publish("host-r1", Some("r1"), vp8_opus())
        .await
        .expect("publish r1");
    let p2 = host
        .publish("host-r2", Some("r2"), vp8_opus())
        .await
        .expect("publish r2");
    // Each room lists only its own stream.
    stream_event(&w1, "ADD", "r1", "host-r1").await;
    stream_event(&w2, "ADD", "r2", "host-r2").await;
    assert!(w1
        .drain_events()
        .iter()
        .all(|e| e.fields["streamList"][0]["streamID"] != "host-r2"));
    // A late joiner of r2 sees host-r2 in its login result, and only it.
    let (_late, logins) = member_logins(&server, "late", &["r2"]).await;
    let listed = logins[0]["streamList"]
        .as_array()
        .expect("streamList is an array");
    let ids: Vec<&Value> = listed.iter().map(|s| &s["streamID"]).collect();
    assert_eq!(
        ids,
        [&json!("host-r2")],
        "late joiner's streamList: {listed:?}"
    );
    assert_eq!(listed[0]["user"]["userID"], "host");
    let mut play1 = w1.play("host-r1").await.expect("play r1");
    let mut play2 = w2.play("host-r2").await.expect("play r2");
    let (s1, s2) = tokio::join!(
        send_clips(&p1, Duration::from_secs(2)),
        send_clips(&p2, Duration::from_secs(2))
    );
    let g1 = drain(&mut play1, Duration::from_millis(400)).await;
    let g2 = drain(&mut play2, Duration::from_millis(400)).await;
    check_run(MediaKind::Video, &g1, &s1.video);
    check_run(MediaKind::Video, &g2, &s2.video);
    check_run(MediaKind::Audio, &g1, &s1.audio);
    check_run(MediaKind::Audio, &g2, &s2.audio);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_stops_only_that_rooms_publishes_and_plays() {
    let server = TestServer::start("");
    let user = member(&server, "u", &["r1", "r2"]).await;
    let w1 = member(&server, "w1", &["r1"]).await;
    let w2 = member(&server, "w2", &["r2"]).await;
    let other = member(&server, "other", &["r1"]).await;
    let stranger = member(&server, "stranger", &["r3"]).await;

    let s1 = user.publish("u-r1", Some("r1"), vp8_opus()).await.unwrap();
    let s2 = user.publish("u-r2", Some("r2"), vp8_opus()).await.unwrap();
    let x = other.publish("x", Some("r1"), vp8_opus()).await.unwrap();
    let y = stranger.publish("y", Some("r3"), vp8_opus()).await.unwrap();
    // x is listed in r1: its play binds to r1. y is listed in no room of the
    // user: its play binds to the earliest room, r1.
    let mut play_x = user.play("x").await.unwrap();
    let mut play_y = user.play("y").await.unwrap();
    let mut watch_s2 = w2.play("u-r2").await.unwrap();
    let senders: Vec<_> = [s1, s2, x, y]
        .into_iter()
        .map(|p| spawn_sending(p, Duration::from_secs(4)))
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(count_for(&mut play_x, Duration::from_millis(300)).await > 10);
    assert!(count_for(&mut play_y, Duration::from_millis(300)).await > 10);
    w1.drain_events();
    w2.drain_events();

    user.logout_room(Some("r1")).await.unwrap();
    // r1's publish is deleted with reason 1; r2's is not.
    let del = stream_event(&w1, "DELETE", "r1", "u-r1").await;
    assert_eq!(
        delete_reason(&del),
        json!([{"stream_id": "u-r1", "code": 1}])
    );
    // The play of x (listed in r1) stopped; the play of y moved to r2 and goes on.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = count_for(&mut play_x, Duration::from_millis(100)).await;
    assert_eq!(
        count_for(&mut play_x, Duration::from_millis(500)).await,
        0,
        "play of x still flowing"
    );
    assert!(
        count_for(&mut play_y, Duration::from_millis(500)).await > 10,
        "play of y stopped"
    );
    assert!(
        count_for(&mut watch_s2, Duration::from_millis(500)).await > 10,
        "u-r2 stopped"
    );
    assert!(
        w2.drain_events()
            .iter()
            .all(|e| e.name != "roomStreamUpdate"),
        "r2 saw a stream update"
    );

    // Leaving the last room stops the remaining play and publish.
    user.logout_room(Some("r2")).await.unwrap();
    stream_event(&w2, "DELETE", "r2", "u-r2").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = count_for(&mut play_y, Duration::from_millis(100)).await;
    assert_eq!(
        count_for(&mut play_y, Duration::from_millis(500)).await,
        0,
        "play of y still flowing"
    );
    for s in senders {
        s.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_disconnect_sends_its_players_back_to_waiting_everywhere() {
    let server = TestServer::start("");
    let anchor = member(&server, "anchor", &["r1"]).await;
    let viewer_same = member(&server, "v1", &["r1"]).await;
    let viewer_other = member(&server, "v2", &["r2"]).await;
    let publisher = anchor.publish("cam", Some("r1"), vp8_opus()).await.unwrap();
    let mut p1 = viewer_same.play("cam").await.unwrap();
    let mut p2 = viewer_other.play("cam").await.unwrap();
    let sender = spawn_sending(publisher, Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(count_for(&mut p1, Duration::from_millis(200)).await > 0);
    assert!(count_for(&mut p2, Duration::from_millis(200)).await > 0);
    viewer_same.drain_events();

    // The anchor's signaling connection goes away without a word (its
    // publisher, still sending, is dropped only at the end).
    anchor.close();
    let started = std::time::Instant::now();
    for viewer in [&viewer_same, &viewer_other] {
        let e = viewer
            .wait_event_where(
                |e| e.name == "playerStateUpdate" && e.fields["streamID"] == "cam",
                Duration::from_secs(2),
            )
            .await
            .expect("PLAY_REQUESTING within 2 s");
        assert_eq!(e.fields["state"], "PLAY_REQUESTING");
        assert_eq!(e.fields["errorCode"], 1_004_002);
    }
    let del = stream_event(&viewer_same, "DELETE", "r1", "cam").await;
    assert_eq!(
        delete_reason(&del),
        json!([{"stream_id": "cam", "code": 5}])
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    sender.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_stream_id_cannot_be_published_twice() {
    let server = TestServer::start("");
    let a = member(&server, "a", &["r1"]).await;
    let b = member(&server, "b", &["r2"]).await;
    let _first = a.publish("same", Some("r1"), vp8_opus()).await.unwrap();
    let again = b.publish("same", Some("r2"), vp8_opus()).await;
    assert_eq!(code_of(again.map(|_| ())), 1_003_028);
    // Another app may use the same ID.
    let c = Client::connect(&server.addr, 3).await.unwrap();
    c.login_room("r1", &token(3, "c"), "c", "c", false)
        .await
        .unwrap();
    c.publish("same", Some("r1"), vp8_opus())
        .await
        .expect("other app");
}

const NO_CODEC_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n\
a=rtpmap:0 PCMU/8000\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=setup:actpass\r\na=rtcp-mux\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_media_requests_get_their_codes() {
    let server = TestServer::start("");
    let c = member(&server, "u", &["r1", "r2"]).await;
    let req = |fields: Value| c.request("startPublishingStream", fields);
    let code = |r: sfu_client::Result<Value>| code_of(r);
    assert_eq!(
        code(req(json!({"streamID": "s", "roomID": "r1", "sdp": "garbage"})).await),
        1_005_001
    );
    assert_eq!(
        code(req(json!({"streamID": "s", "roomID": "r1", "sdp": ""})).await),
        1_005_001
    );
    assert_eq!(
        code(req(json!({"streamID": "s", "roomID": "r1", "sdp": NO_CODEC_OFFER})).await),
        1_005_001
    );
    // roomID is required in multi-room mode; a room not joined is 1002002.
    assert_eq!(
        code(req(json!({"streamID": "s", "sdp": "x"})).await),
        1_000_001
    );
    assert_eq!(
        code(req(json!({"streamID": "s", "roomID": "r9", "sdp": "x"})).await),
        1_002_002
    );
    assert_eq!(
        code(req(json!({"streamID": "a b", "roomID": "r1", "sdp": "x"})).await),
        1_000_016
    );
    assert_eq!(
        code(req(json!({"streamID": "", "roomID": "r1", "sdp": "x"})).await),
        1_000_015
    );
    assert_eq!(
        code(req(json!({"streamID": "s".repeat(257), "roomID": "r1", "sdp": "x"})).await),
        1_000_014
    );
    assert_eq!(
        code(
            req(
                json!({"streamID": "s", "roomID": "r1", "sdp": "x", "extraInfo": "e".repeat(1025)})
            )
            .await
        ),
        1_003_051
    );
    // The failed publishes left nothing behind: the ID is still free.
    let _kept = c
        .publish("s", Some("r1"), vp8_opus())
        .await
        .expect("publish after failures");
    assert_eq!(
        code(
            c.request("setStreamExtraInfo", json!({"streamID": "s"}))
                .await
        ),
        1_003_050
    );
    c.request(
        "setStreamExtraInfo",
        json!({"streamID": "s", "extraInfo": "hello"}),
    )
    .await
    .unwrap();
    assert_eq!(
        code(
            c.request("stopPublishingStream", json!({"streamID": "nope"}))
                .await
        ),
        1_004_002
    );
    // An unknown stream is not an error (the play would wait), but the
    // offer still has to be one.
    assert_eq!(
        code(
            c.request(
                "startPlayingStream",
                json!({"streamID": "nope", "sdp": "x"})
            )
            .await
        ),
        1_005_001
    );
    assert_eq!(
        code(
            c.request(
                "startPlayingStream",
                json!({"streamID": "s", "sdp": "garbage"})
            )
            .await
        ),
        1_005_001
    );
    assert_eq!(
        code(
            c.request("stopPlayingStream", json!({"streamID": "s"}))
                .await
        ),
        1_004_002
    );
    assert_eq!(
        code(
            c.request(
                "iceCandidate",
                json!({"streamID": "s", "candidate": "bogus"})
            )
            .await
        ),
        1_000_001
    );
    c.request(
        "iceCandidate",
        json!({"streamID": "s", "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"}),
    )
    .await
    .unwrap();
    // Playing needs a room; publishing needs the token's privilege.
    let lonely = Client::connect(&server.addr, 1).await.unwrap();
    assert_eq!(
        code(
            lonely
                .request("startPlayingStream", json!({"streamID": "s", "sdp": "x"}))
                .await
        ),
        1_000_002
    );
    let viewer = Client::connect(&server.addr, 1).await.unwrap();
    let mut viewer_claims = claims(1, "viewer");
    viewer_claims["privilege"] = json!({"login": true, "publish": false});
    viewer
        .login_room(
            "r1",
            &sign(secret(1), &viewer_claims),
            "viewer",
            "viewer",
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        code_of(viewer.publish("v", None, vp8_opus()).await.map(|_| ())),
        1_003_072
    );
    let limited = Client::connect(&server.addr, 1).await.unwrap();
    let mut limited_claims = claims(1, "limited");
    limited_claims["stream_id_list"] = json!(["allowed"]);
    limited
        .login_room(
            "r1",
            &sign(secret(1), &limited_claims),
            "limited",
            "limited",
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        code_of(limited.publish("other", None, vp8_opus()).await.map(|_| ())),
        1_003_072
    );
    limited
        .publish(
            "allowed",
            None,
            PublishTracks {
                video: Some(VideoCodec::Vp8),
                audio: false,
            },
        )
        .await
        .expect("allowed stream");
}

/// A deterministic byte source (an LCG), so that a failing spray replays.
struct Junk(u32);

impl Junk {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next() >> 24) as u8).collect()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() >> 8) as usize % n.max(1)
    }

    /// Random bytes, mostly shaped like the first bytes of STUN, DTLS, RTP
    /// or RTCP (RFC 7983's demultiplexing ranges), or a binding request for
    /// a ufrag nobody has.
    fn datagram(&mut self, i: u32) -> Vec<u8> {
        let len = self.below(1400);
        let mut buf = self.bytes(len);
        match i % 5 {
            0 if !buf.is_empty() => buf[0] = 0x00, // STUN-looking
            1 if !buf.is_empty() => buf[0] = 22,   // DTLS-looking
            2 if buf.len() > 1 => {
                buf[0] = 0x80; // RTP/RTCP-looking
                buf[1] = if i % 2 == 0 { 96 } else { 200 };
            }
            3 => {
                let mut stun = vec![0, 1, 0, 12, 0x21, 0x12, 0xA4, 0x42];
                stun.extend_from_slice(&[1; 12]);
                stun.extend_from_slice(&[0, 6, 0, 8]);
                stun.extend_from_slice(b"nope:you");
                buf = stun;
            }
            _ => {}
        }
        buf
    }
}

/// CRC-32 (IEEE 802.3), for STUN's FINGERPRINT.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

const MESSAGE_INTEGRITY: u16 = 0x0008;
const FINGERPRINT: u16 = 0x8028;

/// (type, offset of the attribute's header) of each attribute of `msg`.
fn stun_attrs(msg: &[u8]) -> Vec<(u16, usize)> {
    let mut out = Vec::new();
    let mut at = 20;
    while at + 4 <= msg.len() {
        let ty = u16::from_be_bytes([msg[at], msg[at + 1]]);
        let len = usize::from(u16::from_be_bytes([msg[at + 2], msg[at + 3]]));
        out.push((ty, at));
        at += 4 + len.div_ceil(4) * 4;
    }
    out
}

/// Recompute `msg`'s FINGERPRINT, so that only its integrity is wrong.
fn refinger(msg: &mut [u8]) {
    if let Some(&(_, at)) = stun_attrs(msg).iter().find(|(t, _)| *t == FINGERPRINT) {
        let fp = crc32(&msg[..at]) ^ 0x5354_554E;
        msg[at + 4..at + 8].copy_from_slice(&fp.to_be_bytes());
    }
}

fn set_stun_length(msg: &mut [u8]) {
    let len = (msg.len() - 20) as u16;
    msg[2..4].copy_from_slice(&len.to_be_bytes());
}

/// Forgeries of a peer's real binding request: its USERNAME, so the right
/// ufrags, under a MESSAGE-INTEGRITY that cannot verify, or none, or with
/// a bad fingerprint, lying lengths, cut short. The flag says whether the
/// forgery fails integrity (only those are sent from other addresses too:
/// a check that verifies may rightly move the peer's path).
fn forged_bindings(real: &[u8], junk: &mut Junk) -> Vec<(Vec<u8>, bool)> {
    let mi = stun_attrs(real)
        .iter()
        .find(|(t, _)| *t == MESSAGE_INTEGRITY)
        .map(|(_, at)| *at)
        .expect("a binding request with MESSAGE-INTEGRITY");
    let mut out = Vec::new();
    // One HMAC byte flipped, fingerprint recomputed.
    let mut m = real.to_vec();
    m[mi + 4 + junk.below(20)] ^= 0x5A;
    refinger(&mut m);
    out.push((m, true));
    // A new transaction ID under the old HMAC.
    let mut m = real.to_vec();
    m[8..20].copy_from_slice(&junk.bytes(12));
    refinger(&mut m);
    out.push((m, true));
    // USE-CANDIDATE slipped in (nominating the forger's path), old HMAC.
    let mut m = real[..mi].to_vec();
    m.extend_from_slice(&[0x00, 0x25, 0, 0]);
    m.extend_from_slice(&real[mi..]);
    set_stun_length(&mut m);
    refinger(&mut m);
    out.push((m, true));
    // USERNAME but no integrity at all.
    let mut m = real[..mi].to_vec();
    set_stun_length(&mut m);
    out.push((m, true));
    // Cut inside MESSAGE-INTEGRITY's value.
    out.push((real[..mi + 4 + junk.below(20)].to_vec(), true));
    // The right HMAC under a wrong fingerprint.
    let mut m = real.to_vec();
    let last = m.len() - 1;
    m[last] ^= 0xFF;
    out.push((m, false));
    // Lying lengths: the header's, then the first attribute's.
    let mut m = real.to_vec();
    m[2..4].copy_from_slice(&0xFFFCu16.to_be_bytes());
    out.push((m, false));
    let mut m = real.to_vec();
    m[22..24].copy_from_slice(&0xFFFFu16.to_be_bytes());
    out.push((m, false));
    // Cut anywhere.
    out.push((real[..1 + junk.below(real.len() - 1)].to_vec(), false));
    out
}

fn dtls_record(content_type: u8, epoch: u16, seq: u64, fragment: &[u8]) -> Vec<u8> {
    let mut r = vec![content_type, 0xFE, 0xFD];
    r.extend_from_slice(&epoch.to_be_bytes());
    r.extend_from_slice(&seq.to_be_bytes()[2..]);
    r.extend_from_slice(&(fragment.len() as u16).to_be_bytes());
    r.extend_from_slice(fragment);
    r
}

/// DTLS 1.2 records nobody authenticated: plaintext alerts (fatal
/// close_notify and handshake_failure), a ChangeCipherSpec, a new
/// ClientHello, "encrypted" records of garbage, a record longer than its
/// datagram, two records in one datagram.
fn forged_dtls(junk: &mut Junk) -> Vec<Vec<u8>> {
    let seq = u64::from(junk.next());
    let mut hello = vec![0xFE, 0xFD];
    hello.extend(junk.bytes(32));
    hello.extend([0, 0, 0, 2, 0xC0, 0x2B, 1, 0]);
    let len = (hello.len() as u32).to_be_bytes();
    let mut hs = vec![
        1, len[1], len[2], len[3], 0, 0, 0, 0, 0, len[1], len[2], len[3],
    ];
    hs.extend(hello);
    let mut out = vec![
        dtls_record(21, 0, seq, &[2, 0]),
        dtls_record(21, 0, seq, &[2, 40]),
        dtls_record(21, 0, seq, &[1, 0]),
        dtls_record(21, 1, seq, &junk.bytes(34)),
        dtls_record(20, 0, seq, &[1]),
        dtls_record(22, 0, seq, &hs),
        dtls_record(22, 1, seq, &junk.bytes(60)),
        dtls_record(23, 1, seq, &junk.bytes(100)),
    ];
    let mut long = dtls_record(23, 1, seq, &junk.bytes(40));
    long[11..13].copy_from_slice(&1000u16.to_be_bytes());
    out.push(long);
    let mut two = dtls_record(21, 0, seq, &[2, 0]);
    two.extend(dtls_record(22, 0, seq + 1, &hs[..20]));
    out.push(two);
    out
}

/// Forgeries of a peer's real SRTP/SRTCP datagrams: exact replays, a
/// flipped bit, a cut authentication tag, a moved sequence number, the
/// real header over garbage, header fields pointing past the end.
fn forged_srtp(recent: &[Vec<u8>], junk: &mut Junk) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if recent.is_empty() {
        return out;
    }
    for _ in 0..4 {
        let real = &recent[junk.below(recent.len())];
        out.push(real.clone());
        let mut m = real.clone();
        let i = 12 + junk.below(m.len() - 12);
        m[i] ^= 1 << junk.below(8);
        out.push(m);
        out.push(real[..real.len() - 1 - junk.below(10)].to_vec());
        if is_rtcp(real) {
            let mut m = real[..8].to_vec();
            let len = junk.below(200);
            m.extend(junk.bytes(len));
            out.push(m);
            continue;
        }
        let mut m = real.clone();
        let seq = u16::from_be_bytes([m[2], m[3]]).wrapping_add(1000 + junk.below(30_000) as u16);
        m[2..4].copy_from_slice(&seq.to_be_bytes());
        out.push(m);
        let mut m = real[..12].to_vec();
        m[0] |= 0x10; // an extension whose length runs past the end
        m.extend([0xBE, 0xDE, 0xFF, 0xFF]);
        m.extend(junk.bytes(20));
        out.push(m);
        let mut m = real[..12].to_vec();
        m[0] |= 0x0F; // fifteen CSRCs, none there
        out.push(m);
        let mut m = real[..12].to_vec();
        let len = junk.below(1200);
        m.extend(junk.bytes(len));
        out.push(m);
    }
    out
}

/// Wait (polling every 10 ms, up to `limit`) until `ready` holds.
async fn until(what: &str, limit: Duration, ready: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !ready() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_media_port_hurts_nobody() {
    let mut server = TestServer::start("");
    let media = server.media.expect("media address");
    // The publisher and the player reach the server through proxies, so
    // that the test can send from their own 5-tuples: the server cannot
    // tell a datagram injected by a proxy from one of its peer's.
    let via_pub = Proxy::start(media).await;
    let via_play = Proxy::start(media).await;
    let anchor = member(&server, "anchor", &["r1"]).await;
    let viewer = member(&server, "viewer", &["r1"]).await;
    let publisher = anchor
        .publish_via("cam", Some("r1"), vp8_opus(), via_pub.addr)
        .await
        .unwrap();
    let options = PlayOptions {
        server_addr: Some(via_play.addr),
        ..PlayOptions::default()
    };
    let mut player = viewer.play_with("cam", options).await.unwrap();
    let sender = spawn_sending(publisher, Duration::from_secs(6));
    let mut got = vec![player
        .recv_timeout(Duration::from_secs(5))
        .await
        .expect("first packet")];
    // Real SRTP/SRTCP of both peers to forge from.
    until("the peers' first RTP/RTCP", Duration::from_secs(5), || {
        via_pub.recent().len() >= 32 && !via_play.recent().is_empty()
    })
    .await;
    let bindings = [
        via_pub
            .binding_request()
            .expect("publisher's binding request"),
        via_play
            .binding_request()
            .expect("player's binding request"),
    ];
    // A stranger sprays too, and watches what comes back.
    let stranger = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let replies = Arc::new(parking_lot::Mutex::new(Vec::<Vec<u8>>::new()));
    let watch = {
        let (stranger, replies) = (stranger.clone(), replies.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((n, _)) = stranger.recv_from(&mut buf).await {
                replies.lock().push(buf[..n].to_vec());
            }
        })
    };
    let mut junk = Junk(7);
    let mut sprayed = 0u32;
    for round in 0..40u32 {
        for i in 0..30 {
            let d = junk.datagram(round * 30 + i);
            let _ = stranger.send_to(&d, media).await;
            via_pub.inject(&d).await;
            via_play.inject(&d).await;
            sprayed += 3;
        }
        for (proxy, binding) in [(&via_pub, &bindings[0]), (&via_play, &bindings[1])] {
            for (d, bad_integrity) in forged_bindings(binding, &mut junk) {
                proxy.inject(&d).await;
                sprayed += 1;
                if bad_integrity {
                    let _ = stranger.send_to(&d, media).await;
                    sprayed += 1;
                }
            }
            let mut forged = forged_dtls(&mut junk);
            forged.extend(forged_srtp(&proxy.recent(), &mut junk));
            for d in &forged {
                proxy.inject(d).await;
                let _ = stranger.send_to(d, media).await;
                sprayed += 2;
            }
        }
        // Spread over ~2 s of live media (pacing, not a wait for anything).
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    // The server still accepts new peers: a new play connects and gets the
    // stream from a keyframe on, while the publisher goes on sending.
    let late = member(&server, "late", &["r2"]).await;
    let mut late_player = late.play("cam").await.expect("a new play after the spray");
    let (publisher, sent) = sender.await.unwrap();
    got.extend(drain(&mut player, Duration::from_millis(400)).await);
    let late_got = drain(&mut late_player, Duration::from_millis(400)).await;
    eprintln!(
        "{sprayed} datagrams sprayed; the sprayed player got {} packets, the late one {}",
        got.len(),
        late_got.len()
    );
    // Nothing lost, nothing duplicated (a replay that got through would
    // break the run), and media went on to the end on both sprayed peers.
    check_to_end("the sprayed player", &got, &sent);
    check_to_end("the late player", &late_got, &sent);
    assert!(
        publisher.is_connected(),
        "the sprayed publisher disconnected"
    );
    assert!(player.is_connected(), "the sprayed player disconnected");
    for (who, c) in [("anchor", &anchor), ("viewer", &viewer)] {
        let pushed: Vec<_> = c
            .drain_events()
            .into_iter()
            .filter(|e| e.name == "playerStateUpdate" || e.name == "publisherStateUpdate")
            .collect();
        assert!(pushed.is_empty(), "{who} was told {pushed:?}");
    }
    // The stranger never got media, nor a binding success for a forged check.
    watch.abort();
    let replies = replies.lock();
    let firsts: Vec<[u8; 2]> = replies
        .iter()
        .map(|d| [d[0], d.get(1).copied().unwrap_or(0)])
        .collect();
    assert!(
        !firsts
            .iter()
            .any(|f| (0x80..0xC0).contains(&f[0]) || *f == [0x01, 0x01]),
        "the stranger got media or a binding success: first bytes {firsts:02x?}"
    );
    eprintln!("the stranger got {} replies", replies.len());
    assert!(server_running(&mut server), "the server died");
}

/// `setPlayVideoQuality` (docs/protocol.md, Simulcast): a play's cap is
/// set by name; other values and streams this connection does not play
/// get their codes; `startPlayingStream` takes the same `videoQuality`.
#[tokio::test]
async fn play_video_quality_is_checked() {
    let server = TestServer::start("");
    let c = member(&server, "u", &["r1"]).await;
    let code = |r: sfu_client::Result<Value>| code_of(r);
    let _player = c.play("cam").await.expect("a play that waits");
    for q in ["low", "medium", "high", "auto"] {
        c.request(
            "setPlayVideoQuality",
            json!({"streamID": "cam", "quality": q}),
        )
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    }
    let set = |stream: &str, q: Value| {
        c.request(
            "setPlayVideoQuality",
            json!({"streamID": stream, "quality": q}),
        )
    };
    assert_eq!(code(set("cam", json!("best")).await), 1_000_001);
    assert_eq!(code(set("cam", json!(2)).await), 1_000_001);
    assert_eq!(code(set("other", json!("low")).await), 1_004_002);
    assert_eq!(
        code(
            c.request(
                "startPlayingStream",
                json!({"streamID": "cam2", "sdp": "x", "videoQuality": "huge"})
            )
            .await
        ),
        1_000_001
    );
}
