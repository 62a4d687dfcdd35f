//! The Azure Monitor forwarder against a strict local fake of Entra ID and the Logs Ingestion API
//! (`auditstream_e2e::azure_monitor_fake`): rows as documented, the 1 MB limit (checked before
//! sending, and 413 split), `Retry-After`, one token refresh on 401, every message either
//! ingested or reported, and no secret in any error or log line.

use std::collections::BTreeSet;
use std::time::Duration;

use auditstream::delivery::destination::LogSink;
use auditstream::delivery::log_batching::LogSinkDestination;
use auditstream::delivery::process::{process_batch, BatchReport, Failure, InboundMessage};
use auditstream::delivery::retry::FailureKind;
use auditstream::delivery::retry::{Deadline, RetryPolicy};
use auditstream::destinations::azure::entra_token::EntraSettings;
use auditstream::destinations::azure::monitor_sink::{AzureMonitorSink, MonitorSettings, MAX_CALL_BYTES, MAX_EVENT_BYTES};
use auditstream::intake::lambda::SqsFunction;
use auditstream::pipeline::timestamp::Now;
use auditstream::pipeline::{Document, Pipeline, Prepared};
use auditstream_e2e::azure_monitor_fake::{FakeConfig, MonitorFake};
use auditstream_e2e::sqs_events::{failed_ids, lambda_event, sample_event};
use auditstream_e2e::{workspace_bin, workspace_root, LambdaFunction};
use serde_json::{json, Value};

fn env_of(fake: &MonitorFake, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = fake.env();
    for (k, v) in overrides {
        env.retain(|(name, _)| name != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    env
}

async fn sink(fake: &MonitorFake, overrides: &[(&str, &str)]) -> AzureMonitorSink {
    let env: std::collections::HashMap<String, String> = env_of(fake, overrides).into_iter().collect();
    let monitor = MonitorSettings::from_env(&env).unwrap();
    let entra = EntraSettings::from_env(&env).unwrap();
    AzureMonitorSink::connect(&monitor, &entra, None).await.unwrap()
}

fn destination(sink: AzureMonitorSink, concurrency: usize) -> LogSinkDestination<AzureMonitorSink> {
    LogSinkDestination::new(sink, concurrency, RetryPolicy::default())
}

async fn deliver(dest: &LogSinkDestination<AzureMonitorSink>, messages: Vec<InboundMessage>) -> BatchReport {
    process_batch(&Pipeline::default(), dest, messages, Deadline::after(Duration::from_secs(60))).await
}

/// A job event with `lines` lines of about `line_bytes` each (every fifth one masked).
fn job(i: usize, lines: usize, line_bytes: usize) -> String {
    let lines: Vec<String> = (0..lines)
        .map(|n| {
            format!(
                r#"{{"recipe_line_number":{n},"adapter_name":"http","input":{{"payload":"{}"}},"output":{{"ok":true}},"mask_data":{}}}"#,
                "x".repeat(line_bytes),
                n % 5 == 0
            )
        })
        .collect();
    format!(
        r#"{{"id":"j-{i:05}","recipe_id":{},"status":"{}","started_at":"2026-11-25T10:00:00.000-08:00","completed_at":"2026-11-25T10:{:02}:{:02}.250-08:00","context":{{"user_id":"ou-{}"}},"error":null,"lines":[{}]}}"#,
        3_000_000 + i % 7,
        if i.is_multiple_of(4) { "failed" } else { "succeeded" },
        i / 60 % 60,
        i % 60,
        i % 3,
        lines.join(",")
    )
}

fn activity(i: usize) -> String {
    format!(
        r#"{{"id":{},"event_type":"user_login","timestamp":"2026-11-25T10:15:{:02}.000Z","workspace":{{"id":4848}},"resource":{{"type":"User","id":{i}}},"details":{{"ip":"203.0.113.{}"}}}}"#,
        900_000 + i,
        i % 60,
        i % 250
    )
}

fn messages(bodies: impl IntoIterator<Item = String>) -> Vec<InboundMessage> {
    bodies.into_iter().enumerate().map(|(i, b)| InboundMessage::new(format!("m-{i:05}"), b)).collect()
}

/// The documents the pipeline makes for the messages, sized for this destination.
fn documents(messages: &[InboundMessage]) -> Vec<Document> {
    messages
        .iter()
        .map(|m| match Pipeline::default().prepare_within(&m.body, Now::capture(), MAX_EVENT_BYTES).unwrap() {
            Prepared::Ready(d) => d,
            Prepared::Filtered(f) => panic!("{f}"),
        })
        .collect()
}

fn row_keys(rows: &[Value]) -> Vec<String> {
    let mut keys: Vec<String> = rows.iter().map(|r| r["EventKey"].as_str().unwrap_or_default().to_owned()).collect();
    keys.sort();
    keys
}

fn assert_no_violations(fake: &MonitorFake) {
    assert_eq!(fake.violations(), Vec::<String>::new(), "requests the contract does not allow");
}

#[tokio::test]
async fn rows_are_as_documented() {
    let fake = MonitorFake::start(FakeConfig::default());
    let dest = destination(sink(&fake, &[]).await, 4);
    let inputs = messages([
        job(1, 3, 40),
        activity(2),
        r#"{"event":"recipe_stopped","team":{"id":4848},"details":{"stop_reason":"system"},"timestamp":"2019-09-13 17:24:16 UTC"}"#.to_owned(),
    ]);
    let report = deliver(&dest, inputs.clone()).await;
    assert_eq!(report.counts.written, 3, "{:?}", report.outcomes);
    assert_no_violations(&fake);

    let docs = documents(&inputs);
    let rows = fake.rows();
    let row = |key: &str| rows.iter().find(|r| r["EventKey"] == key).cloned().unwrap_or_else(|| panic!("no row for {key}: {rows:#?}"));
    let event = |d: &Document| serde_json::from_slice::<Value>(&d.body).unwrap();
    assert_eq!(
        row(docs[0].key.as_str()),
        json!({
            "TimeGenerated": "2026-11-25T18:00:01.250Z", "EventKind": "job", "EventKey": docs[0].key.as_str(),
            "JobId": "j-00001", "RecipeId": "3000001", "Status": "succeeded", "UserId": "ou-1",
            "LinesTruncated": false, "Event": event(&docs[0]),
        })
    );
    // the Event column is the masked event
    assert_eq!(row(docs[0].key.as_str())["Event"]["lines"][0]["input"], json!({"data": "masked"}));
    assert_eq!(
        row(docs[1].key.as_str()),
        json!({
            "TimeGenerated": "2026-11-25T10:15:02.000Z", "EventKind": "activity", "EventKey": docs[1].key.as_str(),
            "ActivityId": "900002", "EventType": "user_login", "ResourceType": "User", "WorkspaceId": "4848",
            "LinesTruncated": false, "Event": event(&docs[1]),
        })
    );
    assert_eq!(
        row(docs[2].key.as_str()),
        json!({
            "TimeGenerated": "2019-09-13T17:24:16.000Z", "EventKind": "activity", "EventKey": docs[2].key.as_str(),
            "EventType": "recipe_stopped", "WorkspaceId": "4848", "LinesTruncated": false, "Event": event(&docs[2]),
        })
    );

    // a second batch reuses the cached token
    let report = deliver(&dest, messages([activity(3)])).await;
    assert_eq!(report.counts.written, 1);
    assert_eq!(fake.token_requests(), 1, "the token is cached");
    assert!(fake.requests().iter().all(|r| r.client_request_id.is_some()));
}

#[tokio::test]
async fn lines_are_replaced_before_azure_would_cut_them_and_what_cannot_fit_fails_alone() {
    let fake = MonitorFake::start(FakeConfig::default());
    let dest = destination(sink(&fake, &[]).await, 2);
    let huge_details =
        format!(r#"{{"id":77,"event_type":"export","timestamp":"2026-11-25T10:15:30Z","workspace":{{"id":1}},"details":{{"blob":"{}"}}}}"#, "y".repeat(70_000));
    let inputs = messages([job(1, 20, 5_000), huge_details, activity(3)]);
    let report = deliver(&dest, inputs.clone()).await;
    assert_no_violations(&fake);

    assert_eq!(report.counts.written, 2, "{:?}", report.outcomes);
    assert_eq!(report.counts.truncated, 1);
    let rows = fake.rows();
    let job_row = rows.iter().find(|r| r["EventKind"] == "job").unwrap();
    assert_eq!(job_row["LinesTruncated"], true);
    assert_eq!(job_row["Event"]["lines"], "Log lines exceed size limit");
    assert_eq!(job_row["Event"]["id"], "j-00001", "every other field is kept");
    assert!(serde_json::to_vec(&job_row["Event"]).unwrap().len() <= MAX_EVENT_BYTES);

    let failures: Vec<(&str, &Failure)> = report.failures().collect();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].0, "m-00001");
    assert!(failures[0].1.is_permanent());
    assert!(failures[0].1.to_string().contains("over the limit of 64000 bytes"), "{}", failures[0].1);
}

#[tokio::test]
async fn a_413_splits_the_batch_and_nothing_is_lost() {
    // The service's limit far below ours, so that it answers 413 and the batcher must split.
    let fake = MonitorFake::start(FakeConfig { max_call_bytes: 120_000, ..FakeConfig::default() });
    let dest = destination(sink(&fake, &[]).await, 3);
    let inputs = messages((0..120).map(|i| if i % 5 == 4 { activity(i) } else { job(i, 1 + i % 6, 900 + (i * 37) % 4000) }));
    let report = deliver(&dest, inputs.clone()).await;
    assert_no_violations(&fake);

    assert_eq!(report.counts.failed(), 0, "{:?}", report.failures().collect::<Vec<_>>());
    let mut want: Vec<String> = documents(&inputs).iter().map(|d| d.key.to_string()).collect();
    want.sort();
    assert_eq!(row_keys(&fake.rows()), want, "every event exactly once");
    let requests = fake.requests();
    assert!(requests.iter().any(|r| r.status == 413), "the service refused some requests as too large");
    assert!(requests.iter().filter(|r| r.status == 204).all(|r| r.compressed_bytes <= 120_000));
}

#[tokio::test]
async fn a_request_over_one_megabyte_is_never_sent() {
    let fake = MonitorFake::start(FakeConfig::default());
    let sink = sink(&fake, &[]).await;
    let docs = documents(&messages((0..20).map(|i| job(i, 14, 5_000))));
    let total: usize = docs.iter().map(|d| d.body.len()).sum();
    assert!(total > MAX_CALL_BYTES, "{total}");
    let refs: Vec<&Document> = docs.iter().collect();
    let err = sink.send(&refs).await.unwrap_err();
    assert_eq!(err.kind, FailureKind::TooLarge, "{err}");
    assert!(err.message.contains("over the 1000000 bytes Azure takes per call"), "{err}");
    assert!(fake.requests().is_empty(), "checked before sending");

    // through the batcher the same documents all arrive, in requests within the limit
    let dest = destination(sink, 2);
    let report = deliver(&dest, messages((0..20).map(|i| job(i, 14, 5_000)))).await;
    assert_eq!(report.counts.written, 20, "{:?}", report.outcomes);
    assert_no_violations(&fake);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let fake = MonitorFake::start(FakeConfig::default());
    fake.throttle_next(1, 2);
    let dest = destination(sink(&fake, &[]).await, 1);
    let report = deliver(&dest, messages([job(1, 2, 100), activity(2)])).await;
    assert_eq!(report.counts.written, 2, "{:?}", report.outcomes);
    assert_no_violations(&fake);
    let requests = fake.requests();
    assert_eq!(requests.iter().map(|r| r.status).collect::<Vec<_>>(), [429, 204]);
    let waited = requests[1].at.duration_since(requests[0].at);
    assert!(waited >= Duration::from_secs(2), "retried after {waited:?}, before the 2 s the service asked for");
    assert_eq!(fake.rows().len(), 2);
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once() {
    let fake = MonitorFake::start(FakeConfig::default());
    let dest = destination(sink(&fake, &[]).await, 4);
    assert_eq!(deliver(&dest, messages([activity(1)])).await.counts.written, 1);
    assert_eq!(fake.token_requests(), 1);

    // Tokens revoked early: concurrent requests all see 401; one new token serves them all.
    fake.expire_tokens();
    let inputs = messages((0..40).map(|i| job(i, 10, 5_000)));
    let report = deliver(&dest, inputs.clone()).await;
    assert_eq!(report.counts.written, 40, "{:?}", report.failures().collect::<Vec<_>>());
    assert_eq!(fake.token_requests(), 2, "one refresh, however many requests saw the 401");
    assert!(fake.requests().iter().filter(|r| r.status == 401).count() >= 2, "several requests were refused: {:?}", fake.requests());
    assert_eq!(fake.rows().len(), 41);
    assert_no_violations(&fake);

    // A token refused even when new: one refresh, then a clear permanent failure.
    fake.reject_all_tokens();
    let before = fake.token_requests();
    let report = deliver(&dest, messages([activity(99)])).await;
    let failures: Vec<(&str, &Failure)> = report.failures().collect();
    assert_eq!(failures.len(), 1);
    assert!(failures[0].1.is_permanent());
    assert!(failures[0].1.to_string().contains("HTTP 401") && failures[0].1.to_string().contains("refused a freshly issued token too"), "{}", failures[0].1);
    assert_eq!(fake.token_requests(), before + 1);
}

#[tokio::test]
async fn secrets_never_appear_in_errors() {
    let fake = MonitorFake::start(FakeConfig::default());
    let wrong = "Wr0ng~secret.value_ABCDEFGHIJKLMNOP";
    let dest = destination(sink(&fake, &[("AZURE_CLIENT_SECRET", wrong)]).await, 2);
    let inputs = messages([job(1, 2, 100), activity(2), activity(3)]);
    let report = deliver(&dest, inputs).await;
    let failures: Vec<(&str, &Failure)> = report.failures().collect();
    assert_eq!(failures.len(), 3, "every message is reported");
    for (id, failure) in failures {
        let text = failure.to_string();
        assert!(failure.is_permanent(), "{id}: {text}");
        assert!(text.contains("AADSTS7000215") && text.contains("the client secret is wrong"), "{id}: {text}");
        assert!(text.contains(&fake.config().client_id), "names the client: {text}");
        assert!(!text.contains(wrong) && !text.contains(&fake.config().client_secret), "{id}: {text}");
    }
    assert!(fake.rows().is_empty());
}

#[tokio::test]
async fn the_lambda_handler_reports_exactly_what_was_not_ingested() {
    let fake = MonitorFake::start(FakeConfig::default());
    let function = SqsFunction::new("azure-monitor-forwarder", Pipeline::default(), destination(sink(&fake, &[]).await, 4));
    let event = sample_event("sqs-mixed-batch.json");
    let all: Vec<String> = event.records.iter().map(|r| r.message_id.clone().unwrap()).collect();
    let malformed = "4d1e7a20-5f6b-4c8d-9e0f-1a2b3c4d5e06".to_owned();

    let response = function.handle(lambda_event(event.clone(), Duration::from_secs(60))).await.unwrap();
    assert_eq!(failed_ids(&response), [malformed]);
    assert_eq!(fake.rows().len(), all.len() - 1);

    // Throttled past the invocation's deadline: nothing is ingested and every message is reported,
    // so SQS delivers them again.
    fake.throttle_next(100, 3);
    let response = function.handle(lambda_event(event, Duration::from_secs(4))).await.unwrap();
    assert_eq!(failed_ids(&response), all, "nothing lost, in the order of the batch");
    assert_eq!(fake.rows().len(), all.len() - 1, "no new rows");
    assert_no_violations(&fake);
}

#[tokio::test]
async fn the_built_function_answers_the_sample_events_and_logs_no_secret() {
    let fake = MonitorFake::start(FakeConfig::default());
    let events = workspace_root().join("events");
    let binary = workspace_bin("azure-monitor-forwarder", "azure-monitor-forwarder");

    let lambda = LambdaFunction::new(&binary).function_name("azure-monitor-forwarder").envs(fake.env()).spawn().unwrap_or_else(|e| panic!("{e}"));
    let response = lambda.invoke_file(events.join("sqs-mixed-batch.json"), Duration::from_secs(30)).await.unwrap();
    assert_eq!(response, json!({"batchItemFailures": [{"itemIdentifier": "4d1e7a20-5f6b-4c8d-9e0f-1a2b3c4d5e06"}]}));
    assert_eq!(fake.rows().len(), 5);
    drop(lambda);

    let wrong = "Wr0ng~secret.value_ZYXWVUTSRQPONMLK";
    let lambda = LambdaFunction::new(&binary)
        .function_name("azure-monitor-forwarder")
        .envs(env_of(&fake, &[("AZURE_CLIENT_SECRET", wrong)]))
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let response = lambda.invoke_file(events.join("sqs-user-login.json"), Duration::from_secs(30)).await.unwrap();
    assert_eq!(response, json!({"batchItemFailures": [{"itemIdentifier": "9b4f6c1e-1c3a-4e0f-8a55-0a1b2c3d4e04"}]}));
    // Log lines go to stderr (stdout carries the EMF metrics).
    let mut logs = String::new();
    for _ in 0..50 {
        if let Some(line) = lambda.stderr().lines().find(|l| l.contains("AADSTS7000215")) {
            logs = line.to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!logs.is_empty(), "no log line explains the failure; stderr: {}", lambda.stderr());
    assert!(logs.contains("9b4f6c1e-1c3a-4e0f-8a55-0a1b2c3d4e04"), "the log line names the message: {logs}");
    for output in [lambda.stdout(), lambda.stderr()] {
        assert!(!output.contains(wrong) && !output.contains(&fake.config().client_secret), "a secret reached the logs:\n{output}");
    }
    assert_no_violations(&fake);
}

#[tokio::test]
async fn auditstream_run_to_azure_monitor_uses_the_same_configuration() {
    let fake = MonitorFake::start(FakeConfig::default());
    let events = workspace_root().join("events");
    let output = std::process::Command::new(workspace_bin("auditstream-cli", "auditstream"))
        .args(["run", "--to", "azure-monitor"])
        .args(["sqs-job-succeeded.json", "sqs-user-login.json"].iter().map(|f| events.join(f)))
        .envs(fake.env())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "auditstream run failed: {stderr}");
    let rows = fake.rows();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!(rows.iter().map(|r| r["EventKind"].as_str().unwrap()).collect::<BTreeSet<_>>(), BTreeSet::from(["job", "activity"]));
    assert!(!stderr.contains(&fake.config().client_secret));
    assert_no_violations(&fake);
}

#[tokio::test]
async fn the_client_secret_can_come_from_secrets_manager() {
    let fake = MonitorFake::start(FakeConfig::default());
    let aws = auditstream_e2e::moto_sdk_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    // stored from a shell, with a trailing newline
    let arn = secrets
        .create_secret()
        .name(auditstream_e2e::unique_name("azure-monitor-secret"))
        .secret_string(format!("{}\n", fake.config().client_secret))
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let mut env: std::collections::HashMap<String, String> = fake.env().into_iter().collect();
    env.remove("AZURE_CLIENT_SECRET");
    env.insert("AUDITSTREAM_AZURE_CLIENT_SECRET_ARN".into(), arn);
    let sink = AzureMonitorSink::connect(&MonitorSettings::from_env(&env).unwrap(), &EntraSettings::from_env(&env).unwrap(), Some(&aws)).await.unwrap();
    let report = deliver(&destination(sink, 1), messages([activity(1)])).await;
    assert_eq!(report.counts.written, 1, "{:?}", report.outcomes);
    assert_no_violations(&fake);
}

#[tokio::test]
async fn a_token_is_renewed_before_it_expires() {
    // A 3-second token is renewed after four fifths of its life, before the service would refuse it.
    let fake = MonitorFake::start(FakeConfig { token_lifetime_secs: 3, ..FakeConfig::default() });
    let dest = destination(sink(&fake, &[]).await, 1);
    assert_eq!(deliver(&dest, messages([activity(1)])).await.counts.written, 1);
    assert_eq!(deliver(&dest, messages([activity(2)])).await.counts.written, 1);
    assert_eq!(fake.token_requests(), 1, "still valid: cached");
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    assert_eq!(deliver(&dest, messages([activity(3)])).await.counts.written, 1);
    assert_eq!(fake.token_requests(), 2, "renewed ahead of expiry");
    assert!(fake.requests().iter().all(|r| r.status == 204), "never refused: {:?}", fake.requests());
}
