//! Tests of the test harness itself: the Lambda Runtime API emulator against the real `lambda_runtime`
//! client (through the `echo-lambda` binary), the local services the other tests rely on, and the
//! strict REST receivers (that they can fail a test).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auditstream_e2e::rest_receivers::{Datadog, Generic, GenericFormat, RestReceiver, Scripted, SplunkHec, SumoLogic};
use auditstream_e2e::services::{self, ServiceError};
use auditstream_e2e::{workspace_bin, InvokeError, LambdaFunction, RunningLambda};
use serde_json::json;

const INVOKE_TIMEOUT: Duration = Duration::from_secs(30);

/// echo-lambda is a bin of this package, so cargo builds it with these tests and names it; binaries of
/// other packages (the functions, the CLI) come from `workspace_bin`, checked below on this one.
fn echo_lambda() -> LambdaFunction {
    LambdaFunction::new(env!("CARGO_BIN_EXE_echo-lambda"))
}

fn spawn(function: LambdaFunction) -> RunningLambda {
    function.spawn().unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn emulator_round_trips_an_invocation_with_lambda_context() {
    let lambda = spawn(echo_lambda().function_name("echo").memory_mb(512).env("ECHO_LAMBDA_VALUE", "from-test"));
    let before_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;

    let response = lambda.invoke(json!({"Records": [{"messageId": "m-1"}]}), INVOKE_TIMEOUT).await.unwrap();

    assert_eq!(response["event"], json!({"Records": [{"messageId": "m-1"}]}));
    assert_eq!(response["function_name"], "echo");
    assert_eq!(response["memory_mb"], 512);
    assert_eq!(response["version"], "$LATEST");
    assert_eq!(response["log_group"], "/aws/lambda/echo");
    assert_eq!(response["invoked_function_arn"], "arn:aws:lambda:us-east-1:123456789012:function:echo");
    assert_eq!(response["echo_value"], "from-test");
    assert_eq!(response["home_leaked"], false, "the function's environment must not inherit the test's");
    assert!(response["trace_id"].as_str().unwrap().starts_with("Root=1-"), "{response}");
    let request_id = response["request_id"].as_str().unwrap();
    assert_eq!(request_id.len(), 36, "{request_id}");
    // The deadline the function sees is the invoke timeout from now.
    let deadline = response["deadline_ms"].as_u64().unwrap();
    let timeout_ms = INVOKE_TIMEOUT.as_millis() as u64;
    assert!(deadline >= before_ms + timeout_ms && deadline <= before_ms + timeout_ms + 5_000, "{deadline}");
    // What the function printed is captured.
    let line = lambda
        .wait_for_stdout_line(|l| l.contains(request_id), Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("no stdout line naming {request_id}; stdout: {}", lambda.stdout()));
    assert!(line.contains("handled"), "{line}");
}

#[tokio::test]
async fn one_process_serves_invocations_in_turn_with_distinct_request_ids() {
    let lambda = spawn(echo_lambda());
    let mut ids = Vec::new();
    for n in 0..3 {
        let response = lambda.invoke(json!({ "n": n }), INVOKE_TIMEOUT).await.unwrap();
        assert_eq!(response["event"]["n"], n);
        ids.push(response["request_id"].as_str().unwrap().to_owned());
    }
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), 3, "{ids:?}");
    assert!(lambda.exit_status().is_none(), "the process stays up between invocations");
}

#[tokio::test]
async fn handler_error_is_a_function_error_and_the_process_keeps_serving() {
    let lambda = spawn(echo_lambda());

    let err = lambda.invoke(json!({"fail": "bad batch"}), INVOKE_TIMEOUT).await.unwrap_err();

    match err {
        InvokeError::Function { error_type, error_message } => {
            assert_eq!(error_message, "bad batch");
            assert!(!error_type.is_empty());
        }
        other => panic!("expected a function error, got {other:?}"),
    }
    let response = lambda.invoke(json!({"after": "error"}), INVOKE_TIMEOUT).await.unwrap();
    assert_eq!(response["event"]["after"], "error");
}

#[tokio::test]
async fn init_error_is_reported_as_init_error() {
    let lambda = spawn(echo_lambda().env("ECHO_LAMBDA_INIT_ERROR", "AUDITSTREAM_S3_BUCKET is not set"));

    let err = lambda.invoke(json!({}), INVOKE_TIMEOUT).await.unwrap_err();

    match err {
        InvokeError::Init { error_type, error_message } => {
            assert_eq!(error_type, "Runtime.InitError");
            assert_eq!(error_message, "AUDITSTREAM_S3_BUCKET is not set");
        }
        other => panic!("expected an init error, got {other:?}"),
    }
}

#[tokio::test]
async fn process_exit_before_answering_carries_its_stderr() {
    let lambda = spawn(echo_lambda().env("ECHO_LAMBDA_EXIT_AT_START", "configuration is broken"));

    let err = lambda.invoke(json!({}), INVOKE_TIMEOUT).await.unwrap_err();

    match err {
        InvokeError::ProcessExited { status, stderr } => {
            assert!(status.contains('2'), "{status}");
            assert!(stderr.contains("configuration is broken"), "{stderr}");
        }
        other => panic!("expected a process exit, got {other:?}"),
    }
}

#[tokio::test]
async fn process_exit_during_an_invocation_is_reported() {
    let lambda = spawn(echo_lambda());

    let err = lambda.invoke(json!({"exit": 7}), INVOKE_TIMEOUT).await.unwrap_err();

    match err {
        InvokeError::ProcessExited { status, stderr } => {
            assert!(status.contains('7'), "{status}");
            assert!(stderr.contains("exiting with 7"), "{stderr}");
        }
        other => panic!("expected a process exit, got {other:?}"),
    }
}

#[tokio::test]
async fn an_invocation_past_its_deadline_times_out_and_the_process_is_killed() {
    let lambda = spawn(echo_lambda());

    let err = lambda.invoke(json!({"sleep_ms": 10_000}), Duration::from_millis(500)).await.unwrap_err();

    assert!(matches!(err, InvokeError::Timeout { timeout, .. } if timeout == Duration::from_millis(500)), "{err:?}");
    assert!(lambda.exit_status().is_some(), "the timed-out process is killed, as Lambda does");
    let err = lambda.invoke(json!({}), INVOKE_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, InvokeError::ProcessExited { .. }), "{err:?}");
}

#[test]
fn a_missing_service_fails_with_how_to_start_it() {
    let not_set = services::checked_endpoint("moto server", services::MOTO_ENDPOINT_VAR, None).unwrap_err();
    assert_eq!(not_set, ServiceError::NotConfigured { service: "moto server", var: services::MOTO_ENDPOINT_VAR });
    let message = not_set.to_string();
    assert!(
        message.starts_with(
            "moto server is not running: run the tests with scripts/test, or start services with `scripts/services start` and export what it prints"
        ),
        "{message}"
    );

    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let closed = services::checked_endpoint("moto server", services::MOTO_ENDPOINT_VAR, Some(url.clone())).unwrap_err();
    assert!(matches!(closed, ServiceError::NotAnswering { .. }), "{closed:?}");
    assert!(closed.to_string().contains(&url) && closed.to_string().contains("scripts/services start"), "{closed}");

    let bad = services::checked_endpoint("Azurite", services::AZURITE_BLOB_ENDPOINT_VAR, Some("localhost".into()));
    assert!(matches!(bad, Err(ServiceError::BadUrl { .. })), "{bad:?}");

    let no_python = services::checked_executable("the test Python venv", services::PYTHON_VAR, Some("/nonexistent/python".into()));
    assert!(matches!(no_python, Err(ServiceError::NotInstalled { .. })), "{no_python:?}");
}

#[tokio::test]
async fn moto_serves_s3_and_honours_if_none_match() {
    let s3 = services::moto_s3_client();
    let bucket = services::create_bucket(&s3, "selftest").await;
    let key = "u1/jobs/r1/20260101/j1/u1-r1-j1-20260101000000-succeeded.json";
    let body = br#"{"id":"j1","status":"succeeded"}"#;

    s3.put_object()
        .bucket(&bucket)
        .key(key)
        .if_none_match("*")
        .content_type("application/json")
        .body(body.to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("first conditional put: {e:?}"));
    let second = s3
        .put_object()
        .bucket(&bucket)
        .key(key)
        .if_none_match("*")
        .body(b"{}".to_vec().into())
        .send()
        .await
        .expect_err("a second If-None-Match: * put of the same key must fail");

    let raw = second.raw_response().map(|r| r.status().as_u16());
    assert_eq!(raw, Some(412), "{second:?}");
    // The S3 error code the writer can match on, as real S3 sends it.
    use aws_sdk_s3::error::ProvideErrorMetadata;
    assert_eq!(second.code(), Some("PreconditionFailed"), "{second:?}");
    let got = s3.get_object().bucket(&bucket).key(key).send().await.unwrap();
    assert_eq!(got.content_type(), Some("application/json"));
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), body, "the first object stays");
}

#[tokio::test]
async fn moto_serves_sqs_with_a_redrive_policy() {
    let sqs = services::moto_sqs_client();
    let (queue, dlq) = services::create_queue_with_dlq(&sqs, "selftest", 5, &[("VisibilityTimeout", "30")]).await;
    assert_ne!(queue.url, dlq.url);
    assert!(dlq.arn.starts_with("arn:aws:sqs:us-east-1:"), "{}", dlq.arn);

    sqs.send_message().queue_url(&queue.url).message_body(r#"{"id":"j1"}"#).send().await.unwrap();
    let received = sqs.receive_message().queue_url(&queue.url).max_number_of_messages(10).wait_time_seconds(1).send().await.unwrap();
    let bodies: Vec<_> = received.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, vec![r#"{"id":"j1"}"#]);

    let attributes =
        sqs.get_queue_attributes().queue_url(&queue.url).attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy).send().await.unwrap();
    let policy = attributes.attributes().and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)).unwrap();
    assert!(policy.contains(&dlq.arn), "{policy}");
}

#[test]
fn azurite_answers_at_its_blob_endpoint() {
    let endpoint = services::azurite_blob_endpoint();
    assert!(endpoint.ends_with("/devstoreaccount1"), "{endpoint}");
}

#[test]
fn the_test_python_has_moto_boto3_and_the_sqs_extended_client() {
    let output = std::process::Command::new(services::python()).args(["-c", "import boto3, moto, sqs_extended_client; print('ok')"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok");
}

#[test]
fn workspace_bin_builds_and_finds_a_workspace_binary() {
    use std::os::unix::fs::MetadataExt;
    let path = workspace_bin("auditstream-e2e", "echo-lambda");
    // Not the shared `debug/echo-lambda`, which every checkout sharing the target directory
    // overwrites: a folder of this checkout's own under the target directory.
    let shared = std::path::PathBuf::from(env!("CARGO_BIN_EXE_echo-lambda"));
    let target = shared.parent().and_then(std::path::Path::parent).unwrap();
    assert_eq!(path.file_name(), shared.file_name());
    assert!(path.starts_with(target.join("by-checkout")), "{}", path.display());
    assert_ne!(path.parent(), shared.parent());
    // The very file cargo compiled in this build (`debug/deps/echo_lambda-HASH`, hard-linked there
    // by cargo itself), not a copy taken after the build, when another checkout may have replaced
    // the shared one.
    let metadata = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(metadata.is_file());
    let compiled = std::fs::read_dir(target.join("debug/deps"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("echo_lambda-") || e.file_name().to_string_lossy().starts_with("echo-lambda-"))
        .find(|e| e.metadata().is_ok_and(|m| (m.dev(), m.ino()) == (metadata.dev(), metadata.ino())));
    assert!(compiled.is_some(), "{} is no compiled artifact of the build directory", path.display());
    // Asked again, it answers from its cache without building.
    let started = std::time::Instant::now();
    assert_eq!(workspace_bin("auditstream-e2e", "echo-lambda"), path);
    assert!(started.elapsed() < std::time::Duration::from_millis(100), "{:?}", started.elapsed());
}

/// A request to a strict receiver: the path after its base URL, the headers and the body.
struct Post {
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
}

fn post(path: &'static str, headers: &[(&'static str, &'static str)], body: impl Into<Vec<u8>>) -> Post {
    Post { path, headers: headers.to_vec(), body: body.into() }
}

/// Sends `request` to `receiver`; the answer's status.
async fn send_to(receiver: &RestReceiver, request: &Post) -> u16 {
    let client = reqwest::Client::new();
    let mut builder = client.post(format!("{}{}", receiver.base_url(), request.path)).body(request.body.clone());
    for (name, value) in &request.headers {
        builder = builder.header(*name, *value);
    }
    builder.send().await.unwrap_or_else(|e| panic!("{}: {e}", request.path)).status().as_u16()
}

/// Each strict REST receiver takes the request its vendor documents, and refuses what a correct
/// client never sends with the vendor's status, recording it as a violation: the receivers can
/// fail a test. What only a configuration gets wrong (a wrong token, a limit set below the
/// vendor's) is refused without being a violation.
#[tokio::test]
async fn each_rest_receiver_takes_its_vendors_request_and_records_what_breaks_the_contract() {
    const HEC: &str = "/services/collector/event";
    const IDS: (&str, &str) = ("x-auditstream-event-ids", "j-1");
    let hec_auth = ("authorization", "Splunk hec-token-1");
    let json = ("content-type", "application/json");
    let dd_key = ("dd-api-key", "dd-key-1");
    let sumo = "/receiver/v1/http/CODE1";
    let ndjson = ("content-type", "application/x-ndjson");
    let big = |n: usize| format!("{{\"id\":\"j-1\",\"x\":\"{}\"}}", "a".repeat(n - 18));
    // A request refused: its status, and a word of the violation it is (None: it is none).
    type Refused = (Post, u16, Option<&'static str>);
    // Each receiver, the request its vendor documents and its status, and requests it refuses.
    let cases: Vec<(RestReceiver, (Post, u16), Vec<Refused>)> = vec![
        (
            RestReceiver::start(SplunkHec { token: "hec-token-1".into(), allowed_indexes: vec!["audit".into()] }),
            (post(HEC, &[hec_auth, json, IDS], r#"{"time":1.5,"index":"audit","event":{"id":"j-1"}}"#), 200),
            vec![
                (post(HEC, &[hec_auth, json, IDS], r#"[{"time":1.5,"event":{"id":"j-1"}}]"#), 400, Some("not an envelope object")),
                (post(HEC, &[hec_auth, json, IDS], r#"{"time":1.5,"event":{"id":"j-1"},"service":"x"}"#), 400, Some("unknown key")),
                (post(HEC, &[hec_auth, json, IDS], r#"{"time":"1.5","event":{"id":"j-1"}}"#), 400, Some("`time`")),
                (post(HEC, &[hec_auth, json, IDS], r#"{"index":"main","event":{"id":"j-1"}}"#), 400, Some("not allowed")),
                (post(HEC, &[hec_auth, json], r#"{"event":{"id":"j-1"}}"#), 400, Some("X-Auditstream-Event-Ids")),
                (post(HEC, &[("authorization", "Bearer hec-token-1"), json, IDS], r#"{"event":{"id":"j-1"}}"#), 401, Some("Splunk <token>")),
                (post("/services/collector/raw", &[hec_auth, json, IDS], r#"{"event":{"id":"j-1"}}"#), 404, Some("path")),
                (post(HEC, &[("authorization", "Splunk another-token"), json, IDS], r#"{"event":{"id":"j-1"}}"#), 403, None),
            ],
        ),
        (
            RestReceiver::start(Datadog { api_key: "dd-key-1".into() }),
            (post("/api/v2/logs", &[dd_key, json, IDS], r#"[{"ddsource":"workato","message":"{\"id\":\"j-1\"}"}]"#), 202),
            vec![
                (post("/api/v2/logs", &[dd_key, json, IDS], r#"[{"message":{"id":"j-1"}}]"#), 400, Some("`message`")),
                (post("/api/v2/logs", &[dd_key, json, IDS], r#"{"message":"{\"id\":\"j-1\"}"}"#), 400, Some("not an array")),
                (post("/api/v2/logs", &[dd_key, IDS], r#"[{"message":"{\"id\":\"j-1\"}"}]"#), 400, Some("Content-Type")),
                (
                    post("/api/v2/logs", &[dd_key, json, IDS], format!(r#"[{{"message":{}}}]"#, serde_json::to_string(&big(1_000_100)).unwrap())),
                    202,
                    Some("truncated"),
                ),
                (post("/api/v2/logs", &[json, IDS], r#"[{"message":"{\"id\":\"j-1\"}"}]"#), 401, Some("DD-API-KEY")),
                (post("/api/v2/logs", &[("dd-api-key", "another"), json, IDS], r#"[{"message":"{\"id\":\"j-1\"}"}]"#), 403, None),
            ],
        ),
        (
            RestReceiver::start(SumoLogic { code: "CODE1".into() }),
            (post(sumo, &[IDS], r#"{"id":"j-1"}"#), 200),
            vec![
                (post(sumo, &[IDS, ("content-encoding", "br")], r#"{"id":"j-1"}"#), 415, Some("Content-Encoding")),
                (post(sumo, &[IDS], r#"["j-1"]"#), 400, Some("not a JSON object")),
                (post(sumo, &[IDS], big(1_000_001)), 413, Some("vendor's own limit")),
                (post("/receiver/v1/http/OTHER", &[IDS], r#"{"id":"j-1"}"#), 401, None),
            ],
        ),
        (
            RestReceiver::start(Generic { path: "/bulk".into(), auth: None, format: GenericFormat::Ndjson }),
            (post("/bulk", &[ndjson, IDS], "{\"id\":\"j-1\"}\n"), 200),
            vec![
                (post("/bulk", &[ndjson, IDS], r#"{"id":"j-1"}"#), 400, Some("no line end")),
                (post("/bulk", &[json, IDS], "{\"id\":\"j-1\"}\n"), 415, Some("Content-Type")),
                (post("/bulk", &[ndjson, ("x-auditstream-event-ids", "j-2")], "{\"id\":\"j-1\"}\n"), 400, Some("the event's id")),
                (post("/bulk", &[ndjson, IDS], format!("{}\n", big(1_048_577))), 413, None),
            ],
        ),
    ];
    for (receiver, (good, status), bad) in cases {
        assert_eq!(send_to(&receiver, &good).await, status, "{}: {}", good.path, String::from_utf8_lossy(&good.body));
        assert_eq!(receiver.accepted_events(), vec![json!({"id": "j-1"})]);
        assert_eq!(receiver.violations(), Vec::<String>::new());
        for (request, status, violation) in bad {
            let before = receiver.violations().len();
            let what = String::from_utf8_lossy(&request.body).chars().take(100).collect::<String>();
            assert_eq!(send_to(&receiver, &request).await, status, "{} {:?}: {what}", request.path, request.headers);
            let violations = receiver.violations();
            match violation {
                Some(word) => {
                    assert_eq!(violations.len(), before + 1, "{what}: {violations:?}");
                    assert!(violations[before].contains(word), "{what}: {} lacks {word:?}", violations[before]);
                }
                None => assert_eq!(violations.len(), before, "{what}: {violations:?}"),
            }
        }
    }
}

/// A receiver's limit set below the vendor's answers 413 without a violation (the client was
/// configured for more); a scripted fault is answered after the request passes the checks.
#[tokio::test]
async fn a_rest_receiver_answers_a_lowered_limit_and_scripted_faults_without_a_violation() {
    let receiver = RestReceiver::start(SumoLogic { code: "CODE1".into() });
    let request = post("/receiver/v1/http/CODE1", &[("x-auditstream-event-ids", "j-1")], r#"{"id":"j-1","x":"0123456789"}"#);
    receiver.set_max_request_bytes(16);
    assert_eq!(send_to(&receiver, &request).await, 413);
    receiver.set_max_request_bytes(1_000_000);
    receiver.respond_next([Scripted::status(429).header("retry-after", "1")]);
    assert_eq!(send_to(&receiver, &request).await, 429);
    assert_eq!(send_to(&receiver, &request).await, 200);
    assert_eq!(receiver.violations(), Vec::<String>::new());
    assert_eq!(receiver.requests().iter().map(|r| r.status).collect::<Vec<_>>(), [413, 429, 200]);
    assert_eq!(receiver.accepted_events().len(), 1);
}
