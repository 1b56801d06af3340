//! Minimal signaling client for the load tool: JSON requests over the
//! server's WebSocket (`/ws?appID=`), responses matched by `id`, a heartbeat
//! every 5 s, server events ignored. Also mints HS256 tokens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const HEARTBEAT: Duration = Duration::from_secs(5);

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// One signaling connection. Dropping it closes the WebSocket, which makes
/// the server end this user's sessions (and streams).
pub struct Signal {
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    next_id: AtomicU64,
}

#[derive(Serialize)]
struct Claims<'a> {
    app_id: u32,
    user_id: &'a str,
    iat: u64,
    exp: u64,
}

/// A token for `user` valid for one hour (HS256 over the app's secret).
pub fn mint_token(app: u32, secret: &str, user: &str) -> Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = Claims {
        app_id: app,
        user_id: user,
        iat: now,
        exp: now + 3600,
    };
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

impl Signal {
    /// Open `ws://<server>/ws?appID=<app>` and start the reader, writer
    /// and heartbeat.
    pub async fn connect(server: &str, app: u32) -> Result<Signal> {
        let url = format!("ws://{server}/ws?appID={app}");
        let (ws, _) = tokio::time::timeout(
            REQUEST_TIMEOUT,
            tokio_tungstenite::connect_async(url.as_str()),
        )
        .await
        .context("websocket connect timed out")?
        .with_context(|| format!("websocket connect to {url}"))?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut rx) = mpsc::unbounded_channel::<Message>();
        let pending: Pending = Arc::default();
        tokio::spawn(async move {
            let mut beat = tokio::time::interval(HEARTBEAT);
            loop {
                let msg = tokio::select! {
                    m = rx.recv() => match m { Some(m) => m, None => break },
                    _ = beat.tick() => Message::Text(r#"{"op":"heartbeat"}"#.into()),
                };
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let reader_pending = pending.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                let Some(id) = v.get("id").and_then(Value::as_u64) else {
                    continue;
                };
                let waiter = reader_pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                if let Some(w) = waiter {
                    let _ = w.send(v);
                }
            }
            // Fail every waiter: dropping the senders wakes them.
            reader_pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        });
        Ok(Signal {
            out,
            pending,
            next_id: AtomicU64::new(1),
        })
    }

    /// Send `{"id", "op", ...fields}` and wait for a `code: 0` response.
    pub async fn request(&self, op: &str, fields: Value) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut frame = fields;
        let obj = frame
            .as_object_mut()
            .ok_or_else(|| anyhow!("fields must be an object"))?;
        obj.insert("id".into(), json!(id));
        obj.insert("op".into(), json!(op));
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        self.out
            .send(Message::Text(frame.to_string().into()))
            .map_err(|_| anyhow!("signaling connection closed"))?;
        let resp = tokio::time::timeout(REQUEST_TIMEOUT, rx)
            .await
            .with_context(|| format!("{op}: no response"))?
            .map_err(|_| anyhow!("{op}: connection closed"))?;
        let code = resp.get("code").and_then(Value::as_u64).unwrap_or(0);
        if code != 0 {
            let why = resp.get("message").and_then(Value::as_str).unwrap_or("");
            bail!("{op} failed: code {code}: {why}");
        }
        Ok(resp)
    }

    /// `loginRoom` as `user` with a freshly minted token.
    pub async fn login(&self, app: u32, secret: &str, room: &str, user: &str) -> Result<()> {
        let token = mint_token(app, secret, user)?;
        self.request(
            "loginRoom",
            json!({
                "roomID": room,
                "token": token,
                "user": {"userID": user, "userName": user},
            }),
        )
        .await?;
        Ok(())
    }

    /// Exchange an offer for an answer with `op` (`startPublishingStream`
    /// or `startPlayingStream`).
    pub async fn negotiate(&self, op: &str, fields: Value) -> Result<String> {
        let resp = self.request(op, fields).await?;
        resp.get("sdp")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("{op}: response without sdp"))
    }
}
