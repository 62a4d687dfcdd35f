//! Signing digests with an AWS KMS asymmetric key (`docs/integrity.md`), by the digest function
//! and `auditstream digest s3://…`; and reading its public key for `auditstream verify`.
//!
//! The key is of spec `ECC_NIST_P256`, usage `SIGN_VERIFY`; the algorithm `ECDSA_SHA_256`. What is
//! signed is the short statement naming the digest file's SHA-256
//! ([`crate::integrity::digest::statement`]), as a raw message: a digest of any size is then
//! signed within the 4,096 bytes KMS takes raw, and `openssl dgst -sha256 -verify` checks the
//! signature of the statement (<https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html>).

use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};

use crate::integrity::archive::ArchiveError;
use crate::integrity::signature::{Algorithm, DigestSigner};

/// The variable naming the key: its ARN, id or alias.
pub const DIGEST_KEY_VAR: &str = "AUDITSTREAM_DIGEST_KMS_KEY_ID";

pub struct KmsSigner {
    client: aws_sdk_kms::Client,
    key_id: String,
}

impl KmsSigner {
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        KmsSigner { client, key_id: key_id.into() }
    }

    /// The key's public half, `SubjectPublicKeyInfo` DER.
    pub async fn public_key(&self) -> Result<Vec<u8>, ArchiveError> {
        let out = self.client.get_public_key().key_id(&self.key_id).send().await.map_err(|e| {
            ArchiveError(format!(
                "KMS key {}: GetPublicKey failed: {} (does the caller have kms:GetPublicKey on it?)",
                self.key_id,
                aws_sdk_kms::error::DisplayErrorContext(&e)
            ))
        })?;
        out.public_key().map(|b| b.as_ref().to_vec()).ok_or_else(|| ArchiveError(format!("KMS key {}: GetPublicKey returned no key", self.key_id)))
    }
}

#[async_trait]
impl DigestSigner for KmsSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EcdsaP256Sha256
    }

    fn key_id(&self) -> String {
        self.key_id.clone()
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ArchiveError> {
        let out = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(message.to_vec()))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| {
                ArchiveError(format!(
                    "KMS key {}: Sign failed: {} (is it an ECC_NIST_P256 SIGN_VERIFY key, and may the caller kms:Sign with it?)",
                    self.key_id,
                    aws_sdk_kms::error::DisplayErrorContext(&e)
                ))
            })?;
        out.signature().map(|b| b.as_ref().to_vec()).ok_or_else(|| ArchiveError(format!("KMS key {}: Sign returned no signature", self.key_id)))
    }
}
