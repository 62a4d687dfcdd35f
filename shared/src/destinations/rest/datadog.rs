//! Datadog Logs API v2 (<https://docs.datadoghq.com/api/latest/logs/send-logs/>; see also
//! `docs/destinations.md`).
//!
//! - **URL**: `POST https://http-intake.logs.<site>/api/v2/logs`, the site from
//!   `AUDITSTREAM_DATADOG_SITE` (default `datadoghq.com`; also `us3.datadoghq.com`,
//!   `us5.datadoghq.com`, `datadoghq.eu`, `ap1.datadoghq.com`, `ap2.datadoghq.com`,
//!   `uk1.datadoghq.com`, `ddog-gov.com`, `us2.ddog-gov.com`), or `AUDITSTREAM_REST_URL` for a
//!   proxy (a bare host gets `/api/v2/logs`). Setting both is refused as ambiguous.
//! - **Auth**: `DD-API-KEY: <api key>` (`AUDITSTREAM_REST_AUTH=header`, the default, with
//!   `AUDITSTREAM_REST_AUTH_HEADER` defaulting to `DD-API-KEY`).
//! - **Body**: a JSON array of log items, `Content-Type: application/json`:
//!   `[{"ddsource":"workato","ddtags":"env:prod","hostname":"h","service":"workato","message":"{\"id\":\"j-1\",…}"}]`
//!   - `message` is a **string**, as the API's `HTTPLogItem` defines it: the document as JSON
//!     text. Datadog parses a message that is JSON into the log's attributes, so the event's
//!     fields are searchable as if sent as an object, and the item stays within the documented
//!     schema.
//!   - `ddsource` (`AUDITSTREAM_DATADOG_SOURCE`, default `workato`), `service`
//!     (`AUDITSTREAM_DATADOG_SERVICE`, default `workato`), `ddtags` (`AUDITSTREAM_DATADOG_TAGS`,
//!     comma-separated `key:value`, left out when unset), `hostname`
//!     (`AUDITSTREAM_DATADOG_HOSTNAME`, left out when unset).
//!   - No top-level `timestamp`: Datadog drops logs dated more than 18 h in the past, and a
//!     redelivered or replayed audit event may well be older; the event's own time fields stay in
//!     the message.
//! - **With `AUDITSTREAM_LOG_TEMPLATE`**: a template whose own object has a top-level `message` key
//!   is already the log item — Workato's documented Datadog template,
//!   `{"ddsource":"workato","service":"x","message":{{{log_message}}}}`, is the whole body Workato
//!   sends — so each rendered template is an item of the array as it is, with `ddsource`,
//!   `service` (and `ddtags`, `hostname` when set) added for the keys it does not set. A
//!   `message` that is not a JSON string (the event object, as in that template) is sent as its
//!   JSON text, as `message` is without a template: `HTTPLogItem.message` is a string, and Datadog
//!   parses JSON text there into the log's attributes, so the event's fields are searchable either
//!   way. An `AUDITSTREAM_DATADOG_*` variable set for a key the template sets too is refused at
//!   start (one value, in one place). Any other template is the event an item carries, as its
//!   `message`.
//! - **Limits**: ≤ 1,000 items and ≤ 5 MB (5,000,000 bytes) uncompressed per request; ≤ 1 MB per
//!   log (larger ones are truncated by Datadog with a 2xx, so they are sized down here first by
//!   the shared rule, lines replaced by the placeholder).
//! - **Responses**: 202; 408, 429, 500, 503 are retried; 400, 401, 403 are not; 413 splits.

use std::collections::BTreeSet;

use reqwest::header::HeaderName;

use super::auth::AuthScheme;
use super::endpoint::Endpoint;
use super::preset::{members_missing_from_template, push_members, template_object_keys, PreCheck, RequestBytes, RestPreset};
use super::{MAX_BYTES_VAR, URL_VAR};
use crate::config::{ConfigError, Env, EnvExt};
use crate::delivery::destination::{EventLimit, LimitSource};
use crate::delivery::health::Step;
use crate::pipeline::json_text::{escaped_len_bound, push_object_with_members, push_string_contents};
use crate::pipeline::scan::scan_flat_object;
use crate::pipeline::template::LogTemplate;
use crate::pipeline::Document;

pub const PATH: &str = "/api/v2/logs";
/// The API key validation endpoint (<https://docs.datadoghq.com/api/latest/authentication/#validate-api-key>).
pub const VALIDATE_PATH: &str = "/api/v1/validate";
/// The start of a site's intake host, `http-intake.logs.<site>`; its API host is `api.<site>`.
const INTAKE_HOST_PREFIX: &str = "http-intake.logs.";
pub const DEFAULT_SITE: &str = "datadoghq.com";
pub const MAX_EVENTS: usize = 1000;
pub const MAX_REQUEST_BYTES: usize = 5_000_000;
pub const MAX_LOG_BYTES: usize = 1_000_000;
pub const CONTENT_TYPE: &str = "application/json";
pub const API_KEY_HEADER: &str = "dd-api-key";
pub const SITE_VAR: &str = "AUDITSTREAM_DATADOG_SITE";

/// Datadog's documented error answer — `{"errors":[{"status":…,"title":…,"detail":…}]}` (the
/// v2 `HTTPLogErrors`) or `{"errors":["Bad Request"]}` (`APIErrorResponse`) — as
/// `title: detail (status)` items joined by `; `, each text passed through `quote`; `None` when the
/// answer is not of that shape (then it is quoted whole).
pub fn error_answer(reply: &str, quote: &dyn Fn(&str) -> String) -> Option<String> {
    let answer: serde_json::Value = serde_json::from_str(reply).ok()?;
    let errors = answer.get("errors")?.as_array()?;
    let items: Vec<String> = errors
        .iter()
        .filter_map(|e| match e {
            serde_json::Value::String(text) => Some(quote(text)),
            serde_json::Value::Object(o) => {
                let field = |name: &str| o.get(name).and_then(serde_json::Value::as_str).map(quote);
                let words: Vec<String> = [field("title"), field("detail")].into_iter().flatten().collect();
                let status = field("status").map(|s| format!(" ({s})")).unwrap_or_default();
                Some(format!("{}{status}", words.join(": ")))
            }
            _ => None,
        })
        .collect();
    (!items.is_empty()).then(|| items.join("; "))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datadog {
    pub source: String,
    pub tags: Option<String>,
    pub hostname: Option<String>,
    pub service: String,
    /// `{"ddsource":…,"message":"` — the same for every item, rendered once.
    before_message: Vec<u8>,
    /// Set when the log template is itself the log item: `"ddsource":…,` for each field it
    /// does not set.
    template_item: Option<Vec<u8>>,
}

impl Datadog {
    pub fn new(source: String, tags: Option<String>, hostname: Option<String>, service: String) -> Datadog {
        let mut before_message = b"{".to_vec();
        let fields = [("ddsource", Some(source.as_str())), ("ddtags", tags.as_deref()), ("hostname", hostname.as_deref()), ("service", Some(service.as_str()))];
        push_members(&mut before_message, &fields, b',');
        before_message.extend_from_slice(b"\"message\":\"");
        Datadog { source, tags, hostname, service, before_message, template_item: None }
    }

    /// For a template that is the log item: the configured fields it does not set, as members.
    fn members_missing_from(&self, env: &(impl Env + ?Sized), keys: &BTreeSet<String>) -> Result<Vec<u8>, ConfigError> {
        let fields = [
            ("AUDITSTREAM_DATADOG_SOURCE", "ddsource", Some(self.source.as_str())),
            ("AUDITSTREAM_DATADOG_TAGS", "ddtags", self.tags.as_deref()),
            ("AUDITSTREAM_DATADOG_HOSTNAME", "hostname", self.hostname.as_deref()),
            ("AUDITSTREAM_DATADOG_SERVICE", "service", Some(self.service.as_str())),
        ];
        members_missing_from_template(env, keys, &fields, "Datadog log item")
    }

    /// The intake URL of a site.
    pub fn site_url(env: &(impl Env + ?Sized)) -> Result<String, ConfigError> {
        let site = env.optional(SITE_VAR).unwrap_or_else(|| DEFAULT_SITE.to_owned()).to_ascii_lowercase();
        let ok = site.contains('.') && site.split('.').all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        if !ok {
            return Err(ConfigError::Invalid {
                var: SITE_VAR,
                value: site,
                expected: "a Datadog site such as datadoghq.com, datadoghq.eu or us5.datadoghq.com".into(),
            });
        }
        Ok(format!("https://{INTAKE_HOST_PREFIX}{site}{PATH}"))
    }

    /// Bytes each item adds around its escaped message, at most (the comma included).
    pub fn item_bytes(&self) -> usize {
        self.before_message.len() + 3
    }

    /// The largest document whose item still fits a request of `max_request_bytes` on its own:
    /// escaping at most doubles a document (see [`escaped_len_bound`]).
    pub fn max_document_bytes(&self, max_request_bytes: usize) -> usize {
        let room = max_request_bytes.saturating_sub(2 + self.item_bytes());
        let n = room / 2;
        debug_assert!(escaped_len_bound(n) <= room);
        n.min(MAX_LOG_BYTES)
    }
}

impl RestPreset for Datadog {
    fn name() -> &'static str {
        "datadog"
    }

    fn max_events() -> usize {
        MAX_EVENTS
    }

    fn default_auth() -> AuthScheme {
        AuthScheme::Header { name: HeaderName::from_static(API_KEY_HEADER) }
    }

    /// The site's intake URL, or `AUDITSTREAM_REST_URL` for a proxy (a bare host gets the path);
    /// both at once are ambiguous.
    fn endpoint(env: &(impl Env + ?Sized)) -> Result<Endpoint, ConfigError> {
        match env.optional(URL_VAR) {
            Some(_) if env.optional(SITE_VAR).is_some() => Err(ConfigError::Invalid {
                var: SITE_VAR,
                value: env.optional(SITE_VAR).unwrap_or_default(),
                expected: format!("unset when {URL_VAR} is set (set one of them: the site, or the full intake URL)"),
            }),
            Some(text) => {
                let url = Endpoint::parse(URL_VAR, &text, None)?;
                Ok(if url.has_empty_path() { url.with_path(PATH, None) } else { url })
            }
            None => Endpoint::parse(SITE_VAR, &Datadog::site_url(env)?, None),
        }
    }

    /// The item fields from their variables, and the pipeline's log template, if any.
    fn from_env(env: &(impl Env + ?Sized), template: Option<&LogTemplate>, _max_events: usize) -> Result<Datadog, ConfigError> {
        let tags = env.optional("AUDITSTREAM_DATADOG_TAGS").map(|t| t.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(","));
        let mut dd = Datadog::new(
            env.optional("AUDITSTREAM_DATADOG_SOURCE").unwrap_or_else(|| "workato".to_owned()),
            tags.filter(|t| !t.is_empty()),
            env.optional("AUDITSTREAM_DATADOG_HOSTNAME"),
            env.optional("AUDITSTREAM_DATADOG_SERVICE").unwrap_or_else(|| "workato".to_owned()),
        );
        if let Some(keys) = template_object_keys(template, "message") {
            dd.template_item = Some(dd.members_missing_from(env, keys)?);
        }
        Ok(dd)
    }

    fn content_type(&self) -> &'static str {
        CONTENT_TYPE
    }

    /// The request body: a JSON array of items.
    fn encode(&self, docs: &[&Document], out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, doc) in docs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if let Some(members) = &self.template_item {
                if push_template_item(out, &doc.body, members) {
                    continue;
                }
            }
            out.extend_from_slice(&self.before_message);
            push_string_contents(out, &doc.body);
            out.extend_from_slice(b"\"}");
        }
        out.push(b']');
    }

    fn overhead(&self) -> (usize, usize) {
        (self.item_bytes(), 2)
    }

    fn request_bytes(&self) -> RequestBytes {
        RequestBytes { default: MAX_REQUEST_BYTES, max: MAX_REQUEST_BYTES, vendor_limit: None }
    }

    /// Escaping cannot be known without encoding, so a fifth of the room is kept in reserve.
    fn packing_budget(&self, room: usize) -> usize {
        room / 5 * 4
    }

    /// What an item can hold once escaped, and at most Datadog's limit per log.
    fn max_event_bytes(&self, max_request_bytes: usize) -> EventLimit {
        let bytes = self.max_document_bytes(max_request_bytes);
        let set_by =
            if bytes == MAX_LOG_BYTES { LimitSource::Service("Datadog takes at most 1,000,000 bytes per log") } else { LimitSource::Variable(MAX_BYTES_VAR) };
        EventLimit::new(bytes, set_by)
    }

    /// The API key validation endpoint, `GET https://api.<site>/api/v1/validate` with the key in
    /// `DD-API-KEY`: on the site's API host, not the intake host. Behind a proxy (a URL ending in
    /// `/api/v2/logs` on another host), the same host's `/api/v1/validate`; any other URL has none.
    fn pre_check(&self, endpoint: &Endpoint) -> Option<PreCheck> {
        let host = endpoint.url().host_str()?;
        let url = match host.strip_prefix(INTAKE_HOST_PREFIX) {
            Some(site) if endpoint.url().scheme() == "https" => Endpoint::parse(SITE_VAR, &format!("https://api.{site}{VALIDATE_PATH}"), None).ok()?,
            _ => endpoint.with_path(&format!("{}{VALIDATE_PATH}", endpoint.path().strip_suffix(PATH)?), None),
        };
        Some(PreCheck { step: Step::Authentication, name: "Datadog's API key validation", url, authenticated: true })
    }

    /// `200 {"valid":true}`; `403 {"errors":["Forbidden"]}` for a key that is not valid.
    fn read_pre_check(&self, status: u16, reply: &str, quote: &dyn Fn(&str) -> String) -> Result<String, String> {
        let said = || error_answer(reply, quote).unwrap_or_else(|| quote(reply));
        let valid = serde_json::from_str::<serde_json::Value>(reply).ok().and_then(|v| v.get("valid").and_then(serde_json::Value::as_bool));
        match status {
            200 if valid == Some(true) => Ok("the API key is valid".to_owned()),
            200 => Err(format!("HTTP 200 without {{\"valid\":true}}: {}", said())),
            401 | 403 => Err(format!(
                "HTTP {status}: {}: the API key is not valid on this site: check the key (AUDITSTREAM_REST_TOKEN_SECRET_ARN, or AUDITSTREAM_REST_TOKEN locally) and AUDITSTREAM_DATADOG_SITE (a key works on its own site only)",
                said()
            )),
            _ => Err(format!("HTTP {status}: {}", said())),
        }
    }

    fn error_answer(&self, reply: &str, quote: &dyn Fn(&str) -> String) -> Option<String> {
        error_answer(reply, quote)
    }
}

/// Appends a rendered template that is the log item: `members` first, and each top-level
/// `message` that is not a string as its JSON text. False, appending nothing, if `item` is not a
/// JSON object (a rendered template with an object of its own always is).
fn push_template_item(out: &mut Vec<u8>, item: &[u8], members: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(item) else { return false };
    let Ok(fields) = scan_flat_object(text) else { return false };
    // The byte ranges of the `message` values to turn into strings; the values borrow from `text`.
    let mut spans: Vec<(usize, usize)> = fields
        .iter()
        .filter(|(key, value)| key == "message" && !value.get().starts_with('"'))
        .map(|(_, value)| {
            let start = value.get().as_ptr() as usize - text.as_ptr() as usize;
            (start, start + value.get().len())
        })
        .collect();
    spans.sort_unstable();
    let mut item_text = Vec::with_capacity(item.len() + members.len() + 16);
    let mut at = 0;
    for (start, end) in spans {
        item_text.extend_from_slice(&item[at..start]);
        item_text.push(b'"');
        push_string_contents(&mut item_text, &item[start..end]);
        item_text.push(b'"');
        at = end;
    }
    item_text.extend_from_slice(&item[at..]);
    push_object_with_members(out, &item_text, members)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destinations::rest::test_docs::{job_doc, templated};

    #[test]
    fn only_the_documented_error_fields_are_quoted() {
        let quote = |t: &str| t.replace("SECRET", "[redacted]");
        let reply = r#"{"errors":[{"status":"400","title":"Bad Request","detail":"invalid item SECRET","source":{"echo":"EVENT-MARKER"}}]}"#;
        assert_eq!(error_answer(reply, &quote).as_deref(), Some("Bad Request: invalid item [redacted] (400)"));
        assert_eq!(error_answer(r#"{"errors":["Forbidden","SECRET"]}"#, &quote).as_deref(), Some("Forbidden; [redacted]"));
        assert_eq!(error_answer("{}", &quote), None);
        assert_eq!(error_answer("upstream timeout", &quote), None);
    }

    #[test]
    fn items_carry_the_document_as_a_json_string() {
        let dd = Datadog::new("workato".into(), Some("env:prod,team:ops".into()), Some("lambda".into()), "audit".into());
        let docs =
            [job_doc("j-1", "2024-01-01T00:00:00Z", r#"{"id":"j-1","error":"{\"m\":\"x\"}"}"#), job_doc("j-2", "2024-01-01T00:00:00Z", "{\n\"id\":\"j-2\"}")];
        let refs: Vec<&Document> = docs.iter().collect();
        let mut out = Vec::new();
        dd.encode(&refs, &mut out);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            concat!(
                r#"[{"ddsource":"workato","ddtags":"env:prod,team:ops","hostname":"lambda","service":"audit","message":"{\"id\":\"j-1\",\"error\":\"{\\\"m\\\":\\\"x\\\"}\"}"},"#,
                r#"{"ddsource":"workato","ddtags":"env:prod,team:ops","hostname":"lambda","service":"audit","message":"{\n\"id\":\"j-2\"}"}]"#,
            )
        );
        // the message decodes to the document exactly
        let items: Vec<serde_json::Value> = serde_json::from_slice(&out).unwrap();
        assert_eq!(items[0]["message"].as_str().unwrap().as_bytes(), docs[0].body.as_slice());
        assert_eq!(items[1]["message"].as_str().unwrap().as_bytes(), docs[1].body.as_slice());
    }

    #[test]
    fn defaults_and_optional_fields() {
        let dd = Datadog::from_env(&[("AUDITSTREAM_DATADOG_TAGS", " env:prod , ,team:ops")][..], None, 1).unwrap();
        let doc = job_doc("j-1", "2024-01-01T00:00:00Z", "{}");
        let mut out = Vec::new();
        dd.encode(&[&doc], &mut out);
        assert_eq!(out, br#"[{"ddsource":"workato","ddtags":"env:prod,team:ops","service":"workato","message":"{}"}]"#);
    }

    #[test]
    fn workatos_documented_template_is_the_log_item_itself() {
        let (t, doc) =
            templated("2024-01-01T00:00:00Z", r#"{"ddsource":"workato","service":"x","message":{{{log_message}}}}"#, r#"{"id":"j-1","note":"a \"q\""}"#);
        let dd = Datadog::from_env(&[("AUDITSTREAM_DATADOG_TAGS", "env:prod")][..], Some(&t), 1).unwrap();
        let mut out = Vec::new();
        dd.encode(&[&doc, &doc], &mut out);
        let item = r#"{"ddtags":"env:prod","ddsource":"workato","service":"x","message":"{\"id\":\"j-1\",\"note\":\"a \\\"q\\\"\"}"}"#;
        assert_eq!(String::from_utf8(out.clone()).unwrap(), format!("[{item},{item}]"));
        let items: Vec<serde_json::Value> = serde_json::from_slice(&out).unwrap();
        assert_eq!(items[0]["message"].as_str().unwrap(), r#"{"id":"j-1","note":"a \"q\""}"#);
        assert!(items[0].get("message").and_then(|m| m.get("message")).is_none(), "not nested in another log object");
        // a message the template already makes a string is kept as it is, the defaults fill in
        let (t, doc) = templated("2024-01-01T00:00:00Z", r#"{"message":{{{log_message_str}}},"env":"staging"}"#, r#"{"id":"j-1"}"#);
        let mut out = Vec::new();
        Datadog::from_env(&[][..], Some(&t), 1).unwrap().encode(&[&doc], &mut out);
        assert_eq!(out, br#"[{"ddsource":"workato","service":"workato","message":"{\"id\":\"j-1\"}","env":"staging"}]"#);
    }

    #[test]
    fn a_template_without_a_message_is_the_message() {
        // the older documented example, whose event sits under `logEntries`
        let (t, doc) = templated("2024-01-01T00:00:00Z", r#"{"source":"workato","logEntries": {{log_message}} }"#, r#"{"id":"j-1"}"#);
        let mut out = Vec::new();
        Datadog::from_env(&[][..], Some(&t), 1).unwrap().encode(&[&doc], &mut out);
        assert_eq!(out, br#"[{"ddsource":"workato","service":"workato","message":"{\"source\":\"workato\",\"logEntries\": {\"id\":\"j-1\"} }"}]"#);
    }

    #[test]
    fn a_variable_for_a_field_the_template_sets_is_refused() {
        let t = LogTemplate::compile(r#"{"service":"x","message":{{{log_message}}}}"#).unwrap();
        let err = Datadog::from_env(&[("AUDITSTREAM_DATADOG_SERVICE", "audit")][..], Some(&t), 1).unwrap_err().to_string();
        assert_eq!(err, "AUDITSTREAM_DATADOG_SERVICE=\"audit\" is not valid: expected unset: AUDITSTREAM_LOG_TEMPLATE is the whole Datadog log item and sets \"service\" itself (give it in one place)");
    }

    #[test]
    fn sites() {
        assert_eq!(Datadog::site_url(&[][..]).unwrap(), "https://http-intake.logs.datadoghq.com/api/v2/logs");
        assert_eq!(Datadog::site_url(&[(SITE_VAR, "datadoghq.eu")][..]).unwrap(), "https://http-intake.logs.datadoghq.eu/api/v2/logs");
        let err = Datadog::site_url(&[(SITE_VAR, "https://datadoghq.eu")][..]).unwrap_err().to_string();
        assert_eq!(
            err,
            "AUDITSTREAM_DATADOG_SITE=\"https://datadoghq.eu\" is not valid: expected a Datadog site such as datadoghq.com, datadoghq.eu or us5.datadoghq.com"
        );
    }

    #[test]
    fn a_maximal_document_fits_a_request_alone_even_if_every_byte_escapes() {
        let dd = Datadog::from_env(&[][..], None, 1).unwrap();
        assert_eq!(dd.max_document_bytes(MAX_REQUEST_BYTES), MAX_LOG_BYTES);
        let small = dd.max_document_bytes(10_000);
        let doc = job_doc("j", "2024-01-01T00:00:00Z", &format!("[{}]", "\"".repeat(small - 2)));
        let mut out = Vec::new();
        dd.encode(&[&doc], &mut out);
        assert!(out.len() <= 10_000, "{}", out.len());
    }
}
