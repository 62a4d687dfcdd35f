//! Sending many entries through a batch API — SQS `SendMessageBatch` and `DeleteMessageBatch`,
//! SNS `PublishBatch` — done once: pack entries into requests by count and bytes, run requests in
//! parallel, and retry what the service could not take right now (throttling, its own faults)
//! through the shared [`RetryPolicy`], entry by entry, while the deadline allows.
//!
//! Batch APIs answer per entry: some succeed while others fail. Each entry gets its own result,
//! in input order, so the caller can say exactly which message was not sent, and why.

use std::future::Future;
use std::ops::Range;
use std::sync::Mutex;

use futures::stream::{self, StreamExt};

use crate::delivery::retry::DeliveryError;
use crate::delivery::retry::{Deadline, RetryPolicy};

/// Limits of one batch request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_entries: usize,
    /// Sum of entry sizes in one request.
    pub max_bytes: usize,
}

/// SQS `SendMessageBatch` and SNS `PublishBatch`: 10 entries, 1 MiB in all.
pub const SEND_LIMITS: BatchLimits = BatchLimits { max_entries: 10, max_bytes: 1_048_576 };

/// How one entry of a batch request fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryResult {
    /// Accepted; the service's id for it (a message id), if it gave one.
    Done(String),
    /// The service's fault or throttling: worth sending again.
    Retry(String),
    /// The request itself was wrong for this entry: it will fail again.
    Failed(String),
}

/// Packs consecutive entries into requests: at most `max_entries` each, and at most `max_bytes`
/// unless a single entry is larger on its own (it then goes alone, for the service to judge).
pub fn pack(sizes: &[usize], limits: BatchLimits) -> Vec<Range<usize>> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, size) in sizes.iter().enumerate() {
        let count = i - start;
        if count > 0 && (count >= limits.max_entries || bytes + size > limits.max_bytes) {
            batches.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        batches.push(start..sizes.len());
    }
    batches
}

/// Sends entries `0..sizes.len()` in batches. `send` gets the indices of one request's entries
/// and answers for each (any index it leaves out is retried), or fails the whole request. Up to
/// `parallel` requests are in flight. Returns, per entry, the service's id or why it was not sent.
pub async fn send_all<F, Fut>(
    sizes: &[usize],
    limits: BatchLimits,
    parallel: usize,
    retry: RetryPolicy,
    deadline: Deadline,
    send: F,
) -> Vec<Result<String, String>>
where
    F: Fn(Vec<usize>) -> Fut,
    Fut: Future<Output = Result<Vec<(usize, EntryResult)>, DeliveryError>>,
{
    let results: Mutex<Vec<Option<Result<String, String>>>> = Mutex::new(vec![None; sizes.len()]);
    let results_ref = &results;
    let send = &send;
    stream::iter(pack(sizes, limits))
        .map(|batch| async move {
            let outcome = retry
                .run(deadline, |_| {
                    let batch = batch.clone();
                    async move {
                        let pending: Vec<usize> = {
                            let done = lock(results_ref);
                            batch.clone().filter(|i| done[*i].is_none()).collect()
                        };
                        let answers = send(pending.clone()).await?;
                        let mut done = lock(results_ref);
                        let mut retry_reason = None;
                        let mut answered = vec![false; pending.len()];
                        for (i, result) in answers {
                            if let Some(slot) = pending.iter().position(|p| *p == i) {
                                answered[slot] = true;
                            }
                            match result {
                                EntryResult::Done(id) => done[i] = Some(Ok(id)),
                                EntryResult::Failed(why) => done[i] = Some(Err(why)),
                                EntryResult::Retry(why) => retry_reason = Some(why),
                            }
                        }
                        if answered.iter().any(|a| !a) && retry_reason.is_none() {
                            retry_reason = Some("the service did not answer for this entry".into());
                        }
                        match retry_reason {
                            Some(why) => Err(DeliveryError::transient(why)),
                            None => Ok(()),
                        }
                    }
                })
                .await;
            if let Err(e) = outcome {
                let mut done = lock(results_ref);
                for i in batch {
                    if done[i].is_none() {
                        done[i] = Some(Err(e.message.clone()));
                    }
                }
            }
        })
        .buffer_unordered(parallel.max(1))
        .collect::<Vec<()>>()
        .await;
    results.into_inner().unwrap_or_else(|p| p.into_inner()).into_iter().map(|r| r.unwrap_or_else(|| Err("not sent".into()))).collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    #[test]
    fn packing_respects_count_and_bytes_and_keeps_order() {
        let limits = BatchLimits { max_entries: 3, max_bytes: 100 };
        let cases: &[(&[usize], &[Range<usize>])] = &[
            (&[], &[]),
            (&[1, 1, 1, 1, 1, 1, 1], &[0..3, 3..6, 6..7]),
            (&[60, 40, 1], &[0..2, 2..3]),
            (&[60, 41, 1], &[0..1, 1..3]),
            (&[150, 1, 200], &[0..1, 1..2, 2..3]),
        ];
        for (sizes, want) in cases {
            assert_eq!(pack(sizes, limits), *want, "{sizes:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_entry_gets_its_own_result_and_throttled_ones_are_retried() {
        let calls = AtomicU32::new(0);
        let retry = RetryPolicy { initial_backoff: Duration::from_millis(10), max_backoff: Duration::from_millis(100), max_attempts: 3 };
        let results = send_all(&[1; 5], BatchLimits { max_entries: 10, max_bytes: 100 }, 2, retry, Deadline::NONE, |indices| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok(indices
                    .into_iter()
                    .map(|i| {
                        let r = match i {
                            0 => EntryResult::Done("id-0".into()),
                            1 => EntryResult::Failed("InvalidMessageContents".into()),
                            2 if n == 0 => EntryResult::Retry("throttled".into()),
                            2 => EntryResult::Done("id-2".into()),
                            3 => EntryResult::Retry("still throttled".into()),
                            _ => EntryResult::Done(format!("id-{i}")),
                        };
                        (i, r)
                    })
                    .collect())
            }
        })
        .await;
        assert_eq!(
            results,
            vec![
                Ok("id-0".into()),
                Err("InvalidMessageContents".into()),
                Ok("id-2".into()),
                Err("still throttled; gave up after 3 attempts".into()),
                Ok("id-4".into())
            ]
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failed_request_fails_its_entries_only() {
        let results = send_all(&[1; 4], BatchLimits { max_entries: 2, max_bytes: 100 }, 1, RetryPolicy::default(), Deadline::NONE, |indices| async move {
            if indices.contains(&0) {
                Err(DeliveryError::permanent("AccessDenied"))
            } else {
                Ok(indices.into_iter().map(|i| (i, EntryResult::Done(i.to_string()))).collect())
            }
        })
        .await;
        assert_eq!(results, vec![Err("AccessDenied".into()), Err("AccessDenied".into()), Ok("2".into()), Ok("3".into())]);
    }
}
