//! The oracle: what must hold for every event, whatever the configuration.
//!
//! [`check_event`] runs a [`Planted`] event through [`Pipeline::prepare`] in every lines mode
//! (job details, job status, the size placeholder), with no template and with templates that embed
//! the event as a value, as a JSON string (`{{{log_message_str}}}`) and inside a string, and
//! through both scanners. It fails when
//! - a secret marker appears in any output byte, in an error message (`Display` or `Debug`) or in
//!   anything logged (through `tracing`) while preparing;
//! - a control value is not in the output byte-for-byte where it is kept (inside a string template,
//!   as the JSON string escape of those bytes);
//! - a valid generated event is not delivered, or what is delivered is not JSON;
//! - the two scanners read the event differently.
//!
//! [`check_scanners_agree`] and [`check_any_body`] hold for any text at all (the byte fuzzer).

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};

use auditstream::pipeline::filter::{EventFilter, Stream};
use auditstream::pipeline::scan::summary::ScanSummary;
use auditstream::pipeline::scan::{ScanError, ScannedObject};
use auditstream::pipeline::template::LogTemplate;
use auditstream::pipeline::timestamp::Now;
use auditstream::pipeline::write::{LinesMode, MaskedEvent};
use auditstream::pipeline::{Pipeline, PipelineConfig, PrepareError, Prepared};

use crate::event::{Kind, Planted, SECRET_PREFIX};

const NOW: Now = Now { epoch_nanos: 1_685_683_801_002_213_900 };

/// A property that did not hold, with what is needed to see why.
#[derive(Debug)]
pub struct Violation {
    pub what: String,
    pub scenario: String,
    pub input: String,
    pub output: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})\n  input:  {}\n  output: {}", self.what, self.scenario, self.input, self.output)
    }
}

impl std::error::Error for Violation {}

/// How the event's bytes appear in what a template writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Embedding {
    /// As they are (no template, or `{{{log_message}}}` as a value).
    Verbatim,
    /// As the contents of a JSON string.
    Escaped,
}

/// The templates every event is tried with.
const TEMPLATES: [(&str, Embedding); 4] = [
    ("", Embedding::Verbatim),
    (r#"{"service":"workato","event":{{{log_message}}}}"#, Embedding::Verbatim),
    (r#"{"message":{{{log_message_str}}},"at":"{{{now}}}"}"#, Embedding::Escaped),
    (r#"{"text":"{{{log_message}}}","ms":{{{now_utc}}}}"#, Embedding::Escaped),
];

/// Runs `planted` through every configuration and both scanners; the first property that fails.
/// Everything logged meanwhile (through `tracing`, at every level) is captured and checked too.
pub fn check_event(planted: &Planted) -> Result<(), Violation> {
    let (result, logs) = with_logs(|| check_every_configuration(planted));
    result?;
    if logs.contains(SECRET_PREFIX) {
        return Err(violation(planted, "a secret marker was logged", "while preparing", logs.as_bytes()));
    }
    Ok(())
}

fn check_every_configuration(planted: &Planted) -> Result<(), Violation> {
    let body = planted.body.as_str();
    check_scanners_agree(body)?;
    for (template_text, embedding) in TEMPLATES {
        let template = (!template_text.is_empty()).then(|| LogTemplate::compile(template_text).expect("the oracle's templates compile"));
        // Only jobs have a stream without their lines (job status); activities and other events
        // are always sent whole, lines masked.
        let modes: &[LinesMode] = if planted.kind == Kind::Job { &[LinesMode::Keep, LinesMode::Drop] } else { &[LinesMode::Keep] };
        for &lines_mode in modes {
            let streams = match lines_mode {
                LinesMode::Keep => Stream::ALL.into_iter().collect(),
                _ => [Stream::JobStatus].into_iter().collect(),
            };
            let config = PipelineConfig { filter: EventFilter { streams, ..EventFilter::default() }, template: template.clone(), ..PipelineConfig::default() };
            let pipeline = Pipeline::new(config);
            let scenario = format!("{lines_mode:?} lines, template {template_text:?}");
            let result = pipeline.prepare(body, NOW);
            let doc = delivered(planted, result, &scenario)?;
            check_document(planted, &doc.body, embedding, lines_mode == LinesMode::Keep && !doc.truncated, &scenario)?;
            if doc.truncated {
                return Err(violation(planted, "an event far below the size limit had its lines replaced", &scenario, &doc.body));
            }
            if lines_mode == LinesMode::Keep && planted.has_steps {
                // One byte less than the event needs: its lines give way to the size placeholder,
                // or, if even that does not fit, a permanent error.
                let limit = doc.body.len() - 1;
                let scenario = format!("{scenario}, limit {limit} (placeholder)");
                let result = pipeline.prepare_within(body, NOW, limit);
                match result {
                    Err(e @ PrepareError::TooLarge { .. }) => {
                        let text = format!("{e} / {e:?}");
                        if text.contains(SECRET_PREFIX) {
                            return Err(violation(planted, "an error message quotes a secret", &scenario, text.as_bytes()));
                        }
                    }
                    other => {
                        let doc = delivered(planted, other, &scenario)?;
                        check_document(planted, &doc.body, embedding, false, &scenario)?;
                    }
                }
            }
            if template.is_none() && lines_mode == LinesMode::Keep {
                // The owned entry point may hand the input back without copying it: the same
                // rules apply to that shortcut.
                let scenario = format!("{scenario}, prepare_owned");
                let result = pipeline.prepare_owned(body.to_owned(), NOW, usize::MAX);
                let owned = delivered(planted, result, &scenario)?;
                if owned.body != doc.body {
                    return Err(violation(planted, "prepare_owned wrote other bytes than prepare", &scenario, &owned.body));
                }
            }
        }
    }
    check_reference_scan_masks_alike(planted)
}

/// The event written through the reference scanner is the same bytes as through the fast one, in
/// every lines mode: masking does not depend on which scanner read the event.
fn check_reference_scan_masks_alike(planted: &Planted) -> Result<(), Violation> {
    let body = planted.body.as_str();
    let write = |scanned: Result<ScannedObject<'_>, ScanError>, mode| {
        scanned.map(|s| {
            let mut out = Vec::new();
            MaskedEvent::new(s).write(&mut out, mode);
            out
        })
    };
    for mode in [LinesMode::Keep, LinesMode::Drop, LinesMode::Placeholder] {
        let scenario = format!("MaskedEvent::write, {mode:?} lines");
        let fast = write(auditstream::pipeline::scan::fast::scan(body), mode);
        let reference = write(ScannedObject::scan_reference(body), mode);
        match (fast, reference) {
            (Ok(fast), Ok(reference)) => {
                if fast != reference {
                    return Err(violation(planted, "the fast and the reference scanner mask differently", &scenario, &reference));
                }
                check_document(planted, &reference, Embedding::Verbatim, mode == LinesMode::Keep, &scenario)?;
            }
            (fast, reference) => {
                let what = format!("a generated event was not scanned: fast {:?}, reference {:?}", fast.err(), reference.err());
                return Err(violation(planted, &what, &scenario, b""));
            }
        }
    }
    Ok(())
}

/// A generated event must be delivered; an error must not quote a secret either way.
fn delivered(planted: &Planted, result: Result<Prepared, PrepareError>, scenario: &str) -> Result<auditstream::pipeline::Document, Violation> {
    match result {
        Ok(Prepared::Ready(doc)) => Ok(doc),
        Ok(Prepared::Filtered(why)) => Err(violation(planted, &format!("a generated event was filtered: {why}"), scenario, b"")),
        Err(e) => {
            let text = format!("{e} / {e:?}");
            if text.contains(SECRET_PREFIX) {
                return Err(violation(planted, "an error message quotes a secret", scenario, text.as_bytes()));
            }
            Err(violation(planted, &format!("a valid generated event was refused: {e}"), scenario, b""))
        }
    }
}

fn check_document(planted: &Planted, out: &[u8], embedding: Embedding, lines_kept: bool, scenario: &str) -> Result<(), Violation> {
    if memchr_find(out, SECRET_PREFIX.as_bytes()) {
        return Err(violation(planted, "a secret marker reached the output", scenario, out));
    }
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(out) {
        return Err(violation(planted, &format!("the output is not JSON: {e}"), scenario, out));
    }
    for control in &planted.controls {
        if control.in_lines && !lines_kept {
            continue;
        }
        let expected = match embedding {
            Embedding::Verbatim => control.text.clone(),
            Embedding::Escaped => {
                let quoted = serde_json::to_string(&control.text).unwrap_or_default();
                quoted[1..quoted.len() - 1].to_owned()
            }
        };
        if !memchr_find(out, expected.as_bytes()) {
            return Err(violation(planted, &format!("a value that must be kept is not in the output byte-for-byte: {expected}"), scenario, out));
        }
    }
    Ok(())
}

fn violation(planted: &Planted, what: &str, scenario: &str, output: &[u8]) -> Violation {
    Violation { what: what.to_owned(), scenario: scenario.to_owned(), input: planted.body.clone(), output: String::from_utf8_lossy(output).into_owned() }
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// Runs `f` with everything it logs through `tracing`, at every level, captured as text.
pub fn with_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    let buffer = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt().with_writer(buffer.clone()).with_max_level(tracing::Level::TRACE).finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    let logs = String::from_utf8_lossy(&buffer.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    (result, logs)
}

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The fast scanner and the serde_json-based reference make the same decision about `input` and,
/// when they accept it, return the same fields (see the differential tests of `pipeline::scan::fast`).
pub fn check_scanners_agree(input: &str) -> Result<(), Violation> {
    let fast = ScanSummary::of(input, auditstream::pipeline::scan::fast::scan(input));
    let reference = ScanSummary::of(input, ScannedObject::scan_reference(input));
    if fast != reference {
        return Err(Violation {
            what: "the fast scanner and the reference disagree".into(),
            scenario: "scan::fast::scan vs ScannedObject::scan_reference".into(),
            input: input.to_owned(),
            output: format!("fast: {fast:?}\nreference: {reference:?}"),
        });
    }
    Ok(())
}

/// For any text: the pipeline answers without panicking, and what it delivers is JSON.
pub fn check_any_body(input: &str) -> Result<(), Violation> {
    check_scanners_agree(input)?;
    if let Ok(Prepared::Ready(doc)) = Pipeline::default().prepare(input, NOW) {
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&doc.body) {
            return Err(Violation {
                what: format!("the output is not JSON: {e}"),
                scenario: "default pipeline".into(),
                input: input.to_owned(),
                output: String::from_utf8_lossy(&doc.body).into_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Control;

    fn planted(body: &str, secrets: usize, controls: &[&str]) -> Planted {
        Planted {
            body: body.to_owned(),
            secrets,
            controls: controls.iter().map(|c| Control { text: (*c).to_owned(), in_lines: true }).collect(),
            has_steps: true,
            shapes: Vec::new(),
            kind: Kind::Job,
        }
    }

    const JOB: &str = r#""id":"j-1","recipe_id":7,"status":"failed","completed_at":"2022-10-19T22:30:46-07:00","context":{"user_id":5}"#;

    #[test]
    fn the_oracle_passes_a_masked_event_and_finds_each_kind_of_failure() {
        let ok = planted(
            &format!(r#"{{{JOB},"lines":[{{"input":"SECRETM00001","mask_data":true}},{{"input":"CONTROLK00002","mask_data":false}}]}}"#),
            1,
            &[r#""CONTROLK00002""#],
        );
        check_event(&ok).unwrap();

        // A secret outside anything masking acts on reaches the output.
        let leak = planted(&format!(r#"{{{JOB},"note":"SECRETM00001"}}"#), 1, &[]);
        let v = check_event(&leak).unwrap_err();
        assert!(v.what.contains("secret marker reached the output"), "{v}");

        // A value said to be kept is not in the output byte-for-byte (here: it is masked).
        let blanked = planted(&format!(r#"{{{JOB},"lines":[{{"input":"CONTROLK00001","mask_data":true}}]}}"#), 0, &[r#""CONTROLK00001""#]);
        let v = check_event(&blanked).unwrap_err();
        assert!(v.what.contains("must be kept"), "{v}");

        // Not an event at all: refused, which a generated event never is. (`{}` is no longer such a
        // body: any JSON object is delivered, in the `other` stream.)
        let refused = planted("[1]", 0, &[]);
        let v = check_event(&refused).unwrap_err();
        assert!(v.what.contains("refused"), "{v}");
    }

    #[test]
    fn the_log_capture_sees_every_level() {
        let ((), logs) = with_logs(|| {
            tracing::trace!(field = "SECRETM00001", "a trace");
            tracing::error!("an error");
        });
        assert!(logs.contains("SECRETM00001") && logs.contains("an error"), "{logs}");
    }
}
