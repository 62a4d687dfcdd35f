//! `azure-monitor-forwarder`: an SQS-triggered Lambda that sends audit events as rows of a custom
//! table to Azure Monitor through the Logs Ingestion API (gzip'd JSON arrays, at most 1 MB a call,
//! split on 413, `Retry-After` honoured).
//!
//! Configuration: the shared `AUDITSTREAM_*` pipeline variables, `AUDITSTREAM_AZURE_MONITOR_ENDPOINT`,
//! `AUDITSTREAM_AZURE_MONITOR_DCR_ID`, `AUDITSTREAM_AZURE_MONITOR_STREAM`, and the app registration as
//! `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AUDITSTREAM_AZURE_CLIENT_SECRET_ARN` (or
//! `AZURE_CLIENT_SECRET`), `AZURE_AUTHORITY_HOST`. The table and DCR to create: docs/azure-monitor.md.

use auditstream::config::{PipelineSettings, ProcessEnv};
use auditstream::destinations::azure::monitor_sink::AzureMonitorSink;
use auditstream::intake::lambda::SqsFunction;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    auditstream::report::telemetry::init_json();
    let settings = PipelineSettings::from_env(&ProcessEnv)?;
    settings.log_warnings();
    // The AWS configuration reads secrets, S3 payload pointers and the dead-letter queue.
    let aws = aws_config::load_from_env().await;
    let setup = AzureMonitorSink::from_env(&ProcessEnv, &settings, Some(&aws)).await?;
    // S3 payload pointers and the dead-letter queue (`AUDITSTREAM_DLQ_URL`), as every function.
    let function = SqsFunction::from_env("azure-monitor-forwarder", setup.pipeline, setup.destination, &aws)?;

    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| function.handle_event(event))).await
}
