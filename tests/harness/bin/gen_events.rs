//! Writes the benchmark workload to stdout: N realistic Workato-style audit events as NDJSON, byte for
//! byte what the peers' published generator (`gen_events.py`) prints for the same arguments. See
//! `auditstream_e2e::gen_events` for what the events look like and how the bytes are matched.
//!
//! ```text
//! cargo run --release -p auditstream-e2e --bin gen-events -- 20000 --seed 7 > /tmp/events.ndjson
//! ```

use std::io::Write;
use std::process::ExitCode;

use auditstream_e2e::gen_events::{Seed, Workload};

const USAGE: &str = "usage: gen-events N [--seed S] [--max-kb K] > events.ndjson

Writes N Workato-style audit events as NDJSON (one per line), byte for byte what the peers'
gen_events.py writes for the same arguments: 70% job details (step lines, ~20% of them masked),
10% failed jobs, 20% activity events; sizes long-tailed (median ~6 KB, up to K KB).

  N            number of events
  --seed S     integer seed (default 1); the same seed gives the same bytes
  --max-kb K   cap on a job's size in KB (default 1000)

The README's benchmark workload is `gen-events 20000 --seed 7` (254.8 MB).";

fn parse(args: &[String]) -> Result<Workload, String> {
    let mut events = None;
    let mut workload = Workload::new(0);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        // Both `--seed 7` and `--seed=7`, as Python's argparse takes them.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| inline.clone().or_else(|| it.next().cloned()).ok_or(format!("{name} needs a value"));
        match flag {
            "--seed" => {
                let text = value("--seed")?;
                workload.seed = Seed::parse(&text).ok_or(format!("--seed: not an integer: {text:?}"))?;
            }
            "--max-kb" => {
                let text = value("--max-kb")?;
                workload.max_kb = text.trim().parse().map_err(|_| format!("--max-kb: not a number: {text:?}"))?;
            }
            _ if events.is_none() => {
                events = Some(arg.trim().parse::<i64>().map_err(|_| format!("N: not an integer: {arg:?}"))?);
            }
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    workload.events = events.ok_or("N (the number of events) is required")?;
    Ok(workload)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let workload = match parse(&args) {
        Ok(workload) => workload,
        Err(message) => {
            eprintln!("gen-events: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    match workload.write_to(&mut out).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is the reader's choice, not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-events: writing stdout: {e}");
            ExitCode::FAILURE
        }
    }
}
