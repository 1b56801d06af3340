//! Test harness: starts the real `sfu` binary on 127.0.0.1 with an ephemeral
//! port and a config written for the test, and speaks the wire protocol over
//! real WebSocket connections.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(3);
/// How long a test watches for something that must not happen.
pub const QUIET: Duration = Duration::from_millis(300);

/// The apps every test server has: 1 multi-room (5 rooms), 2 single-room
/// only, 3 multi-room with at most 2 rooms.
pub const APPS: &str = r#"
[[apps]]
appID = 1
secret = "secret-one"
multiRoom = true
maxRooms = 5

[[apps]]
appID = 2
secret = "secret-two"
multiRoom = false

[[apps]]
appID = 3
secret = "secret-three"
multiRoom = true
maxRooms = 2
"#;

pub fn secret(app: u32) -> &'static str {
    match app {
        1 => "secret-one",
        2 => "secret-two",
        3 => "secret-three",
        _ => "unknown",
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims as a JSON object, so tests can craft any token.
pub fn claims(app: u32, user: &str) -> Value {
    json!({"app_id": app, "user_id": user, "iat": now_secs(), "exp": now_secs() + 3600})
}

pub fn sign(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A valid token for `user` in `app`.
pub fn token(app: u32, user: &str) -> String {
    sign(secret(app), &claims(app, user))
}

/// How a test server is started.
#[derive(Default, Clone, Copy)]
struct Launch<'a> {
    /// `--dev`.
    dev: bool,
    /// The open-file limit (soft and hard).
    fds: Option<u32>,
    /// More environment (test hooks).
    env: &'a [(&'a str, &'a str)],
    /// `RUST_LOG`, with the log output captured (else inherited).
    rust_log: Option<&'a str>,
}

pub struct TestServer {
    child: Child,
    pub addr: String,
    /// The media plane's UDP address.
    pub media: Option<std::net::SocketAddr>,
    /// The media plane's ICE-TCP address.
    pub media_tcp: Option<std::net::SocketAddr>,
}

impl TestServer {
    /// The standard apps and `limits` (TOML lines of the `[limits]` table).
    pub fn start(limits: &str) -> TestServer {
        Self::start_with(&format!("[limits]\n{limits}\n{APPS}"))
    }

    /// The standard apps in `--dev` mode (the `/dev/token` endpoint is on).
    pub fn start_dev() -> TestServer {
        Self::launch(&format!("[limits]\n{APPS}"), true)
    }

    /// `--dev` with `server` (TOML lines of the `[server]` table).
    pub fn start_dev_with(server: &str) -> TestServer {
        Self::launch(&format!("[server]\n{server}\n[limits]\n{APPS}"), true)
    }

    pub fn start_with(config: &str) -> TestServer {
        Self::launch(config, false)
    }

    /// [`TestServer::start_with`], the server's environment extended by
    /// `env` (test hooks such as `SFUTEST_PANIC_STREAM`).
    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> TestServer {
        Self::spawn(
            config,
            &Launch {
                env,
                ..Launch::default()
            },
        )
        .0
    }

    /// `config`, run with at most `fds` open files (soft and hard limit).
    pub fn start_with_fd_limit(config: &str, fds: u32) -> TestServer {
        Self::spawn(
            config,
            &Launch {
                fds: Some(fds),
                ..Launch::default()
            },
        )
        .0
    }

    fn launch(config: &str, dev: bool) -> TestServer {
        Self::spawn(
            config,
            &Launch {
                dev,
                ..Launch::default()
            },
        )
        .0
    }

    /// [`TestServer::start_with`] with `RUST_LOG=rust_log`, and the
    /// server's log output (stderr) read line by line.
    pub fn start_logged(config: &str, rust_log: &str) -> (TestServer, Logs) {
        let (server, stderr) = Self::spawn(
            config,
            &Launch {
                rust_log: Some(rust_log),
                ..Launch::default()
            },
        );
        let (tx, rx) = mpsc::unbounded_channel();
        if let Some(stderr) = stderr {
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        (
            server,
            Logs {
                rx,
                lines: Vec::new(),
            },
        )
    }

    fn spawn(config: &str, launch: &Launch<'_>) -> (TestServer, Option<std::process::ChildStderr>) {
        let Launch {
            dev,
            fds,
            env,
            rust_log,
        } = *launch;
        let dir =
            std::env::temp_dir().join(format!("sfu-test-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sfu.toml");
        std::fs::write(&path, config).unwrap();
        let mut command = match fds {
            None => Command::new(env!("CARGO_BIN_EXE_sfu")),
            Some(n) => {
                let mut sh = Command::new("sh");
                sh.args([
                    "-c",
                    &format!("ulimit -n {n} && exec \"$0\" \"$@\""),
                    env!("CARGO_BIN_EXE_sfu"),
                ]);
                sh
            }
        };
        if dev {
            command.arg("--dev");
        }
        command.envs(env.iter().copied());
        let mut child = command
            .arg("--config")
            .arg(&path)
            .args([
                "--bind",
                "127.0.0.1:0",
                "--udp-port",
                "0",
                "--tcp-port",
                "0",
            ])
            .env(
                "RUST_LOG",
                rust_log.map(str::to_string).unwrap_or_else(|| {
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,rtc_dtls=error".into())
                }),
            )
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(if rust_log.is_some() {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("spawn sfu");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let rest = line
            .trim()
            .strip_prefix("sfu listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line from sfu: {line:?}"));
        let mut words = rest.split_whitespace();
        let addr = words.next().unwrap_or_default().to_string();
        let mut media_words = words.skip_while(|w| *w != "media").skip(1);
        let media = media_words
            .next()
            .and_then(|w| w.strip_prefix("udp://"))
            .and_then(|a| a.parse().ok());
        let media_tcp = media_words
            .next()
            .and_then(|w| w.strip_prefix("tcp://"))
            .and_then(|a| a.parse().ok());
        let stderr = child.stderr.take();
        (
            TestServer {
                child,
                addr,
                media,
                media_tcp,
            },
            stderr,
        )
    }

    /// Send SIGTERM and wait (up to `within`) for the server to exit;
    /// returns whether it exited successfully.
    pub async fn terminate(&mut self, within: Duration) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = tokio::time::Instant::now() + within;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.success();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the server did not exit within {within:?} of SIGTERM"
            );
            tick.tick().await;
        }
    }

    /// `kill -9`: no shutdown, no goodbye to anyone.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub async fn client(&self, app: u32) -> Client {
        Client::connect(&format!("ws://{}/ws?appID={app}", self.addr)).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed) * 1_000_000
        + SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64
}

/// A server's log lines, as it writes them.
pub struct Logs {
    rx: mpsc::UnboundedReceiver<String>,
    /// Every line read so far.
    pub lines: Vec<String>,
}

impl Logs {
    /// Read lines until one contains `needle` (everything the server wrote
    /// before it is then in `lines`); returns how many lines that took.
    pub async fn until(&mut self, needle: &str) -> usize {
        let deadline = tokio::time::Instant::now() + WAIT;
        let start = self.lines.len();
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(line)) => {
                    let found = line.contains(needle);
                    self.lines.push(line);
                    if found {
                        return self.lines.len() - start;
                    }
                }
                _ => panic!(
                    "no log line with {needle:?}; got {:?}",
                    &self.lines[start..]
                ),
            }
        }
    }
}

/// What the reader task saw.
#[derive(Debug)]
pub enum Incoming {
    Json(Value),
    Closed(Option<u16>),
}

/// A signaling client: requests with ids, events buffered until asked for.
pub struct Client {
    tx: mpsc::UnboundedSender<Message>,
    rx: mpsc::UnboundedReceiver<Incoming>,
    next_id: u64,
    events: VecDeque<Value>,
    responses: VecDeque<Value>,
    pub closed: Option<Option<u16>>,
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        let (mut sink, mut stream) = ws.split();
        let (tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let (in_tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                match msg {
                    Ok(Message::Text(t)) => {
                        let v: Value = serde_json::from_str(&t).expect("server sent invalid JSON");
                        let _ = in_tx.send(Incoming::Json(v));
                    }
                    Ok(Message::Close(frame)) => {
                        let _ = in_tx.send(Incoming::Closed(frame.map(|f| f.code.into())));
                        return;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            let _ = in_tx.send(Incoming::Closed(None));
        });
        Client {
            tx,
            rx,
            next_id: 1,
            events: VecDeque::new(),
            responses: VecDeque::new(),
            closed: None,
        }
    }

    pub fn send_raw(&self, msg: Message) {
        let _ = self.tx.send(msg);
    }

    /// Close with code 1000: the server ends the session at once (any other
    /// end of the socket leaves it held for a resume).
    pub fn close_normally(&self) {
        self.send_raw(Message::Close(Some(
            tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
                reason: "bye".into(),
            },
        )));
    }

    pub fn send_text(&self, text: &str) {
        self.send_raw(Message::Text(text.into()));
    }

    async fn pump(&mut self, deadline: tokio::time::Instant) -> bool {
        match tokio::time::timeout_at(deadline, self.rx.recv()).await {
            Ok(Some(Incoming::Json(v))) => {
                if v.get("event").is_some() {
                    self.events.push_back(v);
                } else {
                    self.responses.push_back(v);
                }
                true
            }
            Ok(Some(Incoming::Closed(code))) => {
                self.closed = Some(code);
                false
            }
            Ok(None) => {
                if self.closed.is_none() {
                    self.closed = Some(None);
                }
                false
            }
            Err(_) => false,
        }
    }

    /// Next response (a frame without `event`), whatever its id.
    pub async fn response(&mut self) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(v) = self.responses.pop_front() {
                return v;
            }
            if !self.pump(deadline).await {
                panic!("no response (closed: {:?})", self.closed);
            }
        }
    }

    /// Send `op` with `fields` and return its response.
    pub async fn request(&mut self, op: &str, fields: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut req = fields;
        req["id"] = json!(id);
        req["op"] = json!(op);
        self.send_text(&req.to_string());
        let v = self.response().await;
        assert_eq!(v["id"], json!(id), "response out of order: {v}");
        v
    }

    /// `request` that must succeed; returns the response.
    pub async fn ok(&mut self, op: &str, fields: Value) -> Value {
        let v = self.request(op, fields).await;
        assert_eq!(v["code"], json!(0), "{op} failed: {v}");
        v
    }

    /// `request` that must fail with `code`.
    pub async fn fails(&mut self, op: &str, fields: Value, code: u64) -> Value {
        let v = self.request(op, fields).await;
        assert_eq!(v["code"], json!(code), "{op}: expected {code}, got {v}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "no message: {v}"
        );
        v
    }

    pub async fn enable_multi_room(&mut self) {
        self.ok("enableMultiRoom", json!({"enable": true})).await;
    }

    /// Log `user` into `room` of `app` with `userUpdate: true`.
    pub async fn login(&mut self, app: u32, user: &str, room: &str) -> Value {
        self.ok(
            "loginRoom",
            json!({"roomID": room, "token": token(app, user),
                   "user": {"userID": user, "userName": format!("{user} name")},
                   "config": {"userUpdate": true}}),
        )
        .await
    }

    /// The next event, whatever its name.
    pub async fn next_event(&mut self) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(e) = self.events.pop_front() {
                return e;
            }
            if !self.pump(deadline).await {
                panic!("no event (closed: {:?})", self.closed);
            }
        }
    }

    /// Wait for the next event called `name` (other events stay buffered).
    pub async fn event(&mut self, name: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(i) = self.events.iter().position(|e| e["event"] == name) {
                return self.events.remove(i).unwrap();
            }
            if !self.pump(deadline).await {
                panic!(
                    "no {name} event (closed: {:?}); buffered: {:?}",
                    self.closed, self.events
                );
            }
        }
    }

    /// Wait for the next `name` event whose `roomID` is `room` (events of
    /// other rooms stay buffered).
    pub async fn room_event(&mut self, name: &str, room: &str) -> Value {
        self.event_where(name, |e| e["roomID"] == room).await
    }

    /// Wait for the next `name` event for which `pred` holds.
    pub async fn event_where(&mut self, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.event_where_within(name, pred, WAIT).await
    }

    /// [`Client::event_where`] with its own time limit.
    pub async fn event_where_within(
        &mut self,
        name: &str,
        pred: impl Fn(&Value) -> bool,
        within: Duration,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(i) = self
                .events
                .iter()
                .position(|e| e["event"] == name && pred(e))
            {
                return self.events.remove(i).unwrap();
            }
            if !self.pump(deadline).await {
                panic!(
                    "no matching {name} event (closed: {:?}); buffered: {:?}",
                    self.closed, self.events
                );
            }
        }
    }

    /// Wait for `roomUserUpdate` of `kind` (ADD/DELETE) about `user` in `room`.
    pub async fn user_update(&mut self, room: &str, kind: &str, user: &str) -> Value {
        self.event_where("roomUserUpdate", |e| {
            e["roomID"] == room && e["updateType"] == kind && e["userList"][0]["userID"] == user
        })
        .await
    }

    /// Assert that no `name` event arrives within `QUIET`.
    pub async fn no_event(&mut self, name: &str) {
        let deadline = tokio::time::Instant::now() + QUIET;
        while self.pump(deadline).await {}
        if let Some(e) = self.events.iter().find(|e| e["event"] == name) {
            panic!("unexpected {name} event: {e}");
        }
    }

    /// Wait for the server to close the socket; returns the close code.
    pub async fn closed_code(&mut self, within: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + within;
        while self.closed.is_none() {
            if !self.pump(deadline).await && self.closed.is_none() {
                panic!("socket not closed within {within:?}");
            }
        }
        self.closed.unwrap()
    }

    /// Buffered events called `name` (after letting pending frames arrive).
    pub fn events_named(&self, name: &str) -> Vec<serde_json::Value> {
        self.events
            .iter()
            .filter(|e| e["event"] == name)
            .cloned()
            .collect()
    }

    /// Drop every buffered event.
    pub fn clear_events(&mut self) {
        self.events.clear();
    }
}
pub mod hooks;
pub mod http;
pub mod impair;
pub mod media;
pub mod proxy;
pub mod redis;
pub mod tcp_proxy;

/// `GET /metrics` of `server` (blocking: for the tests that drive browsers
/// and other processes without a runtime).
pub fn metrics_blocking(server: &TestServer) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(&server.addr).expect("connect");
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    )
    .expect("write");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

/// The value of the `/metrics` sample `name` (labels included, as written).
pub fn sample(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
}

/// Samples of the egress fast path in `/metrics`.
pub mod egress {
    pub const FAST: &str = r#"sfu_egress_rtp_packets_total{path="fast"}"#;
    pub const RTC: &str = r#"sfu_egress_rtp_packets_total{path="rtc"}"#;
    pub const FAILED: &str = r#"sfu_egress_rtp_packets_total{path="failed"}"#;
    pub const GCM: &str = r#"sfu_egress_legs_total{outcome="verified",profile="aead_aes_128_gcm"}"#;
    pub const CM: &str =
        r#"sfu_egress_legs_total{outcome="verified",profile="aes_cm_128_hmac_sha1_80"}"#;
    pub const MISMATCH: &str = r#"sfu_egress_legs_total{outcome="mismatch"}"#;

    /// `legs` player legs were verified (with `profile`, GCM or CM) and
    /// none fell back; the fast path carried more than `rtc` did.
    pub fn assert_fast(text: &str, legs: u64, profile: &str) {
        let (fast, rtc) = (super::sample(text, FAST), super::sample(text, RTC));
        eprintln!("egress: fast {fast}, rtc {rtc}");
        assert_eq!(super::sample(text, profile), legs, "verified legs\n{text}");
        assert_eq!(super::sample(text, MISMATCH), 0, "{text}");
        assert_eq!(super::sample(text, FAILED), 0, "{text}");
        assert!(fast > 4 * rtc, "the fast path carried the stream\n{text}");
    }
}
