//! Deciding, per player leg, whether our own SRTP may take over from
//! `rtc`'s (issue 10). The captured master keys ([`super::srtp::KeyCapture`])
//! come from an observed order inside `rtc`, not a promise, so a leg's first
//! packets still go through `rtc`; for each of them the [`Verifier`] protects
//! the same header and payload itself and compares the bytes. After
//! [`MATCHES_NEEDED`] exact matches the leg may switch (its [`Rollover`]
//! already follows every sequence number sent); any mismatch, or no match
//! within [`MAX_TRIES`] packets, and it stays on `rtc`'s path for good.
//! An SSRC is never sent through both paths after the switch (GCM nonces
//! must not repeat), which is the caller's rule: the verifier only says when.

use bytes::Bytes;

use super::srtp::{MasterKey, Profile, Protector, Rollover};

/// Exact matches before a leg switches to our protection.
pub const MATCHES_NEEDED: u8 = 3;
/// Packets observed without a decision before the leg gives up.
pub const MAX_TRIES: u8 = 16;
/// Packets handed to `rtc` and not observed yet, kept for comparison.
const PENDING: usize = 8;

/// Why a leg stays on `rtc`'s path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// No captured key reproduced `rtc`'s bytes.
    Mismatch,
    /// The tag length is neither AES-CM-80's nor AES-GCM's.
    UnknownProfile,
    /// No key was captured.
    NoKeys,
    /// Too many packets observed without enough matches.
    Undecided,
}

/// Where a leg's verification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pending,
    Verified,
    Fallback(Fallback),
}

/// One player leg's verification (one SSRC of one connection).
pub struct Verifier {
    keys: Vec<MasterKey>,
    /// The profile and the protectors of the keys still in the running.
    candidates: Option<(Profile, Vec<Protector>)>,
    rollover: Rollover,
    /// (sequence number, its rollover counter, our header, payload)
    /// handed to `rtc`.
    pending: Vec<(u16, u32, Vec<u8>, Bytes)>,
    matched: u8,
    tries: u8,
    verdict: Verdict,
}

/// Length of an RTP header (fixed part, CSRCs, extension block), if the
/// datagram holds one.
pub fn header_len(d: &[u8]) -> Option<usize> {
    let first = *d.first()?;
    let mut n = 12 + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let words = d.get(n + 2..n + 4)?;
        n += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    (n <= d.len()).then_some(n)
}

impl Verifier {
    /// `keys`: the connection's captured master keys, in capture order.
    pub fn new(keys: Vec<MasterKey>) -> Self {
        let verdict = if keys.is_empty() {
            Verdict::Fallback(Fallback::NoKeys)
        } else {
            Verdict::Pending
        };
        Verifier {
            keys,
            candidates: None,
            rollover: Rollover::default(),
            pending: Vec::with_capacity(PENDING),
            matched: 0,
            tries: 0,
            verdict,
        }
    }

    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// The rollover counters of the leg's sequence numbers so far (the
    /// fast path continues from it).
    pub fn rollover(&self) -> Rollover {
        self.rollover
    }

    /// A packet with sequence number `seq`, RTP header `header` (as the
    /// fast path would write it) and `payload` was handed to `rtc` for this
    /// leg.
    pub fn sent_via_rtc(&mut self, seq: u16, header: &[u8], payload: Bytes) {
        let roc = self.rollover.next(seq);
        if self.verdict != Verdict::Pending {
            return;
        }
        if self.pending.len() == PENDING {
            self.pending.remove(0);
        }
        self.pending.push((seq, roc, header.to_vec(), payload));
    }

    /// An SRTP datagram `rtc` produced for this leg's SSRC.
    pub fn observe(&mut self, datagram: &[u8]) -> Verdict {
        if self.verdict != Verdict::Pending {
            return self.verdict;
        }
        let (Some(_), Some(seq)) = (
            header_len(datagram),
            datagram.get(2..4).map(|s| u16::from_be_bytes([s[0], s[1]])),
        ) else {
            return self.verdict;
        };
        let Some(pos) = self.pending.iter().position(|(s, ..)| *s == seq) else {
            return self.verdict;
        };
        let (_, roc, header, payload) = self.pending.remove(pos);
        self.tries += 1;
        let h = header.len();
        let Some(tag) = datagram.len().checked_sub(h + payload.len()) else {
            return self.fall_back(Fallback::Mismatch);
        };
        if self.candidates.is_none() {
            let profile = match tag {
                10 => Profile::AesCm128HmacSha1_80,
                16 => Profile::AeadAes128Gcm,
                _ => return self.fall_back(Fallback::UnknownProfile),
            };
            let protectors = self
                .keys
                .iter()
                .filter_map(|k| Protector::new(profile, k).ok())
                .collect();
            self.candidates = Some((profile, protectors));
        }
        let Some((profile, protectors)) = &mut self.candidates else {
            return self.verdict;
        };
        if tag != profile.tag_len() {
            return self.fall_back(Fallback::Mismatch);
        }
        // Our protection of *our* header and the payload, in a scratch
        // buffer (verification only: a handful of packets per leg). Equal
        // bytes prove the key and that `rtc` wrote the header as we do: a
        // NACKed packet first sent by `rtc` and resent by us then repeats
        // its AES-GCM nonce with the very same header and payload.
        let mut buf = Vec::with_capacity(datagram.len());
        protectors.retain(|p| {
            buf.clear();
            buf.extend_from_slice(&header);
            buf.extend_from_slice(&payload);
            let len = buf.len();
            buf.resize(datagram.len(), 0);
            p.protect(&mut buf, len, h, roc).ok() == Some(datagram.len()) && buf == datagram
        });
        if protectors.is_empty() {
            return self.fall_back(Fallback::Mismatch);
        }
        self.matched += 1;
        if self.matched >= MATCHES_NEEDED {
            self.verdict = Verdict::Verified;
        } else if self.tries >= MAX_TRIES {
            return self.fall_back(Fallback::Undecided);
        }
        self.verdict
    }

    /// The verified protector (after [`Verdict::Verified`]).
    pub fn take_protector(&mut self) -> Option<(Profile, Protector)> {
        if self.verdict != Verdict::Verified {
            return None;
        }
        let (profile, mut protectors) = self.candidates.take()?;
        self.pending.clear();
        (!protectors.is_empty()).then(|| (profile, protectors.swap_remove(0)))
    }

    fn fall_back(&mut self, why: Fallback) -> Verdict {
        self.verdict = Verdict::Fallback(why);
        self.pending.clear();
        self.candidates = None;
        self.verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::header::Header;
    use rtc::shared::marshal::Marshal;
    use rtc::srtp::context::Context;
    use rtc::srtp::protection_profile::ProtectionProfile;

    fn key(seed: u8) -> MasterKey {
        MasterKey {
            key: [seed; 16],
            salt: [seed ^ 0x55; 14],
        }
    }

    fn rtc_context(k: &MasterKey, profile: ProtectionProfile, salt_len: usize) -> Context {
        let provider = rtc::crypto::default_provider().unwrap();
        Context::new(
            &k.key,
            &k.salt[..salt_len],
            profile,
            None,
            None,
            provider.crypto(),
        )
        .unwrap()
    }

    fn raw(seq: u16, payload: &Bytes) -> Vec<u8> {
        let header = Header {
            version: 2,
            payload_type: 111,
            sequence_number: seq,
            timestamp: u32::from(seq) * 960,
            ssrc: 99,
            ..Default::default()
        };
        let mut raw = header.marshal().unwrap().to_vec();
        raw.extend_from_slice(payload);
        raw
    }

    /// `rtc` protects with `used`; the verifier was given `captured`.
    fn run(used: &MasterKey, captured: Vec<MasterKey>, gcm: bool, first_seq: u16) -> Verifier {
        let (profile, salt_len) = if gcm {
            (ProtectionProfile::AeadAes128Gcm, 12)
        } else {
            (ProtectionProfile::Aes128CmHmacSha1_80, 14)
        };
        let mut ctx = rtc_context(used, profile, salt_len);
        let mut v = Verifier::new(captured);
        for i in 0..6u16 {
            let seq = first_seq.wrapping_add(i);
            let payload = Bytes::from(vec![i as u8; 50 + usize::from(i)]);
            let plain = raw(seq, &payload);
            v.sent_via_rtc(seq, &plain[..12], payload.clone());
            let datagram = ctx.encrypt_rtp(&plain).unwrap();
            if v.observe(&datagram) != Verdict::Pending {
                break;
            }
        }
        v
    }

    #[test]
    fn the_right_key_is_verified_across_a_wrap() {
        for gcm in [true, false] {
            let mut v = run(&key(1), vec![key(1)], gcm, 65_534);
            assert_eq!(v.verdict(), Verdict::Verified);
            let (profile, _) = v.take_protector().unwrap();
            assert_eq!(profile == Profile::AeadAes128Gcm, gcm);
        }
    }

    #[test]
    fn the_ingress_key_captured_first_is_ruled_out() {
        let v = run(&key(2), vec![key(7), key(2)], true, 10);
        assert_eq!(v.verdict(), Verdict::Verified);
    }

    #[test]
    fn a_wrong_key_falls_back_for_good() {
        for gcm in [true, false] {
            let mut v = run(&key(3), vec![key(4)], gcm, 500);
            assert_eq!(v.verdict(), Verdict::Fallback(Fallback::Mismatch));
            assert!(v.take_protector().is_none());
        }
        let v = Verifier::new(Vec::new());
        assert_eq!(v.verdict(), Verdict::Fallback(Fallback::NoKeys));
    }

    #[test]
    fn garbage_and_strangers_decide_nothing() {
        let mut v = Verifier::new(vec![key(5)]);
        v.sent_via_rtc(
            1,
            &[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            Bytes::from_static(b"payload"),
        );
        for d in [
            &[][..],
            &[0x90, 0, 0, 1][..],
            &[0x80; 3][..],
            &[0x80, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0][..],
        ] {
            assert_eq!(v.observe(d), Verdict::Pending);
        }
        // The right sequence number with a datagram too short for its
        // payload is a mismatch, not a panic.
        assert_eq!(
            v.observe(&[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
            Verdict::Fallback(Fallback::Mismatch)
        );
    }

    /// `rtc` wrote a header other than ours (here: a marker bit we did not
    /// set): right key or not, the leg must not switch, since a resend of
    /// that packet by us would reuse its nonce with other bytes.
    #[test]
    fn a_header_rtc_wrote_differently_falls_back() {
        let (k, payload) = (key(8), Bytes::from(vec![3u8; 40]));
        let mut ctx = rtc_context(&k, ProtectionProfile::AeadAes128Gcm, 12);
        let mut v = Verifier::new(vec![k]);
        let plain = raw(7, &payload);
        let mut ours = plain[..12].to_vec();
        ours[1] |= 0x80;
        v.sent_via_rtc(7, &ours, payload.clone());
        let datagram = ctx.encrypt_rtp(&plain).unwrap();
        assert_eq!(v.observe(&datagram), Verdict::Fallback(Fallback::Mismatch));
    }
}
