//! Amazon S3 (and S3-compatible servers): one `PutObject` per event, create-only.
//!
//! `If-None-Match: *` makes the write conditional: S3 answers 412 when the key exists, which for
//! us means an SQS redelivery of an event already written — a success, counted as a duplicate.
//! The SDK's own retries are turned off so that the shared [`crate::delivery::retry::RetryPolicy`] is the
//! only one, and it can respect the Lambda deadline. The payload is sent unsigned (TLS and the
//! CRC32 checksum protect it), which halves the CPU a PUT costs.

use async_trait::async_trait;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use bytes::Bytes;

use crate::aws::errors::{classify, AwsCall};
use crate::aws::s3::bucket_name;
use crate::config::{ConfigError, Env, EnvExt};
use crate::delivery::destination::{ObjectStore, PutOutcome};
use crate::delivery::health::HealthReport;
use crate::delivery::retry::DeliveryError;
use crate::pipeline::key::{KeyPrefix, ObjectKey};

/// `AUDITSTREAM_S3_*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    /// Applied by the pipeline to every key.
    pub prefix: KeyPrefix,
    /// SSE-KMS key id or ARN; when unset the bucket's default encryption applies.
    pub sse_kms_key_id: Option<String>,
}

impl S3Settings {
    pub fn from_env(env: &(impl Env + ?Sized)) -> Result<Self, ConfigError> {
        let bucket =
            bucket_name("AUDITSTREAM_S3_BUCKET", env.required("AUDITSTREAM_S3_BUCKET", "set it to the name of the bucket audit events are written to")?)?;
        Ok(S3Settings {
            bucket,
            prefix: crate::config::key_prefix(env, "AUDITSTREAM_S3_PREFIX")?,
            sse_kms_key_id: env.optional("AUDITSTREAM_S3_SSE_KMS_KEY_ID"),
        })
    }
}

mod check;

pub struct S3Store {
    client: aws_sdk_s3::Client,
    settings: S3Settings,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client, settings: S3Settings) -> Self {
        S3Store { client, settings }
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.settings.bucket, self.settings.prefix.as_str())
    }

    async fn put_new(&self, key: &ObjectKey, body: Bytes) -> Result<PutOutcome, DeliveryError> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.settings.bucket)
            .key(key.as_str())
            .content_type("application/json")
            .if_none_match("*")
            .body(ByteStream::from(body));
        if let Some(kms_key) = &self.settings.sse_kms_key_id {
            request = request.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(kms_key);
        }
        // The payload is not signed: SigV4 would hash every byte with SHA-256, the largest CPU
        // cost of a PUT. Integrity still holds end to end: TLS in transit, and the SDK's default
        // CRC32 checksum, which S3 verifies before storing the object.
        match request.customize().disable_payload_signing().send().await {
            Ok(_) => Ok(PutOutcome::Created),
            // The condition failed: the key exists, written by an earlier delivery of this event.
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 412 => Ok(PutOutcome::AlreadyExists),
            Err(err) => Err(classify(AwsCall::s3("PutObject", &format!("s3://{}/{key}", self.settings.bucket)), &err)),
        }
    }

    async fn check_access(&self, report: &mut HealthReport) {
        check::access(&self.client, &self.settings, report).await
    }

    async fn read_back(&self, key: &ObjectKey, body: &[u8]) -> Option<Result<String, String>> {
        Some(check::read_back(&self.client, &self.settings.bucket, key, body).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_need_a_plain_bucket_name() {
        let s = S3Settings::from_env(
            &[("AUDITSTREAM_S3_BUCKET", "audit-logs"), ("AUDITSTREAM_S3_PREFIX", "workato"), ("AUDITSTREAM_S3_SSE_KMS_KEY_ID", "alias/audit")][..],
        )
        .unwrap();
        assert_eq!(s, S3Settings { bucket: "audit-logs".into(), prefix: KeyPrefix::new("workato/").unwrap(), sse_kms_key_id: Some("alias/audit".into()) });
        let missing = S3Settings::from_env(&[][..]).unwrap_err();
        assert_eq!(missing.to_string(), "AUDITSTREAM_S3_BUCKET is not set: set it to the name of the bucket audit events are written to");
        let url = S3Settings::from_env(&[("AUDITSTREAM_S3_BUCKET", "s3://audit-logs/x")][..]).unwrap_err();
        assert!(url.to_string().starts_with("AUDITSTREAM_S3_BUCKET=\"s3://audit-logs/x\" is not valid"), "{url}");
    }
}
