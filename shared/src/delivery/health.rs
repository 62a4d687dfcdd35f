//! Health checks: proving a destination works end to end without writing an audit event.
//!
//! A check is a fixed sequence of [`Step`]s, each with its verdict and the time it took:
//! configuration → credentials → reachability → authentication → permission to write (a probe)
//! → read-back where the API allows. It stops at the first failure, which names the step, the
//! vendor's status and code, and the likely fix. `auditstream check` prints the report; each Lambda
//! function runs the same check on its schedule and emits `Healthy` 1 or 0 (see
//! `docs/operations.md`).
//!
//! The probe is a small JSON document marked as a probe, [`probe_document`]: an object store gets
//! it under `PREFIX_auditstream/health/` (which the template expires after a day), a log service
//! as one event of type [`PROBE_EVENT_TYPE`], so that users can filter it out.
//!
//! Every detail comes from the adapters' own error messages, which pass a vendor's reply through
//! [`crate::redact`] only: a report never holds a credential.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::delivery::retry::DeliveryError;
use crate::pipeline::event::{ActivityMeta, EventMeta};
use crate::pipeline::key::{KeyPrefix, ObjectKey};
use crate::pipeline::timestamp::UtcTime;
use crate::pipeline::Document;

/// The event type of a probe, in its body and in Azure Monitor's `EventType` column.
pub const PROBE_EVENT_TYPE: &str = "auditstream_health_check";

/// One step of a check, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// Settings parsed: variables set and well formed.
    Configuration,
    /// The secret or credentials read (Secrets Manager, the AWS credential chain).
    Credentials,
    /// The endpoint and the resource (bucket, container) answer: DNS, TCP, TLS.
    Reachability,
    /// The service accepts who we are (a token issued, a key valid).
    Authentication,
    /// A probe written, as an event would be.
    Permission,
    /// The probe read back, where the API allows.
    ReadBack,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Configuration => "configuration",
            Step::Credentials => "credentials",
            Step::Reachability => "reachability",
            Step::Authentication => "authentication",
            Step::Permission => "permission",
            Step::ReadBack => "read-back",
        }
    }
}

/// How a step went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed,
    /// Not applicable to this destination, or not possible with the permissions it needs.
    Skipped,
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Passed => "ok",
            Verdict::Failed => "FAILED",
            Verdict::Skipped => "skipped",
        }
    }
}

/// One step's result: what was done or what went wrong and how to fix it (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResult {
    pub step: Step,
    pub verdict: Verdict,
    pub detail: String,
    pub elapsed: Duration,
}

/// The result of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// The destination, as [`crate::delivery::destination::Destination::describe`] says it.
    pub destination: String,
    pub steps: Vec<StepResult>,
}

impl HealthReport {
    pub fn new(destination: impl Into<String>) -> Self {
        HealthReport { destination: destination.into(), steps: Vec::new() }
    }

    /// Healthy: a probe was written and no step failed.
    pub fn healthy(&self) -> bool {
        self.failure().is_none() && self.steps.iter().any(|s| s.step == Step::Permission && s.verdict == Verdict::Passed)
    }

    /// The step that failed, if one did (a check stops at the first failure).
    pub fn failure(&self) -> Option<&StepResult> {
        self.steps.iter().find(|s| s.verdict == Verdict::Failed)
    }

    /// Records a step's result. A step is shown once, with its final result: one recorded earlier
    /// and settled again by a later call takes the new result in its place. So a step skipped
    /// for the probe to prove (Azure Blob with a SAS token skips the container call) becomes
    /// passed or failed by the probe, and a reachability step passed by an earlier call (S3's
    /// HeadBucket, a REST preset's pre-check) and then failed by a probe that got no answer is
    /// shown failed, not passed and then failed.
    pub fn record(&mut self, step: Step, verdict: Verdict, detail: impl Into<String>, elapsed: Duration) {
        let result = StepResult { step, verdict, detail: detail.into(), elapsed };
        match self.steps.iter_mut().find(|s| s.step == step) {
            Some(earlier) => *earlier = result,
            None => self.steps.push(result),
        }
    }

    pub fn skip(&mut self, step: Step, why: impl Into<String>) {
        self.record(step, Verdict::Skipped, why, Duration::ZERO);
    }

    /// Runs one step unless an earlier one failed, timing it; `Ok(detail)` passes, `Err(detail)`
    /// fails. Returns whether the step passed.
    pub async fn run<F: Future<Output = Result<String, String>>>(&mut self, step: Step, work: F) -> bool {
        self.timed(work, |result| match result {
            Ok(detail) => (step, Verdict::Passed, detail),
            Err(detail) => (step, Verdict::Failed, detail),
        })
        .await
    }

    /// Writes the probe (`work`) as the permission step, unless an earlier step failed (see
    /// [`HealthReport::call`]). A probe the service answered, whether it took it or refused it,
    /// proves the service reachable: a reachability step skipped for the probe to prove passes.
    /// Returns whether the probe was written.
    pub async fn probe<F: Future<Output = Result<String, DeliveryError>>>(&mut self, work: F) -> bool {
        let written = self.call(Step::Permission, work).await;
        // A probe that got no answer failed the reachability step instead of recording this one.
        let answered = self.steps.iter().any(|s| s.step == Step::Permission);
        if answered && self.steps.iter().any(|s| s.step == Step::Reachability && s.verdict == Verdict::Skipped) {
            let detail = format!("{} answered the probe", self.destination);
            self.record(Step::Reachability, Verdict::Passed, detail, Duration::ZERO);
        }
        written
    }

    /// Runs one step that calls the service, unless an earlier step failed, timing it. A call that
    /// got no answer at all (DNS, connection, TLS, a timeout: [`DeliveryError::unanswered`]) fails
    /// the reachability step instead of `step`: the service was never reached, so nothing is known
    /// of what `step` proves. Returns whether the step passed.
    pub async fn call<F: Future<Output = Result<String, DeliveryError>>>(&mut self, step: Step, work: F) -> bool {
        self.timed(work, |result| match result {
            Ok(detail) => (step, Verdict::Passed, detail),
            Err(e) if e.unanswered => {
                (Step::Reachability, Verdict::Failed, format!("{} (nothing answered: check the address, DNS, TLS and the network path)", e.message))
            }
            Err(e) => (step, Verdict::Failed, e.message),
        })
        .await
    }

    /// Runs `work` unless an earlier step failed, times it, and records the step `settle` makes
    /// of its result: the one skeleton of [`HealthReport::run`] and [`HealthReport::call`].
    /// Returns whether no step has failed.
    async fn timed<T, F: Future<Output = T>>(&mut self, work: F, settle: impl FnOnce(T) -> (Step, Verdict, String)) -> bool {
        if self.failure().is_some() {
            return false;
        }
        let started = Instant::now();
        let result = work.await;
        let elapsed = started.elapsed();
        let (step, verdict, detail) = settle(result);
        self.record(step, verdict, detail, elapsed);
        self.failure().is_none()
    }

    /// The report as JSON: `{"destination","healthy","steps":[{"step","result","detail","ms"}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "destination": self.destination,
            "healthy": self.healthy(),
            "steps": self.steps.iter().map(|s| serde_json::json!({
                "step": s.step.name(),
                "result": match s.verdict { Verdict::Passed => "passed", Verdict::Failed => "failed", Verdict::Skipped => "skipped" },
                "detail": s.detail,
                "ms": s.elapsed.as_millis() as u64,
            })).collect::<Vec<_>>(),
        })
    }

    /// The report as lines for a terminal: one per step, then `healthy` or `unhealthy: …`.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!("check {}", self.destination)];
        for s in &self.steps {
            out.push(format!("  {:<7} {:<14} {:>6} ms  {}", s.verdict.name(), s.step.name(), s.elapsed.as_millis(), s.detail));
        }
        out.push(match self.failure() {
            None if self.healthy() => "healthy".to_owned(),
            None => "unhealthy: no probe was written".to_owned(),
            Some(f) => format!("unhealthy: the {} step failed", f.step.name()),
        });
        out
    }
}

/// A probe: the document a check writes, marked as a probe and holding no event data. `id` makes
/// each probe's key new, so a create-only store always takes it. Object stores get it at
/// `PREFIX_auditstream/health/YYYYMMDD/ID.json`.
pub fn probe_document(prefix: &KeyPrefix, now: UtcTime, id: &str) -> Document {
    let t = now.compact_datetime();
    let (date, time) = t.split_at(t.len() - 6);
    let (year, month_day) = date.split_at(date.len() - 4);
    let timestamp = format!("{year}-{}-{}T{}:{}:{}Z", &month_day[..2], &month_day[2..], &time[..2], &time[2..4], &time[4..]);
    let body = serde_json::json!({
        "event_type": PROBE_EVENT_TYPE,
        "id": id,
        "timestamp": timestamp,
        "auditstream_probe": true,
        "message": "A probe written by the auditstream health check to prove delivery works; it is not an audit event.",
    });
    let meta = EventMeta::Activity(ActivityMeta {
        id: Some(id.to_owned()),
        event_type: PROBE_EVENT_TYPE.to_owned(),
        resource_type: None,
        workspace_id: "auditstream".to_owned(),
        time: now,
    });
    Document { key: ObjectKey::health_probe(prefix, &now, id), body: body.to_string().into_bytes(), meta, masked_lines: 0, truncated: false }
}

/// A new probe id: `probe-` and 16 hex digits.
pub fn probe_id() -> String {
    format!("probe-{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_is_marked_lives_under_the_health_prefix_and_is_valid_json() {
        let now = UtcTime::from_epoch_seconds(1_700_000_000);
        let doc = probe_document(&KeyPrefix::new("workato").unwrap(), now, "probe-1");
        assert_eq!(doc.key.as_str(), "workato/_auditstream/health/20231114/probe-1.json");
        let body: serde_json::Value = serde_json::from_slice(&doc.body).unwrap();
        assert_eq!(body["event_type"], PROBE_EVENT_TYPE);
        assert_eq!(body["auditstream_probe"], true);
        assert_eq!(body["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(probe_document(&KeyPrefix::default(), now, "p").key.as_str(), "_auditstream/health/20231114/p.json");
    }

    #[tokio::test]
    async fn a_check_stops_at_the_first_failure_and_is_healthy_only_with_a_probe_written() {
        let mut report = HealthReport::new("dir:x");
        assert!(report.run(Step::Configuration, async { Ok("parsed".into()) }).await);
        assert!(!report.healthy(), "nothing written yet");
        assert!(report.run(Step::Permission, async { Ok("probe written".into()) }).await);
        assert!(report.healthy());
        assert!(!report.run(Step::ReadBack, async { Err("HTTP 403 AccessDenied".into()) }).await);
        assert!(!report.run(Step::ReadBack, async { Ok("never run".into()) }).await);
        assert_eq!(report.steps.len(), 3);
        assert!(!report.healthy());
        assert_eq!(report.failure().unwrap().step, Step::ReadBack);
        assert_eq!(report.lines().last().unwrap(), "unhealthy: the read-back step failed");
        let json = report.to_json();
        assert_eq!(json["healthy"], false);
        assert_eq!(json["steps"][2]["result"], "failed");
        assert_eq!(json["steps"][2]["step"], "read-back");
    }

    /// A step skipped before the probe (Azure Blob with a SAS token skips the container call) and
    /// then failed by the probe (nothing answered) is reported once, where it was skipped, with its
    /// final result: not "skipped" and then "FAILED".
    #[tokio::test]
    async fn a_skipped_step_that_a_later_call_fails_is_reported_once_with_its_final_result() {
        let mut report = HealthReport::new("http://127.0.0.1:1/devstoreaccount1/audit");
        assert!(report.run(Step::Configuration, async { Ok("settings read".into()) }).await);
        report.skip(Step::Reachability, "the probe write proves access");
        assert!(!report.probe(async { Err(DeliveryError::unanswered("PUT http://127.0.0.1:1/…: cannot connect")) }).await);
        let shown: Vec<(Step, Verdict)> = report.steps.iter().map(|s| (s.step, s.verdict.clone())).collect();
        assert_eq!(shown, [(Step::Configuration, Verdict::Passed), (Step::Reachability, Verdict::Failed)]);
        assert!(report.steps[1].detail.contains("cannot connect"), "{}", report.steps[1].detail);
        let lines = report.lines();
        assert_eq!(lines.iter().filter(|l| l.starts_with("  ") && l.contains(" reachability ")).count(), 1, "{lines:#?}");
        assert_eq!(lines.last().unwrap(), "unhealthy: the reachability step failed");

        // A step recorded once more is shown once, with its final result: a reachability step an
        // earlier call passed (S3's HeadBucket, a REST pre-check) and the probe then failed.
        let mut gone = HealthReport::new("s3://audit-logs/");
        gone.record(Step::Reachability, Verdict::Passed, "HeadBucket: s3://audit-logs answers", Duration::from_millis(9));
        gone.record(Step::Authentication, Verdict::Passed, "the credentials are accepted", Duration::ZERO);
        assert!(!gone.probe(async { Err(DeliveryError::unanswered("PUT https://audit-logs.s3…: connection reset")) }).await);
        let shown: Vec<(Step, Verdict)> = gone.steps.iter().map(|s| (s.step, s.verdict.clone())).collect();
        assert_eq!(shown, [(Step::Reachability, Verdict::Failed), (Step::Authentication, Verdict::Passed)]);
        assert!(gone.steps[0].detail.contains("connection reset"), "{}", gone.steps[0].detail);
        assert_eq!(gone.lines().iter().filter(|l| l.starts_with("  ") && l.contains(" reachability ")).count(), 1, "{:#?}", gone.lines());
    }

    /// A probe the service answered proves it reachable: the reachability step skipped for the
    /// probe to prove (Azure Blob with a SAS token) passes, in its place, whether the probe was
    /// taken or refused. A step nothing settles stays skipped; a report without a reachability
    /// step (`dir:`) gets none.
    #[tokio::test]
    async fn a_probe_the_service_answered_settles_a_skipped_reachability_step_as_passed() {
        let destination = "http://127.0.0.1:10000/devstoreaccount1/audit";
        for (probe, verdicts) in [
            (Ok("probe written".to_owned()), [Verdict::Passed, Verdict::Passed]),
            (Err(DeliveryError::permanent("PUT …: HTTP 403 AuthorizationFailure")), [Verdict::Passed, Verdict::Failed]),
        ] {
            let mut report = HealthReport::new(destination);
            assert!(report.run(Step::Configuration, async { Ok("settings read".into()) }).await);
            report.skip(Step::Reachability, "the probe write proves access");
            let written = report.probe(async { probe }).await;
            if written {
                report.skip(Step::ReadBack, "not read back");
            }
            let shown: Vec<(Step, Verdict)> = report.steps.iter().map(|s| (s.step, s.verdict.clone())).collect();
            let [reachability, permission] = verdicts.clone();
            let mut want = vec![(Step::Configuration, Verdict::Passed), (Step::Reachability, reachability), (Step::Permission, permission)];
            want.extend(written.then_some((Step::ReadBack, Verdict::Skipped)));
            assert_eq!(shown, want, "{verdicts:?}");
            assert_eq!(report.steps[1].detail, format!("{destination} answered the probe"));
            assert_eq!(report.healthy(), written);
        }

        let mut local = HealthReport::new("dir:./audit-logs");
        assert!(local.probe(async { Ok("probe written".into()) }).await);
        assert_eq!(local.steps.iter().map(|s| s.step).collect::<Vec<_>>(), [Step::Permission], "no service, no reachability step");
    }

    #[tokio::test]
    async fn a_probe_that_got_no_answer_fails_the_reachability_step_and_a_refused_one_the_permission_step() {
        let mut unreachable = HealthReport::new("https://logs.example.com/in");
        assert!(!unreachable.probe(async { Err(DeliveryError::unanswered("POST https://logs.example.com/in: cannot connect: Connection refused")) }).await);
        let failed = unreachable.failure().unwrap();
        assert_eq!(failed.step, Step::Reachability);
        assert!(failed.detail.starts_with("POST https://logs.example.com/in: cannot connect: Connection refused (nothing answered: "), "{}", failed.detail);

        let mut refused = HealthReport::new("https://logs.example.com/in");
        assert!(!refused.probe(async { Err(DeliveryError::permanent("POST https://logs.example.com/in: HTTP 403 Forbidden")) }).await);
        assert_eq!(refused.failure().unwrap().step, Step::Permission);

        // Any step that calls the service: a token endpoint nothing answers is not an authentication failure.
        let mut no_token = HealthReport::new("https://dce.example.com");
        assert!(!no_token.call(Step::Authentication, async { Err(DeliveryError::unanswered("token request: timed out")) }).await);
        assert_eq!(no_token.failure().unwrap().step, Step::Reachability);
        let mut bad_secret = HealthReport::new("https://dce.example.com");
        assert!(!bad_secret.call(Step::Authentication, async { Err(DeliveryError::permanent("HTTP 401 invalid_client")) }).await);
        assert_eq!(bad_secret.failure().unwrap().step, Step::Authentication);

        let mut ok = HealthReport::new("dir:x");
        assert!(ok.probe(async { Ok("probe written".into()) }).await);
        assert!(ok.healthy());
        // after a failure, nothing more runs
        assert!(!unreachable.probe(async { Ok("never".into()) }).await);
        assert_eq!(unreachable.steps.len(), 1);
    }
}
