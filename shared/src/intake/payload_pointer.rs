//! The Amazon SQS Extended Client pointer: how an event too large for a queue message travels.
//!
//! A producer using AWS's Extended Client (Java, Python, and SNS's own) stores the payload in S3
//! and sends, in its place, the body
//!
//! ```json
//! ["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"<bucket>","s3Key":"<key>"}]
//! ```
//!
//! with the message attribute `ExtendedPayloadSize` (`Number`, the payload's byte length). Older
//! clients name the class `com.amazon.sqs.javamessaging.MessageS3Pointer` and the attribute
//! `SQSLargePayloadSize`; the oldest Java client sent the bare object `{"s3BucketName",
//! "s3Key"}`, which is recognised only together with a size attribute (an audit event never
//! consists of exactly those two members, but there is no need to guess). Payloads larger than
//! [`DEFAULT_OFFLOAD_THRESHOLD`] — body and attributes together, as the clients count — are
//! offloaded; we write exactly this format, so AWS's clients read what `auditstream send` wrote
//! and we read what they wrote.
//!
//! `auditstream replay --queue/--topic` writes the same pointer to an archived object itself (no
//! copy: [`replay_pointer`]), with [`REPLAY_ATTRIBUTE`] beside the size attribute. Nothing of ours
//! deletes what a pointer names ([`crate::intake::payload_store::PayloadStore`] cannot); AWS's Java
//! client deletes it on DeleteMessage unless told not to (`docs/operations.md`, "Replay by pointer").
//!
//! Pure: no I/O. Errors never quote the body.

use serde::{Deserialize, Serialize};

use crate::aws::sqs_message::{MessageAttribute, MessageAttributes};

pub const POINTER_CLASS: &str = "software.amazon.payloadoffloading.PayloadS3Pointer";
pub const LEGACY_POINTER_CLASS: &str = "com.amazon.sqs.javamessaging.MessageS3Pointer";
/// The message attribute holding the payload's size in bytes.
pub const SIZE_ATTRIBUTE: &str = "ExtendedPayloadSize";
pub const LEGACY_SIZE_ATTRIBUTE: &str = "SQSLargePayloadSize";
/// The message attribute on every message `auditstream replay --queue/--topic` sends, naming the
/// archive replayed (`s3://BUCKET/PREFIX`): it tells a consumer that the pointer names an
/// archived object, which must never be deleted, not a payload offloaded for this one message.
/// AWS's clients pass other attributes through untouched; they allow ten in all, the size one
/// included.
pub const REPLAY_ATTRIBUTE: &str = "auditstream-replay";
/// The Extended Clients' default threshold (256 KiB), kept by all of them after SQS raised its
/// message limit to 1 MiB.
pub const DEFAULT_OFFLOAD_THRESHOLD: usize = 262_144;

/// Where a payload is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadPointer {
    #[serde(rename = "s3BucketName")]
    pub bucket: String,
    #[serde(rename = "s3Key")]
    pub key: String,
}

/// A body that claims to be a pointer but is not a usable one. Permanent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    #[error("body names the S3 payload pointer class but is not a valid pointer (expected [\"{POINTER_CLASS}\",{{\"s3BucketName\":\"...\",\"s3Key\":\"...\"}}]): {0}")]
    Malformed(String),
}

impl PayloadPointer {
    /// Reads a pointer body; `None` when the body is not a pointer at all.
    ///
    /// `has_size_attribute`: the message carries `ExtendedPayloadSize` or `SQSLargePayloadSize`,
    /// which is what lets the bare-object form of the oldest clients count as a pointer.
    pub fn parse(body: &str, has_size_attribute: bool) -> Result<Option<PayloadPointer>, PointerError> {
        let trimmed = body.trim();
        if let Some(rest) = trimmed.strip_prefix('[') {
            let rest = rest.trim_start();
            let names_class = [POINTER_CLASS, LEGACY_POINTER_CLASS]
                .iter()
                .any(|class| rest.strip_prefix('"').and_then(|r| r.strip_prefix(class)).is_some_and(|r| r.starts_with('"')));
            if !names_class {
                return Ok(None);
            }
            let (_, pointer): (String, PayloadPointer) = serde_json::from_str(trimmed).map_err(|e| PointerError::Malformed(e.to_string()))?;
            return pointer.validated().map(Some);
        }
        if has_size_attribute && trimmed.starts_with('{') && trimmed.len() < 4096 {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Bare {
                #[serde(rename = "s3BucketName")]
                bucket: String,
                #[serde(rename = "s3Key")]
                key: String,
            }
            if let Ok(Bare { bucket, key }) = serde_json::from_str::<Bare>(trimmed) {
                return PayloadPointer { bucket, key }.validated().map(Some);
            }
        }
        Ok(None)
    }

    fn validated(self) -> Result<PayloadPointer, PointerError> {
        if self.bucket.trim().is_empty() || self.key.is_empty() {
            return Err(PointerError::Malformed("the bucket name or key is empty".into()));
        }
        Ok(self)
    }

    /// The body that replaces an offloaded payload, in the current class's format.
    pub fn to_body(&self) -> String {
        // Serialising two strings into a tuple cannot fail.
        serde_json::to_string(&(POINTER_CLASS, self)).unwrap_or_default()
    }

    /// `s3://bucket/key`, for messages.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", crate::redact::Escaped(&self.bucket), crate::redact::Escaped(&self.key))
    }
}

/// The payload size a message declares, if it has a size attribute with a number in it.
pub fn declared_size(attributes: &MessageAttributes) -> Option<u64> {
    let attribute = attributes.get(SIZE_ATTRIBUTE).or_else(|| attributes.get(LEGACY_SIZE_ATTRIBUTE))?;
    attribute.as_text()?.trim().parse().ok()
}

/// Whether a message has a size attribute at all (even one without a usable number).
pub fn has_size_attribute(attributes: &MessageAttributes) -> bool {
    attributes.contains_key(SIZE_ATTRIBUTE) || attributes.contains_key(LEGACY_SIZE_ATTRIBUTE)
}

/// Whether a body must be offloaded: body and attributes together over the threshold, as the
/// Extended Clients decide it.
pub fn needs_offload(body_len: usize, attributes_len: usize, threshold: usize) -> bool {
    body_len + attributes_len > threshold
}

/// The attribute an offloaded message carries.
pub fn size_attribute(payload_len: usize) -> (String, MessageAttribute) {
    (SIZE_ATTRIBUTE.to_owned(), MessageAttribute::number(payload_len as u64))
}

/// The message that replays an archived object of `size` bytes: a pointer to the object itself,
/// the size attribute (without which AWS's clients take the pointer for a plain body), and
/// [`REPLAY_ATTRIBUTE`] naming `archive`. Returns the body and its attributes.
pub fn replay_pointer(pointer: &PayloadPointer, size: u64, archive: &str) -> (String, MessageAttributes) {
    let attributes = [(SIZE_ATTRIBUTE.to_owned(), MessageAttribute::number(size)), (REPLAY_ATTRIBUTE.to_owned(), MessageAttribute::string(archive))];
    (pointer.to_body(), attributes.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointer(bucket: &str, key: &str) -> Option<PayloadPointer> {
        Some(PayloadPointer { bucket: bucket.into(), key: key.into() })
    }

    #[test]
    fn pointer_bodies_of_every_client_are_read() {
        let cases: &[(&str, &str, bool, Option<PayloadPointer>)] = &[
            (
                "Java 2.x / Python client",
                r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"payloads","s3Key":"1b5a-uuid"}]"#,
                true,
                pointer("payloads", "1b5a-uuid"),
            ),
            (
                "without the size attribute",
                r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"payloads","s3Key":"k"}]"#,
                false,
                pointer("payloads", "k"),
            ),
            (
                "Python json.dumps spacing",
                r#"["software.amazon.payloadoffloading.PayloadS3Pointer", {"s3BucketName": "payloads", "s3Key": "k"}]"#,
                true,
                pointer("payloads", "k"),
            ),
            (
                "legacy class name",
                r#"["com.amazon.sqs.javamessaging.MessageS3Pointer",{"s3BucketName":"payloads","s3Key":"k"}]"#,
                true,
                pointer("payloads", "k"),
            ),
            (
                "key with escapes",
                r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"payloads","s3Key":"a\/b \u00e9"}]"#,
                true,
                pointer("payloads", "a/b é"),
            ),
            ("oldest Java client, bare object with its size attribute", r#"{"s3BucketName":"payloads","s3Key":"k"}"#, true, pointer("payloads", "k")),
            ("bare object without a size attribute is not trusted", r#"{"s3BucketName":"payloads","s3Key":"k"}"#, false, None),
            ("bare object with more members is an event", r#"{"s3BucketName":"payloads","s3Key":"k","id":1}"#, true, None),
            ("an audit event", r#"{"id":"j-1","recipe_id":7,"status":"succeeded"}"#, true, None),
            ("another array", r#"["software.amazon.payloadoffloading.PayloadS3PointerX",{}]"#, true, None),
            ("not JSON", "hello", true, None),
        ];
        for (name, body, has_size, want) in cases {
            assert_eq!(PayloadPointer::parse(body, *has_size).unwrap(), *want, "{name}");
        }
    }

    #[test]
    fn broken_pointers_are_permanent_errors() {
        for body in [
            r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"payloads"}]"#,
            r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"","s3Key":"k"}]"#,
            r#"["software.amazon.payloadoffloading.PayloadS3Pointer","#,
        ] {
            let err = PayloadPointer::parse(body, true).unwrap_err().to_string();
            assert!(err.starts_with("body names the S3 payload pointer class but is not a valid pointer"), "{body}: {err}");
        }
    }

    #[test]
    fn written_pointers_are_what_the_extended_clients_write() {
        let p = PayloadPointer { bucket: "payloads".into(), key: "a\"b".into() };
        assert_eq!(p.to_body(), r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"payloads","s3Key":"a\"b"}]"#);
        assert_eq!(PayloadPointer::parse(&p.to_body(), false).unwrap(), Some(p));
    }

    #[test]
    fn a_replay_pointer_names_the_archived_object_its_size_and_the_archive() {
        let object = PayloadPointer { bucket: "audit-archive".into(), key: "workato/jobs/2024/03/01/j-1.json".into() };
        let (body, attributes) = replay_pointer(&object, 1234, "s3://audit-archive/workato/");
        assert_eq!(
            body,
            r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"audit-archive","s3Key":"workato/jobs/2024/03/01/j-1.json"}]"#
        );
        assert_eq!(PayloadPointer::parse(&body, has_size_attribute(&attributes)).unwrap(), Some(object));
        // What AWS's clients look for to take the body for a pointer.
        assert_eq!(declared_size(&attributes), Some(1234));
        assert_eq!(attributes["ExtendedPayloadSize"].data_type, "Number");
        assert_eq!(attributes["auditstream-replay"], MessageAttribute::string("s3://audit-archive/workato/"));
        assert_eq!(attributes.len(), 2);
        // SQS and SNS attribute names: letters, digits, '-', '_' and '.', not beginning with
        // "AWS." or "Amazon.".
        assert!(REPLAY_ATTRIBUTE.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        assert!(!REPLAY_ATTRIBUTE.to_ascii_lowercase().starts_with("aws.") && !REPLAY_ATTRIBUTE.to_ascii_lowercase().starts_with("amazon."));
    }

    #[test]
    fn size_attributes_and_the_offload_rule() {
        let (name, attribute) = size_attribute(300_000);
        let attributes: MessageAttributes = [(name, attribute)].into_iter().collect();
        assert_eq!(declared_size(&attributes), Some(300_000));
        assert_eq!(attributes["ExtendedPayloadSize"].data_type, "Number");
        let legacy: MessageAttributes = [(LEGACY_SIZE_ATTRIBUTE.to_owned(), MessageAttribute::number(7))].into_iter().collect();
        assert_eq!(declared_size(&legacy), Some(7));
        assert!(has_size_attribute(&legacy) && !has_size_attribute(&MessageAttributes::new()));
        // Over the threshold, counting attributes, as the clients do; exactly at it stays inline.
        assert!(!needs_offload(DEFAULT_OFFLOAD_THRESHOLD, 0, DEFAULT_OFFLOAD_THRESHOLD));
        assert!(needs_offload(DEFAULT_OFFLOAD_THRESHOLD - 10, 11, DEFAULT_OFFLOAD_THRESHOLD));
    }
}
