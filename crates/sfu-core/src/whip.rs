//! WHIP (RFC 9725) and WHEP: publish and play with a bearer token and one
//! HTTP round trip. Each resource is a control-plane session of its own,
//! driven with the same ops as a signaling client, so every rule and error
//! code is the same: a WHIP publisher logs into its room and publishes (the
//! room's members see the stream), a WHEP player logs into the room that
//! lists the stream (or its token's room) and plays. The resource lives until
//! `DELETE`, its media connection fails, or its user is kicked.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use room_signal::media::MediaEvent;
use room_signal::outbox::{Inbox, Outbound};
use room_signal::{code, token, Session, SignalError};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::http::read_body;
use crate::signaling::{next_timer, sleep_opt, unix_ms};
use crate::State;

/// Live WHIP/WHEP resources by id (128 random bits, lowercase hex).
#[derive(Default)]
pub struct Resources {
    live: Mutex<HashMap<String, Resource>>,
}

impl Resources {
    /// Live resources (WHIP and WHEP).
    pub fn len(&self) -> usize {
        self.live.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shutdown: end every resource (each task ends its session).
    pub fn end_all(&self) {
        let live = std::mem::take(&mut *self.live.lock());
        for (_, r) in live {
            let _ = r.stop.send(());
        }
    }
}

struct Resource {
    kind: &'static str,
    /// Who created it: only this app's secret or a token of this app and
    /// user may `DELETE` or `PATCH` it.
    app_id: u32,
    user_id: String,
    stop: oneshot::Sender<()>,
}

/// An unguessable resource id: 128 bits from the OS-seeded CSPRNG, as hex.
fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn cors(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, PATCH, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, If-Match"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, Link, ETag"),
    );
    r
}

/// `OPTIONS` on any WHIP/WHEP path.
pub async fn options() -> Response {
    let mut r = cors(StatusCode::NO_CONTENT.into_response());
    r.headers_mut()
        .insert("Accept-Post", HeaderValue::from_static("application/sdp"));
    r
}

fn status_of(code: u32) -> StatusCode {
    match code {
        code::TOKEN_MISSING
        | code::TOKEN_INVALID
        | code::TOKEN_APP_MISMATCH
        | code::TOKEN_USER_MISMATCH
        | code::TOKEN_EXPIRED
        | code::UNKNOWN_APP => StatusCode::UNAUTHORIZED,
        code::PUBLISH_FORBIDDEN => StatusCode::FORBIDDEN,
        code::STREAM_ID_TAKEN => StatusCode::CONFLICT,
        code::STREAM_NOT_FOUND => StatusCode::NOT_FOUND,
        code::RATE_LIMITED_APP | code::RATE_LIMITED_ROOM | code::RATE_LIMITED_SIGNALING => {
            StatusCode::TOO_MANY_REQUESTS
        }
        code::ROOM_FULL | code::PEER_LIMIT | code::SERVER_BUSY | code::APP_SESSION_LIMIT => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        code::BODY_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
        code::REQUEST_TIMEOUT => StatusCode::REQUEST_TIMEOUT,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// An error as the contract wants it: HTTP status plus `{code, message}`.
pub fn error(e: &SignalError) -> Response {
    let body = json!({"code": e.code, "message": e.message}).to_string();
    let mut r = (status_of(e.code), body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    cors(r)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn is_content_type(headers: &HeaderMap, want: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(want))
        })
}

/// Run one op on `session` the way a signaling client would.
fn op(session: &mut Session, fields: Value) -> Result<Value, SignalError> {
    let answer = session
        .handle_text(&fields.to_string(), unix_ms())
        .ok_or_else(|| SignalError::malformed("no answer"))?;
    let v: Value =
        serde_json::from_slice(&answer).map_err(|e| SignalError::malformed(e.to_string()))?;
    match v.get("code").and_then(Value::as_u64) {
        Some(0) => Ok(v),
        Some(c) => Err(SignalError::new(
            u32::try_from(c).unwrap_or(code::MALFORMED),
            v.get("message").and_then(Value::as_str).unwrap_or_default(),
        )),
        None => Err(SignalError::malformed("malformed answer")),
    }
}

/// A session for the bearer token's app, logged into `room_id`.
fn session_for(
    state: &State,
    token: &str,
    room_id: &str,
) -> Result<(Session, Inbox, String), SignalError> {
    let (app_id, user_id, _) = token::peek(token)
        .ok_or_else(|| SignalError::new(code::TOKEN_INVALID, "token invalid: not a room token"))?;
    let app = state
        .hub
        .app(app_id)
        .ok_or_else(|| SignalError::new(code::UNKNOWN_APP, format!("unknown appID {app_id}")))?;
    let (mut session, inbox) = state.hub.try_connect(app).inspect_err(|_| {
        state.refusals.count(crate::Refusal::AppSessions);
    })?;
    op(
        &mut session,
        json!({"id": 1, "op": "loginRoom", "roomID": room_id, "token": token,
               "user": {"userID": user_id, "userName": user_id}}),
    )?;
    Ok((session, inbox, user_id))
}

fn created(
    state: &State,
    kind: &'static str,
    answer: &Value,
    session: Session,
    inbox: Inbox,
    stream_id: String,
    user_id: String,
) -> Response {
    let sdp = answer
        .get("sdp")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let id = new_id();
    let (stop_tx, stop_rx) = oneshot::channel();
    state.resources.live.lock().insert(
        id.clone(),
        Resource {
            kind,
            app_id: session.app().id(),
            user_id,
            stop: stop_tx,
        },
    );
    let resources = state.resources.clone();
    let location = format!("/{kind}/resource/{id}");
    tokio::spawn(run(id, kind, session, inbox, stop_rx, stream_id, resources));
    let mut r = (StatusCode::CREATED, sdp).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(loc) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, loc);
    }
    cors(r)
}

/// Keep a resource's session until it is deleted or its media ends. A
/// WHEP player whose publisher goes away waits for the next one (its
/// session's wait timer runs here); it ends with its play.
async fn run(
    id: String,
    kind: &'static str,
    mut session: Session,
    mut inbox: Inbox,
    mut stop: oneshot::Receiver<()>,
    stream_id: String,
    resources: Arc<Resources>,
) {
    let deleted = loop {
        let timer_at = next_timer(&session);
        tokio::select! {
            _ = &mut stop => break true,
            item = inbox.rx.recv() => match item {
                Some(Outbound::Media { event: MediaEvent::Failed, .. })
                | Some(Outbound::Kicked { .. })
                | None => {
                    if let Some(item) = item {
                        let _ = session.on_outbound(item, unix_ms());
                    }
                    break false;
                }
                Some(other) => {
                    let _ = session.on_outbound(other, unix_ms());
                }
            },
            () = sleep_opt(timer_at) => {
                let _ = session.on_timer(unix_ms());
            }
        }
        if !session.has_media() {
            break false;
        }
    };
    if deleted {
        let stop_op = if kind == "whip" {
            "stopPublishingStream"
        } else {
            "stopPlayingStream"
        };
        let _ = op(
            &mut session,
            json!({"id": 2, "op": stop_op, "streamID": stream_id}),
        );
        let _ = op(&mut session, json!({"id": 3, "op": "logoutRoom"}));
    }
    resources.live.lock().remove(&id);
    tracing::info!(resource = %id, kind, stream = %stream_id, deleted, "WHIP/WHEP resource ended");
}

/// The bearer token of a `POST` carrying an SDP offer.
fn sdp_request(headers: &HeaderMap) -> Result<&str, SignalError> {
    if !is_content_type(headers, "application/sdp") {
        return Err(SignalError::malformed(
            "Content-Type must be application/sdp",
        ));
    }
    bearer(headers).ok_or_else(|| {
        SignalError::new(code::TOKEN_MISSING, "missing Authorization: Bearer <token>")
    })
}

/// `POST /whip/{roomID}/{streamID}`.
pub async fn publish(
    AxumState(state): AxumState<Arc<State>>,
    Path((room_id, stream_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let token = match sdp_request(&headers) {
        Ok(t) => t,
        Err(e) => return error(&e),
    };
    let body = match read_body(&state, &headers, body).await {
        Ok(b) => b,
        Err(r) => return cors(r),
    };
    let offer = String::from_utf8_lossy(&body);
    // A refused offer must not cost a session (its login and logout lines,
    // the room's user events): check it before logging in.
    if let Err(why) = crate::media::offer_check::check(&offer) {
        return error(&crate::media::peer::bad_sdp(why));
    }
    let (mut session, inbox, user) = match session_for(&state, token, &room_id) {
        Ok(s) => s,
        Err(e) => return error(&e),
    };
    match op(
        &mut session,
        json!({"id": 2, "op": "startPublishingStream", "streamID": stream_id, "roomID": room_id, "sdp": offer}),
    ) {
        Ok(answer) => created(&state, "whip", &answer, session, inbox, stream_id, user),
        Err(e) => error(&e),
    }
}

/// `POST /whep/{streamID}`.
pub async fn play(
    AxumState(state): AxumState<Arc<State>>,
    Path(stream_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let token = match sdp_request(&headers) {
        Ok(t) => t,
        Err(e) => return error(&e),
    };
    let body = match read_body(&state, &headers, body).await {
        Ok(b) => b,
        Err(r) => return cors(r),
    };
    // The viewer joins its token's room, else the room that lists the stream.
    let Some((app_id, _, token_room)) = token::peek(token) else {
        return error(&SignalError::new(
            code::TOKEN_INVALID,
            "token invalid: not a room token",
        ));
    };
    // Unlike a signaling play, a WHEP `POST` needs the stream to exist
    // (its player then waits like any play if the publisher goes away).
    let Some((listed_in, _)) = state
        .hub
        .app(app_id)
        .and_then(|a| a.stream_room(&stream_id))
    else {
        return error(&SignalError::new(
            code::STREAM_NOT_FOUND,
            format!("stream `{stream_id}` does not exist"),
        ));
    };
    let room = token_room.unwrap_or_else(|| listed_in.to_string());
    let offer = String::from_utf8_lossy(&body);
    // A refused offer must not cost a session (its login and logout lines,
    // the room's user events): check it before logging in.
    if let Err(why) = crate::media::offer_check::check(&offer) {
        return error(&crate::media::peer::bad_sdp(why));
    }
    let (mut session, inbox, user) = match session_for(&state, token, &room) {
        Ok(s) => s,
        Err(e) => return error(&e),
    };
    match op(
        &mut session,
        json!({"id": 2, "op": "startPlayingStream", "streamID": stream_id, "sdp": offer}),
    ) {
        Ok(answer) => created(&state, "whep", &answer, session, inbox, stream_id, user),
        Err(e) => error(&e),
    }
}

fn no_such_resource() -> Response {
    error(&unknown_resource())
}

fn unknown_resource() -> SignalError {
    SignalError::new(code::STREAM_NOT_FOUND, "no such resource")
}

/// May the request's bearer act on a resource of `app_id`/`user_id`?
/// The app's secret, or a token signed by the app for that user (its
/// expiry does not matter: it proves who created the resource). No or an
/// unreadable token → `401`; a token of another app or user → `404`, as if
/// the resource did not exist.
fn authorize(
    state: &State,
    headers: &HeaderMap,
    app_id: u32,
    user_id: &str,
) -> Result<(), SignalError> {
    let not_found = unknown_resource;
    let invalid = || {
        SignalError::new(
            code::TOKEN_INVALID,
            "token invalid: not a room token of this app",
        )
    };
    let Some(token) = bearer(headers).filter(|t| !t.is_empty()) else {
        return Err(SignalError::new(
            code::TOKEN_MISSING,
            "missing Authorization: Bearer <token>",
        ));
    };
    let Some(app) = state.hub.app(app_id) else {
        return Err(not_found());
    };
    if token == app.config.secret {
        return Ok(());
    }
    let Some((claimed_app, _, _)) = token::peek(token) else {
        return Err(invalid());
    };
    if claimed_app != app_id {
        return Err(not_found());
    }
    let Some(claims) = token::signed_claims(token, &app.config.secret) else {
        return Err(invalid());
    };
    if claims.user_id != user_id {
        return Err(not_found());
    }
    Ok(())
}

/// The owner of the live resource `id` of `kind`, if there is one.
fn owner(state: &State, kind: &str, id: &str) -> Option<(u32, String)> {
    state
        .resources
        .live
        .lock()
        .get(id)
        .filter(|r| r.kind == kind)
        .map(|r| (r.app_id, r.user_id.clone()))
}

/// The id of a live resource of `kind` that the request's credentials own:
/// unknown id → `404` (before any auth check), then [`authorize`].
fn owned_resource(
    state: &State,
    id: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    kind: &'static str,
) -> Result<String, SignalError> {
    let Ok(Path(id)) = id else {
        return Err(unknown_resource());
    };
    let Some((app_id, user_id)) = owner(state, kind, &id) else {
        return Err(unknown_resource());
    };
    authorize(state, headers, app_id, &user_id)
        .inspect_err(|_| state.refusals.count(crate::Refusal::ResourceAuth))?;
    Ok(id)
}

/// `DELETE /whip/resource/{id}` and `/whep/resource/{id}`: unknown id →
/// `404` (before any auth check), then the owner check of [`authorize`].
pub async fn delete(
    AxumState(state): AxumState<Arc<State>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    kind: &'static str,
) -> Response {
    let id = match owned_resource(&state, id, &headers, kind) {
        Ok(id) => id,
        Err(e) => return error(&e),
    };
    let removed = {
        let mut live = state.resources.live.lock();
        match live.get(&id) {
            Some(r) if r.kind == kind => live.remove(&id),
            _ => None,
        }
    };
    match removed {
        Some(r) => {
            let _ = r.stop.send(());
            cors(StatusCode::OK.into_response())
        }
        None => no_such_resource(),
    }
}

/// `PATCH /whip/resource/{id}` (trickle ICE): candidates are accepted; the
/// server is ICE-lite and needs none. Same id and owner checks as `DELETE`.
pub async fn patch(
    AxumState(state): AxumState<Arc<State>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    kind: &'static str,
) -> Response {
    if let Err(e) = owned_resource(&state, id, &headers, kind) {
        return error(&e);
    }
    if !is_content_type(&headers, "application/trickle-ice-sdpfrag") {
        let mut r = error(&SignalError::malformed(
            "Content-Type must be application/trickle-ice-sdpfrag",
        ));
        *r.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return r;
    }
    cors(StatusCode::NO_CONTENT.into_response())
}
