//! Where the integrity records live in an archive, next to the events and never among them:
//! under `PREFIX_auditstream/manifests/` and `PREFIX_auditstream/digests/`. An event key's second
//! segment is always `jobs`, `activities` or `other` ([`crate::pipeline::key`]), so even an event
//! whose user or workspace is `_auditstream` cannot land among the records.
//!
//! - `PREFIX_auditstream/manifests/YYYY/MM/DD/HH/YYYYMMDDTHHMMSSmmmZ-NONCE.json`: one per batch,
//!   named by the time it was written (UTC) and a random nonce, so that two batches never collide.
//! - `PREFIX_auditstream/digests/YYYY/MM/DD/HH/YYYYMMDDTHHMMSSZ.json` (+ `.sig`): one per hour,
//!   named by the end of the hour it covers, so that keys sort in chain order and two digest runs
//!   for the same hour meet at the same key (create-only: the first wins).

use crate::pipeline::key::KeyPrefix;
use crate::pipeline::timestamp::UtcTime;

/// The folder of the integrity records, below the key prefix.
pub const FOLDER: &str = "_auditstream/";

/// The key prefix of an archive's manifests.
pub fn manifests_prefix(prefix: &KeyPrefix) -> String {
    format!("{}{FOLDER}manifests/", prefix.as_str())
}

/// The key prefix of an archive's digests.
pub fn digests_prefix(prefix: &KeyPrefix) -> String {
    format!("{}{FOLDER}digests/", prefix.as_str())
}

/// Whether a key (with the prefix) is one of auditstream's own records rather than an event: a
/// manifest, a digest, or a health-check probe (`PREFIX_auditstream/health/`, see
/// [`crate::pipeline::key::ObjectKey::health_probe`]), which no manifest lists.
pub fn is_record(prefix: &KeyPrefix, key: &str) -> bool {
    key.starts_with(&manifests_prefix(prefix)) || key.starts_with(&digests_prefix(prefix)) || key.starts_with(&format!("{}{FOLDER}health/", prefix.as_str()))
}

/// `YYYY/MM/DD/HH/`, the hour folder of a moment.
fn hour_folder(t: UtcTime) -> String {
    let c = t.compact_datetime();
    format!("{}/{}/{}/{}/", &c[0..4], &c[4..6], &c[6..8], &c[8..10])
}

/// The key prefix of the manifests written in the hour holding `t`.
pub fn manifests_hour_prefix(prefix: &KeyPrefix, t: UtcTime) -> String {
    format!("{}{}", manifests_prefix(prefix), hour_folder(t))
}

/// The key of a batch's manifest written at `at`.
pub fn manifest_key(prefix: &KeyPrefix, at: UtcTime, nonce: u64) -> String {
    let c = at.compact_datetime();
    format!("{}{}T{}{:03}Z-{nonce:016x}.json", manifests_hour_prefix(prefix, at), &c[0..8], &c[8..14], at.millis)
}

/// When a manifest was written, from its key; `None` for a key not made by [`manifest_key`].
pub fn manifest_time(key: &str) -> Option<UtcTime> {
    let name = key.rsplit('/').next()?;
    let stamp = name.get(0..19)?;
    let t = parse_compact(stamp.get(0..15)?)?;
    let millis: u16 = stamp.get(15..18)?.parse().ok()?;
    (stamp.as_bytes()[18] == b'Z' && millis < 1000).then_some(UtcTime { millis, ..t })
}

/// The key of the digest of the hour ending at `end`.
pub fn digest_key(prefix: &KeyPrefix, end: UtcTime) -> String {
    let c = end.compact_datetime();
    format!("{}{}{}T{}Z.json", digests_prefix(prefix), hour_folder(end), &c[0..8], &c[8..14])
}

/// The key of a digest's signature: the digest's key with `.sig` added.
pub fn signature_key(digest_key: &str) -> String {
    format!("{digest_key}.sig")
}

/// The end of the interval a digest covers, from its key; `None` for any other key.
pub fn digest_end(key: &str) -> Option<UtcTime> {
    let name = key.rsplit('/').next()?.strip_suffix("Z.json")?;
    parse_compact(name)
}

/// `YYYYMMDDTHHMMSS`.
fn parse_compact(text: &str) -> Option<UtcTime> {
    let b = text.as_bytes();
    if b.len() != 15 || b[8] != b'T' || !b.iter().enumerate().all(|(i, c)| i == 8 || c.is_ascii_digit()) {
        return None;
    }
    UtcTime::parse(&format!("{}-{}-{}T{}:{}:{}Z", &text[0..4], &text[4..6], &text[6..8], &text[9..11], &text[11..13], &text[13..15])).ok()
}

/// ISO-8601 in UTC to the millisecond, as the records write times: `2026-11-27T20:00:00.000Z`.
pub fn iso(t: UtcTime) -> String {
    let c = t.compact_datetime();
    format!("{}-{}-{}T{}:{}:{}.{:03}Z", &c[0..4], &c[4..6], &c[6..8], &c[8..10], &c[10..12], &c[12..14], t.millis)
}

/// The start of the hour holding `t`.
pub fn hour_floor(t: UtcTime) -> UtcTime {
    UtcTime::from_epoch_seconds(t.epoch_seconds - t.epoch_seconds.rem_euclid(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_sit_in_hour_folders_under_the_prefix_and_name_their_time() {
        let prefix = KeyPrefix::new("workato/").unwrap();
        let at = UtcTime::parse("2026-11-27T20:01:02.345Z").unwrap();
        let key = manifest_key(&prefix, at, 0xab);
        assert_eq!(key, "workato/_auditstream/manifests/2026/11/27/20/20261127T200102345Z-00000000000000ab.json");
        assert_eq!(manifest_time(&key), Some(at));
        assert!(is_record(&prefix, &key));
        assert!(is_record(&prefix, "workato/_auditstream/health/20261127/probe.json"), "a health-check probe is no event");
        assert!(!is_record(&prefix, "workato/1/jobs/x.json") && !is_record(&prefix, "workato/_auditstream/jobs/1/x.json"));

        let end = UtcTime::parse("2026-11-27T21:00:00Z").unwrap();
        let digest = digest_key(&prefix, end);
        assert_eq!(digest, "workato/_auditstream/digests/2026/11/27/21/20261127T210000Z.json");
        assert_eq!(signature_key(&digest), "workato/_auditstream/digests/2026/11/27/21/20261127T210000Z.json.sig");
        assert_eq!(digest_end(&digest), Some(end));
        assert_eq!(digest_end(&signature_key(&digest)), None);
        assert_eq!(iso(at), "2026-11-27T20:01:02.345Z");
        assert_eq!(hour_floor(at), UtcTime::parse("2026-11-27T20:00:00Z").unwrap());
        assert_eq!(manifest_time("x/garbage.json"), None);
    }
}
