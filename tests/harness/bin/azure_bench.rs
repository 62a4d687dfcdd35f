//! Benchmark of the Azure destinations: events per second and CPU per event (getrusage, user + sys,
//! of this process only) for the Blob writer against Azurite and the Monitor forwarder against the
//! local fake (run in a child process, so its CPU is not counted), beside the pipeline alone.
//!
//! ```text
//! cargo run --release -p auditstream-e2e --bin gen-events -- 2000 --seed 7 > /tmp/events-2000.ndjson
//! eval "$(scripts/services start)"        # Azurite (and moto)
//! cargo run --release -p auditstream-e2e --bin azure-bench -- /tmp/events-2000.ndjson
//! ```
//!
//! Options: `--batch N` messages per Lambda batch (default 100), `--concurrency N` deliveries in
//! flight (default 16, as `AUDITSTREAM_CONCURRENCY`), `--only blob|monitor`.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use auditstream::delivery::destination::{Destination, ObjectStoreDestination};
use auditstream::delivery::log_batching::LogSinkDestination;
use auditstream::delivery::process::{process_batch, InboundMessage};
use auditstream::delivery::retry::{Deadline, RetryPolicy};
use auditstream::destinations::azure::blob_store::AzureBlobStore;
use auditstream::destinations::azure::connection::BlobAuth;
use auditstream::destinations::azure::entra_token::EntraSettings;
use auditstream::destinations::azure::monitor_sink::{AzureMonitorSink, MonitorSettings};
use auditstream::pipeline::timestamp::Now;
use auditstream::pipeline::Pipeline;
use auditstream_e2e::azure_monitor_fake::{FakeConfig, MonitorFake};
use auditstream_e2e::azurite::{dev_credential, Azurite};

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct we pass it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0;
    if !ok {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

struct Measured {
    name: String,
    events: usize,
    ok: u64,
    failed: u64,
    bytes: u64,
    wall: Duration,
    cpu: Duration,
    note: String,
}

impl Measured {
    fn print(&self) {
        let per_s = self.events as f64 / self.wall.as_secs_f64();
        let cpu_us = self.cpu.as_secs_f64() * 1e6 / self.events as f64;
        println!(
            "| {} | {} | {} | {} | {:.1} | {:.2} | {:.0} | {:.0} | {:.1} | {} |",
            self.name,
            self.events,
            self.ok,
            self.failed,
            self.bytes as f64 / 1e6,
            self.wall.as_secs_f64(),
            per_s,
            cpu_us,
            self.bytes as f64 / 1e6 / self.cpu.as_secs_f64(),
            self.note
        );
    }
}

async fn run(name: &str, destination: &dyn Destination, bodies: &[String], batch: usize, note: String) -> Measured {
    let pipeline = Pipeline::default();
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let (mut ok, mut failed, mut bytes) = (0, 0, 0);
    for (b, chunk) in bodies.chunks(batch).enumerate() {
        let messages = chunk.iter().enumerate().map(|(i, body)| InboundMessage::new(format!("m-{b}-{i}"), body.clone())).collect();
        let report = process_batch(&pipeline, destination, messages, Deadline::after(Duration::from_secs(600))).await;
        ok += report.counts.written + report.counts.duplicates;
        failed += report.counts.failed();
        bytes += report.counts.bytes;
        let first_failure = report.failures().next().map(|(id, f)| format!("{id}: {f}"));
        if let Some(failure) = first_failure {
            eprintln!("{name}: {failure}");
        }
    }
    Measured { name: name.into(), events: bodies.len(), ok, failed, bytes, wall: t0.elapsed(), cpu: cpu_time() - cpu0, note }
}

/// The pipeline alone (prepare every event for the given per-event limit), for comparison.
fn pipeline_only(bodies: &[String], limit: usize, name: &str) -> Measured {
    let pipeline = Pipeline::default();
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let mut bytes = 0u64;
    let mut ok = 0;
    for body in bodies {
        if let Ok(auditstream::pipeline::Prepared::Ready(doc)) = pipeline.prepare_within(body, Now::capture(), limit) {
            bytes += doc.body.len() as u64;
            ok += 1;
        }
    }
    Measured {
        name: name.into(),
        events: bodies.len(),
        ok,
        failed: bodies.len() as u64 - ok,
        bytes,
        wall: t0.elapsed(),
        cpu: cpu_time() - cpu0,
        note: String::new(),
    }
}

/// Child mode: serve the fake until stdin closes; print its URL first.
fn serve_fake() {
    let fake = MonitorFake::start(FakeConfig { keep_rows: false, ..FakeConfig::default() });
    println!("{}", fake.url());
    let _ = std::io::stdout().flush();
    let mut sink = String::new();
    while std::io::stdin().lock().read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {}
    eprintln!("fake: {} rows accepted in {} requests", fake.accepted_rows(), fake.requests().len());
    let statuses: std::collections::BTreeMap<u16, usize> = fake.requests().iter().fold(Default::default(), |mut m, r| {
        *m.entry(r.status).or_default() += 1;
        m
    });
    eprintln!("fake: answers {statuses:?}; violations {:?}", fake.violations());
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve-monitor-fake") {
        return serve_fake();
    }
    let mut file = None;
    let (mut batch, mut concurrency, mut only) = (100usize, 16usize, None::<String>);
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--batch" => batch = it.next().and_then(|v| v.parse().ok()).expect("--batch N"),
            "--concurrency" => concurrency = it.next().and_then(|v| v.parse().ok()).expect("--concurrency N"),
            "--only" => only = it.next(),
            _ => file = Some(a),
        }
    }
    let file = file.expect("usage: azure-bench EVENTS.ndjson [--batch N] [--concurrency N] [--only blob|monitor]");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let bodies: Vec<String> = text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect();
    let total_mb = bodies.iter().map(String::len).sum::<usize>() as f64 / 1e6;
    println!("{} events, {total_mb:.1} MB, from {file}; batches of {batch}, concurrency {concurrency}\n", bodies.len());
    println!("| run | events | delivered | failed | MB delivered | wall s | events/s | CPU µs/event | MB/CPU-s | notes |");
    println!("|---|---|---|---|---|---|---|---|---|---|");

    pipeline_only(&bodies, auditstream::pipeline::DEFAULT_MAX_EVENT_BYTES, "pipeline only (40 MiB limit)").print();

    if only.as_deref() != Some("monitor") {
        let az = Azurite::from_env();
        let container = az.create_container("bench").await;
        let store = AzureBlobStore::new(
            auditstream::destinations::azure::http_client().unwrap(),
            az.endpoint.clone(),
            None,
            BlobAuth::SharedKey(dev_credential()),
            container.clone(),
        );
        let dest = ObjectStoreDestination::new(store, concurrency, RetryPolicy::default());
        run("Azure Blob → Azurite, one Put Blob per event", &dest, &bodies, batch, String::new()).await.print();
        run("Azure Blob, same batches again (all 409 duplicates)", &dest, &bodies, batch, String::new()).await.print();
    }

    if only.as_deref() != Some("blob") {
        pipeline_only(&bodies, auditstream::destinations::azure::monitor_sink::MAX_EVENT_BYTES, "pipeline only (64,000-byte limit)").print();
        let exe = std::env::current_exe().unwrap();
        let mut child =
            std::process::Command::new(exe).arg("serve-monitor-fake").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
        let mut url = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut url).unwrap();
        let url = url.trim().to_owned();
        let env = FakeConfig::default().env_for(&url);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let sink = AzureMonitorSink::connect(&MonitorSettings::from_env(&env[..]).unwrap(), &EntraSettings::from_env(&env[..]).unwrap(), None).await.unwrap();
        let dest = LogSinkDestination::new(sink, concurrency, RetryPolicy::default());
        run("Azure Monitor → fake, gzip'd JSON arrays ≤ 1 MB", &dest, &bodies, batch, "fake in a child process".into()).await.print();
        drop(child.stdin.take());
        let _ = child.wait();
    }
}
