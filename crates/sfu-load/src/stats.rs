//! Measurements: the synthetic payload layout (embedded send timestamp),
//! per-track receive statistics (loss from sequence gaps, RFC 3550
//! interarrival jitter, one-way latency from the embedded timestamp), and
//! process CPU/RSS readings from `/proc`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Offset of the 8-byte send timestamp in a VP8 payload: 1 byte of payload
/// descriptor + 3 bytes of (fake) VP8 frame header.
pub const VP8_TS_OFFSET: usize = 4;
/// Offset of the send timestamp in an Opus payload.
pub const OPUS_TS_OFFSET: usize = 0;

/// Wall-clock unix microseconds (sender and receiver share the machine
/// clock, so their difference is the one-way latency).
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The embedded send timestamp at `offset`, if the payload is long enough.
pub fn read_ts(payload: &[u8], offset: usize) -> Option<u64> {
    let b = payload.get(offset..offset + 8)?;
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

/// Receive statistics of one RTP stream at one player.
#[derive(Debug, Default, Clone)]
pub struct TrackStats {
    /// Packets received (duplicates included).
    pub received: u64,
    pub bytes: u64,
    /// Extended sequence numbers of the first and highest packet.
    first: Option<u64>,
    highest: u64,
    /// RFC 3550 §6.4.1 jitter estimate, in RTP clock units.
    jitter: f64,
    last_transit: Option<f64>,
}

impl TrackStats {
    /// Account one packet arriving at `arrival_us` (unix µs).
    pub fn on_packet(&mut self, seq: u16, rtp_ts: u32, clock: u32, arrival_us: u64, len: usize) {
        self.received += 1;
        self.bytes += len as u64;
        let ext = match self.first {
            None => {
                self.first = Some(seq as u64 + (1 << 16));
                self.highest = seq as u64 + (1 << 16);
                self.highest
            }
            Some(_) => {
                // Unwrap to the extended number nearest the highest seen.
                let base = self.highest & !0xffff;
                let cands = [base.wrapping_sub(1 << 16), base, base + (1 << 16)];
                cands
                    .iter()
                    .map(|b| b + seq as u64)
                    .min_by_key(|c| c.abs_diff(self.highest))
                    .unwrap_or(self.highest)
            }
        };
        self.highest = self.highest.max(ext);
        // Transit time in RTP units; only differences matter, so wrap the
        // arrival clock into a range where f64 stays exact.
        let arrival = (arrival_us % 1_000_000_000) as f64 * clock as f64 / 1e6;
        let transit = arrival - rtp_ts as f64;
        if let Some(prev) = self.last_transit {
            let d = (transit - prev).abs();
            // A wrap of either clock shows as a huge jump: skip it.
            if d < clock as f64 * 10.0 {
                self.jitter += (d - self.jitter) / 16.0;
            }
        }
        self.last_transit = Some(transit);
    }

    /// Packets expected from the sequence-number range seen.
    pub fn expected(&self) -> u64 {
        self.first.map_or(0, |f| self.highest - f + 1)
    }

    /// Packets missing from the range seen (never negative).
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    /// Jitter in milliseconds.
    pub fn jitter_ms(&self, clock: u32) -> f64 {
        self.jitter * 1000.0 / clock as f64
    }
}

/// What one player measured.
#[derive(Debug, Default, Clone)]
pub struct PlayerStats {
    pub name: String,
    pub video: TrackStats,
    pub audio: TrackStats,
    pub connected: bool,
}

/// CPU ticks (user + system) and resident memory of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    pub ticks: u64,
    pub rss_kb: u64,
}

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ; 100 on Linux).
pub const TICKS_PER_SEC: f64 = 100.0;

/// Read `/proc/<pid>/stat` (utime + stime) and `/proc/<pid>/status`
/// (VmRSS). `pid` `None` means this process.
pub fn sample(pid: Option<u32>) -> Option<ProcSample> {
    let dir = match pid {
        Some(p) => format!("/proc/{p}"),
        None => "/proc/self".to_string(),
    };
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // Fields after the command name, which may contain spaces: state is
    // the first, utime the 12th and stime the 13th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some(ProcSample {
        ticks: utime + stime,
        rss_kb,
    })
}

/// Width of a latency bucket, µs.
const BUCKET_US: u64 = 10;
/// Buckets: 10 µs resolution up to 500 ms; slower samples share the last.
const BUCKETS: usize = 50_000;

/// A fixed-size latency histogram (10 µs buckets), so long runs with many
/// players keep constant memory.
#[derive(Debug, Clone)]
pub struct Latency {
    buckets: Vec<u64>,
    count: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            buckets: vec![0; BUCKETS],
            count: 0,
        }
    }
}

impl Latency {
    pub fn record(&mut self, us: u64) {
        let i = ((us / BUCKET_US) as usize).min(BUCKETS - 1);
        self.buckets[i] += 1;
        self.count += 1;
    }

    pub fn merge(&mut self, other: &Latency) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
    }

    pub fn clear(&mut self) {
        self.buckets.iter_mut().for_each(|b| *b = 0);
        self.count = 0;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q` quantile (0..=1) in µs (upper edge of its bucket).
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((self.count as f64 * q).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some((i as u64 + 1) * BUCKET_US);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_from_gaps_across_wrap() {
        let mut t = TrackStats::default();
        for seq in [65533u16, 65534, 65535, 1, 2] {
            t.on_packet(seq, 0, 90_000, 0, 100);
        }
        assert_eq!(t.expected(), 6);
        assert_eq!(t.lost(), 1);
    }

    #[test]
    fn jitter_zero_for_perfect_pacing() {
        let mut t = TrackStats::default();
        for i in 0..100u32 {
            t.on_packet(i as u16, i * 960, 48_000, 1_000 + i as u64 * 20_000, 10);
        }
        assert!(t.jitter_ms(48_000) < 0.01);
    }

    #[test]
    fn latency_quantiles() {
        let mut l = Latency::default();
        assert_eq!(l.quantile_us(0.5), None);
        for us in 1..=100u64 {
            l.record(us * 100);
        }
        assert_eq!(l.quantile_us(0.5), Some(5_010));
        assert_eq!(l.quantile_us(0.99), Some(9_910));
        l.record(10_000_000);
        assert_eq!(l.quantile_us(1.0), Some(500_000));
    }

    #[test]
    fn timestamp_roundtrip() {
        let mut p = vec![0x10, 0, 0, 0];
        p.extend_from_slice(&123_456u64.to_be_bytes());
        assert_eq!(read_ts(&p, VP8_TS_OFFSET), Some(123_456));
        assert_eq!(read_ts(&p[..6], VP8_TS_OFFSET), None);
    }
}
