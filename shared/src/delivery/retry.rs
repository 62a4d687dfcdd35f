//! The one retry policy every destination uses.
//!
//! Exponential backoff with full jitter; a server's `Retry-After` is honoured (never retried
//! sooner); nothing is started that could not finish before the Lambda deadline, and an attempt still
//! in flight when the deadline comes is abandoned (a hung endpoint must not hold the batch response
//! until Lambda kills the invocation and every message of the batch comes back). What is still
//! failing then is handed back to SQS as a batch item failure, which is the durable retry: SQS
//! redelivers after the visibility timeout, and the queue's redrive policy moves a message that
//! keeps failing to the dead-letter queue.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;

/// How a delivery failure should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Throttling, 5xx, timeouts, connection errors: retry, and if time runs out, let SQS redeliver.
    Transient,
    /// The request will fail the same way again (bad credentials, missing bucket, rejected data).
    Permanent,
    /// The request was too large (HTTP 413): split the batch; a single event that is still too
    /// large fails permanently.
    TooLarge,
}

/// A failed delivery, with a message that names the destination and key or endpoint — never a
/// secret and never event data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub kind: FailureKind,
    pub message: String,
    /// How long the server asked us to wait (HTTP `Retry-After` and its vendor variants).
    pub retry_after: Option<Duration>,
    /// From a [`LogSink`]: the first this-many documents of the request were accepted and the
    /// error is about the next one alone (Splunk HEC's `invalid-event-number`). `None`: the error
    /// is about the whole request.
    pub accepted: Option<usize>,
    /// No answer came: the name did not resolve, the connection or TLS handshake failed, or the
    /// answer never arrived. A health check reports it as the reachability step.
    pub unanswered: bool,
}

impl DeliveryError {
    pub fn transient(message: impl Into<String>) -> Self {
        DeliveryError { kind: FailureKind::Transient, message: message.into(), retry_after: None, accepted: None, unanswered: false }
    }

    /// A request that got no answer (DNS, TCP, TLS, a timeout): transient.
    pub fn unanswered(message: impl Into<String>) -> Self {
        DeliveryError { unanswered: true, ..DeliveryError::transient(message) }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        DeliveryError { kind: FailureKind::Permanent, message: message.into(), retry_after: None, accepted: None, unanswered: false }
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        DeliveryError { kind: FailureKind::TooLarge, message: message.into(), retry_after: None, accepted: None, unanswered: false }
    }

    pub fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }

    /// Says the request's first `accepted` documents were accepted and this error is about the
    /// next one. Permanent: sending the request again would duplicate what was accepted.
    pub fn after_accepting(mut self, accepted: usize) -> Self {
        self.kind = FailureKind::Permanent;
        self.accepted = Some(accepted);
        self
    }

    /// Appends what the caller knows to the message: `"...: stopped after 3 attempts"`.
    pub fn context(mut self, note: impl AsRef<str>) -> Self {
        self.message = format!("{}; {}", self.message, note.as_ref());
        self
    }

    pub fn is_permanent(&self) -> bool {
        self.kind != FailureKind::Transient
    }
}

/// How often and how patiently to retry transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first backoff's upper bound.
    pub initial_backoff: Duration,
    /// No single wait is longer than this (a longer `Retry-After` gives up instead).
    pub max_backoff: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { initial_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(20), max_attempts: 6 }
    }
}

/// The time by which work must be done: the Lambda deadline less a safety margin, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Option<Instant>,
}

impl Deadline {
    /// No deadline (the command-line tool); attempts are still bounded by the policy.
    pub const NONE: Deadline = Deadline { at: None };

    pub fn at(at: Instant) -> Deadline {
        Deadline { at: Some(at) }
    }

    pub fn after(d: Duration) -> Deadline {
        Deadline::at(Instant::now() + d)
    }

    /// From a Lambda deadline (a wall-clock time), keeping `margin` in hand to report results.
    pub fn from_wall_clock(deadline: SystemTime, margin: Duration) -> Deadline {
        let left = deadline.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
        Deadline::after(left.saturating_sub(margin))
    }

    /// Time left, or `None` when there is no deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.at.map(|at| at.saturating_duration_since(Instant::now()))
    }

    pub fn expired(&self) -> bool {
        self.remaining() == Some(Duration::ZERO)
    }

    /// Whether a wait of `d` still leaves time for another attempt.
    fn allows_wait(&self, d: Duration) -> bool {
        match self.remaining() {
            None => true,
            // An attempt needs some time of its own; a second is a conservative floor for one
            // PUT or POST of an event.
            Some(left) => left > d + Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry), honouring `retry_after`.
    pub fn backoff(&self, retry: u32, retry_after: Option<Duration>, rng: &mut impl Rng) -> Duration {
        let exp = self.initial_backoff.saturating_mul(1u32 << retry.saturating_sub(1).min(20));
        let cap = exp.min(self.max_backoff);
        let jittered = Duration::from_nanos(rng.random_range(0..=cap.as_nanos().min(u128::from(u64::MAX)) as u64));
        match retry_after {
            // the server said when: never sooner, plus a little jitter so a fleet does not stampede
            Some(after) => after + jittered / 10,
            None => jittered,
        }
    }

    /// Runs `attempt` until it succeeds, fails permanently, runs out of attempts, or the deadline
    /// leaves no time for another try. The last error is returned, its message saying how many
    /// attempts were made.
    pub async fn run<T, F, Fut>(&self, deadline: Deadline, mut attempt: F) -> Result<T, DeliveryError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, DeliveryError>>,
    {
        let mut n = 1;
        loop {
            let outcome = match deadline.at {
                None => attempt(n).await,
                Some(at) => match tokio::time::timeout_at(tokio::time::Instant::from_std(at), attempt(n)).await {
                    Ok(outcome) => outcome,
                    // Abandoned, not known to have failed: a create-only PUT may have landed (the
                    // redelivery then finds it and counts it delivered); a POST may have been indexed
                    // (at-least-once, as a retry would be).
                    Err(_) => {
                        return Err(DeliveryError::transient(format!("attempt {n} was still in flight at the deadline and was abandoned (SQS will redeliver)")))
                    }
                },
            };
            let err = match outcome {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if err.kind != FailureKind::Transient {
                return Err(err);
            }
            if n >= self.max_attempts {
                return Err(err.context(format!("gave up after {n} attempts")));
            }
            let wait = self.backoff(n, err.retry_after, &mut rand::rng());
            if err.retry_after.is_some_and(|after| after > self.max_backoff) || !deadline.allows_wait(wait) {
                return Err(err.context(format!("stopped after {n} attempt(s): no time left to retry before the deadline (SQS will redeliver)")));
            }
            tokio::time::sleep(wait).await;
            n += 1;
        }
    }
}

/// Parses an HTTP `Retry-After` value: delay seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn transient(after: Option<Duration>) -> DeliveryError {
        DeliveryError::transient("503 from test").with_retry_after(after)
    }

    #[test]
    fn backoff_grows_exponentially_within_its_cap_and_honours_retry_after() {
        let p = RetryPolicy { initial_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(1), max_attempts: 10 };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for retry in 1..10 {
            let cap = Duration::from_millis(100 * (1 << (retry - 1))).min(Duration::from_secs(1));
            for _ in 0..50 {
                assert!(p.backoff(retry, None, &mut rng) <= cap);
            }
        }
        for _ in 0..50 {
            let wait = p.backoff(1, Some(Duration::from_secs(3)), &mut rng);
            assert!(wait >= Duration::from_secs(3) && wait <= Duration::from_millis(3010), "{wait:?}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("1.5"), Some(Duration::from_millis(1500)));
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let parsed = parse_retry_after(&future).unwrap();
        assert!(parsed > Duration::from_secs(28) && parsed <= Duration::from_secs(30), "{parsed:?}");
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-3"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let p = RetryPolicy::default();
        let out = p
            .run(Deadline::NONE, |n| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 3 {
                        Err(transient(None))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!(out.unwrap(), 3);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = RetryPolicy::default()
            .run(Deadline::NONE, |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(DeliveryError::permanent("403 AccessDenied")) }
            })
            .await;
        assert_eq!(out.unwrap_err().kind, FailureKind::Permanent);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded() {
        let p = RetryPolicy { max_attempts: 4, ..RetryPolicy::default() };
        let calls = AtomicU32::new(0);
        let err = p
            .run(Deadline::NONE, |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(transient(None)) }
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert!(err.to_string().contains("gave up after 4 attempts"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_waited_for() {
        let start = tokio::time::Instant::now();
        let out = RetryPolicy::default()
            .run(Deadline::NONE, |n| async move {
                if n == 1 {
                    Err(transient(Some(Duration::from_secs(5))))
                } else {
                    Ok(())
                }
            })
            .await;
        assert!(out.is_ok());
        assert!(start.elapsed() >= Duration::from_secs(5));
    }

    #[tokio::test]
    async fn nothing_is_retried_past_the_deadline() {
        let calls = AtomicU32::new(0);
        let deadline = Deadline::after(Duration::from_millis(500));
        let err = RetryPolicy::default()
            .run(deadline, |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(transient(Some(Duration::from_secs(2)))) }
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(err.kind, FailureKind::Transient);
        assert!(err.to_string().contains("no time left"), "{err}");
    }

    #[tokio::test]
    async fn an_attempt_still_in_flight_at_the_deadline_is_abandoned_and_left_to_sqs() {
        let start = Instant::now();
        let deadline = Deadline::after(Duration::from_millis(200));
        let err = RetryPolicy::default().run(deadline, |_| std::future::pending::<Result<(), DeliveryError>>()).await.unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(2), "held for {:?}", start.elapsed());
        assert_eq!(err.kind, FailureKind::Transient);
        assert_eq!(err.to_string(), "attempt 1 was still in flight at the deadline and was abandoned (SQS will redeliver)");
    }

    #[tokio::test]
    async fn without_a_deadline_a_slow_attempt_is_waited_for() {
        let out = RetryPolicy::default()
            .run(Deadline::NONE, |_| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok::<_, DeliveryError>(7)
            })
            .await;
        assert_eq!(out.unwrap(), 7);
    }
}
