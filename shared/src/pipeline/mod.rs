//! The pure per-event pipeline: decode → classify → filter → mask → size → customize → key.
//!
//! [`Pipeline::prepare`] turns one message body into the exact bytes a destination writes and the
//! key it writes them at, or says why not. It does no I/O, so every destination — and every
//! test — gets the same result for the same input.

pub mod activity_types;
pub mod event;
pub mod filter;
pub mod json_text;
pub mod key;
pub mod mask;
pub mod mask_rule;
pub mod scan;
pub mod template;
pub mod timestamp;
pub mod write;

use crate::pipeline::event::{classify, EventError, EventMeta};
use crate::pipeline::filter::{EventFilter, FilteredOut};
use crate::pipeline::json_text::JsonOut;
use crate::pipeline::key::{KeyLayout, KeyPrefix, ObjectKey};
use crate::pipeline::scan::{ScanError, ScannedObject};
use crate::pipeline::template::LogTemplate;
use crate::pipeline::timestamp::Now;
use crate::pipeline::write::{LinesMode, MaskedEvent};

/// Workato's limit per file: 40 MiB (`docs/event-format.md`, "Size").
pub const DEFAULT_MAX_EVENT_BYTES: usize = 40 * 1024 * 1024;

/// Everything the pure pipeline is configured with.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub filter: EventFilter,
    /// The largest object written; larger events have their lines replaced (`docs/event-format.md`, "Size").
    pub max_event_bytes: usize,
    pub template: Option<LogTemplate>,
    pub key_layout: KeyLayout,
    pub key_prefix: KeyPrefix,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            filter: EventFilter::default(),
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            template: None,
            key_layout: KeyLayout::Standard,
            key_prefix: KeyPrefix::default(),
        }
    }
}

/// An event ready for a destination.
#[derive(Debug, Clone)]
pub struct Document {
    pub key: ObjectKey,
    /// The JSON written: the masked, sized event, wrapped in the template if one is set.
    pub body: Vec<u8>,
    pub meta: EventMeta,
    pub masked_lines: usize,
    /// True when `lines` was replaced by the size placeholder.
    pub truncated: bool,
}

/// The result of preparing one message.
#[derive(Debug)]
pub enum Prepared {
    Ready(Document),
    Filtered(FilteredOut),
}

/// Why a message cannot be prepared. All of these are permanent: the same body fails the same way.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PrepareError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Event(#[from] EventError),
    #[error("event is {size} bytes even with its lines replaced by the placeholder, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
}

/// A prepared event before its bytes are settled.
enum Plan {
    Filtered(FilteredOut),
    /// The document's bytes: rewritten, or `None` for the input as it is.
    Ready(Ready, Option<Vec<u8>>),
}

struct Ready {
    key: ObjectKey,
    meta: EventMeta,
    masked_lines: usize,
    truncated: bool,
}

impl Ready {
    fn into_document(self, body: Vec<u8>) -> Document {
        Document { key: self.key, body, meta: self.meta, masked_lines: self.masked_lines, truncated: self.truncated }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    pub config: PipelineConfig,
}

impl Pipeline {
    pub fn new(config: PipelineConfig) -> Self {
        Pipeline { config }
    }

    /// Prepares one event body with the configured size limit.
    pub fn prepare(&self, body: &str, now: Now) -> Result<Prepared, PrepareError> {
        self.prepare_within(body, now, self.config.max_event_bytes)
    }

    /// Prepares one event body for a destination whose own per-event limit may be lower than the
    /// configured one (Datadog's 1 MB per log, Azure Monitor's 1 MB per call…).
    pub fn prepare_within(&self, body: &str, now: Now, limit: usize) -> Result<Prepared, PrepareError> {
        Ok(match self.plan(body, now, limit)? {
            Plan::Filtered(why) => Prepared::Filtered(why),
            Plan::Ready(ready, out) => Prepared::Ready(ready.into_document(out.unwrap_or_else(|| body.as_bytes().to_vec()))),
        })
    }

    /// Like [`Pipeline::prepare_within`], taking the body by value: an event that needs no change
    /// (nothing to mask or redact, its lines kept, no template, within the limit) becomes the
    /// document without being copied.
    pub fn prepare_owned(&self, body: String, now: Now, limit: usize) -> Result<Prepared, PrepareError> {
        Ok(match self.plan(&body, now, limit)? {
            Plan::Filtered(why) => Prepared::Filtered(why),
            Plan::Ready(ready, out) => Prepared::Ready(ready.into_document(out.unwrap_or_else(|| body.into_bytes()))),
        })
    }

    /// Everything but the document's bytes when they are the input's, verbatim (`None`).
    fn plan(&self, body: &str, now: Now, limit: usize) -> Result<Plan, PrepareError> {
        let scanned = ScannedObject::scan(body)?;
        let meta = classify(&scanned, now.utc_time())?;
        let mode = match self.config.filter.select(&meta) {
            Ok(mode) => mode,
            Err(out) => return Ok(Plan::Filtered(out)),
        };
        let key = ObjectKey::for_event(&meta, self.config.key_layout, &self.config.key_prefix, body.as_bytes());
        let event = MaskedEvent::new(scanned);
        // The input is already valid JSON, so an event with nothing to change is its own output,
        // whatever its spacing.
        if self.config.template.is_none() && event.unchanged_by(mode) && body.len() <= limit {
            return Ok(Plan::Ready(Ready { key, meta, masked_lines: 0, truncated: false }, None));
        }
        let mut out = Vec::with_capacity(body.len() + self.config.template.as_ref().map_or(0, LogTemplate::overhead));
        self.render(&event, mode, now, &mut out);
        let mut truncated = false;
        if out.len() > limit && event.has_lines() && mode == LinesMode::Keep {
            out.clear();
            out.shrink_to(limit.min(64 * 1024));
            self.render(&event, LinesMode::Placeholder, now, &mut out);
            truncated = true;
        }
        if out.len() > limit {
            return Err(PrepareError::TooLarge { size: out.len(), limit });
        }
        let masked_lines = if truncated || mode == LinesMode::Drop { 0 } else { event.masked_lines };
        Ok(Plan::Ready(Ready { key, meta, masked_lines, truncated }, Some(out)))
    }

    fn render(&self, event: &MaskedEvent<'_>, mode: LinesMode, now: Now, out: &mut Vec<u8>) {
        match &self.config.template {
            None => event.write(out, mode),
            Some(template) => template.render(out, now, &|sink: &mut dyn JsonOut| event.write(sink, mode)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::filter::Stream;

    const NOW: Now = Now { epoch_nanos: 1_685_683_801_002_213_900 };

    fn job_with_lines(n: usize, payload: usize) -> String {
        let lines: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"recipe_line_number":{i},"input":{{"x":"{}"}},"output":null,"mask_data":{}}}"#, "a".repeat(payload), i % 2 == 0))
            .collect();
        format!(
            r#"{{"id":"j-1","recipe_id":7,"status":"succeeded","completed_at":"2022-10-19T22:30:46-07:00","context":{{"user_id":5}},"lines":[{}]}}"#,
            lines.join(",")
        )
    }

    fn ready(p: Prepared) -> Document {
        match p {
            Prepared::Ready(d) => d,
            Prepared::Filtered(f) => panic!("filtered: {f}"),
        }
    }

    #[test]
    fn a_job_goes_through_every_step() {
        let doc = ready(Pipeline::default().prepare(&job_with_lines(2, 3), NOW).unwrap());
        assert_eq!(doc.key.as_str(), "5/jobs/7/20221020/j-1/5-7-j-1-20221020053046-succeeded.json");
        assert_eq!(doc.masked_lines, 1);
        assert!(!doc.truncated);
        assert_eq!(
            String::from_utf8(doc.body).unwrap(),
            r#"{"id":"j-1","recipe_id":7,"status":"succeeded","completed_at":"2022-10-19T22:30:46-07:00","context":{"user_id":5},"lines":[{"recipe_line_number":0,"input":{"data":"masked"},"output":{"data":"masked"},"mask_data":true},{"recipe_line_number":1,"input":{"x":"aaa"},"output":null,"mask_data":false}]}"#
        );
    }

    #[test]
    fn an_event_over_the_limit_keeps_everything_but_its_lines() {
        let body = job_with_lines(10, 1000);
        let pipeline = Pipeline::new(PipelineConfig { max_event_bytes: 2000, ..PipelineConfig::default() });
        let doc = ready(pipeline.prepare(&body, NOW).unwrap());
        assert!(doc.truncated);
        assert_eq!(
            String::from_utf8(doc.body).unwrap(),
            r#"{"id":"j-1","recipe_id":7,"status":"succeeded","completed_at":"2022-10-19T22:30:46-07:00","context":{"user_id":5},"lines":"Log lines exceed size limit"}"#
        );
        // exactly at the limit is fine
        let exact = ready(Pipeline::default().prepare(&body, NOW).unwrap()).body.len();
        let at_limit = Pipeline::new(PipelineConfig { max_event_bytes: exact, ..PipelineConfig::default() });
        assert!(!ready(at_limit.prepare(&body, NOW).unwrap()).truncated);
        let under = Pipeline::new(PipelineConfig { max_event_bytes: exact - 1, ..PipelineConfig::default() });
        assert!(ready(under.prepare(&body, NOW).unwrap()).truncated);
    }

    #[test]
    fn the_limit_applies_to_what_is_written_template_included() {
        let body = job_with_lines(1, 10);
        let plain = ready(Pipeline::default().prepare(&body, NOW).unwrap()).body.len();
        let template = LogTemplate::compile(r#"{"service":"workato","event":{{{log_message}}}}"#).unwrap();
        let pipeline = Pipeline::new(PipelineConfig { max_event_bytes: plain + 5, template: Some(template), ..PipelineConfig::default() });
        let doc = ready(pipeline.prepare(&body, NOW).unwrap());
        assert!(doc.truncated);
        assert!(doc.body.starts_with(br#"{"service":"workato","event":{"id":"j-1""#));
    }

    #[test]
    fn an_event_with_nothing_to_change_is_passed_through_verbatim() {
        let spaced = r#"{ "id": 1, "event_type": "user_login", "workspace": {"id": 1}, "timestamp": "2024-05-01T10:15:30Z" }"#;
        let p = Pipeline::default();
        assert_eq!(ready(p.prepare(spaced, NOW).unwrap()).body, spaced.as_bytes());
        assert_eq!(ready(p.prepare_owned(spaced.to_owned(), NOW, 1 << 20).unwrap()).body, spaced.as_bytes());
        // a masked line, a dropped lines field or a template means a rewrite
        let masked = job_with_lines(1, 2);
        assert_ne!(ready(p.prepare_owned(masked.clone(), NOW, 1 << 20).unwrap()).body, masked.as_bytes());
    }

    /// A failed job around `fields`, as the pipeline sees it.
    fn failed_job(fields: &str) -> String {
        format!(r#"{{"id":"j-1","recipe_id":7,"status":"failed","completed_at":"2022-10-19T22:30:46-07:00","context":{{"user_id":5}},{fields}}}"#)
    }

    #[test]
    fn masked_data_never_leaves_whatever_its_spelling() {
        // Each case hides the marker `hunter2` where masking must find it; the number is how
        // many lines are masked.
        let cases = [
            (r#""lines":[{"mask_data":"true","input":{"ssn":"hunter2"}}]"#, 1),
            (r#""lines":[{"mask_data":"TRUE","output":"hunter2"},{"mask_data":1,"input":"hunter2"},{"mask_data":"1","input":"hunter2"}]"#, 3),
            (r#""lines":[{"mask_data":{"on":false},"input":"hunter2"},{"mask_data":[],"input":"hunter2"},{"mask_data":"","input":"hunter2"}]"#, 3),
            (r#""lines":[],"lines":[{"mask_data":true,"input":{"x":"hunter2"}}]"#, 1),
            (r#""lines":[{"mask_data":false,"input":"a","mask_data":true,"input":"hunter2","output":"hunter2"}]"#, 1),
            (r#""l\u0069nes":[{"mask\u005fdata":true,"inp\u0075t":"hunter2","outp\u0075t":"hunter2"}]"#, 1),
            (r#""error":null,"error":"{\"message\":\"boom\",\"input\":{\"p\":\"hunter2\"}}""#, 0),
            (r#""error":"{\"input\":\"a\",\"inp\\u0075t\":\"hunter2\"}""#, 0),
            (r#""err\u006fr":{"message":"boom","input":{"p":"hunter2"}}"#, 0),
            (r#""error":"{\"message\":\"boom\",\"input\":NaN,\"p\":\"hunter2\"}""#, 0),
            (r#""error":"{\"input\":\"hunter2\"} (retried)""#, 0),
            (r#""error":"[{\"input\":\"hunter2\"}]""#, 0),
            (r#""error":[{"input":"hunter2"}]"#, 0),
            (r#""error":"Invalid input hunter2""#, 0),
            (r#""lines":"[{\"mask_data\":true,\"input\":\"hunter2\"}]""#, 0),
            (r#""lines":[{"mask_data":true,"error":"{\"input\":\"hunter2\"}"},{"mask_data":1,"error":"Invalid input: hunter2"}]"#, 2),
        ];
        for (fields, masked_lines) in cases {
            let body = failed_job(fields);
            let doc = ready(Pipeline::default().prepare(&body, NOW).unwrap());
            let out = String::from_utf8(doc.body).unwrap();
            assert!(!out.contains("hunter2"), "{body} let masked data out: {out}");
            assert_eq!(doc.masked_lines, masked_lines, "{body}");
            serde_json::from_str::<serde_json::Value>(&out).unwrap();
        }
    }

    #[test]
    fn events_that_ask_for_no_masking_are_kept_byte_for_byte() {
        let cases = [
            r#""lines":[{"input":"a"},{"mask_data":null,"input":"b"},{"mask_data":false,"input":"c"},{"mask_data":0,"output":"d"}]"#,
            r#""lines":[{"mask_data":-0.0,"input":"e"},{"mask_data":"false","input":"f"},{"mask_data":"FALSE","input":"g"}]"#,
            r#""lines" : [ { "mask_data" : "f\u0061lse" , "input" : "h" , "mask_data" : 0e5 } ]"#,
            r#""error":null,"lines":"Log lines exceed size limit""#,
            r#""error":"Connection timed out""#,
            r#""error":"{\"message\":\"boom\",\"input\":\"\\u003credacted\\u003e\"}""#,
            r#""error":{"message":"boom"}"#,
        ];
        for fields in cases {
            let body = failed_job(fields);
            let doc = ready(Pipeline::default().prepare(&body, NOW).unwrap());
            assert_eq!(String::from_utf8(doc.body).unwrap(), body);
            assert_eq!(doc.masked_lines, 0, "{body}");
        }
    }

    #[test]
    fn what_cannot_fit_is_a_permanent_error() {
        let body = r#"{"event_type":"user_login","id":1,"workspace":{"id":1},"timestamp":"2024-05-01T10:15:30Z","details":{"blob":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}"#;
        let pipeline = Pipeline::new(PipelineConfig { max_event_bytes: 50, ..PipelineConfig::default() });
        assert_eq!(pipeline.prepare(body, NOW).unwrap_err(), PrepareError::TooLarge { size: body.len(), limit: 50 });
    }

    #[test]
    fn filtered_events_are_not_documents() {
        let mut config = PipelineConfig::default();
        config.filter.streams = [Stream::UserActivity].into_iter().collect();
        assert!(matches!(Pipeline::new(config).prepare(&job_with_lines(1, 1), NOW).unwrap(), Prepared::Filtered(FilteredOut::JobStreamsOff)));
    }

    #[test]
    fn an_event_of_another_stream_is_delivered_masked_and_sized_like_a_job() {
        let lines: Vec<String> = (0..4)
            .map(|i| format!(r#"{{"step":{i},"input":{{"secret":"s3cr3t-{i}"}},"output":{{"v":"{}"}},"mask_data":{}}}"#, "o".repeat(200), i % 2 == 0))
            .collect();
        let body = format!(r#"{{"request_id":"req-1","workspace_id":4848,"timestamp":"2026-11-25T10:15:30Z","lines":[{}]}}"#, lines.join(","));
        let doc = ready(Pipeline::default().prepare(&body, NOW).unwrap());
        assert!(matches!(doc.meta, EventMeta::Other(_)));
        assert!(doc.key.as_str().starts_with("4848/other/20261125/req-1/4848-other-req-1-20261125101530-h"), "{}", doc.key);
        assert_eq!(doc.masked_lines, 2);
        let text = String::from_utf8(doc.body).unwrap();
        assert!(!text.contains("s3cr3t-0") && !text.contains("s3cr3t-2"), "{text}");
        assert!(text.contains("s3cr3t-1") && text.contains("s3cr3t-3"), "unmasked lines are kept: {text}");
        // over the limit, its lines become the placeholder and everything else stays
        let small = Pipeline::new(PipelineConfig { max_event_bytes: 200, ..PipelineConfig::default() });
        let doc = ready(small.prepare(&body, NOW).unwrap());
        assert!(doc.truncated);
        assert_eq!(
            String::from_utf8(doc.body).unwrap(),
            r#"{"request_id":"req-1","workspace_id":4848,"timestamp":"2026-11-25T10:15:30Z","lines":"Log lines exceed size limit"}"#
        );
        // and an event without time is filed under the day it was received
        let doc = ready(Pipeline::default().prepare(r#"{"hello":"world"}"#, NOW).unwrap());
        assert!(doc.key.as_str().starts_with("_/other/20230602/h"), "{}", doc.key);
        assert!(doc.key.as_str().ends_with("-20230602.json"), "{}", doc.key);
    }

    #[test]
    fn the_other_stream_can_be_left_out() {
        let mut config = PipelineConfig::default();
        config.filter.streams = [Stream::JobStatus, Stream::JobDetails, Stream::UserActivity].into_iter().collect();
        assert!(matches!(Pipeline::new(config).prepare(r#"{"hello":"world"}"#, NOW).unwrap(), Prepared::Filtered(FilteredOut::OtherOff)));
    }

    #[test]
    fn job_status_stream_sends_the_summary_only() {
        let mut config = PipelineConfig::default();
        config.filter.streams = [Stream::JobStatus].into_iter().collect();
        let doc = ready(Pipeline::new(config).prepare(&job_with_lines(3, 10), NOW).unwrap());
        assert!(!String::from_utf8(doc.body).unwrap().contains("lines"));
        assert_eq!(doc.masked_lines, 0);
    }

    #[test]
    fn bad_bodies_say_what_is_wrong_without_quoting_data() {
        let p = Pipeline::default();
        let cases = [
            ("{\"password\":\"hunter2\"", "body is not valid JSON: EOF while parsing an object at line 1 column 21"),
            ("[\"hunter2\"]", "body is JSON but not an object (an audit event is a JSON object)"),
            ("\"hunter2\"", "body is JSON but not an object (an audit event is a JSON object)"),
            ("{\"id\":\"j\",\"recipe_id\":1,\"status\":\"hunter2\",\"account_id\":1}", "job event has no `completed_at or started_at`"),
        ];
        for (body, want) in cases {
            let err = p.prepare(body, NOW).unwrap_err().to_string();
            assert_eq!(err, want);
            assert!(!err.contains("hunter2"));
        }
    }
}
