//! The REST forwarder end to end: SQS Lambda events through `SqsFunction::handle` (the handler the
//! `rest-forwarder` binary runs), the shared pipeline and `HttpLogSink`, to strict local receivers
//! of Splunk HEC, Datadog, Sumo Logic and a generic endpoint (`tests/harness/rest_receivers/`).
//!
//! Shown here: the exact bytes each preset sends; retries honour `Retry-After` (measured); a 413
//! batch is split and an event too large alone fails by itself; a 401/403 fails with an error that
//! names the endpoint and not the token (in the error and in the logs); a Splunk batch with one
//! refused event fails that event alone and resends only the ones HEC dropped; nothing is lost — every
//! event was received or its message is in `batchItemFailures`; the token read from Secrets
//! Manager (moto); the built `rest-forwarder` binary under the Lambda Runtime API emulator; and
//! `auditstream run --to http://…`.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use auditstream::config::PipelineSettings;
use auditstream::delivery::log_batching::LogSinkDestination;
use auditstream::delivery::retry::RetryPolicy;
use auditstream::destinations::rest::http::HttpLogSink;
use auditstream::destinations::rest::RestSettings;
use auditstream::intake::lambda::SqsFunction;
use auditstream::pipeline::timestamp::Now;
use auditstream::pipeline::{Document, Pipeline, Prepared};
use auditstream_e2e::rest_receivers::{Datadog, Generic, GenericFormat, RestReceiver, Scripted, SplunkHec, SumoLogic};
use auditstream_e2e::sqs_events::{failed_ids, lambda_event, messages, sample_event, sqs_event};
use auditstream_e2e::{moto_env, moto_sdk_config, unique_name, workspace_bin, workspace_root, LambdaFunction};
use aws_lambda_events::event::sqs::SqsBatchResponse;
use serde_json::{json, Value};

const HEC_TOKEN: &str = "8d3ef2a1-5b7c-4e9f-a0d1-c2b3a4f5e6d7";
const DD_API_KEY: &str = "dd0123456789abcdef0123456789abcd";
const SUMO_CODE: &str = "ZaVnC4dhaV3uTKlva1XKHgGQ0wfRo5cRZ1ih28BnQCRXs0rGm5NUn4sD";
const BEARER: &str = "gen-bearer-7f3e9c2a";

type RestFunction = SqsFunction<LogSinkDestination<HttpLogSink>>;

/// The time left to an invocation, unless a test says otherwise.
const MINUTE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------------
// Helpers

/// The function as `rest-forwarder`'s main builds it, configured by `env` (the token inline).
async fn function(env: &[(&str, &str)]) -> RestFunction {
    let pipeline = PipelineSettings::from_env(env).unwrap_or_else(|e| panic!("{e}"));
    let settings = RestSettings::from_env(env, pipeline.pipeline.template.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    let sink = HttpLogSink::from_settings(settings).await.unwrap_or_else(|e| panic!("{e}"));
    SqsFunction::new("rest-forwarder", Pipeline::new(pipeline.pipeline), LogSinkDestination::new(sink, 4, RetryPolicy::default()))
}

/// The function sending to a Splunk HEC receiver: index `audit`, up to ten events per request,
/// and `more`.
async fn hec_function(url: &str, more: &[(&str, &str)]) -> RestFunction {
    let mut env = vec![
        ("AUDITSTREAM_REST_PRESET", "splunk_hec"),
        ("AUDITSTREAM_REST_URL", url),
        ("AUDITSTREAM_REST_TOKEN", HEC_TOKEN),
        ("AUDITSTREAM_SPLUNK_INDEX", "audit"),
        ("AUDITSTREAM_REST_BATCH_MAX_EVENTS", "10"),
    ];
    env.extend_from_slice(more);
    function(&env).await
}

/// The function sending to a Datadog receiver with the API key, up to 1000 events per request, and
/// `more`.
async fn datadog_function(url: &str, more: &[(&str, &str)]) -> RestFunction {
    let mut env = vec![
        ("AUDITSTREAM_REST_PRESET", "datadog"),
        ("AUDITSTREAM_REST_URL", url),
        ("AUDITSTREAM_REST_TOKEN", DD_API_KEY),
        ("AUDITSTREAM_REST_BATCH_MAX_EVENTS", "1000"),
    ];
    env.extend_from_slice(more);
    function(&env).await
}

/// `f`'s answer to an invocation with `(message id, body)` records, `time_left` before its deadline.
async fn invoke(f: &RestFunction, records: &[(String, String)], time_left: Duration) -> SqsBatchResponse {
    f.handle(lambda_event(sqs_event(records), time_left)).await.unwrap_or_else(|e| panic!("{e}"))
}

const MALFORMED: &str = "4d1e7a20-5f6b-4c8d-9e0f-1a2b3c4d5e06";

/// Invokes `f` with the records of `events/sqs-mixed-batch.json` (three jobs, one with masked lines,
/// a login, a 2019-style activity event without id, and one malformed body), checks that the
/// malformed message alone is reported, and returns the records.
async fn invoke_with_mixed_batch(f: &RestFunction) -> Vec<(String, String)> {
    let records: Vec<(String, String)> = messages(&sample_event("sqs-mixed-batch.json")).into_iter().map(|m| (m.id, m.body)).collect();
    let response = invoke(f, &records, MINUTE).await;
    assert_eq!(failed_ids(&response), [MALFORMED], "only the malformed message is reported");
    records
}

/// What the pipeline makes of a body: the document every preset embeds.
fn document(body: &str) -> Document {
    match Pipeline::default().prepare(body, Now::capture()) {
        Ok(Prepared::Ready(doc)) => doc,
        other => panic!("not a document: {other:?}"),
    }
}

fn docs_of(records: &[(String, String)]) -> Vec<Document> {
    records.iter().filter(|(id, _)| id != MALFORMED).map(|(_, body)| document(body)).collect()
}

/// What a receiver accepted is, event for event, the documents the pipeline made.
fn assert_each_is_its_document(accepted: &[Value], docs: &[Document]) {
    assert_eq!(accepted.len(), docs.len());
    for (event, doc) in accepted.iter().zip(docs) {
        assert_eq!(*event, serde_json::from_slice::<Value>(&doc.body).unwrap_or_default());
    }
}

fn text(doc: &Document) -> &str {
    std::str::from_utf8(&doc.body).unwrap_or_else(|e| panic!("{e}"))
}

/// Splunk's `time` for a document: epoch seconds with the event's milliseconds.
fn splunk_time(doc: &Document) -> String {
    let t = doc.meta.time();
    format!("{}.{:03}", t.epoch_seconds, t.millis)
}

/// A job event with `n` lines of `size`-byte payloads, every third line masked.
fn job(id: &str, n: usize, size: usize) -> String {
    let lines: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"recipe_line_number":{i},"adapter_name":"http","input":{{"q":"{}"}},"output":{{"r":{i}}},"mask_data":{}}}"#,
                "x".repeat(size),
                i % 3 == 0
            )
        })
        .collect();
    format!(
        r#"{{"id":"{id}","recipe_id":3026581,"status":"succeeded","started_at":"2026-11-25T10:00:00Z","completed_at":"2026-11-25T10:00:05Z","context":{{"user_id":4411}},"lines":[{}]}}"#,
        lines.join(",")
    )
}

/// Log lines written while a test runs, on this thread (the tests use the current-thread runtime).
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_max_level(tracing::Level::DEBUG).with_writer(move || sink.clone()).finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------
// The exact bytes of each preset

#[tokio::test]
async fn splunk_hec_gets_concatenated_envelopes_with_the_event_embedded() {
    let hec = RestReceiver::start(SplunkHec { token: HEC_TOKEN.into(), allowed_indexes: vec!["audit".into()] });
    let url = hec.url();
    let f = hec_function(&url, &[("AUDITSTREAM_SPLUNK_HOST", "lambda-eu-1")]).await;
    let records = invoke_with_mixed_batch(&f).await;

    let requests = hec.requests();
    assert_eq!(requests.len(), 1, "five events, one request");
    let r = &requests[0];
    assert_eq!(r.path, "/services/collector/event");
    assert_eq!(r.header("authorization"), Some(format!("Splunk {HEC_TOKEN}").as_str()));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("content-encoding"), None);
    let docs = docs_of(&records);
    let expected: Vec<String> = docs
        .iter()
        .map(|d| format!(r#"{{"time":{},"host":"lambda-eu-1","source":"workato","sourcetype":"_json","index":"audit","event":{}}}"#, splunk_time(d), text(d)))
        .collect();
    assert_eq!(r.body_text(), expected.join("\n"));
    // the job with masked lines went out masked
    assert!(r.body_text().contains(r#""input":{"data":"masked"},"output":{"data":"masked"}"#), "{}", r.body_text());
    let ids = r.header("x-auditstream-event-ids").unwrap_or_default();
    assert!(ids.starts_with("j-AEcaNzd9-dGQ4Bf,j-AEcaPq12-FaIl01,j-AEcaMk55-MaSk01,123456789,"), "{ids}");
    assert_eq!(hec.accepted_events().len(), 5);
    assert_eq!(hec.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn datadog_gets_a_gzipped_array_of_items_with_the_document_as_message() {
    let dd = RestReceiver::start(Datadog { api_key: DD_API_KEY.into() });
    let url = dd.url();
    let f = datadog_function(
        &url,
        &[("AUDITSTREAM_DATADOG_TAGS", "env:test,team:audit"), ("AUDITSTREAM_DATADOG_SERVICE", "workato-audit"), ("AUDITSTREAM_REST_GZIP", "true")],
    )
    .await;
    let records = invoke_with_mixed_batch(&f).await;

    let requests = dd.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.path, "/api/v2/logs");
    assert_eq!(r.header("dd-api-key"), Some(DD_API_KEY));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert!(r.raw_body.starts_with(&[0x1f, 0x8b]) && r.raw_body.len() < r.body.len(), "the body went gzipped");
    let items: Vec<String> = docs_of(&records)
        .iter()
        .map(|d| {
            let message = serde_json::to_string(text(d)).unwrap_or_default();
            format!(r#"{{"ddsource":"workato","ddtags":"env:test,team:audit","service":"workato-audit","message":{message}}}"#)
        })
        .collect();
    assert_eq!(r.body_text(), format!("[{}]", items.join(",")));
    // each message parses back to the document the pipeline made
    assert_each_is_its_document(&dd.accepted_events(), &docs_of(&records));
    assert_eq!(dd.violations(), Vec::<String>::new());
}

/// Workato's documented Datadog template is the whole body it sends: here each rendered template
/// is a log item of the array, not the `message` of another item.
#[tokio::test]
async fn datadog_sends_workatos_documented_template_as_the_log_item_itself() {
    let dd = RestReceiver::start(Datadog { api_key: DD_API_KEY.into() });
    let url = dd.url();
    let f = datadog_function(&url, &[("AUDITSTREAM_LOG_TEMPLATE", r#"{"ddsource":"workato","service":"x","message":{{{log_message}}}}"#)]).await;
    let records = invoke_with_mixed_batch(&f).await;

    assert_eq!(dd.violations(), Vec::<String>::new());
    let requests = dd.requests();
    assert_eq!(requests.len(), 1);
    let items: Vec<Value> = serde_json::from_slice(&requests[0].body).unwrap_or_else(|e| panic!("{e}"));
    let docs = docs_of(&records);
    assert_eq!(items.len(), docs.len());
    for (item, doc) in items.iter().zip(&docs) {
        let keys: BTreeSet<&str> = item.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        assert_eq!(keys, BTreeSet::from(["ddsource", "message", "service"]), "{item}");
        assert_eq!((item["ddsource"].as_str(), item["service"].as_str()), (Some("workato"), Some("x")));
        // the message is the event, as JSON text; not another log object around it
        let message: Value = serde_json::from_str(item["message"].as_str().unwrap_or_default()).unwrap_or_else(|e| panic!("{item}: {e}"));
        assert_eq!(message, serde_json::from_slice::<Value>(&doc.body).unwrap_or_default());
    }
    // the masked lines stayed masked
    assert!(requests[0].body_text().contains(r#"\"input\":{\"data\":\"masked\"}"#), "{}", requests[0].body_text());
}

/// A template with an `event` key is what a Workato user writes for a HEC endpoint: it is the
/// envelope, sent as it is with `time` and the configured fields added; it is not put inside
/// another envelope's `event`.
#[tokio::test]
async fn splunk_hec_sends_a_template_with_an_event_key_as_the_envelope_itself() {
    let hec = RestReceiver::start(SplunkHec { token: HEC_TOKEN.into(), allowed_indexes: vec!["audit".into()] });
    let url = hec.url();
    let f = hec_function(&url, &[("AUDITSTREAM_LOG_TEMPLATE", r#"{"sourcetype":"workato:audit","event":{{{log_message}}}}"#)]).await;
    let records = invoke_with_mixed_batch(&f).await;

    assert_eq!(hec.violations(), Vec::<String>::new());
    let requests = hec.requests();
    assert_eq!(requests.len(), 1);
    let docs = docs_of(&records);
    let expected: Vec<String> = docs
        .iter()
        .map(|d| format!(r#"{{"time":{},"source":"workato","index":"audit","sourcetype":"workato:audit","event":{}}}"#, splunk_time(d), text(d)))
        .collect();
    assert_eq!(requests[0].body_text(), expected.join("\n"));
    // what HEC indexed is each event itself
    assert_each_is_its_document(&hec.accepted_events(), &docs);
}

#[tokio::test]
async fn sumo_logic_gets_one_event_per_line_with_the_code_from_the_secret() {
    let sumo = RestReceiver::start(SumoLogic { code: SUMO_CODE.into() });
    let source_url = format!("{}/receiver/v1/http", sumo.base_url());
    let f = function(&[
        ("AUDITSTREAM_REST_PRESET", "sumo_logic"),
        ("AUDITSTREAM_REST_URL", &source_url),
        ("AUDITSTREAM_REST_TOKEN", SUMO_CODE),
        ("AUDITSTREAM_SUMO_CATEGORY", "prod/workato/audit"),
        ("AUDITSTREAM_SUMO_NAME", "auditstream"),
        ("AUDITSTREAM_SUMO_HOST", "lambda-eu-1"),
        ("AUDITSTREAM_REST_BATCH_MAX_EVENTS", "100"),
    ])
    .await;
    assert_eq!(f.destination.sink().endpoint().to_string(), format!("{source_url}/[redacted]"));
    let records = invoke_with_mixed_batch(&f).await;

    let requests = sumo.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.path, format!("/receiver/v1/http/{SUMO_CODE}"));
    assert_eq!(r.header("x-sumo-category"), Some("prod/workato/audit"));
    assert_eq!(r.header("x-sumo-name"), Some("auditstream"));
    assert_eq!(r.header("x-sumo-host"), Some("lambda-eu-1"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    let lines: Vec<String> = docs_of(&records).iter().map(|d| text(d).to_owned()).collect();
    assert_eq!(r.body_text(), lines.join("\n"));
    assert_eq!(sumo.accepted_events().len(), 5);
    assert_eq!(sumo.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn generic_sends_one_json_post_per_event_like_workato() {
    let receiver =
        RestReceiver::start(Generic { path: "/ingest".into(), auth: Some(("authorization".into(), format!("Bearer {BEARER}"))), format: GenericFormat::Json });
    let url = receiver.url();
    let f = function(&[
        ("AUDITSTREAM_REST_URL", &url),
        ("AUDITSTREAM_REST_AUTH", "bearer"),
        ("AUDITSTREAM_REST_TOKEN", BEARER),
        ("AUDITSTREAM_REST_HEADERS", "X-Environment: test"),
    ])
    .await;
    let records = invoke_with_mixed_batch(&f).await;

    let mut requests = receiver.requests();
    assert_eq!(requests.len(), 5, "one request per event");
    // requests run concurrently: compare them in event order
    requests.sort_by_key(|r| r.header("x-auditstream-event-ids").map(str::to_owned));
    let mut docs = docs_of(&records);
    docs.sort_by_key(|d| auditstream::destinations::rest::headers::event_id(d).into_owned());
    for (r, doc) in requests.iter().zip(&docs) {
        assert_eq!(r.body, doc.body, "the body is the document, byte for byte");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("authorization"), Some(format!("Bearer {BEARER}").as_str()));
        assert_eq!(r.header("x-environment"), Some("test"));
        assert_eq!(r.header("x-auditstream-event-ids").map(str::to_owned), Some(auditstream::destinations::rest::headers::event_id(doc).into_owned()));
    }
    assert_eq!(receiver.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn generic_ndjson_batches_put_each_document_on_its_own_line() {
    let receiver = RestReceiver::start(Generic { path: "/bulk".into(), auth: Some(("x-api-key".into(), "k-123456".into())), format: GenericFormat::Ndjson });
    let url = receiver.url();
    let f = function(&[
        ("AUDITSTREAM_REST_URL", &url),
        ("AUDITSTREAM_REST_AUTH", "header"),
        ("AUDITSTREAM_REST_AUTH_HEADER", "X-Api-Key"),
        ("AUDITSTREAM_REST_TOKEN", "k-123456"),
        ("AUDITSTREAM_REST_BATCH_MAX_EVENTS", "3"),
        ("AUDITSTREAM_REST_BATCH_FORMAT", "ndjson"),
        ("AUDITSTREAM_REST_GZIP", "true"),
    ])
    .await;
    // a pretty-printed event keeps its line breaks through the pipeline; NDJSON must not
    let pretty = "{\n  \"event_type\": \"user_login\",\n  \"id\": 99,\n  \"workspace\": {\"id\": 4},\n  \"timestamp\": \"2026-11-25T10:15:30.000Z\"\n}";
    let records: Vec<(String, String)> =
        (0..5).map(|i| (format!("m-{i}"), job(&format!("j-{i}"), 2, 10))).chain([("m-pretty".to_owned(), pretty.to_owned())]).collect();

    let response = invoke(&f, &records, MINUTE).await;

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let mut requests = receiver.requests();
    requests.sort_by_key(|r| r.header("x-auditstream-event-ids").map(str::to_owned));
    assert_eq!(requests.len(), 2, "six events, three per request");
    let docs: Vec<Document> = records.iter().map(|(_, b)| document(b)).collect();
    let single_line = |d: &Document| text(d).replace('\n', " ");
    assert_eq!(requests[0].body_text(), docs[..3].iter().map(|d| single_line(d) + "\n").collect::<String>());
    assert_eq!(requests[1].body_text(), docs[3..].iter().map(|d| single_line(d) + "\n").collect::<String>());
    assert!(requests.iter().all(|r| r.header("content-type") == Some("application/x-ndjson") && r.header("content-encoding") == Some("gzip")));
    assert_eq!(receiver.accepted_events().len(), 6);
    assert_eq!(receiver.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn generic_sends_a_two_mebibyte_event_whole_with_its_lines_as_workato_would() {
    // Workato sends events of up to 40 MB to a REST endpoint; this one takes them.
    let receiver = RestReceiver::start(Generic { path: "/ingest".into(), auth: None, format: GenericFormat::Json });
    receiver.set_max_request_bytes(40 * 1024 * 1024);
    let url = receiver.url();
    let f = function(&[("AUDITSTREAM_REST_URL", &url)]).await;
    let records = vec![("m-two-mib".to_owned(), job("j-two-mib", 6, 550_000))];

    let response = invoke(&f, &records, MINUTE).await;

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let doc = document(&records[0].1);
    assert!(!doc.truncated && doc.body.len() > 2 * 1024 * 1024, "{} bytes", doc.body.len());
    assert!(
        requests[0].body == doc.body,
        "the body is the whole document, lines included ({} bytes sent, {} expected)",
        requests[0].body.len(),
        doc.body.len()
    );
    assert_eq!(receiver.accepted_events()[0]["lines"].as_array().map(Vec::len), Some(6));
    assert_eq!(receiver.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn an_event_over_datadogs_megabyte_per_log_loses_its_lines_with_a_warning_saying_what_sets_the_limit() {
    let dd = RestReceiver::start(Datadog { api_key: DD_API_KEY.into() });
    let url = dd.url();
    let f = function(&[("AUDITSTREAM_REST_PRESET", "datadog"), ("AUDITSTREAM_REST_URL", &url), ("AUDITSTREAM_REST_TOKEN", DD_API_KEY)]).await;
    // the lines carry a marker that must appear in no log line
    let big = job("j-over-a-mb", 3, 600_000).replace("\"q\":\"xxxx", "\"q\":\"MARKER-in-the-lines-xxxx");
    let records = vec![("m-over-a-mb".to_owned(), big), ("m-small".to_owned(), job("j-small", 2, 10))];
    let logs = CapturedLogs::default();
    let _guard = logs.install();

    let response = invoke(&f, &records, MINUTE).await;

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let events = dd.accepted_events();
    let big = events.iter().find(|e| e["id"] == "j-over-a-mb").unwrap_or_else(|| panic!("not delivered: {events:?}"));
    assert_eq!(big["lines"].as_str(), Some("Log lines exceed size limit"));
    let logs = logs.text();
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("lines replaced by the size placeholder")).collect();
    assert_eq!(warnings.len(), 1, "one warning, for the one event over the limit:\n{logs}");
    let want = format!(
        "the event is over {url}/api/v2/logs's limit of 1000000 bytes per event, below AUDITSTREAM_MAX_EVENT_BYTES (41943040); that limit is Datadog takes at most 1,000,000 bytes per log, and no setting raises that"
    );
    assert!(warnings[0].contains("WARN") && warnings[0].contains(&want) && warnings[0].contains("message_id=\"m-over-a-mb\""), "{}", warnings[0]);
    assert!(!logs.contains("MARKER"), "event data in the logs:\n{logs}");
    assert_eq!(dd.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_request_size_set_below_an_event_names_its_variable_when_the_lines_go() {
    let receiver = RestReceiver::start(Generic { path: "/ingest".into(), auth: None, format: GenericFormat::Json });
    let url = receiver.url();
    let f = function(&[("AUDITSTREAM_REST_URL", &url), ("AUDITSTREAM_REST_BATCH_MAX_BYTES", "1048576")]).await;
    let records = vec![("m-1".to_owned(), job("j-1", 3, 600_000))];
    let logs = CapturedLogs::default();
    let _guard = logs.install();

    let response = invoke(&f, &records, MINUTE).await;

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(receiver.accepted_events()[0]["lines"].as_str(), Some("Log lines exceed size limit"));
    let logs = logs.text();
    assert!(
        logs.lines().any(|l| l.contains("message_id=\"m-1\"")
            && l.contains("limit of 1048576 bytes per event")
            && l.contains("that limit is set by AUDITSTREAM_REST_BATCH_MAX_BYTES: raise it to send such events whole")),
        "{logs}"
    );
}

// ---------------------------------------------------------------------------------------------------
// Retries, splitting, failures

#[tokio::test]
async fn retries_wait_as_long_as_retry_after_says_in_seconds_or_as_a_date() {
    let receiver = RestReceiver::start(Generic { path: "/ingest".into(), auth: None, format: GenericFormat::Json });
    let url = receiver.url();
    let f = function(&[("AUDITSTREAM_REST_URL", &url)]).await;
    // An HTTP date has whole seconds: 2 s ahead means a wait of more than 1 s.
    let in_two_seconds = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3));
    receiver.respond_next([
        Scripted::status(429).header("retry-after", "1").body("Too Many Requests"),
        Scripted::status(503).header("retry-after", &in_two_seconds),
        Scripted::status(408),
    ]);
    let started = Instant::now();

    let response = invoke(&f, &[("m-1".into(), job("j-retry", 1, 10))], MINUTE).await;

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let requests = receiver.requests();
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 503, 408, 200]);
    let after_429 = requests[1].at - requests[0].at;
    let after_503 = requests[2].at - requests[1].at;
    assert!(after_429 >= Duration::from_secs(1), "Retry-After: 1 was not waited for: {after_429:?}");
    assert!(after_503 >= Duration::from_secs(1), "Retry-After as a date was not waited for: {after_503:?}");
    assert!(started.elapsed() >= Duration::from_secs(2));
    // the same event, the same body and id each time
    assert!(requests.windows(2).all(|w| w[0].body == w[1].body && w[0].header("x-auditstream-event-ids") == w[1].header("x-auditstream-event-ids")));
    assert_eq!(receiver.accepted_events().len(), 1);
}

#[tokio::test]
async fn a_wait_past_the_deadline_is_left_to_sqs() {
    let receiver = RestReceiver::start(Generic { path: "/ingest".into(), auth: None, format: GenericFormat::Json });
    let url = receiver.url();
    let f = function(&[("AUDITSTREAM_REST_URL", &url)]).await;
    receiver.respond_next([Scripted::status(429).header("retry-after", "8")]);
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let started = Instant::now();

    let response = invoke(&f, &[("m-late".into(), job("j-late", 1, 10))], Duration::from_secs(5)).await;

    assert!(started.elapsed() < Duration::from_secs(3), "it waited instead of handing back: {:?}", started.elapsed());
    assert_eq!(failed_ids(&response), ["m-late"]);
    assert_eq!(receiver.requests().len(), 1);
    let logs = logs.text();
    assert!(logs.contains("no time left to retry before the deadline"), "{logs}");
}

#[tokio::test]
async fn an_endpoint_that_never_answers_is_abandoned_at_the_deadline_not_waited_for() {
    // Accepts connections and reads nothing back: the request would wait for the whole HTTP timeout
    // (15 s by default), past this invocation's 5 s; Lambda would then kill it and fail the whole batch.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ingest", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let f = function(&[("AUDITSTREAM_REST_URL", &url)]).await;
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let started = Instant::now();

    let response = invoke(&f, &[("m-hung".into(), job("j-hung", 1, 10))], Duration::from_secs(5)).await;

    assert!(started.elapsed() < Duration::from_secs(5), "it held the batch past the invocation's deadline: {:?}", started.elapsed());
    assert_eq!(failed_ids(&response), ["m-hung"]);
    let logs = logs.text();
    assert!(logs.contains("m-hung") && logs.contains("still in flight at the deadline"), "{logs}");
    held.abort();
}

#[tokio::test]
async fn a_413_splits_the_batch_and_an_event_too_large_alone_fails_alone() {
    let dd = RestReceiver::start(Datadog { api_key: DD_API_KEY.into() });
    // The endpoint takes less than Datadog's 5 MB (a proxy in front of it, say): it answers 413.
    dd.set_max_request_bytes(12_000);
    let url = dd.url();
    let f = datadog_function(&url, &[]).await;
    let mut records: Vec<(String, String)> = (0..8).map(|i| (format!("m-{i}"), job(&format!("j-{i}"), 3, 600))).collect();
    records.insert(5, ("m-huge".into(), job("j-huge", 6, 4000)));
    let logs = CapturedLogs::default();
    let _guard = logs.install();

    let response = invoke(&f, &records, MINUTE).await;

    assert_eq!(failed_ids(&response), ["m-huge"]);
    let requests = dd.requests();
    assert_eq!(requests[0].status, 413, "the first request held all nine events");
    assert_eq!(requests[0].header("x-auditstream-event-ids").unwrap_or_default().split(',').count(), 9);
    assert!(requests.iter().filter(|r| r.status == 413).count() >= 2);
    // every other event arrived exactly once
    let mut ids: Vec<String> = dd.accepted_events().iter().map(|e| e["id"].as_str().unwrap_or_default().to_owned()).collect();
    ids.sort();
    assert_eq!(ids, (0..8).map(|i| format!("j-{i}")).collect::<Vec<_>>());
    assert!(requests.iter().filter(|r| r.status == 202).all(|r| r.body.len() <= 12_000));
    let logs = logs.text();
    let line = logs.lines().find(|l| l.contains("m-huge")).unwrap_or_else(|| panic!("no log line for m-huge:\n{logs}"));
    assert!(
        line.contains(&format!("POST {url}/api/v2/logs: HTTP 413 Payload Too Large"))
            && line.contains("the event is too large for this endpoint even on its own"),
        "{line}"
    );
    assert_eq!(dd.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_401_fails_every_message_with_the_endpoint_named_and_the_token_nowhere() {
    const WRONG: &str = "gen-bearer-WRONG-0042";
    let receiver =
        RestReceiver::start(Generic { path: "/ingest".into(), auth: Some(("authorization".into(), format!("Bearer {BEARER}"))), format: GenericFormat::Json });
    let url = receiver.url();
    let f = function(&[("AUDITSTREAM_REST_URL", &url), ("AUDITSTREAM_REST_AUTH", "bearer"), ("AUDITSTREAM_REST_TOKEN", WRONG)]).await;
    let records: Vec<(String, String)> = (0..3).map(|i| (format!("m-{i}"), job(&format!("j-{i}"), 1, 10))).collect();
    let logs = CapturedLogs::default();
    let _guard = logs.install();

    let response = invoke(&f, &records, MINUTE).await;

    assert_eq!(failed_ids(&response), ["m-0", "m-1", "m-2"]);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3, "a 401 is not retried");
    assert!(requests.iter().all(|r| r.status == 401));
    let logs = logs.text();
    // The receiver echoed the token it got ("invalid credentials Bearer …"); the forwarder must
    // not repeat it: the lines below show the echo arrived, scrubbed.
    assert!(!logs.contains(WRONG), "the token leaked into the logs:\n{logs}");
    for id in ["m-0", "m-1", "m-2"] {
        let line = logs.lines().find(|l| l.contains(id) && l.contains("HTTP 401")).unwrap_or_else(|| panic!("no error logged for {id}:\n{logs}"));
        assert!(
            line.contains(&format!("POST {url}: HTTP 401 Unauthorized: {{\"error\":\"invalid credentials Bearer [redacted]\"}}; check the token")),
            "{line}"
        );
    }
}

#[tokio::test]
async fn a_wrong_splunk_token_is_a_403_naming_splunks_reason() {
    let hec = RestReceiver::start(SplunkHec { token: HEC_TOKEN.into(), allowed_indexes: vec![] });
    let url = hec.url();
    let wrong = "00000000-dead-beef-0000-000000000000";
    let f = function(&[("AUDITSTREAM_REST_PRESET", "splunk_hec"), ("AUDITSTREAM_REST_URL", &url), ("AUDITSTREAM_REST_TOKEN", wrong)]).await;
    let logs = CapturedLogs::default();
    let _guard = logs.install();

    let response = invoke(&f, &[("m-1".into(), job("j-1", 1, 10))], MINUTE).await;

    assert_eq!(failed_ids(&response), ["m-1"]);
    assert_eq!(hec.requests().len(), 1);
    let logs = logs.text();
    assert!(!logs.contains(wrong), "{logs}");
    assert!(
        logs.contains(&format!(r#"POST {url}/services/collector/event: HTTP 403 Forbidden: {{"text":"Invalid token","code":4}}; check the token"#)),
        "{logs}"
    );
}

#[tokio::test]
async fn splunk_refusing_one_event_of_a_batch_fails_that_message_alone_and_duplicates_nothing() {
    let hec = RestReceiver::start(SplunkHec { token: HEC_TOKEN.into(), allowed_indexes: vec!["audit".into()] });
    // The forwarder writes only well-formed envelopes, all to the one configured index, so nothing
    // a test can feed it makes a faithful HEC refuse one event of a batch on its own. The receiver
    // is told to find j-3 invalid, standing in for whatever Splunk may refuse that the forwarder
    // cannot know beforehand; it answers as HEC does (events before it indexed, 400 with
    // `invalid-event-number`, events after it dropped).
    hec.refuse_hec_event("j-3");
    let url = hec.url();
    let f = hec_function(&url, &[]).await;
    let records: Vec<(String, String)> = (0..7).map(|i| (format!("m-{i}"), job(&format!("j-{i}"), 1, 10))).collect();
    let logs = CapturedLogs::default();
    let _guard = logs.install();

    let response = invoke(&f, &records, MINUTE).await;

    assert_eq!(failed_ids(&response), ["m-3"]);
    let mut indexed: Vec<String> = hec.accepted_events().iter().map(|e| e["id"].as_str().unwrap_or_default().to_owned()).collect();
    indexed.sort();
    assert_eq!(indexed, ["j-0", "j-1", "j-2", "j-4", "j-5", "j-6"], "every other event indexed exactly once");
    let requests: Vec<(u16, String)> = hec.requests().iter().map(|r| (r.status, r.header("x-auditstream-event-ids").unwrap_or_default().to_owned())).collect();
    assert_eq!(
        requests,
        [(400, "j-0,j-1,j-2,j-3,j-4,j-5,j-6".to_owned()), (200, "j-4,j-5,j-6".to_owned())],
        "the events after the refused one are sent again, once"
    );
    let logs = logs.text();
    assert!(!logs.contains(HEC_TOKEN), "{logs}");
    let failures: Vec<&str> = logs.lines().filter(|l| l.contains("message not delivered")).collect();
    assert_eq!(failures.len(), 1, "{logs}");
    assert!(
        failures[0].contains("m-3")
            && failures[0].contains(&format!(r#"POST {url}/services/collector/event: HTTP 400 Bad Request: {{"text":"Invalid data format","code":6,"invalid-event-number":3}}; Splunk HEC refused this event alone"#)),
        "{}",
        failures[0]
    );
    assert_eq!(hec.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn nothing_is_lost_every_event_arrives_or_its_message_is_a_batch_item_failure() {
    let receiver = RestReceiver::start(Generic { path: "/bulk".into(), auth: None, format: GenericFormat::JsonArray });
    let url = receiver.url();
    let f = function(&[("AUDITSTREAM_REST_URL", &url), ("AUDITSTREAM_REST_BATCH_MAX_EVENTS", "4")]).await;
    // a request holding this job always gets 503 (transient, retried until attempts run out);
    // one holding that one always gets 400 (permanent)
    receiver.fail_requests_with("j-always-503", Scripted::status(503));
    receiver.fail_requests_with("j-always-400", Scripted::status(400).body(r#"{"error":"schema mismatch"}"#));
    let mut records: Vec<(String, String)> = (0..30).map(|i| (format!("m-{i:02}"), job(&format!("j-{i:02}"), 2, 50 + i * 7))).collect();
    records[6] = ("m-503".into(), job("j-always-503", 1, 10));
    records[17] = ("m-400".into(), job("j-always-400", 1, 10));
    records[25] = ("m-bad".into(), "{\"id\":".into());

    let response = invoke(&f, &records, MINUTE).await;

    let failed: BTreeSet<String> = failed_ids(&response).into_iter().collect();
    let received: BTreeSet<String> = receiver.accepted_events().iter().map(|e| e["id"].as_str().unwrap_or_default().to_owned()).collect();
    let job_of: HashMap<&str, String> = records
        .iter()
        .map(|(id, body)| (id.as_str(), serde_json::from_str::<Value>(body).map(|v| v["id"].as_str().unwrap_or_default().to_owned()).unwrap_or_default()))
        .collect();
    for (id, _) in &records {
        let arrived = received.contains(&job_of[id.as_str()]);
        let reported = failed.contains(id);
        assert!(arrived != reported, "{id}: arrived {arrived}, reported failed {reported} — exactly one must hold");
    }
    // and the failures are exactly the malformed message and the messages that shared a request
    // with the poison jobs
    let mut expected: BTreeSet<String> = BTreeSet::from(["m-bad".to_owned()]);
    for r in receiver.requests().iter().filter(|r| !(200..300).contains(&r.status)) {
        assert!(!r.events.is_empty(), "a refused request that carried no events");
        for event in &r.events {
            let job = event["id"].as_str().unwrap_or_default();
            let (id, _) = records.iter().find(|(_, b)| b.contains(&format!("\"id\":\"{job}\""))).unwrap_or_else(|| panic!("{job}"));
            expected.insert(id.clone());
        }
    }
    assert_eq!(failed, expected);
    assert!(failed.contains("m-503") && failed.contains("m-400") && failed.len() == 1 + 4 + 4, "{failed:?}");
    let attempts_503 = receiver.requests().iter().filter(|r| r.status == 503).count();
    assert_eq!(attempts_503, RetryPolicy::default().max_attempts as usize, "503 is retried up to the policy's attempts");
    assert_eq!(receiver.requests().iter().filter(|r| r.status == 400).count(), 1, "400 is never resent");
    assert_eq!(receiver.violations(), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------------
// The token from Secrets Manager, the built function, the command-line tool

/// A secret in moto holding `value`; returns its ARN.
async fn moto_secret(value: &str) -> String {
    let aws = moto_sdk_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&aws);
    let out =
        client.create_secret().name(unique_name("rest-token")).secret_string(value).send().await.unwrap_or_else(|e| panic!("creating a secret in moto: {e:?}"));
    out.arn().unwrap_or_else(|| panic!("moto returned no ARN")).to_owned()
}

#[tokio::test]
async fn the_token_is_read_from_secrets_manager() {
    let hec = RestReceiver::start(SplunkHec { token: HEC_TOKEN.into(), allowed_indexes: vec![] });
    let url = hec.url();
    let arn = moto_secret(&json!({"hec_token": HEC_TOKEN, "note": "rotated 2026-11"}).to_string()).await;
    let env = [
        ("AUDITSTREAM_REST_PRESET", "splunk_hec"),
        ("AUDITSTREAM_REST_URL", url.as_str()),
        ("AUDITSTREAM_REST_TOKEN_SECRET_ARN", arn.as_str()),
        ("AUDITSTREAM_REST_TOKEN_SECRET_KEY", "hec_token"),
    ];
    let aws = moto_sdk_config().await;
    let sink =
        HttpLogSink::from_settings_with(RestSettings::from_env(&env[..], None).unwrap_or_else(|e| panic!("{e}")), &aws).await.unwrap_or_else(|e| panic!("{e}"));
    let f = SqsFunction::new("rest-forwarder", Pipeline::default(), LogSinkDestination::new(sink, 4, RetryPolicy::default()));

    let response = invoke(&f, &[("m-1".into(), job("j-1", 1, 10))], MINUTE).await;

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(hec.requests()[0].header("authorization"), Some(format!("Splunk {HEC_TOKEN}").as_str()));

    // a secret that does not exist stops the function at init, naming the variable and the secret
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-secret-AbCdEf";
    let env = [("AUDITSTREAM_REST_PRESET", "splunk_hec"), ("AUDITSTREAM_REST_URL", url.as_str()), ("AUDITSTREAM_REST_TOKEN_SECRET_ARN", missing)];
    let err = match HttpLogSink::from_settings_with(RestSettings::from_env(&env[..], None).unwrap_or_else(|e| panic!("{e}")), &aws).await {
        Ok(_) => panic!("a missing secret must fail"),
        Err(e) => e.to_string(),
    };
    assert!(err.starts_with(&format!("AUDITSTREAM_REST_TOKEN_SECRET_ARN: cannot read secret {missing} from AWS Secrets Manager: ")), "{err}");
    assert!(err.contains("secretsmanager:GetSecretValue") && err.contains("kms:Decrypt"), "{err}");
}

#[tokio::test]
async fn the_built_function_forwards_the_sample_batch_under_the_lambda_runtime_api() {
    let hec = RestReceiver::start(SplunkHec { token: HEC_TOKEN.into(), allowed_indexes: vec!["audit".into()] });
    let arn = moto_secret(HEC_TOKEN).await;
    let lambda = LambdaFunction::new(workspace_bin("rest-forwarder", "rest-forwarder"))
        .function_name("rest-forwarder")
        .envs(moto_env())
        .envs([
            ("AUDITSTREAM_REST_PRESET", "splunk_hec".to_owned()),
            ("AUDITSTREAM_REST_URL", hec.url()),
            ("AUDITSTREAM_REST_TOKEN_SECRET_ARN", arn),
            ("AUDITSTREAM_SPLUNK_INDEX", "audit".to_owned()),
            ("AUDITSTREAM_REST_BATCH_MAX_EVENTS", "10".to_owned()),
        ])
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));

    let response = lambda
        .invoke_file(workspace_root().join("events/sqs-mixed-batch.json"), Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}\nstderr: {}", lambda.stderr()));

    assert_eq!(response, json!({"batchItemFailures": [{"itemIdentifier": MALFORMED}]}));
    assert_eq!(hec.accepted_events().len(), 5);
    assert_eq!(hec.violations(), Vec::<String>::new());
    let logs = format!("{}{}", lambda.stdout(), lambda.stderr());
    assert!(!logs.contains(HEC_TOKEN), "the token leaked into the function's logs:\n{logs}");
}

#[tokio::test]
async fn auditstream_run_to_a_url_posts_each_event() {
    let receiver = RestReceiver::start(Generic { path: "/hook".into(), auth: None, format: GenericFormat::Json });
    let dir = std::env::temp_dir().join(unique_name("rest-cli"));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let input = dir.join("events.ndjson");
    let lines: Vec<String> = (0..4).map(|i| job(&format!("j-cli-{i}"), 2, 20)).collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap_or_else(|e| panic!("{e}"));
    let cli = workspace_bin("auditstream-cli", "auditstream");

    let out = std::process::Command::new(cli)
        .args(["run", "--to", &receiver.url()])
        .arg(&input)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));

    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {:?}\nstdout: {stdout}\nstderr: {}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("4 read, 4 written"), "{stdout}");
    assert_eq!(receiver.requests().len(), 4);
    let mut ids: Vec<String> = receiver.accepted_events().iter().map(|e| e["id"].as_str().unwrap_or_default().to_owned()).collect();
    ids.sort();
    assert_eq!(ids, ["j-cli-0", "j-cli-1", "j-cli-2", "j-cli-3"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `auditstream run` against a careless server that answers 400 repeating the request (headers
/// and body), with inputs whose names and message ids carry a terminal escape and a newline: what
/// the command prints names every failure on one line each, escaped, and quotes neither a
/// credential nor the event.
#[tokio::test]
async fn auditstream_run_prints_no_credential_no_event_and_no_control_character() {
    use axum::http::{HeaderMap, StatusCode};
    use base64::Engine;

    const TOKEN: &str = "tok-SECRET-run-5c0f";
    const HEADER_SECRET: &str = "hdr-SECRET-run-77b1";
    const MARKER: &str = "EVENT-FIELD-MARKER-run-19e4";
    async fn echo(headers: HeaderMap, body: String) -> (StatusCode, String) {
        let said: Vec<String> = headers.iter().map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v.as_bytes()))).collect();
        (StatusCode::BAD_REQUEST, format!("rejected:\n{}\n{body}", said.join("\n")))
    }
    let server = auditstream_e2e::fake_server::FakeServer::start("echo-receiver", axum::Router::new().fallback(echo));
    let dir = std::env::temp_dir().join(unique_name("rest-cli-leaks"));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let forged = "events\x1b[2J\nfailed fake.ndjson";
    let event = format!(
        r#"{{"id":"j-leak-1","recipe_id":7,"status":"failed","completed_at":"2026-11-25T10:00:05Z","context":{{"user_id":4411}},"lines":[{{"input":{{"q":"{MARKER}"}}}}]}}"#
    );
    std::fs::write(dir.join(forged), format!("not json\n{event}\n")).unwrap_or_else(|e| panic!("{e}"));
    let records = serde_json::json!({"Records": [{"messageId": "m-1\u{1b}]0;owned\u{7}\r\nfailed fake", "body": "not json either"}]});
    std::fs::write(dir.join("sqs.json"), records.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let cli = workspace_bin("auditstream-cli", "auditstream");

    let out = std::process::Command::new(cli)
        .args(["run", "--to", &format!("{}/ingest", server.base_url())])
        .arg(&dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AUDITSTREAM_REST_AUTH", "basic")
        .env("AUDITSTREAM_REST_USERNAME", "svc")
        .env("AUDITSTREAM_REST_TOKEN", TOKEN)
        .env("AUDITSTREAM_REST_HEADERS", format!("X-Api-Key: {HEADER_SECRET}"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));

    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("3 read, 0 written") && stdout.contains("3 failed"), "{stdout}");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("svc:{TOKEN}"));
    for leak in [TOKEN, basic.as_str(), HEADER_SECRET, MARKER] {
        assert!(!stderr.contains(leak), "{leak} is in what the command printed:\n{stderr}");
    }
    assert!(!stderr.contains(['\x1b', '\x07', '\r']), "a control character reached the terminal:\n{stderr:?}");
    // Every line is a failure or a log line (the sink's warning), each about one message.
    assert!(stderr.lines().all(|l| l.starts_with("failed ") || l.starts_with(" WARN ")), "{stderr}");
    assert!(!stderr.lines().any(|l| l.starts_with("failed fake")), "a name forged a line:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("failed ")).collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    let named = |needle: &str| lines.iter().find(|l| l.contains(needle)).copied().unwrap_or_else(|| panic!("no line with {needle}:\n{stderr}"));
    assert!(named(r"events\u{1b}[2J\nfailed fake.ndjson:1:").contains("body is not valid JSON"), "{stderr}");
    let delivery = named(r"events\u{1b}[2J\nfailed fake.ndjson:2");
    assert!(delivery.contains("HTTP 400 Bad Request: rejected:") && delivery.contains("Basic [redacted]") && delivery.contains("[request data]"), "{delivery}");
    named(r"m-1\u{1b}]0;owned\u{7}\r\nfailed fake");
    let _ = std::fs::remove_dir_all(&dir);
}
