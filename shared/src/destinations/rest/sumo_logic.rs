//! Sumo Logic HTTP Logs & Metrics source
//! (<https://www.sumologic.com/help/docs/send-data/hosted-collectors/http-source/logs-metrics/upload-logs/>;
//! see also `docs/destinations.md`).
//!
//! - **URL**: the source's `https://<endpoint>/receiver/v1/http/<unique code>`. The code is the
//!   credential, so either put the whole URL in `AUDITSTREAM_REST_URL`, or keep
//!   `AUDITSTREAM_REST_URL=https://<endpoint>/receiver/v1/http` and put the code in the secret
//!   (`AUDITSTREAM_REST_TOKEN_SECRET_ARN`, or `AUDITSTREAM_REST_TOKEN` locally): it is appended as
//!   the last path segment. Either way logs and errors show the URL with the code `[redacted]`.
//!   (Sumo's beta token header works too: `AUDITSTREAM_REST_AUTH=header`,
//!   `AUDITSTREAM_REST_AUTH_HEADER=X-Sumo-Token`.)
//! - **Headers**: `X-Sumo-Category` (`AUDITSTREAM_SUMO_CATEGORY`), `X-Sumo-Name`
//!   (`AUDITSTREAM_SUMO_NAME`), `X-Sumo-Host` (`AUDITSTREAM_SUMO_HOST`), `X-Sumo-Fields`
//!   (`AUDITSTREAM_SUMO_FIELDS`, `k1=v1,k2=v2`); each overrides the source's default and applies to
//!   every event in the request. Unset ones are not sent.
//! - **Body**: UTF-8 text, one message per line: each document on one line (a raw line break
//!   between JSON tokens of a pretty-printed input becomes a space), lines separated by `\n`.
//!   `Content-Type: text/plain; charset=utf-8` (Sumo documents no content type; this is what
//!   the body is). `Content-Encoding: gzip` if `AUDITSTREAM_REST_GZIP`.
//! - **Limits**: "up to but not exceeding 1MB of uncompressed data" per request: 1,000,000 bytes,
//!   the most `AUDITSTREAM_REST_BATCH_MAX_BYTES` accepts.
//! - **Responses**: 200; 429 (quota: Sumo dropped the data, it must be resent), 408, 503 and 504
//!   are retried; 401 (bad code) is not.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::auth::AuthScheme;
use super::endpoint::Endpoint;
use super::preset::{RequestBytes, RestPreset};
use super::token::{TokenSource, TOKEN_SECRET_ARN_VAR, TOKEN_VAR};
use super::URL_VAR;
use crate::config::{ConfigError, Env, EnvExt};
use crate::pipeline::json_text::push_single_line;
use crate::pipeline::template::LogTemplate;
use crate::pipeline::Document;
use crate::secret::Secret;

pub const MAX_REQUEST_BYTES: usize = 1_000_000;
pub const CONTENT_TYPE: &str = "text/plain; charset=utf-8";
/// The path of an HTTP source URL before the collector code.
pub const RECEIVER_PATH: &str = "/receiver/v1/http";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumoLogic {
    pub headers: HeaderMap,
}

impl SumoLogic {
    /// Which path segments of `path` are the collector code, for the display form: those after
    /// `/receiver/v1/http`, else the last one.
    pub fn secret_segments_from(path: &str) -> usize {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match segments.iter().position(|s| *s == "http") {
            Some(i) if i >= 2 && segments[i - 2] == "receiver" => i + 1,
            _ => segments.len().saturating_sub(1),
        }
    }

    /// Whether the URL stops before the collector code.
    pub fn lacks_code(path: &str) -> bool {
        path.trim_end_matches('/').ends_with(RECEIVER_PATH)
    }
}

impl RestPreset for SumoLogic {
    fn name() -> &'static str {
        "sumo_logic"
    }

    /// The source URL; the path segments after `/receiver/v1/http` are the collector code, shown
    /// `[redacted]`.
    fn endpoint(env: &(impl Env + ?Sized)) -> Result<Endpoint, ConfigError> {
        let text = env.required(URL_VAR, "the Sumo Logic HTTP source URL, https://<endpoint>/receiver/v1/http/<code>")?;
        let from = reqwest::Url::parse(text.trim()).map(|u| SumoLogic::secret_segments_from(u.path())).unwrap_or(0);
        Endpoint::parse(URL_VAR, &text, Some(from))
    }

    /// Without authentication the token is the collector code: the URL must hold it or stop
    /// where it goes, not both.
    fn check_unsent_token(token: &TokenSource, endpoint: &Endpoint) -> Result<(), ConfigError> {
        match (SumoLogic::lacks_code(endpoint.path()), token.is_none()) {
            (true, true) => Err(ConfigError::Missing {
                var: TOKEN_SECRET_ARN_VAR,
                hint: "AUDITSTREAM_REST_URL ends at /receiver/v1/http without the collector code: use the source's full URL, or put the code in a secret named by AUDITSTREAM_REST_TOKEN_SECRET_ARN",
            }),
            (false, false) => Err(ConfigError::InvalidSecret {
                var: TOKEN_VAR,
                reason: "AUDITSTREAM_REST_URL already holds the collector code, so a token has nowhere to go: remove the token, or end the URL at /receiver/v1/http".into(),
            }),
            _ => Ok(()),
        }
    }

    /// The `X-Sumo-*` headers from their variables.
    fn from_env(env: &(impl Env + ?Sized), _template: Option<&LogTemplate>, _max_events: usize) -> Result<SumoLogic, ConfigError> {
        let mut headers = HeaderMap::new();
        for (var, name) in [
            ("AUDITSTREAM_SUMO_CATEGORY", "x-sumo-category"),
            ("AUDITSTREAM_SUMO_NAME", "x-sumo-name"),
            ("AUDITSTREAM_SUMO_HOST", "x-sumo-host"),
            ("AUDITSTREAM_SUMO_FIELDS", "x-sumo-fields"),
        ] {
            if let Some(text) = env.optional(var) {
                let value = HeaderValue::from_str(&text).map_err(|_| ConfigError::Invalid {
                    var,
                    value: text.clone(),
                    expected: "text an HTTP header can carry (visible ASCII, no line breaks)".into(),
                })?;
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        Ok(SumoLogic { headers })
    }

    fn content_type(&self) -> &'static str {
        CONTENT_TYPE
    }

    fn headers(&self) -> Option<&HeaderMap> {
        Some(&self.headers)
    }

    /// The request body: one document per line.
    fn encode(&self, docs: &[&Document], out: &mut Vec<u8>) {
        for (i, doc) in docs.iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            push_single_line(out, &doc.body);
        }
    }

    fn overhead(&self) -> (usize, usize) {
        (1, 0)
    }

    fn request_bytes(&self) -> RequestBytes {
        RequestBytes { default: MAX_REQUEST_BYTES, max: MAX_REQUEST_BYTES, vendor_limit: Some("Sumo Logic takes at most 1,000,000 bytes per request") }
    }

    /// A collector code kept in the secret is appended to the source URL.
    fn request_endpoint(&self, endpoint: &Endpoint, auth: &AuthScheme, token: Option<&Secret>) -> Endpoint {
        match (auth, token) {
            (AuthScheme::None, Some(code)) => endpoint.with_segment(code.expose(), Some(SumoLogic::secret_segments_from(endpoint.path()))),
            _ => endpoint.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destinations::rest::test_docs::job_doc;

    #[test]
    fn one_document_per_line() {
        let docs = [job_doc("j-1", "2024-01-01T00:00:00Z", r#"{"id":"j-1"}"#), job_doc("j-2", "2024-01-01T00:00:00Z", "{\n  \"id\": \"j-2\"\n}")];
        let refs: Vec<&Document> = docs.iter().collect();
        let mut out = Vec::new();
        SumoLogic::from_env(&[][..], None, 1).unwrap().encode(&refs, &mut out);
        assert_eq!(out, b"{\"id\":\"j-1\"}\n{   \"id\": \"j-2\" }");
    }

    #[test]
    fn metadata_headers() {
        let sumo = SumoLogic::from_env(&[("AUDITSTREAM_SUMO_CATEGORY", "prod/workato/audit"), ("AUDITSTREAM_SUMO_HOST", "lambda")][..], None, 1).unwrap();
        assert_eq!(sumo.headers.len(), 2);
        assert_eq!(sumo.headers["x-sumo-category"], "prod/workato/audit");
        assert_eq!(sumo.headers["x-sumo-host"], "lambda");
        let err = SumoLogic::from_env(&[("AUDITSTREAM_SUMO_NAME", "a\u{1}b")][..], None, 1).unwrap_err().to_string();
        assert!(err.starts_with("AUDITSTREAM_SUMO_NAME="), "{err}");
    }

    #[test]
    fn the_collector_code_is_found() {
        assert_eq!(SumoLogic::secret_segments_from("/receiver/v1/http/ZaVnC4dh=="), 3);
        assert_eq!(SumoLogic::secret_segments_from("/proxy/receiver/v1/http/ZaVnC4dh=="), 4);
        assert_eq!(SumoLogic::secret_segments_from("/sumo/ZaVnC4dh=="), 1);
        assert!(SumoLogic::lacks_code("/receiver/v1/http/"));
        assert!(!SumoLogic::lacks_code("/receiver/v1/http/abc"));
    }
}
