//! Envelopes other AWS services put around an event on its way to the queue, and unwrapping them.
//!
//! - **SNS notification** (a topic subscription with raw message delivery off): a JSON object with
//!   `"Type":"Notification"`, `TopicArn`, and the published message as the JSON *string*
//!   `Message`. SNS message attributes travel inside the envelope, as `MessageAttributes`
//!   (`{"Name":{"Type":"Number","Value":"123"}}`), so a payload pointer published through SNS
//!   brings its `ExtendedPayloadSize` there.
//! - **EventBridge** (a rule targeting the queue without an input transformer): a JSON object with
//!   `detail-type`, `source` and the event as the JSON *object* `detail`.
//!
//! Anything else is left untouched: [`unwrap`] answers `None` and the body goes to the pipeline as
//! it is. Bare audit events are by far the common case, so they are recognised without parsing:
//! an envelope must contain its marker keys (`"TopicArn"`, `"detail-type"`), which a byte search
//! rules out in microseconds. Only a body that has them — an envelope, or an event that mentions
//! them somewhere inside — is parsed, and then only its top-level members are looked at.
//!
//! Pure: no I/O. Errors never quote the body.

use crate::redact::Escaped;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::intake::payload_pointer::{LEGACY_SIZE_ATTRIBUTE, SIZE_ATTRIBUTE};

/// Which envelope was taken off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeKind {
    SnsNotification { topic_arn: String },
    EventBridge { source: String, detail_type: String },
}

impl std::fmt::Display for EnvelopeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvelopeKind::SnsNotification { topic_arn } => {
                write!(f, "SNS notification from {}", Escaped(topic_arn))
            }
            EnvelopeKind::EventBridge { source, detail_type } => write!(f, "EventBridge event {detail_type:?} from {}", Escaped(source)),
        }
    }
}

/// What was inside an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwrapped {
    pub kind: EnvelopeKind,
    /// The message the envelope carried: an event, another envelope, or a payload pointer.
    pub body: String,
    /// The payload size an SNS message attribute declares (`ExtendedPayloadSize`), for a pointer.
    pub payload_size: Option<u64>,
}

/// A body that is an envelope but carries no event. Permanent: it will not change on redelivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("body is an SNS {} message from {}, not a notification carrying an event (SNS sends these to confirm a subscription; confirm it in the SNS console or with aws sns confirm-subscription)", Escaped(.kind), Escaped(.topic_arn))]
    SnsControlMessage { kind: String, topic_arn: String },
    #[error("body is an SNS notification from {} whose `Message` is not a string", Escaped(.topic_arn))]
    SnsMessageNotText { topic_arn: String },
}

/// Takes one envelope off `body`, if it has one.
pub fn unwrap(body: &str) -> Result<Option<Unwrapped>, EnvelopeError> {
    let bytes = body.as_bytes();
    if !body.trim_start().starts_with('{') {
        return Ok(None);
    }
    if memchr::memmem::find(bytes, b"\"TopicArn\"").is_some() {
        if let Some(unwrapped) = sns(body)? {
            return Ok(Some(unwrapped));
        }
    }
    if memchr::memmem::find(bytes, b"\"detail-type\"").is_some() {
        return Ok(eventbridge(body));
    }
    Ok(None)
}

/// The top-level members of an SNS message that matter here; everything else is skipped unread.
#[derive(Deserialize)]
struct SnsProbe<'a> {
    #[serde(rename = "Type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(rename = "TopicArn", borrow)]
    topic_arn: Option<&'a RawValue>,
    #[serde(rename = "Message", borrow)]
    message: Option<&'a RawValue>,
    #[serde(rename = "MessageAttributes", borrow)]
    message_attributes: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct SnsAttribute {
    #[serde(rename = "Value")]
    value: Option<String>,
}

fn sns(body: &str) -> Result<Option<Unwrapped>, EnvelopeError> {
    // Not an object of the expected members (duplicate keys, or an event that happens to
    // mention "TopicArn" inside): not an envelope; the pipeline gives the precise error.
    let Ok(probe) = serde_json::from_str::<SnsProbe>(body) else { return Ok(None) };
    let (Some(kind), Some(topic_arn)) = (text(probe.kind), text(probe.topic_arn)) else { return Ok(None) };
    match kind.as_str() {
        "Notification" => {}
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => return Err(EnvelopeError::SnsControlMessage { kind, topic_arn }),
        _ => return Ok(None),
    }
    let Some(message) = text(probe.message) else { return Err(EnvelopeError::SnsMessageNotText { topic_arn }) };
    let payload_size = probe.message_attributes.and_then(|raw| {
        let attributes: std::collections::HashMap<String, SnsAttribute> = serde_json::from_str(raw.get()).ok()?;
        let attribute = attributes.get(SIZE_ATTRIBUTE).or_else(|| attributes.get(LEGACY_SIZE_ATTRIBUTE))?;
        attribute.value.as_deref()?.trim().parse().ok()
    });
    Ok(Some(Unwrapped { kind: EnvelopeKind::SnsNotification { topic_arn }, body: message, payload_size }))
}

#[derive(Deserialize)]
struct EventBridgeProbe<'a> {
    #[serde(rename = "detail-type", borrow)]
    detail_type: Option<&'a RawValue>,
    #[serde(borrow)]
    source: Option<&'a RawValue>,
    #[serde(borrow)]
    detail: Option<&'a RawValue>,
}

fn eventbridge(body: &str) -> Option<Unwrapped> {
    let probe = serde_json::from_str::<EventBridgeProbe>(body).ok()?;
    let (detail_type, source, detail) = (text(probe.detail_type)?, text(probe.source)?, probe.detail?);
    Some(Unwrapped { kind: EnvelopeKind::EventBridge { source, detail_type }, body: detail.get().to_owned(), payload_size: None })
}

/// A raw value that is a JSON string, unescaped.
fn text(raw: Option<&RawValue>) -> Option<String> {
    let raw = raw?;
    if !raw.get().starts_with('"') {
        return None;
    }
    serde_json::from_str(raw.get()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"id":"j-1","recipe_id":7,"status":"succeeded","lines":[]}"#;

    /// As SNS delivers to an SQS subscription with raw message delivery off.
    fn sns_notification(message: &str, attributes: &str) -> String {
        format!(
            r#"{{
  "Type" : "Notification",
  "MessageId" : "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
  "TopicArn" : "arn:aws:sns:us-east-1:123456789012:audit",
  "Message" : {},
  "Timestamp" : "2026-11-20T10:15:30.000Z",
  "SignatureVersion" : "1",
  "Signature" : "EXAMPLE",
  "SigningCertURL" : "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
  "UnsubscribeURL" : "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"{attributes}
}}"#,
            serde_json::to_string(message).unwrap()
        )
    }

    fn eventbridge_event(detail: &str) -> String {
        format!(
            r#"{{"version":"0","id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718","detail-type":"Workato audit event","source":"workato.audit","account":"123456789012","time":"2026-11-20T10:15:30Z","region":"us-east-1","resources":[],"detail":{detail}}}"#
        )
    }

    #[test]
    fn envelopes_are_taken_off_and_everything_else_left_alone() {
        let sns_arn = EnvelopeKind::SnsNotification { topic_arn: "arn:aws:sns:us-east-1:123456789012:audit".into() };
        let bridge = EnvelopeKind::EventBridge { source: "workato.audit".into(), detail_type: "Workato audit event".into() };
        let with_size = r#","MessageAttributes" : {"ExtendedPayloadSize" : {"Type" : "Number", "Value" : "5242880"}}"#;
        let nested = eventbridge_event(EVENT);
        let legacy_size = r#","MessageAttributes" : {"SQSLargePayloadSize" : {"Type" : "Number", "Value" : "12"}, "x": {"Type":"String","Value":"y"}}"#;
        type Case<'a> = (&'a str, String, Option<(EnvelopeKind, &'a str, Option<u64>)>);
        let cases: Vec<Case> = vec![
            ("a bare event", EVENT.into(), None),
            ("SNS notification", sns_notification(EVENT, ""), Some((sns_arn.clone(), EVENT, None))),
            ("SNS notification of a pointer, size attribute", sns_notification("[\"p\"]", with_size), Some((sns_arn.clone(), "[\"p\"]", Some(5_242_880)))),
            ("SNS notification, legacy size attribute", sns_notification("[\"p\"]", legacy_size), Some((sns_arn.clone(), "[\"p\"]", Some(12)))),
            ("EventBridge event", eventbridge_event(EVENT), Some((bridge.clone(), EVENT, None))),
            ("SNS notification of an EventBridge event (taken off one at a time)", sns_notification(&nested, ""), Some((sns_arn, &nested, None))),
            (
                "an event mentioning the marker keys in its data",
                r#"{"id":"j","lines":[{"input":{"TopicArn":"a","Type":"Notification","Message":"m","detail-type":"x","source":"s","detail":{}}}]}"#.into(),
                None,
            ),
            ("marker keys but not an envelope", r#"{"TopicArn":"a","Type":"Other","Message":"m"}"#.into(), None),
            ("marker key with a non-string value", r#"{"detail-type":1,"source":"s","detail":{}}"#.into(), None),
            ("invalid JSON", r#"{"TopicArn":"#.into(), None),
            ("a pointer", r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":"k"}]"#.into(), None),
        ];
        for (name, body, want) in cases {
            let got = unwrap(&body).unwrap_or_else(|e| panic!("{name}: {e}")).map(|u| (u.kind, u.body, u.payload_size));
            let want = want.map(|(k, b, s)| (k, b.to_owned(), s));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn sns_messages_without_an_event_are_permanent_errors_that_quote_nothing() {
        let confirmation = r#"{"Type":"SubscriptionConfirmation","MessageId":"m","Token":"secret-token","TopicArn":"arn:aws:sns:us-east-1:1:audit","Message":"You have chosen to subscribe","SubscribeURL":"https://sns/?Token=secret-token"}"#;
        let err = unwrap(confirmation).unwrap_err();
        assert_eq!(err, EnvelopeError::SnsControlMessage { kind: "SubscriptionConfirmation".into(), topic_arn: "arn:aws:sns:us-east-1:1:audit".into() });
        assert!(!err.to_string().contains("secret-token"));
        let not_text = r#"{"Type":"Notification","TopicArn":"arn:aws:sns:us-east-1:1:audit","Message":{"id":1}}"#;
        assert_eq!(unwrap(not_text).unwrap_err().to_string(), "body is an SNS notification from arn:aws:sns:us-east-1:1:audit whose `Message` is not a string");
    }
}
