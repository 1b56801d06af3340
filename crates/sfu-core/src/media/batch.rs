//! Batched UDP I/O. Receives take up to [`RECV_BATCH`] datagrams per
//! `recvmmsg(2)` call. Sends: everything a worker's connections want to send in one
//! loop turn goes out with `sendmmsg(2)`, up to [`BATCH`] messages per system
//! call, instead of one `sendto` per packet (which dominated the server's CPU
//! per forwarded packet).
//!
//! With UDP generic segmentation offload (GSO, Linux ≥ 4.18) a run of
//! datagrams queued back to back for the same address — a player's share of
//! a video frame — is one message: the kernel walks its socket, routing and
//! `sk_buff` path once for the whole run and cuts it into datagrams at the
//! end (or the NIC does). A run is datagrams of one size, except that the
//! last may be shorter; it is at most [`MAX_SEGMENTS`] datagrams and
//! [`MAX_GSO_BYTES`]. If the kernel refuses GSO the queue falls back to one
//! datagram per message for good, without dropping anything.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Instant;

use bytes::BytesMut;
use socket2::SockAddr;
use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::latency::Latency;

/// Messages per `sendmmsg` call.
pub const BATCH: usize = 64;
/// Datagrams per GSO message (the kernel's limit is 64 on older kernels).
pub const MAX_SEGMENTS: usize = 64;
/// Bytes per GSO message: below the 64 KiB limit of one IP packet, headers
/// included.
pub const MAX_GSO_BYTES: usize = 60_000;
/// `iovec`s per `sendmmsg` call (one per datagram).
const MAX_IOVECS: usize = 1024;
/// Linux `SOL_UDP` / `UDP_SEGMENT` (`<linux/udp.h>`).
const SOL_UDP: libc::c_int = 17;
const UDP_SEGMENT: libc::c_int = 103;

/// One queued datagram: a buffer `rtc` produced, or bytes written in place
/// into the queue's arena (the egress fast path).
struct Datagram {
    to: SocketAddr,
    addr: SockAddr,
    data: Data,
}

enum Data {
    Owned(BytesMut),
    /// `arena[start..start + len]`.
    Arena {
        start: usize,
        len: usize,
    },
}

impl Datagram {
    fn len(&self) -> usize {
        match &self.data {
            Data::Owned(b) => b.len(),
            Data::Arena { len, .. } => *len,
        }
    }

    fn bytes<'a>(&'a self, arena: &'a [u8]) -> &'a [u8] {
        match &self.data {
            Data::Owned(b) => b,
            Data::Arena { start, len } => arena.get(*start..*start + *len).unwrap_or_default(),
        }
    }
}

/// Arena bytes kept between turns; a turn that needed more gives the excess
/// back once a quieter turn follows.
const ARENA_KEEP: usize = 4 << 20;

/// One message of a `sendmmsg` call: datagrams `start..start + count` of the
/// queue, cut into `segment`-byte datagrams by the kernel when `count > 1`.
#[derive(Clone, Copy, Default)]
struct Message {
    start: usize,
    count: usize,
    segment: usize,
}

/// Datagrams queued for the next [`SendQueue::flush`].
pub struct SendQueue {
    datagrams: Vec<Datagram>,
    /// Bytes of the datagrams written in place ([`SendQueue::push_with`]),
    /// back to back. Its length only grows (up to [`ARENA_KEEP`] kept), so
    /// it is zeroed once, not per datagram; `used` is what this turn wrote.
    arena: Vec<u8>,
    used: usize,
    gso: bool,
    /// Messages and datagrams handed to the kernel so far, for tests and
    /// logs.
    stats: SendStats,
    /// When this turn's input arrived ([`SendQueue::since`]), and how long
    /// each datagram sent waited from then.
    origin: Option<Instant>,
    latency: Latency,
    /// Datagrams before this one were sent already ([`SendQueue::send_ready`]).
    next: usize,
}

/// Counters of a [`SendQueue`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendStats {
    pub calls: u64,
    pub messages: u64,
    pub datagrams: u64,
}

impl Default for SendQueue {
    fn default() -> Self {
        Self::new(true)
    }
}

impl SendQueue {
    /// A queue that uses GSO when `gso` is true and the kernel accepts it.
    pub fn new(gso: bool) -> Self {
        Self {
            datagrams: Vec::new(),
            arena: Vec::new(),
            used: 0,
            gso,
            stats: SendStats::default(),
            origin: None,
            latency: Latency::default(),
            next: 0,
        }
    }

    pub fn push(&mut self, to: SocketAddr, data: BytesMut) {
        self.datagrams.push(Datagram {
            to,
            addr: SockAddr::from(to),
            data: Data::Owned(data),
        });
    }

    /// Queue a datagram of at most `max` bytes written in place: `write`
    /// gets that many bytes of the queue's own buffer (old contents, not
    /// zeroed) and returns how many it wrote, or `None` to queue nothing.
    /// No allocation once the buffer has grown to a turn's worth.
    pub fn push_with(
        &mut self,
        to: SocketAddr,
        max: usize,
        write: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> bool {
        let start = self.used;
        let end = start + max;
        if self.arena.len() < end {
            self.arena.resize(end, 0);
        }
        let Some(len) = write(&mut self.arena[start..end]).filter(|&n| n > 0 && n <= max) else {
            return false;
        };
        self.used = start + len;
        self.datagrams.push(Datagram {
            to,
            addr: SockAddr::from(to),
            data: Data::Arena { start, len },
        });
        true
    }

    /// Datagrams queued and not sent yet.
    pub fn len(&self) -> usize {
        self.datagrams.len() - self.next
    }

    /// The next flush sends what input that arrived at `at` produced (the
    /// earliest of a turn): each datagram's wait from then is recorded.
    pub fn since(&mut self, at: Instant) {
        self.origin = Some(self.origin.map_or(at, |o| o.min(at)));
    }

    /// The waits recorded since the last call.
    pub fn take_latency(&mut self) -> Latency {
        std::mem::take(&mut self.latency)
    }

    /// Drop everything queued without sending it (benchmarks).
    pub fn clear(&mut self) {
        self.datagrams.clear();
        self.used = 0;
        self.next = 0;
    }

    /// Send full batches now, without waiting (a long fan-out need not wait
    /// for its end to start leaving): while at least `threshold` datagrams
    /// are queued, one `sendmmsg` call each; stops at a full socket buffer
    /// or an error, which the next [`SendQueue::flush`] deals with (as it
    /// does before tokio has seen the socket writable once).
    pub fn send_ready(&mut self, socket: &UdpSocket, threshold: usize) {
        let mut plan = [Message::default(); BATCH];
        while self.len() >= threshold.max(1) {
            let planned = self.plan(self.next, &mut plan);
            let messages = &plan[..planned];
            match self.try_send(socket, messages) {
                Ok(sent) => self.sent(messages, sent),
                Err(_) => return,
            }
        }
    }

    /// One `sendmmsg` call for the planned `messages`, if tokio knows the
    /// socket writable.
    fn try_send(&self, socket: &UdpSocket, messages: &[Message]) -> io::Result<usize> {
        socket.try_io(Interest::WRITABLE, || {
            send_many(socket, &self.datagrams, &self.arena, messages)
        })
    }

    /// Account for `sent` of the planned `messages` having gone out.
    fn sent(&mut self, messages: &[Message], sent: usize) {
        let sent = sent.clamp(1, messages.len());
        let last = messages[sent - 1];
        let datagrams = (last.start + last.count - self.next) as u64;
        self.stats.calls += 1;
        self.stats.messages += sent as u64;
        self.stats.datagrams += datagrams;
        if let Some(origin) = self.origin {
            self.latency.record(origin.elapsed(), datagrams);
        }
        self.next = last.start + last.count;
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether GSO is (still) in use.
    pub fn gso(&self) -> bool {
        self.gso
    }

    pub fn stats(&self) -> SendStats {
        self.stats
    }

    /// Send everything queued. A datagram the kernel refuses for another
    /// reason than a full buffer is dropped (UDP is lossy anyway); a full
    /// buffer waits for the socket to become writable.
    pub async fn flush(&mut self, socket: &UdpSocket) {
        let mut plan = [Message::default(); BATCH];
        while self.next < self.datagrams.len() {
            let planned = self.plan(self.next, &mut plan);
            let messages = &plan[..planned];
            match self.try_send(socket, messages) {
                Ok(sent) => self.sent(messages, sent),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if socket.writable().await.is_err() {
                        break;
                    }
                }
                Err(e) if self.gso && messages[0].count > 1 && gso_refused(&e) => {
                    // Retry the same datagrams one per message.
                    tracing::warn!("UDP GSO refused ({e}); sending without it");
                    self.gso = false;
                }
                Err(e) => {
                    // The first message failed: skip its datagrams.
                    tracing::trace!("sendmmsg: {e}");
                    self.next = messages[0].start + messages[0].count;
                }
            }
        }
        self.datagrams.clear();
        self.next = 0;
        self.origin = None;
        if self.arena.len() > ARENA_KEEP && self.used <= ARENA_KEEP {
            self.arena.truncate(ARENA_KEEP);
            self.arena.shrink_to_fit();
        }
        self.used = 0;
    }

    /// Group the datagrams from `next` on into at most [`BATCH`] messages;
    /// returns how many.
    fn plan(&self, mut next: usize, plan: &mut [Message; BATCH]) -> usize {
        let mut iovecs = 0;
        let mut planned = 0;
        while planned < BATCH && next < self.datagrams.len() && iovecs < MAX_IOVECS {
            let first = &self.datagrams[next];
            let segment = first.len();
            let mut count = 1;
            let mut bytes = segment;
            if self.gso {
                let limit = MAX_SEGMENTS.min(MAX_IOVECS - iovecs);
                while count < limit {
                    let Some(d) = self.datagrams.get(next + count) else {
                        break;
                    };
                    let len = d.len();
                    if d.to != first.to || len > segment || len == 0 || bytes + len > MAX_GSO_BYTES
                    {
                        break;
                    }
                    count += 1;
                    bytes += len;
                    if len < segment {
                        break; // only the last datagram may be shorter
                    }
                }
            }
            plan[planned] = Message {
                start: next,
                count,
                segment,
            };
            planned += 1;
            iovecs += count;
            next += count;
        }
        planned
    }
}

/// Whether a failed GSO send means the kernel or the device cannot do GSO
/// (as opposed to a problem with that one destination, such as no route).
fn gso_refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOPROTOOPT | libc::EMSGSIZE)
    )
}

/// Room for one `UDP_SEGMENT` control message, aligned for `cmsghdr`.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct SegmentCmsg([u8; 32]);

/// One `sendmmsg` call for `messages`; returns how many messages were sent.
fn send_many(
    socket: &UdpSocket,
    datagrams: &[Datagram],
    arena: &[u8],
    messages: &[Message],
) -> io::Result<usize> {
    let mut iovecs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; MAX_IOVECS];
    let mut cmsgs = [SegmentCmsg([0; 32]); BATCH];
    // SAFETY: mmsghdr is a plain C struct for which all-zero is a valid value.
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    let n = messages.len().min(BATCH);
    let mut iov = 0;
    for (i, m) in messages.iter().take(n).enumerate() {
        let first = iov;
        for d in &datagrams[m.start..m.start + m.count] {
            let bytes = d.bytes(arena);
            iovecs[iov] = libc::iovec {
                iov_base: bytes.as_ptr() as *mut libc::c_void,
                iov_len: bytes.len(),
            };
            iov += 1;
        }
        let hdr = &mut msgs[i].msg_hdr;
        let addr = &datagrams[m.start].addr;
        hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
        hdr.msg_namelen = addr.len();
        hdr.msg_iov = &mut iovecs[first];
        hdr.msg_iovlen = m.count;
        if m.count > 1 {
            let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as usize;
            hdr.msg_control = cmsgs[i].0.as_mut_ptr() as *mut libc::c_void;
            hdr.msg_controllen = space;
            // SAFETY: msg_control points at 32 aligned bytes, enough for
            // one cmsghdr with a u16 payload (CMSG_SPACE(2) = 24).
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(hdr);
                (*cmsg).cmsg_level = SOL_UDP;
                (*cmsg).cmsg_type = UDP_SEGMENT;
                (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as usize;
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut u16, m.segment as u16);
            }
        }
    }
    // SAFETY: every msghdr points at iovecs, an address and a control
    // buffer that outlive the call; the kernel only reads them (and writes
    // msg_len).
    let r = unsafe { libc::sendmmsg(socket.as_raw_fd(), msgs.as_mut_ptr(), n as libc::c_uint, 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Datagrams per `recvmmsg` call.
pub const RECV_BATCH: usize = 32;
/// Largest datagram received whole (larger ones are truncated and then
/// refused by the connection's parsers).
const RECV_SIZE: usize = 2048;

/// Bytes of one receive call: a slot of [`RECV_SIZE`] per datagram.
const RECV_BYTES: usize = RECV_BATCH * RECV_SIZE;

/// Buffers for batched receives: one `recvmmsg(2)` call takes up to
/// [`RECV_BATCH`] datagrams from the socket, into slots of one buffer from
/// which each datagram is then split off as the `BytesMut` `rtc` takes —
/// no allocation or copy per datagram. `rtc` only reads a datagram (its
/// SRTP decrypts into a buffer of its own) and drops it, so by the next
/// call the buffer is usually free again and reclaimed in place; if some
/// datagram is still held, the next call gets a new buffer.
pub struct RecvBatch {
    chunk: BytesMut,
    /// Address of the buffer `chunk` was last allocated with (zeroed then,
    /// so all of its `RECV_BYTES` are initialized).
    base: usize,
    lens: [usize; RECV_BATCH],
    from: [Option<SocketAddr>; RECV_BATCH],
    count: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self {
            chunk: BytesMut::new(),
            base: 0,
            lens: [0; RECV_BATCH],
            from: [None; RECV_BATCH],
            count: 0,
        }
    }
}

impl RecvBatch {
    /// Receive what the socket holds, without waiting: `Ok(0)` when it is
    /// empty.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.count = 0;
        match socket.try_io(Interest::READABLE, || self.recv_many(socket)) {
            Ok(n) => {
                self.count = n;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// The datagrams of the last [`RecvBatch::recv`], with their senders,
    /// each split off the receive buffer (taken: a second call yields
    /// nothing).
    pub fn datagrams(&mut self) -> impl Iterator<Item = (SocketAddr, BytesMut)> + '_ {
        let count = std::mem::take(&mut self.count);
        (0..count).filter_map(move |i| {
            // Split every slot, used or not, to keep the next one aligned.
            let mut d = self.chunk.split_to(RECV_SIZE.min(self.chunk.len()));
            d.truncate(self.lens[i].min(RECV_SIZE));
            Some((self.from[i]?, d))
        })
    }

    /// Make `chunk` `RECV_BYTES` of initialized bytes to receive into.
    fn prepare(&mut self) {
        self.chunk.clear();
        self.chunk.reserve(RECV_BYTES);
        if self.chunk.as_ptr() as usize == self.base {
            // SAFETY: the buffer allocated (and zeroed) at `base` is ours
            // again; its first RECV_BYTES bytes were initialized then and
            // have only been written since.
            unsafe { self.chunk.set_len(RECV_BYTES) };
        } else {
            // A new buffer: a datagram of an earlier call still holds the
            // previous one (or this is the first call).
            self.chunk.resize(RECV_BYTES, 0);
            self.base = self.chunk.as_ptr() as usize;
        }
    }

    fn recv_many(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        // SAFETY: all-zero is a valid value of these plain C structs.
        let mut names: [libc::sockaddr_storage; RECV_BATCH] = unsafe { std::mem::zeroed() };
        let mut msgs: [libc::mmsghdr; RECV_BATCH] = unsafe { std::mem::zeroed() };
        let mut iovecs = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; RECV_BATCH];
        self.prepare();
        for (i, buf) in self.chunk.chunks_exact_mut(RECV_SIZE).enumerate() {
            iovecs[i] = libc::iovec {
                iov_base: buf.as_mut_ptr() as *mut libc::c_void,
                iov_len: RECV_SIZE,
            };
            let hdr = &mut msgs[i].msg_hdr;
            hdr.msg_name = &mut names[i] as *mut libc::sockaddr_storage as *mut libc::c_void;
            hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = &mut iovecs[i];
            hdr.msg_iovlen = 1;
        }
        // SAFETY: every msghdr points at a buffer, an iovec and an address
        // slot that live until the call returns.
        let r = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                msgs.as_mut_ptr(),
                RECV_BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = r as usize;
        for i in 0..n {
            self.lens[i] = msgs[i].msg_len as usize;
            self.from[i] = socket_addr(&names[i]);
        }
        Ok(n)
    }
}

/// The IPv4 or IPv6 address the kernel wrote into `name`.
fn socket_addr(name: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(name.ss_family) {
        libc::AF_INET => {
            // SAFETY: ss_family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large and aligned enough for it.
            let a =
                unsafe { &*(name as *const libc::sockaddr_storage as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a =
                unsafe { &*(name as *const libc::sockaddr_storage as *const libc::sockaddr_in6) };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn receive_all(receiver: &UdpSocket, count: usize) -> Vec<Vec<u8>> {
        let mut buf = [0u8; 2048];
        let mut got = Vec::new();
        for _ in 0..count {
            let (n, _) = receiver.recv_from(&mut buf).await.unwrap();
            got.push(buf[..n].to_vec());
        }
        got
    }

    fn datagram(i: usize, len: usize) -> BytesMut {
        let mut d = BytesMut::zeroed(len);
        d[..4].copy_from_slice(&(i as u32).to_be_bytes());
        d
    }

    #[tokio::test]
    async fn a_batch_arrives_whole_and_in_order() {
        for gso in [false, true] {
            let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let to = receiver.local_addr().unwrap();
            let mut queue = SendQueue::new(gso);
            for i in 0..150u32 {
                queue.push(to, BytesMut::from(&i.to_be_bytes()[..]));
            }
            assert_eq!(queue.len(), 150);
            queue.flush(&sender).await;
            assert!(queue.is_empty());
            let got = receive_all(&receiver, 150).await;
            for (i, d) in got.iter().enumerate() {
                assert_eq!(&d[..], &(i as u32).to_be_bytes());
            }
        }
    }

    /// Batches sent early and the rest at the flush: every datagram once,
    /// in order (160 of them: more would overflow the receiver's default
    /// buffer, since it reads only at the end).
    #[tokio::test]
    async fn early_batches_and_the_flush_send_each_datagram_once() {
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = receiver.local_addr().unwrap();
        let mut queue = SendQueue::new(true);
        // tokio tries a send only once it knows the socket is writable (a
        // worker's socket is, after its first flush).
        sender.writable().await.unwrap();
        for i in 0..160usize {
            queue.push_with(to, 64, |buf| {
                buf[..4].copy_from_slice(&(i as u32).to_be_bytes());
                Some(4 + i % 3)
            });
            queue.send_ready(&sender, 64);
            assert!(queue.len() < 64);
        }
        assert!(queue.stats().datagrams >= 64, "batches left early");
        queue.flush(&sender).await;
        assert!(queue.is_empty());
        assert_eq!(queue.stats().datagrams, 160);
        for (i, d) in receive_all(&receiver, 160).await.iter().enumerate() {
            assert_eq!(&d[..4], &(i as u32).to_be_bytes());
            assert_eq!(d.len(), 4 + i % 3);
        }
    }

    /// Datagrams written in place and buffers handed over interleave in
    /// one queue (and GSO runs) and arrive exactly as written; a writer
    /// that declines queues nothing; the arena is reused across turns.
    #[tokio::test]
    async fn in_place_and_owned_datagrams_interleave() {
        for gso in [false, true] {
            let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let to = receiver.local_addr().unwrap();
            let mut queue = SendQueue::new(gso);
            for turn in 0..2 {
                for i in 0..40usize {
                    if i % 3 == 0 {
                        queue.push(to, datagram(i, 100));
                    } else {
                        assert!(queue.push_with(to, 200, |buf| {
                            buf[..100].fill(0);
                            buf[..4].copy_from_slice(&(i as u32).to_be_bytes());
                            Some(100)
                        }));
                    }
                    assert!(!queue.push_with(to, 200, |_| None));
                }
                assert_eq!(queue.len(), 40);
                queue.flush(&sender).await;
                let got = receive_all(&receiver, 40).await;
                for (i, d) in got.iter().enumerate() {
                    assert_eq!(d, &datagram(i, 100)[..], "turn {turn} datagram {i}");
                }
            }
            assert!(queue.arena.len() <= 40 * 200);
        }
    }

    /// Frame bursts to several players, interleaved with small audio
    /// packets and a longer packet: each player gets exactly its datagrams,
    /// in order and at their own sizes, and GSO cut the call count.
    #[tokio::test]
    async fn gso_runs_split_back_into_the_same_datagrams() {
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut players = Vec::new();
        for _ in 0..3 {
            players.push(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        }
        // Per player: 6 video packets of 1041 bytes, one of 700, a 120-byte
        // audio packet, a 1100-byte packet, then 3 more of 1041.
        let sizes = [
            1041, 1041, 1041, 1041, 1041, 1041, 700, 120, 1100, 1041, 1041, 1041,
        ];
        let mut queue = SendQueue::new(true);
        for p in &players {
            let to = p.local_addr().unwrap();
            for (i, len) in sizes.iter().enumerate() {
                queue.push(to, datagram(i, *len));
            }
        }
        queue.flush(&sender).await;
        for p in &players {
            let got = receive_all(p, sizes.len()).await;
            for (i, d) in got.iter().enumerate() {
                assert_eq!(d.len(), sizes[i], "datagram {i}");
                assert_eq!(&d[..4], &(i as u32).to_be_bytes());
            }
        }
        let stats = queue.stats();
        assert_eq!(stats.datagrams, 36);
        // Per player: [6×1041, 700], [120], [1100, 1041], [1041, 1041].
        assert!(queue.gso(), "the kernel refused UDP GSO on loopback");
        assert_eq!(stats.messages, 12, "{stats:?}");
        assert_eq!(stats.calls, 1, "{stats:?}");
    }

    /// A destination the kernel refuses (broadcast without SO_BROADCAST:
    /// EACCES) loses its own datagrams only, and does not turn GSO off.
    #[tokio::test]
    async fn a_refused_destination_costs_only_its_own_datagrams() {
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = receiver.local_addr().unwrap();
        let mut queue = SendQueue::new(true);
        let refused: SocketAddr = "255.255.255.255:9".parse().unwrap();
        for i in 0..3 {
            queue.push(refused, datagram(i, 500));
        }
        for i in 0..3 {
            queue.push(to, datagram(i, 500));
        }
        queue.flush(&sender).await;
        let got = receive_all(&receiver, 3).await;
        for (i, d) in got.iter().enumerate() {
            assert_eq!(&d[..4], &(i as u32).to_be_bytes());
        }
        assert!(queue.gso(), "a refused destination turned GSO off");
        assert_eq!(queue.stats().datagrams, 3, "{:?}", queue.stats());
    }

    #[tokio::test]
    async fn recvmmsg_returns_each_datagram_with_its_sender() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = server.local_addr().unwrap();
        for i in 0..40u32 {
            let from = if i % 2 == 0 { &a } else { &b };
            from.send_to(&datagram(i as usize, 100 + i as usize), to)
                .await
                .unwrap();
        }
        let mut batch = RecvBatch::default();
        let mut got = Vec::new();
        while got.len() < 40 {
            server.readable().await.unwrap();
            batch.recv(&server).unwrap();
            got.extend(batch.datagrams().map(|(f, d)| (f, d.to_vec())));
        }
        assert_eq!(batch.recv(&server).unwrap(), 0, "nothing left");
        for (i, (from, d)) in got.iter().enumerate() {
            let sender = if i % 2 == 0 { &a } else { &b };
            assert_eq!(*from, sender.local_addr().unwrap());
            assert_eq!(d.len(), 100 + i);
            assert_eq!(&d[..4], &(i as u32).to_be_bytes());
        }
    }

    /// Datagrams are split off one receive buffer; the buffer is reclaimed
    /// in place once they are all dropped, and a datagram still held keeps
    /// its bytes while the next call receives into a new buffer.
    #[tokio::test]
    async fn the_receive_buffer_is_reused_once_its_datagrams_are_gone() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = server.local_addr().unwrap();
        let mut batch = RecvBatch::default();
        async fn receive(
            batch: &mut RecvBatch,
            (client, server, to): (&UdpSocket, &UdpSocket, SocketAddr),
            i: usize,
        ) -> BytesMut {
            client.send_to(&datagram(i, 300), to).await.unwrap();
            server.readable().await.unwrap();
            assert_eq!(batch.recv(server).unwrap(), 1);
            let got: Vec<_> = batch.datagrams().map(|(_, d)| d).collect();
            assert_eq!(got.len(), 1);
            assert_eq!(&got[0][..], &datagram(i, 300)[..]);
            got.into_iter().next().unwrap()
        }
        let io = (&client, &server, to);
        drop(receive(&mut batch, io, 0).await);
        let base = batch.base;
        drop(receive(&mut batch, io, 1).await);
        assert_eq!(batch.base, base, "reclaimed in place");
        let held = receive(&mut batch, io, 2).await;
        let again = receive(&mut batch, io, 3).await;
        assert_ne!(batch.base, base, "a new buffer while one is held");
        assert_eq!(
            &held[..],
            &datagram(2, 300)[..],
            "the held datagram is intact"
        );
        assert_eq!(&again[..], &datagram(3, 300)[..]);
    }
}
