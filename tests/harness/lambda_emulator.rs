//! A minimal AWS Lambda Runtime API, to run a function binary exactly as Lambda runs it.
//!
//! The built binary (what `sam build` ships as `bootstrap`) is started with `AWS_LAMBDA_RUNTIME_API`
//! pointing here; its `lambda_runtime` loop long-polls `GET /runtime/invocation/next`, and answers on
//! `POST /runtime/invocation/{id}/response` or `/error`; a failure before the loop starts goes to
//! `POST /runtime/init/error`. This is the contract of
//! <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>, as `lambda_runtime` 1.5 uses it:
//! it requires the `Lambda-Runtime-Aws-Request-Id` and `Lambda-Runtime-Deadline-Ms` headers and the
//! `AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` and `AWS_LAMBDA_FUNCTION_VERSION`
//! variables (it panics without them), and reads the function ARN, trace id, log group and log stream
//! when present.
//!
//! The server runs on a thread of its own ([`FakeServer`]), so it keeps serving whatever the test's
//! runtime flavour and whatever the test does while it waits.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{mpsc, oneshot, watch};

use crate::fake_server::FakeServer;

/// Lambda's limit on a synchronous response (6 MB); a larger response fails the invocation.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// How an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The handler returned an error (`POST /runtime/invocation/{id}/error`).
    #[error("the function returned an error: {error_type}: {error_message}")]
    Function { error_type: String, error_message: String },
    /// The function reported a failure before serving invocations (`POST /runtime/init/error`).
    #[error("the function failed at init: {error_type}: {error_message}")]
    Init { error_type: String, error_message: String },
    /// The process ended without answering.
    #[error("the function process exited ({status}) without answering; its stderr:\n{stderr}")]
    ProcessExited { status: String, stderr: String },
    /// No answer before the deadline. Like Lambda, the emulator then kills the process.
    #[error("the function did not answer within {timeout:?} and was killed; its stderr:\n{stderr}")]
    Timeout { timeout: Duration, stderr: String },
    /// The response was over [`MAX_RESPONSE_BYTES`] (Lambda's `Function.ResponseSizeTooLarge`).
    #[error("the function's response of {size} bytes is over Lambda's limit of {MAX_RESPONSE_BYTES} bytes")]
    ResponseTooLarge { size: usize },
    /// The response body is not JSON.
    #[error("the function's response is not JSON ({source}): {body}")]
    InvalidResponse { body: String, source: serde_json::Error },
}

/// The emulator could not start or could not start the process.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot start the Lambda Runtime API emulator on 127.0.0.1: {0}")]
    Bind(std::io::Error),
    #[error("cannot start function binary {path}: {source} (build it first, see harness::workspace_bin)")]
    Spawn { path: PathBuf, source: std::io::Error },
}

/// What the function posted for one invocation.
#[derive(Debug)]
enum Outcome {
    Response(Bytes),
    Error { error_type: String, error_message: String },
    TooLarge(usize),
}

struct PendingInvocation {
    request_id: String,
    payload: Bytes,
    deadline_ms: u128,
}

#[derive(Debug, Clone)]
struct InitFailure {
    error_type: String,
    error_message: String,
}

struct Shared {
    function_name: String,
    pending: tokio::sync::Mutex<mpsc::UnboundedReceiver<PendingInvocation>>,
    /// Invocations handed to the function and not yet answered, by request id.
    in_flight: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_failure: watch::Sender<Option<InitFailure>>,
}

/// A Lambda Runtime API on `127.0.0.1:<free port>`, without a process: use [`LambdaFunction`] to run a
/// binary under it, or point any runtime client at [`RuntimeApiEmulator::runtime_api`].
pub struct RuntimeApiEmulator {
    /// First, so that dropping the emulator stops the server (ending open long polls) before the rest.
    server: FakeServer,
    shared: Arc<Shared>,
    queue: mpsc::UnboundedSender<PendingInvocation>,
}

impl RuntimeApiEmulator {
    /// Starts the emulator for a function named `function_name` (used in the invoked function ARN).
    pub fn start(function_name: &str) -> Result<Self, EmulatorError> {
        let (queue, pending) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            function_name: function_name.to_owned(),
            pending: tokio::sync::Mutex::new(pending),
            in_flight: Mutex::new(HashMap::new()),
            init_failure: watch::channel(None).0,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route("/2018-06-01/runtime/invocation/{request_id}/response", post(invocation_response))
            .route("/2018-06-01/runtime/invocation/{request_id}/error", post(invocation_error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            // The size limit is Lambda's, checked in the handler so that the test sees ResponseTooLarge.
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone());
        let server = FakeServer::try_start("lambda-runtime-api", app).map_err(EmulatorError::Bind)?;
        Ok(Self { server, shared, queue })
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`: `127.0.0.1:PORT`.
    pub fn runtime_api(&self) -> String {
        self.server.addr().to_string()
    }

    /// Queues one invocation and waits for the function's answer, at most `timeout` (which is also the
    /// deadline the function sees). Invocations are served one at a time, in order, as Lambda does
    /// within one execution environment.
    pub async fn invoke(&self, payload: serde_json::Value, timeout: Duration) -> Result<serde_json::Value, InvokeError> {
        let outcome = self.invoke_raw(payload.to_string().into_bytes(), timeout, || None).await?;
        parse_response(outcome)
    }

    /// Like [`invoke`](Self::invoke) with `exited` polled every 50 ms: when it returns the exit of the
    /// function's process, the invocation fails with [`InvokeError::ProcessExited`].
    async fn invoke_raw(&self, payload: Vec<u8>, timeout: Duration, exited: impl Fn() -> Option<InvokeError>) -> Result<Bytes, InvokeError> {
        if let Some(failure) = self.shared.init_failure.borrow().clone() {
            return Err(InvokeError::Init { error_type: failure.error_type, error_message: failure.error_message });
        }
        if let Some(e) = exited() {
            return Err(e);
        }
        let request_id = new_request_id();
        let deadline_ms = now_ms() + timeout.as_millis();
        let (done, mut answer) = oneshot::channel();
        lock(&self.shared.in_flight).insert(request_id.clone(), done);
        // The receiver lives as long as `self.shared`, so this send cannot fail while `self` exists.
        let _ = self.queue.send(PendingInvocation { request_id: request_id.clone(), payload: payload.into(), deadline_ms });

        let mut init_failure = self.shared.init_failure.subscribe();
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let result = loop {
            tokio::select! {
                outcome = &mut answer => match outcome {
                    Ok(Outcome::Response(body)) => break Ok(body),
                    Ok(Outcome::Error { error_type, error_message }) => {
                        break Err(InvokeError::Function { error_type, error_message })
                    }
                    Ok(Outcome::TooLarge(size)) => break Err(InvokeError::ResponseTooLarge { size }),
                    // Only dropped with the server; not reachable while `self` exists.
                    Err(_) => break Err(InvokeError::ProcessExited {
                        status: "the emulator stopped".into(),
                        stderr: String::new(),
                    }),
                },
                changed = init_failure.changed() => {
                    if changed.is_ok() {
                        if let Some(f) = init_failure.borrow().clone() {
                            break Err(InvokeError::Init { error_type: f.error_type, error_message: f.error_message });
                        }
                    }
                }
                _ = tick.tick() => {
                    if let Some(e) = exited() {
                        break Err(e);
                    }
                    if started.elapsed() >= timeout {
                        break Err(InvokeError::Timeout { timeout, stderr: String::new() });
                    }
                }
            }
        };
        lock(&self.shared.in_flight).remove(&request_id);
        result
    }
}

fn parse_response(body: Bytes) -> Result<serde_json::Value, InvokeError> {
    serde_json::from_slice(&body)
        .map_err(|source| InvokeError::InvalidResponse { body: String::from_utf8_lossy(&body[..body.len().min(2000)]).into_owned(), source })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere in a test must not hide the emulator's state from the rest of that test.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

/// A request id in Lambda's UUID shape, unique within the test process.
fn new_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = now_ms() as u64;
    format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", (t >> 16) as u32, t as u16, std::process::id() & 0xfff, (n >> 48) & 0xfff, n & 0xffff_ffff_ffff)
}

/// An X-Ray trace header as Lambda passes it: `Root=1-<epoch hex>-<24 hex>;Parent=<16 hex>;Sampled=0`.
fn trace_id(request_id: &str) -> String {
    let hex: String = request_id.chars().filter(char::is_ascii_hexdigit).collect();
    let secs = now_ms() / 1000;
    format!("Root=1-{secs:08x}-{};Parent={};Sampled=0", &hex[hex.len() - 24..], &hex[..16])
}

fn json_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string();
    (status, [("content-type", "application/json")], body).into_response()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, [("content-type", "application/json")], r#"{"status":"OK"}"#).into_response()
}

async fn next_invocation(State(shared): State<Arc<Shared>>) -> Response {
    // Long poll: one waiter at a time takes the next invocation (the receive is cancel-safe, so a client
    // that hangs up loses nothing).
    let invocation = { shared.pending.lock().await.recv().await };
    let Some(invocation) = invocation else {
        return json_error(StatusCode::GONE, "EmulatorStopped", "the emulator is shutting down");
    };
    let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{}", shared.function_name);
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", invocation.request_id.clone());
    set("lambda-runtime-deadline-ms", invocation.deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", arn);
    set("lambda-runtime-trace-id", trace_id(&invocation.request_id));
    set("content-type", "application/json".to_owned());
    (StatusCode::OK, headers, invocation.payload).into_response()
}

fn complete(shared: &Shared, request_id: &str, outcome: Outcome) -> Result<(), Box<Response>> {
    match lock(&shared.in_flight).remove(request_id) {
        Some(done) => {
            // The invoker may have given up (timeout); then nobody waits for this answer.
            let _ = done.send(outcome);
            Ok(())
        }
        None => Err(Box::new(json_error(StatusCode::BAD_REQUEST, "InvalidRequestID", &format!("no invocation {request_id} is waiting for an answer")))),
    }
}

async fn invocation_response(State(shared): State<Arc<Shared>>, UrlPath(request_id): UrlPath<String>, body: Bytes) -> Response {
    if body.len() > MAX_RESPONSE_BYTES {
        return match complete(&shared, &request_id, Outcome::TooLarge(body.len())) {
            Ok(()) => json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!("response of {} bytes is over the limit of {MAX_RESPONSE_BYTES}", body.len()),
            ),
            Err(r) => *r,
        };
    }
    match complete(&shared, &request_id, Outcome::Response(body)) {
        Ok(()) => accepted(),
        Err(r) => *r,
    }
}

/// The body of `/error` and `/init/error` is `{"errorType": ..., "errorMessage": ...}`; the type may also
/// come in the `Lambda-Runtime-Function-Error-Type` header.
fn read_error(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    let header_type = headers.get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let error_type = parsed.get("errorType").and_then(|v| v.as_str()).map(str::to_owned).or(header_type).unwrap_or_else(|| "Unknown".to_owned());
    let error_message = parsed.get("errorMessage").and_then(|v| v.as_str()).map(str::to_owned).unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    (error_type, error_message)
}

async fn invocation_error(State(shared): State<Arc<Shared>>, UrlPath(request_id): UrlPath<String>, headers: HeaderMap, body: Bytes) -> Response {
    let (error_type, error_message) = read_error(&headers, &body);
    match complete(&shared, &request_id, Outcome::Error { error_type, error_message }) {
        Ok(()) => accepted(),
        Err(r) => *r,
    }
}

async fn init_error(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let (error_type, error_message) = read_error(&headers, &body);
    shared.init_failure.send_replace(Some(InitFailure { error_type, error_message }));
    accepted()
}

// ---------------------------------------------------------------------------------------------------------
// A function process under the emulator

/// The most lines of a stream kept, its last ones: enough for any test's output and for an error
/// message, while a benchmark's function writes lines for as long as it runs (lambda-bench's
/// 20,000-event runs), which must not all be held.
const KEPT_LINES: usize = 2_000;
/// The most bytes of a stream kept, its last lines' (never less than the last line).
const KEPT_BYTES: usize = 1 << 20;
/// The most kept of one line; the rest of a longer line is passed over, and said.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// What is called with every line a stream gives, before it is kept (without its line ending, cut
/// at [`MAX_LINE_BYTES`]): how a caller sees each line of a stream that is not kept whole.
pub type LineHook = Box<dyn FnMut(&str) + Send>;

/// Output a child process wrote, collected line by line as it comes: its last lines, within
/// [`KEPT_LINES`] and [`KEPT_BYTES`].
#[derive(Default)]
struct Captured {
    tail: Mutex<Tail>,
    closed: AtomicBool,
}

/// The last lines of a stream, each with its line ending, and how many earlier ones were let go.
#[derive(Default)]
struct Tail {
    lines: std::collections::VecDeque<String>,
    bytes: usize,
    dropped: u64,
}

impl Tail {
    fn push(&mut self, line: String) {
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.lines.len() > KEPT_LINES || (self.bytes > KEPT_BYTES && self.lines.len() > 1) {
            let Some(oldest) = self.lines.pop_front() else { break };
            self.bytes -= oldest.len();
            self.dropped += 1;
        }
    }

    /// The lines kept, after a first line saying how many earlier ones were not.
    fn text(&self) -> String {
        let mut text = String::with_capacity(self.bytes + 64);
        if self.dropped > 0 {
            text.push_str(&format!("[{} earlier lines not kept]\n", self.dropped));
        }
        self.lines.iter().for_each(|line| text.push_str(line));
        text
    }
}

/// Reads one line into `line` (emptied first), keeping at most `max` bytes of it: the rest, up to
/// and with its newline, is read and passed over. Returns the bytes kept and those passed over;
/// `(0, 0)` at the end of the stream.
fn read_line_bounded(reader: &mut impl BufRead, line: &mut Vec<u8>, max: usize) -> std::io::Result<(usize, usize)> {
    line.clear();
    let kept = reader.by_ref().take(max as u64).read_until(b'\n', line)?;
    let mut passed_over = 0;
    if kept == max && line.last() != Some(&b'\n') {
        loop {
            let available = reader.fill_buf()?;
            if available.is_empty() {
                break;
            }
            match available.iter().position(|b| *b == b'\n') {
                Some(at) => {
                    reader.consume(at + 1);
                    passed_over += at;
                    line.push(b'\n');
                    break;
                }
                None => {
                    let n = available.len();
                    reader.consume(n);
                    passed_over += n;
                }
            }
        }
    }
    Ok((kept, passed_over))
}

fn capture(stream: impl Read + Send + 'static, into: Arc<Captured>, mut hook: Option<LineHook>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        while let Ok((kept, passed_over)) = read_line_bounded(&mut reader, &mut line, MAX_LINE_BYTES) {
            if kept == 0 {
                break;
            }
            let mut text = String::from_utf8_lossy(&line).into_owned();
            let ending = if text.ends_with("\r\n") { 2 } else { usize::from(text.ends_with('\n')) };
            if let Some(hook) = &mut hook {
                hook(&text[..text.len() - ending]);
            }
            if passed_over > 0 {
                text.truncate(text.len() - ending);
                text.push_str(&format!(" [{passed_over} more bytes of this line not kept]\n"));
            }
            lock(&into.tail).push(text);
        }
        into.closed.store(true, Ordering::SeqCst);
    })
}

/// How to start a function binary under the emulator.
///
/// The process gets a clean environment shaped like Lambda's — `PATH`, `LANG`, `TZ`, `RUST_BACKTRACE`,
/// `AWS_REGION`/`AWS_DEFAULT_REGION` us-east-1, static test credentials, `_HANDLER`, the `AWS_LAMBDA_*`
/// variables — plus what the caller adds with [`env`](Self::env) (which wins). Nothing else of the test's
/// environment leaks in, so a developer's `AWS_PROFILE` or `AUDITSTREAM_*` cannot change a test.
pub struct LambdaFunction {
    binary: PathBuf,
    function_name: String,
    memory_mb: u32,
    env: Vec<(String, String)>,
    stdout_hook: Option<LineHook>,
}

impl LambdaFunction {
    pub fn new(binary: impl AsRef<Path>) -> Self {
        let binary = binary.as_ref().to_path_buf();
        let function_name = binary.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "function".to_owned());
        Self { binary, function_name, memory_mb: 256, env: Vec::new(), stdout_hook: None }
    }

    /// `AWS_LAMBDA_FUNCTION_NAME` (default: the binary's file name).
    pub fn function_name(mut self, name: &str) -> Self {
        self.function_name = name.to_owned();
        self
    }

    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (default 256).
    pub fn memory_mb(mut self, mb: u32) -> Self {
        self.memory_mb = mb;
        self
    }

    /// Adds (or overrides) one environment variable of the process.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Adds (or overrides) several environment variables, e.g. `services::moto_env()`.
    pub fn envs<K: Into<String>, V: Into<String>>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self {
        self.env.extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Calls `hook` with every line the function writes to stdout, as it comes: what sees all of a
    /// long run's output (lambda-bench adds up its EMF lines), of which [`RunningLambda::stdout`]
    /// keeps the last lines only.
    pub fn on_stdout_line(mut self, hook: impl FnMut(&str) + Send + 'static) -> Self {
        self.stdout_hook = Some(Box::new(hook));
        self
    }

    /// Starts the emulator and the process. The process is killed when the returned value is dropped.
    pub fn spawn(self) -> Result<RunningLambda, EmulatorError> {
        let emulator = RuntimeApiEmulator::start(&self.function_name)?;
        let mut command = Command::new(&self.binary);
        command.env_clear();
        let date = "2026/01/01";
        let defaults: Vec<(String, String)> = vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())),
            ("LANG".into(), "C.UTF-8".into()),
            ("TZ".into(), ":UTC".into()),
            ("RUST_BACKTRACE".into(), std::env::var("RUST_BACKTRACE").unwrap_or_else(|_| "1".into())),
            ("AWS_REGION".into(), crate::services::TEST_REGION.into()),
            ("AWS_DEFAULT_REGION".into(), crate::services::TEST_REGION.into()),
            ("AWS_ACCESS_KEY_ID".into(), crate::services::TEST_ACCESS_KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), crate::services::TEST_SECRET_ACCESS_KEY.into()),
            ("_HANDLER".into(), "bootstrap".into()),
            ("AWS_LAMBDA_RUNTIME_API".into(), emulator.runtime_api()),
            ("AWS_LAMBDA_FUNCTION_NAME".into(), self.function_name.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), self.memory_mb.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME".into(), format!("/aws/lambda/{}", self.function_name)),
            ("AWS_LAMBDA_LOG_STREAM_NAME".into(), format!("{date}/[$LATEST]{}", new_request_id().replace('-', ""))),
        ];
        command.envs(defaults.into_iter().chain(self.env));
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|source| EmulatorError::Spawn { path: self.binary.clone(), source })?;
        let stdout = Arc::new(Captured::default());
        let stderr = Arc::new(Captured::default());
        if let Some(out) = child.stdout.take() {
            capture(out, stdout.clone(), self.stdout_hook);
        }
        if let Some(err) = child.stderr.take() {
            capture(err, stderr.clone(), None);
        }
        Ok(RunningLambda { emulator, child: Mutex::new(child), reaped: AtomicBool::new(false), stdout, stderr, function_name: self.function_name })
    }
}

/// A function process running under its own emulator. Killed on drop; if the test is failing at that
/// point, what the function printed is shown with the failure.
pub struct RunningLambda {
    emulator: RuntimeApiEmulator,
    child: Mutex<Child>,
    /// Set once [`RunningLambda::stop_measured`] has reaped the process: its pid may belong to
    /// another process by then, so it is never signalled again.
    reaped: AtomicBool,
    stdout: Arc<Captured>,
    stderr: Arc<Captured>,
    function_name: String,
}

impl RunningLambda {
    /// Invokes the function with `payload` and returns its response. `timeout` is the deadline the
    /// function sees (`Lambda-Runtime-Deadline-Ms`); past it the process is killed, as Lambda does, and
    /// later invocations fail with [`InvokeError::ProcessExited`].
    pub async fn invoke(&self, payload: serde_json::Value, timeout: Duration) -> Result<serde_json::Value, InvokeError> {
        let result = self.emulator.invoke_raw(payload.to_string().into_bytes(), timeout, || self.exit_error()).await;
        match result {
            Ok(body) => parse_response(body),
            Err(InvokeError::Timeout { timeout, .. }) => {
                self.kill();
                Err(InvokeError::Timeout { timeout, stderr: self.stderr() })
            }
            Err(e) => Err(e),
        }
    }

    /// Invokes with the contents of a JSON file, e.g. one of `events/`.
    pub async fn invoke_file(&self, path: impl AsRef<Path>, timeout: Duration) -> Result<serde_json::Value, InvokeError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading event file {}: {e}", path.display()));
        let payload: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("event file {} is not JSON: {e}", path.display()));
        self.invoke(payload, timeout).await
    }

    /// What the function wrote to stdout so far (its EMF metrics lines): all of it, or in a long run
    /// its last [`KEPT_LINES`] lines (at most [`KEPT_BYTES`]) after a line saying how many earlier
    /// ones were not kept. [`LambdaFunction::on_stdout_line`] sees every line.
    pub fn stdout(&self) -> String {
        lock(&self.stdout.tail).text()
    }

    /// What the function wrote to stderr so far (its log lines), kept as [`RunningLambda::stdout`] is.
    pub fn stderr(&self) -> String {
        lock(&self.stderr.tail).text()
    }

    /// Waits up to `timeout` for a stdout line matching `predicate` (log lines can trail the response).
    pub async fn wait_for_stdout_line(&self, predicate: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        let started = Instant::now();
        loop {
            if let Some(line) = self.stdout().lines().find(|l| predicate(l)) {
                return Some(line.to_owned());
            }
            if started.elapsed() >= timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `127.0.0.1:PORT` of this function's Runtime API.
    pub fn runtime_api(&self) -> String {
        self.emulator.runtime_api()
    }

    /// The exit status, if the process has ended.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        lock(&self.child).try_wait().ok().flatten()
    }

    fn exit_error(&self) -> Option<InvokeError> {
        let status = self.exit_status()?;
        // Let the reader threads drain what the process wrote before it died.
        let started = Instant::now();
        while !self.stderr.closed.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(InvokeError::ProcessExited { status: status.to_string(), stderr: self.stderr() })
    }

    fn kill(&self) {
        if self.reaped.load(Ordering::SeqCst) {
            return;
        }
        let mut child = lock(&self.child);
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Ends the process and returns what it used over its whole life: CPU as `wait4(2)` reports it
    /// for the reaped process (every thread of it), the CPU a function is billed for, init included;
    /// and the peak RSS of the function's own address space (see [`kill_measured`]).
    #[cfg(unix)]
    pub fn stop_measured(&self) -> std::io::Result<ProcessUsage> {
        let mut child = lock(&self.child);
        if self.reaped.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("the function's process was already reaped"));
        }
        let usage = kill_measured(&mut child)?;
        self.reaped.store(true, Ordering::SeqCst);
        Ok(usage)
    }
}

/// Kills `child` (not yet reaped) and reaps it, returning what it used over its whole life.
///
/// The peak RSS is read from the live process (`VmHWM` in `/proc/PID/status`, Linux), not taken
/// from `wait4`'s `ru_maxrss`: Linux carries the high-water mark of the address space an `execve`
/// replaces into the new program's `ru_maxrss`, and a child's first address space is its spawner's
/// (shared by `vfork`, copied by `fork`). So `ru_maxrss` reports at least the spawner's RSS at the
/// time of the spawn — when lambda-bench built its whole workload before starting the function, a
/// 20,000-event run showed 529 MB for a function whose own peak is a fraction of that. `VmHWM`
/// belongs to the address space the program got at its `execve`: the function's memory alone.
#[cfg(unix)]
fn kill_measured(child: &mut Child) -> std::io::Result<ProcessUsage> {
    let pid = child.id() as libc::pid_t;
    // Read before the kill: once killed, the address space (and its high-water mark) is gone.
    let peak_rss_kb = own_peak_rss_kb(pid);
    // SAFETY: `pid` is the caller's own child, not yet reaped.
    if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut status = 0;
    // SAFETY: wait4 only writes the status and the rusage we pass it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } != pid {
        return Err(std::io::Error::last_os_error());
    }
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let max_rss_kb = peak_rss_kb?.unwrap_or(usage.ru_maxrss as u64);
    Ok(ProcessUsage { user: time(usage.ru_utime), system: time(usage.ru_stime), max_rss_kb })
}

/// The peak RSS, in KiB, of the live process `pid` since its `execve` (`VmHWM`); `None` where
/// there is no `/proc` to read it from (not Linux).
#[cfg(unix)]
fn own_peak_rss_kb(pid: libc::pid_t) -> std::io::Result<Option<u64>> {
    if !cfg!(target_os = "linux") {
        return Ok(None);
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().strip_suffix("kB")).and_then(|v| v.trim().parse().ok());
    kb.map(Some).ok_or_else(|| std::io::Error::other(format!("/proc/{pid}/status gives no VmHWM (has the process exited?)")))
}

/// CPU and memory a process used: CPU from `wait4(2)`, the peak RSS of its own address space.
#[derive(Debug, Clone, Copy)]
pub struct ProcessUsage {
    pub user: Duration,
    pub system: Duration,
    /// Peak resident set size, in KiB.
    pub max_rss_kb: u64,
}

impl Drop for RunningLambda {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            // Shown by the test harness with the failing test's output.
            eprintln!("--- function {} stdout ---\n{}\n--- function {} stderr ---\n{}", self.function_name, self.stdout(), self.function_name, self.stderr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident KiB of this process now (`VmRSS`).
    fn own_rss_kb() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// A measured process's peak RSS is its own, however large the process that started it: a
    /// benchmark harness holding its whole workload must not show up as the function's memory.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_measured_process_peak_rss_is_its_own_not_its_spawners() {
        const SPAWNER_MB: usize = 256;
        // Touched (not zeroed by the allocator), so that the pages are resident.
        let held = vec![1u8; SPAWNER_MB << 20];
        assert!(own_rss_kb() > (SPAWNER_MB as u64) << 10, "the spawner holds {SPAWNER_MB} MB");
        let mut child = Command::new("sleep").arg("30").stdin(Stdio::null()).spawn().unwrap();
        // Let it exec and settle: what is measured is `sleep`, a process of a few MB.
        std::thread::sleep(Duration::from_millis(200));
        let usage = kill_measured(&mut child).unwrap();
        drop(held);
        assert!(usage.max_rss_kb < 16 << 10, "sleep's peak RSS measured as {} MB", usage.max_rss_kb >> 10);
    }

    /// The lines of `text`, captured as a function's stream is, and every line the hook saw.
    fn captured(text: Vec<u8>) -> (Arc<Captured>, Vec<String>) {
        let into = Arc::new(Captured::default());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hook: LineHook = Box::new({
            let seen = seen.clone();
            move |line| lock(&seen).push(line.to_owned())
        });
        capture(std::io::Cursor::new(text), into.clone(), Some(hook)).join().unwrap();
        assert!(into.closed.load(Ordering::SeqCst));
        let seen = lock(&seen).clone();
        (into, seen)
    }

    /// A function that writes for as long as it runs is not held whole: the last lines are kept,
    /// within a count and a size, after a line saying how many were let go; the hook sees them all.
    #[test]
    fn a_long_stream_keeps_its_last_lines_within_bounds_and_the_hook_sees_every_line() {
        let short: String = (0..10).map(|n| format!("line {n}\n")).collect();
        let (kept, seen) = captured(short.clone().into_bytes());
        assert_eq!(lock(&kept.tail).text(), short, "a short stream is kept whole");
        assert_eq!(seen.len(), 10);

        // 20,000 lines of about 1 KB, as a benchmark's function writes: 20 MB.
        let line = |n: usize| format!("{{\"n\":{n},\"pad\":\"{}\"}}\n", "x".repeat(1000));
        let many: Vec<u8> = (0..20_000).flat_map(|n| line(n).into_bytes()).collect();
        let (kept, seen) = captured(many);
        let tail = lock(&kept.tail);
        assert!(tail.bytes <= KEPT_BYTES && tail.lines.len() <= KEPT_LINES, "{} bytes in {} lines kept", tail.bytes, tail.lines.len());
        assert_eq!(tail.bytes, tail.lines.iter().map(String::len).sum::<usize>());
        let text = tail.text();
        let kept_lines = tail.lines.len();
        assert!(kept_lines > 500, "{kept_lines}");
        assert!(text.starts_with(&format!("[{} earlier lines not kept]\n", 20_000 - kept_lines)), "{}", &text[..80]);
        assert!(text.ends_with(&line(19_999)), "the last line is kept");
        assert_eq!(seen.len(), 20_000, "the hook saw every line");
        assert_eq!(format!("{}\n", seen[7]), line(7));

        // Short lines: the count bounds them.
        let (kept, _) = captured((0..5_000).flat_map(|n| format!("{n}\n").into_bytes()).collect());
        let tail = lock(&kept.tail);
        assert_eq!(tail.lines.len(), KEPT_LINES);
        assert_eq!(tail.lines.back().map(String::as_str), Some("4999\n"));
    }

    #[test]
    fn a_line_longer_than_the_most_kept_of_one_is_cut_and_says_so() {
        let long = "y".repeat(MAX_LINE_BYTES + 5_000);
        let (kept, seen) = captured(format!("first\r\n{long}\nafter\n{long}").into_bytes());
        let lines: Vec<String> = lock(&kept.tail).lines.iter().cloned().collect();
        assert_eq!(lines.len(), 4, "{:?}", lines.iter().map(String::len).collect::<Vec<_>>());
        assert_eq!(lines[0], "first\r\n");
        let cut = format!("{} [5000 more bytes of this line not kept]\n", &long[..MAX_LINE_BYTES]);
        assert_eq!(lines[1], cut, "cut, with its newline passed over");
        assert_eq!(lines[2], "after\n", "the next line intact");
        assert_eq!(lines[3], cut, "a last line without a newline too");
        assert_eq!(seen, ["first".to_owned(), long[..MAX_LINE_BYTES].to_owned(), "after".to_owned(), long[..MAX_LINE_BYTES].to_owned()]);
    }

    #[test]
    fn request_ids_are_uuid_shaped_and_unique() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, vec![8, 4, 4, 4, 12], "{a}");
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()), "{a}");
    }

    #[test]
    fn trace_ids_have_xray_shape() {
        let t = trace_id(&new_request_id());
        let parts: Vec<&str> = t.split(';').collect();
        assert_eq!(parts.len(), 3, "{t}");
        assert!(parts[0].starts_with("Root=1-") && parts[0].len() == "Root=1-".len() + 8 + 1 + 24, "{t}");
        assert!(parts[1].starts_with("Parent=") && parts[1].len() == "Parent=".len() + 16, "{t}");
        assert_eq!(parts[2], "Sampled=0");
    }

    #[test]
    fn error_bodies_are_read_from_json_or_header() {
        let mut headers = HeaderMap::new();
        let (t, m) = read_error(&headers, br#"{"errorType":"Boom","errorMessage":"it broke"}"#);
        assert_eq!((t.as_str(), m.as_str()), ("Boom", "it broke"));
        headers.insert("lambda-runtime-function-error-type", HeaderValue::from_static("Runtime.InitError"));
        let (t, m) = read_error(&headers, b"not json");
        assert_eq!((t.as_str(), m.as_str()), ("Runtime.InitError", "not json"));
    }
}
