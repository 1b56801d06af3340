//! ICE-TCP on a worker: connections the listener (`media/ice_tcp.rs`)
//! accepted, bound to the peer their first binding request names once its
//! MESSAGE-INTEGRITY verifies with that peer's password (the peer adopted
//! from the parked table on it, as a UDP check would). Each connection has
//! a reader task (RFC 4571 frames → this worker's loop, as [`TcpEvent`]s)
//! and a writer task fed by a bounded queue: a client that does not read
//! fills it and its connection is closed, so a worker never waits on a
//! socket. Frames reach `rtc` with a TCP transport context; what `rtc`
//! sends on a TCP pair goes back framed on the connection it came from.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use room_signal::media::MediaId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::super::ice_tcp::{ConnSlot, TcpAccepted, READ_CHUNK};
use super::super::relay::Command;
use super::super::stun;
use super::super::tcp_framing::{encode, FrameReader, PREFIX_LEN};
use super::Worker;

/// Frames queued for one ICE-TCP connection's writer; a full queue means
/// the client is not reading, and the connection is closed.
pub const TCP_WRITE_QUEUE: usize = 1024;
/// ICE-TCP connections one peer may have; a new one beyond this replaces
/// the oldest.
pub const MAX_PEER_TCP_LINKS: usize = 4;
/// Frames read from a worker's ICE-TCP connections waiting for its loop
/// (a reader waits when it is full: TCP flow control slows the client).
pub const TCP_EVENT_QUEUE: usize = 1024;
/// Bytes the writer gathers from its queue into one write.
const WRITE_GATHER: usize = 64 * 1024;

/// One ICE-TCP connection bound to a peer (held by that peer).
pub(crate) struct TcpLink {
    pub id: u64,
    pub remote: SocketAddr,
    tx: mpsc::Sender<Bytes>,
    /// Its reader and writer tasks, ended with it.
    tasks: Vec<AbortHandle>,
}

impl Drop for TcpLink {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl TcpLink {
    /// Queue `packet` as one frame: false if the connection cannot take it
    /// (its queue is full or its writer is gone). A packet too large for a
    /// frame is dropped, as an oversize datagram would be.
    pub fn send(&self, packet: &[u8]) -> bool {
        let mut framed = Vec::with_capacity(PREFIX_LEN + packet.len());
        if encode(packet, &mut framed).is_err() {
            return true;
        }
        self.tx.try_send(Bytes::from(framed)).is_ok()
    }
}

/// Send `packet` on the link to `to`; a link that cannot take it is closed
/// (removed). False if it was not sent.
pub(crate) fn send_on(links: &mut Vec<TcpLink>, to: SocketAddr, packet: &[u8]) -> bool {
    send_with(links, to, |link| link.send(packet))
}

/// Queue an already framed packet (prefix included) on the link to `to`,
/// as [`send_on`] does.
pub(crate) fn send_framed(links: &mut Vec<TcpLink>, to: SocketAddr, framed: Bytes) -> bool {
    send_with(links, to, |link| link.tx.try_send(framed).is_ok())
}

fn send_with(
    links: &mut Vec<TcpLink>,
    to: SocketAddr,
    send: impl FnOnce(&TcpLink) -> bool,
) -> bool {
    let Some(i) = links.iter().position(|l| l.remote == to) else {
        return false;
    };
    if send(&links[i]) {
        return true;
    }
    let link = links.remove(i);
    tracing::debug!(remote = %link.remote, "ICE-TCP client does not read (write queue full): closed");
    false
}

/// What a connection's reader tells its worker.
pub(crate) enum TcpEventKind {
    Frame(BytesMut),
    Closed,
}

pub(crate) struct TcpEvent {
    pub peer: MediaId,
    pub link: u64,
    pub remote: SocketAddr,
    pub kind: TcpEventKind,
}

/// The reader task: whole frames to the worker until the stream ends or
/// breaks its framing.
async fn read_frames(
    mut rd: OwnedReadHalf,
    mut frames: FrameReader,
    events: mpsc::Sender<TcpEvent>,
    (peer, link, remote): (MediaId, u64, SocketAddr),
    slot: ConnSlot,
) {
    let mut buf = vec![0u8; READ_CHUNK];
    'read: loop {
        loop {
            let data = match frames.next_frame() {
                Ok(Some(f)) => BytesMut::from(f),
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(%remote, "ICE-TCP connection closed: {e}");
                    break 'read;
                }
            };
            let kind = TcpEventKind::Frame(data);
            if events
                .send(TcpEvent {
                    peer,
                    link,
                    remote,
                    kind,
                })
                .await
                .is_err()
            {
                return;
            }
        }
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => frames.push(&buf[..n]),
        }
    }
    drop(slot);
    let kind = TcpEventKind::Closed;
    let _ = events
        .send(TcpEvent {
            peer,
            link,
            remote,
            kind,
        })
        .await;
}

/// The writer task: queued frames, gathered into few writes.
async fn write_frames(mut wr: OwnedWriteHalf, mut rx: mpsc::Receiver<Bytes>) {
    let mut batch = Vec::with_capacity(WRITE_GATHER);
    while let Some(first) = rx.recv().await {
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < WRITE_GATHER {
            match rx.try_recv() {
                Ok(more) => batch.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if wr.write_all(&batch).await.is_err() {
            return;
        }
    }
}

impl Worker {
    /// A connection from the listener: bind it to the peer its first
    /// binding request authenticates for (adopting a parked one), or hand
    /// it to the worker that adopted that peer meanwhile, or close it.
    pub(crate) fn on_tcp_accepted(&mut self, mut acc: Box<TcpAccepted>, now: Instant) {
        let Some(id) = self.authenticate(&acc.ufrag, &acc.first) else {
            if acc.hops == 0 {
                let holder = self.shared.directory.lock().worker_of(&acc.ufrag);
                if let Some(w) = holder.filter(|w| *w != self.idx) {
                    acc.hops += 1;
                    self.shared.command(w, Command::IceTcp(acc));
                    return;
                }
            }
            tracing::debug!(remote = %acc.remote, "ICE-TCP binding request refused (no such peer, or bad MESSAGE-INTEGRITY)");
            return;
        };
        let TcpAccepted {
            stream,
            remote,
            first,
            frames,
            slot,
            ..
        } = *acc;
        let stream = match tokio::net::TcpStream::from_std(stream) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%remote, "ICE-TCP connection: {e}");
                return;
            }
        };
        let (rd, wr) = stream.into_split();
        let (tx, rx) = mpsc::channel(TCP_WRITE_QUEUE);
        self.next_link += 1;
        let link = self.next_link;
        let events = self.tcp_events_tx.clone();
        let reader = tokio::spawn(read_frames(rd, frames, events, (id, link, remote), slot));
        let writer = tokio::spawn(write_frames(wr, rx));
        let tcp = TcpLink {
            id: link,
            remote,
            tx,
            tasks: vec![reader.abort_handle(), writer.abort_handle()],
        };
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        // A reconnect from the same address replaces the old connection.
        peer.tcp.retain(|l| l.remote != remote);
        peer.tcp.push(tcp);
        if peer.tcp.len() > MAX_PEER_TCP_LINKS {
            peer.tcp.remove(0);
        }
        tracing::debug!(worker = self.idx, media = id, %remote, "ICE-TCP connection bound");
        self.on_tcp_frame(id, link, remote, BytesMut::from(&first[..]), now);
    }

    pub(super) fn on_tcp_event(&mut self, ev: TcpEvent, now: Instant) {
        match ev.kind {
            TcpEventKind::Closed => {
                if let Some(peer) = self.peers.get_mut(&ev.peer) {
                    peer.tcp.retain(|l| l.id != ev.link);
                }
            }
            TcpEventKind::Frame(data) => self.on_tcp_frame(ev.peer, ev.link, ev.remote, data, now),
        }
    }

    /// A frame of a connection bound to peer `id`. Binding requests are
    /// checked as on UDP: they must name this peer and carry its
    /// MESSAGE-INTEGRITY.
    fn on_tcp_frame(
        &mut self,
        id: MediaId,
        link: u64,
        remote: SocketAddr,
        data: BytesMut,
        now: Instant,
    ) {
        let Some(peer) = self.peers.get(&id) else {
            return;
        };
        if !peer.tcp.iter().any(|l| l.id == link) {
            return;
        }
        if let Some(ufrag) = stun::server_ufrag(&data) {
            if ufrag != peer.ufrag || !stun::verify_integrity(&data, peer.pwd.as_bytes()) {
                return;
            }
        }
        let connected = peer.connected;
        self.stash_nomination(id, remote, true, connected, &data, now);
        self.feed(id, remote, true, data, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(id: u64, port: u16, queue: usize) -> (TcpLink, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(queue);
        let remote = SocketAddr::from(([127, 0, 0, 1], port));
        let link = TcpLink {
            id,
            remote,
            tx,
            tasks: Vec::new(),
        };
        (link, rx)
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn packets_go_framed_to_the_link_of_their_address() {
        let (a, mut rx_a) = link(1, 5000, 4);
        let (b, mut rx_b) = link(2, 5001, 4);
        let mut links = vec![a, b];
        assert!(send_on(
            &mut links,
            SocketAddr::from(([127, 0, 0, 1], 5001)),
            b"abc"
        ));
        assert_eq!(rx_b.try_recv().unwrap(), Bytes::from_static(b"\x00\x03abc"));
        assert!(rx_a.try_recv().is_err());
        // No link to that address: not sent, nothing closed.
        assert!(!send_on(
            &mut links,
            SocketAddr::from(([127, 0, 0, 1], 9)),
            b"x"
        ));
        assert_eq!(links.len(), 2);
        // An already framed packet (the fast path's) goes as it is.
        let framed = Bytes::from_static(b"\x00\x02hi");
        assert!(send_framed(&mut links, addr(5000), framed.clone()));
        assert_eq!(rx_a.try_recv().unwrap(), framed);
    }

    #[test]
    fn a_client_that_does_not_read_is_dropped() {
        let (a, _rx) = link(1, 5000, 2);
        let to = a.remote;
        let mut links = vec![a];
        assert!(send_on(&mut links, to, b"1"));
        assert!(send_on(&mut links, to, b"2"));
        // The queue is full: the link is closed rather than waited on.
        assert!(!send_on(&mut links, to, b"3"));
        assert!(links.is_empty());
    }

    #[test]
    fn a_link_whose_writer_ended_is_dropped() {
        let (a, rx) = link(1, 5000, 8);
        drop(rx);
        let to = a.remote;
        let mut links = vec![a];
        assert!(!send_on(&mut links, to, b"1"));
        assert!(links.is_empty());
    }

    #[test]
    fn oversize_and_empty_packets_are_dropped_not_fatal() {
        let (a, mut rx) = link(1, 5000, 8);
        let to = a.remote;
        let mut links = vec![a];
        let big = vec![0u8; super::super::super::tcp_framing::MAX_FRAME_LEN + 1];
        assert!(send_on(&mut links, to, &big));
        assert!(send_on(&mut links, to, &[]));
        assert!(rx.try_recv().is_err());
        assert_eq!(links.len(), 1);
    }
}
