//! Splunk HTTP Event Collector, JSON event endpoint
//! (<https://docs.splunk.com/Documentation/Splunk/latest/Data/FormateventsforHTTPEventCollector>;
//! see also `docs/destinations.md`).
//!
//! - **URL**: `POST https://<host>:8088/services/collector/event`. `AUDITSTREAM_REST_URL` may be
//!   the bare `https://<host>:8088` (the path is filled in) or a full URL (`/services/collector`,
//!   `/services/collector/event/1.0`, or a proxy's path). The `raw`, `ack` and `health` endpoints
//!   take other requests and are refused.
//! - **Auth**: `Authorization: Splunk <hec token>` (`AUDITSTREAM_REST_AUTH=splunk`, the default).
//! - **Body**: one envelope per event, envelopes separated by a newline — no array, no commas:
//!   `{"time":1666243846.000,"host":"h","source":"workato","sourcetype":"_json","index":"audit","event":{…}}`
//!   - `time`: the event's time (a job's `completed_at`, else `started_at`; an activity's
//!     `timestamp`; an other event's first time field, else when it was received) in epoch
//!     seconds with the milliseconds the event's time gives (`.000` when it has none; before 1970
//!     negative, `-0.750`). Splunk indexes the event at this time rather than at arrival.
//!   - `host` (`AUDITSTREAM_SPLUNK_HOST`), `source` (`AUDITSTREAM_SPLUNK_SOURCE`, default
//!     `workato`), `sourcetype` (`AUDITSTREAM_SPLUNK_SOURCETYPE`, default `_json` so fields are
//!     extracted at search time), `index` (`AUDITSTREAM_SPLUNK_INDEX`; it must be one of the
//!     token's allowed indexes). Unset `host` and `index` are left out: the token's defaults apply.
//!   - `event`: the document itself, embedded as JSON (never re-parsed).
//! - **With `AUDITSTREAM_LOG_TEMPLATE`**: a template whose own object has a top-level `event` key
//!   (`{"event":{{{log_message}}},"sourcetype":"workato"}`, what a Workato user writes for a HEC
//!   endpoint) is already the HEC envelope: it is sent as it is, with `time` (the event's) and the
//!   configured `host`/`source`/`sourcetype`/`index` added for the keys it does not set. Such a
//!   template may hold only the envelope's keys (`time`, `host`, `source`, `sourcetype`, `index`,
//!   `event`, `fields`), and an `AUDITSTREAM_SPLUNK_*` variable set for a key the template sets too
//!   is refused at start (one value, in one place). Any other template is the event the envelope
//!   carries, as its `event`.
//! - **Content-Type**: `application/json`; `Content-Encoding: gzip` if `AUDITSTREAM_REST_GZIP`.
//! - **Limits**: Splunk Cloud documents 1 MB per request and Splunk Enterprise's
//!   `max_content_length` is configurable, so requests stay within 1,000,000 bytes by default
//!   (`AUDITSTREAM_REST_BATCH_MAX_BYTES` raises it, up to Enterprise's 800 MiB default). No per-event
//!   limit beyond what fits in a request.
//! - **Responses**: `{"text":"Success","code":0}`; 503 code 9 "Server is busy" is retried; 400
//!   (codes 5–7, 10–16), 401 and 403 are not. Without indexer acknowledgement, a 200 means
//!   "accepted", not "indexed".
//! - **A batch with an invalid event**: `400 {"text":"…","code":N,"invalid-event-number":K}` — the
//!   events before K were indexed, K was refused, the ones after it were not indexed
//!   ([`refused_event`]). The events before K count as delivered, K fails alone (permanently) and
//!   the ones after it are sent again; a number missing or outside the request fails the whole
//!   request as any other 400.

use std::collections::BTreeSet;
use std::io::Write;

use super::auth::AuthScheme;
use super::endpoint::Endpoint;
use super::preset::{members_missing_from_template, push_members, template_object_keys, PreCheck, RequestBytes, RestPreset};
use super::URL_VAR;
use crate::config::{ConfigError, Env, EnvExt};
use crate::delivery::health::Step;
use crate::delivery::retry::DeliveryError;
use crate::pipeline::json_text::push_object_with_members;
use crate::pipeline::template::LogTemplate;
use crate::pipeline::Document;

pub const DEFAULT_PATH: &str = "/services/collector/event";
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1_000_000;
pub const MAX_REQUEST_BYTES: usize = 838_860_800;
pub const CONTENT_TYPE: &str = "application/json";
/// The keys of a HEC event envelope.
pub const ENVELOPE_KEYS: [&str; 7] = ["time", "host", "source", "sourcetype", "index", "event", "fields"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplunkHec {
    pub host: Option<String>,
    pub source: String,
    pub sourcetype: String,
    pub index: Option<String>,
    /// `,"host":…,"event":` — the same for every event, rendered once.
    after_time: Vec<u8>,
    /// Set when the log template is itself the envelope.
    template_envelope: Option<TemplateEnvelope>,
}

/// What a template that is the whole HEC envelope is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TemplateEnvelope {
    /// The template sets no `time`: the event's is added.
    add_time: bool,
    /// `"source":…,` for each configured field the template does not set.
    members: Vec<u8>,
}

impl SplunkHec {
    pub fn new(host: Option<String>, source: String, sourcetype: String, index: Option<String>) -> SplunkHec {
        let mut after_time = b",".to_vec();
        let fields = [("host", host.as_deref()), ("source", Some(source.as_str())), ("sourcetype", Some(sourcetype.as_str())), ("index", index.as_deref())];
        push_members(&mut after_time, &fields, b',');
        after_time.extend_from_slice(b"\"event\":");
        SplunkHec { host, source, sourcetype, index, after_time, template_envelope: None }
    }

    /// Checks a template that is the whole envelope, and finds what it lacks.
    fn envelope_from_template(&self, env: &(impl Env + ?Sized), keys: &BTreeSet<String>) -> Result<TemplateEnvelope, ConfigError> {
        if let Some(other) = keys.iter().find(|k| !ENVELOPE_KEYS.contains(&k.as_str())) {
            return Err(ConfigError::InvalidSecret {
                var: "AUDITSTREAM_LOG_TEMPLATE",
                reason: format!(
                    "with AUDITSTREAM_REST_PRESET=splunk_hec a template with a top-level \"event\" is sent as the HEC envelope, which takes only {}; it also has {other:?} (put it inside \"event\" or \"fields\")",
                    ENVELOPE_KEYS.join(", ")
                ),
            });
        }
        let fields = [
            ("AUDITSTREAM_SPLUNK_HOST", "host", self.host.as_deref()),
            ("AUDITSTREAM_SPLUNK_SOURCE", "source", Some(self.source.as_str())),
            ("AUDITSTREAM_SPLUNK_SOURCETYPE", "sourcetype", Some(self.sourcetype.as_str())),
            ("AUDITSTREAM_SPLUNK_INDEX", "index", self.index.as_deref()),
        ];
        let members = members_missing_from_template(env, keys, &fields, "HEC envelope")?;
        Ok(TemplateEnvelope { add_time: !keys.contains("time"), members })
    }

    /// Checks the path: empty gets the event endpoint; endpoints for other bodies are refused.
    pub fn path_for(path: &str) -> Result<Option<&'static str>, &'static str> {
        if path.is_empty() || path == "/" {
            return Ok(Some(DEFAULT_PATH));
        }
        let p = path.trim_end_matches('/');
        if p.ends_with("/services/collector/raw")
            || p.contains("/services/collector/raw/")
            || p.ends_with("/ack")
            || p.ends_with("/health")
            || p.contains("/health/")
        {
            return Err("the HEC JSON event endpoint, https://<host>:8088/services/collector/event (raw, ack and health endpoints take other requests)");
        }
        Ok(None)
    }

    /// Bytes each envelope adds around a document, at most (the time takes up to 21).
    pub fn envelope_bytes(&self) -> usize {
        r#"{"time":.000}"#.len() + 21 + self.after_time.len() + 1
    }
}

impl RestPreset for SplunkHec {
    fn name() -> &'static str {
        "splunk_hec"
    }

    fn default_auth() -> AuthScheme {
        AuthScheme::Splunk
    }

    /// The bare `https://<host>:8088` gets the event endpoint's path; endpoints for other bodies
    /// are refused.
    fn endpoint(env: &(impl Env + ?Sized)) -> Result<Endpoint, ConfigError> {
        let url = Endpoint::parse(URL_VAR, &env.required(URL_VAR, "the HEC endpoint, e.g. https://splunk.example.com:8088")?, None)?;
        match SplunkHec::path_for(url.path()) {
            Ok(Some(path)) => Ok(url.with_path(path, None)),
            Ok(None) => Ok(url),
            Err(expected) => Err(ConfigError::Invalid { var: URL_VAR, value: url.to_string(), expected: expected.into() }),
        }
    }

    /// The envelope fields from their variables, and the pipeline's log template, if any.
    fn from_env(env: &(impl Env + ?Sized), template: Option<&LogTemplate>, _max_events: usize) -> Result<SplunkHec, ConfigError> {
        let mut hec = SplunkHec::new(
            env.optional("AUDITSTREAM_SPLUNK_HOST"),
            env.optional("AUDITSTREAM_SPLUNK_SOURCE").unwrap_or_else(|| "workato".to_owned()),
            env.optional("AUDITSTREAM_SPLUNK_SOURCETYPE").unwrap_or_else(|| "_json".to_owned()),
            env.optional("AUDITSTREAM_SPLUNK_INDEX"),
        );
        if let Some(keys) = template_object_keys(template, "event") {
            hec.template_envelope = Some(hec.envelope_from_template(env, keys)?);
        }
        Ok(hec)
    }

    fn content_type(&self) -> &'static str {
        CONTENT_TYPE
    }

    /// The request body: envelopes separated by newlines.
    fn encode(&self, docs: &[&Document], out: &mut Vec<u8>) {
        let mut members = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            let time = doc.meta.time();
            if let Some(envelope) = &self.template_envelope {
                members.clear();
                if envelope.add_time {
                    // Writing to a Vec cannot fail.
                    let _ = write!(members, "\"time\":{},", time.epoch_seconds_decimal());
                }
                members.extend_from_slice(&envelope.members);
                // A rendered template with an object of its own always starts with `{`.
                if push_object_with_members(out, &doc.body, &members) {
                    continue;
                }
            }
            out.extend_from_slice(b"{\"time\":");
            out.extend_from_slice(time.epoch_seconds_decimal().as_bytes());
            out.extend_from_slice(&self.after_time);
            out.extend_from_slice(&doc.body);
            out.push(b'}');
        }
    }

    fn overhead(&self) -> (usize, usize) {
        (self.envelope_bytes(), 0)
    }

    fn request_bytes(&self) -> RequestBytes {
        RequestBytes { default: DEFAULT_MAX_REQUEST_BYTES, max: MAX_REQUEST_BYTES, vendor_limit: None }
    }

    fn error_answer(&self, reply: &str, quote: &dyn Fn(&str) -> String) -> Option<String> {
        error_answer(reply, quote)
    }

    fn partly_accepted(&self, err: DeliveryError, status: u16, reply: &str, events: usize) -> DeliveryError {
        refused_event(err, status, reply, events)
    }

    /// HEC's health endpoint beside the event endpoint, `GET …/services/collector/health`: it takes
    /// no token, and answers whether HEC can take data now. A proxy's path without
    /// `/services/collector` has none known.
    fn pre_check(&self, endpoint: &Endpoint) -> Option<PreCheck> {
        let path = endpoint.path();
        let at = path.find(COLLECTOR)?;
        let url = endpoint.with_path(&format!("{}{HEALTH_PATH}", &path[..at]), None);
        Some(PreCheck { step: Step::Reachability, name: "the HEC health endpoint", url, authenticated: false })
    }

    /// `200 {"text":"HEC is healthy","code":17}`; 503 when HEC cannot take data (queues full,
    /// code 18; acknowledgement unavailable, code 23).
    fn read_pre_check(&self, status: u16, reply: &str, quote: &dyn Fn(&str) -> String) -> Result<String, String> {
        let said = error_answer(reply, quote).unwrap_or_else(|| quote(reply));
        match status {
            200 => Ok(format!("HEC answers {said}")),
            503 => Err(format!(
                "HTTP 503: {said}: HEC cannot take events now (its queues are full, or its acknowledgement service is unavailable): events sent now are refused and retried until it recovers"
            )),
            404 => Err(format!(
                "HTTP 404: {said}: no HEC health endpoint here: is HEC enabled, and does AUDITSTREAM_REST_URL name the HEC port (8088 by default)?"
            )),
            _ => Err(format!("HTTP {status}: {said}")),
        }
    }
}

/// Where the HEC endpoints' paths start, and the health endpoint's path from there.
const COLLECTOR: &str = "/services/collector";
pub const HEALTH_PATH: &str = "/services/collector/health";

/// HEC's documented error answer, `{"text":…,"code":N}` with `invalid-event-number` on a batch
/// error, written again with only those members and its `text` passed through `quote`; `None`
/// when the answer is not of that shape (then it is quoted whole).
pub fn error_answer(reply: &str, quote: &dyn Fn(&str) -> String) -> Option<String> {
    let answer: serde_json::Map<String, serde_json::Value> = serde_json::from_str(reply).ok()?;
    let text = answer.get("text")?.as_str()?;
    let code = answer.get("code")?.as_i64()?;
    let text = serde_json::Value::String(quote(text));
    Some(match answer.get("invalid-event-number").and_then(serde_json::Value::as_u64) {
        Some(k) => format!(r#"{{"text":{text},"code":{code},"invalid-event-number":{k}}}"#),
        None => format!(r#"{{"text":{text},"code":{code}}}"#),
    })
}

/// HEC's answer to a request of `events` events holding an invalid one:
/// `400 {"text":"…","code":N,"invalid-event-number":K}`. Splunk indexed the events before K,
/// refused K and did not index the ones after it, so `err` (the request's error, naming Splunk's
/// text and code) becomes event K's, with the K before it accepted. Any other answer, or a K
/// outside the request, leaves `err` about the whole request.
pub fn refused_event(err: DeliveryError, status: u16, body: &str, events: usize) -> DeliveryError {
    let invalid = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(answer) if status == 400 => answer.get("invalid-event-number").and_then(serde_json::Value::as_u64),
        _ => None,
    };
    match invalid.and_then(|k| usize::try_from(k).ok()).filter(|&k| k < events) {
        Some(k) => err
            .context(format!("Splunk HEC refused this event alone (event {k} of the request: the {k} before it were indexed, the ones after it were not)"))
            .after_accepting(k),
        None => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destinations::rest::test_docs::{activity_doc, job_doc, templated};

    #[test]
    fn only_the_documented_members_of_an_error_answer_are_quoted() {
        let quote = |t: &str| t.replace("SECRET", "[redacted]");
        let reply = r#"{"text":"Invalid data format SECRET","code":6,"invalid-event-number":3,"echo":{"event":"EVENT-MARKER"}}"#;
        assert_eq!(error_answer(reply, &quote).as_deref(), Some(r#"{"text":"Invalid data format [redacted]","code":6,"invalid-event-number":3}"#));
        assert_eq!(error_answer(r#"{"text":"Invalid token","code":4}"#, &quote).as_deref(), Some(r#"{"text":"Invalid token","code":4}"#));
        assert_eq!(error_answer("<html>proxy error</html>", &quote), None);
        assert_eq!(error_answer(r#"{"message":"not HEC"}"#, &quote), None);
    }

    #[test]
    fn envelopes_are_concatenated_with_the_event_embedded_as_is() {
        let hec = SplunkHec::new(Some("lambda-eu".into()), "workato".into(), "_json".into(), Some("audit".into()));
        let docs = [
            job_doc("j-1", "2022-10-19T22:30:46-07:00", r#"{"id":"j-1","status":"succeeded"}"#),
            activity_doc("77", "2024-05-01T10:15:30.000Z", r#"{"event_type":"user_login","id":77}"#),
        ];
        let refs: Vec<&Document> = docs.iter().collect();
        let mut out = Vec::new();
        hec.encode(&refs, &mut out);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            concat!(
                r#"{"time":1666243846.000,"host":"lambda-eu","source":"workato","sourcetype":"_json","index":"audit","event":{"id":"j-1","status":"succeeded"}}"#,
                "\n",
                r#"{"time":1714558530.000,"host":"lambda-eu","source":"workato","sourcetype":"_json","index":"audit","event":{"event_type":"user_login","id":77}}"#,
            )
        );
        assert!(out.len() <= docs.iter().map(|d| d.body.len() + hec.envelope_bytes()).sum::<usize>());
    }

    #[test]
    fn unset_host_and_index_are_left_to_the_token() {
        let hec = SplunkHec::from_env(&[][..], None, 1).unwrap();
        let doc = job_doc("j-1", "2022-10-19T22:30:46Z", "{}");
        let mut out = Vec::new();
        hec.encode(&[&doc], &mut out);
        assert_eq!(out, br#"{"time":1666218646.000,"source":"workato","sourcetype":"_json","event":{}}"#);
        let hec =
            SplunkHec::from_env(&[("AUDITSTREAM_SPLUNK_SOURCE", "workato:\"prod\""), ("AUDITSTREAM_SPLUNK_SOURCETYPE", "workato:audit")][..], None, 1).unwrap();
        out.clear();
        hec.encode(&[&doc], &mut out);
        assert_eq!(out, br#"{"time":1666218646.000,"source":"workato:\"prod\"","sourcetype":"workato:audit","event":{}}"#);
    }

    #[test]
    fn times_before_1970_are_negative_epoch_seconds_with_their_milliseconds() {
        let hec = SplunkHec::from_env(&[][..], None, 1).unwrap();
        for (time, want) in [("1969-12-31T23:59:59.250Z", "-0.750"), ("1969-12-31T23:59:58Z", "-2.000"), ("1970-01-01T00:00:00.250Z", "0.250")] {
            let mut out = Vec::new();
            hec.encode(&[&job_doc("j-1", time, "{}")], &mut out);
            assert!(out.starts_with(format!(r#"{{"time":{want},"#).as_bytes()), "{time}: {}", String::from_utf8_lossy(&out));
        }
    }

    #[test]
    fn a_400_naming_an_invalid_event_of_the_request_is_about_that_event_alone() {
        const REQUEST: &str = "POST https://splunk.example.com:8088/services/collector/event: HTTP 400 Bad Request";
        let request_error = |body: &str| DeliveryError::permanent(format!("{REQUEST}: {body}"));
        // (status, body, events in the request) → events accepted before the refused one
        let cases: [(u16, &str, usize, Option<usize>); 9] = [
            (400, r#"{"text":"Incorrect index","code":7,"invalid-event-number":2}"#, 5, Some(2)),
            (400, r#"{"text":"Invalid data format","code":6,"invalid-event-number":0}"#, 3, Some(0)),
            (400, r#"{"text":"Event field is required","code":12,"invalid-event-number":2}"#, 3, Some(2)),
            // outside the request: Splunk and we disagree on what was sent; fail it all
            (400, r#"{"text":"Invalid data format","code":6,"invalid-event-number":3}"#, 3, None),
            (400, r#"{"text":"Invalid data format","code":6,"invalid-event-number":-1}"#, 3, None),
            (400, r#"{"text":"Invalid data format","code":6,"invalid-event-number":"1"}"#, 3, None),
            (400, r#"{"text":"No data","code":5}"#, 3, None),
            (400, "<html>Bad Request</html>", 3, None),
            // only a 400 says the events before it were indexed
            (403, r#"{"text":"Invalid token","code":4,"invalid-event-number":1}"#, 3, None),
        ];
        for (status, body, events, accepted) in cases {
            let err = refused_event(request_error(body), status, body, events);
            assert_eq!(err.accepted, accepted, "{status} {body}");
            assert_eq!(err.kind, crate::delivery::retry::FailureKind::Permanent);
            if accepted.is_none() {
                assert_eq!(err, request_error(body), "left as it was");
            }
        }
        let err = refused_event(
            request_error(r#"{"text":"Incorrect index","code":7,"invalid-event-number":2}"#),
            400,
            r#"{"text":"Incorrect index","code":7,"invalid-event-number":2}"#,
            5,
        );
        assert_eq!(
            err.to_string(),
            format!(
                r#"{REQUEST}: {{"text":"Incorrect index","code":7,"invalid-event-number":2}}; Splunk HEC refused this event alone (event 2 of the request: the 2 before it were indexed, the ones after it were not)"#
            )
        );
    }

    #[test]
    fn a_template_with_an_event_key_is_the_envelope_itself() {
        let (t, doc) = templated("2022-10-19T22:30:46Z", r#"{"event":{{{log_message}}},"sourcetype":"workato:audit"}"#, r#"{"id":"j-1"}"#);
        let hec = SplunkHec::from_env(&[("AUDITSTREAM_SPLUNK_INDEX", "audit")][..], Some(&t), 1).unwrap();
        let mut out = Vec::new();
        hec.encode(&[&doc, &doc], &mut out);
        let once = r#"{"time":1666218646.000,"source":"workato","index":"audit","event":{"id":"j-1"},"sourcetype":"workato:audit"}"#;
        assert_eq!(String::from_utf8(out.clone()).unwrap(), format!("{once}\n{once}"));
        assert!(out.len() <= 2 * (doc.body.len() + hec.envelope_bytes()));
        // a time of the template's own is kept, and none is added
        let (t, doc) = templated("2022-10-19T22:30:46Z", r#"{"time":1700000000.5,"event":{{{log_message}}}}"#, r#"{"id":"j-1"}"#);
        let mut out = Vec::new();
        SplunkHec::from_env(&[][..], Some(&t), 1).unwrap().encode(&[&doc], &mut out);
        assert_eq!(out, br#"{"source":"workato","sourcetype":"_json","time":1700000000.5,"event":{"id":"j-1"}}"#);
    }

    #[test]
    fn any_other_template_is_the_event_the_envelope_carries() {
        let (t, doc) = templated("2022-10-19T22:30:46Z", r#"{"service":"workato","log":{{{log_message}}}}"#, r#"{"id":"j-1"}"#);
        let mut out = Vec::new();
        SplunkHec::from_env(&[][..], Some(&t), 1).unwrap().encode(&[&doc], &mut out);
        assert_eq!(out, br#"{"time":1666218646.000,"source":"workato","sourcetype":"_json","event":{"service":"workato","log":{"id":"j-1"}}}"#);
    }

    #[test]
    fn an_envelope_template_must_be_a_valid_envelope_and_not_contradict_the_variables() {
        let t = LogTemplate::compile(r#"{"event":{{{log_message}}},"service":"workato"}"#).unwrap();
        let err = SplunkHec::from_env(&[][..], Some(&t), 1).unwrap_err().to_string();
        assert_eq!(err, "AUDITSTREAM_LOG_TEMPLATE is not valid: with AUDITSTREAM_REST_PRESET=splunk_hec a template with a top-level \"event\" is sent as the HEC envelope, which takes only time, host, source, sourcetype, index, event, fields; it also has \"service\" (put it inside \"event\" or \"fields\")");
        let t = LogTemplate::compile(r#"{"event":{{{log_message}}},"index":"audit"}"#).unwrap();
        let err = SplunkHec::from_env(&[("AUDITSTREAM_SPLUNK_INDEX", "main")][..], Some(&t), 1).unwrap_err().to_string();
        assert_eq!(err, "AUDITSTREAM_SPLUNK_INDEX=\"main\" is not valid: expected unset: AUDITSTREAM_LOG_TEMPLATE is the whole HEC envelope and sets \"index\" itself (give it in one place)");
    }

    #[test]
    fn paths() {
        assert_eq!(SplunkHec::path_for("/"), Ok(Some(DEFAULT_PATH)));
        assert_eq!(SplunkHec::path_for("/services/collector/event"), Ok(None));
        assert_eq!(SplunkHec::path_for("/services/collector"), Ok(None));
        assert_eq!(SplunkHec::path_for("/services/collector/event/1.0"), Ok(None));
        assert!(SplunkHec::path_for("/services/collector/raw").is_err());
        assert!(SplunkHec::path_for("/services/collector/ack").is_err());
        assert!(SplunkHec::path_for("/services/collector/health/1.0").is_err());
    }
}
