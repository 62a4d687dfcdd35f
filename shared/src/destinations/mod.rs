//! One adapter per backend, each implementing a port of [`crate::delivery::destination`]:
//! object stores ([`s3`], [`dir`], [`azure::blob_store`]) and log sinks ([`azure::monitor_sink`],
//! [`rest`]).
//!
//! Each adapter has one setup entry, used by its function's `main.rs` and by the command-line
//! tool's `--to`: `from_env` reads its variables, and a `setup` from settings made elsewhere (the
//! CLI's `--to s3://bucket/prefix`) where there is one. Both return a [`Setup`].

pub mod azure;
pub mod dir;
pub mod rest;
pub mod s3;

use std::sync::Arc;

use crate::config::{ConfigError, PipelineSettings};
use crate::delivery::destination::{Destination, LogSink, ObjectStore, ObjectStoreDestination};
use crate::delivery::log_batching::LogSinkDestination;
use crate::delivery::retry::RetryPolicy;
use crate::pipeline::key::KeyPrefix;
use crate::pipeline::Pipeline;

/// A destination ready to deliver, and the pipeline that feeds it.
pub struct Setup<D> {
    pub destination: D,
    pub pipeline: Pipeline,
}

impl<S: ObjectStore> Setup<ObjectStoreDestination<S>> {
    /// An object store, its writes `settings.concurrency` at a time under the shared retry
    /// policy. `key_prefix` goes before every key the pipeline makes: this is the one place a
    /// destination's prefix (`AUDITSTREAM_S3_PREFIX`, `AUDITSTREAM_AZURE_BLOB_PREFIX`, the
    /// PREFIX of `--to s3://BUCKET/PREFIX`) reaches the pipeline.
    pub fn object_store(settings: &PipelineSettings, key_prefix: KeyPrefix, store: S) -> Self {
        let mut pipeline = settings.pipeline.clone();
        pipeline.key_prefix = key_prefix;
        Setup { destination: ObjectStoreDestination::new(store, settings.concurrency, RetryPolicy::default()), pipeline: Pipeline::new(pipeline) }
    }
}

impl<S: LogSink> Setup<LogSinkDestination<S>> {
    /// A log sink, its requests `settings.concurrency` at a time under the shared retry policy.
    /// Log sinks name no objects: the pipeline's key prefix stays empty.
    pub fn log_sink(settings: &PipelineSettings, sink: S) -> Self {
        Setup { destination: LogSinkDestination::new(sink, settings.concurrency, RetryPolicy::default()), pipeline: Pipeline::new(settings.pipeline.clone()) }
    }
}

impl<D: Destination + 'static> Setup<D> {
    /// The same, the destination behind a shared pointer (the CLI picks one at run time).
    pub fn shared(self) -> Setup<Arc<dyn Destination>> {
        Setup { destination: Arc::new(self.destination), pipeline: self.pipeline }
    }
}

/// Why a destination could not be set up (at cold start, or when the CLI starts).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}
