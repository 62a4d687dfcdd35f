//! The REST forwarder's benchmark: events per second and CPU time per event, through the whole
//! pipeline (scan, classify, mask, size) and `HttpLogSink` over loopback HTTP, per event (one POST
//! each, Workato's way) and batched, against a fast local receiver.
//!
//! Run on the benchmark workload the peers were measured on (Vector: ~500 µs of CPU per event over
//! HTTP), made by the repository's generator (byte for byte the peers' `gen_events.py`), so the figures
//! compare:
//!
//! ```text
//! cargo run --release -p auditstream-e2e --bin gen-events -- 20000 --seed 7 > /tmp/events.ndjson
//! cargo bench -p auditstream --bench rest -- /tmp/events.ndjson
//! ```
//!
//! (or `AUDITSTREAM_BENCH_EVENTS=/tmp/events.ndjson cargo bench -p auditstream --bench rest`).
//! Each figure is the median of three runs (`AUDITSTREAM_BENCH_REPEAT`).
//!
//! The receiver is this same binary started again as a child process (`--receiver`): a minimal
//! axum server on 127.0.0.1 that reads every body and counts requests and bytes. CPU time is the
//! forwarder's process only (`getrusage(RUSAGE_SELF)`, user + system, every thread), as in the
//! peers' table; the receiver's is reported beside it. Events are read into memory before the
//! clock starts. Messages go through `process_batch` in batches of 1,000 (a Lambda batch with a
//! batching window), requests 16 at a time (`AUDITSTREAM_CONCURRENCY`'s default), with mimalloc
//! as the functions use.

use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use auditstream::delivery::destination::{Delivered, Destination};
use auditstream::delivery::log_batching::LogSinkDestination;
use auditstream::delivery::process::{process_batch, InboundMessage};
use auditstream::delivery::retry::DeliveryError;
use auditstream::delivery::retry::{Deadline, RetryPolicy};
use auditstream::destinations::rest::http::HttpLogSink;
use auditstream::destinations::rest::RestSettings;
use auditstream::pipeline::{Document, Pipeline};

/// The allocator the functions and the command-line tool use.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH_MESSAGES: usize = 1000;
const CONCURRENCY: usize = 16;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.first().map(String::as_str) == Some("--receiver") {
        return receiver();
    }
    let path = args.first().cloned().or_else(|| std::env::var("AUDITSTREAM_BENCH_EVENTS").ok()).unwrap_or_else(|| {
        eprintln!("usage: cargo bench -p auditstream --bench rest -- EVENTS.ndjson\n  make one with: cargo run --release -p auditstream-e2e --bin gen-events -- 20000 --seed 7 > /tmp/events.ndjson");
        std::process::exit(2)
    });
    let file = std::fs::File::open(&path).unwrap_or_else(|e| fail(&format!("{path}: {e}")));
    let lines: Vec<String> =
        std::io::BufReader::new(file).lines().map(|l| l.unwrap_or_else(|e| fail(&format!("{path}: {e}")))).filter(|l| !l.trim().is_empty()).collect();
    let total_bytes: usize = lines.iter().map(String::len).sum();
    println!("workload: {path}: {} events, {:.1} MB", lines.len(), total_bytes as f64 / 1e6);

    let mut child = Command::new(std::env::current_exe().unwrap_or_else(|e| fail(&e.to_string())))
        .arg("--receiver")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("starting the receiver: {e}")));
    let port = read_port(&mut child);
    let base = format!("http://127.0.0.1:{port}");

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap_or_else(|e| fail(&e.to_string()));
    let runs: [(&str, Vec<(String, String)>); 6] = [
        ("pipeline only, no HTTP (floor)", vec![]),
        ("generic, 1 event per POST (Workato)", vec![("AUDITSTREAM_REST_URL".to_owned(), format!("{base}/ingest"))]),
        ("generic, 100 per POST, NDJSON", batched(&base, "generic", &[("AUDITSTREAM_REST_BATCH_FORMAT", "ndjson")])),
        ("generic, 100 per POST, NDJSON, gzip", batched(&base, "generic", &[("AUDITSTREAM_REST_BATCH_FORMAT", "ndjson"), ("AUDITSTREAM_REST_GZIP", "true")])),
        (
            "splunk_hec, 100 per POST",
            batched(
                &base,
                "splunk_hec",
                &[("AUDITSTREAM_REST_TOKEN", "00000000-1111-2222-3333-444444444444"), ("AUDITSTREAM_REST_BATCH_MAX_BYTES", "104857600")],
            ),
        ),
        ("datadog, 100 per POST", batched(&base, "datadog", &[("AUDITSTREAM_REST_TOKEN", "0123456789abcdef0123456789abcdef")])),
    ];
    let repeat: usize = std::env::var("AUDITSTREAM_BENCH_REPEAT").ok().and_then(|r| r.parse().ok()).unwrap_or(3).max(1);
    println!("median of {repeat} runs each (AUDITSTREAM_BENCH_REPEAT)");
    println!();
    println!("| run | requests | events/s | MB/s | CPU µs/event | receiver CPU µs/event |");
    println!("|---|---|---|---|---|---|");
    for (name, env) in runs {
        // Median of REPEAT runs, by CPU time (the machine may be busy with other work).
        let mut samples = Vec::new();
        for _ in 0..repeat {
            let before = stats(&runtime, &base);
            let (events, wall, cpu) = runtime.block_on(run(&lines, &env));
            let after = stats(&runtime, &base);
            samples.push((cpu, wall, events, after.0 - before.0, Duration::from_micros(after.2 - before.2)));
        }
        samples.sort_by_key(|s| s.0);
        let (cpu, wall, events, requests, receiver_cpu) = samples[samples.len() / 2];
        let n = events as f64;
        println!(
            "| {name} | {requests} | {:.0} | {:.0} | {:.1} | {} |",
            n / wall.as_secs_f64(),
            total_bytes as f64 / 1e6 / wall.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / n,
            if env.is_empty() { "-".to_owned() } else { format!("{:.1}", receiver_cpu.as_secs_f64() * 1e6 / n) },
        );
    }
    drop(child.stdin.take());
    let _ = child.wait();
}

/// The env of a batched run: 100 events per request, bytes not the limit.
fn batched(base: &str, preset: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let url = if preset == "generic" { format!("{base}/ingest") } else { base.to_owned() };
    let mut env = vec![
        ("AUDITSTREAM_REST_PRESET".to_owned(), preset.to_owned()),
        ("AUDITSTREAM_REST_URL".to_owned(), url),
        ("AUDITSTREAM_REST_BATCH_MAX_EVENTS".to_owned(), "100".to_owned()),
    ];
    if preset == "generic" {
        env.push(("AUDITSTREAM_REST_BATCH_MAX_BYTES".to_owned(), "104857600".to_owned()));
    }
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    env
}

/// One run over every event: (events delivered, wall time, CPU time of this process).
async fn run(lines: &[String], env: &[(String, String)]) -> (usize, Duration, Duration) {
    let pipeline = Pipeline::default();
    let destination: Box<dyn Destination> = if env.is_empty() {
        Box::new(Discard)
    } else {
        let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let settings = RestSettings::from_env(&vars[..], None).unwrap_or_else(|e| fail(&e.to_string()));
        let sink = HttpLogSink::from_settings(settings).await.unwrap_or_else(|e| fail(&e.to_string()));
        Box::new(LogSinkDestination::new(sink, CONCURRENCY, RetryPolicy::default()))
    };
    let messages: Vec<Vec<InboundMessage>> = lines
        .chunks(BATCH_MESSAGES)
        .enumerate()
        .map(|(b, chunk)| chunk.iter().enumerate().map(|(i, l)| InboundMessage::new(format!("events:{}", b * BATCH_MESSAGES + i + 1), l.clone())).collect())
        .collect();
    let cpu_start = cpu_time();
    let start = Instant::now();
    let mut written = 0;
    for batch in messages {
        let report = process_batch(&pipeline, destination.as_ref(), batch, Deadline::NONE).await;
        if let Some((id, failure)) = report.failures().next() {
            fail(&format!("{id} failed: {failure}"));
        }
        written += report.counts.written as usize;
    }
    let wall = start.elapsed();
    let cpu = cpu_time() - cpu_start;
    (written, wall, cpu)
}

/// A destination that takes every document and does nothing: the pipeline's own cost.
struct Discard;

#[async_trait]
impl Destination for Discard {
    fn describe(&self) -> String {
        "discard".into()
    }
    async fn deliver(&self, docs: Vec<Document>, _deadline: Deadline) -> Vec<Result<Delivered, DeliveryError>> {
        std::hint::black_box(&docs);
        vec![Ok(Delivered::Written); docs.len()]
    }
}

/// User + system CPU time of this process, every thread.
fn cpu_time() -> Duration {
    rusage(libc::RUSAGE_SELF)
}

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage writes into the struct we own; a zeroed rusage is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        fail("getrusage failed");
    }
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn fail(message: &str) -> ! {
    eprintln!("rest bench: {message}");
    std::process::exit(1)
}

// ---------------------------------------------------------------------------------------------------
// The receiver (child process)

fn read_port(child: &mut Child) -> u16 {
    let stdout = child.stdout.take().unwrap_or_else(|| fail("receiver has no stdout"));
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line).unwrap_or_else(|e| fail(&format!("reading the receiver's port: {e}")));
    line.trim().parse().unwrap_or_else(|_| fail(&format!("the receiver said {line:?}, not a port")))
}

/// (requests, body bytes, receiver CPU µs) so far.
fn stats(runtime: &tokio::runtime::Runtime, base: &str) -> (u64, u64, u64) {
    let text = runtime.block_on(async {
        let client = reqwest::Client::new();
        let response = client.get(format!("{base}/stats")).send().await.unwrap_or_else(|e| fail(&format!("receiver stats: {e}")));
        response.text().await.unwrap_or_default()
    });
    let n: Vec<u64> = text.split_whitespace().filter_map(|t| t.parse().ok()).collect();
    match n[..] {
        [a, b, c] => (a, b, c),
        _ => fail(&format!("receiver stats {text:?}")),
    }
}

fn receiver() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| fail(&e.to_string()));
    runtime.block_on(async {
        let requests = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let (r, b) = (requests.clone(), bytes.clone());
        let app = axum::Router::new()
            .route(
                "/stats",
                axum::routing::get(move || {
                    let (r, b) = (r.clone(), b.clone());
                    async move { format!("{} {} {}", r.load(Ordering::Relaxed), b.load(Ordering::Relaxed), rusage(libc::RUSAGE_SELF).as_micros()) }
                }),
            )
            .fallback(move |body: axum::body::Bytes| {
                let (r, b) = (requests.clone(), bytes.clone());
                async move {
                    r.fetch_add(1, Ordering::Relaxed);
                    b.fetch_add(body.len() as u64, Ordering::Relaxed);
                    "ok"
                }
            })
            .layer(axum::extract::DefaultBodyLimit::disable());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| fail(&e.to_string()));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| fail(&e.to_string()));
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{port}");
        let _ = out.flush();
        // Stop when the parent closes our stdin (or dies).
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {}
        });
        tokio::select! {
            _ = axum::serve(listener, app) => {}
            _ = stdin_closed => {}
        }
    });
}
