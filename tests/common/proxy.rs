//! A UDP proxy between one peer (player or publisher) and the server's media
//! port, for tests that need loss on purpose or need to send datagrams from
//! that peer's 5-tuple. The SRTP header (sequence number, SSRC) is in the
//! clear, so the proxy can drop chosen RTP packets and count what the server
//! sends; STUN is in the clear too, so it can keep the peer's binding
//! request for tests that forge one.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use tokio::net::UdpSocket;

/// What the proxy does to server → peer datagrams.
pub const PASS: u8 = 0;
/// Drop every `nth` RTP packet of `ssrc` the first time it is sent (a
/// retransmission of the same sequence number passes).
pub const DROP_NTH_ONCE: u8 = 1;
/// Drop everything towards the peer.
pub const BLACKHOLE: u8 = 2;

/// How many of the peer's latest RTP/RTCP datagrams the proxy keeps.
const KEEP_RECENT: usize = 64;

/// What the proxy saw, for tests to inspect.
#[derive(Default)]
pub struct Seen {
    /// Server → peer RTP packets per (SSRC, sequence number): a count above
    /// one is a retransmission.
    pub rtp: HashMap<(u32, u16), u32>,
    /// The peer's first STUN binding request to the server.
    pub binding_request: Option<Vec<u8>>,
    /// The peer's latest RTP/RTCP datagrams to the server (SRTP/SRTCP as
    /// sent), oldest first.
    pub recent: VecDeque<Vec<u8>>,
}

pub struct Proxy {
    pub addr: SocketAddr,
    pub mode: Arc<AtomicU8>,
    pub ssrc: Arc<AtomicU32>,
    pub nth: Arc<AtomicU32>,
    pub dropped: Arc<AtomicU64>,
    pub dropped_seqs: Arc<parking_lot::Mutex<Vec<u16>>>,
    pub seen: Arc<parking_lot::Mutex<Seen>>,
    /// The highest sequence number (RFC 1982 order) of `ssrc` the server
    /// sent, or `u32::MAX` before the first.
    pub highest_seq: Arc<AtomicU32>,
    server: SocketAddr,
    socket: Arc<UdpSocket>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// RTP or RTCP by its first byte (RFC 7983), and long enough for a header.
pub fn is_rtp_or_rtcp(data: &[u8]) -> bool {
    data.len() >= 12 && (0x80..0xC0).contains(&data[0])
}

/// RTCP rather than RTP: packet type 200–207 (RFC 5761).
pub fn is_rtcp(data: &[u8]) -> bool {
    data.len() >= 2 && (200..=207).contains(&data[1])
}

impl Proxy {
    pub async fn start(server: SocketAddr) -> Proxy {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = socket.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(PASS));
        let ssrc = Arc::new(AtomicU32::new(0));
        let nth = Arc::new(AtomicU32::new(10));
        let dropped = Arc::new(AtomicU64::new(0));
        let dropped_seqs = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let seen = Arc::new(parking_lot::Mutex::new(Seen::default()));
        let highest_seq = Arc::new(AtomicU32::new(u32::MAX));
        let (m, s, n, d, ds, sn, hs) = (
            mode.clone(),
            ssrc.clone(),
            nth.clone(),
            dropped.clone(),
            dropped_seqs.clone(),
            seen.clone(),
            highest_seq.clone(),
        );
        let sock = socket.clone();
        let task = tokio::spawn(async move {
            let socket = sock;
            let mut buf = vec![0u8; 2048];
            let mut client: Option<SocketAddr> = None;
            let mut first_seen: HashSet<u16> = HashSet::new();
            let mut counter = 0u32;
            while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                let data = &buf[..len];
                if from != server {
                    client = Some(from);
                    {
                        let mut seen = sn.lock();
                        if is_rtp_or_rtcp(data) {
                            if seen.recent.len() == KEEP_RECENT {
                                seen.recent.pop_front();
                            }
                            seen.recent.push_back(data.to_vec());
                        } else if seen.binding_request.is_none() && len >= 20 && data[..2] == [0, 1]
                        {
                            seen.binding_request = Some(data.to_vec());
                        }
                    }
                    let _ = socket.send_to(data, server).await;
                    continue;
                }
                let Some(to) = client else { continue };
                let is_rtp = is_rtp_or_rtcp(data) && !is_rtcp(data);
                let tracked = s.load(Ordering::Relaxed);
                if is_rtp {
                    let pkt_ssrc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
                    let seq = u16::from_be_bytes([data[2], data[3]]);
                    *sn.lock().rtp.entry((pkt_ssrc, seq)).or_default() += 1;
                    if pkt_ssrc == tracked {
                        let high = hs.load(Ordering::Relaxed);
                        if high == u32::MAX || seq.wrapping_sub(high as u16) < 0x8000 {
                            hs.store(u32::from(seq), Ordering::Relaxed);
                        }
                    }
                }
                let drop = match m.load(Ordering::Relaxed) {
                    BLACKHOLE => true,
                    DROP_NTH_ONCE if is_rtp => {
                        let pkt_ssrc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
                        let seq = u16::from_be_bytes([data[2], data[3]]);
                        if pkt_ssrc == tracked && first_seen.insert(seq) {
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
            seen,
            highest_seq,
            server,
            socket,
            task,
        }
    }

    /// Send `data` to the server from the proxy's socket: from the server's
    /// point of view, from the proxied peer's own address.
    pub async fn inject(&self, data: &[u8]) {
        let _ = self.socket.send_to(data, self.server).await;
    }

    /// The peer's first binding request, once it has sent one.
    pub fn binding_request(&self) -> Option<Vec<u8>> {
        self.seen.lock().binding_request.clone()
    }

    /// The peer's latest RTP/RTCP datagrams, oldest first.
    pub fn recent(&self) -> Vec<Vec<u8>> {
        self.seen.lock().recent.iter().cloned().collect()
    }

    /// How often the server sent each sequence number of `ssrc` (RTP only).
    pub fn sends_of(&self, ssrc: u32) -> HashMap<u16, u32> {
        self.seen
            .lock()
            .rtp
            .iter()
            .filter(|((s, _), _)| *s == ssrc)
            .map(|((_, seq), n)| (*seq, *n))
            .collect()
    }

    /// Stop the proxy and close its socket: the server's datagrams to it
    /// now meet a closed port (ICMP port unreachable).
    pub async fn close(mut self) {
        self.task.abort();
        // The aborted task has dropped its handle on the socket once it is
        // joined; dropping `self` then closes the socket.
        let _ = (&mut self.task).await;
    }
}
