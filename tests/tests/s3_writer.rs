//! The spine end to end: SQS events through the shared pipeline into a real S3-compatible server
//! (moto, started by `scripts/test`), by the handler and by the built `s3-writer` binary under the
//! Lambda Runtime API emulator; and `auditstream run` into `dir:` and `s3://`.
//!
//! What the issue asks, each as a test: objects and keys as specified; a redelivered batch writes
//! no second object; a missing bucket gives every message a clear failure; one malformed message
//! fails alone; the built function answers the files in `events/` with the right response.

use std::collections::BTreeSet;
use std::time::Duration;

use auditstream::aws::s3::{s3_client, S3_ATTEMPT_TIMEOUT};
use auditstream::delivery::destination::ObjectStoreDestination;
use auditstream::delivery::process::{process_batch, Outcome};
use auditstream::delivery::retry::{Deadline, RetryPolicy};
use auditstream::destinations::s3::{S3Settings, S3Store};
use auditstream::intake::lambda::SqsFunction;
use auditstream::integrity::checksum::Sha256Sum;
use auditstream::integrity::manifest::{Manifest, ManifestEntry};
use auditstream::pipeline::key::KeyPrefix;
use auditstream::pipeline::{Pipeline, PipelineConfig};
use auditstream_e2e::sqs_events::{failed_ids, lambda_event, messages, sample_event};
use auditstream_e2e::{create_bucket, moto_env, moto_s3_client, moto_sdk_config, unique_name, workspace_bin, workspace_root, LambdaFunction};
use serde_json::{json, Value};

/// The malformed record of `events/sqs-mixed-batch.json`.
const MALFORMED: &str = "4d1e7a20-5f6b-4c8d-9e0f-1a2b3c4d5e06";

/// The five objects the sample events of the mixed batch become (Workato's job layout; our
/// activity layout).
const SAMPLE_KEYS: [&str; 5] = [
    "33359/jobs/1004057/20261125/j-AEcaPq12-FaIl01/33359-1004057-j-AEcaPq12-FaIl01-20261125053046-failed.json",
    "33359/jobs/3026581/20261125/j-AEcaNzd9-dGQ4Bf/33359-3026581-j-AEcaNzd9-dGQ4Bf-20261125053046-succeeded.json",
    "33359/jobs/3026590/20261125/j-AEcaMk55-MaSk01/33359-3026590-j-AEcaMk55-MaSk01-20261125053046-succeeded.json",
    "4848/activities/20261125/123456789/4848-user_login-123456789-20261125101530.json",
    "4848/activities/20261125/hf30214978c546ecf6f15/4848-recipe_stopped-hf30214978c546ecf6f15-20261125195506.json",
];

/// The object `events/sqs-other-event.json` becomes: an API request log, neither a job nor an
/// activity, in the `other` stream (our layout: workspace, date, request id, time, digest).
const OTHER_SAMPLE_KEY: &str =
    "4848/other/20261125/0f8e4a2c-7b1d-4e6f-9a3c-5d2b1e0f7a91/4848-other-0f8e4a2c-7b1d-4e6f-9a3c-5d2b1e0f7a91-20261125101602-hf7040688cddf79401b30.json";

/// The time left to an invocation of the handler.
const MINUTE: Duration = Duration::from_secs(60);

/// Every object the files of `events/` become.
fn every_sample_key() -> BTreeSet<String> {
    SAMPLE_KEYS.iter().chain([&OTHER_SAMPLE_KEY]).map(|k| k.to_string()).collect()
}

async fn s3_function(bucket: &str, prefix: &str) -> SqsFunction<ObjectStoreDestination<S3Store>> {
    let aws = moto_sdk_config().await;
    let settings = S3Settings {
        bucket: bucket.to_owned(),
        prefix: KeyPrefix::new(prefix).unwrap_or_else(|e| panic!("{e}")),
        sse_kms_key_id: None,
        attempt_timeout: S3_ATTEMPT_TIMEOUT,
    };
    let pipeline = Pipeline::new(PipelineConfig { key_prefix: settings.prefix.clone(), ..PipelineConfig::default() });
    let destination = ObjectStoreDestination::new(S3Store::new(s3_client(&aws), settings), 8, RetryPolicy::default());
    SqsFunction::new("s3-writer", pipeline, destination)
}

/// The keys of the events in a bucket: everything but the integrity records (`_auditstream/`).
async fn keys(bucket: &str) -> BTreeSet<String> {
    all_keys(bucket).await.into_iter().filter(|k| !k.contains("_auditstream/")).collect()
}

async fn all_keys(bucket: &str) -> BTreeSet<String> {
    let out = moto_s3_client().list_objects_v2().bucket(bucket).send().await.unwrap_or_else(|e| panic!("listing {bucket}: {e:?}"));
    out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
}

async fn object(bucket: &str, key: &str) -> (String, Value, String) {
    let out = moto_s3_client().get_object().bucket(bucket).key(key).send().await.unwrap_or_else(|e| panic!("get {key}: {e:?}"));
    let content_type = out.content_type().unwrap_or_default().to_owned();
    let etag = out.e_tag().unwrap_or_default().to_owned();
    let bytes = out.body.collect().await.unwrap_or_else(|e| panic!("{e}")).into_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{key} is not JSON: {e}"));
    (content_type, body, etag)
}

#[tokio::test]
async fn the_mixed_batch_becomes_one_object_per_event_and_the_malformed_message_fails_alone() {
    let s3 = moto_s3_client();
    let bucket = create_bucket(&s3, "spine").await;
    let function = s3_function(&bucket, "").await;

    let response = function.handle(lambda_event(sample_event("sqs-mixed-batch.json"), MINUTE)).await.unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(failed_ids(&response), [MALFORMED], "only the malformed message is reported");
    assert_eq!(keys(&bucket).await, SAMPLE_KEYS.iter().map(|k| k.to_string()).collect::<BTreeSet<_>>());
    for key in SAMPLE_KEYS {
        let (content_type, _, _) = object(&bucket, key).await;
        assert_eq!(content_type, "application/json", "{key}");
    }
    // masked: the masked line's data never reached S3, the other lines are intact
    let (_, masked, _) = object(&bucket, SAMPLE_KEYS[2]).await;
    assert_eq!(masked["lines"][1]["input"], json!({"data": "masked"}));
    assert_eq!(masked["lines"][1]["output"], json!({"data": "masked"}));
    assert_eq!(masked["lines"][1]["adapter_name"], "workday");
    assert_eq!(masked["lines"][0]["output"]["employee_id"], "E-1001");
    // the failed job's error document has its input redacted, whatever it held
    let (_, failed, _) = object(&bucket, SAMPLE_KEYS[0]).await;
    let error: Value = serde_json::from_str(failed["error"].as_str().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(error["input"], "<redacted>");
    for key in SAMPLE_KEYS {
        let (_, body, _) = object(&bucket, key).await;
        assert!(!body.to_string().contains("078-05-1120"), "{key} carries masked data");
    }
}

#[tokio::test]
async fn a_prefix_is_put_in_front_of_every_key() {
    let s3 = moto_s3_client();
    let bucket = create_bucket(&s3, "spine-prefix").await;
    let function = s3_function(&bucket, "workato/audit").await;

    let response = function.handle(lambda_event(sample_event("sqs-user-login.json"), MINUTE)).await.unwrap_or_else(|e| panic!("{e}"));

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(keys(&bucket).await, BTreeSet::from([format!("workato/audit/{}", SAMPLE_KEYS[3])]));
}

#[tokio::test]
async fn every_object_carries_its_sha256_and_each_batch_writes_a_manifest_listing_what_it_wrote_or_found() {
    let s3 = moto_s3_client();
    let bucket = create_bucket(&s3, "integrity").await;
    let function = s3_function(&bucket, "").await;
    let batch = sample_event("sqs-mixed-batch.json");

    function.handle(lambda_event(batch.clone(), MINUTE)).await.unwrap_or_else(|e| panic!("{e}"));
    let mut expected = Vec::new();
    for key in SAMPLE_KEYS {
        let body = s3
            .get_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"))
            .body
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_bytes();
        let attributes = s3
            .get_object_attributes()
            .bucket(&bucket)
            .key(key)
            .object_attributes(aws_sdk_s3::types::ObjectAttributes::Checksum)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let kept = attributes.checksum().and_then(|c| c.checksum_sha256()).unwrap_or_else(|| panic!("{key} has no SHA-256 checksum"));
        assert_eq!(Sha256Sum::from_base64(kept), Some(Sha256Sum::of(&body)), "{key}: S3 keeps the SHA-256 of the body");
        expected.push(ManifestEntry { key: key.to_owned(), size: body.len() as u64, sha256: Sha256Sum::of(&body) });
    }
    expected.sort_by(|a, b| a.key.cmp(&b.key));

    let manifests = |all: BTreeSet<String>| all.into_iter().filter(|k| k.starts_with("_auditstream/manifests/")).collect::<Vec<_>>();
    let first = manifests(all_keys(&bucket).await);
    assert_eq!(first.len(), 1, "one manifest for the batch: {first:?}");
    let listed = |key: String| {
        let s3 = s3.clone();
        let bucket = bucket.clone();
        async move {
            let bytes = s3
                .get_object()
                .bucket(&bucket)
                .key(&key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e:?}"))
                .body
                .collect()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .into_bytes();
            let mut objects = Manifest::parse(&key, &bytes).unwrap_or_else(|e| panic!("{e}")).objects;
            objects.sort_by(|a, b| a.key.cmp(&b.key));
            objects
        }
    };
    assert_eq!(listed(first[0].clone()).await, expected);

    // The redelivery finds every object: its manifest lists them with the checksums S3 kept.
    function.handle(lambda_event(batch.clone(), MINUTE)).await.unwrap_or_else(|e| panic!("{e}"));
    let both = manifests(all_keys(&bucket).await);
    assert_eq!(both.len(), 2, "{both:?}");
    let second = both.into_iter().find(|k| k != &first[0]).unwrap_or_default();
    assert_eq!(listed(second).await, expected);
}

#[tokio::test]
async fn a_redelivered_batch_writes_no_second_object() {
    let s3 = moto_s3_client();
    let bucket = create_bucket(&s3, "spine-redelivery").await;
    s3.put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(aws_sdk_s3::types::VersioningConfiguration::builder().status(aws_sdk_s3::types::BucketVersioningStatus::Enabled).build())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let function = s3_function(&bucket, "").await;
    let batch = sample_event("sqs-mixed-batch.json");

    function.handle(lambda_event(batch.clone(), MINUTE)).await.unwrap_or_else(|e| panic!("{e}"));
    let first: Vec<String> = futures::future::join_all(SAMPLE_KEYS.iter().map(|k| object(&bucket, k))).await.into_iter().map(|(_, _, etag)| etag).collect();
    let again = function.handle(lambda_event(batch.clone(), MINUTE)).await.unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(failed_ids(&again), [MALFORMED], "duplicates are successes");
    let versions = s3.list_object_versions().bucket(&bucket).send().await.unwrap_or_else(|e| panic!("{e:?}"));
    let event_versions = versions.versions().iter().filter(|v| !v.key().unwrap_or_default().starts_with("_auditstream/")).count();
    assert_eq!(event_versions, SAMPLE_KEYS.len(), "a versioned bucket shows no second version of any object");
    let second: Vec<String> = futures::future::join_all(SAMPLE_KEYS.iter().map(|k| object(&bucket, k))).await.into_iter().map(|(_, _, etag)| etag).collect();
    assert_eq!(first, second);

    // counted as duplicates, not as writes
    let report = process_batch(&function.pipeline, &function.destination, messages(&batch), Deadline::NONE).await;
    assert_eq!((report.counts.written, report.counts.duplicates, report.counts.failed()), (0, 5, 1));
}

#[tokio::test]
async fn a_missing_bucket_gives_every_message_a_clear_failure() {
    let bucket = unique_name("no-such-bucket");
    let function = s3_function(&bucket, "").await;
    let batch = sample_event("sqs-mixed-batch.json");

    let response = function.handle(lambda_event(batch.clone(), MINUTE)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(failed_ids(&response).len(), 6, "every message is reported: {response:?}");

    let report = process_batch(&function.pipeline, &function.destination, messages(&batch), Deadline::NONE).await;
    for (id, outcome) in &report.outcomes {
        let Outcome::Failed(failure) = outcome else { panic!("{id}: {outcome:?}") };
        let text = failure.to_string();
        if id == MALFORMED {
            assert!(text.starts_with("body is not valid JSON"), "{text}");
            continue;
        }
        assert!(failure.is_permanent(), "{id}: a missing bucket is not worth retrying: {text}");
        assert!(text.starts_with(&format!("s3://{bucket}/")), "{text}");
        assert!(text.contains("NoSuchBucket") && text.contains("does the bucket exist"), "{text}");
    }
}

#[tokio::test]
async fn the_built_function_answers_every_sample_event() {
    let s3 = moto_s3_client();
    let bucket = create_bucket(&s3, "spine-built").await;
    let lambda = LambdaFunction::new(workspace_bin("s3-writer", "s3-writer"))
        .function_name("s3-writer")
        .envs(moto_env())
        .env("AUDITSTREAM_S3_BUCKET", bucket.clone())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));

    let mut names: Vec<String> = std::fs::read_dir(workspace_root().join("events"))
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    for name in &names {
        let response = lambda
            .invoke_file(workspace_root().join("events").join(name), Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}\nstderr: {}", lambda.stderr()));
        let want =
            if name == "sqs-mixed-batch.json" { json!({"batchItemFailures": [{"itemIdentifier": MALFORMED}]}) } else { json!({"batchItemFailures": []}) };
        assert_eq!(response, want, "{name}");
    }
    assert_eq!(keys(&bucket).await, every_sample_key());

    // one EMF line per batch, naming the function and counting what happened
    let emf = lambda
        .stdout()
        .lines()
        .filter(|l| l.contains("\"_aws\""))
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect::<Vec<_>>();
    assert_eq!(emf.len(), names.len(), "stdout:\n{}", lambda.stdout());
    let mixed = emf.iter().find(|m| m["Received"] == 6).unwrap_or_else(|| panic!("no EMF line for the mixed batch: {emf:?}"));
    // the single-event files come first in name order only for some of the five events
    let (written, duplicates) = (mixed["Written"].as_u64().unwrap_or(0), mixed["Duplicates"].as_u64().unwrap_or(0));
    assert_eq!((written + duplicates, mixed["Failed"].as_u64(), mixed["FunctionName"].as_str()), (5, Some(1), Some("s3-writer")));
    assert!(duplicates >= 1, "{mixed}");
    // the failure is logged with its message id, and no masked data is logged
    let logs = lambda.stderr();
    assert!(logs.lines().any(|l| l.contains(MALFORMED) && l.contains("not valid JSON")), "{logs}");
    assert!(!logs.contains("078-05-1120") && !lambda.stdout().contains("078-05-1120"));
}

#[tokio::test]
async fn the_built_function_stops_at_init_naming_a_missing_variable() {
    let lambda =
        LambdaFunction::new(workspace_bin("s3-writer", "s3-writer")).function_name("s3-writer").envs(moto_env()).spawn().unwrap_or_else(|e| panic!("{e}"));
    let err = lambda.invoke_file(workspace_root().join("events/sqs-user-login.json"), Duration::from_secs(30)).await.expect_err("no bucket configured");
    assert!(err.to_string().contains("AUDITSTREAM_S3_BUCKET is not set"), "{err}");
}

#[tokio::test]
async fn auditstream_run_writes_the_same_objects_to_a_directory_and_to_s3() {
    let cli = workspace_bin("auditstream-cli", "auditstream");
    let dir = std::env::temp_dir().join(unique_name("spine-cli"));
    let run = |args: Vec<String>| std::process::Command::new(&cli).args(args).envs(moto_env()).output().unwrap_or_else(|e| panic!("{e}"));

    let out = run(vec!["run".into(), "--to".into(), format!("dir:{}", dir.display()), workspace_root().join("events").display().to_string()]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "one event failed\n{stdout}\n{stderr}");
    assert!(stdout.contains("12 read, 6 written, 5 duplicates, 0 filtered, 2 masked lines, 0 truncated, 1 failed"), "{stdout}");
    assert!(stderr.contains(&format!("failed {MALFORMED}: body is not valid JSON")), "{stderr}");
    for key in every_sample_key() {
        let text = std::fs::read_to_string(dir.join(&key)).unwrap_or_else(|e| panic!("{key}: {e}"));
        serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{key}: {e}"));
    }

    let s3 = moto_s3_client();
    let bucket = create_bucket(&s3, "spine-cli").await;
    let out = run(vec!["run".into(), "--to".into(), format!("s3://{bucket}/p"), workspace_root().join("events/sqs-job-succeeded.json").display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(keys(&bucket).await, BTreeSet::from([format!("p/{}", SAMPLE_KEYS[1])]));
    let local = std::fs::read(dir.join(SAMPLE_KEYS[1])).unwrap_or_else(|e| panic!("{e}"));
    let remote = s3
        .get_object()
        .bucket(&bucket)
        .key(format!("p/{}", SAMPLE_KEYS[1]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
        .body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_bytes();
    assert_eq!(local, remote.to_vec(), "the directory is laid out, byte for byte, as the bucket");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn auditstream_run_matches_type_filters_whatever_their_case_and_refuses_a_list_it_cannot_read() {
    let cli = workspace_bin("auditstream-cli", "auditstream");
    let dir = std::env::temp_dir().join(unique_name("filters-cli"));
    let login = workspace_root().join("events/sqs-user-login.json");
    let run = |var: &str, value: &str| {
        let out = std::process::Command::new(&cli)
            .args(["run", "--to", &format!("dir:{}", dir.display()), &login.display().to_string()])
            .env(var, value)
            .env("NO_COLOR", "1")
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };

    // USER_LOGIN selects user_login, user selects User
    let (code, stdout, stderr) = run("AUDITSTREAM_INCLUDE_EVENT_TYPES", "USER_LOGIN");
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 read, 1 written"), "{stdout}");
    assert!(!stderr.contains("WARN"), "a documented name, whatever its case, is no cause for a warning: {stderr}");
    let (code, stdout, stderr) = run("AUDITSTREAM_EXCLUDE_RESOURCE_TYPES", "user");
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 read, 0 written, 0 duplicates, 1 filtered"), "{stdout}");

    // another separator: refused at start, naming the variable
    let (code, stdout, stderr) = run("AUDITSTREAM_INCLUDE_EVENT_TYPES", "user_login;user_logout");
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("AUDITSTREAM_INCLUDE_EVENT_TYPES=\"user_login;user_logout\" is not valid"), "{stderr}");

    // an unknown name: applied (nothing matches it), warned about once, with the closest known name
    let (code, stdout, stderr) = run("AUDITSTREAM_INCLUDE_EVENT_TYPES", "user_logn");
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 read, 0 written, 0 duplicates, 1 filtered"), "{stdout}");
    let warning = "AUDITSTREAM_INCLUDE_EVENT_TYPES names \"user_logn\", which is no event type Workato documents (the closest is \"user_login\")";
    assert_eq!(stderr.matches(warning).count(), 1, "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's local invoke, run for real: `cargo lambda watch` builds and starts `s3-writer` under
/// Cargo Lambda's Runtime API emulator, which gives every invocation the deadline 600000 ms (1970);
/// `cargo lambda invoke` sends `events/sqs-mixed-batch.json`. The commands are read from the README
/// (only the bucket and the port differ), and what the invoke prints must be what the README shows:
/// only the malformed message reported, the five events written, none abandoned.
#[tokio::test]
async fn the_readmes_cargo_lambda_example_writes_the_sample_batch() {
    use auditstream_e2e::cargo_lambda::{cargo_lambda, free_port, ReadmeExample, Watch};
    let Some(cargo_lambda) = cargo_lambda() else { return };
    let started = std::time::Instant::now();
    let example = ReadmeExample::read("## Invoking the functions locally");
    let [watch, invoke] = <[_; 2]>::try_from(example.commands.clone()).unwrap_or_else(|c| panic!("the README's example should be two commands: {c:?}"));
    assert!(
        watch.display().contains("cargo lambda watch") && invoke.display().contains("cargo lambda invoke s3-writer --data-file events/sqs-mixed-batch.json"),
        "{example:?}"
    );

    let bucket = create_bucket(&moto_s3_client(), "cargo-lambda").await;
    let port = free_port().to_string();
    let (watch, invoke) = (watch.replacing("my-audit-bucket", &bucket).replacing("9000", &port), invoke.replacing("9000", &port));
    let bin_dir = cargo_lambda.parent().unwrap_or_else(|| panic!("{}", cargo_lambda.display())).to_path_buf();
    let log = std::env::temp_dir().join(format!("{}.log", unique_name("cargo-lambda-watch")));
    let running = Watch::start(watch.command(&bin_dir, &moto_env()), port.parse().unwrap_or(9000), log);

    let mut answers = Vec::new();
    for _ in 0..2 {
        let out = invoke.command(&bin_dir, &[]).output().unwrap_or_else(|e| panic!("{}: {e}", invoke.display()));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{} failed ({}):\n{stdout}\n{}\nwatch:\n{}",
            invoke.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            running.output()
        );
        answers.push(stdout);
    }
    let took = started.elapsed();

    // What the README shows, the first time and when SQS delivers the batch again.
    let shown = example.output.join("\n");
    for answer in &answers {
        assert_eq!(answer.trim(), shown.trim(), "watch:\n{}", running.output());
    }
    let response: Value = serde_json::from_str(answers[0].trim()).unwrap_or_else(|e| panic!("{}: {e}", answers[0]));
    assert_eq!(response, json!({"batchItemFailures": [{"itemIdentifier": MALFORMED}]}));
    assert_eq!(keys(&bucket).await, SAMPLE_KEYS.iter().map(|k| k.to_string()).collect::<BTreeSet<_>>());
    // the impossible deadline was noticed once, not taken at its word
    let logs = running.output();
    assert_eq!(logs.matches("had already passed when it started").count(), 1, "{logs}");
    assert!(!logs.contains("abandoned"), "{logs}");
    eprintln!("the README's cargo-lambda example: {took:?} (cargo lambda watch, two invokes)");
}

#[tokio::test]
async fn auditstream_run_writes_an_event_of_another_stream_and_an_event_with_a_400_byte_id() {
    let cli = workspace_bin("auditstream-cli", "auditstream");
    let work = std::env::temp_dir().join(unique_name("spine-edges"));
    let out_dir = work.join("out");
    std::fs::create_dir_all(&work).unwrap_or_else(|e| panic!("{e}"));
    // an API platform request log (neither a job nor an activity), and a job whose id is longer
    // than a file name may be
    let other = r#"{"request_id":"req-7f3a","workspace_id":4848,"timestamp":"2026-11-25T10:15:30Z","method":"GET","path":"/api/v1/users","status":200}"#;
    let long_id = format!("j-{}", "x".repeat(398));
    let job = format!(
        r#"{{"id":"{long_id}","recipe_id":3026581,"status":"succeeded","started_at":"2026-11-25T05:30:40Z","completed_at":"2026-11-25T05:30:46Z","context":{{"user_id":33359}}}}"#
    );
    let input = work.join("events.ndjson");
    std::fs::write(&input, format!("{other}\n{job}\n")).unwrap_or_else(|e| panic!("{e}"));
    let run = || {
        std::process::Command::new(&cli).args(["run", "--to"]).arg(format!("dir:{}", out_dir.display())).arg(&input).output().unwrap_or_else(|e| panic!("{e}"))
    };

    let out = run();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("2 read, 2 written, 0 duplicates, 0 filtered, 0 masked lines, 0 truncated, 0 failed"), "{stdout}\n{stderr}");

    // each file is where the pipeline's key says, with the event in it
    let pipeline = Pipeline::new(PipelineConfig::default());
    let now = auditstream::pipeline::timestamp::Now::capture();
    let expected =
        [(other.to_owned(), "4848/other/20261125/req-7f3a/4848-other-req-7f3a-20261125101530-h"), (job.clone(), "33359/jobs/3026581/20261125/j-xxx")];
    for (event, key_start) in expected {
        let auditstream::pipeline::Prepared::Ready(doc) = pipeline.prepare(&event, now).unwrap_or_else(|e| panic!("{e}")) else { panic!("filtered") };
        let key = doc.key.as_str();
        assert!(key.starts_with(key_start), "{key}");
        assert!(key.split('/').all(|segment| segment.len() <= 255), "{key}");
        let written = std::fs::read_to_string(out_dir.join(key)).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(written, event);
    }
    // the same again writes nothing new: the long id's shortened name is stable
    let out = run();
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 read, 0 written, 2 duplicates"), "{}", String::from_utf8_lossy(&out.stdout));
    let _ = std::fs::remove_dir_all(&work);
}

/// An S3 endpoint that takes each request and never answers holds no one: each attempt ends at
/// `AUDITSTREAM_S3_TIMEOUT_SECS` as transient, the retry policy tries again, and the event then
/// fails, named, with the command's exit 1. Before the SDK's attempts were bounded, `auditstream
/// run` (which has no Lambda deadline) waited for the answer forever.
#[test]
fn auditstream_run_to_an_s3_endpoint_that_never_answers_fails_the_event_in_bounded_time() {
    use std::io::Read;
    use std::process::Stdio;
    use std::time::Instant;

    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let endpoint = format!("http://{}", silent.local_addr().unwrap_or_else(|e| panic!("{e}")));
    std::thread::spawn(move || {
        for connection in silent.incoming().flatten() {
            // Read the request, as a stuck server would, and never answer.
            std::thread::spawn(move || std::io::copy(&mut { connection }.take(u64::MAX), &mut std::io::sink()));
        }
    });

    let started = Instant::now();
    let mut child = std::process::Command::new(workspace_bin("auditstream-cli", "auditstream"))
        .args(["run", "--to", "s3://silent-bucket/p"])
        .arg(workspace_root().join("events/sqs-job-succeeded.json"))
        .envs([("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_REGION", "us-east-1")])
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AUDITSTREAM_S3_TIMEOUT_SECS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let limit = Duration::from_secs(90);
    while child.try_wait().unwrap_or_else(|e| panic!("{e}")).is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("auditstream run still waited for an S3 answer after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "the event failed\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 failed"), "{stdout}");
    assert!(stderr.contains(&format!("s3://silent-bucket/p/{}", SAMPLE_KEYS[1])), "the object is named\n{stderr}");
    assert!(stderr.contains("timeout") || stderr.contains("timed out"), "the cause is said\n{stderr}");
}
