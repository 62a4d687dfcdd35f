//! A strict local fake of Microsoft Entra ID's token endpoint and the Azure Monitor Logs Ingestion
//! API, for the Azure Monitor tests. It answers as the contract (`docs/destinations.md` and
//! <https://learn.microsoft.com/azure/azure-monitor/logs/logs-ingestion-api-overview>) says
//! and refuses anything else, so a wrong request fails the test that made it:
//!
//! - `POST /{tenant}/oauth2/v2.0/token`: form-encoded, exactly `client_id`, `client_secret`,
//!   `grant_type=client_credentials` and `scope=https://monitor.azure.com/.default`; answers
//!   `{"token_type":"Bearer","expires_in":…,"access_token":…}` or Entra's error JSON (`AADSTS…`).
//! - `POST /dataCollectionRules/{dcr}/streams/{stream}?api-version=2023-01-01`: a current bearer
//!   token (401 otherwise), `Content-Type: application/json`, `Content-Encoding: gzip`, the DCR and
//!   stream configured (404 otherwise), at most [`MonitorFake::max_call_bytes`] compressed and
//!   uncompressed (413 otherwise), a JSON array of objects each with a string `TimeGenerated` in
//!   ISO-8601; `204` when all holds.
//!
//! Controls: [`MonitorFake::expire_tokens`] makes every token issued so far answer 401;
//! [`MonitorFake::throttle_next`] answers the next requests 429 with `Retry-After`. Every refusal
//! that a correct client would never cause is recorded in [`MonitorFake::violations`].
//!
//! The server runs on its own thread and runtime on 127.0.0.1:0, and stops when dropped.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use crate::fake_server::{FakeServer, FakeState};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

pub const SCOPE: &str = "https://monitor.azure.com/.default";
pub const API_VERSION: &str = "2023-01-01";

/// Who may get tokens and where rows may go.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub dcr_id: String,
    pub stream: String,
    /// `expires_in` of issued tokens.
    pub token_lifetime_secs: u64,
    /// Largest request body, compressed and uncompressed (Azure: 1 MB).
    pub max_call_bytes: usize,
    /// Keep accepted rows for [`MonitorFake::rows`]; off for benchmarks, which only count them.
    pub keep_rows: bool,
}

impl FakeConfig {
    /// The environment a forwarder needs to use a fake with this configuration serving at `url`
    /// (`AZURE_*` and `AUDITSTREAM_AZURE_MONITOR_*`); also for a fake in another process.
    pub fn env_for(&self, url: &str) -> Vec<(String, String)> {
        [
            ("AZURE_TENANT_ID", self.tenant_id.as_str()),
            ("AZURE_CLIENT_ID", self.client_id.as_str()),
            ("AZURE_CLIENT_SECRET", self.client_secret.as_str()),
            ("AZURE_AUTHORITY_HOST", url),
            ("AUDITSTREAM_AZURE_MONITOR_ENDPOINT", url),
            ("AUDITSTREAM_AZURE_MONITOR_DCR_ID", self.dcr_id.as_str()),
            ("AUDITSTREAM_AZURE_MONITOR_STREAM", self.stream.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
            client_id: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into(),
            client_secret: "Xy7~fake.client-secret_0123456789abcdef".into(),
            dcr_id: "dcr-000a00a000a00000a000000aa000a0aa".into(),
            stream: "Custom-AuditStream_CL".into(),
            token_lifetime_secs: 3599,
            max_call_bytes: 1_048_576,
            keep_rows: true,
        }
    }
}

/// One ingestion request as the fake saw it.
#[derive(Debug, Clone)]
pub struct IngestRecord {
    pub at: Instant,
    pub status: u16,
    pub compressed_bytes: usize,
    pub rows: usize,
    pub client_request_id: Option<String>,
}

#[derive(Default)]
struct Inner {
    token_requests: usize,
    /// Issued tokens and whether each is still accepted.
    tokens: Vec<(String, bool)>,
    rows: Vec<serde_json::Value>,
    accepted_rows: usize,
    requests: Vec<IngestRecord>,
    /// Retry-After seconds for the next requests to throttle.
    throttle: VecDeque<u64>,
    violations: Vec<String>,
    /// Accept no token at all (every ingestion call answers 401).
    reject_all_tokens: bool,
}

type Shared = FakeState<FakeConfig, Inner>;

/// The running fake.
pub struct MonitorFake {
    server: FakeServer,
    shared: Arc<Shared>,
}

impl MonitorFake {
    pub fn start(config: FakeConfig) -> MonitorFake {
        let shared = Arc::new(Shared::new(config));
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route("/dataCollectionRules/{dcr}/streams/{stream}", post(ingest))
            .fallback(unknown)
            // Sizes are checked in the handler, to answer 413 as Azure does.
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone());
        let server = FakeServer::start("azure-monitor-fake", app);
        MonitorFake { server, shared }
    }

    /// `http://127.0.0.1:PORT`: both the authority host and the ingestion endpoint.
    pub fn url(&self) -> String {
        self.server.base_url()
    }

    pub fn config(&self) -> &FakeConfig {
        &self.shared.config
    }

    /// The environment a forwarder needs to use this fake (`AZURE_*` and `AUDITSTREAM_AZURE_MONITOR_*`).
    pub fn env(&self) -> Vec<(String, String)> {
        self.shared.config.env_for(&self.url())
    }

    /// Every token issued so far answers 401 from now on (as if expired or revoked early).
    pub fn expire_tokens(&self) {
        for (_, valid) in self.shared.lock().tokens.iter_mut() {
            *valid = false;
        }
    }

    /// Refuse every token, new ones included.
    pub fn reject_all_tokens(&self) {
        self.shared.lock().reject_all_tokens = true;
    }

    /// The next `count` ingestion requests answer 429 with `Retry-After: retry_after_secs`.
    pub fn throttle_next(&self, count: usize, retry_after_secs: u64) {
        self.shared.lock().throttle.extend(std::iter::repeat_n(retry_after_secs, count));
    }

    pub fn token_requests(&self) -> usize {
        self.shared.lock().token_requests
    }

    /// Rows accepted so far, in arrival order.
    pub fn rows(&self) -> Vec<serde_json::Value> {
        self.shared.lock().rows.clone()
    }

    /// How many rows were accepted (kept or not).
    pub fn accepted_rows(&self) -> usize {
        self.shared.lock().accepted_rows
    }

    pub fn requests(&self) -> Vec<IngestRecord> {
        self.shared.lock().requests.clone()
    }

    /// Requests a correct client would never make, with what was wrong.
    pub fn violations(&self) -> Vec<String> {
        self.shared.lock().violations.clone()
    }
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

/// Entra's error answer.
fn entra_error(status: StatusCode, error: &str, code: u64, description: &str) -> Response {
    json(
        status,
        serde_json::json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description}\r\nTrace ID: 0000\r\nCorrelation ID: 1111\r\nTimestamp: 2026-11-25 21:00:00Z"),
            "error_codes": [code],
            "timestamp": "2026-11-25 21:00:00Z",
            "trace_id": "0000",
            "correlation_id": "1111",
        }),
    )
}

/// Azure's ingestion error answer (`x-ms-error-code` and the JSON body).
fn ingest_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = json(status, serde_json::json!({"error": {"code": code, "message": message}}));
    if let Ok(v) = code.parse() {
        response.headers_mut().insert("x-ms-error-code", v);
    }
    response
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

async fn token(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    shared.lock().token_requests += 1;
    let c = &shared.config;
    let violation = |what: String| shared.lock().violations.push(format!("token request: {what}"));
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        violation(format!("Content-Type {content_type:?}"));
        return entra_error(StatusCode::BAD_REQUEST, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.");
    }
    let mut form: HashMap<String, String> = HashMap::new();
    for pair in String::from_utf8_lossy(&body).split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(k), Some(v)) = (percent_decode(k), percent_decode(v)) else {
            violation("a form field is not percent-encoded correctly".into());
            return entra_error(StatusCode::BAD_REQUEST, "invalid_request", 900144, "Malformed form body.");
        };
        if form.insert(k.clone(), v).is_some() {
            violation(format!("field {k} sent twice"));
        }
    }
    let extra: Vec<&String> = form.keys().filter(|k| !["client_id", "client_secret", "grant_type", "scope"].contains(&k.as_str())).collect();
    if !extra.is_empty() {
        violation(format!("unexpected form fields {extra:?}"));
        return entra_error(StatusCode::BAD_REQUEST, "invalid_request", 900144, "Unexpected parameters.");
    }
    if tenant != c.tenant_id {
        violation(format!("tenant {tenant}"));
        return entra_error(StatusCode::BAD_REQUEST, "invalid_request", 90002, &format!("Tenant '{tenant}' not found."));
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        violation(format!("grant_type {:?}", form.get("grant_type")));
        return entra_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.");
    }
    if form.get("scope").map(String::as_str) != Some(SCOPE) {
        violation(format!("scope {:?}", form.get("scope")));
        return entra_error(StatusCode::BAD_REQUEST, "invalid_scope", 70011, "The provided request must include a 'scope' input parameter.");
    }
    if form.get("client_id") != Some(&c.client_id) {
        return entra_error(StatusCode::BAD_REQUEST, "unauthorized_client", 700016, "Application with identifier was not found in the directory.");
    }
    if form.get("client_secret") != Some(&c.client_secret) {
        // a wrong secret is a configuration the tests make on purpose, not a protocol violation
        return entra_error(StatusCode::UNAUTHORIZED, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app.");
    }
    let mut inner = shared.lock();
    let token = format!("fake-token-{}-{}", inner.tokens.len() + 1, rand_suffix());
    inner.tokens.push((token.clone(), true));
    json(
        StatusCode::OK,
        serde_json::json!({"token_type": "Bearer", "expires_in": c.token_lifetime_secs, "ext_expires_in": c.token_lifetime_secs, "access_token": token}),
    )
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos() as u64).unwrap_or(0)
}

async fn ingest(
    State(shared): State<Arc<Shared>>,
    Path((dcr, stream)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let client_request_id = headers.get("x-ms-client-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (status, rows, response) = check_ingest(&shared, &dcr, &stream, query.as_deref(), &headers, &body);
    let mut inner = shared.lock();
    inner.requests.push(IngestRecord { at: started, status: status.as_u16(), compressed_bytes: body.len(), rows: rows.len(), client_request_id });
    if status == StatusCode::NO_CONTENT {
        inner.accepted_rows += rows.len();
        if shared.config.keep_rows {
            inner.rows.extend(rows);
        }
    }
    response
}

/// Checks one ingestion request; returns the status, the rows (when accepted) and the answer.
fn check_ingest(
    shared: &Shared,
    dcr: &str,
    stream: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, Vec<serde_json::Value>, Response) {
    let c = &shared.config;
    let refuse = |status: StatusCode, code: &str, message: String, violation: bool| {
        if violation {
            shared.lock().violations.push(format!("ingestion request: {message}"));
        }
        (status, Vec::new(), ingest_error(status, code, &message))
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();

    // Authorization first, as the service does.
    let auth = header("authorization");
    let Some(token) = auth.strip_prefix("Bearer ") else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            format!("missing bearer token (Authorization {:?})", auth.split(' ').next().unwrap_or("")),
            true,
        );
    };
    let state = {
        let inner = shared.lock();
        match inner.tokens.iter().find(|(t, _)| t == token) {
            None => "unknown",
            Some((_, false)) => "expired",
            Some(_) if inner.reject_all_tokens => "rejected",
            Some(_) => "valid",
        }
    };
    match state {
        "unknown" => return refuse(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "the access token is not one this authority issued".into(), true),
        "expired" => return refuse(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "The access token is expired.".into(), false),
        "rejected" => return refuse(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "The access token is invalid.".into(), false),
        _ => {}
    }
    let version = query.unwrap_or("").split('&').find_map(|p| p.strip_prefix("api-version="));
    if version != Some(API_VERSION) {
        return refuse(StatusCode::BAD_REQUEST, "InvalidApiVersion", format!("api-version {version:?} (query {query:?})"), true);
    }
    if dcr != c.dcr_id {
        return refuse(StatusCode::NOT_FOUND, "NotFound", format!("data collection rule {dcr} not found"), true);
    }
    if stream != c.stream {
        return refuse(StatusCode::BAD_REQUEST, "InvalidStream", format!("stream {stream} is not declared in the rule"), true);
    }
    if !header("content-type").starts_with("application/json") {
        return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", format!("Content-Type {:?}", header("content-type")), true);
    }
    if header("content-encoding") != "gzip" {
        return refuse(StatusCode::BAD_REQUEST, "InvalidContentEncoding", format!("Content-Encoding {:?}, expected gzip", header("content-encoding")), true);
    }
    let request_id = header("x-ms-client-request-id");
    if request_id.len() != 36 || request_id.split('-').map(str::len).collect::<Vec<_>>() != [8, 4, 4, 4, 12] {
        shared.lock().violations.push(format!("ingestion request: x-ms-client-request-id {request_id:?} is not a GUID"));
    }
    if body.len() > c.max_call_bytes {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "ContentLengthLimitExceeded",
            format!("The request body is {} bytes compressed; maximum is {} bytes.", body.len(), c.max_call_bytes),
            false,
        );
    }
    let mut json_bytes = Vec::new();
    // One byte more than allowed is enough to know it is too large.
    let read = flate2::read::GzDecoder::new(body).take(c.max_call_bytes as u64 + 1).read_to_end(&mut json_bytes);
    if read.is_err() {
        return refuse(StatusCode::BAD_REQUEST, "InvalidContentEncoding", "the body is not valid gzip".into(), true);
    }
    if json_bytes.len() > c.max_call_bytes {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "ContentLengthLimitExceeded",
            format!("The request body is over {} bytes uncompressed.", c.max_call_bytes),
            false,
        );
    }
    let rows: Vec<serde_json::Value> = match serde_json::from_slice::<serde_json::Value>(&json_bytes) {
        Ok(serde_json::Value::Array(rows)) => rows,
        Ok(_) => return refuse(StatusCode::BAD_REQUEST, "InvalidPayload", "the body is not a JSON array".into(), true),
        Err(e) => return refuse(StatusCode::BAD_REQUEST, "InvalidPayload", format!("the body is not JSON: {e}"), true),
    };
    if rows.is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "InvalidPayload", "the array is empty".into(), true);
    }
    for (i, row) in rows.iter().enumerate() {
        let Some(object) = row.as_object() else {
            return refuse(StatusCode::BAD_REQUEST, "InvalidPayload", format!("row {i} is not an object"), true);
        };
        match object.get("TimeGenerated").and_then(|t| t.as_str()) {
            Some(t) if is_iso8601_utc(t) => {}
            other => return refuse(StatusCode::BAD_REQUEST, "InvalidPayload", format!("row {i}: TimeGenerated {other:?} is not an ISO-8601 time"), true),
        }
    }
    let throttle = shared.lock().throttle.pop_front();
    if let Some(secs) = throttle {
        let mut response = ingest_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Too many requests. Retry after the time in the Retry-After header.");
        response.headers_mut().insert("retry-after", secs.into());
        return (StatusCode::TOO_MANY_REQUESTS, Vec::new(), response);
    }
    (StatusCode::NO_CONTENT, rows, StatusCode::NO_CONTENT.into_response())
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z`.
fn is_iso8601_utc(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && t.ends_with('Z')
}

async fn unknown(State(shared): State<Arc<Shared>>, uri: axum::http::Uri) -> Response {
    shared.lock().violations.push(format!("request to an unknown path {}", uri.path()));
    ingest_error(StatusCode::NOT_FOUND, "NotFound", "no such resource")
}
