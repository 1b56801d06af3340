//! HTTP routes: the signaling WebSocket, WHIP/WHEP, the embedded SDK and
//! demo page, a health check, and in `--dev` a token endpoint for the demo.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State as AxumState, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use axum::http::StatusCode;
use room_signal::{code, token};

use crate::{assets, signaling, whip, State};

pub fn router(state: Arc<State>) -> Router {
    let dev = state.dev;
    let router = Router::new()
        .route("/ws", get(ws))
        .route("/health", get(|| async { "ok" }))
        .route("/admin/kick", post(admin_kick))
        .route(
            "/whip/{room}/{stream}",
            post(whip::publish).options(whip::options),
        )
        .route("/whep/{stream}", post(whip::play).options(whip::options))
        .route(
            "/whip/resource/{id}",
            axum::routing::delete(|s, p| whip::delete(s, p, "whip"))
                .patch(|s, p, h| whip::patch(s, p, h, "whip"))
                .options(whip::options),
        )
        .route(
            "/whep/resource/{id}",
            axum::routing::delete(|s, p| whip::delete(s, p, "whep"))
                .patch(|s, p, h| whip::patch(s, p, h, "whep"))
                .options(whip::options),
        )
        .fallback(assets::serve);
    let router = if dev {
        router.route("/dev/token", get(dev_token))
    } else {
        router
    };
    router.with_state(state)
}

/// `POST /admin/kick` `{"appID", "roomID", "userID"}` with
/// `Authorization: Bearer <the app's secret>`: the server removes a user from
/// a room (`roomStateChanged KICKOUT 1002055`, its streams deleted with
/// reason 4).
async fn admin_kick(
    AxumState(state): AxumState<Arc<State>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
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
async fn dev_token(
    Query(query): Query<HashMap<String, String>>,
    AxumState(state): AxumState<Arc<State>>,
) -> Response {
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

async fn ws(
    upgrade: WebSocketUpgrade,
    Query(query): Query<HashMap<String, String>>,
    AxumState(state): AxumState<Arc<State>>,
) -> Response {
    let max = state.hub.limits().max_frame_bytes;
    let app = query
        .get("appID")
        .and_then(|s| s.parse::<u32>().ok())
        .and_then(|id| state.hub.app(id));
    let upgrade = upgrade.max_message_size(max).max_frame_size(max);
    match app {
        Some(app) => upgrade
            .on_upgrade(move |socket| signaling::serve(socket, state, app))
            .into_response(),
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
