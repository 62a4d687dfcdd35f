//! Azure Blob Storage: one `Put Blob` (block blob) per event, create-only.
//!
//! `If-None-Match: *` makes the write conditional: when the blob exists Azure answers
//! `409 BlobAlreadyExists`, which for us is an SQS redelivery of an event already written — a
//! success, counted as a duplicate. Blob names are the object keys (the S3 layout), the prefix
//! included. Requests are signed with Shared Key ([`super::shared_key`]) or carry a SAS token;
//! `x-ms-version` is pinned to [`BLOB_API_VERSION`], which Azurite 3.35 accepts without
//! `--skipApiVersionCheck` and which allows blobs far larger than any event.
//!
//! Failures: 403 (wrong key or SAS, clock skew), 404 (no such container) and other 4xx are
//! permanent, with a message that names the account, container and blob and says what to check;
//! 408, 429 and 5xx (`ServerBusy`, `OperationTimedOut`, `InternalError`) and connection errors are
//! transient, and a `Retry-After` / `x-ms-retry-after-ms` is passed on to the retry policy. A 3xx
//! is permanent: redirects are not followed (a SAS token would go with the request to another
//! host). Messages quote the service's `<Code>` and `<Message>` only, through [`Redactor::quote`],
//! and show the endpoint without user info or query.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;

use super::connection::{parse_secret_value, BlobAuth, BlobAuthSource, BlobSettings};
use super::shared_key::{encode_blob_path, RequestToSign};
use crate::config::{Env, PipelineSettings};
use crate::delivery::destination::{ObjectStore, ObjectStoreDestination, PutOutcome};
use crate::delivery::health::HealthReport;
use crate::delivery::retry::DeliveryError;
use crate::delivery::transport::redirect_not_followed;
use crate::destinations::Setup;
use crate::destinations::SetupError;
use crate::pipeline::key::{KeyPrefix, ObjectKey};
use crate::redact::{url_for_message, Redactor};
use crate::secret::{fetch_secret_with, SecretError};

/// The Blob service REST version every request is made with.
pub const BLOB_API_VERSION: &str = "2025-11-05";

mod check;

/// Time for one Put Blob (an event is at most 40 MiB by default).
const PUT_TIMEOUT: Duration = Duration::from_secs(60);

/// An Azure Blob container as an [`ObjectStore`].
pub struct AzureBlobStore {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    account: String,
    auth: BlobAuth,
    container: String,
    /// The SAS token and what the endpoint URL carries, to remove from anything the service says.
    redactor: Redactor,
}

impl AzureBlobStore {
    pub fn new(http: reqwest::Client, endpoint: reqwest::Url, account: Option<String>, auth: BlobAuth, container: String) -> Self {
        let account = match (&auth, account) {
            (BlobAuth::SharedKey(cred), _) => cred.account.clone(),
            (_, Some(a)) => a,
            // SAS with an explicit endpoint: the host names the account well enough for messages.
            (_, None) => endpoint.host_str().unwrap_or("").split('.').next().unwrap_or("").to_owned(),
        };
        let mut redactor = Redactor::new();
        redactor.add_url(&endpoint, None);
        if let BlobAuth::Sas(sas) = &auth {
            let mut with_sas = endpoint.clone();
            with_sas.set_query(Some(sas.query()));
            redactor.add_url(&with_sas, None);
        }
        AzureBlobStore { http, endpoint, account, auth, container, redactor }
    }

    /// The endpoint for messages: no user info, no query.
    fn endpoint_for_message(&self) -> String {
        url_for_message(&self.endpoint).trim_end_matches('/').to_owned()
    }

    /// The azure-blob-writer's destination (and `--to azure-blob`), from
    /// `AUDITSTREAM_AZURE_BLOB_*` or `AZURE_STORAGE_CONNECTION_STRING`; see [`Self::connect`].
    pub async fn from_env(
        env: &(impl Env + ?Sized),
        settings: &PipelineSettings,
        aws: Option<&aws_config::SdkConfig>,
    ) -> Result<Setup<ObjectStoreDestination<AzureBlobStore>>, SetupError> {
        let (store, prefix) = AzureBlobStore::connect(BlobSettings::from_env(env)?, aws).await?;
        Ok(Setup::object_store(settings, prefix, store))
    }

    /// Builds the store from its settings, reading the credential from AWS Secrets Manager when the
    /// settings name a secret. `aws` is the AWS configuration to use for that; `None` loads the
    /// standard one (the function's role). Returns the store and the key prefix for the pipeline.
    pub async fn connect(settings: BlobSettings, aws: Option<&aws_config::SdkConfig>) -> Result<(AzureBlobStore, KeyPrefix), SetupError> {
        let auth = match settings.auth {
            BlobAuthSource::Ready(auth) => auth,
            BlobAuthSource::SecretArn { var, arn } => {
                let secret = fetch_secret_with(aws, var, &arn).await?;
                parse_secret_value(settings.account.as_deref(), secret.expose()).map_err(|reason| SecretError::Unusable { var, secret_id: arn, reason })?
            }
        };
        let store = AzureBlobStore::new(super::http_client()?, settings.endpoint, settings.account, auth, settings.container);
        Ok((store, settings.prefix))
    }

    /// Where a blob is, for messages: `https://acct.blob.core.windows.net/container/key` (never
    /// with a SAS token).
    fn location(&self, key: &ObjectKey) -> String {
        format!("{}/{}/{}", self.endpoint_for_message(), self.container, key)
    }

    /// The request URL (SAS token included, if that is the auth) and its path as signed.
    fn blob_url(&self, key: &ObjectKey) -> reqwest::Url {
        let mut url = self.endpoint.clone();
        let path = format!("{}/{}/{}", self.endpoint.path().trim_end_matches('/'), self.container, encode_blob_path(key.as_str()));
        url.set_path(&path);
        if let BlobAuth::Sas(sas) = &self.auth {
            url.set_query(Some(sas.query()));
        }
        url
    }

    fn context<'a>(&'a self, key: &'a ObjectKey) -> BlobContext<'a> {
        BlobContext { account: &self.account, container: &self.container, location: self.location(key), sas: matches!(self.auth, BlobAuth::Sas(_)) }
    }
}

#[async_trait]
impl ObjectStore for AzureBlobStore {
    fn describe(&self) -> String {
        format!("{}/{}", self.endpoint_for_message(), self.container)
    }

    async fn put_new(&self, key: &ObjectKey, body: Bytes) -> Result<PutOutcome, DeliveryError> {
        let url = self.blob_url(key);
        let date = httpdate::fmt_http_date(SystemTime::now());
        let length = body.len().to_string();
        let headers: [(&str, &str); 6] = [
            ("content-length", &length),
            ("content-type", "application/json"),
            ("if-none-match", "*"),
            ("x-ms-blob-type", "BlockBlob"),
            ("x-ms-date", &date),
            ("x-ms-version", BLOB_API_VERSION),
        ];
        let mut request = self.http.put(url.clone()).timeout(PUT_TIMEOUT);
        // reqwest sets Content-Length from the body itself; the value signed is the same.
        for (name, value) in headers.iter().filter(|(n, _)| *n != "content-length") {
            request = request.header(*name, *value);
        }
        let mut redactor = self.redactor.clone();
        if let BlobAuth::SharedKey(cred) = &self.auth {
            let signed = RequestToSign { method: "PUT", path: url.path(), query: &[], headers: &headers };
            let authorization = cred.authorization(&signed);
            redactor.add_secret(&authorization);
            request = request.header("authorization", authorization);
        }
        let ctx = self.context(key);
        let response = match request.body(body.clone()).send().await {
            Ok(r) => r,
            Err(e) => {
                return Err(DeliveryError::unanswered(format!("{}: Put Blob failed: {}", ctx.location, crate::delivery::transport::transport_failure(&e))))
            }
        };
        let status = response.status().as_u16();
        if status == 201 {
            return Ok(PutOutcome::Created);
        }
        let retry_after = super::retry_after(response.headers());
        let header_code = response.headers().get("x-ms-error-code").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let answer = response.bytes().await.unwrap_or_default();
        let error = StorageError::parse(header_code, &answer, &|text| redactor.quote(text, &body, 200));
        classify(status, &error, &ctx).map_err(|e| e.with_retry_after(retry_after))
    }

    async fn check_access(&self, report: &mut HealthReport) {
        check::access(self, report).await
    }

    async fn read_back(&self, key: &ObjectKey, body: &[u8]) -> Option<Result<String, String>> {
        check::read_back(self, key, body).await
    }
}

/// What a message about one blob needs to name.
#[derive(Debug, Clone)]
pub struct BlobContext<'a> {
    pub account: &'a str,
    pub container: &'a str,
    pub location: String,
    pub sas: bool,
}

/// The error a storage service returns: the `x-ms-error-code` header, else `<Code>` of the XML
/// body, with its `<Message>` and `<AuthenticationErrorDetail>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageError {
    pub code: String,
    pub message: String,
    pub auth_detail: String,
}

impl StorageError {
    /// The error of an answer `body`; the code and message as `quote` renders them (the
    /// authentication detail is only looked at, never shown).
    pub fn parse(header_code: Option<String>, body: &[u8], quote: &dyn Fn(&str) -> String) -> StorageError {
        let text = String::from_utf8_lossy(body);
        StorageError {
            code: header_code.filter(|c| !c.is_empty()).or_else(|| xml_element(&text, "Code")).map(|c| quote(&c)).unwrap_or_default(),
            message: xml_element(&text, "Message").map(|m| quote(super::first_line(&m))).unwrap_or_default(),
            auth_detail: xml_element(&text, "AuthenticationErrorDetail").unwrap_or_default(),
        }
    }
}

/// The text of the first `<name>…</name>`, entities decoded. Enough for Azure's flat error bodies.
fn xml_element(text: &str, name: &str) -> Option<String> {
    let start = text.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + text[start..].find(&format!("</{name}>"))?;
    Some(text[start..end].replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&"))
}

/// Maps a Put Blob answer to an outcome. Pure, so every branch is tested.
pub fn classify(status: u16, error: &StorageError, ctx: &BlobContext<'_>) -> Result<PutOutcome, DeliveryError> {
    let code = error.code.as_str();
    let what = format!("{}: Put Blob failed: HTTP {status}{}{}", ctx.location, if code.is_empty() { "" } else { " " }, code);
    let said = if error.message.is_empty() { String::new() } else { format!(" ({})", error.message) };
    match (status, code) {
        (201, _) => Ok(PutOutcome::Created),
        (300..=399, _) => Err(DeliveryError::permanent(format!("{what}: {}", redirect_not_followed("AUDITSTREAM_AZURE_BLOB_ENDPOINT (or BlobEndpoint in AZURE_STORAGE_CONNECTION_STRING)")))),
        (409, "BlobAlreadyExists") => Ok(PutOutcome::AlreadyExists),
        // We send no condition but If-None-Match: *, so a failed condition can only mean "exists".
        (412, _) => Ok(PutOutcome::AlreadyExists),
        // Azure says AuthenticationFailed for a bad signature; Azurite says AuthorizationFailure
        // with the same "Server failed to authenticate" message.
        (403, _) if code == "AuthenticationFailed" || error.message.contains("failed to authenticate") => auth_failure(&what, &said, error, ctx),
        (401, _) => auth_failure(&what, &said, error, ctx),
        (403, _) if ctx.sas => Err(DeliveryError::permanent(format!(
            "{what}{said}: the SAS token may not write this blob: it needs create and write (sp=cw) on container {} — with create (c) alone, an event written before (a redelivery) gets 403 instead of 409",
            ctx.container
        ))),
        (403, _) => Err(DeliveryError::permanent(format!(
            "{what}{said}: the credential is valid but may not write to container {} of account {} (network rules, or the account's Shared Key access setting)",
            ctx.container, ctx.account
        ))),
        (404, "ContainerNotFound") => Err(DeliveryError::permanent(format!(
            "{what}: container {} does not exist in account {}: create it (az storage container create --name {} --account-name {}) or fix AUDITSTREAM_AZURE_BLOB_CONTAINER",
            ctx.container, ctx.account, ctx.container, ctx.account
        ))),
        (404, _) => Err(DeliveryError::permanent(format!("{what}{said}: is the endpoint right for account {}?", ctx.account))),
        (408 | 429 | 500..=599, _) | (_, "ServerBusy" | "OperationTimedOut" | "InternalError") => Err(DeliveryError::transient(format!("{what}{said}"))),
        (400, "InvalidHeaderValue" | "UnsupportedHeader") => Err(DeliveryError::permanent(format!("{what}{said}: the service may not support x-ms-version {BLOB_API_VERSION}"))),
        _ => Err(DeliveryError::permanent(format!("{what}{said}"))),
    }
}

/// A refused credential: what to check depends on whether it was a key or a SAS token.
fn auth_failure(what: &str, said: &str, error: &StorageError, ctx: &BlobContext<'_>) -> Result<PutOutcome, DeliveryError> {
    let detail = error.auth_detail.to_ascii_lowercase();
    // Azure's detail for a skewed clock: "Request date header too old" / "…in the future".
    let hint = if detail.contains("date header") || detail.contains("too old") || detail.contains("in the future") {
        "the request's time was refused: is this machine's clock right? (Azure refuses requests more than 15 minutes off)".to_owned()
    } else if ctx.sas {
        format!(
            "is the SAS token valid, unexpired (se=), signed for account {} and granting create and write (sp=cw) on container {}? is the clock right?",
            ctx.account, ctx.container
        )
    } else {
        format!("is the account key right for account {}? (a wrong key, or a key of another account, gives this) is the clock right?", ctx.account)
    };
    Err(DeliveryError::permanent(format!("{what}{said}: {hint}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::retry::FailureKind;

    fn ctx(sas: bool) -> BlobContext<'static> {
        BlobContext { account: "contoso", container: "audit-logs", location: "https://contoso.blob.core.windows.net/audit-logs/5/jobs/x.json".into(), sas }
    }

    fn as_is(text: &str) -> String {
        text.to_owned()
    }

    fn err(code: &str) -> StorageError {
        StorageError { code: code.into(), message: "The server said so.".into(), auth_detail: String::new() }
    }

    #[test]
    fn answers_map_as_the_contract_says() {
        use FailureKind::*;
        let cases: Vec<(u16, &str, Result<PutOutcome, FailureKind>)> = vec![
            (201, "", Ok(PutOutcome::Created)),
            (409, "BlobAlreadyExists", Ok(PutOutcome::AlreadyExists)),
            (412, "ConditionNotMet", Ok(PutOutcome::AlreadyExists)),
            (409, "LeaseIdMissing", Err(Permanent)),
            (403, "AuthenticationFailed", Err(Permanent)),
            (403, "AuthorizationPermissionMismatch", Err(Permanent)),
            (401, "NoAuthenticationInformation", Err(Permanent)),
            (404, "ContainerNotFound", Err(Permanent)),
            (404, "ResourceNotFound", Err(Permanent)),
            (400, "InvalidHeaderValue", Err(Permanent)),
            (413, "RequestBodyTooLarge", Err(Permanent)),
            (408, "", Err(Transient)),
            (429, "", Err(Transient)),
            (500, "InternalError", Err(Transient)),
            (500, "OperationTimedOut", Err(Transient)),
            (503, "ServerBusy", Err(Transient)),
            (502, "", Err(Transient)),
        ];
        for (status, code, want) in cases {
            let got = classify(status, &err(code), &ctx(false)).map_err(|e| e.kind);
            assert_eq!(got, want, "{status} {code}");
        }
    }

    #[test]
    fn messages_name_the_blob_and_say_what_to_check() {
        let e = classify(403, &err("AuthenticationFailed"), &ctx(false)).unwrap_err();
        assert_eq!(
            e.message,
            "https://contoso.blob.core.windows.net/audit-logs/5/jobs/x.json: Put Blob failed: HTTP 403 AuthenticationFailed (The server said so.): is the account key right for account contoso? (a wrong key, or a key of another account, gives this) is the clock right?"
        );
        let e = classify(403, &err("AuthenticationFailed"), &ctx(true)).unwrap_err();
        assert!(
            e.message
                .contains("is the SAS token valid, unexpired (se=), signed for account contoso and granting create and write (sp=cw) on container audit-logs?"),
            "{}",
            e.message
        );
        let skew = StorageError {
            code: "AuthenticationFailed".into(),
            message: String::new(),
            auth_detail: "Request date header too old: 'Fri, 01 Jan 2021 00:00:00 GMT'".into(),
        };
        assert!(classify(403, &skew, &ctx(false)).unwrap_err().message.contains("is this machine's clock right?"));
        // Azurite's answer to a bad signature
        let azurite = StorageError {
            code: "AuthorizationFailure".into(),
            message: "Server failed to authenticate the request. Make sure the value of the Authorization header is formed correctly including the signature."
                .into(),
            auth_detail: String::new(),
        };
        assert!(classify(403, &azurite, &ctx(false))
            .unwrap_err()
            .message
            .ends_with("is the account key right for account contoso? (a wrong key, or a key of another account, gives this) is the clock right?"));
        let e = classify(404, &err("ContainerNotFound"), &ctx(false)).unwrap_err();
        assert_eq!(
            e.message,
            "https://contoso.blob.core.windows.net/audit-logs/5/jobs/x.json: Put Blob failed: HTTP 404 ContainerNotFound: container audit-logs does not exist in account contoso: create it (az storage container create --name audit-logs --account-name contoso) or fix AUDITSTREAM_AZURE_BLOB_CONTAINER"
        );
    }

    #[test]
    fn error_bodies_are_read_from_header_or_xml() {
        let body = br#"<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request. Make sure the value of the Authorization header is formed correctly including the signature.
RequestId:5f1c
Time:2026-11-25T21:00:00.0000000Z</Message><AuthenticationErrorDetail>The MAC signature found in the HTTP request 'x' is not the same as any computed signature.</AuthenticationErrorDetail></Error>"#;
        let e = StorageError::parse(None, body, &as_is);
        assert_eq!(e.code, "AuthenticationFailed");
        assert_eq!(
            e.message,
            "Server failed to authenticate the request. Make sure the value of the Authorization header is formed correctly including the signature."
        );
        assert!(e.auth_detail.starts_with("The MAC signature"));
        assert_eq!(StorageError::parse(Some("ServerBusy".into()), b"", &as_is).code, "ServerBusy");
        assert_eq!(StorageError::parse(None, b"not xml &amp;", &as_is), StorageError::default());
        assert_eq!(xml_element("<Message>a &amp; b &lt;c&gt;</Message>", "Message").as_deref(), Some("a & b <c>"));
    }

    #[test]
    fn urls_are_path_style_or_host_style_and_sas_never_reaches_messages() {
        use super::super::connection::SasToken;
        use super::super::shared_key::{AccountKey, SharedKeyCredential};
        let key = AccountKey::from_base64(super::super::connection::DEV_ACCOUNT_KEY).unwrap();
        let http = reqwest::Client::new();
        let dev = AzureBlobStore::new(
            http.clone(),
            reqwest::Url::parse("http://127.0.0.1:10000/devstoreaccount1").unwrap(),
            None,
            BlobAuth::SharedKey(SharedKeyCredential::new("devstoreaccount1", key)),
            "audit".into(),
        );
        let meta_key = ObjectKey::for_event(
            &crate::pipeline::event::EventMeta::Job(crate::pipeline::event::JobMeta {
                id: "j 1".into(),
                recipe_id: "7".into(),
                status: "ok".into(),
                user_id: "5".into(),
                time: crate::pipeline::timestamp::UtcTime::from_epoch_seconds(0),
            }),
            crate::pipeline::key::KeyLayout::Standard,
            &KeyPrefix::default(),
            b"",
        );
        assert_eq!(meta_key.as_str(), "5/jobs/7/19700101/j%201/5-7-j%201-19700101000000-ok.json");
        assert_eq!(
            dev.blob_url(&meta_key).as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/audit/5/jobs/7/19700101/j%25201/5-7-j%25201-19700101000000-ok.json"
        );
        assert_eq!(dev.describe(), "http://127.0.0.1:10000/devstoreaccount1/audit");

        let sas = AzureBlobStore::new(
            http,
            reqwest::Url::parse("https://contoso.blob.core.windows.net").unwrap(),
            None,
            BlobAuth::Sas(SasToken::parse("?sv=2025-11-05&sp=cw&sig=SECRETSIG").unwrap()),
            "audit".into(),
        );
        assert_eq!(
            sas.blob_url(&meta_key).as_str(),
            "https://contoso.blob.core.windows.net/audit/5/jobs/7/19700101/j%25201/5-7-j%25201-19700101000000-ok.json?sv=2025-11-05&sp=cw&sig=SECRETSIG"
        );
        assert_eq!(sas.context(&meta_key).account, "contoso");
        assert!(!sas.context(&meta_key).location.contains("SECRETSIG"));
        assert!(!sas.describe().contains("SECRETSIG"));
    }
}
