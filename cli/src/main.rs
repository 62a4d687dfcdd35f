//! `auditstream`: the audit log pipeline on a laptop, and the queue tools.
//!
//! `auditstream run` feeds local files through exactly the pipeline the Lambda functions run, into
//! a local directory laid out as the S3 bucket would be (the default), S3 itself, or any other
//! destination. Configuration is the functions' own `AUDITSTREAM_*` environment variables.

mod check;
mod destinations;
mod input;
mod integrity;
mod poll;
mod progress;
mod redrive;
mod replay;
mod run;
mod send;

use std::path::PathBuf;
use std::process::ExitCode;

use auditstream::redact::Escaped;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "auditstream",
    version,
    about = "Stream audit logs: mask, size and deliver audit events, as the auditstream Lambda functions do.",
    long_about = "Stream audit logs: mask, size and deliver audit events, as the auditstream Lambda functions do.\n\n\
Configuration comes from the same AUDITSTREAM_* environment variables as the functions \
(AUDITSTREAM_STREAMS, AUDITSTREAM_LOG_TEMPLATE, AUDITSTREAM_MAX_EVENT_BYTES, ...; see the README). \
AWS access uses the standard AWS configuration (profiles, AWS_REGION, AWS_ENDPOINT_URL for a local S3 or SQS)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run events from files through the pipeline and deliver them.
    #[command(long_about = "Run events from files through the pipeline and deliver them.\n\n\
INPUT is a file holding one JSON event, an NDJSON file (one event per line), an SQS Lambda event \
({\"Records\":[...]}, like the files in events/), or a directory of these. A file or line over \
AUDITSTREAM_MAX_EVENT_BYTES plus 1 MiB is refused without being read whole; directories are walked \
once per file, following links, and a link loop is reported (see the README).\n\n\
Prints a summary on stdout and progress on stderr. Exits 0 when every event was delivered, \
duplicate or filtered; 1 when any failed (each failure is named on stderr, by file and line or \
message id); 2 on a usage or configuration error.")]
    Run {
        /// Where to deliver: dir:PATH (files laid out as the S3 keys), s3://BUCKET[/PREFIX], rest (the
        /// REST destination configured by AUDITSTREAM_REST_*), https://URL (one JSON POST per event),
        /// azure-blob (configured by AZURE_STORAGE_CONNECTION_STRING or AUDITSTREAM_AZURE_BLOB_*) or
        /// azure-monitor (configured by AZURE_* and AUDITSTREAM_AZURE_MONITOR_*).
        #[arg(long = "to", value_name = "DEST", default_value = "dir:./audit-logs")]
        to: String,
        /// Files or directories to read.
        #[arg(value_name = "INPUT", required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Send events from files to an SQS queue or SNS topic (large ones offloaded to S3).
    #[command(long_about = send::LONG_ABOUT)]
    Send(send::SendArgs),
    /// Process a queue's messages as the Lambda functions do (delete, dead-letter or leave each).
    #[command(long_about = poll::LONG_ABOUT)]
    Poll(poll::PollArgs),
    /// Check that a destination works, step by step, without writing an audit event.
    #[command(long_about = check::LONG_ABOUT)]
    Check(check::CheckArgs),
    /// Move messages from a dead-letter queue back to their queue.
    #[command(long_about = redrive::LONG_ABOUT)]
    Redrive(redrive::RedriveArgs),
    /// Send archived events again, selected by date and stream, to a destination.
    #[command(long_about = replay::LONG_ABOUT)]
    Replay(replay::ReplayArgs),
    /// Extend an archive's chain of signed digests (s3:// with AWS KMS, dir: with a local key).
    #[command(long_about = integrity::DIGEST_LONG_ABOUT)]
    Digest(integrity::DigestArgs),
    /// Check an archive against its signed digests: nothing removed, changed or slipped in.
    #[command(long_about = integrity::VERIFY_LONG_ABOUT)]
    Verify(integrity::VerifyArgs),
}

fn main() -> ExitCode {
    auditstream::report::telemetry::init_text();
    let cli = Cli::parse();
    let result = runtime_for(&cli.command).map_err(anyhow::Error::from).and_then(|runtime| {
        runtime.block_on(async {
            match cli.command {
                Command::Run { to, inputs } => run::run(&to, &inputs).await,
                Command::Send(args) => send::send(args).await,
                Command::Poll(args) => poll::poll(args).await,
                Command::Redrive(args) => redrive::redrive(args).await,
                Command::Check(args) => check::check(args).await,
                Command::Replay(args) => replay::replay(args).await,
                Command::Digest(args) => integrity::digest(args).await,
                Command::Verify(args) => integrity::verify_archive(args).await,
            }
        })
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("auditstream: {}", Escaped(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}

/// `run` works on one thread (files are still read on a thread of their own, and `dir:` files
/// written on tokio's blocking threads): its requests are made where the HTTP connections are
/// driven, so that a request and its answer do not wake another thread twice. On two cores this
/// cuts the CPU per event (`scripts/bench`), and the pipeline is not the bottleneck: the
/// destination is. The other commands keep a worker per core (`poll --parallel` runs its pollers
/// side by side).
fn runtime_for(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match command {
        Command::Run { .. } => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build()
}
