//! Tests of the test harness itself: the Lambda Runtime API emulator against the real `lambda_runtime`
//! client (through the `echo-lambda` binary), and the local services the other tests rely on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    let path = workspace_bin("auditstream-e2e", "echo-lambda");
    assert_eq!(path, std::path::PathBuf::from(env!("CARGO_BIN_EXE_echo-lambda")));
    let metadata = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(metadata.is_file());
    // Asked again, it answers from its cache without building.
    let started = std::time::Instant::now();
    assert_eq!(workspace_bin("auditstream-e2e", "echo-lambda"), path);
    assert!(started.elapsed() < std::time::Duration::from_millis(100), "{:?}", started.elapsed());
}
