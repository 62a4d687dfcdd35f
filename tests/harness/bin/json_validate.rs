//! The reference pass of `scripts/bench`: reads NDJSON and checks that every line is JSON with
//! `serde_json::from_slice::<serde::de::IgnoredAny>` — the whole document parsed and validated (strings'
//! escapes and UTF-8 included), nothing built. It is the least any JSON pipeline must do with its input,
//! so a pipeline's CPU is compared with this pass's, measured in the same run.
//!
//! ```text
//! json-validate EVENTS.ndjson     # prints "N lines, M bytes, all JSON"; exit 1 naming the first bad line
//! ```

use std::io::BufRead;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: json-validate EVENTS.ndjson");
        return ExitCode::from(2);
    };
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("json-validate: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let (mut lines, mut bytes) = (0u64, 0u64);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(n) => bytes += n as u64,
            Err(e) => {
                eprintln!("json-validate: {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
        lines += 1;
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(text) {
            eprintln!("json-validate: {path} line {lines}: not JSON: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!("{lines} lines, {bytes} bytes, all JSON");
    ExitCode::SUCCESS
}
