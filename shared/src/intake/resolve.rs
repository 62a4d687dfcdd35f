//! From a message as the queue delivered it to the audit event it stands for.
//!
//! A body may be the event itself, an SNS or EventBridge envelope around it ([`crate::intake::envelope`]),
//! or an Extended Client pointer to it in S3 ([`crate::intake::payload_pointer`]) — and combinations: an
//! SNS notification of a pointer (the SNS Extended Client), an SNS notification of an EventBridge
//! event. [`resolve`] takes envelopes off, follows a pointer, takes off any envelope the payload
//! has, and hands the event to the pipeline. What cannot be resolved becomes
//! [`Failure::Input`]: permanent for a body that will never resolve (a broken pointer, a missing
//! payload object, an SNS subscription confirmation), transient for S3 trouble that may pass.
//!
//! The Lambda handler and `auditstream poll` both resolve through here.

use crate::aws::sqs_message::QueueMessage;
use crate::delivery::process::{Failure, InboundMessage};
use crate::delivery::retry::Deadline;
use crate::intake::envelope::{self, EnvelopeKind};
use crate::intake::payload_pointer::{has_size_attribute, PayloadPointer};
use crate::intake::payload_store::PayloadStore;
use crate::redact::Escaped;

/// Envelopes taken off one body at most (EventBridge → SNS → SQS is two); more is not a real
/// producer, and the body goes to the pipeline as it is.
const MAX_ENVELOPES: usize = 3;

/// Resolves one message to its event.
pub async fn resolve(message: QueueMessage, payloads: Option<&dyn PayloadStore>, deadline: Deadline) -> Result<InboundMessage, Failure> {
    let QueueMessage { id, body, attributes, sent_at_ms, .. } = message;
    let mut has_size = has_size_attribute(&attributes);
    let mut envelopes = Vec::new();
    let mut body = take_envelopes(body, &mut envelopes, &mut has_size).map_err(|e| permanent(e.to_string()))?;
    match PayloadPointer::parse(&body, has_size) {
        Err(e) => return Err(permanent(format!("{e}{}", inside(&envelopes)))),
        Ok(None) => {}
        Ok(Some(pointer)) => {
            let Some(store) = payloads else {
                return Err(permanent(format!(
                    "message {} is an S3 payload pointer to {}{} but no payload store is configured to read it",
                    Escaped(&id),
                    pointer.url(),
                    inside(&envelopes)
                )));
            };
            let payload = store
                .fetch(&pointer, deadline)
                .await
                .map_err(|e| Failure::Input { message: format!("payload of message {}{}: {e}", Escaped(&id), inside(&envelopes)), permanent: e.permanent })?;
            // The pointer's job is done; what it pointed at may itself be enveloped.
            body = take_envelopes(payload, &mut envelopes, &mut has_size)
                .map_err(|e| permanent(format!("payload of message {} at {}: {e}", Escaped(&id), pointer.url())))?;
        }
    }
    Ok(InboundMessage { id, body, sent_at_ms })
}

fn take_envelopes(mut body: String, envelopes: &mut Vec<EnvelopeKind>, has_size: &mut bool) -> Result<String, envelope::EnvelopeError> {
    for _ in 0..MAX_ENVELOPES {
        match envelope::unwrap(&body)? {
            None => break,
            Some(unwrapped) => {
                *has_size |= unwrapped.payload_size.is_some();
                envelopes.push(unwrapped.kind);
                body = unwrapped.body;
            }
        }
    }
    Ok(body)
}

fn inside(envelopes: &[EnvelopeKind]) -> String {
    envelopes.iter().map(|e| format!(" (inside an {e})")).collect()
}

fn permanent(message: String) -> Failure {
    Failure::Input { message, permanent: true }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::intake::payload_store::PayloadError;
    use async_trait::async_trait;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Payloads in memory; a key containing "slow" fails transiently.
    #[derive(Default)]
    pub struct MemoryPayloads(pub Mutex<HashMap<(String, String), String>>);

    impl MemoryPayloads {
        pub fn with(self, bucket: &str, key: &str, payload: &str) -> Self {
            self.0.lock().unwrap().insert((bucket.into(), key.into()), payload.into());
            self
        }
    }

    #[async_trait]
    impl PayloadStore for MemoryPayloads {
        async fn fetch(&self, p: &PayloadPointer, _: Deadline) -> Result<String, PayloadError> {
            if p.key.contains("slow") {
                return Err(PayloadError { permanent: false, message: format!("{}: GetObject failed: HTTP 503 SlowDown", p.url()) });
            }
            self.0
                .lock()
                .unwrap()
                .get(&(p.bucket.clone(), p.key.clone()))
                .cloned()
                .ok_or_else(|| PayloadError { permanent: true, message: format!("{}: GetObject failed: the payload object does not exist", p.url()) })
        }
        async fn store(&self, p: &PayloadPointer, payload: bytes::Bytes, _: Deadline) -> Result<(), PayloadError> {
            self.0.lock().unwrap().insert((p.bucket.clone(), p.key.clone()), String::from_utf8(payload.to_vec()).unwrap());
            Ok(())
        }
    }

    const EVENT: &str = r#"{"id":"j-1","recipe_id":7,"status":"succeeded"}"#;

    fn pointer(key: &str) -> String {
        PayloadPointer { bucket: "payloads".into(), key: key.into() }.to_body()
    }

    fn sns(message: &str) -> String {
        serde_json::json!({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:audit", "Message": message}).to_string()
    }

    #[tokio::test]
    async fn bodies_resolve_to_their_event() {
        let store = MemoryPayloads::default().with("payloads", "big", EVENT).with("payloads", "enveloped", &sns(EVENT));
        let eventbridge = format!(r#"{{"detail-type":"audit","source":"workato","detail":{EVENT}}}"#);
        let cases = [
            ("a bare event", EVENT.to_owned()),
            ("an SNS notification", sns(EVENT)),
            ("an EventBridge event", eventbridge.clone()),
            ("an SNS notification of an EventBridge event", sns(&eventbridge)),
            ("a pointer", pointer("big")),
            ("an SNS notification of a pointer (SNS extended client)", sns(&pointer("big"))),
            ("a pointer to an enveloped payload", pointer("enveloped")),
        ];
        for (name, body) in cases {
            let mut message = QueueMessage::new("m-1", body);
            message.sent_at_ms = Some(9);
            let resolved = resolve(message, Some(&store), Deadline::NONE).await.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(resolved, InboundMessage { id: "m-1".into(), body: EVENT.into(), sent_at_ms: Some(9) }, "{name}");
        }
    }

    #[tokio::test]
    async fn what_cannot_be_resolved_fails_with_its_reason() {
        let store = MemoryPayloads::default();
        let cases = [
            (pointer("gone"), Some(&store), true, "payload of message m-1: s3://payloads/gone: GetObject failed: the payload object does not exist"),
            (pointer("slow"), Some(&store), false, "payload of message m-1: s3://payloads/slow: GetObject failed: HTTP 503 SlowDown"),
            (sns(&pointer("gone")), Some(&store), true, "payload of message m-1 (inside an SNS notification from arn:aws:sns:us-east-1:1:audit): s3://payloads/gone: GetObject failed: the payload object does not exist"),
            (pointer("big"), None, true, "message m-1 is an S3 payload pointer to s3://payloads/big but no payload store is configured to read it"),
            (r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{}]"#.to_owned(), Some(&store), true, "body names the S3 payload pointer class but is not a valid pointer"),
            (r#"{"Type":"SubscriptionConfirmation","TopicArn":"arn:aws:sns:us-east-1:1:audit","Message":"confirm"}"#.to_owned(), Some(&store), true, "body is an SNS SubscriptionConfirmation message"),
        ];
        for (body, store, want_permanent, want) in cases {
            let store = store.map(|s| s as &dyn PayloadStore);
            let err = resolve(QueueMessage::new("m-1", body.clone()), store, Deadline::NONE).await.unwrap_err();
            assert_eq!(err.is_permanent(), want_permanent, "{body}");
            assert!(err.to_string().starts_with(want), "{body}: {err}");
        }
    }
}
