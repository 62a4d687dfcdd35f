//! One batch of inbound messages through the pipeline and a destination, with an outcome for every
//! message: delivered, duplicate, filtered, or failed (transient or permanent) with its reason.
//!
//! The Lambda handlers and the command-line tool both call [`process_batch`]; they differ only in
//! where messages come from and what they do with the report.

use std::time::Instant;

use crate::config::MAX_EVENT_BYTES_VAR;
use crate::delivery::destination::{Delivered, Destination};
use crate::delivery::retry::Deadline;
use crate::delivery::retry::{DeliveryError, FailureKind};
use crate::pipeline::filter::FilteredOut;
use crate::pipeline::timestamp::Now;
use crate::pipeline::{Pipeline, PrepareError, Prepared};
use crate::report::metrics::Counts;

/// A message as it arrived: an SQS record, or a line of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The SQS message id, or `file:line` for local input. Names the message in every error.
    pub id: String,
    /// The event JSON (after any envelope or S3 pointer has been resolved).
    pub body: String,
    /// When the message was first sent, in epoch milliseconds, if known (SQS `SentTimestamp`).
    pub sent_at_ms: Option<u64>,
}

impl InboundMessage {
    pub fn new(id: impl Into<String>, body: impl Into<String>) -> Self {
        InboundMessage { id: id.into(), body: body.into(), sent_at_ms: None }
    }
}

/// Why a message failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The body cannot become a document; retrying will not help.
    #[error("{0}")]
    Invalid(#[from] PrepareError),
    /// The destination refused or could not be reached.
    #[error("{0}")]
    Delivery(#[from] DeliveryError),
    /// Something before the pipeline failed (reading an S3 pointer, unwrapping an envelope).
    #[error("{message}")]
    Input { message: String, permanent: bool },
}

impl Failure {
    /// Permanent failures go to the dead-letter queue; transient ones are retried by SQS.
    pub fn is_permanent(&self) -> bool {
        match self {
            Failure::Invalid(_) => true,
            Failure::Delivery(e) => e.kind != FailureKind::Transient,
            Failure::Input { permanent, .. } => *permanent,
        }
    }
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Written { key: String },
    Duplicate { key: String },
    Filtered(FilteredOut),
    Failed(Failure),
}

/// The report of one batch: an outcome per message, in input order, and the counts.
#[derive(Debug, Default)]
pub struct BatchReport {
    pub outcomes: Vec<(String, Outcome)>,
    pub counts: Counts,
}

impl BatchReport {
    pub fn failures(&self) -> impl Iterator<Item = (&str, &Failure)> {
        self.outcomes.iter().filter_map(|(id, o)| match o {
            Outcome::Failed(f) => Some((id.as_str(), f)),
            _ => None,
        })
    }
}

/// Runs every message through the pipeline, delivers what is ready, and reports every message.
pub async fn process_batch(pipeline: &Pipeline, destination: &dyn Destination, messages: Vec<InboundMessage>, deadline: Deadline) -> BatchReport {
    let started = Instant::now();
    let now = Now::capture();
    // A destination's own per-event limit applies when it is the lower one; when it then forces an
    // event's lines out, a warning says what sets it, so that the limit can be raised.
    let own_limit = destination.max_event_bytes().filter(|own| own.bytes < pipeline.config.max_event_bytes);
    let limit = own_limit.map_or(pipeline.config.max_event_bytes, |own| own.bytes);
    let mut counts = Counts { received: messages.len() as u64, ..Counts::default() };
    let mut outcomes: Vec<(String, Option<Outcome>)> = Vec::with_capacity(messages.len());
    let mut docs = Vec::new();
    let mut doc_slots = Vec::new();
    let oldest_sent = messages.iter().filter_map(|m| m.sent_at_ms).min();

    for message in messages {
        let outcome = match pipeline.prepare_owned(message.body, now, limit) {
            Ok(Prepared::Ready(doc)) => {
                if let (true, Some(own)) = (doc.truncated, own_limit) {
                    // The message id and sizes only: never the event's content.
                    tracing::warn!(
                        message_id = ?message.id,
                        limit = own.bytes,
                        "lines replaced by the size placeholder: the event is over {}'s limit of {} bytes per event, below {MAX_EVENT_BYTES_VAR} ({}); that limit is {}",
                        destination.describe(),
                        own.bytes,
                        pipeline.config.max_event_bytes,
                        own.set_by
                    );
                }
                counts.masked_lines += doc.masked_lines as u64;
                counts.truncated += u64::from(doc.truncated);
                doc_slots.push(outcomes.len());
                docs.push(doc);
                None
            }
            Ok(Prepared::Filtered(why)) => Some(Outcome::Filtered(why)),
            Err(e) => Some(Outcome::Failed(Failure::Invalid(e))),
        };
        outcomes.push((message.id, outcome));
    }

    let keys: Vec<String> = docs.iter().map(|d| d.key.to_string()).collect();
    counts.bytes = docs.iter().map(|d| d.body.len() as u64).sum();
    let results = if docs.is_empty() { Vec::new() } else { destination.deliver(docs, deadline).await };
    for ((slot, key), result) in doc_slots.into_iter().zip(keys).zip(results) {
        outcomes[slot].1 = Some(match result {
            Ok(Delivered::Written) => Outcome::Written { key },
            Ok(Delivered::Duplicate) => Outcome::Duplicate { key },
            Err(e) => Outcome::Failed(Failure::Delivery(e)),
        });
    }

    let outcomes: Vec<(String, Outcome)> = outcomes
        .into_iter()
        .map(|(id, o)| {
            // A destination that returned fewer results than documents would otherwise lose them.
            let o = o.unwrap_or_else(|| Outcome::Failed(Failure::Delivery(DeliveryError::transient("destination returned no result for this message"))));
            (id, o)
        })
        .collect();
    for (_, o) in &outcomes {
        match o {
            Outcome::Written { .. } => counts.written += 1,
            Outcome::Duplicate { .. } => counts.duplicates += 1,
            Outcome::Filtered(_) => counts.filtered += 1,
            Outcome::Failed(f) if f.is_permanent() => counts.failed_permanent += 1,
            Outcome::Failed(_) => counts.failed_transient += 1,
        }
    }
    counts.duration_ms = started.elapsed().as_millis() as u64;
    counts.oldest_message_age_ms = oldest_sent.map(|sent| {
        let now_ms = (now.epoch_nanos / 1_000_000) as u64 + counts.duration_ms;
        now_ms.saturating_sub(sent)
    });
    BatchReport { outcomes, counts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::destination::ObjectStoreDestination;
    use crate::delivery::retry::{FailureKind, RetryPolicy};
    use crate::test_support::MemoryStore;

    fn job(id: &str) -> String {
        format!(
            r#"{{"id":"{id}","recipe_id":1,"status":"succeeded","account_id":9,"completed_at":"2024-01-01T00:00:00Z","lines":[{{"input":{{"p":1}},"mask_data":true}}]}}"#
        )
    }

    #[tokio::test]
    async fn every_message_gets_exactly_one_outcome_in_order() {
        // keys containing "fail" are refused for good
        let dest = ObjectStoreDestination::new(MemoryStore::default().refusing("fail", FailureKind::Permanent), 4, RetryPolicy::default());
        let mut config = crate::pipeline::PipelineConfig::default();
        config.filter.streams = [crate::pipeline::filter::Stream::JobDetails, crate::pipeline::filter::Stream::JobStatus].into_iter().collect();
        let pipeline = Pipeline::new(config);
        let messages = vec![
            InboundMessage::new("m1", job("j-1")),
            InboundMessage::new("m2", "not json"),
            InboundMessage::new("m3", r#"{"event_type":"user_login","id":5,"workspace":{"id":1},"timestamp":"2024-01-01T00:00:00Z"}"#),
            InboundMessage::new("m4", job("j-fail")),
            InboundMessage::new("m5", job("j-1")),
        ];
        let report = process_batch(&pipeline, &dest, messages, Deadline::NONE).await;
        let ids: Vec<&str> = report.outcomes.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["m1", "m2", "m3", "m4", "m5"]);
        assert!(matches!(&report.outcomes[0].1, Outcome::Written { key } if key.ends_with("j-1-20240101000000-succeeded.json")));
        assert!(matches!(&report.outcomes[1].1, Outcome::Failed(f) if f.is_permanent() && f.to_string().starts_with("body is not valid JSON")));
        assert!(matches!(&report.outcomes[2].1, Outcome::Filtered(FilteredOut::UserActivityOff)));
        assert!(matches!(&report.outcomes[3].1, Outcome::Failed(f) if f.to_string().contains("refused")));
        // the same event again in the batch is a duplicate, not a second object
        assert!(matches!(&report.outcomes[4].1, Outcome::Duplicate { .. }));
        let c = report.counts;
        assert_eq!((c.received, c.written, c.duplicates, c.filtered, c.failed_permanent, c.failed_transient, c.masked_lines), (5, 1, 1, 1, 2, 0, 3));
        let stored = dest.store().objects.lock().unwrap();
        let body = String::from_utf8(stored.values().next().unwrap().clone()).unwrap();
        assert!(body.contains(r#""input":{"data":"masked"}"#) && !body.contains(r#""p":1"#), "{body}");
    }
}
