//! One audit event → one row of the custom table, and a request body of rows. Pure.
//!
//! | column | type | value |
//! |---|---|---|
//! | `TimeGenerated` | datetime | the event's time in UTC, to the millisecond: a job's `completed_at` (else `started_at`), an activity's `timestamp`, an other event's first time field (else when it was received) |
//! | `EventKind` | string | `job`, `activity`, or `other` (neither: see [`crate::pipeline::event`]) |
//! | `EventKey` | string | the event's object key (the S3/Blob name): stable, so duplicates from retries can be removed downstream |
//! | `JobId` | string | jobs: `id` |
//! | `RecipeId` | string | jobs: `recipe_id` (or `flow_id`) |
//! | `Status` | string | jobs: `status` |
//! | `UserId` | string | jobs: `context.user_id` (else `account_id`) |
//! | `ActivityId` | string | activities: `id` (2019-style events have none) |
//! | `EventType` | string | activities: `event_type` (or the 2019 `event`) |
//! | `ResourceType` | string | activities: `resource.type` |
//! | `WorkspaceId` | string | activities: `workspace.id` (else 2019 `team.id`, else `user.id`); other events: their workspace or account, when they name one |
//! | `LinesTruncated` | boolean | the event's `lines` were replaced by `Log lines exceed size limit` |
//! | `Event` | dynamic | the whole event as written to the other destinations (masked, sized, wrapped by the template if one is set) |
//!
//! Columns that do not apply to an event's kind are left out of its row (they read as empty).
//! `Event` is spliced in as the document's raw bytes: the event is never parsed again.

use std::io::Write;

use crate::pipeline::event::EventMeta;
use crate::pipeline::timestamp::UtcTime;
use crate::pipeline::Document;

/// `2022-10-20T05:30:46.123Z`: ISO-8601 in UTC, with the milliseconds the event's time gave (`.000`
/// when it had none).
pub fn time_generated(time: &UtcTime) -> String {
    // compact_datetime is YYYY…MMDDHHMMSS: split from the end so that any year length works.
    let s = time.compact_datetime();
    let n = s.len();
    if n < 14 || !s.is_char_boundary(n - 10) {
        return "1970-01-01T00:00:00.000Z".to_owned();
    }
    format!("{}-{}-{}T{}:{}:{}.{:03}Z", &s[..n - 10], &s[n - 10..n - 8], &s[n - 8..n - 6], &s[n - 6..n - 4], &s[n - 4..n - 2], &s[n - 2..], time.millis)
}

/// Appends one row (a JSON object) for `doc` to `out`.
pub fn write_row(doc: &Document, out: &mut Vec<u8>) {
    let time = doc.meta.time();
    out.extend_from_slice(b"{\"TimeGenerated\":\"");
    out.extend_from_slice(time_generated(&time).as_bytes());
    out.extend_from_slice(b"\"");
    let mut column = |name: &str, value: &str| {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, value);
    };
    match &doc.meta {
        EventMeta::Job(j) => {
            column("EventKind", "job");
            column("EventKey", doc.key.as_str());
            column("JobId", &j.id);
            column("RecipeId", &j.recipe_id);
            column("Status", &j.status);
            column("UserId", &j.user_id);
        }
        EventMeta::Activity(a) => {
            column("EventKind", "activity");
            column("EventKey", doc.key.as_str());
            if let Some(id) = &a.id {
                column("ActivityId", id);
            }
            column("EventType", &a.event_type);
            if let Some(resource) = &a.resource_type {
                column("ResourceType", resource);
            }
            column("WorkspaceId", &a.workspace_id);
        }
        // An other event's id is in its EventKey and its Event; it gets no column of its own, so
        // that the table's schema stays what the documented DCR declares.
        EventMeta::Other(o) => {
            column("EventKind", "other");
            column("EventKey", doc.key.as_str());
            if let Some(workspace) = &o.workspace_id {
                column("WorkspaceId", workspace);
            }
        }
    }
    let _ = write!(out, ",\"LinesTruncated\":{},\"Event\":", doc.truncated);
    out.extend_from_slice(&doc.body);
    out.push(b'}');
}

/// The request body: a JSON array of the documents' rows.
pub fn request_body(docs: &[&Document]) -> Vec<u8> {
    let mut out = Vec::with_capacity(docs.iter().map(|d| d.body.len() + 320).sum::<usize>() + 2);
    out.push(b'[');
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_row(doc, &mut out);
    }
    out.push(b']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::timestamp::Now;
    use crate::pipeline::{Pipeline, Prepared};

    fn prepare(body: &str) -> Document {
        match Pipeline::default().prepare(body, Now { epoch_nanos: 0 }).unwrap() {
            Prepared::Ready(d) => d,
            Prepared::Filtered(f) => panic!("{f}"),
        }
    }

    #[test]
    fn times_are_iso_8601_utc() {
        assert_eq!(time_generated(&UtcTime::parse("2022-10-19T22:30:46-07:00").unwrap()), "2022-10-20T05:30:46.000Z");
        assert_eq!(time_generated(&UtcTime::parse("2024-05-01T10:15:30.123Z").unwrap()), "2024-05-01T10:15:30.123Z");
        assert_eq!(time_generated(&UtcTime::parse("2019-09-13 17:24:16 UTC").unwrap()), "2019-09-13T17:24:16.000Z");
    }

    #[test]
    fn a_job_row_has_its_ids_and_the_whole_event() {
        let body = r#"{"id":"j-AEc","recipe_id":7,"status":"failed","completed_at":"2022-10-19T22:30:46-07:00","context":{"user_id":5},"lines":[{"input":{"a":"\u00e9\"x"},"output":null,"mask_data":false}]}"#;
        let doc = prepare(body);
        let mut row = Vec::new();
        write_row(&doc, &mut row);
        let row = String::from_utf8(row).unwrap();
        assert_eq!(
            row,
            format!(
                r#"{{"TimeGenerated":"2022-10-20T05:30:46.000Z","EventKind":"job","EventKey":"5/jobs/7/20221020/j-AEc/5-7-j-AEc-20221020053046-failed.json","JobId":"j-AEc","RecipeId":"7","Status":"failed","UserId":"5","LinesTruncated":false,"Event":{body}}}"#
            )
        );
        // and it is JSON whose Event is the event, byte for byte
        let parsed: serde_json::Value = serde_json::from_str(&row).unwrap();
        assert_eq!(parsed["Event"], serde_json::from_str::<serde_json::Value>(body).unwrap());
    }

    #[test]
    fn an_activity_row_has_its_own_columns() {
        let body = r#"{"event_type":"user_login","id":"a\"1","workspace":{"id":42},"resource":{"type":"User","id":9},"timestamp":"2024-05-01T10:15:30.000Z"}"#;
        let mut row = Vec::new();
        write_row(&prepare(body), &mut row);
        let row: serde_json::Value = serde_json::from_slice(&row).unwrap();
        assert_eq!(
            row,
            serde_json::json!({
                "TimeGenerated": "2024-05-01T10:15:30.000Z", "EventKind": "activity",
                "EventKey": "42/activities/20240501/a%221/42-user_login-a%221-20240501101530.json",
                "ActivityId": "a\"1", "EventType": "user_login", "ResourceType": "User", "WorkspaceId": "42",
                "LinesTruncated": false, "Event": serde_json::from_str::<serde_json::Value>(body).unwrap(),
            })
        );
        // a 2019 event without id or resource leaves those columns out
        let old = r#"{"event":"login","team":{"id":3},"timestamp":"2019-09-13 17:24:16 UTC"}"#;
        let mut row = Vec::new();
        write_row(&prepare(old), &mut row);
        let row: serde_json::Value = serde_json::from_slice(&row).unwrap();
        assert!(row.get("ActivityId").is_none() && row.get("ResourceType").is_none());
        assert_eq!(row["EventType"], "login");
    }

    #[test]
    fn an_other_row_has_its_kind_key_and_workspace() {
        let body = r#"{"request_id":"r-1","workspace":{"id":42},"created_at":"2026-11-25T10:15:30.250Z"}"#;
        let doc = prepare(body);
        let mut row = Vec::new();
        write_row(&doc, &mut row);
        let row: serde_json::Value = serde_json::from_slice(&row).unwrap();
        assert_eq!(
            row,
            serde_json::json!({
                "TimeGenerated": "2026-11-25T10:15:30.250Z", "EventKind": "other", "EventKey": doc.key.as_str(),
                "WorkspaceId": "42", "LinesTruncated": false, "Event": serde_json::from_str::<serde_json::Value>(body).unwrap(),
            })
        );
        assert!(doc.key.as_str().starts_with("42/other/20261125/r-1/"), "{}", doc.key);
        // no workspace: no column; no time: when it was received
        let mut row = Vec::new();
        write_row(&prepare(r#"{"note":"x"}"#), &mut row);
        let row: serde_json::Value = serde_json::from_slice(&row).unwrap();
        assert!(row.get("WorkspaceId").is_none(), "{row}");
        assert_eq!(row["TimeGenerated"], "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn the_body_is_an_array_of_rows() {
        let a = prepare(r#"{"event_type":"x","id":1,"workspace":{"id":1},"timestamp":"2024-05-01T10:15:30Z"}"#);
        let b = prepare(r#"{"id":"j","recipe_id":1,"status":"ok","started_at":"2024-05-01T10:15:30Z","account_id":2}"#);
        let body: serde_json::Value = serde_json::from_slice(&request_body(&[&a, &b])).unwrap();
        let rows = body.as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["UserId"], "2");
        assert_eq!(request_body(&[]), b"[]");
    }
}
