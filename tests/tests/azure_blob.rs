//! The Azure Blob writer against Azurite, which checks Shared Key signatures and SAS tokens and
//! implements `If-None-Match: *` as Azure does (409 BlobAlreadyExists).
//!
//! Needs Azurite (and moto, for the Secrets Manager case): run with `scripts/test`, or
//! `scripts/services start` and the exports it prints.

use std::time::Duration;

use auditstream::delivery::destination::ObjectStoreDestination;
use auditstream::delivery::process::{process_batch, BatchReport, Failure, InboundMessage, Outcome};
use auditstream::delivery::retry::FailureKind;
use auditstream::delivery::retry::{Deadline, RetryPolicy};
use auditstream::destinations::azure::blob_store::AzureBlobStore;
use auditstream::destinations::azure::connection::{BlobAuth, BlobSettings, SasToken, DEV_ACCOUNT_KEY};
use auditstream::destinations::azure::shared_key::{AccountKey, SharedKeyCredential};
use auditstream::intake::lambda::SqsFunction;
use auditstream::pipeline::key::KeyPrefix;
use auditstream::pipeline::timestamp::Now;
use auditstream::pipeline::{Pipeline, PipelineConfig, Prepared};
use auditstream_e2e::azurite::{dev_credential, Azurite};
use auditstream_e2e::sqs_events::{failed_ids, lambda_event, messages, sample_event};
use auditstream_e2e::{moto_sdk_config, workspace_bin, workspace_root, LambdaFunction};

/// Every sample event of `events/` but the mixed batch (which repeats them and adds a malformed one).
const SAMPLE_FILES: [&str; 5] =
    ["sqs-job-succeeded.json", "sqs-job-failed.json", "sqs-job-masked-lines.json", "sqs-user-login.json", "sqs-recipe-stopped-by-system.json"];

fn sample_messages() -> Vec<InboundMessage> {
    SAMPLE_FILES.iter().flat_map(|f| messages(&sample_event(f))).collect()
}

fn pipeline(prefix: &str) -> Pipeline {
    Pipeline::new(PipelineConfig { key_prefix: KeyPrefix::new(prefix).unwrap(), ..PipelineConfig::default() })
}

fn store(az: &Azurite, container: &str, auth: BlobAuth) -> AzureBlobStore {
    AzureBlobStore::new(reqwest::Client::new(), az.endpoint.clone(), Some("devstoreaccount1".into()), auth, container.to_owned())
}

async fn deliver(store: AzureBlobStore, pipeline: &Pipeline, messages: Vec<InboundMessage>) -> BatchReport {
    let destination = ObjectStoreDestination::new(store, 8, RetryPolicy::default());
    process_batch(pipeline, &destination, messages, Deadline::after(Duration::from_secs(60))).await
}

/// Key and body of each message as the pipeline prepares it (the S3 layout, prefix included).
fn expected_documents(pipeline: &Pipeline, messages: &[InboundMessage]) -> Vec<(String, Vec<u8>)> {
    let mut docs: Vec<(String, Vec<u8>)> = messages
        .iter()
        .map(|m| match pipeline.prepare(&m.body, Now::capture()).unwrap() {
            Prepared::Ready(d) => (d.key.to_string(), d.body),
            Prepared::Filtered(f) => panic!("{}: filtered: {f}", m.id),
        })
        .collect();
    docs.sort();
    docs
}

fn delivery_failures(report: &BatchReport) -> Vec<(String, FailureKind, String)> {
    report
        .failures()
        .map(|(id, f)| match f {
            Failure::Delivery(e) => (id.to_owned(), e.kind, e.message.clone()),
            other => panic!("{id}: not a delivery failure: {other}"),
        })
        .collect()
}

#[tokio::test]
async fn every_event_becomes_one_blob_named_like_the_s3_key() {
    let az = Azurite::from_env();
    let container = az.create_container("blob-layout").await;
    let pipeline = pipeline("audit");
    let messages = sample_messages();
    let report = deliver(store(&az, &container, BlobAuth::SharedKey(dev_credential())), &pipeline, messages.clone()).await;

    assert_eq!(report.counts.written, messages.len() as u64, "{:?}", report.outcomes);
    assert_eq!(report.counts.failed(), 0);
    let expected = expected_documents(&pipeline, &messages);
    let names: Vec<String> = expected.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(az.list_blobs(&container).await, names);
    // the layout, pinned for one job and one activity (the same as S3's)
    assert!(
        names.contains(&"audit/33359/jobs/3026581/20261125/j-AEcaNzd9-dGQ4Bf/33359-3026581-j-AEcaNzd9-dGQ4Bf-20261125053046-succeeded.json".to_owned()),
        "{names:#?}"
    );
    assert!(names.iter().any(|n| n.starts_with("audit/4848/activities/20261125/123456789/4848-user_login-123456789-")), "{names:#?}");

    for (name, body) in &expected {
        let blob = az.get_blob(&container, name).await;
        assert_eq!(blob.content_type, "application/json", "{name}");
        assert_eq!(&blob.body, body, "{name}: the blob is the prepared document, byte for byte");
    }
}

#[tokio::test]
async fn an_event_of_another_stream_and_ids_too_long_for_a_name_become_blobs_too() {
    let az = Azurite::from_env();
    let container = az.create_container("blob-edges").await;
    let pipeline = pipeline("audit");
    let long_id = format!("j-{}", "x".repeat(398));
    let messages = vec![
        InboundMessage::new("other", sample_event("sqs-other-event.json").records.remove(0).body.unwrap_or_default()),
        InboundMessage::new(
            "long-id",
            format!(r#"{{"id":"{long_id}","recipe_id":7,"status":"..","completed_at":"2026-11-25T05:30:46Z","context":{{"user_id":5}}}}"#),
        ),
    ];
    let report = deliver(store(&az, &container, BlobAuth::SharedKey(dev_credential())), &pipeline, messages.clone()).await;
    assert_eq!((report.counts.written, report.counts.failed()), (2, 0), "{:?}", report.outcomes);
    let expected = expected_documents(&pipeline, &messages);
    assert_eq!(az.list_blobs(&container).await, expected.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());
    // the shortened id (`~` and a hash) and the odd status (`%2E%2E`) name the blob as they name the S3 object
    assert!(expected.iter().any(|(k, _)| k.starts_with("audit/5/jobs/7/20261125/j-xxx") && k.contains('~') && k.ends_with("-%2E%2E.json")), "{expected:?}");
    assert!(expected.iter().any(|(k, _)| k.starts_with("audit/4848/other/20261125/0f8e4a2c-7b1d-4e6f-9a3c-5d2b1e0f7a91/")), "{expected:?}");
    for (name, body) in &expected {
        assert_eq!(&az.get_blob(&container, name).await.body, body, "{name}");
    }
}

#[tokio::test]
async fn a_redelivered_batch_writes_no_second_blob() {
    let az = Azurite::from_env();
    let container = az.create_container("blob-redelivery").await;
    let pipeline = pipeline("");
    let messages = sample_messages();
    let first = deliver(store(&az, &container, BlobAuth::SharedKey(dev_credential())), &pipeline, messages.clone()).await;
    assert_eq!(first.counts.written, messages.len() as u64);
    let names = az.list_blobs(&container).await;
    let mut etags = Vec::new();
    for name in &names {
        etags.push(az.get_blob(&container, name).await.etag);
    }

    let again = deliver(store(&az, &container, BlobAuth::SharedKey(dev_credential())), &pipeline, messages.clone()).await;

    assert_eq!(again.counts.written, 0);
    assert_eq!(again.counts.duplicates, messages.len() as u64, "{:?}", again.outcomes);
    assert_eq!(again.counts.failed(), 0);
    assert!(again.outcomes.iter().all(|(_, o)| matches!(o, Outcome::Duplicate { .. })));
    assert_eq!(az.list_blobs(&container).await, names, "no second blob");
    for (name, etag) in names.iter().zip(etags) {
        assert_eq!(az.get_blob(&container, name).await.etag, etag, "{name} was not rewritten");
    }
}

#[tokio::test]
async fn a_wrong_key_fails_every_message_with_a_clear_error() {
    let az = Azurite::from_env();
    let container = az.create_container("blob-wrong-key").await;
    let wrong_key_b64 = "d3JvbmctYnV0LXdlbGwtZm9ybWVkLWtleS13cm9uZy1idXQtd2VsbC1mb3JtZWQta2V5LTY0Ynl0ZXMhIQ==";
    let wrong = SharedKeyCredential::new("devstoreaccount1", AccountKey::from_base64(wrong_key_b64).unwrap());
    let messages = sample_messages();
    let report = deliver(store(&az, &container, BlobAuth::SharedKey(wrong)), &pipeline(""), messages.clone()).await;

    let failures = delivery_failures(&report);
    assert_eq!(failures.len(), messages.len(), "every message fails, and is reported");
    for (id, kind, message) in failures {
        assert_eq!(kind, FailureKind::Permanent, "{id}: {message}");
        // Azure answers AuthenticationFailed, Azurite AuthorizationFailure, both "failed to authenticate"
        assert!(message.contains("Put Blob failed: HTTP 403 ") && message.contains("Server failed to authenticate the request"), "{id}: {message}");
        assert!(message.contains(&format!("{}/{container}/", az.endpoint)), "{id}: names the blob: {message}");
        assert!(message.contains("is the account key right for account devstoreaccount1?"), "{id}: {message}");
        assert!(message.contains("is the clock right?"), "{id}: {message}");
        assert!(!message.contains(wrong_key_b64) && !message.contains(DEV_ACCOUNT_KEY), "{id}: no key in errors");
    }
    assert!(az.list_blobs(&container).await.is_empty());
}

#[tokio::test]
async fn a_missing_container_fails_clearly() {
    let az = Azurite::from_env();
    let missing = auditstream_e2e::unique_name("no-such-container");
    let messages = sample_messages();
    let report = deliver(store(&az, &missing, BlobAuth::SharedKey(dev_credential())), &pipeline(""), messages.clone()).await;

    let failures = delivery_failures(&report);
    assert_eq!(failures.len(), messages.len());
    for (id, kind, message) in failures {
        assert_eq!(kind, FailureKind::Permanent, "{id}");
        assert!(message.contains(&format!("HTTP 404 ContainerNotFound: container {missing} does not exist in account devstoreaccount1")), "{id}: {message}");
        assert!(message.contains("AUDITSTREAM_AZURE_BLOB_CONTAINER"), "{message}");
    }
}

#[tokio::test]
async fn a_sas_token_with_create_and_write_works_and_a_create_only_one_is_explained() {
    let az = Azurite::from_env();
    let container = az.create_container("blob-sas").await;
    let messages = sample_messages();
    let sas = |p: &str| BlobAuth::Sas(SasToken::parse(&az.account_sas(p)).unwrap());

    let report = deliver(store(&az, &container, sas("cw")), &pipeline(""), messages.clone()).await;
    assert_eq!(report.counts.written, messages.len() as u64, "{:?}", report.outcomes);
    let again = deliver(store(&az, &container, sas("cw")), &pipeline(""), messages.clone()).await;
    assert_eq!(again.counts.duplicates, messages.len() as u64, "{:?}", again.outcomes);

    // Create alone: Azure refuses to touch an existing blob with 403, not 409.
    let create_only = deliver(store(&az, &container, sas("c")), &pipeline(""), messages[..1].to_vec()).await;
    let failures = delivery_failures(&create_only);
    assert_eq!(failures.len(), 1);
    assert!(failures[0].2.contains("HTTP 403") && failures[0].2.contains("it needs create and write (sp=cw)"), "{}", failures[0].2);
    // a token that is not signed by the account
    let forged = SasToken::parse(&az.account_sas("cw").replace("sig=", "sig=AAAA")).unwrap();
    let forged = delivery_failures(&deliver(store(&az, &container, BlobAuth::Sas(forged)), &pipeline("other"), messages[..1].to_vec()).await);
    assert_eq!(forged[0].1, FailureKind::Permanent);
    assert!(forged[0].2.contains("HTTP 403") && forged[0].2.contains("is the SAS token valid, unexpired (se=)"), "{}", forged[0].2);
    assert!(!forged[0].2.contains("sig="), "the SAS token never reaches a message: {}", forged[0].2);
}

#[tokio::test]
async fn the_account_comes_from_a_connection_string_or_a_secret_in_secrets_manager() {
    let az = Azurite::from_env();
    let container = az.create_container("blob-config").await;
    let endpoint = az.endpoint.to_string();

    let connection = format!("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_ACCOUNT_KEY};BlobEndpoint={endpoint};");
    let env = [
        ("AZURE_STORAGE_CONNECTION_STRING", connection.as_str()),
        ("AUDITSTREAM_AZURE_BLOB_CONTAINER", container.as_str()),
        ("AUDITSTREAM_AZURE_BLOB_PREFIX", "from-connection-string"),
    ];
    let (store, prefix) = AzureBlobStore::connect(BlobSettings::from_env(&env[..]).unwrap(), None).await.unwrap();
    let mut pipeline = pipeline("");
    pipeline.config.key_prefix = prefix;
    let report = deliver(store, &pipeline, sample_messages()[..1].to_vec()).await;
    assert_eq!(report.counts.written, 1, "{:?}", report.outcomes);

    // The key in AWS Secrets Manager (moto), read once at setup.
    let aws = moto_sdk_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let name = auditstream_e2e::unique_name("azure-blob-key");
    let arn = secrets.create_secret().name(&name).secret_string(DEV_ACCOUNT_KEY).send().await.unwrap().arn.unwrap();
    let env = [
        ("AUDITSTREAM_AZURE_BLOB_ACCOUNT", "devstoreaccount1"),
        ("AUDITSTREAM_AZURE_BLOB_ENDPOINT", endpoint.as_str()),
        ("AUDITSTREAM_AZURE_BLOB_KEY_SECRET_ARN", arn.as_str()),
        ("AUDITSTREAM_AZURE_BLOB_CONTAINER", container.as_str()),
        ("AUDITSTREAM_AZURE_BLOB_PREFIX", "from-secret"),
    ];
    let (store, prefix) = AzureBlobStore::connect(BlobSettings::from_env(&env[..]).unwrap(), Some(&aws)).await.unwrap();
    pipeline.config.key_prefix = prefix;
    let report = deliver(store, &pipeline, sample_messages()[..1].to_vec()).await;
    assert_eq!(report.counts.written, 1, "{:?}", report.outcomes);
    let names = az.list_blobs(&container).await;
    assert_eq!(names.len(), 2);
    assert!(names[0].starts_with("from-connection-string/") && names[1].starts_with("from-secret/"), "{names:?}");

    // A secret that is neither a key nor a SAS token stops the setup, naming variable and ARN only.
    let bad = secrets.create_secret().name(format!("{name}-bad")).secret_string("hunter2").send().await.unwrap().arn.unwrap();
    let env = [
        ("AUDITSTREAM_AZURE_BLOB_ACCOUNT", "devstoreaccount1"),
        ("AUDITSTREAM_AZURE_BLOB_ENDPOINT", endpoint.as_str()),
        ("AUDITSTREAM_AZURE_BLOB_KEY_SECRET_ARN", bad.as_str()),
        ("AUDITSTREAM_AZURE_BLOB_CONTAINER", container.as_str()),
    ];
    let err = AzureBlobStore::connect(BlobSettings::from_env(&env[..]).unwrap(), Some(&aws)).await.err().expect("a bad secret fails the setup").to_string();
    assert!(err.starts_with(&format!("AUDITSTREAM_AZURE_BLOB_KEY_SECRET_ARN: secret {bad} cannot be used: the secret is neither a SAS token")), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[tokio::test]
async fn the_lambda_handler_reports_exactly_the_failed_messages() {
    let az = Azurite::from_env();
    let container = az.create_container("blob-lambda").await;
    let event = sample_event("sqs-mixed-batch.json");
    let all_ids: Vec<String> = event.records.iter().map(|r| r.message_id.clone().unwrap()).collect();
    let malformed = "4d1e7a20-5f6b-4c8d-9e0f-1a2b3c4d5e06";

    let function = SqsFunction::new(
        "azure-blob-writer",
        pipeline(""),
        ObjectStoreDestination::new(store(&az, &container, BlobAuth::SharedKey(dev_credential())), 4, RetryPolicy::default()),
    );
    let response = function.handle(lambda_event(event.clone(), Duration::from_secs(60))).await.unwrap();
    assert_eq!(failed_ids(&response), [malformed], "only the malformed message fails");
    assert_eq!(az.list_blobs(&container).await.len(), all_ids.len() - 1);

    // redelivered: the same answer, no new blob
    let response = function.handle(lambda_event(event.clone(), Duration::from_secs(60))).await.unwrap();
    assert_eq!(failed_ids(&response), [malformed]);
    assert_eq!(az.list_blobs(&container).await.len(), all_ids.len() - 1);

    // a container that does not exist: every message is reported, none silently dropped
    let missing = auditstream_e2e::unique_name("no-such-container");
    let function = SqsFunction::new(
        "azure-blob-writer",
        pipeline(""),
        ObjectStoreDestination::new(store(&az, &missing, BlobAuth::SharedKey(dev_credential())), 4, RetryPolicy::default()),
    );
    let response = function.handle(lambda_event(event, Duration::from_secs(60))).await.unwrap();
    assert_eq!(failed_ids(&response), all_ids, "in the order of the batch");
}

#[tokio::test]
async fn the_built_function_answers_the_sample_events() {
    let az = Azurite::from_env();
    let container = az.create_container("blob-function").await;
    let connection = format!("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_ACCOUNT_KEY};BlobEndpoint={};", az.endpoint);
    let lambda = LambdaFunction::new(workspace_bin("azure-blob-writer", "azure-blob-writer"))
        .function_name("azure-blob-writer")
        .env("AZURE_STORAGE_CONNECTION_STRING", connection)
        .env("AUDITSTREAM_AZURE_BLOB_CONTAINER", &container)
        .env("AUDITSTREAM_AZURE_BLOB_PREFIX", "workato")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let events = workspace_root().join("events");

    let response = lambda.invoke_file(events.join("sqs-mixed-batch.json"), Duration::from_secs(30)).await.unwrap();
    assert_eq!(response, serde_json::json!({"batchItemFailures": [{"itemIdentifier": "4d1e7a20-5f6b-4c8d-9e0f-1a2b3c4d5e06"}]}));
    for file in SAMPLE_FILES {
        let response = lambda.invoke_file(events.join(file), Duration::from_secs(30)).await.unwrap();
        assert_eq!(response, serde_json::json!({"batchItemFailures": []}), "{file}");
    }
    let names = az.list_blobs(&container).await;
    assert!(!names.is_empty() && names.iter().all(|n| n.starts_with("workato/")), "{names:?}");
}

#[tokio::test]
async fn auditstream_run_to_azure_blob_uses_the_same_configuration() {
    // Built first (this can take a minute on a cold target directory), and run without blocking the runtime.
    let cli = tokio::task::spawn_blocking(|| workspace_bin("auditstream-cli", "auditstream")).await.unwrap();
    let az = Azurite::from_env();
    let container = az.create_container("blob-cli").await;
    let connection = format!("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_ACCOUNT_KEY};BlobEndpoint={};", az.endpoint);
    let events = workspace_root().join("events");
    let output = tokio::process::Command::new(cli)
        .args(["run", "--to", "azure-blob"])
        .args(SAMPLE_FILES.iter().map(|f| events.join(f)))
        .env("AZURE_STORAGE_CONNECTION_STRING", connection)
        .env("AUDITSTREAM_AZURE_BLOB_CONTAINER", &container)
        .env("AUDITSTREAM_AZURE_BLOB_PREFIX", "cli")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "auditstream run failed: {stderr}");
    let expected = expected_documents(&pipeline("cli"), &sample_messages());
    assert_eq!(az.list_blobs(&container).await, expected.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());
    assert!(!stderr.contains(DEV_ACCOUNT_KEY) && !String::from_utf8_lossy(&output.stdout).contains(DEV_ACCOUNT_KEY));
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_transient_failure_left_to_sqs() {
    // A port nothing listens on: connection refused, retried, then handed back to SQS.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = reqwest::Url::parse(&format!("http://{}/devstoreaccount1", closed.local_addr().unwrap())).unwrap();
    drop(closed);
    let store = AzureBlobStore::new(reqwest::Client::new(), endpoint, None, BlobAuth::SharedKey(dev_credential()), "audit".into());
    let retry = RetryPolicy { initial_backoff: Duration::from_millis(10), max_backoff: Duration::from_millis(50), max_attempts: 3 };
    let destination = ObjectStoreDestination::new(store, 4, retry);
    let messages = sample_messages();
    let report = process_batch(&pipeline(""), &destination, messages.clone(), Deadline::after(Duration::from_secs(30))).await;
    let failures = delivery_failures(&report);
    assert_eq!(failures.len(), messages.len());
    for (id, kind, message) in failures {
        assert_eq!(kind, FailureKind::Transient, "{id}: {message}");
        assert!(message.contains("Put Blob failed: cannot connect") && message.contains("gave up after 3 attempts"), "{id}: {message}");
    }
}
