//! Where the local services of the end-to-end tests are, and clients for them.
//!
//! `scripts/test` (or `scripts/services start` for a run by hand) starts moto server (S3 and SQS on one
//! port) and Azurite (Azure Blob) on free loopback ports and exports where they are. A test that needs a
//! service asks here; when the service is not there the test fails — never skips — with a message saying
//! how to start it.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Base URL of moto server, e.g. `http://127.0.0.1:5000`. It serves S3 and SQS on the same port.
pub const MOTO_ENDPOINT_VAR: &str = "AUDITSTREAM_TEST_MOTO_ENDPOINT";
/// Azurite's blob endpoint including the account, e.g. `http://127.0.0.1:10000/devstoreaccount1`.
pub const AZURITE_BLOB_ENDPOINT_VAR: &str = "AUDITSTREAM_TEST_AZURITE_BLOB_ENDPOINT";
/// Absolute path of the Python of `.local/venv` (moto, boto3 and amazon-sqs-extended-client installed).
pub const PYTHON_VAR: &str = "AUDITSTREAM_TEST_PYTHON";

/// Static credentials and region the local services accept (moto accepts any; these are the convention).
pub const TEST_REGION: &str = "us-east-1";
pub const TEST_ACCESS_KEY_ID: &str = "test";
pub const TEST_SECRET_ACCESS_KEY: &str = "test";

/// Azurite's well-known development account (public, documented by Microsoft; not a secret).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_ACCOUNT_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

const HOW_TO_START: &str = "run the tests with scripts/test, or start services with `scripts/services start` and export what it prints";

/// Why a service cannot be used. The message always says how to get it running.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ServiceError {
    #[error("{service} is not running: {HOW_TO_START} ({var} is not set)")]
    NotConfigured { service: &'static str, var: &'static str },
    #[error("{service} is not running: {HOW_TO_START} ({var}={value} is not an http://HOST:PORT URL)")]
    BadUrl { service: &'static str, var: &'static str, value: String },
    #[error("{service} is not running: {HOW_TO_START} (nothing answers at {value}, from {var}: {reason})")]
    NotAnswering { service: &'static str, var: &'static str, value: String, reason: String },
    #[error("{service} is not installed: {HOW_TO_START} ({var}={value} is not an executable file)")]
    NotInstalled { service: &'static str, var: &'static str, value: String },
}

/// Base URL of moto server (S3 and SQS). Panics with how to start it when it is not running.
pub fn moto_endpoint() -> String {
    checked_endpoint("moto server", MOTO_ENDPOINT_VAR, std::env::var(MOTO_ENDPOINT_VAR).ok()).unwrap_or_else(|e| panic!("{e}"))
}

/// Azurite's blob endpoint, account included. Panics with how to start it when it is not running.
pub fn azurite_blob_endpoint() -> String {
    checked_endpoint("Azurite", AZURITE_BLOB_ENDPOINT_VAR, std::env::var(AZURITE_BLOB_ENDPOINT_VAR).ok()).unwrap_or_else(|e| panic!("{e}"))
}

/// The Python of `.local/venv`, for tests that drive AWS's own Python clients. Panics with how to install
/// it when it is missing.
pub fn python() -> PathBuf {
    checked_executable("the test Python venv", PYTHON_VAR, std::env::var(PYTHON_VAR).ok()).unwrap_or_else(|e| panic!("{e}"))
}

/// Validates an endpoint taken from `var` (its value passed in, so tests can feed any value without
/// touching the process environment) and checks that something accepts TCP connections at its port.
pub fn checked_endpoint(service: &'static str, var: &'static str, value: Option<String>) -> Result<String, ServiceError> {
    let value = value.filter(|v| !v.trim().is_empty()).ok_or(ServiceError::NotConfigured { service, var })?;
    let addr = socket_addr(&value).ok_or_else(|| ServiceError::BadUrl { service, var, value: value.clone() })?;
    match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Ok(_) => Ok(value.trim_end_matches('/').to_owned()),
        Err(e) => Err(ServiceError::NotAnswering { service, var, value, reason: e.to_string() }),
    }
}

/// Validates a path to an executable taken from `var`.
pub fn checked_executable(service: &'static str, var: &'static str, value: Option<String>) -> Result<PathBuf, ServiceError> {
    let value = value.filter(|v| !v.trim().is_empty()).ok_or(ServiceError::NotConfigured { service, var })?;
    let path = PathBuf::from(&value);
    let executable = std::fs::metadata(&path).map(|m| m.is_file() && is_executable(&m)).unwrap_or(false);
    if executable {
        Ok(path)
    } else {
        Err(ServiceError::NotInstalled { service, var, value })
    }
}

#[cfg(unix)]
fn is_executable(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    true
}

/// `http://HOST:PORT[/...]` → the address to connect to. Only plain http: the local services use no TLS.
fn socket_addr(url: &str) -> Option<SocketAddr> {
    let rest = url.trim().strip_prefix("http://")?;
    let host_port = rest.split('/').next()?;
    let (host, port) = host_port.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    (host.trim_start_matches('[').trim_end_matches(']'), port).to_socket_addrs().ok()?.next()
}

// ---------------------------------------------------------------------------------------------------------
// Clients

fn test_credentials() -> aws_sdk_s3::config::Credentials {
    aws_sdk_s3::config::Credentials::new(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, None, None, "auditstream-e2e")
}

/// An S3 client for moto: path-style addressing (no DNS for `bucket.127.0.0.1`), static test credentials,
/// us-east-1. Checksums stay at the SDK default (moto 5.2.5 accepts the SDK's CRC32 trailers, which
/// `harness_selftest` proves), so the tests exercise what production sends.
pub fn moto_s3_client() -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(moto_endpoint())
        .region(aws_sdk_s3::config::Region::new(TEST_REGION))
        .credentials_provider(test_credentials())
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// An SQS client for moto (same endpoint as S3), static test credentials, us-east-1.
pub fn moto_sqs_client() -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .endpoint_url(moto_endpoint())
        .region(aws_sdk_sqs::config::Region::new(TEST_REGION))
        .credentials_provider(test_credentials())
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// A shared `SdkConfig` pointing at moto, for code under test that builds its own clients from one. S3
/// clients built from it still need `force_path_style(true)` (an `SdkConfig` has no such setting).
pub async fn moto_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto_endpoint())
        .region(aws_config::Region::new(TEST_REGION))
        .credentials_provider(test_credentials())
        .load()
        .await
}

/// Environment for a child process (a function under the Lambda emulator, the CLI) that talks to moto
/// through the standard AWS configuration variables.
pub fn moto_env() -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", moto_endpoint()),
        ("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", TEST_SECRET_ACCESS_KEY.to_owned()),
        ("AWS_REGION", TEST_REGION.to_owned()),
        ("AWS_DEFAULT_REGION", TEST_REGION.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

// ---------------------------------------------------------------------------------------------------------
// Per-test resources

/// A name no other test (in this process, a parallel test process, or an earlier run against the same
/// long-lived services) uses: `PREFIX-PID-TIME-COUNTER`, lower case, at most 63 characters (valid as an S3
/// bucket, an SQS queue and an Azure container name). `prefix` is reduced to `[a-z0-9-]`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // Azure container names allow no "--", so runs of other characters become one hyphen.
    let mut clean = String::with_capacity(prefix.len());
    for c in prefix.chars().map(|c| c.to_ascii_lowercase()) {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && clean.ends_with('-')) {
            clean.push(c);
        }
    }
    clean = clean.trim_matches('-').to_owned();
    if clean.is_empty() {
        clean.push('t');
    }
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let suffix = format!("-{}-{}-{}", std::process::id(), radix36(millis as u64), COUNTER.fetch_add(1, Ordering::Relaxed));
    clean.truncate(63 - suffix.len().min(40));
    let clean = clean.trim_end_matches('-');
    format!("{clean}{suffix}")
}

fn radix36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Creates a bucket with a unique name in moto and returns the name.
pub async fn create_bucket(s3: &aws_sdk_s3::Client, prefix: &str) -> String {
    let bucket = unique_name(prefix);
    s3.create_bucket().bucket(&bucket).send().await.unwrap_or_else(|e| panic!("creating bucket {bucket} in moto at {}: {e:?}", moto_endpoint()));
    bucket
}

/// A queue created for one test.
#[derive(Debug, Clone)]
pub struct TestQueue {
    pub name: String,
    pub url: String,
    pub arn: String,
}

/// Creates a standard queue with a unique name in moto. `attributes` are SQS queue attributes (e.g.
/// `VisibilityTimeout`), passed as they are.
pub async fn create_queue(sqs: &aws_sdk_sqs::Client, prefix: &str, attributes: &[(&str, &str)]) -> TestQueue {
    let name = unique_name(prefix);
    let mut request = sqs.create_queue().queue_name(&name);
    for (key, value) in attributes {
        request = request.attributes(aws_sdk_sqs::types::QueueAttributeName::from(*key), *value);
    }
    let url = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating queue {name} in moto at {}: {e:?}", moto_endpoint()))
        .queue_url
        .unwrap_or_else(|| panic!("moto returned no URL for new queue {name}"));
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("reading the ARN of queue {url}: {e:?}"))
        .attributes
        .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .unwrap_or_else(|| panic!("moto returned no QueueArn for {url}"));
    TestQueue { name, url, arn }
}

/// Creates a dead-letter queue and a source queue whose redrive policy moves a message to it after
/// `max_receive_count` receives. Returns `(source, dlq)`.
pub async fn create_queue_with_dlq(sqs: &aws_sdk_sqs::Client, prefix: &str, max_receive_count: u32, attributes: &[(&str, &str)]) -> (TestQueue, TestQueue) {
    let dlq = create_queue(sqs, &format!("{prefix}-dlq"), &[]).await;
    let redrive = format!(r#"{{"deadLetterTargetArn":"{}","maxReceiveCount":"{max_receive_count}"}}"#, dlq.arn);
    let mut all: Vec<(&str, &str)> = attributes.to_vec();
    all.push(("RedrivePolicy", &redrive));
    let source = create_queue(sqs, prefix, &all).await;
    (source, dlq)
}

/// Messages on a queue, visible or in flight: 0 once every message was deleted.
pub async fn queue_depth(queue: &TestQueue) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName::{ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible};
    let attributes = moto_sqs_client()
        .get_queue_attributes()
        .queue_url(&queue.url)
        .attribute_names(ApproximateNumberOfMessages)
        .attribute_names(ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap_or_else(|e| panic!("reading the depth of queue {}: {e:?}", queue.url));
    let a = attributes.attributes().unwrap_or_else(|| panic!("moto returned no attributes for {}", queue.url));
    [ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible].iter().map(|n| a.get(n).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addr_reads_http_host_port_urls() {
        let cases: &[(&str, Option<u16>)] = &[
            ("http://127.0.0.1:5000", Some(5000)),
            ("http://127.0.0.1:10000/devstoreaccount1", Some(10000)),
            ("http://localhost:8080/", Some(8080)),
            ("https://127.0.0.1:443", None),
            ("http://127.0.0.1", None),
            ("127.0.0.1:5000", None),
            ("http://127.0.0.1:notaport", None),
        ];
        for (url, port) in cases {
            assert_eq!(socket_addr(url).map(|a| a.port()), *port, "{url}");
        }
    }

    #[test]
    fn unique_names_are_valid_bucket_names_and_differ() {
        let long = "X".repeat(100);
        let names = [unique_name("s3 writer!"), unique_name("s3  writer!"), unique_name(&long), unique_name("--")];
        for name in &names {
            assert!((3..=63).contains(&name.len()), "{name} has {} characters", name.len());
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{name}");
            assert!(!name.starts_with('-') && !name.ends_with('-'), "{name}");
            assert!(!name.contains("--"), "{name}");
        }
        assert!(names[0].starts_with("s3-writer-"), "{}", names[0]);
        assert_ne!(names[0], names[1]);
    }
}
