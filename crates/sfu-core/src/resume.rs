//! Session takeover for `resume`: an index from `(appID, sessionID)` to the
//! mailbox of the task that owns that session. The owner checks the token
//! and builds the answer (`Session::take_over`); this index only finds it.
//!
//! A connection whose first request is `resume` hands its WebSocket to the
//! owner through the mailbox and waits for the verdict: on success the
//! owner serves the session on the new socket (dropping the old one, if the
//! old connection was still open, e.g. black-holed) and the new task ends;
//! on failure the socket comes back with the error to answer, and the new
//! connection goes on as a fresh session. The owner removes its entry
//! before it ends and then refuses whatever is still in its mailbox, so a
//! handed-over socket is never lost.

use std::collections::HashMap;

use axum::extract::ws::WebSocket;
use parking_lot::Mutex;
use room_signal::resume::ResumeRequest;
use room_signal::SignalError;
use tokio::sync::{mpsc, oneshot};

/// What the owner answers: `Ok` (it took the socket) or the socket back
/// with the error for its client.
pub type Verdict = Result<(), (WebSocket, SignalError)>;

/// A new connection's request to take a session over.
pub struct Takeover {
    pub socket: WebSocket,
    /// The request's `id`.
    pub id: u64,
    pub request: ResumeRequest,
    pub reply: oneshot::Sender<Verdict>,
}

/// Takeovers queued for one owner at most (more wait for it or are
/// refused).
const MAILBOX: usize = 2;

/// An owner's mailbox.
pub type Mailbox = mpsc::Receiver<Box<Takeover>>;
type Owner = mpsc::Sender<Box<Takeover>>;

/// The index of sessions that can be taken over.
#[derive(Default)]
pub struct Registry {
    owners: Mutex<HashMap<(u32, String), Owner>>,
}

impl Registry {
    /// Register the session `session_id` of app `app`; its owner reads
    /// takeovers from the returned mailbox.
    pub fn register(&self, app: u32, session_id: &str) -> Mailbox {
        let (tx, rx) = mpsc::channel(MAILBOX);
        self.owners.lock().insert((app, session_id.to_string()), tx);
        rx
    }

    /// Remove the entry (the owner is ending). The owner then closes its
    /// mailbox and refuses what is left in it.
    pub fn unregister(&self, app: u32, session_id: &str) {
        self.owners.lock().remove(&(app, session_id.to_string()));
    }

    /// Hand `takeover` to the owner of its session; gives it back if there
    /// is no such session (or its mailbox is full or closed).
    pub fn hand_over(&self, app: u32, takeover: Box<Takeover>) -> Result<(), Box<Takeover>> {
        let tx = self
            .owners
            .lock()
            .get(&(app, takeover.request.session_id.clone()))
            .cloned();
        match tx {
            Some(tx) => tx.try_send(takeover).map_err(|e| match e {
                mpsc::error::TrySendError::Full(t) | mpsc::error::TrySendError::Closed(t) => t,
            }),
            None => Err(takeover),
        }
    }

    /// Sessions registered now.
    pub fn len(&self) -> usize {
        self.owners.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
