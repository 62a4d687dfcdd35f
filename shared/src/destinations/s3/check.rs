//! The S3 health check: `HeadBucket`, signed with the resolved credentials (the bucket exists in this region
//! and the credentials are accepted), then — through the store's own create-only `PutObject`, with
//! the configured SSE-KMS key, so a key the role may not use fails here — a probe, and
//! `GetObject` to read it back. `HeadBucket` needs `s3:ListBucket` on the bucket and the read-back
//! `s3:GetObject` on the health prefix; the template grants both to the writer's role.
//!
//! What a failed call says, and what to check, is the one classifier's
//! ([`crate::aws::errors::classify`]); this module only decides which step it failed and adds the
//! settings that name what was called.

use aws_sdk_s3::error::SdkError;

use super::S3Settings;
use crate::aws::errors::{classify, AwsCall};
use crate::delivery::health::{HealthReport, Step, Verdict};
use crate::pipeline::key::ObjectKey;

pub(super) async fn access(client: &aws_sdk_s3::Client, settings: &S3Settings, report: &mut HealthReport) {
    let bucket = settings.bucket.as_str();
    let on = format!("s3://{bucket}");
    let call = AwsCall::s3("HeadBucket", &on);
    let started = std::time::Instant::now();
    let answer = client.head_bucket().bucket(bucket).send().await;
    let elapsed = started.elapsed();
    // The SDK resolves the credentials (profile, environment, role) to sign the request: failing
    // that, nothing is sent, and the failure is an "other" dispatch failure (not I/O, not a timeout).
    let unsigned = match &answer {
        Err(SdkError::ConstructionFailure(_)) => true,
        Err(SdkError::DispatchFailure(failure)) => failure.is_other(),
        _ => false,
    };
    if unsigned {
        let e = answer.err().map(|e| classify(call, &e).message).unwrap_or_default();
        report.record(
            Step::Credentials,
            Verdict::Failed,
            format!(
                "no AWS credentials to sign the request: {e} (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give the function a role)"
            ),
            elapsed,
        );
        return;
    }
    report.record(Step::Credentials, Verdict::Passed, "AWS credentials resolved and the request signed", std::time::Duration::ZERO);
    let err = match answer {
        Ok(_) => {
            report.record(Step::Reachability, Verdict::Passed, format!("HeadBucket: {on} answers"), elapsed);
            report.record(Step::Authentication, Verdict::Passed, "the credentials are accepted", std::time::Duration::ZERO);
            return;
        }
        Err(err) => err,
    };
    let failure = classify(call, &err);
    match &err {
        // S3 answered, and refused who we are: a HEAD has no body to say whether the key is wrong
        // or only not allowed, so both are said.
        SdkError::ServiceError(service) if matches!(service.raw().status().as_u16(), 401 | 403) => {
            report.record(Step::Reachability, Verdict::Passed, format!("{on} answers"), elapsed);
            report.record(
                Step::Authentication,
                Verdict::Failed,
                format!("{}; or the credentials are not valid (a wrong or expired key)", failure.message),
                std::time::Duration::ZERO,
            );
        }
        SdkError::ServiceError(_) => report.record(
            Step::Reachability,
            Verdict::Failed,
            format!("{}; the bucket is AUDITSTREAM_S3_BUCKET (or --to s3://BUCKET)", failure.message),
            elapsed,
        ),
        _ => report.record(
            Step::Reachability,
            Verdict::Failed,
            format!("cannot reach S3: {} (check AWS_ENDPOINT_URL, AWS_REGION, DNS and the network path)", failure.message),
            elapsed,
        ),
    }
}

pub(super) async fn read_back(client: &aws_sdk_s3::Client, bucket: &str, key: &ObjectKey, body: &[u8]) -> Result<String, String> {
    let at = format!("s3://{bucket}/{key}");
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key.as_str())
        .send()
        .await
        .map_err(|e| format!("the probe was written but cannot be read back: {}", classify(AwsCall::s3("GetObject", &at), &e).message))?;
    let found = object.body.collect().await.map_err(|e| format!("S3 GetObject on {at}: reading the body failed: {e}"))?.into_bytes();
    if found.as_ref() != body {
        return Err(format!("{at}: the probe reads back different from what was written"));
    }
    Ok(format!("probe read back ({} bytes); the lifecycle rule on _auditstream/health/ expires it", found.len()))
}
