//! Batching delivery to a [`LogSink`]: the one batcher every log destination uses.
//!
//! Documents are packed in order into requests within the sink's limits (events per request,
//! bytes per request). Each request goes out through the shared retry policy. A request the
//! service (or the sink's own pre-send check) finds too large is split in half and each half sent
//! again — Vector drops such a batch; we do not. A single event that is still too large fails
//! permanently, alone. A request the service took in part (Splunk HEC indexes the events before an
//! invalid one, refuses it, and drops the rest) counts the taken documents delivered, fails the
//! refused one alone, and sends the rest again. Every failure maps back to exactly the documents,
//! and so the SQS messages, that it was about.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::{self, StreamExt};

use crate::delivery::destination::{Delivered, Destination, EventLimit, LogSink, SinkLimits, CHECK_TIME};
use crate::delivery::health::{probe_document, probe_id, HealthReport, Step};
use crate::delivery::retry::{Deadline, RetryPolicy};
use crate::delivery::retry::{DeliveryError, FailureKind};
use crate::pipeline::key::KeyPrefix;
use crate::pipeline::timestamp::UtcTime;
use crate::pipeline::Document;

pub struct LogSinkDestination<S> {
    sink: S,
    retry: RetryPolicy,
    /// Requests in flight at once.
    concurrency: usize,
}

type Outcome = Result<Delivered, DeliveryError>;

impl<S: LogSink> LogSinkDestination<S> {
    pub fn new(sink: S, concurrency: usize, retry: RetryPolicy) -> Self {
        LogSinkDestination { sink, retry, concurrency: concurrency.max(1) }
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Sends `docs` as one request; on "too large", splits and recurses; on a partial acceptance,
    /// sends what follows the refused document again. Returns one outcome per document, in order.
    fn send_splitting<'a>(&'a self, docs: &'a [Arc<Document>], deadline: Deadline) -> Pin<Box<dyn Future<Output = Vec<Outcome>> + Send + 'a>> {
        Box::pin(async move {
            match self.retry.run(deadline, |_| self.sink.send_shared(docs)).await {
                Ok(()) => vec![Ok(Delivered::Written); docs.len()],
                Err(e) if e.kind == FailureKind::TooLarge && docs.len() > 1 => {
                    let (left, right) = docs.split_at(docs.len() / 2);
                    let mut out = self.send_splitting(left, deadline).await;
                    out.extend(self.send_splitting(right, deadline).await);
                    out
                }
                Err(e) if e.kind == FailureKind::TooLarge => {
                    vec![Err(DeliveryError::permanent(format!("{}; the event is too large for this endpoint even on its own", e.message)))]
                }
                Err(mut e) => match e.accepted.take().filter(|&k| k < docs.len()) {
                    // The service took the first `k` and refused document `k` alone: failing them
                    // all would resend (duplicate) the first ones and fail the later ones for nothing.
                    Some(k) => {
                        let mut out = vec![Ok(Delivered::Written); k];
                        out.push(Err(e));
                        if k + 1 < docs.len() {
                            out.extend(self.send_splitting(&docs[k + 1..], deadline).await);
                        }
                        out
                    }
                    None => vec![Err(e); docs.len()],
                },
            }
        })
    }
}

/// Packs documents, in order, into requests within `limits` (by their body sizes), with the one
/// packing rule of [`crate::delivery::pack::pack`]: a document larger than the byte limit gets a request
/// of its own, and the sink decides whether it fits.
fn pack(sizes: &[usize], limits: SinkLimits) -> Vec<std::ops::Range<usize>> {
    crate::delivery::pack::pack(sizes, crate::delivery::pack::BatchLimits { max_entries: limits.max_events.max(1), max_bytes: limits.max_request_bytes })
}

#[async_trait]
impl<S: LogSink> Destination for LogSinkDestination<S> {
    fn describe(&self) -> String {
        self.sink.describe()
    }

    fn max_event_bytes(&self) -> Option<EventLimit> {
        self.sink.limits().max_event_bytes
    }

    /// Access steps, then one probe event sent through the same retry policy as events. Log
    /// services give nothing back to read, so read-back is skipped.
    async fn check(&self, prefix: &KeyPrefix, now: UtcTime, report: &mut HealthReport) {
        self.sink.check_access(report).await;
        let probe = probe_document(prefix, now, &probe_id());
        let deadline = Deadline::after(CHECK_TIME);
        let one = [&probe];
        let sent =
            report.probe(async { self.retry.run(deadline, |_| self.sink.send(&one)).await.map(|()| format!("probe event {} accepted", probe.key)) }).await;
        if sent {
            report.skip(Step::ReadBack, "a log service's ingestion API gives nothing back to read");
        }
    }

    async fn deliver(&self, docs: Vec<Document>, deadline: Deadline) -> Vec<Outcome> {
        let sizes: Vec<usize> = docs.iter().map(|d| d.body.len()).collect();
        // Shared, so that a sink can send a document's bytes without copying them.
        let docs: Vec<Arc<Document>> = docs.into_iter().map(Arc::new).collect();
        let batches = pack(&sizes, self.sink.limits());
        let mut results: Vec<(usize, Vec<Outcome>)> = stream::iter(batches)
            .map(|range| {
                let slice = &docs[range.clone()];
                async move { (range.start, self.send_splitting(slice, deadline).await) }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        results.sort_unstable_by_key(|(start, _)| *start);
        results.into_iter().flat_map(|(_, r)| r).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::event::{EventMeta, JobMeta};
    use crate::pipeline::key::{KeyLayout, KeyPrefix, ObjectKey};
    use crate::pipeline::timestamp::UtcTime;
    use std::sync::Mutex;

    fn limits(max_events: usize, max_request_bytes: usize) -> SinkLimits {
        SinkLimits { max_events, max_request_bytes, max_event_bytes: None }
    }

    #[test]
    fn packing_respects_count_and_bytes_and_keeps_order() {
        assert_eq!(pack(&[10, 10, 10, 10, 10], limits(2, 1000)), vec![0..2, 2..4, 4..5]);
        assert_eq!(pack(&[40, 40, 40, 10], limits(100, 100)), vec![0..2, 2..4]);
        // an oversize document travels alone, the sink decides
        assert_eq!(pack(&[10, 500, 10], limits(100, 100)), vec![0..1, 1..2, 2..3]);
        assert_eq!(pack(&[1, 1, 1], limits(1, 100)), vec![0..1, 1..2, 2..3]);
        assert_eq!(pack(&[1, 1, 1], limits(0, 100)), vec![0..1, 1..2, 2..3], "no limit of 0 events: one per request");
        assert!(pack(&[], limits(10, 10)).is_empty());
    }

    /// A sink that refuses requests over `max_bytes` as too large and fails bodies containing
    /// "reject" permanently. A body containing "invalid" it refuses as Splunk HEC does: it takes
    /// the documents before the first one, refuses that one saying how many it took (or
    /// `reported`, to play a service that gets it wrong), and drops the rest. It records the
    /// requests sent and the documents accepted, per request.
    struct FakeSink {
        max_bytes: usize,
        reported: Option<usize>,
        requests: Mutex<Vec<Vec<String>>>,
        accepted: Mutex<Vec<Vec<String>>>,
    }

    impl FakeSink {
        fn new(max_bytes: usize) -> FakeSink {
            FakeSink { max_bytes, reported: None, requests: Mutex::new(Vec::new()), accepted: Mutex::new(Vec::new()) }
        }
    }

    #[async_trait]
    impl LogSink for FakeSink {
        fn describe(&self) -> String {
            "fake".into()
        }
        fn limits(&self) -> SinkLimits {
            limits(100, 10_000)
        }
        async fn send(&self, docs: &[&Document]) -> Result<(), DeliveryError> {
            let bodies: Vec<String> = docs.iter().map(|d| String::from_utf8(d.body.clone()).unwrap()).collect();
            self.requests.lock().unwrap().push(bodies.clone());
            if bodies.iter().map(String::len).sum::<usize>() > self.max_bytes {
                return Err(DeliveryError::too_large("fake: HTTP 413"));
            }
            if bodies.iter().any(|b| b.contains("reject")) {
                return Err(DeliveryError::permanent("fake: HTTP 400"));
            }
            let taken = bodies.iter().position(|b| b.contains("invalid")).unwrap_or(bodies.len());
            if taken > 0 {
                self.accepted.lock().unwrap().push(bodies[..taken].to_vec());
            }
            if taken < bodies.len() {
                return Err(DeliveryError::permanent(format!("fake: HTTP 400 for event {taken}")).after_accepting(self.reported.unwrap_or(taken)));
            }
            Ok(())
        }
    }

    fn doc(body: &str) -> Document {
        let meta =
            EventMeta::Job(JobMeta { id: "j".into(), recipe_id: "1".into(), status: "s".into(), user_id: "1".into(), time: UtcTime::from_epoch_seconds(0) });
        let key = ObjectKey::for_event(&meta, KeyLayout::Standard, &KeyPrefix::default(), b"");
        Document { key, body: body.as_bytes().to_vec(), meta, masked_lines: 0, truncated: false }
    }

    #[tokio::test]
    async fn a_413_splits_the_batch_until_it_fits_and_nothing_is_lost() {
        let sink = FakeSink::new(25);
        let dest = LogSinkDestination::new(sink, 1, RetryPolicy::default());
        let docs = vec![doc("aaaaaaaaaa"), doc("bbbbbbbbbb"), doc("cccccccccc"), doc("dddddddddd"), doc(&"e".repeat(30))];
        let out = dest.deliver(docs, Deadline::NONE).await;
        assert_eq!(out.len(), 5);
        assert!(out[..4].iter().all(|o| *o == Ok(Delivered::Written)), "{out:?}");
        let err = out[4].clone().unwrap_err();
        assert_eq!(err.kind, FailureKind::Permanent);
        assert!(err.message.contains("too large for this endpoint even on its own"), "{err}");
        let accepted = dest.sink().accepted.lock().unwrap().clone();
        // [a b c d e] → [a b] + [c d e] → [c] + [d e] → [d] + [e alone, still too large]
        assert_eq!(accepted, vec![vec!["aaaaaaaaaa", "bbbbbbbbbb"], vec!["cccccccccc"], vec!["dddddddddd"]]);
    }

    #[tokio::test]
    async fn a_failed_request_fails_exactly_its_documents() {
        // two requests of two: the second holds the rejected document
        struct TwoPerRequest(FakeSink);
        #[async_trait]
        impl LogSink for TwoPerRequest {
            fn describe(&self) -> String {
                self.0.describe()
            }
            fn limits(&self) -> SinkLimits {
                limits(2, 1000)
            }
            async fn send(&self, docs: &[&Document]) -> Result<(), DeliveryError> {
                self.0.send(docs).await
            }
        }
        let dest2 = LogSinkDestination::new(TwoPerRequest(FakeSink::new(1000)), 2, RetryPolicy::default());
        let out = dest2.deliver(vec![doc("a"), doc("b"), doc("reject"), doc("d")], Deadline::NONE).await;
        assert_eq!(out[..2], [Ok(Delivered::Written), Ok(Delivered::Written)]);
        assert!(out[2].is_err() && out[3].is_err());
        assert_eq!(dest2.sink().0.requests.lock().unwrap().len(), 2, "permanent errors are not retried");
    }

    /// Delivers `bodies` in one request: what became of each, the requests sent, the documents
    /// accepted.
    async fn deliver_with_invalid(bodies: &[&str], reported: Option<usize>) -> (String, Vec<Vec<String>>, Vec<String>) {
        let sink = FakeSink { reported, ..FakeSink::new(10_000) };
        let dest = LogSinkDestination::new(sink, 1, RetryPolicy::default());
        let out = dest.deliver(bodies.iter().map(|b| doc(b)).collect(), Deadline::NONE).await;
        let verdicts: Vec<String> = out
            .iter()
            .map(|o| match o {
                Ok(Delivered::Written) => "ok".to_owned(),
                Ok(Delivered::Duplicate) => "dup".to_owned(),
                Err(e) => {
                    assert_eq!((e.kind, e.accepted), (FailureKind::Permanent, None), "{e:?}");
                    format!("failed({e})")
                }
            })
            .collect();
        let requests = dest.sink().requests.lock().unwrap().clone();
        let accepted = dest.sink().accepted.lock().unwrap().concat();
        (verdicts.join(" "), requests, accepted)
    }

    #[tokio::test]
    async fn a_partly_accepted_request_fails_the_refused_document_alone_and_sends_the_rest_again() {
        // (documents in one request, outcomes, the requests sent)
        type Requests = &'static [&'static [&'static str]];
        let cases: [(&[&str], &str, Requests); 5] = [
            (&["a", "b", "invalid-c", "d", "e"], "ok ok failed(fake: HTTP 400 for event 2) ok ok", &[&["a", "b", "invalid-c", "d", "e"], &["d", "e"]]),
            (&["invalid-a", "b"], "failed(fake: HTTP 400 for event 0) ok", &[&["invalid-a", "b"], &["b"]]),
            (&["a", "b", "invalid-c"], "ok ok failed(fake: HTTP 400 for event 2)", &[&["a", "b", "invalid-c"]]),
            (
                &["a", "invalid-b", "c", "invalid-d", "e"],
                "ok failed(fake: HTTP 400 for event 1) ok failed(fake: HTTP 400 for event 1) ok",
                &[&["a", "invalid-b", "c", "invalid-d", "e"], &["c", "invalid-d", "e"], &["e"]],
            ),
            (&["invalid-a"], "failed(fake: HTTP 400 for event 0)", &[&["invalid-a"]]),
        ];
        for (bodies, want, want_requests) in cases {
            let (verdicts, requests, accepted) = deliver_with_invalid(bodies, None).await;
            assert_eq!(verdicts, want, "{bodies:?}");
            assert_eq!(requests, want_requests.iter().map(|r| r.iter().map(|b| b.to_string()).collect::<Vec<_>>()).collect::<Vec<_>>(), "{bodies:?}");
            // every good document got in exactly once
            let good: Vec<&str> = bodies.iter().copied().filter(|b| !b.contains("invalid")).collect();
            assert_eq!(accepted, good, "{bodies:?}");
        }
    }

    #[tokio::test]
    async fn a_partial_acceptance_naming_no_document_of_the_request_fails_the_request_as_before() {
        let (verdicts, requests, _) = deliver_with_invalid(&["a", "invalid-b", "c"], Some(3)).await;
        assert_eq!(verdicts, ["failed(fake: HTTP 400 for event 1)"; 3].join(" "));
        assert_eq!(requests.len(), 1, "nothing is sent again");
    }
}
