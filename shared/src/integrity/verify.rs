//! Verification of an archive: walks the digest chain and checks every manifest it names and
//! every object those list, and that nothing in the archive is listed nowhere
//! (`docs/integrity.md`, "What verify checks"). Each finding names its key.
//!
//! Memory stays bounded whatever the archive's size: the chain is walked one digest (one interval)
//! at a time, listings are read a page at a time ([`Listing`]), one manifest is held at a time,
//! and the keys the manifests list — needed to find an object that no manifest lists — are sorted
//! in runs of at most [`Limits::keys_in_memory`] ([`SortedKeys`]), spilled to temporary files and
//! merged with the archive's own listing, which comes in the same (key) order. The problems found
//! are sorted the same way, so that however many there are (a badly tampered archive may have
//! millions), each is reported once, in order of kind and key, without holding them all: the same
//! object may be found deleted through every manifest that lists it (a redelivery lists the objects
//! it found again).

use std::collections::HashSet;

use futures::stream::{self, StreamExt};

use crate::integrity::archive::{Archive, ArchiveError, Listing};
use crate::integrity::checksum::Sha256Sum;
use crate::integrity::digest::statement;
use crate::integrity::digest::{base64, Digest};
use crate::integrity::layout;
use crate::integrity::manifest::{Manifest, ManifestEntry};
use crate::integrity::signature::PublicKey;
use crate::integrity::sorted_keys::{SortedKeys, SpillError};
use crate::pipeline::key::KeyPrefix;
use crate::pipeline::timestamp::UtcTime;

/// How much verification holds in memory at once: object keys (about 100 bytes each) and, apart,
/// the problems found, each up to [`Limits::keys_in_memory`] before they are spilled to disk.
pub use crate::integrity::sorted_keys::Limits;

/// What verification found wrong, each naming its key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
    /// A digest the chain names (or expects, up to `--until`) is not there.
    DigestMissing(String),
    /// A digest's bytes are not those its successor names, or not what its own name says.
    DigestAltered(String),
    /// A digest's signature is missing or does not verify with the public key.
    DigestBadlySigned(String),
    /// A digest that cannot be read as the format, or out of place in the chain.
    DigestInvalid(String, String),
    ManifestMissing(String),
    ManifestAltered(String),
    /// A manifest in a digested interval that no digest names: slipped in.
    ManifestUnlisted(String),
    ObjectMissing(String),
    ObjectChanged(String),
    /// An object written in a digested interval that no manifest lists: slipped in.
    ObjectUnlisted(String),
    /// No digest at all.
    NoDigests(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::DigestMissing(k) => write!(f, "digest missing: {k}"),
            Problem::DigestAltered(k) => write!(f, "digest altered: {k}"),
            Problem::DigestBadlySigned(k) => write!(f, "digest badly signed: {k} (its .sig is missing or does not verify with the public key)"),
            Problem::DigestInvalid(k, why) => write!(f, "digest invalid: {k}: {why}"),
            Problem::ManifestMissing(k) => write!(f, "manifest missing: {k}"),
            Problem::ManifestAltered(k) => write!(f, "manifest altered: {k}"),
            Problem::ManifestUnlisted(k) => write!(f, "manifest in no digest: {k}"),
            Problem::ObjectMissing(k) => write!(f, "object deleted: {k}"),
            Problem::ObjectChanged(k) => write!(f, "object changed: {k}"),
            Problem::ObjectUnlisted(k) => write!(f, "object in no manifest: {k}"),
            Problem::NoDigests(k) => write!(f, "no digest under {k}: run auditstream digest first"),
        }
    }
}

impl Problem {
    /// The kinds in the order they sort in, as the first character of [`Problem::sortable`].
    const KINDS: &'static str = "abcdefghijk";

    /// The problem as text that sorts as the problems do, by kind then key, to be sorted within
    /// bounded memory ([`SortedKeys`]): its kind, its key, a NUL and what else it says. No key
    /// holds a NUL (S3 keys are XML text, which cannot; file names cannot either).
    fn sortable(&self) -> String {
        let (kind, key, why) = match self {
            Problem::DigestMissing(k) => (0, k, ""),
            Problem::DigestAltered(k) => (1, k, ""),
            Problem::DigestBadlySigned(k) => (2, k, ""),
            Problem::DigestInvalid(k, why) => (3, k, why.as_str()),
            Problem::ManifestMissing(k) => (4, k, ""),
            Problem::ManifestAltered(k) => (5, k, ""),
            Problem::ManifestUnlisted(k) => (6, k, ""),
            Problem::ObjectMissing(k) => (7, k, ""),
            Problem::ObjectChanged(k) => (8, k, ""),
            Problem::ObjectUnlisted(k) => (9, k, ""),
            Problem::NoDigests(k) => (10, k, ""),
        };
        format!("{}{key}\0{why}", &Problem::KINDS[kind..=kind])
    }

    /// The problem [`Problem::sortable`] wrote.
    fn from_sortable(text: &str) -> Problem {
        let kind = Problem::KINDS.find(&text[..1]).expect("a sortable problem starts with its kind");
        let (key, why) = text[1..].split_once('\0').expect("a sortable problem has a NUL after its key");
        let key = key.to_owned();
        match kind {
            0 => Problem::DigestMissing(key),
            1 => Problem::DigestAltered(key),
            2 => Problem::DigestBadlySigned(key),
            3 => Problem::DigestInvalid(key, why.to_owned()),
            4 => Problem::ManifestMissing(key),
            5 => Problem::ManifestAltered(key),
            6 => Problem::ManifestUnlisted(key),
            7 => Problem::ObjectMissing(key),
            8 => Problem::ObjectChanged(key),
            9 => Problem::ObjectUnlisted(key),
            _ => Problem::NoDigests(key),
        }
    }
}

/// Which part of the chain to check.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Digests ending after this (default: from the first).
    pub since: Option<UtcTime>,
    /// Digests starting before this, and the chain must reach it (default: up to the last).
    pub until: Option<UtcTime>,
}

/// What verification checked and found.
#[derive(Debug, Default)]
pub struct Report {
    pub digests: usize,
    pub manifests: usize,
    /// Objects listed in the manifests checked, each counted once.
    pub objects: usize,
    /// The interval the digests checked cover.
    pub covered: Option<(UtcTime, UtcTime)>,
    /// The problems found, each counted once (each was given to [`Found`]).
    pub problems: usize,
}

/// Progress of the walk along the chain: `(digests checked, digests to check)`.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// Where each problem goes, once, in order of kind and key, when the walk ends: verification
/// keeps none of them.
pub type Found<'a> = &'a mut (dyn FnMut(Problem) + Send);

/// Verification could not finish.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The keys the manifests list, and the problems found, are sorted on disk when there are many.
    #[error(transparent)]
    Spill(#[from] SpillError),
}

/// What verification sorts, as a [`SpillError`] names it: the keys the manifests list, and apart,
/// the problems found.
const SORTED: &str = "the keys the manifests list, or the problems found";

/// A digest as the walk read it: key, bytes, signature file, end.
struct Walked {
    key: String,
    bytes: Vec<u8>,
    signature: Option<Vec<u8>>,
    end: UtcTime,
}

/// How many objects are asked about at once.
const CONCURRENCY: usize = 16;

pub async fn verify(archive: &dyn Archive, public_key: &PublicKey, window: &Window, progress: Progress<'_>, found: Found<'_>) -> Result<Report, VerifyError> {
    verify_within(archive, public_key, window, progress, found, Limits::default()).await
}

/// [`verify`], holding no more than `limits` says.
pub async fn verify_within(
    archive: &dyn Archive,
    public_key: &PublicKey,
    window: &Window,
    progress: Progress<'_>,
    found: Found<'_>,
    limits: Limits,
) -> Result<Report, VerifyError> {
    let prefix = archive.key_prefix().clone();
    let mut walk = Walk {
        archive,
        prefix: prefix.clone(),
        report: Report::default(),
        problems: SortedKeys::new(SORTED, limits),
        any: false,
        listed: SortedKeys::new(SORTED, limits),
    };

    // 1. The chain, one digest at a time, in key order (which is the order of their ends), and with
    //    each digest the manifests of its interval: those it names and any other written in it.
    let total = count_digests(archive, &prefix, window).await?;
    let mut checked = 0;
    progress(0, total);
    let mut manifests = Listing::new(archive, &layout::manifests_prefix(&prefix));
    let mut chain = Listing::new(archive, &layout::digests_prefix(&prefix));
    let mut previous: Option<Walked> = None;
    let mut first_start = None;
    while let Some(listed) = chain.next().await? {
        let key = listed.key;
        let Some(end) = layout::digest_end(&key) else { continue };
        if window.since.is_some_and(|since| end <= since) {
            continue;
        }
        checked += 1;
        progress(checked.min(total), total);
        let Some(bytes) = archive.get(&key).await? else {
            walk.found(Problem::DigestMissing(key))?;
            continue;
        };
        let signature = archive.get(&layout::signature_key(&key)).await?;
        if !signature.as_ref().is_some_and(|sig| public_key.verifies(&statement(&bytes), sig)) {
            walk.found(Problem::DigestBadlySigned(key.clone()))?;
        }
        let digest = match Digest::parse(&key, &bytes) {
            Ok(d) => d,
            Err(e) => {
                walk.found(Problem::DigestInvalid(key.clone(), e.reason))?;
                previous = Some(Walked { key, bytes, signature, end });
                continue;
            }
        };
        let start = UtcTime::parse(&digest.start).ok();
        if window.until.is_some_and(|until| start.is_some_and(|s| s >= until)) {
            break;
        }
        if digest.end != layout::iso(end) || key != layout::digest_key(&prefix, end) {
            walk.found(Problem::DigestAltered(key.clone()))?;
        }
        walk.check_link(&key, &digest, start, previous.as_ref()).await?;
        let first_start = *first_start.get_or_insert(start.unwrap_or(end));
        walk.report.digests += 1;

        // Its interval's manifests: every one listed before its end (and after the window's
        // start) is one it names; each it names is there, unchanged, and so are its objects.
        let named: HashSet<&str> = digest.manifests.iter().map(|m| m.key.as_str()).collect();
        let bound = manifests_before(&prefix, end);
        while let Some(listed) = manifests.peek().await? {
            if listed.key >= bound {
                break;
            }
            let listed = manifests.next().await?.expect("peeked");
            match layout::manifest_time(&listed.key) {
                Some(at) if at < first_start => {}
                Some(_) if named.contains(listed.key.as_str()) => {}
                _ => {
                    walk.found(Problem::ManifestUnlisted(listed.key))?;
                }
            }
        }
        for named in &digest.manifests {
            let Some(bytes) = archive.get(&named.key).await? else {
                walk.found(Problem::ManifestMissing(named.key.clone()))?;
                continue;
            };
            if Sha256Sum::of(&bytes) != named.sha256 {
                walk.found(Problem::ManifestAltered(named.key.clone()))?;
            }
            match Manifest::parse(&named.key, &bytes) {
                Ok(m) => walk.check_objects(m.objects).await?,
                Err(_) => {
                    walk.found(Problem::ManifestAltered(named.key.clone()))?;
                }
            }
            walk.report.manifests += 1;
        }
        previous = Some(Walked { key, bytes, signature, end });
    }
    let last_end = previous.as_ref().map(|p| p.end);
    if let Some(until) = window.until {
        if last_end.is_none_or(|end| end < until) {
            walk.found(Problem::DigestMissing(layout::digest_key(&prefix, until)))?;
        }
    }
    let (Some(first_start), Some(last_end)) = (first_start, last_end) else {
        if walk.report.digests == 0 && !walk.any {
            walk.found(Problem::NoDigests(archive.name()))?;
        }
        return walk.finish(found);
    };
    walk.report.covered = Some((first_start, last_end));

    // 2. The manifests after the chain's end: not digested yet, they prove nothing, but list the
    //    objects of recent batches (and of a redelivery of older ones), which are checked too.
    while let Some(listed) = manifests.next().await? {
        match layout::manifest_time(&listed.key) {
            Some(at) if at >= last_end => {
                if let Some(Ok(m)) = archive.get(&listed.key).await?.map(|b| Manifest::parse(&listed.key, &b)) {
                    walk.check_objects(m.objects).await?;
                }
            }
            Some(at) if at < first_start => {}
            _ => {
                walk.found(Problem::ManifestUnlisted(listed.key))?;
            }
        }
    }

    // 3. No object that no manifest lists: the archive's listing and the manifests' keys, both
    //    in key order, side by side.
    let mut listed = std::mem::replace(&mut walk.listed, SortedKeys::new(SORTED, limits)).into_sorted()?;
    let mut next_listed = listed.next_key()?;
    let mut objects = Listing::new(archive, prefix.as_str());
    while let Some(object) = objects.next().await? {
        if layout::is_record(&prefix, &object.key) {
            continue;
        }
        while next_listed.as_ref().is_some_and(|k| *k < object.key) {
            next_listed = listed.next_key()?;
        }
        let recent = object.modified >= last_end || window.since.is_some_and(|since| object.modified < since);
        if !recent && next_listed.as_ref() != Some(&object.key) {
            walk.found(Problem::ObjectUnlisted(object.key))?;
        }
    }
    while next_listed.is_some() {
        next_listed = listed.next_key()?;
    }
    walk.report.objects = listed.distinct();
    walk.finish(found)
}

/// The digests `window` starts with, for the progress of the walk.
async fn count_digests(archive: &dyn Archive, prefix: &KeyPrefix, window: &Window) -> Result<u64, ArchiveError> {
    let mut count = 0;
    let mut listing = Listing::new(archive, &layout::digests_prefix(prefix));
    while let Some(listed) = listing.next().await? {
        let end = layout::digest_end(&listed.key);
        // (Up to `until`, the walk stops at the digest that starts there, an hour or less before its end.)
        let in_window =
            |end: UtcTime| window.since.is_none_or(|since| end > since) && window.until.is_none_or(|until| end.epoch_seconds - 3600 < until.epoch_seconds);
        if end.is_some_and(in_window) {
            count += 1;
        }
    }
    Ok(count)
}

/// The smallest manifest key of a moment: every manifest written before `end` sorts before it
/// (its hour folder, then its time, come first in the key), every one written from `end` on after.
fn manifests_before(prefix: &KeyPrefix, end: UtcTime) -> String {
    let key = layout::manifest_key(prefix, end, 0);
    key[..key.rfind('-').expect("a manifest key has its nonce after a '-'")].to_owned()
}

/// The state of one verification.
struct Walk<'a> {
    archive: &'a dyn Archive,
    prefix: KeyPrefix,
    report: Report,
    /// The problems found, [`Problem::sortable`].
    problems: SortedKeys,
    /// Whether any problem was found.
    any: bool,
    /// Every key a manifest checked lists.
    listed: SortedKeys,
}

impl Walk<'_> {
    /// The link from a digest to the one before it: named by key, SHA-256 and signature, and
    /// starting where it ended.
    async fn check_link(&mut self, key: &str, digest: &Digest, start: Option<UtcTime>, previous: Option<&Walked>) -> Result<(), VerifyError> {
        let problem = match (&digest.previous, previous) {
            (Some(named), Some(prev)) if named.key == prev.key => {
                if named.sha256 != Sha256Sum::of(&prev.bytes) {
                    self.found(Problem::DigestAltered(prev.key.clone()))?;
                }
                if prev.signature.as_ref().is_none_or(|sig| base64(sig) != named.signature) {
                    self.found(Problem::DigestBadlySigned(prev.key.clone()))?;
                }
                (start != Some(prev.end)).then(|| Problem::DigestInvalid(key.into(), format!("it starts at {}, not where {} ends", digest.start, prev.key)))
            }
            // Named, but not the one before it in the archive: gone, or another chain's.
            (Some(named), previous) => {
                if !named.key.starts_with(&layout::digests_prefix(&self.prefix)) || self.archive.recorded(&named.key).await?.is_none() {
                    Some(Problem::DigestMissing(named.key.clone()))
                } else {
                    previous.map(|prev| Problem::DigestInvalid(key.into(), format!("it names {} as the previous digest, not {}", named.key, prev.key)))
                }
            }
            (None, Some(prev)) => Some(Problem::DigestInvalid(key.into(), format!("it names no previous digest, but {} comes before it", prev.key))),
            (None, None) => None,
        };
        problem.map_or(Ok(()), |problem| self.found(problem))
    }

    /// Each object a manifest lists, as the store keeps it; its key is kept (sorted, bounded) for
    /// the search for objects that no manifest lists.
    async fn check_objects(&mut self, entries: Vec<ManifestEntry>) -> Result<(), VerifyError> {
        let archive = self.archive;
        let found: Vec<Result<Option<Problem>, ArchiveError>> = stream::iter(entries.iter())
            .map(|entry| async move {
                Ok(match archive.recorded(&entry.key).await? {
                    None => Some(Problem::ObjectMissing(entry.key.clone())),
                    Some(r) if (r.size, r.sha256) != (entry.size, entry.sha256) => Some(Problem::ObjectChanged(entry.key.clone())),
                    Some(_) => None,
                })
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for problem in found {
            if let Some(problem) = problem? {
                self.found(problem)?;
            }
        }
        for entry in entries {
            self.listed.add(entry.key)?;
        }
        Ok(())
    }

    fn found(&mut self, problem: Problem) -> Result<(), VerifyError> {
        self.any = true;
        Ok(self.problems.add(problem.sortable())?)
    }

    /// Each problem found, once and in order, to `found`.
    fn finish(mut self, found: Found<'_>) -> Result<Report, VerifyError> {
        let mut problems = self.problems.into_sorted()?;
        while let Some(problem) = problems.next_key()? {
            found(Problem::from_sortable(&problem));
        }
        self.report.problems = problems.distinct();
        Ok(self.report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::archive::Archive;
    use crate::integrity::digest::extend_chain;
    use crate::integrity::manifest::ManifestEntry;
    use crate::integrity::signature::Ed25519Key;
    use crate::test_support::{ArchiveCall, MemoryArchive};
    use async_trait::async_trait;
    use std::collections::BTreeMap;

    fn t(text: &str) -> UtcTime {
        UtcTime::parse(text).unwrap()
    }

    /// A batch at `at`: its objects, then its manifest.
    fn add_batch(archive: &MemoryArchive, at: &str, names: &[&str]) {
        let at = t(at);
        let mut objects = archive.objects.lock().unwrap();
        let mut entries = Vec::new();
        for name in names {
            let body = format!("{{\"event\":\"{name}\"}}").into_bytes();
            entries.push(ManifestEntry { key: name.to_string(), size: body.len() as u64, sha256: Sha256Sum::of(&body) });
            objects.insert(name.to_string(), (body, at));
        }
        let key = layout::manifest_key(&archive.prefix, at, rand::random());
        objects.insert(key, (Manifest::new(layout::iso(at), entries).to_json(), at));
    }

    fn key_like(archive: &MemoryArchive, part: &str) -> String {
        archive.objects.lock().unwrap().keys().find(|k| k.contains(part)).cloned().unwrap_or_else(|| panic!("no key with {part}"))
    }

    /// Three batches over three hours, then digests up to 13:00 (an empty hour included).
    async fn archive() -> (MemoryArchive, Ed25519Key) {
        let archive = MemoryArchive::default();
        add_batch(&archive, "2026-11-27T10:05:00Z", &["1/jobs/a.json", "1/jobs/b.json"]);
        add_batch(&archive, "2026-11-27T10:50:00Z", &["1/jobs/c.json"]);
        add_batch(&archive, "2026-11-27T12:10:00Z", &["1/jobs/d.json", "1/jobs/a.json"]);
        let key = Ed25519Key::generate();
        let run = extend_chain(&archive, &key, t("2026-11-27T13:00:00Z")).await.unwrap();
        assert_eq!(run.written.len(), 3, "10-11, 11-12 (no batch) and 12-13: {run:?}");
        assert_eq!(run.manifests, 3);
        (archive, key)
    }

    /// Holding almost nothing: pages of 3 keys, 4 keys in memory, files merged 2 at a time.
    const TINY: Limits = Limits { keys_in_memory: 4, files_merged: 2 };

    /// Verifies, and what it found, each as shown.
    async fn verified(archive: &MemoryArchive, key: &Ed25519Key, window: &Window, limits: Limits) -> (Report, Vec<String>) {
        let mut found = Vec::new();
        let report = verify_within(archive, &key.public_key(), window, &|_, _| {}, &mut |p| found.push(p.to_string()), limits).await.unwrap();
        assert_eq!(report.problems, found.len(), "each problem counted once: {found:?}");
        (report, found)
    }

    /// What verification finds, the same whether it holds much or almost nothing.
    async fn problems(archive: &MemoryArchive, key: &Ed25519Key, window: Window) -> Vec<String> {
        let roomy = verified(archive, key, &window, Limits::default()).await.1;
        archive.page.store(3, std::sync::atomic::Ordering::Relaxed);
        let tiny = verified(archive, key, &window, TINY).await.1;
        archive.page.store(0, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(tiny, roomy, "holding little finds what holding much does");
        roomy
    }

    #[tokio::test]
    async fn an_untouched_archive_verifies_and_a_second_run_extends_the_chain() {
        let (archive, key) = archive().await;
        let (report, found) = verified(&archive, &key, &Window::default(), Limits::default()).await;
        assert_eq!((report.digests, report.manifests, report.objects), (3, 3, 4));
        assert!(found.is_empty(), "{found:?}");
        // nothing new: the next run writes the next hour's (empty) digest, chained to the last
        add_batch(&archive, "2026-11-27T13:20:00Z", &["1/jobs/e.json"]);
        let run = extend_chain(&archive, &key, t("2026-11-27T14:00:00Z")).await.unwrap();
        assert_eq!(run.written, ["_auditstream/digests/2026/11/27/14/20261127T140000Z.json"]);
        assert!(problems(&archive, &key, Window::default()).await.is_empty());
        let chain_to = Window { until: Some(t("2026-11-27T15:00:00Z")), ..Window::default() };
        assert_eq!(problems(&archive, &key, chain_to).await, ["digest missing: _auditstream/digests/2026/11/27/15/20261127T150000Z.json"]);
    }

    #[tokio::test]
    async fn each_tampering_is_named() {
        let remove = |a: &MemoryArchive, k: &str| a.objects.lock().unwrap().remove(k).unwrap();
        let put = |a: &MemoryArchive, k: &str, b: &[u8], at: &str| a.objects.lock().unwrap().insert(k.into(), (b.to_vec(), t(at)));

        let (a, key) = archive().await;
        remove(&a, "1/jobs/b.json");
        assert_eq!(problems(&a, &key, Window::default()).await, ["object deleted: 1/jobs/b.json"]);

        let (a, key) = archive().await;
        put(&a, "1/jobs/c.json", b"{\"event\":\"forged\"}", "2026-11-27T10:50:00Z");
        assert_eq!(problems(&a, &key, Window::default()).await, ["object changed: 1/jobs/c.json"]);

        let (a, key) = archive().await;
        put(&a, "1/jobs/z.json", b"{}", "2026-11-27T11:30:00Z");
        assert_eq!(problems(&a, &key, Window::default()).await, ["object in no manifest: 1/jobs/z.json"]);

        // an object two manifests list is found deleted once; more findings than are held in memory
        // (TINY holds 4) all come, once each, in order of kind and key
        let (a, key) = archive().await;
        remove(&a, "1/jobs/a.json");
        for n in (0..9).rev() {
            put(&a, &format!("1/jobs/z{n}.json"), b"{}", "2026-11-27T11:30:00Z");
        }
        let slipped_in = (0..9).map(|n| format!("object in no manifest: 1/jobs/z{n}.json"));
        assert_eq!(
            problems(&a, &key, Window::default()).await,
            std::iter::once("object deleted: 1/jobs/a.json".to_owned()).chain(slipped_in).collect::<Vec<_>>()
        );

        let (a, key) = archive().await;
        let manifest = key_like(&a, "T105000000Z");
        remove(&a, &manifest);
        assert_eq!(problems(&a, &key, Window::default()).await, [format!("manifest missing: {manifest}"), "object in no manifest: 1/jobs/c.json".into()]);

        let (a, key) = archive().await;
        let digest = key_like(&a, "20261127T120000Z.json");
        let mut bytes = a.get(&digest).await.unwrap().unwrap();
        bytes.extend_from_slice(b" ");
        remove(&a, &digest);
        put(&a, &digest, &bytes, "2026-11-27T12:00:00Z");
        assert_eq!(
            problems(&a, &key, Window::default()).await,
            [format!("digest altered: {digest}"), format!("digest badly signed: {digest} (its .sig is missing or does not verify with the public key)")]
        );

        // a whole hour dropped: its digest, manifests and objects
        let (a, key) = archive().await;
        let digest = key_like(&a, "20261127T110000Z.json");
        for k in [
            digest.clone(),
            layout::signature_key(&digest),
            key_like(&a, "T100500000Z"),
            key_like(&a, "T105000000Z"),
            "1/jobs/b.json".into(),
            "1/jobs/c.json".into(),
        ] {
            remove(&a, &k);
        }
        assert_eq!(problems(&a, &key, Window::default()).await, [format!("digest missing: {digest}")]);

        // another key's signatures
        let (a, _) = archive().await;
        let found = problems(&a, &Ed25519Key::generate(), Window::default()).await;
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found.iter().all(|p| p.starts_with("digest badly signed: ")), "{found:?}");
    }

    #[tokio::test]
    async fn verification_holds_one_interval_one_manifest_and_one_page_at_a_time() {
        // six hours of three batches of four objects each, listed three keys a page, four keys held
        let archive = MemoryArchive::keeping_calls();
        for hour in 10..16 {
            for batch in 0..3 {
                let names: Vec<String> = (0..4).map(|n| format!("1/jobs/{hour}-{batch}-{n}.json")).collect();
                add_batch(&archive, &format!("2026-11-27T{hour}:{:02}:00Z", 10 + 20 * batch), &names.iter().map(String::as_str).collect::<Vec<_>>());
            }
        }
        let key = Ed25519Key::generate();
        extend_chain(&archive, &key, t("2026-11-27T16:00:00Z")).await.unwrap();
        archive.take_calls();
        archive.page.store(3, std::sync::atomic::Ordering::Relaxed);
        let (report, found) = verified(&archive, &key, &Window::default(), TINY).await;
        assert!(found.is_empty(), "{found:?}");
        assert_eq!((report.digests, report.manifests, report.objects), (6, 18, 72));

        let calls = archive.take_calls();
        let (digests, manifests) = (layout::digests_prefix(&archive.prefix), layout::manifests_prefix(&archive.prefix));
        // The hour and batch each read belongs to: a digest's (its end's hour, before any batch),
        // a manifest's (its time), an object's (from its name).
        let place = |key: &str| -> (u32, i32) {
            let hour = |t: UtcTime| t.compact_datetime()[8..10].parse::<u32>().unwrap();
            if key.starts_with(&digests) {
                (hour(layout::digest_end(key.trim_end_matches(".sig")).unwrap()) - 1, -1)
            } else if key.starts_with(&manifests) {
                let at = layout::manifest_time(key).unwrap();
                (hour(at), (at.compact_datetime()[10..12].parse::<i32>().unwrap() - 10) / 20)
            } else {
                let name = key.trim_start_matches("1/jobs/");
                (name[0..2].parse().unwrap(), name[3..4].parse().unwrap())
            }
        };
        let reads: Vec<(u32, i32)> = calls
            .iter()
            .filter_map(|c| match c {
                ArchiveCall::Get(k) | ArchiveCall::Recorded(k) => Some(place(k)),
                ArchiveCall::List { .. } => None,
            })
            .collect();
        assert_eq!(reads.len(), 6 * 2 + 18 + 72, "each digest, signature, manifest and object read once: {calls:#?}");
        // one interval at a time: nothing of an hour is read before the hour before it is done;
        // one manifest at a time: a manifest's objects are all checked before the next manifest is read
        assert!(reads.windows(2).all(|w| w[0] <= w[1]), "read out of order: {reads:?}");

        // every listing a page at a time, each page starting after the last key of the one before
        let mut last_answered: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut whole_archive = Vec::new();
        for call in &calls {
            if let ArchiveCall::List { prefix, after, answered } = call {
                assert!(answered.len() <= 3, "{call:?}");
                let before = last_answered.insert(prefix.clone(), answered.last().cloned()).flatten();
                assert!(after.is_none() || *after == before, "a page must start where the one before ended: {call:?}");
                if prefix.is_empty() {
                    whole_archive.extend(answered.iter().cloned());
                }
            }
        }
        let every_key: Vec<String> = archive.objects.lock().unwrap().keys().cloned().collect();
        assert_eq!(whole_archive, every_key, "the archive listed once, in order, a page at a time");
    }

    #[test]
    fn a_problem_sorted_on_disk_reads_back_the_same_and_sorts_as_problems_do() {
        let mut all = vec![
            Problem::NoDigests("memory".into()),
            Problem::ObjectUnlisted("1/jobs/z.json".into()),
            Problem::ObjectChanged("1/jobs/c.json".into()),
            Problem::ObjectMissing("1/jobs/b.json".into()),
            Problem::ObjectMissing("1/jobs/a.json".into()),
            Problem::ManifestUnlisted("m3".into()),
            Problem::ManifestAltered("m2".into()),
            Problem::ManifestMissing("m1".into()),
            Problem::DigestInvalid("d4".into(), "it names no previous digest, but d3 comes before it".into()),
            Problem::DigestInvalid("d4".into(), "it starts at 10:00, not where d3 ends".into()),
            Problem::DigestBadlySigned("d3".into()),
            Problem::DigestAltered("d2".into()),
            Problem::DigestMissing("d1".into()),
        ];
        let mut sortable: Vec<String> = all.iter().map(Problem::sortable).collect();
        for (text, problem) in sortable.iter().zip(&all) {
            assert_eq!(Problem::from_sortable(text), *problem);
        }
        all.sort();
        sortable.sort();
        assert_eq!(sortable.iter().map(|t| Problem::from_sortable(t)).collect::<Vec<_>>(), all);
    }

    #[test]
    fn a_full_temporary_folder_is_named_with_what_to_do() {
        let full = SpillError { what: SORTED, dir: "/tmp".into(), source: std::io::Error::from_raw_os_error(28) };
        let err = VerifyError::from(full);
        let message = err.to_string();
        assert!(
            message.starts_with(
                "cannot sort the keys the manifests list, or the problems found in a temporary file under /tmp (set TMPDIR to a folder with room): "
            ),
            "{message}"
        );
        let cause = std::error::Error::source(&err).expect("the I/O error is the cause");
        assert_eq!(cause.to_string(), std::io::Error::from_raw_os_error(28).to_string());
    }

    /// A signer whose every signature is refused, like a KMS key the role may not use.
    struct Refusing;

    #[async_trait]
    impl crate::integrity::signature::DigestSigner for Refusing {
        fn algorithm(&self) -> crate::integrity::signature::Algorithm {
            crate::integrity::signature::Algorithm::EcdsaP256Sha256
        }
        fn key_id(&self) -> String {
            "refusing".into()
        }
        async fn sign(&self, _: &[u8]) -> Result<Vec<u8>, ArchiveError> {
            Err(ArchiveError("KMS key refusing: Sign failed: AccessDeniedException".into()))
        }
    }

    #[tokio::test]
    async fn a_run_that_cannot_sign_writes_no_digest() {
        let archive = MemoryArchive::default();
        add_batch(&archive, "2026-11-27T10:05:00Z", &["1/jobs/a.json"]);
        let before: Vec<String> = archive.objects.lock().unwrap().keys().cloned().collect();
        let err = extend_chain(&archive, &Refusing, t("2026-11-27T12:00:00Z")).await.unwrap_err();
        assert_eq!(err.to_string(), "KMS key refusing: Sign failed: AccessDeniedException");
        let after: Vec<String> = archive.objects.lock().unwrap().keys().cloned().collect();
        assert_eq!(after, before, "no digest without its signature");
    }

    #[tokio::test]
    async fn a_window_checks_part_of_the_chain() {
        let (archive, key) = archive().await;
        archive.objects.lock().unwrap().remove("1/jobs/b.json");
        let later = Window { since: Some(t("2026-11-27T11:00:00Z")), until: Some(t("2026-11-27T13:00:00Z")) };
        let (report, found) = verified(&archive, &key, &later, Limits::default()).await;
        assert_eq!((report.digests, report.manifests), (2, 1));
        assert!(found.is_empty(), "{found:?}");
        assert!(!problems(&archive, &key, Window::default()).await.is_empty());
    }
}
