//! `archive-digest`: a Lambda function run every hour by an EventBridge schedule. It extends the S3
//! archive's chain of signed digests up to the last full hour at least 15 minutes before the
//! schedule's time (never later than now), signing each
//! with the AWS KMS key `AUDITSTREAM_DIGEST_KMS_KEY_ID` (`docs/integrity.md`); an hour it missed is
//! caught up by the next run.
//!
//! Configuration: `AUDITSTREAM_S3_BUCKET` and `AUDITSTREAM_S3_PREFIX`, as the s3-writer that fills
//! the archive, and `AUDITSTREAM_DIGEST_KMS_KEY_ID`. A bad variable stops the function at init with
//! a message naming it.

use auditstream::aws::kms::{KmsSigner, DIGEST_KEY_VAR};
use auditstream::config::{EnvExt, ProcessEnv};
use auditstream::destinations::s3::S3Store;
use auditstream::intake::schedule::scheduled_time;
use auditstream::integrity::digest::{extend_chain, scheduled_until};
use auditstream::integrity::layout;
use auditstream::pipeline::timestamp::Now;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    auditstream::report::telemetry::init_json();
    let key_id = ProcessEnv.required(DIGEST_KEY_VAR, "set it to the ARN of the KMS key (ECC_NIST_P256, SIGN_VERIFY) that signs the digests")?;
    let aws = aws_config::load_from_env().await;
    let store = S3Store::archive_from_env(&ProcessEnv, &aws)?;
    let signer = KmsSigner::new(aws_sdk_kms::Client::new(&aws), key_id);

    let (store, signer) = (&store, &signer);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        // The schedule's own time, so that a late or retried invocation does the same run; any
        // other event (an invocation by hand) runs for now.
        let now = Now::capture().utc_time();
        let until = scheduled_until(scheduled_time(&event.payload)?.unwrap_or(now), now);
        let run = extend_chain(store, signer, until).await?;
        let end = run.end.map(layout::iso);
        tracing::info!(written = run.written.len(), manifests = run.manifests, end = ?end, "digests written");
        Ok::<_, Error>(serde_json::json!({ "written": run.written, "manifests": run.manifests, "end": end }))
    }))
    .await
}
