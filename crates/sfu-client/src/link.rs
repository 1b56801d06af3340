//! The task behind a [`Client`](crate::Client): it writes queued frames and
//! heartbeats, routes what the server sends, and when the WebSocket drops
//! (an error, an end without a close frame, or `link_timeout` without any
//! frame; heartbeats carry an id so that the server answers them) it
//! resumes the session on a new connection:
//!
//! 1. `roomStateChanged RECONNECTING` for every room (local events, no
//!    `seq`); requests in flight fail (their responses are not replayed);
//!    frames queued meanwhile wait for the new connection.
//! 2. Connect again (backoff 100 ms doubling to 2 s) until
//!    `resume_window`; send `resume` with the last `seq` seen.
//! 3. Success: `RECONNECTED` for every room, then the replayed events
//!    arrive in order with their original `seq`. With `gap: true` the
//!    result's lists are diffed with what the application was told and the
//!    missed `roomStreamUpdate`/`roomUserUpdate` events are queued (marked
//!    `"resync": true`). Peer connections are not touched.
//! 4. `1002099`: log in afresh into the same rooms (the session is gone:
//!    its publishes and plays ended, so `publisherStateUpdate NO_PUBLISH`
//!    and `playerStateUpdate NO_PLAY` `1002099` are queued for them), diff
//!    the lists, `RECONNECTED`. If that fails too, or the window passes:
//!    `RECONNECT_FAILED` and the client is closed.
//!
//! A close frame from the server is final (the server only sends one when
//! it ends the session).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::error::ClientError;
use crate::resume::room_state;
use crate::signal::{normal_close, response_result, route, ConnectOptions, Event, Pending, Shared};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How one connection ended.
enum End {
    /// Every `Client` is gone, or `close()` was called: a real leave.
    Quit,
    /// Final: the server closed, or resuming is off.
    Closed(ClientError),
    /// The socket dropped: try to resume.
    Dropped(ClientError),
}

/// Run the client's connection(s) until it ends for good.
pub(crate) async fn run(
    ws: Ws,
    mut out: mpsc::UnboundedReceiver<Message>,
    shared: Arc<Shared>,
    url: String,
    options: ConnectOptions,
) {
    let mut ws = ws;
    loop {
        match serve(&mut ws, &mut out, &shared, &options).await {
            End::Quit => {
                let _ = ws.send(normal_close()).await;
                shared.close(ClientError::Closed {
                    code: Some(1000),
                    reason: "closed by the client".into(),
                });
                return;
            }
            End::Closed(why) => {
                tracing::debug!("signaling connection ended: {why}");
                shared.close(why);
                return;
            }
            End::Dropped(why) => {
                tracing::info!("signaling connection dropped ({why}): resuming");
                match reconnect(&shared, &url, &options, &why).await {
                    Some(new) => ws = new,
                    None => return,
                }
            }
        }
    }
}

/// One connection: frames out, heartbeats, frames in.
async fn serve(
    ws: &mut Ws,
    out: &mut mpsc::UnboundedReceiver<Message>,
    shared: &Shared,
    options: &ConnectOptions,
) -> End {
    let period = options.heartbeat.unwrap_or(Duration::from_secs(3600));
    let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
    let mut heard = Instant::now();
    let watch = options.heartbeat.is_some() && options.resume;
    loop {
        let silent_until = heard + options.link_timeout;
        tokio::select! {
            m = out.recv() => {
                let Some(m) = m else { return End::Quit };
                let closing = matches!(m, Message::Close(_));
                if let Err(e) = ws.send(m).await {
                    return dropped(options, format!("write: {e}"));
                }
                if closing {
                    // Wait (briefly) for the server's echo.
                    let _ = tokio::time::timeout(Duration::from_secs(1), async {
                        while let Some(Ok(m)) = ws.next().await {
                            if matches!(m, Message::Close(_)) { break; }
                        }
                    }).await;
                    return End::Closed(ClientError::Closed { code: Some(1000), reason: "closed by the client".into() });
                }
            }
            _ = ticker.tick(), if options.heartbeat.is_some() => {
                if let Err(e) = ws.send(heartbeat(shared)).await {
                    return dropped(options, format!("write: {e}"));
                }
            }
            m = ws.next() => {
                heard = Instant::now();
                match m {
                    Some(Ok(Message::Text(text))) => route(shared, text.as_str()),
                    Some(Ok(Message::Close(frame))) => {
                        return End::Closed(ClientError::Closed {
                            code: frame.as_ref().map(|f| u16::from(f.code)),
                            reason: frame.map(|f| f.reason.as_str().to_owned()).unwrap_or_default(),
                        });
                    }
                    Some(Ok(Message::Binary(_))) => tracing::warn!("ignoring a binary frame from the server"),
                    Some(Ok(_)) => {} // ping/pong: tungstenite answers pings itself
                    Some(Err(e)) => return dropped(options, format!("read: {e}")),
                    None => return dropped(options, "connection ended without a close frame".into()),
                }
            }
            () = tokio::time::sleep_until(silent_until), if watch => {
                return dropped(options, format!("nothing from the server for {:?}", options.link_timeout));
            }
        }
    }
}

fn dropped(options: &ConnectOptions, why: String) -> End {
    let e = ClientError::Transport(why);
    if options.resume {
        End::Dropped(e)
    } else {
        End::Closed(e)
    }
}

/// `{"op":"heartbeat","id":N}`: answered by the server, so a silent link
/// shows; the answer goes nowhere.
fn heartbeat(shared: &Shared) -> Message {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (reply, _) = oneshot::channel();
    shared
        .state()
        .pending
        .insert(id, Pending { reply, track: None });
    Message::text(json!({"op": "heartbeat", "id": id}).to_string())
}

fn rooms(shared: &Shared) -> Vec<String> {
    shared
        .tracked()
        .rooms
        .iter()
        .map(|r| r.room_id.clone())
        .collect()
}

fn announce(shared: &Shared, rooms: &[String], reason: &str, code: u64) {
    for room in rooms {
        shared.push_event(room_state(room, reason, code));
    }
}

/// Steps 1–4 of the module doc; the new connection, or `None` (closed).
async fn reconnect(
    shared: &Shared,
    url: &str,
    options: &ConnectOptions,
    why: &ClientError,
) -> Option<Ws> {
    shared.fail_pending(why);
    let before = rooms(shared);
    if before.is_empty() || shared.tracked().session.is_none() {
        // Nothing was held for us: the connection just ended.
        shared.close(why.clone());
        return None;
    }
    announce(shared, &before, "RECONNECTING", 0);
    let deadline = Instant::now() + options.resume_window;
    let mut backoff = Duration::from_millis(100);
    while Instant::now() < deadline {
        if let Some(mut ws) = connect(url, options).await {
            match resume(&mut ws, shared, options).await {
                Ok(()) => {
                    announce(shared, &rooms(shared), "RECONNECTED", 0);
                    return Some(ws);
                }
                Err(Some(e)) if e.code() == Some(1_002_099) => {
                    match login_afresh(&mut ws, shared, options).await {
                        Ok(()) => {
                            announce(shared, &rooms(shared), "RECONNECTED", 0);
                            return Some(ws);
                        }
                        Err(e) => {
                            tracing::warn!("logging in again after 1002099 failed: {e}");
                            break;
                        }
                    }
                }
                Err(e) => tracing::debug!("resume attempt failed: {e:?}"),
            }
        }
        tokio::time::sleep(backoff.min(deadline.saturating_duration_since(Instant::now()))).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    announce(shared, &rooms(shared), "RECONNECT_FAILED", 1_002_099);
    shared.close(ClientError::Transport(format!(
        "could not resume the session: {why}"
    )));
    None
}

async fn connect(url: &str, options: &ConnectOptions) -> Option<Ws> {
    let connecting = tokio_tungstenite::connect_async(url);
    match tokio::time::timeout(options.request_timeout, connecting).await {
        Ok(Ok((ws, _))) => Some(ws),
        _ => None,
    }
}

/// Send one request on `ws` and read until its response (events on the
/// way are routed as usual). `Err(None)`: the connection failed.
async fn exchange(
    ws: &mut Ws,
    shared: &Shared,
    options: &ConnectOptions,
    op: &str,
    mut fields: Map<String, Value>,
) -> Result<Value, Option<ClientError>> {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    fields.insert("id".into(), json!(id));
    fields.insert("op".into(), json!(op));
    ws.send(Message::text(Value::Object(fields).to_string()))
        .await
        .map_err(|_| None)?;
    let deadline = Instant::now() + options.request_timeout;
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| None)?;
        let Some(Ok(Message::Text(text))) = m else {
            match m {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                _ => return Err(None),
            }
        };
        let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        if obj.get("event").is_some() || obj.get("id").and_then(Value::as_u64) != Some(id) {
            route(shared, text.as_str());
            continue;
        }
        return response_result(obj, text.as_str()).map_err(|e| match e {
            ClientError::Server { .. } => Some(e),
            _ => None,
        });
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// `resume` as the new connection's first request.
async fn resume(
    ws: &mut Ws,
    shared: &Shared,
    options: &ConnectOptions,
) -> Result<(), Option<ClientError>> {
    let (fields, before) = {
        let t = shared.tracked();
        let Some((id, token)) = t.session.clone() else {
            return Err(None);
        };
        let fields = object(json!({"sessionID": id, "resumeToken": token, "lastSeq": t.last_seq}));
        (
            fields,
            t.rooms
                .iter()
                .map(|r| r.room_id.clone())
                .collect::<Vec<_>>(),
        )
    };
    let result = exchange(ws, shared, options, "resume", fields).await?;
    let gap = result.get("gap").and_then(Value::as_bool) == Some(true);
    let views: Vec<Value> = result
        .get("rooms")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut missed: Vec<Event> = Vec::new();
    {
        let mut t = shared.tracked();
        if gap {
            for view in &views {
                if let Some(room) = view.get("roomID").and_then(Value::as_str) {
                    missed.extend(t.diff(room, view));
                }
            }
        }
        // Rooms the server no longer has us in (we missed the kick).
        let now: Vec<&str> = views
            .iter()
            .filter_map(|v| v.get("roomID").and_then(Value::as_str))
            .collect();
        for room in before.iter().filter(|r| !now.contains(&r.as_str())) {
            missed.push(room_state(room, "KICKOUT", 1_002_099));
        }
        t.rooms.retain(|r| now.contains(&r.room_id.as_str()));
    }
    for e in missed {
        shared.push_event(e);
    }
    Ok(())
}

/// After `1002099`: the same rooms, logged into afresh on `ws`.
async fn login_afresh(
    ws: &mut Ws,
    shared: &Shared,
    options: &ConnectOptions,
) -> Result<(), ClientError> {
    let (multi, logins, publishing, playing) = {
        let mut t = shared.tracked();
        t.session = None;
        t.last_seq = 0;
        let logins: Vec<(String, Value)> = t
            .rooms
            .iter()
            .map(|r| (r.room_id.clone(), r.login.clone()))
            .collect();
        (
            t.multi_room,
            logins,
            std::mem::take(&mut t.publishing),
            std::mem::take(&mut t.playing),
        )
    };
    let fail =
        |e: Option<ClientError>| e.unwrap_or(ClientError::Transport("connection failed".into()));
    if multi {
        exchange(
            ws,
            shared,
            options,
            "enableMultiRoom",
            object(json!({"enable": true})),
        )
        .await
        .map_err(fail)?;
    }
    let mut missed = Vec::new();
    for (room, login) in logins {
        let result = exchange(ws, shared, options, "loginRoom", object(login))
            .await
            .map_err(fail)?;
        let mut t = shared.tracked();
        if let (Some(id), Some(token)) = (
            result.get("sessionID").and_then(Value::as_str),
            result.get("resumeToken").and_then(Value::as_str),
        ) {
            t.session = Some((id.to_string(), token.to_string()));
        }
        missed.extend(t.diff(&room, &result));
    }
    for s in publishing {
        missed.push(Event {
            name: "publisherStateUpdate".into(),
            fields: json!({"streamID": s, "state": "NO_PUBLISH", "errorCode": 1_002_099}),
        });
    }
    for s in playing {
        missed.push(Event {
            name: "playerStateUpdate".into(),
            fields: json!({"streamID": s, "state": "NO_PLAY", "errorCode": 1_002_099}),
        });
    }
    for e in missed {
        shared.push_event(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drop_without_resume_is_final() {
        let options = ConnectOptions {
            resume: false,
            ..ConnectOptions::default()
        };
        assert!(matches!(dropped(&options, "x".into()), End::Closed(_)));
        assert!(matches!(
            dropped(&ConnectOptions::default(), "x".into()),
            End::Dropped(_)
        ));
    }
}
