//! The crypto provider of every peer connection: `rtc`'s default, plus
//! ECDSA signatures by **P-224** certificate keys, which the default
//! (`ring`) cannot verify.
//!
//! Why: FFmpeg built with GnuTLS — the `whip` muxer of PyPI's `av` wheels,
//! and many distribution builds — makes its self-signed DTLS certificate
//! on secp224r1. Its ServerKeyExchange (when it is the DTLS server, as its
//! `a=setup:passive` offers make it) and its CertificateVerify (when it is
//! the client, `whip_flags=dtls_active`) are ECDSA signatures by that key.
//! `rtc` reads an ECDSA key by its length (97 bytes: P-384, anything else:
//! P-256) and hands `ring` a 57-byte P-224 point as P-256, so every such
//! handshake failed with "expected and actual key signature do not match".
//! Signature schemes, cipher suites or our own certificate cannot avoid it
//! (the peer's key signs whatever suite is chosen), so we verify P-224
//! ourselves (RustCrypto's `p224`) — through the public provider hook
//! (`SettingEngineBuilder::with_crypto_provider`), no change to `rtc`.
//!
//! A P-224 key is only accepted for TLS 1.2's ECDSA+SHA-256/384 schemes:
//! 112-bit security, as strong as the SHA-1-signed certificates WebRTC
//! fingerprints already tolerate; the fingerprint in the offer still
//! authenticates the certificate.

use std::sync::{Arc, OnceLock};

use p224::ecdsa::signature::hazmat::PrehashVerifier;
use rtc::crypto::{
    BlockCipherAlgorithm, CryptoError, PublicKey, PublicKeyEncoding, RTCCrypto, RTCCryptoProvider,
    RTCRandom, SignatureScheme,
};
use sha2::Digest;

/// The `RTCCrypto` methods a wrapping provider passes on unchanged to
/// `self.inner.crypto()`: all but `block_encrypt` and `verify_signature`,
/// which each wrapper (this one, `srtp::KeyCapture`) writes itself.
macro_rules! forward_crypto {
    () => {
        fn supports(&self, algorithm: rtc::crypto::CryptoAlgorithm) -> bool {
            self.inner.crypto().supports(algorithm)
        }
        fn hash(
            &self,
            algorithm: rtc::crypto::HashAlgorithm,
            data: &[u8],
        ) -> Result<Vec<u8>, rtc::crypto::CryptoError> {
            self.inner.crypto().hash(algorithm, data)
        }
        fn new_hmac(
            &self,
            algorithm: rtc::crypto::HmacAlgorithm,
            key: &[u8],
        ) -> Result<Box<dyn rtc::crypto::Mac>, rtc::crypto::CryptoError> {
            self.inner.crypto().new_hmac(algorithm, key)
        }
        fn new_stream_cipher(
            &self,
            algorithm: rtc::crypto::StreamCipherAlgorithm,
            key: &[u8],
        ) -> Result<Box<dyn rtc::crypto::StreamCipher>, rtc::crypto::CryptoError> {
            self.inner.crypto().new_stream_cipher(algorithm, key)
        }
        fn new_aead(
            &self,
            algorithm: rtc::crypto::AeadAlgorithm,
            key: &[u8],
        ) -> Result<Box<dyn rtc::crypto::AeadCipher>, rtc::crypto::CryptoError> {
            self.inner.crypto().new_aead(algorithm, key)
        }
        fn new_cbc(
            &self,
            algorithm: rtc::crypto::CbcAlgorithm,
            key: &[u8],
        ) -> Result<Box<dyn rtc::crypto::CbcCipher>, rtc::crypto::CryptoError> {
            self.inner.crypto().new_cbc(algorithm, key)
        }
        fn start_key_exchange(
            &self,
            algorithm: rtc::crypto::KeyExchangeAlgorithm,
        ) -> Result<Box<dyn rtc::crypto::ActiveKeyExchange>, rtc::crypto::CryptoError> {
            self.inner.crypto().start_key_exchange(algorithm)
        }
        fn generate_signing_key(
            &self,
            scheme: rtc::crypto::SignatureScheme,
        ) -> Result<std::sync::Arc<dyn rtc::crypto::SigningKey>, rtc::crypto::CryptoError> {
            self.inner.crypto().generate_signing_key(scheme)
        }
        fn import_signing_key(
            &self,
            scheme: rtc::crypto::SignatureScheme,
            pkcs8_der: &[u8],
        ) -> Result<std::sync::Arc<dyn rtc::crypto::SigningKey>, rtc::crypto::CryptoError> {
            self.inner.crypto().import_signing_key(scheme, pkcs8_der)
        }
    };
}
pub(crate) use forward_crypto;

/// Length of an uncompressed SEC1 P-224 point (`04 || x || y`).
const P224_POINT: usize = 1 + 2 * 28;

/// `rtc`'s default provider with P-224 ECDSA verification added.
pub struct Provider {
    inner: Arc<dyn RTCCryptoProvider>,
    crypto: Crypto,
}

struct Crypto {
    inner: Arc<dyn RTCCryptoProvider>,
}

impl Provider {
    pub fn new(inner: Arc<dyn RTCCryptoProvider>) -> Self {
        Provider {
            crypto: Crypto {
                inner: inner.clone(),
            },
            inner,
        }
    }
}

/// The process's one such provider (over `rtc`'s default); `None` if `rtc`
/// has no default provider, then connections use `rtc`'s own choice.
pub fn shared() -> Option<Arc<dyn RTCCryptoProvider>> {
    static SHARED: OnceLock<Option<Arc<dyn RTCCryptoProvider>>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            rtc::crypto::default_provider()
                .ok()
                .map(|p| Arc::new(Provider::new(p)) as Arc<dyn RTCCryptoProvider>)
        })
        .clone()
}

/// Verify an ECDSA signature by a P-224 key: `Some(result)` when
/// `public_key` is one, `None` for every other key (the default provider's
/// job).
fn verify_p224(
    scheme: SignatureScheme,
    public_key: &PublicKey<'_>,
    message: &[u8],
    signature: &[u8],
) -> Option<Result<(), CryptoError>> {
    if public_key.encoding != PublicKeyEncoding::EcUncompressedPoint
        || public_key.bytes.len() != P224_POINT
    {
        return None;
    }
    let digest: Vec<u8> = match scheme {
        SignatureScheme::EcdsaP256Sha256 | SignatureScheme::EcdsaP384Sha256 => {
            sha2::Sha256::digest(message).to_vec()
        }
        SignatureScheme::EcdsaP384Sha384 => sha2::Sha384::digest(message).to_vec(),
        _ => return None,
    };
    let verified = p224::ecdsa::VerifyingKey::from_sec1_bytes(public_key.bytes)
        .ok()
        .zip(p224::ecdsa::DerSignature::try_from(signature).ok())
        .is_some_and(|(key, sig)| key.verify_prehash(&digest, &sig).is_ok());
    Some(match verified {
        true => Ok(()),
        false => Err(CryptoError::InvalidSignature),
    })
}

impl RTCCryptoProvider for Provider {
    fn name(&self) -> &'static str {
        "sfu-dtls-compat"
    }
    fn crypto(&self) -> &dyn RTCCrypto {
        &self.crypto
    }
    fn random(&self) -> &dyn RTCRandom {
        self.inner.random()
    }
}

impl RTCCrypto for Crypto {
    fn verify_signature(
        &self,
        scheme: SignatureScheme,
        public_key: PublicKey<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        match verify_p224(scheme, &public_key, message, signature) {
            Some(result) => result,
            None => self
                .inner
                .crypto()
                .verify_signature(scheme, public_key, message, signature),
        }
    }
    fn block_encrypt(
        &self,
        algorithm: BlockCipherAlgorithm,
        key: &[u8],
        block: &mut [u8],
    ) -> Result<(), CryptoError> {
        self.inner.crypto().block_encrypt(algorithm, key, block)
    }
    forward_crypto!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use p224::ecdsa::signature::hazmat::PrehashSigner;

    fn key() -> p224::ecdsa::SigningKey {
        p224::ecdsa::SigningKey::from_slice(&[7u8; 28]).unwrap()
    }

    fn sign(message: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let key = key();
        let digest = sha2::Sha256::digest(message);
        let sig: p224::ecdsa::Signature = key.sign_prehash(&digest).unwrap();
        let point = key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        (point, sig.to_der().as_bytes().to_vec())
    }

    fn verify(point: &[u8], message: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        let provider = Provider::new(rtc::crypto::default_provider().unwrap());
        provider.crypto().verify_signature(
            SignatureScheme::EcdsaP256Sha256,
            PublicKey {
                encoding: PublicKeyEncoding::EcUncompressedPoint,
                bytes: point,
            },
            message,
            sig,
        )
    }

    #[test]
    fn verifies_p224_signatures_that_ring_cannot() {
        let message = b"client random || server random || ecdh params";
        let (point, sig) = sign(message);
        assert_eq!(point.len(), P224_POINT);
        // What `rtc`'s default provider says of it: the handshake's error.
        let ring = rtc::crypto::default_provider().unwrap();
        assert!(ring
            .crypto()
            .verify_signature(
                SignatureScheme::EcdsaP256Sha256,
                PublicKey {
                    encoding: PublicKeyEncoding::EcUncompressedPoint,
                    bytes: &point,
                },
                message,
                &sig,
            )
            .is_err());
        assert_eq!(verify(&point, message, &sig), Ok(()));
    }

    #[test]
    fn refuses_bad_p224_signatures_and_garbage() {
        let message = b"signed";
        let (point, sig) = sign(message);
        assert!(verify(&point, b"another message", &sig).is_err());
        let mut flipped = sig.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(verify(&point, message, &flipped).is_err());
        assert!(verify(&point, message, &[0x30, 0x02, 0x02]).is_err());
        assert!(verify(&[4u8; P224_POINT], message, &sig).is_err());
    }

    #[test]
    fn other_keys_go_to_the_default_provider() {
        // A P-256 point is not ours to judge: the default provider refuses
        // this nonsense signature as it always did.
        let point = [4u8; 65];
        assert!(verify(&point, b"m", &[0x30, 0]).is_err());
        assert!(verify_p224(
            SignatureScheme::EcdsaP256Sha256,
            &PublicKey {
                encoding: PublicKeyEncoding::EcUncompressedPoint,
                bytes: &point
            },
            b"m",
            &[]
        )
        .is_none());
    }
}
