//! The helpers `scripts/bench` measures with: the serde_json reference pass refuses what is not JSON
//! (so it cannot pass by reading nothing), and the receiver counts every request and byte it answers
//! (the benchmark checks those counts against what the command says it delivered); and the patch with
//! which `scripts/bench --integrity-cost` builds the command without integrity still applies to the tree.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn json_validate_counts_lines_and_names_the_first_that_is_not_json() {
    let dir = std::env::temp_dir().join(format!("json-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.ndjson");
    std::fs::write(&good, "{\"a\":[1,2.5,\"x\\u00e9\"]}\n\n{\"b\":null}\n").unwrap();
    let bad = dir.join("bad.ndjson");
    std::fs::write(&bad, "{\"a\":1}\n{\"b\":}\n{\"c\":\n").unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_json-validate")).arg(&good).output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "3 lines, 36 bytes, all JSON\n");

    let output = Command::new(env!("CARGO_BIN_EXE_json-validate")).arg(&bad).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.ndjson line 2: not JSON"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn bench_receiver_answers_and_counts_every_request_and_byte() {
    let mut receiver = Receiver(Command::new(env!("CARGO_BIN_EXE_bench-receiver")).stdout(Stdio::piped()).spawn().unwrap());
    let mut port = String::new();
    BufReader::new(receiver.0.stdout.take().unwrap()).read_line(&mut port).unwrap();
    let base = format!("http://127.0.0.1:{}", port.trim());
    let client = reqwest::Client::new();
    for body in ["{\"a\":1}", "{\"b\":22}\n{\"c\":333}\n"] {
        let response = client.post(format!("{base}/ingest")).body(body).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let stats = client.get(format!("{base}/stats")).send().await.unwrap().text().await.unwrap();
    assert_eq!(stats, format!("2 {}", 7 + 19));
}

/// `scripts/bench --integrity-cost` measures integrity's cost against the tree with
/// bench/without-integrity.patch applied: a patch that no longer applies would stop that measurement,
/// so a change to the code it patches must update it (docs/integrity.md, "Cost").
#[test]
fn the_patch_that_removes_integrity_for_the_cost_benchmark_applies_to_the_tree() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let output = Command::new("git").args(["apply", "--check", "bench/without-integrity.patch"]).current_dir(root).output().unwrap();
    assert!(
        output.status.success(),
        "bench/without-integrity.patch no longer applies: update it to remove integrity's work from the changed code, and \
         nothing else (docs/integrity.md, \"Cost\"): {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The receiver process, killed when the test ends, however it ends (it serves until killed).
struct Receiver(std::process::Child);

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
