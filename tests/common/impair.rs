//! An impairment relay: a UDP relay between one peer and the server's
//! media port that does to the datagrams one way (server → peer by
//! default) what a bad network does — random loss, loss in bursts (a Gilbert–Elliott chain), reordering,
//! duplication, and delay jitter — drawn from a seed. What happens to an RTP
//! packet is a function of the seed, its payload type, its place in its
//! stream and which copy it is (a retransmission is a later copy), so a
//! test's loss pattern is the same on every run, however the streams
//! interleave and whenever the retransmissions come; only the phase
//! boundaries (counted over all streams) may move by a packet or two.
//!
//! The schedule is a list of phases, each lasting a number of RTP packets
//! (first copies, any stream), so that phases are measured in packets, not
//! in wall time. The other direction passes unchanged ([`Relay::start`]
//! impairs server → peer, a player's downlink; [`Relay::start_towards`]
//! with [`Towards::Server`], a publisher's uplink), and [`Relay::cut`]
//! drops everything both ways (a peer that vanished). The SRTP header is
//! in the clear: the relay keeps, per SSRC and sequence number, how many
//! copies it got on the impaired way (above one: retransmissions) and how
//! many it let through, so a test can tell the loss it caused from what
//! NACK repaired, and count the retransmissions.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::proxy::{is_rtcp, is_rtp_or_rtcp};

/// How datagrams are lost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    None,
    /// Each datagram independently with this probability.
    Random(f64),
    /// Gilbert–Elliott: a good state that loses nothing and a bad state
    /// that loses everything; each datagram first moves good → bad with
    /// probability `enter` and bad → good with `leave`. Mean burst length
    /// is `1 / leave`, and the share of datagrams lost
    /// `enter / (enter + leave)`.
    Bursts {
        enter: f64,
        leave: f64,
    },
}

impl Loss {
    /// Bursts of mean length `burst` packets that lose `share` of all.
    pub fn bursts(share: f64, burst: f64) -> Loss {
        let leave = 1.0 / burst;
        Loss::Bursts {
            enter: share * leave / (1.0 - share),
            leave,
        }
    }
}

/// What one phase does to server → peer datagrams.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairment {
    pub loss: Loss,
    /// Probability that a datagram is sent twice.
    pub duplicate: f64,
    /// Probability that a datagram is held back `reorder_by`, so that the
    /// ones after it overtake it.
    pub reorder: f64,
    pub reorder_by: Duration,
    /// Each datagram is delayed uniformly in `0..jitter`, order kept (a
    /// queue whose depth varies; reordering is `reorder`'s job).
    pub jitter: Duration,
}

impl Impairment {
    pub const CLEAN: Impairment = Impairment {
        loss: Loss::None,
        duplicate: 0.0,
        reorder: 0.0,
        reorder_by: Duration::ZERO,
        jitter: Duration::ZERO,
    };

    pub fn loss(loss: Loss) -> Impairment {
        Impairment {
            loss,
            ..Impairment::CLEAN
        }
    }
}

/// One phase: `impairment` for the next `packets` RTP packets (first
/// copies, any stream). The last phase lasts to the end.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    pub name: &'static str,
    pub impairment: Impairment,
    pub packets: u32,
}

/// What happened to one RTP sequence number.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fate {
    /// The phase its first copy came in.
    pub phase: usize,
    /// Copies the relay got (above one: retransmissions).
    pub sent: u32,
    /// Copies the relay let through (duplicates count twice).
    pub passed: u32,
    /// Its first copy was dropped.
    pub first_lost: bool,
}

/// Counts over the whole run, every datagram on the impaired way.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub datagrams: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub delayed: u64,
}

#[derive(Default)]
pub struct Record {
    /// By SSRC and sequence number (a run is far shorter than the wrap).
    pub fates: HashMap<(u32, u16), Fate>,
    pub counts: Counts,
    /// The phase now in force.
    pub phase: usize,
}

pub struct Relay {
    pub addr: SocketAddr,
    pub record: Arc<parking_lot::Mutex<Record>>,
    cut: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// SplitMix64: small, seedable, good enough to draw loss from.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }
}

impl Loss {
    /// The share of datagrams lost.
    fn share(self) -> f64 {
        match self {
            Loss::None => 0.0,
            Loss::Random(p) => p,
            Loss::Bursts { enter, leave } => enter / (enter + leave),
        }
    }
}

/// One RTP stream's place in the draws.
struct Stream {
    payload_type: u8,
    /// Its first sequence number: packets are drawn for by offset.
    first: u16,
    /// Its Gilbert–Elliott chain, stepped once per first copy (the server
    /// sends first copies in order) and seeded by the payload type.
    chain: Rng,
    bad: bool,
}

/// Where the draws for one datagram come from.
enum Draw<'a> {
    /// RTP: independent draws keyed by (seed, payload type, offset, copy).
    Rtp {
        stream: &'a mut Stream,
        seed: u64,
        offset: u16,
        copy: u32,
    },
    /// Anything else: the relay's running generator.
    Other(&'a mut Rng),
}

impl Draw<'_> {
    /// Uniform in [0, 1), a different draw for each `salt`.
    fn unit(&mut self, salt: u64) -> f64 {
        match self {
            Draw::Rtp {
                stream,
                seed,
                offset,
                copy,
            } => Rng(*seed
                ^ (u64::from(stream.payload_type) << 56)
                ^ (u64::from(*offset) << 32)
                ^ (u64::from(*copy) << 8)
                ^ salt)
            .unit(),
            Draw::Other(rng) => rng.unit(),
        }
    }

    fn chance(&mut self, p: f64, salt: u64) -> bool {
        p > 0.0 && self.unit(salt) < p
    }

    fn lost(&mut self, loss: Loss) -> bool {
        match (loss, self) {
            (Loss::None, _) => false,
            (
                Loss::Bursts { enter, leave },
                Draw::Rtp {
                    stream, copy: 1, ..
                },
            ) => {
                stream.bad = if stream.bad {
                    !stream.chain.chance(leave)
                } else {
                    stream.chain.chance(enter)
                };
                stream.bad
            }
            // Random loss; and a retransmission or a non-RTP datagram in a
            // burst phase, lost as often as the phase loses on average.
            (loss, draw) => draw.chance(loss.share(), 0),
        }
    }
}

/// Which way a relay's impairments apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Towards {
    /// Server → peer (what a player receives).
    Peer,
    /// Peer → server (what a publisher sends).
    Server,
}

impl Relay {
    /// A relay to `server` impairing what it sends the peer with `phases`
    /// (at least one), drawing from `seed`.
    pub async fn start(server: SocketAddr, phases: Vec<Phase>, seed: u64) -> Relay {
        Self::start_towards(server, phases, seed, Towards::Peer).await
    }

    /// [`Relay::start`], impairing the datagrams going `towards`.
    pub async fn start_towards(
        server: SocketAddr,
        phases: Vec<Phase>,
        seed: u64,
        towards: Towards,
    ) -> Relay {
        assert!(!phases.is_empty());
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let record = Arc::new(parking_lot::Mutex::new(Record::default()));
        let cut = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(run(
            socket,
            server,
            towards,
            phases,
            seed,
            record.clone(),
            cut.clone(),
        ));
        Relay {
            addr,
            record,
            cut,
            task,
        }
    }

    /// From now on, drop everything both ways: the peer is gone, without
    /// a goodbye, as far as the server can tell.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    /// The fates of RTP stream `ssrc`, by sequence number.
    pub fn fates(&self, ssrc: u32) -> BTreeMap<u16, Fate> {
        self.record
            .lock()
            .fates
            .iter()
            .filter(|((s, _), _)| *s == ssrc)
            .map(|((_, seq), f)| (*seq, *f))
            .collect()
    }

    /// Copies beyond the first the server sent, over every stream: its
    /// retransmissions to this peer.
    pub fn resent(&self) -> u64 {
        let rec = self.record.lock();
        rec.fates.values().map(|f| u64::from(f.sent - 1)).sum()
    }

    /// Distinct RTP packets the server sent, over every stream.
    pub fn distinct(&self) -> u64 {
        self.record.lock().fates.len() as u64
    }

    pub fn counts(&self) -> Counts {
        self.record.lock().counts
    }

    pub fn phase(&self) -> usize {
        self.record.lock().phase
    }
}

async fn run(
    socket: UdpSocket,
    server: SocketAddr,
    towards: Towards,
    phases: Vec<Phase>,
    seed: u64,
    record: Arc<parking_lot::Mutex<Record>>,
    cut: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 2048];
    let mut peer: Option<SocketAddr> = None;
    let mut rng = Rng(seed);
    // The seed spread over all 64 bits, so that nearby seeds draw apart.
    let mixed = Rng(seed).next();
    let mut streams: HashMap<u32, Stream> = HashMap::new();
    // When the latest datagram leaves: jitter keeps order.
    let mut last_release = Instant::now();
    // Datagrams held back, by release time (then arrival order).
    let mut held: BinaryHeap<Reverse<Held>> = BinaryHeap::new();
    let mut order = 0u64;
    // First copies of RTP packets in the current phase.
    let mut in_phase = 0u32;
    loop {
        let next = held.peek().map(|Reverse((at, ..))| *at);
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let Ok((len, from)) = r else { return };
                let data = &buf[..len];
                if cut.load(Ordering::Relaxed) {
                    continue;
                }
                if from != server {
                    peer = Some(from);
                }
                let to = if from == server { peer } else { Some(server) };
                let Some(to) = to else { continue };
                if (from == server) != (towards == Towards::Peer) {
                    let _ = socket.send_to(data, to).await;
                    continue;
                }
                let now = Instant::now();
                // What to do with it, decided under the lock (not held
                // across a send).
                let plan = {
                let mut rec = record.lock();
                let phase = rec.phase;
                let imp = phases[phase].impairment;
                rec.counts.datagrams += 1;
                // RTP bookkeeping, and the phase clock.
                let key = rtp_key(data);
                let mut copy = 0;
                if let Some(key) = key {
                    let fate = rec.fates.entry(key).or_insert(Fate { phase, ..Fate::default() });
                    fate.sent += 1;
                    copy = fate.sent;
                    if copy == 1 {
                        in_phase += 1;
                        if in_phase >= phases[phase].packets && phase + 1 < phases.len() {
                            rec.phase += 1;
                            in_phase = 0;
                        }
                    }
                }
                let mut draw = match key {
                    Some((ssrc, seq)) => {
                        let payload_type = data[1] & 0x7F;
                        let stream = streams.entry(ssrc).or_insert_with(|| Stream {
                            payload_type,
                            first: seq,
                            chain: Rng(mixed ^ u64::from(payload_type)),
                            bad: false,
                        });
                        Draw::Rtp {
                            offset: seq.wrapping_sub(stream.first),
                            stream,
                            seed: mixed,
                            copy,
                        }
                    }
                    None => Draw::Other(&mut rng),
                };
                let lost = draw.lost(imp.loss);
                let delay = imp.jitter.mul_f64(draw.unit(1));
                let reordered = draw.chance(imp.reorder, 2);
                let copies = if draw.chance(imp.duplicate, 3) { 2 } else { 1 };
                if let Some(fate) = key.and_then(|k| rec.fates.get_mut(&k)) {
                    if copy == 1 {
                        fate.first_lost = lost;
                    }
                    if !lost {
                        fate.passed += copies;
                    }
                }
                if lost {
                    rec.counts.dropped += 1;
                    None
                } else {
                // Jitter keeps order: nothing leaves before the one before it.
                let mut at = (now + delay).max(last_release);
                last_release = at;
                rec.counts.delayed += u64::from(delay > Duration::ZERO);
                if reordered {
                    at += imp.reorder_by;
                    rec.counts.reordered += 1;
                }
                rec.counts.duplicated += u64::from(copies == 2);
                Some((at, copies))
                }
                };
                let Some((at, copies)) = plan else { continue };
                for _ in 0..copies {
                    if at <= now && held.is_empty() {
                        let _ = socket.send_to(data, to).await;
                    } else {
                        order += 1;
                        held.push(Reverse((at, order, to, data.to_vec())));
                    }
                }
            }
            () = sleep_until(next), if next.is_some() => {
                let now = Instant::now();
                while held.peek().is_some_and(|Reverse((at, ..))| *at <= now) {
                    let Some(Reverse((_, _, to, data))) = held.pop() else { break };
                    if !cut.load(Ordering::Relaxed) {
                        let _ = socket.send_to(&data, to).await;
                    }
                }
            }
        }
    }
}

/// A datagram held back: when it leaves, its arrival order, where to.
type Held = (Instant, u64, SocketAddr, Vec<u8>);

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// SSRC and sequence number of `data` if it is RTP.
fn rtp_key(data: &[u8]) -> Option<(u32, u16)> {
    (is_rtp_or_rtcp(data) && !is_rtcp(data)).then(|| {
        (
            u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
            u16::from_be_bytes([data[2], data[3]]),
        )
    })
}
