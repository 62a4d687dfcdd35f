//! scripts/bench's Lambda row: a built function binary (`s3-writer`) run as Lambda runs it, under the
//! Runtime API emulator, fed the NDJSON workload as SQS event batches — the path the bill is paid on.
//!
//! ```text
//! lambda-bench FUNCTION-BINARY EVENTS.ndjson --batch N --usage-out USAGE.json
//! ```
//!
//! The events are cut into SQS events (`{"Records": [...]}`, as Lambda's SQS event source sends them:
//! one record per line, message ids `m-1`, `m-2`, …) of `--batch` records, a batch ending early where
//! the next record would take the invocation payload over Lambda's 6 MB. The payloads are built
//! before the function starts; then the function is started under the emulator, invoked once per
//! batch, one invocation at a time (as within one execution environment), and every answer must have
//! no `batchItemFailures`. When its last EMF line is written the process is killed and reaped, and its
//! usage — user and system CPU of every thread over its whole life, init included (`wait4(2)`), and the
//! peak RSS of its own address space (`VmHWM`, read before the kill: `wait4`'s `ru_maxrss` would
//! include this process's, which holds every payload, see `RunningLambda::stop_measured`) — goes to
//! `--usage-out` as JSON (`wall_s`, from start to the last answer, `user_s`, `sys_s`, `max_rss_kb`)
//! for `bench/measure.py run --usage-from`. The CPU and memory of this process (the emulator, the
//! payloads) are not counted.
//!
//! The function gets the emulator's Lambda-shaped environment plus every `AUDITSTREAM_*` and `AWS_*`
//! variable of this process (the bucket, the endpoint, the keys). Prints `N read, N written, N
//! duplicates, N failed` summed from the function's EMF lines, as `auditstream run` prints its own.

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

/// The workload's lines as SQS event payloads of at most `batch` records and 6 MB.
fn payloads(text: &str, batch: usize) -> Vec<(usize, Value)> {
    let mut out = Vec::new();
    let mut records: Vec<(String, &str)> = Vec::new();
    let mut bytes = 0;
    let lines = text.lines().filter(|l| !l.trim().is_empty());
    for (number, line) in lines.enumerate() {
        // A JSON string escapes each quote and backslash of the event: what it takes in the payload.
        let size = line.len() + line.bytes().filter(|b| matches!(b, b'"' | b'\\')).count() + RECORD_ENVELOPE_BYTES;
        if !records.is_empty() && (records.len() == batch || bytes + size > MAX_PAYLOAD_BYTES) {
            out.push((records.len(), to_value(&records)));
            records.clear();
            bytes = 0;
        }
        records.push((format!("m-{}", number + 1), line));
        bytes += size;
    }
    if !records.is_empty() {
        out.push((records.len(), to_value(&records)));
    }
    out
}

fn to_value(records: &[(String, &str)]) -> Value {
    serde_json::to_value(sqs_event(records)).unwrap_or_else(|e| panic!("an SQS event is JSON: {e}"))
}

/// The sum of one EMF metric over the function's EMF lines.
fn metric(emf: &[Value], name: &str) -> u64 {
    emf.iter().filter_map(|m| m[name].as_u64()).sum()
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
    let text = match std::fs::read_to_string(&args.events) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("lambda-bench: cannot read {}: {e}", args.events);
            return ExitCode::FAILURE;
        }
    };
    let batches = payloads(&text, args.batch);
    drop(text);
    let events: usize = batches.iter().map(|(n, _)| n).sum();
    eprintln!("lambda-bench: {events} events in {} SQS events of at most {} records", batches.len(), args.batch);

    let passed = std::env::vars().filter(|(k, _)| k.starts_with("AUDITSTREAM_") || k.starts_with("AWS_"));
    let started = Instant::now();
    let lambda = match LambdaFunction::new(&args.function).envs(passed).spawn() {
        Ok(lambda) => lambda,
        Err(e) => {
            eprintln!("lambda-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (i, (_, payload)) in batches.into_iter().enumerate() {
        match lambda.invoke(payload, INVOKE_TIMEOUT).await {
            Ok(response) if response["batchItemFailures"].as_array().is_some_and(Vec::is_empty) => {}
            Ok(response) => {
                eprintln!("lambda-bench: invocation {} reported failures: {response}\nthe function's log:\n{}", i + 1, lambda.stderr());
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("lambda-bench: invocation {}: {e}", i + 1);
                return ExitCode::FAILURE;
            }
        }
    }
    let wall = started.elapsed();
    // The EMF line of a batch is written as its answer goes out: wait for the last one.
    let emf = |out: &str| out.lines().filter(|l| l.contains("\"_aws\"")).filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect::<Vec<_>>();
    let deadline = Instant::now() + Duration::from_secs(10);
    while (metric(&emf(&lambda.stdout()), "Received") as usize) < events && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let usage = match lambda.stop_measured() {
        Ok(usage) => usage,
        Err(e) => {
            eprintln!("lambda-bench: cannot reap the function's process: {e}");
            return ExitCode::FAILURE;
        }
    };
    let emf = emf(&lambda.stdout());
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
    let (received, written, duplicates) = (metric(&emf, "Received"), metric(&emf, "Written"), metric(&emf, "Duplicates"));
    let failed = metric(&emf, "Failed");
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
}
