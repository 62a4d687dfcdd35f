//! What kind of audit event a scanned object is, and the few fields the pipeline needs from it.
//!
//! Two families (`docs/event-format.md`, "Event shapes"): **job** events (job history, with or without step `lines`) and
//! **activity** events (logins and user activity). Activity events come in today's API shape
//! (`event_type`, `workspace`) and the 2019 stream shape (`event`, `team`); both are accepted.
//!
//! Any other JSON object is an **other** event (API platform request logs, Workato Log events,
//! Genie conversations, streams not invented yet): it is delivered too, not refused. Nothing about
//! its shape is known, so its few key fields are looked for by name, in a fixed order, and a field
//! that is absent, `null`, empty or of an unexpected type is passed over for the next:
//!
//! - workspace: `workspace_id`, `workspace.id`, `account_id`, `account.id`, `team_id`, `team.id`
//!   (a string or an integer);
//! - time: `timestamp`, `@timestamp`, `time`, `event_time`, `created_at`, `occurred_at`,
//!   `logged_at`, `date`, `started_at`, `completed_at`, `updated_at` (a string in one of the forms
//!   of [`crate::pipeline::timestamp`], or a number of seconds, milliseconds, microseconds or
//!   nanoseconds since 1970, [`UtcTime::from_epoch_number`]); with none, the time the event was
//!   received;
//! - id: `id`, `event_id`, `request_id`, `uuid`, `log_id`, `message_id` (a string or an integer).
//!
//! Everything else about the event stays raw: this module reads small top-level fields only.

use serde_json::value::RawValue;

use crate::pipeline::scan::{scan_flat_object, ScannedObject};
use crate::pipeline::timestamp::{TimestampError, UtcTime};

/// The facts the pipeline needs about an event. Values are as the event spells them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventMeta {
    Job(JobMeta),
    Activity(ActivityMeta),
    Other(OtherMeta),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobMeta {
    /// The job `id` (a handle such as `j-AEcaNzd9-dGQ4Bf`, or a number in older events).
    pub id: String,
    pub recipe_id: String,
    pub status: String,
    /// `context.user_id`, else the 2019 `report.workato.job_context.user_id`, else `account_id`.
    pub user_id: String,
    /// `completed_at`, else `started_at`.
    pub time: UtcTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityMeta {
    /// The event `id`; 2019 events have none (keys then use a digest of the event).
    pub id: Option<String>,
    /// `event_type`, or the 2019 `event`.
    pub event_type: String,
    /// `resource.type`, e.g. `User`, `Flow`, `SharedAccount`.
    pub resource_type: Option<String>,
    /// The workspace the event belongs to: `workspace.id`, else 2019 `team.id`, else `user.id`.
    pub workspace_id: String,
    pub time: UtcTime,
}

/// An event that is neither a job nor an activity (see the module docs for where each field comes from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherMeta {
    /// The event's own id, if it has one (keys then also use a digest of the event).
    pub id: Option<String>,
    /// The workspace or account the event belongs to, if it names one.
    pub workspace_id: Option<String>,
    /// The event's time, or when it was received if it has none.
    pub time: UtcTime,
    /// The field `time` was read from; `None` when it is the receive time.
    pub time_field: Option<&'static str>,
}

/// Where an other event's workspace may be: a top-level field or a path through nested objects.
const OTHER_WORKSPACE_FIELDS: [&[&str]; 6] = [&["workspace_id"], &["workspace", "id"], &["account_id"], &["account", "id"], &["team_id"], &["team", "id"]];
/// Where an other event's time may be, first match wins.
const OTHER_TIME_FIELDS: [&str; 11] =
    ["timestamp", "@timestamp", "time", "event_time", "created_at", "occurred_at", "logged_at", "date", "started_at", "completed_at", "updated_at"];
/// Where an other event's id may be, first match wins.
const OTHER_ID_FIELDS: [&str; 6] = ["id", "event_id", "request_id", "uuid", "log_id", "message_id"];

impl EventMeta {
    pub fn is_job(&self) -> bool {
        matches!(self, EventMeta::Job(_))
    }

    /// The event's time: a job's `completed_at` (else `started_at`), an activity's `timestamp`,
    /// an other event's first time field, else when it was received.
    pub fn time(&self) -> UtcTime {
        match self {
            EventMeta::Job(j) => j.time,
            EventMeta::Activity(a) => a.time,
            EventMeta::Other(o) => o.time,
        }
    }

    /// An id for logs and request headers: the job id, the activity or other event's id, or none.
    pub fn event_id(&self) -> Option<&str> {
        match self {
            EventMeta::Job(j) => Some(&j.id),
            EventMeta::Activity(a) => a.id.as_deref(),
            EventMeta::Other(o) => o.id.as_deref(),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("{kind} event has no `{field}`")]
    Missing { kind: &'static str, field: &'static str },
    #[error("field `{}` must be {expected}, found {found}", crate::redact::Escaped(.field))]
    WrongType { field: String, expected: &'static str, found: &'static str },
    #[error("field `{field}`: {source}")]
    BadTime { field: &'static str, source: TimestampError },
}

/// Classifies a scanned event and reads its key fields. `received` is the time of an other event
/// that has none of its own.
///
/// An object with the job fields (`id`, `recipe_id` or `flow_id`, `status`) is a job, and one with
/// `event_type` an activity: a malformed one is an error naming the field, since it claims a shape
/// it does not have. An object with the 2019 `event` is an activity when it reads as one, else an
/// other event. Any other object is an other event, which cannot fail.
pub fn classify(event: &ScannedObject<'_>, received: UtcTime) -> Result<EventMeta, EventError> {
    let is_job = event.has("status") && (event.has("recipe_id") || event.has("flow_id")) && event.has("id");
    if is_job {
        return job_meta(event).map(EventMeta::Job);
    }
    if event.has("event_type") {
        return activity_meta(event).map(EventMeta::Activity);
    }
    if event.has("event") {
        // The 2019 stream named the type `event`, a name other streams (webhooks, log events) use
        // for their own purposes: an object that does not read as a 2019 activity is delivered
        // as an other event rather than refused.
        if let Ok(activity) = activity_meta(event) {
            return Ok(EventMeta::Activity(activity));
        }
    }
    Ok(EventMeta::Other(other_meta(event, received)))
}

fn job_meta(event: &ScannedObject<'_>) -> Result<JobMeta, EventError> {
    const KIND: &str = "job";
    let required = |field: &'static str| -> Result<String, EventError> {
        let raw = event.raw(field).ok_or(EventError::Missing { kind: KIND, field })?;
        id_text(field, raw)?.ok_or(EventError::Missing { kind: KIND, field })
    };
    let id = required("id")?;
    let recipe_id = match event.raw("recipe_id") {
        Some(raw) => id_text("recipe_id", raw)?,
        None => None,
    };
    let recipe_id = match recipe_id {
        Some(r) => r,
        None => required("flow_id")?,
    };
    let status = string_field("status", event.raw("status"))?.ok_or(EventError::Missing { kind: KIND, field: "status" })?;
    let user_id = match nested_id(event.raw("context"), &["user_id"], "context.user_id")? {
        Some(u) => u,
        None => match nested_id(event.raw("report"), &["workato", "job_context", "user_id"], "report.workato.job_context.user_id")? {
            Some(u) => u,
            None => match event.raw("account_id") {
                Some(raw) => id_text("account_id", raw)?.ok_or(EventError::Missing { kind: KIND, field: "context.user_id or account_id" })?,
                None => return Err(EventError::Missing { kind: KIND, field: "context.user_id or account_id" }),
            },
        },
    };
    let time = match string_field("completed_at", event.raw("completed_at"))? {
        Some(t) => parse_time("completed_at", &t)?,
        None => {
            let started =
                string_field("started_at", event.raw("started_at"))?.ok_or(EventError::Missing { kind: KIND, field: "completed_at or started_at" })?;
            parse_time("started_at", &started)?
        }
    };
    Ok(JobMeta { id, recipe_id, status, user_id, time })
}

fn activity_meta(event: &ScannedObject<'_>) -> Result<ActivityMeta, EventError> {
    const KIND: &str = "activity";
    let event_type = match string_field("event_type", event.raw("event_type"))? {
        Some(t) => t,
        None => string_field("event", event.raw("event"))?.ok_or(EventError::Missing { kind: KIND, field: "event_type" })?,
    };
    let id = match event.raw("id") {
        Some(raw) => id_text("id", raw)?,
        None => None,
    };
    let resource_type = match event.raw("resource") {
        Some(raw) => nested_string(raw, "type", "resource.type")?,
        None => None,
    };
    let workspace_id = match nested_id(event.raw("workspace"), &["id"], "workspace.id")? {
        Some(w) => w,
        None => match nested_id(event.raw("team"), &["id"], "team.id")? {
            Some(t) => t,
            None => nested_id(event.raw("user"), &["id"], "user.id")?.ok_or(EventError::Missing { kind: KIND, field: "workspace.id (or 2019 team.id)" })?,
        },
    };
    let timestamp = string_field("timestamp", event.raw("timestamp"))?.ok_or(EventError::Missing { kind: KIND, field: "timestamp" })?;
    let time = parse_time("timestamp", &timestamp)?;
    Ok(ActivityMeta { id, event_type, resource_type, workspace_id, time })
}

fn other_meta(event: &ScannedObject<'_>, received: UtcTime) -> OtherMeta {
    // Fields of an unknown stream are read leniently: a value that is not what we look for is
    // someone else's field of the same name, not a malformed event.
    let workspace_id = OTHER_WORKSPACE_FIELDS.iter().find_map(|path| {
        let (top, rest) = path.split_first()?;
        nested_id(event.raw(top), rest, top).ok().flatten()
    });
    let time = OTHER_TIME_FIELDS.iter().find_map(|&field| {
        let raw = event.raw(field)?;
        let time = match raw.get().as_bytes().first() {
            Some(b'0'..=b'9') => UtcTime::from_epoch_number(raw.get()),
            _ => UtcTime::parse(&string_field(field, Some(raw)).ok().flatten()?).ok(),
        };
        time.map(|time| (time, field))
    });
    let id = OTHER_ID_FIELDS.iter().find_map(|&field| id_text(field, event.raw(field)?).ok().flatten());
    OtherMeta { id, workspace_id, time: time.map_or(received, |(t, _)| t), time_field: time.map(|(_, f)| f) }
}

fn parse_time(field: &'static str, text: &str) -> Result<UtcTime, EventError> {
    UtcTime::parse(text).map_err(|source| EventError::BadTime { field, source })
}

/// The JSON type of a raw value, for error messages (never the value itself).
pub fn type_name(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// An identifier: a string or an integer, as text. `null` reads as absent.
fn id_text(field: &str, raw: &RawValue) -> Result<Option<String>, EventError> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => {
            let s: String = serde_json::from_str(text).map_err(|_| wrong(field, "a string or integer", raw))?;
            Ok(if s.is_empty() { None } else { Some(s) })
        }
        Some(b'n') => Ok(None),
        Some(b'-' | b'0'..=b'9') if text.bytes().all(|c| c.is_ascii_digit() || c == b'-') => Ok(Some(text.to_owned())),
        _ => Err(wrong(field, "a string or integer", raw)),
    }
}

/// A string field; absent and `null` read as `None`.
fn string_field(field: &str, raw: Option<&RawValue>) -> Result<Option<String>, EventError> {
    match raw {
        None => Ok(None),
        Some(r) if r.get() == "null" => Ok(None),
        Some(r) if r.get().starts_with('"') => serde_json::from_str(r.get()).map(Some).map_err(|_| wrong(field, "a string", r)),
        Some(r) => Err(wrong(field, "a string", r)),
    }
}

/// Follows `path` through nested objects and reads an identifier at its end.
fn nested_id(raw: Option<&RawValue>, path: &[&str], label: &str) -> Result<Option<String>, EventError> {
    let Some(raw) = raw else { return Ok(None) };
    let mut current: Box<RawValue> = raw.to_owned();
    for (depth, key) in path.iter().enumerate() {
        if current.get() == "null" {
            return Ok(None);
        }
        let next = {
            let fields = scan_flat_object(current.get()).map_err(|_| {
                let parent = if depth == 0 { label.split('.').next().unwrap_or(label).to_owned() } else { path[..depth].join(".") };
                wrong(&parent, "an object", &current)
            })?;
            match fields.into_iter().find(|(k, _)| k == key) {
                Some((_, value)) => value.to_owned(),
                None => return Ok(None),
            }
        };
        current = next;
    }
    id_text(label, &current)
}

fn nested_string(raw: &RawValue, key: &str, label: &str) -> Result<Option<String>, EventError> {
    if raw.get() == "null" {
        return Ok(None);
    }
    let fields = scan_flat_object(raw.get()).map_err(|_| wrong(label.split('.').next().unwrap_or(label), "an object", raw))?;
    string_field(label, fields.into_iter().find(|(k, _)| k == key).map(|(_, v)| v))
}

fn wrong(field: &str, expected: &'static str, raw: &RawValue) -> EventError {
    EventError::WrongType { field: field.to_owned(), expected, found: type_name(raw) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// When the events of these tests are received.
    const RECEIVED: UtcTime = UtcTime { epoch_seconds: 1_764_000_000, millis: 123 };

    fn meta(json: &str) -> Result<EventMeta, EventError> {
        classify(&ScannedObject::scan(json).unwrap(), RECEIVED)
    }

    fn other(json: &str) -> OtherMeta {
        match meta(json) {
            Ok(EventMeta::Other(o)) => o,
            got => panic!("{json}: not an other event: {got:?}"),
        }
    }

    fn at(text: &str) -> UtcTime {
        UtcTime::parse(text).unwrap()
    }

    #[test]
    fn any_other_object_is_an_other_event() {
        // what today's streams and tomorrow's look like: neither job fields nor an activity type
        let cases = [
            // API platform request log
            (
                r#"{"request_id":"req-7f3a","workspace_id":4848,"timestamp":"2026-11-25T10:15:30.250Z","method":"GET","status":200}"#,
                OtherMeta {
                    id: Some("req-7f3a".into()),
                    workspace_id: Some("4848".into()),
                    time: at("2026-11-25T10:15:30.250Z"),
                    time_field: Some("timestamp"),
                },
            ),
            // a log event with an account and an @timestamp
            (
                r#"{"id":991,"account":{"id":"acme"},"@timestamp":"2026-11-25 10:15:30 UTC","message":"hello"}"#,
                OtherMeta { id: Some("991".into()), workspace_id: Some("acme".into()), time: at("2026-11-25T10:15:30Z"), time_field: Some("@timestamp") },
            ),
            // a conversation: workspace object, created_at, uuid
            (
                r#"{"uuid":"0b6d","workspace":{"id":12,"name":"Acme"},"created_at":"2026-11-25T02:15:30-08:00"}"#,
                OtherMeta { id: Some("0b6d".into()), workspace_id: Some("12".into()), time: at("2026-11-25T10:15:30Z"), time_field: Some("created_at") },
            ),
            // nothing we know: no id, no workspace, and the receive time
            (r#"{"hello":"world"}"#, OtherMeta { id: None, workspace_id: None, time: RECEIVED, time_field: None }),
            (r#"{}"#, OtherMeta { id: None, workspace_id: None, time: RECEIVED, time_field: None }),
        ];
        for (input, want) in cases {
            assert_eq!(other(input), want, "{input}");
        }
    }

    #[test]
    fn other_events_read_epoch_numbers_by_their_size() {
        // 2026-11-25T10:15:30Z in seconds, milliseconds, microseconds and nanoseconds since 1970
        for (input, want) in [
            (r#"{"time":1795601730}"#, at("2026-11-25T10:15:30Z")),
            (r#"{"time":1795601730.25}"#, at("2026-11-25T10:15:30.250Z")),
            (r#"{"timestamp":1795601730250}"#, at("2026-11-25T10:15:30.250Z")),
            (r#"{"timestamp":1795601730250.9}"#, at("2026-11-25T10:15:30.250Z")),
            (r#"{"@timestamp":1795601730250123}"#, at("2026-11-25T10:15:30.250Z")),
            (r#"{"created_at":1795601730250123456}"#, at("2026-11-25T10:15:30.250Z")),
        ] {
            let o = other(input);
            assert_eq!(o.time, want, "{input}");
            assert!(o.time_field.is_some(), "{input}");
        }
        // sizes that are no epoch time (a count, a duration, an exponent, a negative) are passed over
        for input in [
            r#"{"time":0}"#,
            r#"{"time":86400}"#,
            r#"{"time":999999999.5}"#,
            r#"{"time":179560173025}"#,
            r#"{"time":1.7956e9}"#,
            r#"{"time":-1795601730}"#,
            r#"{"time":123456789012345678901234567890}"#,
        ] {
            let o = other(input);
            assert_eq!((o.time, o.time_field), (RECEIVED, None), "{input}");
        }
    }

    #[test]
    fn an_event_key_without_the_2019_activity_shape_is_an_other_event() {
        // Workato Log events, webhooks and other streams have an `event` field of their own: with no
        // workspace or time an activity would need, such an object is delivered as other, not refused.
        for input in [
            r#"{"event":"order.created","data":{"id":7}}"#,
            r#"{"event":{"name":"x"},"timestamp":"2026-11-25T10:15:30Z","workspace_id":12}"#,
            r#"{"event":"recipe_stopped","team":{"id":4848},"timestamp":"soon"}"#,
        ] {
            assert!(matches!(meta(input), Ok(EventMeta::Other(_))), "{input}: {:?}", meta(input));
        }
        // the 2019 shape itself is still an activity
        assert!(matches!(meta(r#"{"event":"user_login","team":{"id":1},"timestamp":"2019-09-13 19:55:06 UTC"}"#), Ok(EventMeta::Activity(_))));
    }

    #[test]
    fn other_events_take_the_first_usable_field_of_each_list() {
        // an unparseable or non-string time is passed over for the next time field
        // (a number too small to be an epoch time is a duration, not a time)
        let o = other(r#"{"timestamp":"soon","time":12.5,"event_time":true,"created_at":"2026-11-25T10:15:30Z","updated_at":"2027-01-01T00:00:00Z"}"#);
        assert_eq!((o.time, o.time_field), (at("2026-11-25T10:15:30Z"), Some("created_at")));
        // a date alone is no time: the receive time is used
        let o = other(r#"{"date":"2026-11-25"}"#);
        assert_eq!((o.time, o.time_field), (RECEIVED, None));
        // ids: empty, null, objects and fractions are not ids
        let o = other(r#"{"id":"","event_id":null,"request_id":{"v":1},"uuid":1.5,"log_id":"L-1","message_id":"M"}"#);
        assert_eq!(o.id.as_deref(), Some("L-1"));
        // the list order decides, not the order in the event
        let o = other(r#"{"message_id":"M","id":"I"}"#);
        assert_eq!(o.id.as_deref(), Some("I"));
        // workspaces: a name string in `workspace` is not an id; account_id comes next
        let o = other(r#"{"workspace":"Acme","account_id":77,"team":{"id":3}}"#);
        assert_eq!(o.workspace_id.as_deref(), Some("77"));
        let o = other(r#"{"team":{"id":3},"workspace_id":""}"#);
        assert_eq!(o.workspace_id.as_deref(), Some("3"));
    }

    #[test]
    fn what_claims_to_be_a_job_or_an_activity_is_held_to_that_shape() {
        // job fields or an activity type make an event a job or an activity, never other
        assert!(matches!(meta(r#"{"id":"j","recipe_id":1,"status":"ok","account_id":1,"started_at":"2022-10-19T22:30:46Z"}"#), Ok(EventMeta::Job(_))));
        assert!(matches!(meta(r#"{"event_type":"user_login","workspace":{"id":1},"timestamp":"2024-05-01T10:15:30Z"}"#), Ok(EventMeta::Activity(_))));
        // a job without status, or a status without recipe, is other
        assert!(matches!(meta(r#"{"id":"j","recipe_id":1,"account_id":1}"#), Ok(EventMeta::Other(_))));
        assert!(matches!(meta(r#"{"id":"r","status":200}"#), Ok(EventMeta::Other(_))));
    }

    #[test]
    fn a_current_job_reads_its_key_fields() {
        let m = meta(
            r#"{"id":"j-AEcaNzd9-dGQ4Bf","recipe_id":3026581,"status":"succeeded","account_id":1,
            "started_at":"2022-10-19T22:30:40-07:00","completed_at":"2022-10-19T22:30:46-07:00",
            "context":{"user_id":33359,"recipe_id":3026581}}"#,
        )
        .unwrap();
        let EventMeta::Job(j) = m else { panic!("not a job") };
        assert_eq!((j.id.as_str(), j.recipe_id.as_str(), j.status.as_str(), j.user_id.as_str()), ("j-AEcaNzd9-dGQ4Bf", "3026581", "succeeded", "33359"));
        assert_eq!(j.time.compact_datetime(), "20221020053046");
    }

    #[test]
    fn job_fallbacks_follow_the_spec() {
        // no context: account_id; no completed_at: started_at; 2019 integer id and flow_id
        let m = meta(
            r#"{"id":994216821,"flow_id":1004057,"status":"failed","account_id":4848,
            "started_at":"2019-09-13T15:27:27-07:00","completed_at":null}"#,
        )
        .unwrap();
        let EventMeta::Job(j) = m else { panic!("not a job") };
        assert_eq!((j.id.as_str(), j.recipe_id.as_str(), j.user_id.as_str()), ("994216821", "1004057", "4848"));
        assert_eq!(j.time.compact_datetime(), "20190913222727");
        // 2019 report.workato.job_context.user_id
        let m = meta(
            r#"{"id":1,"flow_id":2,"status":"succeeded","started_at":"2019-09-13T15:27:27Z",
            "report":{"workato":{"job_context":{"user_id":77}}}}"#,
        )
        .unwrap();
        assert!(matches!(m, EventMeta::Job(ref j) if j.user_id == "77"));
    }

    #[test]
    fn both_activity_shapes_are_accepted() {
        let current = meta(
            r#"{"id":123456789,"event_type":"user_login","timestamp":"2024-05-01T10:15:30.000Z",
            "workspace":{"id":4848},"user":{"id":61439},"resource":{"id":61439,"type":"User"}}"#,
        )
        .unwrap();
        assert_eq!(
            current,
            EventMeta::Activity(ActivityMeta {
                id: Some("123456789".into()),
                event_type: "user_login".into(),
                resource_type: Some("User".into()),
                workspace_id: "4848".into(),
                time: UtcTime::parse("2024-05-01T10:15:30Z").unwrap()
            })
        );
        let legacy = meta(
            r#"{"event":"recipe_stopped","details":{"force":true},"team":{"id":4848},
            "resource":{"type":"Flow","id":1002398},"timestamp":"2019-09-13 19:55:06 UTC"}"#,
        )
        .unwrap();
        let EventMeta::Activity(a) = legacy else { panic!("not activity") };
        assert_eq!((a.id, a.event_type.as_str(), a.workspace_id.as_str()), (None, "recipe_stopped", "4848"));
    }

    #[test]
    fn bad_events_get_errors_that_name_the_field() {
        let cases = [
            (
                r#"{"id":"j","recipe_id":1,"status":"ok","started_at":"2022-10-19T22:30:46Z"}"#,
                EventError::Missing { kind: "job", field: "context.user_id or account_id" },
            ),
            (
                r#"{"id":"j","recipe_id":[1],"status":"ok"}"#,
                EventError::WrongType { field: "recipe_id".into(), expected: "a string or integer", found: "an array" },
            ),
            (
                r#"{"id":"j","recipe_id":1,"status":7,"account_id":1}"#,
                EventError::WrongType { field: "status".into(), expected: "a string", found: "a number" },
            ),
            (r#"{"id":"j","recipe_id":1,"status":"ok","account_id":1}"#, EventError::Missing { kind: "job", field: "completed_at or started_at" }),
            (
                r#"{"id":"j","recipe_id":1,"status":"ok","context":"x","account_id":1}"#,
                EventError::WrongType { field: "context".into(), expected: "an object", found: "a string" },
            ),
            (
                r#"{"event_type":"user_login","timestamp":"2024-05-01T10:15:30Z"}"#,
                EventError::Missing { kind: "activity", field: "workspace.id (or 2019 team.id)" },
            ),
            (r#"{"event_type":"user_login","workspace":{"id":1}}"#, EventError::Missing { kind: "activity", field: "timestamp" }),
        ];
        for (input, want) in cases {
            assert_eq!(meta(input).unwrap_err(), want, "{input}");
        }
        let err = meta(r#"{"event_type":"x","workspace":{"id":1},"timestamp":"soon"}"#).unwrap_err();
        assert!(matches!(err, EventError::BadTime { field: "timestamp", .. }), "{err:?}");
    }
}
