//! The SQS calls the functions and the command-line tools share: send in batches, receive,
//! delete in batches. Failures are classified for the shared retry policy by [`crate::aws::errors`],
//! and each message gets its own result, so a caller can name exactly the message that was not sent.

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName, SendMessageBatchRequestEntry};

use crate::aws::errors::{classify, entry_failure, AwsCall};
use crate::aws::sqs_message::{attributes_size, to_sqs_attributes, MessageAttributes, QueueMessage};
use crate::delivery::pack::{send_all, BatchLimits, EntryResult, SEND_LIMITS};
use crate::delivery::retry::DeliveryError;
use crate::delivery::retry::{Deadline, RetryPolicy};

/// Requests in flight at once when sending or deleting many messages.
pub const PARALLEL_REQUESTS: usize = 8;

/// An SQS client with the SDK's own retries off: the shared retry policy applies, and respects
/// the Lambda deadline.
pub fn sqs_client(sdk: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::config::Builder::from(sdk).retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled()).build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// Whether a queue URL or ARN names a FIFO queue.
pub fn is_fifo(url_or_arn: &str) -> bool {
    url_or_arn.trim_end_matches('/').ends_with(".fifo")
}

/// A FIFO deduplication id for a body (for queues without content-based deduplication): its
/// SHA-256, as content-based deduplication would use.
pub fn deduplication_id(body: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(body.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutgoingMessage {
    pub body: String,
    pub attributes: MessageAttributes,
    /// Required by FIFO queues.
    pub message_group_id: Option<String>,
    /// For FIFO queues without content-based deduplication.
    pub deduplication_id: Option<String>,
}

impl OutgoingMessage {
    pub fn new(body: impl Into<String>) -> Self {
        OutgoingMessage { body: body.into(), ..OutgoingMessage::default() }
    }

    /// Bytes SQS counts against its message size limit.
    pub fn size(&self) -> usize {
        self.body.len() + attributes_size(&self.attributes)
    }
}

/// Sends messages with `SendMessageBatch` (10 per request, 1 MiB in all, requests in parallel).
/// Returns the new message id, or why not, per message.
pub async fn send_messages(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    messages: &[OutgoingMessage],
    retry: RetryPolicy,
    deadline: Deadline,
) -> Vec<Result<String, String>> {
    let sizes: Vec<usize> = messages.iter().map(OutgoingMessage::size).collect();
    send_all(&sizes, SEND_LIMITS, PARALLEL_REQUESTS, retry, deadline, |indices| async move {
        let mut request = client.send_message_batch().queue_url(queue_url);
        for &i in &indices {
            let m = &messages[i];
            let entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(&m.body)
                .set_message_attributes((!m.attributes.is_empty()).then(|| to_sqs_attributes(&m.attributes)))
                .set_message_group_id(m.message_group_id.clone())
                .set_message_deduplication_id(m.deduplication_id.clone())
                .build()
                .map_err(|e| DeliveryError::permanent(format!("SendMessageBatch entry for {queue_url}: {e}")))?;
            request = request.entries(entry);
        }
        let output = request.send().await.map_err(|e| classify(AwsCall::sqs("SendMessageBatch", queue_url), &e))?;
        let mut answers: Vec<(usize, EntryResult)> = Vec::with_capacity(indices.len());
        for ok in output.successful() {
            if let Ok(i) = ok.id().parse() {
                answers.push((i, EntryResult::Done(ok.message_id().to_owned())));
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

/// Deletes received messages by receipt handle with `DeleteMessageBatch`.
pub async fn delete_messages(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    receipt_handles: &[String],
    retry: RetryPolicy,
    deadline: Deadline,
) -> Vec<Result<(), String>> {
    let sizes: Vec<usize> = receipt_handles.iter().map(String::len).collect();
    let limits = BatchLimits { max_entries: 10, max_bytes: usize::MAX };
    let results = send_all(&sizes, limits, PARALLEL_REQUESTS, retry, deadline, |indices| async move {
        let mut request = client.delete_message_batch().queue_url(queue_url);
        for &i in &indices {
            let entry = DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(&receipt_handles[i])
                .build()
                .map_err(|e| DeliveryError::permanent(format!("DeleteMessageBatch entry for {queue_url}: {e}")))?;
            request = request.entries(entry);
        }
        let output = request.send().await.map_err(|e| classify(AwsCall::sqs("DeleteMessageBatch", queue_url), &e))?;
        let mut answers: Vec<(usize, EntryResult)> = Vec::with_capacity(indices.len());
        for ok in output.successful() {
            if let Ok(i) = ok.id().parse() {
                answers.push((i, EntryResult::Done(String::new())));
            }
        }
        for failed in output.failed() {
            if let Ok(i) = failed.id().parse() {
                answers.push((i, entry_failure(failed.sender_fault(), failed.code(), failed.message())));
            }
        }
        Ok(answers)
    })
    .await;
    results.into_iter().map(|r| r.map(|_| ())).collect()
}

/// How to receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receive {
    /// 1 to 10.
    pub max_messages: i32,
    /// Long polling, 0 to 20 seconds.
    pub wait_seconds: i32,
    /// Overrides the queue's visibility timeout for these messages.
    pub visibility_timeout: Option<i32>,
}

/// Receives up to a batch of messages, with all their attributes, and their receipt handles.
pub async fn receive(client: &aws_sdk_sqs::Client, queue_url: &str, how: Receive) -> Result<Vec<(QueueMessage, String)>, DeliveryError> {
    let output = client
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(how.max_messages.clamp(1, 10))
        .wait_time_seconds(how.wait_seconds.clamp(0, 20))
        .set_visibility_timeout(how.visibility_timeout)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .map_err(|e| classify(AwsCall::sqs("ReceiveMessage", queue_url), &e))?;
    Ok(output
        .messages
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| {
            let (message, handle) = QueueMessage::from_sqs(m);
            // A message without a receipt handle could not be deleted; SQS always sends one.
            handle.map(|h| (message, h))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::sqs_message::MessageAttribute;

    #[test]
    fn fifo_queues_are_known_by_their_name() {
        assert!(is_fifo("https://sqs.us-east-1.amazonaws.com/1/audit.fifo"));
        assert!(is_fifo("arn:aws:sqs:us-east-1:1:audit.fifo"));
        assert!(!is_fifo("https://sqs.us-east-1.amazonaws.com/1/audit"));
    }

    #[test]
    fn sizes_count_body_and_attributes() {
        let mut m = OutgoingMessage::new("12345");
        m.attributes.insert("ab".into(), MessageAttribute::number(7));
        assert_eq!(m.size(), 5 + 2 + "Number".len() + 1);
    }
}
