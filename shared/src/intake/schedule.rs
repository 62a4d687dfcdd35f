//! The scheduled health check: every function also accepts the event an EventBridge schedule
//! sends, and on it runs the same check as `auditstream check` for its own destination, logs the
//! report and emits `Healthy` (1 or 0) in an EMF line. The template's alarm on `Healthy` (missing
//! data counts as unhealthy) tells the alarm topic when a destination stops working, before an
//! event needs it (`docs/operations.md`).
//!
//! [`SqsFunction::handle_event`] is the handler every `main.rs` runs: an event with `Records` is an
//! SQS batch, handled by [`SqsFunction::handle`] exactly as before; a schedule's event is a check;
//! anything else is refused with an error naming what was expected.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::delivery::destination::Destination;
use crate::delivery::health::HealthReport;
use crate::intake::lambda::{SqsFunction, METRICS_NAMESPACE};
use crate::pipeline::timestamp::UtcTime;
use crate::report::metrics::health_emf_line;

/// The input the template's EventBridge Scheduler schedule sends: `{"auditstream": "health-check"}`.
pub const HEALTH_CHECK_INPUT: &str = "health-check";

/// Whether `event` asks for a health check: the template's schedule input, or a classic
/// EventBridge scheduled rule's event (`"detail-type": "Scheduled Event"`).
pub fn is_health_check(event: &Value) -> bool {
    event.get("auditstream").and_then(Value::as_str) == Some(HEALTH_CHECK_INPUT) || is_scheduled_rule_event(event)
}

/// Whether `event` is a classic EventBridge scheduled rule's event
/// (<https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-run-lambda-schedule.html>).
fn is_scheduled_rule_event(event: &Value) -> bool {
    event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") && event.get("source").and_then(Value::as_str) == Some("aws.events")
}

/// A scheduled rule's event whose `time` is not a UTC time.
#[derive(Debug, thiserror::Error)]
#[error("the scheduled event's time {0} is not a UTC time like 2026-11-27T21:20:00Z")]
pub struct BadScheduledTime(String);

/// The time a scheduled rule's event was scheduled for (its `time`: the same for a retry of the
/// invocation), or `None` for any other event.
pub fn scheduled_time(event: &Value) -> Result<Option<UtcTime>, BadScheduledTime> {
    if !is_scheduled_rule_event(event) {
        return Ok(None);
    }
    let time = event.get("time").cloned().unwrap_or(Value::Null);
    time.as_str().and_then(|t| UtcTime::parse(t).ok()).map(Some).ok_or_else(|| BadScheduledTime(time.to_string()))
}

#[derive(Debug, thiserror::Error)]
#[error("this function takes an SQS event (with Records) or its health-check schedule's event ({{\"auditstream\":\"health-check\"}}); got a JSON {0} it does not know")]
pub struct UnknownEvent(&'static str);

impl<D: Destination> SqsFunction<D> {
    /// The Lambda handler: an SQS batch, or the scheduled health check.
    pub async fn handle_event(&self, event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
        let LambdaEvent { payload, context } = event;
        if payload.get("Records").is_some() {
            let sqs: SqsEvent = serde_json::from_value(payload)?;
            let response = self.handle(LambdaEvent::new(sqs, context)).await?;
            return Ok(serde_json::to_value(response)?);
        }
        if is_health_check(&payload) {
            let report = self.check_health().await;
            return Ok(serde_json::json!({ "healthy": report.healthy(), "report": report.to_json() }));
        }
        let kind = match payload {
            Value::Object(_) => "object",
            Value::Array(_) => "array",
            _ => "value",
        };
        Err(UnknownEvent(kind).into())
    }

    /// Runs the destination's check, logs each step (a failed one as an error), and writes the
    /// `Healthy` EMF line.
    pub async fn check_health(&self) -> HealthReport {
        let destination = self.destination.describe();
        let mut report = HealthReport::new(destination.clone());
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        self.destination.check(&self.pipeline.config.key_prefix, UtcTime::from_epoch_seconds(now), &mut report).await;
        for step in &report.steps {
            let (name, result, ms) = (step.step.name(), step.verdict.name(), step.elapsed.as_millis() as u64);
            if step.verdict == crate::delivery::health::Verdict::Failed {
                tracing::error!(step = name, result, ms, detail = %step.detail, destination, "health check step failed");
            } else {
                tracing::info!(step = name, result, ms, detail = %step.detail, destination, "health check step");
            }
        }
        tracing::info!(healthy = report.healthy(), destination, "health check done");
        let line = health_emf_line(METRICS_NAMESPACE, &self.name, report.healthy());
        crate::report::metrics::write_emf_line(&line);
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedules_event_and_a_classic_scheduled_rule_ask_for_a_check_and_nothing_else_does() {
        assert!(is_health_check(&serde_json::json!({"auditstream": "health-check"})));
        assert!(is_health_check(&serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})));
        assert!(!is_health_check(&serde_json::json!({"auditstream": "other"})));
        assert!(!is_health_check(&serde_json::json!({"detail-type": "Scheduled Event", "source": "acme"})));
        assert!(!is_health_check(&serde_json::json!({"Records": []})));
    }

    #[test]
    fn a_scheduled_rules_event_names_the_time_it_was_scheduled_for() {
        let event = |time: Value| serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event", "time": time, "detail": {}});
        assert_eq!(scheduled_time(&event("2026-11-27T21:20:00Z".into())).unwrap(), Some(UtcTime::parse("2026-11-27T21:20:00Z").unwrap()));
        assert_eq!(scheduled_time(&serde_json::json!({})).unwrap(), None);
        assert_eq!(scheduled_time(&serde_json::json!({"auditstream": "health-check"})).unwrap(), None);
        let bad = scheduled_time(&event("yesterday".into())).unwrap_err();
        assert_eq!(bad.to_string(), "the scheduled event's time \"yesterday\" is not a UTC time like 2026-11-27T21:20:00Z");
        assert!(scheduled_time(&event(Value::Null)).is_err());
    }
}
