//! A generic JSON endpoint, `POST {path}`: the configured auth header (else 401 echoing what was
//! received, to prove the client scrubs it); `Content-Type` per format (`application/json` for
//! `json` and `json_array`, `application/x-ndjson`); one object, an array of objects, or objects on
//! lines ended by `\n`; ≤ `max_request_bytes` (else 413).

use serde_json::Value;

use super::{answer, refuse, short, Checked, Contract, Profile, Request};

/// The generic receiver's body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenericFormat {
    Json,
    JsonArray,
    Ndjson,
}

/// The endpoint's path, the header and value it requires (if any), and its body format.
#[derive(Debug, Clone)]
pub struct Generic {
    pub path: String,
    pub auth: Option<(String, String)>,
    pub format: GenericFormat,
}

impl Contract for Generic {
    /// 1 MiB by default: many web servers and gateways stop there.
    fn profile(&self) -> Profile {
        Profile { name: "generic", default_max_request_bytes: 1_048_576, accepts_deflate: false, unsupported_encoding_answer: "" }
    }

    /// The endpoint's full URL.
    fn url(&self, base: &str) -> String {
        format!("{base}{}", self.path)
    }

    fn check(&self, request: &Request<'_>) -> Checked {
        let (path, body) = (request.path, request.body);
        let header = |name: &str| request.header(name);
        let Generic { path: want, auth, format } = self;
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
        if request.too_large() {
            return request.answer_too_large(None, String::new());
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
