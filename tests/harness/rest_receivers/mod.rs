//! Strict local receivers for the REST forwarder's presets: Splunk HEC, Datadog Logs v2, a Sumo
//! Logic HTTP source and a generic JSON endpoint, each one [`Contract`] in its own file
//! ([`splunk_hec`], [`datadog`], [`sumo_logic`], [`generic`]) served by one [`RestReceiver`]. Each
//! answers as its vendor's contract says (`docs/destinations.md`, with the vendors' pages linked
//! there) and refuses what the vendor would refuse (see each file for the rules it checks). A new
//! vendor's receiver is a file implementing [`Contract`].
//!
//! What every receiver checks, whatever the vendor: the method is POST (or GET, for the read endpoints a vendor documents: [`Contract::get`]); the `Content-Encoding` is
//! one the vendor takes (identity and gzip always; deflate where [`Profile::accepts_deflate`]);
//! `X-Auditstream-Event-Ids` (or its `-Sha256` form) names each event in order; and every event is
//! a JSON object. Anything a correct client would never do is recorded in
//! [`RestReceiver::violations`] as well as refused, so a test asserts there were none.
//!
//! Faults on demand: [`RestReceiver::respond_next`] gives the next requests a scripted answer
//! (429 with `Retry-After`, 503, 401…) after they pass the checks; [`RestReceiver::fail_requests_with`]
//! answers every request holding a given text with a fixed answer; [`RestReceiver::refuse_hec_event`]
//! has Splunk HEC find one event invalid, by id. `max_request_bytes` can be set
//! below the vendor's limit to make a receiver answer 413 (a request over the vendor's own limit is
//! also a violation: the client must check sizes before sending).
//!
//! The server runs on its own thread and runtime on 127.0.0.1:0, and stops when dropped.

mod datadog;
mod generic;
mod splunk_hec;
mod sumo_logic;

pub use datadog::{Datadog, DATADOG_MAX_EVENTS, DATADOG_MAX_LOG_BYTES, DATADOG_MAX_REQUEST_BYTES};
pub use generic::{Generic, GenericFormat};
pub use splunk_hec::{SplunkHec, SPLUNK_MAX_CONTENT_LENGTH};
pub use sumo_logic::{SumoLogic, SUMO_MAX_REQUEST_BYTES};

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use crate::fake_server::{FakeServer, FakeState};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

/// One vendor's documented contract, as a receiver checks it.
pub trait Contract: Send + Sync + 'static {
    /// What the receiver needs to know of the vendor before it reads a request.
    fn profile(&self) -> Profile;

    /// The URL a client is configured with, for a receiver serving at `base`: by default the host.
    fn url(&self, base: &str) -> String {
        base.to_owned()
    }

    /// Checks a POST whose body is decoded: the answer, and the events it carried when well-formed.
    fn check(&self, request: &Request<'_>) -> Checked;

    /// Answers a GET: the vendor's documented read endpoints (Splunk HEC's health, Datadog's key
    /// validation). By default there are none, and a GET is refused as a violation.
    fn get(&self, request: &Request<'_>) -> Checked {
        refuse(405, "", format!("GET {}: only POST is accepted", request.path))
    }
}

/// A vendor's name and what it says of any request, whatever its body.
pub struct Profile {
    /// In violations.
    pub name: &'static str,
    /// Requests larger than this (uncompressed) are answered 413 until
    /// [`RestReceiver::set_max_request_bytes`] says otherwise.
    pub default_max_request_bytes: usize,
    /// Whether the vendor takes `Content-Encoding: deflate` too (identity and gzip always).
    pub accepts_deflate: bool,
    /// The body of the vendor's 415 answer to an encoding it does not take.
    pub unsupported_encoding_answer: &'static str,
}

/// A POST as a [`Contract`] checks it.
pub struct Request<'a> {
    pub path: &'a str,
    headers: &'a HeaderMap,
    /// Uncompressed.
    pub body: &'a [u8],
    /// What the receiver answers 413 above.
    pub max_request_bytes: usize,
    /// Ids of the events to find invalid ([`RestReceiver::refuse_hec_event`]).
    pub refused_ids: &'a [String],
    /// Set by [`RestReceiver::set_unhealthy`]: the service cannot take data now.
    pub unhealthy: bool,
}

impl Request<'_> {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }

    /// Whether the body is over what the receiver takes.
    pub fn too_large(&self) -> bool {
        self.body.len() > self.max_request_bytes
    }

    /// The answer 413 with `body`; a violation too when the request is over `vendor_limit`, the
    /// vendor's own limit (a client must check sizes before sending).
    pub fn answer_too_large(&self, vendor_limit: Option<usize>, body: impl Into<String>) -> Checked {
        let violation =
            vendor_limit.filter(|limit| self.body.len() > *limit).map(|limit| format!("{} bytes is over the vendor's own limit of {limit}", self.body.len()));
        Checked { violation, ..answer(413, body) }
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
    max_request_bytes: usize,
    requests: Vec<ReceivedRequest>,
    /// Events of accepted requests, and those HEC indexed before an invalid one.
    accepted: Vec<Value>,
    script: VecDeque<Scripted>,
    rules: Vec<(String, Scripted)>,
    /// Ids of the events HEC finds invalid.
    invalid_hec_events: Vec<String>,
    unhealthy: bool,
    violations: Vec<String>,
}

type Shared = FakeState<Box<dyn Contract>, Inner>;

/// A running receiver.
pub struct RestReceiver {
    server: FakeServer,
    shared: Arc<Shared>,
}

impl RestReceiver {
    pub fn start(contract: impl Contract) -> RestReceiver {
        let profile = contract.profile();
        let shared = Arc::new(Shared::new(Box::new(contract)));
        shared.lock().max_request_bytes = profile.default_max_request_bytes;
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
        self.shared.config.url(&self.base_url())
    }

    /// Answers 413 to requests over `bytes` (uncompressed) from now on.
    pub fn set_max_request_bytes(&self, bytes: usize) {
        self.shared.lock().max_request_bytes = bytes;
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

    /// The service cannot take data (Splunk HEC with its queues full): its health endpoint and
    /// its event endpoint answer as the vendor documents for that state.
    pub fn set_unhealthy(&self, unhealthy: bool) {
        self.shared.lock().unhealthy = unhealthy;
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
pub struct Checked {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: String,
    events: Option<Vec<Value>>,
    /// Of a refused request's events, how many the service kept: HEC indexes those before an
    /// invalid one.
    indexed: usize,
    violation: Option<String>,
}

pub fn answer(status: u16, body: impl Into<String>) -> Checked {
    Checked {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        headers: Vec::new(),
        body: body.into(),
        events: None,
        indexed: 0,
        violation: None,
    }
}

pub fn refuse(status: u16, body: impl Into<String>, violation: impl Into<String>) -> Checked {
    Checked { violation: Some(violation.into()), ..answer(status, body) }
}

async fn handle(State(shared): State<Arc<Shared>>, method: Method, OriginalUri(uri): OriginalUri, headers: HeaderMap, raw: Bytes) -> Response {
    let at = Instant::now();
    let path = uri.path().to_owned();
    let header_list: Vec<(String, String)> = headers.iter().map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let (max_request_bytes, refused_ids, unhealthy) = {
        let inner = shared.lock();
        (inner.max_request_bytes, inner.invalid_hec_events.clone(), inner.unhealthy)
    };
    let contract = &shared.config;
    let profile = contract.profile();

    let (body, mut checked) = match decode(&header("content-encoding"), &raw, &profile) {
        Err(c) => (Vec::new(), c),
        Ok(body) => {
            let request = Request { path: &path, headers: &headers, body: &body, max_request_bytes, refused_ids: &refused_ids, unhealthy };
            let c = if method == Method::POST {
                contract.check(&request)
            } else if method == Method::GET {
                contract.get(&request)
            } else {
                refuse(405, "", format!("{method} {path}: only POST is accepted"))
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
    // Scripted answers stand for what the vendor says to data; a GET is answered by the contract.
    if checked.status.is_success() && method == Method::POST {
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
        inner.violations.push(format!("{} {path}: {v}", profile.name));
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
fn decode(encoding: &str, raw: &[u8], vendor: &Profile) -> Result<Vec<u8>, Checked> {
    let mut out = Vec::new();
    let result = match encoding {
        "" | "identity" => return Ok(raw.to_vec()),
        "gzip" => flate2::read::GzDecoder::new(raw).read_to_end(&mut out),
        "deflate" if vendor.accepts_deflate => flate2::read::ZlibDecoder::new(raw).read_to_end(&mut out),
        other => return Err(refuse(415, vendor.unsupported_encoding_answer, format!("Content-Encoding {other:?}"))),
    };
    match result {
        Ok(_) => Ok(out),
        Err(e) => Err(refuse(400, "", format!("the body is not valid {encoding}: {e}"))),
    }
}

/// An event's own `id`, as text.
pub(crate) fn event_id(event: &Value) -> Option<String> {
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

pub(crate) fn short(v: &Value) -> String {
    let text = v.to_string();
    text.chars().take(80).collect()
}
