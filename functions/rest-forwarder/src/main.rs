//! `rest-forwarder`: an SQS-triggered Lambda that POSTs audit events to a REST log service — any
//! HTTPS endpoint, Splunk HEC, Datadog or Sumo Logic.
//!
//! Configuration: the shared `AUDITSTREAM_*` pipeline variables plus the `AUDITSTREAM_REST_*`,
//! `AUDITSTREAM_SPLUNK_*`, `AUDITSTREAM_DATADOG_*` and `AUDITSTREAM_SUMO_*` variables documented
//! in `auditstream::destinations::rest`, and `AUDITSTREAM_DLQ_URL` for poison messages. The token is read from
//! Secrets Manager once per cold start; a bad variable stops the function at init with a message
//! naming it.

use auditstream::config::{PipelineSettings, ProcessEnv};
use auditstream::destinations::rest::http::HttpLogSink;
use auditstream::intake::lambda::SqsFunction;
use lambda_runtime::{service_fn, Error, LambdaEvent};

/// mimalloc: freed request and event buffers are reused instead of being returned to the kernel
/// (the allocator `shared/benches/rest.rs` measures this function's path with).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    auditstream::report::telemetry::init_json();
    let settings = PipelineSettings::from_env(&ProcessEnv)?;
    settings.log_warnings();
    // The AWS configuration reads secrets, S3 payload pointers and the dead-letter queue.
    let aws = aws_config::load_from_env().await;
    let setup = HttpLogSink::from_env(&ProcessEnv, &settings, Some(&aws)).await?;
    // S3 payload pointers and the dead-letter queue (`AUDITSTREAM_DLQ_URL`), as every function.
    let function = SqsFunction::from_env("rest-forwarder", setup.pipeline, setup.destination, &aws)?;

    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| function.handle_event(event))).await
}
