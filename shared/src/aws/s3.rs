//! What every S3 caller shares (the s3-writer's store, the payload store, `auditstream send`):
//! the client, built the one way, and the one check of a bucket name.

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::error::DisplayErrorContext;

use crate::aws::errors::{classify, AwsCall};
use crate::config::ConfigError;
use crate::delivery::retry::DeliveryError;

/// An S3 client: the SDK's retries off (the shared retry policy applies, and respects the
/// Lambda deadline), path-style addressing when an endpoint is overridden (`AWS_ENDPOINT_URL`,
/// for local S3-compatible servers).
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let builder = aws_sdk_s3::config::Builder::from(sdk).retry_config(RetryConfig::disabled()).force_path_style(sdk.endpoint_url().is_some());
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// What a bucket name must look like, for messages.
pub const BUCKET_NAME_EXPECTED: &str = "a bucket name (3-63 lowercase letters, digits, dots and hyphens), without s3:// or a path";

/// Whether `name` can be an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens
/// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html>). Catches the
/// usual mistakes — an `s3://` URL, a path, capitals — at cold start, not at the first write.
pub fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

/// `value` of `var` as a bucket name, or the error that names the variable.
pub fn bucket_name(var: &'static str, value: String) -> Result<String, ConfigError> {
    if valid_bucket_name(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid { var, value, expected: BUCKET_NAME_EXPECTED.into() })
    }
}

/// The object at `bucket`/`key`, read once (no retry: the caller's policy applies) into one buffer
/// sized from `Content-Length` as it streams in, so a 40 MB event costs 40 MB (not the doubling of
/// growing a buffer). An object over `max_bytes` is refused, permanently, before it is read whole:
/// it is not an audit event, and must not exhaust the memory of whoever reads it.
pub async fn read_object(client: &aws_sdk_s3::Client, bucket: &str, key: &str, max_bytes: u64) -> Result<Vec<u8>, DeliveryError> {
    let at = format!("s3://{bucket}/{key}");
    let output = match client.get_object().bucket(bucket).key(key).send().await {
        Ok(o) => o,
        Err(e) => return Err(classify(AwsCall::s3("GetObject", &at), &e)),
    };
    let too_large = || DeliveryError::permanent(format!("{at} is over the {max_bytes} bytes read at most; it is not an audit event"));
    let length = output.content_length().and_then(|l| u64::try_from(l).ok());
    if let Some(len) = length.filter(|len| *len > max_bytes) {
        return Err(DeliveryError::permanent(format!("{at} is {len} bytes, over the {max_bytes} bytes read at most; it is not an audit event")));
    }
    let mut buffer = Vec::with_capacity(length.unwrap_or(0) as usize);
    let mut body = output.body;
    loop {
        match body.try_next().await {
            Ok(Some(chunk)) => {
                if buffer.len() as u64 + chunk.len() as u64 > max_bytes {
                    return Err(too_large());
                }
                buffer.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(buffer),
            Err(e) => return Err(DeliveryError::transient(format!("{at}: GetObject failed while reading the body: {}", DisplayErrorContext(&e)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_are_plain_names() {
        for ok in ["audit-logs", "a.b-c", "abc", &"x".repeat(63)] {
            assert!(valid_bucket_name(ok), "{ok}");
        }
        for bad in ["ab", &"x".repeat(64), "s3://audit-logs", "audit-logs/prefix", "Audit-Logs", "audit_logs", ""] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
        let err = bucket_name("AUDITSTREAM_PAYLOAD_BUCKET", "s3://payloads".into()).unwrap_err();
        assert!(err.to_string().starts_with("AUDITSTREAM_PAYLOAD_BUCKET=\"s3://payloads\" is not valid: expected a bucket name"), "{err}");
    }
}
