//! What the crate's own unit tests share: an object store in memory, and SQS Lambda events for the
//! tests that call a function's handler. (The end-to-end tests have theirs in `tests/harness`.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;

use crate::delivery::destination::{ObjectStore, PutOutcome};
use crate::delivery::retry::{DeliveryError, FailureKind};
use crate::pipeline::key::ObjectKey;

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
