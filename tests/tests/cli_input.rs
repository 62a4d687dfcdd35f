//! `auditstream run` on awkward input, end to end with the built binary and a `dir:` destination:
//! a byte order mark, an SQS event with one bad record, a directory with symbolic link loops, a
//! device that never ends (`/dev/zero`), and a link inside the output directory. Every refused input
//! is named on stderr and counted as failed (exit 1); every valid event is written; the process
//! stays small and ends.
//!
//! Each run is watched: it is killed, and the test fails, if it outgrows [`MAX_RSS`] or runs longer
//! than [`MAX_TIME`], so a regression shows as a failure rather than a hung or swapping machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditstream_e2e::{unique_name, workspace_bin};

/// Far above what reading 40 MiB at a time needs, far below reading `/dev/zero` whole.
const MAX_RSS: u64 = 512 * 1024 * 1024;
const MAX_TIME: Duration = Duration::from_secs(60);

struct Run {
    output: Output,
    peak_rss: u64,
    elapsed: Duration,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    fn describe(&self) -> String {
        format!(
            "exit {:?} after {:?}, peak RSS {} MB\nstdout: {}\nstderr: {}",
            self.output.status.code(),
            self.elapsed,
            self.peak_rss / 1_000_000,
            self.stdout(),
            self.stderr()
        )
    }
}

/// `auditstream run --to dir:OUT INPUT…` with a clean environment, watched (Linux `/proc`).
fn run(out: &Path, inputs: &[&Path]) -> Run {
    assert!(Path::new("/proc/self/status").exists(), "this test watches memory through /proc (Linux)");
    let mut command = Command::new(workspace_bin("auditstream-cli", "auditstream"));
    command.arg("run").arg("--to").arg(format!("dir:{}", out.display())).args(inputs);
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("NO_COLOR", "1");
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let child = command.spawn().unwrap_or_else(|e| panic!("spawn auditstream: {e}"));
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let status_path = format!("/proc/{pid}/status");
            let mut peak = 0u64;
            let mut killed = None;
            while !done.load(Ordering::SeqCst) {
                let Ok(status) = std::fs::read_to_string(&status_path) else {
                    break;
                };
                let kb = |field: &str| {
                    status.lines().find_map(|l| l.strip_prefix(field)).map(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap_or(0) * 1024)
                };
                let Some(hwm) = kb("VmHWM:") else { break }; // a zombie: it has exited
                peak = peak.max(hwm);
                if killed.is_none() && (peak > MAX_RSS || started.elapsed() > MAX_TIME) {
                    killed = Some(format!("killed: peak RSS {} MB after {:?}", peak / 1_000_000, started.elapsed()));
                    // SAFETY: kill(2) on the child we spawned, which has not been waited for yet.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (peak, killed)
        })
    };
    let output = child.wait_with_output().unwrap_or_else(|e| panic!("wait: {e}"));
    done.store(true, Ordering::SeqCst);
    let (peak_rss, killed) = watcher.join().unwrap_or_else(|_| panic!("watcher"));
    let run = Run { output, peak_rss, elapsed: started.elapsed() };
    if let Some(why) = killed {
        panic!("auditstream run was {why}\n{}", run.describe());
    }
    run
}

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name(what));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}

/// A job event of user 5.
fn job(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","recipe_id":7,"status":"succeeded","started_at":"2026-11-25T10:00:00Z","completed_at":"2026-11-25T10:00:05Z","context":{{"user_id":5}},"lines":[]}}"#
    )
}

/// The events written under `dir`, as paths relative to it (the integrity records, under
/// `_auditstream/`, left out).
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() && path == root.join("_auditstream") => {}
                Ok(t) if t.is_dir() => walk(&path, root, out),
                _ => out.push(path.strip_prefix(root).unwrap_or(&path).display().to_string()),
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The `N <what>` counts of the summary line.
fn count(stdout: &str, what: &str) -> u64 {
    let line = stdout.lines().find(|l| l.contains(" read, ")).unwrap_or_else(|| panic!("no summary in {stdout}"));
    line.split(", ")
        .find_map(|part| {
            let (n, rest) = part.trim().split_once(' ')?;
            rest.starts_with(what).then(|| n.parse::<u64>().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no `{what}` in {line}"))
}

#[test]
fn dev_zero_is_refused_at_once_with_bounded_memory() {
    let work = temp_dir("cli-zero");

    let run = run(&work.join("out"), &[Path::new("/dev/zero")]);

    assert_eq!(run.output.status.code(), Some(1), "{}", run.describe());
    assert!(run.stderr().contains("failed /dev/zero:1: line is over 42991616 bytes"), "{}", run.describe());
    assert!(run.stderr().contains("the rest of /dev/zero is not read"), "{}", run.describe());
    assert_eq!((count(&run.stdout(), "read"), count(&run.stdout(), "failed")), (1, 1), "{}", run.describe());
    eprintln!("/dev/zero refused in {:?} with a peak RSS of {} MB", run.elapsed, run.peak_rss / 1_000_000);
    let _ = std::fs::remove_dir_all(work);
}

#[test]
fn a_bom_file_and_the_good_records_of_an_sqs_event_are_written_and_the_bad_record_is_named() {
    let work = temp_dir("cli-records");
    let input = work.join("in");
    std::fs::create_dir_all(&input).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(input.join("bom.json"), format!("\u{feff}{}\n", job("j-bom"))).unwrap_or_else(|e| panic!("{e}"));
    let records = serde_json::json!({"Records": [
        {"messageId": "m-good-1", "body": job("j-sqs-1")},
        {"messageId": "m-bad", "body": {"id": "j-sqs-2"}},
        {"messageId": "m-good-3", "body": job("j-sqs-3")},
    ]});
    std::fs::write(input.join("sqs.json"), records.to_string()).unwrap_or_else(|e| panic!("{e}"));

    let run = run(&work.join("out"), &[&input]);

    assert_eq!(run.output.status.code(), Some(1), "{}", run.describe());
    assert_eq!((count(&run.stdout(), "read"), count(&run.stdout(), "written"), count(&run.stdout(), "failed")), (4, 3, 1), "{}", run.describe());
    assert!(run.stderr().contains("failed m-bad: SQS record 1 in "), "{}", run.describe());
    let written = files_under(&work.join("out"));
    assert_eq!(written.len(), 3, "{written:?}");
    for id in ["j-bom", "j-sqs-1", "j-sqs-3"] {
        assert!(written.iter().any(|f| f.contains(&format!("/{id}/"))), "{id} not in {written:?}");
    }
    let _ = std::fs::remove_dir_all(work);
}

#[test]
fn a_directory_with_symlink_loops_is_walked_once_and_the_loops_are_named() {
    let work = temp_dir("cli-loops");
    let input = work.join("in");
    std::fs::create_dir_all(input.join("sub")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(input.join("a.json"), job("j-a")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(input.join("sub/b.json"), job("j-b")).unwrap_or_else(|e| panic!("{e}"));
    for (link, target) in [("self-1", "."), ("self-2", "."), ("sub/up", ".."), ("again.json", "a.json")] {
        std::os::unix::fs::symlink(target, input.join(link)).unwrap_or_else(|e| panic!("{e}"));
    }

    let run = run(&work.join("out"), &[&input]);

    assert_eq!(run.output.status.code(), Some(1), "{}", run.describe());
    // each file once: two events, written; three loops, named and counted as failed
    assert_eq!(
        (count(&run.stdout(), "read"), count(&run.stdout(), "written"), count(&run.stdout(), "duplicates"), count(&run.stdout(), "failed")),
        (5, 2, 0, 3),
        "{}",
        run.describe()
    );
    for link in ["self-1", "self-2", "sub/up"] {
        let line = format!("failed {}: symbolic link loop: leads back to", input.join(link).display());
        assert!(run.stderr().contains(&line), "no `{line}`\n{}", run.describe());
    }
    let _ = std::fs::remove_dir_all(work);
}

#[test]
fn a_symlink_inside_the_output_directory_is_not_written_through() {
    let work = temp_dir("cli-out-link");
    let (out, elsewhere) = (work.join("out"), work.join("elsewhere"));
    std::fs::create_dir_all(&out).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(&elsewhere).unwrap_or_else(|e| panic!("{e}"));
    // every key of user 5's jobs starts with `5/`
    std::os::unix::fs::symlink(&elsewhere, out.join("5")).unwrap_or_else(|e| panic!("{e}"));
    let input = work.join("job.json");
    std::fs::write(&input, job("j-link")).unwrap_or_else(|e| panic!("{e}"));

    let run = run(&out, &[&input]);

    assert_eq!(run.output.status.code(), Some(1), "{}", run.describe());
    assert_eq!((count(&run.stdout(), "written"), count(&run.stdout(), "failed")), (0, 1), "{}", run.describe());
    let named = format!("failed {}: dir:{}: cannot write 5/", input.display(), out.display());
    assert!(run.stderr().contains(&named) && run.stderr().contains(": 5 is a symbolic link or not a directory"), "{}", run.describe());
    assert_eq!(files_under(&elsewhere), Vec::<String>::new(), "nothing was written outside the output directory");
    let _ = std::fs::remove_dir_all(work);
}
