//! Strict local receivers for the REST forwarder's presets: Splunk HEC, Datadog Logs v2, a Sumo
//! Logic HTTP source and a generic JSON endpoint. Each answers as its vendor's contract says
//! (`docs/destinations.md`, with the vendors' pages linked there) and refuses what the vendor would refuse:
//!
//! - **Splunk HEC** `POST /services/collector/event`: `Authorization: Splunk <token>` (none → 401
//!   code 2, another scheme → 401 code 3, wrong token → 403 code 4); `Content-Encoding` none or gzip
//!   (else 415); at most `max_request_bytes` uncompressed (else 413); the body one or more JSON
//!   envelope objects one after another — no array, no commas — each with a numeric `time`, string
//!   `host`/`source`/`sourcetype`/`index` when present, a non-blank `event` (else code 12 or 13), and
//!   no other keys (else code 6); `index` one of the allowed ones (else code 7). Answers
//!   `{"text":"Success","code":0}`. A batch with an invalid event is answered as Splunk does: the
//!   events before it are indexed, it is refused with `400 {"text":…,"code":N,"invalid-event-number":K}`,
//!   and the events after it are not indexed.
//! - **Datadog** `POST /api/v2/logs`: `DD-API-KEY` (none → 401, wrong → 403); `Content-Type:
//!   application/json`; `Content-Encoding` identity, gzip or deflate; ≤ 5,000,000 bytes uncompressed
//!   (else 413); a JSON array of 1–1,000 objects, each with a string `message` and string
//!   `ddsource`/`ddtags`/`hostname`/`service` when present (else 400). A message over 1 MB is what
//!   Datadog silently truncates: accepted, and recorded as a violation. Answers 202 `{}`.
//! - **Sumo Logic** `POST /receiver/v1/http/{code}`: the right code (else 401); `Content-Encoding`
//!   none, gzip or deflate; ≤ 1,000,000 bytes uncompressed (else 413, a violation); one message
//!   per line. Answers 200.
//! - **Generic** `POST {path}`: the configured auth header (else 401 echoing what was received, to
//!   prove the client scrubs it); `Content-Type` per format (`application/json` for `json` and
//!   `json_array`, `application/x-ndjson`); one object, an array of objects, or objects on lines
//!   ended by `\n`; ≤ `max_request_bytes` (else 413).
//!
//! Every receiver also requires `X-Auditstream-Event-Ids` (or its `-Sha256` form) naming each
//! event in order, and every event to be a JSON object. Anything a correct client would never do is
//! recorded in [`RestReceiver::violations`] as well as refused, so a test asserts there were none.
//!
//! Faults on demand: [`RestReceiver::respond_next`] gives the next requests a scripted answer
//! (429 with `Retry-After`, 503, 401…) after they pass the checks; [`RestReceiver::fail_requests_with`]
//! answers every request holding a given text with a fixed answer; [`RestReceiver::refuse_hec_event`]
//! has Splunk HEC find one event invalid, by id. `max_request_bytes` can be set
//! below the vendor's limit to make a receiver answer 413 (a request over the vendor's own limit is
//! also a violation: the client must check sizes before sending).
//!
//! The server runs on its own thread and runtime on 127.0.0.1:0, and stops when dropped.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::fake_server::FakeServer;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

pub const SPLUNK_MAX_CONTENT_LENGTH: usize = 1_000_000;
pub const DATADOG_MAX_REQUEST_BYTES: usize = 5_000_000;
pub const DATADOG_MAX_EVENTS: usize = 1000;
pub const DATADOG_MAX_LOG_BYTES: usize = 1_000_000;
pub const SUMO_MAX_REQUEST_BYTES: usize = 1_000_000;

/// The generic receiver's body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenericFormat {
    Json,
    JsonArray,
    Ndjson,
}

/// Which vendor to play, and its credentials.
#[derive(Debug, Clone)]
pub enum Vendor {
    SplunkHec { token: String, allowed_indexes: Vec<String> },
    Datadog { api_key: String },
    SumoLogic { code: String },
    Generic { path: String, auth: Option<(String, String)>, format: GenericFormat },
}

impl Vendor {
    fn name(&self) -> &'static str {
        match self {
            Vendor::SplunkHec { .. } => "Splunk HEC",
            Vendor::Datadog { .. } => "Datadog",
            Vendor::SumoLogic { .. } => "Sumo Logic",
            Vendor::Generic { .. } => "generic",
        }
    }

    /// The vendor's own per-request limit, uncompressed.
    fn vendor_limit(&self) -> usize {
        match self {
            Vendor::SplunkHec { .. } => usize::MAX,
            Vendor::Datadog { .. } => DATADOG_MAX_REQUEST_BYTES,
            Vendor::SumoLogic { .. } => SUMO_MAX_REQUEST_BYTES,
            Vendor::Generic { .. } => usize::MAX,
        }
    }

    fn default_max_request_bytes(&self) -> usize {
        match self {
            Vendor::SplunkHec { .. } => SPLUNK_MAX_CONTENT_LENGTH,
            Vendor::Datadog { .. } => DATADOG_MAX_REQUEST_BYTES,
            Vendor::SumoLogic { .. } => SUMO_MAX_REQUEST_BYTES,
            Vendor::Generic { .. } => 1_048_576,
        }
    }
}

/// An answer given instead of the vendor's success.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Scripted {
    pub fn status(status: u16) -> Scripted {
        Scripted { status, headers: Vec::new(), body: String::new() }
    }

    pub fn header(mut self, name: &str, value: &str) -> Scripted {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: &str) -> Scripted {
        self.body = body.to_owned();
        self
    }
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub at: Instant,
    pub path: String,
    pub status: u16,
    /// Header names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body as sent (compressed if it was).
    pub raw_body: Vec<u8>,
    /// The body uncompressed.
    pub body: Vec<u8>,
    /// The documents it carried (parsed), when the body was well-formed; of a body with an
    /// invalid HEC envelope, those before it.
    pub events: Vec<Value>,
}

impl ReceivedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<ReceivedRequest>,
    /// Events of accepted requests, and those HEC indexed before an invalid one.
    accepted: Vec<Value>,
    script: VecDeque<Scripted>,
    rules: Vec<(String, Scripted)>,
    /// Ids of the events HEC finds invalid.
    invalid_hec_events: Vec<String>,
    violations: Vec<String>,
}

struct Shared {
    vendor: Vendor,
    max_request_bytes: Mutex<usize>,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running receiver.
pub struct RestReceiver {
    server: FakeServer,
    shared: Arc<Shared>,
}

impl RestReceiver {
    pub fn start(vendor: Vendor) -> RestReceiver {
        let shared = Arc::new(Shared { max_request_bytes: Mutex::new(vendor.default_max_request_bytes()), vendor, inner: Mutex::new(Inner::default()) });
        let app = Router::new().fallback(handle).layer(DefaultBodyLimit::disable()).with_state(shared.clone());
        let server = FakeServer::start("rest-receiver", app);
        RestReceiver { server, shared }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The URL a client is configured with: the HEC or Datadog host, the full Sumo source URL,
    /// the generic endpoint.
    pub fn url(&self) -> String {
        match &self.shared.vendor {
            Vendor::SplunkHec { .. } | Vendor::Datadog { .. } => self.base_url(),
            Vendor::SumoLogic { code } => format!("{}/receiver/v1/http/{code}", self.base_url()),
            Vendor::Generic { path, .. } => format!("{}{path}", self.base_url()),
        }
    }

    /// Answers 413 to requests over `bytes` (uncompressed) from now on.
    pub fn set_max_request_bytes(&self, bytes: usize) {
        *self.shared.max_request_bytes.lock().unwrap_or_else(|p| p.into_inner()) = bytes;
    }

    /// The next requests that pass the checks get these answers, in order.
    pub fn respond_next(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.shared.lock().script.extend(answers);
    }

    /// Every request whose body holds `text` gets `answer`.
    pub fn fail_requests_with(&self, text: &str, answer: Scripted) {
        self.shared.lock().rules.push((text.to_owned(), answer));
    }

    /// Splunk HEC finds the event whose `id` is `id` invalid, wherever it is in a batch, and
    /// answers as it does for an invalid event (400 code 6 with `invalid-event-number`, the events
    /// before it indexed). Not a violation: it stands for a reason the client cannot know.
    pub fn refuse_hec_event(&self, id: &str) {
        self.shared.lock().invalid_hec_events.push(id.to_owned());
    }

    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Documents of accepted requests, in arrival order.
    pub fn accepted_events(&self) -> Vec<Value> {
        self.shared.lock().accepted.clone()
    }

    /// Requests a correct client would never make, with what was wrong.
    pub fn violations(&self) -> Vec<String> {
        self.shared.lock().violations.clone()
    }
}

/// The result of checking a request: the answer, and the events when the body was well-formed.
struct Checked {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: String,
    events: Option<Vec<Value>>,
    /// Of a refused request's events, how many the service kept: HEC indexes those before an
    /// invalid one.
    indexed: usize,
    violation: Option<String>,
}

fn answer(status: u16, body: impl Into<String>) -> Checked {
    Checked {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        headers: Vec::new(),
        body: body.into(),
        events: None,
        indexed: 0,
        violation: None,
    }
}

fn refuse(status: u16, body: impl Into<String>, violation: impl Into<String>) -> Checked {
    Checked { violation: Some(violation.into()), ..answer(status, body) }
}

async fn handle(State(shared): State<Arc<Shared>>, method: Method, OriginalUri(uri): OriginalUri, headers: HeaderMap, raw: Bytes) -> Response {
    let at = Instant::now();
    let path = uri.path().to_owned();
    let header_list: Vec<(String, String)> = headers.iter().map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let max = *shared.max_request_bytes.lock().unwrap_or_else(|p| p.into_inner());
    let invalid_hec_events = shared.lock().invalid_hec_events.clone();

    let (body, mut checked) = match decode(&header("content-encoding"), &raw, &shared.vendor) {
        Err(c) => (Vec::new(), c),
        Ok(body) => {
            let c = if method != Method::POST {
                refuse(405, "", format!("{method} {path}: only POST is accepted"))
            } else {
                check(&shared.vendor, &path, &headers, &body, max, &invalid_hec_events)
            };
            (body, c)
        }
    };
    if checked.violation.is_none() {
        if let Some(events) = &checked.events {
            if let Some(problem) = check_event_ids(&header, events) {
                checked = refuse(400, "", problem);
            }
        }
    }
    let mut inner = shared.lock();
    if checked.status.is_success() {
        let body_text = String::from_utf8_lossy(&body);
        let scripted = match inner.rules.iter().find(|(text, _)| body_text.contains(text.as_str())) {
            Some((_, rule)) => Some(rule.clone()),
            None => inner.script.pop_front(),
        };
        if let Some(s) = scripted {
            // The request was well-formed: keep what it carried, answer as scripted.
            checked = Checked { headers: s.headers, events: checked.events.take(), ..answer(s.status, s.body) };
        }
    }
    if let Some(v) = &checked.violation {
        inner.violations.push(format!("{} {path}: {v}", shared.vendor.name()));
    }
    let events = checked.events.clone().unwrap_or_default();
    let kept = if checked.status.is_success() { events.len() } else { checked.indexed.min(events.len()) };
    inner.accepted.extend(events[..kept].iter().cloned());
    inner.requests.push(ReceivedRequest { at, path, status: checked.status.as_u16(), headers: header_list, raw_body: raw.to_vec(), body, events });
    drop(inner);

    let content_type = if checked.body.starts_with('{') || checked.body.starts_with('[') { "application/json" } else { "text/plain" };
    let mut response = (checked.status, [("content-type", content_type)], checked.body).into_response();
    for (name, value) in checked.headers {
        if let (Ok(n), Ok(v)) = (axum::http::HeaderName::from_bytes(name.as_bytes()), axum::http::HeaderValue::from_str(&value)) {
            response.headers_mut().insert(n, v);
        }
    }
    response
}

/// The body uncompressed, per `Content-Encoding` and what the vendor accepts.
fn decode(encoding: &str, raw: &[u8], vendor: &Vendor) -> Result<Vec<u8>, Checked> {
    let deflate_ok = matches!(vendor, Vendor::Datadog { .. } | Vendor::SumoLogic { .. });
    let mut out = Vec::new();
    let result = match encoding {
        "" | "identity" => return Ok(raw.to_vec()),
        "gzip" => flate2::read::GzDecoder::new(raw).read_to_end(&mut out),
        "deflate" if deflate_ok => flate2::read::ZlibDecoder::new(raw).read_to_end(&mut out),
        other => {
            let body = match vendor {
                Vendor::SplunkHec { .. } => r#"{"text":"Unsupported content encoding","code":6}"#.to_owned(),
                _ => String::new(),
            };
            return Err(refuse(415, body, format!("Content-Encoding {other:?}")));
        }
    };
    match result {
        Ok(_) => Ok(out),
        Err(e) => Err(refuse(400, "", format!("the body is not valid {encoding}: {e}"))),
    }
}

fn check(vendor: &Vendor, path: &str, headers: &HeaderMap, body: &[u8], max: usize, invalid_hec_events: &[String]) -> Checked {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let too_large = |body: &[u8], message: String| {
        let violation =
            (body.len() > vendor.vendor_limit()).then(|| format!("{} bytes is over the vendor's own limit of {}", body.len(), vendor.vendor_limit()));
        Checked { violation, ..answer(413, message) }
    };
    match vendor {
        Vendor::SplunkHec { token, allowed_indexes } => {
            if !matches!(path, "/services/collector/event" | "/services/collector" | "/services/collector/event/1.0") {
                return refuse(404, r#"{"text":"The requested URL was not found on this server.","code":404}"#, format!("path {path}"));
            }
            match header("authorization") {
                None => return refuse(401, r#"{"text":"Token is required","code":2}"#, "no Authorization header"),
                Some(a) if !a.starts_with("Splunk ") => {
                    return refuse(401, r#"{"text":"Invalid authorization","code":3}"#, "Authorization is not `Splunk <token>`")
                }
                Some(a) if a["Splunk ".len()..] != *token => return answer(403, r#"{"text":"Invalid token","code":4}"#),
                Some(_) => {}
            }
            if body.len() > max {
                return too_large(body, r#"{"text":"Content length exceeded","code":6}"#.into());
            }
            if body.iter().all(u8::is_ascii_whitespace) {
                return refuse(400, r#"{"text":"No data","code":5}"#, "empty body");
            }
            if header("content-type").as_deref() != Some("application/json") {
                return refuse(400, r#"{"text":"Invalid data format","code":6}"#, format!("Content-Type {:?}", header("content-type")));
            }
            let mut events = Vec::new();
            for (i, item) in serde_json::Deserializer::from_slice(body).into_iter::<Value>().enumerate() {
                let invalid = |code: u16, text: &str, why: String| Checked {
                    violation: Some(format!("event {i}: {why}")),
                    ..invalid_event(events.clone(), i, code, text)
                };
                let envelope = match item {
                    Ok(Value::Object(o)) => o,
                    Ok(other) => return invalid(6, "Invalid data format", format!("not an envelope object: {}", short(&other))),
                    Err(e) => return invalid(6, "Invalid data format", format!("not concatenated JSON objects: {e}")),
                };
                for key in envelope.keys() {
                    if !["time", "host", "source", "sourcetype", "index", "event", "fields"].contains(&key.as_str()) {
                        return invalid(6, "Invalid data format", format!("unknown key {key:?}"));
                    }
                }
                if !envelope.get("time").is_none_or(Value::is_number) {
                    return invalid(6, "Invalid data format", "`time` is not epoch seconds".into());
                }
                for key in ["host", "source", "sourcetype", "index"] {
                    if !envelope.get(key).is_none_or(Value::is_string) {
                        return invalid(6, "Invalid data format", format!("`{key}` is not a string"));
                    }
                }
                if let Some(index) = envelope.get("index").and_then(Value::as_str) {
                    if !allowed_indexes.is_empty() && !allowed_indexes.iter().any(|a| a == index) {
                        return invalid(7, "Incorrect index", format!("index {index:?} is not allowed for the token"));
                    }
                }
                match envelope.get("event") {
                    None | Some(Value::Null) => return invalid(12, "Event field is required", "no `event`".into()),
                    Some(Value::String(s)) if s.trim().is_empty() => return invalid(13, "Event field cannot be blank", "blank `event`".into()),
                    Some(event) => events.push(event.clone()),
                }
            }
            // Found only once the whole body is read, so that the event-id header is checked against
            // every event of a well-formed request.
            if let Some(k) = events.iter().position(|e| event_id(e).is_some_and(|id| invalid_hec_events.contains(&id))) {
                return invalid_event(events, k, 6, "Invalid data format");
            }
            Checked { events: Some(events), ..answer(200, r#"{"text":"Success","code":0}"#) }
        }
        Vendor::Datadog { api_key } => {
            if path != "/api/v2/logs" {
                return refuse(404, r#"{"errors":["Not found"]}"#, format!("path {path}"));
            }
            match header("dd-api-key") {
                None => return refuse(401, r#"{"errors":["Unauthorized"]}"#, "no DD-API-KEY header"),
                Some(k) if k != *api_key => return answer(403, r#"{"errors":["Forbidden"]}"#),
                Some(_) => {}
            }
            if !header("content-type").is_some_and(|c| c.starts_with("application/json")) {
                return refuse(400, r#"{"errors":["Bad Request"]}"#, format!("Content-Type {:?}", header("content-type")));
            }
            if body.len() > max {
                return too_large(body, r#"{"errors":["Request Entity Too Large"]}"#.into());
            }
            let items = match serde_json::from_slice::<Value>(body) {
                Ok(Value::Array(items)) => items,
                Ok(other) => return refuse(400, r#"{"errors":["Bad Request"]}"#, format!("the body is not an array: {}", short(&other))),
                Err(e) => return refuse(400, r#"{"errors":["Bad Request"]}"#, format!("the body is not JSON: {e}")),
            };
            if items.is_empty() || items.len() > DATADOG_MAX_EVENTS {
                return refuse(400, r#"{"errors":["Bad Request"]}"#, format!("{} items (1 to 1000 allowed)", items.len()));
            }
            let mut events = Vec::new();
            let mut violation = None;
            for (i, item) in items.iter().enumerate() {
                let Some(item) = item.as_object() else { return refuse(400, r#"{"errors":["Bad Request"]}"#, format!("item {i} is not an object")) };
                for key in ["ddsource", "ddtags", "hostname", "service"] {
                    if !item.get(key).is_none_or(Value::is_string) {
                        return refuse(400, r#"{"errors":["Bad Request"]}"#, format!("item {i}: `{key}` is not a string"));
                    }
                }
                let Some(message) = item.get("message").and_then(Value::as_str) else {
                    return refuse(400, r#"{"errors":["Bad Request"]}"#, format!("item {i}: `message` is missing or not a string"));
                };
                if message.len() > DATADOG_MAX_LOG_BYTES {
                    violation = Some(format!("item {i}: a message of {} bytes would be truncated by Datadog", message.len()));
                }
                events.push(serde_json::from_str(message).unwrap_or_else(|_| Value::String(message.to_owned())));
            }
            Checked { events: Some(events), violation, ..answer(202, "{}") }
        }
        Vendor::SumoLogic { code } => {
            let Some(given) = path.strip_prefix("/receiver/v1/http/") else { return refuse(404, "", format!("path {path}")) };
            if given != code {
                return answer(401, "");
            }
            if body.len() > max {
                return too_large(body, String::new());
            }
            let events = body
                .split(|b| *b == b'\n')
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                .map(|l| serde_json::from_slice(l).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(l).into_owned())))
                .collect();
            Checked { events: Some(events), ..answer(200, "") }
        }
        Vendor::Generic { path: want, auth, format } => {
            if path != want {
                return refuse(404, "", format!("path {path}"));
            }
            if let Some((name, value)) = auth {
                let got = header(name);
                if got.as_deref() != Some(value.as_str()) {
                    // Echo what arrived, as careless servers do: the client must not repeat it.
                    return answer(401, format!(r#"{{"error":"invalid credentials {}"}}"#, got.unwrap_or_default()));
                }
            }
            let want_type = if *format == GenericFormat::Ndjson { "application/x-ndjson" } else { "application/json" };
            if header("content-type").as_deref() != Some(want_type) {
                return refuse(415, "", format!("Content-Type {:?}, expected {want_type}", header("content-type")));
            }
            if body.len() > max {
                return too_large(body, String::new());
            }
            let events = match format {
                GenericFormat::Json => match serde_json::from_slice::<Value>(body) {
                    Ok(v) => vec![v],
                    Err(e) => return refuse(400, "", format!("the body is not one JSON document: {e}")),
                },
                GenericFormat::JsonArray => match serde_json::from_slice::<Value>(body) {
                    Ok(Value::Array(items)) if !items.is_empty() => items,
                    Ok(other) => return refuse(400, "", format!("the body is not a non-empty array: {}", short(&other))),
                    Err(e) => return refuse(400, "", format!("the body is not JSON: {e}")),
                },
                GenericFormat::Ndjson => {
                    if !body.ends_with(b"\n") {
                        return refuse(400, "", "the last NDJSON line has no line end");
                    }
                    let mut events = Vec::new();
                    for (i, line) in body[..body.len() - 1].split(|b| *b == b'\n').enumerate() {
                        match serde_json::from_slice::<Value>(line) {
                            Ok(v) => events.push(v),
                            Err(e) => return refuse(400, "", format!("line {} is not JSON: {e}", i + 1)),
                        }
                    }
                    events
                }
            };
            Checked { events: Some(events), ..answer(200, r#"{"status":"ok"}"#) }
        }
    }
}

/// HEC's answer to a batch whose event `k` is invalid (`events`: those read, at least the `k`
/// before it): the events before it are indexed, it is refused, the ones after it are not indexed.
fn invalid_event(events: Vec<Value>, k: usize, code: u16, text: &str) -> Checked {
    Checked { indexed: k, events: Some(events), ..answer(400, format!(r#"{{"text":"{text}","code":{code},"invalid-event-number":{k}}}"#)) }
}

/// An event's own `id`, as text.
fn event_id(event: &Value) -> Option<String> {
    match event.get("id") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Every event must be a JSON object, and the event-id header must name each event in order.
fn check_event_ids(header: &dyn Fn(&str) -> String, events: &[Value]) -> Option<String> {
    if let Some(i) = events.iter().position(|e| !e.is_object()) {
        return Some(format!("event {i} is not a JSON object: {}", short(&events[i])));
    }
    let ids = header("x-auditstream-event-ids");
    if ids.is_empty() {
        let digest = header("x-auditstream-event-ids-sha256");
        return (digest.len() != 64).then(|| "no X-Auditstream-Event-Ids (nor its -Sha256 form)".to_owned());
    }
    let ids: Vec<&str> = ids.split(',').collect();
    if ids.len() != events.len() {
        return Some(format!("X-Auditstream-Event-Ids names {} events, the body holds {}", ids.len(), events.len()));
    }
    for (i, (id, event)) in ids.iter().zip(events).enumerate() {
        let Some(own) = event_id(event) else { continue };
        if percent_decode(id) != own {
            return Some(format!("X-Auditstream-Event-Ids item {i} is {id:?}, the event's id is {own:?}"));
        }
    }
    None
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..(i + 3).min(bytes.len())]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    text.chars().take(80).collect()
}
