//! Azure Monitor Logs Ingestion API as a [`LogSink`].
//!
//! `POST {endpoint}/dataCollectionRules/{DCR immutable id}/streams/{stream}?api-version=2023-01-01`
//! with `Authorization: Bearer` (an [`super::entra_token`] token), `Content-Type:
//! application/json`, `Content-Encoding: gzip`, an `x-ms-client-request-id`, and a gzip'd JSON
//! array of [`super::monitor_rows`]. `204` means accepted.
//!
//! Sizes. Azure takes at most 1 MB per call, "both compressed and uncompressed", and truncates any
//! field over 64 KB. So: every request is checked *before* it is sent — its JSON at most
//! [`MAX_CALL_BYTES`] (1,000,000 bytes, under both readings of "1 MB") uncompressed, and so also
//! compressed — and is refused as too large otherwise, which makes the shared batcher split it;
//! a 413 from Azure does the same. Each event must fit in the `Event` column:
//! [`MAX_EVENT_BYTES`] (64,000 bytes, under both readings of "64 KB") is this sink's per-event
//! limit, so the pipeline replaces an event's `lines` by `"Log lines exceed size limit"` before
//! Azure would cut it, and an event that is still larger without its lines fails permanently —
//! reported with its message id, never silently cut.
//!
//! Failures: 401 gets a new token and one more try; 403 is permanent with the role hint; 413
//! splits; 429 and 5xx are transient with `Retry-After`; a 3xx is permanent (redirects are not
//! followed: the bearer token and the events would go to another host); other 4xx are permanent.
//! Messages quote Azure's `error.code` and the first line of `error.message` through
//! [`Redactor::quote`] (never the client secret, the token or bytes of the rows sent).
//!
//! Settings: `AUDITSTREAM_AZURE_MONITOR_ENDPOINT` (a data collection endpoint, or the DCR's own
//! logs ingestion endpoint), `AUDITSTREAM_AZURE_MONITOR_DCR_ID` (the DCR's immutable id,
//! `dcr-…`), `AUDITSTREAM_AZURE_MONITOR_STREAM` (e.g. `Custom-AuditStream_CL`), and the Entra
//! settings of [`super::entra_token`]. See `docs/azure-monitor.md` for the table and DCR to create.

use std::time::Duration;

use async_trait::async_trait;

use super::entra_token::{AccessToken, ClientSecretSource, EntraSettings, EntraTokenSource, MONITOR_SCOPE};
use crate::config::{ConfigError, Env, EnvExt, PipelineSettings};
use crate::delivery::destination::{EventLimit, LimitSource, LogSink, SinkLimits};
use crate::delivery::health::{HealthReport, Step};
use crate::delivery::log_batching::LogSinkDestination;
use crate::delivery::retry::DeliveryError;
use crate::delivery::transport::redirect_not_followed;
use crate::destinations::Setup;
use crate::destinations::SetupError;
use crate::pipeline::Document;
use crate::redact::{url_for_message, url_text_for_message};
use crate::secret::fetch_secret_with;

pub const API_VERSION: &str = "2023-01-01";
/// Bytes of one call, uncompressed (and so compressed).
pub const MAX_CALL_BYTES: usize = 1_000_000;
/// Bytes of one event (the `Event` column).
pub const MAX_EVENT_BYTES: usize = 64_000;
/// What the batcher packs per request: document bytes and count, leaving room under
/// [`MAX_CALL_BYTES`] for the other columns (a few hundred bytes a row). A batch that still comes
/// out too large is split by the pre-send check.
pub const PACK_BYTES: usize = 800_000;
pub const PACK_EVENTS: usize = 500;

const POST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where rows go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorSettings {
    pub endpoint: reqwest::Url,
    pub dcr_id: String,
    pub stream: String,
}

impl MonitorSettings {
    pub fn from_env(env: &(impl Env + ?Sized)) -> Result<Self, ConfigError> {
        const ENDPOINT: &str = "AUDITSTREAM_AZURE_MONITOR_ENDPOINT";
        const DCR: &str = "AUDITSTREAM_AZURE_MONITOR_DCR_ID";
        const STREAM: &str = "AUDITSTREAM_AZURE_MONITOR_STREAM";
        let text = env.required(ENDPOINT, "set it to the logs ingestion endpoint of the data collection rule (or its data collection endpoint), e.g. https://my-dce-5kyl.eastus-1.ingest.monitor.azure.com")?;
        let endpoint = reqwest::Url::parse(&text)
            .ok()
            .filter(|u| (u.scheme() == "https" || crate::delivery::transport::is_loopback_http(u)) && u.query().is_none() && u.fragment().is_none())
            .ok_or_else(|| ConfigError::Invalid {
                var: ENDPOINT,
                value: url_text_for_message(&text),
                expected: "an https:// URL without query (plain http:// only to 127.0.0.1 or localhost)".into(),
            })?;
        let dcr_id = env.required(DCR, "set it to the immutable id of the data collection rule (dcr-…, shown in its JSON view)")?;
        let dcr_ok = dcr_id.strip_prefix("dcr-").is_some_and(|hex| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if !dcr_ok {
            return Err(ConfigError::Invalid {
                var: DCR,
                value: dcr_id,
                expected: "the DCR's immutable id, `dcr-` followed by hex digits (not its name or resource id)".into(),
            });
        }
        let stream = env.required(STREAM, "set it to the DCR's input stream, e.g. Custom-AuditStream_CL")?;
        let stream_ok = ["Custom-", "Microsoft-"]
            .iter()
            .any(|p| stream.strip_prefix(p).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')));
        if !stream_ok {
            return Err(ConfigError::Invalid {
                var: STREAM,
                value: stream,
                expected: "a stream name such as Custom-AuditStream_CL (Custom- or Microsoft- and letters, digits, _)".into(),
            });
        }
        Ok(MonitorSettings { endpoint, dcr_id, stream })
    }

    /// The ingestion URL, api-version included.
    pub fn ingestion_url(&self) -> reqwest::Url {
        let mut url = self.endpoint.clone();
        url.set_path(&format!("{}/dataCollectionRules/{}/streams/{}", self.endpoint.path().trim_end_matches('/'), self.dcr_id, self.stream));
        url.set_query(Some(&format!("api-version={API_VERSION}")));
        url
    }
}

pub struct AzureMonitorSink {
    http: reqwest::Client,
    url: reqwest::Url,
    tokens: EntraTokenSource,
}

impl AzureMonitorSink {
    pub fn new(http: reqwest::Client, settings: &MonitorSettings, tokens: EntraTokenSource) -> Self {
        AzureMonitorSink { http, url: settings.ingestion_url(), tokens }
    }

    /// The azure-monitor-forwarder's destination (and `--to azure-monitor`), from
    /// `AUDITSTREAM_AZURE_MONITOR_*` and the app registration's `AZURE_*`; see [`Self::connect`].
    pub async fn from_env(
        env: &(impl Env + ?Sized),
        settings: &PipelineSettings,
        aws: Option<&aws_config::SdkConfig>,
    ) -> Result<Setup<LogSinkDestination<AzureMonitorSink>>, SetupError> {
        let (monitor, entra) = (MonitorSettings::from_env(env)?, EntraSettings::from_env(env)?);
        Ok(Setup::log_sink(settings, AzureMonitorSink::connect(&monitor, &entra, aws).await?))
    }

    /// Builds the sink, reading the client secret from AWS Secrets Manager when the settings name
    /// one (`aws`: the AWS configuration for that; `None` loads the standard one).
    pub async fn connect(settings: &MonitorSettings, entra: &EntraSettings, aws: Option<&aws_config::SdkConfig>) -> Result<Self, SetupError> {
        let secret = match &entra.secret {
            ClientSecretSource::Value(s) => s.clone(),
            // Trimmed, as every Secret: one stored from a shell often ends in a newline.
            ClientSecretSource::SecretArn { var, arn } => fetch_secret_with(aws, var, arn).await?,
        };
        let http = super::http_client()?;
        let tokens = EntraTokenSource::new(http.clone(), entra.token_url(), entra.client_id.clone(), secret, MONITOR_SCOPE);
        Ok(AzureMonitorSink::new(http, settings, tokens))
    }

    pub fn tokens(&self) -> &EntraTokenSource {
        &self.tokens
    }

    async fn post(&self, token: &AccessToken, body: &bytes::Bytes, request_id: &str) -> Result<reqwest::Response, DeliveryError> {
        self.http
            .post(self.url.clone())
            .bearer_auth(token.expose())
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .header("x-ms-client-request-id", request_id)
            .timeout(POST_TIMEOUT)
            .body(body.clone())
            .send()
            .await
            .map_err(|e| {
                DeliveryError::unanswered(format!(
                    "{}: {} (x-ms-client-request-id {request_id})",
                    self.describe(),
                    crate::delivery::transport::transport_failure(&e)
                ))
            })
    }
}

/// A GUID (version 4) for `x-ms-client-request-id`.
fn request_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[async_trait]
impl LogSink for AzureMonitorSink {
    /// An Entra ID token issued for the client: the tenant, client id and secret are right and the
    /// token endpoint answers (a token endpoint nothing answers fails reachability). The probe row
    /// then proves the DCR, its stream and the role assignment (Monitoring Metrics Publisher).
    async fn check_access(&self, report: &mut HealthReport) {
        report.call(Step::Authentication, async { self.tokens.token().await.map(|_| "an Entra ID token was issued for the client".to_owned()) }).await;
    }

    fn describe(&self) -> String {
        let mut url = self.url.clone();
        url.set_query(None);
        url_for_message(&url)
    }

    fn limits(&self) -> SinkLimits {
        SinkLimits {
            max_events: PACK_EVENTS,
            max_request_bytes: PACK_BYTES,
            max_event_bytes: Some(EventLimit::new(MAX_EVENT_BYTES, LimitSource::Service("Azure Monitor truncates a field over 64 KB (the Event column)"))),
        }
    }

    async fn send(&self, docs: &[&Document]) -> Result<(), DeliveryError> {
        let json = super::monitor_rows::request_body(docs);
        if json.len() > MAX_CALL_BYTES {
            return Err(DeliveryError::too_large(format!(
                "{}: {} rows are {} bytes of JSON, over the {MAX_CALL_BYTES} bytes Azure takes per call",
                self.describe(),
                docs.len(),
                json.len()
            )));
        }
        let body = bytes::Bytes::from(crate::delivery::transport::gzip(&json));
        drop(json);
        if body.len() > MAX_CALL_BYTES {
            return Err(DeliveryError::too_large(format!("{}: {} bytes compressed, over {MAX_CALL_BYTES} per call", self.describe(), body.len())));
        }
        let request_id = request_id();
        let mut token = self.tokens.token().await?;
        let mut response = self.post(&token, &body, &request_id).await?;
        if response.status().as_u16() == 401 {
            // The token expired or was revoked early: one new token, one more try.
            token = self.tokens.refresh_after_rejection(&token).await?;
            response = self.post(&token, &body, &request_id).await?;
        }
        let status = response.status().as_u16();
        if status == 204 || status == 200 {
            return Ok(());
        }
        let retry_after = super::retry_after(response.headers());
        let header_code = response.headers().get("x-ms-error-code").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let answer = response.bytes().await.unwrap_or_default();
        // Anything quoted from the answer is checked against the rows sent (encoded again: only a
        // failure pays for it), the client secret and the token in use.
        let mut redactor = self.tokens.redactor().clone();
        redactor.add_secret(token.expose());
        let rows = super::monitor_rows::request_body(docs);
        let quote = |text: &str| redactor.quote(text, &rows, 200);
        Err(classify(status, header_code, &answer, &self.describe(), &request_id, &quote).with_retry_after(retry_after))
    }
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: Option<ErrorDetail>,
}

#[derive(serde::Deserialize)]
struct ErrorDetail {
    code: Option<String>,
    message: Option<String>,
}

/// Maps an ingestion error answer to a delivery error, the server's words passed through `quote`.
/// Pure.
pub fn classify(status: u16, header_code: Option<String>, body: &[u8], endpoint: &str, request_id: &str, quote: &dyn Fn(&str) -> String) -> DeliveryError {
    let detail = serde_json::from_slice::<ErrorBody>(body).ok().and_then(|b| b.error);
    let code = header_code.or_else(|| detail.as_ref().and_then(|d| d.code.clone())).map(|c| quote(&c)).unwrap_or_default();
    let message = detail.and_then(|d| d.message).map(|m| quote(super::first_line(&m))).unwrap_or_default();
    let what = format!(
        "{endpoint}: HTTP {status}{}{}{} (x-ms-client-request-id {request_id})",
        if code.is_empty() { "" } else { " " },
        code,
        if message.is_empty() { String::new() } else { format!(": {message}") }
    );
    match status {
        413 => DeliveryError::too_large(what),
        300..=399 => DeliveryError::permanent(format!("{what}: {}", redirect_not_followed("AUDITSTREAM_AZURE_MONITOR_ENDPOINT"))),
        408 | 429 | 500..=599 => DeliveryError::transient(what),
        401 => DeliveryError::permanent(format!("{what}: refused a freshly issued token too: do AZURE_TENANT_ID and the endpoint belong to the same cloud and tenant?")),
        403 => DeliveryError::permanent(format!(
            "{what}: the app (AZURE_CLIENT_ID) needs the Monitoring Metrics Publisher role on this data collection rule; a new role assignment can take up to 30 minutes to apply"
        )),
        404 => DeliveryError::permanent(format!("{what}: check AUDITSTREAM_AZURE_MONITOR_ENDPOINT, AUDITSTREAM_AZURE_MONITOR_DCR_ID (the immutable id) and AUDITSTREAM_AZURE_MONITOR_STREAM")),
        _ => DeliveryError::permanent(what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::retry::FailureKind;

    fn as_is(text: &str) -> String {
        text.to_owned()
    }

    #[test]
    fn settings_build_the_ingestion_url() {
        let env = [
            ("AUDITSTREAM_AZURE_MONITOR_ENDPOINT", "https://my-dce-5kyl.eastus-1.ingest.monitor.azure.com/"),
            ("AUDITSTREAM_AZURE_MONITOR_DCR_ID", "dcr-000a00a000a00000a000000aa000a0aa"),
            ("AUDITSTREAM_AZURE_MONITOR_STREAM", "Custom-AuditStream_CL"),
        ];
        let s = MonitorSettings::from_env(&env[..]).unwrap();
        assert_eq!(
            s.ingestion_url().as_str(),
            "https://my-dce-5kyl.eastus-1.ingest.monitor.azure.com/dataCollectionRules/dcr-000a00a000a00000a000000aa000a0aa/streams/Custom-AuditStream_CL?api-version=2023-01-01"
        );
    }

    #[test]
    fn bad_settings_name_the_variable() {
        let e = ("AUDITSTREAM_AZURE_MONITOR_ENDPOINT", "https://x.ingest.monitor.azure.com");
        let d = ("AUDITSTREAM_AZURE_MONITOR_DCR_ID", "dcr-0a");
        let s = ("AUDITSTREAM_AZURE_MONITOR_STREAM", "Custom-T_CL");
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![d, s], "AUDITSTREAM_AZURE_MONITOR_ENDPOINT is not set"),
            (
                vec![("AUDITSTREAM_AZURE_MONITOR_ENDPOINT", "http://x.ingest.monitor.azure.com"), d, s],
                "AUDITSTREAM_AZURE_MONITOR_ENDPOINT=\"http://x.ingest.monitor.azure.com\" is not valid",
            ),
            (
                vec![e, ("AUDITSTREAM_AZURE_MONITOR_DCR_ID", "my-dcr"), s],
                "AUDITSTREAM_AZURE_MONITOR_DCR_ID=\"my-dcr\" is not valid: expected the DCR's immutable id",
            ),
            (vec![e, d, ("AUDITSTREAM_AZURE_MONITOR_STREAM", "AuditStream_CL")], "AUDITSTREAM_AZURE_MONITOR_STREAM=\"AuditStream_CL\" is not valid"),
            (vec![e, d], "AUDITSTREAM_AZURE_MONITOR_STREAM is not set"),
        ];
        for (pairs, want) in cases {
            let err = MonitorSettings::from_env(&pairs[..]).unwrap_err().to_string();
            assert!(err.starts_with(want), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn answers_map_as_the_contract_says() {
        use FailureKind::*;
        for (status, want) in [
            (413, TooLarge),
            (429, Transient),
            (500, Transient),
            (503, Transient),
            (408, Transient),
            (400, Permanent),
            (401, Permanent),
            (403, Permanent),
            (404, Permanent),
        ] {
            assert_eq!(classify(status, None, b"", "https://x", "id", &as_is).kind, want, "{status}");
        }
        let e = classify(403, None, br#"{"error":{"code":"OperationFailed","message":"The authentication token provided does not have access to ingest data for the data collection rule with immutable Id 'dcr-1'.\nmore"}}"#, "https://x/dataCollectionRules/dcr-1/streams/Custom-T_CL", "rid", &as_is);
        assert_eq!(
            e.message,
            "https://x/dataCollectionRules/dcr-1/streams/Custom-T_CL: HTTP 403 OperationFailed: The authentication token provided does not have access to ingest data for the data collection rule with immutable Id 'dcr-1'. (x-ms-client-request-id rid): the app (AZURE_CLIENT_ID) needs the Monitoring Metrics Publisher role on this data collection rule; a new role assignment can take up to 30 minutes to apply"
        );
        assert_eq!(
            classify(413, Some("ContentLengthLimitExceeded".into()), b"", "https://x", "r", &as_is).message,
            "https://x: HTTP 413 ContentLengthLimitExceeded (x-ms-client-request-id r)"
        );
    }

    #[test]
    fn request_ids_are_guids_and_gzip_round_trips() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert_ne!(id, request_id());
        let data = br#"[{"TimeGenerated":"2024-01-01T00:00:00Z"}]"#.repeat(100);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&crate::delivery::transport::gzip(&data)[..]), &mut out).unwrap();
        assert_eq!(out, data);
    }
}
