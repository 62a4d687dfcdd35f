//! The tamper-evident archive end to end (docs/integrity.md): a few hundred events into S3 on moto
//! (objects with SHA-256 checksums, a manifest per batch), `auditstream digest` signing with a real
//! KMS key on moto, `auditstream verify` passing; then each tampering — an object deleted, changed or
//! added, a manifest deleted, a digest altered, an hour dropped — named by `verify`, which exits 1.
//! A batch that stopped between its objects and its manifest still verifies after its redelivery.
//! The same on a `dir:` archive signed with a local Ed25519 key. And the built digest function,
//! run by its schedule's event under the Lambda Runtime API emulator.

use std::path::Path;
use std::process::Output;

use auditstream::aws::s3::{s3_client, S3_ATTEMPT_TIMEOUT};
use auditstream::delivery::destination::{ObjectStore, ObjectStoreDestination};
use auditstream::delivery::process::{process_batch, InboundMessage};
use auditstream::delivery::retry::{Deadline, RetryPolicy};
use auditstream::destinations::s3::{S3Settings, S3Store};
use auditstream::integrity::archive::Archive;
use auditstream::integrity::checksum::Sha256Sum;
use auditstream::integrity::digest::default_until;
use auditstream::integrity::layout;
use auditstream::integrity::manifest::{Manifest, ManifestEntry};
use auditstream::pipeline::key::KeyPrefix;
use auditstream::pipeline::timestamp::UtcTime;
use auditstream::pipeline::{Pipeline, PipelineConfig, Prepared};
use auditstream_e2e::{create_bucket, moto_env, moto_s3_client, moto_sdk_config, unique_name, workspace_bin};

fn job(n: usize) -> String {
    format!(
        r#"{{"id":"j-{n:04}","recipe_id":{},"status":"succeeded","account_id":42,"completed_at":"2026-11-25T10:{:02}:{:02}Z","lines":[{{"input":{{"n":{n}}}}}]}}"#,
        n % 7,
        n / 60 % 60,
        n % 60
    )
}

/// The command, built once. `workspace_bin` already hands out this checkout's own copy of it, so
/// a build in another checkout sharing the target directory cannot swap it between the steps of a
/// test (and nothing is left behind in the temporary directory).
fn auditstream() -> &'static Path {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| workspace_bin("auditstream-cli", "auditstream"))
}

fn cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = std::process::Command::new(auditstream()).args(args).envs(moto_env()).envs(env.iter().copied()).output().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("auditstream {}:\n{}{}", args.join(" "), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Digest keys are named by the second their interval ends: phases a second apart get one each.
fn next_second() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

async fn s3_destination(bucket: &str) -> ObjectStoreDestination<S3Store> {
    let aws = moto_sdk_config().await;
    let settings = S3Settings { bucket: bucket.to_owned(), prefix: KeyPrefix::default(), sse_kms_key_id: None, attempt_timeout: S3_ATTEMPT_TIMEOUT };
    ObjectStoreDestination::new(S3Store::new(s3_client(&aws), settings), 16, RetryPolicy::default())
}

async fn deliver(destination: &ObjectStoreDestination<S3Store>, events: std::ops::Range<usize>) {
    let messages = events.map(|n| InboundMessage::new(format!("m{n}"), job(n))).collect();
    let report = process_batch(&Pipeline::new(PipelineConfig::default()), destination, messages, Deadline::NONE).await;
    assert_eq!(report.counts.failed(), 0, "{:?}", report.outcomes);
}

async fn keys(bucket: &str, prefix: &str) -> Vec<String> {
    let out = moto_s3_client().list_objects_v2().bucket(bucket).prefix(prefix).send().await.unwrap_or_else(|e| panic!("{e:?}"));
    out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
}

#[tokio::test]
async fn an_s3_archive_signed_with_kms_verifies_and_every_tampering_is_named() {
    let s3 = moto_s3_client();
    let bucket = create_bucket(&s3, "integrity").await;
    let kms = aws_sdk_kms::Client::new(&moto_sdk_config().await);
    let key = kms
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let key_arn = key.key_metadata().map(|m| m.arn().unwrap_or_default().to_owned()).unwrap_or_default();
    let env = [("AUDITSTREAM_DIGEST_KMS_KEY_ID", key_arn.as_str())];
    let archive = format!("s3://{bucket}");
    let destination = s3_destination(&bucket).await;

    // Three phases, each a few batches then a digest: 300 events in 6 batches, 3 digests.
    for phase in 0..3 {
        deliver(&destination, phase * 100..phase * 100 + 50).await;
        deliver(&destination, phase * 100 + 50..phase * 100 + 100).await;
        if phase == 2 {
            // A batch that stopped after its objects, before its manifest: the objects are there ...
            let pipeline = Pipeline::new(PipelineConfig::default());
            for n in 300..310 {
                let Ok(Prepared::Ready(doc)) = pipeline.prepare(&job(n), auditstream::pipeline::timestamp::Now::capture()) else { panic!("j-{n}") };
                destination.store().put_new(&doc.key, doc.body.into()).await.unwrap_or_else(|e| panic!("{e}"));
            }
            // ... and SQS redelivers its messages: duplicates, recorded in this batch's manifest.
            deliver(&destination, 300..310).await;
        }
        next_second();
        let out = cli(&["digest", &archive, "--until", "now"], &env);
        assert!(out.status.success(), "{:?}", text(&out));
        next_second();
    }
    let digests: Vec<String> = keys(&bucket, "_auditstream/digests/").await.into_iter().filter(|k| k.ends_with(".json")).collect();
    // three, or four when the phases straddle a full hour (a digest ends at each)
    assert!((3..=4).contains(&digests.len()), "{digests:?}");
    assert_eq!(keys(&bucket, "_auditstream/manifests/").await.len(), 7, "one manifest per batch");

    let out = cli(&["verify", &archive], &env);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains(", 7 manifests, 310 objects checked: intact"), "{stdout}");

    // The public key as an auditor has it, from KMS, works the same.
    let public = kms.get_public_key().key_id(&key_arn).send().await.unwrap_or_else(|e| panic!("{e:?}"));
    let pem_path = std::env::temp_dir().join(format!("{}.der", unique_name("integrity-pub")));
    std::fs::write(&pem_path, public.public_key().map(|b| b.as_ref().to_vec()).unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
    let out = cli(&["verify", &archive, "--public-key", &pem_path.display().to_string()], &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));

    // Each tampering, at once, each named.
    let objects: Vec<String> = keys(&bucket, "42/").await;
    let get = |key: String| {
        let s3 = s3.clone();
        let bucket = bucket.clone();
        async move {
            s3.get_object()
                .bucket(&bucket)
                .key(&key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e:?}"))
                .body
                .collect()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .into_bytes()
                .to_vec()
        }
    };
    let manifests = keys(&bucket, "_auditstream/manifests/").await;
    let deleted = objects[0].clone();
    let changed = objects[1].clone();
    let added = "42/jobs/1/20261125/j-9999/42-1-j-9999-20261125100000-succeeded.json".to_owned();
    // the manifest of the last phase's first batch, and a digest with a successor to name it
    let manifest = manifests[manifests.len() - 3].clone();
    let altered = digests[digests.len() - 2].clone();
    s3.delete_object().bucket(&bucket).key(&deleted).send().await.unwrap_or_else(|e| panic!("{e:?}"));
    let mut body = get(changed.clone()).await;
    body.extend_from_slice(b" ");
    // (a new checksum, as S3 would keep for a new body)
    s3.put_object()
        .bucket(&bucket)
        .key(&changed)
        .body(body.into())
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    s3.put_object().bucket(&bucket).key(&added).body(b"{}".to_vec().into()).send().await.unwrap_or_else(|e| panic!("{e:?}"));
    s3.delete_object().bucket(&bucket).key(&manifest).send().await.unwrap_or_else(|e| panic!("{e:?}"));
    let mut digest = get(altered.clone()).await;
    digest.extend_from_slice(b"\n");
    s3.put_object().bucket(&bucket).key(&altered).body(digest.into()).send().await.unwrap_or_else(|e| panic!("{e:?}"));
    // The added object is caught once its interval is digested, as everything is.
    next_second();
    let out = cli(&["digest", &archive, "--until", "now"], &env);
    assert!(out.status.success(), "{:?}", text(&out));

    let out = cli(&["verify", &archive], &env);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    for named in [
        format!("object deleted: {deleted}"),
        format!("object changed: {changed}"),
        format!("object in no manifest: {added}"),
        format!("manifest missing: {manifest}"),
        format!("digest altered: {altered}"),
    ] {
        assert!(stderr.contains(&named), "{named} not in\n{stderr}");
    }
    assert!(stdout.ends_with("problems\n"), "{stdout}");

    // An hour dropped: the first digest with everything it covers.
    let first = digests[0].clone();
    for key in [first.clone(), format!("{first}.sig")] {
        s3.delete_object().bucket(&bucket).key(&key).send().await.unwrap_or_else(|e| panic!("{e:?}"));
    }
    let out = cli(&["verify", &archive, "--since", "2000-01-01T00:00:00Z"], &env);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains(&format!("digest missing: {first}")), "{stderr}");
    let _ = std::fs::remove_file(pem_path);
}

#[test]
fn a_dir_archive_signed_with_a_local_key_verifies_and_every_tampering_is_named() {
    let work = std::env::temp_dir().join(unique_name("integrity-dir"));
    let events = work.join("events.ndjson");
    std::fs::create_dir_all(&work).unwrap_or_else(|e| panic!("{e}"));
    let archive_dir = work.join("archive");
    let archive = format!("dir:{}", archive_dir.display());
    let key_file = work.join("keys/digest.pem");
    let key_arg = key_file.display().to_string();
    for phase in 0..2 {
        let lines: Vec<String> = (phase * 100..phase * 100 + 100).map(job).collect();
        std::fs::write(&events, lines.join("\n")).unwrap_or_else(|e| panic!("{e}"));
        let out = cli(&["run", "--to", &archive, &events.display().to_string()], &[]);
        assert!(out.status.success(), "{:?}", text(&out));
        next_second();
        let out = cli(&["digest", &archive, "--until", "now", "--key-file", &key_arg], &[]);
        assert!(out.status.success(), "{:?}", text(&out));
        next_second();
    }
    assert!(Path::new(&format!("{key_arg}.pub.pem")).is_file(), "the public half is beside the key");
    let out = cli(&["verify", &archive, "--key-file", &key_arg], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains(", 200 objects checked: intact"), "{stdout}");
    let out = cli(&["verify", &archive, "--public-key", &format!("{key_arg}.pub.pem")], &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));

    let find = |dir: &Path, suffix: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(d) = pending.pop() {
            for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if entry.path().is_dir() {
                    pending.push(entry.path());
                } else if entry.path().display().to_string().ends_with(suffix) {
                    out.push(entry.path().strip_prefix(&archive_dir).map(|p| p.display().to_string()).unwrap_or_default());
                }
            }
        }
        out.sort();
        out
    };
    let objects = find(&archive_dir.join("42"), ".json");
    let digests = find(&archive_dir.join("_auditstream/digests"), ".json");
    let manifests = find(&archive_dir.join("_auditstream/manifests"), ".json");
    assert_eq!(objects.len(), 200);
    assert!((2..=3).contains(&digests.len()), "{digests:?}");
    let at = |key: &str| archive_dir.join(key);
    std::fs::remove_file(at(&objects[0])).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(at(&objects[1]), b"{\"forged\":true}").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(at("42/jobs/added.json"), b"{}").unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_file(at(&manifests[manifests.len() - 1])).unwrap_or_else(|e| panic!("{e}"));
    let mut digest = std::fs::read(at(&digests[0])).unwrap_or_else(|e| panic!("{e}"));
    digest.push(b'\n');
    std::fs::write(at(&digests[0]), digest).unwrap_or_else(|e| panic!("{e}"));
    next_second();
    let out = cli(&["digest", &archive, "--until", "now", "--key-file", &key_arg], &[]);
    assert!(out.status.success(), "{:?}", text(&out));

    let out = cli(&["verify", &archive, "--key-file", &key_arg], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    for named in [
        format!("object deleted: {}", objects[0]),
        format!("object changed: {}", objects[1]),
        "object in no manifest: 42/jobs/added.json".to_owned(),
        format!("manifest missing: {}", manifests[manifests.len() - 1]),
        format!("digest altered: {}", digests[0]),
    ] {
        assert!(stderr.contains(&named), "{named} not in\n{stderr}");
    }
    // an hour dropped: the first digest gone
    std::fs::remove_file(at(&digests[0])).unwrap_or_else(|e| panic!("{e}"));
    let out = cli(&["verify", &archive, "--key-file", &key_arg], &[]);
    assert!(text(&out).1.contains(&format!("digest missing: {}", digests[0])), "{:?}", text(&out));
    let _ = std::fs::remove_dir_all(work);
}

/// An EventBridge scheduled rule's event, as the template's hourly schedule sends it.
fn scheduled_event(at: UtcTime) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": "5f4b9f61-4c5e-4d1f-9d1b-1e4f2a1c3b2a", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": layout::iso(at).replace(".000Z", "Z"), "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/auditstream-DigestFunctionHourly"], "detail": {}
    })
}

/// A batch as the writer leaves it at `at`: its objects (each with its S3 SHA-256), then its manifest.
async fn batch_at(store: &S3Store, at: UtcTime, events: std::ops::Range<usize>) {
    let events_start = events.start;
    let pipeline = Pipeline::new(PipelineConfig { key_prefix: store.key_prefix().clone(), ..PipelineConfig::default() });
    let mut entries = Vec::new();
    for n in events {
        let Ok(Prepared::Ready(doc)) = pipeline.prepare(&job(n), auditstream::pipeline::timestamp::Now::capture()) else { panic!("j-{n}") };
        let sha256 = Sha256Sum::of(&doc.body);
        let (_, recorded) = store.put_new_recorded(&doc.key, doc.body.into(), sha256).await.unwrap_or_else(|e| panic!("{e}"));
        entries.push(ManifestEntry { key: doc.key.to_string(), size: recorded.size, sha256: recorded.sha256 });
    }
    let key = layout::manifest_key(store.key_prefix(), at, events_start as u64);
    assert!(store.put_record(&key, Manifest::new(layout::iso(at), entries).to_json()).await.unwrap_or_else(|e| panic!("{e}")));
}

async fn signing_key(kms: &aws_sdk_kms::Client, usage: aws_sdk_kms::types::KeyUsageType) -> String {
    let spec = match usage {
        aws_sdk_kms::types::KeyUsageType::SignVerify => aws_sdk_kms::types::KeySpec::EccNistP256,
        _ => aws_sdk_kms::types::KeySpec::SymmetricDefault,
    };
    let key = kms.create_key().key_spec(spec).key_usage(usage).send().await.unwrap_or_else(|e| panic!("{e:?}"));
    key.key_metadata().and_then(|m| m.arn()).unwrap_or_default().to_owned()
}

/// The built `archive-digest` function under the Runtime API emulator, on moto with a real KMS key:
/// the hourly schedule's event extends the chain up to the last full hour at least 15 minutes
/// before the schedule's time, `verify` passes, and the next run extends it again. A key it cannot
/// sign with fails the invocation with the key and the reason named, no secret shown, nothing written.
#[tokio::test]
async fn the_built_digest_function_extends_the_chain_on_its_schedule_and_fails_clearly_without_a_usable_key() {
    use auditstream_e2e::LambdaFunction;
    use std::time::Duration;
    let s3 = moto_s3_client();
    let bucket = create_bucket(&s3, "digest-fn").await;
    let kms = aws_sdk_kms::Client::new(&moto_sdk_config().await);
    let key_arn = signing_key(&kms, aws_sdk_kms::types::KeyUsageType::SignVerify).await;
    let prefix = KeyPrefix::new("workato").unwrap_or_else(|e| panic!("{e}"));
    let settings = S3Settings { bucket: bucket.clone(), prefix: prefix.clone(), sse_kms_key_id: None, attempt_timeout: S3_ATTEMPT_TIMEOUT };
    let store = S3Store::connect(settings, &moto_sdk_config().await);
    // Batches the writer left three and two hours ago (the archive's first hours), and one an hour ago.
    let hour = layout::hour_floor(auditstream::pipeline::timestamp::Now::capture().utc_time());
    let at = |hours_ago: i64, minute: i64| UtcTime::from_epoch_seconds(hour.epoch_seconds - hours_ago * 3600 + minute * 60);
    batch_at(&store, at(3, 5), 0..20).await;
    batch_at(&store, at(2, 5), 20..40).await;
    batch_at(&store, at(1, 5), 40..50).await;
    let function = |key_id: &str| {
        LambdaFunction::new(workspace_bin("archive-digest", "archive-digest"))
            .function_name("archive-digest")
            .envs(moto_env())
            // moto takes any secret: this one is planted, to show it is never printed
            .env("AWS_SECRET_ACCESS_KEY", "planted-secret-8c1f")
            .env("AUDITSTREAM_S3_BUCKET", bucket.clone())
            .env("AUDITSTREAM_S3_PREFIX", "workato")
            .env("AUDITSTREAM_DIGEST_KMS_KEY_ID", key_id)
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let env = [("AUDITSTREAM_DIGEST_KMS_KEY_ID", key_arn.as_str())];
    let archive = format!("s3://{bucket}/workato");
    let digests = |written: &serde_json::Value| -> Vec<String> {
        written.as_array().unwrap_or_else(|| panic!("{written}")).iter().map(|k| k.as_str().unwrap_or_default().to_owned()).collect()
    };

    // The schedule's run at 20 past the hour two hours ago digests the hour before: the first batch.
    let lambda = function(&key_arn);
    let answer = lambda.invoke(scheduled_event(at(2, 20)), Duration::from_secs(60)).await.unwrap_or_else(|e| panic!("{e}\nstderr: {}", lambda.stderr()));
    assert_eq!(digests(&answer["written"]), [layout::digest_key(&prefix, at(2, 0))], "{answer}");
    assert_eq!(answer["manifests"], 1, "{answer}");
    let out = cli(&["verify", &archive], &env);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains(": 1 digests from ") && stdout.contains(", 1 manifests, 50 objects checked: intact"), "{stdout}");

    // A key it cannot sign with: one that does not exist, one made for encryption. The invocation
    // fails naming the key and what to check; nothing is written, so a later run starts clean.
    let encrypt_only = signing_key(&kms, aws_sdk_kms::types::KeyUsageType::EncryptDecrypt).await;
    let missing = key_arn.replace(key_arn.rsplit('/').next().unwrap_or_default(), "00000000-0000-0000-0000-000000000000");
    let before = keys(&bucket, "workato/_auditstream/digests/").await;
    for bad in [missing, encrypt_only] {
        let failing = function(&bad);
        let err = failing.invoke(scheduled_event(at(0, 0)), Duration::from_secs(60)).await.expect_err("no signature without a usable key");
        let message = err.to_string();
        assert!(message.contains(&format!("KMS key {bad}: Sign failed")) && message.contains("may the caller kms:Sign with it?"), "{message}");
        for shown in [message, failing.stdout(), failing.stderr()] {
            assert!(!shown.contains("planted-secret-8c1f"), "{shown}");
        }
        assert_eq!(keys(&bucket, "workato/_auditstream/digests/").await, before, "a failed run writes no digest");
    }

    // The next scheduled run extends the chain from where it ends, up to the last settled hour.
    let now = auditstream::pipeline::timestamp::Now::capture().utc_time();
    let answer = lambda.invoke(scheduled_event(now), Duration::from_secs(60)).await.unwrap_or_else(|e| panic!("{e}\nstderr: {}", lambda.stderr()));
    let until = default_until(now);
    let written = digests(&answer["written"]);
    assert_eq!(written.first(), Some(&layout::digest_key(&prefix, at(1, 0))), "{answer}");
    assert_eq!(written.last(), Some(&layout::digest_key(&prefix, until)), "{answer}");
    let out = cli(&["verify", &archive, "--until", &layout::iso(until)], &env);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains(&format!(": {} digests from ", 1 + written.len())) && stdout.contains("50 objects checked: intact"), "{stdout}");
    // Run again for the same schedule: nothing more to do.
    let again = lambda.invoke(scheduled_event(now), Duration::from_secs(60)).await.unwrap_or_else(|e| panic!("{e}\nstderr: {}", lambda.stderr()));
    assert_eq!(again["written"], serde_json::json!([]), "{again}");
}
