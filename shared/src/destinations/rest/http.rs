//! The HTTP [`LogSink`]: one POST per batch, for every preset.
//!
//! A request is built from the preset's encoder, checked against the endpoint's size limit
//! *before* it is sent (an over-full batch is split by the batcher instead of being refused by
//! the vendor, or worse, truncated), optionally gzipped, and sent with the auth, preset, extra and
//! event-id headers. The answer is classified for the shared retry policy:
//!
//! | answer | class |
//! |---|---|
//! | 2xx | delivered |
//! | 408, 429, 5xx, connection errors, timeouts | transient, with `Retry-After` (seconds or HTTP date) |
//! | 413 | too large: the batch is split; one event alone fails permanently |
//! | Splunk HEC 400 with `invalid-event-number` K | events 0..K delivered, event K fails alone (permanent), the ones after it are sent again ([`super::splunk_hec::refused_event`]) |
//! | 3xx | permanent: redirects are not followed, so a token is never sent on to another host |
//! | other 4xx (400, 401, 403, 404, …) | permanent |
//!
//! Errors name the endpoint (without credentials, see [`super::endpoint`]), the status and the
//! vendor's error text: its documented error fields when the answer has them (Splunk HEC's
//! `text`/`code`, Datadog's `errors`), else the start of the answer — quoted through the sink's one
//! [`Redactor`], so that neither a credential (the token, `base64(user:token)`, a configured header
//! value, a URL's password or query) nor any bytes of the request (the events) are repeated should
//! the server echo them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use reqwest::StatusCode;

use super::endpoint::Endpoint;
use super::headers::event_ids_header;
use super::{RestPreset, RestSettings, MAX_BYTES_VAR};
use crate::config::{ConfigError, PipelineSettings};
use crate::delivery::destination::{LogSink, SinkLimits};
use crate::delivery::health::{HealthReport, Step, Verdict};
use crate::delivery::log_batching::LogSinkDestination;
use crate::delivery::retry::parse_retry_after;
use crate::delivery::retry::DeliveryError;
use crate::delivery::transport::{error_chain, gzip, http_client, redirect_not_followed, transport_failure, ClientOptions};
use crate::destinations::Setup;
use crate::pipeline::Document;
use crate::redact::Redactor;
use crate::secret::{Secret, SecretError};

/// Vendor error text longer than this is cut.
const MAX_VENDOR_TEXT: usize = 300;
/// Response bytes read at most (to reuse the connection); the rest is dropped with it.
const MAX_RESPONSE_READ: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SinkBuildError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("cannot build the HTTP client for {endpoint}: {reason}")]
    Client { endpoint: String, reason: String },
}

pub struct HttpLogSink {
    client: reqwest::Client,
    endpoint: Endpoint,
    preset: Arc<dyn RestPreset>,
    /// Auth, preset, extra headers and the content type: the same on every request.
    headers: HeaderMap,
    gzip: bool,
    max_request_bytes: usize,
    limits: SinkLimits,
    /// Every credential the requests carry, to remove from anything a server says back.
    redactor: Redactor,
    /// The authentication header alone, for a health check's pre-check to the vendor's own host.
    auth_header: Option<(HeaderName, HeaderValue)>,
}

impl HttpLogSink {
    /// Reads the token (from Secrets Manager with `aws` when configured so: once, here) and
    /// builds the sink. The Lambda functions' way.
    pub async fn from_settings_with(settings: RestSettings, aws: &aws_config::SdkConfig) -> Result<HttpLogSink, SinkBuildError> {
        let token = settings.token.resolve_with(aws).await?;
        HttpLogSink::new(settings, token)
    }

    /// The rest-forwarder's destination (and `--to rest`), from `AUDITSTREAM_REST_*` and its
    /// preset's variables, the log template applied as the preset says.
    pub async fn from_env(
        env: &(impl crate::config::Env + ?Sized),
        settings: &PipelineSettings,
        aws: Option<&aws_config::SdkConfig>,
    ) -> Result<Setup<LogSinkDestination<HttpLogSink>>, SinkBuildError> {
        HttpLogSink::setup(RestSettings::from_env(env, settings.pipeline.template.as_ref())?, settings, aws).await
    }

    /// From settings made elsewhere (`--to https://…`); the token is read with `aws`, or with the
    /// standard AWS configuration, loaded only if a secret must be read.
    pub async fn setup(
        rest: RestSettings,
        settings: &PipelineSettings,
        aws: Option<&aws_config::SdkConfig>,
    ) -> Result<Setup<LogSinkDestination<HttpLogSink>>, SinkBuildError> {
        let sink = match aws {
            Some(aws) => HttpLogSink::from_settings_with(rest, aws).await?,
            None => HttpLogSink::from_settings(rest).await?,
        };
        Ok(Setup::log_sink(settings, sink))
    }

    /// [`Self::from_settings_with`], loading the AWS configuration only if a secret must be read.
    pub async fn from_settings(settings: RestSettings) -> Result<HttpLogSink, SinkBuildError> {
        let token = settings.token.resolve().await?;
        HttpLogSink::new(settings, token)
    }

    pub fn new(settings: RestSettings, token: Option<Secret>) -> Result<HttpLogSink, SinkBuildError> {
        let endpoint = settings.request_endpoint(token.as_ref());
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, HeaderValue::from_static(concat!("auditstream/", env!("CARGO_PKG_VERSION"))));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(settings.preset.content_type()));
        if settings.gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        if let Some(preset_headers) = settings.preset.headers() {
            headers.extend(preset_headers.clone());
        }
        headers.extend(settings.extra_headers.clone());
        let auth_header = settings.auth.header(token.as_ref())?;
        if let Some((name, value)) = &auth_header {
            headers.insert(name.clone(), value.clone());
        }
        let redactor = request_credentials(&settings, token.as_ref(), &headers, &endpoint);
        let options = ClientOptions {
            timeout: Some(settings.timeout),
            connect_timeout: Duration::from_secs(5).min(settings.timeout),
            https_only: !endpoint.is_plain_http(),
        };
        let client = http_client(options).map_err(|e| SinkBuildError::Client { endpoint: endpoint.to_string(), reason: error_chain(&e.without_url()) })?;
        Ok(HttpLogSink {
            client,
            limits: settings.limits(),
            max_request_bytes: settings.max_request_bytes,
            gzip: settings.gzip,
            preset: settings.preset,
            endpoint,
            headers,
            redactor,
            auth_header,
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The body of a request holding `docs`, uncompressed.
    pub fn encode(&self, docs: &[&Document]) -> Vec<u8> {
        let docs_bytes: usize = docs.iter().map(|d| d.body.len()).sum();
        let mut body = Vec::with_capacity(docs_bytes + docs_bytes / 8 + 256 * docs.len());
        self.preset.encode(docs, &mut body);
        body
    }

    /// What the server answered to the request holding `docs`, fit for an error message: the
    /// preset's documented error fields if the answer has them, else the answer; quoted through
    /// the [`Redactor`] against the request body (encoded again: only a failure pays for it).
    fn quote_reply(&self, reply: &str, docs: &[&Document]) -> String {
        let body = self.encode(docs);
        let quote = |text: &str| self.redactor.quote(text, &body, MAX_VENDOR_TEXT);
        self.preset.error_answer(reply, &quote).unwrap_or_else(|| quote(reply))
    }

    /// The body of the request holding `docs`, within the endpoint's size limit, gzipped when so
    /// configured. `one` is the request's one document, shared: when the preset's body is that
    /// document as it is, its own bytes are the body, not a copy of them.
    fn request_body(&self, docs: &[&Document], one: Option<&Arc<Document>>) -> Result<Bytes, DeliveryError> {
        let body = match one {
            Some(doc) if self.preset.one_document_is_the_body() => Bytes::from_owner(DocumentBody(Arc::clone(doc))),
            _ => Bytes::from(self.encode(docs)),
        };
        if body.len() > self.max_request_bytes {
            return Err(self.too_large("request body", body.len()));
        }
        if !self.gzip {
            return Ok(body);
        }
        let packed = gzip(&body);
        if packed.len() > self.max_request_bytes {
            return Err(self.too_large("gzipped request body", packed.len()));
        }
        Ok(Bytes::from(packed))
    }

    /// One POST of `body`, the request holding `docs`, and what became of it.
    async fn post(&self, docs: &[&Document], body: Bytes) -> Result<(), DeliveryError> {
        let sent_bytes = body.len();
        let (ids_name, ids_value) = event_ids_header(docs);
        // Built as a whole rather than through a `RequestBuilder`, which would insert the headers
        // one by one into an empty map: the map is cloned once, the ids header added to it.
        let mut request = reqwest::Request::new(reqwest::Method::POST, self.endpoint.url().clone());
        *request.headers_mut() = self.headers.clone();
        request.headers_mut().insert(ids_name, ids_value);
        *request.body_mut() = Some(body.into());
        let response = match self.client.execute(request).await {
            Ok(r) => r,
            Err(e) => {
                let err = DeliveryError::unanswered(format!("POST {}: {}", self.endpoint, transport_failure(&e)));
                tracing::warn!(endpoint = %self.endpoint, events = docs.len(), "request failed: {err}");
                return Err(err);
            }
        };
        let status = response.status();
        let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        // Read (up to a limit) even when it is not needed, so that the connection can be reused.
        let text = read_some(response).await;
        if status.is_success() {
            return Ok(());
        }
        let vendor = self.quote_reply(&text, docs);
        let outcome = classify(&self.endpoint.to_string(), status, retry_after.as_deref(), &vendor, sent_bytes)
            .map_err(|err| self.preset.partly_accepted(err, status.as_u16(), &text, docs.len()));
        if let Err(err) = &outcome {
            tracing::warn!(endpoint = %self.endpoint, status = status.as_u16(), events = docs.len(), "request not accepted: {err}");
        }
        outcome
    }

    fn too_large(&self, what: &str, size: usize) -> DeliveryError {
        DeliveryError::too_large(format!(
            "POST {}: {what} of {size} bytes is over the endpoint's limit of {} bytes ({MAX_BYTES_VAR})",
            self.endpoint, self.max_request_bytes
        ))
    }
}

#[async_trait]
impl LogSink for HttpLogSink {
    fn describe(&self) -> String {
        self.endpoint.to_string()
    }

    fn limits(&self) -> SinkLimits {
        self.limits
    }

    async fn send(&self, docs: &[&Document]) -> Result<(), DeliveryError> {
        let body = self.request_body(docs, None)?;
        self.post(docs, body).await
    }

    /// [`LogSink::send`], a one-document request's body being the document's own bytes when
    /// the preset sends it as it is ([`HttpLogSink::request_body`]).
    async fn send_shared(&self, docs: &[Arc<Document>]) -> Result<(), DeliveryError> {
        let refs: Vec<&Document> = docs.iter().map(|d| d.as_ref()).collect();
        let one = match docs {
            [doc] => Some(doc),
            _ => None,
        };
        let body = self.request_body(&refs, one)?;
        self.post(&refs, body).await
    }

    /// The preset's pre-check, if it has one ([`RestPreset::pre_check`]): one `GET`, carrying the
    /// authentication header only when the preset says so and no other configured header. No
    /// answer fails the reachability step; an answer passes it, and the preset reads the rest.
    async fn check_access(&self, report: &mut HealthReport) {
        let Some(pre) = self.preset.pre_check(&self.endpoint) else { return };
        let mut request = self.client.get(pre.url.url().clone());
        if let (true, Some((name, value))) = (pre.authenticated, &self.auth_header) {
            request = request.header(name, value);
        }
        let started = Instant::now();
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                let why = format!("GET {} ({}): {} (check AUDITSTREAM_REST_URL, DNS, TLS and the network path)", pre.url, pre.name, transport_failure(&e));
                report.record(Step::Reachability, Verdict::Failed, why, started.elapsed());
                return;
            }
        };
        let status = response.status().as_u16();
        let reply = read_some(response).await;
        let elapsed = started.elapsed();
        if pre.step != Step::Reachability {
            report.record(Step::Reachability, Verdict::Passed, format!("{} answers", pre.url), elapsed);
        }
        let quote = |text: &str| self.redactor.quote(text, b"", MAX_VENDOR_TEXT);
        match self.preset.read_pre_check(status, &reply, &quote) {
            Ok(detail) => report.record(pre.step, Verdict::Passed, format!("GET {} ({}): {detail}", pre.url, pre.name), elapsed),
            Err(detail) => report.record(pre.step, Verdict::Failed, format!("GET {} ({}): {detail}", pre.url, pre.name), elapsed),
        }
    }
}

/// A shared document's bytes as a request body: the HTTP client may hold a body after the request's
/// future is gone (an attempt abandoned at the deadline), so the body owns what it points into.
struct DocumentBody(Arc<Document>);

impl AsRef<[u8]> for DocumentBody {
    fn as_ref(&self) -> &[u8] {
        &self.0.body
    }
}

/// Every credential the sink's requests carry: the token, each sensitive header's value (the
/// auth header, `AUDITSTREAM_REST_HEADERS`), `base64(user:token)` of Basic auth, and what the URL
/// holds (password, query, a Sumo Logic code).
fn request_credentials(settings: &RestSettings, token: Option<&Secret>, headers: &HeaderMap, endpoint: &Endpoint) -> Redactor {
    let mut redactor = Redactor::new();
    if let Some(token) = token {
        redactor.add_secret(token.expose());
        if let super::auth::AuthScheme::Basic { username } = &settings.auth {
            redactor.add_basic_credentials(username, token.expose());
        }
    }
    for value in headers.values().filter(|v| v.is_sensitive()) {
        redactor.add_header_value(value);
    }
    redactor.add_url(endpoint.url(), endpoint.secret_path_from());
    redactor
}

/// What became of a request, from the status, `Retry-After` and the vendor's error text (already
/// quoted, see [`HttpLogSink::quote_reply`]).
pub fn classify(endpoint: &str, status: StatusCode, retry_after: Option<&str>, vendor: &str, sent_bytes: usize) -> Result<(), DeliveryError> {
    if status.is_success() {
        return Ok(());
    }
    let reason = status.canonical_reason().map(|r| format!(" {r}")).unwrap_or_default();
    let vendor = if vendor.is_empty() { String::new() } else { format!(": {vendor}") };
    let base = format!("POST {endpoint}: HTTP {}{reason}{vendor}", status.as_u16());
    let code = status.as_u16();
    Err(match code {
        408 | 429 | 500..=599 => DeliveryError::transient(base).with_retry_after(retry_after.and_then(parse_retry_after)),
        413 => DeliveryError::too_large(format!("{base} (request body {sent_bytes} bytes)")),
        300..=399 => DeliveryError::permanent(format!("{base}; {}", redirect_not_followed("AUDITSTREAM_REST_URL"))),
        401 | 403 => DeliveryError::permanent(format!(
            "{base}; check the token (AUDITSTREAM_REST_TOKEN_SECRET_ARN, or AUDITSTREAM_REST_TOKEN locally) and AUDITSTREAM_REST_AUTH"
        )),
        404 | 405 => DeliveryError::permanent(format!("{base}; check AUDITSTREAM_REST_URL")),
        _ => DeliveryError::permanent(base),
    })
}

/// Reads the start of a response body (enough for an error text) and drains a little more so
/// the connection can be reused.
async fn read_some(mut response: reqwest::Response) -> String {
    let mut kept = Vec::new();
    let mut read = 0;
    while read < MAX_RESPONSE_READ {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                read += chunk.len();
                if kept.len() < 4096 {
                    kept.extend_from_slice(&chunk[..chunk.len().min(4096 - kept.len())]);
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::retry::FailureKind;

    const EP: &str = "https://splunk.example.com:8088/services/collector/event";

    fn check(status: u16, retry_after: Option<&str>, body: &str) -> Result<(), DeliveryError> {
        let vendor = Redactor::new().with_secret("0000-TOKEN-1111").quote(body, b"", MAX_VENDOR_TEXT);
        classify(EP, StatusCode::from_u16(status).unwrap(), retry_after, &vendor, 1234)
    }

    #[test]
    fn answers_are_classified_as_the_vendors_document() {
        assert!(check(200, None, r#"{"text":"Success","code":0}"#).is_ok());
        assert!(check(202, None, "{}").is_ok());
        assert!(check(204, None, "").is_ok());
        let cases: [(u16, FailureKind); 12] = [
            (408, FailureKind::Transient),
            (429, FailureKind::Transient),
            (500, FailureKind::Transient),
            (503, FailureKind::Transient),
            (504, FailureKind::Transient),
            (413, FailureKind::TooLarge),
            (400, FailureKind::Permanent),
            (401, FailureKind::Permanent),
            (403, FailureKind::Permanent),
            (404, FailureKind::Permanent),
            (301, FailureKind::Permanent),
            (422, FailureKind::Permanent),
        ];
        for (status, kind) in cases {
            assert_eq!(check(status, None, "").unwrap_err().kind, kind, "{status}");
        }
    }

    #[test]
    fn retry_after_is_carried_in_seconds_or_as_a_date() {
        assert_eq!(check(429, Some("3"), "").unwrap_err().retry_after, Some(Duration::from_secs(3)));
        let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(10));
        let after = check(503, Some(&date), "").unwrap_err().retry_after.unwrap();
        assert!(after > Duration::from_secs(8) && after <= Duration::from_secs(10), "{after:?}");
        assert_eq!(check(503, Some("soon"), "").unwrap_err().retry_after, None);
        assert_eq!(check(400, Some("3"), "").unwrap_err().retry_after, None);
    }

    #[test]
    fn messages_name_the_endpoint_and_status_and_never_the_token() {
        let err = check(403, None, "{\"text\":\"Invalid token\",\"code\":4}").unwrap_err().to_string();
        assert_eq!(
            err,
            "POST https://splunk.example.com:8088/services/collector/event: HTTP 403 Forbidden: {\"text\":\"Invalid token\",\"code\":4}; check the token (AUDITSTREAM_REST_TOKEN_SECRET_ARN, or AUDITSTREAM_REST_TOKEN locally) and AUDITSTREAM_REST_AUTH"
        );
        let err = check(401, None, "unknown token\n  Splunk 0000-TOKEN-1111").unwrap_err().to_string();
        assert!(err.contains("HTTP 401 Unauthorized: unknown token Splunk [redacted];"), "{err}");
        assert!(!err.contains("0000-TOKEN-1111"));
        let err = check(413, None, "").unwrap_err().to_string();
        assert_eq!(err, "POST https://splunk.example.com:8088/services/collector/event: HTTP 413 Payload Too Large (request body 1234 bytes)");
        let long = "é".repeat(400);
        let err = check(400, None, &long).unwrap_err().to_string();
        assert!(err.ends_with("… (800 bytes in all)"), "{err}");
    }

    #[test]
    fn gzip_round_trips() {
        let body = br#"{"a":"b"}"#.repeat(100);
        let packed = gzip(&body);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(packed.as_slice()), &mut back).unwrap();
        assert_eq!(back, body);
        assert!(packed.len() < body.len() / 4);
    }
}

/// A careless server that answers 400 repeating everything it was sent, headers and body, and
/// what the sink makes of it: errors that quote neither.
#[cfg(test)]
mod echo_tests {
    use super::*;
    use crate::destinations::rest::test_docs::job_doc;
    use axum::http::{HeaderMap as AxumHeaders, StatusCode as AxumStatus, Uri};
    use base64::Engine;

    const TOKEN: &str = "tok-SECRET-7f3e9c2a";
    const HEADER_SECRET: &str = "hdr-SECRET-41d2";
    const QUERY_SECRET: &str = "qry-SECRET-99aa";
    const MARKER: &str = "EVENT-FIELD-MARKER-5e1b";

    /// Answers 400 with the request's headers and body in it: in HEC's `text`, in Datadog's
    /// `errors[].detail`, or as the whole answer.
    async fn echo(uri: Uri, headers: AxumHeaders, body: axum::body::Bytes) -> (AxumStatus, String) {
        let mut said = String::new();
        for (name, value) in &headers {
            said.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
        }
        said.push_str(&format!("{uri}\n{}", String::from_utf8_lossy(&body)));
        let answer = match uri.path() {
            "/services/collector/event" => serde_json::json!({"text": format!("Invalid data format: {said}"), "code": 6}).to_string(),
            "/api/v2/logs" => serde_json::json!({"errors": [{"status": "400", "title": "Bad Request", "detail": said}]}).to_string(),
            _ => format!("cannot parse what you sent:\n{said}"),
        };
        (AxumStatus::BAD_REQUEST, answer)
    }

    async fn echo_server() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("the bound address"));
        tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(echo)).await });
        base
    }

    #[tokio::test]
    async fn an_echoing_server_gets_neither_credentials_nor_events_into_the_error() {
        let base = echo_server().await;
        let generic_url = format!("{base}/in?api_key={QUERY_SECRET}");
        let headers = format!("X-Api-Key: {HEADER_SECRET}; X-Env: production");
        let presets: [Vec<(&str, &str)>; 4] = [
            vec![("AUDITSTREAM_REST_URL", &generic_url), ("AUDITSTREAM_REST_AUTH", "basic"), ("AUDITSTREAM_REST_USERNAME", "svc")],
            vec![("AUDITSTREAM_REST_URL", &generic_url), ("AUDITSTREAM_REST_AUTH", "bearer")],
            vec![("AUDITSTREAM_REST_PRESET", "splunk_hec"), ("AUDITSTREAM_REST_URL", &base)],
            vec![("AUDITSTREAM_REST_PRESET", "datadog"), ("AUDITSTREAM_REST_URL", &base)],
        ];
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("svc:{TOKEN}"));
        let body = format!(r#"{{"id":"j-echo-1","recipe_id":"7","status":"failed","lines":[{{"input":"{MARKER}"}}]}}"#);
        let doc = job_doc("j-echo-1", "2024-05-01T10:15:30Z", &body);
        for preset in presets {
            let mut env = preset.clone();
            env.extend([("AUDITSTREAM_REST_TOKEN", TOKEN), ("AUDITSTREAM_REST_HEADERS", headers.as_str())]);
            let settings = RestSettings::from_env(&env[..], None).unwrap_or_else(|e| panic!("{env:?}: {e}"));
            let token = settings.token.resolve().await.unwrap();
            let sink = HttpLogSink::new(settings, token).unwrap();

            let err = sink.send(&[&doc]).await.expect_err("the server answers 400").to_string();

            assert!(err.contains("HTTP 400 Bad Request: "), "{env:?}: {err}");
            for leak in [TOKEN, basic.as_str(), basic.trim_end_matches('='), HEADER_SECRET, QUERY_SECRET, MARKER, "j-echo-1", "production"] {
                assert!(!err.contains(leak), "{env:?}: {leak} is in the error: {err}");
            }
            // The echo did arrive, and is shown with its credentials and request data taken out.
            assert!(err.contains(crate::redact::REDACTED) && err.contains(crate::redact::REQUEST_DATA), "{env:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    /// A server that answers 200 and keeps each request's `Content-Encoding` and body (unzipped).
    async fn recording_server() -> (String, Arc<std::sync::Mutex<Vec<(Option<String>, Vec<u8>)>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("the bound address"));
        let kept = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = kept.clone();
        let app = axum::Router::new().fallback(move |headers: AxumHeaders, body: axum::body::Bytes| {
            let record = record.clone();
            async move {
                let encoding = headers.get("content-encoding").map(|v| v.to_str().unwrap_or("?").to_owned());
                let body = match encoding.as_deref() {
                    Some("gzip") => {
                        let mut out = Vec::new();
                        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out).expect("a gzip body");
                        out
                    }
                    _ => body.to_vec(),
                };
                record.lock().unwrap().push((encoding, body));
                "ok"
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, kept)
    }

    /// Delivered as the batcher sends them (each document shared, its bytes handed to the HTTP
    /// client as they are when the body is the document), every request carries exactly the body
    /// the preset encodes: one document as it is, gzipped or not, and batches in their format.
    #[tokio::test]
    async fn the_batcher_sends_each_body_as_the_preset_encodes_it() {
        let (base, kept) = recording_server().await;
        let url = format!("{base}/in");
        let docs: Vec<Document> =
            (0..5).map(|i| job_doc(&format!("j-{i}"), "2024-05-01T10:15:30Z", &format!("{{\"id\":\"j-{i}\",\n\"n\":{}}}", "7".repeat(i * 300)))).collect();
        let cases: [(&[(&str, &str)], usize); 5] = [
            (&[], 1),
            (&[("AUDITSTREAM_REST_GZIP", "true")], 1),
            (&[("AUDITSTREAM_REST_BATCH_MAX_EVENTS", "2")], 2),
            (&[("AUDITSTREAM_REST_BATCH_MAX_EVENTS", "2"), ("AUDITSTREAM_REST_BATCH_FORMAT", "ndjson")], 2),
            (&[("AUDITSTREAM_REST_BATCH_MAX_EVENTS", "5"), ("AUDITSTREAM_REST_BATCH_FORMAT", "ndjson"), ("AUDITSTREAM_REST_GZIP", "true")], 5),
        ];
        for (extra, per_request) in cases {
            let mut env = vec![("AUDITSTREAM_REST_URL", url.as_str())];
            env.extend_from_slice(extra);
            let settings = RestSettings::from_env(&env[..], None).unwrap_or_else(|e| panic!("{env:?}: {e}"));
            let sink = HttpLogSink::new(settings, None).unwrap();
            let want: Vec<Vec<u8>> = docs.chunks(per_request).map(|chunk| sink.encode(&chunk.iter().collect::<Vec<_>>())).collect();
            let gzip = extra.contains(&("AUDITSTREAM_REST_GZIP", "true"));
            kept.lock().unwrap().clear();
            let destination = LogSinkDestination::new(sink, 1, crate::delivery::retry::RetryPolicy::default());

            let outcomes = crate::delivery::destination::Destination::deliver(&destination, docs.clone(), crate::delivery::retry::Deadline::NONE).await;

            assert!(outcomes.iter().all(|o| *o == Ok(crate::delivery::destination::Delivered::Written)), "{env:?}: {outcomes:?}");
            let got = kept.lock().unwrap().clone();
            let bodies: Vec<Vec<u8>> = got.iter().map(|(_, body)| body.clone()).collect();
            assert_eq!(bodies, want, "{env:?}");
            assert!(got.iter().all(|(encoding, _)| encoding.as_deref() == gzip.then_some("gzip")), "{env:?}: {got:?}");
            if per_request == 1 && !gzip {
                // the body is the document itself
                assert_eq!(bodies, docs.iter().map(|d| d.body.clone()).collect::<Vec<_>>());
            }
        }
    }

    /// A server that answers every request 400 with `reply`.
    async fn refusing_server(reply: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("the bound address"));
        let app = axum::Router::new().fallback(move || async move { (AxumStatus::BAD_REQUEST, reply) });
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    /// A reply is read as a vendor's answer only by that vendor's preset: HEC's error members and
    /// its `invalid-event-number` (the events before it accepted) by Splunk HEC's, Datadog's
    /// `errors` by Datadog's. The same answer from any other endpoint fails the whole request and is
    /// quoted whole.
    #[tokio::test]
    async fn a_reply_is_read_as_a_vendors_answer_only_by_that_vendors_preset() {
        const HEC: &str = r#"{"text":"Invalid data format","code":6,"invalid-event-number":1,"note":"proxy-note-77"}"#;
        const DATADOG: &str = r#"{"errors":[{"status":"400","title":"Bad Request","detail":"bad item"}],"note":"proxy-note-77"}"#;
        let docs: Vec<Document> = (0..3).map(|i| job_doc(&format!("j-{i}"), "2024-05-01T10:15:30Z", &format!(r#"{{"id":"j-{i}"}}"#))).collect();
        let refs: Vec<&Document> = docs.iter().collect();
        let (hec, datadog) = (refusing_server(HEC).await, refusing_server(DATADOG).await);
        let sumo_url = |base: &str| format!("{base}/receiver/v1/http/CODE77");
        let send = |env: Vec<(&'static str, String)>| {
            let refs = refs.clone();
            async move {
                let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
                env.push(("AUDITSTREAM_REST_BATCH_MAX_EVENTS", "3"));
                let settings = RestSettings::from_env(&env[..], None).unwrap_or_else(|e| panic!("{env:?}: {e}"));
                let token = settings.token.resolve().await.unwrap();
                HttpLogSink::new(settings, token).unwrap().send(&refs).await.expect_err("the server answers 400")
            }
        };
        let splunk = |base: &str| {
            vec![
                ("AUDITSTREAM_REST_PRESET", "splunk_hec".to_owned()),
                ("AUDITSTREAM_REST_URL", base.to_owned()),
                ("AUDITSTREAM_REST_TOKEN", "hec-token-1".to_owned()),
            ]
        };
        let dd = |base: &str| {
            vec![
                ("AUDITSTREAM_REST_PRESET", "datadog".to_owned()),
                ("AUDITSTREAM_REST_URL", base.to_owned()),
                ("AUDITSTREAM_REST_TOKEN", "dd-key-1".to_owned()),
            ]
        };
        let generic = |base: &str| vec![("AUDITSTREAM_REST_URL", format!("{base}/in"))];
        let sumo = |base: &str| vec![("AUDITSTREAM_REST_PRESET", "sumo_logic".to_owned()), ("AUDITSTREAM_REST_URL", sumo_url(base))];

        let err = send(splunk(&hec)).await;
        assert_eq!(err.accepted, Some(1), "{err}");
        assert!(
            err.to_string()
                .contains(r#"HTTP 400 Bad Request: {"text":"Invalid data format","code":6,"invalid-event-number":1}; Splunk HEC refused this event alone"#),
            "{err}"
        );
        for env in [dd(&hec), generic(&hec), sumo(&hec)] {
            let err = send(env.clone()).await;
            assert_eq!(err.accepted, None, "{env:?}: {err}");
            assert!(err.to_string().ends_with(&format!("HTTP 400 Bad Request: {HEC}")), "{env:?}: {err}");
        }

        let err = send(dd(&datadog)).await;
        assert!(err.to_string().ends_with("HTTP 400 Bad Request: Bad Request: bad item (400)"), "{err}");
        for env in [splunk(&datadog), generic(&datadog), sumo(&datadog)] {
            let err = send(env.clone()).await;
            assert!(err.to_string().ends_with(&format!("HTTP 400 Bad Request: {DATADOG}")), "{env:?}: {err}");
        }
    }

    /// The same careless server behind the `rest-forwarder` handler with a dead-letter queue: the
    /// message goes to the queue, and its `auditstream-error` attribute (what the handler also
    /// logs) quotes no credential and no event; an id with a terminal escape is written escaped.
    #[tokio::test]
    async fn the_dead_letter_attributes_of_an_echoed_failure_carry_no_secret_and_no_event() {
        use crate::intake::dead_letter::{ERROR_ATTRIBUTE, ORIGINAL_MESSAGE_ID_ATTRIBUTE};
        use crate::intake::settle::tests::MemoryDeadLetters;

        let base = echo_server().await;
        let url = format!("{base}/in?api_key={QUERY_SECRET}");
        let headers = format!("X-Api-Key: {HEADER_SECRET}");
        let env = [
            ("AUDITSTREAM_REST_URL", url.as_str()),
            ("AUDITSTREAM_REST_AUTH", "basic"),
            ("AUDITSTREAM_REST_USERNAME", "svc"),
            ("AUDITSTREAM_REST_TOKEN", TOKEN),
            ("AUDITSTREAM_REST_HEADERS", headers.as_str()),
        ];
        let settings = RestSettings::from_env(&env[..], None).unwrap();
        let token = settings.token.resolve().await.unwrap();
        let sink = HttpLogSink::new(settings, token).unwrap();
        let dlq = MemoryDeadLetters::default();
        let sent = dlq.sent.clone();
        let destination = crate::delivery::log_batching::LogSinkDestination::new(sink, 4, crate::delivery::retry::RetryPolicy::default());
        let function = crate::intake::lambda::SqsFunction::new("rest-forwarder", crate::pipeline::Pipeline::default(), destination).with_dead_letter_queue(dlq);
        let body = format!(
            r#"{{"id":"j-echo-2","recipe_id":7,"status":"failed","completed_at":"2026-11-25T10:00:05Z","context":{{"user_id":4411}},"lines":[{{"input":{{"q":"{MARKER}"}}}}]}}"#
        );
        let id = "m-1\x1b[2J\nfailed fake";
        let records = serde_json::json!({"Records": [{"messageId": id, "receiptHandle": "rh", "body": body, "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"}, "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:audit", "awsRegion": "us-east-1"}]});
        let mut context = lambda_runtime::Context::default();
        context.deadline = (std::time::SystemTime::now() + Duration::from_secs(60)).duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let event = lambda_runtime::LambdaEvent::new(serde_json::from_value(records).unwrap(), context);

        let response = function.handle(event).await.unwrap();

        assert!(response.batch_item_failures.is_empty(), "dead-lettered, so acknowledged: {response:?}");
        let sent = sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        let attribute = |name: &str| sent[0].message.attributes[name].as_text().unwrap().to_owned();
        let error = attribute(ERROR_ATTRIBUTE);
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("svc:{TOKEN}"));
        for leak in [TOKEN, basic.as_str(), HEADER_SECRET, QUERY_SECRET, MARKER] {
            assert!(!error.contains(leak), "{leak} is in the dead letter's reason: {error}");
        }
        assert!(error.contains("HTTP 400 Bad Request") && error.contains("Basic [redacted]"), "{error}");
        assert_eq!(attribute(ORIGINAL_MESSAGE_ID_ATTRIBUTE), "m-1\\u{1b}[2J\\nfailed fake");
    }
}
