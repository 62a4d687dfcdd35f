//! One batch from an SQS queue, start to finish — what the Lambda event source mapping hands a
//! function, and what `auditstream poll` receives: resolve each message ([`crate::intake::resolve`]),
//! run the pipeline and deliver ([`crate::delivery::process::process_batch`]), then decide, per message,
//! whether SQS is done with it or must deliver it again ([`Disposition`]).
//!
//! The rules (Lambda's SQS error handling,
//! <https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html>, and
//! `docs/destinations.md`):
//! - Delivered, duplicate or filtered: done.
//! - A permanent failure on a standard queue, with a dead-letter queue configured: sent to it at
//!   once and then done; if that send fails, delivered again (nothing is lost).
//! - Any other failure: delivered again after the visibility timeout; the queue's redrive policy
//!   moves a message that keeps failing to the dead-letter queue.
//! - FIFO queues keep order: the first failure and **every later message** of the batch are
//!   delivered again, in order, and nothing is dead-lettered by us (that would let later messages
//!   of the group overtake it). Messages after a failure to resolve are not even processed.
//!
//! Memory: a batch may hold several pointers to events of up to 40 MB. Messages are therefore
//! resolved and processed in consecutive passes of at most [`RESOLVED_BYTES_PER_PASS`] of
//! expected event bytes (a pointer's declared `ExtendedPayloadSize`), so a batch of ten 40 MB
//! events needs the memory of one, not ten.

use std::time::Instant;

use futures::stream::{self, StreamExt};

use crate::aws::sqs_message::QueueMessage;
use crate::delivery::destination::Destination;
use crate::delivery::process::{process_batch, BatchReport, Failure, InboundMessage, Outcome};
use crate::delivery::retry::Deadline;
use crate::intake::dead_letter::{DeadLetter, DeadLetterSender, Reason};
use crate::intake::payload_pointer::{declared_size, LEGACY_POINTER_CLASS, POINTER_CLASS};
use crate::intake::payload_store::PayloadStore;
use crate::intake::resolve::resolve;
use crate::pipeline::timestamp::Now;
use crate::pipeline::Pipeline;
use crate::report::metrics::Counts;

/// Expected event bytes resolved and processed in one pass. One 40 MiB event always goes alone.
pub const RESOLVED_BYTES_PER_PASS: usize = 32 * 1024 * 1024;
/// Payloads fetched from S3 at once within a pass.
pub const FETCH_CONCURRENCY: usize = 8;

/// What a batch is processed with.
#[derive(Clone, Copy)]
pub struct QueueTools<'a> {
    pub pipeline: &'a Pipeline,
    pub destination: &'a dyn Destination,
    /// Reads offloaded payloads; without it a pointer fails permanently.
    pub payloads: Option<&'a dyn PayloadStore>,
    /// Where permanent failures go; without it they are left to the queue's redrive policy.
    pub dead_letters: Option<&'a dyn DeadLetterSender>,
    /// Who processes the batch (the function name, `auditstream poll`), for dead letters.
    pub processed_by: &'a str,
}

/// Standard or FIFO: FIFO changes what a failure means for the rest of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    Standard,
    Fifo,
}

/// Why a message is to be delivered again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryReason {
    /// It failed (see its outcome).
    Failed,
    /// It failed permanently, and sending it to the dead-letter queue failed too.
    DeadLetterFailed(String),
    /// It is fine, but an earlier message of this FIFO batch failed: it must not overtake it.
    FifoOrder { after: String },
}

/// What SQS should do with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Done with (delivered, duplicate, filtered): delete it.
    Done,
    /// Sent to the dead-letter queue: delete it.
    DeadLettered,
    /// Deliver it again: report it as a batch item failure, or do not delete it.
    Retry(RetryReason),
}

impl Disposition {
    pub fn is_retry(&self) -> bool {
        matches!(self, Disposition::Retry(_))
    }
}

/// A settled batch: an outcome and a disposition per message, in input order.
#[derive(Debug, Default)]
pub struct Settled {
    pub report: BatchReport,
    pub dispositions: Vec<Disposition>,
}

impl Settled {
    /// `(message id, outcome, disposition)` in input order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Outcome, &Disposition)> {
        self.report.outcomes.iter().zip(&self.dispositions).map(|((id, o), d)| (id.as_str(), o, d))
    }

    /// Ids of the messages SQS must deliver again, in input order.
    pub fn to_retry(&self) -> impl Iterator<Item = &str> {
        self.iter().filter(|(_, _, d)| d.is_retry()).map(|(id, _, _)| id)
    }
}

/// Processes one batch received from a queue and settles every message.
pub async fn settle(tools: QueueTools<'_>, messages: Vec<QueueMessage>, kind: QueueKind, deadline: Deadline) -> Settled {
    let started = Instant::now();
    let fifo = kind == QueueKind::Fifo;
    let total = messages.len();
    // A dead letter is the original message: keep it while its resolved form goes through.
    let keep_originals = tools.dead_letters.is_some() && !fifo;
    let mut originals: Vec<Option<QueueMessage>> = messages.iter().map(|m| keep_originals.then(|| m.clone())).collect();
    let passes = passes(&messages.iter().map(expected_size).collect::<Vec<_>>());

    let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; total];
    let mut counts = Counts::default();
    let mut pending = messages.into_iter();
    let mut first_failure: Option<usize> = None;
    for pass in passes {
        let batch: Vec<QueueMessage> = pending.by_ref().take(pass.len()).collect();
        if let (true, Some(failed)) = (fifo, first_failure) {
            for i in pass {
                outcomes[i] = Some(not_processed(&ids[failed]));
            }
            continue;
        }
        let resolved: Vec<Result<InboundMessage, Failure>> =
            stream::iter(batch).map(|m| resolve(m, tools.payloads, deadline)).buffered(FETCH_CONCURRENCY).collect().await;
        let mut inbound = Vec::new();
        let mut slots = Vec::new();
        for (i, r) in pass.clone().zip(resolved) {
            match r {
                Ok(_) if fifo && first_failure.is_some() => outcomes[i] = Some(not_processed(&ids[first_failure.unwrap_or(i)])),
                Ok(m) => {
                    slots.push(i);
                    inbound.push(m);
                }
                Err(f) => {
                    outcomes[i] = Some(Outcome::Failed(f));
                    first_failure.get_or_insert(i);
                }
            }
        }
        if !inbound.is_empty() {
            let report = process_batch(tools.pipeline, tools.destination, inbound, deadline).await;
            counts.add(&report.counts);
            for (slot, (_, outcome)) in slots.into_iter().zip(report.outcomes) {
                if matches!(outcome, Outcome::Failed(_)) {
                    first_failure = Some(first_failure.map_or(slot, |f| f.min(slot)));
                }
                outcomes[slot] = Some(outcome);
            }
        }
    }

    let outcomes: Vec<Outcome> = outcomes.into_iter().map(|o| o.unwrap_or_else(|| not_processed("(none)"))).collect();
    // Failures before the pipeline are not in process_batch's counts.
    let processed = counts.received;
    counts.received = total as u64;
    let unprocessed = outcomes.iter().filter(|o| matches!(o, Outcome::Failed(Failure::Input { .. }))).count() as u64;
    debug_assert_eq!(processed + unprocessed, total as u64);
    for o in &outcomes {
        if let Outcome::Failed(f @ Failure::Input { .. }) = o {
            if f.is_permanent() {
                counts.failed_permanent += 1;
            } else {
                counts.failed_transient += 1;
            }
        }
    }

    let mut dispositions: Vec<Disposition> = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| match (o, first_failure) {
            (_, Some(failed)) if fifo && i > failed => match o {
                Outcome::Failed(_) => Disposition::Retry(RetryReason::Failed),
                _ => Disposition::Retry(RetryReason::FifoOrder { after: ids[failed].clone() }),
            },
            (Outcome::Failed(_), _) => Disposition::Retry(RetryReason::Failed),
            _ => Disposition::Done,
        })
        .collect();

    if let (Some(sender), false) = (tools.dead_letters, fifo) {
        let failed_at = Now::capture().iso8601();
        let mut letters = Vec::new();
        let mut slots = Vec::new();
        for (i, o) in outcomes.iter().enumerate() {
            if let (Outcome::Failed(f), Some(original)) = (o, originals[i].take()) {
                if f.is_permanent() {
                    let error = f.to_string();
                    letters.push(DeadLetter::new(original, Reason { error: &error, failed_at: &failed_at, failed_in: tools.processed_by }));
                    slots.push(i);
                }
            }
        }
        if !letters.is_empty() {
            let sent = sender.send(&letters, deadline).await;
            for ((i, letter), result) in slots.into_iter().zip(&letters).zip(sent) {
                if !letter.dropped.is_empty() {
                    tracing::warn!(message_id = %crate::redact::Escaped(&letter.original_id), dropped = ?letter.dropped, "dead letter keeps the message's own attributes; SQS allows 10, so some of ours were left out");
                }
                dispositions[i] = match result {
                    Ok(()) => {
                        counts.dead_lettered += 1;
                        Disposition::DeadLettered
                    }
                    Err(why) => Disposition::Retry(RetryReason::DeadLetterFailed(why)),
                };
            }
        }
    }

    counts.duration_ms = started.elapsed().as_millis() as u64;
    let report = BatchReport { outcomes: ids.into_iter().zip(outcomes).collect(), counts };
    Settled { report, dispositions }
}

fn not_processed(after: &str) -> Outcome {
    Outcome::Failed(Failure::Input {
        message: format!("not processed: message {after} before it in this FIFO batch failed, and later messages must not overtake it"),
        permanent: false,
    })
}

/// The event bytes a message is expected to resolve to: a pointer's declared payload size, the
/// whole pass for a pointer that declares none, else the body itself.
fn expected_size(m: &QueueMessage) -> usize {
    if let Some(size) = declared_size(&m.attributes) {
        return usize::try_from(size).unwrap_or(usize::MAX);
    }
    // A pointer (even inside an SNS envelope) is small; only small bodies are searched.
    let body = m.body.as_bytes();
    let names_pointer =
        body.len() < 64 * 1024 && [POINTER_CLASS, LEGACY_POINTER_CLASS].iter().any(|class| memchr::memmem::find(body, class.as_bytes()).is_some());
    if names_pointer {
        RESOLVED_BYTES_PER_PASS
    } else {
        body.len()
    }
}

/// Consecutive passes of at most [`RESOLVED_BYTES_PER_PASS`] expected bytes (a larger message
/// goes alone).
fn passes(sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
    crate::delivery::pack::pack(sizes, crate::delivery::pack::BatchLimits { max_entries: usize::MAX, max_bytes: RESOLVED_BYTES_PER_PASS })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aws::sqs_message::MessageAttribute;
    use crate::delivery::destination::ObjectStoreDestination;
    use crate::delivery::retry::{FailureKind, RetryPolicy};
    use crate::intake::payload_pointer::PayloadPointer;
    use crate::intake::resolve::tests::MemoryPayloads;
    use crate::test_support::MemoryStore;
    use async_trait::async_trait;
    use std::sync::Mutex;

    /// A dead-letter queue in memory that can be made to refuse.
    #[derive(Default)]
    pub struct MemoryDeadLetters {
        pub sent: std::sync::Arc<Mutex<Vec<DeadLetter>>>,
        pub refuse: bool,
    }

    #[async_trait]
    impl DeadLetterSender for MemoryDeadLetters {
        fn describe(&self) -> String {
            "memory-dlq".into()
        }
        async fn send(&self, letters: &[DeadLetter], _: Deadline) -> Vec<Result<(), String>> {
            if self.refuse {
                return letters.iter().map(|_| Err("SendMessageBatch on memory-dlq failed: HTTP 403 AccessDenied".into())).collect();
            }
            self.sent.lock().unwrap().extend(letters.iter().cloned());
            letters.iter().map(|_| Ok(())).collect()
        }
    }

    pub fn job(id: &str) -> String {
        format!(r#"{{"id":"{id}","recipe_id":1,"status":"succeeded","account_id":9,"completed_at":"2024-01-01T00:00:00Z","lines":[]}}"#)
    }

    /// A store where keys containing "unavailable" fail for now (transiently), tried once.
    fn destination() -> ObjectStoreDestination<MemoryStore> {
        ObjectStoreDestination::new(
            MemoryStore::default().refusing("unavailable", FailureKind::Transient),
            4,
            RetryPolicy { max_attempts: 1, ..RetryPolicy::default() },
        )
    }

    fn summary(settled: &Settled) -> Vec<(&str, &'static str)> {
        settled
            .iter()
            .map(|(id, o, d)| {
                let what = match (o, d) {
                    (Outcome::Written { .. }, Disposition::Done) => "written",
                    (Outcome::Written { .. }, Disposition::Retry(RetryReason::FifoOrder { .. })) => "written, held for order",
                    (Outcome::Failed(_), Disposition::DeadLettered) => "dead-lettered",
                    (Outcome::Failed(_), Disposition::Retry(RetryReason::Failed)) => "retry",
                    (Outcome::Failed(_), Disposition::Retry(RetryReason::DeadLetterFailed(_))) => "retry, dead letter failed",
                    _ => "other",
                };
                (id, what)
            })
            .collect()
    }

    #[tokio::test]
    async fn the_rules_of_a_batch_read_like_the_contract() {
        let payloads = MemoryPayloads::default().with("payloads", "big", &job("j-big"));
        let pointer = |key: &str| PayloadPointer { bucket: "payloads".into(), key: key.into() }.to_body();
        let batch = || {
            vec![
                QueueMessage::new("m1", job("j-1")),
                QueueMessage::new("m2", "not json"),
                QueueMessage::new("m3", pointer("big")).with_attribute("ExtendedPayloadSize", MessageAttribute::number(100)),
                QueueMessage::new("m4", job("j-unavailable")),
                QueueMessage::new("m5", pointer("gone")),
                QueueMessage::new("m6", job("j-6")),
            ]
        };
        type Case = (&'static str, QueueKind, Option<bool>, Vec<(&'static str, &'static str)>);
        let cases: Vec<Case> = vec![
            (
                "standard queue, no DLQ: every failure is redelivered",
                QueueKind::Standard,
                None,
                vec![("m1", "written"), ("m2", "retry"), ("m3", "written"), ("m4", "retry"), ("m5", "retry"), ("m6", "written")],
            ),
            (
                "standard queue with a DLQ: permanent failures are dead-lettered, transient ones redelivered",
                QueueKind::Standard,
                Some(false),
                vec![("m1", "written"), ("m2", "dead-lettered"), ("m3", "written"), ("m4", "retry"), ("m5", "dead-lettered"), ("m6", "written")],
            ),
            (
                "a DLQ that refuses: nothing is lost",
                QueueKind::Standard,
                Some(true),
                vec![
                    ("m1", "written"),
                    ("m2", "retry, dead letter failed"),
                    ("m3", "written"),
                    ("m4", "retry"),
                    ("m5", "retry, dead letter failed"),
                    ("m6", "written"),
                ],
            ),
            (
                "FIFO: the first failure and every later message are redelivered, nothing is dead-lettered",
                QueueKind::Fifo,
                Some(false),
                vec![("m1", "written"), ("m2", "retry"), ("m3", "written, held for order"), ("m4", "retry"), ("m5", "retry"), ("m6", "retry")],
            ),
        ];
        for (name, kind, dlq, want) in cases {
            let dest = destination();
            let dead_letters = dlq.map(|refuse| MemoryDeadLetters { refuse, ..MemoryDeadLetters::default() });
            let pipeline = Pipeline::default();
            let tools = QueueTools {
                pipeline: &pipeline,
                destination: &dest,
                payloads: Some(&payloads),
                dead_letters: dead_letters.as_ref().map(|d| d as &dyn DeadLetterSender),
                processed_by: "test",
            };
            let settled = settle(tools, batch(), kind, Deadline::NONE).await;
            assert_eq!(summary(&settled), want, "{name}");
            assert_eq!(settled.report.counts.received, 6, "{name}");
            assert_eq!(settled.report.counts.failed() + settled.report.counts.written + settled.report.counts.duplicates, 6, "{name}");
            if let Some(d) = &dead_letters {
                let sent = d.sent.lock().unwrap();
                assert_eq!(settled.report.counts.dead_lettered as usize, sent.len(), "{name}");
                if kind == QueueKind::Standard && !d.refuse {
                    assert_eq!(
                        sent.iter().map(|l| l.message.body.as_str()).collect::<Vec<_>>(),
                        ["not json", pointer("gone").as_str()],
                        "{name}: dead letters are the original bodies"
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn fifo_messages_after_a_failure_to_resolve_are_not_processed() {
        let dest = destination();
        let pipeline = Pipeline::default();
        let payloads = MemoryPayloads::default();
        let tools = QueueTools { pipeline: &pipeline, destination: &dest, payloads: Some(&payloads), dead_letters: None, processed_by: "test" };
        let gone = PayloadPointer { bucket: "payloads".into(), key: "gone".into() }.to_body();
        let messages = vec![QueueMessage::new("m1", job("j-1")), QueueMessage::new("m2", gone), QueueMessage::new("m3", job("j-3"))];
        let settled = settle(tools, messages, QueueKind::Fifo, Deadline::NONE).await;
        assert_eq!(settled.to_retry().collect::<Vec<_>>(), ["m2", "m3"]);
        match &settled.report.outcomes[2].1 {
            Outcome::Failed(f) => assert!(f.to_string().starts_with("not processed: message m2 before it"), "{f}"),
            o => panic!("m3 was processed: {o:?}"),
        }
        assert_eq!(dest.store().objects.lock().unwrap().len(), 1, "only m1 was written");
    }

    #[test]
    fn large_payloads_are_processed_a_pass_at_a_time() {
        let pointer = PayloadPointer { bucket: "b".into(), key: "k".into() }.to_body();
        let forty_mb = QueueMessage::new("a", pointer.clone()).with_attribute("ExtendedPayloadSize", MessageAttribute::number(40 << 20));
        let ten_mb = QueueMessage::new("b", pointer.clone()).with_attribute("ExtendedPayloadSize", MessageAttribute::number(10 << 20));
        let undeclared = QueueMessage::new("c", pointer);
        let small = QueueMessage::new("d", job("j"));
        let sizes: Vec<usize> = [&small, &forty_mb, &ten_mb, &ten_mb, &ten_mb, &ten_mb, &small, &undeclared, &small].iter().map(|m| expected_size(m)).collect();
        assert_eq!(passes(&sizes), vec![0..1, 1..2, 2..5, 5..7, 7..8, 8..9]);
    }
}
