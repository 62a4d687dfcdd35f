//! Object keys (spec §3): where each event is written in S3, Azure Blob or a local directory.
//!
//! Jobs, standard layout (Workato's current one):
//! `USER/jobs/RECIPE/YYYYMMDD/JOB/USER-RECIPE-JOB-YYYYMMDDHHMMSS-STATUS.json`
//!
//! Jobs, embedded-partner layout: the job folder is the job id left-padded with zeros to 21
//! digits and split every 3 characters (`000/000/000/000/000/000/100`) when the id is all digits;
//! a string handle is used as is.
//!
//! Activity events (our layout; Workato publishes none), in the same style:
//! `WORKSPACE/activities/YYYYMMDD/EVENT/WORKSPACE-EVENT_TYPE-EVENT-YYYYMMDDHHMMSS.json`
//! where EVENT is the event `id`, or for 2019-style events that have none, `h` followed by the
//! first 20 hex digits of the SHA-256 of the event as received — so a redelivered event maps to
//! the same key and is not written twice.
//!
//! Times are UTC. Every part taken from the event is made safe for a key: characters other than
//! `A–Z a–z 0–9 . _ -` are percent-encoded, and `.`/`..` cannot appear as a path segment.

use sha2::{Digest, Sha256};

use crate::event::EventMeta;

/// Which job key layout to use (`AUDITSTREAM_KEY_LAYOUT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyLayout {
    #[default]
    Standard,
    Embedded,
}

/// A complete object key, prefix included.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key for an event. `body` is the event as received; it names 2019-style activity
    /// events that have no id.
    pub fn for_event(meta: &EventMeta, layout: KeyLayout, prefix: &KeyPrefix, body: &[u8]) -> ObjectKey {
        match meta {
            EventMeta::Job(job) => {
                let (user, recipe, id, status) = (safe(&job.user_id), safe(&job.recipe_id), safe(&job.id), safe(&job.status));
                let folder = match layout {
                    KeyLayout::Embedded if job.id.bytes().all(|b| b.is_ascii_digit()) && job.id.len() <= 21 => embedded_folder(&job.id),
                    _ => id.clone(),
                };
                ObjectKey(format!(
                    "{prefix}{user}/jobs/{recipe}/{date}/{folder}/{user}-{recipe}-{id}-{time}-{status}.json",
                    prefix = prefix.0,
                    date = job.time.compact_date(),
                    time = job.time.compact_datetime(),
                ))
            }
            EventMeta::Activity(activity) => {
                let workspace = safe(&activity.workspace_id);
                let id = match &activity.id {
                    Some(id) => safe(id),
                    None => digest_id(body),
                };
                ObjectKey(format!(
                    "{prefix}{workspace}/activities/{date}/{id}/{workspace}-{kind}-{id}-{time}.json",
                    prefix = prefix.0,
                    kind = safe(&activity.event_type),
                    date = activity.time.compact_date(),
                    time = activity.time.compact_datetime(),
                ))
            }
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key prefix: empty, or segments ending in `/`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPrefix(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("key prefix {0:?} has an empty, `.` or `..` segment; use something like `audit/` or `tenants/acme/`")]
pub struct BadPrefix(pub String);

impl KeyPrefix {
    /// Normalises `audit`, `audit/` and `/audit/` to `audit/`; rejects `..` and empty segments.
    pub fn new(text: &str) -> Result<KeyPrefix, BadPrefix> {
        let trimmed = text.trim().trim_matches('/');
        if trimmed.is_empty() {
            return Ok(KeyPrefix::default());
        }
        if trimmed.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
            return Err(BadPrefix(text.to_owned()));
        }
        Ok(KeyPrefix(format!("{trimmed}/")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `100` → `000/000/000/000/000/000/100`.
fn embedded_folder(digits: &str) -> String {
    let padded = format!("{digits:0>21}");
    let groups: Vec<&str> = (0..7).map(|i| &padded[i * 3..i * 3 + 3]).collect();
    groups.join("/")
}

fn digest_id(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut id = String::with_capacity(21);
    id.push('h');
    for byte in &digest[..10] {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

/// Makes one key part safe: percent-encodes anything outside `A–Z a–z 0–9 . _ -`.
fn safe(part: &str) -> String {
    if part == "." || part == ".." {
        return part.replace('.', "%2E");
    }
    let mut out = String::with_capacity(part.len());
    for b in part.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ActivityMeta, JobMeta};
    use crate::timestamp::UtcTime;

    fn job(id: &str, status: &str, time: &str) -> EventMeta {
        EventMeta::Job(JobMeta { id: id.into(), recipe_id: "456".into(), status: status.into(), user_id: "1234".into(), time: UtcTime::parse(time).unwrap() })
    }

    fn key(meta: &EventMeta, layout: KeyLayout, prefix: &str) -> String {
        ObjectKey::for_event(meta, layout, &KeyPrefix::new(prefix).unwrap(), b"{}").to_string()
    }

    #[test]
    fn job_keys_follow_workatos_layouts() {
        let cases = [
            // spec §3.1, with the 14-digit time of the pattern (the docs' example shows 8 digits)
            (job("j-KGAKfhsz-GYoLeD", "succeeded", "2022-06-14T10:11:12Z"), KeyLayout::Standard, "",
             "1234/jobs/456/20220614/j-KGAKfhsz-GYoLeD/1234-456-j-KGAKfhsz-GYoLeD-20220614101112-succeeded.json"),
            // the UTC date decides the folder
            (job("j-1", "failed", "2022-06-14T22:00:00-07:00"), KeyLayout::Standard, "audit",
             "audit/1234/jobs/456/20220615/j-1/1234-456-j-1-20220615050000-failed.json"),
            // spec §3.2: numeric ids padded to 21 digits and split every 3
            (job("100", "succeeded", "2018-05-21T00:00:00Z"), KeyLayout::Embedded, "",
             "1234/jobs/456/20180521/000/000/000/000/000/000/100/1234-456-100-20180521000000-succeeded.json"),
            // string handles stay as they are in the embedded layout
            (job("j-AEcaNzd9-dGQ4Bf", "succeeded", "2018-05-21T00:00:00Z"), KeyLayout::Embedded, "/p/q/",
             "p/q/1234/jobs/456/20180521/j-AEcaNzd9-dGQ4Bf/1234-456-j-AEcaNzd9-dGQ4Bf-20180521000000-succeeded.json"),
        ];
        for (meta, layout, prefix, want) in cases {
            assert_eq!(key(&meta, layout, prefix), want);
        }
    }

    #[test]
    fn activity_keys_use_the_event_id_or_a_digest() {
        let mut a = ActivityMeta { id: Some("123456789".into()), event_type: "user_login".into(), resource_type: None, workspace_id: "4848".into(), time: UtcTime::parse("2024-05-01T10:15:30.000Z").unwrap() };
        assert_eq!(key(&EventMeta::Activity(a.clone()), KeyLayout::Standard, ""),
                   "4848/activities/20240501/123456789/4848-user_login-123456789-20240501101530.json");
        a.id = None;
        let meta = EventMeta::Activity(a);
        let one = ObjectKey::for_event(&meta, KeyLayout::Standard, &KeyPrefix::default(), br#"{"event":"user_login"}"#);
        let again = ObjectKey::for_event(&meta, KeyLayout::Standard, &KeyPrefix::default(), br#"{"event":"user_login"}"#);
        let other = ObjectKey::for_event(&meta, KeyLayout::Standard, &KeyPrefix::default(), br#"{"event":"user_logout"}"#);
        assert_eq!(one, again);
        assert_ne!(one, other);
        assert!(one.as_str().starts_with("4848/activities/20240501/h"), "{one}");
    }

    #[test]
    fn parts_from_the_event_cannot_escape_their_folder() {
        let meta = job("../../etc/passwd", "ok/../x", "2022-06-14T10:11:12Z");
        let k = key(&meta, KeyLayout::Standard, "");
        assert!(!k.split('/').any(|seg| seg == ".." || seg == "."), "{k}");
        assert_eq!(k, "1234/jobs/456/20220614/..%2F..%2Fetc%2Fpasswd/1234-456-..%2F..%2Fetc%2Fpasswd-20220614101112-ok%2F..%2Fx.json");
        assert_eq!(safe(".."), "%2E%2E");
        assert_eq!(safe("a b"), "a%20b");
    }

    #[test]
    fn prefixes_are_normalised_or_rejected() {
        assert_eq!(KeyPrefix::new("").unwrap().as_str(), "");
        assert_eq!(KeyPrefix::new("audit").unwrap().as_str(), "audit/");
        assert_eq!(KeyPrefix::new("/audit/x/").unwrap().as_str(), "audit/x/");
        assert!(KeyPrefix::new("a/../b").is_err());
        assert!(KeyPrefix::new("a//b").is_err());
    }
}
