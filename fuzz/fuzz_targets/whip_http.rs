//! WHIP/WHEP over the server's real HTTP router (`sfu_core::http::router`):
//! a sequence of requests (method, path, Content-Type, Authorization,
//! Content-Length, body: real offers, trickle-ICE sdpfrags or fuzzed
//! bytes) against a fresh `State` whose control plane has a fake media
//! plane. Resources created by a `201` can be patched and deleted by later
//! requests. Invariants: no panic; a `201` has `Content-Type:
//! application/sdp` and a `Location` of `/whip|whep/resource/<32 hex>`; a
//! JSON error body has a code and a message; a deleted resource is gone
//! (a second `DELETE` is `404`); once every resource is ended, the control
//! plane holds no session.

#![no_main]

use std::sync::{Arc, OnceLock};

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use room_signal::media::{Accepted, MediaControl, MediaId, PlayRequest, PublishRequest};
use room_signal::token::{mint, Claims};
use room_signal::{code, Hub, SignalConfig, SignalError};
use sfu_core::{webhooks, HttpLimits, Refusals, State};
use tower::ServiceExt;

const SECRET: &str = "devsecret";

const OFFERS: &[&str] = &[
    include_str!("../../crates/sfu-core/src/media/fixtures/chromium_publish.sdp"),
    include_str!("../../crates/sfu-core/src/media/fixtures/firefox_publish.sdp"),
    include_str!("../../crates/sfu-core/src/media/fixtures/ffmpeg_whip.sdp"),
    include_str!("../../crates/sfu-core/src/media/fixtures/gstreamer_whip.sdp"),
    include_str!("../../crates/sfu-core/src/media/fixtures/chromium_play.sdp"),
];

/// Accepts every offer with a fixed answer.
struct FakeMedia;

impl MediaControl for FakeMedia {
    fn publish(&self, _req: PublishRequest<'_>) -> Result<Accepted, SignalError> {
        Ok(Accepted {
            id: 1,
            answer_sdp: "v=0\r\n".into(),
        })
    }
    fn play(&self, req: PlayRequest<'_>) -> Result<Accepted, SignalError> {
        if req.offer_sdp.contains("a=recvonly") {
            Ok(Accepted {
                id: 2,
                answer_sdp: "v=0\r\n".into(),
            })
        } else {
            Err(SignalError::new(
                code::BAD_SDP,
                "the offer receives nothing",
            ))
        }
    }
    fn add_candidate(&self, _id: MediaId, _c: &str) -> Result<(), SignalError> {
        Ok(())
    }
    fn stop(&self, _id: MediaId) {}
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

fn hooks() -> &'static Arc<webhooks::Webhooks> {
    static H: OnceLock<Arc<webhooks::Webhooks>> = OnceLock::new();
    H.get_or_init(|| {
        let _guard = runtime().enter();
        webhooks::Webhooks::start(
            &webhooks::WebhookConfig::default(),
            &SignalConfig::dev().apps,
        )
        .expect("webhooks")
    })
}

#[derive(Arbitrary, Debug)]
enum Auth {
    None,
    /// A valid token of user `u{0}`, room-bound when `1` is set.
    Token(u8, Option<u8>),
    Expired(u8),
    OtherApp,
    Secret,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Path {
    Publish {
        room: u8,
        stream: u8,
    },
    Play {
        stream: u8,
    },
    /// A resource created earlier (or a made-up one).
    Resource {
        whep: bool,
        which: u8,
    },
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum BodyKind {
    Empty,
    Offer(u8),
    /// An offer cut at a byte offset.
    Truncated(u8, u16),
    SdpFrag {
        ufrag: String,
        candidate: String,
    },
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum ContentType {
    None,
    Sdp,
    SdpParams,
    TrickleIce,
    Json,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
struct Req {
    method: u8,
    path: Path,
    content_type: ContentType,
    auth: Auth,
    content_length: Option<String>,
    body: BodyKind,
}

fn token(user: u8, room: Option<u8>, exp_delta: i64, app_id: u32) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    mint(
        SECRET,
        &Claims {
            app_id,
            user_id: format!("u{}", user % 3),
            iat: now,
            exp: now.saturating_add_signed(exp_delta),
            room_id: room.map(|r| format!("r{}", r % 2)),
            privilege: None,
            stream_id_list: None,
        },
    )
}

fn state() -> Arc<State> {
    let hub = Hub::with_hooks(SignalConfig::dev(), Arc::new(FakeMedia), hooks().clone())
        .expect("the dev config");
    let limits = HttpLimits {
        max_body_bytes: 16 * 1024,
        ..HttpLimits::default()
    };
    Arc::new(State {
        hub,
        resources: Arc::default(),
        dev: true,
        refusals: Refusals::default(),
        limits,
        websockets: Default::default(),
        media: None,
        admin_token: Some("fuzz-admin-token".into()),
        stopping: tokio::sync::watch::Sender::new(false),
        webhooks: hooks().clone(),
        resumes: Default::default(),
        held_sessions: Default::default(),
        cluster: None,
    })
}

fn is_resource_location(loc: &str) -> bool {
    let id = loc
        .strip_prefix("/whip/resource/")
        .or_else(|| loc.strip_prefix("/whep/resource/"));
    id.is_some_and(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

async fn run(reqs: &[Req]) {
    let state = state();
    let app = sfu_core::http::router(state.clone());
    let mut created: Vec<String> = Vec::new();
    let mut deleted: Vec<String> = Vec::new();
    for r in reqs.iter().take(16) {
        let method = match r.method % 6 {
            0 | 1 => Method::POST,
            2 => Method::PATCH,
            3 => Method::DELETE,
            4 => Method::OPTIONS,
            _ => Method::GET,
        };
        let path = match &r.path {
            Path::Publish { room, stream } => format!("/whip/r{}/s{}", room % 2, stream % 3),
            Path::Play { stream } => format!("/whep/s{}", stream % 3),
            Path::Resource { whep, which } => {
                let all: Vec<&String> = created.iter().chain(&deleted).collect();
                match all.get(usize::from(*which)) {
                    Some(loc) => loc.to_string(),
                    None => format!(
                        "/{}/resource/0123456789abcdef0123456789abcdef",
                        if *whep { "whep" } else { "whip" }
                    ),
                }
            }
            Path::Raw(p) => p.clone(),
        };
        let mut req = Request::builder().method(method.clone()).uri(&path);
        let ct = match &r.content_type {
            ContentType::None => None,
            ContentType::Sdp => Some("application/sdp".to_string()),
            ContentType::SdpParams => Some("Application/SDP ; charset=utf-8".to_string()),
            ContentType::TrickleIce => Some("application/trickle-ice-sdpfrag".to_string()),
            ContentType::Json => Some("application/json".to_string()),
            ContentType::Raw(s) => Some(s.clone()),
        };
        if let Some(ct) = ct {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let auth = match &r.auth {
            Auth::None => None,
            Auth::Token(u, room) => Some(format!("Bearer {}", token(*u, *room, 3600, 1))),
            Auth::Expired(u) => Some(format!("Bearer {}", token(*u, None, -3600, 1))),
            Auth::OtherApp => Some(format!("Bearer {}", token(0, None, 3600, 2))),
            Auth::Secret => Some(format!("Bearer {SECRET}")),
            Auth::Raw(s) => Some(s.clone()),
        };
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        if let Some(cl) = &r.content_length {
            req = req.header(header::CONTENT_LENGTH, cl.as_str());
        }
        let body: Vec<u8> = match &r.body {
            BodyKind::Empty => Vec::new(),
            BodyKind::Offer(i) => OFFERS[usize::from(*i) % OFFERS.len()].as_bytes().to_vec(),
            BodyKind::Truncated(i, at) => {
                let o = OFFERS[usize::from(*i) % OFFERS.len()].as_bytes();
                o[..usize::from(*at).min(o.len())].to_vec()
            }
            BodyKind::SdpFrag { ufrag, candidate } => format!(
                "a=ice-ufrag:{ufrag}\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:{candidate}\r\n"
            )
            .into_bytes(),
            BodyKind::Raw(b) => b.clone(),
        };
        // Builders refuse invalid URIs and header values: not a request a
        // client could send.
        let Ok(req) = req.body(Body::from(body)) else {
            continue;
        };
        let Ok(resp) = app.clone().oneshot(req).await;
        let status = resp.status();
        assert!(
            !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status} for {method} {path}"
        );
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("a response body");
        let ctype = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if status == StatusCode::CREATED {
            assert_eq!(ctype, "application/sdp");
            let loc = headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .expect("a 201 has a Location");
            assert!(is_resource_location(loc), "{loc}");
            created.push(loc.to_string());
        }
        if ctype.starts_with("application/json")
            && (status.is_client_error() || status.is_server_error())
        {
            let v: serde_json::Value = serde_json::from_slice(&bytes).expect("a JSON error body");
            assert!(v.get("code").is_some() && v.get("message").is_some(), "{v}");
        }
        if method == Method::DELETE {
            if let Some(i) = created.iter().position(|c| *c == path) {
                if status == StatusCode::OK {
                    deleted.push(created.swap_remove(i));
                }
            } else if deleted.contains(&path) {
                assert_eq!(
                    status,
                    StatusCode::NOT_FOUND,
                    "a deleted resource is still there"
                );
            }
        }
    }
    state.resources.end_all();
    for _ in 0..1000 {
        if state.resources.is_empty() && state.hub.stats().sessions == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(state.resources.is_empty(), "resources left");
    assert_eq!(
        state.hub.stats().sessions,
        0,
        "sessions left after every resource ended"
    );
}

fuzz_target!(|reqs: Vec<Req>| {
    runtime().block_on(run(&reqs));
});
