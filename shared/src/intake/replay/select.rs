//! Which archived objects a replay sends, decided from the key alone (pure: no I/O, no clock).
//!
//! - **Housekeeping is never sent.** Keys under `PREFIX_auditstream/` (manifests, digests, health
//!   probes; [`crate::integrity::layout::is_record`]) are auditstream's own records, not events.
//! - **A key outside the event layout is no event.** It is named and skipped by the caller
//!   ([`Verdict::NotAnEventKey`]); [`KeyFacts::of_event_key`] reads the layout.
//! - **Streams** are the key's second segment: `jobs`, `activities`, `other`
//!   ([`KeyStream`]); none given selects all three.
//! - **Time**: `--since` is inclusive, `--until` exclusive, compared with the time in the object's
//!   name (UTC, to the second), which lies in its date folder. A date bound means midnight UTC of
//!   that day, so `--since 2024-03-01 --until 2024-04-01` is exactly March. An event filed by
//!   date alone (one without a time of its own, filed under the day it was received) counts as at
//!   midnight of its date folder.
//! - **Checkpoint**: keys are listed in key order (S3's ListObjectsV2 order, UTF-8 bytes), so
//!   "every key up to K is handled" is one key; a rerun starts after it.

use std::collections::BTreeSet;

use crate::integrity::layout::is_record;
use crate::pipeline::key::{KeyFacts, KeyPrefix, KeyStream};
use crate::pipeline::timestamp::UtcTime;

/// A `--since`, `--until` or `--stream` value that selects nothing sensible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error("{flag} {text:?} is not a date or a date and time: expected 2024-03-01 (midnight UTC) or 2024-03-01T12:00:00Z (an offset such as +02:00 in place of Z is converted to UTC)")]
    Bound { flag: &'static str, text: String },
    #[error("--since {since:?} is not before --until {until:?}: nothing would be selected (--since is inclusive, --until exclusive)")]
    Empty { since: String, until: String },
    #[error("--stream {0:?} is not a stream of the archive's keys: expected jobs, activities or other (several separated by commas)")]
    Stream(String),
}

/// What a replay does with one listed key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// An event's key, within the selection.
    Selected(KeyFacts),
    /// An event's key, outside the selected times or streams.
    Outside,
    /// One of auditstream's own records (`PREFIX_auditstream/…`): never an event.
    Record,
    /// Neither an event's key nor a record: named and skipped.
    NotAnEventKey,
}

/// The selection of a replay: times and streams.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    /// Inclusive, as `YYYYMMDDHHMMSS`.
    since: Option<u64>,
    /// Exclusive, as `YYYYMMDDHHMMSS`.
    until: Option<u64>,
    /// Empty: every stream.
    streams: BTreeSet<KeyStream>,
}

impl Selection {
    /// From the command line's `--since`, `--until` and `--stream` values (each `--stream` may
    /// name several streams, separated by commas).
    pub fn new(since: Option<&str>, until: Option<&str>, streams: &[String]) -> Result<Selection, SelectionError> {
        let lower = since.map(|t| parse_bound("--since", t)).transpose()?;
        let upper = until.map(|t| parse_bound("--until", t)).transpose()?;
        if let (Some(lo), Some(hi), Some(s), Some(u)) = (lower, upper, since, until) {
            if lo >= hi {
                return Err(SelectionError::Empty { since: s.to_owned(), until: u.to_owned() });
            }
        }
        let streams = streams
            .iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| KeyStream::from_name(s).ok_or_else(|| SelectionError::Stream(s.to_owned())))
            .collect::<Result<_, _>>()?;
        Ok(Selection { since: lower, until: upper, streams })
    }

    /// What to do with `key` (the full key, prefix included) of an archive whose events sit
    /// below `prefix`.
    pub fn verdict(&self, prefix: &KeyPrefix, key: &str) -> Verdict {
        if is_record(prefix, key) {
            return Verdict::Record;
        }
        let Some(facts) = key.strip_prefix(prefix.as_str()).and_then(KeyFacts::of_event_key) else {
            return Verdict::NotAnEventKey;
        };
        let in_time = self.since.is_none_or(|s| facts.moment >= s) && self.until.is_none_or(|u| facts.moment < u);
        let in_streams = self.streams.is_empty() || self.streams.contains(&facts.stream);
        if in_time && in_streams {
            Verdict::Selected(facts)
        } else {
            Verdict::Outside
        }
    }
}

/// `2024-03-01` or a date and time (the forms of [`UtcTime::parse`]) as `YYYYMMDDHHMMSS` in UTC.
fn parse_bound(flag: &'static str, text: &str) -> Result<u64, SelectionError> {
    let err = || SelectionError::Bound { flag, text: text.to_owned() };
    let trimmed = text.trim();
    let time = if trimmed.len() == 10 { UtcTime::parse(&format!("{trimmed}T00:00:00Z")) } else { UtcTime::parse(trimmed) };
    time.map_err(|_| err())?.compact_datetime().parse().map_err(|_| err())
}

/// Where an interrupted replay continues: the archive it read and the last key fully handled
/// (every key before it too). The file is small JSON, `{"from":"s3://…","last_key":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// The archive, as given to `--from`, so that a checkpoint is never applied to another one.
    pub from: String,
    pub last_key: String,
}

/// A checkpoint file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("is not a replay checkpoint ({0}); remove it to start from the beginning")]
    Format(String),
    #[error("was written by a replay from {found}, not from {expected}; use another --checkpoint file")]
    OtherArchive { found: String, expected: String },
}

impl Checkpoint {
    pub fn parse(bytes: &[u8], from: &str) -> Result<Checkpoint, CheckpointError> {
        let checkpoint: Checkpoint = serde_json::from_slice(bytes).map_err(|e| CheckpointError::Format(e.to_string()))?;
        if checkpoint.from != from {
            return Err(CheckpointError::OtherArchive { found: checkpoint.from, expected: from.to_owned() });
        }
        Ok(checkpoint)
    }

    pub fn to_json(&self) -> String {
        // Two strings: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default() + "\n"
    }

    /// Whether `key` was handled by the replay that wrote this checkpoint.
    pub fn covers(&self, key: &str) -> bool {
        key <= self.last_key.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = "1/jobs/2/20240305/j/1-2-j-20240305060708-ok.json";
    const ACTIVITY: &str = "1/activities/20240306/7/1-login-7-20240306000000.json";
    const OTHER_BY_DATE: &str = "1/other/20240307/7/1-other-7-20240307.json";

    fn sel(since: Option<&str>, until: Option<&str>, streams: &[&str]) -> Selection {
        Selection::new(since, until, &streams.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn selected(selection: &Selection, prefix: &str, key: &str) -> bool {
        matches!(selection.verdict(&KeyPrefix::new(prefix).unwrap(), key), Verdict::Selected(_))
    }

    #[test]
    fn since_is_inclusive_and_until_exclusive_by_date_or_to_the_second() {
        let march_5 = sel(Some("2024-03-05"), Some("2024-03-06"), &[]);
        assert!(selected(&march_5, "", JOB));
        assert!(!selected(&march_5, "", ACTIVITY), "midnight of --until is outside");
        let from_6 = sel(Some("2024-03-06"), None, &[]);
        assert!(!selected(&from_6, "", JOB) && selected(&from_6, "", ACTIVITY) && selected(&from_6, "", OTHER_BY_DATE));
        // to the second, in UTC whatever the offset given
        assert!(selected(&sel(Some("2024-03-05T06:07:08Z"), None, &[]), "", JOB));
        assert!(!selected(&sel(Some("2024-03-05T06:07:09Z"), None, &[]), "", JOB));
        assert!(!selected(&sel(None, Some("2024-03-05T08:07:08+02:00"), &[]), "", JOB));
        assert!(selected(&sel(None, Some("2024-03-05T08:07:09+02:00"), &[]), "", JOB));
        // an event filed by date alone is at midnight of its folder
        assert!(selected(&sel(Some("2024-03-07"), Some("2024-03-07T00:00:01Z"), &[]), "", OTHER_BY_DATE));
        assert!(!selected(&sel(Some("2024-03-07T00:00:01Z"), None, &[]), "", OTHER_BY_DATE));
    }

    #[test]
    fn streams_are_the_keys_second_segment() {
        let jobs_and_other = sel(None, None, &["jobs,other"]);
        assert!(selected(&jobs_and_other, "", JOB) && !selected(&jobs_and_other, "", ACTIVITY) && selected(&jobs_and_other, "", OTHER_BY_DATE));
        let all = sel(None, None, &[]);
        assert!([JOB, ACTIVITY, OTHER_BY_DATE].iter().all(|k| selected(&all, "", k)));
        assert_eq!(Selection::new(None, None, &["job_details".into()]), Err(SelectionError::Stream("job_details".into())));
    }

    #[test]
    fn records_are_never_selected_and_a_stray_key_is_no_event() {
        let all = Selection::default();
        let prefix = KeyPrefix::new("audit").unwrap();
        assert_eq!(all.verdict(&prefix, "audit/_auditstream/manifests/2024/03/05/06/20240305T060708000Z-0000000000000001.json"), Verdict::Record);
        assert_eq!(all.verdict(&prefix, "audit/_auditstream/digests/2024/03/05/07/20240305T070000Z.json.sig"), Verdict::Record);
        assert_eq!(all.verdict(&prefix, "audit/_auditstream/health/20240305/probe.json"), Verdict::Record);
        assert_eq!(all.verdict(&prefix, "audit/notes.txt"), Verdict::NotAnEventKey);
        assert_eq!(all.verdict(&prefix, JOB), Verdict::NotAnEventKey, "not below the prefix");
        assert!(selected(&all, "audit", &format!("audit/{JOB}")));
    }

    #[test]
    fn bounds_that_are_not_times_or_select_nothing_are_refused() {
        for bad in ["yesterday", "2024-13-01", "2024-02-30", "20240301", "2024-03-01T25:00:00Z"] {
            assert_eq!(Selection::new(Some(bad), None, &[]), Err(SelectionError::Bound { flag: "--since", text: bad.into() }), "{bad}");
        }
        let err = Selection::new(Some("2024-03-02"), Some("2024-03-01T23:59:59Z"), &[]).unwrap_err();
        assert!(err.to_string().starts_with("--since \"2024-03-02\" is not before --until"), "{err}");
        assert!(Selection::new(Some("2024-03-01"), Some("2024-03-01"), &[]).is_err());
    }

    #[test]
    fn a_checkpoint_covers_every_key_up_to_its_own_and_belongs_to_one_archive() {
        let checkpoint = Checkpoint { from: "s3://audit/x".into(), last_key: "1/jobs/b".into() };
        assert!(checkpoint.covers("1/jobs/a") && checkpoint.covers("1/jobs/b") && !checkpoint.covers("1/jobs/b0") && !checkpoint.covers("1/k"));
        assert_eq!(Checkpoint::parse(checkpoint.to_json().as_bytes(), "s3://audit/x"), Ok(checkpoint.clone()));
        let other = Checkpoint::parse(checkpoint.to_json().as_bytes(), "dir:x").unwrap_err();
        assert_eq!(other.to_string(), "was written by a replay from s3://audit/x, not from dir:x; use another --checkpoint file");
        assert!(matches!(Checkpoint::parse(b"garbage", "dir:x"), Err(CheckpointError::Format(_))));
    }
}
