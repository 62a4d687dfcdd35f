//! Splunk HTTP Event Collector, JSON event endpoint (destination contract §4).
//!
//! - **URL**: `POST https://<host>:8088/services/collector/event`. `AUDITSTREAM_REST_URL` may be
//!   the bare `https://<host>:8088` (the path is filled in) or a full URL (`/services/collector`,
//!   `/services/collector/event/1.0`, or a proxy's path). The `raw`, `ack` and `health` endpoints
//!   take other requests and are refused.
//! - **Auth**: `Authorization: Splunk <hec token>` (`AUDITSTREAM_REST_AUTH=splunk`, the default).
//! - **Body**: one envelope per event, envelopes separated by a newline — no array, no commas:
//!   `{"time":1666243846.000,"host":"h","source":"workato","sourcetype":"_json","index":"audit","event":{…}}`
//!   - `time`: the event's time (a job's `completed_at`, else `started_at`; an activity's
//!     `timestamp`) in epoch seconds with the milliseconds the event's time gives (`.000` when
//!     it has none). Splunk indexes the event at this time rather than at arrival.
//!   - `host` (`AUDITSTREAM_SPLUNK_HOST`), `source` (`AUDITSTREAM_SPLUNK_SOURCE`, default
//!     `workato`), `sourcetype` (`AUDITSTREAM_SPLUNK_SOURCETYPE`, default `_json` so fields are
//!     extracted at search time), `index` (`AUDITSTREAM_SPLUNK_INDEX`; it must be one of the
//!     token's allowed indexes). Unset `host` and `index` are left out: the token's defaults apply.
//!   - `event`: the document itself, embedded as JSON (never re-parsed).
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

use std::io::Write;

use super::json_text::push_string;
use crate::config::{ConfigError, Env, EnvExt};
use crate::destination::DeliveryError;
use crate::pipeline::Document;

pub const DEFAULT_PATH: &str = "/services/collector/event";
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1_000_000;
pub const MAX_REQUEST_BYTES: usize = 838_860_800;
pub const CONTENT_TYPE: &str = "application/json";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplunkHec {
    pub host: Option<String>,
    pub source: String,
    pub sourcetype: String,
    pub index: Option<String>,
    /// `,"host":…,"event":` — the same for every event, rendered once.
    after_time: Vec<u8>,
}

impl SplunkHec {
    pub fn new(host: Option<String>, source: String, sourcetype: String, index: Option<String>) -> SplunkHec {
        let mut after_time = Vec::new();
        for (key, value) in [("host", host.as_deref()), ("source", Some(source.as_str())), ("sourcetype", Some(sourcetype.as_str())), ("index", index.as_deref())] {
            if let Some(value) = value {
                after_time.extend_from_slice(b",\"");
                after_time.extend_from_slice(key.as_bytes());
                after_time.extend_from_slice(b"\":");
                push_string(&mut after_time, value);
            }
        }
        after_time.extend_from_slice(b",\"event\":");
        SplunkHec { host, source, sourcetype, index, after_time }
    }

    pub fn from_env(env: &(impl Env + ?Sized)) -> Result<SplunkHec, ConfigError> {
        Ok(SplunkHec::new(
            env.optional("AUDITSTREAM_SPLUNK_HOST"),
            env.optional("AUDITSTREAM_SPLUNK_SOURCE").unwrap_or_else(|| "workato".to_owned()),
            env.optional("AUDITSTREAM_SPLUNK_SOURCETYPE").unwrap_or_else(|| "_json".to_owned()),
            env.optional("AUDITSTREAM_SPLUNK_INDEX"),
        ))
    }

    /// Checks the path: empty gets the event endpoint; endpoints for other bodies are refused.
    pub fn path_for(path: &str) -> Result<Option<&'static str>, &'static str> {
        if path.is_empty() || path == "/" {
            return Ok(Some(DEFAULT_PATH));
        }
        let p = path.trim_end_matches('/');
        if p.ends_with("/services/collector/raw") || p.contains("/services/collector/raw/") || p.ends_with("/ack") || p.ends_with("/health") || p.contains("/health/") {
            return Err("the HEC JSON event endpoint, https://<host>:8088/services/collector/event (raw, ack and health endpoints take other requests)");
        }
        Ok(None)
    }

    /// Bytes each envelope adds around a document, at most (the time takes up to 21).
    pub fn envelope_bytes(&self) -> usize {
        r#"{"time":.000}"#.len() + 21 + self.after_time.len() + 1
    }

    /// The request body: envelopes separated by newlines.
    pub fn encode(&self, docs: &[&Document], out: &mut Vec<u8>) {
        for (i, doc) in docs.iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(b"{\"time\":");
            // Writing to a Vec cannot fail.
            let time = doc.meta.time();
            let _ = write!(out, "{}.{:03}", time.epoch_seconds, time.millis);
            out.extend_from_slice(&self.after_time);
            out.extend_from_slice(&doc.body);
            out.push(b'}');
        }
    }
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
        Some(k) => err.context(format!("Splunk HEC refused this event alone (event {k} of the request: the {k} before it were indexed, the ones after it were not)")).after_accepting(k),
        None => err,
    }
}



#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::test_docs::{activity_doc, job_doc};

    #[test]
    fn envelopes_are_concatenated_with_the_event_embedded_as_is() {
        let hec = SplunkHec::new(Some("lambda-eu".into()), "workato".into(), "_json".into(), Some("audit".into()));
        let docs = [job_doc("j-1", "2022-10-19T22:30:46-07:00", r#"{"id":"j-1","status":"succeeded"}"#), activity_doc("77", "2024-05-01T10:15:30.000Z", r#"{"event_type":"user_login","id":77}"#)];
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
        let hec = SplunkHec::from_env(&[][..]).unwrap();
        let doc = job_doc("j-1", "2022-10-19T22:30:46Z", "{}");
        let mut out = Vec::new();
        hec.encode(&[&doc], &mut out);
        assert_eq!(out, br#"{"time":1666218646.000,"source":"workato","sourcetype":"_json","event":{}}"#);
        let hec = SplunkHec::from_env(&[("AUDITSTREAM_SPLUNK_SOURCE", "workato:\"prod\""), ("AUDITSTREAM_SPLUNK_SOURCETYPE", "workato:audit")][..]).unwrap();
        out.clear();
        hec.encode(&[&doc], &mut out);
        assert_eq!(out, br#"{"time":1666218646.000,"source":"workato:\"prod\"","sourcetype":"workato:audit","event":{}}"#);
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
            assert_eq!(err.kind, crate::destination::FailureKind::Permanent);
            if accepted.is_none() {
                assert_eq!(err, request_error(body), "left as it was");
            }
        }
        let err = refused_event(request_error(r#"{"text":"Incorrect index","code":7,"invalid-event-number":2}"#), 400, r#"{"text":"Incorrect index","code":7,"invalid-event-number":2}"#, 5);
        assert_eq!(
            err.to_string(),
            format!(
                r#"{REQUEST}: {{"text":"Incorrect index","code":7,"invalid-event-number":2}}; Splunk HEC refused this event alone (event 2 of the request: the 2 before it were indexed, the ones after it were not)"#
            )
        );
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
