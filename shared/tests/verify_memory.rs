//! `verify` holds bounded memory whatever the archive's size (`docs/integrity.md`, "What verify
//! checks"): the heap it uses at its peak, counted by this test binary's allocator, does not grow
//! with the number of objects, nor with the number of problems found. An archive ten times larger,
//! or with ten times the findings, needs no more than a little more.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use auditstream::integrity::checksum::Sha256Sum;
use auditstream::integrity::digest::extend_chain;
use auditstream::integrity::layout;
use auditstream::integrity::manifest::{Manifest, ManifestEntry};
use auditstream::integrity::signature::Ed25519Key;
use auditstream::integrity::verify::{verify_within, Limits, Problem, Window};
use auditstream::pipeline::timestamp::UtcTime;
use auditstream::test_support::MemoryArchive;

/// Counts the bytes this thread holds on the heap, and the most it held since [`reset_peak`].
struct Counting;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: the thread's counters may be gone while it exits.
    let _ = HELD.try_with(|held| {
        held.set(held.get() + delta);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(held.get())));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The heap held now, and the most held since then is forgotten.
fn reset_peak() -> isize {
    let held = HELD.with(Cell::get);
    PEAK.with(|peak| peak.set(held));
    held
}

/// `batches` batches of 100 objects, ten an hour from 2026-11-27T00:00Z, digested; then, when
/// `deleted`, every object removed again; then the heap verification held at its peak, above what
/// it started with.
async fn peak_of_verifying(batches: usize, deleted: bool) -> isize {
    let archive = MemoryArchive::default();
    {
        let mut objects = archive.objects.lock().unwrap();
        for batch in 0..batches {
            let at = UtcTime::from_epoch_seconds(UtcTime::parse("2026-11-27T00:00:00Z").unwrap().epoch_seconds + 360 * batch as i64);
            let mut entries = Vec::new();
            for n in 0..100 {
                let key = format!("workspace-{}/jobs/recipe-{}/20261127/job-{batch:06}-{n:03}/event.json", batch % 7, n % 13);
                let body = format!("{{\"job\":\"{batch}-{n}\"}}").into_bytes();
                entries.push(ManifestEntry { key: key.clone(), size: body.len() as u64, sha256: Sha256Sum::of(&body) });
                objects.insert(key, (body, at));
            }
            let key = layout::manifest_key(&archive.prefix, at, batch as u64);
            objects.insert(key, (Manifest::new(layout::iso(at), entries).to_json(), at));
        }
    }
    let key = Ed25519Key::generate();
    let hours = batches.div_ceil(10) as i64;
    let until = UtcTime::from_epoch_seconds(UtcTime::parse("2026-11-27T00:00:00Z").unwrap().epoch_seconds + 3600 * hours);
    extend_chain(&archive, &key, until).await.unwrap();
    if deleted {
        archive.objects.lock().unwrap().retain(|key, _| key.starts_with("_auditstream/"));
    }
    let public_key = key.public_key();
    let limits = Limits { keys_in_memory: 2_000, files_merged: 8 };

    let before = reset_peak();
    // the findings are counted, and the first few kept, as they come
    let (mut count, mut first) = (0, Vec::new());
    let mut found = |problem: Problem| {
        count += 1;
        if first.len() < 3 {
            first.push(problem);
        }
    };
    let report = verify_within(&archive, &public_key, &Window::default(), &|_, _| {}, &mut found, limits).await.unwrap();
    let peak = PEAK.with(Cell::get) - before;
    let expected = if deleted { batches * 100 } else { 0 };
    assert_eq!((report.problems, count), (expected, expected), "{first:?}");
    if deleted {
        let key = "workspace-0/jobs/recipe-0/20261127/job-000000-000/event.json";
        assert_eq!(first[0], Problem::ObjectMissing(key.into()), "in order of kind and key: {first:?}");
    }
    assert_eq!((report.manifests, report.objects), (batches, batches * 100));
    peak
}

#[tokio::test(flavor = "current_thread")]
async fn verifying_an_archive_ten_times_larger_takes_no_more_memory() {
    let small = peak_of_verifying(40, false).await; // 4,000 objects, 4 hours
    let large = peak_of_verifying(400, false).await; // 40,000 objects, 40 hours
    eprintln!("verify held at most {small} bytes for 4,000 objects, {large} for 40,000");
    // The keys of 40,000 objects alone are over 2.5 MB: holding them all would show.
    assert!(large < small + 512 * 1024, "verifying 4,000 objects held {small} bytes at most, 40,000 held {large}");
    assert!(large < 2 * 1024 * 1024, "verifying 40,000 objects held {large} bytes at most");
}

#[tokio::test(flavor = "current_thread")]
async fn verifying_an_archive_with_ten_times_more_findings_takes_no_more_memory() {
    // every object deleted: one finding per object, 4,000 and then 40,000 of them
    let small = peak_of_verifying(40, true).await;
    let large = peak_of_verifying(400, true).await;
    eprintln!("verify held at most {small} bytes for 4,000 findings, {large} for 40,000");
    // 40,000 findings, each naming a key of about 70 bytes, would hold over 2.5 MB at once.
    assert!(large < small + 512 * 1024, "verifying with 4,000 findings held {small} bytes at most, with 40,000 held {large}");
    assert!(large < 2 * 1024 * 1024, "verifying with 40,000 findings held {large} bytes at most");
}
