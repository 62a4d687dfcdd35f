//! Where a replay's events come from: an archive that `s3-writer` or `auditstream run --to dir:`
//! wrote, listed in key order and read object by object (`auditstream replay`,
//! `docs/operations.md`).
//!
//! [`select`] decides from a key alone what is sent and [`body`] turns an object back into its
//! event (both pure); this module does the I/O: listing an
//! S3 bucket (ListObjectsV2, a page of at most 1,000 keys in memory at a time) or walking a
//! directory (one folder's names at a time, in the same key order), and reading one object's
//! bytes. An archive is only ever read: nothing here writes or deletes.

pub mod body;
pub mod select;

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use futures::stream::{BoxStream, StreamExt};

use crate::aws::errors::{classify, AwsCall};
use crate::aws::s3::read_object;
use crate::delivery::retry::{Deadline, DeliveryError, RetryPolicy};
use crate::pipeline::key::KeyPrefix;

/// An archive to replay from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveLocation {
    /// `s3://BUCKET[/PREFIX]`.
    S3 { bucket: String, prefix: KeyPrefix },
    /// `dir:PATH`: files laid out as the keys, without a prefix (as `run --to dir:` writes).
    Dir(PathBuf),
}

impl std::fmt::Display for ArchiveLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{}", prefix.as_str()),
            ArchiveLocation::Dir(path) => write!(f, "dir:{}", path.display()),
        }
    }
}

/// One object of the archive, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedObject {
    /// The full key (the prefix included); for `dir:`, the path below the directory with `/`.
    pub key: String,
    pub size: u64,
    /// False for what a directory holds besides files and folders (a symbolic link, a pipe):
    /// never an event, which the `dir:` destination writes as a regular file.
    pub regular: bool,
}

/// A listing that could not go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot list {archive}: {message}")]
pub struct ListError {
    pub archive: String,
    pub message: String,
}

/// An archive, listed and read.
pub struct ArchiveSource {
    location: ArchiveLocation,
    /// Set for S3.
    client: Option<aws_sdk_s3::Client>,
    retry: RetryPolicy,
}

impl ArchiveSource {
    /// `client` as built by [`crate::aws::s3::s3_client`]: the SDK's retries off, ours apply.
    pub fn s3(client: aws_sdk_s3::Client, bucket: String, prefix: KeyPrefix) -> Self {
        ArchiveSource { location: ArchiveLocation::S3 { bucket, prefix }, client: Some(client), retry: RetryPolicy::default() }
    }

    pub fn dir(root: impl Into<PathBuf>) -> Self {
        ArchiveSource { location: ArchiveLocation::Dir(root.into()), client: None, retry: RetryPolicy::default() }
    }

    pub fn location(&self) -> &ArchiveLocation {
        &self.location
    }

    /// The prefix the events' keys begin with (a `dir:` archive has none).
    pub fn prefix(&self) -> KeyPrefix {
        match &self.location {
            ArchiveLocation::S3 { prefix, .. } => prefix.clone(),
            ArchiveLocation::Dir(_) => KeyPrefix::default(),
        }
    }

    /// Every object of the archive whose key is after `start_after` (all when `None`), in key
    /// order (UTF-8 bytes, as S3 lists), lazily. Transient listing failures are retried under
    /// the shared policy; a listing that still fails ends the stream with its error.
    pub fn list(&self, start_after: Option<String>) -> BoxStream<'static, Result<ArchivedObject, ListError>> {
        match (&self.location, &self.client) {
            (ArchiveLocation::S3 { bucket, prefix }, Some(client)) => {
                list_s3(client.clone(), bucket.clone(), prefix.as_str().to_owned(), start_after, self.retry)
            }
            (location, _) => {
                let root = match location {
                    ArchiveLocation::Dir(root) => root.clone(),
                    ArchiveLocation::S3 { .. } => PathBuf::new(),
                };
                walk_dir(root, self.location.to_string(), start_after)
            }
        }
    }

    /// The bytes of the object at `key`, refused (permanently) when over `max_bytes`: nothing
    /// larger is an audit event. Transient failures are retried under the shared policy.
    pub async fn read(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, DeliveryError> {
        match (&self.location, &self.client) {
            (ArchiveLocation::S3 { bucket, .. }, Some(client)) => self.retry.run(Deadline::NONE, |_| read_object(client, bucket, key, max_bytes)).await,
            (ArchiveLocation::Dir(root), _) => read_file(root, key, max_bytes).await,
            (ArchiveLocation::S3 { .. }, None) => Err(DeliveryError::permanent("no S3 client")),
        }
    }
}

fn list_s3(
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    start_after: Option<String>,
    retry: RetryPolicy,
) -> BoxStream<'static, Result<ArchivedObject, ListError>> {
    struct State {
        client: aws_sdk_s3::Client,
        bucket: String,
        prefix: String,
        start_after: Option<String>,
        token: Option<String>,
        page: VecDeque<ArchivedObject>,
        done: bool,
    }
    let state = State { client, bucket, prefix, start_after, token: None, page: VecDeque::new(), done: false };
    futures::stream::unfold(state, move |mut s| async move {
        loop {
            if let Some(object) = s.page.pop_front() {
                return Some((Ok(object), s));
            }
            if s.done {
                return None;
            }
            let at = format!("s3://{}/{}", s.bucket, s.prefix);
            let page = retry
                .run(Deadline::NONE, |_| {
                    let request = s
                        .client
                        .list_objects_v2()
                        .bucket(&s.bucket)
                        .prefix(&s.prefix)
                        .set_start_after(s.start_after.clone())
                        .set_continuation_token(s.token.clone());
                    let at = &at;
                    async move { request.send().await.map_err(|e| classify(AwsCall::s3("ListObjectsV2", at), &e)) }
                })
                .await;
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    s.done = true;
                    return Some((Err(ListError { archive: at, message: e.message }), s));
                }
            };
            s.page.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| Some(ArchivedObject { key: o.key()?.to_owned(), size: o.size().unwrap_or(0).max(0) as u64, regular: true })),
            );
            s.token = page.next_continuation_token().map(str::to_owned);
            s.done = s.token.is_none() || !page.is_truncated().unwrap_or(false);
        }
    })
    .boxed()
}

/// One folder's entries, sorted so that the walk yields keys in key order: a folder sorts as its
/// name followed by `/`, exactly where its keys sort (`a-b/x` < `a/y` < `a0`, as bytes compare).
struct Folder {
    key: String,
    entries: std::vec::IntoIter<Entry>,
}

struct Entry {
    name: String,
    is_dir: bool,
    regular: bool,
    size: u64,
}

fn walk_dir(root: PathBuf, archive: String, start_after: Option<String>) -> BoxStream<'static, Result<ArchivedObject, ListError>> {
    // The walk is blocking file system work: on a thread of its own, a bounded channel ahead.
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    tokio::task::spawn_blocking(move || {
        let fail = |message: String| ListError { archive: archive.clone(), message };
        let mut stack = match read_folder(&root, String::new()) {
            Ok(folder) => vec![folder],
            Err(e) => {
                let _ = tx.blocking_send(Err(fail(format!("cannot read {}: {e}", root.display()))));
                return;
            }
        };
        while let Some(folder) = stack.last_mut() {
            let Some(Entry { name, is_dir, regular, size }) = folder.entries.next() else {
                stack.pop();
                continue;
            };
            let key = format!("{}{name}", folder.key);
            if is_dir {
                let sub = format!("{key}/");
                // A whole folder before the checkpoint is not entered.
                if start_after.as_deref().is_some_and(|after| sub.as_str() < after && !after.starts_with(&sub)) {
                    continue;
                }
                match read_folder(&root.join(&key), sub) {
                    Ok(folder) => stack.push(folder),
                    Err(e) => {
                        let _ = tx.blocking_send(Err(fail(format!("cannot read {key}: {e}"))));
                        return;
                    }
                }
            } else if start_after.as_deref().is_none_or(|after| key.as_str() > after) && tx.blocking_send(Ok(ArchivedObject { key, size, regular })).is_err() {
                return;
            }
        }
    });
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

/// The entries of `dir`, sorted in key order. Symbolic links and names that are not UTF-8 are
/// listed as files (so that the caller names and skips them: the `dir:` destination never writes
/// either); `.tmp-` files, a write in progress of that destination, are left out.
fn read_folder(dir: &Path, key: String) -> std::io::Result<Folder> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tmp-") {
            continue;
        }
        let meta = match std::fs::symlink_metadata(entry.path()) {
            Ok(meta) => meta,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        entries.push(Entry { name, is_dir: meta.is_dir(), regular: meta.is_file(), size: meta.len() });
    }
    let sort_key = |e: &Entry| if e.is_dir { format!("{}/", e.name) } else { e.name.clone() };
    entries.sort_by_cached_key(sort_key);
    Ok(Folder { key, entries: entries.into_iter() })
}

async fn read_file(root: &Path, key: &str, max_bytes: u64) -> Result<Vec<u8>, DeliveryError> {
    let path = root.join(key);
    let at = format!("dir:{}", path.display());
    let file = tokio::fs::symlink_metadata(&path).await.map_err(|e| DeliveryError::permanent(format!("{at}: cannot read it: {e}")))?;
    if !file.is_file() {
        return Err(DeliveryError::permanent(format!("{at} is not a regular file; it is not an audit event")));
    }
    if file.len() > max_bytes {
        return Err(DeliveryError::permanent(format!("{at} is {} bytes, over the {max_bytes} bytes read at most; it is not an audit event", file.len())));
    }
    tokio::fs::read(&path).await.map_err(|e| DeliveryError::permanent(format!("{at}: cannot read it: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn keys(source: &ArchiveSource, after: Option<&str>) -> Vec<String> {
        source.list(after.map(str::to_owned)).map(|o| o.unwrap().key).collect().await
    }

    #[tokio::test]
    async fn a_directory_is_walked_in_the_key_order_s3_lists_and_resumes_after_a_key() {
        let dir = std::env::temp_dir().join(format!("auditstream-replay-{}", rand::random::<u64>()));
        let files = ["a-b/x", "a/y", "a/z/1", "a0", "a/y0", "b.json", "_auditstream/manifests/m.json", "a/.tmp-123"];
        for f in files {
            std::fs::create_dir_all(dir.join(f).parent().unwrap()).unwrap();
            std::fs::write(dir.join(f), f).unwrap();
        }
        let source = ArchiveSource::dir(&dir);
        let mut sorted: Vec<String> = files.iter().filter(|f| !f.contains(".tmp-")).map(|f| f.to_string()).collect();
        sorted.sort();
        assert_eq!(keys(&source, None).await, sorted);
        assert_eq!(keys(&source, Some("a/y")).await, ["a/y0", "a/z/1", "a0", "b.json"]);
        assert_eq!(keys(&source, Some("a/z/")).await, ["a/z/1", "a0", "b.json"]);
        assert_eq!(keys(&source, Some("b.json")).await, Vec::<String>::new());
        assert_eq!(source.read("a/y", 100).await.unwrap(), b"a/y");
        let big = source.read("a/y", 2).await.unwrap_err();
        assert!(big.is_permanent() && big.message.ends_with("is 3 bytes, over the 2 bytes read at most; it is not an audit event"), "{big:?}");
        assert!(source.read("a", 100).await.unwrap_err().message.ends_with("is not a regular file; it is not an audit event"));
        std::fs::remove_dir_all(&dir).unwrap();

        let missing = source.list(None).collect::<Vec<_>>().await;
        assert!(matches!(&missing[..], [Err(ListError { message, .. })] if message.starts_with("cannot read")), "{missing:?}");
    }
}
