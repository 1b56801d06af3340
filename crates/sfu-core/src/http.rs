//! HTTP routes: the signaling WebSocket, WHIP/WHEP and a health check.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State as AxumState, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::{signaling, whip, State};

pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/ws", get(ws))
        .route("/health", get(|| async { "ok" }))
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
        .with_state(state)
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
