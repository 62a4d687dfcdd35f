//! The port the digest step and verification act through: an object store archive read and
//! written by key. The S3 and `dir:` adapters implement it; nothing in [`crate::integrity`] does
//! I/O of its own.

use std::collections::VecDeque;

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

/// The most keys one [`Archive::list_page`] answers with: what one S3 `ListObjectsV2` returns.
pub const PAGE: usize = 1000;

#[async_trait]
pub trait Archive: Send + Sync {
    /// `s3://bucket/prefix`, `dir:./audit-logs`.
    fn name(&self) -> String;

    /// The key prefix of the archive's events and records.
    fn key_prefix(&self) -> &KeyPrefix;

    /// The first keys under `prefix` that sort after `after` (byte order, as S3 lists), at most
    /// [`PAGE`] of them, in key order; none when the listing is over. An archive of any size is
    /// listed a page at a time ([`Listing`]), never whole.
    async fn list_page(&self, prefix: &str, after: Option<&str>) -> Result<Vec<Listed>, ArchiveError>;

    /// The object at `key`, or `None` when there is none.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ArchiveError>;

    /// The size and SHA-256 the store keeps for `key` (S3's checksum, without a download), or
    /// `None` when there is no object.
    async fn recorded(&self, key: &str) -> Result<Option<Recorded>, ArchiveError>;

    /// Writes `body` at `key` unless something is there; `false` when something was.
    async fn put_record(&self, key: &str, body: Vec<u8>) -> Result<bool, ArchiveError>;
}

/// The keys under a prefix in key order, read one [`Archive::list_page`] at a time: at most one
/// page is held.
pub struct Listing<'a> {
    archive: &'a dyn Archive,
    prefix: String,
    page: VecDeque<Listed>,
    /// The last key read, where the next page starts.
    after: Option<String>,
    done: bool,
}

impl<'a> Listing<'a> {
    pub fn new(archive: &'a dyn Archive, prefix: &str) -> Listing<'a> {
        Listing::after(archive, prefix, None)
    }

    /// The keys under `prefix` that sort after `after`.
    pub fn after(archive: &'a dyn Archive, prefix: &str, after: Option<String>) -> Listing<'a> {
        Listing { archive, prefix: prefix.to_owned(), page: VecDeque::new(), after, done: false }
    }

    /// The next key, without taking it.
    pub async fn peek(&mut self) -> Result<Option<&Listed>, ArchiveError> {
        if self.page.is_empty() && !self.done {
            let page = self.archive.list_page(&self.prefix, self.after.as_deref()).await?;
            match page.last() {
                None => self.done = true,
                // A page that does not move past where it started would be asked for again and again.
                Some(last) if self.after.as_ref().is_some_and(|after| last.key <= *after) => {
                    return Err(ArchiveError(format!("{}: listing {} after {:?} answered keys before it", self.archive.name(), self.prefix, self.after)));
                }
                Some(last) => self.after = Some(last.key.clone()),
            }
            self.page = page.into();
        }
        Ok(self.page.front())
    }

    /// The next key.
    pub async fn next(&mut self) -> Result<Option<Listed>, ArchiveError> {
        self.peek().await?;
        Ok(self.page.pop_front())
    }
}
