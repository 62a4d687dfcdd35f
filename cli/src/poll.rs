//! `auditstream poll`: a queue's messages through the pipeline on a laptop, exactly as the
//! Lambda event source mapping would hand them to a function — the same resolving, pipeline,
//! FIFO rule and dead-lettering ([`auditstream::intake::settle::settle`]); then what is done with
//! is deleted and the rest left for SQS to deliver again.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use auditstream::aws::errors::{classify, AwsCall};
use auditstream::aws::s3::s3_client;
use auditstream::aws::sqs::{delete_messages, is_fifo, receive, sqs_client, Receive};
use auditstream::aws::sqs_message::QueueMessage;
use auditstream::config::{PipelineSettings, ProcessEnv};
use auditstream::delivery::process::Outcome;
use auditstream::delivery::retry::{Deadline, RetryPolicy};
use auditstream::intake::dead_letter::{DeadLetterSender, DeadLetterSettings, SqsDeadLetterQueue};
use auditstream::intake::payload_store::S3PayloadStore;
use auditstream::intake::settle::{settle, Disposition, QueueKind, QueueTools, RetryReason, Settled};
use auditstream::pipeline::Pipeline;
use auditstream::report::metrics::Counts;
use aws_sdk_sqs::types::QueueAttributeName;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::Mutex;

use crate::destinations::{self, DestSpec};

/// The `--help` text (set on the subcommand in `main.rs`).
pub const LONG_ABOUT: &str = "Process the messages of an SQS queue as the auditstream Lambda functions do.\n\n\
Behaves like the Lambda event source mapping: receives up to --batch-size messages, resolves each \
(SNS and EventBridge envelopes, S3 payload pointers), runs the pipeline and delivers to --to, then \
deletes what was delivered, a duplicate, or filtered out. A permanent failure (not a JSON object, a \
pointer to a missing object, ...) is sent to the dead-letter queue at once when --dlq (or \
AUDITSTREAM_DLQ_URL) is set, and deleted; without one it is left on the queue. Transient failures are \
left on the queue: SQS delivers them again after the visibility timeout, and the queue's redrive policy \
moves a message that keeps failing to its dead-letter queue. On a FIFO queue (.fifo) the first failure \
and every later message of the batch are left, in order, and nothing is dead-lettered.\n\n\
Runs until Ctrl-C (the receives and batches in hand are finished first) or, with --until-empty, until \
a receive finds the queue empty while no poller holds a batch it has not settled (messages in flight \
with other consumers, or failed ones waiting for their visibility timeout, are not waited for). \
Configuration is the functions' AUDITSTREAM_* variables.\n\n\
Prints the counts on stdout. Exits 0 when every message was delivered, a duplicate or filtered out, \
and deleted; 1 when any failed, or could not be deleted (each named on stderr with its message id and \
what became of it); 2 on a usage or configuration error.";

#[derive(clap::Args)]
pub struct PollArgs {
    /// The SQS queue URL to poll.
    #[arg(long, value_name = "URL")]
    queue: String,
    /// Where to deliver, as for `run`: dir:PATH, s3://BUCKET[/PREFIX], rest, or https://URL.
    #[arg(long = "to", value_name = "DEST", default_value = "dir:./audit-logs")]
    to: String,
    /// Messages received per batch (1-10).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..=10))]
    batch_size: i32,
    /// Long polling: how long a receive waits for messages (0-20 seconds).
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(i32).range(0..=20))]
    wait_seconds: i32,
    /// How long received messages stay hidden from other consumers (default: the queue's). Delivery
    /// retries stop in time for a failure to be left before it reappears.
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(i32).range(1..=43_200))]
    visibility_timeout: Option<i32>,
    /// Stop when a receive finds no messages and no poller holds a batch.
    #[arg(long)]
    until_empty: bool,
    /// The dead-letter queue URL permanent failures are sent to.
    #[arg(long, value_name = "URL", env = "AUDITSTREAM_DLQ_URL")]
    dlq: Option<String>,
    /// Batches processed at once (as concurrent function invocations would).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: u16,
}

/// What all pollers share.
struct Poller {
    sqs: aws_sdk_sqs::Client,
    queue: String,
    kind: QueueKind,
    receive: Receive,
    visibility: Duration,
    until_empty: bool,
    pipeline: Pipeline,
    destination: Arc<dyn auditstream::delivery::destination::Destination>,
    payloads: S3PayloadStore,
    dead_letters: Option<SqsDeadLetterQueue>,
    stop: AtomicBool,
    /// Pollers holding a batch they have not settled yet: with --until-empty, a poller that finds
    /// the queue empty keeps polling while this is not zero.
    holding: AtomicUsize,
    totals: Mutex<Totals>,
    progress: ProgressBar,
}

#[derive(Default)]
struct Totals {
    counts: Counts,
    /// Failed messages, and messages held back on a FIFO queue.
    failed: u64,
    /// Messages done with (delivered, a duplicate, filtered out, dead-lettered) whose delete
    /// failed: SQS delivers them again after their visibility timeout.
    not_deleted: u64,
}

/// One poller holding a batch, for as long as this lives.
struct Holding<'a>(&'a AtomicUsize);

impl<'a> Holding<'a> {
    fn start(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Holding(count)
    }
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub async fn poll(args: PollArgs) -> Result<ExitCode> {
    let spec = DestSpec::parse(&args.to)?;
    let settings = PipelineSettings::from_env(&ProcessEnv)?;
    settings.log_warnings();
    let setup = destinations::build(&spec, &settings).await?;
    // Clap reads AUDITSTREAM_DLQ_URL into --dlq when the option is not given.
    let dlq = DeadLetterSettings::for_queue_url("--dlq", args.dlq)?.queue_url;
    let aws = aws_config::load_from_env().await;
    let sqs = sqs_client(&aws);
    let kind = if is_fifo(&args.queue) { QueueKind::Fifo } else { QueueKind::Standard };
    let visibility = match args.visibility_timeout {
        Some(s) => s,
        None => queue_visibility_timeout(&sqs, &args.queue).await?,
    };
    let progress =
        ProgressBar::new_spinner().with_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    progress.enable_steady_tick(Duration::from_millis(200));
    let poller = Arc::new(Poller {
        sqs: sqs.clone(),
        queue: args.queue.clone(),
        kind,
        receive: Receive { max_messages: args.batch_size, wait_seconds: args.wait_seconds, visibility_timeout: args.visibility_timeout },
        visibility: Duration::from_secs(visibility.max(1) as u64),
        until_empty: args.until_empty,
        pipeline: setup.pipeline,
        destination: setup.destination,
        payloads: S3PayloadStore::new(s3_client(&aws)),
        dead_letters: dlq.map(|url| SqsDeadLetterQueue::new(sqs, url)),
        stop: AtomicBool::new(false),
        holding: AtomicUsize::new(0),
        totals: Mutex::new(Totals::default()),
        progress,
    });

    let ctrl_c = {
        let poller = Arc::clone(&poller);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                poller.stop.store(true, Ordering::SeqCst);
                crate::progress::say(&poller.progress, "stopping: finishing the receives and batches in hand (Ctrl-C again to abort)");
                let _ = tokio::signal::ctrl_c().await;
                std::process::exit(130);
            }
        })
    };
    let workers: Vec<_> = (0..args.parallel).map(|_| tokio::spawn(run_poller(Arc::clone(&poller)))).collect();
    let mut error = None;
    for w in workers {
        if let Err(e) = w.await.context("poller task")? {
            error.get_or_insert(e);
        }
    }
    ctrl_c.abort();
    poller.progress.finish_and_clear();
    let totals = poller.totals.lock().await;
    let c = &totals.counts;
    println!(
        "{} received, {} written, {} duplicates, {} filtered, {} masked lines, {} truncated, {} failed ({} sent to the dead-letter queue), {} not deleted -> {}",
        c.received, c.written, c.duplicates, c.filtered, c.masked_lines, c.truncated, totals.failed, c.dead_lettered, totals.not_deleted,
        poller.destination.describe()
    );
    if let Some(e) = error {
        return Err(e);
    }
    Ok(if totals.failed == 0 && totals.not_deleted == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

async fn run_poller(p: Arc<Poller>) -> Result<()> {
    let retry = RetryPolicy::default();
    let mut receive_failures = 0u32;
    while !p.stop.load(Ordering::SeqCst) {
        // Not raced against Ctrl-C: a receive given up half-way may already have taken messages,
        // which would then stay hidden, unprocessed, for their visibility timeout. A receive ends
        // within --wait-seconds.
        let messages = match receive(&p.sqs, &p.queue, p.receive).await {
            Ok(m) => {
                receive_failures = 0;
                m
            }
            Err(e) if !e.is_permanent() && receive_failures < retry.max_attempts => {
                receive_failures += 1;
                crate::progress::say(&p.progress, &format!("receive failed, retrying: {e}"));
                tokio::time::sleep(e.retry_after.unwrap_or(Duration::from_millis(250 << receive_failures.min(6)))).await;
                continue;
            }
            Err(e) => bail!("{e}"),
        };
        if messages.is_empty() {
            // Another poller's batch is not settled yet: keep polling with the others until it is.
            if p.until_empty && p.holding.load(Ordering::SeqCst) == 0 {
                break;
            }
            if p.receive.wait_seconds == 0 {
                tokio::time::sleep(EMPTY_RECEIVE_PAUSE).await;
            }
            continue;
        }
        let _holding = Holding::start(&p.holding);
        settle_and_delete(&p, messages, retry).await;
    }
    Ok(())
}

/// Pause after a short-polling receive found nothing, so pollers do not spin.
const EMPTY_RECEIVE_PAUSE: Duration = Duration::from_millis(250);

/// Processes a received batch, deletes what is done with, and reports it.
async fn settle_and_delete(p: &Poller, messages: Vec<(QueueMessage, String)>, retry: RetryPolicy) {
    // Deliver while the messages are still hidden; keep a margin to delete them.
    let deadline = Deadline::after(p.visibility.saturating_sub((p.visibility / 5).max(Duration::from_secs(1))));
    let (messages, handles): (Vec<_>, Vec<_>) = messages.into_iter().unzip();
    let tools = QueueTools {
        pipeline: &p.pipeline,
        destination: p.destination.as_ref(),
        payloads: Some(&p.payloads),
        dead_letters: p.dead_letters.as_ref().map(|d| d as &dyn DeadLetterSender),
        processed_by: "auditstream poll",
    };
    let settled = settle(tools, messages, p.kind, deadline).await;
    let (done_ids, done_handles): (Vec<&str>, Vec<String>) =
        settled.iter().zip(handles).filter(|((_, _, d), _)| !d.is_retry()).map(|((id, _, _), h)| (id, h)).unzip();
    let deleted = delete_messages(&p.sqs, &p.queue, &done_handles, retry, Deadline::NONE).await;
    let not_deleted: Vec<(&str, String)> = done_ids.into_iter().zip(deleted).filter_map(|(id, r)| r.err().map(|why| (id, why))).collect();
    report(p, &settled, &not_deleted).await;
}

async fn report(p: &Poller, settled: &Settled, not_deleted: &[(&str, String)]) {
    let mut failed = 0;
    for (id, outcome, disposition) in settled.iter() {
        let line = match (outcome, disposition) {
            (Outcome::Failed(f), Disposition::DeadLettered) => format!("failed {id} (sent to the dead-letter queue): {f}"),
            (Outcome::Failed(f), Disposition::Retry(RetryReason::DeadLetterFailed(why))) => {
                format!("failed {id} (left on the queue: sending it to the dead-letter queue failed: {why}): {f}")
            }
            (Outcome::Failed(f), _) if f.is_permanent() => format!("failed {id} (permanent, left on the queue for its redrive policy): {f}"),
            (Outcome::Failed(f), _) => format!("failed {id} (transient, left on the queue): {f}"),
            (_, Disposition::Retry(RetryReason::FifoOrder { after })) => {
                format!("held {id} (delivered, but left on the FIFO queue to follow message {after}, which failed)")
            }
            _ => continue,
        };
        failed += 1;
        crate::progress::say(&p.progress, &line);
    }
    for (id, why) in not_deleted {
        crate::progress::say(
            &p.progress,
            &format!("not deleted {id} (settled, but still on the queue: SQS will deliver it again after its visibility timeout): {why}"),
        );
    }
    let mut totals = p.totals.lock().await;
    totals.counts.add(&settled.report.counts);
    totals.failed += failed;
    totals.not_deleted += not_deleted.len() as u64;
    p.progress.set_message(format!("{} received, {} written, {} failed", totals.counts.received, totals.counts.written, totals.failed));
}

async fn queue_visibility_timeout(sqs: &aws_sdk_sqs::Client, queue: &str) -> Result<i32> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|e| classify(AwsCall::sqs("GetQueueAttributes", queue), &e))?;
    Ok(attributes.attributes().and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout)).and_then(|v| v.parse().ok()).unwrap_or(30))
}
