//! The admin REST API under `/admin/v1/apps/{appID}/…`: an app's rooms,
//! streams and plays; kick a user, close a room, remove a stream, set a
//! room's extra info and broadcast to a room as the server. Every call is
//! authenticated with `Authorization: Bearer` and either the app's secret
//! or the server's admin token (`server.adminToken`), both compared in
//! constant time. The OpenAPI 3 document is generated from these handlers
//! (`utoipa`) and served at `/admin/v1/openapi.json`.
//!
//! Answers use the wire contract's shape: `{"code": 0, …}` on success,
//! `{"code", "message"}` with an HTTP error status otherwise.

// Handlers return early with an axum `Response` as the error, as the rest
// of the HTTP layer does; it is large, and that is fine off the media path.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State as AxumState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use room_signal::{code, ids, App};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::OpenApi;

use crate::admin_views::{
    ApiError, BroadcastBody, BroadcastResult, CloseResult, ExtraInfoBody, Ok0, PlayList,
    RoomDetail, RoomList, StreamInfo, StreamList,
};
use crate::http::{json_error, read_body};
use crate::State;

/// How long the media workers have to report their streams' media.
const MEDIA_WITHIN: std::time::Duration = std::time::Duration::from_millis(500);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sfu admin API",
        version = "1",
        description = "Server-side control of an app's rooms, users and streams. Authenticate with `Authorization: Bearer <the app's secret>` or `Bearer <server.adminToken>`."
    ),
    paths(
        list_rooms,
        get_room,
        close_room,
        kick_user,
        set_extra_info,
        broadcast,
        list_streams,
        get_stream,
        remove_stream,
        list_plays
    ),
    components(schemas(
        ApiError,
        Ok0,
        RoomList,
        RoomDetail,
        CloseResult,
        ExtraInfoBody,
        BroadcastBody,
        BroadcastResult,
        StreamList,
        StreamInfo,
        PlayList
    )),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct AdminApi;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The admin routes (merged into the HTTP router).
pub fn routes() -> Router<Arc<State>> {
    let app = "/admin/v1/apps/{appID}";
    Router::new()
        .route("/admin/v1/openapi.json", get(openapi))
        .route(&format!("{app}/rooms"), get(list_rooms))
        .route(
            &format!("{app}/rooms/{{roomID}}"),
            get(get_room).delete(close_room),
        )
        .route(
            &format!("{app}/rooms/{{roomID}}/users/{{userID}}"),
            delete(kick_user),
        )
        .route(
            &format!("{app}/rooms/{{roomID}}/extra-info"),
            put(set_extra_info),
        )
        .route(
            &format!("{app}/rooms/{{roomID}}/broadcast"),
            post(broadcast),
        )
        .route(&format!("{app}/streams"), get(list_streams))
        .route(
            &format!("{app}/streams/{{streamID}}"),
            get(get_stream).delete(remove_stream),
        )
        .route(
            &format!("{app}/streams/{{streamID}}/plays"),
            get(list_plays),
        )
}

/// `GET /admin/v1/openapi.json`: the API's OpenAPI 3 document (public: it
/// describes the API, not any app).
async fn openapi() -> Response {
    match AdminApi::openapi().to_json() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::MALFORMED,
            &e.to_string(),
        ),
    }
}

fn digest(s: &[u8]) -> [u8; 32] {
    Sha256::digest(s).into()
}

/// Constant-time equality of two secrets (compared as SHA-256 digests, so
/// not even the length leaks).
fn same_secret(given: &str, expected: &str) -> bool {
    bool::from(digest(given.as_bytes()).ct_eq(&digest(expected.as_bytes())))
}

/// The app the caller may act on: `401` `1002033` unless the bearer is the
/// app's secret or the admin token (an unknown appID looks the same as a
/// wrong secret unless the admin token is given: then `404` `1001004`).
pub(crate) fn authorize(
    state: &State,
    headers: &HeaderMap,
    app_id: u32,
) -> Result<Arc<App>, Response> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(bearer) = bearer else {
        return Err(json_error(
            StatusCode::UNAUTHORIZED,
            code::TOKEN_MISSING,
            "Authorization: Bearer <app secret or admin token> is required",
        ));
    };
    let admin = state
        .admin_token
        .as_deref()
        .is_some_and(|t| same_secret(bearer, t));
    let app = state.hub.app(app_id);
    match app {
        Some(app) if admin || same_secret(bearer, &app.config.secret) => Ok(app),
        None if admin => Err(json_error(
            StatusCode::NOT_FOUND,
            code::UNKNOWN_APP,
            "unknown appID",
        )),
        _ => Err(json_error(
            StatusCode::UNAUTHORIZED,
            code::TOKEN_INVALID,
            "the bearer is neither the app's secret nor the admin token",
        )),
    }
}

fn bad(e: room_signal::SignalError) -> Response {
    json_error(StatusCode::BAD_REQUEST, e.code, &e.message)
}

fn not_found(code: u32, message: &str) -> Response {
    json_error(StatusCode::NOT_FOUND, code, message)
}

fn nobody_in_room() -> Response {
    not_found(code::NOT_IN_ROOM, "nobody is in that room")
}

/// The room `room_id` of `app` if its ID is legal (`400`) and someone is
/// in it (`404` `1002002`).
fn live_room(app: &App, room_id: &str) -> Result<Arc<room_signal::room::Room>, Response> {
    ids::room_id(room_id).map_err(bad)?;
    app.room(room_id).ok_or_else(nobody_in_room)
}

fn ok<T: Serialize>(value: T) -> Response {
    (StatusCode::OK, Json(value)).into_response()
}

/// A JSON body of type `T`, read within the listener's size and time limits.
async fn json_body<T: for<'de> Deserialize<'de>>(
    state: &State,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, Response> {
    let bytes = read_body(state, headers, body).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        json_error(
            StatusCode::BAD_REQUEST,
            code::MALFORMED,
            &format!("bad JSON body: {e}"),
        )
    })
}

macro_rules! try_or_return {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

/// List the app's rooms (each with someone in it).
#[utoipa::path(
    get, path = "/admin/v1/apps/{appID}/rooms", tag = "rooms",
    params(("appID" = u32, Path, description = "the app")),
    responses(
        (status = 200, description = "the rooms, by room ID", body = RoomList),
        (status = 400, description = "bad appID", body = ApiError),
        (status = 401, description = "not the app's secret nor the admin token", body = ApiError),
        (status = 404, description = "unknown app (admin token only)", body = ApiError),
    )
)]
async fn list_rooms(
    AxumState(state): AxumState<Arc<State>>,
    Path(app_id): Path<u32>,
    headers: HeaderMap,
) -> Response {
    let app = try_or_return!(authorize(&state, &headers, app_id));
    ok(RoomList::from(app.room_summaries()))
}

/// One room: its users (in join order), streams and extra info.
#[utoipa::path(
    get, path = "/admin/v1/apps/{appID}/rooms/{roomID}", tag = "rooms",
    params(("appID" = u32, Path), ("roomID" = String, Path, min_length = 1, max_length = 128)),
    responses(
        (status = 200, body = RoomDetail),
        (status = 400, description = "bad appID or roomID", body = ApiError),
        (status = 401, body = ApiError),
        (status = 404, description = "unknown app, or nobody in the room (1002002)", body = ApiError),
    )
)]
async fn get_room(
    AxumState(state): AxumState<Arc<State>>,
    Path((app_id, room_id)): Path<(u32, String)>,
    headers: HeaderMap,
) -> Response {
    let app = try_or_return!(authorize(&state, &headers, app_id));
    let snap = try_or_return!(live_room(&app, &room_id)).snapshot();
    if snap.users.is_empty() {
        return nobody_in_room();
    }
    ok(RoomDetail::from(snap))
}

/// Close a room: every member gets `roomStateChanged KICKOUT 1002055` and
/// its streams there are deleted (reason 4).
#[utoipa::path(
    delete, path = "/admin/v1/apps/{appID}/rooms/{roomID}", tag = "rooms",
    params(("appID" = u32, Path), ("roomID" = String, Path, min_length = 1, max_length = 128)),
    responses(
        (status = 200, description = "how many users were removed", body = CloseResult),
        (status = 400, body = ApiError),
        (status = 401, body = ApiError),
        (status = 404, description = "unknown app, or nobody in the room (1002002)", body = ApiError),
    )
)]
async fn close_room(
    AxumState(state): AxumState<Arc<State>>,
    Path((app_id, room_id)): Path<(u32, String)>,
    headers: HeaderMap,
) -> Response {
    let app = try_or_return!(authorize(&state, &headers, app_id));
    try_or_return!(ids::room_id(&room_id).map_err(bad));
    match app.close_room(&room_id) {
        Some(kicked) => ok(CloseResult { code: 0, kicked }),
        None => nobody_in_room(),
    }
}

/// Kick a user out of a room (`roomStateChanged KICKOUT 1002055`; its
/// streams there are deleted with reason 4; it stays in its other rooms).
#[utoipa::path(
    delete, path = "/admin/v1/apps/{appID}/rooms/{roomID}/users/{userID}", tag = "rooms",
    params(
        ("appID" = u32, Path), ("roomID" = String, Path, min_length = 1, max_length = 128),
        ("userID" = String, Path, min_length = 1, max_length = 64)
    ),
    responses(
        (status = 200, body = Ok0),
        (status = 400, body = ApiError),
        (status = 401, body = ApiError),
        (status = 404, description = "unknown app, or that user is not in that room (1002002)", body = ApiError),
    )
)]
async fn kick_user(
    AxumState(state): AxumState<Arc<State>>,
    Path((app_id, room_id, user_id)): Path<(u32, String, String)>,
    headers: HeaderMap,
) -> Response {
    let app = try_or_return!(authorize(&state, &headers, app_id));
    try_or_return!(ids::room_id(&room_id).map_err(bad));
    try_or_return!(ids::user_id(&user_id).map_err(bad));
    if app.kick(&room_id, &user_id) {
        ok(Ok0 { code: 0 })
    } else {
        not_found(code::NOT_IN_ROOM, "that user is not in that room")
    }
}

/// Set the room's extra info as the server (user `$server`); members get
/// `roomExtraInfoUpdate`. The contract's rules apply: one key per room,
/// key 1–10 bytes, value ≤ 128 bytes, 10 sets per second per room.
#[utoipa::path(
    put, path = "/admin/v1/apps/{appID}/rooms/{roomID}/extra-info", tag = "rooms",
    params(("appID" = u32, Path), ("roomID" = String, Path, min_length = 1, max_length = 128)),
    request_body = ExtraInfoBody,
    responses(
        (status = 200, body = Ok0),
        (status = 400, description = "bad body, key or value (1002014–1002017)", body = ApiError),
        (status = 401, body = ApiError),
        (status = 404, description = "unknown app, or nobody in the room", body = ApiError),
        (status = 408, body = ApiError),
        (status = 413, body = ApiError),
        (status = 429, description = "the room's extra-info rate (1002072)", body = ApiError),
    )
)]
async fn set_extra_info(
    AxumState(state): AxumState<Arc<State>>,
    Path((app_id, room_id)): Path<(u32, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let app = try_or_return!(authorize(&state, &headers, app_id));
    let room = try_or_return!(live_room(&app, &room_id));
    let req: ExtraInfoBody = try_or_return!(json_body(&state, &headers, body).await);
    match room.server_set_extra_info(&req.key, &req.value, crate::signaling::unix_ms()) {
        Ok(()) => ok(Ok0 { code: 0 }),
        Err(e) => signal_error(e),
    }
}

/// Send a broadcast message to every member as the server (user
/// `$server`), numbered in the room's sequence.
#[utoipa::path(
    post, path = "/admin/v1/apps/{appID}/rooms/{roomID}/broadcast", tag = "rooms",
    params(("appID" = u32, Path), ("roomID" = String, Path, min_length = 1, max_length = 128)),
    request_body = BroadcastBody,
    responses(
        (status = 200, body = BroadcastResult),
        (status = 400, description = "bad body, empty or too long message (1009001/1009002)", body = ApiError),
        (status = 401, body = ApiError),
        (status = 404, description = "unknown app, or nobody in the room", body = ApiError),
        (status = 408, body = ApiError),
        (status = 413, body = ApiError),
        (status = 429, description = "the room's broadcast rate (1009015)", body = ApiError),
    )
)]
async fn broadcast(
    AxumState(state): AxumState<Arc<State>>,
    Path((app_id, room_id)): Path<(u32, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let app = try_or_return!(authorize(&state, &headers, app_id));
    let room = try_or_return!(live_room(&app, &room_id));
    let req: BroadcastBody = try_or_return!(json_body(&state, &headers, body).await);
    match room.server_broadcast(&req.message, crate::signaling::unix_ms()) {
        Ok(message_id) => ok(BroadcastResult {
            code: 0,
            message_id,
        }),
        Err(e) => signal_error(e),
    }
}

/// A control-plane refusal as an HTTP answer.
fn signal_error(e: room_signal::SignalError) -> Response {
    let status = match e.code {
        code::NOT_IN_ROOM => StatusCode::NOT_FOUND,
        code::RATE_LIMITED_ROOM | code::BROADCAST_TOO_FREQUENT => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    };
    json_error(status, e.code, &e.message)
}

/// The app's published streams with their room, publisher, codecs,
/// bitrates and number of plays.
#[utoipa::path(
    get, path = "/admin/v1/apps/{appID}/streams", tag = "streams",
    params(("appID" = u32, Path)),
    responses(
        (status = 200, description = "by stream ID", body = StreamList),
        (status = 400, body = ApiError),
        (status = 401, body = ApiError),
        (status = 404, description = "unknown app (admin token only)", body = ApiError),
    )
)]
async fn list_streams(
    AxumState(state): AxumState<Arc<State>>,
    Path(app_id): Path<u32>,
    headers: HeaderMap,
) -> Response {
    let app = try_or_return!(authorize(&state, &headers, app_id));
    let media = stream_media(&state, app_id).await;
    let streams = app
        .stream_summaries()
        .into_iter()
        .map(|s| StreamInfo::new(s, &media))
        .collect();
    ok(StreamList { code: 0, streams })
}

async fn stream_media(state: &State, app_id: u32) -> Vec<crate::media::relay::PublishedMedia> {
    match &state.media {
        Some(m) => m.published_media(app_id, MEDIA_WITHIN).await,
        None => Vec::new(),
    }
}

/// One published stream.
#[utoipa::path(
    get, path = "/admin/v1/apps/{appID}/streams/{streamID}", tag = "streams",
    params(("appID" = u32, Path), ("streamID" = String, Path, min_length = 1, max_length = 256, pattern = "^[A-Za-z0-9_-]+$")),
    responses(
        (status = 200, body = StreamInfo),
        (status = 400, body = ApiError),
        (status = 401, body = ApiError),
        (status = 404, description = "unknown app, or the stream is not published (1004002)", body = ApiError),
    )
)]
async fn get_stream(
    AxumState(state): AxumState<Arc<State>>,
    Path((app_id, stream_id)): Path<(u32, String)>,
    headers: HeaderMap,
) -> Response {
    let app = try_or_return!(authorize(&state, &headers, app_id));
    try_or_return!(ids::stream_id(&stream_id).map_err(bad));
    let Some(summary) = app.stream_summary(&stream_id) else {
        return not_found(code::STREAM_NOT_FOUND, "that stream is not published");
    };
    let media = stream_media(&state, app_id).await;
    ok(StreamInfo::new(summary, &media))
}

/// Remove a published stream: its room lists it as deleted with reason 6,
/// its publisher gets `publisherStateUpdate NO_PUBLISH 1002055`, and its
/// players wait for the next publisher (`PLAY_REQUESTING 1004002`).
#[utoipa::path(
    delete, path = "/admin/v1/apps/{appID}/streams/{streamID}", tag = "streams",
    params(("appID" = u32, Path), ("streamID" = String, Path, min_length = 1, max_length = 256, pattern = "^[A-Za-z0-9_-]+$")),
    responses(
        (status = 200, body = Ok0),
        (status = 400, body = ApiError),
        (status = 401, body = ApiError),
        (status = 404, description = "unknown app, or the stream is not published (1004002)", body = ApiError),
    )
)]
async fn remove_stream(
    AxumState(state): AxumState<Arc<State>>,
    Path((app_id, stream_id)): Path<(u32, String)>,
    headers: HeaderMap,
) -> Response {
    let app = try_or_return!(authorize(&state, &headers, app_id));
    try_or_return!(ids::stream_id(&stream_id).map_err(bad));
    if app.remove_stream(&stream_id) {
        ok(Ok0 { code: 0 })
    } else {
        not_found(code::STREAM_NOT_FOUND, "that stream is not published")
    }
}

/// The plays of a stream ID, receiving or waiting for a publisher.
#[utoipa::path(
    get, path = "/admin/v1/apps/{appID}/streams/{streamID}/plays", tag = "streams",
    params(("appID" = u32, Path), ("streamID" = String, Path, min_length = 1, max_length = 256, pattern = "^[A-Za-z0-9_-]+$")),
    responses(
        (status = 200, description = "in the order they started", body = PlayList),
        (status = 400, body = ApiError),
        (status = 401, body = ApiError),
        (status = 404, description = "unknown app, or nobody publishes or plays that stream ID (1004002)", body = ApiError),
    )
)]
async fn list_plays(
    AxumState(state): AxumState<Arc<State>>,
    Path((app_id, stream_id)): Path<(u32, String)>,
    headers: HeaderMap,
) -> Response {
    let app = try_or_return!(authorize(&state, &headers, app_id));
    try_or_return!(ids::stream_id(&stream_id).map_err(bad));
    match app.stream_plays(&stream_id) {
        Some(plays) => ok(PlayList::from(plays)),
        None => not_found(
            code::STREAM_NOT_FOUND,
            "nobody publishes or plays that stream ID",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("devsecret", "devsecret"));
        assert!(!same_secret("devsecre", "devsecret"));
        assert!(!same_secret("devsecretx", "devsecret"));
        assert!(!same_secret("", "devsecret"));
    }

    #[test]
    fn the_document_lists_every_operation() {
        let doc: serde_json::Value =
            serde_json::from_str(&AdminApi::openapi().to_json().unwrap()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let ops: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(ops, 10, "{paths:?}");
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    }
}
