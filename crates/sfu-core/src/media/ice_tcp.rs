//! ICE-TCP (RFC 6544): every answer also carries a passive TCP host
//! candidate on one port (`server.tcpPort`), and clients that cannot reach
//! UDP connect there. This is the listener: it accepts at most
//! `server.maxTcpConnections` connections (more are closed at once), gives
//! each [`FIRST_CHECK_DEADLINE`] to send its first RFC 4571 frame, which
//! must be a STUN binding request naming one of our ICE ufrags
//! ([`stun::binding_request_ufrag`]), and hands the connection to the media
//! worker that holds (or will adopt) that peer. The worker checks the
//! request's MESSAGE-INTEGRITY exactly as it does for UDP before the
//! connection is bound to the peer (`worker/tcp.rs`); from then on its
//! frames go into the same `rtc` connection with a TCP transport context,
//! and what `rtc` sends on the TCP pair goes back framed on it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::relay::Command;
use super::stun;
use super::tcp_framing::FrameReader;
use super::Shared;

/// A new connection's first frame (a binding request) must arrive within this.
pub const FIRST_CHECK_DEADLINE: Duration = Duration::from_secs(5);

/// The pause after a failed `accept` (out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Bytes read from a TCP connection per call.
pub const READ_CHUNK: usize = 4096;

/// One of the `server.maxTcpConnections` slots: held for as long as the
/// connection is open (by the listener, then by the worker's reader task).
pub(crate) struct ConnSlot(Arc<AtomicUsize>);

impl ConnSlot {
    /// A slot of `open` (at most `max` taken), or `None` when all are.
    pub fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<ConnSlot> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()
        .map(|_| ConnSlot(open.clone()))
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection whose first frame is a binding request for `ufrag`, on its
/// way to a worker (its integrity is not checked yet).
pub struct TcpAccepted {
    pub(crate) stream: std::net::TcpStream,
    pub(crate) remote: SocketAddr,
    pub(crate) ufrag: String,
    /// The binding request.
    pub(crate) first: Vec<u8>,
    /// The bytes read after it (the reader carries on from them).
    pub(crate) frames: FrameReader,
    pub(crate) slot: ConnSlot,
    /// Times it was handed on to another worker (at most once: the peer
    /// was adopted elsewhere while it was on its way).
    pub(crate) hops: u8,
}

/// Read until the first whole frame: `Ok(None)` if the stream ended or is
/// not RFC 4571 framing.
async fn first_frame(stream: &mut TcpStream) -> std::io::Result<Option<(Vec<u8>, FrameReader)>> {
    let mut frames = FrameReader::new();
    let mut buf = [0u8; READ_CHUNK];
    loop {
        match frames.next_frame() {
            Ok(Some(f)) => {
                let first = f.to_vec();
                return Ok(Some((first, frames)));
            }
            Ok(None) => {}
            Err(_) => return Ok(None),
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        frames.push(&buf[..n]);
    }
}

/// The worker for a binding request naming `ufrag`: the one holding that
/// peer, else (parked or unknown) one chosen by the client's address.
fn route(shared: &Shared, ufrag: &str, remote: SocketAddr) -> usize {
    if let Some(w) = shared.directory.lock().worker_of(ufrag) {
        return w;
    }
    spread(remote, shared.mailboxes.len())
}

/// Spread clients over `workers` by port (and address).
pub(crate) fn spread(remote: SocketAddr, workers: usize) -> usize {
    let ip = match remote.ip() {
        std::net::IpAddr::V4(v4) => u32::from(v4) as usize,
        std::net::IpAddr::V6(v6) => v6.segments().iter().map(|s| *s as usize).sum(),
    };
    (ip ^ usize::from(remote.port())) % workers.max(1)
}

/// One accepted connection until it is handed to a worker (or closed).
async fn handshake(mut stream: TcpStream, remote: SocketAddr, slot: ConnSlot, shared: Arc<Shared>) {
    let first = tokio::time::timeout(FIRST_CHECK_DEADLINE, first_frame(&mut stream)).await;
    let (first, frames) = match first {
        Ok(Ok(Some(f))) => f,
        Ok(Ok(None)) | Ok(Err(_)) => {
            tracing::debug!(%remote, "ICE-TCP connection closed before a valid first frame");
            return;
        }
        Err(_) => {
            tracing::debug!(%remote, "ICE-TCP connection sent no binding request in time");
            return;
        }
    };
    let Some(ufrag) = stun::binding_request_ufrag(&first).map(str::to_owned) else {
        tracing::debug!(%remote, "ICE-TCP first frame is not a binding request");
        return;
    };
    let worker = route(&shared, &ufrag, remote);
    let stream = match stream.into_std() {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(%remote, "ICE-TCP connection: {e}");
            return;
        }
    };
    shared.command(
        worker,
        Command::IceTcp(Box::new(TcpAccepted {
            stream,
            remote,
            ufrag,
            first,
            frames,
            slot,
            hops: 0,
        })),
    );
}

/// Bind the ICE-TCP port (`port` 0: any free one).
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// The listener's thread: accepts until `stop` changes.
pub(crate) fn run(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    open: Arc<AtomicUsize>,
    mut stop: watch::Receiver<bool>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the ICE-TCP listener: {e}");
            return;
        }
    };
    let max = shared.config.max_tcp_connections.max(1);
    runtime.block_on(async move {
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("ICE-TCP listener: {e}");
                return;
            }
        };
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, remote) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of descriptors and the like: back off a
                            // little rather than spin, then keep going.
                            tracing::debug!("ICE-TCP accept: {e}");
                            tokio::time::sleep(ACCEPT_BACKOFF).await;
                            continue;
                        }
                    };
                    let Some(slot) = ConnSlot::take(&open, max) else {
                        tracing::debug!(%remote, max, "ICE-TCP connection refused: server.maxTcpConnections");
                        drop(stream);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(handshake(stream, remote, slot, shared.clone()));
                }
                _ = stop.changed() => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_given_back() {
        let open = Arc::new(AtomicUsize::new(0));
        let a = ConnSlot::take(&open, 2).unwrap();
        let b = ConnSlot::take(&open, 2).unwrap();
        assert!(ConnSlot::take(&open, 2).is_none());
        assert_eq!(open.load(Ordering::Acquire), 2);
        drop(a);
        let c = ConnSlot::take(&open, 2);
        assert!(c.is_some());
        drop((b, c));
        assert_eq!(open.load(Ordering::Acquire), 0);
    }

    #[test]
    fn spread_stays_in_range() {
        for port in [0u16, 1, 7, 65535] {
            let a = SocketAddr::from(([10, 0, 0, 3], port));
            assert!(spread(a, 3) < 3);
            assert_eq!(spread(a, 1), 0);
            assert_eq!(spread(a, 0), 0);
        }
        let v6: SocketAddr = "[2001:db8::1]:4444".parse().unwrap();
        assert!(spread(v6, 4) < 4);
    }
}
