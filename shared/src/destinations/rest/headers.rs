//! Extra request headers (`AUDITSTREAM_REST_HEADERS`) and the event-id header receivers
//! deduplicate by.
//!
//! `AUDITSTREAM_REST_HEADERS` is `Name: value; Other-Name: value`. Values may be secrets (an API
//! key in a custom header), so they are marked sensitive and never echoed in an error. Headers the
//! forwarder computes itself (length, encoding, the event ids) or that belong to the connection
//! cannot be set there.
//!
//! Every request carries `X-Auditstream-Event-Ids`: the ids of its events, comma-separated, in
//! body order — a job's `id`, an activity's `id`, or the name its object key gives it: for a 2019
//! activity event without an id (`h` + a digest of the event), and for every other event (neither a
//! job nor an activity), whose key holds its id and a digest of its content (see [`crate::pipeline::key`]):
//! two such events that share an id are two events, not a retry. Characters other than
//! `A–Z a–z 0–9 - _ . ~ :` are percent-encoded, so the list splits safely on commas. A redelivered
//! or retried event carries the same id. When the list would be longer than
//! [`MAX_IDS_HEADER_BYTES`] (large batches; many servers cap a header line at 8 KiB) it is replaced
//! by `X-Auditstream-Event-Ids-Sha256`, the SHA-256 of the list, which still identifies a resent
//! request; each event carries its own id in the body.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use super::auth::header_name_from;
use crate::config::ConfigError;
use crate::pipeline::event::EventMeta;
use crate::pipeline::Document;

pub const HEADERS_VAR: &str = "AUDITSTREAM_REST_HEADERS";
pub const EVENT_IDS_HEADER: &str = "x-auditstream-event-ids";
pub const EVENT_IDS_SHA256_HEADER: &str = "x-auditstream-event-ids-sha256";
pub const MAX_IDS_HEADER_BYTES: usize = 4096;

/// Headers that are the forwarder's to set.
const RESERVED: &[&str] =
    &["host", "content-length", "content-encoding", "transfer-encoding", "connection", "te", "upgrade", EVENT_IDS_HEADER, EVENT_IDS_SHA256_HEADER];

/// Parses `Name: value; Other: value`.
pub fn parse_extra_headers(text: &str) -> Result<HeaderMap, ConfigError> {
    let mut headers = HeaderMap::new();
    for (i, part) in text.split(';').map(str::trim).filter(|p| !p.is_empty()).enumerate() {
        let n = i + 1;
        let Some((name, value)) = part.split_once(':') else {
            return Err(ConfigError::InvalidSecret { var: HEADERS_VAR, reason: format!("header {n} has no `:`; write `Name: value; Other-Name: value`") });
        };
        let name = header_name_from(HEADERS_VAR, name)?;
        if RESERVED.contains(&name.as_str()) {
            return Err(ConfigError::InvalidSecret {
                var: HEADERS_VAR,
                reason: format!("header {name} is set by the forwarder itself and cannot be configured"),
            });
        }
        let mut value = HeaderValue::from_str(value.trim()).map_err(|_| ConfigError::InvalidSecret {
            var: HEADERS_VAR,
            reason: format!("the value of header {name} holds characters an HTTP header cannot carry"),
        })?;
        value.set_sensitive(true);
        headers.append(name, value);
    }
    Ok(headers)
}

/// The event-id header for a request holding `docs` (see the module docs).
pub fn event_ids_header(docs: &[&Document]) -> (HeaderName, HeaderValue) {
    let mut list = String::with_capacity(docs.len() * 24);
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        push_encoded(&mut list, &event_id(doc));
    }
    if list.len() <= MAX_IDS_HEADER_BYTES {
        // Only visible ASCII is left after encoding, so this cannot fail.
        if let Ok(value) = HeaderValue::from_str(&list) {
            return (HeaderName::from_static(EVENT_IDS_HEADER), value);
        }
    }
    let digest = Sha256::digest(list.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    (HeaderName::from_static(EVENT_IDS_SHA256_HEADER), HeaderValue::from_str(&hex).unwrap_or(HeaderValue::from_static("-")))
}

/// The id an event is known by: its own, or the name its object key gives it.
pub fn event_id(doc: &Document) -> std::borrow::Cow<'_, str> {
    match doc.meta.event_id().filter(|_| !matches!(doc.meta, EventMeta::Other(_))) {
        Some(id) => id.into(),
        None => {
            let key = doc.key.as_str();
            let name = key.rsplit('/').next().unwrap_or(key);
            name.strip_suffix(".json").unwrap_or(name).into()
        }
    }
}

fn push_encoded(out: &mut String, id: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::event::{ActivityMeta, EventMeta, JobMeta, OtherMeta};
    use crate::pipeline::key::{KeyLayout, KeyPrefix, ObjectKey};
    use crate::pipeline::timestamp::UtcTime;

    fn job(id: &str) -> Document {
        let meta = EventMeta::Job(JobMeta {
            id: id.into(),
            recipe_id: "7".into(),
            status: "succeeded".into(),
            user_id: "5".into(),
            time: UtcTime::from_epoch_seconds(0),
        });
        let key = ObjectKey::for_event(&meta, KeyLayout::Standard, &KeyPrefix::default(), b"");
        Document { key, body: b"{}".to_vec(), meta, masked_lines: 0, truncated: false }
    }

    #[test]
    fn extra_headers_parse_and_hide_their_values() {
        let h = parse_extra_headers("X-Env: prod; X-Api-Key: k3y-value ;").unwrap();
        assert_eq!(h.get("x-env").unwrap(), "prod");
        assert_eq!(h.get("x-api-key").unwrap(), "k3y-value");
        assert!(h.get("x-api-key").unwrap().is_sensitive());
        let cases = [
            ("X-Env prod", "AUDITSTREAM_REST_HEADERS is not valid: header 1 has no `:`; write `Name: value; Other-Name: value`"),
            ("A: 1; Content-Length: 5", "AUDITSTREAM_REST_HEADERS is not valid: header content-length is set by the forwarder itself and cannot be configured"),
            ("X-Key: s3cret\u{7}", "AUDITSTREAM_REST_HEADERS is not valid: the value of header x-key holds characters an HTTP header cannot carry"),
        ];
        for (text, want) in cases {
            let err = parse_extra_headers(text).unwrap_err().to_string();
            assert_eq!(err, want);
        }
    }

    #[test]
    fn event_ids_name_every_event_in_order() {
        let docs = [job("j-AEcaNzd9-dGQ4Bf"), job("42"), job("a,b c/é")];
        let refs: Vec<&Document> = docs.iter().collect();
        let (name, value) = event_ids_header(&refs);
        assert_eq!(name, EVENT_IDS_HEADER);
        assert_eq!(value, "j-AEcaNzd9-dGQ4Bf,42,a%2Cb%20c%2F%C3%A9");
    }

    #[test]
    fn an_activity_without_id_is_named_by_its_key() {
        let meta = EventMeta::Activity(ActivityMeta {
            id: None,
            event_type: "user_login".into(),
            resource_type: None,
            workspace_id: "9".into(),
            time: UtcTime::from_epoch_seconds(0),
        });
        let key = ObjectKey::for_event(&meta, KeyLayout::Standard, &KeyPrefix::default(), b"{\"event\":\"user_login\"}");
        let name = key.as_str().rsplit('/').next().unwrap().trim_end_matches(".json").to_owned();
        let doc = Document { key, body: b"{}".to_vec(), meta, masked_lines: 0, truncated: false };
        assert_eq!(event_id(&doc), name);
        assert!(name.starts_with("9-user_login-h"), "{name}");
    }

    #[test]
    fn an_other_event_is_named_by_its_key_which_holds_its_id_and_its_content() {
        let doc = |body: &str| {
            let meta = EventMeta::Other(OtherMeta {
                id: Some("req-1".into()),
                workspace_id: Some("9".into()),
                time: UtcTime::from_epoch_seconds(0),
                time_field: Some("timestamp"),
            });
            let key = ObjectKey::for_event(&meta, KeyLayout::Standard, &KeyPrefix::default(), body.as_bytes());
            Document { key, body: body.as_bytes().to_vec(), meta, masked_lines: 0, truncated: false }
        };
        let (first, changed) = (doc(r#"{"request_id":"req-1","status":200}"#), doc(r#"{"request_id":"req-1","status":500}"#));
        assert!(event_id(&first).starts_with("9-other-req-1-19700101000000-h"), "{}", event_id(&first));
        // two events sharing an id are two objects, so receivers must not take one for the other
        assert_ne!(event_id(&first), event_id(&changed));
        assert_eq!(event_id(&first), event_id(&doc(r#"{"request_id":"req-1","status":200}"#)));
    }

    #[test]
    fn a_long_list_becomes_a_digest() {
        let docs: Vec<Document> = (0..1000).map(|i| job(&format!("j-{i:020}"))).collect();
        let refs: Vec<&Document> = docs.iter().collect();
        let (name, value) = event_ids_header(&refs);
        assert_eq!(name, EVENT_IDS_SHA256_HEADER);
        assert_eq!(value.len(), 64);
        // the same request again has the same digest
        assert_eq!(event_ids_header(&refs).1, value);
    }
}
