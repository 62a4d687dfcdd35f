//! Logging for CloudWatch: JSON lines through `tracing-subscriber`, initialised once.
//!
//! Level from `RUST_LOG` (default `info`; the AWS SDK's chatter is kept at `warn`). No ANSI
//! colours: CloudWatch shows them as escape codes. Logs go to stderr so that stdout carries only
//! the EMF metric lines (and, for the command-line tool, its results).

use tracing_subscriber::EnvFilter;

/// Initialises JSON logging (for Lambda). Safe to call more than once.
pub fn init_json() {
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .with_env_filter(filter())
        .try_init();
}

/// Initialises human-readable logging (for the command-line tool).
pub fn init_text() {
    let _ = tracing_subscriber::fmt().with_target(false).with_ansi(false).without_time().with_writer(std::io::stderr).with_env_filter(filter()).try_init();
}

fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,aws_sdk_s3=warn,aws_sdk_sqs=warn"))
}
