//! What every S3 caller shares (the s3-writer's store, the payload store, `auditstream send`):
//! the client, built the one way, and the one check of a bucket name.

use aws_sdk_s3::config::retry::RetryConfig;

use crate::config::ConfigError;

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
