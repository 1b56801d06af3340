//! Resume after a dropped connection (the contract's "Resume after a
//! dropped connection"): a session's identity for a takeover (its
//! `sessionID` and `resumeToken`), the `seq` every event frame carries, and
//! the events kept so that a new connection can be given what the old one
//! may have lost.
//!
//! Events are kept as the frames the rest of the control plane built (a
//! room's fan-out shares one `Bytes` among every member), with their `seq`
//! beside them; the `"seq"` field is written into a copy only when a frame
//! goes out. At most `limits.outboxCapacity` events are kept, the newest;
//! a replay that needs older ones says `gap: true`.

use std::collections::VecDeque;
use std::fmt::Write;

use bytes::{BufMut, Bytes, BytesMut};
use rand::RngCore;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::error::{code, SignalError};
use crate::session::Session;
use crate::wire;

/// The `resume` request's fields.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeRequest {
    #[serde(rename = "sessionID")]
    pub session_id: String,
    pub resume_token: String,
    pub last_seq: u64,
}

/// The longest `sessionID` and `resumeToken` we hand out (longer ones in
/// a request are refused before any lookup).
pub const MAX_CREDENTIAL_LEN: usize = 64;

/// A session's resume identity and event log.
pub(crate) struct ResumeLog {
    session_id: String,
    token: String,
    /// The `seq` of the last event stamped (0: none yet).
    last_seq: u64,
    /// The newest events, oldest first, with their `seq`.
    kept: VecDeque<(u64, Bytes)>,
    capacity: usize,
}

impl ResumeLog {
    pub(crate) fn new(capacity: usize) -> Self {
        let mut rng = rand::rng();
        let mut id = [0u8; 16];
        let mut token = [0u8; 32];
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut token);
        ResumeLog {
            session_id: hex(&id),
            token: hex(&token),
            last_seq: 0,
            kept: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn session_id(&self) -> &str {
        &self.session_id
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// Give `frame` the next `seq`, keep it, and return the copy to write.
    pub(crate) fn stamp(&mut self, frame: Bytes) -> Bytes {
        self.last_seq += 1;
        let out = with_seq(&frame, self.last_seq);
        if self.kept.len() == self.capacity {
            self.kept.pop_front();
        }
        self.kept.push_back((self.last_seq, frame));
        out
    }

    /// Whether `token` is this session's (in constant time).
    pub(crate) fn token_matches(&self, token: &str) -> bool {
        self.token.as_bytes().ct_eq(token.as_bytes()).into()
    }

    /// The kept events after `last_seq`, stamped with their original `seq`,
    /// and whether some events after it were not kept (`gap`). A `last_seq`
    /// beyond the last event stamped is not this session's history:
    /// `1002099`.
    pub(crate) fn replay(&self, last_seq: u64) -> Result<(Vec<Bytes>, bool), SignalError> {
        if last_seq > self.last_seq {
            return Err(cannot_resume(
                "lastSeq is beyond the last event of this session",
            ));
        }
        let oldest = self.kept.front().map_or(self.last_seq + 1, |(s, _)| *s);
        let gap = last_seq + 1 < oldest;
        let frames = self
            .kept
            .iter()
            .filter(|(s, _)| *s > last_seq)
            .map(|(s, f)| with_seq(f, *s))
            .collect();
        Ok((frames, gap))
    }
}

impl Session {
    /// This session's `sessionID` (what a takeover looks it up by).
    pub fn session_id(&self) -> &str {
        self.resume.session_id()
    }

    /// Whether a dropped connection is worth holding for a resume (it is in
    /// a room: everything else a session has hangs off its rooms).
    pub fn resumable(&self) -> bool {
        !self.rooms.is_empty()
    }

    /// Read a connection's first text frame as a `resume` request: `None`
    /// when it is anything else (the frame then goes to
    /// [`handle_text`](Session::handle_text)); `Some(Err(answer))` for a
    /// `resume` with bad fields (`1000001`).
    pub fn parse_resume(&self, text: &str) -> Option<Result<(u64, ResumeRequest), Bytes>> {
        let env = wire::parse_envelope(text).ok()?;
        if env.op != "resume" {
            return None;
        }
        let id = env.id?;
        let req = wire::fields::<ResumeRequest>(&env.body).and_then(|req| {
            if req.session_id.len() > MAX_CREDENTIAL_LEN
                || req.resume_token.len() > MAX_CREDENTIAL_LEN
            {
                Err(cannot_resume("unknown session"))
            } else {
                Ok(req)
            }
        });
        Some(match req {
            Ok(req) => Ok((id, req)),
            Err(e) => Err(self.refuse_resume(id, &e)),
        })
    }

    /// The answer to a `resume` that takes no session over (counted).
    pub fn refuse_resume(&self, id: u64, error: &SignalError) -> Bytes {
        self.app.requests.count("resume", error.code);
        wire::error_response(Some(id), error)
    }

    /// Whether `req` names this session with its token (constant time).
    pub fn resume_matches(&self, req: &ResumeRequest) -> bool {
        req.session_id == self.resume.session_id() && self.resume.token_matches(&req.resume_token)
    }

    /// Take this session over for a new connection: checks the token
    /// (constant time) and `lastSeq`, then returns the `resume` result
    /// (`rooms` as each looks now, `publishing`, `playing`, `gap`) followed
    /// by every kept event after `lastSeq` with its original `seq`. On
    /// `Err`, nothing changed (answer with
    /// [`refuse_resume`](Session::refuse_resume)).
    pub fn take_over(&mut self, id: u64, req: &ResumeRequest) -> Result<Vec<Bytes>, SignalError> {
        if !self.resume_matches(req) {
            return Err(cannot_resume("unknown session or wrong resume token"));
        }
        let (replay, gap) = self.resume.replay(req.last_seq)?;
        let user_id = self.user_id().unwrap_or_default().to_string();
        let rooms: Vec<serde_json::Value> = self
            .rooms
            .iter()
            .filter_map(|r| r.room.member_view(&user_id, r.join))
            .map(serde_json::Value::Object)
            .collect();
        let publishing: Vec<&str> = self.publishes.iter().map(|p| &*p.stream_id).collect();
        let playing: Vec<&str> = self.plays.iter().map(|p| &*p.stream_id).collect();
        let result = serde_json::json!({
            "rooms": rooms,
            "publishing": publishing,
            "playing": playing,
            "gap": gap,
        });
        let serde_json::Value::Object(result) = result else {
            return Err(cannot_resume("internal: result is not an object"));
        };
        self.app.requests.count("resume", 0);
        tracing::info!(app = self.app.id(), user = %user_id, conn = self.conn_id,
            last_seq = req.last_seq, replayed = replay.len(), gap, "session resumed");
        let mut frames = Vec::with_capacity(replay.len() + 1);
        frames.push(wire::ok_response(Some(id), Some(result)));
        frames.extend(replay);
        Ok(frames)
    }
}

/// `1002099`: the session cannot be resumed.
pub fn cannot_resume(why: &str) -> SignalError {
    SignalError::new(code::CANNOT_RESUME, why.to_string())
}

/// `{"seq":N,` + the frame after its opening brace (every event is a
/// non-empty JSON object written by `wire::event`).
fn with_seq(frame: &[u8], seq: u64) -> Bytes {
    let rest = frame.strip_prefix(b"{").unwrap_or(frame);
    let mut out = BytesMut::with_capacity(frame.len() + 28);
    // Writing into a BytesMut cannot fail.
    let _ = write!(out, "{{\"seq\":{seq}");
    if rest.first() != Some(&b'}') {
        out.put_u8(b',');
    }
    out.put_slice(rest);
    out.freeze()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn seq_of(frame: &Bytes) -> (u64, Value) {
        let v: Value = serde_json::from_slice(frame).expect("JSON");
        (v["seq"].as_u64().expect("seq"), v)
    }

    #[test]
    fn stamps_and_replays_with_the_original_seq() {
        let mut log = ResumeLog::new(3);
        assert_eq!(log.session_id().len(), 32);
        assert_eq!(log.token().len(), 64);
        assert_ne!(log.session_id(), ResumeLog::new(3).session_id());
        for i in 1..=5u64 {
            let f = Bytes::from(format!("{{\"event\":\"e\",\"n\":{i}}}"));
            let (seq, v) = seq_of(&log.stamp(f));
            assert_eq!((seq, v["n"].as_u64()), (i, Some(i)));
        }
        // Kept: 3, 4, 5.
        let (frames, gap) = log.replay(3).expect("replay");
        assert!(!gap);
        let seqs: Vec<u64> = frames.iter().map(|f| seq_of(f).0).collect();
        assert_eq!(seqs, [4, 5]);
        let (frames, gap) = log.replay(2).expect("replay");
        assert!(!gap, "3 is the oldest kept: nothing after 2 is missing");
        assert_eq!(frames.len(), 3);
        let (frames, gap) = log.replay(1).expect("replay");
        assert!(gap, "2 was not kept");
        assert_eq!(frames.len(), 3);
        assert_eq!(log.replay(5).expect("replay").0.len(), 0);
        assert_eq!(
            log.replay(6).map(drop).map_err(|e| e.code),
            Err(code::CANNOT_RESUME)
        );
    }

    #[test]
    fn token_check_and_empty_log() {
        let log = ResumeLog::new(4);
        let token = log.token().to_string();
        assert!(log.token_matches(&token));
        assert!(!log.token_matches(&token[1..]));
        assert!(!log.token_matches(""));
        assert_eq!(log.replay(0).expect("replay"), (Vec::new(), false));
        assert_eq!(&with_seq(b"{}", 7)[..], b"{\"seq\":7}");
    }
}
