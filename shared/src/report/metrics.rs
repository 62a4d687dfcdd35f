//! Counts per batch, and the CloudWatch Embedded Metric Format line that publishes them.
//!
//! EMF is a JSON object with an `_aws` member, written as one line to stdout; CloudWatch Logs
//! extracts the metrics from it without any API call (and so without any added latency or cost
//! in the function).

use std::io::Write;

use serde_json::json;

/// What happened to the messages of one batch (or one command-line run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub received: u64,
    pub written: u64,
    pub duplicates: u64,
    pub filtered: u64,
    pub masked_lines: u64,
    pub truncated: u64,
    pub failed_permanent: u64,
    pub failed_transient: u64,
    /// Permanently failed messages moved to the dead-letter queue (with their reason) and acknowledged.
    pub dead_lettered: u64,
    /// Bytes of documents handed to the destination.
    pub bytes: u64,
    /// Time spent processing the batch.
    pub duration_ms: u64,
    /// Age of the oldest message at delivery: SQS `SentTimestamp` to now.
    pub oldest_message_age_ms: Option<u64>,
}

impl Counts {
    pub fn failed(&self) -> u64 {
        self.failed_permanent + self.failed_transient
    }

    /// Adds another batch's counts (for the command-line tool's summary).
    pub fn add(&mut self, other: &Counts) {
        self.received += other.received;
        self.written += other.written;
        self.duplicates += other.duplicates;
        self.filtered += other.filtered;
        self.masked_lines += other.masked_lines;
        self.truncated += other.truncated;
        self.failed_permanent += other.failed_permanent;
        self.failed_transient += other.failed_transient;
        self.dead_lettered += other.dead_lettered;
        self.bytes += other.bytes;
        self.duration_ms += other.duration_ms;
        self.oldest_message_age_ms = match (self.oldest_message_age_ms, other.oldest_message_age_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// The EMF document for these counts. Dimension: the function name.
    pub fn emf(&self, namespace: &str, function: &str, timestamp_ms: u64) -> serde_json::Value {
        let mut metrics = vec![
            json!({"Name": "Received", "Unit": "Count"}),
            json!({"Name": "Written", "Unit": "Count"}),
            json!({"Name": "Duplicates", "Unit": "Count"}),
            json!({"Name": "Filtered", "Unit": "Count"}),
            json!({"Name": "MaskedLines", "Unit": "Count"}),
            json!({"Name": "Truncated", "Unit": "Count"}),
            json!({"Name": "Failed", "Unit": "Count"}),
            json!({"Name": "FailedPermanent", "Unit": "Count"}),
            json!({"Name": "DeadLettered", "Unit": "Count"}),
            json!({"Name": "Bytes", "Unit": "Bytes"}),
            json!({"Name": "BatchDuration", "Unit": "Milliseconds"}),
        ];
        let mut doc = json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [["FunctionName"]], "Metrics": []}],
            },
            "FunctionName": function,
            "Received": self.received,
            "Written": self.written,
            "Duplicates": self.duplicates,
            "Filtered": self.filtered,
            "MaskedLines": self.masked_lines,
            "Truncated": self.truncated,
            "Failed": self.failed(),
            "FailedPermanent": self.failed_permanent,
            "DeadLettered": self.dead_lettered,
            "Bytes": self.bytes,
            "BatchDuration": self.duration_ms,
        });
        if let Some(age) = self.oldest_message_age_ms {
            metrics.push(json!({"Name": "DeliveryLatency", "Unit": "Milliseconds"}));
            doc["DeliveryLatency"] = json!(age);
        }
        doc["_aws"]["CloudWatchMetrics"][0]["Metrics"] = json!(metrics);
        doc
    }

    /// Writes the EMF line to stdout ([`write_emf_line`]).
    pub fn emit_emf(&self, namespace: &str, function: &str) {
        write_emf_line(&self.emf(namespace, function, now_ms()).to_string());
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The EMF document of a scheduled health check: `Healthy` 1 or 0, same namespace and dimension
/// as the batch metrics, so one alarm per function watches it.
pub fn health_emf(namespace: &str, function: &str, healthy: bool, timestamp_ms: u64) -> serde_json::Value {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [["FunctionName"]], "Metrics": [{"Name": "Healthy", "Unit": "None"}]}],
        },
        "FunctionName": function,
        "Healthy": u8::from(healthy),
    })
}

/// [`health_emf`] now, as one line.
pub fn health_emf_line(namespace: &str, function: &str, healthy: bool) -> String {
    health_emf(namespace, function, healthy, now_ms()).to_string()
}

/// Writes an EMF line to stdout, where the Lambda runtime forwards it to CloudWatch Logs. This is
/// the one place the library writes to stdout: EMF must be a line of its own, not a field inside a
/// tracing log record.
pub fn write_emf_line(line: &str) {
    let mut out = std::io::stdout().lock();
    // A metrics line that cannot be written must not fail the batch.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_declares_every_metric_it_carries() {
        let counts = Counts {
            received: 5,
            written: 3,
            duplicates: 1,
            filtered: 0,
            masked_lines: 7,
            truncated: 1,
            failed_permanent: 1,
            failed_transient: 0,
            dead_lettered: 1,
            bytes: 900,
            duration_ms: 42,
            oldest_message_age_ms: Some(1500),
        };
        let doc = counts.emf("auditstream", "s3-writer", 1_700_000_000_000);
        let declared: Vec<&str> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap().iter().map(|m| m["Name"].as_str().unwrap()).collect();
        for name in &declared {
            assert!(doc.get(*name).is_some_and(|v| v.is_number()), "{name} declared but not present");
        }
        assert_eq!(doc["Failed"], 1);
        assert_eq!(doc["DeadLettered"], 1);
        assert_eq!(doc["DeliveryLatency"], 1500);
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["FunctionName"]]));
        assert_eq!(doc["FunctionName"], "s3-writer");
    }

    #[test]
    fn the_health_line_declares_healthy_1_or_0_per_function() {
        for (healthy, value) in [(true, 1), (false, 0)] {
            let doc = health_emf("auditstream", "rest-forwarder", healthy, 1_700_000_000_000);
            assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Metrics"], json!([{"Name": "Healthy", "Unit": "None"}]));
            assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["FunctionName"]]));
            assert_eq!(doc["Healthy"], value);
            assert_eq!(doc["FunctionName"], "rest-forwarder");
        }
    }
}
