//! Poison messages to the dead-letter queue at once, instead of a retry storm.
//!
//! A message that fails permanently (not a JSON object, a malformed job or activity, a pointer to a missing
//! object, an event that cannot be sized under the limit) would fail the same way on every
//! redelivery. When `AUDITSTREAM_DLQ_URL` is set, it is sent to that queue right away and then
//! acknowledged; when the send fails, the message is reported as a batch item failure instead, so
//! nothing is lost (SQS redelivers it, and the queue's redrive policy still applies).
//!
//! A dead letter is the message as it arrived — the **original body** (for an offloaded event,
//! the pointer, whose payload stays in S3) and its **original attributes** (for a pointer,
//! `ExtendedPayloadSize`) — so that redriving it (`auditstream redrive`, or the SQS console) puts
//! back exactly what the producer sent. Message attributes say why:
//!
//! | attribute | value |
//! |---|---|
//! | `auditstream-error` | the failure, as logged (never event data or a credential: errors are built not to quote them, see [`crate::redact`]) |
//! | `auditstream-original-message-id` | the SQS message id it had on the source queue |
//! | `auditstream-failed-at` | when, ISO-8601 UTC |
//! | `auditstream-failed-in` | the function (or `auditstream poll`) that gave up on it |
//!
//! Both texts are written with [`escape_controls`]: a message id or an error carrying a newline or
//! a terminal escape shows them as `\n`, `\u{1b}`, so whoever reads the attributes sees one line
//! as it was meant.
//!
//! SQS allows 10 attributes per message. The original attributes come first (redrive needs
//! them); ours fill the remaining places in the order above. Earlier `auditstream-*` attributes
//! (a message that failed, was redriven, and failed again) are replaced, not repeated.

use async_trait::async_trait;

use crate::aws::sqs::{send_messages, OutgoingMessage};
use crate::aws::sqs_message::{MessageAttribute, MessageAttributes, QueueMessage};
use crate::config::{ConfigError, Env, EnvExt};
use crate::delivery::retry::{Deadline, RetryPolicy};
use crate::redact::escape_controls;

pub const ATTRIBUTE_PREFIX: &str = "auditstream-";
pub const ERROR_ATTRIBUTE: &str = "auditstream-error";
pub const ORIGINAL_MESSAGE_ID_ATTRIBUTE: &str = "auditstream-original-message-id";
pub const FAILED_AT_ATTRIBUTE: &str = "auditstream-failed-at";
pub const FAILED_IN_ATTRIBUTE: &str = "auditstream-failed-in";
/// SQS's limit of message attributes per message.
pub const MAX_ATTRIBUTES: usize = 10;
/// The error attribute is cut to this many characters: enough for any of our messages.
pub const MAX_ERROR_CHARS: usize = 1024;

/// A message on its way to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message id on the source queue, for logs.
    pub original_id: String,
    pub message: OutgoingMessage,
    /// Attributes of ours that did not fit in SQS's 10 (logged, not sent).
    pub dropped: Vec<&'static str>,
}

/// Why a message failed, where and when.
#[derive(Debug, Clone, Copy)]
pub struct Reason<'a> {
    pub error: &'a str,
    pub failed_at: &'a str,
    pub failed_in: &'a str,
}

impl DeadLetter {
    /// The dead letter of `original`: its body and attributes as they arrived, and the reason.
    pub fn new(original: QueueMessage, reason: Reason<'_>) -> Self {
        let QueueMessage { id, body, attributes, .. } = original;
        let mut attributes = without_our_attributes(attributes);
        let ours = [
            (ERROR_ATTRIBUTE, sqs_text(&escape_controls(reason.error), MAX_ERROR_CHARS)),
            (ORIGINAL_MESSAGE_ID_ATTRIBUTE, sqs_text(&escape_controls(&id), 256)),
            (FAILED_AT_ATTRIBUTE, sqs_text(reason.failed_at, 64)),
            (FAILED_IN_ATTRIBUTE, sqs_text(reason.failed_in, 256)),
        ];
        let mut dropped = Vec::new();
        for (name, value) in ours {
            if attributes.len() < MAX_ATTRIBUTES {
                attributes.insert(name.to_owned(), MessageAttribute::string(value));
            } else {
                dropped.push(name);
            }
        }
        DeadLetter { original_id: id, message: OutgoingMessage { body, attributes, ..OutgoingMessage::default() }, dropped }
    }
}

/// The attributes a producer sent: ours (from an earlier trip to the dead-letter queue) removed.
/// What `auditstream redrive` puts back on the source queue.
pub fn without_our_attributes(mut attributes: MessageAttributes) -> MessageAttributes {
    attributes.retain(|name, _| !name.starts_with(ATTRIBUTE_PREFIX));
    attributes
}

/// Text SQS accepts in an attribute value (the XML character ranges; anything else becomes
/// U+FFFD), cut to `max_chars` characters.
fn sqs_text(text: &str, max_chars: usize) -> String {
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}');
    let mut out: String = text.chars().take(max_chars).map(|c| if allowed(c) { c } else { '\u{FFFD}' }).collect();
    if text.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    if out.is_empty() {
        // SQS refuses empty attribute values.
        out.push('-');
    }
    out
}

/// Sends dead letters somewhere.
#[async_trait]
pub trait DeadLetterSender: Send + Sync {
    /// The queue, for logs: its URL.
    fn describe(&self) -> String;

    /// Sends every letter; per letter, `Ok` or why it was not sent.
    async fn send(&self, letters: &[DeadLetter], deadline: Deadline) -> Vec<Result<(), String>>;
}

/// `AUDITSTREAM_DLQ_URL`: the dead-letter queue permanent failures go to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeadLetterSettings {
    pub queue_url: Option<String>,
}

impl DeadLetterSettings {
    pub fn from_env(env: &(impl Env + ?Sized)) -> Result<Self, ConfigError> {
        DeadLetterSettings::for_queue_url("AUDITSTREAM_DLQ_URL", env.optional("AUDITSTREAM_DLQ_URL"))
    }

    /// From a queue URL given elsewhere (`auditstream poll --dlq URL`), named `name` in errors.
    pub fn for_queue_url(name: &'static str, queue_url: Option<String>) -> Result<Self, ConfigError> {
        if let Some(url) = &queue_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) || url.trim_end_matches('/').rsplit('/').next().is_none_or(str::is_empty) {
                return Err(ConfigError::Invalid {
                    var: name,
                    value: crate::redact::url_text_for_message(url),
                    expected: "a queue URL like https://sqs.us-east-1.amazonaws.com/123456789012/audit-dlq (not an ARN or a name)".into(),
                });
            }
        }
        Ok(DeadLetterSettings { queue_url })
    }
}

/// A dead-letter queue in SQS.
pub struct SqsDeadLetterQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    retry: RetryPolicy,
}

impl SqsDeadLetterQueue {
    /// `client` as built by [`crate::aws::sqs::sqs_client`].
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsDeadLetterQueue { client, queue_url: queue_url.into(), retry: RetryPolicy::default() }
    }
}

#[async_trait]
impl DeadLetterSender for SqsDeadLetterQueue {
    fn describe(&self) -> String {
        self.queue_url.clone()
    }

    async fn send(&self, letters: &[DeadLetter], deadline: Deadline) -> Vec<Result<(), String>> {
        let messages: Vec<OutgoingMessage> = letters.iter().map(|l| l.message.clone()).collect();
        send_messages(&self.client, &self.queue_url, &messages, self.retry, deadline).await.into_iter().map(|r| r.map(|_| ())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::payload_pointer::PayloadPointer;

    const REASON: Reason<'static> =
        Reason { error: "body is not valid JSON: expected value at line 1 column 1", failed_at: "2026-11-20T10:15:30.000+00:00", failed_in: "s3-writer" };

    fn names(letter: &DeadLetter) -> Vec<&str> {
        letter.message.attributes.keys().map(String::as_str).collect()
    }

    #[test]
    fn a_dead_letter_is_the_original_message_and_its_reason() {
        let letter = DeadLetter::new(QueueMessage::new("m-1", "not json"), REASON);
        assert_eq!(letter.message.body, "not json");
        let attribute = |name: &str| letter.message.attributes[name].as_text().unwrap().to_owned();
        assert_eq!(attribute(ERROR_ATTRIBUTE), REASON.error);
        assert_eq!(attribute(ORIGINAL_MESSAGE_ID_ATTRIBUTE), "m-1");
        assert_eq!(attribute(FAILED_AT_ATTRIBUTE), REASON.failed_at);
        assert_eq!(attribute(FAILED_IN_ATTRIBUTE), "s3-writer");
        assert!(letter.message.attributes.values().all(|a| a.data_type == "String"));
        assert!(letter.dropped.is_empty());
    }

    #[test]
    fn a_pointer_keeps_its_body_and_size_attribute_so_redrive_works() {
        let pointer = PayloadPointer { bucket: "payloads".into(), key: "k".into() }.to_body();
        let original = QueueMessage::new("m-2", pointer.clone()).with_attribute("ExtendedPayloadSize", MessageAttribute::number(5_242_880));
        let letter = DeadLetter::new(
            original,
            Reason { error: "payload of message m-2: s3://payloads/k: GetObject failed: the payload object does not exist", ..REASON },
        );
        assert_eq!(letter.message.body, pointer);
        assert_eq!(letter.message.attributes["ExtendedPayloadSize"], MessageAttribute::number(5_242_880));
        assert_eq!(without_our_attributes(letter.message.attributes.clone()).keys().collect::<Vec<_>>(), ["ExtendedPayloadSize"]);
    }

    #[test]
    fn attributes_stay_within_the_sqs_limit_originals_first_and_old_reasons_replaced() {
        let mut original = QueueMessage::new("m-3", "{}").with_attribute("auditstream-error", MessageAttribute::string("an older failure"));
        for i in 0..8 {
            original = original.with_attribute(format!("a{i}"), MessageAttribute::string("v"));
        }
        let letter = DeadLetter::new(original, REASON);
        assert_eq!(letter.message.attributes.len(), MAX_ATTRIBUTES);
        assert_eq!(letter.message.attributes[ERROR_ATTRIBUTE].as_text(), Some(REASON.error));
        assert_eq!(names(&letter).iter().filter(|n| n.starts_with('a') && n.len() == 2).count(), 8);
        assert_eq!(letter.dropped, [FAILED_AT_ATTRIBUTE, FAILED_IN_ATTRIBUTE]);
    }

    #[test]
    fn an_id_or_error_cannot_forge_a_line_or_drive_a_terminal() {
        let id = "m-1\x1b[2J\nfailed fake";
        let letter = DeadLetter::new(QueueMessage::new(id, "{}"), Reason { error: "message m-1\x1b[2J\nfailed fake: body is not JSON", ..REASON });
        let attribute = |name: &str| letter.message.attributes[name].as_text().unwrap().to_owned();
        assert_eq!(attribute(ORIGINAL_MESSAGE_ID_ATTRIBUTE), "m-1\\u{1b}[2J\\nfailed fake");
        assert_eq!(attribute(ERROR_ATTRIBUTE), "message m-1\\u{1b}[2J\\nfailed fake: body is not JSON");
        assert_eq!(letter.original_id, id, "the id stays what SQS knows it by");
    }

    #[test]
    fn reasons_are_text_sqs_accepts() {
        assert_eq!(sqs_text("a\u{0}b\u{1b}c", 100), "a\u{FFFD}b\u{FFFD}c");
        let long = "é".repeat(2000);
        let cut = sqs_text(&long, MAX_ERROR_CHARS);
        assert_eq!(cut.chars().count(), MAX_ERROR_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(sqs_text("", 10), "-");
    }

    #[test]
    fn the_queue_url_is_checked_at_cold_start() {
        assert_eq!(DeadLetterSettings::from_env(&[][..]).unwrap().queue_url, None);
        let url = "https://sqs.us-east-1.amazonaws.com/123456789012/audit-dlq";
        assert_eq!(DeadLetterSettings::from_env(&[("AUDITSTREAM_DLQ_URL", url)][..]).unwrap().queue_url.as_deref(), Some(url));
        for bad in ["arn:aws:sqs:us-east-1:123456789012:audit-dlq", "audit-dlq"] {
            let err = DeadLetterSettings::from_env(&[("AUDITSTREAM_DLQ_URL", bad)][..]).unwrap_err().to_string();
            assert!(err.starts_with("AUDITSTREAM_DLQ_URL="), "{err}");
            // Given on the command line, it is named as the option.
            let err = DeadLetterSettings::for_queue_url("--dlq", Some(bad.to_owned())).unwrap_err().to_string();
            assert!(err.starts_with("--dlq=\"") && err.contains(" is not valid: expected a queue URL"), "{err}");
        }
        assert_eq!(DeadLetterSettings::for_queue_url("--dlq", Some(url.to_owned())).unwrap().queue_url.as_deref(), Some(url));
    }
}
