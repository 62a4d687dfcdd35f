//! "Customize log message" (`docs/event-format.md`, "Customize log message"): an optional JSON template the event is wrapped in.
//!
//! Placeholders, in Mustache style with two or three braces (both are documented by Workato):
//!
//! | placeholder            | as a JSON value                          | inside a JSON string      |
//! |------------------------|------------------------------------------|---------------------------|
//! | `{{{log_message}}}`    | the event, as a JSON object              | the event's JSON text     |
//! | `{{{log_message_str}}}`| the event's JSON text as a JSON string   | the event's JSON text     |
//! | `{{{now}}}`            | `"2023-06-02T05:30:01.002+00:00"`        | the same, without quotes  |
//! | `{{{now_utc}}}`        | epoch milliseconds, `1685683801002.2139` | the same digits           |
//! | `{{{now_utc_micro}}}`  | epoch microseconds                       | the same digits           |
//! | `{{{now_utc_nano}}}`   | epoch nanoseconds                        | the same digits           |
//!
//! A placeholder is "inside a JSON string" when it stands directly between two double quotes,
//! as in `"time":"{{{now}}}"`. Workato's fallback rule applies: a template that is not valid JSON
//! once filled in, or that has no log_message placeholder, is ignored and events go out as they
//! are. [`LogTemplate::compile`] says why, so the function can warn once at cold start.

use std::collections::{BTreeMap, BTreeSet};

use crate::pipeline::json_text::{JsonOut, StringContents};
use crate::pipeline::timestamp::Now;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    LogMessage,
    LogMessageStr,
    Now,
    NowUtc,
    NowUtcMicro,
    NowUtcNano,
}

impl Placeholder {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "log_message" => Self::LogMessage,
            "log_message_str" => Self::LogMessageStr,
            "now" => Self::Now,
            "now_utc" => Self::NowUtc,
            "now_utc_micro" => Self::NowUtcMicro,
            "now_utc_nano" => Self::NowUtcNano,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Value(Placeholder),
    InString(Placeholder),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTemplate {
    segments: Vec<Segment>,
    /// The top-level keys of the template's own object; `None` when its top level is not an
    /// object written in the template (a bare `{{{log_message}}}`, an array).
    object_keys: Option<BTreeSet<String>>,
}

/// Why a template was ignored.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TemplateProblem {
    #[error("it has no {{{{{{log_message}}}}}} or {{{{{{log_message_str}}}}}} placeholder")]
    NoLogMessage,
    #[error("it is not valid JSON once its placeholders are filled in ({0})")]
    NotJson(String),
    #[error("it has an unknown placeholder {{{{{0}}}}}; known: log_message, log_message_str, now, now_utc, now_utc_micro, now_utc_nano")]
    UnknownPlaceholder(String),
}

impl LogTemplate {
    /// Compiles a template, or says why Workato's fallback rule makes us ignore it.
    pub fn compile(text: &str) -> Result<LogTemplate, TemplateProblem> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            let triple = rest[open..].starts_with("{{{");
            let (open_len, close) = if triple { (3, "}}}") } else { (2, "}}") };
            let after = &rest[open + open_len..];
            let Some(close_at) = after.find(close) else { break };
            let name = after[..close_at].trim();
            let Some(placeholder) = Placeholder::from_name(name) else {
                // `{{` can occur in a template for other reasons only inside strings; a name we do
                // not know is almost certainly a typo worth reporting.
                if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !name.is_empty() {
                    return Err(TemplateProblem::UnknownPlaceholder(name.to_owned()));
                }
                literal.push_str(&rest[..open + 2]);
                rest = &rest[open + 2..];
                continue;
            };
            literal.push_str(&rest[..open]);
            let end = open + open_len + close_at + close.len();
            let in_string = literal.ends_with('"') && rest[end..].starts_with('"');
            segments.push(Segment::Literal(std::mem::take(&mut literal)));
            segments.push(if in_string { Segment::InString(placeholder) } else { Segment::Value(placeholder) });
            rest = &rest[end..];
        }
        literal.push_str(rest);
        segments.push(Segment::Literal(literal));
        segments.retain(|s| !matches!(s, Segment::Literal(l) if l.is_empty()));

        let has_message =
            segments.iter().any(|s| matches!(s, Segment::Value(p) | Segment::InString(p) if matches!(p, Placeholder::LogMessage | Placeholder::LogMessageStr)));
        if !has_message {
            return Err(TemplateProblem::NoLogMessage);
        }
        let mut template = LogTemplate { segments, object_keys: None };
        // Valid JSON is checked with the placeholders filled in, the way events will see it.
        let mut sample = Vec::new();
        template.render(&mut sample, Now { epoch_nanos: 1_685_683_801_002_213_900 }, &|out: &mut dyn JsonOut| out.raw(r#"{"id":"j-1","lines":[]}"#));
        serde_json::from_slice::<serde::de::IgnoredAny>(&sample).map_err(|e| TemplateProblem::NotJson(e.to_string()))?;
        let own_object = matches!(template.segments.first(), Some(Segment::Literal(l)) if l.trim_start().starts_with('{'));
        if own_object {
            template.object_keys = serde_json::from_slice::<BTreeMap<String, serde::de::IgnoredAny>>(&sample).ok().map(|m| m.into_keys().collect());
        }
        Ok(template)
    }

    /// The top-level keys of the object the template writes around the event, e.g. `ddsource`,
    /// `service` and `message` for `{"ddsource":"workato","service":"x","message":{{{log_message}}}}`;
    /// `None` when the template's top level is the event itself or not an object. The REST presets
    /// read it to tell a template that is already their vendor's object from one that is the event
    /// they carry ([`crate::destinations::rest`]).
    pub fn object_keys(&self) -> Option<&BTreeSet<String>> {
        self.object_keys.as_ref()
    }

    /// The bytes the template adds around the event, an upper bound used for sizing.
    pub fn overhead(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.len(),
                _ => 40,
            })
            .sum()
    }

    /// Renders the template into `out`. `event` writes the event into the sink it is given; it
    /// is called once per log_message placeholder.
    pub fn render(&self, out: &mut Vec<u8>, now: Now, event: &dyn Fn(&mut dyn JsonOut)) {
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.extend_from_slice(text.as_bytes()),
                Segment::Value(Placeholder::LogMessage) => event(out),
                Segment::Value(Placeholder::LogMessageStr) => {
                    out.push(b'"');
                    event(&mut StringContents(out));
                    out.push(b'"');
                }
                Segment::InString(Placeholder::LogMessage | Placeholder::LogMessageStr) => event(&mut StringContents(out)),
                Segment::Value(Placeholder::Now) => {
                    out.push(b'"');
                    out.extend_from_slice(now.iso8601().as_bytes());
                    out.push(b'"');
                }
                Segment::InString(Placeholder::Now) => out.extend_from_slice(now.iso8601().as_bytes()),
                Segment::Value(p) | Segment::InString(p) => {
                    let text = match p {
                        Placeholder::NowUtc => now.epoch_millis_fractional(),
                        Placeholder::NowUtcMicro => now.epoch_micros().to_string(),
                        _ => now.epoch_nanos.to_string(),
                    };
                    out.extend_from_slice(text.as_bytes());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Now = Now { epoch_nanos: 1_685_683_801_002_213_900 };
    const EVENT: &str = r#"{"id":"j-1","note":"a \"quoted\" word"}"#;

    fn render(template: &str) -> String {
        let t = LogTemplate::compile(template).unwrap_or_else(|e| panic!("{template}: {e}"));
        let mut out = Vec::new();
        t.render(&mut out, NOW, &|o: &mut dyn JsonOut| o.raw(EVENT));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn placeholders_render_as_the_spec_shows() {
        let cases = [
            // the documented Datadog example, double braces
            (
                r#"{"source":"workato","environment":"staging","hostname":"workato_cloud","logEntries": {{log_message}} }"#,
                r#"{"source":"workato","environment":"staging","hostname":"workato_cloud","logEntries": {"id":"j-1","note":"a \"quoted\" word"} }"#,
            ),
            (r#"{"log_message": {{{log_message}}}, "service":"workato"}"#, r#"{"log_message": {"id":"j-1","note":"a \"quoted\" word"}, "service":"workato"}"#),
            // Grafana Loki needs the event as a string
            (
                r#"{"log_message_str": {{{log_message_str}}}, "now_utc_micro": {{{now_utc_micro}}}}"#,
                r#"{"log_message_str": "{\"id\":\"j-1\",\"note\":\"a \\\"quoted\\\" word\"}", "now_utc_micro": 1685683801002213}"#,
            ),
            (
                r#"{"m":{{{log_message}}},"now":{{{now}}},"ms":{{{now_utc}}},"ns":{{{now_utc_nano}}}}"#,
                r#"{"m":{"id":"j-1","note":"a \"quoted\" word"},"now":"2023-06-02T05:30:01.002+00:00","ms":1685683801002.2139,"ns":1685683801002213900}"#,
            ),
            // inside quotes, values are spliced into the string
            (
                r#"{"m":{{{log_message}}},"at":"{{{now}}}","us":"{{ now_utc_micro }}"}"#,
                r#"{"m":{"id":"j-1","note":"a \"quoted\" word"},"at":"2023-06-02T05:30:01.002+00:00","us":"1685683801002213"}"#,
            ),
        ];
        for (template, want) in cases {
            let got = render(template);
            assert_eq!(got, want, "{template}");
            serde_json::from_str::<serde_json::Value>(&got).unwrap();
        }
    }

    #[test]
    fn the_fallback_rule_ignores_bad_templates_and_says_why() {
        assert_eq!(LogTemplate::compile(r#"{"source":"workato"}"#), Err(TemplateProblem::NoLogMessage));
        assert_eq!(LogTemplate::compile(r#"{"now": {{{now}}}}"#), Err(TemplateProblem::NoLogMessage));
        assert!(matches!(LogTemplate::compile(r#"{"m": {{{log_message}}}"#), Err(TemplateProblem::NotJson(_))));
        assert!(matches!(LogTemplate::compile(r#"{"m": "{{{log_message}}}" "#), Err(TemplateProblem::NotJson(_))));
        assert_eq!(LogTemplate::compile(r#"{"m": {{{log_mesage}}}}"#), Err(TemplateProblem::UnknownPlaceholder("log_mesage".into())));
        // log_message_str alone satisfies the rule
        assert!(LogTemplate::compile(r#"{"line": {{{log_message_str}}}}"#).is_ok());
    }

    #[test]
    fn the_keys_of_the_templates_own_object_are_known() {
        let keys = |t: &str| LogTemplate::compile(t).unwrap().object_keys().map(|k| k.iter().cloned().collect::<Vec<_>>());
        assert_eq!(
            keys(r#"{"ddsource":"workato","service":"x","message":{{{log_message}}}}"#),
            Some(vec!["ddsource".into(), "message".into(), "service".into()])
        );
        assert_eq!(keys(r#" { "event" : {{{log_message}}}, "sourcetype":"workato" } "#), Some(vec!["event".into(), "sourcetype".into()]));
        // escaped key names are read as JSON reads them
        assert_eq!(keys(r#"{"mess\u0061ge":{{{log_message_str}}}}"#), Some(vec!["message".into()]));
        // the event itself, or no object of the template's own
        assert_eq!(keys("{{{log_message}}}"), None);
        assert_eq!(keys(r#"[{{{log_message}}}]"#), None);
    }

    #[test]
    fn problems_read_well() {
        assert_eq!(TemplateProblem::NoLogMessage.to_string(), "it has no {{{log_message}}} or {{{log_message_str}}} placeholder");
    }
}
