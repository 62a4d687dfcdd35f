//! An archived object back into the event it holds (pure). An archive holds each event as the
//! destination received it: the event itself, or, when a log message template was set
//! (`AUDITSTREAM_LOG_TEMPLATE`), the event inside the template's object, as a JSON object
//! (`{{{log_message}}}`) or as JSON text in a string (`{{{log_message_str}}}`). `--unwrap FIELD`
//! takes the event from that field (`a.b` for a field inside a field).
//!
//! An object that is not an audit event — not UTF-8, not one JSON object, or without the field —
//! is [`NotAnEvent`]: the replay names it and skips it, and never sends it.

use std::collections::HashMap;

use serde_json::value::RawValue;

/// Why an archived object is not an event. Names no content: an archive holds event data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAnEvent {
    #[error("not UTF-8 text (invalid byte at offset {0}); an audit event is JSON text")]
    NotText(usize),
    #[error("not one JSON object; an audit event is a JSON object")]
    NotAnObject,
    #[error("has no field {0:?} to unwrap (--unwrap names the field of the log message template that holds the event)")]
    NoField(String),
    #[error("its field {0:?} is neither a JSON object nor JSON text of one (--unwrap names the field of the log message template that holds the event)")]
    FieldNotAnEvent(String),
}

/// The event in `bytes`: the object itself, or with `unwrap` (a field name, `.` between nested
/// names) the object that field holds, or the JSON text of one that it holds as a string.
pub fn event_body(bytes: Vec<u8>, unwrap: Option<&str>) -> Result<String, NotAnEvent> {
    let text = String::from_utf8(bytes).map_err(|e| NotAnEvent::NotText(e.utf8_error().valid_up_to()))?;
    let Some(path) = unwrap else {
        return object_text(&text).then_some(text).ok_or(NotAnEvent::NotAnObject);
    };
    let mut current: &RawValue = serde_json::from_str(&text).map_err(|_| NotAnEvent::NotAnObject)?;
    for name in path.split('.') {
        let fields: HashMap<&str, &RawValue> = serde_json::from_str(current.get()).map_err(|_| NotAnEvent::NoField(path.to_owned()))?;
        current = fields.get(name).copied().ok_or_else(|| NotAnEvent::NoField(path.to_owned()))?;
    }
    let raw = current.get();
    if raw.starts_with('{') {
        return Ok(raw.to_owned());
    }
    match serde_json::from_str::<String>(raw) {
        Ok(inner) if object_text(&inner) => Ok(inner),
        _ => Err(NotAnEvent::FieldNotAnEvent(path.to_owned())),
    }
}

/// Whether `text` is exactly one JSON object (whitespace around it allowed).
fn object_text(text: &str) -> bool {
    text.trim_start().starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"id":"j-1","lines":[{"input":"*****"}]}"#;

    #[test]
    fn an_archived_event_is_read_back_as_it_was_written() {
        assert_eq!(event_body(EVENT.into(), None).unwrap(), EVENT);
        assert_eq!(event_body(format!("{EVENT}\n").into(), None).unwrap(), format!("{EVENT}\n"));
    }

    #[test]
    fn a_templated_archive_is_unwrapped_from_the_field_holding_the_event_as_an_object_or_as_text() {
        let as_object = format!(r#"{{"time":"2024-01-01T00:00:00Z","event":{EVENT}}}"#);
        assert_eq!(event_body(as_object.into(), Some("event")).unwrap(), EVENT);
        let as_text = serde_json::json!({"meta": {"event": EVENT}}).to_string();
        assert_eq!(event_body(as_text.into(), Some("meta.event")).unwrap(), EVENT);
    }

    #[test]
    fn what_is_not_an_event_says_why_without_quoting_it() {
        assert_eq!(event_body(vec![b'{', 0xff], None), Err(NotAnEvent::NotText(1)));
        for not_object in ["[1]", "\"x\"", "{\"a\":", "{} {}", "", "secret words"] {
            assert_eq!(event_body(not_object.into(), None), Err(NotAnEvent::NotAnObject), "{not_object}");
        }
        assert_eq!(event_body(EVENT.into(), Some("event")), Err(NotAnEvent::NoField("event".into())));
        assert_eq!(event_body(r#"{"event":"secret words"}"#.into(), Some("event")), Err(NotAnEvent::FieldNotAnEvent("event".into())));
        assert_eq!(event_body(r#"{"event":[1]}"#.into(), Some("event")), Err(NotAnEvent::FieldNotAnEvent("event".into())));
        assert_eq!(event_body(r#"{"event":1}"#.into(), Some("event.x")), Err(NotAnEvent::NoField("event.x".into())));
        let err = event_body(r#"{"event":"secret words"}"#.into(), Some("event")).unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
    }
}
