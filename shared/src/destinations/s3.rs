//! Amazon S3 (and S3-compatible servers): one `PutObject` per event, create-only.
//!
//! `If-None-Match: *` makes the write conditional: S3 answers 412 when the key exists, which for
//! us means an SQS redelivery of an event already written — a success, counted as a duplicate.
//! The SDK's own retries are turned off so that the shared [`crate::delivery::retry::RetryPolicy`] is the
//! only one, and it can respect the Lambda deadline. The payload is sent unsigned (TLS and the
//! SHA-256 checksum protect it), which halves the CPU a PUT costs.
//!
//! Every object carries its SHA-256 (`x-amz-checksum-sha256`): S3 refuses the PUT if the body that
//! arrives differs, and keeps the checksum, which the batch manifests record and
//! `auditstream verify` compares without downloading (`docs/integrity.md`). For an object already
//! there the checksum S3 kept is asked for (`HeadObject` with checksum mode), never recomputed.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ServerSideEncryption};
use bytes::Bytes;

use crate::aws::errors::{classify, AwsCall};
use crate::aws::s3::{bucket_name, s3_client, timeouts, S3_ATTEMPT_TIMEOUT};
use crate::config::{ConfigError, Env, EnvExt, PipelineSettings};
use crate::delivery::destination::{ObjectStore, ObjectStoreDestination, PutOutcome, Recorded};
use crate::delivery::health::HealthReport;
use crate::delivery::retry::DeliveryError;
use crate::destinations::Setup;
use crate::integrity::archive::{Archive, ArchiveError, Listed, PAGE};
use crate::integrity::checksum::Sha256Sum;
use crate::pipeline::key::{KeyPrefix, ObjectKey};
use crate::pipeline::timestamp::UtcTime;

/// `AUDITSTREAM_S3_*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    /// Applied by the pipeline to every key.
    pub prefix: KeyPrefix,
    /// SSE-KMS key id or ARN; when unset the bucket's default encryption applies.
    pub sse_kms_key_id: Option<String>,
    /// How long one attempt of a call may take, its answer included (`AUDITSTREAM_S3_TIMEOUT_SECS`).
    pub attempt_timeout: Duration,
}

/// `AUDITSTREAM_S3_TIMEOUT_SECS`: how long one attempt of an S3 call may take before it is given
/// up as transient and retried. Without it an S3 endpoint that takes a request and never answers
/// held `auditstream run` forever (the command has no Lambda deadline to end it).
pub const TIMEOUT_VAR: &str = "AUDITSTREAM_S3_TIMEOUT_SECS";

impl S3Settings {
    pub fn from_env(env: &(impl Env + ?Sized)) -> Result<Self, ConfigError> {
        let bucket =
            bucket_name("AUDITSTREAM_S3_BUCKET", env.required("AUDITSTREAM_S3_BUCKET", "set it to the name of the bucket audit events are written to")?)?;
        Ok(S3Settings {
            bucket,
            prefix: crate::config::key_prefix(env, "AUDITSTREAM_S3_PREFIX")?,
            sse_kms_key_id: env.optional("AUDITSTREAM_S3_SSE_KMS_KEY_ID"),
            attempt_timeout: attempt_timeout(env)?,
        })
    }

    /// For a bucket and prefix given elsewhere (the command line's `s3://BUCKET[/PREFIX]`); the
    /// encryption key and the timeout, no part of that, are read as the s3-writer reads them.
    pub fn for_bucket(env: &(impl Env + ?Sized), bucket: String, prefix: KeyPrefix) -> Result<Self, ConfigError> {
        Ok(S3Settings { bucket, prefix, sse_kms_key_id: env.optional("AUDITSTREAM_S3_SSE_KMS_KEY_ID"), attempt_timeout: attempt_timeout(env)? })
    }
}

fn attempt_timeout(env: &(impl Env + ?Sized)) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(env.number(TIMEOUT_VAR, S3_ATTEMPT_TIMEOUT.as_secs(), 1..=900)?))
}

mod check;

pub struct S3Store {
    client: aws_sdk_s3::Client,
    settings: S3Settings,
}

impl S3Store {
    /// The store on `client`'s configuration, with [`UnsignedPutPayload`] added to it and each
    /// attempt bounded by the settings' timeout.
    pub fn new(client: aws_sdk_s3::Client, settings: S3Settings) -> Self {
        let config = client.config().to_builder().interceptor(UnsignedPutPayload).timeout_config(timeouts(settings.attempt_timeout)).build();
        S3Store { client: aws_sdk_s3::Client::from_conf(config), settings }
    }

    /// The s3-writer's destination, from `AUDITSTREAM_S3_*`.
    pub fn from_env(
        env: &(impl Env + ?Sized),
        settings: &PipelineSettings,
        aws: &aws_config::SdkConfig,
    ) -> Result<Setup<ObjectStoreDestination<S3Store>>, ConfigError> {
        Ok(S3Store::setup(S3Settings::from_env(env)?, settings, aws))
    }

    /// From settings made elsewhere (`--to s3://BUCKET/PREFIX`); the prefix goes before every key.
    pub fn setup(s3: S3Settings, settings: &PipelineSettings, aws: &aws_config::SdkConfig) -> Setup<ObjectStoreDestination<S3Store>> {
        Setup::object_store(settings, s3.prefix.clone(), S3Store::connect(s3, aws))
    }

    /// The store on `s3` with the shared S3 client: what every setup entry builds, the archive's
    /// included.
    pub fn connect(s3: S3Settings, aws: &aws_config::SdkConfig) -> Self {
        S3Store::new(s3_client(aws), s3)
    }

    /// The archive the digest function extends, from the same `AUDITSTREAM_S3_*` as the
    /// s3-writer that fills it (an archive has no pipeline: it only reads and adds records).
    pub fn archive_from_env(env: &(impl Env + ?Sized), aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(S3Store::connect(S3Settings::from_env(env)?, aws))
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.settings.bucket, self.settings.prefix.as_str())
    }

    async fn put_new(&self, key: &ObjectKey, body: Bytes) -> Result<PutOutcome, DeliveryError> {
        let sha256 = Sha256Sum::of(&body);
        self.put(key, body, sha256).await
    }

    fn manifests(&self) -> Option<&KeyPrefix> {
        Some(&self.settings.prefix)
    }

    async fn put_new_recorded(&self, key: &ObjectKey, body: Bytes, sha256: Sha256Sum) -> Result<(PutOutcome, Recorded), DeliveryError> {
        let size = body.len() as u64;
        match self.put(key, body, sha256).await? {
            PutOutcome::Created => Ok((PutOutcome::Created, Recorded { size, sha256 })),
            PutOutcome::AlreadyExists => Ok((PutOutcome::AlreadyExists, self.recorded(key.as_str()).await?)),
        }
    }

    async fn check_access(&self, report: &mut HealthReport) {
        check::access(&self.client, &self.settings, report).await
    }

    async fn read_back(&self, key: &ObjectKey, body: &[u8]) -> Option<Result<String, String>> {
        Some(check::read_back(&self.client, &self.settings.bucket, key, body).await)
    }
}

impl S3Store {
    async fn put(&self, key: &ObjectKey, body: Bytes, sha256: Sha256Sum) -> Result<PutOutcome, DeliveryError> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.settings.bucket)
            .key(key.as_str())
            .content_type("application/json")
            .if_none_match("*")
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(sha256.base64())
            .body(ByteStream::from(body));
        if let Some(kms_key) = &self.settings.sse_kms_key_id {
            request = request.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(kms_key);
        }
        // The payload is not signed ([`UnsignedPutPayload`]): SigV4 would hash every byte with
        // SHA-256 a second time, the largest CPU cost of a PUT. Integrity still holds end to end:
        // TLS in transit, and the SHA-256 given here (computed once), which S3 verifies before
        // storing the object. With a checksum given, the SDK computes none of its own.
        match request.send().await {
            Ok(_) => Ok(PutOutcome::Created),
            // The condition failed: the key exists, written by an earlier delivery of this event.
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 412 => Ok(PutOutcome::AlreadyExists),
            Err(err) => {
                let on = format!("s3://{}/{key}", self.settings.bucket);
                Err(classify(AwsCall::s3("PutObject", &on).with_kms_key(self.settings.sse_kms_key_id.as_deref()), &err))
            }
        }
    }

    /// The size and SHA-256 S3 keeps for the object at `key`. An object written without a SHA-256
    /// (before auditstream sent one) is read and hashed as S3 holds it.
    pub async fn recorded(&self, key: &str) -> Result<Recorded, DeliveryError> {
        let at = format!("s3://{}/{key}", self.settings.bucket);
        self.recorded_if_there(key).await?.ok_or_else(|| DeliveryError::transient(format!("{at}: HeadObject found no object where PutObject found one")))
    }

    /// [`S3Store::recorded`], or `None` when there is no object at `key`.
    async fn recorded_if_there(&self, key: &str) -> Result<Option<Recorded>, DeliveryError> {
        let head = self.client.head_object().bucket(&self.settings.bucket).key(key).checksum_mode(ChecksumMode::Enabled).send().await;
        let at = format!("s3://{}/{key}", self.settings.bucket);
        let head = match head {
            Ok(head) => head,
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 404 => return Ok(None),
            Err(err) => return Err(classify(AwsCall::s3("HeadObject", &at), &err)),
        };
        let size = head.content_length().unwrap_or(0).max(0) as u64;
        if let Some(sha256) = head.checksum_sha256().and_then(Sha256Sum::from_base64) {
            return Ok(Some(Recorded { size, sha256 }));
        }
        let object =
            self.client.get_object().bucket(&self.settings.bucket).key(key).send().await.map_err(|err| classify(AwsCall::s3("GetObject", &at), &err))?;
        let body = object.body.collect().await.map_err(|e| DeliveryError::transient(format!("{at}: reading the object failed: {e}")))?.into_bytes();
        Ok(Some(Recorded { size: body.len() as u64, sha256: Sha256Sum::of(&body) }))
    }
}

/// Leaves the payload of every `PutObject` out of its SigV4 signature (`x-amz-content-sha256:
/// UNSIGNED-PAYLOAD`, <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>);
/// the headers, `x-amz-checksum-sha256` and `If-None-Match` among them, are still signed.
///
/// What the SDK's `customize().disable_payload_signing()` does, set once on the store's client
/// instead of on each request: a per-request customisation builds and merges a configuration
/// override for every `PutObject`, 21,000 instructions of the 1.37 million an object costs
/// (callgrind, `auditstream run --to s3://`, 1,000 events). Other operations (`HeadObject`,
/// `GetObject`, listings) are signed as the SDK signs them.
#[derive(Debug)]
struct UnsignedPutPayload;

impl aws_sdk_s3::config::Intercept for UnsignedPutPayload {
    fn name(&self) -> &'static str {
        "UnsignedPutPayload"
    }

    fn modify_before_signing(
        &self,
        _context: &mut aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut<'_>,
        _components: &aws_sdk_s3::config::RuntimeComponents,
        cfg: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        if cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>().is_some_and(|m| m.name() == "PutObject") {
            cfg.interceptor_state().store_put(aws_runtime::auth::PayloadSigningOverride::unsigned_payload());
        }
        Ok(())
    }
}

/// The archive as the digest step and verification read it (`docs/integrity.md`): checksums come
/// from S3 (`HeadObject` with checksum mode), without a download.
#[async_trait]
impl Archive for S3Store {
    fn name(&self) -> String {
        ObjectStore::describe(self)
    }

    fn key_prefix(&self) -> &KeyPrefix {
        &self.settings.prefix
    }

    async fn list_page(&self, prefix: &str, after: Option<&str>) -> Result<Vec<Listed>, ArchiveError> {
        let request = self.client.list_objects_v2().bucket(&self.settings.bucket).prefix(prefix).max_keys(PAGE as i32);
        let page = request.set_start_after(after.map(str::to_owned)).send().await;
        let page =
            page.map_err(|err| ArchiveError(classify(AwsCall::s3("ListObjectsV2", &format!("s3://{}/{prefix}", self.settings.bucket)), &err).message))?;
        Ok(page
            .contents()
            .iter()
            .filter_map(|object| {
                let (key, modified) = (object.key()?, object.last_modified()?);
                let modified = UtcTime { millis: modified.subsec_nanos().div_euclid(1_000_000) as u16, ..UtcTime::from_epoch_seconds(modified.secs()) };
                Some(Listed { key: key.to_owned(), modified })
            })
            .collect())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        let at = format!("s3://{}/{key}", self.settings.bucket);
        match self.client.get_object().bucket(&self.settings.bucket).key(key).send().await {
            Ok(object) => {
                Ok(Some(object.body.collect().await.map_err(|e| ArchiveError(format!("{at}: reading the object failed: {e}")))?.into_bytes().to_vec()))
            }
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 404 => Ok(None),
            Err(err) => Err(ArchiveError(classify(AwsCall::s3("GetObject", &at), &err).message)),
        }
    }

    async fn recorded(&self, key: &str) -> Result<Option<Recorded>, ArchiveError> {
        self.recorded_if_there(key).await.map_err(|e| ArchiveError(e.message))
    }

    async fn put_record(&self, key: &str, body: Vec<u8>) -> Result<bool, ArchiveError> {
        let sha256 = Sha256Sum::of(&body);
        let put = self.put(&ObjectKey::integrity_record(key.to_owned()), Bytes::from(body), sha256).await.map_err(|e| ArchiveError(e.message))?;
        Ok(put == PutOutcome::Created)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::IntoFuture;

    /// A fake S3 answering with `s3` on a loopback port, and an SDK configuration that sends to it
    /// signing with `secret`.
    async fn fake_s3(s3: axum::Router, secret: &str) -> aws_config::SdkConfig {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let endpoint = format!("http://{}", listener.local_addr().expect("the bound address"));
        tokio::spawn(axum::serve(listener, s3).into_future());
        let credentials = aws_sdk_s3::config::Credentials::new("AKIDTEST", secret, None, None, "test");
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(credentials))
            .build()
    }

    #[test]
    fn settings_need_a_plain_bucket_name() {
        let s = S3Settings::from_env(
            &[("AUDITSTREAM_S3_BUCKET", "audit-logs"), ("AUDITSTREAM_S3_PREFIX", "workato"), ("AUDITSTREAM_S3_SSE_KMS_KEY_ID", "alias/audit")][..],
        )
        .unwrap();
        assert_eq!(
            s,
            S3Settings {
                bucket: "audit-logs".into(),
                prefix: KeyPrefix::new("workato/").unwrap(),
                sse_kms_key_id: Some("alias/audit".into()),
                attempt_timeout: S3_ATTEMPT_TIMEOUT
            }
        );
        let missing = S3Settings::from_env(&[][..]).unwrap_err();
        assert_eq!(missing.to_string(), "AUDITSTREAM_S3_BUCKET is not set: set it to the name of the bucket audit events are written to");
        let url = S3Settings::from_env(&[("AUDITSTREAM_S3_BUCKET", "s3://audit-logs/x")][..]).unwrap_err();
        assert!(url.to_string().starts_with("AUDITSTREAM_S3_BUCKET=\"s3://audit-logs/x\" is not valid"), "{url}");
    }

    #[test]
    fn the_prefix_goes_before_every_key_the_pipeline_makes() {
        let aws = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
        let pipeline = PipelineSettings::from_env(&[][..]).unwrap();
        let env = [("AUDITSTREAM_S3_BUCKET", "audit-logs"), ("AUDITSTREAM_S3_PREFIX", "workato/prod")];
        let setup = S3Store::from_env(&env[..], &pipeline, &aws).unwrap();
        assert_eq!(setup.pipeline.config.key_prefix, KeyPrefix::new("workato/prod/").unwrap());
        use crate::delivery::destination::Destination;
        assert_eq!(setup.destination.describe(), "s3://audit-logs/workato/prod/");
        // the digest function's archive is the writer's bucket and prefix
        let archive = S3Store::archive_from_env(&env[..], &aws).unwrap();
        assert_eq!((archive.name(), archive.key_prefix()), ("s3://audit-logs/workato/prod/".to_owned(), &setup.pipeline.config.key_prefix));
    }

    /// A KMS key the writer may not use fails the check at the probe, the write the events would
    /// make, with a message naming the key and `kms:GenerateDataKey` and no credential.
    ///
    /// Served by a fake S3 answering as AWS documents for SSE-KMS PutObject
    /// (<https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html>,
    /// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/troubleshoot-403-errors.html>), because
    /// moto cannot: moto 5.2.5 stores a PutObject with any `x-amz-server-side-encryption-aws-kms-key-id`
    /// — a key ARN or alias that does not exist, a malformed id, a key disabled or scheduled for
    /// deletion in moto's own KMS — and its KMS `GenerateDataKey` succeeds on disabled and
    /// pending-deletion keys (only a missing key is refused, `NotFoundException`). The end-to-end
    /// test on moto (`tests/tests/check.rs`) proves what moto does hold: the probe is written
    /// with the configured key.
    #[tokio::test]
    async fn a_kms_key_that_may_not_be_used_fails_the_probe_naming_the_key_and_kms_generate_data_key() {
        use crate::delivery::destination::Destination;
        use crate::delivery::health::{Step, Verdict};
        use axum::http::{HeaderMap, Method, StatusCode};

        const SECRET_ACCESS_KEY: &str = "fake-SECRET-access-key-9f2c";
        const ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-";
        /// Answers HeadBucket 200, and a PutObject as S3 does for the key it names.
        async fn s3(method: Method, headers: HeaderMap) -> (StatusCode, [(&'static str, &'static str); 1], String) {
            let xml = [("content-type", "application/xml")];
            if method == Method::HEAD {
                return (StatusCode::OK, xml, String::new());
            }
            let key = headers.get("x-amz-server-side-encryption-aws-kms-key-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let error = |status: u16, code: &str, message: String| {
                let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>4442587FB7D0A2F9</RequestId><HostId>h</HostId></Error>");
                (StatusCode::from_u16(status).unwrap(), xml, body)
            };
            match key.rsplit('-').next().unwrap_or("") {
                "disabled" => error(400, "KMS.DisabledException", format!("{key} is disabled.")),
                "deleting" => error(400, "KMS.KMSInvalidStateException", format!("{key} is pending deletion.")),
                "missing" => error(400, "KMS.NotFoundException", format!("Invalid keyId {key}")),
                "denied" => error(403, "AccessDenied", format!("User: arn:aws:sts::123456789012:assumed-role/s3-writer/fn is not authorized to perform: kms:GenerateDataKey on resource: {key} because no identity-based policy allows the kms:GenerateDataKey action")),
                _ => (StatusCode::OK, xml, String::new()),
            }
        }
        let aws = fake_s3(axum::Router::new().fallback(s3), SECRET_ACCESS_KEY).await;
        let pipeline = PipelineSettings::from_env(&[][..]).unwrap();

        for (state, code) in [
            ("disabled", "KMS.DisabledException"),
            ("deleting", "KMS.KMSInvalidStateException"),
            ("missing", "KMS.NotFoundException"),
            ("denied", "AccessDenied"),
        ] {
            let key = format!("{ARN}{state}");
            let s3 = S3Settings {
                bucket: "audit-logs".into(),
                prefix: KeyPrefix::new("workato").unwrap(),
                sse_kms_key_id: Some(key.clone()),
                attempt_timeout: S3_ATTEMPT_TIMEOUT,
            };
            let setup = S3Store::setup(s3, &pipeline, &aws);
            let mut report = HealthReport::new("s3://audit-logs/workato/");

            setup.destination.check(&setup.pipeline.config.key_prefix, UtcTime::from_epoch_seconds(1_700_000_000), &mut report).await;

            let steps: Vec<(Step, Verdict)> = report.steps.iter().map(|s| (s.step, s.verdict.clone())).collect();
            let passed = [Step::Credentials, Step::Reachability, Step::Authentication].map(|s| (s, Verdict::Passed));
            assert_eq!(steps, [&passed[..], &[(Step::Permission, Verdict::Failed)]].concat(), "{state}: {report:?}");
            let detail = &report.failure().unwrap().detail;
            assert!(detail.starts_with("s3://audit-logs/workato/_auditstream/health/20231114/probe-"), "{state}: {detail}");
            assert!(detail.contains(&format!("PutObject failed: HTTP {} {code}", if state == "denied" { 403 } else { 400 })), "{state}: {detail}");
            assert!(detail.contains(&format!("KMS key {key}")) && detail.contains("kms:GenerateDataKey"), "{state}: {detail}");
            assert!(!detail.contains(SECRET_ACCESS_KEY) && !format!("{report:?}").contains(SECRET_ACCESS_KEY), "{state}: {detail}");
        }
    }

    /// What the store sends S3, header by header: a `PutObject` signed with SigV4 but with its
    /// payload left out of the signature (`UNSIGNED-PAYLOAD`: the body is not hashed a second
    /// time), create-only (`If-None-Match: *`), carrying the body's SHA-256
    /// (`x-amz-checksum-sha256`), the body byte for byte; and the store's reads (`HeadObject`)
    /// signed as the SDK signs them, over the hash of their empty payload.
    #[tokio::test]
    async fn a_put_is_signed_create_only_and_carries_its_sha256_with_the_payload_unsigned() {
        use axum::body::Bytes as Body;
        use axum::http::{HeaderMap, Method, StatusCode, Uri};
        use std::sync::{Arc, Mutex};

        type Seen = Arc<Mutex<Vec<(Method, String, HeaderMap, Body)>>>;
        let seen: Seen = Arc::default();
        let record = seen.clone();
        let s3 = move |method: Method, uri: Uri, headers: HeaderMap, body: Body| {
            let record = record.clone();
            async move {
                let answer = if method == Method::PUT {
                    (StatusCode::OK, [("x-amz-checksum-sha256", String::new())])
                } else {
                    (StatusCode::OK, [("x-amz-checksum-sha256", Sha256Sum::of(b"{\"id\":1}").base64())])
                };
                record.lock().unwrap().push((method, uri.path().to_owned(), headers, body));
                answer
            }
        };
        let aws = fake_s3(axum::Router::new().fallback(s3), "test-secret").await;
        let store = S3Store::connect(
            S3Settings { bucket: "audit-logs".into(), prefix: KeyPrefix::default(), sse_kms_key_id: None, attempt_timeout: S3_ATTEMPT_TIMEOUT },
            &aws,
        );
        let body = Bytes::from_static(b"{\"id\":1}");
        let key = ObjectKey::integrity_record("events/1.json".to_owned());

        assert_eq!(store.put_new(&key, body.clone()).await.unwrap(), PutOutcome::Created);
        assert_eq!(store.recorded("events/1.json").await.unwrap().sha256, Sha256Sum::of(&body));

        let seen = seen.lock().unwrap();
        let [(put, put_path, put_headers, put_body), (head, head_path, head_headers, _)] = &seen[..] else { panic!("two requests, got {seen:?}") };
        let header = |headers: &HeaderMap, name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        assert_eq!((put, put_path.as_str(), put_body), (&Method::PUT, "/audit-logs/events/1.json", &body));
        assert!(header(put_headers, "authorization").starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/"), "{put_headers:?}");
        let signed = header(put_headers, "authorization");
        for name in ["if-none-match", "x-amz-checksum-sha256", "x-amz-content-sha256", "x-amz-date"] {
            assert!(signed.split("SignedHeaders=").nth(1).unwrap().split(',').next().unwrap().split(';').any(|h| h == name), "{name} unsigned: {signed}");
        }
        assert_eq!(header(put_headers, "x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
        assert_eq!(header(put_headers, "if-none-match"), "*");
        assert_eq!(header(put_headers, "x-amz-checksum-sha256"), Sha256Sum::of(&body).base64());
        assert_eq!((head, head_path.as_str()), (&Method::HEAD, "/audit-logs/events/1.json"));
        assert!(header(head_headers, "authorization").starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/"), "{head_headers:?}");
        assert_eq!(header(head_headers, "x-amz-content-sha256"), Sha256Sum::of(b"").hex());
    }

    #[test]
    fn a_bucket_from_the_command_line_is_encrypted_as_the_writer_encrypts() {
        let prefix = KeyPrefix::new("workato/").unwrap();
        let s = S3Settings::for_bucket(&[("AUDITSTREAM_S3_SSE_KMS_KEY_ID", "alias/audit")][..], "audit-logs".into(), prefix.clone()).unwrap();
        assert_eq!(
            s,
            S3Settings { bucket: "audit-logs".into(), prefix: prefix.clone(), sse_kms_key_id: Some("alias/audit".into()), attempt_timeout: S3_ATTEMPT_TIMEOUT }
        );
        assert_eq!(S3Settings::for_bucket(&[][..], "audit-logs".into(), prefix).unwrap().sse_kms_key_id, None);
    }

    #[test]
    fn each_attempt_of_an_s3_call_is_bounded_by_a_timeout_of_30_seconds_unless_set() {
        let bucket = [("AUDITSTREAM_S3_BUCKET", "audit-logs")];
        assert_eq!(S3Settings::from_env(&bucket[..]).unwrap().attempt_timeout, Duration::from_secs(30));
        let set = [("AUDITSTREAM_S3_BUCKET", "audit-logs"), (TIMEOUT_VAR, "2")];
        assert_eq!(S3Settings::from_env(&set[..]).unwrap().attempt_timeout, Duration::from_secs(2));
        let cli = S3Settings::for_bucket(&[(TIMEOUT_VAR, "7")][..], "audit-logs".into(), KeyPrefix::default()).unwrap();
        assert_eq!(cli.attempt_timeout, Duration::from_secs(7));
        for bad in ["0", "soon", "901"] {
            let e = S3Settings::for_bucket(&[(TIMEOUT_VAR, bad)][..], "audit-logs".into(), KeyPrefix::default()).unwrap_err();
            assert!(e.to_string().starts_with(&format!("{TIMEOUT_VAR}=\"{bad}\" is not valid")), "{e}");
        }
        let store = S3Store::new(s3_client(&aws_config::SdkConfig::builder().build()), cli);
        let timeouts = store.client.config().timeout_config().cloned().unwrap();
        assert_eq!(timeouts.operation_attempt_timeout(), Some(Duration::from_secs(7)));
        assert_eq!(timeouts.connect_timeout(), Some(Duration::from_secs(5)));
    }
}
