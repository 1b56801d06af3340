//! Signaling requests by op and result code, for `/metrics`: one small
//! table per op of the protocol (plus `unknown` for any other op name and
//! `invalid` for frames that are not a request at all), each a list of
//! `(code, count)` with `0` for success. Both sets are bounded — ops by
//! this list, codes by the protocol's constants — whatever clients send.

use parking_lot::Mutex;

/// The ops counted by name, in the order they are reported.
pub const OPS: [&str; 19] = [
    "enableMultiRoom",
    "loginRoom",
    "switchRoom",
    "logoutRoom",
    "renewToken",
    "sendBroadcastMessage",
    "sendBarrageMessage",
    "sendCustomCommand",
    "setRoomExtraInfo",
    "startPublishingStream",
    "stopPublishingStream",
    "startPlayingStream",
    "stopPlayingStream",
    "iceCandidate",
    "setStreamExtraInfo",
    "setPlayVideoQuality",
    "resume",
    "unknown",
    "invalid",
];

const UNKNOWN: usize = OPS.len() - 2;
const INVALID: usize = OPS.len() - 1;

/// Counts per op (index into [`OPS`]) and result code.
#[derive(Debug, Default)]
pub struct RequestCounters {
    by_op: [Mutex<Vec<(u32, u64)>>; OPS.len()],
}

impl RequestCounters {
    /// Count one answered request of `op` with result `code` (0: ok).
    pub fn count(&self, op: &str, code: u32) {
        let i = OPS[..UNKNOWN]
            .iter()
            .position(|o| *o == op)
            .unwrap_or(UNKNOWN);
        self.add(i, code);
    }

    /// Count a frame that was not a request (malformed JSON, no op, …).
    pub fn count_invalid(&self, code: u32) {
        self.add(INVALID, code);
    }

    fn add(&self, i: usize, code: u32) {
        let mut codes = self.by_op[i].lock();
        match codes.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => codes.push((code, 1)),
        }
    }

    /// `(op, code, count)` for every pair counted so far.
    pub fn snapshot(&self) -> Vec<(&'static str, u32, u64)> {
        let mut out = Vec::new();
        for (op, codes) in OPS.iter().zip(&self.by_op) {
            for (code, n) in codes.lock().iter() {
                out.push((*op, *code, *n));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_op_and_code_with_bounded_names() {
        let c = RequestCounters::default();
        c.count("loginRoom", 0);
        c.count("loginRoom", 0);
        c.count("loginRoom", 1002033);
        c.count("x".repeat(1000).as_str(), 1000001);
        c.count("anotherMadeUpOp", 1000001);
        c.count_invalid(1000001);
        assert_eq!(
            c.snapshot(),
            [
                ("loginRoom", 0, 2),
                ("loginRoom", 1002033, 1),
                ("unknown", 1000001, 2),
                ("invalid", 1000001, 1),
            ]
        );
    }
}
