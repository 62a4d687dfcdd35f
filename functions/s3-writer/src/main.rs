//! `s3-writer`: an SQS-triggered Lambda that writes one JSON object per audit event to S3.
//!
//! Configuration: the shared `AUDITSTREAM_*` pipeline variables plus `AUDITSTREAM_S3_BUCKET`,
//! `AUDITSTREAM_S3_PREFIX` and `AUDITSTREAM_S3_SSE_KMS_KEY_ID`, and `AUDITSTREAM_DLQ_URL` for
//! poison messages (see the README); S3 payload pointers are read with the function's role.
//! Clients are built once per cold start; a bad variable stops the function at init with a
//! message naming it.

use auditstream::aws::s3::s3_client;
use auditstream::config::{PipelineSettings, ProcessEnv};
use auditstream::delivery::destination::ObjectStoreDestination;
use auditstream::delivery::retry::RetryPolicy;
use auditstream::destinations::s3::{S3Settings, S3Store};
use auditstream::intake::lambda::SqsFunction;
use auditstream::pipeline::Pipeline;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    auditstream::report::telemetry::init_json();
    let settings = PipelineSettings::from_env(&ProcessEnv)?;
    let s3 = S3Settings::from_env(&ProcessEnv)?;
    settings.log_warnings();

    let mut pipeline = settings.pipeline.clone();
    pipeline.key_prefix = s3.prefix.clone();
    let aws = aws_config::load_from_env().await;
    let store = S3Store::new(s3_client(&aws), s3);
    let destination = ObjectStoreDestination::new(store, settings.concurrency, RetryPolicy::default());
    let function = SqsFunction::from_env("s3-writer", Pipeline::new(pipeline), destination, &aws)?;

    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| function.handle_event(event))).await
}
