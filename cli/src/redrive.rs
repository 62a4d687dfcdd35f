//! `auditstream redrive`: messages from a dead-letter queue back to the queue they came from.
//!
//! SQS's own message move task is used where the server has it (it moves messages server-side,
//! with their attributes); elsewhere — local SQS implementations — messages are received, sent to
//! the destination with their body and attributes (less our `auditstream-*` reasons), and only
//! then deleted from the dead-letter queue: a message may be duplicated by an interruption, never
//! lost. Duplicates are harmless: the destinations write each event once.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use auditstream::aws::errors::{classify, AwsCall};
use auditstream::aws::sqs::{delete_messages, is_fifo, receive, send_messages, sqs_client, OutgoingMessage, Receive};
use auditstream::delivery::retry::{Deadline, RetryPolicy};
use auditstream::intake::dead_letter::without_our_attributes;
use aws_sdk_sqs::types::QueueAttributeName;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// StartMessageMoveTask where the server supports it, else receive/send/delete.
    Auto,
    /// SQS's message move task only.
    MoveTask,
    /// Receive, send to the destination, delete from the dead-letter queue.
    Receive,
}

/// The `--help` text (set on the subcommand in `main.rs`).
pub const LONG_ABOUT: &str = "Move messages from a dead-letter queue back to a queue, to be processed again.\n\n\
Without --to, the destination is the queue whose redrive policy names the dead-letter queue \
(ListDeadLetterSourceQueues), as the SQS console does; when several queues share the dead-letter \
queue, name one with --to.\n\n\
Uses SQS's StartMessageMoveTask where the server supports it, showing its progress until it \
completes (Ctrl-C stops watching; the task continues). Elsewhere — or with --method receive — \
messages are received from the dead-letter queue, sent to the destination with their body and \
message attributes (less the auditstream-* attributes that say why they failed), and then deleted, \
until the dead-letter queue is empty; Ctrl-C stops after the messages in hand. A redriven S3 \
payload pointer still points at its payload, as long as the payload bucket keeps it.\n\n\
Prints the number of messages moved on stdout. Exits 0 when every message was moved; 1 when any \
was not (each named on stderr); 2 on a usage or configuration error.";

#[derive(clap::Args)]
pub struct RedriveArgs {
    /// The dead-letter queue URL to move messages from.
    #[arg(long, value_name = "DLQ_URL")]
    from: String,
    /// The queue URL to move them to (default: the queue whose redrive policy names the DLQ).
    #[arg(long, value_name = "QUEUE_URL")]
    to: Option<String>,
    /// How to move them.
    #[arg(long, value_enum, default_value_t = Method::Auto)]
    method: Method,
    /// With the move task: at most this many messages per second (1-500; default: as fast as SQS goes).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=500))]
    max_per_second: Option<i32>,
}

pub async fn redrive(args: RedriveArgs) -> Result<ExitCode> {
    let aws = aws_config::load_from_env().await;
    let sqs = sqs_client(&aws);
    let to = match args.to {
        Some(to) => to,
        None => source_queue(&sqs, &args.from).await?,
    };
    if to.trim_end_matches('/') == args.from.trim_end_matches('/') {
        bail!("--to is the dead-letter queue itself ({to}): name the queue the messages should go back to");
    }
    if args.method != Method::Receive {
        let (from_arn, to_arn) = (queue_arn(&sqs, &args.from).await?, queue_arn(&sqs, &to).await?);
        let mut request = sqs.start_message_move_task().source_arn(&from_arn).destination_arn(&to_arn);
        if let Some(n) = args.max_per_second {
            request = request.max_number_of_messages_per_second(n);
        }
        match request.send().await {
            Ok(started) => return watch_move_task(&sqs, &from_arn, started.task_handle().unwrap_or_default(), &to).await,
            Err(e) if args.method == Method::Auto => {
                let e = classify(AwsCall::sqs("StartMessageMoveTask", &args.from), &e);
                eprintln!(
                    "the server did not start a message move task ({}); moving messages by receive, send and delete instead",
                    auditstream::redact::Escaped(&e.to_string())
                );
            }
            Err(e) => bail!("{}", classify(AwsCall::sqs("StartMessageMoveTask", &args.from), &e)),
        }
    }
    receive_send_delete(&sqs, &args.from, &to).await
}

/// The queue whose redrive policy names `dlq`.
async fn source_queue(sqs: &aws_sdk_sqs::Client, dlq: &str) -> Result<String> {
    let output = sqs.list_dead_letter_source_queues().queue_url(dlq).send().await.map_err(|e| classify(AwsCall::sqs("ListDeadLetterSourceQueues", dlq), &e))?;
    match output.queue_urls() {
        [one] => Ok(one.clone()),
        [] => bail!("no queue has a redrive policy naming {dlq} as its dead-letter queue: name the destination with --to QUEUE_URL"),
        many => bail!("{} queues use {dlq} as their dead-letter queue ({}): name the destination with --to QUEUE_URL", many.len(), many.join(", ")),
    }
}

async fn queue_attribute(sqs: &aws_sdk_sqs::Client, queue: &str, name: QueueAttributeName) -> Result<Option<String>> {
    let output = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(name.clone())
        .send()
        .await
        .map_err(|e| classify(AwsCall::sqs("GetQueueAttributes", queue), &e))?;
    Ok(output.attributes().and_then(|a| a.get(&name)).cloned())
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, queue: &str) -> Result<String> {
    queue_attribute(sqs, queue, QueueAttributeName::QueueArn).await?.with_context(|| format!("GetQueueAttributes on {queue} returned no QueueArn"))
}

async fn watch_move_task(sqs: &aws_sdk_sqs::Client, from_arn: &str, handle: &str, to: &str) -> Result<ExitCode> {
    let progress = ProgressBar::new(0)
        .with_style(ProgressStyle::with_template("{spinner} moved {pos}/{len} {wide_bar} {elapsed}").unwrap_or_else(|_| ProgressStyle::default_bar()));
    progress.enable_steady_tick(Duration::from_millis(200));
    let stop = ctrl_c_flag();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let tasks = sqs
            .list_message_move_tasks()
            .source_arn(from_arn)
            .max_results(10)
            .send()
            .await
            .map_err(|e| classify(AwsCall::sqs("ListMessageMoveTasks", from_arn), &e))?;
        let Some(task) = tasks.results().iter().find(|t| t.task_handle().is_none_or(|h| h == handle || handle.is_empty())) else { continue };
        progress.set_length(task.approximate_number_of_messages_to_move().unwrap_or(0).max(0) as u64);
        progress.set_position(task.approximate_number_of_messages_moved().max(0) as u64);
        let moved = task.approximate_number_of_messages_moved();
        match task.status() {
            Some("COMPLETED") => {
                progress.finish_and_clear();
                println!("{moved} message(s) moved to {to} (message move task)");
                return Ok(ExitCode::SUCCESS);
            }
            Some(status @ ("FAILED" | "CANCELLED")) => {
                progress.finish_and_clear();
                eprintln!("message move task {status}: {}", auditstream::redact::Escaped(task.failure_reason().unwrap_or("no reason given")));
                println!("{moved} message(s) moved to {to} before the task stopped");
                return Ok(ExitCode::from(1));
            }
            _ => {}
        }
        if stop.load(Ordering::SeqCst) {
            progress.finish_and_clear();
            println!("{moved} message(s) moved to {to} so far; the move task continues in SQS (task handle {handle})");
            return Ok(ExitCode::SUCCESS);
        }
    }
}

async fn receive_send_delete(sqs: &aws_sdk_sqs::Client, from: &str, to: &str) -> Result<ExitCode> {
    let waiting = queue_attribute(sqs, from, QueueAttributeName::ApproximateNumberOfMessages).await?.and_then(|n| n.parse().ok()).unwrap_or(0u64);
    let progress = ProgressBar::new(waiting)
        .with_style(ProgressStyle::with_template("{spinner} moved {pos}/~{len} {wide_bar} {elapsed}").unwrap_or_else(|_| ProgressStyle::default_bar()));
    let stop = ctrl_c_flag();
    let retry = RetryPolicy::default();
    let fifo_destination = is_fifo(to);
    let (mut moved, mut failed) = (0u64, 0u64);
    // Messages stay hidden in the DLQ while they are sent; one that cannot be sent reappears
    // there after this timeout, by when the loop has stopped at the empty receive.
    let how = Receive { max_messages: 10, wait_seconds: 1, visibility_timeout: Some(120) };
    while !stop.load(Ordering::SeqCst) {
        let received = receive(sqs, from, how).await.map_err(anyhow::Error::msg)?;
        if received.is_empty() {
            break;
        }
        let (messages, handles): (Vec<_>, Vec<_>) = received.into_iter().unzip();
        let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
        let outgoing: Vec<OutgoingMessage> = messages
            .into_iter()
            .map(|m| {
                let (group, dedup) = if fifo_destination {
                    (Some(m.message_group_id.clone().unwrap_or_else(|| "auditstream-redrive".into())), Some(m.id.clone()))
                } else {
                    (None, None)
                };
                OutgoingMessage { body: m.body, attributes: without_our_attributes(m.attributes), message_group_id: group, deduplication_id: dedup }
            })
            .collect();
        let sent = send_messages(sqs, to, &outgoing, retry, Deadline::NONE).await;
        let mut done = Vec::new();
        for ((id, handle), result) in ids.iter().zip(handles).zip(sent) {
            match result {
                Ok(_) => done.push(handle),
                Err(why) => {
                    failed += 1;
                    crate::progress::say(&progress, &format!("failed {id}: not moved, left in the dead-letter queue: {why}"));
                }
            }
        }
        for r in delete_messages(sqs, from, &done, retry, Deadline::NONE).await {
            match r {
                Ok(()) => moved += 1,
                Err(why) => {
                    crate::progress::say(&progress, &format!("a message was sent to {to} but could not be deleted from {from}, so it is in both: {why}"))
                }
            }
        }
        progress.set_position(moved);
    }
    progress.finish_and_clear();
    println!("{moved} message(s) moved to {to}, {failed} failed");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// A flag that Ctrl-C sets (a second Ctrl-C exits at once).
fn ctrl_c_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = Arc::clone(&flag);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            set.store(true, Ordering::SeqCst);
            eprintln!("stopping after the messages in hand (Ctrl-C again to abort)");
            let _ = tokio::signal::ctrl_c().await;
            std::process::exit(130);
        }
    });
    flag
}
