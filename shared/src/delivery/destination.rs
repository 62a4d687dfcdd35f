//! Where documents go. The pipeline never names a vendor: it hands documents to a
//! [`Destination`], which is built from one of two small ports —
//!
//! - [`ObjectStore`]: "write these bytes at this key, unless something is there already"
//!   (S3, Azure Blob, a local directory). [`ObjectStoreDestination`] adds bounded concurrency and
//!   the shared retry policy.
//! - [`LogSink`]: "send these documents in one request" (REST services, Azure Monitor). A batching
//!   destination built on it packs requests within the sink's limits, splits on 413 and maps
//!   every failure back to its messages.

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::{self, StreamExt};

use crate::delivery::health::{probe_document, probe_id, HealthReport, Step, Verdict};
use crate::delivery::retry::{Deadline, DeliveryError, RetryPolicy};
use crate::pipeline::key::{KeyPrefix, ObjectKey};
use crate::pipeline::timestamp::UtcTime;
use crate::pipeline::Document;

/// A successful delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    Written,
    /// The object was already there: an SQS redelivery of something written before.
    Duplicate,
}

/// A destination for prepared documents.
#[async_trait]
pub trait Destination: Send + Sync {
    /// A short description for logs and errors: `s3://bucket/prefix`, `https://host/path`.
    fn describe(&self) -> String;

    /// A per-event size limit the destination imposes, below the configured one (for example
    /// Datadog's 1 MB per log). The pipeline sizes events to fit.
    fn max_event_bytes(&self) -> Option<EventLimit> {
        None
    }

    /// Delivers documents; the result at index `i` is the outcome of `docs[i]`.
    async fn deliver(&self, docs: Vec<Document>, deadline: Deadline) -> Vec<Result<Delivered, DeliveryError>>;

    /// Proves the destination works without writing an audit event (see [`crate::delivery::health`]).
    /// `prefix` is the key prefix events get; `now` dates the probe. Appends its steps to `report`.
    async fn check(&self, prefix: &KeyPrefix, now: UtcTime, report: &mut HealthReport) {
        let _ = (prefix, now);
        report.record(Step::Permission, Verdict::Failed, format!("{} has no health check", self.describe()), std::time::Duration::ZERO);
    }
}

#[async_trait]
impl<D: Destination + ?Sized> Destination for Arc<D> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn max_event_bytes(&self) -> Option<EventLimit> {
        (**self).max_event_bytes()
    }
    async fn deliver(&self, docs: Vec<Document>, deadline: Deadline) -> Vec<Result<Delivered, DeliveryError>> {
        (**self).deliver(docs, deadline).await
    }
    async fn check(&self, prefix: &KeyPrefix, now: UtcTime, report: &mut HealthReport) {
        (**self).check(prefix, now, report).await
    }
}

/// The outcome of a create-only write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    AlreadyExists,
}

/// An object store that can write an object only if none exists at its key.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// `s3://bucket`, `https://account.blob.core.windows.net/container`, `dir:./audit-logs`.
    fn describe(&self) -> String;

    /// Writes `body` (JSON) at `key` unless an object is already there.
    async fn put_new(&self, key: &ObjectKey, body: bytes::Bytes) -> Result<PutOutcome, DeliveryError>;

    /// The steps of a health check before the probe is written: credentials, reachability and
    /// authentication, where the service has a call that proves them without writing (HeadBucket,
    /// Get Container Properties). By default there are none: the probe write proves them all.
    async fn check_access(&self, report: &mut HealthReport) {
        let _ = report;
    }

    /// Reads a probe back and compares it with what was written: `Ok(detail)` when it matches,
    /// `Err(detail)` when not, `None` when this store does not read back.
    async fn read_back(&self, key: &ObjectKey, body: &[u8]) -> Option<Result<String, String>> {
        let _ = (key, body);
        None
    }
}

/// One object per document, written concurrently (bounded) with the shared retry policy.
pub struct ObjectStoreDestination<S> {
    store: S,
    concurrency: usize,
    retry: RetryPolicy,
}

impl<S: ObjectStore> ObjectStoreDestination<S> {
    pub fn new(store: S, concurrency: usize, retry: RetryPolicy) -> Self {
        ObjectStoreDestination { store, concurrency: concurrency.max(1), retry }
    }

    pub fn store(&self) -> &S {
        &self.store
    }
}

#[async_trait]
impl<S: ObjectStore> Destination for ObjectStoreDestination<S> {
    fn describe(&self) -> String {
        self.store.describe()
    }

    /// Access steps, then the probe written through the same retry policy as an event (so a
    /// transient failure is retried as it would be), then read back.
    async fn check(&self, prefix: &KeyPrefix, now: UtcTime, report: &mut HealthReport) {
        self.store.check_access(report).await;
        let probe = probe_document(prefix, now, &probe_id());
        let body = bytes::Bytes::from(probe.body.clone());
        let deadline = Deadline::after(CHECK_TIME);
        let written = report
            .run(Step::Permission, async {
                match self.retry.run(deadline, |_| self.store.put_new(&probe.key, body.clone())).await {
                    Ok(_) => Ok(format!("probe written at {}", probe.key)),
                    Err(e) => Err(e.message),
                }
            })
            .await;
        if !written {
            return;
        }
        let started = std::time::Instant::now();
        match self.store.read_back(&probe.key, &probe.body).await {
            Some(Ok(detail)) => report.record(Step::ReadBack, Verdict::Passed, detail, started.elapsed()),
            Some(Err(detail)) => report.record(Step::ReadBack, Verdict::Failed, detail, started.elapsed()),
            None => report.skip(Step::ReadBack, "this store is not read back"),
        }
    }

    async fn deliver(&self, docs: Vec<Document>, deadline: Deadline) -> Vec<Result<Delivered, DeliveryError>> {
        let mut results: Vec<(usize, Result<Delivered, DeliveryError>)> = stream::iter(docs.into_iter().enumerate())
            .map(|(i, doc)| async move {
                let key = doc.key;
                let body = bytes::Bytes::from(doc.body);
                let outcome = self.retry.run(deadline, |_| self.store.put_new(&key, body.clone())).await.map(|put| match put {
                    PutOutcome::Created => Delivered::Written,
                    PutOutcome::AlreadyExists => Delivered::Duplicate,
                });
                (i, outcome)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        results.sort_unstable_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, r)| r).collect()
    }
}

/// How long a health check's probe write may take, retries included.
pub const CHECK_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Limits of a [`LogSink`]'s requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkLimits {
    /// Events in one request (1 sends one event per request).
    pub max_events: usize,
    /// Bytes of one request body as sent (after compression if the sink compresses).
    pub max_request_bytes: usize,
    /// Bytes of one event; larger events are sized down by the pipeline.
    pub max_event_bytes: Option<EventLimit>,
}

/// A destination's own limit on the size of one event, and what sets it: when it is below
/// `AUDITSTREAM_MAX_EVENT_BYTES` and forces an event's lines out, the warning says what to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLimit {
    pub bytes: usize,
    pub set_by: LimitSource,
}

impl EventLimit {
    pub fn new(bytes: usize, set_by: LimitSource) -> Self {
        EventLimit { bytes, set_by }
    }
}

/// What sets a destination's per-event limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitSource {
    /// A setting: the variable that raises it.
    Variable(&'static str),
    /// The service's own limit, which no setting raises, in words ("Datadog takes at most
    /// 1,000,000 bytes per log").
    Service(&'static str),
}

impl std::fmt::Display for LimitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitSource::Variable(var) => write!(f, "set by {var}: raise it to send such events whole"),
            LimitSource::Service(what) => write!(f, "{what}, and no setting raises that"),
        }
    }
}

/// A log service that takes one or more documents per request.
#[async_trait]
pub trait LogSink: Send + Sync {
    /// The endpoint, without credentials: `https://http-intake.logs.datadoghq.com/api/v2/logs`.
    fn describe(&self) -> String;

    fn limits(&self) -> SinkLimits;

    /// Sends one request holding `docs`. `Err` with [`FailureKind::TooLarge`] asks the caller to
    /// split the batch; `Err` with [`DeliveryError::accepted`] set says which documents got in.
    async fn send(&self, docs: &[&Document]) -> Result<(), DeliveryError>;

    /// The steps of a health check before the probe is sent (a token issued, a health or key
    /// validation endpoint). By default there are none: the probe proves them all.
    async fn check_access(&self, report: &mut HealthReport) {
        let _ = report;
    }
}
