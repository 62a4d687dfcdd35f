//! A tiny Lambda function for the harness's own tests: it answers with its event and what it learnt from
//! the Runtime API, and fails on request, so the emulator's every path can be checked against the real
//! `lambda_runtime` client.
//!
//! Event fields: `{"fail": "message"}` returns a handler error; `{"sleep_ms": N}` answers after N ms;
//! `{"exit": CODE}` ends the process without answering. Environment: `ECHO_LAMBDA_INIT_ERROR=message`
//! reports an init error (as a function whose configuration is invalid would) and exits;
//! `ECHO_LAMBDA_EXIT_AT_START=message` prints it to stderr and exits before contacting the Runtime API.

use std::io::{Read, Write};
use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    if let Some(message) = payload.get("fail").and_then(Value::as_str) {
        return Err(message.into());
    }
    if let Some(code) = payload.get("exit").and_then(Value::as_i64) {
        eprintln!("echo-lambda: exiting with {code} as asked");
        std::process::exit(code as i32);
    }
    if let Some(ms) = payload.get("sleep_ms").and_then(Value::as_u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    println!("{}", json!({"echo_lambda": "handled", "request_id": context.request_id}));
    Ok(json!({
        "event": payload,
        "request_id": context.request_id,
        "deadline_ms": context.deadline,
        "invoked_function_arn": context.invoked_function_arn,
        "trace_id": context.xray_trace_id,
        "function_name": context.env_config.function_name,
        "memory_mb": context.env_config.memory,
        "version": context.env_config.version,
        "log_group": context.env_config.log_group,
        "log_stream": context.env_config.log_stream,
        "echo_value": std::env::var("ECHO_LAMBDA_VALUE").ok(),
        "home_leaked": std::env::var("HOME").is_ok(),
    }))
}

/// Posts to `/runtime/init/error` by hand: `lambda_runtime` only does so for SnapStart hooks, but the
/// Runtime API lets any function report a failed init, and the emulator must surface it.
fn report_init_error(message: &str) -> std::io::Result<()> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").map_err(std::io::Error::other)?;
    let body = json!({"errorType": "Runtime.InitError", "errorMessage": message}).to_string();
    let mut stream = std::net::TcpStream::connect(&api)?;
    write!(
        stream,
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\n\
         Lambda-Runtime-Function-Error-Type: Runtime.InitError\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    if let Ok(message) = std::env::var("ECHO_LAMBDA_EXIT_AT_START") {
        eprintln!("echo-lambda: {message}");
        std::process::exit(2);
    }
    if let Ok(message) = std::env::var("ECHO_LAMBDA_INIT_ERROR") {
        report_init_error(&message)?;
        eprintln!("echo-lambda: init failed: {message}");
        std::process::exit(1);
    }
    lambda_runtime::run(service_fn(handler)).await
}
