//! The spine's benchmarks: pipeline throughput beside a bare serde_json validation pass, peak
//! memory for one 40 MB event, and a batch of 100 events against a store that takes 20 ms per PUT.
//!
//! Run on the benchmark workload the peers were measured on, made by the repository's generator (byte
//! for byte the peers' `gen_events.py`), so the figures compare:
//!
//! ```text
//! cargo run --release -p auditstream-e2e --bin gen-events -- 20000 --seed 7 > /tmp/events.ndjson
//! cargo bench -p auditstream --bench pipeline -- /tmp/events.ndjson
//! ```
//!
//! Without a file argument, a smaller workload is generated in-process (deterministic, same
//! shape: ~20% masked lines, long-tailed sizes) so the bench always runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use auditstream::delivery::destination::{ObjectStore, ObjectStoreDestination, PutOutcome};
use auditstream::delivery::process::{process_batch, InboundMessage};
use auditstream::delivery::retry::DeliveryError;
use auditstream::delivery::retry::{Deadline, RetryPolicy};
use auditstream::pipeline::key::ObjectKey;
use auditstream::pipeline::timestamp::Now;
use auditstream::pipeline::{Pipeline, Prepared};

/// Counts live and peak heap bytes, to measure the memory an event costs exactly.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size > layout.size() {
                let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    let path = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let events = match &path {
        Some(p) => std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {p}: {e}")).lines().map(str::to_owned).collect(),
        None => generated_workload(2000),
    };
    let bytes: usize = events.iter().map(String::len).sum();
    println!("workload: {} events, {:.1} MB ({})", events.len(), bytes as f64 / 1e6, path.as_deref().unwrap_or("generated in-process"));

    throughput(&events, bytes);
    peak_memory();
    slow_store_batch();
}

/// Pipeline MB/s per core beside serde_json validating the same bytes, best of five rounds each.
fn throughput(events: &[String], bytes: usize) {
    let pipeline = Pipeline::default();
    let now = Now::capture();
    let rounds = 5;
    let best = |f: &dyn Fn() -> usize| -> (Duration, usize) {
        (0..rounds)
            .map(|_| {
                let start = Instant::now();
                let n = f();
                (start.elapsed(), n)
            })
            .min_by_key(|(d, _)| *d)
            .unwrap_or_default()
    };
    let (validate_str, _) = best(&|| events.iter().filter(|e| serde_json::from_str::<serde::de::IgnoredAny>(e).is_ok()).count());
    let (validate_slice, _) = best(&|| events.iter().filter(|e| serde_json::from_slice::<serde::de::IgnoredAny>(e.as_bytes()).is_ok()).count());
    let (prepare, ready) = best(&|| events.iter().filter(|e| matches!(pipeline.prepare(e, now), Ok(Prepared::Ready(_)))).count());
    assert_eq!(ready, events.len(), "every generated event should prepare");
    let (nesting, _) = best(&|| events.iter().filter(|e| !auditstream::pipeline::scan::nesting::exceeds(e.as_bytes(), 128)).count());
    let (scan, _) = best(&|| events.iter().filter(|e| auditstream::pipeline::scan::ScannedObject::scan(e).is_ok()).count());
    let mbps = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    println!("\n== throughput per core (best of {rounds}) ==");
    println!("serde_json validation (from_str):   {:8.1} MB/s", mbps(validate_str));
    println!("serde_json validation (from_slice): {:8.1} MB/s", mbps(validate_slice));
    println!(
        "pipeline prepare (scan, classify, mask, size, key, write): {:8.1} MB/s, {:.1} µs/event",
        mbps(prepare),
        prepare.as_secs_f64() * 1e6 / events.len() as f64
    );
    println!("  of which: scan {:.1} MB/s (its nesting check alone {:.1} MB/s)", mbps(scan), mbps(nesting));
    println!(
        "  the serde_json-based reference scan, nesting check included: {:.1} MB/s",
        mbps(best(&|| events.iter().filter(|e| auditstream::pipeline::scan::ScannedObject::scan_reference(e).is_ok()).count()).0)
    );
    // The S3 writer's integrity checksum (docs/integrity.md): one SHA-256 of each prepared body.
    let bodies: Vec<Vec<u8>> = events
        .iter()
        .filter_map(|e| match pipeline.prepare(e, now) {
            Ok(Prepared::Ready(doc)) => Some(doc.body),
            _ => None,
        })
        .collect();
    let (sha256, _) = best(&|| bodies.iter().map(|b| auditstream::integrity::checksum::Sha256Sum::of(b).0[0] as usize).sum());
    println!(
        "SHA-256 of the prepared bodies (the S3 checksum): {:.1} µs/event, {:.1} % of prepare",
        sha256.as_secs_f64() * 1e6 / events.len() as f64,
        100.0 * sha256.as_secs_f64() / prepare.as_secs_f64()
    );
    println!(
        "ratio vs from_str: {:.2}x   vs from_slice: {:.2}x   (target >= 0.70x)",
        validate_str.as_secs_f64() / prepare.as_secs_f64(),
        validate_slice.as_secs_f64() / prepare.as_secs_f64()
    );
}

/// Peak heap while preparing one 40 MB event, input included, as a multiple of its size.
fn peak_memory() {
    println!("\n== peak memory for one large event ==");
    for (label, size, limit) in [
        ("40 MB event, under the 40 MiB limit", 40_000_000, None),
        ("60 MB event, lines replaced", 60_000_000, None),
        ("40 MB event, 1 MB destination limit", 40_000_000, Some(1_000_000)),
    ] {
        let body = big_event(size);
        let pipeline = Pipeline::default();
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let out = match limit {
            None => pipeline.prepare(&body, Now::capture()),
            Some(l) => pipeline.prepare_within(&body, Now::capture(), l),
        };
        let peak = PEAK.load(Ordering::Relaxed);
        let (written, truncated) = match out {
            Ok(Prepared::Ready(doc)) => (doc.body.len(), doc.truncated),
            other => panic!("{label}: {other:?}"),
        };
        // `before` already holds the input; count it, as the Lambda holds the SQS body too.
        let used = peak - before + body.len();
        println!(
            "{label}: input {:.1} MB, written {:.1} MB (truncated: {truncated}), peak {:.1} MB = {:.2}x input (target <= 3x)",
            body.len() as f64 / 1e6,
            written as f64 / 1e6,
            used as f64 / 1e6,
            used as f64 / body.len() as f64
        );
    }
}

/// A store that takes 20 ms per PUT, like a distant S3.
struct SlowStore;

#[async_trait]
impl ObjectStore for SlowStore {
    fn describe(&self) -> String {
        "slow".into()
    }
    async fn put_new(&self, _key: &ObjectKey, _body: bytes::Bytes) -> Result<PutOutcome, DeliveryError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(PutOutcome::Created)
    }
}

fn slow_store_batch() {
    println!("\n== a batch of 100 events, 20 ms per PUT ==");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let events = generated_workload(100);
    for concurrency in [16, 32] {
        let destination = ObjectStoreDestination::new(SlowStore, concurrency, RetryPolicy::default());
        let messages: Vec<InboundMessage> = events.iter().enumerate().map(|(i, e)| InboundMessage::new(format!("m{i}"), e.clone())).collect();
        let start = Instant::now();
        let report = runtime.block_on(process_batch(&Pipeline::default(), &destination, messages, Deadline::NONE));
        let elapsed = start.elapsed();
        assert_eq!(report.counts.written, 100);
        println!("AUDITSTREAM_CONCURRENCY={concurrency}: {:.3} s (target <= 0.2 s)", elapsed.as_secs_f64());
    }
}

/// A job event of about `size` bytes: many lines, a fifth of them masked.
fn big_event(size: usize) -> String {
    let line_payload = 100_000;
    let n = size / (2 * line_payload + 200);
    let mut lines = Vec::with_capacity(n);
    for i in 0..n {
        let data = "x".repeat(line_payload);
        lines.push(format!(r#"{{"recipe_line_number":{i},"adapter_name":"http","adapter_operation":"get","input":{{"q":"{data}"}},"output":{{"r":"{data}"}},"error":null,"mask_data":{},"line_stat":{{"total":0.1}}}}"#, i % 5 == 0));
    }
    format!(
        r#"{{"id":"j-big","recipe_id":1,"status":"succeeded","completed_at":"2026-11-24T22:30:46-07:00","context":{{"user_id":7}},"lines":[{}]}}"#,
        lines.join(",")
    )
}

/// A deterministic workload shaped like the `gen-events` workload: 70% job details, 10% failed, 20% activity.
fn generated_workload(n: usize) -> Vec<String> {
    let mut state: u64 = 7;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n).map(|i| {
        let pick = rand() % 10;
        if pick >= 8 {
            return format!(r#"{{"id":{i},"event_type":"user_login","timestamp":"2026-11-20T10:15:30.000Z","workspace":{{"id":{},"name":"Acme"}},"user":{{"id":5,"name":"Jane","email":"jane@acme.example"}},"details":{{"activity":"password_login","request":{{"ip_address":"203.0.113.10","user_agent":"Mozilla/5.0"}}}},"resource":{{"id":5,"name":"Jane","type":"User"}}}}"#, 1000 + rand() % 9000);
        }
        let size = [1_000, 3_000, 6_000, 10_000, 20_000, 50_000, 200_000][(rand() % 7) as usize];
        let nlines = 2 + (rand() % 10) as usize;
        let lines: Vec<String> = (0..nlines).map(|n| {
            let masked = rand() % 5 == 0;
            let payload = format!(r#"{{"records":[{}]}}"#, (0..size / nlines / 120).map(|k| format!(r#"{{"id":{k},"name":"row{k}","email":"u{k}@example.com","amount":{}.5,"active":true}}"#, rand() % 1000)).collect::<Vec<_>>().join(","));
            let data = if masked { r#"{"data":"masked"}"#.to_string() } else { payload };
            format!(r#"{{"recipe_line_number":{n},"adapter_name":"salesforce","adapter_operation":"search_records","input":{data},"output":{data},"error":null,"mask_data":{masked},"line_stat":{{"total":0.5,"details":[{{"name":"execute","count":1,"average":0.01,"total":0.01,"min":0.01,"max":0.01}}]}}}}"#)
        }).collect();
        let status = if pick == 7 { "failed" } else { "succeeded" };
        format!(r#"{{"id":"j-{i}","master_job_id":"j-{i}","recipe_id":{},"status":"{status}","started_at":"2026-11-05T10:11:12-07:00","completed_at":"2026-11-05T10:11:13-07:00","account_id":42,"error":null,"context":{{"user_id":42,"recipe_id":1,"job_id":"j-{i}"}},"lines":[{}]}}"#, 1_000_000 + rand() % 9_000_000, lines.join(","))
    }).collect()
}
