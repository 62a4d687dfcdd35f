//! Object keys (`docs/event-format.md`, "Object keys"): where each event is written in S3, Azure Blob or a local directory.
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
//! where EVENT is the event `id`, or for 2019-style events that have none, DIGEST: `h` followed by
//! the first 20 hex digits of the SHA-256 of the event as received — so a redelivered event maps to
//! the same key and is not written twice.
//!
//! Other events (neither jobs nor activities, see [`crate::pipeline::event`]; our layout):
//! `WORKSPACE/other/YYYYMMDD/EVENT/WORKSPACE-other-EVENT-YYYYMMDDHHMMSS-DIGEST.json`
//! where WORKSPACE is `_` for an event that names none, and EVENT the event's id. The name ends
//! with the DIGEST of the event because nothing is known of what an unknown stream's id means: two
//! different events that share an id (a record sent again after a change) are two objects, while a
//! redelivery of the same event is the same key. An event without an id uses the DIGEST as EVENT
//! and its name ends at the time: `WORKSPACE/other/YYYYMMDD/DIGEST/WORKSPACE-other-DIGEST-YYYYMMDDHHMMSS.json`.
//! An event without a time of its own is filed under the date it was received, and its name carries
//! that date alone (`…-YYYYMMDD.json` instead of `…-YYYYMMDDHHMMSS.json`), so that a redelivery later
//! the same day still maps to the same key.
//!
//! Times are UTC, always within the years 0000 to 9999 ([`crate::pipeline::timestamp`]), so the date folder is
//! always eight digits.
//!
//! Every part taken from the event (user, recipe, job id, status, workspace, event type, id) goes
//! through one function, [`segment`], which makes it safe as a path segment or part of a file name
//! in S3, Azure Blob and a local file system:
//! - characters other than `A–Z a–z 0–9 . _ -` are percent-encoded as UTF-8 bytes (`/` → `%2F`,
//!   `\` → `%5C`, NUL → `%00`, a newline → `%0A`, `é` → `%C3%A9`);
//! - a `.` at the start or end of a part is encoded too (`..` → `%2E%2E`, `.x` → `%2Ex`), so no
//!   segment is `.` or `..`, hidden, or ends with a dot (which Azure Blob names must not);
//! - an empty part (a job `status` of `""`) becomes `_`;
//! - a part longer than [`MAX_PART_BYTES`] (56) once encoded is cut to its first 39 bytes (whole
//!   characters) followed by `~` and the first 16 hex digits of the SHA-256 of the whole part as the
//!   event gives it: deterministic, so a redelivery maps to the same key, and `~` never comes out
//!   of the encoding, so a shortened part cannot equal another event's part.
//!
//! With these bounds a file name is at most 247 bytes (a local file system allows 255), and a key
//! without its prefix at most 432 bytes in at most 12 segments; a prefix is limited to 400 bytes
//! ([`KeyPrefix`]), so every key fits S3's 1,024 bytes and Azure Blob's 1,024 characters and 254
//! segments.

use sha2::{Digest, Sha256};

use crate::pipeline::event::EventMeta;
use crate::pipeline::timestamp::UtcTime;

/// The longest part taken from an event, once made safe (see [`segment`]).
pub const MAX_PART_BYTES: usize = 56;

/// What a shortened part keeps of its text: the rest of [`MAX_PART_BYTES`] is `~` and 16 hex digits.
const SHORTENED_KEEP_BYTES: usize = MAX_PART_BYTES - 17;

/// The longest key prefix, leaving room for the longest event key within 1,024 bytes.
pub const MAX_PREFIX_BYTES: usize = 400;

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

    /// The key of an integrity record (a manifest or a digest, under `PREFIX_auditstream/`), which
    /// the integrity layout makes; never an event's.
    pub fn integrity_record(key: String) -> ObjectKey {
        ObjectKey(key)
    }

    /// The key for an event. `body` is the event as received; it names 2019-style activity
    /// events that have no id.
    pub fn for_event(meta: &EventMeta, layout: KeyLayout, prefix: &KeyPrefix, body: &[u8]) -> ObjectKey {
        // Written part by part into one string: a part used twice is encoded twice (parts are
        // short) rather than held in a string of its own.
        let mut key = String::with_capacity(prefix.0.len() + 192);
        key.push_str(&prefix.0);
        match meta {
            EventMeta::Job(job) => {
                push_segment(&mut key, &job.user_id);
                key.push_str("/jobs/");
                push_segment(&mut key, &job.recipe_id);
                key.push('/');
                job.time.write_compact_date(&mut key);
                key.push('/');
                match layout {
                    KeyLayout::Embedded if job.id.bytes().all(|b| b.is_ascii_digit()) && job.id.len() <= 21 => push_embedded_folder(&mut key, &job.id),
                    _ => push_segment(&mut key, &job.id),
                }
                key.push('/');
                for part in [&job.user_id, &job.recipe_id, &job.id] {
                    push_segment(&mut key, part);
                    key.push('-');
                }
                job.time.write_compact_datetime(&mut key);
                key.push('-');
                push_segment(&mut key, &job.status);
            }
            EventMeta::Activity(activity) => {
                let digest = activity.id.is_none().then(|| digest_id(body));
                let id = |key: &mut String| match (&activity.id, &digest) {
                    (Some(id), _) => push_segment(key, id),
                    (None, digest) => key.push_str(digest.as_deref().unwrap_or_default()),
                };
                push_segment(&mut key, &activity.workspace_id);
                key.push_str("/activities/");
                activity.time.write_compact_date(&mut key);
                key.push('/');
                id(&mut key);
                key.push('/');
                push_segment(&mut key, &activity.workspace_id);
                key.push('-');
                push_segment(&mut key, &activity.event_type);
                key.push('-');
                id(&mut key);
                key.push('-');
                activity.time.write_compact_datetime(&mut key);
            }
            EventMeta::Other(other) => {
                let workspace = other.workspace_id.as_deref().unwrap_or("");
                let digest = digest_id(body);
                let id = |key: &mut String| match &other.id {
                    Some(id) => push_segment(key, id),
                    None => key.push_str(&digest),
                };
                push_segment(&mut key, workspace);
                key.push_str("/other/");
                other.time.write_compact_date(&mut key);
                key.push('/');
                id(&mut key);
                key.push('/');
                push_segment(&mut key, workspace);
                key.push_str("-other-");
                id(&mut key);
                key.push('-');
                match other.time_field {
                    Some(_) => other.time.write_compact_datetime(&mut key),
                    None => other.time.write_compact_date(&mut key),
                }
                if other.id.is_some() {
                    key.push('-');
                    key.push_str(&digest);
                }
            }
        }
        key.push_str(".json");
        ObjectKey(key)
    }
}

impl ObjectKey {
    /// The key of a health-check probe: `PREFIX_auditstream/health/YYYYMMDD/ID.json`. No event key
    /// starts with `_auditstream/health/` (an event's second segment is `jobs`, `activities` or
    /// `other`), so a lifecycle rule can expire probes without touching audit objects.
    pub fn health_probe(prefix: &KeyPrefix, time: &UtcTime, id: &str) -> ObjectKey {
        ObjectKey(format!("{prefix}_auditstream/health/{date}/{id}.json", prefix = prefix.0, date = time.compact_date(), id = segment(id)))
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
pub enum BadPrefix {
    #[error("key prefix {0:?} has an empty, `.` or `..` segment; use something like `audit/` or `tenants/acme/`")]
    Segment(String),
    #[error("key prefix {0:?} holds a control character or a `\\`, which some stores and file systems take for something else")]
    Character(String),
    #[error("key prefix is {0} bytes; at most {MAX_PREFIX_BYTES} leave room for the event's own key within the 1,024 bytes S3 and Azure Blob allow")]
    TooLong(usize),
    #[error("key prefix has a segment of {0} bytes; a folder name holds at most 255")]
    SegmentTooLong(usize),
}

impl KeyPrefix {
    /// Normalises `audit`, `audit/` and `/audit/` to `audit/`; rejects `..`, empty segments, control
    /// characters, `\`, a segment over 255 bytes and a prefix over [`MAX_PREFIX_BYTES`].
    pub fn new(text: &str) -> Result<KeyPrefix, BadPrefix> {
        let trimmed = text.trim().trim_matches('/');
        if trimmed.is_empty() {
            return Ok(KeyPrefix::default());
        }
        if trimmed.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
            return Err(BadPrefix::Segment(text.to_owned()));
        }
        if trimmed.chars().any(|c| c.is_control() || c == '\\') {
            return Err(BadPrefix::Character(text.to_owned()));
        }
        if trimmed.len() > MAX_PREFIX_BYTES {
            return Err(BadPrefix::TooLong(trimmed.len()));
        }
        if let Some(long) = trimmed.split('/').map(str::len).find(|&len| len > 255) {
            return Err(BadPrefix::SegmentTooLong(long));
        }
        Ok(KeyPrefix(format!("{trimmed}/")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The stream an archived event's key files it under: its second segment below the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyStream {
    /// `USER/jobs/…`: job events, with or without their lines.
    Jobs,
    /// `WORKSPACE/activities/…`: user-activity events.
    Activities,
    /// `WORKSPACE/other/…`: events that are neither.
    Other,
}

impl KeyStream {
    pub const ALL: [KeyStream; 3] = [KeyStream::Jobs, KeyStream::Activities, KeyStream::Other];

    /// The key segment: `jobs`, `activities`, `other`.
    pub fn name(self) -> &'static str {
        match self {
            KeyStream::Jobs => "jobs",
            KeyStream::Activities => "activities",
            KeyStream::Other => "other",
        }
    }

    pub fn from_name(name: &str) -> Option<KeyStream> {
        KeyStream::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What an event's key says of it, read back from the key alone (no download): its stream and
/// when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFacts {
    pub stream: KeyStream,
    /// The date folder, `YYYYMMDD` as a number.
    pub date: u32,
    /// The time in the object's name, `YYYYMMDDHHMMSS` as a number; for an event filed by date
    /// alone (one without a time of its own), midnight of its date folder.
    pub moment: u64,
}

impl KeyFacts {
    /// Reads `key` (the prefix already taken off) as one of the layouts in the module docs;
    /// `None` when it is not the key of an event. The inverse of [`ObjectKey::for_event`] as far
    /// as the stream and the time go.
    pub fn of_event_key(key: &str) -> Option<KeyFacts> {
        let parts: Vec<&str> = key.split('/').collect();
        let (stream, date_at) = match parts.get(1).copied().and_then(KeyStream::from_name)? {
            KeyStream::Jobs => (KeyStream::Jobs, 3),
            other => (other, 2),
        };
        let date_text = *parts.get(date_at)?;
        let date: u32 = digits(date_text, 8)?.try_into().ok()?;
        let name = parts.last()?.strip_suffix(".json")?;
        let folders = &parts[date_at + 1..parts.len() - 1];
        // The text of the name after the parts before the time, which the folders repeat.
        let after = match stream {
            KeyStream::Jobs => {
                let rest = name.strip_prefix(&format!("{}-{}-", parts[0], parts[2]))?;
                match folders {
                    [id] => rest.strip_prefix(id)?.strip_prefix('-')?,
                    // The embedded layout splits an all-digit id into seven folders.
                    [_, _, _, _, _, _, _] => rest.split_once('-')?.1,
                    _ => return None,
                }
            }
            KeyStream::Activities => {
                let [id] = folders else { return None };
                // `WORKSPACE-EVENT_TYPE-EVENT-TIME`: the time is last, after the event's id.
                let (before, time) = name.split_at(name.len().checked_sub(14)?);
                before.strip_suffix('-')?.strip_suffix(id)?;
                time
            }
            KeyStream::Other => {
                let [id] = folders else { return None };
                name.strip_prefix(&format!("{}-other-{id}-", parts[0]))?
            }
        };
        let moment = match after.get(..14).and_then(|t| digits(t, 14)) {
            Some(moment) if matches!(after.as_bytes().get(14), None | Some(b'-')) => moment,
            _ if stream == KeyStream::Other && after.get(..8) == Some(date_text) && matches!(after.as_bytes().get(8), None | Some(b'-')) => {
                u64::from(date) * 1_000_000
            }
            _ => return None,
        };
        (moment / 1_000_000 == u64::from(date)).then_some(KeyFacts { stream, date, moment })
    }
}

/// `text` as a number when it is exactly `len` ASCII digits.
fn digits(text: &str, len: usize) -> Option<u64> {
    (text.len() == len && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok()).flatten()
}

/// `100` → `000/000/000/000/000/000/100`.
/// The embedded layout's job folder: `digits` left-padded with zeros to 21 digits, in groups of 3.
fn push_embedded_folder(out: &mut String, digits: &str) {
    let padded = format!("{digits:0>21}");
    for (i, group) in padded.as_bytes().chunks(3).enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(std::str::from_utf8(group).expect("ASCII digits"));
    }
}

fn digest_id(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut id = String::with_capacity(21);
    id.push('h');
    push_hex(&mut id, &digest[..10]);
    id
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0xf)] as char);
    }
}

/// Makes one part taken from an event safe as a key segment or part of a file name (the rules are
/// in the module docs). The one place a key's parts are sanitized.
fn segment(part: &str) -> String {
    let mut out = String::new();
    push_segment(&mut out, part);
    out
}

/// [`segment`], appended to `out`.
fn push_segment(out: &mut String, part: &str) {
    if part.is_empty() {
        out.push('_');
        return;
    }
    let start = out.len();
    encode(out, part, usize::MAX);
    if out.len() - start <= MAX_PART_BYTES {
        return;
    }
    out.truncate(start);
    encode(out, part, SHORTENED_KEEP_BYTES);
    out.push('~');
    push_hex(out, &Sha256::digest(part.as_bytes())[..8]);
}

/// Percent-encodes `part` (see [`segment`]) onto `out`, whole characters only, up to `max` bytes.
fn encode(out: &mut String, part: &str, max: usize) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let start = out.len();
    out.reserve(part.len().min(max));
    let mut buf = [0u8; 4];
    for (i, c) in part.char_indices() {
        let at_edge = i == 0 || i + c.len_utf8() == part.len();
        let kept = c.is_ascii_alphanumeric() || c == '_' || c == '-' || (c == '.' && !at_edge);
        let width = if kept { 1 } else { 3 * c.len_utf8() };
        if out.len() - start + width > max {
            break;
        }
        if kept {
            out.push(c);
        } else {
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 0xf)] as char);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::event::{ActivityMeta, JobMeta, OtherMeta};
    use crate::pipeline::timestamp::UtcTime;

    fn hex_sha256(bytes: &[u8]) -> String {
        Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
    }

    fn job(id: &str, status: &str, time: &str) -> EventMeta {
        EventMeta::Job(JobMeta { id: id.into(), recipe_id: "456".into(), status: status.into(), user_id: "1234".into(), time: UtcTime::parse(time).unwrap() })
    }

    fn key(meta: &EventMeta, layout: KeyLayout, prefix: &str) -> String {
        ObjectKey::for_event(meta, layout, &KeyPrefix::new(prefix).unwrap(), b"{}").to_string()
    }

    #[test]
    fn job_keys_follow_workatos_layouts() {
        let cases = [
            // Workato's current job layout, with the 14-digit time of its pattern (its example shows 8 digits)
            (
                job("j-KGAKfhsz-GYoLeD", "succeeded", "2022-06-14T10:11:12Z"),
                KeyLayout::Standard,
                "",
                "1234/jobs/456/20220614/j-KGAKfhsz-GYoLeD/1234-456-j-KGAKfhsz-GYoLeD-20220614101112-succeeded.json",
            ),
            // the UTC date decides the folder
            (
                job("j-1", "failed", "2022-06-14T22:00:00-07:00"),
                KeyLayout::Standard,
                "audit",
                "audit/1234/jobs/456/20220615/j-1/1234-456-j-1-20220615050000-failed.json",
            ),
            // Workato's embedded-partner layout: numeric ids padded to 21 digits and split every 3
            (
                job("100", "succeeded", "2018-05-21T00:00:00Z"),
                KeyLayout::Embedded,
                "",
                "1234/jobs/456/20180521/000/000/000/000/000/000/100/1234-456-100-20180521000000-succeeded.json",
            ),
            // string handles stay as they are in the embedded layout
            (
                job("j-AEcaNzd9-dGQ4Bf", "succeeded", "2018-05-21T00:00:00Z"),
                KeyLayout::Embedded,
                "/p/q/",
                "p/q/1234/jobs/456/20180521/j-AEcaNzd9-dGQ4Bf/1234-456-j-AEcaNzd9-dGQ4Bf-20180521000000-succeeded.json",
            ),
        ];
        for (meta, layout, prefix, want) in cases {
            assert_eq!(key(&meta, layout, prefix), want);
        }
    }

    #[test]
    fn activity_keys_use_the_event_id_or_a_digest() {
        let mut a = ActivityMeta {
            id: Some("123456789".into()),
            event_type: "user_login".into(),
            resource_type: None,
            workspace_id: "4848".into(),
            time: UtcTime::parse("2024-05-01T10:15:30.000Z").unwrap(),
        };
        assert_eq!(
            key(&EventMeta::Activity(a.clone()), KeyLayout::Standard, ""),
            "4848/activities/20240501/123456789/4848-user_login-123456789-20240501101530.json"
        );
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
        // (a leading `.` is encoded, so the folder is not hidden either)
        assert_eq!(k, "1234/jobs/456/20220614/%2E.%2F..%2Fetc%2Fpasswd/1234-456-%2E.%2F..%2Fetc%2Fpasswd-20220614101112-ok%2F..%2Fx.json");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("a b"), "a%20b");
    }

    /// The `/`-separated segments of a key.
    fn segments(k: &str) -> Vec<&str> {
        k.split('/').collect()
    }

    #[test]
    fn odd_statuses_give_documented_segments() {
        let cases = [
            ("", "_"),
            ("/", "%2F"),
            (".", "%2E"),
            ("..", "%2E%2E"),
            ("...", "%2E.%2E"),
            (".hidden", "%2Ehidden"),
            ("done.", "done%2E"),
            ("a\\b", "a%5Cb"),
            ("\0", "%00"),
            ("\u{1b}[31mok\n", "%1B%5B31mok%0A"),
            ("échec", "%C3%A9chec"),
        ];
        for (status, want) in cases {
            let k = key(&job("j-1", status, "2022-06-14T10:11:12Z"), KeyLayout::Standard, "");
            assert_eq!(k, format!("1234/jobs/456/20220614/j-1/1234-456-j-1-20220614101112-{want}.json"), "status {status:?}");
        }
    }

    #[test]
    fn a_part_too_long_for_a_file_name_is_shortened_with_a_hash_of_the_whole() {
        let long_id = "x".repeat(400);
        let k = key(&job(&long_id, "succeeded", "2022-06-14T10:11:12Z"), KeyLayout::Standard, "");
        let short = format!("{}~{}", "x".repeat(39), &hex_sha256(long_id.as_bytes())[..16]);
        assert_eq!(k, format!("1234/jobs/456/20220614/{short}/1234-456-{short}-20220614101112-succeeded.json"));
        // deterministic (a redelivery maps to the same key), and ids that share their first
        // bytes stay apart
        assert_eq!(k, key(&job(&long_id, "succeeded", "2022-06-14T10:11:12Z"), KeyLayout::Standard, ""));
        let sibling = format!("{long_id}y");
        assert_ne!(k, key(&job(&sibling, "succeeded", "2022-06-14T10:11:12Z"), KeyLayout::Standard, ""));
        // a cut keeps whole characters: never half of a %XX escape or of a UTF-8 sequence
        let accented = "é".repeat(100);
        let k = key(&job(&accented, "ok", "2022-06-14T10:11:12Z"), KeyLayout::Standard, "");
        assert_eq!(segments(&k)[4], format!("{}~{}", "%C3%A9".repeat(6), &hex_sha256(accented.as_bytes())[..16]));
        // at the limit nothing is cut
        let at_limit = "y".repeat(MAX_PART_BYTES);
        assert!(key(&job(&at_limit, "ok", "2022-06-14T10:11:12Z"), KeyLayout::Standard, "").contains(&format!("/{at_limit}/")));
    }

    #[test]
    fn every_key_fits_every_store_whatever_the_event_holds() {
        // the longest prefix allowed, and every part from the event as long and as odd as it gets
        let prefix = ["p".repeat(200), "q".repeat(199)].join("/");
        let huge = "\u{1}/..".repeat(300);
        let time = UtcTime::parse("2022-06-14T10:11:12Z").unwrap();
        let metas = [
            EventMeta::Job(JobMeta { id: huge.clone(), recipe_id: huge.clone(), status: huge.clone(), user_id: huge.clone(), time }),
            EventMeta::Activity(ActivityMeta { id: Some(huge.clone()), event_type: huge.clone(), resource_type: None, workspace_id: huge.clone(), time }),
            EventMeta::Other(OtherMeta { id: Some(huge.clone()), workspace_id: Some(huge.clone()), time, time_field: Some("time") }),
        ];
        for meta in &metas {
            for layout in [KeyLayout::Standard, KeyLayout::Embedded] {
                let k = key(meta, layout, &prefix);
                // S3: 1,024 bytes per key; Azure Blob: 1,024 characters and 254 segments per name
                assert!(k.len() <= 1024, "{} bytes", k.len());
                assert!(segments(&k).len() <= 254);
                for segment in segments(&k) {
                    // a local file system: 255 bytes per name, and no segment that moves up or hides
                    assert!(!segment.is_empty() && segment.len() <= 255, "{segment:?}");
                    assert!(!segment.starts_with('.') && !segment.ends_with('.'), "{segment:?}");
                    assert!(segment.bytes().all(|b| b.is_ascii_graphic() && b != b'\\'), "{segment:?}");
                }
            }
        }
    }

    #[test]
    fn dates_outside_years_0000_to_9999_are_clamped_to_them() {
        let cases = [
            // an offset moves year 0's first hour, or year 9999's last, past the range
            ("0000-01-01T00:30:00+01:00", "00000101", "00000101000000"),
            ("9999-12-31T23:00:00-05:00", "99991231", "99991231235959"),
            // inside the range, times before 1970 are ordinary dates
            ("0000-03-01T00:00:00Z", "00000301", "00000301000000"),
            ("1969-07-20T20:17:40Z", "19690720", "19690720201740"),
        ];
        for (time, date, datetime) in cases {
            let k = key(&job("j-1", "ok", time), KeyLayout::Standard, "");
            assert_eq!(k, format!("1234/jobs/456/{date}/j-1/1234-456-j-1-{datetime}-ok.json"), "{time}");
        }
    }

    #[test]
    fn other_event_keys_name_the_workspace_the_time_the_id_and_the_content() {
        let body = br#"{"request_id":"req-7f3a","workspace_id":4848,"timestamp":"2026-11-25T10:15:30Z"}"#;
        let digest = format!("h{}", &hex_sha256(body)[..20]);
        let other = |id: Option<&str>, workspace: Option<&str>, time_field: Option<&'static str>| {
            EventMeta::Other(OtherMeta {
                id: id.map(Into::into),
                workspace_id: workspace.map(Into::into),
                time: UtcTime::parse("2026-11-25T10:15:30Z").unwrap(),
                time_field,
            })
        };
        let key_of = |meta: &EventMeta| ObjectKey::for_event(meta, KeyLayout::Standard, &KeyPrefix::default(), body).to_string();
        let cases = [
            (
                other(Some("req-7f3a"), Some("4848"), Some("timestamp")),
                format!("4848/other/20261125/req-7f3a/4848-other-req-7f3a-20261125101530-{digest}.json"),
            ),
            // no workspace: `_`
            (other(Some("req-7f3a"), None, Some("timestamp")), format!("_/other/20261125/req-7f3a/_-other-req-7f3a-20261125101530-{digest}.json")),
            // no id: the digest names the event
            (other(None, Some("4848"), Some("timestamp")), format!("4848/other/20261125/{digest}/4848-other-{digest}-20261125101530.json")),
            // no time of its own: the receive date, and no time of day in the name
            (other(None, None, None), format!("_/other/20261125/{digest}/_-other-{digest}-20261125.json")),
        ];
        for (meta, want) in cases {
            assert_eq!(key_of(&meta), want);
        }
        // the same id with other content is another object; the same content is the same key
        let meta = other(Some("req-7f3a"), Some("4848"), Some("timestamp"));
        let changed = ObjectKey::for_event(&meta, KeyLayout::Standard, &KeyPrefix::default(), br#"{"request_id":"req-7f3a","status":500}"#);
        assert_ne!(changed.to_string(), key_of(&meta));
        assert_eq!(key_of(&meta), key_of(&meta));
        // the embedded layout is about job ids only
        assert_eq!(ObjectKey::for_event(&meta, KeyLayout::Embedded, &KeyPrefix::default(), body).to_string(), key_of(&meta));
    }

    #[test]
    fn prefixes_are_normalised_or_rejected() {
        assert_eq!(KeyPrefix::new("").unwrap().as_str(), "");
        assert_eq!(KeyPrefix::new("audit").unwrap().as_str(), "audit/");
        assert_eq!(KeyPrefix::new("/audit/x/").unwrap().as_str(), "audit/x/");
        assert!(KeyPrefix::new("a/../b").is_err());
        assert!(KeyPrefix::new("a//b").is_err());
        // a prefix cannot break the keys it starts
        assert_eq!(KeyPrefix::new("a\\b"), Err(BadPrefix::Character("a\\b".into())));
        assert_eq!(KeyPrefix::new("a/\tb"), Err(BadPrefix::Character("a/\tb".into())));
        assert_eq!(KeyPrefix::new(&"p/".repeat(201)), Err(BadPrefix::TooLong(401)));
        assert_eq!(KeyPrefix::new(&"p".repeat(256)), Err(BadPrefix::SegmentTooLong(256)));
        assert!(KeyPrefix::new(&"p/".repeat(200)).is_ok());
    }

    #[test]
    fn an_event_key_reads_back_as_its_stream_and_time_whatever_its_parts_hold() {
        let time = UtcTime::parse("2024-03-05T06:07:08Z").unwrap();
        let moment = 20240305060708;
        // parts that look like times, hyphens and dates, long parts that get shortened
        let tricky = ["j-1", "x-20991231235959-y", "-", "", "20240305", &"é-".repeat(40), "000123"];
        let mut cases = Vec::new();
        for part in tricky {
            cases.push((
                EventMeta::Job(JobMeta { id: part.into(), recipe_id: part.into(), status: part.into(), user_id: part.into(), time }),
                KeyStream::Jobs,
                moment,
            ));
            cases.push((
                EventMeta::Activity(ActivityMeta { id: Some(part.into()), event_type: part.into(), resource_type: None, workspace_id: part.into(), time }),
                KeyStream::Activities,
                moment,
            ));
            cases.push((
                EventMeta::Activity(ActivityMeta { id: None, event_type: part.into(), resource_type: None, workspace_id: part.into(), time }),
                KeyStream::Activities,
                moment,
            ));
            for id in [Some(part.to_owned()), None] {
                let (with_time, filed_by_date) = (Some("time"), None);
                for time_field in [with_time, filed_by_date] {
                    let expected = if time_field.is_some() { moment } else { 20240305000000 };
                    cases.push((EventMeta::Other(OtherMeta { id: id.clone(), workspace_id: Some(part.into()), time, time_field }), KeyStream::Other, expected));
                }
            }
        }
        cases.push((job("100", "succeeded", "2024-03-05T06:07:08Z"), KeyStream::Jobs, moment));
        for (meta, stream, moment) in cases {
            for layout in [KeyLayout::Standard, KeyLayout::Embedded] {
                let key = ObjectKey::for_event(&meta, layout, &KeyPrefix::default(), b"{\"a\":1}");
                let facts = KeyFacts::of_event_key(key.as_str());
                assert_eq!(facts, Some(KeyFacts { stream, date: 20240305, moment }), "{key}");
            }
        }
    }

    #[test]
    fn a_key_outside_the_layout_is_no_event() {
        for key in [
            "README.md",
            "1/jobs/2/20240305/j/1-2-j-20240305060708-ok.txt",
            "1/jobs/2/2024035/j/1-2-j-20240305060708-ok.json",
            "1/jobs/2/20240305/j/1-2-k-20240305060708-ok.json",
            "1/jobs/2/20240305/j/1-2-j-20240306060708-ok.json",
            "1/jobs/2/20240305/a/b/1-2-j-20240305060708-ok.json",
            "1/activities/20240305/7/1-login-7-2024030506070.json",
            "1/activities/20240305/7/1-login-8-20240305060708.json",
            "1/other/20240305/7/2-other-7-20240305060708.json",
            "1/other/20240305/7/1-other-7-2024030506.json",
            "1/events/20240305/7/1-other-7-20240305060708.json",
            "_auditstream/manifests/2024/03/05/06/20240305T060708000Z-00.json",
        ] {
            assert_eq!(KeyFacts::of_event_key(key), None, "{key}");
        }
    }
}
