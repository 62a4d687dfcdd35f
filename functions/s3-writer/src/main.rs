//! `s3-writer`: an SQS-triggered Lambda that writes one JSON object per audit event to S3.
//!
//! Configuration: the shared `AUDITSTREAM_*` pipeline variables plus `AUDITSTREAM_S3_BUCKET`,
//! `AUDITSTREAM_S3_PREFIX` and `AUDITSTREAM_S3_SSE_KMS_KEY_ID`, and `AUDITSTREAM_DLQ_URL` for
//! poison messages (see the README); S3 payload pointers are read with the function's role.
//! Clients are built once per cold start; a bad variable stops the function at init with a
//! message naming it.

use auditstream::config::{PipelineSettings, ProcessEnv};
use auditstream::destinations::s3::S3Store;
use auditstream::intake::lambda::SqsFunction;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    auditstream::report::telemetry::init_json();
    let settings = PipelineSettings::from_env(&ProcessEnv)?;
    settings.log_warnings();
    // The AWS configuration reads secrets, S3 payload pointers and the dead-letter queue.
    let aws = aws_config::load_from_env().await;
    let setup = S3Store::from_env(&ProcessEnv, &settings, &aws)?;
    // S3 payload pointers and the dead-letter queue (`AUDITSTREAM_DLQ_URL`), as every function.
    let function = SqsFunction::from_env("s3-writer", setup.pipeline, setup.destination, &aws)?;

    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| function.handle_event(event))).await
}
