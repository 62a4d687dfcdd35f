//! From an SQS Lambda event to an `SqsBatchResponse`: the wiring every function shares.
//!
//! Each record is processed on its own, so one bad message fails alone. A record may be an event,
//! an SNS/EventBridge envelope, or an S3 payload pointer ([`crate::intake::resolve`]); permanent failures
//! go to the dead-letter queue at once when one is configured ([`crate::intake::dead_letter`]); FIFO
//! queues keep their order ([`crate::intake::settle`]). The response names exactly the messages SQS
//! must deliver again: Lambda then deletes the rest. An empty or missing item identifier would
//! make Lambda retry the whole batch, so it is never sent; a failed record without a message id
//! (which SQS never produces) fails the invocation instead, which is the one way left to keep it.
//!
//! Every function builds its [`SqsFunction`] with [`SqsFunction::from_env`], so each gets the
//! payload store and the dead-letter queue the same way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;

use crate::aws::sqs::{is_fifo, sqs_client};
use crate::aws::sqs_message::{QueueMessage, NO_ID};
use crate::config::{ConfigError, Env, ProcessEnv};
use crate::delivery::destination::Destination;
use crate::delivery::process::{BatchReport, Failure, Outcome};
use crate::delivery::retry::Deadline;
use crate::intake::dead_letter::{DeadLetterSender, DeadLetterSettings, SqsDeadLetterQueue};
use crate::intake::payload_store::{PayloadStore, S3PayloadStore};
use crate::intake::settle::{settle, Disposition, QueueKind, QueueTools, RetryReason, Settled};
use crate::pipeline::Pipeline;
use crate::redact::Escaped;

/// The namespace of the functions' CloudWatch metrics.
pub const METRICS_NAMESPACE: &str = "auditstream";

/// What a function built at cold start: the pipeline, its destination, and the queue tools.
pub struct SqsFunction<D> {
    pub name: String,
    pub pipeline: Pipeline,
    pub destination: D,
    /// Reads S3 payload pointers (Extended Client format).
    pub payloads: Option<Arc<dyn PayloadStore>>,
    /// Where permanent failures go at once (`AUDITSTREAM_DLQ_URL`).
    pub dead_letters: Option<Arc<dyn DeadLetterSender>>,
}

#[derive(Debug, thiserror::Error)]
#[error("{count} failed message(s) in this batch have no SQS message id, so they cannot be reported one by one; failing the invocation so that SQS redelivers the batch")]
pub struct UnreportableFailures {
    pub count: usize,
}

impl<D: Destination> SqsFunction<D> {
    /// A function without a payload store or dead-letter queue (tests; see [`Self::from_env`]).
    pub fn new(name: impl Into<String>, pipeline: Pipeline, destination: D) -> Self {
        SqsFunction { name: name.into(), pipeline, destination, payloads: None, dead_letters: None }
    }

    /// The function every `main.rs` builds: S3 payload pointers are read with a client from
    /// `aws`, and permanent failures go to `AUDITSTREAM_DLQ_URL` when it is set. A bad value
    /// stops the function at init with a message naming the variable.
    pub fn from_env(name: impl Into<String>, pipeline: Pipeline, destination: D, aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Self::from_env_in(&ProcessEnv, name, pipeline, destination, aws)
    }

    /// [`Self::from_env`] reading variables from `env`.
    pub fn from_env_in(
        env: &(impl Env + ?Sized),
        name: impl Into<String>,
        pipeline: Pipeline,
        destination: D,
        aws: &aws_config::SdkConfig,
    ) -> Result<Self, ConfigError> {
        let dlq = DeadLetterSettings::from_env(env)?;
        let mut function = Self::new(name, pipeline, destination).with_payload_store(S3PayloadStore::new(crate::aws::s3::s3_client(aws)));
        if let Some(url) = dlq.queue_url {
            function = function.with_dead_letter_queue(SqsDeadLetterQueue::new(sqs_client(aws), url));
        }
        Ok(function)
    }

    pub fn with_payload_store(mut self, store: impl PayloadStore + 'static) -> Self {
        self.payloads = Some(Arc::new(store));
        self
    }

    pub fn with_dead_letter_queue(mut self, sender: impl DeadLetterSender + 'static) -> Self {
        self.dead_letters = Some(Arc::new(sender));
        self
    }

    /// The Lambda handler.
    pub async fn handle(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, lambda_runtime::Error> {
        let deadline = lambda_deadline(event.context.deadline);
        let records = event.payload.records;
        let kind = if records.iter().any(|r| r.event_source_arn.as_deref().is_some_and(is_fifo)) { QueueKind::Fifo } else { QueueKind::Standard };
        let messages: Vec<QueueMessage> = records.into_iter().enumerate().map(|(i, r)| QueueMessage::from_lambda(i, r)).collect();
        let tools = QueueTools {
            pipeline: &self.pipeline,
            destination: &self.destination,
            payloads: self.payloads.as_deref(),
            dead_letters: self.dead_letters.as_deref(),
            processed_by: &self.name,
        };
        let settled = settle(tools, messages, kind, deadline).await;
        settled.report.counts.emit_emf(METRICS_NAMESPACE, &self.name);
        Ok(settled_response(&settled, &self.destination.describe())?)
    }
}

/// The budget an invocation works to when the runtime's deadline cannot be real: 60 s, the
/// template's default `FunctionTimeout`.
pub const FALLBACK_BUDGET: Duration = Duration::from_secs(60);

/// Whether the warning about an impossible deadline was logged (once per process).
static WARNED_PAST_DEADLINE: AtomicBool = AtomicBool::new(false);

/// The deadline to finish delivering by: the invocation's, less a margin to report results.
///
/// Lambda's deadline (`Lambda-Runtime-Deadline-Ms`) is the invocation's start plus the function's
/// timeout, so it is never past when an invocation starts. One that is cannot be real: Cargo
/// Lambda's emulator (`cargo lambda watch`) sends `600000`, ten minutes after 1970. Taken at its
/// word, every message would be abandoned unsent; instead the invocation works to
/// [`FALLBACK_BUDGET`], with a warning the first time.
fn lambda_deadline(deadline_ms: u64) -> Deadline {
    let now = SystemTime::now();
    let given = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let wall = match given.duration_since(now) {
        Ok(left) if !left.is_zero() => given,
        _ => {
            if !WARNED_PAST_DEADLINE.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    deadline_ms,
                    fallback_secs = FALLBACK_BUDGET.as_secs(),
                    "the invocation's deadline ({deadline_ms} ms after 1970-01-01) had already passed when it started, which a real Lambda never sends (a local emulator does): working to a fallback budget of {} s instead",
                    FALLBACK_BUDGET.as_secs()
                );
            }
            now + FALLBACK_BUDGET
        }
    };
    let left = wall.duration_since(now).unwrap_or(Duration::ZERO);
    // Keep 2 s, or a fifth of a short timeout, to dead-letter, log and answer.
    Deadline::from_wall_clock(wall, Duration::from_secs(2).min(left / 5))
}

/// Logs every failure and builds the partial batch response of a settled batch: exactly the
/// messages whose disposition is to be delivered again.
pub fn settled_response(settled: &Settled, destination: &str) -> Result<SqsBatchResponse, UnreportableFailures> {
    let mut items = Vec::new();
    for (id, outcome, disposition) in settled.iter() {
        let failure = match outcome {
            Outcome::Failed(f) => Some(f),
            _ => None,
        };
        log_disposition(id, failure, disposition, destination);
        if disposition.is_retry() {
            items.push(id);
        }
    }
    let c = &settled.report.counts;
    tracing::info!(
        received = c.received,
        written = c.written,
        duplicates = c.duplicates,
        filtered = c.filtered,
        masked_lines = c.masked_lines,
        truncated = c.truncated,
        failed = c.failed(),
        dead_lettered = c.dead_lettered,
        redelivered = items.len(),
        destination,
        "batch done"
    );
    response(items)
}

/// The partial batch response of a plain batch report, settled without a dead-letter queue: every
/// failure is delivered again.
pub fn batch_response(report: BatchReport, destination: &str) -> Result<SqsBatchResponse, UnreportableFailures> {
    let dispositions = report
        .outcomes
        .iter()
        .map(|(_, outcome)| if matches!(outcome, Outcome::Failed(_)) { Disposition::Retry(RetryReason::Failed) } else { Disposition::Done })
        .collect();
    settled_response(&Settled { report, dispositions }, destination)
}

fn log_disposition(id: &str, failure: Option<&Failure>, disposition: &Disposition, destination: &str) {
    match (failure, disposition) {
        (Some(f), Disposition::DeadLettered) => {
            tracing::error!(message_id = %Escaped(id), destination, failure = "permanent", "message not delivered, sent to the dead-letter queue: {}", Escaped(&f.to_string()));
        }
        (Some(f), Disposition::Retry(RetryReason::DeadLetterFailed(why))) => {
            tracing::error!(message_id = %Escaped(id), destination, failure = "permanent", "message not delivered: {}; sending it to the dead-letter queue failed too ({}), so SQS will deliver it again", Escaped(&f.to_string()), Escaped(why));
        }
        (Some(f), _) => {
            let permanence = if f.is_permanent() { "permanent" } else { "transient" };
            tracing::error!(message_id = %Escaped(id), destination, failure = permanence, "message not delivered: {}", Escaped(&f.to_string()));
        }
        (None, Disposition::Retry(RetryReason::FifoOrder { after })) => {
            tracing::warn!(message_id = %Escaped(id), destination, "message delivered but reported as failed so that SQS redelivers it after message {}, which failed before it in this FIFO batch", Escaped(after));
        }
        _ => {}
    }
}

fn response<'a>(ids: impl IntoIterator<Item = &'a str>) -> Result<SqsBatchResponse, UnreportableFailures> {
    let mut response = SqsBatchResponse::default();
    let mut unreportable = 0;
    for id in ids {
        if id.is_empty() || id.starts_with(NO_ID) {
            unreportable += 1;
            continue;
        }
        let mut item = BatchItemFailure::default();
        item.item_identifier = id.to_owned();
        response.batch_item_failures.push(item);
    }
    if unreportable > 0 {
        return Err(UnreportableFailures { count: unreportable });
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::destination::ObjectStoreDestination;
    use crate::delivery::process::{Failure, Outcome};
    use crate::delivery::retry::DeliveryError;
    use crate::delivery::retry::RetryPolicy;
    use crate::intake::dead_letter::{ERROR_ATTRIBUTE, ORIGINAL_MESSAGE_ID_ATTRIBUTE};
    use crate::intake::resolve::tests::MemoryPayloads;
    use crate::intake::settle::tests::{job, MemoryDeadLetters};
    use crate::test_support::{failed_ids, invocation, record, MemoryStore, QUEUE_ARN};
    use aws_lambda_events::event::sqs::SqsMessage;

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
        assert_eq!(failed_ids(&batch_response(r, "test").unwrap()), ["b", "d"]);
        let json = serde_json::to_value(batch_response(report(vec![]), "test").unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"batchItemFailures": []}));
    }

    #[test]
    fn a_failure_without_a_message_id_fails_the_invocation() {
        let record: SqsMessage = serde_json::from_value(serde_json::json!({"body": "x"})).unwrap();
        let message = QueueMessage::from_lambda(3, record);
        assert_eq!(message.id, "(no message id) record 3");
        let r = report(vec![(&message.id, Outcome::Failed(Failure::Input { message: "bad".into(), permanent: true }))]);
        assert!(batch_response(r, "test").is_err());
        // but succeeding without an id is fine
        let r = report(vec![(&message.id, Outcome::Written { key: "k".into() })]);
        assert!(batch_response(r, "test").unwrap().batch_item_failures.is_empty());
    }

    fn function(dead_letters: Option<MemoryDeadLetters>) -> SqsFunction<ObjectStoreDestination<MemoryStore>> {
        let destination = ObjectStoreDestination::new(MemoryStore::default(), 4, RetryPolicy::default());
        let mut f = SqsFunction::new("s3-writer", Pipeline::default(), destination).with_payload_store(MemoryPayloads::default());
        if let Some(d) = dead_letters {
            f = f.with_dead_letter_queue(d);
        }
        f
    }

    #[tokio::test]
    async fn a_permanent_failure_goes_to_the_dead_letter_queue_and_is_acknowledged() {
        let dlq = MemoryDeadLetters::default();
        let sent = dlq.sent.clone();
        let f = function(Some(dlq));
        let response = f.handle(invocation(vec![record("m-1", &job("j-1"), QUEUE_ARN), record("m-2", "not json", QUEUE_ARN)])).await.unwrap();
        assert!(failed_ids(&response).is_empty(), "{response:?}");
        let sent = sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        let letter = &sent[0].message;
        assert_eq!(letter.body, "not json");
        assert_eq!(letter.attributes[ORIGINAL_MESSAGE_ID_ATTRIBUTE].as_text(), Some("m-2"));
        assert!(letter.attributes[ERROR_ATTRIBUTE].as_text().unwrap().starts_with("body is not valid JSON"));
        assert_eq!(letter.attributes["trace"].as_text(), Some("t-1"), "the message's own attributes are kept");
    }

    #[tokio::test]
    async fn a_failed_dead_letter_send_reports_the_message_instead() {
        let f = function(Some(MemoryDeadLetters { refuse: true, ..MemoryDeadLetters::default() }));
        let response = f.handle(invocation(vec![record("m-1", &job("j-1"), QUEUE_ARN), record("m-2", "not json", QUEUE_ARN)])).await.unwrap();
        assert_eq!(failed_ids(&response), ["m-2"]);
    }

    #[tokio::test]
    async fn without_a_dead_letter_queue_permanent_failures_are_redelivered() {
        let f = function(None);
        let response = f.handle(invocation(vec![record("m-1", "not json", QUEUE_ARN), record("m-2", &job("j-2"), QUEUE_ARN)])).await.unwrap();
        assert_eq!(failed_ids(&response), ["m-1"]);
    }

    #[tokio::test]
    async fn on_a_fifo_queue_the_first_failure_and_every_later_message_are_reported_in_order() {
        let fifo = "arn:aws:sqs:us-east-1:123456789012:audit.fifo";
        let dlq = MemoryDeadLetters::default();
        let sent = dlq.sent.clone();
        let f = function(Some(dlq));
        let records =
            vec![record("m-1", &job("j-1"), fifo), record("m-2", "not json", fifo), record("m-3", &job("j-3"), fifo), record("m-4", &job("j-4"), fifo)];
        let response = f.handle(invocation(records)).await.unwrap();
        assert_eq!(failed_ids(&response), ["m-2", "m-3", "m-4"]);
        assert!(sent.lock().unwrap().is_empty(), "FIFO failures are not dead-lettered by the function");
    }

    #[test]
    fn a_deadline_already_past_at_the_start_gives_the_fallback_budget() {
        // cargo-lambda's emulator sends `Lambda-Runtime-Deadline-Ms: 600000` (1970-01-01T00:10:00Z)
        for past in [600_000, 0, UNIX_EPOCH.elapsed().unwrap().as_millis() as u64 - 1] {
            let left = lambda_deadline(past).remaining().unwrap();
            // the fallback budget less the 2 s margin
            assert!(left > FALLBACK_BUDGET - Duration::from_secs(3) && left <= FALLBACK_BUDGET - Duration::from_secs(2), "{past}: {left:?}");
        }
        // a real deadline is kept as it is
        let in_ten_s = (SystemTime::now() + Duration::from_secs(10)).duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let left = lambda_deadline(in_ten_s).remaining().unwrap();
        assert!(left > Duration::from_secs(7) && left <= Duration::from_secs(8), "{left:?}");
    }

    /// A store that takes a moment per write, as one across a network does.
    #[derive(Default)]
    struct NetworkStore(MemoryStore);

    #[async_trait::async_trait]
    impl crate::delivery::destination::ObjectStore for NetworkStore {
        fn describe(&self) -> String {
            "network".into()
        }
        async fn put_new(&self, key: &crate::pipeline::key::ObjectKey, body: bytes::Bytes) -> Result<crate::delivery::destination::PutOutcome, DeliveryError> {
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.0.put_new(key, body).await
        }
    }

    #[tokio::test]
    async fn an_emulator_deadline_in_1970_still_delivers_the_batch() {
        let destination = ObjectStoreDestination::new(NetworkStore::default(), 4, RetryPolicy::default());
        let f = SqsFunction::new("s3-writer", Pipeline::default(), destination);
        let mut e = invocation(vec![record("m-1", &job("j-1"), QUEUE_ARN), record("m-2", &job("j-2"), QUEUE_ARN)]);
        // what `cargo lambda watch` sends as Lambda-Runtime-Deadline-Ms
        e.context.deadline = 600_000;
        let response = f.handle(e).await.unwrap();
        assert!(failed_ids(&response).is_empty(), "{response:?}");
        assert_eq!(f.destination.store().0.objects.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_dead_lettered_record_without_an_id_needs_no_report() {
        let f = function(Some(MemoryDeadLetters::default()));
        let mut r = record("", "not json", QUEUE_ARN);
        r.as_object_mut().unwrap().remove("messageId");
        assert!(failed_ids(&f.handle(invocation(vec![r.clone()])).await.unwrap()).is_empty());
        // without a DLQ it cannot be reported, so the invocation fails
        assert!(function(None).handle(invocation(vec![r])).await.is_err());
    }
}
