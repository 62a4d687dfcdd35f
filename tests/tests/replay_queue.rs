//! `auditstream replay --queue/--topic`: an archive replayed as Amazon SQS Extended Client pointers to
//! its own objects, for the deployed functions (or `auditstream poll`) to deliver — and nothing of
//! ours ever deletes or changes what such a pointer names (`docs/operations.md`, "Replay by pointer").
//!
//! The end-to-end tests need moto: run with `scripts/test`, or `scripts/services start` and the exports
//! it prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use auditstream::intake::payload_pointer::PayloadPointer;
use auditstream_e2e::command_run::{auditstream, moto_command_env, python_snippet, Run};
use auditstream_e2e::{
    create_bucket, create_queue, moto_s3_client, moto_sdk_config, moto_sqs_client, queue_depth, unique_name, workspace_bin, workspace_root, TestQueue,
};
use aws_sdk_s3::types::{BucketVersioningStatus, StorageClass, VersioningConfiguration};

// ---------------------------------------------------------------------------------------------------------
// Nothing of ours deletes an S3 object.
//
// A replay pointer names an archived object itself, so a consumer that deleted "its payload" after
// delivery (as AWS's Java Extended Client does by default) would destroy the archive. Our consumers —
// the functions through `intake`, and `auditstream poll` — read payloads through `PayloadStore`, which
// has no delete; no source of ours may call S3's DeleteObject or DeleteObjects at all.

/// The shapes an S3 delete takes in code calling the AWS SDK for Rust.
const S3_DELETE_CALLS: &[&str] = &[".delete_object(", ".delete_objects(", "delete_object::", "delete_objects::", "DeleteObjectInput", "DeleteObjectsInput"];

/// `file:line: text` for each line of `source` that calls an S3 delete.
fn s3_deletes(file: &str, source: &str) -> Vec<String> {
    source
        .lines()
        .enumerate()
        .filter(|(_, line)| S3_DELETE_CALLS.iter().any(|call| line.contains(call)))
        .map(|(i, line)| format!("{file}:{}: {}", i + 1, line.trim()))
        .collect()
}

fn rust_sources(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
        }
    }
}

#[test]
fn no_source_of_ours_deletes_an_s3_object() {
    let root = workspace_root();
    let mut sources = Vec::new();
    for dir in ["shared/src", "functions", "cli/src"] {
        rust_sources(&root.join(dir), &mut sources);
    }
    let files: Vec<&str> = sources.iter().map(|(f, _)| f.as_str()).collect();
    for must in ["shared/src/intake/payload_store.rs", "shared/src/intake/resolve.rs", "cli/src/poll.rs", "functions/s3-writer/src/main.rs"] {
        assert!(files.iter().any(|f| f.ends_with(must)), "{must} is not among the sources scanned: {files:?}");
    }
    let deletes: Vec<String> = sources.iter().flat_map(|(file, text)| s3_deletes(file, text)).collect();
    assert!(deletes.is_empty(), "S3 deletes in our code: a pointer's payload may be an archived object:\n{}", deletes.join("\n"));
}

#[test]
fn the_scan_finds_each_shape_of_an_s3_delete() {
    let planted = [
        "client.delete_object().bucket(b).key(k).send().await",
        "let request = s3\n    .delete_objects()",
        "use aws_sdk_s3::operation::delete_object::DeleteObjectError;",
        "let input = DeleteObjectInput::builder();",
    ];
    for code in planted {
        assert_eq!(s3_deletes("planted.rs", code).len(), 1, "{code}");
    }
    // Words in a message or a comment are not calls.
    assert!(s3_deletes("ok.rs", "// give the consumer no s3:DeleteObject on the archive\nsqs.delete_message()").is_empty());
}

// ---------------------------------------------------------------------------------------------------------
// An archive, the CLI, moto

/// Activity events on three days: two on 2024-03-01, three on 2024-03-02, one on 2024-03-03.
fn events() -> Vec<String> {
    let at = ["2024-03-01T08:00:00Z", "2024-03-01T23:59:59Z", "2024-03-02T00:00:00Z", "2024-03-02T12:30:00Z", "2024-03-02T23:00:00Z", "2024-03-03T09:00:00Z"];
    at.iter()
        .enumerate()
        .map(|(i, t)| {
            serde_json::json!({"id": 7000 + i, "event_type": "user_login", "timestamp": t,
                "workspace": {"id": 4848, "name": "Acme", "environment": "prod"}, "user": {"id": 61439, "name": "Jane"},
                "details": {"request": {"ip_address": "203.0.113.10"}}, "resource": {"id": 61439, "type": "User"}})
            .to_string()
        })
        .collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A bucket written by `auditstream run --to s3://BUCKET/workato` with [`events`], its versioning
/// `Enabled` or `Suspended`.
async fn archive(versioning: BucketVersioningStatus) -> String {
    archive_of(Some(versioning), &events()).await
}

/// A bucket written by `auditstream run --to s3://BUCKET/workato` with `events`; versioning never
/// turned on when `versioning` is `None`.
async fn archive_of(versioning: Option<BucketVersioningStatus>, events: &[String]) -> String {
    let s3 = moto_s3_client();
    let bucket = create_bucket(&s3, "replay-archive").await;
    if let Some(versioning) = versioning {
        let status = VersioningConfiguration::builder().status(versioning).build();
        s3.put_bucket_versioning().bucket(&bucket).versioning_configuration(status).send().await.unwrap();
    }
    let dir = temp_dir("replay-input");
    let input = dir.join("events.ndjson");
    std::fs::write(&input, events.join("\n")).unwrap();
    auditstream(&["run", "--to", &format!("s3://{bucket}/workato"), input.to_str().unwrap()]).expect_code(0);
    std::fs::remove_dir_all(dir).unwrap();
    bucket
}

/// Every version of every object in a bucket, and every delete marker: `key -> [(version, ETag)]`
/// (a delete marker's ETag is `delete-marker`).
async fn versions(bucket: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let page = moto_s3_client().list_object_versions().bucket(bucket).send().await.unwrap();
    assert!(!page.is_truncated().unwrap_or(false), "the test archive fits one page");
    let mut all: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for v in page.versions() {
        all.entry(v.key().unwrap().to_owned()).or_default().push((v.version_id().unwrap_or("null").to_owned(), v.e_tag().unwrap_or_default().to_owned()));
    }
    for m in page.delete_markers() {
        all.entry(m.key().unwrap().to_owned()).or_default().push((m.version_id().unwrap_or("null").to_owned(), "delete-marker".into()));
    }
    all
}

/// The events of the archive (its records under `workato/_auditstream/` left out): key -> bytes.
async fn archived_events(bucket: &str) -> BTreeMap<String, Vec<u8>> {
    let s3 = moto_s3_client();
    let page = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    let mut out = BTreeMap::new();
    for key in page.contents().iter().filter_map(|o| o.key()).filter(|k| !k.starts_with("workato/_auditstream/")) {
        let body = s3.get_object().bucket(bucket).key(key).send().await.unwrap().body.collect().await.unwrap().into_bytes().to_vec();
        out.insert(key.to_owned(), body);
    }
    out
}

/// The events a `dir:` destination holds (its records under `_auditstream/` left out): key -> bytes.
fn dir_events(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let key = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                out.insert(key, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out.retain(|k, _| !k.starts_with("_auditstream/"));
    out
}

/// The archived events of 2024-03-02, keyed without the archive's `workato/` prefix, as a `dir:`
/// destination lays them out.
fn the_second_of_march(archived: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    let selected: BTreeMap<String, Vec<u8>> =
        archived.iter().filter(|(k, _)| k.contains("/20240302/")).map(|(k, v)| (k.strip_prefix("workato/").unwrap().to_owned(), v.clone())).collect();
    assert_eq!(selected.len(), 3, "three events on 2024-03-02 in {:?}", archived.keys());
    selected
}

fn poll_to_dir(queue: &TestQueue, out: &Path) -> Run {
    auditstream(&["poll", "--queue", &queue.url, "--to", &format!("dir:{}", out.display()), "--until-empty", "--wait-seconds", "1"]).expect_code(0)
}

// ---------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn replay_to_a_queue_then_poll_delivers_exactly_the_window_and_leaves_the_archive_as_it_was() {
    let bucket = archive(BucketVersioningStatus::Enabled).await;
    let archived = archived_events(&bucket).await;
    assert_eq!(archived.len(), 6, "{:?}", archived.keys());
    let before = versions(&bucket).await;
    assert!(before.keys().any(|k| k.starts_with("workato/_auditstream/manifests/")), "the archive has its records too: {:?}", before.keys());
    let queue = create_queue(&moto_sqs_client(), "replay", &[]).await;

    let replay = auditstream(&["replay", "--from", &format!("s3://{bucket}/workato"), "--since", "2024-03-02", "--until", "2024-03-03", "--queue", &queue.url])
        .expect_code(0);
    assert_eq!(
        replay.stdout().trim(),
        format!("{} listed, 3 selected, 3 sent as pointers to s3://{bucket}/workato/, 0 skipped (not events), 0 failed -> {}", before.len(), queue.url),
        "{}",
        replay.stderr()
    );
    // A versioned archive: no warning (the three states are tested below).
    assert_eq!(replay.stderr().lines().filter(|l| l.starts_with("warning: ")).count(), 0, "{}", replay.stderr());

    let out = temp_dir("replay-out");
    let polled = poll_to_dir(&queue, &out);
    assert!(polled.stdout().starts_with("3 received, 3 written, 0 duplicates"), "{}\n{}", polled.stdout(), polled.stderr());
    // Exactly the window's events, byte for byte as archived (masking an archived event changes nothing).
    assert!(dir_events(&out) == the_second_of_march(&archived), "delivered {:?}", dir_events(&out).keys());
    // Nothing deleted, overwritten or added: the same single version of every object, no delete marker.
    assert_eq!(versions(&bucket).await, before);
    assert!(before.values().all(|v| v.len() == 1));
    assert_eq!(queue_depth(&queue).await, 0, "every message deleted after delivery");
    std::fs::remove_dir_all(out).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn each_replay_message_is_the_extended_client_pointer_to_its_archived_object() {
    let bucket = archive(BucketVersioningStatus::Enabled).await;
    let archived = archived_events(&bucket).await;
    let queue = create_queue(&moto_sqs_client(), "replay-format", &[]).await;
    auditstream(&["replay", "--from", &format!("s3://{bucket}/workato"), "--queue", &queue.url, "--stream", "activities"]).expect_code(0);

    let received = moto_sqs_client().receive_message().queue_url(&queue.url).max_number_of_messages(10).message_attribute_names("All").send().await.unwrap();
    let mut pointed = BTreeMap::new();
    for m in received.messages() {
        let body = m.body().unwrap();
        let pointer = PayloadPointer::parse(body, true).unwrap().unwrap_or_else(|| panic!("not a pointer: {body}"));
        assert_eq!(pointer.bucket, bucket, "the archive itself, no copy");
        let attributes = m.message_attributes().unwrap();
        let size = &attributes["ExtendedPayloadSize"];
        assert_eq!(size.data_type(), "Number");
        assert_eq!(size.string_value().unwrap().parse::<usize>().unwrap(), archived[&pointer.key].len());
        assert_eq!(attributes["auditstream-replay"].string_value(), Some(format!("s3://{bucket}/workato/").as_str()));
        pointed.insert(pointer.key, ());
    }
    assert_eq!(pointed.keys().collect::<Vec<_>>(), archived.keys().collect::<Vec<_>>(), "one message per archived event, none for the records");
}

const PYTHON_RECEIVE_ALL: &str = r#"
import sys
from sqs_extended_client import SQSExtendedClientSession
queue, delete_payload, path = sys.argv[1:4]
sqs = SQSExtendedClientSession().client("sqs")
sqs.delete_payload_from_s3 = delete_payload == "delete"
bodies = []
while True:
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]).get("Messages", [])
    if not messages:
        break
    for m in messages:
        bodies.append(m["Body"])
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
open(path, "w", encoding="utf-8").write("\n".join(sorted(bodies)))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn aws_python_extended_client_reads_replay_messages_and_with_cleanup_on_would_delete_the_archive() {
    let bucket = archive(BucketVersioningStatus::Enabled).await;
    let archived = archived_events(&bucket).await;
    let mut expected: Vec<String> = archived.values().map(|b| String::from_utf8(b.clone()).unwrap()).collect();
    expected.sort();
    let from = format!("s3://{bucket}/workato");
    let dir = temp_dir("replay-python");
    let received = dir.join("received.txt");

    // Its default (no cleanup): it reads each archived event whole, and the archive stays.
    let queue = create_queue(&moto_sqs_client(), "replay-py", &[]).await;
    auditstream(&["replay", "--from", &from, "--queue", &queue.url]).expect_code(0);
    let before = versions(&bucket).await;
    python_snippet(PYTHON_RECEIVE_ALL, &[&queue.url, "keep", received.to_str().unwrap()]).expect_code(0);
    assert_eq!(std::fs::read_to_string(&received).unwrap(), expected.join("\n"), "AWS's client reads the archived events through the replay pointers");
    assert_eq!(versions(&bucket).await, before);

    // With cleanup on, deleting each message deletes the archived object: why docs/operations.md
    // says to keep such consumers away, and why replay warns about an unversioned archive. Here
    // versioning keeps every event as a previous version under a delete marker.
    auditstream(&["replay", "--from", &from, "--queue", &queue.url]).expect_code(0);
    python_snippet(PYTHON_RECEIVE_ALL, &[&queue.url, "delete", received.to_str().unwrap()]).expect_code(0);
    assert!(archived_events(&bucket).await.is_empty(), "AWS's client with cleanup on deleted the archived events");
    let after = versions(&bucket).await;
    for key in archived.keys() {
        let kept: Vec<&String> = after[key].iter().map(|(_, etag)| etag).collect();
        assert_eq!(kept.len(), 2, "{key}: the version and a delete marker: {kept:?}");
        assert!(kept.contains(&&before[key][0].1) && kept.iter().any(|e| *e == "delete-marker"), "{key}: {kept:?}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_to_a_topic_reaches_a_subscribed_queue_and_poll_delivers_the_window() {
    let bucket = archive(BucketVersioningStatus::Enabled).await;
    let archived = archived_events(&bucket).await;
    let before = versions(&bucket).await;
    let queue = create_queue(&moto_sqs_client(), "replay-sns", &[]).await;
    let sns = aws_sdk_sns::Client::new(&moto_sdk_config().await);
    let topic = sns.create_topic().name(unique_name("replay")).send().await.unwrap().topic_arn().unwrap().to_owned();
    // Raw message delivery off: the queue receives SNS's JSON envelope around the pointer.
    sns.subscribe().topic_arn(&topic).protocol("sqs").endpoint(&queue.arn).send().await.unwrap();

    let replay = auditstream(&["replay", "--from", &format!("s3://{bucket}/workato"), "--since", "2024-03-02", "--until", "2024-03-03", "--topic", &topic])
        .expect_code(0);
    assert!(replay.stdout().contains(", 3 sent as pointers to ") && replay.stdout().ends_with(&format!("0 failed -> {topic}\n")), "{}", replay.stdout());
    let out = temp_dir("replay-sns-out");
    poll_to_dir(&queue, &out);
    assert!(dir_events(&out) == the_second_of_march(&archived), "delivered {:?}", dir_events(&out).keys());
    assert_eq!(versions(&bucket).await, before);
    assert_eq!(queue_depth(&queue).await, 0);
    std::fs::remove_dir_all(out).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_send_names_each_object_fails_the_run_and_leaves_the_checkpoint_before_it() {
    let bucket = archive(BucketVersioningStatus::Suspended).await;
    let archived = archived_events(&bucket).await;
    let from = format!("s3://{bucket}/workato");
    let dir = temp_dir("replay-checkpoint");
    let checkpoint = dir.join("checkpoint.json");
    let checkpoint_arg = checkpoint.to_str().unwrap();

    // A queue that does not exist: every send fails, each object is named, nothing is checkpointed.
    let missing = format!("{}/123456789012/{}", auditstream_e2e::moto_endpoint(), unique_name("no-such-queue"));
    let failed = auditstream(&["replay", "--from", &from, "--queue", &missing, "--checkpoint", checkpoint_arg]).expect_code(1);
    for key in archived.keys() {
        assert!(failed.stderr().contains(&format!("failed {key}: {missing}: SendMessageBatch failed: ")), "{key} not named:\n{}", failed.stderr());
    }
    assert!(failed.stdout().contains(", 0 sent as pointers to ") && failed.stdout().contains(", 6 failed -> "), "{}", failed.stdout());
    assert!(!checkpoint.exists(), "nothing sent, nothing checkpointed");

    // To a real queue: everything sent, the checkpoint at the last key; run again, nothing more is sent.
    let queue = create_queue(&moto_sqs_client(), "replay-resume", &[]).await;
    let sent = auditstream(&["replay", "--from", &from, "--queue", &queue.url, "--checkpoint", checkpoint_arg]).expect_code(0);
    assert!(sent.stdout().contains(", 6 sent as pointers to "), "{}", sent.stdout());
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    let last_listed = versions(&bucket).await.into_keys().last().unwrap();
    assert_eq!(saved["last_key"], last_listed.as_str(), "everything sent or passed: the checkpoint is at the last key listed");
    let again = auditstream(&["replay", "--from", &from, "--queue", &queue.url, "--checkpoint", checkpoint_arg]).expect_code(0);
    assert!(again.stdout().contains(", 0 sent as pointers to "), "{}", again.stdout());
    assert_eq!(queue_depth(&queue).await, 6);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_archive_cannot_be_replayed_by_pointer() {
    let dir = temp_dir("replay-dir");
    let run = auditstream(&["replay", "--from", &format!("dir:{}", dir.display()), "--queue", "https://sqs.us-east-1.amazonaws.com/123456789012/audit"])
        .expect_code(2);
    assert!(
        run.stderr().contains("a directory cannot be replayed by pointer") && run.stderr().contains("--to DEST") && run.stderr().contains("aws s3 sync"),
        "{}",
        run.stderr()
    );
    assert!(run.stdout().is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

/// The warnings `replay --queue` gives on stderr.
fn warnings(run: &Run) -> Vec<String> {
    run.stderr().lines().filter(|l| l.starts_with("warning: ")).map(str::to_owned).collect()
}

/// moto answers GetBucketVersioning with its own root element (`GetBucketVersioningResponse`, where S3
/// sends `VersioningConfiguration`, empty for a bucket whose versioning was never set); replay reads
/// the state from either, so each of the three states is told apart here as on S3.
#[tokio::test(flavor = "multi_thread")]
async fn replay_tells_a_versioned_archive_from_a_suspended_or_never_versioned_one_on_moto() {
    let queue = create_queue(&moto_sqs_client(), "replay-versioning", &[]).await;
    let one = &events()[..1];
    for (versioning, warned) in [(Some(BucketVersioningStatus::Enabled), false), (Some(BucketVersioningStatus::Suspended), true), (None, true)] {
        let bucket = archive_of(versioning.clone(), one).await;
        let run = auditstream(&["replay", "--from", &format!("s3://{bucket}/workato"), "--queue", &queue.url]).expect_code(0);
        let said = warnings(&run);
        assert!(!run.stderr().contains("cannot tell"), "{versioning:?}: {}", run.stderr());
        if warned {
            assert_eq!(said.len(), 1, "{versioning:?}: {}", run.stderr());
            assert!(said[0].starts_with(&format!("warning: s3://{bucket} has neither versioning nor Object Lock: ")), "{versioning:?}: {}", said[0]);
        } else {
            assert_eq!(said, Vec::<String>::new(), "{versioning:?}");
        }
    }
}

/// Objects at the keys of events of 2024-03-02 that hold no audit event: text, a JSON array, bytes
/// that are not UTF-8, nothing. `(key, bytes, why)`.
fn not_events() -> Vec<(String, Vec<u8>, &'static str)> {
    let key = |id: u32| format!("workato/4848/activities/20240302/{id}/4848-user_login-{id}-20240302100000.json");
    vec![
        (key(7100), b"secret words, not an event".to_vec(), "not one JSON object; an audit event is a JSON object"),
        (key(7101), b"[{\"id\":1}]".to_vec(), "not one JSON object; an audit event is a JSON object"),
        (key(7102), vec![b'{', 0xff, b'}'], "not UTF-8 text (invalid byte at offset 1); an audit event is JSON text"),
        (key(7103), Vec::new(), "not one JSON object; an audit event is a JSON object"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn an_archived_object_that_is_not_an_audit_event_is_named_and_skipped_never_sent() {
    let bucket = archive(BucketVersioningStatus::Enabled).await;
    let archived = archived_events(&bucket).await;
    let s3 = moto_s3_client();
    for (key, bytes, _) in not_events() {
        s3.put_object().bucket(&bucket).key(&key).body(bytes.into()).send().await.unwrap();
    }
    let before = versions(&bucket).await;
    let queue = create_queue(&moto_sqs_client(), "replay-not-events", &[]).await;

    let replay = auditstream(&["replay", "--from", &format!("s3://{bucket}/workato"), "--since", "2024-03-02", "--until", "2024-03-03", "--queue", &queue.url])
        .expect_code(0);
    assert_eq!(
        replay.stdout().trim(),
        format!("{} listed, 7 selected, 3 sent as pointers to s3://{bucket}/workato/, 4 skipped (not events), 0 failed -> {}", before.len(), queue.url),
        "{}",
        replay.stderr()
    );
    for (key, _, why) in not_events() {
        assert!(replay.stderr().contains(&format!("skipped {key}: not an audit event: {why}\n")), "{key} not named:\n{}", replay.stderr());
    }
    assert!(!replay.stderr().contains("secret words"), "an object's content is never quoted: {}", replay.stderr());

    // Only the events were sent: poll delivers exactly them and dead-letters nothing.
    assert_eq!(queue_depth(&queue).await, 3);
    let out = temp_dir("replay-not-events-out");
    let polled = poll_to_dir(&queue, &out);
    assert!(
        polled.stdout().starts_with("3 received, 3 written, 0 duplicates") && polled.stdout().contains(" 0 failed (0 sent to the dead-letter queue)"),
        "{}",
        polled.stdout()
    );
    assert!(dir_events(&out) == the_second_of_march(&archived), "delivered {:?}", dir_events(&out).keys());
    assert_eq!(versions(&bucket).await, before, "the archive is only read");
    std::fs::remove_dir_all(out).unwrap();
}

/// An archived object in the S3 Glacier Deep Archive storage class (rewritten in place with
/// CopyObject, as a lifecycle transition leaves it): listed, but GetObject answers 403
/// `InvalidObjectState` until it is restored
/// (<https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html>), on moto as on S3. A
/// replay by pointer reads each object before sending its pointer, and the functions could not
/// read it either: it is named and failed, never sent, and the checkpoint stays before it.
#[tokio::test(flavor = "multi_thread")]
async fn an_archived_object_that_cannot_be_read_is_named_and_failed_never_sent_and_the_rerun_sends_it_once_readable() {
    let bucket = archive(BucketVersioningStatus::Enabled).await;
    let archived = archived_events(&bucket).await;
    let keys: Vec<&String> = archived.keys().collect();
    let (frozen, last_before) = (keys[2].clone(), keys[1].clone());
    assert!(frozen.contains("/20240302/"), "{frozen}");
    let s3 = moto_s3_client();
    let in_place = |class: StorageClass| s3.copy_object().bucket(&bucket).key(&frozen).copy_source(format!("{bucket}/{frozen}")).storage_class(class).send();
    in_place(StorageClass::DeepArchive).await.unwrap();
    let err = s3.get_object().bucket(&bucket).key(&frozen).send().await.expect_err("not readable before it is restored");
    assert_eq!(aws_sdk_s3::error::ProvideErrorMetadata::code(&err), Some("InvalidObjectState"), "{err:?}");
    let queue = create_queue(&moto_sqs_client(), "replay-unread", &[]).await;
    let work = temp_dir("replay-unread");
    let checkpoint = work.join("replay.checkpoint");
    let from = format!("s3://{bucket}/workato");
    let args = ["replay", "--from", &from, "--queue", &queue.url, "--checkpoint", checkpoint.to_str().unwrap()];

    let failed = auditstream(&args).expect_code(1);
    let named: Vec<String> = failed.stderr().lines().filter(|l| l.starts_with("failed ")).map(str::to_owned).collect();
    assert_eq!(named.len(), 1, "{}", failed.stderr());
    assert!(
        named[0].starts_with(&format!("failed {frozen}: s3://{bucket}/{frozen}: GetObject failed: HTTP 403 InvalidObjectState"))
            && named[0].contains("restore it (RestoreObject"),
        "the object named, with S3's answer and what to do: {}",
        failed.stderr()
    );
    assert!(!failed.stderr().contains("203.0.113.10") && !failed.stderr().contains("\"user\""), "nothing of an object's content: {}", failed.stderr());
    assert!(failed.stdout().contains(" 6 selected, 5 sent as pointers to ") && failed.stdout().contains(" 1 failed -> "), "{}", failed.stdout());
    let pointed = pointed_keys(&queue).await;
    let others: Vec<&String> = keys.iter().copied().filter(|k| **k != frozen).collect();
    assert_eq!(pointed.keys().collect::<Vec<_>>(), others, "a pointer for each event before and after it, none for it");
    let recorded: serde_json::Value = serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    assert_eq!(recorded["last_key"].as_str(), Some(last_before.as_str()), "the checkpoint stops before the object not read");

    // Restored, then rewritten as STANDARD from its restored copy: readable for good.
    let request = aws_sdk_s3::types::RestoreRequest::builder().days(1).build();
    s3.restore_object().bucket(&bucket).key(&frozen).restore_request(request).send().await.unwrap();
    in_place(StorageClass::Standard).await.unwrap();
    let rerun = auditstream(&args).expect_code(0);
    assert!(rerun.stderr().contains(&format!("continuing after {last_before}")), "{}", rerun.stderr());
    // From the checkpoint on: the object not read, and what followed it (sent again, as documented).
    assert!(rerun.stdout().contains(" 4 selected, 4 sent as pointers to ") && rerun.stdout().contains(" 0 failed -> "), "{}", rerun.stdout());
    let out = temp_dir("replay-unread-out");
    // Every message the first run sent was received (and left invisible) above; the rerun's are
    // what is on the queue now.
    let polled = poll_to_dir(&queue, &out);
    assert!(polled.stdout().starts_with("4 received, 4 written, 0 duplicates"), "{}\n{}", polled.stdout(), polled.stderr());
    let expected: BTreeMap<String, Vec<u8>> =
        archived.iter().filter(|(k, _)| **k >= frozen).map(|(k, v)| (k.strip_prefix("workato/").unwrap().to_owned(), v.clone())).collect();
    assert!(dir_events(&out) == expected, "delivered {:?}", dir_events(&out).keys());
    std::fs::remove_dir_all(out).unwrap();
    std::fs::remove_dir_all(work).unwrap();
}

/// Every message on `queue`, received until none is left (each stays invisible meanwhile): the key
/// each points at -> how many messages point at it.
async fn pointed_keys(queue: &TestQueue) -> BTreeMap<String, usize> {
    let sqs = moto_sqs_client();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    loop {
        let page = sqs.receive_message().queue_url(&queue.url).max_number_of_messages(10).visibility_timeout(600).send().await.unwrap();
        if page.messages().is_empty() {
            return seen;
        }
        for m in page.messages() {
            let pointer = PayloadPointer::parse(m.body().unwrap(), true).unwrap().unwrap_or_else(|| panic!("not a pointer: {:?}", m.body()));
            *seen.entry(pointer.key).or_default() += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_to_a_queue_killed_mid_way_continues_from_its_checkpoint_and_resends_only_what_followed_it() {
    let many: Vec<String> = (0..400)
        .map(|n| {
            serde_json::json!({"id": 9000 + n, "event_type": "user_login", "timestamp": format!("2024-03-04T{:02}:{:02}:{:02}Z", n / 3600, n / 60 % 60, n % 60),
                "workspace": {"id": 4848, "name": "Acme", "environment": "prod"}, "user": {"id": 61439, "name": "Jane"}})
            .to_string()
        })
        .collect();
    let bucket = archive_of(Some(BucketVersioningStatus::Enabled), &many).await;
    let archived = archived_events(&bucket).await;
    assert_eq!(archived.len(), 400);
    let queue = create_queue(&moto_sqs_client(), "replay-kill", &[]).await;
    let work = temp_dir("replay-queue-kill");
    let checkpoint = work.join("replay.checkpoint");
    let from = format!("s3://{bucket}/workato");
    let args = ["replay", "--from", &from, "--queue", &queue.url, "--checkpoint", checkpoint.to_str().unwrap(), "--concurrency", "1"];

    let mut command = Command::new(workspace_bin("auditstream-cli", "auditstream"));
    command.args(args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    moto_command_env(&mut command);
    let mut child = command.spawn().unwrap();
    // Killed as soon as it has recorded progress: reading one object at a time, it is far from done.
    let started = std::time::Instant::now();
    while !checkpoint.exists() {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "no checkpoint written");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "killed mid-way, not finished: {status:?}");
    let recorded: serde_json::Value = serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    let last_key = recorded["last_key"].as_str().unwrap().to_owned();
    let after_checkpoint = archived.keys().filter(|k| **k > last_key).count();
    assert!(after_checkpoint > 0, "killed before the end: {last_key}");

    let rerun = auditstream(&args).expect_code(0);
    assert!(rerun.stderr().contains(&format!("continuing after {last_key}")), "{}", rerun.stderr());
    assert!(
        rerun.stdout().contains(&format!(" {after_checkpoint} selected, {after_checkpoint} sent as pointers to ")),
        "{} (checkpoint {last_key})",
        rerun.stdout()
    );
    let done: serde_json::Value = serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    assert_eq!(done["last_key"].as_str(), versions(&bucket).await.keys().last().map(String::as_str), "at the end, the last key listed");

    // The contract: everything up to the checkpoint was sent exactly once (before the kill, never
    // again); what followed it is sent by the rerun, and at most once more if the killed run had
    // sent it too. Every event has its message.
    let pointed = pointed_keys(&queue).await;
    assert_eq!(pointed.keys().collect::<Vec<_>>(), archived.keys().collect::<Vec<_>>(), "one or more messages for each event, none for anything else");
    for (key, n) in &pointed {
        if *key <= last_key {
            assert_eq!(*n, 1, "{key}, at or before the checkpoint {last_key}, sent {n} times");
        } else {
            assert!(*n <= 2, "{key} sent {n} times");
        }
    }
    std::fs::remove_dir_all(work).unwrap();
}
