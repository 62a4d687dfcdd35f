//! `auditstream send`: events from files onto an SQS queue or SNS topic, as a producer would put
//! them there — large bodies offloaded to S3 in the Extended Client format, so AWS's own extended
//! clients can read what we send (and we read what they send).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::input::{expand_inputs, BatchShape, InputBatch, InputBatches};
use anyhow::{bail, Context, Result};
use auditstream::aws::errors::{classify, entry_failure, AwsCall};
use auditstream::aws::s3::s3_client;
use auditstream::aws::sqs::{deduplication_id, is_fifo, send_messages, sqs_client, OutgoingMessage, PARALLEL_REQUESTS};
use auditstream::aws::sqs_message::AttributeValue;
use auditstream::config::ProcessEnv;
use auditstream::delivery::pack::{send_all, EntryResult, SEND_LIMITS};
use auditstream::delivery::retry::DeliveryError;
use auditstream::delivery::retry::{Deadline, RetryPolicy};
use auditstream::intake::payload_pointer::DEFAULT_OFFLOAD_THRESHOLD;
use auditstream::intake::payload_store::{offload_if_large, PayloadSettings, S3PayloadStore};
use futures::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};

/// The `--help` text (set on the subcommand in `main.rs`).
pub const LONG_ABOUT: &str = "Send audit events from files to an SQS queue or an SNS topic, as a producer would.\n\n\
INPUT is read as by `auditstream run`: a file holding one JSON event, an NDJSON file, an SQS Lambda \
event ({\"Records\":[...]}: each record's body is sent), or a directory of these. Bodies are sent as they \
are, without checking them: `send` is also how to put a poison message on a queue.\n\n\
Messages go out with SendMessageBatch (SNS: PublishBatch), 10 per request and at most 1 MiB per request, \
several requests at a time. A body larger than --offload-threshold (with its attributes) is stored in the \
payload bucket under a random UUID key and replaced by an Amazon SQS Extended Client pointer \
([\"software.amazon.payloadoffloading.PayloadS3Pointer\",{\"s3BucketName\":...,\"s3Key\":...}] with the \
ExtendedPayloadSize attribute), which the auditstream functions, `auditstream poll` and AWS's Java and \
Python extended clients all read. To a FIFO queue or topic (.fifo), every message gets --group-id and a \
deduplication id from its body's SHA-256.\n\n\
Prints the counts on stdout. Exits 0 when every event was sent; 1 when any was not (each named on stderr, \
by file and line); 2 on a usage or configuration error.";

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["queue", "topic"])))]
pub struct SendArgs {
    /// The SQS queue URL to send to.
    #[arg(long, value_name = "URL")]
    queue: Option<String>,
    /// The SNS topic ARN to publish to.
    #[arg(long, value_name = "ARN")]
    topic: Option<String>,
    /// The bucket large bodies are offloaded to [default: AUDITSTREAM_PAYLOAD_BUCKET].
    #[arg(long, value_name = "BUCKET")]
    payload_bucket: Option<String>,
    /// Bodies larger than this many bytes (attributes included) are offloaded to the payload bucket.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_OFFLOAD_THRESHOLD)]
    offload_threshold: usize,
    /// The message group of every message, for FIFO queues and topics.
    #[arg(long, value_name = "ID", default_value = "auditstream")]
    group_id: String,
    /// Files or directories to read.
    #[arg(value_name = "INPUT", required = true)]
    inputs: Vec<PathBuf>,
}

/// Where messages go: an SQS queue or an SNS topic (`send`, and `replay --queue/--topic`).
pub(crate) enum Target {
    Queue { client: aws_sdk_sqs::Client, url: String },
    Topic { client: aws_sdk_sns::Client, arn: String },
}

impl Target {
    /// The queue when given, else the topic.
    pub(crate) fn new(aws: &aws_config::SdkConfig, queue: Option<String>, topic: Option<String>) -> Result<Target> {
        Ok(match (queue, topic) {
            (Some(url), _) => Target::Queue { client: sqs_client(aws), url },
            (None, Some(arn)) => Target::Topic { client: aws_sdk_sns::Client::new(aws), arn },
            (None, None) => bail!("one of --queue or --topic is required"),
        })
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            Target::Queue { url, .. } => url,
            Target::Topic { arn, .. } => arn,
        }
    }

    /// Sends with SendMessageBatch (SNS: PublishBatch): 10 per request, 1 MiB in all, several
    /// requests at a time, the shared retry policy. The new message id, or why not, per message.
    pub(crate) async fn send(&self, messages: &[OutgoingMessage]) -> Vec<Result<String, String>> {
        match self {
            Target::Queue { client, url } => send_messages(client, url, messages, RetryPolicy::default(), Deadline::NONE).await,
            Target::Topic { client, arn } => publish(client, arn, messages).await,
        }
    }
}

pub async fn send(args: SendArgs) -> Result<ExitCode> {
    let bucket = match args.payload_bucket {
        Some(b) => Some(b),
        None => PayloadSettings::from_env(&ProcessEnv)?.bucket,
    };
    if args.offload_threshold == 0 {
        bail!("--offload-threshold must be at least 1 byte");
    }
    let aws = aws_config::load_from_env().await;
    let store = S3PayloadStore::new(s3_client(&aws));
    let target = Target::new(&aws, args.queue, args.topic)?;
    let fifo = is_fifo(target.name());

    let (files, problems) = expand_inputs(&args.inputs);
    let total_bytes: u64 = files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    let progress = ProgressBar::new(total_bytes).with_style(
        ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {wide_bar} {elapsed} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut failed = 0u64;
    for p in &problems {
        failed += 1;
        crate::progress::say(&progress, &format!("failed {}: {}", p.id, p.message));
    }

    // Files are read on a blocking thread, one batch ahead of sending.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<InputBatch>(2);
    let reader = tokio::task::spawn_blocking(move || {
        for batch in InputBatches::new(files, BatchShape::default()) {
            if tx.blocking_send(batch).is_err() {
                break;
            }
        }
    });

    let (mut read, mut sent, mut offloaded) = (0u64, 0u64, 0u64);
    while let Some(batch) = rx.recv().await {
        for p in &batch.problems {
            failed += 1;
            crate::progress::say(&progress, &format!("failed {}: {}", p.id, p.message));
        }
        read += batch.messages.len() as u64;
        let ids: Vec<String> = batch.messages.iter().map(|m| m.id.clone()).collect();
        // Offload what is large, several payloads at a time; keep input order.
        let prepared: Vec<Result<(OutgoingMessage, bool), String>> = stream::iter(batch.messages)
            .map(|m| {
                let mut message = OutgoingMessage::new(m.body);
                if fifo {
                    message.message_group_id = Some(args.group_id.clone());
                    message.deduplication_id = Some(deduplication_id(&message.body));
                }
                let (store, bucket) = (&store, bucket.as_deref());
                async move { offload_if_large(store, bucket, message, args.offload_threshold, Deadline::NONE).await.map_err(|e| e.to_string()) }
            })
            .buffered(PARALLEL_REQUESTS)
            .collect()
            .await;
        let mut outgoing = Vec::new();
        let mut outgoing_ids = Vec::new();
        for (id, p) in ids.into_iter().zip(prepared) {
            match p {
                Ok((message, was_offloaded)) => {
                    offloaded += u64::from(was_offloaded);
                    outgoing.push(message);
                    outgoing_ids.push(id);
                }
                Err(why) => {
                    failed += 1;
                    crate::progress::say(&progress, &format!("failed {id}: {why}"));
                }
            }
        }
        let results = target.send(&outgoing).await;
        for (id, result) in outgoing_ids.iter().zip(results) {
            match result {
                Ok(_) => sent += 1,
                Err(why) => {
                    failed += 1;
                    crate::progress::say(&progress, &format!("failed {id}: {why}"));
                }
            }
        }
        progress.inc(batch.bytes_read);
        progress.set_message(format!("{sent} sent"));
    }
    progress.finish_and_clear();
    reader.await.context("reading the inputs")?;

    let via = bucket.map(|b| format!(" ({offloaded} offloaded to s3://{b})")).unwrap_or_default();
    println!("{} read, {sent} sent{via}, {failed} failed -> {}", read + problems.len() as u64, target.name());
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Publishes to an SNS topic with PublishBatch (10 per request, 1 MiB in all).
async fn publish(client: &aws_sdk_sns::Client, topic_arn: &str, messages: &[OutgoingMessage]) -> Vec<Result<String, String>> {
    use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
    let sizes: Vec<usize> = messages.iter().map(OutgoingMessage::size).collect();
    send_all(&sizes, SEND_LIMITS, PARALLEL_REQUESTS, RetryPolicy::default(), Deadline::NONE, |indices| async move {
        let mut request = client.publish_batch().topic_arn(topic_arn);
        for &i in &indices {
            let m = &messages[i];
            let mut entry = PublishBatchRequestEntry::builder()
                .id(i.to_string())
                .message(&m.body)
                .set_message_group_id(m.message_group_id.clone())
                .set_message_deduplication_id(m.deduplication_id.clone());
            for (name, a) in &m.attributes {
                let value = MessageAttributeValue::builder().data_type(&a.data_type);
                let value = match &a.value {
                    AttributeValue::Text(s) => value.string_value(s),
                    AttributeValue::Binary(b) => value.binary_value(aws_sdk_sns::primitives::Blob::new(b.clone())),
                };
                entry = entry.message_attributes(name, value.build().map_err(|e| DeliveryError::permanent(format!("PublishBatch attribute {name}: {e}")))?);
            }
            request = request.publish_batch_request_entries(entry.build().map_err(|e| DeliveryError::permanent(format!("PublishBatch entry: {e}")))?);
        }
        let output = request.send().await.map_err(|e| classify(AwsCall::sns("PublishBatch", topic_arn), &e))?;
        let mut answers = Vec::new();
        for ok in output.successful() {
            if let Some(i) = ok.id().and_then(|id| id.parse().ok()) {
                answers.push((i, EntryResult::Done(ok.message_id().unwrap_or_default().to_owned())));
            }
        }
        for failed in output.failed() {
            if let Ok(i) = failed.id().parse() {
                answers.push((i, entry_failure(failed.sender_fault(), failed.code(), failed.message())));
            }
        }
        Ok(answers)
    })
    .await
}
