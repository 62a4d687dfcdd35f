//! Where documents go. The pipeline never names a vendor: it hands documents to a
//! [`Destination`], which is built from one of two small ports —
//!
//! - [`ObjectStore`]: "write these bytes at this key, unless something is there already"
//!   (S3, Azure Blob, a local directory). [`ObjectStoreDestination`] adds bounded concurrency and
//!   the shared retry policy; for a store that keeps integrity records, one manifest per batch
//!   (`docs/integrity.md`).
//! - [`LogSink`]: "send these documents in one request" (REST services, Azure Monitor). A batching
//!   destination built on it packs requests within the sink's limits, splits on 413 and maps
//!   every failure back to its messages.

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::{self, StreamExt};

use crate::delivery::health::{probe_document, probe_id, HealthReport, Step, Verdict};
use crate::delivery::retry::{Deadline, DeliveryError, RetryPolicy};
use crate::integrity::checksum::Sha256Sum;
use crate::integrity::layout;
use crate::integrity::manifest::{Manifest, ManifestEntry};
use crate::pipeline::key::{KeyPrefix, ObjectKey};
use crate::pipeline::timestamp::{Now, UtcTime};
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

    /// The key prefix under which this store keeps a manifest of every batch (`docs/integrity.md`);
    /// `None` for a store that keeps no integrity records, which is never called with
    /// [`ObjectStore::put_new_recorded`].
    fn manifests(&self) -> Option<&KeyPrefix> {
        None
    }

    /// [`ObjectStore::put_new`] with the body's SHA-256, computed once by the caller, for the store
    /// to have checked on arrival and to keep. Returns what the store holds at `key`: for an object
    /// already there, its size and SHA-256 as the store recorded them, never recomputed from
    /// `body` (a redelivery's body may differ, e.g. by a `now` placeholder).
    async fn put_new_recorded(&self, key: &ObjectKey, body: bytes::Bytes, sha256: Sha256Sum) -> Result<(PutOutcome, Recorded), DeliveryError> {
        let _ = (key, body, sha256);
        Err(DeliveryError::permanent(format!("{} keeps no integrity records", self.describe())))
    }

    /// A first attempt at every object of a batch in one call: at index `i`, what
    /// [`ObjectStore::put_new_recorded`] would return for `objects[i]`. `None` (the default) for a
    /// store that writes objects one call each. A store that writes with blocking local calls (a
    /// directory) writes the batch in one hand-off to its own thread instead of one per object; an
    /// object that fails here for a transient reason is then tried again on its own, under the
    /// retry policy, this attempt counting as its first.
    async fn put_new_recorded_all(&self, objects: &[NewObject]) -> Option<Vec<Result<(PutOutcome, Recorded), DeliveryError>>> {
        let _ = objects;
        None
    }
}

/// An object to write create-only, with the SHA-256 of its body (see [`ObjectStore::put_new_recorded`]).
#[derive(Debug, Clone)]
pub struct NewObject {
    pub key: ObjectKey,
    pub body: bytes::Bytes,
    pub sha256: Sha256Sum,
}

pub use crate::integrity::checksum::Recorded;

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
            .probe(async {
                self.retry.run(deadline, |_| self.store.put_new(&probe.key, body.clone())).await.map(|_| format!("probe written at {}", probe.key))
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
        let delivered = |put| match put {
            PutOutcome::Created => Delivered::Written,
            PutOutcome::AlreadyExists => Delivered::Duplicate,
        };
        let mut results: Vec<(usize, Result<(Delivered, Option<ManifestEntry>), DeliveryError>)> = if self.store.manifests().is_some() {
            // Each body hashed once here, not once per attempt.
            let objects: Vec<NewObject> = docs
                .into_iter()
                .map(|doc| {
                    let body = bytes::Bytes::from(doc.body);
                    NewObject { key: doc.key, sha256: Sha256Sum::of(&body), body }
                })
                .collect();
            let firsts = self.first_attempts(&objects, deadline).await;
            stream::iter(objects.into_iter().zip(firsts).enumerate())
                .map(|(i, (object, first))| async move {
                    let mut first = first;
                    let outcome = self
                        .retry
                        .run(deadline, |_| {
                            let first = first.take();
                            let (key, body) = (&object.key, object.body.clone());
                            async move {
                                match first {
                                    Some(outcome) => outcome,
                                    None => self.store.put_new_recorded(key, body, object.sha256).await,
                                }
                            }
                        })
                        .await
                        .map(|(put, recorded)| {
                            (delivered(put), Some(ManifestEntry { key: object.key.to_string(), size: recorded.size, sha256: recorded.sha256 }))
                        });
                    (i, outcome)
                })
                .buffer_unordered(self.concurrency)
                .collect()
                .await
        } else {
            stream::iter(docs.into_iter().enumerate())
                .map(|(i, doc)| async move {
                    let body = bytes::Bytes::from(doc.body);
                    (i, self.retry.run(deadline, |_| self.store.put_new(&doc.key, body.clone())).await.map(|put| (delivered(put), None)))
                })
                .buffer_unordered(self.concurrency)
                .collect()
                .await
        };
        results.sort_unstable_by_key(|(i, _)| *i);
        let entries: Vec<ManifestEntry> = results.iter_mut().filter_map(|(_, r)| r.as_mut().ok().and_then(|(_, e)| e.take())).collect();
        let mut results: Vec<Result<Delivered, DeliveryError>> = results.into_iter().map(|(_, r)| r.map(|(d, _)| d)).collect();
        if let (Some(prefix), false) = (self.store.manifests(), entries.is_empty()) {
            if let Err(e) = self.write_manifest(prefix, entries, deadline).await {
                // The objects are there but unrecorded: each message goes back to SQS (or, if the
                // manifest can never be written, to the dead-letter queue with this reason), and
                // its redelivery, finding its object, records it in the next batch's manifest.
                for result in results.iter_mut().filter(|r| r.is_ok()) {
                    *result = Err(e.clone());
                }
            }
        }
        results
    }
}

impl<S: ObjectStore> ObjectStoreDestination<S> {
    /// The first attempt at each object, made for the whole batch in one call where the store
    /// offers it ([`ObjectStore::put_new_recorded_all`]); `None` where the object's first attempt is
    /// still to be made on its own. A batch still in flight at the deadline is abandoned like a
    /// single write: each of its objects has then failed its first attempt, for a transient reason.
    async fn first_attempts(&self, objects: &[NewObject], deadline: Deadline) -> Vec<Option<Result<(PutOutcome, Recorded), DeliveryError>>> {
        let all = match deadline.remaining() {
            None => self.store.put_new_recorded_all(objects).await,
            Some(left) => match tokio::time::timeout(left, self.store.put_new_recorded_all(objects)).await {
                Ok(all) => all,
                Err(_) => {
                    let abandoned = DeliveryError::transient("attempt 1 was still in flight at the deadline and was abandoned (SQS will redeliver)");
                    Some(vec![Err(abandoned); objects.len()])
                }
            },
        };
        match all {
            // One outcome per object, or none taken at all: a store that miscounts is not trusted.
            Some(all) if all.len() == objects.len() => all.into_iter().map(Some).collect(),
            _ => vec![None; objects.len()],
        }
    }

    /// One create-only manifest for the batch: every object it wrote or found, in input order.
    async fn write_manifest(&self, prefix: &KeyPrefix, objects: Vec<ManifestEntry>, deadline: Deadline) -> Result<(), DeliveryError> {
        let at = Now::capture().utc_time();
        let key = ObjectKey::integrity_record(layout::manifest_key(prefix, at, rand::random()));
        let body = bytes::Bytes::from(Manifest::new(layout::iso(at), objects).to_json());
        let sha256 = Sha256Sum::of(&body);
        self.retry.run(deadline, |_| self.store.put_new_recorded(&key, body.clone(), sha256)).await.map(drop).map_err(|e| DeliveryError {
            message: format!("the batch's manifest {key} was not written, so its objects are not yet recorded: {}", e.message),
            ..e
        })
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

    /// [`LogSink::send`], for documents the caller holds shared: a sink may then hand a document's
    /// bytes to its HTTP client as they are, without copying them, since the client may still hold
    /// them after the call (an abandoned attempt). [`LogSinkDestination`](crate::delivery::log_batching::LogSinkDestination)
    /// sends this way. By default, [`LogSink::send`].
    async fn send_shared(&self, docs: &[std::sync::Arc<Document>]) -> Result<(), DeliveryError> {
        let refs: Vec<&Document> = docs.iter().map(|d| d.as_ref()).collect();
        self.send(&refs).await
    }

    /// The steps of a health check before the probe is sent (a token issued, a health or key
    /// validation endpoint). By default there are none: the probe proves them all.
    async fn check_access(&self, report: &mut HealthReport) {
        let _ = report;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::process::{process_batch, InboundMessage, Outcome};
    use crate::pipeline::{Pipeline, PipelineConfig};
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    /// An archive in memory that records like S3 does (size and SHA-256 of what it holds), and
    /// whose manifest writes can be made to fail, like a function that dies after its objects.
    #[derive(Default)]
    struct Archive {
        objects: Mutex<BTreeMap<String, Vec<u8>>>,
        manifests_fail: AtomicBool,
        prefix: KeyPrefix,
    }

    #[async_trait]
    impl ObjectStore for Archive {
        fn describe(&self) -> String {
            "memory".into()
        }
        async fn put_new(&self, key: &ObjectKey, body: bytes::Bytes) -> Result<PutOutcome, DeliveryError> {
            self.put_new_recorded(key, body.clone(), Sha256Sum::of(&body)).await.map(|(put, _)| put)
        }
        fn manifests(&self) -> Option<&KeyPrefix> {
            Some(&self.prefix)
        }
        async fn put_new_recorded(&self, key: &ObjectKey, body: bytes::Bytes, sha256: Sha256Sum) -> Result<(PutOutcome, Recorded), DeliveryError> {
            if layout::is_record(&self.prefix, key.as_str()) && self.manifests_fail.load(Ordering::SeqCst) {
                return Err(DeliveryError::transient("memory: the function was stopped"));
            }
            assert_eq!(sha256, Sha256Sum::of(&body), "the checksum given is the body's");
            let mut objects = self.objects.lock().unwrap();
            if let Some(there) = objects.get(key.as_str()) {
                return Ok((PutOutcome::AlreadyExists, Recorded { size: there.len() as u64, sha256: Sha256Sum::of(there) }));
            }
            objects.insert(key.to_string(), body.to_vec());
            Ok((PutOutcome::Created, Recorded { size: body.len() as u64, sha256 }))
        }
    }

    /// An [`Archive`] that writes batches in one call, each object once, where `flaky` marks the
    /// keys whose first write fails for a transient reason; it counts the calls of each kind.
    #[derive(Default)]
    struct BatchArchive {
        archive: Archive,
        flaky: Vec<&'static str>,
        /// The batch call never finishes (a hung disk).
        stalled: bool,
        /// The batch call answers for one object fewer than it was given, writing nothing.
        miscounting: bool,
        batches: std::sync::atomic::AtomicUsize,
        singles: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl ObjectStore for BatchArchive {
        fn describe(&self) -> String {
            "memory".into()
        }
        async fn put_new(&self, key: &ObjectKey, body: bytes::Bytes) -> Result<PutOutcome, DeliveryError> {
            self.archive.put_new(key, body).await
        }
        fn manifests(&self) -> Option<&KeyPrefix> {
            Some(&self.archive.prefix)
        }
        async fn put_new_recorded(&self, key: &ObjectKey, body: bytes::Bytes, sha256: Sha256Sum) -> Result<(PutOutcome, Recorded), DeliveryError> {
            if !layout::is_record(&self.archive.prefix, key.as_str()) {
                self.singles.fetch_add(1, Ordering::SeqCst);
            }
            self.archive.put_new_recorded(key, body, sha256).await
        }
        async fn put_new_recorded_all(&self, objects: &[NewObject]) -> Option<Vec<Result<(PutOutcome, Recorded), DeliveryError>>> {
            self.batches.fetch_add(1, Ordering::SeqCst);
            if self.stalled {
                std::future::pending::<()>().await;
            }
            if self.miscounting {
                return Some(vec![Err(DeliveryError::transient("memory: 503")); objects.len() - 1]);
            }
            let mut outcomes = Vec::new();
            for o in objects {
                outcomes.push(match self.flaky.iter().any(|marker| o.key.as_str().contains(marker)) {
                    true => Err(DeliveryError::transient(format!("memory: {}: 503", o.key))),
                    false => self.archive.put_new_recorded(&o.key, o.body.clone(), o.sha256).await,
                });
            }
            Some(outcomes)
        }
    }

    #[tokio::test]
    async fn a_store_that_writes_batches_is_called_once_per_batch_and_an_object_that_failed_for_a_transient_reason_is_retried_alone() {
        let store = BatchArchive { flaky: vec!["-j-2-"], ..BatchArchive::default() };
        let retry = RetryPolicy { initial_backoff: std::time::Duration::from_millis(1), ..RetryPolicy::default() };
        let dest = ObjectStoreDestination::new(store, 4, retry);
        let batch = vec![InboundMessage::new("m1", job("j-1", "a")), InboundMessage::new("m2", job("j-2", "b")), InboundMessage::new("m3", job("j-3", "c"))];
        let report = process_batch(&pipeline(), &dest, batch, Deadline::NONE).await;
        assert!(report.outcomes.iter().all(|(_, o)| matches!(o, Outcome::Written { .. })), "{:?}", report.outcomes);
        let store = dest.store();
        assert_eq!(store.batches.load(Ordering::SeqCst), 1, "one call for the batch");
        assert_eq!(store.singles.load(Ordering::SeqCst), 1, "only j-2 is written again, on its own");
        let manifests = store.archive.manifests();
        assert_eq!(manifests.len(), 1);
        assert_eq!(manifests[0].objects.len(), 3, "the manifest lists every object, the retried one included");
    }

    #[tokio::test]
    async fn a_batch_still_in_flight_at_the_deadline_is_abandoned_and_every_message_is_left_to_sqs() {
        let store = BatchArchive { stalled: true, ..BatchArchive::default() };
        let dest = ObjectStoreDestination::new(store, 4, RetryPolicy::default());
        let batch = vec![InboundMessage::new("m1", job("j-1", "a")), InboundMessage::new("m2", job("j-2", "b"))];
        let report = process_batch(&pipeline(), &dest, batch, Deadline::after(std::time::Duration::from_millis(50))).await;
        assert_eq!(report.outcomes.len(), 2, "every message is reported");
        for (id, outcome) in &report.outcomes {
            let Outcome::Failed(failure) = outcome else { panic!("{id}: {outcome:?}") };
            assert!(!failure.is_permanent(), "{id}: left for SQS to redeliver, not dead-lettered: {failure}");
            assert!(failure.to_string().contains("still in flight at the deadline"), "{id}: {failure}");
        }
        assert!(dest.store().archive.manifests().is_empty(), "no manifest for objects not written");
    }

    #[tokio::test]
    async fn a_store_that_answers_for_fewer_objects_than_its_batch_is_not_trusted_and_each_object_is_written_on_its_own() {
        let store = BatchArchive { miscounting: true, ..BatchArchive::default() };
        let dest = ObjectStoreDestination::new(store, 4, RetryPolicy::default());
        let batch = vec![InboundMessage::new("m1", job("j-1", "a")), InboundMessage::new("m2", job("j-2", "b")), InboundMessage::new("m3", job("j-3", "c"))];
        let report = process_batch(&pipeline(), &dest, batch, Deadline::NONE).await;
        assert!(report.outcomes.iter().all(|(_, o)| matches!(o, Outcome::Written { .. })), "{:?}", report.outcomes);
        let store = dest.store();
        assert_eq!(store.singles.load(Ordering::SeqCst), 3, "each object written on its own");
        assert_eq!(store.archive.manifests()[0].objects.len(), 3);
    }

    #[tokio::test]
    async fn an_object_refused_permanently_in_a_batch_is_not_tried_again_and_fails_alone() {
        struct Refusing(Archive, std::sync::atomic::AtomicUsize);
        #[async_trait]
        impl ObjectStore for Refusing {
            fn describe(&self) -> String {
                "memory".into()
            }
            async fn put_new(&self, key: &ObjectKey, body: bytes::Bytes) -> Result<PutOutcome, DeliveryError> {
                self.0.put_new(key, body).await
            }
            fn manifests(&self) -> Option<&KeyPrefix> {
                Some(&self.0.prefix)
            }
            async fn put_new_recorded(&self, key: &ObjectKey, body: bytes::Bytes, sha256: Sha256Sum) -> Result<(PutOutcome, Recorded), DeliveryError> {
                if !layout::is_record(&self.0.prefix, key.as_str()) {
                    self.1.fetch_add(1, Ordering::SeqCst);
                }
                self.0.put_new_recorded(key, body, sha256).await
            }
            async fn put_new_recorded_all(&self, objects: &[NewObject]) -> Option<Vec<Result<(PutOutcome, Recorded), DeliveryError>>> {
                let mut outcomes = Vec::new();
                for o in objects {
                    outcomes.push(match o.key.as_str().contains("-j-bad-") {
                        true => Err(DeliveryError::permanent(format!("memory: refused {}", o.key))),
                        false => self.0.put_new_recorded(&o.key, o.body.clone(), o.sha256).await,
                    });
                }
                Some(outcomes)
            }
        }
        let dest = ObjectStoreDestination::new(Refusing(Archive::default(), Default::default()), 4, RetryPolicy::default());
        let batch = vec![InboundMessage::new("m1", job("j-bad", "a")), InboundMessage::new("m2", job("j-2", "b"))];
        let report = process_batch(&pipeline(), &dest, batch, Deadline::NONE).await;
        assert!(matches!(&report.outcomes[0].1, Outcome::Failed(f) if f.is_permanent() && f.to_string().contains("refused")), "{:?}", report.outcomes);
        assert!(matches!(&report.outcomes[1].1, Outcome::Written { .. }), "{:?}", report.outcomes);
        assert_eq!(dest.store().1.load(Ordering::SeqCst), 0, "nothing was tried again");
        assert_eq!(dest.store().0.manifests()[0].objects.len(), 1, "the manifest lists what was written");
    }

    impl Archive {
        fn manifests(&self) -> Vec<Manifest> {
            let objects = self.objects.lock().unwrap();
            objects.iter().filter(|(k, _)| layout::is_record(&self.prefix, k)).map(|(k, v)| Manifest::parse(k, v).unwrap()).collect()
        }
    }

    fn job(id: &str, note: &str) -> String {
        format!(r#"{{"id":"{id}","recipe_id":1,"status":"succeeded","account_id":9,"completed_at":"2024-01-01T00:00:00Z","note":"{note}"}}"#)
    }

    fn pipeline() -> Pipeline {
        Pipeline::new(PipelineConfig::default())
    }

    #[tokio::test]
    async fn each_batch_writes_one_manifest_listing_every_object_written_or_found_with_the_stores_checksum() {
        let dest = ObjectStoreDestination::new(Archive::default(), 4, RetryPolicy::default());
        let first = vec![InboundMessage::new("m1", job("j-1", "first")), InboundMessage::new("m2", job("j-2", "x"))];
        process_batch(&pipeline(), &dest, first, Deadline::NONE).await;
        // j-1 again with a different body (a redelivery's `now` may differ): its entry is what
        // the store holds, not what was sent this time.
        let second = vec![InboundMessage::new("m3", job("j-1", "second")), InboundMessage::new("m4", job("j-3", "y")), InboundMessage::new("m5", "not json")];
        let report = process_batch(&pipeline(), &dest, second, Deadline::NONE).await;
        assert!(matches!(report.outcomes[0].1, Outcome::Duplicate { .. }) && matches!(report.outcomes[1].1, Outcome::Written { .. }));

        let manifests = dest.store().manifests();
        assert_eq!(manifests.len(), 2, "one manifest per batch");
        let objects = dest.store().objects.lock().unwrap().clone();
        let entry = |key: &str| ManifestEntry { key: key.into(), size: objects[key].len() as u64, sha256: Sha256Sum::of(&objects[key]) };
        let key_of = |id: &str| objects.keys().find(|k| k.contains(&format!("-{id}-"))).unwrap().clone();
        let (j1, j2, j3) = (key_of("j-1"), key_of("j-2"), key_of("j-3"));
        let listed: Vec<Vec<ManifestEntry>> = manifests.iter().map(|m| m.objects.clone()).collect();
        assert!(listed.contains(&vec![entry(&j1), entry(&j2)]), "{listed:?}");
        assert!(listed.contains(&vec![entry(&j1), entry(&j3)]), "the duplicate is listed with the stored body's checksum: {listed:?}");
        assert!(String::from_utf8_lossy(&objects[&j1]).contains("first"));
    }

    #[tokio::test]
    async fn a_batch_whose_manifest_is_not_written_leaves_its_messages_to_sqs_and_the_redelivery_records_them() {
        let dest = ObjectStoreDestination::new(
            Archive::default(),
            4,
            RetryPolicy { max_attempts: 2, initial_backoff: std::time::Duration::from_millis(1), ..RetryPolicy::default() },
        );
        let batch = || vec![InboundMessage::new("m1", job("j-1", "a")), InboundMessage::new("m2", job("j-2", "b"))];
        dest.store().manifests_fail.store(true, Ordering::SeqCst);
        let report = process_batch(&pipeline(), &dest, batch(), Deadline::NONE).await;
        // the objects are there, unrecorded: both messages go back to SQS, saying why
        assert_eq!(dest.store().objects.lock().unwrap().len(), 2);
        for (id, outcome) in &report.outcomes {
            let Outcome::Failed(f) = outcome else { panic!("{id}: {outcome:?}") };
            assert!(!f.is_permanent() && f.to_string().contains("manifest") && f.to_string().contains("not yet recorded"), "{id}: {f}");
        }
        assert!(dest.store().manifests().is_empty());

        dest.store().manifests_fail.store(false, Ordering::SeqCst);
        let report = process_batch(&pipeline(), &dest, batch(), Deadline::NONE).await;
        assert!(report.outcomes.iter().all(|(_, o)| matches!(o, Outcome::Duplicate { .. })), "{:?}", report.outcomes);
        let manifests = dest.store().manifests();
        assert_eq!(manifests.len(), 1);
        assert_eq!(manifests[0].objects.len(), 2, "the redelivery's manifest covers both objects");
    }
}
