//! Verification of an archive: walks the digest chain and checks every manifest it names and
//! every object those list, and that nothing in the archive is listed nowhere
//! (`docs/integrity.md`, "What verify checks"). Each finding names its key.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use futures::stream::{self, StreamExt};

use crate::integrity::archive::{Archive, ArchiveError};
use crate::integrity::checksum::Sha256Sum;
use crate::integrity::digest::statement;
use crate::integrity::digest::{base64, Digest};
use crate::integrity::layout;
use crate::integrity::manifest::Manifest;
use crate::integrity::signature::PublicKey;
use crate::pipeline::timestamp::UtcTime;

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
    pub objects: usize,
    /// The interval the digests checked cover.
    pub covered: Option<(UtcTime, UtcTime)>,
    pub problems: Vec<Problem>,
}

/// Progress of the longest part, the objects: `(checked, total)`.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// A digest as the walk read it: key, bytes, signature file, end.
type Walked = (String, Vec<u8>, Option<Vec<u8>>, UtcTime);

/// How many objects are asked about at once.
const CONCURRENCY: usize = 16;

pub async fn verify(archive: &dyn Archive, public_key: &PublicKey, window: &Window, progress: Progress<'_>) -> Result<Report, ArchiveError> {
    let prefix = archive.key_prefix().clone();
    let mut report = Report::default();
    let mut problems = BTreeSet::new();

    // 1. The chain.
    let listed_digests: Vec<String> = archive.list(&layout::digests_prefix(&prefix)).await?.into_iter().map(|l| l.key).collect();
    let present: HashSet<&str> = listed_digests.iter().map(String::as_str).collect();
    let mut chain: Vec<(String, UtcTime)> = listed_digests.iter().filter_map(|k| layout::digest_end(k).map(|end| (k.clone(), end))).collect();
    chain.sort_by_key(|(_, end)| *end);
    let mut named_manifests: Vec<(String, Sha256Sum)> = Vec::new();
    // The digest before: key, bytes, signature file, end.
    let mut previous: Option<Walked> = None;
    let mut first_start = None;
    for (key, end) in chain {
        if window.since.is_some_and(|since| end <= since) {
            continue;
        }
        let Some(bytes) = archive.get(&key).await? else {
            problems.insert(Problem::DigestMissing(key));
            continue;
        };
        let signature = archive.get(&layout::signature_key(&key)).await?;
        if !signature.as_ref().is_some_and(|sig| public_key.verifies(&statement(&bytes), sig)) {
            problems.insert(Problem::DigestBadlySigned(key.clone()));
        }
        let digest = match Digest::parse(&key, &bytes) {
            Ok(d) => d,
            Err(e) => {
                problems.insert(Problem::DigestInvalid(key.clone(), e.reason));
                previous = Some((key, bytes, signature, end));
                continue;
            }
        };
        let start = UtcTime::parse(&digest.start).ok();
        if window.until.is_some_and(|until| start.is_some_and(|s| s >= until)) {
            break;
        }
        if digest.end != layout::iso(end) {
            problems.insert(Problem::DigestAltered(key.clone()));
        }
        match (&digest.previous, &previous) {
            (Some(named), _) if !present.contains(named.key.as_str()) => {
                problems.insert(Problem::DigestMissing(named.key.clone()));
            }
            (Some(named), Some((prev_key, prev_bytes, prev_sig, prev_end))) => {
                if &named.key != prev_key {
                    problems.insert(Problem::DigestInvalid(key.clone(), format!("it names {} as the previous digest, not {prev_key}", named.key)));
                } else {
                    if named.sha256 != Sha256Sum::of(prev_bytes) {
                        problems.insert(Problem::DigestAltered(prev_key.clone()));
                    }
                    if prev_sig.as_ref().is_none_or(|sig| base64(sig) != named.signature) {
                        problems.insert(Problem::DigestBadlySigned(prev_key.clone()));
                    }
                    if start != Some(*prev_end) {
                        problems.insert(Problem::DigestInvalid(key.clone(), format!("it starts at {}, not where {prev_key} ends", digest.start)));
                    }
                }
            }
            (None, Some((prev_key, ..))) => {
                problems.insert(Problem::DigestInvalid(key.clone(), format!("it names no previous digest, but {prev_key} comes before it")));
            }
            (_, None) => {}
        }
        first_start = first_start.or(start);
        report.digests += 1;
        named_manifests.extend(digest.manifests.iter().map(|m| (m.key.clone(), m.sha256)));
        previous = Some((key, bytes, signature, end));
    }
    let last_end = previous.as_ref().map(|(.., end)| *end);
    if let Some(until) = window.until {
        if last_end.is_none_or(|end| end < until) {
            problems.insert(Problem::DigestMissing(layout::digest_key(&prefix, until)));
        }
    }
    let (Some(first_start), Some(last_end)) = (first_start, last_end) else {
        if report.digests == 0 && problems.is_empty() {
            problems.insert(Problem::NoDigests(archive.name()));
        }
        report.problems = problems.into_iter().collect();
        return Ok(report);
    };
    report.covered = Some((first_start, last_end));

    // 2. The manifests: those named, and any other in the digested interval.
    let mut listed_objects: BTreeMap<String, BTreeSet<(u64, Sha256Sum)>> = BTreeMap::new();
    let named: HashSet<&str> = named_manifests.iter().map(|(k, _)| k.as_str()).collect();
    for (key, sha256) in &named_manifests {
        let Some(bytes) = archive.get(key).await? else {
            problems.insert(Problem::ManifestMissing(key.clone()));
            continue;
        };
        if Sha256Sum::of(&bytes) != *sha256 {
            problems.insert(Problem::ManifestAltered(key.clone()));
        }
        match Manifest::parse(key, &bytes) {
            Ok(m) => m.objects.into_iter().for_each(|o| {
                listed_objects.entry(o.key).or_default().insert((o.size, o.sha256));
            }),
            Err(_) => {
                problems.insert(Problem::ManifestAltered(key.clone()));
            }
        }
        report.manifests += 1;
    }
    for listed in archive.list(&layout::manifests_prefix(&prefix)).await? {
        let Some(at) = layout::manifest_time(&listed.key) else {
            problems.insert(Problem::ManifestUnlisted(listed.key));
            continue;
        };
        if at >= first_start && at < last_end && !named.contains(listed.key.as_str()) {
            problems.insert(Problem::ManifestUnlisted(listed.key));
        } else if at >= last_end {
            // Not digested yet: it proves nothing, but lists the objects of recent batches.
            if let Some(Ok(m)) = archive.get(&listed.key).await?.map(|b| Manifest::parse(&listed.key, &b)) {
                m.objects.into_iter().for_each(|o| {
                    listed_objects.entry(o.key).or_default().insert((o.size, o.sha256));
                });
            }
        }
    }

    // 3. The objects: each listed one as the store keeps it, and none unlisted.
    let total = listed_objects.len() as u64;
    progress(0, total);
    let checked = std::sync::atomic::AtomicU64::new(0);
    let results: Vec<Result<Option<Problem>, ArchiveError>> = stream::iter(listed_objects.iter())
        .map(|(key, entries)| {
            let checked = &checked;
            async move {
                let found = archive.recorded(key).await?;
                progress(checked.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1, total);
                Ok(match found {
                    None => Some(Problem::ObjectMissing(key.clone())),
                    Some(r) if entries.iter().any(|(size, sha)| (*size, *sha) != (r.size, r.sha256)) => Some(Problem::ObjectChanged(key.clone())),
                    Some(_) => None,
                })
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for result in results {
        problems.extend(result?);
    }
    report.objects = listed_objects.len();
    for object in archive.list(prefix.as_str()).await? {
        let recent = object.modified >= last_end || window.since.is_some_and(|since| object.modified < since);
        if !layout::is_record(&prefix, &object.key) && !recent && !listed_objects.contains_key(&object.key) {
            problems.insert(Problem::ObjectUnlisted(object.key));
        }
    }
    report.problems = problems.into_iter().collect();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::archive::{Archive, Listed};
    use crate::integrity::checksum::Recorded;
    use crate::integrity::digest::extend_chain;
    use crate::integrity::manifest::ManifestEntry;
    use crate::integrity::signature::Ed25519Key;
    use crate::pipeline::key::KeyPrefix;
    use async_trait::async_trait;
    use std::sync::Mutex;

    /// An archive in memory: key → (bytes, written at).
    #[derive(Default)]
    struct Memory {
        prefix: KeyPrefix,
        objects: Mutex<BTreeMap<String, (Vec<u8>, UtcTime)>>,
    }

    #[async_trait]
    impl Archive for Memory {
        fn name(&self) -> String {
            "memory".into()
        }
        fn key_prefix(&self) -> &KeyPrefix {
            &self.prefix
        }
        async fn list(&self, prefix: &str) -> Result<Vec<Listed>, ArchiveError> {
            let objects = self.objects.lock().unwrap();
            Ok(objects.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(k, (_, at))| Listed { key: k.clone(), modified: *at }).collect())
        }
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
            Ok(self.objects.lock().unwrap().get(key).map(|(b, _)| b.clone()))
        }
        async fn recorded(&self, key: &str) -> Result<Option<Recorded>, ArchiveError> {
            Ok(self.objects.lock().unwrap().get(key).map(|(b, _)| Recorded { size: b.len() as u64, sha256: Sha256Sum::of(b) }))
        }
        async fn put_record(&self, key: &str, body: Vec<u8>) -> Result<bool, ArchiveError> {
            let mut objects = self.objects.lock().unwrap();
            if objects.contains_key(key) {
                return Ok(false);
            }
            objects.insert(key.into(), (body, t("2026-11-27T23:59:00Z")));
            Ok(true)
        }
    }

    fn t(text: &str) -> UtcTime {
        UtcTime::parse(text).unwrap()
    }

    impl Memory {
        /// A batch at `at`: its objects, then its manifest.
        fn batch(&self, at: &str, names: &[&str]) {
            let at = t(at);
            let mut objects = self.objects.lock().unwrap();
            let mut entries = Vec::new();
            for name in names {
                let body = format!("{{\"event\":\"{name}\"}}").into_bytes();
                entries.push(ManifestEntry { key: name.to_string(), size: body.len() as u64, sha256: Sha256Sum::of(&body) });
                objects.insert(name.to_string(), (body, at));
            }
            let key = layout::manifest_key(&self.prefix, at, rand::random());
            objects.insert(key, (Manifest::new(layout::iso(at), entries).to_json(), at));
        }
        fn key_like(&self, part: &str) -> String {
            self.objects.lock().unwrap().keys().find(|k| k.contains(part)).cloned().unwrap_or_else(|| panic!("no key with {part}"))
        }
    }

    /// Three batches over three hours, then digests up to 13:00 (an empty hour included).
    async fn archive() -> (Memory, Ed25519Key) {
        let archive = Memory::default();
        archive.batch("2026-11-27T10:05:00Z", &["1/jobs/a.json", "1/jobs/b.json"]);
        archive.batch("2026-11-27T10:50:00Z", &["1/jobs/c.json"]);
        archive.batch("2026-11-27T12:10:00Z", &["1/jobs/d.json", "1/jobs/a.json"]);
        let key = Ed25519Key::generate();
        let run = extend_chain(&archive, &key, t("2026-11-27T13:00:00Z")).await.unwrap();
        assert_eq!(run.written.len(), 3, "10-11, 11-12 (no batch) and 12-13: {run:?}");
        assert_eq!(run.manifests, 3);
        (archive, key)
    }

    async fn problems(archive: &Memory, key: &Ed25519Key, window: Window) -> Vec<String> {
        verify(archive, &key.public_key(), &window, &|_, _| {}).await.unwrap().problems.iter().map(|p| p.to_string()).collect()
    }

    #[tokio::test]
    async fn an_untouched_archive_verifies_and_a_second_run_extends_the_chain() {
        let (archive, key) = archive().await;
        let report = verify(&archive, &key.public_key(), &Window::default(), &|_, _| {}).await.unwrap();
        assert_eq!((report.digests, report.manifests, report.objects), (3, 3, 4));
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        // nothing new: the next run writes the next hour's (empty) digest, chained to the last
        archive.batch("2026-11-27T13:20:00Z", &["1/jobs/e.json"]);
        let run = extend_chain(&archive, &key, t("2026-11-27T14:00:00Z")).await.unwrap();
        assert_eq!(run.written, ["_auditstream/digests/2026/11/27/14/20261127T140000Z.json"]);
        assert!(problems(&archive, &key, Window::default()).await.is_empty());
        let chain_to = Window { until: Some(t("2026-11-27T15:00:00Z")), ..Window::default() };
        assert_eq!(problems(&archive, &key, chain_to).await, ["digest missing: _auditstream/digests/2026/11/27/15/20261127T150000Z.json"]);
    }

    #[tokio::test]
    async fn each_tampering_is_named() {
        let remove = |a: &Memory, k: &str| a.objects.lock().unwrap().remove(k).unwrap();
        let put = |a: &Memory, k: &str, b: &[u8], at: &str| a.objects.lock().unwrap().insert(k.into(), (b.to_vec(), t(at)));

        let (a, key) = archive().await;
        remove(&a, "1/jobs/b.json");
        assert_eq!(problems(&a, &key, Window::default()).await, ["object deleted: 1/jobs/b.json"]);

        let (a, key) = archive().await;
        put(&a, "1/jobs/c.json", b"{\"event\":\"forged\"}", "2026-11-27T10:50:00Z");
        assert_eq!(problems(&a, &key, Window::default()).await, ["object changed: 1/jobs/c.json"]);

        let (a, key) = archive().await;
        put(&a, "1/jobs/z.json", b"{}", "2026-11-27T11:30:00Z");
        assert_eq!(problems(&a, &key, Window::default()).await, ["object in no manifest: 1/jobs/z.json"]);

        let (a, key) = archive().await;
        let manifest = a.key_like("T105000000Z");
        remove(&a, &manifest);
        assert_eq!(problems(&a, &key, Window::default()).await, [format!("manifest missing: {manifest}"), "object in no manifest: 1/jobs/c.json".into()]);

        let (a, key) = archive().await;
        let digest = a.key_like("20261127T120000Z.json");
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
        let digest = a.key_like("20261127T110000Z.json");
        for k in [
            digest.clone(),
            layout::signature_key(&digest),
            a.key_like("T100500000Z"),
            a.key_like("T105000000Z"),
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
        let archive = Memory::default();
        archive.batch("2026-11-27T10:05:00Z", &["1/jobs/a.json"]);
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
        let report = verify(&archive, &key.public_key(), &later, &|_, _| {}).await.unwrap();
        assert_eq!((report.digests, report.manifests), (2, 1));
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert!(!problems(&archive, &key, Window::default()).await.is_empty());
    }
}
