//! What the crate's own tests share: an object store and an archive in memory, and SQS Lambda
//! events for the tests that call a function's handler. The unit tests have it as
//! `crate::test_support`, the integration tests in `shared/tests` through the `test-support`
//! feature. (The end-to-end tests have theirs in `tests/harness`.)

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;

use crate::delivery::destination::{ObjectStore, PutOutcome};
use crate::delivery::retry::{DeliveryError, FailureKind};
use crate::integrity::archive::{Archive, ArchiveError, Listed, PAGE};
use crate::integrity::checksum::{Recorded, Sha256Sum};
use crate::pipeline::key::{KeyPrefix, ObjectKey};
use crate::pipeline::timestamp::UtcTime;

/// Objects in memory, written create-only as the real stores are: a key written before is
/// [`PutOutcome::AlreadyExists`]. Keys containing a marker given to [`refusing`](Self::refusing) fail.
#[derive(Default)]
pub struct MemoryStore {
    pub objects: Mutex<HashMap<String, Vec<u8>>>,
    refused: Vec<(&'static str, FailureKind)>,
}

impl MemoryStore {
    /// Fails every key that contains `marker`, with a failure of `kind`.
    pub fn refusing(mut self, marker: &'static str, kind: FailureKind) -> Self {
        self.refused.push((marker, kind));
        self
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    fn describe(&self) -> String {
        "memory".into()
    }

    async fn put_new(&self, key: &ObjectKey, body: bytes::Bytes) -> Result<PutOutcome, DeliveryError> {
        if let Some(&(_, kind)) = self.refused.iter().find(|(marker, _)| key.as_str().contains(marker)) {
            let message = if kind == FailureKind::Transient { format!("memory: {key}: 503") } else { format!("memory: refused {key}") };
            return Err(DeliveryError { kind, message, retry_after: None, accepted: None, unanswered: false });
        }
        let mut objects = self.objects.lock().unwrap();
        if objects.contains_key(key.as_str()) {
            return Ok(PutOutcome::AlreadyExists);
        }
        objects.insert(key.to_string(), body.to_vec());
        Ok(PutOutcome::Created)
    }
}

/// An archive in memory: key → (bytes, written at), listed in key order a page at a time as the
/// stores list it, and records written create-only.
#[derive(Default)]
pub struct MemoryArchive {
    pub prefix: KeyPrefix,
    pub objects: Mutex<BTreeMap<String, (Vec<u8>, UtcTime)>>,
    /// Keys per listed page (0: [`PAGE`]).
    pub page: AtomicUsize,
    /// What was asked, in order, when kept ([`MemoryArchive::keeping_calls`]). A test of memory use
    /// keeps none: the list grows with every call.
    calls: Option<Mutex<Vec<ArchiveCall>>>,
}

/// One thing a [`MemoryArchive`] was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveCall {
    /// A page of the listing of `prefix` after `after`, and the keys it answered.
    List {
        prefix: String,
        after: Option<String>,
        answered: Vec<String>,
    },
    Get(String),
    Recorded(String),
}

impl MemoryArchive {
    /// An empty archive that keeps what it is asked, for [`MemoryArchive::take_calls`].
    pub fn keeping_calls() -> MemoryArchive {
        MemoryArchive { calls: Some(Mutex::default()), ..MemoryArchive::default() }
    }

    /// What was asked since the last call, in order (nothing unless [`MemoryArchive::keeping_calls`]).
    pub fn take_calls(&self) -> Vec<ArchiveCall> {
        self.calls.as_ref().map_or_else(Vec::new, |calls| std::mem::take(&mut *calls.lock().unwrap()))
    }

    fn called(&self, call: impl FnOnce() -> ArchiveCall) {
        if let Some(calls) = &self.calls {
            calls.lock().unwrap().push(call());
        }
    }
}

#[async_trait]
impl Archive for MemoryArchive {
    fn name(&self) -> String {
        "memory".into()
    }
    fn key_prefix(&self) -> &KeyPrefix {
        &self.prefix
    }
    async fn list_page(&self, prefix: &str, after: Option<&str>) -> Result<Vec<Listed>, ArchiveError> {
        let objects = self.objects.lock().unwrap();
        let page = match self.page.load(Ordering::Relaxed) {
            0 => PAGE,
            n => n,
        };
        // The keys under `prefix` sort together, from `prefix` on.
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let listed: Vec<Listed> = objects
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(page)
            .map(|(k, (_, at))| Listed { key: k.clone(), modified: *at })
            .collect();
        self.called(|| ArchiveCall::List { prefix: prefix.into(), after: after.map(str::to_owned), answered: listed.iter().map(|l| l.key.clone()).collect() });
        Ok(listed)
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        self.called(|| ArchiveCall::Get(key.into()));
        Ok(self.objects.lock().unwrap().get(key).map(|(b, _)| b.clone()))
    }
    async fn recorded(&self, key: &str) -> Result<Option<Recorded>, ArchiveError> {
        self.called(|| ArchiveCall::Recorded(key.into()));
        Ok(self.objects.lock().unwrap().get(key).map(|(b, _)| Recorded { size: b.len() as u64, sha256: Sha256Sum::of(b) }))
    }
    async fn put_record(&self, key: &str, body: Vec<u8>) -> Result<bool, ArchiveError> {
        let mut objects = self.objects.lock().unwrap();
        if objects.contains_key(key) {
            return Ok(false);
        }
        // When a record was written is not read: verification skips records in its search for
        // objects that no manifest lists, the one place it reads the time.
        objects.insert(key.into(), (body, UtcTime::from_epoch_seconds(0)));
        Ok(true)
    }
}

/// A standard queue's ARN, the source of [`record`]'s records. A FIFO queue's name ends in `.fifo`.
pub const QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:audit";

/// One record as Lambda's SQS event source delivers it, from the queue `source_arn`: received once,
/// with a message attribute of its own (`trace`) that a dead letter must keep.
pub fn record(id: &str, body: &str, source_arn: &str) -> serde_json::Value {
    serde_json::json!({
        "messageId": id, "receiptHandle": "rh", "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
        "messageAttributes": {"trace": {"stringValue": "t-1", "dataType": "String"}},
        "eventSource": "aws:sqs", "eventSourceARN": source_arn, "awsRegion": "us-east-1"
    })
}

/// An invocation with `records`, a minute before its deadline.
pub fn invocation(records: Vec<serde_json::Value>) -> LambdaEvent<SqsEvent> {
    let payload: SqsEvent = serde_json::from_value(serde_json::json!({ "Records": records })).unwrap();
    let mut context = lambda_runtime::Context::default();
    context.deadline = (SystemTime::now() + Duration::from_secs(60)).duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    LambdaEvent::new(payload, context)
}

/// The message ids of `batchItemFailures`, in the order the response names them.
pub fn failed_ids(response: &SqsBatchResponse) -> Vec<&str> {
    response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
}
