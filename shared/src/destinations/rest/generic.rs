//! Any HTTPS endpoint that takes JSON (the Workato "REST endpoint URL" destination).
//!
//! - **URL**: `AUDITSTREAM_REST_URL`, as given.
//! - **Auth**: none by default; `bearer`, `basic` or a token in a named header by
//!   `AUDITSTREAM_REST_AUTH` (see [`super::auth`]).
//! - **Body** (`AUDITSTREAM_REST_BATCH_FORMAT`):
//!   - `json` (the default with one event per request, what Workato sends): the document itself,
//!     `Content-Type: application/json`.
//!   - `json_array` (the default when batching): `[doc,doc,…]`, `Content-Type: application/json`.
//!   - `ndjson`: one document per line, each line ended by `\n`,
//!     `Content-Type: application/x-ndjson`.
//! - **Limits**: by default a request holds one event of the largest size Workato sends to a REST
//!   endpoint, 40 MiB ([`DEFAULT_MAX_EVENT_BYTES`], `AUDITSTREAM_MAX_EVENT_BYTES`'s default), with
//!   the format's wrapping: 41,943,040 bytes for `json`, 41,943,041 for `ndjson`, 41,943,043 for
//!   `json_array` ([`BodyFormat::default_max_request_bytes`]). So every event Workato would send arrives whole,
//!   alone if need be; batched events are packed into requests within the same limit.
//!   `AUDITSTREAM_REST_BATCH_MAX_BYTES` sets it (1,024 bytes to 100 MiB) for an endpoint that takes
//!   less (many web servers and gateways stop at 1 MiB): events that would not fit a request alone
//!   then have their lines replaced by the shared rule, with a warning naming that variable.

use super::preset::{RequestBytes, RestPreset};
use super::MAX_EVENTS_VAR;
use crate::config::{ConfigError, Env, EnvExt};
use crate::pipeline::json_text::push_single_line;
use crate::pipeline::template::LogTemplate;
use crate::pipeline::{Document, DEFAULT_MAX_EVENT_BYTES};

pub const MAX_REQUEST_BYTES: usize = 100 * 1_048_576;
pub const FORMAT_VAR: &str = "AUDITSTREAM_REST_BATCH_FORMAT";

/// The generic preset: a body format, and nothing around an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generic {
    pub format: BodyFormat,
}

impl RestPreset for Generic {
    fn name() -> &'static str {
        "generic"
    }

    fn has_body_formats() -> bool {
        true
    }

    /// `json` by default with one event per request, else `json_array`; `json` holds one event.
    fn from_env(env: &(impl Env + ?Sized), _template: Option<&LogTemplate>, max_events: usize) -> Result<Generic, ConfigError> {
        let default = if max_events == 1 { BodyFormat::Json } else { BodyFormat::JsonArray };
        let format = env.choice(FORMAT_VAR, default, &BodyFormat::CHOICES)?;
        if format == BodyFormat::Json && max_events > 1 {
            return Err(ConfigError::Invalid {
                var: FORMAT_VAR,
                value: "json".into(),
                expected: format!("json_array or ndjson when {MAX_EVENTS_VAR} is above 1 (json sends one event per request)"),
            });
        }
        Ok(Generic { format })
    }

    fn content_type(&self) -> &'static str {
        self.format.content_type()
    }

    fn encode(&self, docs: &[&Document], out: &mut Vec<u8>) {
        self.format.encode(docs, out)
    }

    fn one_document_is_the_body(&self) -> bool {
        self.format.one_document_is_the_body()
    }

    fn overhead(&self) -> (usize, usize) {
        self.format.overhead()
    }

    fn request_bytes(&self) -> RequestBytes {
        RequestBytes { default: self.format.default_max_request_bytes(), max: MAX_REQUEST_BYTES, vendor_limit: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// One document per request, the document is the body.
    Json,
    JsonArray,
    Ndjson,
}

impl BodyFormat {
    pub const CHOICES: [(&'static str, BodyFormat); 3] = [("json", BodyFormat::Json), ("json_array", BodyFormat::JsonArray), ("ndjson", BodyFormat::Ndjson)];

    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Json | BodyFormat::JsonArray => "application/json",
            BodyFormat::Ndjson => "application/x-ndjson",
        }
    }

    /// Bytes the format adds per document (separator or line end) and per request (brackets).
    pub fn overhead(self) -> (usize, usize) {
        match self {
            BodyFormat::Json => (0, 0),
            BodyFormat::JsonArray => (1, 2),
            BodyFormat::Ndjson => (1, 0),
        }
    }

    /// The default request size: one event of [`DEFAULT_MAX_EVENT_BYTES`] in this format.
    pub fn default_max_request_bytes(self) -> usize {
        let (per_doc, per_request) = self.overhead();
        DEFAULT_MAX_EVENT_BYTES + per_doc + per_request
    }

    /// Whether a request of one document is that document as it is (`json`).
    pub fn one_document_is_the_body(self) -> bool {
        self == BodyFormat::Json
    }

    /// The request body.
    pub fn encode(self, docs: &[&Document], out: &mut Vec<u8>) {
        match (self, docs) {
            (_, [doc]) if self.one_document_is_the_body() => out.extend_from_slice(&doc.body),
            // `json` is only configured with one event per request; should more ever arrive,
            // an array keeps the body valid JSON.
            (BodyFormat::Json | BodyFormat::JsonArray, _) => {
                out.push(b'[');
                for (i, doc) in docs.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(&doc.body);
                }
                out.push(b']');
            }
            (BodyFormat::Ndjson, _) => {
                for doc in docs {
                    push_single_line(out, &doc.body);
                    out.push(b'\n');
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destinations::rest::test_docs::job_doc;

    #[test]
    fn each_format_reads_as_documented() {
        let docs = [job_doc("j-1", "2024-01-01T00:00:00Z", r#"{"id":"j-1"}"#), job_doc("j-2", "2024-01-01T00:00:00Z", "{\"id\":\n\"j-2\"}")];
        let one: Vec<&Document> = docs[..1].iter().collect();
        let two: Vec<&Document> = docs.iter().collect();
        let cases: [(BodyFormat, &[&Document], &[u8]); 5] = [
            (BodyFormat::Json, &one, br#"{"id":"j-1"}"#),
            (BodyFormat::JsonArray, &one, br#"[{"id":"j-1"}]"#),
            (BodyFormat::JsonArray, &two, b"[{\"id\":\"j-1\"},{\"id\":\n\"j-2\"}]"),
            (BodyFormat::Ndjson, &two, b"{\"id\":\"j-1\"}\n{\"id\": \"j-2\"}\n"),
            (BodyFormat::Json, &two, b"[{\"id\":\"j-1\"},{\"id\":\n\"j-2\"}]"),
        ];
        for (format, docs, want) in cases {
            let mut out = Vec::new();
            format.encode(docs, &mut out);
            assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(want), "{format:?}");
            let (per_doc, per_request) = format.overhead();
            let fallback = format == BodyFormat::Json && docs.len() > 1;
            assert!(fallback || out.len() <= per_request + docs.iter().map(|d| d.body.len() + per_doc).sum::<usize>());
        }
    }
}
