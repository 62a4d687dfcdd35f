//! Signatures of digests: ECDSA on P-256 with SHA-256 (`ECDSA_SHA_256`, an AWS KMS asymmetric key
//! of spec `ECC_NIST_P256`) for S3 archives, Ed25519 with a local key file for `dir:` archives.
//! Both sign the same short [`statement`](crate::integrity::digest::statement) naming the digest
//! file's SHA-256 — small enough for KMS to sign as a raw message whatever the digest's size —
//! which `openssl` checks as it is (`docs/integrity.md`).
//!
//! Public keys are X.509 `SubjectPublicKeyInfo` (what `kms get-public-key` returns, DER, and
//! `openssl pkey -pubout` writes, PEM); the algorithm is read from the key. An Ed25519 private key
//! file is PKCS#8 PEM ([RFC 8410](https://www.rfc-editor.org/rfc/rfc8410)), which `openssl pkey`
//! reads.

use async_trait::async_trait;
use base64::Engine;
use ed25519_dalek::Signer as _;
use p256::pkcs8::DecodePublicKey;

use crate::integrity::archive::ArchiveError;

/// What signs digests: an AWS KMS asymmetric key, or a local Ed25519 key.
#[async_trait]
pub trait DigestSigner: Send + Sync {
    fn algorithm(&self) -> Algorithm;

    /// The key's name as the digest records it (a KMS key ARN, or `ed25519:` and a key file's
    /// public key fingerprint).
    fn key_id(&self) -> String;

    /// The signature of `message` (a digest's [`crate::integrity::digest::statement`]).
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ArchiveError>;
}

/// A signing algorithm of digests, named as in the digest's `signing.algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// AWS KMS's `ECDSA_SHA_256` on an `ECC_NIST_P256` key; the signature is DER.
    EcdsaP256Sha256,
    /// Ed25519 (RFC 8032); the signature is 64 bytes.
    Ed25519,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256Sha256 => "ECDSA_SHA_256",
            Algorithm::Ed25519 => "ED25519",
        }
    }
}

/// `SubjectPublicKeyInfo` of an Ed25519 key, before its 32 bytes (RFC 8410, section 10.1).
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
/// PKCS#8 `PrivateKeyInfo` of an Ed25519 key, before its 32-byte seed (RFC 8410, section 10.3).
const ED25519_PKCS8_PREFIX: [u8; 16] = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the public key is neither an Ed25519 nor a P-256 (ECC_NIST_P256) SubjectPublicKeyInfo in PEM or DER")]
    UnknownPublicKey,
    #[error("the private key is not an Ed25519 key in PKCS#8 PEM (BEGIN PRIVATE KEY)")]
    BadPrivateKey,
}

/// A key that checks signatures.
#[derive(Debug, Clone)]
pub enum PublicKey {
    EcdsaP256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl PublicKey {
    /// From PEM (`-----BEGIN PUBLIC KEY-----`) or DER.
    pub fn parse(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        let der = pem_body(bytes, "PUBLIC KEY").unwrap_or_else(|| bytes.to_vec());
        if let Some(raw) = der.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
            let raw: [u8; 32] = raw.try_into().map_err(|_| KeyError::UnknownPublicKey)?;
            return ed25519_dalek::VerifyingKey::from_bytes(&raw).map(PublicKey::Ed25519).map_err(|_| KeyError::UnknownPublicKey);
        }
        p256::ecdsa::VerifyingKey::from_public_key_der(&der).map(PublicKey::EcdsaP256).map_err(|_| KeyError::UnknownPublicKey)
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::EcdsaP256(_) => Algorithm::EcdsaP256Sha256,
            PublicKey::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier as _;
        match self {
            PublicKey::EcdsaP256(key) => p256::ecdsa::Signature::from_der(signature).is_ok_and(|sig| key.verify(message, &sig).is_ok()),
            PublicKey::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature).is_ok_and(|sig| key.verify_strict(message, &sig).is_ok()),
        }
    }
}

/// A local Ed25519 signing key (`dir:` archives).
pub struct Ed25519Key(ed25519_dalek::SigningKey);

impl Ed25519Key {
    /// A new key from the operating system's randomness (through `rand`'s thread generator, a
    /// CSPRNG seeded by the OS).
    pub fn generate() -> Ed25519Key {
        Ed25519Key(ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>()))
    }

    /// From PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as [`Ed25519Key::to_pem`] and
    /// `openssl genpkey -algorithm ed25519` write it.
    pub fn from_pem(text: &[u8]) -> Result<Ed25519Key, KeyError> {
        let der = pem_body(text, "PRIVATE KEY").ok_or(KeyError::BadPrivateKey)?;
        let seed: [u8; 32] = der.strip_prefix(&ED25519_PKCS8_PREFIX[..]).and_then(|s| s.try_into().ok()).ok_or(KeyError::BadPrivateKey)?;
        Ok(Ed25519Key(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    pub fn to_pem(&self) -> String {
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        der.extend_from_slice(self.0.as_bytes());
        pem("PRIVATE KEY", &der)
    }

    /// The public half, as `SubjectPublicKeyInfo` PEM.
    pub fn public_pem(&self) -> String {
        let mut der = ED25519_SPKI_PREFIX.to_vec();
        der.extend_from_slice(self.0.verifying_key().as_bytes());
        pem("PUBLIC KEY", &der)
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey::Ed25519(self.0.verifying_key())
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0.sign(message).to_bytes().to_vec()
    }
}

#[async_trait::async_trait]
impl DigestSigner for Ed25519Key {
    fn algorithm(&self) -> Algorithm {
        Algorithm::Ed25519
    }

    /// `ed25519:` and the SHA-256 of the public key's 32 bytes, in hex.
    fn key_id(&self) -> String {
        format!("ed25519:{}", crate::integrity::checksum::Sha256Sum::of(self.0.verifying_key().as_bytes()).hex())
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ArchiveError> {
        Ok(Ed25519Key::sign(self, message))
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// The DER inside a PEM block with this label, if `text` is one.
fn pem_body(text: &[u8], label: &str) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(text).ok()?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ed25519_key_signs_and_its_pem_forms_read_back() {
        let key = Ed25519Key::generate();
        let signature = key.sign(b"digest bytes");
        let public = PublicKey::parse(key.public_pem().as_bytes()).unwrap();
        assert_eq!(public.algorithm(), Algorithm::Ed25519);
        assert!(public.verifies(b"digest bytes", &signature));
        assert!(!public.verifies(b"digest bytez", &signature));
        let again = Ed25519Key::from_pem(key.to_pem().as_bytes()).unwrap();
        assert_eq!(again.public_pem(), key.public_pem());
        assert!(key.to_pem().starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_eq!(Ed25519Key::from_pem(b"nonsense").err(), Some(KeyError::BadPrivateKey));
        assert!(PublicKey::parse(b"nonsense").is_err());
    }

    #[test]
    fn a_p256_public_key_checks_a_der_ecdsa_signature_of_the_message() {
        use p256::ecdsa::signature::Signer as _;
        use p256::pkcs8::EncodePublicKey as _;
        // What KMS does for ECDSA_SHA_256: SHA-256 of the message, ECDSA, DER.
        let signing = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let signature: p256::ecdsa::Signature = signing.sign(b"digest bytes");
        let der = signing.verifying_key().to_public_key_der().unwrap();
        let public = PublicKey::parse(der.as_bytes()).unwrap();
        assert_eq!(public.algorithm(), Algorithm::EcdsaP256Sha256);
        assert!(public.verifies(b"digest bytes", signature.to_der().as_bytes()));
        assert!(!public.verifies(b"digest bytez", signature.to_der().as_bytes()));
        assert!(!public.verifies(b"digest bytes", b"not a signature"));
    }
}
