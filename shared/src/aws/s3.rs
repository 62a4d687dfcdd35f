//! What every S3 caller shares (the s3-writer's store, the payload store, `auditstream send`):
//! the client, built the one way, and the one check of a bucket name.

use std::sync::RwLock;
use std::time::Duration;

use aws_sdk_s3::config::endpoint::{DefaultResolver, Endpoint, EndpointFuture, Params, ResolveEndpoint};
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::error::DisplayErrorContext;

use crate::aws::errors::{classify, AwsCall};
use crate::config::ConfigError;
use crate::delivery::retry::DeliveryError;

/// An S3 client: the SDK's retries off (the shared retry policy applies, and respects the
/// Lambda deadline), path-style addressing when an endpoint is overridden (`AWS_ENDPOINT_URL`,
/// for local S3-compatible servers), S3's endpoint rules evaluated once per bucket
/// ([`EndpointPerBucket`]), and each attempt bounded in time ([`timeouts`]).
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let builder = aws_sdk_s3::config::Builder::from(sdk)
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts(S3_ATTEMPT_TIMEOUT))
        .force_path_style(sdk.endpoint_url().is_some())
        .endpoint_resolver(EndpointPerBucket::default());
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// How long one attempt of an S3 call may take, its answer included, unless the store's settings
/// say otherwise (`AUDITSTREAM_S3_TIMEOUT_SECS`). The SDK sets no such bound: an endpoint that
/// takes a request and never answers would hold the caller until the Lambda deadline, and the
/// command line, which has none, forever. A timed-out attempt is transient, so the shared retry
/// policy tries again. The body of a `GetObject` is read after its attempt ends; the SDK's
/// stalled-stream protection bounds that.
pub const S3_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Each attempt of a call bounded by `attempt`, and a connection by 5 seconds (less when
/// `attempt` is shorter).
pub fn timeouts(attempt: Duration) -> TimeoutConfig {
    TimeoutConfig::builder().connect_timeout(Duration::from_secs(5).min(attempt)).operation_attempt_timeout(attempt).build()
}

/// S3's endpoint rules (the SDK's [`DefaultResolver`]), evaluated again only when a parameter
/// other than the object key changes.
///
/// The SDK's resolver keeps its last answer, but keyed by every parameter, the object key
/// included, which no rule reads (S3's rules choose the host and path style from the bucket,
/// region, endpoint and flags). With a new key on every `PutObject` it evaluated the rules on
/// every request and copied the parameters and the endpoint into its cache, about 4% of the CPU
/// of a PUT (`scripts/bench`). Every parameter but the key is compared here
/// ([`same_endpoint_params`]); a unit test fails when the SDK adds one, so that it is compared too.
#[derive(Debug, Default)]
pub struct EndpointPerBucket {
    rules: DefaultResolver,
    last: RwLock<Option<(Params, Endpoint)>>,
}

impl ResolveEndpoint for EndpointPerBucket {
    fn resolve_endpoint<'a>(&'a self, params: &'a Params) -> EndpointFuture<'a> {
        if let Ok(last) = self.last.read() {
            if let Some((_, endpoint)) = last.as_ref().filter(|(known, _)| same_endpoint_params(known, params)) {
                return EndpointFuture::ready(Ok(endpoint.clone()));
            }
        }
        EndpointFuture::new(Box::pin(async move {
            let endpoint = self.rules.resolve_endpoint(params).await?;
            if let Ok(mut last) = self.last.write() {
                *last = Some((params.clone(), endpoint.clone()));
            }
            Ok(endpoint)
        }))
    }
}

/// Whether S3's endpoint rules give `a` and `b` the same endpoint: every parameter is the same
/// but the object key.
fn same_endpoint_params(a: &Params, b: &Params) -> bool {
    a.bucket() == b.bucket()
        && a.region() == b.region()
        && a.use_fips() == b.use_fips()
        && a.use_dual_stack() == b.use_dual_stack()
        && a.endpoint() == b.endpoint()
        && a.force_path_style() == b.force_path_style()
        && a.accelerate() == b.accelerate()
        && a.use_global_endpoint() == b.use_global_endpoint()
        && a.use_object_lambda_endpoint() == b.use_object_lambda_endpoint()
        && a.prefix() == b.prefix()
        && a.copy_source() == b.copy_source()
        && a.disable_access_points() == b.disable_access_points()
        && a.disable_multi_region_access_points() == b.disable_multi_region_access_points()
        && a.use_arn_region() == b.use_arn_region()
        && a.use_s3_express_control_endpoint() == b.use_s3_express_control_endpoint()
        && a.disable_s3_express_session_auth() == b.disable_s3_express_session_auth()
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

    fn params(bucket: &str, key: &str, endpoint: Option<&str>) -> Params {
        let params = Params::builder().bucket(bucket).key(key).region("eu-west-1").use_fips(false).use_dual_stack(false).accelerate(false);
        params.set_endpoint(endpoint.map(str::to_owned)).force_path_style(endpoint.is_some()).build().unwrap()
    }

    async fn url(resolver: &impl ResolveEndpoint, params: &Params) -> String {
        resolver.resolve_endpoint(params).await.unwrap().url().to_owned()
    }

    #[tokio::test]
    async fn the_endpoint_is_what_s3_rules_give_whatever_was_asked_before() {
        let ours = EndpointPerBucket::default();
        let rules = DefaultResolver::new();
        let asked = [
            params("audit-logs", "a/1.json", None),
            params("audit-logs", "b/2.json", None),
            params("other-logs", "b/2.json", None),
            params("audit-logs", "c/3.json", Some("http://127.0.0.1:9000")),
            params("audit-logs", "d/4.json", Some("http://127.0.0.1:9000")),
            params("audit-logs", "e/5.json", None),
        ];
        for p in &asked {
            assert_eq!(url(&ours, p).await, url(&rules, p).await, "{p:?}");
        }
        assert_eq!(url(&ours, &asked[1]).await, "https://audit-logs.s3.eu-west-1.amazonaws.com");
        assert_eq!(url(&ours, &asked[4]).await, "http://127.0.0.1:9000/audit-logs");
    }

    /// [`same_endpoint_params`] compares every parameter of S3's endpoint rules but the key: a
    /// parameter a new SDK adds must be compared too.
    #[test]
    fn every_endpoint_parameter_but_the_key_is_compared() {
        let shown = format!("{:?}", params("audit-logs", "k", None));
        let names: Vec<&str> = shown.split(['{', ',']).skip(1).filter_map(|field| field.split(':').next()).map(str::trim).collect();
        assert_eq!(
            names,
            [
                "bucket",
                "region",
                "use_fips",
                "use_dual_stack",
                "endpoint",
                "force_path_style",
                "accelerate",
                "use_global_endpoint",
                "use_object_lambda_endpoint",
                "key",
                "prefix",
                "copy_source",
                "disable_access_points",
                "disable_multi_region_access_points",
                "use_arn_region",
                "use_s3_express_control_endpoint",
                "disable_s3_express_session_auth"
            ],
            "the SDK's endpoint parameters changed: compare the new ones in same_endpoint_params"
        );
    }
}
