//! Sender reports for RTP sent outside `rtc` (the egress fast path of
//! issue 10): `rtc`'s sender-report interceptor only counts what goes
//! through it, so a player leg whose packets we protect ourselves keeps its
//! own counts and its RTP↔wall-clock mapping here (RFC 3550 §6.4.1), and
//! the report is sent through the leg's `RTCRtpSender`.
//!
//! The mapping is taken at the first packet of each frame that is new in
//! sequence order (a frame's later packets and retransmissions leave it
//! alone), and a report extrapolates the RTP clock from there to now.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtc::rtcp::sender_report::SenderReport;

/// Seconds from 1900-01-01 (NTP's epoch) to 1970-01-01.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A wall-clock time as a 64-bit NTP timestamp (32.32 fixed point).
pub fn ntp(wall: SystemTime) -> u64 {
    let since = wall.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// What one outgoing SSRC has sent, for its sender reports.
#[derive(Debug, Clone)]
pub struct SenderClock {
    ssrc: u32,
    clock_rate: u32,
    /// The monotonic and the wall clock at one moment, to map one to the other.
    anchor: (Instant, SystemTime),
    packets: u32,
    octets: u32,
    /// Highest sequence number sent, and the mapping: (RTP timestamp, when).
    last_seq: Option<u16>,
    mapping: Option<(u32, Instant)>,
}

impl SenderClock {
    pub fn new(ssrc: u32, clock_rate: u32, now: Instant, wall: SystemTime) -> Self {
        SenderClock {
            ssrc,
            clock_rate,
            anchor: (now, wall),
            packets: 0,
            octets: 0,
            last_seq: None,
            mapping: None,
        }
    }

    /// One RTP packet sent at `now`.
    pub fn on_sent(&mut self, seq: u16, timestamp: u32, payload_len: usize, now: Instant) {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self
            .octets
            .wrapping_add(u32::try_from(payload_len).unwrap_or(u32::MAX));
        let newer = self
            .last_seq
            .is_none_or(|last| matches!(seq.wrapping_sub(last), 1..0x8000));
        if !newer {
            return;
        }
        self.last_seq = Some(seq);
        if self.mapping.is_none_or(|(ts, _)| ts != timestamp) {
            self.mapping = Some((timestamp, now));
        }
    }

    /// The report for `now`, once a packet was sent.
    pub fn report(&self, now: Instant) -> Option<SenderReport> {
        let (ts, at) = self.mapping?;
        let elapsed = now.saturating_duration_since(at);
        let ticks = (elapsed.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000) as u32;
        let (anchor_now, anchor_wall) = self.anchor;
        let wall = if now >= anchor_now {
            anchor_wall + (now - anchor_now)
        } else {
            anchor_wall - (anchor_now - now)
        };
        Some(SenderReport {
            ssrc: self.ssrc,
            ntp_time: ntp(wall),
            rtp_time: ts.wrapping_add(ticks),
            packet_count: self.packets,
            octet_count: self.octets,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_counts_from_1900_in_32_32_fixed_point() {
        assert_eq!(
            ntp(UNIX_EPOCH + Duration::from_secs(1)),
            (NTP_UNIX_OFFSET + 1) << 32
        );
        assert_eq!(
            ntp(UNIX_EPOCH + Duration::from_millis(2_500)),
            ((NTP_UNIX_OFFSET + 2) << 32) | 0x8000_0000
        );
    }

    #[test]
    fn reports_extrapolate_from_the_latest_frame_start() {
        let t0 = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut c = SenderClock::new(42, 90_000, t0, wall);
        assert!(c.report(t0).is_none(), "nothing sent, nothing to report");
        // A frame of three packets at ts 9000, sent over 2 ms: the mapping
        // is its first packet's.
        c.on_sent(100, 9_000, 1_000, t0);
        c.on_sent(101, 9_000, 1_000, t0 + Duration::from_millis(1));
        c.on_sent(102, 9_000, 500, t0 + Duration::from_millis(2));
        // A retransmission of an older packet moves nothing but the counts.
        c.on_sent(90, 0, 700, t0 + Duration::from_millis(3));
        let r = c.report(t0 + Duration::from_millis(500)).unwrap();
        assert_eq!(r.ssrc, 42);
        assert_eq!(r.rtp_time, 9_000 + 45_000);
        assert_eq!(r.packet_count, 4);
        assert_eq!(r.octet_count, 3_200);
        assert_eq!(r.ntp_time, ntp(wall + Duration::from_millis(500)));
        // The next frame re-anchors.
        c.on_sent(103, 12_000, 800, t0 + Duration::from_millis(33));
        let r = c.report(t0 + Duration::from_millis(133)).unwrap();
        assert_eq!(r.rtp_time, 12_000 + 9_000);
        // Sequence numbers wrap; the RTP clock wraps too.
        let mut c = SenderClock::new(7, 48_000, t0, wall);
        c.on_sent(65_535, u32::MAX - 10, 10, t0);
        c.on_sent(
            0,
            (u32::MAX - 10).wrapping_add(960),
            10,
            t0 + Duration::from_millis(20),
        );
        let r = c.report(t0 + Duration::from_millis(20)).unwrap();
        assert_eq!(r.rtp_time, (u32::MAX - 10).wrapping_add(960));
    }
}
