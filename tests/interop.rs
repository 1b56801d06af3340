//! The tools people publish and play with, as external processes over
//! WHIP/WHEP, each checked by decoded frames: FFmpeg's own `whip` muxer
//! (FFmpeg 8 through PyAV, libx264 + libopus; GnuTLS DTLS with a P-224
//! certificate), aiortc with its offer forced to `a=setup:passive` and
//! `active` (RFC 8842 roles, OpenSSL DTLS), and GStreamer's webrtcbin
//! (Debian's, libnice, OpenSSL DTLS). `scripts/test` installs PyAV, aiortc
//! and GStreamer when missing; a missing one fails the test, never skips
//! it. FFmpeg played by Chromium is in `tests/browser.rs`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use common::TestServer;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// Debian's python3 (GStreamer's bindings are Debian packages).
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// A publisher process whose stdout is read line by line.
struct Publisher {
    child: Child,
    lines: std::io::Lines<BufReader<ChildStdout>>,
    seen: Vec<String>,
}

impl Publisher {
    fn spawn(python: &str, args: &[&str]) -> Publisher {
        let mut child = Command::new(python)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {python} {args:?}: {e} (scripts/test installs it)"));
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Publisher {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Read lines until one equals `line`; panics with what was read if the
    /// process ends first.
    fn wait_for(&mut self, line: &str) {
        for l in self.lines.by_ref() {
            let l = l.expect("read publisher output");
            eprintln!("publisher: {l}");
            self.seen.push(l.clone());
            if l == line {
                return;
            }
        }
        let status = self.child.wait();
        panic!(
            "publisher ended ({status:?}) before {line:?}: {:?}",
            self.seen
        );
    }

    /// The next line starting with `prefix`.
    fn line_starting(&mut self, prefix: &str) -> String {
        for l in self.lines.by_ref() {
            let l = l.expect("read publisher output");
            eprintln!("publisher: {l}");
            self.seen.push(l.clone());
            if l.starts_with(prefix) {
                return l;
            }
        }
        panic!("publisher ended before a {prefix:?} line: {:?}", self.seen);
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run a player script to its end; its stdout. Panics (with the output)
/// unless it exits 0.
fn play(python: &str, args: &[&str]) -> String {
    let out = Command::new(python)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {python} {args:?}: {e} (scripts/test installs it)"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("player: {stdout}");
    assert!(
        out.status.success(),
        "player {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The N of a "decoded N video frames" line.
fn decoded(out: &str) -> u64 {
    out.lines()
        .find_map(|l| {
            l.strip_prefix("decoded ")?
                .strip_suffix(" video frames")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no decoded line in {out:?}"))
}

fn token(user: &str) -> String {
    common::token(1, user)
}

/// aiortc's WHEP player of `stream` (its offer `setup` forced if given).
fn aiortc_play(server: &TestServer, stream: &str, setup: Option<&str>) -> String {
    let url = format!("http://{}", server.addr);
    let s = script("aiortc_peer.py");
    let mut args = vec![
        s.to_str().unwrap().to_string(),
        "whep-play".into(),
        url,
        stream.into(),
        token("aiortc-viewer"),
        "20".into(),
    ];
    if let Some(role) = setup {
        args.extend(["--setup".to_string(), role.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    play("python3", &args)
}

/// FFmpeg's WHIP muxer (`a=setup:passive`: FFmpeg is the DTLS server, we
/// the client) publishing H.264 + Opus; aiortc plays it over WHEP.
#[test]
fn ffmpeg_whip_h264_opus_plays_in_aiortc() {
    let server = TestServer::start_dev();
    let url = format!("http://{}/whip/studio/ffmpeg-cam", server.addr);
    let s = script("ffmpeg_whip.py");
    let mut ffmpeg = Publisher::spawn(
        "python3",
        &[s.to_str().unwrap(), &url, &token("ffmpeg"), "30"],
    );
    ffmpeg.wait_for("publishing");
    let out = aiortc_play(&server, "ffmpeg-cam", None);
    assert!(decoded(&out) >= 30, "{out}");
    // aiortc offered actpass and was told passive: it is the DTLS client.
    assert!(out.contains("dtls role client"), "{out}");
}

/// FFmpeg as the DTLS client (`whip_flags=dtls_active`: its offer says
/// `active`, our answer `passive`): its CertificateVerify is signed by the
/// same P-224 key, verified by us as the server.
#[test]
fn ffmpeg_whip_dtls_active_plays_in_aiortc() {
    let server = TestServer::start_dev();
    let url = format!("http://{}/whip/studio/ffmpeg-active", server.addr);
    let s = script("ffmpeg_whip.py");
    let mut ffmpeg = Publisher::spawn(
        "python3",
        &[
            s.to_str().unwrap(),
            &url,
            &token("ffmpeg"),
            "30",
            "--dtls-active",
        ],
    );
    ffmpeg.wait_for("publishing");
    let out = aiortc_play(&server, "ffmpeg-active", None);
    assert!(decoded(&out) >= 30, "{out}");
}

/// aiortc publishing and playing with its offers forced to one role: the
/// answer takes the other (RFC 8842 §5.3) and DTLS completes either way.
fn aiortc_forced(role: &str, answer: &str, aiortc_role: &str) {
    let server = TestServer::start_dev();
    let url = format!("http://{}", server.addr);
    let s = script("aiortc_peer.py");
    let stream = format!("forced-{role}");
    let mut publisher = Publisher::spawn(
        "python3",
        &[
            s.to_str().unwrap(),
            "whip-publish",
            &url,
            "studio",
            &stream,
            &token("aiortc"),
            "30",
            "--setup",
            role,
        ],
    );
    publisher.wait_for("published");
    let dtls = publisher.line_starting("dtls ");
    assert!(dtls.contains(&format!("answer-setup {answer}")), "{dtls}");
    assert!(dtls.contains(&format!("dtls role {aiortc_role}")), "{dtls}");
    let out = aiortc_play(&server, &stream, Some(role));
    assert!(decoded(&out) >= 30, "{out}");
    assert!(out.contains(&format!("answer-setup {answer}")), "{out}");
    assert!(out.contains(&format!("dtls role {aiortc_role}")), "{out}");
}

#[test]
fn aiortc_offering_passive_gets_active_and_we_are_the_dtls_client() {
    aiortc_forced("passive", "active", "server");
}

#[test]
fn aiortc_offering_active_gets_passive_and_we_are_the_dtls_server() {
    aiortc_forced("active", "passive", "client");
}

fn gst_publish(server: &TestServer, stream: &str, h264: bool) -> Publisher {
    let url = format!("http://{}/whip/studio/{stream}", server.addr);
    let s = script("gst_webrtc.py");
    let mut args = vec![s.to_str().unwrap(), "whip-publish", &url];
    let t = token("gstreamer");
    args.extend([t.as_str(), "30"]);
    if h264 {
        args.push("--h264");
    }
    let mut publisher = Publisher::spawn(SYSTEM_PYTHON, &args);
    publisher.wait_for("published");
    publisher
}

/// GStreamer's webrtcbin publishes VP8 + Opus over WHIP and plays it back
/// over WHEP (its decoder's frames counted).
#[test]
fn gstreamer_webrtcbin_publishes_and_plays() {
    let server = TestServer::start_dev();
    let _publisher = gst_publish(&server, "gst-cam", false);
    let url = format!("http://{}/whep/gst-cam", server.addr);
    let s = script("gst_webrtc.py");
    let out = play(
        SYSTEM_PYTHON,
        &[
            s.to_str().unwrap(),
            "whep-play",
            &url,
            &token("gst-viewer"),
            "20",
        ],
    );
    assert!(decoded(&out) >= 30, "{out}");
    assert!(out.contains("answer-setup passive"), "{out}");
}

/// GStreamer publishing H.264 (x264's constrained baseline `42c01e`, a
/// level below the players' 3.1) plays in aiortc.
#[test]
fn gstreamer_h264_plays_in_aiortc() {
    let server = TestServer::start_dev();
    let _publisher = gst_publish(&server, "gst-h264", true);
    let out = aiortc_play(&server, "gst-h264", None);
    assert!(decoded(&out) >= 30, "{out}");
}

/// Chromium's recorded play offer with its video section cut down to one
/// H.264 line of `profile_level_id` (every other video codec removed).
fn h264_only_offer(profile_level_id: &str) -> String {
    let chromium = include_str!("../crates/sfu-core/src/media/fixtures/chromium_play.sdp");
    let mut out = String::new();
    let mut video = false;
    for line in chromium.lines() {
        if line.starts_with("m=") {
            video = line.starts_with("m=video");
            if video {
                out.push_str("m=video 9 UDP/TLS/RTP/SAVPF 106\r\n");
                continue;
            }
        }
        let other_pt = ["a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"].iter().any(|p| {
            line.strip_prefix(p)
                .is_some_and(|rest| !rest.starts_with("106 "))
        });
        if video && other_pt {
            continue;
        }
        out.push_str(&line.replace(
            "profile-level-id=42e01f",
            &format!("profile-level-id={profile_level_id}"),
        ));
        out.push_str("\r\n");
    }
    out
}

/// A player whose offer lists only another H.264 profile than the live
/// publisher's gets `1005001` naming the stream's profile (not an answer
/// and a black video); one listing the publisher's profile at another
/// level (asymmetry allowed) is answered with that line.
#[test]
fn a_player_offering_only_another_h264_profile_is_refused() {
    let server = TestServer::start_dev();
    let _publisher = gst_publish(&server, "gst-cb", true);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let auth = format!("Bearer {}", token("picky"));
    for other in ["64001f", "42001f", "4d001f"] {
        let r = rt.block_on(common::http::post_sdp(
            &server.addr,
            "/whep/gst-cb",
            &auth,
            &h264_only_offer(other),
        ));
        assert_eq!(r.status, 400, "{other}: {}", r.body);
        let body = r.json();
        assert_eq!(body["code"], 1005001, "{other}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(
                "cannot receive the stream's video (H.264 constrained baseline level 3.0)"
            ),
            "{other}: {message}"
        );
    }
    // The same profile at level 5.1 (x264 sent 3.0): answered, with that line.
    let r = rt.block_on(common::http::post_sdp(
        &server.addr,
        "/whep/gst-cb",
        &auth,
        &h264_only_offer("42e033"),
    ));
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body.contains("profile-level-id=42e033"), "{}", r.body);
}
