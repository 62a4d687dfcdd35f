//! A message as SQS delivered it — body, message attributes, FIFO group — before any envelope or
//! payload pointer is resolved.
//!
//! The Lambda event (`SqsMessage`) and the SQS API (`Message`) describe the same thing in two
//! shapes. Both convert to [`QueueMessage`], so resolving, dead-lettering (both in `intake`),
//! receiving and sending ([`crate::aws::sqs`]) and redriving are written once, and a message moved
//! to the dead-letter queue keeps exactly the body and attributes it arrived with. It is here,
//! beside the SQS calls, because both `intake` and those calls speak it.

use std::collections::BTreeMap;

use aws_lambda_events::event::sqs::SqsMessage;

/// Placeholder id prefix for Lambda records that arrive without a message id (SQS never sends
/// such records, but the event type allows them). A record named so cannot be reported in a
/// partial batch response.
pub const NO_ID: &str = "(no message id) record ";

/// The value of one SQS message attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    /// `String` and `Number` data types (and their custom `String.x` / `Number.x` variants).
    Text(String),
    /// `Binary` data types.
    Binary(Vec<u8>),
}

/// One SQS message attribute: its data type (`String`, `Number`, `Binary`, or a custom
/// `Number.int`…) and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAttribute {
    pub data_type: String,
    pub value: AttributeValue,
}

impl MessageAttribute {
    pub fn string(value: impl Into<String>) -> Self {
        MessageAttribute { data_type: "String".into(), value: AttributeValue::Text(value.into()) }
    }

    pub fn number(value: u64) -> Self {
        MessageAttribute { data_type: "Number".into(), value: AttributeValue::Text(value.to_string()) }
    }

    pub fn as_text(&self) -> Option<&str> {
        match &self.value {
            AttributeValue::Text(s) => Some(s),
            AttributeValue::Binary(_) => None,
        }
    }

    /// Bytes SQS counts against the message size limit for this attribute, name included.
    pub fn size(&self, name: &str) -> usize {
        let value = match &self.value {
            AttributeValue::Text(s) => s.len(),
            AttributeValue::Binary(b) => b.len(),
        };
        name.len() + self.data_type.len() + value
    }
}

/// Message attributes by name, ordered so that what we build from them is deterministic.
pub type MessageAttributes = BTreeMap<String, MessageAttribute>;

/// Bytes SQS counts against the message size limit for these attributes.
pub fn attributes_size(attributes: &MessageAttributes) -> usize {
    attributes.iter().map(|(name, a)| a.size(name)).sum()
}

/// One message as received from SQS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    /// The SQS message id (or a [`NO_ID`] placeholder).
    pub id: String,
    /// The body exactly as sent: an event, an envelope, or a payload pointer.
    pub body: String,
    /// The user message attributes, exactly as sent.
    pub attributes: MessageAttributes,
    /// SQS `SentTimestamp`, epoch milliseconds.
    pub sent_at_ms: Option<u64>,
    /// FIFO queues only.
    pub message_group_id: Option<String>,
}

impl QueueMessage {
    /// A message with a body and nothing else (tests, local input).
    pub fn new(id: impl Into<String>, body: impl Into<String>) -> Self {
        QueueMessage { id: id.into(), body: body.into(), attributes: MessageAttributes::new(), sent_at_ms: None, message_group_id: None }
    }

    pub fn with_attribute(mut self, name: impl Into<String>, attribute: MessageAttribute) -> Self {
        self.attributes.insert(name.into(), attribute);
        self
    }

    /// From a record of a Lambda SQS event; `index` names a record that has no message id.
    pub fn from_lambda(index: usize, record: SqsMessage) -> Self {
        let id = record.message_id.filter(|id| !id.is_empty()).unwrap_or_else(|| format!("{NO_ID}{index}"));
        let sent_at_ms = record.attributes.get("SentTimestamp").and_then(|t| t.parse().ok());
        let message_group_id = record.attributes.get("MessageGroupId").cloned();
        let attributes = record
            .message_attributes
            .into_iter()
            .filter_map(|(name, a)| {
                let data_type = a.data_type.unwrap_or_else(|| "String".into());
                let value = match (a.string_value, a.binary_value) {
                    (Some(s), _) => AttributeValue::Text(s),
                    (None, Some(b)) => AttributeValue::Binary(b.0),
                    // List values are reserved by SQS and never delivered; nothing to keep.
                    (None, None) => return None,
                };
                Some((name, MessageAttribute { data_type, value }))
            })
            .collect();
        QueueMessage { id, body: record.body.unwrap_or_default(), attributes, sent_at_ms, message_group_id }
    }

    /// From a message of `ReceiveMessage`, with its receipt handle (needed to delete it).
    pub fn from_sqs(message: aws_sdk_sqs::types::Message) -> (Self, Option<String>) {
        use aws_sdk_sqs::types::MessageSystemAttributeName as System;
        let system = message.attributes.unwrap_or_default();
        let sent_at_ms = system.get(&System::SentTimestamp).and_then(|t| t.parse().ok());
        let message_group_id = system.get(&System::MessageGroupId).cloned();
        let attributes = message
            .message_attributes
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(name, a)| {
                let value = match (a.string_value, a.binary_value) {
                    (Some(s), _) => AttributeValue::Text(s),
                    (None, Some(b)) => AttributeValue::Binary(b.into_inner()),
                    (None, None) => return None,
                };
                Some((name, MessageAttribute { data_type: a.data_type, value }))
            })
            .collect();
        let id = message.message_id.unwrap_or_default();
        let queue_message = QueueMessage { id, body: message.body.unwrap_or_default(), attributes, sent_at_ms, message_group_id };
        (queue_message, message.receipt_handle)
    }
}

/// An attribute for the SQS API.
pub fn to_sqs_attribute(attribute: &MessageAttribute) -> aws_sdk_sqs::types::MessageAttributeValue {
    let builder = aws_sdk_sqs::types::MessageAttributeValue::builder().data_type(&attribute.data_type);
    let builder = match &attribute.value {
        AttributeValue::Text(s) => builder.string_value(s),
        AttributeValue::Binary(b) => builder.binary_value(aws_smithy_types::Blob::new(b.clone())),
    };
    // `build` fails only without a data type, which is always set above.
    builder.build().expect("data_type is set")
}

/// Attributes for the SQS API.
pub fn to_sqs_attributes(attributes: &MessageAttributes) -> std::collections::HashMap<String, aws_sdk_sqs::types::MessageAttributeValue> {
    attributes.iter().map(|(name, a)| (name.clone(), to_sqs_attribute(a))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_records_keep_their_body_attributes_and_group() {
        let record: SqsMessage = serde_json::from_value(serde_json::json!({
            "messageId": "m-1",
            "body": "[\"x\"]",
            "attributes": {"SentTimestamp": "1700000000000", "MessageGroupId": "g"},
            "messageAttributes": {
                "ExtendedPayloadSize": {"stringValue": "5242880", "dataType": "Number", "stringListValues": [], "binaryListValues": []},
                "blob": {"binaryValue": "AAE=", "dataType": "Binary"}
            }
        }))
        .unwrap();
        let m = QueueMessage::from_lambda(0, record);
        assert_eq!((m.id.as_str(), m.body.as_str(), m.sent_at_ms, m.message_group_id.as_deref()), ("m-1", "[\"x\"]", Some(1_700_000_000_000), Some("g")));
        assert_eq!(m.attributes["ExtendedPayloadSize"], MessageAttribute::number(5_242_880));
        assert_eq!(m.attributes["blob"], MessageAttribute { data_type: "Binary".into(), value: AttributeValue::Binary(vec![0, 1]) });
        assert_eq!(attributes_size(&m.attributes), "ExtendedPayloadSize".len() + 6 + 7 + "blob".len() + 6 + 2);

        let unnamed: SqsMessage = serde_json::from_value(serde_json::json!({"body": "{}"})).unwrap();
        assert_eq!(QueueMessage::from_lambda(4, unnamed).id, "(no message id) record 4");
    }

    #[test]
    fn api_messages_convert_both_ways() {
        let attribute = MessageAttribute::string("v");
        let message = aws_sdk_sqs::types::Message::builder()
            .message_id("m-2")
            .receipt_handle("rh")
            .body("{}")
            .message_attributes("a", to_sqs_attribute(&attribute))
            .attributes(aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp, "5")
            .build();
        let (m, handle) = QueueMessage::from_sqs(message);
        assert_eq!(handle.as_deref(), Some("rh"));
        assert_eq!(m, QueueMessage { sent_at_ms: Some(5), ..QueueMessage::new("m-2", "{}").with_attribute("a", attribute) });
    }
}
