//! ICE-TCP (RFC 6544 passive candidates, RFC 4571 framing) end to end:
//! Chromium and Firefox publish and play through the server while every UDP
//! packet is dropped, so their only way in is the answer's TCP candidate.
//!
//! The test makes its own network namespace (`unshare -n`, or `-rn` when
//! not root), brings its loopback up, loads an nftables ruleset that drops
//! `meta l4proto udp` in both directions, and runs the inner test (this
//! binary again, `--ignored --exact`) in there: the server and both browsers
//! live inside it. The inner test first checks that UDP really is refused,
//! then runs `tests/browser/ice_tcp.mjs`, which asserts that every peer
//! connection's selected pair is TCP on both ends, that each player's
//! `framesDecoded` grows, and that `/metrics` counts the connections.
//! And, without browsers, the listener's own rules: garbage and
//! connections beyond `server.maxTcpConnections` are closed.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use common::TestServer;

/// Set (by the outer test) inside the namespace that drops UDP. Not
/// `SFU_…`: the server reads those as configuration overrides.
const IN_NETNS: &str = "SFUTEST_ICE_TCP_NETNS";
const INNER: &str = "browsers_publish_and_play_over_ice_tcp_inside_the_namespace";

/// Drop every UDP packet, sent or received, in the namespace.
const NO_UDP: &str = "table inet sfu_no_udp {
  chain input { type filter hook input priority 0; policy accept; meta l4proto udp drop; }
  chain output { type filter hook output priority 0; policy accept; meta l4proto udp drop; }
}
";

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn chromium_and_firefox_publish_and_play_over_ice_tcp_when_udp_is_dropped() {
    for tool in ["nft", "unshare", "ip", "node"] {
        assert!(
            have(tool),
            "`{tool}` is missing: run ./scripts/test (it installs it)"
        );
    }
    let rules = std::env::temp_dir().join(format!("sfu-no-udp-{}.nft", std::process::id()));
    std::fs::write(&rules, NO_UDP).expect("write the nftables rules");
    let exe = std::env::current_exe().expect("test binary");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let unshare = if root { "-n" } else { "-rn" };
    let script = format!(
        "ip link set lo up && nft -f '{}' && nft list ruleset && \
         exec \"$0\" {INNER} --exact --ignored --nocapture --test-threads=1",
        rules.display()
    );
    let out = Command::new("unshare")
        .args([unshare, "sh", "-c", &script])
        .arg(&exe)
        .env(IN_NETNS, "1")
        .output()
        .expect("run unshare");
    let _ = std::fs::remove_file(&rules);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the inner test failed:\n{stdout}\n{stderr}"
    );
    eprintln!("{stdout}");
    // The rules were in force, and the inner test ran (not filtered away).
    assert!(stdout.contains("meta l4proto udp drop"), "{stdout}");
    assert!(stdout.contains("ice-tcp passed"), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
}

#[test]
#[ignore = "run by chromium_and_firefox_publish_and_play_over_ice_tcp_when_udp_is_dropped inside its namespace"]
fn browsers_publish_and_play_over_ice_tcp_inside_the_namespace() {
    if std::env::var_os(IN_NETNS).is_none() {
        eprintln!("not inside the UDP-dropping namespace: nothing to do");
        return;
    }
    // UDP is refused here (the output hook drops it: the send fails at once).
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let sent = udp.send_to(b"x", udp.local_addr().expect("addr"));
    assert!(sent.is_err(), "UDP still gets out: {sent:?}");

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    for (what, path) in [
        ("playwright-core", dir.join("node_modules/playwright-core")),
        ("puppeteer-core", dir.join("node_modules/puppeteer-core")),
        ("chromium", Path::new("/usr/bin/chromium").to_path_buf()),
        (
            "firefox-esr",
            Path::new("/usr/bin/firefox-esr").to_path_buf(),
        ),
    ] {
        assert!(
            path.exists(),
            "{what} is missing ({}): run ./scripts/test",
            path.display()
        );
    }
    let server = TestServer::start_dev();
    assert!(server.media_tcp.is_some(), "the server has no ICE-TCP port");
    let out = Command::new("node")
        .arg(dir.join("ice_tcp.mjs"))
        .env("SERVER", format!("http://{}", server.addr))
        .current_dir(&dir)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ice_tcp.mjs failed:\n{stdout}\n{stderr}"
    );
    println!("{stdout}");
    // The players' RTP took the egress fast path, framed on their TCP
    // connections: all four legs (two players, audio and video) verified,
    // nothing failed to go out.
    use common::egress::{CM, FAILED, FAST, GCM, MISMATCH, RTC};
    let text = common::metrics_blocking(&server);
    let (fast, rtc) = (common::sample(&text, FAST), common::sample(&text, RTC));
    println!("egress over ICE-TCP: fast {fast}, rtc {rtc}");
    assert_eq!(
        common::sample(&text, GCM) + common::sample(&text, CM),
        4,
        "verified legs\n{text}"
    );
    assert_eq!(common::sample(&text, MISMATCH), 0, "{text}");
    assert_eq!(common::sample(&text, FAILED), 0, "{text}");
    assert!(fast > rtc, "the fast path carried the streams\n{text}");
}

/// Read until the server closes the connection (EOF or reset): what it
/// sent before that.
fn until_closed(mut s: std::net::TcpStream) -> Vec<u8> {
    // A safety net only: the server closes well before (at most 5 s).
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                panic!("the server kept the connection open")
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                panic!("the server kept the connection open")
            }
            Err(_) => return got,
        }
    }
}

/// Garbage, a frame that breaks RFC 4571 limits, a binding request for
/// nobody, or nothing at all: the server answers nothing and closes.
#[test]
fn the_ice_tcp_port_closes_what_is_not_a_binding_request_for_a_peer() {
    let server = TestServer::start("");
    let tcp = server.media_tcp.expect("media tcp address");
    // A binding request naming an ufrag nobody has (valid STUN, no peer).
    let mut stun = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[7; 12]);
    stun.extend_from_slice(&[0x00, 0x06, 0x00, 0x07]);
    stun.extend_from_slice(b"nobody:\0");
    let mut unknown = (stun.len() as u16).to_be_bytes().to_vec();
    unknown.extend_from_slice(&stun);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        ("an oversize frame", vec![0xff, 0xff, 1, 2, 3]),
        ("a zero-length frame", vec![0, 0]),
        ("a frame that is not STUN", vec![0, 3, 0x16, 0xfe, 0xfd]),
        ("a binding request for no peer", unknown),
        ("nothing (the 5 s deadline)", Vec::new()),
    ];
    for (what, bytes) in cases {
        let mut s = std::net::TcpStream::connect(tcp).expect("connect");
        if !bytes.is_empty() {
            s.write_all(&bytes).expect("write");
        }
        let got = until_closed(s);
        assert!(got.is_empty(), "{what}: the server answered {got:?}");
    }
}

/// Beyond `server.maxTcpConnections` a new connection is closed at once;
/// `/metrics` counts the open ones.
#[test]
fn ice_tcp_connections_beyond_the_limit_are_closed() {
    let server = TestServer::start_with(&format!(
        "[server]\nmaxTcpConnections = 2\n[limits]\n{}",
        common::APPS
    ));
    let tcp = server.media_tcp.expect("media tcp address");
    // Two held open (each sends half a frame, so its handshake waits).
    let held: Vec<std::net::TcpStream> = (0..2)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(tcp).expect("connect");
            s.write_all(&[0x00]).expect("write");
            s
        })
        .collect();
    // Wait until the server counts both.
    loop {
        let m = common::metrics_blocking(&server);
        if m.lines().any(|l| l == "sfu_ice_tcp_connections 2") {
            break;
        }
        std::thread::yield_now();
    }
    let third = std::net::TcpStream::connect(tcp).expect("connect");
    assert!(until_closed(third).is_empty());
    drop(held);
    // Once they are closed the slots are free again.
    loop {
        let m = common::metrics_blocking(&server);
        if m.lines().any(|l| l == "sfu_ice_tcp_connections 0") {
            break;
        }
        std::thread::yield_now();
    }
}
