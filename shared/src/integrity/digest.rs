//! Digests: the signed hash chain over the manifests (`docs/integrity.md`).
//!
//! Each digest covers an interval, from the previous digest's end to its own end (at most up to
//! the next full hour, so there is one per hour), names every manifest written in it with its
//! SHA-256, and carries the previous digest's key, SHA-256 and signature. An interval without
//! manifests still gets a digest, so that a gap is visible. The signature of the digest file's
//! [`statement`] is stored beside it (`….json.sig`, raw: DER for ECDSA, 64 bytes for Ed25519).
//!
//! Format `auditstream-digest/1` (JSON):
//! `{"format":"auditstream-digest/1","start":"…Z","end":"…Z","manifests":[{"key":"…","sha256":"…"}],
//!   "previous":{"key":"…","sha256":"…","signature":"<base64>"}|null,"signing":{"algorithm":"ECDSA_SHA_256","key_id":"arn:…"}}`

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::integrity::archive::{Archive, ArchiveError, Listing};
use crate::integrity::checksum::Sha256Sum;
use crate::integrity::layout;
use crate::integrity::manifest::BadRecord;
use crate::integrity::signature::DigestSigner;
use crate::pipeline::timestamp::UtcTime;

pub const DIGEST_FORMAT: &str = "auditstream-digest/1";

/// What is signed for a digest file: `auditstream-digest/1 ` and the file's SHA-256 in lowercase hex
/// (84 bytes, no newline).
pub fn statement(digest_file: &[u8]) -> Vec<u8> {
    format!("{} {}", DIGEST_FORMAT, crate::integrity::checksum::Sha256Sum::of(digest_file).hex()).into_bytes()
}

/// How long after a moment every batch that ended before it has written its manifest: a Lambda
/// runs 15 minutes at most. The default end of a digest run is the last full hour at least this
/// long ago.
pub const SETTLE_SECONDS: i64 = 15 * 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRef {
    pub key: String,
    pub sha256: Sha256Sum,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousDigest {
    pub key: String,
    pub sha256: Sha256Sum,
    /// Base64 of the previous digest's signature file.
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signing {
    pub algorithm: String,
    pub key_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub format: String,
    pub start: String,
    pub end: String,
    pub manifests: Vec<ManifestRef>,
    pub previous: Option<PreviousDigest>,
    pub signing: Signing,
}

impl Digest {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a digest is plain data")
    }

    pub fn parse(key: &str, bytes: &[u8]) -> Result<Digest, BadRecord> {
        let bad = |reason: String| BadRecord { key: key.into(), format: DIGEST_FORMAT, reason };
        let digest: Digest = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if digest.format != DIGEST_FORMAT {
            return Err(bad(format!("its format is {:?}", digest.format)));
        }
        Ok(digest)
    }
}

pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The default end of a digest run at `now`: the last full hour at least [`SETTLE_SECONDS`] ago.
pub fn default_until(now: UtcTime) -> UtcTime {
    layout::hour_floor(UtcTime::from_epoch_seconds(now.epoch_seconds - SETTLE_SECONDS))
}

/// The end of the run a schedule asks for at `scheduled` (the default end at that time, so that a
/// late or retried invocation does the same run), never later than the default end at `now`: an
/// interval is digested only once every batch in it has written its manifest.
pub fn scheduled_until(scheduled: UtcTime, now: UtcTime) -> UtcTime {
    default_until(scheduled.min(now))
}

/// The intervals to digest from `start` to `until` (whole seconds, as digest keys name them):
/// each up to the next full hour, the last up to `until`.
pub fn intervals(start: UtcTime, until: UtcTime) -> Vec<(UtcTime, UtcTime)> {
    let until = UtcTime::from_epoch_seconds(until.epoch_seconds);
    let mut out = Vec::new();
    let mut from = start;
    while from < until {
        let next_hour = UtcTime::from_epoch_seconds(layout::hour_floor(from).epoch_seconds + 3600);
        let to = next_hour.min(until);
        out.push((from, to));
        from = to;
    }
    out
}

/// What a digest run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DigestRun {
    /// The digests written, by key.
    pub written: Vec<String>,
    /// Manifests they name, in all.
    pub manifests: usize,
    /// The end of the chain after the run.
    pub end: Option<UtcTime>,
}

/// Extends the chain up to `until`: one signed digest per interval since the last digest's end
/// (or, for a new chain, since the hour of the first manifest), written create-only.
pub async fn extend_chain(archive: &dyn Archive, signer: &dyn DigestSigner, until: UtcTime) -> Result<DigestRun, ArchiveError> {
    let prefix = archive.key_prefix().clone();
    // The last digest: keys sort in chain order, but a stray key could sit anywhere, so every one
    // is looked at (a page at a time) and the latest end kept.
    let mut last: Option<(UtcTime, String)> = None;
    let mut listing = Listing::new(archive, &layout::digests_prefix(&prefix));
    while let Some(listed) = listing.next().await? {
        if let Some(end) = layout::digest_end(&listed.key) {
            if last.as_ref().is_none_or(|(latest, _)| end > *latest) {
                last = Some((end, listed.key));
            }
        }
    }
    let mut previous = None;
    let start = match &last {
        Some((end, last)) => {
            let end = *end;
            let bytes = archive.get(last).await?.ok_or_else(|| ArchiveError(format!("{last}: the last digest disappeared while it was read")))?;
            let sig_key = layout::signature_key(last);
            let signature = match archive.get(&sig_key).await? {
                Some(sig) => sig,
                // Written after its digest: a run that stopped in between left it out. It is the
                // signature of these bytes, as they were written.
                None => {
                    let sig = signer.sign(&statement(&bytes)).await?;
                    archive.put_record(&sig_key, sig.clone()).await?;
                    tracing::warn!(digest = %last, "the last digest had no signature (a digest run stopped after writing it): signed it now");
                    sig
                }
            };
            previous = Some(PreviousDigest { key: last.clone(), sha256: Sha256Sum::of(&bytes), signature: base64(&signature) });
            end
        }
        None => {
            let mut first: Option<UtcTime> = None;
            let mut manifests = Listing::new(archive, &layout::manifests_prefix(&prefix));
            while let Some(listed) = manifests.next().await? {
                if let Some(at) = layout::manifest_time(&listed.key) {
                    first = Some(first.map_or(at, |first| first.min(at)));
                }
            }
            match first {
                Some(first) => layout::hour_floor(first),
                None => UtcTime::from_epoch_seconds(layout::hour_floor(until).epoch_seconds.min(until.epoch_seconds - 3600)),
            }
        }
    };
    let mut run = DigestRun { end: previous.as_ref().and_then(|p: &PreviousDigest| layout::digest_end(&p.key)), ..DigestRun::default() };
    for (from, to) in intervals(start, until) {
        let mut manifests = Vec::new();
        let mut listing = Listing::new(archive, &layout::manifests_hour_prefix(&prefix, from));
        while let Some(listed) = listing.next().await? {
            if layout::manifest_time(&listed.key).is_some_and(|t| from <= t && t < to) {
                let bytes = archive.get(&listed.key).await?.ok_or_else(|| ArchiveError(format!("{}: a manifest disappeared while it was read", listed.key)))?;
                manifests.push(ManifestRef { key: listed.key, sha256: Sha256Sum::of(&bytes) });
            }
        }
        let digest = Digest {
            format: DIGEST_FORMAT.into(),
            start: layout::iso(from),
            end: layout::iso(to),
            manifests,
            previous: previous.take(),
            signing: Signing { algorithm: signer.algorithm().name().into(), key_id: signer.key_id() },
        };
        let key = layout::digest_key(&prefix, to);
        let bytes = digest.to_json();
        // Signed before anything is written: a run that cannot sign (a wrong key, no permission)
        // leaves nothing behind, and the next run with a usable key starts clean.
        let signature = signer.sign(&statement(&bytes)).await?;
        if !archive.put_record(&key, bytes.clone()).await? {
            // Another run got there first: the same interval gives the same digest.
            let there = archive.get(&key).await?.unwrap_or_default();
            if there != bytes {
                return Err(ArchiveError(format!("{key}: a different digest is already there; run auditstream verify")));
            }
        }
        let sig_key = layout::signature_key(&key);
        let signature = match archive.put_record(&sig_key, signature.clone()).await? {
            true => signature,
            false => archive.get(&sig_key).await?.unwrap_or(signature),
        };
        run.manifests += digest.manifests.len();
        run.written.push(key.clone());
        run.end = Some(to);
        previous = Some(PreviousDigest { key, sha256: Sha256Sum::of(&bytes), signature: base64(&signature) });
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> UtcTime {
        UtcTime::parse(text).unwrap()
    }

    #[test]
    fn intervals_end_at_each_full_hour_and_at_until() {
        assert_eq!(
            intervals(t("2026-11-27T10:00:00Z"), t("2026-11-27T12:30:05.250Z")),
            // (until is taken to the whole second)
            vec![
                (t("2026-11-27T10:00:00Z"), t("2026-11-27T11:00:00Z")),
                (t("2026-11-27T11:00:00Z"), t("2026-11-27T12:00:00Z")),
                (t("2026-11-27T12:00:00Z"), t("2026-11-27T12:30:05Z")),
            ]
        );
        assert_eq!(intervals(t("2026-11-27T12:30:05Z"), t("2026-11-27T13:00:00Z")), vec![(t("2026-11-27T12:30:05Z"), t("2026-11-27T13:00:00Z"))]);
        assert!(intervals(t("2026-11-27T13:00:00Z"), t("2026-11-27T13:00:00Z")).is_empty());
        assert_eq!(default_until(t("2026-11-27T13:14:59Z")), t("2026-11-27T12:00:00Z"));
        assert_eq!(default_until(t("2026-11-27T13:15:00Z")), t("2026-11-27T13:00:00Z"));
    }

    #[test]
    fn a_scheduled_run_ends_where_the_default_end_was_at_its_time_and_never_later_than_now() {
        // the hourly schedule at 20 past: the hour before, also when the invocation runs late
        assert_eq!(scheduled_until(t("2026-11-27T13:20:00Z"), t("2026-11-27T14:40:00Z")), t("2026-11-27T13:00:00Z"));
        // a time in the future is no reason to digest an hour whose batches may still be running
        assert_eq!(scheduled_until(t("2026-11-27T18:20:00Z"), t("2026-11-27T13:20:00Z")), t("2026-11-27T13:00:00Z"));
        assert_eq!(scheduled_until(t("2026-11-27T18:20:00Z"), t("2026-11-27T13:10:00Z")), t("2026-11-27T12:00:00Z"));
    }
}
