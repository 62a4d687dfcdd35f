//! `azure-blob-writer`: an SQS-triggered Lambda that writes one JSON blob per audit event to Azure
//! Blob Storage, create-only, named like the S3 keys.
//!
//! Configuration: the shared `AUDITSTREAM_*` pipeline variables, `AUDITSTREAM_AZURE_BLOB_CONTAINER`,
//! `AUDITSTREAM_AZURE_BLOB_PREFIX`, and the account as `AZURE_STORAGE_CONNECTION_STRING` or as
//! `AUDITSTREAM_AZURE_BLOB_ACCOUNT` + `AUDITSTREAM_AZURE_BLOB_ENDPOINT` + a key or SAS token
//! (`AUDITSTREAM_AZURE_BLOB_KEY_SECRET_ARN`, read from Secrets Manager once per cold start) — see
//! `auditstream::destinations::azure::connection`. A bad variable stops the function at init, naming it.

use auditstream::config::{PipelineSettings, ProcessEnv};
use auditstream::destinations::azure::blob_store::AzureBlobStore;
use auditstream::intake::lambda::SqsFunction;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    auditstream::report::telemetry::init_json();
    let settings = PipelineSettings::from_env(&ProcessEnv)?;
    settings.log_warnings();
    // The AWS configuration reads secrets, S3 payload pointers and the dead-letter queue.
    let aws = aws_config::load_from_env().await;
    let setup = AzureBlobStore::from_env(&ProcessEnv, &settings, Some(&aws)).await?;
    // S3 payload pointers and the dead-letter queue (`AUDITSTREAM_DLQ_URL`), as every function.
    let function = SqsFunction::from_env("azure-blob-writer", setup.pipeline, setup.destination, &aws)?;

    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| function.handle_event(event))).await
}
