//! Where offloaded payloads live: a small port, [`PayloadStore`], and its S3 adapter.
//!
//! Reading needs no configuration — a pointer names its own bucket — only permission
//! (`s3:GetObject` on the payload bucket, and `kms:Decrypt` if it is encrypted with a KMS key).
//! `AUDITSTREAM_PAYLOAD_BUCKET` is where `auditstream send` offloads to.
//!
//! A payload is read into one buffer sized from `Content-Length` as it streams in, so a 40 MB
//! event costs 40 MB (not the doubling of growing a buffer, nor a second copy to make it text).
//! Failures are classified for the shared retry policy by [`crate::aws::errors`]: a missing object
//! or bucket, or access denied, is permanent (the message goes to the dead-letter queue and keeps
//! its pointer, so it can be redriven once the object is back); throttling, 5xx and connection
//! errors are transient.

use async_trait::async_trait;
use bytes::Bytes;

use crate::aws::errors::{classify, AwsCall};
use crate::aws::s3::{bucket_name, read_object};
use crate::config::{ConfigError, Env, EnvExt};
use crate::delivery::retry::DeliveryError;
use crate::delivery::retry::{Deadline, RetryPolicy};
use crate::intake::payload_pointer::PayloadPointer;

/// The largest payload read: far above Workato's 40 MB events, low enough to refuse a pointer to
/// something that is not an event before it exhausts the function's memory.
pub const DEFAULT_MAX_PAYLOAD_BYTES: u64 = 256 * 1024 * 1024;

/// A payload that could not be read or stored; `permanent` when retrying cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PayloadError {
    pub permanent: bool,
    pub message: String,
}

impl From<DeliveryError> for PayloadError {
    fn from(e: DeliveryError) -> Self {
        PayloadError { permanent: e.is_permanent(), message: e.message }
    }
}

/// Reads and writes offloaded payloads.
#[async_trait]
pub trait PayloadStore: Send + Sync {
    /// Reads the payload a pointer names, as text. Retries transient failures within `deadline`.
    async fn fetch(&self, pointer: &PayloadPointer, deadline: Deadline) -> Result<String, PayloadError>;

    /// Stores a payload at the pointer's bucket and key (for `auditstream send`).
    async fn store(&self, pointer: &PayloadPointer, payload: Bytes, deadline: Deadline) -> Result<(), PayloadError>;
}

/// `AUDITSTREAM_PAYLOAD_BUCKET`: where large bodies are offloaded to when sending.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PayloadSettings {
    pub bucket: Option<String>,
}

impl PayloadSettings {
    pub fn from_env(env: &(impl Env + ?Sized)) -> Result<Self, ConfigError> {
        let bucket = env.optional("AUDITSTREAM_PAYLOAD_BUCKET").map(|b| bucket_name("AUDITSTREAM_PAYLOAD_BUCKET", b)).transpose()?;
        Ok(PayloadSettings { bucket })
    }
}

/// Payloads in Amazon S3 (or an S3-compatible server).
pub struct S3PayloadStore {
    client: aws_sdk_s3::Client,
    retry: RetryPolicy,
    max_bytes: u64,
}

impl S3PayloadStore {
    /// `client` as built by [`crate::aws::s3::s3_client`]: the SDK's retries off, ours apply.
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        S3PayloadStore { client, retry: RetryPolicy::default(), max_bytes: DEFAULT_MAX_PAYLOAD_BYTES }
    }

    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    async fn fetch_once(&self, pointer: &PayloadPointer) -> Result<String, DeliveryError> {
        let buffer = read_object(&self.client, &pointer.bucket, &pointer.key, self.max_bytes).await?;
        String::from_utf8(buffer).map_err(|e| {
            DeliveryError::permanent(format!(
                "{} is not UTF-8 text (invalid byte at offset {}); an audit event is JSON text",
                pointer.url(),
                e.utf8_error().valid_up_to()
            ))
        })
    }
}

#[async_trait]
impl PayloadStore for S3PayloadStore {
    async fn fetch(&self, pointer: &PayloadPointer, deadline: Deadline) -> Result<String, PayloadError> {
        Ok(self.retry.run(deadline, |_| self.fetch_once(pointer)).await?)
    }

    async fn store(&self, pointer: &PayloadPointer, payload: Bytes, deadline: Deadline) -> Result<(), PayloadError> {
        let at = pointer.url();
        self.retry
            .run(deadline, |_| {
                let request = self.client.put_object().bucket(&pointer.bucket).key(&pointer.key).content_type("application/json").body(payload.clone().into());
                let at = &at;
                async move { request.send().await.map(|_| ()).map_err(|e| classify(AwsCall::s3("PutObject", at), &e)) }
            })
            .await?;
        Ok(())
    }
}

/// Why a message could not be offloaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    #[error("the body is {size} bytes with its attributes, over the offload threshold of {threshold} bytes, and no payload bucket is set: pass --payload-bucket or set AUDITSTREAM_PAYLOAD_BUCKET (or raise the threshold, up to 1048576 if the queue accepts 1 MiB messages)")]
    NoBucket { size: usize, threshold: usize },
    #[error("offloading the body failed: {0}")]
    Store(#[from] PayloadError),
}

/// Offloads `message`'s body to `bucket` when body and attributes are over `threshold`, as the
/// Extended Clients do: the payload is stored under a new UUID key and the message becomes the
/// pointer with the `ExtendedPayloadSize` attribute. Returns the message to send, and whether
/// it was offloaded.
pub async fn offload_if_large(
    store: &dyn PayloadStore,
    bucket: Option<&str>,
    mut message: crate::aws::sqs::OutgoingMessage,
    threshold: usize,
    deadline: Deadline,
) -> Result<(crate::aws::sqs::OutgoingMessage, bool), OffloadError> {
    let attributes_len = crate::aws::sqs_message::attributes_size(&message.attributes);
    if !crate::intake::payload_pointer::needs_offload(message.body.len(), attributes_len, threshold) {
        return Ok((message, false));
    }
    let Some(bucket) = bucket else { return Err(OffloadError::NoBucket { size: message.body.len() + attributes_len, threshold }) };
    let pointer = PayloadPointer { bucket: bucket.to_owned(), key: new_payload_key() };
    let payload = std::mem::take(&mut message.body);
    let (name, size) = crate::intake::payload_pointer::size_attribute(payload.len());
    store.store(&pointer, Bytes::from(payload.into_bytes()), deadline).await?;
    message.body = pointer.to_body();
    message.attributes.insert(name, size);
    Ok((message, true))
}

/// A new key for an offloaded payload: a random UUID, as the Extended Clients use.
pub fn new_payload_key() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_take_a_plain_bucket_name() {
        assert_eq!(PayloadSettings::from_env(&[][..]).unwrap(), PayloadSettings { bucket: None });
        assert_eq!(PayloadSettings::from_env(&[("AUDITSTREAM_PAYLOAD_BUCKET", "payloads")][..]).unwrap().bucket.as_deref(), Some("payloads"));
        let err = PayloadSettings::from_env(&[("AUDITSTREAM_PAYLOAD_BUCKET", "s3://payloads")][..]).unwrap_err();
        assert!(err.to_string().starts_with("AUDITSTREAM_PAYLOAD_BUCKET=\"s3://payloads\" is not valid: expected a bucket name"), "{err}");
    }

    #[tokio::test]
    async fn large_bodies_are_offloaded_as_the_extended_clients_do() {
        use crate::aws::sqs::OutgoingMessage;
        let store = crate::intake::resolve::tests::MemoryPayloads::default();
        let (small, offloaded) = offload_if_large(&store, Some("payloads"), OutgoingMessage::new("x".repeat(100)), 100, Deadline::NONE).await.unwrap();
        assert!(!offloaded && small.body.len() == 100);
        let (large, offloaded) = offload_if_large(&store, Some("payloads"), OutgoingMessage::new("y".repeat(101)), 100, Deadline::NONE).await.unwrap();
        assert!(offloaded);
        let pointer = PayloadPointer::parse(&large.body, false).unwrap().expect("a pointer body");
        assert_eq!(pointer.bucket, "payloads");
        assert_eq!(large.attributes["ExtendedPayloadSize"], crate::aws::sqs_message::MessageAttribute::number(101));
        assert_eq!(store.fetch(&pointer, Deadline::NONE).await.unwrap(), "y".repeat(101));
        let err = offload_if_large(&store, None, OutgoingMessage::new("z".repeat(101)), 100, Deadline::NONE).await.unwrap_err();
        assert!(
            err.to_string().starts_with("the body is 101 bytes with its attributes, over the offload threshold of 100 bytes, and no payload bucket is set"),
            "{err}"
        );
    }

    #[test]
    fn payload_keys_are_v4_uuids() {
        let a = new_payload_key();
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        assert!(matches!(a.as_bytes()[19], b'8' | b'9' | b'a' | b'b'), "{a}");
        assert_ne!(a, new_payload_key());
    }
}
