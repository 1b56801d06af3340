//! Player egress: how each forwarded packet leaves a worker.
//!
//! A player leg starts on `rtc`'s path (its pipeline protects the packet and
//! `poll_write` hands it back) while its [`Verifier`] compares what `rtc`
//! produced with our own protection under the connection's captured master
//! keys. Once verified the leg is on the **fast path**: the router's
//! rewritten header and the shared payload are written straight into the
//! send queue's buffer and protected there (one payload copy, no
//! allocation), and `rtc` never sees that SSRC's RTP again (GCM nonces must
//! not repeat). A leg that fails verification stays on `rtc`'s path for
//! good. `rtc` keeps ICE, DTLS and all RTCP; sender reports for every leg
//! (either path) are ours ([`SenderClock`]), sent through the leg's
//! `RTCRtpSender`. A player whose selected pair is ICE-TCP gets the same
//! protection, its packets framed on its TCP connection instead
//! ([`FastLeg::send_tcp`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::rtp::header::Header;
use rtc::sansio::Protocol;
use rtc::shared::marshal::Unmarshal;
use stream_router::{Outgoing, Upstream};

use super::batch::SendQueue;
use super::fast_path::{Fallback, Verdict, Verifier};
use super::relay::Command;
use super::sender_report::SenderClock;
use super::srtp::{KeyCapture, MasterKey, Profile, Protector, Rollover};
use super::twcc;
use super::worker::{drain, guarded, Origin, Peer, Role, Worker};

/// How often a leg sends a sender report (as `rtc`'s interceptor did).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Queued datagrams from which the fast path sends a batch right away
/// instead of at the end of the loop turn.
const SEND_EARLY: usize = 128;

/// RTP packets handed to a connection's `rtc` before its output is
/// drained. `rtc` moves what was written since the last `poll_write`
/// through its pipeline one handler at a time, and each of its ~10
/// handler queues grows to that batch and keeps the size (≈ 450 bytes a
/// message); 4 is the smallest capacity those queues have anyway. A turn's
/// worth of a keyframe written at once (30+ packets) left every player on
/// `rtc`'s path with 16–64-message queues: 70–280 KiB per connection.
pub const RTC_WRITE_BATCH: usize = 4;

/// Packets a leg sends through `rtc` while no master key is captured yet
/// before it gives up on the fast path.
const KEY_WAIT: u32 = 64;

/// Which path a leg's RTP takes.
pub(crate) enum Path {
    /// Through `rtc`; `None` until the first packet after connecting, then
    /// its verification (pending, or failed for good).
    Rtc(Option<Box<Verifier>>),
    /// Protected by us, written in place into the send queue.
    Fast(Box<FastLeg>),
}

/// A leg on the fast path: its verified protection and the rollover
/// counter of its SSRC, continued from the packets `rtc` sent.
pub struct FastLeg {
    profile: Profile,
    protector: Protector,
    rollover: Rollover,
}

impl FastLeg {
    pub fn new(profile: Profile, protector: Protector, rollover: Rollover) -> Self {
        FastLeg {
            profile,
            protector,
            rollover,
        }
    }

    /// Write `out` (header, then payload: its one copy) into `sends` for
    /// `to` and protect it there; false if it could not be.
    #[inline]
    pub fn send(&mut self, sends: &mut SendQueue, to: SocketAddr, out: &Outgoing<'_>) -> bool {
        let roc = self.rollover.next(out.sequence_number);
        let (h, p) = (out.header.len(), out.payload.len());
        let len = h + p;
        let protector = &self.protector;
        sends.push_with(to, len + self.profile.tag_len(), |buf| {
            buf[..h].copy_from_slice(out.header);
            buf[h..len].copy_from_slice(out.payload);
            if let Some(v) = out.vp8 {
                v.apply(&mut buf[h..len]);
            }
            protector.protect(buf, len, h, roc).ok()
        })
    }

    /// [`FastLeg::send`] for a player whose selected pair is ICE-TCP: the
    /// packet is written after room for its RFC 4571 prefix, protected
    /// there and queued on its connection to `to` (one buffer; a
    /// connection that cannot take it is closed, see `worker/tcp.rs`).
    pub(crate) fn send_tcp(
        &mut self,
        links: &mut Vec<super::worker::TcpLink>,
        to: SocketAddr,
        out: &Outgoing<'_>,
    ) -> bool {
        use super::tcp_framing::{MAX_FRAME_LEN, PREFIX_LEN};
        let roc = self.rollover.next(out.sequence_number);
        let (h, p) = (out.header.len(), out.payload.len());
        let len = h + p;
        let mut buf = vec![0u8; PREFIX_LEN + len + self.profile.tag_len()];
        let body = &mut buf[PREFIX_LEN..];
        body[..h].copy_from_slice(out.header);
        body[h..len].copy_from_slice(out.payload);
        if let Some(v) = out.vp8 {
            v.apply(&mut body[h..len]);
        }
        let n = match self.protector.protect(body, len, h, roc) {
            Ok(n) if n > 0 && n <= body.len() && n <= MAX_FRAME_LEN => n,
            _ => return false,
        };
        // n <= MAX_FRAME_LEN < u16::MAX: the cast is exact.
        buf[..PREFIX_LEN].copy_from_slice(&(n as u16).to_be_bytes());
        buf.truncate(PREFIX_LEN + n);
        super::worker::send_tcp_framed(links, to, buf.into())
    }
}

/// One leg's egress state.
pub(crate) struct LegEgress {
    pub path: Path,
    pub clock: SenderClock,
    pub last_report: Option<Instant>,
    /// Packets it handed to `rtc`.
    pub rtc_sent: u32,
}

impl LegEgress {
    pub fn new(ssrc: u32, clock_rate: u32, now: Instant) -> Self {
        LegEgress {
            path: Path::Rtc(None),
            clock: SenderClock::new(ssrc, clock_rate, now, SystemTime::now()),
            last_report: None,
            rtc_sent: 0,
        }
    }
}

/// Egress counters (cumulative, or one loop turn's before they are added
/// to the media plane's totals).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EgressStats {
    /// RTP packets written and protected by the fast path.
    pub fast_packets: u64,
    /// RTP packets handed to `rtc` (verifying, fallback, or fast path off).
    pub rtc_packets: u64,
    /// Fast-path packets that could not be protected (not expected).
    pub fast_failed: u64,
    /// Legs switched to the fast path, AES-128-GCM…
    pub legs_verified_gcm: u64,
    /// …and AES-CM-128 with HMAC-SHA1-80.
    pub legs_verified_cm: u64,
    /// Legs that stay on `rtc`'s path: our bytes differed from `rtc`'s…
    pub legs_mismatch: u64,
    /// …the negotiated profile is not one we protect…
    pub legs_unknown_profile: u64,
    /// …no master key was captured…
    pub legs_no_keys: u64,
    /// …or too few of its first packets could be compared.
    pub legs_undecided: u64,
    /// Sender reports sent for player legs.
    pub sender_reports: u64,
    /// Bandwidth probes (`probe.rs`) that proved their rate, and failed.
    pub probes_proven: u64,
    pub probes_failed: u64,
}

impl EgressStats {
    fn fallback(&mut self, why: Fallback) {
        match why {
            Fallback::Mismatch => self.legs_mismatch += 1,
            Fallback::UnknownProfile => self.legs_unknown_profile += 1,
            Fallback::NoKeys => self.legs_no_keys += 1,
            Fallback::Undecided => self.legs_undecided += 1,
        }
    }
}

/// The media plane's egress totals, added to by every worker once per loop
/// turn in which something changed.
#[derive(Default)]
pub(crate) struct EgressTotals([AtomicU64; 12]);

impl EgressTotals {
    fn fields(s: &EgressStats) -> [u64; 12] {
        [
            s.fast_packets,
            s.rtc_packets,
            s.fast_failed,
            s.legs_verified_gcm,
            s.legs_verified_cm,
            s.legs_mismatch,
            s.legs_unknown_profile,
            s.legs_no_keys,
            s.legs_undecided,
            s.sender_reports,
            s.probes_proven,
            s.probes_failed,
        ]
    }

    pub fn add(&self, turn: &EgressStats) {
        for (total, n) in self.0.iter().zip(Self::fields(turn)) {
            if n > 0 {
                total.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    pub fn get(&self) -> EgressStats {
        let v: [u64; 12] = std::array::from_fn(|i| self.0[i].load(Ordering::Relaxed));
        EgressStats {
            fast_packets: v[0],
            rtc_packets: v[1],
            fast_failed: v[2],
            legs_verified_gcm: v[3],
            legs_verified_cm: v[4],
            legs_mismatch: v[5],
            legs_unknown_profile: v[6],
            legs_no_keys: v[7],
            legs_undecided: v[8],
            sender_reports: v[9],
            probes_proven: v[10],
            probes_failed: v[11],
        }
    }
}

/// The captured master keys a leg verifies with; `corrupt` (a test hook)
/// spoils them, so that verification must fail.
fn leg_keys(capture: &KeyCapture, corrupt: bool) -> Vec<MasterKey> {
    // 14-byte salts; AES-GCM reads the first 12.
    let mut keys = capture.master_keys(Profile::AesCm128HmacSha1_80);
    if corrupt {
        for k in &mut keys {
            k.key[0] ^= 0x5a;
        }
    }
    keys
}

/// An `rtc` packet from a router delivery (the `rtc` path only: it parses
/// the header the router wrote, allocating its extension list).
/// A padding packet goes with an empty payload: `rtc` writes the padding
/// itself (4 bytes) when the header says so, after any payload it has.
fn rtc_packet(out: &Outgoing<'_>) -> Option<rtc::rtp::Packet> {
    let mut header = out.header;
    let header = Header::unmarshal(&mut header).ok()?;
    let payload = match out.padding {
        true => bytes::Bytes::new(),
        false => sent_payload(out),
    };
    Some(rtc::rtp::Packet { header, payload })
}

/// The payload as sent: the publisher's, or (VP8 with rewritten picture
/// numbers) a patched copy (the `rtc` path only; the fast path patches its
/// send buffer).
fn sent_payload(out: &Outgoing<'_>) -> bytes::Bytes {
    match out.vp8 {
        Some(v) => {
            let mut p = out.payload.to_vec();
            v.apply(&mut p);
            p.into()
        }
        None => out.payload.clone(),
    }
}

impl Worker {
    /// Move router output into the players' legs (fast path or `rtc`) and
    /// keyframe requests into the publishers'.
    pub(super) fn pump_router(&mut self, now: Instant) {
        let Worker {
            router,
            downtracks,
            peers,
            sends,
            socket,
            written,
            stamped,
            panicked,
            egress,
            #[cfg(debug_assertions)]
            corrupt_key_stream,
            ..
        } = self;
        router.drain_output(|dt, out| {
            let Some(&(id, leg)) = downtracks.get(&dt) else {
                return;
            };
            let Some(peer) = peers.get_mut(&id) else {
                return;
            };
            let Peer {
                pc,
                role: Role::Player { legs, bwe },
                capture,
                key,
                send_to,
                send_tcp,
                tcp,
                connected: true,
                unsent,
                ..
            } = peer
            else {
                return;
            };
            let Some(play) = legs.get_mut(leg) else {
                return;
            };
            // Every packet carries its transport-wide sequence number
            // when the player negotiated it (its header stamped once, here).
            let out = match bwe.bwe.ext_id {
                Some(ext_id) => {
                    let size = out.header.len() + twcc::added_len(out.header) + out.payload.len();
                    let seq = bwe.bwe.on_sent(out.ssrc, out.sequence_number, size, now);
                    match twcc::stamp(out.header, ext_id, seq, stamped) {
                        Some(n) => Outgoing {
                            header: &stamped[..n],
                            ..out
                        },
                        None => out,
                    }
                }
                None => out,
            };
            let e = &mut play.egress;
            // Padding is no media: not in the sender reports' counts.
            if !out.padding {
                e.clock
                    .on_sent(out.sequence_number, out.timestamp, out.payload.len(), now);
            }
            let verifier = match &mut e.path {
                Path::Fast(fast) => {
                    let sent = match *send_to {
                        Some(to) if *send_tcp => fast.send_tcp(tcp, to, &out),
                        Some(to) => fast.send(sends, to, &out),
                        None => false,
                    };
                    match sent {
                        true => egress.fast_packets += 1,
                        false => egress.fast_failed += 1,
                    }
                    // A long fan-out starts leaving before it is complete.
                    sends.send_ready(socket, SEND_EARLY);
                    return;
                }
                Path::Rtc(verifier) => verifier,
            };
            if verifier.is_none() {
                #[cfg(debug_assertions)]
                let corrupt = corrupt_key_stream.as_deref() == Some(&*key.stream_id);
                #[cfg(not(debug_assertions))]
                let corrupt = {
                    let _ = key;
                    false
                };
                let keys = capture.as_deref().map(|c| leg_keys(c, corrupt));
                // Keys are captured when DTLS completes; give them a few
                // packets' time before concluding there are none.
                let wait = keys.as_ref().is_some_and(|k| k.is_empty()) && e.rtc_sent < KEY_WAIT;
                if let Some(keys) = keys.filter(|_| !wait) {
                    let v = Verifier::new(keys);
                    if let Verdict::Fallback(why) = v.verdict() {
                        egress.fallback(why);
                    }
                    *verifier = Some(Box::new(v));
                }
            }
            let Some(packet) = rtc_packet(&out) else {
                return;
            };
            if let Some(v) = verifier.as_mut().filter(|_| !out.padding) {
                v.sent_via_rtc(out.sequence_number, out.header, packet.payload.clone());
            }
            // `rtc` routes an outgoing packet by its SSRC and ignores the
            // track id here, so an empty (unallocated) one saves a String
            // per packet per player.
            let msg = TaggedRTCMessage {
                now,
                message: RTCMessage::RtpPacket(String::new(), packet),
            };
            if guarded(|| pc.handle_write(msg)).is_err() {
                panicked.push(id);
                return;
            }
            egress.rtc_packets += 1;
            e.rtc_sent = e.rtc_sent.saturating_add(1);
            written.push(id);
            *unsent += 1;
            if usize::from(*unsent) >= RTC_WRITE_BATCH
                && guarded(|| drain(peer, sends, egress)).is_err()
            {
                panicked.push(id);
            }
        });
        while let Some((track, Upstream::Pli { media_ssrc })) = self.router.poll_upstream(now) {
            match self.router_tracks.get(&track) {
                Some(Origin::Publisher(id, t)) => {
                    let (id, t) = (*id, *t);
                    self.send_pli(id, t, media_ssrc, now);
                }
                Some(Origin::Relayed {
                    key,
                    kind,
                    layer,
                    from,
                    publisher,
                    ..
                }) => {
                    let cmd = Command::RelayPli {
                        key: key.clone(),
                        publisher: *publisher,
                        kind: *kind,
                        layer: *layer,
                    };
                    self.shared.command(*from, cmd);
                }
                None => {}
            }
        }
    }

    /// Send the sender reports that are due, for every leg of every
    /// connected player.
    pub(super) fn send_reports(&mut self, now: Instant) {
        for (id, peer) in self.peers.iter_mut() {
            if !peer.connected {
                continue;
            }
            let Role::Player { legs, .. } = &mut peer.role else {
                continue;
            };
            let mut sent = false;
            for play in legs.iter_mut() {
                let e = &mut play.egress;
                if e.last_report.is_some_and(|t| now < t + REPORT_INTERVAL) {
                    continue;
                }
                let Some(report) = e.clock.report(now) else {
                    continue;
                };
                e.last_report = Some(now);
                let pc = &mut peer.pc;
                let sender_id = play.leg.sender_id;
                let wrote = guarded(|| {
                    if let Some(mut sender) = pc.rtp_sender(sender_id) {
                        let _ = sender.write_rtcp(now, vec![Box::new(report)]);
                    }
                });
                if wrote.is_err() {
                    self.panicked.push(*id);
                    break;
                }
                self.egress.sender_reports += 1;
                sent = true;
            }
            if sent {
                self.dirty.push(*id);
            }
        }
    }
}

/// What `rtc` produced for a player: remember where its RTP and RTCP go
/// (the fast path sends there too) and, while a leg verifies, compare its
/// RTP with ours; a verified leg switches to the fast path here.
pub(crate) fn observe_rtc_output(
    peer: &mut Peer,
    datagram: &[u8],
    to: SocketAddr,
    tcp: bool,
    egress: &mut EgressStats,
) {
    // RTP and RTCP (RFC 7983: first byte 128..=191) go to the selected
    // pair; STUN answers go wherever a check came from.
    let Some(&first) = datagram.first() else {
        return;
    };
    if !(128..=191).contains(&first) {
        return;
    }
    peer.send_to = Some(to);
    peer.send_tcp = tcp;
    let Role::Player { legs, .. } = &mut peer.role else {
        return;
    };
    // RTCP packet types 192..=223 (RFC 5761 §4): not a leg's RTP.
    let (Some(&pt), Some(ssrc)) = (
        datagram.get(1),
        datagram
            .get(8..12)
            .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]])),
    ) else {
        return;
    };
    if (192..=223).contains(&pt) {
        return;
    }
    let Some(play) = legs.iter_mut().find(|l| l.leg.ssrc == ssrc) else {
        return;
    };
    let Path::Rtc(Some(v)) = &mut play.egress.path else {
        return;
    };
    if v.verdict() != Verdict::Pending {
        return; // decided: counted once, when it was
    }
    match v.observe(datagram) {
        Verdict::Pending => {}
        Verdict::Verified => {
            let rollover = v.rollover();
            if let Some((profile, protector)) = v.take_protector() {
                play.egress.path = Path::Fast(Box::new(FastLeg::new(profile, protector, rollover)));
                match profile {
                    Profile::AeadAes128Gcm => egress.legs_verified_gcm += 1,
                    Profile::AesCm128HmacSha1_80 => egress.legs_verified_cm += 1,
                }
                tracing::debug!(ssrc, ?profile, "player leg on the fast path");
            }
        }
        Verdict::Fallback(why) => {
            egress.fallback(why);
            tracing::info!(ssrc, ?why, "player leg stays on rtc's SRTP path");
        }
    }
}
