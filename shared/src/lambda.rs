//! From an SQS Lambda event to an `SqsBatchResponse`: the wiring every function shares.
//!
//! Each record is processed on its own, so one bad message fails alone. The response names
//! exactly the failed message ids: Lambda then deletes the rest and SQS redelivers only those.
//! An empty or missing item identifier would make Lambda retry the whole batch, so it is never
//! sent; a failed record without a message id (which SQS never produces) fails the invocation
//! instead, which is the one way left to keep it.

use std::time::{Duration, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;

use crate::batch::{process_batch, BatchReport, InboundMessage};
use crate::destination::Destination;
use crate::pipeline::Pipeline;
use crate::retry::Deadline;

/// The namespace of the functions' CloudWatch metrics.
pub const METRICS_NAMESPACE: &str = "auditstream";

/// What a function built at cold start: the pipeline and its destination.
pub struct SqsFunction<D> {
    pub name: String,
    pub pipeline: Pipeline,
    pub destination: D,
}

#[derive(Debug, thiserror::Error)]
#[error("{count} failed message(s) in this batch have no SQS message id, so they cannot be reported one by one; failing the invocation so that SQS redelivers the batch")]
pub struct UnreportableFailures {
    pub count: usize,
}

impl<D: Destination> SqsFunction<D> {
    pub fn new(name: impl Into<String>, pipeline: Pipeline, destination: D) -> Self {
        SqsFunction { name: name.into(), pipeline, destination }
    }

    /// The Lambda handler.
    pub async fn handle(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, lambda_runtime::Error> {
        let deadline = lambda_deadline(event.context.deadline);
        let messages: Vec<InboundMessage> = event.payload.records.into_iter().enumerate().map(|(i, r)| inbound(i, r)).collect();
        let report = process_batch(&self.pipeline, &self.destination, messages, deadline).await;
        report.counts.emit_emf(METRICS_NAMESPACE, &self.name);
        Ok(batch_response(&report, &self.destination.describe())?)
    }
}

/// The deadline to finish delivering by: the invocation's, less a margin to report results.
fn lambda_deadline(deadline_ms: u64) -> Deadline {
    let wall = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let left = wall.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO);
    // Keep 2 s, or a fifth of a short timeout, to log and answer.
    Deadline::from_wall_clock(wall, Duration::from_secs(2).min(left / 5))
}

/// Placeholder id prefix for records that arrive without a message id.
const NO_ID: &str = "(no message id) record ";

fn inbound(index: usize, record: SqsMessage) -> InboundMessage {
    let id = record.message_id.filter(|id| !id.is_empty()).unwrap_or_else(|| format!("{NO_ID}{index}"));
    let sent_at_ms = record.attributes.get("SentTimestamp").and_then(|t| t.parse().ok());
    InboundMessage { id, body: record.body.unwrap_or_default(), sent_at_ms }
}

/// Logs every failure and builds the partial batch response.
pub fn batch_response(report: &BatchReport, destination: &str) -> Result<SqsBatchResponse, UnreportableFailures> {
    let mut response = SqsBatchResponse::default();
    let mut unreportable = 0;
    for (id, failure) in report.failures() {
        let permanence = if failure.is_permanent() { "permanent" } else { "transient" };
        tracing::error!(message_id = %id, destination, failure = permanence, "message not delivered: {failure}");
        if id.starts_with(NO_ID) {
            unreportable += 1;
            continue;
        }
        let mut item = BatchItemFailure::default();
        item.item_identifier = id.to_owned();
        response.batch_item_failures.push(item);
    }
    let c = &report.counts;
    tracing::info!(received = c.received, written = c.written, duplicates = c.duplicates, filtered = c.filtered, masked_lines = c.masked_lines,
        truncated = c.truncated, failed = c.failed(), destination, "batch done");
    if unreportable > 0 {
        return Err(UnreportableFailures { count: unreportable });
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Failure, Outcome};
    use crate::destination::DeliveryError;

    fn report(outcomes: Vec<(&str, Outcome)>) -> BatchReport {
        BatchReport { outcomes: outcomes.into_iter().map(|(id, o)| (id.to_owned(), o)).collect(), ..BatchReport::default() }
    }

    #[test]
    fn only_failed_messages_are_named() {
        let r = report(vec![
            ("a", Outcome::Written { key: "k".into() }),
            ("b", Outcome::Failed(Failure::Delivery(DeliveryError::transient("503")))),
            ("c", Outcome::Duplicate { key: "k".into() }),
            ("d", Outcome::Failed(Failure::Input { message: "bad".into(), permanent: true })),
        ]);
        let ids: Vec<String> = batch_response(&r, "test").unwrap().batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        assert_eq!(ids, ["b", "d"]);
        let json = serde_json::to_value(batch_response(&report(vec![]), "test").unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"batchItemFailures": []}));
    }

    #[test]
    fn a_failure_without_a_message_id_fails_the_invocation() {
        let record: SqsMessage = serde_json::from_value(serde_json::json!({"body": "x"})).unwrap();
        let message = inbound(3, record);
        assert_eq!(message.id, "(no message id) record 3");
        let r = report(vec![(&message.id, Outcome::Failed(Failure::Input { message: "bad".into(), permanent: true }))]);
        assert!(batch_response(&r, "test").is_err());
        // but succeeding without an id is fine
        let r = report(vec![(&message.id, Outcome::Written { key: "k".into() })]);
        assert!(batch_response(&r, "test").unwrap().batch_item_failures.is_empty());
    }
}
