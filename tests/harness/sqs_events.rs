//! SQS Lambda events for the tests that call a function's handler (`SqsFunction::handle`) in the test
//! process, and reading its answer, the partial batch response.

use std::borrow::Borrow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auditstream::delivery::process::InboundMessage;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};

use crate::workspace_root;

/// The queue the records of [`sqs_event`] come from: a standard queue (a FIFO queue's name ends in
/// `.fifo`).
pub const QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:audit";

/// A sample event of the repository's `events/` folder, e.g. `sqs-mixed-batch.json`.
pub fn sample_event(name: &str) -> SqsEvent {
    let path = workspace_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An event of `(message id, body)` records as Lambda's SQS event source delivers them from
/// [`QUEUE_ARN`]: received once, sent just now.
pub fn sqs_event<I: AsRef<str>, B: AsRef<str>>(records: impl IntoIterator<Item = impl Borrow<(I, B)>>) -> SqsEvent {
    sqs_event_from(QUEUE_ARN, records)
}

/// [`sqs_event`] from the queue `queue_arn`.
pub fn sqs_event_from<I: AsRef<str>, B: AsRef<str>>(queue_arn: &str, records: impl IntoIterator<Item = impl Borrow<(I, B)>>) -> SqsEvent {
    let sent_at = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0).to_string();
    let records: Vec<Value> = records
        .into_iter()
        .map(|record| {
            let (id, body) = record.borrow();
            json!({"messageId": id.as_ref(), "receiptHandle": "rh", "body": body.as_ref(),
                   "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": sent_at}, "messageAttributes": {},
                   "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1"})
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap_or_else(|e| panic!("{e}"))
}

/// The invocation of a function with `event`, `time_left` before its deadline.
pub fn lambda_event(event: SqsEvent, time_left: Duration) -> LambdaEvent<SqsEvent> {
    let mut context = Context::default();
    context.deadline = (SystemTime::now() + time_left).duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    LambdaEvent::new(event, context)
}

/// The records of `event` as the pipeline gets them: message id and body.
pub fn messages(event: &SqsEvent) -> Vec<InboundMessage> {
    event.records.iter().map(|r| InboundMessage::new(r.message_id.clone().unwrap_or_default(), r.body.clone().unwrap_or_default())).collect()
}

/// The message ids of `batchItemFailures`, in the order the response names them.
pub fn failed_ids(response: &SqsBatchResponse) -> Vec<String> {
    response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect()
}
