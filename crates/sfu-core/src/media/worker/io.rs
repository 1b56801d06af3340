//! Packets into and out of a peer's `rtc` connection: a datagram or an
//! ICE-TCP frame goes in with the transport context `rtc` matches its
//! local candidate by (address and protocol); what `rtc` sends goes to the
//! UDP send queue or, on a TCP pair, framed to the peer's ICE-TCP link.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use room_signal::media::MediaId;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use super::super::batch::SendQueue;
use super::super::egress::{observe_rtc_output, EgressStats};
use super::{guarded, tcp, Peer, Role, TcpLink, Worker};

/// Queue what a connection's `rtc` wants to send (a player's output is
/// also looked at: see [`observe_rtc_output`]).
pub(crate) fn drain(peer: &mut Peer, sends: &mut SendQueue, egress: &mut EgressStats) {
    peer.unsent = 0;
    let player = matches!(peer.role, Role::Player { .. });
    while let Some(out) = peer.pc.poll_write() {
        if player {
            let tcp = out.transport.transport_protocol == TransportProtocol::TCP;
            observe_rtc_output(peer, &out.message, out.transport.peer_addr, tcp, egress);
        }
        let to = out.transport.peer_addr;
        match out.transport.transport_protocol {
            TransportProtocol::TCP => {
                if !tcp::send_on(&mut peer.tcp, to, &out.message) {
                    tracing::trace!(%to, "no ICE-TCP connection takes this packet: dropped");
                }
            }
            _ => sends.push(to, out.message),
        }
    }
}

/// Queue an RFC 4571 frame on the ICE-TCP connection of `links` to `to`
/// (see `tcp.rs`); false if none took it.
pub(crate) fn send_tcp_framed(links: &mut Vec<TcpLink>, to: SocketAddr, framed: Bytes) -> bool {
    tcp::send_framed(links, to, framed)
}

impl Worker {
    /// Hand one datagram (or ICE-TCP frame, `tcp`) to connection `id`.
    pub(super) fn feed(
        &mut self,
        id: MediaId,
        from: SocketAddr,
        tcp: bool,
        data: BytesMut,
        now: Instant,
    ) {
        // A peer whose handling panicked this turn is ended at its flush;
        // until then it gets nothing more (one panic per peer, not one per
        // datagram).
        if self.panicked.contains(&id) {
            return;
        }
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        // `rtc` matches a packet to its local candidate by address and
        // protocol: ICE-TCP frames carry the TCP candidate's.
        let (local_addr, transport_protocol) = match (tcp, self.tcp_local) {
            (true, Some(at)) => (at, TransportProtocol::TCP),
            _ => (self.local_addr, TransportProtocol::UDP),
        };
        let msg = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr,
                peer_addr: from,
                ecn: None,
                transport_protocol,
            },
            message: data,
        };
        // SRTP or SRTCP by its first byte (RFC 7983): media, as opposed to
        // STUN and DTLS.
        let media = msg.message.first().is_some_and(|b| (128..192).contains(b));
        let pc = &mut peer.pc;
        match guarded(|| pc.handle_read(msg)) {
            Ok(Err(e)) => tracing::trace!(media = id, "datagram refused: {e}"),
            Ok(Ok(())) => {
                if media {
                    peer.heard = Some(now);
                }
            }
            Err(()) => {
                self.panicked.push(id);
                return;
            }
        }
        if guarded(|| self.service(id, now)).is_err() {
            self.panicked.push(id);
        }
    }
}
