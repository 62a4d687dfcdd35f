//! The S3 health check: `HeadBucket`, signed with the resolved credentials (the bucket exists in this region
//! and the credentials are accepted), then — through the store's own create-only `PutObject`, with
//! the configured SSE-KMS key, so a key the role may not use fails here — a probe, and
//! `GetObject` to read it back. `HeadBucket` needs `s3:ListBucket` on the bucket and the read-back
//! `s3:GetObject` on the health prefix; the template grants both to the writer's role.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::S3Settings;
use crate::delivery::health::{HealthReport, Step};
use crate::pipeline::key::ObjectKey;

pub(super) async fn access(client: &aws_sdk_s3::Client, settings: &S3Settings, report: &mut HealthReport) {
    let bucket = settings.bucket.as_str();
    use crate::delivery::health::Verdict::{Failed, Passed};
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
        let e = answer.err().map(|e| causes(&e)).unwrap_or_default();
        report.record(
            Step::Credentials,
            Failed,
            format!(
                "no AWS credentials to sign the request: {e} (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give the function a role)"
            ),
            elapsed,
        );
        return;
    }
    report.record(Step::Credentials, Passed, "AWS credentials resolved and the request signed", std::time::Duration::ZERO);
    match answer {
        Ok(_) => {
            report.record(Step::Reachability, Passed, format!("HeadBucket: s3://{bucket} answers"), elapsed);
            report.record(Step::Authentication, Passed, "the credentials are accepted", std::time::Duration::ZERO);
        }
        Err(SdkError::ServiceError(service)) => {
            let status = service.raw().status().as_u16();
            let region = service.raw().headers().get("x-amz-bucket-region").map(str::to_owned);
            let code = service.err().code().unwrap_or("").to_owned();
            let said = format!("HTTP {status}{}{code} from S3 HeadBucket on s3://{bucket}", if code.is_empty() { "" } else { " " });
            match status {
                301 | 400 if region.is_some() => report.record(
                    Step::Reachability,
                    Failed,
                    format!("{said}: the bucket is in region {}: set AWS_REGION to it", region.unwrap_or_default()),
                    elapsed,
                ),
                404 => report.record(
                    Step::Reachability,
                    Failed,
                    format!("{said}: no such bucket in this region: check AUDITSTREAM_S3_BUCKET (or --to s3://BUCKET) and AWS_REGION"),
                    elapsed,
                ),
                401 | 403 => {
                    report.record(Step::Reachability, Passed, format!("s3://{bucket} answers"), elapsed);
                    report.record(
                        Step::Authentication,
                        Failed,
                        format!(
                            "{said}: the credentials are not valid (a wrong or expired key), or may not s3:ListBucket on {bucket} (the template grants it to the function's role for this check)"
                        ),
                        std::time::Duration::ZERO,
                    )
                }
                _ => report.record(Step::Reachability, Failed, format!("{said}: {}", service.err().message().unwrap_or("no message")), elapsed),
            }
        }
        Err(other) => report.record(
            Step::Reachability,
            Failed,
            format!("cannot reach S3 for s3://{bucket}: {} (check AWS_ENDPOINT_URL, AWS_REGION, DNS and the network path)", causes(&other)),
            elapsed,
        ),
    }
}

pub(super) async fn read_back(client: &aws_sdk_s3::Client, bucket: &str, key: &ObjectKey, body: &[u8]) -> Result<String, String> {
    let at = format!("s3://{bucket}/{key}");
    let object = client.get_object().bucket(bucket).key(key.as_str()).send().await.map_err(|e| match &e {
        SdkError::ServiceError(service) => format!(
            "HTTP {} {} from S3 GetObject on {at}: the probe was written but cannot be read back (may the credentials s3:GetObject under _auditstream/health/?)",
            service.raw().status().as_u16(),
            service.err().code().unwrap_or("")
        ),
        _ => format!("S3 GetObject on {at} failed: {}", DisplayErrorContext(&e)),
    })?;
    let found = object.body.collect().await.map_err(|e| format!("S3 GetObject on {at}: reading the body failed: {e}"))?.into_bytes();
    if found.as_ref() != body {
        return Err(format!("{at}: the probe reads back different from what was written"));
    }
    Ok(format!("probe read back ({} bytes); the lifecycle rule on _auditstream/health/ expires it", found.len()))
}

/// An SDK error and its causes on one line, without the SDK's debug dump.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ").replace('\n', " ")
}
