//! A UDP proxy between one player and the server's media port, for tests
//! that need loss on purpose. The SRTP header (sequence number, SSRC) is in
//! the clear, so the proxy can drop chosen RTP packets.
#![allow(dead_code)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use tokio::net::UdpSocket;

/// What the proxy does to server → player datagrams.
pub const PASS: u8 = 0;
/// Drop every `nth` RTP packet of `ssrc` the first time it is sent (a
/// retransmission of the same sequence number passes).
pub const DROP_NTH_ONCE: u8 = 1;
/// Drop everything towards the player.
pub const BLACKHOLE: u8 = 2;

pub struct Proxy {
    pub addr: SocketAddr,
    pub mode: Arc<AtomicU8>,
    pub ssrc: Arc<AtomicU32>,
    pub nth: Arc<AtomicU32>,
    pub dropped: Arc<AtomicU64>,
    pub dropped_seqs: Arc<parking_lot::Mutex<Vec<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(server: SocketAddr) -> Proxy {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(PASS));
        let ssrc = Arc::new(AtomicU32::new(0));
        let nth = Arc::new(AtomicU32::new(10));
        let dropped = Arc::new(AtomicU64::new(0));
        let dropped_seqs = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (m, s, n, d, ds) = (
            mode.clone(),
            ssrc.clone(),
            nth.clone(),
            dropped.clone(),
            dropped_seqs.clone(),
        );
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let mut client: Option<SocketAddr> = None;
            let mut seen: HashSet<u16> = HashSet::new();
            let mut counter = 0u32;
            while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                let data = &buf[..len];
                if from != server {
                    client = Some(from);
                    let _ = socket.send_to(data, server).await;
                    continue;
                }
                let Some(to) = client else { continue };
                let is_rtp =
                    len >= 12 && (0x80..0xC0).contains(&data[0]) && !(200..=207).contains(&data[1]);
                let drop = match m.load(Ordering::Relaxed) {
                    BLACKHOLE => true,
                    DROP_NTH_ONCE if is_rtp => {
                        let pkt_ssrc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
                        let seq = u16::from_be_bytes([data[2], data[3]]);
                        if pkt_ssrc == s.load(Ordering::Relaxed) && seen.insert(seq) {
                            counter += 1;
                            if counter % n.load(Ordering::Relaxed).max(2) == 0 {
                                ds.lock().push(seq);
                                true
                            } else {
                                false
                            }
                        } else {
                            false
                        }
                    }
                    _ => false,
                };
                if drop {
                    d.fetch_add(1, Ordering::Relaxed);
                } else {
                    let _ = socket.send_to(data, to).await;
                }
            }
        });
        Proxy {
            addr,
            mode,
            ssrc,
            nth,
            dropped,
            dropped_seqs,
            task,
        }
    }
}
