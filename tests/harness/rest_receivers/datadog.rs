//! Datadog Logs v2, `POST /api/v2/logs`: `DD-API-KEY` (none → 401, wrong → 403); `Content-Type:
//! application/json`; `Content-Encoding` identity, gzip or deflate; ≤ 5,000,000 bytes uncompressed
//! (else 413); a JSON array of 1–1,000 objects, each with a string `message` and string
//! `ddsource`/`ddtags`/`hostname`/`service` when present (else 400). A message over 1 MB is what
//! Datadog silently truncates: accepted, and recorded as a violation. Answers 202 `{}`.
//!
//! `GET /api/v1/validate` (on the site's API host; here the same receiver) answers
//! `200 {"valid":true}` to the right `DD-API-KEY` and `403 {"errors":["Forbidden"]}` to a wrong or
//! missing one (<https://docs.datadoghq.com/api/latest/authentication/#validate-api-key>).

use serde_json::Value;

use super::{answer, refuse, short, Checked, Contract, Profile, Request};

pub const DATADOG_MAX_REQUEST_BYTES: usize = 5_000_000;
pub const DATADOG_MAX_EVENTS: usize = 1000;
pub const DATADOG_MAX_LOG_BYTES: usize = 1_000_000;

/// The API key the intake takes.
#[derive(Debug, Clone)]
pub struct Datadog {
    pub api_key: String,
}

impl Contract for Datadog {
    fn profile(&self) -> Profile {
        Profile { name: "Datadog", default_max_request_bytes: DATADOG_MAX_REQUEST_BYTES, accepts_deflate: true, unsupported_encoding_answer: "" }
    }

    fn check(&self, request: &Request<'_>) -> Checked {
        let (path, body) = (request.path, request.body);
        let header = |name: &str| request.header(name);
        let Datadog { api_key } = self;
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
        if request.too_large() {
            return request.answer_too_large(Some(DATADOG_MAX_REQUEST_BYTES), r#"{"errors":["Request Entity Too Large"]}"#);
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

    fn get(&self, request: &Request<'_>) -> Checked {
        if request.path != "/api/v1/validate" {
            return refuse(404, r#"{"errors":["Not found"]}"#, format!("GET {}", request.path));
        }
        match request.header("dd-api-key") {
            Some(k) if k == self.api_key => answer(200, r#"{"valid":true}"#),
            _ => answer(403, r#"{"errors":["Forbidden"]}"#),
        }
    }
}
