//! What happened, for the people running auditstream: [`metrics`] (CloudWatch Embedded Metric
//! Format) and [`telemetry`] (JSON log lines).

pub mod metrics;
pub mod telemetry;
