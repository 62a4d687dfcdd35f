//! A local directory laid out exactly as the bucket would be: the embedded default of
//! `auditstream run` (`dir:./audit-logs`), and handy in tests.
//!
//! Create-only like the cloud stores: the object is written to a temporary file, then linked into
//! place, which fails if the name exists. A crash mid-write therefore never leaves a partial file
//! under the final name, and an existing object is never replaced.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use crate::destination::{DeliveryError, ObjectStore, PutOutcome};
use crate::key::ObjectKey;

pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn write_new(path: &Path, body: &[u8]) -> Result<PutOutcome, std::io::Error> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension(format!("tmp-{}-{:016x}", std::process::id(), rand::random::<u64>()));
        std::fs::write(&tmp, body)?;
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(PutOutcome::Created),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(PutOutcome::AlreadyExists),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl ObjectStore for DirStore {
    fn describe(&self) -> String {
        format!("dir:{}", self.root.display())
    }

    async fn put_new(&self, key: &ObjectKey, body: Bytes) -> Result<PutOutcome, DeliveryError> {
        // Keys are made of safe segments (see `crate::key`), so joining cannot leave the root.
        let path = self.root.join(key.as_str());
        let describe = self.describe();
        let key = key.to_string();
        tokio::task::spawn_blocking(move || Self::write_new(&path, &body))
            .await
            .map_err(|e| DeliveryError::transient(format!("{describe}: writing {key} was interrupted: {e}")))?
            .map_err(|e| {
                let message = format!("{describe}: cannot write {key}: {e}");
                match e.kind() {
                    ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem | ErrorKind::NotADirectory | ErrorKind::InvalidInput => DeliveryError::permanent(message),
                    _ => DeliveryError::transient(message),
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventMeta, JobMeta};
    use crate::key::{KeyLayout, KeyPrefix};
    use crate::timestamp::UtcTime;

    fn key() -> ObjectKey {
        let meta = EventMeta::Job(JobMeta { id: "j-1".into(), recipe_id: "2".into(), status: "succeeded".into(), user_id: "3".into(), time: UtcTime::from_epoch_seconds(0) });
        ObjectKey::for_event(&meta, KeyLayout::Standard, &KeyPrefix::default(), b"")
    }

    #[tokio::test]
    async fn writes_once_at_the_key_path_and_never_overwrites() {
        let dir = std::env::temp_dir().join(format!("auditstream-dir-{}", rand::random::<u64>()));
        let store = DirStore::new(&dir);
        assert_eq!(store.put_new(&key(), Bytes::from_static(b"{\"a\":1}")).await.unwrap(), PutOutcome::Created);
        assert_eq!(store.put_new(&key(), Bytes::from_static(b"{\"a\":2}")).await.unwrap(), PutOutcome::AlreadyExists);
        let path = dir.join("3/jobs/2/19700101/j-1/3-2-j-1-19700101000000-succeeded.json");
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}");
        // no temporary files are left behind
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn an_unwritable_root_is_a_clear_permanent_error() {
        let file = std::env::temp_dir().join(format!("auditstream-file-{}", rand::random::<u64>()));
        std::fs::write(&file, b"").unwrap();
        let err = DirStore::new(&file).put_new(&key(), Bytes::new()).await.unwrap_err();
        assert!(err.is_permanent(), "{err:?}");
        assert!(err.message.contains("cannot write 3/jobs/2/19700101/j-1/"), "{err}");
        std::fs::remove_file(file).unwrap();
    }
}
