//! Logs that clients cannot drive: a `tracing_subscriber` layer that lets
//! at most [`PER_WINDOW`] events per target through in each [`WINDOW`],
//! for the targets a client can make log over and over:
//!
//! - the WebRTC stack (`rtc*`, `webrtc*`, `dtls*`, `srtp*`, `sctp*`,
//!   `ice*`, `stun*`: e.g. one WARN per bad `a=ssrc` line or garbage
//!   datagram), whether it logs through `tracing` or through `log`;
//! - our own log sites reached from client input (bad frames, refused
//!   ops, dropped connections): they log with a target ending in
//!   [`CLIENT`] (`sfu_core::signaling::client`, ...), which `RUST_LOG`
//!   directives for the module still select.
//!
//! All limited targets together get at most [`TOTAL_PER_WINDOW`] per window.
//! The first event of a target in a new window that follows suppressed ones
//! is preceded by one line `suppressed K lines from target X`. The layer
//! only decides *whether* an event is written (`event_enabled`), so it
//! works in front of any formatter; events that `RUST_LOG` disables are
//! not counted.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Layer};

/// Events per target per window.
pub const PER_WINDOW: u32 = 10;
/// Events of all limited targets together per window (the stack has a few
/// dozen targets: at `debug` they would otherwise add up).
pub const TOTAL_PER_WINDOW: u32 = 30;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Target suffix of our own client-triggered log sites.
pub const CLIENT: &str = "::client";

/// Targets kept apart at most (further ones share one budget).
const MAX_TARGETS: usize = 1024;

const STACK_PREFIXES: &[&str] = &["rtc", "webrtc", "dtls", "srtp", "sctp", "ice", "stun"];

/// Whether events of `target` are rate-limited.
pub fn limited(target: &str) -> bool {
    target.ends_with(CLIENT) || STACK_PREFIXES.iter().any(|p| target.starts_with(p))
}

/// What to do with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Log,
    /// Log it, after a summary of this many suppressed in the last window.
    LogAfter(u64),
    Drop,
}

struct Slot {
    start: Instant,
    passed: u32,
    suppressed: u64,
}

/// The counting, apart from `tracing` and the clock (testable).
pub struct Limiter {
    per_window: u32,
    total_per_window: u32,
    window: Duration,
    /// Each target's slot in `slots`.
    index: HashMap<String, usize>,
    slots: Vec<Slot>,
    total: Option<Slot>,
}

impl Limiter {
    pub fn new(per_window: u32, total_per_window: u32, window: Duration) -> Limiter {
        Limiter {
            per_window,
            total_per_window,
            window,
            index: HashMap::new(),
            slots: Vec::new(),
            total: None,
        }
    }

    /// Whether the shared budget of all targets has room for one more.
    fn take_total(&mut self, now: Instant) -> bool {
        let total = self.total.get_or_insert(Slot {
            start: now,
            passed: 0,
            suppressed: 0,
        });
        if now.saturating_duration_since(total.start) >= self.window {
            total.start = now;
            total.passed = 0;
        }
        if total.passed < self.total_per_window {
            total.passed += 1;
            true
        } else {
            false
        }
    }

    pub fn check(&mut self, target: &str, now: Instant) -> Verdict {
        let key = if self.index.contains_key(target) || self.index.len() < MAX_TARGETS {
            target
        } else {
            "(other targets)"
        };
        let (window, per_window) = (self.window, self.per_window);
        let slot = self.slot(key, now);
        let mut summary = 0;
        if now.saturating_duration_since(slot.start) >= window {
            summary = slot.suppressed;
            *slot = Slot {
                start: now,
                passed: 0,
                suppressed: 0,
            };
        }
        let room = slot.passed < per_window;
        if room && self.take_total(now) {
            let slot = self.slot(key, now);
            slot.passed += 1;
            if summary > 0 {
                Verdict::LogAfter(summary)
            } else {
                Verdict::Log
            }
        } else {
            self.slot(key, now).suppressed += summary + 1;
            Verdict::Drop
        }
    }

    fn slot(&mut self, key: &str, now: Instant) -> &mut Slot {
        let i = match self.index.get(key) {
            Some(&i) => i,
            None => {
                self.slots.push(Slot {
                    start: now,
                    passed: 0,
                    suppressed: 0,
                });
                self.index.insert(key.to_string(), self.slots.len() - 1);
                self.slots.len() - 1
            }
        };
        &mut self.slots[i]
    }
}

/// The layer; add it to the subscriber (`registry().with(...)` or
/// `fmt().finish().with(RateLimit::default())`).
pub struct RateLimit {
    limiter: Mutex<Limiter>,
}

impl RateLimit {
    pub fn new(per_window: u32, total_per_window: u32, window: Duration) -> RateLimit {
        RateLimit {
            limiter: Mutex::new(Limiter::new(per_window, total_per_window, window)),
        }
    }
}

impl Default for RateLimit {
    fn default() -> RateLimit {
        RateLimit::new(PER_WINDOW, TOTAL_PER_WINDOW, WINDOW)
    }
}

impl<S: Subscriber> Layer<S> for RateLimit {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        // Events from the `log` crate carry their real target in a field.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let target = meta.target();
        if !limited(target) {
            return true;
        }
        let verdict = self.limiter.lock().check(target, Instant::now());
        match verdict {
            Verdict::Log => true,
            Verdict::Drop => false,
            Verdict::LogAfter(k) => {
                // Not limited itself (target `sfu_core::ratelog`). Written
                // through the global subscriber; a scoped test subscriber
                // drops this nested event.
                tracing::warn!("suppressed {k} lines from target {target}");
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn which_targets_are_limited() {
        for t in [
            "rtc",
            "rtc_ice::agent",
            "rtc_sdp",
            "webrtc_ice",
            "dtls::conn",
            "srtp",
            "sctp",
            "ice",
            "stun::message",
            "sfu_core::signaling::client",
            "room_signal::session::client",
        ] {
            assert!(limited(t), "{t}");
        }
        for t in [
            "sfu_core::signaling",
            "room_signal::session",
            "sfu",
            "sfu_core::ratelog",
        ] {
            assert!(!limited(t), "{t}");
        }
    }

    #[test]
    fn ten_per_window_then_one_summary() {
        let mut l = Limiter::new(10, 1_000, Duration::from_secs(10));
        let t0 = Instant::now();
        let verdicts: Vec<_> = (0..10_000).map(|_| l.check("rtc_ice", t0)).collect();
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Log).count(), 10);
        assert_eq!(
            verdicts.iter().filter(|v| **v == Verdict::Drop).count(),
            9_990
        );
        // Another target has its own budget.
        assert_eq!(l.check("rtc_sdp", t0), Verdict::Log);
        // Within the window: still dropped.
        assert_eq!(
            l.check("rtc_ice", t0 + Duration::from_secs(9)),
            Verdict::Drop
        );
        // Next window: the summary comes with the first event.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(l.check("rtc_ice", t1), Verdict::LogAfter(9_991));
        assert_eq!(l.check("rtc_ice", t1), Verdict::Log);
        // Nothing suppressed in that window: no summary in the next.
        let t2 = t1 + Duration::from_secs(10);
        assert_eq!(l.check("rtc_ice", t2), Verdict::Log);
    }

    #[test]
    fn targets_beyond_the_cap_share_one_budget() {
        let mut l = Limiter::new(1, 10_000, Duration::from_secs(10));
        let t0 = Instant::now();
        for i in 0..MAX_TARGETS {
            assert_eq!(l.check(&format!("rtc_{i}"), t0), Verdict::Log);
        }
        assert_eq!(l.check("rtc_new_1", t0), Verdict::Log);
        assert_eq!(l.check("rtc_new_2", t0), Verdict::Drop);
        assert_eq!(l.index.len(), MAX_TARGETS + 1);
    }

    #[test]
    fn all_targets_together_share_a_budget() {
        let mut l = Limiter::new(10, 30, Duration::from_secs(10));
        let t0 = Instant::now();
        let passed = (0..100)
            .flat_map(|i| (0..20).map(move |_| format!("rtc_{i}")))
            .filter(|t| l.check(t, t0) != Verdict::Drop)
            .count();
        assert_eq!(passed, 30);
        // Next window: the drops are summed up per target.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(l.check("rtc_0", t1), Verdict::LogAfter(10));
        assert_eq!(l.check("rtc_99", t1), Verdict::LogAfter(20));
    }

    /// A writer that counts lines.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<String>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let text = String::from_utf8_lossy(buf);
            self.0.lock().extend(text.lines().map(str::to_string));
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_layer_passes_ten_of_ten_thousand_stack_events() {
        use tracing_subscriber::layer::SubscriberExt;
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::DEBUG)
            .finish()
            .with(RateLimit::default());
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..10_000 {
                tracing::warn!(target: "rtc_ice", "bad datagram {i}");
                tracing::warn!(target: "sfu_core::signaling::client", "bad frame {i}");
            }
            // Through `log`, as `rtc` logs.
            let _ = tracing_log::LogTracer::init();
            for i in 0..1_000 {
                log::warn!(target: "rtc::peer_connection::sdp", "Failed to parse SSRC {i}");
            }
            tracing::info!(target: "sfu_core::session", "not limited");
        });
        let lines = lines.0.lock();
        let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
        assert_eq!(count("bad datagram"), PER_WINDOW as usize, "{lines:?}");
        assert_eq!(count("bad frame"), PER_WINDOW as usize);
        assert_eq!(count("Failed to parse SSRC"), PER_WINDOW as usize);
        assert_eq!(count("not limited"), 1);
        assert!(
            lines.len() <= 3 * PER_WINDOW as usize + 1,
            "{}",
            lines.len()
        );
    }
}
