//! scripts/bench's Lambda row: a built function binary (`s3-writer`) run as Lambda runs it, under the
//! Runtime API emulator, fed the NDJSON workload as SQS event batches — the path the bill is paid on.
//!
//! ```text
//! lambda-bench FUNCTION-BINARY EVENTS.ndjson --batch N --usage-out USAGE.json
//! ```
//!
//! The events are cut into SQS events (`{"Records": [...]}`, as Lambda's SQS event source sends them:
//! one record per line, message ids `m-1`, `m-2`, …) of `--batch` records, a batch ending early where
//! the next record would take the invocation payload over Lambda's 6 MB. The function is started under
//! the emulator and invoked once per batch, one invocation at a time (as within one execution
//! environment); every answer must have no `batchItemFailures`. The workload is read line by line and
//! each SQS event is built just before it is handed to the emulator, so this process holds one event at
//! a time whatever the workload's size (building all of a 20,000-event workload first took over 500 MB).
//! When its last EMF line is written the process is killed and reaped, and its usage — user and system
//! CPU of every thread over its whole life, init included (`wait4(2)`), and the peak RSS of its own
//! address space (`VmHWM`, read before the kill: `wait4`'s `ru_maxrss` would include this process's, see
//! `RunningLambda::stop_measured`) — goes to `--usage-out` as JSON (`wall_s`, `user_s`, `sys_s`,
//! `max_rss_kb`) for `bench/measure.py run --usage-from`. `wall_s` runs from the start to the last answer
//! less the time spent building events: the function idles in its long poll meanwhile, using no CPU,
//! and without that time the figure is what it was when every event was built before the start. The
//! CPU and memory of this process (the emulator, the events) are not counted.
//!
//! The function gets the emulator's Lambda-shaped environment plus every `AUDITSTREAM_*` and `AWS_*`
//! variable of this process (the bucket, the endpoint, the keys). Prints `N read, N written, N
//! duplicates, N failed` summed from the function's EMF lines, as `auditstream run` prints its own.

use std::io::BufRead;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use auditstream_e2e::sqs_events::sqs_event;
use auditstream_e2e::LambdaFunction;
use serde_json::Value;

/// Lambda's limit on an invocation payload, which also bounds an SQS event source's batch
/// (<https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>).
const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;
/// What a record adds around its body in the event JSON (ids, attributes, the queue ARN), rounded up.
const RECORD_ENVELOPE_BYTES: usize = 512;
/// Lambda's longest timeout: no batch of the workload comes near it.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(900);

const USAGE: &str = "usage: lambda-bench FUNCTION-BINARY EVENTS.ndjson --batch N --usage-out USAGE.json";

struct Args {
    function: String,
    events: String,
    batch: usize,
    usage_out: String,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let (mut positional, mut batch, mut usage_out) = (Vec::new(), None, None);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--batch" => batch = Some(it.next().and_then(|v| v.parse::<usize>().ok()).filter(|n| *n > 0).ok_or("--batch needs a positive number")?),
            "--usage-out" => usage_out = Some(it.next().ok_or("--usage-out needs a path")?.clone()),
            _ => positional.push(arg.clone()),
        }
    }
    let [function, events] = <[String; 2]>::try_from(positional).map_err(|_| "FUNCTION-BINARY and EVENTS.ndjson are required")?;
    Ok(Args { function, events, batch: batch.ok_or("--batch is required")?, usage_out: usage_out.ok_or("--usage-out is required")? })
}

/// The workload's lines, read one at a time, cut into SQS event payloads of at most
/// `batch` records and 6 MB: each payload (with its record count) is built when asked for, so that only
/// one is held at a time, whatever the size of the workload.
struct Payloads<R> {
    lines: std::io::Lines<R>,
    batch: usize,
    /// Non-empty lines read so far: the number of a line's message id.
    read: usize,
    /// A record read but left for the next payload, which it would have taken over a limit.
    carried: Option<(String, String, usize)>,
}

impl<R: BufRead> Payloads<R> {
    fn new(reader: R, batch: usize) -> Self {
        Self { lines: reader.lines(), batch, read: 0, carried: None }
    }
}

impl<R: BufRead> Iterator for Payloads<R> {
    type Item = std::io::Result<(usize, Value)>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut records: Vec<(String, String)> = Vec::new();
        let mut bytes = 0;
        if let Some((id, line, size)) = self.carried.take() {
            records.push((id, line));
            bytes = size;
        }
        loop {
            let line = match self.lines.next() {
                None => break,
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(line)) if line.trim().is_empty() => continue,
                Some(Ok(line)) => line,
            };
            self.read += 1;
            let id = format!("m-{}", self.read);
            // A JSON string escapes each quote and backslash of the event: what it takes in the payload.
            let size = line.len() + line.bytes().filter(|b| matches!(b, b'"' | b'\\')).count() + RECORD_ENVELOPE_BYTES;
            if !records.is_empty() && (records.len() == self.batch || bytes + size > MAX_PAYLOAD_BYTES) {
                self.carried = Some((id, line, size));
                break;
            }
            records.push((id, line));
            bytes += size;
        }
        if records.is_empty() {
            return None;
        }
        let payload = serde_json::to_value(sqs_event(&records)).unwrap_or_else(|e| panic!("an SQS event is JSON: {e}"));
        Some(Ok((records.len(), payload)))
    }
}

/// The function's EMF metrics, summed over its EMF lines as it writes them: a long run's output
/// is not kept whole (`RunningLambda::stdout` keeps its last lines), so each line is added up as it
/// comes (`LambdaFunction::on_stdout_line`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Totals {
    received: u64,
    written: u64,
    duplicates: u64,
    failed: u64,
}

impl Totals {
    /// Adds one stdout line, if it is an EMF line.
    fn add_line(&mut self, line: &str) {
        if !line.contains("\"_aws\"") {
            return;
        }
        let Ok(emf) = serde_json::from_str::<Value>(line) else { return };
        let metric = |name: &str| emf[name].as_u64().unwrap_or(0);
        self.received += metric("Received");
        self.written += metric("Written");
        self.duplicates += metric("Duplicates");
        self.failed += metric("Failed");
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&args) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("lambda-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let file = match std::fs::File::open(&args.events) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("lambda-bench: cannot read {}: {e}", args.events);
            return ExitCode::FAILURE;
        }
    };
    let mut payloads = Payloads::new(std::io::BufReader::new(file), args.batch);
    // The first event is built before the function starts, so that none of the building overlaps its
    // init; each next one after the answer to the one before (see `building`).
    let mut next = payloads.next();

    let passed = std::env::vars().filter(|(k, _)| k.starts_with("AUDITSTREAM_") || k.starts_with("AWS_"));
    let started = Instant::now();
    let totals = std::sync::Arc::new(std::sync::Mutex::new(Totals::default()));
    let add_line = {
        let totals = totals.clone();
        move |line: &str| totals.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).add_line(line)
    };
    let totals = move || *totals.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let lambda = match LambdaFunction::new(&args.function).envs(passed).on_stdout_line(add_line).spawn() {
        Ok(lambda) => lambda,
        Err(e) => {
            eprintln!("lambda-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (mut events, mut invocations) = (0, 0);
    // Time spent building events after the function's answer to the one before: it waits for the next
    // meanwhile, in its long poll on `/runtime/invocation/next`, using no CPU (what is measured), so its
    // CPU is what it was when every event was built before the start; this time is taken out of
    // `wall_s`, which is the function's time, not this process's.
    let mut building = Duration::ZERO;
    loop {
        let (records, payload) = match next {
            None => break,
            Some(Ok(payload)) => payload,
            Some(Err(e)) => {
                eprintln!("lambda-bench: cannot read {} after {} events: {e}", args.events, payloads.read);
                return ExitCode::FAILURE;
            }
        };
        events += records;
        invocations += 1;
        match lambda.invoke(payload, INVOKE_TIMEOUT).await {
            Ok(response) if response["batchItemFailures"].as_array().is_some_and(Vec::is_empty) => {}
            Ok(response) => {
                eprintln!("lambda-bench: invocation {invocations} reported failures: {response}\nthe function's log:\n{}", lambda.stderr());
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("lambda-bench: invocation {invocations}: {e}");
                return ExitCode::FAILURE;
            }
        }
        let started_building = Instant::now();
        next = payloads.next();
        building += started_building.elapsed();
    }
    let wall = started.elapsed().saturating_sub(building);
    eprintln!("lambda-bench: {events} events in {invocations} SQS events of at most {} records", args.batch);
    // The EMF line of a batch is written as its answer goes out: wait for the last one.
    let deadline = Instant::now() + Duration::from_secs(10);
    while (totals().received as usize) < events && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let usage = match lambda.stop_measured() {
        Ok(usage) => usage,
        Err(e) => {
            eprintln!("lambda-bench: cannot reap the function's process: {e}");
            return ExitCode::FAILURE;
        }
    };
    let record = serde_json::json!({
        "wall_s": wall.as_secs_f64(),
        "user_s": usage.user.as_secs_f64(),
        "sys_s": usage.system.as_secs_f64(),
        "max_rss_kb": usage.max_rss_kb,
    });
    if let Err(e) = std::fs::write(&args.usage_out, record.to_string()) {
        eprintln!("lambda-bench: cannot write {}: {e}", args.usage_out);
        return ExitCode::FAILURE;
    }
    let Totals { received, written, duplicates, failed } = totals();
    println!("{received} read, {written} written, {duplicates} duplicates, {failed} failed -> {}", args.function);
    if received as usize != events {
        eprintln!("lambda-bench: the function's EMF lines count {received} events received, {events} were sent");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::io::{BufReader, Read};
    use std::rc::Rc;

    fn payloads(text: &str, batch: usize) -> Vec<(usize, Value)> {
        Payloads::new(text.as_bytes(), batch).collect::<std::io::Result<_>>().unwrap()
    }

    fn ids(payload: &Value) -> Vec<&str> {
        payload["Records"].as_array().unwrap().iter().map(|r| r["messageId"].as_str().unwrap()).collect()
    }

    #[test]
    fn the_totals_add_up_the_metrics_of_emf_lines_only() {
        let mut totals = Totals::default();
        let emf = |received: u64, failed: u64| {
            serde_json::json!({"_aws": {"Timestamp": 1}, "FunctionName": "s3-writer", "Received": received, "Written": received - failed, "Duplicates": 0, "Failed": failed})
                .to_string()
        };
        for line in [emf(10, 0), "{\"level\":\"INFO\",\"Received\":99}".to_owned(), "not json \"_aws\"".to_owned(), emf(7, 2)] {
            totals.add_line(&line);
        }
        assert_eq!(totals, Totals { received: 17, written: 15, duplicates: 0, failed: 2 });
    }

    #[test]
    fn batches_hold_at_most_n_records_and_6_mb() {
        let small = "{\"a\":1}\n".repeat(25);
        let sizes: Vec<usize> = payloads(&small, 10).iter().map(|(n, _)| *n).collect();
        assert_eq!(sizes, [10, 10, 5]);
        // Three events of 3.5 MB: two would pass 6 MB, so one per invocation.
        let big = format!("{{\"a\":\"{}\"}}\n", "x".repeat(3_500_000)).repeat(3);
        let batches = payloads(&big, 100);
        assert_eq!(batches.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 1, 1]);
        assert!(batches.iter().all(|(_, v)| v.to_string().len() <= MAX_PAYLOAD_BYTES));
    }

    #[test]
    fn records_are_numbered_by_line_across_payloads_skipping_blank_lines() {
        let batches = payloads("{\"a\":1}\n\n{\"a\":2}\n  \n{\"a\":3}\r\n", 2);
        assert_eq!(batches.iter().map(|(_, p)| ids(p)).collect::<Vec<_>>(), [vec!["m-1", "m-2"], vec!["m-3"]]);
        assert_eq!(batches[1].1["Records"][0]["body"], "{\"a\":3}");
    }

    /// An endless workload of one small event a line, counting the bytes taken from it.
    struct Endless {
        at: usize,
        taken: Rc<Cell<usize>>,
    }

    const LINE: &[u8] = b"{\"event\":\"login\"}\n";

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            for byte in buf.iter_mut() {
                *byte = LINE[self.at % LINE.len()];
                self.at += 1;
            }
            self.taken.set(self.taken.get() + buf.len());
            Ok(buf.len())
        }
    }

    /// What the harness holds does not grow with the workload: a payload is built from the lines it
    /// holds (and one more, carried to the next), read when it is asked for, so even an endless
    /// workload gives its payloads one at a time.
    #[test]
    fn payloads_are_built_one_at_a_time_reading_only_their_own_lines() {
        let taken = Rc::new(Cell::new(0));
        let mut payloads = Payloads::new(BufReader::new(Endless { at: 0, taken: taken.clone() }), 10);
        for first in [1, 11, 21] {
            let (records, payload) = payloads.next().unwrap().unwrap();
            assert_eq!(records, 10);
            assert_eq!(ids(&payload)[0], format!("m-{first}"));
        }
        // 31 lines, and what the reader buffers ahead (8 KiB by default).
        let bound = 31 * LINE.len() + 8 * 1024;
        assert!(taken.get() <= bound, "3 payloads of 10 lines took {} bytes of the workload, more than {bound}", taken.get());
    }
}
