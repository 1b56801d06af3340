//! A connection's bounded outgoing queue, shared with every room it is in.
//!
//! Rooms fan out by pushing one pre-serialized frame (a cheap `Bytes` clone)
//! into each member's outbox without waiting. A full outbox means the client
//! does not read fast enough: the connection is told to close (it is logged)
//! instead of letting memory grow or the room wait.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};

/// What a connection task receives from the rest of the control plane.
#[derive(Debug)]
pub enum Outbound {
    /// A serialized event to write as one text frame.
    Frame(Bytes),
    /// This connection's user was removed from a room by someone else.
    Kicked {
        room_id: Arc<str>,
        /// Which join was kicked (a later re-join is not affected).
        join: u64,
        code: u32,
        /// The streams the room listed when the user was removed (its own
        /// included): the connection's plays bound to the room of these
        /// end, as at a logout. Taken then, not when the connection gets
        /// to this item, so the outcome does not depend on how soon it does.
        listed: Vec<Arc<str>>,
    },
    /// A transport event of one of this connection's publishes or plays.
    Media {
        id: crate::media::MediaId,
        event: crate::media::MediaEvent,
    },
    /// The stream this connection plays (with `play`) stopped being
    /// published: the play waits for the next publisher.
    StreamEnded {
        stream_id: Arc<str>,
        play: crate::media::MediaId,
    },
    /// The server removed this connection's publish `media` of `stream_id`
    /// (admin API); the room and the app already ended it.
    PublishRemoved {
        stream_id: Arc<str>,
        media: crate::media::MediaId,
    },
}

/// Sending half of a connection's queue; cloned into every room it joins.
#[derive(Clone, Debug)]
pub struct Outbox {
    conn_id: u64,
    tx: mpsc::Sender<Outbound>,
    overflow: Arc<Overflow>,
}

#[derive(Debug, Default)]
pub struct Overflow {
    flagged: AtomicBool,
    notify: Notify,
}

impl Overflow {
    /// Resolves once the outbox overflowed.
    pub async fn wait(&self) {
        loop {
            if self.flagged.load(Ordering::Acquire) {
                return;
            }
            self.notify.notified().await;
        }
    }

    pub fn is_flagged(&self) -> bool {
        self.flagged.load(Ordering::Acquire)
    }
}

/// Receiving half, owned by the connection task.
pub struct Inbox {
    pub rx: mpsc::Receiver<Outbound>,
    pub overflow: Arc<Overflow>,
}

/// A new queue for connection `conn_id` holding at most `capacity` items.
pub fn channel(conn_id: u64, capacity: usize) -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let overflow = Arc::new(Overflow::default());
    (
        Outbox {
            conn_id,
            tx,
            overflow: overflow.clone(),
        },
        Inbox { rx, overflow },
    )
}

impl Outbox {
    pub fn conn_id(&self) -> u64 {
        self.conn_id
    }

    /// Queue a reliable item. If the queue is full the connection is flagged
    /// to close as a slow reader; returns whether the item was queued.
    pub fn send(&self, item: Outbound) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.overflow.flagged.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        target: crate::session::CLIENT_LOG,
                        conn = self.conn_id,
                        "send queue full: dropping slow connection"
                    );
                    self.overflow.notify.notify_one();
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    pub fn send_frame(&self, frame: &Bytes) -> bool {
        self.send(Outbound::Frame(frame.clone()))
    }

    /// Queue a lossy item (barrage): skipped for this receiver when its queue
    /// is more than half full, never a reason to drop the connection.
    pub fn send_lossy(&self, frame: &Bytes) -> bool {
        if self.tx.capacity() * 2 < self.tx.max_capacity() {
            return false;
        }
        self.tx.try_send(Outbound::Frame(frame.clone())).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_queue_flags_overflow_once() {
        let (out, mut inbox) = channel(7, 2);
        let f = Bytes::from_static(b"{}");
        assert!(out.send_frame(&f));
        assert!(out.send_frame(&f));
        assert!(!inbox.overflow.is_flagged());
        assert!(!out.send_frame(&f));
        assert!(inbox.overflow.is_flagged());
        inbox.overflow.wait().await;
        assert!(matches!(inbox.rx.recv().await, Some(Outbound::Frame(_))));
    }

    #[test]
    fn lossy_skips_when_half_full() {
        let (out, inbox) = channel(1, 4);
        let f = Bytes::from_static(b"{}");
        assert!(out.send_lossy(&f));
        assert!(out.send_lossy(&f));
        assert!(out.send_lossy(&f));
        assert!(!out.send_lossy(&f));
        assert!(!inbox.overflow.is_flagged());
    }
}
