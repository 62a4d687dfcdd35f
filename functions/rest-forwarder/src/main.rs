//! `rest-forwarder`: an SQS-triggered Lambda that POSTs audit events to a REST log service — any
//! HTTPS endpoint, Splunk HEC, Datadog or Sumo Logic.
//!
//! Configuration: the shared `AUDITSTREAM_*` pipeline variables plus the `AUDITSTREAM_REST_*`,
//! `AUDITSTREAM_SPLUNK_*`, `AUDITSTREAM_DATADOG_*` and `AUDITSTREAM_SUMO_*` variables documented
//! in `auditstream::destinations::rest`, and `AUDITSTREAM_DLQ_URL` for poison messages. The token is read from
//! Secrets Manager once per cold start; a bad variable stops the function at init with a message
//! naming it.

use auditstream::config::{PipelineSettings, ProcessEnv};
use auditstream::delivery::log_batching::LogSinkDestination;
use auditstream::delivery::retry::RetryPolicy;
use auditstream::destinations::rest::http::HttpLogSink;
use auditstream::destinations::rest::RestSettings;
use auditstream::intake::lambda::SqsFunction;
use auditstream::pipeline::Pipeline;
use lambda_runtime::{service_fn, Error, LambdaEvent};

/// mimalloc: freed request and event buffers are reused instead of being returned to the kernel
/// (the allocator `shared/benches/rest.rs` measures this function's path with).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    auditstream::report::telemetry::init_json();
    let settings = PipelineSettings::from_env(&ProcessEnv)?;
    let rest = RestSettings::from_env(&ProcessEnv, settings.pipeline.template.as_ref())?;
    settings.log_warnings();

    let aws = aws_config::load_from_env().await;
    let sink = HttpLogSink::from_settings_with(rest, &aws).await?;
    let destination = LogSinkDestination::new(sink, settings.concurrency, RetryPolicy::default());
    let function = SqsFunction::from_env("rest-forwarder", Pipeline::new(settings.pipeline.clone()), destination, &aws)?;

    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| function.handle_event(event))).await
}
