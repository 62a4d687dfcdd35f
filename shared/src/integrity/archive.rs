//! The port the digest step and verification act through: an object store archive read and
//! written by key. The S3 and `dir:` adapters implement it; nothing in [`crate::integrity`] does
//! I/O of its own.

use async_trait::async_trait;

use crate::integrity::checksum::Recorded;
use crate::pipeline::key::KeyPrefix;
use crate::pipeline::timestamp::UtcTime;

/// A key found by listing, with the time the store says it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub modified: UtcTime,
}

/// A failed read or write of the archive, naming what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ArchiveError(pub String);

#[async_trait]
pub trait Archive: Send + Sync {
    /// `s3://bucket/prefix`, `dir:./audit-logs`.
    fn name(&self) -> String;

    /// The key prefix of the archive's events and records.
    fn key_prefix(&self) -> &KeyPrefix;

    /// Every key under `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, ArchiveError>;

    /// The object at `key`, or `None` when there is none.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ArchiveError>;

    /// The size and SHA-256 the store keeps for `key` (S3's checksum, without a download), or
    /// `None` when there is no object.
    async fn recorded(&self, key: &str) -> Result<Option<Recorded>, ArchiveError>;

    /// Writes `body` at `key` unless something is there; `false` when something was.
    async fn put_record(&self, key: &str, body: Vec<u8>) -> Result<bool, ArchiveError>;
}
