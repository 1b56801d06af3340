//! HTTP routes: the signaling WebSocket, WHIP/WHEP, the embedded SDK and
//! demo page, a health check, and in `--dev` a token endpoint for the demo.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Query, State as AxumState, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use axum::http::StatusCode;
use room_signal::{code, token};

use crate::{assets, signaling, whip, Refusal, State};

/// A WebSocket's read buffer: tungstenite's default (128 KiB) is
/// zero-filled on the first read, so every signaling connection held
/// 128 KiB. Signaling frames are small JSON (an offer is a few KiB); a
/// larger frame grows the buffer to its size, up to
/// `limits.maxFrameBytes`.
const WS_READ_BUFFER: usize = 4 * 1024;

/// An HTTP error as every route answers it: `{code, message}` JSON.
pub fn json_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = serde_json::json!({"code": code, "message": message}).to_string();
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Read a request body: at most `server.maxRequestBodyBytes` (`413`,
/// `1000091`), all of it within `server.httpBodyTimeoutMs` (`408`,
/// `1000092`). A `Content-Length` over the limit is refused before reading.
pub async fn read_body(state: &State, headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    let max = state.limits.max_body_bytes;
    let too_large = || {
        state.refusals.count(Refusal::BodyTooLarge);
        json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::BODY_TOO_LARGE,
            &format!("request body over {max} bytes (server.maxRequestBodyBytes)"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(state.limits.body_timeout, axum::body::to_bytes(body, max)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => {
            state.refusals.count(Refusal::BodyTimeout);
            Err(json_error(
                StatusCode::REQUEST_TIMEOUT,
                code::REQUEST_TIMEOUT,
                "request body did not arrive in time (server.httpBodyTimeoutMs)",
            ))
        }
    }
}

/// Any error response the router or an extractor produced without a JSON
/// body (a rejection's plain text, an empty 405) becomes `{code, message}`.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let message = status.canonical_reason().unwrap_or("error").to_string();
    let mut fixed = json_error(status, code::MALFORMED, &message);
    for name in [
        header::ALLOW,
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::ACCESS_CONTROL_ALLOW_METHODS,
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
    ] {
        if let Some(v) = response.headers().get(&name) {
            fixed.headers_mut().insert(name, v.clone());
        }
    }
    fixed
}

/// A place under `server.maxWebSocketConnections`, given back on drop.
struct WsSlot(Arc<State>);

impl WsSlot {
    fn take(state: &Arc<State>) -> Option<WsSlot> {
        let max = state.limits.max_websockets;
        if state.websockets.fetch_add(1, Ordering::AcqRel) >= max {
            state.websockets.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(WsSlot(state.clone()))
    }
}

impl Drop for WsSlot {
    fn drop(&mut self) {
        self.0.websockets.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How long every media worker has to answer a readiness ping.
pub const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// `GET /readyz`: `200` when the listeners are bound (this answer comes
/// through the HTTP one; the media socket is bound before the server
/// starts) and every media worker answered a ping within
/// [`READY_WITHIN`]; `503` naming the workers that did not. In cluster
/// mode also `cluster` (Redis's state, this node's ID, the live nodes'
/// IDs) and
/// `503` until this node is registered, and again once its last good
/// heartbeat is older than the node TTL (the other nodes no longer see
/// it; a shorter Redis outage keeps it ready).
async fn readyz(AxumState(state): AxumState<Arc<State>>) -> Response {
    let (workers, silent) = match &state.media {
        Some(media) => (
            media.workers(),
            media.unanswering_workers(READY_WITHIN).await,
        ),
        None => (0, Vec::new()),
    };
    let mut ready = silent.is_empty();
    let mut body = serde_json::json!({
        "ready": ready,
        "mediaWorkers": workers,
        "unansweringWorkers": silent,
    });
    if let Some(c) = &state.cluster {
        let health = c.health();
        let registered = c.is_ready();
        ready &= registered;
        body["ready"] = ready.into();
        body["cluster"] = serde_json::json!({
            "nodeID": c.node_id(),
            "incarnation": c.incarnation(),
            "registered": registered,
            "redis": health.state.as_str(),
            "redisLatencyMs": health.latency.map(|l| l.as_secs_f64() * 1000.0),
            // IDs only: the probe is unauthenticated, and node-link
            // addresses are nobody's business but the nodes'.
            "nodes": c.nodes().iter().map(|n| n.id.clone()).collect::<Vec<_>>(),
        });
    }
    let status = match ready {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, axum::Json(body)).into_response()
}

pub fn router(state: Arc<State>) -> Router {
    let dev = state.dev;
    let router = Router::new()
        .route("/ws", get(ws))
        .route("/health", get(|| async { "ok" }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::serve))
        .route("/admin/kick", post(admin_kick))
        .route(
            "/whip/{room}/{stream}",
            post(whip::publish).options(whip::options),
        )
        .route("/whep/{stream}", post(whip::play).options(whip::options))
        .route(
            "/whip/resource/{id}",
            axum::routing::delete(|s, p, h| whip::delete(s, p, h, "whip"))
                .patch(|s, p, h| whip::patch(s, p, h, "whip"))
                .options(whip::options),
        )
        .route(
            "/whep/resource/{id}",
            axum::routing::delete(|s, p, h| whip::delete(s, p, h, "whep"))
                .patch(|s, p, h| whip::patch(s, p, h, "whep"))
                .options(whip::options),
        )
        .merge(crate::admin::routes())
        .fallback(assets::serve);
    let router = if dev {
        router.route("/dev/token", get(dev_token))
    } else {
        router
    };
    router
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state)
}

/// `POST /admin/kick` `{"appID", "roomID", "userID"}` with
/// `Authorization: Bearer <the app's secret>`: the server removes a user from
/// a room (`roomStateChanged KICKOUT 1002055`, its streams deleted with
/// reason 4).
async fn admin_kick(
    AxumState(state): AxumState<Arc<State>>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Response {
    let body = match read_body(&state, &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let fail = |status: StatusCode, code: u32, message: &str| {
        (
            status,
            axum::Json(serde_json::json!({"code": code, "message": message})),
        )
            .into_response()
    };
    let Ok(req) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return fail(
            StatusCode::BAD_REQUEST,
            code::MALFORMED,
            "body must be JSON",
        );
    };
    let (Some(app_id), Some(room), Some(user)) = (
        req.get("appID").and_then(serde_json::Value::as_u64),
        req.get("roomID").and_then(serde_json::Value::as_str),
        req.get("userID").and_then(serde_json::Value::as_str),
    ) else {
        return fail(
            StatusCode::BAD_REQUEST,
            code::MALFORMED,
            "appID, roomID and userID are required",
        );
    };
    let Some(app) = u32::try_from(app_id).ok().and_then(|id| state.hub.app(id)) else {
        return fail(StatusCode::NOT_FOUND, code::UNKNOWN_APP, "unknown appID");
    };
    let secret = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if secret != Some(app.config.secret.as_str()) {
        return fail(
            StatusCode::UNAUTHORIZED,
            code::TOKEN_INVALID,
            "Authorization must be Bearer <app secret>",
        );
    }
    if app.kick(room, user) {
        axum::Json(serde_json::json!({"code": 0})).into_response()
    } else {
        fail(
            StatusCode::NOT_FOUND,
            code::NOT_IN_ROOM,
            "that user is not in that room",
        )
    }
}

/// `GET /dev/token?appID=1&userID=alice[&roomID=r1]` — only in `--dev`:
/// a one-hour token for the demo page.
async fn dev_token(uri: Uri, AxumState(state): AxumState<Arc<State>>) -> Response {
    let query = query_of(&uri);
    let app = query
        .get("appID")
        .and_then(|s| s.parse::<u32>().ok())
        .and_then(|id| state.hub.app(id));
    let (Some(app), Some(user)) = (app, query.get("userID").filter(|u| !u.is_empty())) else {
        let body = serde_json::json!({"code": code::MALFORMED, "message": "appID (known) and userID are required"});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    };
    let now = signaling::unix_ms() / 1000;
    let claims = token::Claims {
        app_id: app.id(),
        user_id: user.clone(),
        iat: now,
        exp: now + 3600,
        room_id: query.get("roomID").filter(|r| !r.is_empty()).cloned(),
        privilege: None,
        stream_id_list: None,
    };
    axum::Json(serde_json::json!({"token": token::mint(&app.config.secret, &claims)}))
        .into_response()
}

/// The query string's parameters (an unreadable one reads as empty).
fn query_of(uri: &Uri) -> HashMap<String, String> {
    Query::<HashMap<String, String>>::try_from_uri(uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

/// `GET /ws?appID=`: `400` without an upgrade, `503` `1000090` over
/// `server.maxWebSocketConnections`; an app at `maxSessionsPerApp` gets the
/// `error` event `1001005` and close 1013.
async fn ws(
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    uri: Uri,
    AxumState(state): AxumState<Arc<State>>,
) -> Response {
    let Ok(upgrade) = upgrade else {
        return json_error(
            StatusCode::BAD_REQUEST,
            code::MALFORMED,
            "GET /ws must be a WebSocket upgrade",
        );
    };
    let query = query_of(&uri);
    let Some(slot) = WsSlot::take(&state) else {
        state.refusals.count(Refusal::WebSockets);
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            code::SERVER_BUSY,
            "too many WebSocket connections (server.maxWebSocketConnections)",
        );
    };
    let max = state.hub.limits().max_frame_bytes;
    let app = query
        .get("appID")
        .and_then(|s| s.parse::<u32>().ok())
        .and_then(|id| state.hub.app(id));
    let upgrade = upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(WS_READ_BUFFER);
    match app {
        Some(app) => match state.hub.try_connect(app) {
            Ok((session, inbox)) => upgrade
                .on_upgrade(move |socket| signaling::serve(socket, state, session, inbox, slot))
                .into_response(),
            Err(e) => {
                state.refusals.count(Refusal::AppSessions);
                upgrade
                    .on_upgrade(move |socket| signaling::reject_busy(socket, e))
                    .into_response()
            }
        },
        None => {
            let why = match query.get("appID") {
                None => "missing appID query parameter".to_string(),
                Some(s) => format!("unknown appID `{s}`"),
            };
            upgrade
                .on_upgrade(move |socket| signaling::reject_app(socket, why))
                .into_response()
        }
    }
}
