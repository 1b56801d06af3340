//! SRTP protection done by us, for a forwarding path that encrypts RTP in
//! place instead of through `rtc`'s egress pipeline (issue 10), and the key
//! capture it starts from.
//!
//! `rtc` keeps its SRTP contexts private, but it builds them through the
//! crypto provider a peer connection is given. [`KeyCapture`] wraps the
//! default provider and records every AES block the SRTP key derivation
//! (RFC 3711 §4.3, AES-CM PRF) encrypts: the key of that call is the SRTP
//! master key, and the first block of a context (label 0, counter 0) is the
//! master salt. That order is observed, not promised, so nothing here is
//! trusted by itself: a [`Protector`] built from captured keys must produce
//! exactly the bytes `rtc` produced for the same packets before it is used.
//!
//! Profiles: `AES_CM_128_HMAC_SHA1_80` (RFC 3711) and `AEAD_AES_128_GCM`
//! (RFC 7714).

use std::sync::Arc;

use aes::cipher::{BlockEncrypt, InnerIvInit, KeyInit, StreamCipher};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use rtc::crypto::{
    BlockCipherAlgorithm, CryptoError, PublicKey, RTCCrypto, RTCCryptoProvider, RTCRandom,
    SignatureScheme,
};
use sha1::Sha1;

/// The SRTP protection profiles we can protect ourselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    AesCm128HmacSha1_80,
    AeadAes128Gcm,
}

impl Profile {
    pub fn salt_len(self) -> usize {
        match self {
            Profile::AesCm128HmacSha1_80 => 14,
            Profile::AeadAes128Gcm => 12,
        }
    }

    /// Bytes appended to each protected RTP packet.
    pub fn tag_len(self) -> usize {
        match self {
            Profile::AesCm128HmacSha1_80 => 10,
            Profile::AeadAes128Gcm => 16,
        }
    }
}

/// An SRTP master key and salt (AES-128: 16-byte key).
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    pub key: [u8; 16],
    /// 14 bytes for AES-CM, 12 for GCM; the rest is zero.
    pub salt: [u8; 14],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Key-derivation blocks one connection's provider keeps (the first few
/// contexts are all we need; a connection builds two per DTLS handshake).
const MAX_CAPTURED: usize = 16;

/// A crypto provider that records the master keys of the SRTP contexts
/// built through it; one per peer connection.
pub struct KeyCapture {
    inner: Arc<dyn RTCCryptoProvider>,
    crypto: CapturingCrypto,
}

struct CapturingCrypto {
    inner: Arc<dyn RTCCryptoProvider>,
    /// (key, block before encryption) of label-0, counter-0 derivations.
    seen: Mutex<Vec<([u8; 16], [u8; 16])>>,
}

impl KeyCapture {
    pub fn new(inner: Arc<dyn RTCCryptoProvider>) -> Self {
        KeyCapture {
            crypto: CapturingCrypto {
                inner: inner.clone(),
                seen: Mutex::new(Vec::new()),
            },
            inner,
        }
    }

    /// The master keys of the contexts built so far, in the order `rtc`
    /// built them, read for `profile`'s salt length.
    pub fn master_keys(&self, profile: Profile) -> Vec<MasterKey> {
        let n = profile.salt_len();
        self.crypto
            .seen
            .lock()
            .iter()
            .map(|(key, block)| {
                let mut salt = [0u8; 14];
                salt[..n].copy_from_slice(&block[..n]);
                MasterKey { key: *key, salt }
            })
            .collect()
    }
}

impl RTCCryptoProvider for KeyCapture {
    fn name(&self) -> &'static str {
        "sfu-key-capture"
    }
    fn crypto(&self) -> &dyn RTCCrypto {
        &self.crypto
    }
    fn random(&self) -> &dyn RTCRandom {
        self.inner.random()
    }
}

impl RTCCrypto for CapturingCrypto {
    fn block_encrypt(
        &self,
        algorithm: BlockCipherAlgorithm,
        key: &[u8],
        block: &mut [u8],
    ) -> Result<(), CryptoError> {
        // Label 0 (byte 7 of the salt-derived block) with counter 0 (the
        // last two bytes) starts a context's derivation.
        if algorithm == BlockCipherAlgorithm::Aes128 && block.len() == 16 && block[14..] == [0, 0] {
            if let (Ok(k), Ok(b)) = (<[u8; 16]>::try_from(key), <[u8; 16]>::try_from(&*block)) {
                let mut seen = self.seen.lock();
                if seen.len() < MAX_CAPTURED && !seen.contains(&(k, b)) {
                    seen.push((k, b));
                }
            }
        }
        self.inner.crypto().block_encrypt(algorithm, key, block)
    }
    fn verify_signature(
        &self,
        scheme: SignatureScheme,
        public_key: PublicKey<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.inner
            .crypto()
            .verify_signature(scheme, public_key, message, signature)
    }
    super::dtls_compat::forward_crypto!();
}

const LABEL_SRTP_ENCRYPTION: u8 = 0;
const LABEL_SRTP_AUTH: u8 = 1;
const LABEL_SRTP_SALT: u8 = 2;

/// RFC 3711 §4.3.3 AES-CM PRF with key derivation rate 0: `out.len()`
/// bytes for `label`.
fn derive(master: &MasterKey, salt_len: usize, label: u8, out: &mut [u8]) {
    let aes = aes::Aes128::new(&master.key.into());
    let mut input = [0u8; 16];
    input[..salt_len].copy_from_slice(&master.salt[..salt_len]);
    input[7] ^= label;
    for (i, chunk) in out.chunks_mut(16).enumerate() {
        let mut block = input;
        block[14..].copy_from_slice(&(i as u16).to_be_bytes());
        let mut b = block.into();
        aes.encrypt_block(&mut b);
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// AES-CM session keys: the expanded AES key, the salt, the keyed HMAC.
struct AesCmKeys {
    aes: aes::Aes128,
    salt: [u8; 14],
    auth: Hmac<Sha1>,
}

enum Keys {
    AesCm(Box<AesCmKeys>),
    Gcm(Box<GcmKeys>),
}

/// AES-GCM session keys: the sealing key and the salt.
struct GcmKeys {
    key: ring::aead::LessSafeKey,
    salt: [u8; 12],
}

/// SRTP protection of RTP packets with one master key (one direction of
/// one connection). The caller owns the rollover counter of each SSRC.
pub struct Protector {
    keys: Keys,
}

/// Our protection could not be set up or applied.
#[derive(Debug, PartialEq, Eq)]
pub struct SrtpError(&'static str);

impl std::fmt::Display for SrtpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl Protector {
    pub fn new(profile: Profile, master: &MasterKey) -> Result<Protector, SrtpError> {
        let n = profile.salt_len();
        let keys = match profile {
            Profile::AesCm128HmacSha1_80 => {
                let mut key = [0u8; 16];
                let mut salt = [0u8; 14];
                let mut auth_key = [0u8; 20];
                derive(master, n, LABEL_SRTP_ENCRYPTION, &mut key);
                derive(master, n, LABEL_SRTP_SALT, &mut salt);
                derive(master, n, LABEL_SRTP_AUTH, &mut auth_key);
                let auth = <Hmac<Sha1> as Mac>::new_from_slice(&auth_key)
                    .map_err(|_| SrtpError("HMAC key"))?;
                Keys::AesCm(Box::new(AesCmKeys {
                    aes: aes::Aes128::new(&key.into()),
                    salt,
                    auth,
                }))
            }
            Profile::AeadAes128Gcm => {
                let mut key = [0u8; 16];
                let mut salt = [0u8; 12];
                derive(master, n, LABEL_SRTP_ENCRYPTION, &mut key);
                derive(master, n, LABEL_SRTP_SALT, &mut salt);
                let unbound = ring::aead::UnboundKey::new(&ring::aead::AES_128_GCM, &key)
                    .map_err(|_| SrtpError("AES-GCM key"))?;
                Keys::Gcm(Box::new(GcmKeys {
                    key: ring::aead::LessSafeKey::new(unbound),
                    salt,
                }))
            }
        };
        Ok(Protector { keys })
    }

    /// Protect in place the RTP packet in `buf[..len]`, whose header is
    /// `header_len` bytes, with rollover counter `roc`; the tag is written
    /// after it. Returns the protected length. `buf` must have room for
    /// the tag.
    pub fn protect(
        &self,
        buf: &mut [u8],
        len: usize,
        header_len: usize,
        roc: u32,
    ) -> Result<usize, SrtpError> {
        if header_len < 12 || header_len > len || len > buf.len() {
            return Err(SrtpError("not an RTP packet"));
        }
        let ssrc = [buf[8], buf[9], buf[10], buf[11]];
        let seq = [buf[2], buf[3]];
        match &self.keys {
            Keys::AesCm(k) => {
                let AesCmKeys { aes, salt, auth } = &**k;
                let end = len + 10;
                if buf.len() < end {
                    return Err(SrtpError("no room for the tag"));
                }
                // IV = (salt · 2^16) ⊕ (SSRC · 2^64) ⊕ (index · 2^16).
                let mut iv = [0u8; 16];
                iv[4..8].copy_from_slice(&ssrc);
                iv[8..12].copy_from_slice(&roc.to_be_bytes());
                iv[12..14].copy_from_slice(&seq);
                for (v, s) in iv.iter_mut().zip(salt) {
                    *v ^= s;
                }
                let core = ctr::CtrCore::<aes::Aes128, ctr::flavors::Ctr128BE>::inner_iv_init(
                    aes.clone(),
                    &iv.into(),
                );
                let mut ctr = ctr::Ctr128BE::<aes::Aes128>::from_core(core);
                ctr.apply_keystream(&mut buf[header_len..len]);
                let mut mac = auth.clone();
                mac.update(&buf[..len]);
                mac.update(&roc.to_be_bytes());
                let tag = mac.finalize().into_bytes();
                buf[len..end].copy_from_slice(&tag[..10]);
                Ok(end)
            }
            Keys::Gcm(k) => {
                let GcmKeys { key, salt } = &**k;
                let end = len + 16;
                if buf.len() < end {
                    return Err(SrtpError("no room for the tag"));
                }
                let mut iv = [0u8; 12];
                iv[2..6].copy_from_slice(&ssrc);
                iv[6..10].copy_from_slice(&roc.to_be_bytes());
                iv[10..12].copy_from_slice(&seq);
                for (v, s) in iv.iter_mut().zip(salt) {
                    *v ^= s;
                }
                let (head, rest) = buf.split_at_mut(header_len);
                let nonce = ring::aead::Nonce::assume_unique_for_key(iv);
                let tag = key
                    .seal_in_place_separate_tag(
                        nonce,
                        ring::aead::Aad::from(&*head),
                        &mut rest[..len - header_len],
                    )
                    .map_err(|_| SrtpError("AES-GCM seal"))?;
                buf[len..end].copy_from_slice(tag.as_ref());
                Ok(end)
            }
        }
    }
}

/// The rollover counter of one outgoing SSRC (RFC 3711 §3.3.1), kept
/// from the sequence numbers sent on it: a new packet past the highest
/// moves it on, a retransmission of an older one (even from before a
/// wrap) is protected with the counter it was first sent with.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rollover {
    /// `ROC << 16 | highest sequence number`, once a packet was sent.
    highest: Option<u64>,
}

impl Rollover {
    /// The rollover counter to protect `seq` with; remembers `seq`.
    pub fn next(&mut self, seq: u16) -> u32 {
        let Some(highest) = self.highest else {
            self.highest = Some(u64::from(seq));
            return 0;
        };
        let roc = (highest >> 16) as u32;
        let s_l = highest as u16;
        let v = if s_l < 0x8000 {
            if seq > s_l && seq - s_l > 0x8000 {
                roc.saturating_sub(1)
            } else {
                roc
            }
        } else if s_l - 0x8000 > seq {
            roc.wrapping_add(1)
        } else {
            roc
        };
        let index = (u64::from(v) << 16) | u64::from(seq);
        if index > highest {
            self.highest = Some(index);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::header::Header;
    use rtc::shared::marshal::Marshal;
    use rtc::srtp::context::Context;
    use rtc::srtp::protection_profile::ProtectionProfile;

    fn packet(seq: u16, payload_len: usize, ext: bool) -> (Vec<u8>, usize) {
        let mut header = Header {
            version: 2,
            payload_type: 96,
            sequence_number: seq,
            timestamp: 90_000u32.wrapping_mul(u32::from(seq)),
            ssrc: 0x1234_5678,
            marker: seq.is_multiple_of(3),
            ..Default::default()
        };
        if ext {
            header
                .set_extension(3, bytes::Bytes::from_static(&[1, 2, 3]))
                .unwrap();
        }
        let mut raw = header.marshal().unwrap().to_vec();
        let header_len = raw.len();
        raw.extend((0..payload_len).map(|i| (i * 7 + usize::from(seq)) as u8));
        (raw, header_len)
    }

    /// Build an `rtc` SRTP context through a capturing provider, recover
    /// its key, and protect packets both ways: byte for byte the same,
    /// across a sequence-number rollover.
    fn same_bytes_as_rtc(profile: Profile, rtc_profile: ProtectionProfile) {
        let capture = KeyCapture::new(rtc::crypto::default_provider().unwrap());
        let key: Vec<u8> = (0u8..16).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        let salt: Vec<u8> = (0..profile.salt_len() as u8).map(|i| i ^ 0xc3).collect();
        let mut ctx = Context::new(&key, &salt, rtc_profile, None, None, capture.crypto()).unwrap();
        let captured = capture.master_keys(profile);
        let first = captured.first().expect("a captured key");
        assert_eq!(&first.key[..], &key[..]);
        assert_eq!(&first.salt[..salt.len()], &salt[..]);
        let ours = Protector::new(profile, first).unwrap();
        let mut roc = 0u32;
        let mut last: Option<u16> = None;
        for (i, seq) in (65_500u16..=u16::MAX).chain(0..40).enumerate() {
            if last.is_some_and(|l| seq < l) {
                roc += 1;
            }
            last = Some(seq);
            let (raw, header_len) = packet(seq, 20 + i % 1200, i % 2 == 0);
            let theirs = ctx.encrypt_rtp(&raw).unwrap();
            let mut buf = raw.clone();
            buf.resize(raw.len() + profile.tag_len(), 0);
            let n = ours.protect(&mut buf, raw.len(), header_len, roc).unwrap();
            assert_eq!(n, theirs.len());
            assert_eq!(&buf[..n], &theirs[..], "packet {seq} (roc {roc}) differs");
        }
        assert_eq!(roc, 1);
    }

    #[test]
    fn aes_cm_matches_rtc() {
        same_bytes_as_rtc(
            Profile::AesCm128HmacSha1_80,
            ProtectionProfile::Aes128CmHmacSha1_80,
        );
    }

    #[test]
    fn gcm_matches_rtc() {
        same_bytes_as_rtc(Profile::AeadAes128Gcm, ProtectionProfile::AeadAes128Gcm);
    }

    #[test]
    fn bad_buffers_are_refused_not_panicked_on() {
        let master = MasterKey {
            key: [1; 16],
            salt: [2; 14],
        };
        for profile in [Profile::AesCm128HmacSha1_80, Profile::AeadAes128Gcm] {
            let p = Protector::new(profile, &master).unwrap();
            let (raw, header_len) = packet(7, 30, false);
            let mut short = raw.clone();
            assert!(p.protect(&mut short, raw.len(), header_len, 0).is_err());
            let mut buf = raw.clone();
            buf.resize(raw.len() + 16, 0);
            assert!(p.protect(&mut buf, raw.len(), 8, 0).is_err());
            assert!(p.protect(&mut buf, 5, 12, 0).is_err());
            let too_long = buf.len() + 1;
            assert!(p.protect(&mut buf, too_long, 12, 0).is_err());
        }
    }

    /// Our rollover counters agree with `rtc`'s on a stream that wraps
    /// while retransmissions of up to 600 packets back are interleaved
    /// (the output is byte-identical only if the ROC is).
    #[test]
    fn rollover_matches_rtc_with_retransmissions_across_the_wrap() {
        for (profile, rtc_profile) in [
            (Profile::AeadAes128Gcm, ProtectionProfile::AeadAes128Gcm),
            (
                Profile::AesCm128HmacSha1_80,
                ProtectionProfile::Aes128CmHmacSha1_80,
            ),
        ] {
            let master = MasterKey {
                key: [9; 16],
                salt: [4; 14],
            };
            let n = profile.salt_len();
            let provider = rtc::crypto::default_provider().unwrap();
            let mut ctx = Context::new(
                &master.key,
                &master.salt[..n],
                rtc_profile,
                None,
                None,
                provider.crypto(),
            )
            .unwrap();
            let ours = Protector::new(profile, &master).unwrap();
            let mut roc = Rollover::default();
            let mut seed = 7u32;
            let mut next: u16 = 64_000;
            for i in 0..6_000u32 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                // Mostly new packets; every fifth a retransmission.
                let seq = if i > 10 && seed.is_multiple_of(5) {
                    next.wrapping_sub(1 + (seed >> 16) as u16 % 600)
                } else {
                    next = next.wrapping_add(1);
                    next
                };
                let (raw, header_len) = packet(seq, 30, false);
                let theirs = ctx.encrypt_rtp(&raw).unwrap();
                let mut buf = raw.clone();
                buf.resize(raw.len() + profile.tag_len(), 0);
                let r = roc.next(seq);
                let len = ours.protect(&mut buf, raw.len(), header_len, r).unwrap();
                assert_eq!(&buf[..len], &theirs[..], "packet {i} (seq {seq}, roc {r})");
            }
            assert_eq!(
                roc.highest.map(|h| h >> 16),
                Some(1),
                "the stream wrapped once"
            );
        }
    }

    #[test]
    fn rollover_follows_rfc_3711() {
        let mut r = Rollover::default();
        assert_eq!(r.next(65_534), 0);
        assert_eq!(r.next(65_535), 0);
        assert_eq!(r.next(0), 1);
        assert_eq!(r.next(65_535), 0, "a late packet from before the wrap");
        assert_eq!(r.next(1), 1);
        // Early in a stream nothing goes below zero.
        let mut r = Rollover::default();
        assert_eq!(r.next(10), 0);
        assert_eq!(r.next(65_000), 0);
    }
}
