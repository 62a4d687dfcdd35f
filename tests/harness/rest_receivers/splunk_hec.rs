//! Splunk HEC, `POST /services/collector/event` (also `/services/collector` and
//! `/services/collector/event/1.0`): `Authorization: Splunk <token>` (none → 401 code 2, another
//! scheme → 401 code 3, wrong token → 403 code 4); `Content-Encoding` none or gzip (else 415); at
//! most `max_request_bytes` uncompressed (else 413); the body one or more JSON envelope objects one
//! after another — no array, no commas — each with a numeric `time`, string
//! `host`/`source`/`sourcetype`/`index` when present, a non-blank `event` (else code 12 or 13), and
//! no other keys (else code 6); `index` one of the allowed ones (else code 7). Answers
//! `{"text":"Success","code":0}`. A batch with an invalid event is answered as Splunk does: the
//! events before it are indexed, it is refused with `400 {"text":…,"code":N,"invalid-event-number":K}`,
//! and the events after it are not indexed.
//!
//! `GET /services/collector/health` (no token needed) answers `200 {"text":"HEC is healthy","code":17}`,
//! or `503 {"text":"HEC is unhealthy, queues are full","code":18}` while the receiver is
//! [unhealthy](super::RestReceiver::set_unhealthy); event requests then get `503 {"text":"Server is
//! busy","code":9}` (<https://help.splunk.com/en/splunk-enterprise/get-data-in/collect-http-event-data/http-event-collector-rest-api-endpoints>,
//! and Splunk's REST API reference for `services/collector/health`).

use serde_json::Value;

use super::{answer, event_id, refuse, short, Checked, Contract, Profile, Request};

/// Splunk Cloud's documented request limit (Splunk Enterprise's `max_content_length` is configurable).
pub const SPLUNK_MAX_CONTENT_LENGTH: usize = 1_000_000;

/// A HEC token and the indexes it may write to (empty: any).
#[derive(Debug, Clone)]
pub struct SplunkHec {
    pub token: String,
    pub allowed_indexes: Vec<String>,
}

impl Contract for SplunkHec {
    fn profile(&self) -> Profile {
        Profile {
            name: "Splunk HEC",
            default_max_request_bytes: SPLUNK_MAX_CONTENT_LENGTH,
            accepts_deflate: false,
            unsupported_encoding_answer: r#"{"text":"Unsupported content encoding","code":6}"#,
        }
    }

    fn check(&self, request: &Request<'_>) -> Checked {
        let (path, body) = (request.path, request.body);
        let header = |name: &str| request.header(name);
        let SplunkHec { token, allowed_indexes } = self;
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
        if request.too_large() {
            return request.answer_too_large(None, r#"{"text":"Content length exceeded","code":6}"#);
        }
        if request.unhealthy {
            return answer(503, r#"{"text":"Server is busy","code":9}"#);
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return refuse(400, r#"{"text":"No data","code":5}"#, "empty body");
        }
        if header("content-type").as_deref() != Some("application/json") {
            return refuse(400, r#"{"text":"Invalid data format","code":6}"#, format!("Content-Type {:?}", header("content-type")));
        }
        let mut events = Vec::new();
        for (i, item) in serde_json::Deserializer::from_slice(body).into_iter::<Value>().enumerate() {
            let invalid =
                |code: u16, text: &str, why: String| Checked { violation: Some(format!("event {i}: {why}")), ..invalid_event(events.clone(), i, code, text) };
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
        if let Some(k) = events.iter().position(|e| event_id(e).is_some_and(|id| request.refused_ids.contains(&id))) {
            return invalid_event(events, k, 6, "Invalid data format");
        }
        Checked { events: Some(events), ..answer(200, r#"{"text":"Success","code":0}"#) }
    }

    fn get(&self, request: &Request<'_>) -> Checked {
        match request.path {
            "/services/collector/health" | "/services/collector/health/1.0" if request.unhealthy => {
                answer(503, r#"{"text":"HEC is unhealthy, queues are full","code":18}"#)
            }
            "/services/collector/health" | "/services/collector/health/1.0" => answer(200, r#"{"text":"HEC is healthy","code":17}"#),
            path => refuse(404, r#"{"text":"The requested URL was not found on this server.","code":404}"#, format!("GET {path}")),
        }
    }
}

/// HEC's answer to a batch whose event `k` is invalid (`events`: those read, at least the `k`
/// before it): the events before it are indexed, it is refused, the ones after it are not indexed.
fn invalid_event(events: Vec<Value>, k: usize, code: u16, text: &str) -> Checked {
    Checked { indexed: k, events: Some(events), ..answer(400, format!(r#"{{"text":"{text}","code":{code},"invalid-event-number":{k}}}"#)) }
}
