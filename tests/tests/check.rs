//! `auditstream check`, end to end with the built binary: a `dir:` destination, S3 (moto) and the
//! strict REST receivers. Each healthy destination passes every step and gets one probe, marked as
//! a probe, under `_auditstream/health/` (object stores) or as one event of type
//! `auditstream_health_check` (log services); each failure names its step, the service's status or
//! code and a fix, and exits 1; a usage or configuration error exits 2; no output holds a secret.

use std::process::{Command, Output};

use auditstream_e2e::rest_receivers::{Datadog, Generic, GenericFormat, RestReceiver, SplunkHec, SumoLogic};
use auditstream_e2e::{create_bucket, moto_env, moto_s3_client, unique_name, workspace_bin};
use serde_json::Value;

const HEC_TOKEN: &str = "8d3ef2a1-5b7c-4e9f-a0d1-c2b3a4f5e6d7";
const DD_API_KEY: &str = "dd0123456789abcdef0123456789abcd";
const SUMO_CODE: &str = "ZaVnC4dhaV3uTKlva1XKHgGQ0wfRo5cRZ1ih28BnQCRXs0rGm5NUn4sD";
const BEARER: &str = "gen-bearer-7f3e9c2a";
/// A token that is wrong, planted to prove it appears in no output (the generic receiver echoes
/// what it received on a 401).
const PLANTED: &str = "planted-SECRET-91c4e7d2b8a3";

struct Checked {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Checked {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("--json prints one JSON object ({e}): {}", self.stdout))
    }
    fn steps(&self) -> Vec<(String, String)> {
        self.json()["steps"].as_array().unwrap().iter().map(|s| (s["step"].as_str().unwrap().to_owned(), s["result"].as_str().unwrap().to_owned())).collect()
    }
    /// The failed step's name and detail.
    fn failure(&self) -> (String, String) {
        let json = self.json();
        let failed = json["steps"].as_array().unwrap().iter().find(|s| s["result"] == "failed").unwrap_or_else(|| panic!("no step failed: {}", self.stdout));
        (failed["step"].as_str().unwrap().to_owned(), failed["detail"].as_str().unwrap().to_owned())
    }
}

/// `auditstream check --to DEST [--json]` with only `env` (and PATH) set.
fn check(to: &str, json: bool, env: &[(String, String)]) -> Checked {
    let mut command = Command::new(workspace_bin("auditstream-cli", "auditstream"));
    command.arg("check").arg("--to").arg(to);
    if json {
        command.arg("--json");
    }
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).envs(env.iter().map(|(k, v)| (k, v)));
    let Output { status, stdout, stderr } = command.output().unwrap_or_else(|e| panic!("spawn auditstream: {e}"));
    Checked { code: status.code(), stdout: String::from_utf8_lossy(&stdout).into_owned(), stderr: String::from_utf8_lossy(&stderr).into_owned() }
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn steps(names: &[(&str, &str)]) -> Vec<(String, String)> {
    names.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn a_writable_directory_is_healthy_and_a_file_in_its_place_fails_the_permission_step() {
    let dir = std::env::temp_dir().join(unique_name("check-dir"));
    let ok = check(&format!("dir:{}", dir.display()), false, &[]);
    assert_eq!(ok.code, Some(0), "{}{}", ok.stdout, ok.stderr);
    let lines: Vec<&str> = ok.stdout.lines().collect();
    assert_eq!(lines[0], format!("check dir:{}", dir.display()));
    assert!(lines[1].contains("ok") && lines[1].contains("configuration"), "{}", ok.stdout);
    assert!(lines[2].contains("ok") && lines[2].contains("permission") && lines[2].contains("_auditstream/health/"), "{}", ok.stdout);
    assert!(lines[3].contains("ok") && lines[3].contains("read-back"), "{}", ok.stdout);
    assert_eq!(lines.last(), Some(&"healthy"));

    let file = std::env::temp_dir().join(unique_name("check-file"));
    std::fs::write(&file, b"not a directory").unwrap();
    let bad = check(&format!("dir:{}", file.display()), true, &[]);
    assert_eq!(bad.code, Some(1), "{}", bad.stdout);
    assert_eq!(bad.json()["healthy"], false);
    assert_eq!(bad.steps(), steps(&[("configuration", "passed"), ("permission", "failed")]));
    assert!(bad.failure().1.contains("not a directory"), "{:?}", bad.failure());
    std::fs::remove_dir_all(dir).ok();
    std::fs::remove_file(file).ok();
}

#[test]
fn a_usage_or_configuration_error_exits_2_naming_the_variable() {
    let usage = check("ftp://nowhere", false, &[]);
    assert_eq!(usage.code, Some(2));
    assert!(usage.stderr.contains("expected dir:PATH"), "{}", usage.stderr);

    let config = check("rest", true, &env(&[("AUDITSTREAM_REST_URL", "https://logs.example.com/in"), ("AUDITSTREAM_REST_PRESET", "splunk")]));
    assert_eq!(config.code, Some(2), "{}{}", config.stdout, config.stderr);
    let (step, detail) = config.failure();
    assert_eq!(step, "configuration");
    assert!(detail.contains("AUDITSTREAM_REST_PRESET"), "{detail}");
}

#[tokio::test]
async fn s3_is_healthy_on_moto_with_a_probe_under_the_health_prefix_and_a_missing_bucket_or_endpoint_is_named() {
    let s3 = moto_s3_client();
    let bucket = create_bucket(&s3, "check").await;
    let ok = check(&format!("s3://{bucket}/workato"), true, &moto_env());
    assert_eq!(ok.code, Some(0), "{}{}", ok.stdout, ok.stderr);
    assert_eq!(
        ok.steps(),
        steps(&[
            ("configuration", "passed"),
            ("credentials", "passed"),
            ("reachability", "passed"),
            ("authentication", "passed"),
            ("permission", "passed"),
            ("read-back", "passed")
        ])
    );
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys.len(), 1, "one probe, nothing else: {keys:?}");
    assert!(keys[0].starts_with("workato/_auditstream/health/"), "{keys:?}");
    let probe = s3.get_object().bucket(&bucket).key(keys[0]).send().await.unwrap().body.collect().await.unwrap().into_bytes();
    let probe: Value = serde_json::from_slice(&probe).unwrap();
    assert_eq!(probe["event_type"], "auditstream_health_check");
    assert_eq!(probe["auditstream_probe"], true);

    let missing = check(&format!("s3://{}", unique_name("no-such-bucket")), true, &moto_env());
    assert_eq!(missing.code, Some(1));
    let (step, detail) = missing.failure();
    assert_eq!(step, "reachability");
    assert!(detail.contains("HTTP 404") && detail.contains("no such bucket") && detail.contains("AUDITSTREAM_S3_BUCKET"), "{detail}");

    let mut unreachable = moto_env();
    unreachable.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    unreachable.push(("AWS_ENDPOINT_URL".into(), "http://127.0.0.1:1".into()));
    let down = check(&format!("s3://{bucket}"), true, &unreachable);
    assert_eq!(down.code, Some(1));
    let (step, detail) = down.failure();
    assert_eq!(step, "reachability");
    assert!(detail.contains("Connection refused") && detail.contains("AWS_ENDPOINT_URL"), "{detail}");

    let mut anonymous = moto_env();
    anonymous.retain(|(k, _)| !k.starts_with("AWS_ACCESS_KEY_ID") && !k.starts_with("AWS_SECRET"));
    anonymous.extend(env(&[("AWS_CONFIG_FILE", "/nonexistent"), ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"), ("AWS_EC2_METADATA_DISABLED", "true")]));
    let unsigned = check(&format!("s3://{bucket}"), true, &anonymous);
    assert_eq!(unsigned.code, Some(1));
    let (step, detail) = unsigned.failure();
    assert_eq!(step, "credentials");
    assert!(detail.contains("AWS_ACCESS_KEY_ID"), "{detail}");
}

/// With an SSE-KMS key configured, the probe is written with it, as events are: the write the check
/// makes is the one that fails when the role may not use the key.
///
/// moto cannot show that failure: moto 5.2.5 stores a PutObject with any
/// `x-amz-server-side-encryption-aws-kms-key-id` (a key ARN or alias that does not exist, a
/// malformed id, a key disabled or scheduled for deletion in moto's own KMS), and its KMS
/// `GenerateDataKey` succeeds on disabled and pending-deletion keys. The refusals S3 documents
/// (`KMS.DisabledException`, `KMS.KMSInvalidStateException`, `KMS.NotFoundException`, 403 for a
/// role without `kms:GenerateDataKey`) are checked against a fake S3 in the shared crate's
/// `destinations::s3` tests. What moto does hold, and this test checks, is the key a probe was
/// written with.
#[tokio::test]
async fn s3_with_an_sse_kms_key_writes_the_probe_with_that_key_on_moto() {
    let s3 = moto_s3_client();
    let bucket = create_bucket(&s3, "check-kms").await;
    let kms = aws_sdk_kms::Client::new(&auditstream_e2e::moto_sdk_config().await);
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().arn.unwrap();
    let mut vars = moto_env();
    vars.push(("AUDITSTREAM_S3_SSE_KMS_KEY_ID".into(), key.clone()));

    let ok = check(&format!("s3://{bucket}/workato"), true, &vars);

    assert_eq!(ok.code, Some(0), "{}{}", ok.stdout, ok.stderr);
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let head = s3.head_object().bucket(&bucket).key(keys[0]).send().await.unwrap();
    assert_eq!(head.server_side_encryption(), Some(&aws_sdk_s3::types::ServerSideEncryption::AwsKms));
    assert_eq!(head.ssekms_key_id(), Some(key.as_str()));
}

fn splunk() -> RestReceiver {
    RestReceiver::start(SplunkHec { token: HEC_TOKEN.into(), allowed_indexes: vec!["audit".into()] })
}

fn datadog() -> RestReceiver {
    RestReceiver::start(Datadog { api_key: DD_API_KEY.into() })
}

/// The variables of a REST preset pointed at `receiver`, with `token`.
fn rest_vars(preset: &str, receiver: &RestReceiver, token: &str) -> Vec<(String, String)> {
    env(&[("AUDITSTREAM_REST_PRESET", preset), ("AUDITSTREAM_REST_URL", &receiver.url()), ("AUDITSTREAM_REST_TOKEN", token)])
}

/// Each preset's steps: Splunk HEC's health endpoint is the reachability step and Datadog's API
/// key validation the authentication step, each before the probe; Sumo Logic and the generic
/// endpoint take the probe alone.
#[test]
fn each_rest_preset_runs_its_vendors_pre_check_then_takes_one_probe_event_the_strict_receivers_accept() {
    let only_the_probe = [("configuration", "passed"), ("permission", "passed"), ("read-back", "skipped")];
    /// A receiver, its settings, the steps the check reports, and the path of its pre-check.
    type Case = (RestReceiver, Vec<(&'static str, String)>, Vec<(&'static str, &'static str)>, Option<&'static str>);
    let cases: Vec<Case> = vec![
        (
            splunk(),
            vec![("AUDITSTREAM_REST_PRESET", "splunk_hec".into()), ("AUDITSTREAM_REST_TOKEN", HEC_TOKEN.into())],
            vec![("configuration", "passed"), ("reachability", "passed"), ("permission", "passed"), ("read-back", "skipped")],
            Some("/services/collector/health"),
        ),
        (
            datadog(),
            vec![("AUDITSTREAM_REST_PRESET", "datadog".into()), ("AUDITSTREAM_REST_TOKEN", DD_API_KEY.into())],
            vec![("configuration", "passed"), ("reachability", "passed"), ("authentication", "passed"), ("permission", "passed"), ("read-back", "skipped")],
            Some("/api/v1/validate"),
        ),
        (
            RestReceiver::start(SumoLogic { code: SUMO_CODE.into() }),
            // The code is the token here, so the URL ends at /receiver/v1/http.
            vec![("AUDITSTREAM_REST_PRESET", "sumo_logic".into()), ("AUDITSTREAM_REST_TOKEN", SUMO_CODE.into()), ("AUDITSTREAM_REST_URL", String::new())],
            only_the_probe.to_vec(),
            None,
        ),
        (
            RestReceiver::start(Generic {
                path: "/ingest".into(),
                auth: Some(("authorization".into(), format!("Bearer {BEARER}"))),
                format: GenericFormat::Json,
            }),
            vec![("AUDITSTREAM_REST_AUTH", "bearer".into()), ("AUDITSTREAM_REST_TOKEN", BEARER.into())],
            only_the_probe.to_vec(),
            None,
        ),
    ];
    for (receiver, settings, want, pre_check) in cases {
        let mut vars: Vec<(String, String)> = settings.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        vars.retain(|(k, _)| k != "AUDITSTREAM_REST_URL");
        let sumo = receiver.url().contains("/receiver/v1/http/");
        vars.push(("AUDITSTREAM_REST_URL".into(), if sumo { format!("{}/receiver/v1/http", receiver.base_url()) } else { receiver.url() }));
        let ok = check("rest", true, &vars);
        assert_eq!(ok.code, Some(0), "{}: {}{}", receiver.url(), ok.stdout, ok.stderr);
        assert_eq!(ok.steps(), steps(&want), "{}: {}", receiver.url(), ok.stdout);
        let events = receiver.accepted_events();
        assert_eq!(events.len(), 1, "{}: one probe event", receiver.url());
        assert!(events[0].to_string().contains("auditstream_health_check"), "{}: {}", receiver.url(), events[0]);
        assert_eq!(receiver.violations(), Vec::<String>::new());
        // The pre-check, if any, is one request before the probe, answered 200.
        let requests: Vec<(String, u16)> = receiver.requests().iter().map(|r| (r.path.clone(), r.status)).collect();
        match pre_check {
            Some(path) => assert_eq!((requests.len(), &requests[0]), (2, &(path.to_owned(), 200)), "{requests:?}"),
            None => assert_eq!(requests.len(), 1, "{requests:?}"),
        }
    }
}

#[test]
fn an_unhealthy_splunk_hec_fails_the_reachability_step_and_gets_no_probe() {
    let receiver = splunk();
    receiver.set_unhealthy(true);
    let unhealthy = check("rest", true, &rest_vars("splunk_hec", &receiver, HEC_TOKEN));
    assert_eq!(unhealthy.code, Some(1), "{}{}", unhealthy.stdout, unhealthy.stderr);
    assert_eq!(unhealthy.steps(), steps(&[("configuration", "passed"), ("reachability", "failed")]));
    let (_, detail) = unhealthy.failure();
    assert!(detail.contains("/services/collector/health") && detail.contains("HTTP 503") && detail.contains("HEC is unhealthy, queues are full"), "{detail}");
    assert!(receiver.accepted_events().is_empty() && receiver.requests().len() == 1, "no probe after a failed step: {:?}", receiver.requests().len());
    assert!(!unhealthy.stdout.contains(HEC_TOKEN), "{}", unhealthy.stdout);
    // The health endpoint takes no token, and is sent none.
    assert_eq!(receiver.requests()[0].header("authorization"), None);
}

#[test]
fn a_datadog_api_key_that_is_not_valid_fails_the_authentication_step_and_gets_no_probe() {
    let receiver = datadog();
    for json in [true, false] {
        let refused = check("rest", json, &rest_vars("datadog", &receiver, PLANTED));
        assert_eq!(refused.code, Some(1), "{}{}", refused.stdout, refused.stderr);
        assert!(!refused.stdout.contains(PLANTED) && !refused.stderr.contains(PLANTED), "the key leaked:\n{}\n{}", refused.stdout, refused.stderr);
        if json {
            assert_eq!(refused.steps(), steps(&[("configuration", "passed"), ("reachability", "passed"), ("authentication", "failed")]));
            let (_, detail) = refused.failure();
            assert!(detail.contains("/api/v1/validate") && detail.contains("HTTP 403") && detail.contains("Forbidden"), "{detail}");
            assert!(detail.contains("AUDITSTREAM_DATADOG_SITE"), "{detail}");
        }
    }
    assert!(receiver.accepted_events().is_empty(), "no probe after a failed step");
    assert!(receiver.requests().iter().all(|r| r.path == "/api/v1/validate" && r.header("dd-api-key") == Some(PLANTED)), "{:?}", receiver.requests().len());
    assert_eq!(receiver.violations(), Vec::<String>::new());
}

/// A Datadog API key planted to be echoed: `/`, `+`, `=`, `?` and `>` make its percent-encoded
/// form differ from it, and its base64 forms differ from each other (`+` or `-`, padded or not).
const PLANTED_DD_KEY: &str = "planted/DD+key=SECRET-?>4f0b9e6a1c";

/// The forms a server may echo a credential in: as sent, percent-encoded (a form body or a query
/// string: `%2F`, `%2B`, `%3D`) and base64 (with and without padding, standard and URL-safe).
fn encodings(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine;
    let percent: String =
        secret.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect();
    let mut forms = vec![secret.to_owned(), percent];
    forms.extend([STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().map(|engine| engine.encode(secret)));
    forms
}

/// A careless validation endpoint answers 403 with the key it got, in every encoding, in its
/// error: the authentication step fails quoting that error, and no form of the key is in what
/// `check` prints (the report, the failure, the log lines, at the most verbose log level).
#[test]
fn a_datadog_validation_error_echoing_the_api_key_in_any_encoding_leaves_it_in_no_output() {
    use axum::http::{HeaderMap, StatusCode};
    async fn validate(headers: HeaderMap) -> (StatusCode, String) {
        let key = headers.get("dd-api-key").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).unwrap_or_default();
        let error = format!("API key not valid: {}", encodings(&key).join(" / "));
        (StatusCode::FORBIDDEN, serde_json::json!({ "errors": [error] }).to_string())
    }
    let server =
        auditstream_e2e::fake_server::FakeServer::start("echoing-validate", axum::Router::new().route("/api/v1/validate", axum::routing::get(validate)));
    let forms = encodings(PLANTED_DD_KEY);
    assert_eq!(forms.iter().collect::<std::collections::BTreeSet<_>>().len(), 6, "each form differs: {forms:?}");
    let vars = env(&[
        ("AUDITSTREAM_REST_PRESET", "datadog"),
        ("AUDITSTREAM_REST_URL", &format!("{}/api/v2/logs", server.base_url())),
        ("AUDITSTREAM_REST_TOKEN", PLANTED_DD_KEY),
        ("RUST_LOG", "trace"),
    ]);
    for json in [true, false] {
        let refused = check("rest", json, &vars);
        assert_eq!(refused.code, Some(1), "{}{}", refused.stdout, refused.stderr);
        let printed = format!("{}\n{}", refused.stdout, refused.stderr);
        for form in &forms {
            assert!(!printed.contains(form.as_str()), "the key leaked as {form}:\n{printed}");
        }
        if json {
            let (step, detail) = refused.failure();
            assert_eq!(step, "authentication", "{}", refused.stdout);
            // the vendor's error is quoted, with each form of the key taken out of it
            assert!(detail.contains("HTTP 403") && detail.contains("API key not valid: [redacted] / [redacted] / [redacted]"), "{detail}");
        }
    }
}

/// A port nothing listens on: the probe (generic) and the pre-check (Splunk HEC) get no answer,
/// which is the reachability step, not the permission step.
#[test]
fn an_unreachable_rest_endpoint_fails_the_reachability_step() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.local_addr().expect("its address").port()
    };
    let base = format!("http://127.0.0.1:{closed}");
    let cases = [
        env(&[("AUDITSTREAM_REST_URL", &format!("{base}/ingest"))]),
        env(&[("AUDITSTREAM_REST_PRESET", "splunk_hec"), ("AUDITSTREAM_REST_URL", &base), ("AUDITSTREAM_REST_TOKEN", HEC_TOKEN)]),
    ];
    for vars in cases {
        let down = check("rest", true, &vars);
        assert_eq!(down.code, Some(1), "{vars:?}: {}{}", down.stdout, down.stderr);
        let (step, detail) = down.failure();
        assert_eq!(step, "reachability", "{vars:?}: {}", down.stdout);
        assert!(detail.contains("cannot connect") && detail.contains(&base), "{detail}");
        assert!(!down.steps().iter().any(|(step, _)| step == "permission"), "{}", down.stdout);
    }
}

#[test]
fn a_refused_token_fails_the_permission_step_with_the_status_and_no_secret_in_any_output() {
    let receiver =
        RestReceiver::start(Generic { path: "/ingest".into(), auth: Some(("authorization".into(), format!("Bearer {BEARER}"))), format: GenericFormat::Json });
    let vars = env(&[("AUDITSTREAM_REST_URL", &receiver.url()), ("AUDITSTREAM_REST_AUTH", "bearer"), ("AUDITSTREAM_REST_TOKEN", PLANTED)]);
    for json in [true, false] {
        let refused = check("rest", json, &vars);
        assert_eq!(refused.code, Some(1), "{}{}", refused.stdout, refused.stderr);
        assert!(!refused.stdout.contains(PLANTED) && !refused.stderr.contains(PLANTED), "the token leaked:\n{}\n{}", refused.stdout, refused.stderr);
        if json {
            let (step, detail) = refused.failure();
            assert_eq!(step, "permission");
            assert!(detail.contains("401"), "{detail}");
        }
    }
    assert!(receiver.requests().iter().any(|r| r.header("authorization").is_some_and(|a| a.contains(PLANTED))), "the receiver saw the token it echoes");
}

/// Waits up to ten seconds for a stderr line of `lambda` that `predicate` accepts (the assertion
/// that follows says what was there if none came).
async fn stderr_line(lambda: &auditstream_e2e::RunningLambda, predicate: impl Fn(&str) -> bool) {
    let started = std::time::Instant::now();
    while !lambda.stderr().lines().any(&predicate) && started.elapsed() < std::time::Duration::from_secs(10) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The built `s3-writer` under the Runtime API emulator: its schedule's event runs the check for
/// its own bucket, logs each step and writes `Healthy` in an EMF line; an SQS event is still a batch.
#[tokio::test]
async fn the_built_function_checks_its_own_destination_on_its_schedule_and_emits_healthy() {
    use auditstream_e2e::LambdaFunction;
    use std::time::Duration;
    let s3 = moto_s3_client();
    let bucket = create_bucket(&s3, "check-sched").await;
    let healthy_emf = |stdout: String| -> Vec<Value> {
        stdout.lines().filter(|l| l.contains("\"Healthy\"")).map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    };

    let lambda = LambdaFunction::new(workspace_bin("s3-writer", "s3-writer"))
        .function_name("s3-writer")
        .envs(moto_env())
        .env("AUDITSTREAM_S3_BUCKET", bucket.clone())
        .env("AUDITSTREAM_S3_PREFIX", "workato")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let schedule = serde_json::json!({"auditstream": "health-check"});
    let answer = lambda.invoke(schedule.clone(), Duration::from_secs(60)).await.unwrap_or_else(|e| panic!("{e}\nstderr: {}", lambda.stderr()));
    assert_eq!(answer["healthy"], true, "{answer}");
    // The function's output reaches the test through pipes read on their own threads: a line can
    // trail the response, so wait for it (and for the log line below) before reading.
    lambda.wait_for_stdout_line(|l| l.contains("\"Healthy\""), Duration::from_secs(10)).await;
    let emf = healthy_emf(lambda.stdout());
    assert_eq!(emf.len(), 1, "{}", lambda.stdout());
    assert_eq!((emf[0]["Healthy"].as_u64(), emf[0]["FunctionName"].as_str()), (Some(1), Some("s3-writer")));
    assert_eq!(emf[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "Healthy");
    let listed = s3.list_objects_v2().bucket(&bucket).prefix("workato/_auditstream/health/").send().await.unwrap();
    assert_eq!(listed.contents().len(), 1, "one probe under the health prefix");
    stderr_line(&lambda, |l| l.contains("health check done")).await;
    assert!(lambda.stderr().contains("health check done"), "{}", lambda.stderr());
    // The same process still takes SQS batches.
    let batch = lambda
        .invoke_file(auditstream_e2e::workspace_root().join("events/sqs-user-login.json"), Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}\nstderr: {}", lambda.stderr()));
    assert_eq!(batch, serde_json::json!({"batchItemFailures": []}));

    // A bucket that is not there: Healthy 0, and the failed step is logged as an error.
    let missing = LambdaFunction::new(workspace_bin("s3-writer", "s3-writer"))
        .function_name("s3-writer")
        .envs(moto_env())
        .env("AUDITSTREAM_S3_BUCKET", unique_name("no-such-bucket"))
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = missing.invoke(schedule, Duration::from_secs(60)).await.unwrap_or_else(|e| panic!("{e}\nstderr: {}", missing.stderr()));
    assert_eq!(answer["healthy"], false, "{answer}");
    missing.wait_for_stdout_line(|l| l.contains("\"Healthy\""), Duration::from_secs(10)).await;
    let emf = healthy_emf(missing.stdout());
    assert_eq!(emf.len(), 1, "{}", missing.stdout());
    assert_eq!(emf[0]["Healthy"].as_u64(), Some(0));
    stderr_line(&missing, |l| l.contains("ERROR") && l.contains("reachability") && l.contains("404")).await;
    let logs = missing.stderr();
    assert!(logs.lines().any(|l| l.contains("ERROR") && l.contains("reachability") && l.contains("404")), "{logs}");

    // Anything else is refused, naming what the function takes.
    let err = missing.invoke(serde_json::json!({"hello": "world"}), Duration::from_secs(30)).await.expect_err("not an event this function takes");
    assert!(err.to_string().contains("health-check"), "{err}");
}

#[tokio::test]
async fn azure_blob_is_healthy_on_azurite_and_a_wrong_key_or_a_missing_container_is_named() {
    use auditstream::destinations::azure::connection::DEV_ACCOUNT_KEY;
    let az = auditstream_e2e::azurite::Azurite::from_env();
    let container = az.create_container("check-blob").await;
    let connection = |key: &str| format!("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};BlobEndpoint={};", az.endpoint);
    let vars = |key: &str, container: &str| env(&[("AZURE_STORAGE_CONNECTION_STRING", &connection(key)), ("AUDITSTREAM_AZURE_BLOB_CONTAINER", container)]);

    let ok = check("azure-blob", true, &vars(DEV_ACCOUNT_KEY, &container));
    assert_eq!(ok.code, Some(0), "{}{}", ok.stdout, ok.stderr);
    assert_eq!(
        ok.steps(),
        steps(&[("configuration", "passed"), ("reachability", "passed"), ("authentication", "passed"), ("permission", "passed"), ("read-back", "passed")])
    );
    let blobs = az.list_blobs(&container).await;
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    assert!(blobs[0].starts_with("_auditstream/health/"), "{blobs:?}");

    // Another valid key of the same length: refused, and named as the key, not shown.
    let wrong_key = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODkrLw==";
    let refused = check("azure-blob", true, &vars(wrong_key, &container));
    assert_eq!(refused.code, Some(1), "{}{}", refused.stdout, refused.stderr);
    let (step, detail) = refused.failure();
    assert_eq!(step, "authentication");
    assert!(detail.contains("HTTP 403") && detail.contains("account key"), "{detail}");
    assert!(!refused.stdout.contains(wrong_key) && !refused.stdout.contains("SharedKey devstoreaccount1:"), "{}", refused.stdout);

    let missing = check("azure-blob", true, &vars(DEV_ACCOUNT_KEY, &unique_name("no-such-container")));
    assert_eq!(missing.code, Some(1));
    let (step, detail) = missing.failure();
    assert_eq!(step, "reachability");
    assert!(detail.contains("HTTP 404") && detail.contains("does not exist"), "{detail}");
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("its address").port()
}

/// The step names of a text report, one per step line (`  RESULT  STEP  N ms  DETAIL`).
fn text_steps(text: &str) -> Vec<String> {
    text.lines().filter(|l| l.starts_with("  ")).filter_map(|l| l.split_whitespace().nth(1)).map(str::to_owned).collect()
}

/// Each step appears once, in the JSON report and in the text one.
fn assert_each_step_once(json: &Checked, text: &Checked) {
    for names in [json.steps().into_iter().map(|(step, _)| step).collect::<Vec<_>>(), text_steps(&text.stdout)] {
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(names.len(), unique.len(), "each step once: {names:?}: {}{}", json.stdout, text.stdout);
    }
}

/// The variables of Azure Blob with a SAS token, at `endpoint`.
fn sas_vars(endpoint: &str, container: &str, sas: &str) -> Vec<(String, String)> {
    env(&[
        ("AUDITSTREAM_AZURE_BLOB_ACCOUNT", "devstoreaccount1"),
        ("AUDITSTREAM_AZURE_BLOB_ENDPOINT", endpoint),
        ("AUDITSTREAM_AZURE_BLOB_CONTAINER", container),
        ("AUDITSTREAM_AZURE_BLOB_SAS", sas),
    ])
}

/// With a SAS token the container's properties are not read, so the probe is the first request:
/// one that nothing answers is the reachability step, not the permission step. The reachability
/// step is shown once, with that result, not first as skipped and then as failed.
#[test]
fn azure_blob_with_a_sas_token_at_an_endpoint_nothing_answers_fails_the_reachability_step() {
    let endpoint = format!("http://127.0.0.1:{}/devstoreaccount1", closed_port());
    let vars = sas_vars(&endpoint, "audit", &format!("sv=2021-08-06&sp=cw&sig={PLANTED}"));
    // Both reports at once: each waits out the probe's retries.
    let (down, text) = std::thread::scope(|s| {
        let text = s.spawn(|| check("azure-blob", false, &vars));
        (check("azure-blob", true, &vars), text.join().expect("the text check"))
    });
    assert_eq!(down.code, Some(1), "{}{}", down.stdout, down.stderr);
    let (step, detail) = down.failure();
    assert_eq!(step, "reachability", "{}", down.stdout);
    assert!(detail.contains("cannot connect") && detail.contains("nothing answered"), "{detail}");
    assert_eq!(down.steps(), steps(&[("configuration", "passed"), ("reachability", "failed")]));
    assert_eq!(text.code, Some(1), "{}{}", text.stdout, text.stderr);
    assert_eq!(text_steps(&text.stdout), ["configuration", "reachability"], "{}", text.stdout);
    assert!(text.stdout.lines().any(|l| l.trim_start().starts_with("FAILED  reachability")), "{}", text.stdout);
    assert_eq!(text.stdout.lines().last(), Some("unhealthy: the reachability step failed"));
    assert_each_step_once(&down, &text);
    for out in [&down, &text] {
        assert!(!out.stdout.contains(PLANTED) && !out.stderr.contains(PLANTED), "{}{}", out.stdout, out.stderr);
    }
}

/// A write-only SAS token (`sp=cw`) on Azurite: the container call and the read-back are skipped
/// (such a token may make neither) and the probe write proves access; the service answered it, so
/// the reachability step passes, in its one row.
#[tokio::test]
async fn azure_blob_with_a_write_only_sas_token_is_healthy_on_azurite_with_one_probe() {
    let az = auditstream_e2e::azurite::Azurite::from_env();
    let container = az.create_container("check-sas").await;
    let vars = sas_vars(az.endpoint.as_str(), &container, &az.account_sas("cw"));
    let ok = check("azure-blob", true, &vars);
    assert_eq!(ok.code, Some(0), "{}{}", ok.stdout, ok.stderr);
    assert_eq!(ok.steps(), steps(&[("configuration", "passed"), ("reachability", "passed"), ("permission", "passed"), ("read-back", "skipped")]));
    let destination = ok.json()["destination"].as_str().unwrap().to_owned();
    assert_eq!(ok.json()["steps"][1]["detail"], format!("{destination} answered the probe"), "{}", ok.stdout);
    let text = check("azure-blob", false, &vars);
    assert_eq!(text.code, Some(0), "{}{}", text.stdout, text.stderr);
    assert!(text.stdout.lines().any(|l| l.trim_start().starts_with("ok      reachability")), "{}", text.stdout);
    assert_eq!(text.stdout.lines().last(), Some("healthy"));
    assert_each_step_once(&ok, &text);
    let blobs = az.list_blobs(&container).await;
    assert_eq!(blobs.len(), 2, "one probe per check: {blobs:?}");
    assert!(blobs.iter().all(|b| b.starts_with("_auditstream/health/")), "{blobs:?}");

    // A SAS token that may only read: the service answers the probe, and refuses it. Reachable,
    // so the permission step is the one that fails.
    let read_only = sas_vars(az.endpoint.as_str(), &container, &az.account_sas("r"));
    let refused = check("azure-blob", true, &read_only);
    assert_eq!(refused.code, Some(1), "{}{}", refused.stdout, refused.stderr);
    assert_eq!(refused.steps(), steps(&[("configuration", "passed"), ("reachability", "passed"), ("permission", "failed")]));
    assert!(refused.failure().1.contains("403"), "{}", refused.stdout);
    assert_eq!(az.list_blobs(&container).await.len(), 2, "no probe written");
}

/// Azure Monitor: a token endpoint nothing answers, or a data collection endpoint nothing answers
/// (the token issued by the strict fake), are each the reachability step; neither is the
/// authentication or permission step, which would send the reader after the wrong fix.
#[test]
fn azure_monitor_endpoints_nothing_answers_fail_the_reachability_step() {
    use auditstream_e2e::azure_monitor_fake::{FakeConfig, MonitorFake};
    let fake = MonitorFake::start(FakeConfig::default());
    let closed = format!("http://127.0.0.1:{}", closed_port());
    for var in ["AZURE_AUTHORITY_HOST", "AUDITSTREAM_AZURE_MONITOR_ENDPOINT"] {
        let mut vars = fake.env();
        vars.retain(|(k, _)| k != var);
        vars.push((var.into(), closed.clone()));
        let down = check("azure-monitor", true, &vars);
        assert_eq!(down.code, Some(1), "{var}: {}{}", down.stdout, down.stderr);
        let (step, detail) = down.failure();
        assert_eq!(step, "reachability", "{var}: {}", down.stdout);
        assert!(detail.contains("cannot connect") && detail.contains(&closed), "{var}: {detail}");
        assert!(!down.steps().iter().any(|(step, _)| step == "permission"), "{var}: {}", down.stdout);
    }
    assert!(fake.rows().is_empty(), "no probe row arrived");
}

#[test]
fn azure_monitor_takes_one_probe_row_and_a_wrong_client_secret_fails_authentication() {
    use auditstream_e2e::azure_monitor_fake::{FakeConfig, MonitorFake};
    let fake = MonitorFake::start(FakeConfig::default());
    let ok = check("azure-monitor", true, &fake.env());
    assert_eq!(ok.code, Some(0), "{}{}", ok.stdout, ok.stderr);
    assert_eq!(ok.steps(), steps(&[("configuration", "passed"), ("authentication", "passed"), ("permission", "passed"), ("read-back", "skipped")]));
    let rows = fake.rows();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["EventType"], "auditstream_health_check", "{}", rows[0]);

    let mut wrong = fake.env();
    wrong.retain(|(k, _)| k != "AZURE_CLIENT_SECRET");
    wrong.push(("AZURE_CLIENT_SECRET".into(), PLANTED.into()));
    let refused = check("azure-monitor", true, &wrong);
    assert_eq!(refused.code, Some(1), "{}{}", refused.stdout, refused.stderr);
    assert_eq!(refused.failure().0, "authentication");
    assert!(!refused.stdout.contains(PLANTED) && !refused.stderr.contains(PLANTED), "{}", refused.stdout);
}
