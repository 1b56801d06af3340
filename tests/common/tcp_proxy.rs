//! A TCP proxy on 127.0.0.1 in front of the server's signaling port, for
//! tests of what a dropped WebSocket does: [`TcpProxy::reset`] ends every
//! connection through it with a TCP reset (as a NAT or proxy timeout
//! would), [`TcpProxy::blackhole`] stops every byte in both directions
//! while the connections stay open (as a dead Wi-Fi would), and
//! [`TcpProxy::refuse`] resets new connections while an outage lasts.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Default)]
struct Faults {
    refuse: AtomicBool,
    accepted: AtomicUsize,
}

pub struct TcpProxy {
    pub addr: SocketAddr,
    faults: Arc<Faults>,
    /// Bumped by `reset`/`end`: every connection older than the bump ends,
    /// with a reset when the flag is set, else with a FIN.
    resets: watch::Sender<(u64, bool)>,
    /// True while bytes are held.
    holes: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let faults = Arc::new(Faults::default());
        let (resets, _) = watch::channel((0u64, true));
        let (holes, _) = watch::channel(false);
        let task = tokio::spawn(accept(
            listener,
            target,
            faults.clone(),
            resets.clone(),
            holes.clone(),
        ));
        TcpProxy {
            addr,
            faults,
            resets,
            holes,
            task,
        }
    }

    /// `host:port` of the proxy (what a client connects to).
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// End every open connection with a reset, both sides.
    pub fn reset(&self) {
        self.resets
            .send_modify(|(n, rst)| (*n, *rst) = (*n + 1, true));
    }

    /// End every open connection with a FIN, both sides (an end of stream
    /// without a WebSocket close frame).
    pub fn end(&self) {
        self.resets
            .send_modify(|(n, rst)| (*n, *rst) = (*n + 1, false));
    }

    /// Hold (or release) every byte of every connection.
    pub fn blackhole(&self, on: bool) {
        self.holes.send_replace(on);
    }

    /// Reset new connections at once (or accept them again).
    pub fn refuse(&self, on: bool) {
        self.faults.refuse.store(on, Ordering::SeqCst);
    }

    /// Connections accepted (and passed on) so far.
    pub fn accepted(&self) -> usize {
        self.faults.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.reset();
    }
}

fn abort(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

async fn accept(
    listener: TcpListener,
    target: SocketAddr,
    faults: Arc<Faults>,
    resets: watch::Sender<(u64, bool)>,
    holes: watch::Sender<bool>,
) {
    while let Ok((client, _)) = listener.accept().await {
        if faults.refuse.load(Ordering::SeqCst) {
            abort(&client);
            continue;
        }
        let Ok(server) = TcpStream::connect(target).await else {
            abort(&client);
            continue;
        };
        faults.accepted.fetch_add(1, Ordering::SeqCst);
        let mut reset = resets.subscribe();
        reset.mark_unchanged();
        let hole = holes.subscribe();
        tokio::spawn(async move {
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            {
                let up = pump(&mut cr, &mut sw, hole.clone());
                let down = pump(&mut sr, &mut cw, hole);
                tokio::select! {
                    _ = async { tokio::join!(up, down) } => {}
                    _ = reset.changed() => {}
                }
            }
            // Reunite to set SO_LINGER 0: dropping then sends RST.
            let rst = reset.borrow().1;
            if let (Ok(c), Ok(s)) = (cr.reunite(cw), sr.reunite(sw)) {
                if rst {
                    abort(&c);
                    abort(&s);
                }
            }
        });
    }
}

/// Copy `from` to `to`, holding bytes while `hole` is true; ends at EOF
/// (passing the half-close on) or on an error.
async fn pump(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    mut hole: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if hole.wait_for(|on| !*on).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = hole.wait_for(|on| !*on).await;
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        if hole.wait_for(|on| !*on).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
