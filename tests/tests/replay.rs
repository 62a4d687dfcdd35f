//! `auditstream replay --to` end to end (docs/operations.md, "Replay"): archives written by
//! `auditstream run` to S3 on moto and to a directory, replayed to a directory and to another
//! bucket with --since/--until/--stream; exactly the selected events arrive, byte for byte as
//! archived (masking an already masked event changes nothing), what is not an event is named and
//! skipped, the archive is unchanged afterwards, a templated archive is unwrapped, and a replay
//! killed mid-way continues from its checkpoint without writing anything twice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use auditstream_e2e::{create_bucket, moto_env, moto_s3_client, unique_name, workspace_bin};

fn auditstream() -> &'static Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| workspace_bin("auditstream-cli", "auditstream"))
}

fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(auditstream());
    command.args(args).env_remove("AUDITSTREAM_LOG_TEMPLATE").envs(moto_env()).envs(env.iter().copied());
    command
}

fn cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = command(args, env).output().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("auditstream {}:\n{}{}", args.join(" "), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A job on day `day` of November 2026; every third one has a masked line.
fn job(n: usize, day: u32) -> String {
    format!(
        r#"{{"id":"j-{n:04}","recipe_id":{},"status":"succeeded","account_id":42,"completed_at":"2026-11-{day:02}T10:{:02}:{:02}Z","lines":[{{"input":{{"ssn":"078-05-{n:04}"}},"mask_data":{}}}]}}"#,
        n % 3,
        n / 60 % 60,
        n % 60,
        n.is_multiple_of(3)
    )
}

fn activity(n: usize, day: u32) -> String {
    format!(r#"{{"event_type":"user_login","id":{n},"workspace":{{"id":42}},"timestamp":"2026-11-{day:02}T08:00:{:02}.000Z"}}"#, n % 60)
}

fn other(n: usize, day: u32) -> String {
    format!(r#"{{"kind":"export","id":"x-{n}","account_id":42,"time":"2026-11-{day:02}T09:00:00Z"}}"#)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_events(dir: &Path, events: &[String]) -> PathBuf {
    let file = dir.join("events.ndjson");
    std::fs::write(&file, events.join("\n") + "\n").unwrap();
    file
}

/// Every object below `prefix`, with its bytes (the key without the prefix).
async fn bucket_objects(bucket: &str, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let s3 = moto_s3_client();
    let mut out = BTreeMap::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        for object in page.unwrap_or_else(|e| panic!("{e:?}")).contents() {
            let key = object.key().unwrap();
            let body = s3.get_object().bucket(bucket).key(key).send().await.unwrap().body.collect().await.unwrap().into_bytes().to_vec();
            out.insert(key.strip_prefix(prefix).unwrap().to_owned(), body);
        }
    }
    out
}

/// Key, size, ETag and last-modified time of every object: what "unchanged" means.
async fn bucket_state(bucket: &str) -> Vec<String> {
    let page = moto_s3_client().list_objects_v2().bucket(bucket).send().await.unwrap_or_else(|e| panic!("{e:?}"));
    assert!(!page.is_truncated().unwrap_or(false));
    page.contents().iter().map(|o| format!("{} {} {} {:?}", o.key().unwrap(), o.size().unwrap(), o.e_tag().unwrap(), o.last_modified())).collect()
}

/// Every file below `dir`, with its bytes (the path below `dir`, with `/`).
fn dir_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                let key = entry.path().strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/");
                out.insert(key, std::fs::read(entry.path()).unwrap());
            }
        }
    }
    out
}

/// Without auditstream's own records.
fn events_only(files: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    files.into_iter().filter(|(k, _)| !k.starts_with("_auditstream/")).collect()
}

#[tokio::test]
async fn an_s3_archive_replays_exactly_the_selected_events_byte_for_byte_and_is_left_unchanged() {
    let s3 = moto_s3_client();
    let archive = create_bucket(&s3, "replay-archive").await;
    let work = temp_dir("replay-s3");
    let mut events = Vec::new();
    for day in 24..=26 {
        events.extend((0..6).map(|n| job(n + 10 * day as usize, day)));
        events.extend((0..2).map(|n| activity(n + 10 * day as usize, day)));
        events.push(other(day as usize, day));
    }
    let from = format!("s3://{archive}/audit");
    let out = cli(&["run", "--to", &from, write_events(&work, &events).to_str().unwrap()], &[]);
    assert!(out.status.success());
    let archived = events_only(bucket_objects(&archive, "audit/").await);
    assert_eq!(archived.len(), 27);
    let masked = archived.iter().find(|(k, _)| k.contains("j-0252")).unwrap().1;
    assert!(!String::from_utf8_lossy(masked).contains("078-05-0252"), "the archive holds the event masked");
    // what is not an event: a stray file, and an object at an event's key that holds no event
    s3.put_object().bucket(&archive).key("audit/notes.txt").body(b"hello".to_vec().into()).send().await.unwrap();
    let stray_job = "audit/42/jobs/0/20261125/j-9999/42-0-j-9999-20261125100000-succeeded.json";
    s3.put_object().bucket(&archive).key(stray_job).body(b"secret words, not json".to_vec().into()).send().await.unwrap();
    let before = bucket_state(&archive).await;

    // jobs of the 25th only, to a directory
    let dir = work.join("jobs-25");
    let to = format!("dir:{}", dir.display());
    let out = cli(&["replay", "--from", &from, "--to", &to, "--since", "2026-11-25", "--until", "2026-11-26", "--stream", "jobs"], &[]);
    assert_eq!(out.status.code(), Some(0), "a skipped object is no failure");
    let expected: BTreeMap<_, _> =
        archived.iter().filter(|(k, _)| k.contains("/jobs/") && k.contains("/20261125/")).map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(expected.len(), 6);
    assert_eq!(events_only(dir_files(&dir)), expected, "exactly the selected events, byte for byte as archived");
    assert!(expected.keys().any(|k| k.contains("j-0252")), "a masked event replays unchanged");
    let (err, summary) = (stderr(&out), stdout(&out));
    assert!(err.contains("skipped audit/notes.txt: not an audit event: not an archived event's key"), "{err}");
    assert!(err.contains(&format!("skipped {stray_job}: not an audit event: not one JSON object")), "{err}");
    assert!(!err.contains("secret words"), "{err}");
    let listed = before.len();
    assert!(summary.starts_with(&format!("{listed} listed, 7 selected, 6 written, 0 duplicates, 0 filtered, 2 skipped (not events), ")), "{summary}");

    // everything from the 25th on, to another bucket under a prefix, with a time of day
    let copy = create_bucket(&s3, "replay-copy").await;
    let to = format!("s3://{copy}/copy");
    let out = cli(&["replay", "--from", &from, "--to", &to, "--since", "2026-11-25T09:00:00Z"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let expected: BTreeMap<_, _> =
        archived.iter().filter(|(k, _)| !k.contains("/20261124/") && !(k.contains("/activities/20261125/"))).map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(expected.len(), 16, "jobs at 10:00 and the other event at 09:00 of the 25th, all of the 26th; not the logins at 08:00");
    assert_eq!(events_only(bucket_objects(&copy, "copy/").await), expected);

    // the same again: every object is there already, none written twice
    let out = cli(&["replay", "--from", &from, "--to", &to, "--since", "2026-11-25T09:00:00Z"], &[]);
    assert!(stdout(&out).contains(" 0 written, 16 duplicates, "), "{}", stdout(&out));

    assert_eq!(bucket_state(&archive).await, before, "the archive is only read");
    std::fs::remove_dir_all(&work).unwrap();
}

#[tokio::test]
async fn a_directory_archive_replays_to_a_directory_and_a_templated_one_is_unwrapped() {
    let work = temp_dir("replay-dir");
    let events: Vec<String> = (0..5).map(|n| job(n, 25)).chain((0..3).map(|n| activity(n, 26))).collect();
    let input = write_events(&work, &events);
    let plain = work.join("plain");
    assert!(cli(&["run", "--to", &format!("dir:{}", plain.display()), input.to_str().unwrap()], &[]).status.success());
    let templated = work.join("templated");
    let template = r#"{"source":"workato","event":{{{log_message}}}}"#;
    assert!(cli(&["run", "--to", &format!("dir:{}", templated.display()), input.to_str().unwrap()], &[("AUDITSTREAM_LOG_TEMPLATE", template)])
        .status
        .success());
    let before = dir_files(&templated);

    let copy = work.join("copy");
    let out = cli(&["replay", "--from", &format!("dir:{}", plain.display()), "--to", &format!("dir:{}", copy.display()), "--stream", "activities"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let activities: BTreeMap<_, _> = events_only(dir_files(&plain)).into_iter().filter(|(k, _)| k.contains("/activities/")).collect();
    assert_eq!(activities.len(), 3);
    assert_eq!(events_only(dir_files(&copy)), activities);

    // the event is taken from the template's field: the same objects as the archive without one
    let unwrapped = work.join("unwrapped");
    let args = ["replay", "--from", &format!("dir:{}", templated.display()), "--to", &format!("dir:{}", unwrapped.display()), "--unwrap", "event"];
    let out = cli(&args, &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(events_only(dir_files(&unwrapped)), events_only(dir_files(&plain)));
    // a field that is not there: each object named and skipped, nothing sent
    let out = cli(
        &["replay", "--from", &format!("dir:{}", templated.display()), "--to", &format!("dir:{}", work.join("none").display()), "--unwrap", "message"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stderr(&out).matches("not an audit event: has no field \"message\"").count(), 8, "{}", stderr(&out));
    assert!(!work.join("none").exists() || events_only(dir_files(&work.join("none"))).is_empty());
    assert_eq!(dir_files(&templated), before, "the archive is only read");

    // usage errors exit 2
    for (args, says) in [
        (vec!["--since", "yesterday", "--to", "dir:x"], "--since \"yesterday\" is not a date"),
        (vec!["--stream", "job_details", "--to", "dir:x"], "--stream \"job_details\" is not a stream"),
        (vec!["--queue", "https://sqs.us-east-1.amazonaws.com/1/q"], "a directory cannot be replayed by pointer"),
    ] {
        let from = format!("dir:{}", plain.display());
        let out = cli(&[&["replay", "--from", from.as_str()][..], &args].concat(), &[]);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    }
    std::fs::remove_dir_all(&work).unwrap();
}

#[tokio::test]
async fn a_replay_killed_mid_way_continues_from_its_checkpoint_and_writes_nothing_twice() {
    let s3 = moto_s3_client();
    let archive = create_bucket(&s3, "replay-kill").await;
    let work = temp_dir("replay-kill");
    let events: Vec<String> = (0..400).map(|n| job(n, 25)).collect();
    let from = format!("s3://{archive}");
    assert!(cli(&["run", "--to", &from, write_events(&work, &events).to_str().unwrap()], &[]).status.success());
    let archived = events_only(bucket_objects(&archive, "").await);
    assert_eq!(archived.len(), 400);

    let (dest, checkpoint) = (work.join("dest"), work.join("replay.checkpoint"));
    let to = format!("dir:{}", dest.display());
    let args = ["replay", "--from", &from, "--to", &to, "--checkpoint", checkpoint.to_str().unwrap(), "--concurrency", "1"];
    let mut child = command(&args, &[]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // killed as soon as it has recorded progress: one object at a time, it is far from done
    let started = Instant::now();
    while !checkpoint.exists() {
        assert!(started.elapsed() < Duration::from_secs(30), "no checkpoint written");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "killed mid-way, not finished: {status:?}");
    let recorded: serde_json::Value = serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    let last_key = recorded["last_key"].as_str().unwrap().to_owned();
    let written_before = events_only(dir_files(&dest));
    assert!(written_before.len() < 400, "{}", written_before.len());
    assert!(
        written_before.keys().filter(|k| **k <= last_key).count() == archived.keys().filter(|k| **k <= last_key).count(),
        "everything up to the checkpoint was written"
    );
    // written after the checkpoint, before the kill: found again, refused by create-only
    let beyond = written_before.keys().filter(|k| **k > last_key).count();

    let out = cli(&args, &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains(&format!("continuing after {last_key}")), "{}", stderr(&out));
    let remaining = archived.keys().filter(|k| **k > last_key).count();
    let summary = stdout(&out);
    assert!(
        summary.contains(&format!(" {remaining} selected, {} written, {beyond} duplicates, ", remaining - beyond)),
        "{summary} (checkpoint {last_key}, {} written before)",
        written_before.len()
    );
    assert_eq!(events_only(dir_files(&dest)), archived, "every event arrived, byte for byte");
    let done: serde_json::Value = serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    let last_listed = bucket_objects(&archive, "").await.into_keys().last();
    assert_eq!(done["last_key"].as_str(), last_listed.as_deref(), "at the end, the last key listed (a manifest, after every event)");
    std::fs::remove_dir_all(&work).unwrap();
}

#[tokio::test]
async fn a_failed_event_stops_the_checkpoint_before_it_and_the_rerun_delivers_it() {
    let work = temp_dir("replay-fail");
    let events: Vec<String> = (0..6).map(|n| job(n, 25)).collect();
    let archive = work.join("archive");
    assert!(cli(&["run", "--to", &format!("dir:{}", archive.display()), write_events(&work, &events).to_str().unwrap()], &[]).status.success());
    let archived = events_only(dir_files(&archive));
    // keys in order: 42/jobs/0/… (j-0000, j-0003) < 42/jobs/1/… (j-0001, j-0004) < 42/jobs/2/…
    let dest = work.join("dest");
    std::fs::create_dir_all(dest.join("42/jobs")).unwrap();
    std::fs::write(dest.join("42/jobs/1"), "a file where recipe 1's folder goes").unwrap();
    let checkpoint = work.join("replay.checkpoint");
    let args =
        ["replay", "--from", &format!("dir:{}", archive.display()), "--to", &format!("dir:{}", dest.display()), "--checkpoint", checkpoint.to_str().unwrap()];
    let args: Vec<&str> = args.iter().map(|s| &**s).collect();

    let out = cli(&args, &[]);
    assert_eq!(out.status.code(), Some(1), "a failed event fails the replay");
    assert_eq!(stderr(&out).matches("failed 42/jobs/1/").count(), 2, "{}", stderr(&out));
    assert!(
        stdout(&out).contains(" 4 written, 0 duplicates, 0 filtered, 0 skipped (not events), ") && stdout(&out).contains(" 2 failed -> "),
        "{}",
        stdout(&out)
    );
    let recorded: serde_json::Value = serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    let last_before_failure = archived.keys().rfind(|k| k.starts_with("42/jobs/0/")).unwrap();
    assert_eq!(recorded["last_key"].as_str(), Some(last_before_failure.as_str()), "not past the first failure");

    std::fs::remove_file(dest.join("42/jobs/1")).unwrap();
    let out = cli(&args, &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("5 listed, 4 selected, 2 written, 2 duplicates, "), "{}", stdout(&out));
    assert_eq!(events_only(dir_files(&dest)), archived);
    std::fs::remove_dir_all(&work).unwrap();
}

/// An archived object S3 lists but will not let anyone read: one in the S3 Glacier Flexible
/// Retrieval or Deep Archive storage class, where a lifecycle rule moves old objects. GetObject
/// answers 403 `InvalidObjectState` until the object is restored
/// (<https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html>); moto answers the same.
/// Rewritten in place (CopyObject onto itself with another storage class), as a transition does.
async fn move_to_storage_class(bucket: &str, key: &str, class: aws_sdk_s3::types::StorageClass) {
    let s3 = moto_s3_client();
    s3.copy_object().bucket(bucket).key(key).copy_source(format!("{bucket}/{key}")).storage_class(class).send().await.unwrap_or_else(|e| panic!("{e:?}"));
    let err = s3.get_object().bucket(bucket).key(key).send().await.expect_err("an archived object cannot be read before it is restored");
    assert_eq!(aws_sdk_s3::error::ProvideErrorMetadata::code(&err), Some("InvalidObjectState"), "{err:?}");
}

/// A RestoreObject request for a day: S3 makes a readable copy of an archived object (moto at once).
async fn restore(bucket: &str, key: &str) {
    let request = aws_sdk_s3::types::RestoreRequest::builder().days(1).build();
    moto_s3_client().restore_object().bucket(bucket).key(key).restore_request(request).send().await.unwrap_or_else(|e| panic!("{e:?}"));
}

#[tokio::test]
async fn an_archived_object_that_cannot_be_read_is_named_and_failed_and_the_rerun_after_its_restore_delivers_it() {
    let s3 = moto_s3_client();
    let archive = create_bucket(&s3, "replay-glacier").await;
    let work = temp_dir("replay-glacier");
    let events: Vec<String> = (0..6).map(|n| job(n, 25)).collect();
    let from = format!("s3://{archive}/audit");
    assert!(cli(&["run", "--to", &from, write_events(&work, &events).to_str().unwrap()], &[]).status.success());
    let archived = events_only(bucket_objects(&archive, "audit/").await);
    // keys in order: 42/jobs/0/… (j-0000, j-0003) < 42/jobs/1/… (j-0001, j-0004) < 42/jobs/2/…
    let keys: Vec<&String> = archived.keys().collect();
    assert_eq!(keys.len(), 6);
    let (frozen, last_before) = (format!("audit/{}", keys[2]), format!("audit/{}", keys[1]));
    assert!(frozen.contains("/j-0001/"), "{frozen}");
    move_to_storage_class(&archive, &frozen, aws_sdk_s3::types::StorageClass::Glacier).await;

    let (dest, checkpoint) = (work.join("dest"), work.join("replay.checkpoint"));
    let args = ["replay", "--from", &from, "--to", &format!("dir:{}", dest.display()), "--checkpoint", checkpoint.to_str().unwrap()];
    let args: Vec<&str> = args.iter().map(|s| &**s).collect();
    let out = cli(&args, &[]);
    assert_eq!(out.status.code(), Some(1), "an object that cannot be read fails the replay");
    let (err, summary) = (stderr(&out), stdout(&out));
    let named: Vec<&str> = err.lines().filter(|l| l.starts_with("failed ")).collect();
    assert_eq!(named.len(), 1, "{err}");
    assert!(
        named[0].starts_with(&format!("failed {frozen}: s3://{archive}/{frozen}: GetObject failed: HTTP 403 InvalidObjectState")),
        "the object named, with S3's answer: {err}"
    );
    assert!(named[0].contains("restore it (RestoreObject"), "and what to do about it: {err}");
    assert!(!err.contains("completed_at") && !err.contains("j-0001\""), "nothing of an object's content is printed: {err}");
    assert!(summary.contains(" 6 selected, 5 written, 0 duplicates, ") && summary.contains(" 1 failed -> "), "{summary}");
    let mut delivered = archived.clone();
    delivered.remove(keys[2].as_str());
    assert_eq!(events_only(dir_files(&dest)), delivered, "the events before and after it are delivered");
    let recorded: serde_json::Value = serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    assert_eq!(recorded["last_key"].as_str(), Some(last_before.as_str()), "the checkpoint stops before the object not read");

    restore(&archive, &frozen).await;
    let out = cli(&args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("continuing after {last_before}")), "{}", stderr(&out));
    assert!(stdout(&out).contains(" 4 selected, 1 written, 3 duplicates, ") && stdout(&out).contains(" 0 failed -> "), "{}", stdout(&out));
    assert_eq!(events_only(dir_files(&dest)), archived, "every event, byte for byte");
    std::fs::remove_dir_all(&work).unwrap();
}

/// A value only masked data holds: masking must keep it from every destination.
const MASKED_MARKER: &str = "MASKED-MARKER-5b8e1d07";

/// A failed job `n` of 25 November 2026 whose first line asks to be masked and holds
/// [`MASKED_MARKER`] in its input, its output and its error; its second line is not masked.
fn job_with_masked_marker(n: usize) -> String {
    format!(
        r#"{{"id":"j-m{n:03}","recipe_id":3,"status":"failed","account_id":42,"completed_at":"2026-11-25T11:00:{n:02}Z","lines":[{{"input":{{"card":"{MASKED_MARKER}-in-{n}","nested":{{"deep":"{MASKED_MARKER}"}}}},"output":["{MASKED_MARKER}-out"],"error":"rejected input {{\"card\":\"{MASKED_MARKER}\"}}","mask_data":true}},{{"input":{{"q":"plain-{n}"}},"mask_data":false}}]}}"#
    )
}

/// Every file below `dir` that holds `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    dir_files(dir).into_iter().filter(|(_, bytes)| String::from_utf8_lossy(bytes).contains(needle)).map(|(key, _)| key).collect()
}

/// Masking is idempotent and replay masks as `run` does: an archive written masked (plain, and
/// with a log message template read back with `--unwrap`) replays to the very bytes it holds, and
/// the same archive holding the events unmasked (as a writer that did not mask would have left
/// it) replays to those same masked bytes: a masked value reaches no destination either way.
#[tokio::test]
async fn a_masked_value_never_reaches_the_destination_of_a_replay_and_a_masked_archive_replays_unchanged() {
    let work = temp_dir("replay-masked");
    let events: Vec<String> = (0..4).map(job_with_masked_marker).chain([job(1, 25), activity(2, 25)]).collect();
    let input = write_events(&work, &events);
    let template = r#"{"source":"workato","event":{{{log_message}}}}"#;
    let plain = work.join("plain");
    let templated = work.join("templated");
    for (archive, env) in [(&plain, vec![]), (&templated, vec![("AUDITSTREAM_LOG_TEMPLATE", template)])] {
        let out = cli(&["run", "--to", &format!("dir:{}", archive.display()), input.to_str().unwrap()], &env);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(files_holding(archive, MASKED_MARKER), Vec::<String>::new(), "the archive holds the events masked");
    }
    let archived = events_only(dir_files(&plain));
    assert_eq!(archived.len(), 6);
    assert_eq!(archived.values().filter(|bytes| String::from_utf8_lossy(bytes).contains(r#"{"data":"masked"}"#)).count(), 4);

    // The same archives with each masked job's object holding the job as it came, unmasked.
    let unmasked_by_id: BTreeMap<String, &String> = events
        .iter()
        .filter(|e| e.contains(MASKED_MARKER))
        .map(|e| (serde_json::from_str::<serde_json::Value>(e).unwrap()["id"].as_str().unwrap().to_owned(), e))
        .collect();
    let unmasked_copy = |archive: &Path, name: &str, wrap: &dyn Fn(&str) -> String| {
        let copy = work.join(name);
        let mut planted = 0;
        for (key, bytes) in events_only(dir_files(archive)) {
            let text = String::from_utf8(bytes).unwrap();
            let id = unmasked_by_id.keys().find(|id| text.contains(&format!(r#""id":"{id}""#)));
            let body = id.map_or(text.clone(), |id| wrap(unmasked_by_id[id]));
            planted += usize::from(id.is_some());
            std::fs::create_dir_all(copy.join(&key).parent().unwrap()).unwrap();
            std::fs::write(copy.join(&key), body).unwrap();
        }
        assert_eq!(planted, 4, "{name}: each masked job planted unmasked");
        assert_eq!(files_holding(&copy, MASKED_MARKER).len(), 4, "{name}");
        copy
    };
    let plain_unmasked = unmasked_copy(&plain, "plain-unmasked", &|event| event.to_owned());
    let templated_unmasked = unmasked_copy(&templated, "templated-unmasked", &|event| format!(r#"{{"source":"workato","event":{event}}}"#));

    for (archive, unwrap) in [(&plain, None), (&templated, Some("event")), (&plain_unmasked, None), (&templated_unmasked, Some("event"))] {
        let to = work.join(format!("to-{}", archive.file_name().unwrap().to_string_lossy()));
        let (from, to_arg) = (format!("dir:{}", archive.display()), format!("dir:{}", to.display()));
        let mut args = vec!["replay", "--from", from.as_str(), "--to", to_arg.as_str()];
        args.extend(unwrap.map(|field| ["--unwrap", field]).into_iter().flatten());
        let out = cli(&args, &[]);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(stdout(&out).contains(" 6 selected, 6 written, "), "{args:?}: {}", stdout(&out));
        assert_eq!(files_holding(&to, MASKED_MARKER), Vec::<String>::new(), "{args:?}: a masked value reached the destination");
        assert!(!stderr(&out).contains(MASKED_MARKER), "{args:?}: {}", stderr(&out));
        assert_eq!(events_only(dir_files(&to)), archived, "{args:?}: the events as archived, byte for byte");
    }
    std::fs::remove_dir_all(&work).unwrap();
}
