//! The one reading of a failed AWS call (S3, SQS, SNS) for the shared retry policy: what is
//! worth trying again, and a message that says what was being done, on what, and what to check.
//!
//! Transient: no answer at all (a timeout, a connection that failed or broke, an answer that
//! could not be read), HTTP 408, 429 and 5xx but 501, and the codes the AWS SDKs' standard retry
//! mode retries whatever their status — throttling (`SlowDown`, `ThrottlingException`,
//! `RequestThrottled` (an SQS 403), `KmsThrottled`, …), `RequestTimeout` (an S3 400),
//! `InternalError` — plus S3's two "try again" conflicts, `ConditionalRequestConflict` and
//! `OperationAborted` (409). See <https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html>
//! and <https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html>.
//!
//! Permanent: everything else — a missing bucket, object, queue or topic, access denied, a KMS
//! key that is disabled or missing, a rejected request, and 501 `NotImplemented` (an
//! S3-compatible server without conditional writes answers that to every create-only PUT:
//! retrying cannot help, and the reason then reaches the dead-letter queue instead of being lost
//! to redeliveries).
//!
//! Outcomes that are not failures for one caller (S3's 412 to a create-only PUT: the object is
//! already there) are decided at that call site, before this classifier is asked.
//!
//! A message names the call and its target (an `s3://` URL, a queue URL, a topic ARN) and
//! quotes the service's error message through [`crate::redact::Redactor::quote`] (one line,
//! escaped, cut): AWS's messages describe the request, never its body, and nothing of the body
//! is added here.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::delivery::pack::EntryResult;
use crate::delivery::retry::DeliveryError;

/// The longest part of a service's error message quoted in ours.
const MAX_QUOTED_CHARS: usize = 300;

/// What was being done when a call failed: for the message, never for the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsCall<'a> {
    /// The service's IAM prefix: `s3`, `sqs`, `sns`.
    pub service: &'static str,
    /// The API operation: `PutObject`, `SendMessageBatch`, `PublishBatch`.
    pub operation: &'a str,
    /// What it was on: `s3://bucket/key`, a queue URL, a topic ARN.
    pub on: &'a str,
    /// The KMS key the call asks the service to encrypt with (an S3 PutObject with SSE-KMS), to
    /// name in a KMS or access-denied failure; not a secret.
    pub kms_key: Option<&'a str>,
}

impl<'a> AwsCall<'a> {
    pub const fn s3(operation: &'a str, on: &'a str) -> Self {
        AwsCall { service: "s3", operation, on, kms_key: None }
    }

    pub const fn sqs(operation: &'a str, on: &'a str) -> Self {
        AwsCall { service: "sqs", operation, on, kms_key: None }
    }

    pub const fn sns(operation: &'a str, on: &'a str) -> Self {
        AwsCall { service: "sns", operation, on, kms_key: None }
    }

    /// The same call, encrypting with `key` (when there is one).
    pub const fn with_kms_key(self, key: Option<&'a str>) -> Self {
        AwsCall { kms_key: key, ..self }
    }

    /// The IAM action the call needs: a batch operation is allowed by its single one
    /// (`SendMessageBatch` by `sqs:SendMessage`, `PublishBatch` by `sns:Publish`), and the S3
    /// operations that have no action of their own by the one that allows them: `HeadObject` by
    /// `s3:GetObject`, `ListObjectsV2` and `HeadBucket` by `s3:ListBucket`
    /// (<https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html>,
    /// <https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html>,
    /// <https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html>).
    fn permission(&self) -> String {
        let action = match (self.service, self.operation) {
            ("s3", "HeadObject") => "GetObject",
            ("s3", "ListObjectsV2" | "HeadBucket") => "ListBucket",
            (_, operation) => operation.strip_suffix("Batch").unwrap_or(operation),
        };
        format!("{}:{action}", self.service)
    }
}

/// What came back from a call, reduced to what the classifier reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    /// The service answered with an error.
    Service { status: u16, code: &'a str, message: &'a str },
    /// No usable answer: a timeout, a connection that failed or broke, an unreadable answer.
    NoAnswer(&'a str),
    /// The request was never sent (it could not be built or signed).
    NotSent(&'a str),
}

/// Classifies a failed SDK call.
pub fn classify<E>(call: AwsCall<'_>, err: &SdkError<E, HttpResponse>) -> DeliveryError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let status = service.raw().status().as_u16();
            let answer = Answer::Service { status, code: e.code().unwrap_or(""), message: e.message().unwrap_or("") };
            let mut error = classify_answer(call, answer);
            // S3 names the region of a bucket asked for in another one (301 PermanentRedirect, or
            // 400 for a HEAD, which has no body to say it in).
            if let (301 | 400, Some(region)) = (status, service.raw().headers().get("x-amz-bucket-region")) {
                error.message.push_str(&format!(" (the bucket is in region {region}: set AWS_REGION to it)"));
            }
            error
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            classify_answer(call, Answer::NoAnswer(&DisplayErrorContext(err).to_string()))
        }
        _ => classify_answer(call, Answer::NotSent(&DisplayErrorContext(err).to_string())),
    }
}

/// Classifies what came back from a call (see the module's documentation).
pub fn classify_answer(call: AwsCall<'_>, answer: Answer<'_>) -> DeliveryError {
    let AwsCall { operation, on, .. } = call;
    match answer {
        Answer::Service { status, code, message } => {
            let mut text = format!("{on}: {operation} failed: HTTP {status}");
            if !code.is_empty() {
                text.push(' ');
                text.push_str(code);
            }
            if !message.trim().is_empty() {
                text.push_str(": ");
                text.push_str(&crate::redact::Redactor::new().quote(message, &[], MAX_QUOTED_CHARS));
            }
            if is_transient(status, code) {
                DeliveryError::transient(text)
            } else {
                text.push_str(&hint(call, status, code));
                DeliveryError::permanent(text)
            }
        }
        Answer::NoAnswer(why) => DeliveryError::unanswered(format!("{on}: {operation} failed: {why}")),
        Answer::NotSent(why) => DeliveryError::permanent(format!("{on}: {operation} could not be sent: {why}")),
    }
}

/// Whether an error answer may pass when the call is made again.
pub fn is_transient(status: u16, code: &str) -> bool {
    // 501: the server does not implement what the request asks for (an S3-compatible server
    // without `If-None-Match`); every other 5xx is the service's passing trouble.
    let server_trouble = status >= 500 && status != 501;
    // S3 answers 409 to a conditional write racing another one, "retry the upload"; other 409s
    // (InvalidBucketState, BucketNotEmpty) are about the resource's state and stay permanent.
    let conflict_to_retry = status == 409 && (code.is_empty() || matches!(code, "ConditionalRequestConflict" | "OperationAborted"));
    server_trouble || status == 408 || status == 429 || conflict_to_retry || is_transient_code(code)
}

/// The error codes that are worth retrying whatever their HTTP status: throttling (SQS answers
/// `RequestThrottled` with 403, S3 `RequestTimeout` with 400) and the services' own faults.
pub fn is_transient_code(code: &str) -> bool {
    code.contains("Throttl") // Throttling, ThrottlingException, RequestThrottled, KmsThrottled, KMSThrottling…
        || matches!(
            code,
            "SlowDown"
                | "RequestLimitExceeded"
                | "BandwidthLimitExceeded"
                | "LimitExceededException"
                | "TooManyRequestsException"
                | "ProvisionedThroughputExceededException"
                | "TransactionInProgressException"
                | "PriorRequestNotComplete"
                | "RequestTimeout"
                | "RequestTimeoutException"
                | "InternalError"
                | "InternalFailure"
                | "ServiceUnavailable"
                | "AWS.SimpleQueueService.InternalError"
        )
}

/// One entry of a batch request (`SendMessageBatch`, `DeleteMessageBatch`, `PublishBatch`) that
/// failed: retried unless it was the sender's fault and not throttling.
pub fn entry_failure(sender_fault: bool, code: &str, message: Option<&str>) -> EntryResult {
    let why = format!("{code}: {}", crate::redact::Redactor::new().quote(message.unwrap_or("no message"), &[], MAX_QUOTED_CHARS));
    if sender_fault && !is_transient_code(code) {
        EntryResult::Failed(why)
    } else {
        EntryResult::Retry(why)
    }
}

/// What to check, for a permanent failure whose status or code says it.
fn hint(call: AwsCall<'_>, status: u16, code: &str) -> String {
    let key = call.kms_key.map_or_else(|| "the KMS key".to_owned(), |key| format!("KMS key {key}"));
    if code.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("kms")) {
        // SQS KmsDisabled/KmsNotFound/KmsAccessDenied, SNS KMSDisabled…, S3 KMS.DisabledException,
        // KMS.NotFoundException, KMS.KMSInvalidStateException (a key pending deletion)…
        return format!(" (is {key} enabled and not pending deletion, and does the role allow kms:GenerateDataKey and kms:Decrypt on it?)");
    }
    let fixed = match code {
        "NoSuchBucket" => " (does the bucket exist, in this region?)",
        // A HEAD has no body: S3's 404 to HeadBucket carries no code, and the SDK calls it NotFound.
        _ if status == 404 && call.operation == "HeadBucket" => " (no such bucket in this region: check the bucket's name and AWS_REGION)",
        "NoSuchKey" => " (the object does not exist: deleted, expired by the bucket's lifecycle rule, or never written)",
        // A 403 that is not about permissions: the object was moved (by a lifecycle rule, usually)
        // to a storage class GetObject cannot read until a copy is restored
        // (<https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html>).
        "InvalidObjectState" if call.operation == "GetObject" => {
            " (the object is in the S3 Glacier Flexible Retrieval or Deep Archive storage class, or an Intelligent-Tiering archive tier: \
             restore it (RestoreObject: aws s3api restore-object) and try again once the restore is done)"
        }
        "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist" => " (does the queue exist, in this region and account?)",
        "NotImplemented" => " (the server does not implement this request: an S3-compatible server must support conditional writes, If-None-Match)",
        _ if status == 403 || code.contains("AccessDenied") || code == "AuthorizationError" => {
            let on = match call.service {
                "s3" => " on the bucket and prefix",
                "sqs" => " on the queue",
                "sns" => " on the topic",
                _ => "",
            };
            let key = call.kms_key.map_or_else(|| "its key".to_owned(), |key| format!("KMS key {key}"));
            return format!(" (does the role allow {}{on}, and kms:GenerateDataKey/kms:Decrypt on {key}?)", call.permission());
        }
        _ if status == 404 || code == "NotFound" => " (does it exist, in this region and account?)",
        _ => "",
    };
    fixed.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::retry::FailureKind::{self, Permanent, Transient};

    const PUT: AwsCall<'static> = AwsCall::s3("PutObject", "s3://audit-logs/workato/x.json");

    fn service(status: u16, code: &str) -> DeliveryError {
        classify_answer(PUT, Answer::Service { status, code, message: "the service's words" })
    }

    #[test]
    fn what_is_retried_and_what_is_not() {
        let table: &[(u16, &str, FailureKind)] = &[
            // throttling, under any status the services use for it
            (503, "SlowDown", Transient),
            (400, "ThrottlingException", Transient),
            (403, "RequestThrottled", Transient),
            (400, "KmsThrottled", Transient),
            (400, "KMSThrottling", Transient),
            (400, "Throttling", Transient),
            (429, "", Transient),
            (400, "RequestLimitExceeded", Transient),
            // the services' own faults and timeouts
            (500, "InternalError", Transient),
            (500, "InternalFailure", Transient),
            (502, "", Transient),
            (503, "ServiceUnavailable", Transient),
            (504, "", Transient),
            (400, "RequestTimeout", Transient),
            (408, "", Transient),
            // S3's "try again" conflicts; other conflicts are about the bucket's state
            (409, "ConditionalRequestConflict", Transient),
            (409, "OperationAborted", Transient),
            (409, "InvalidBucketState", Permanent),
            // what will fail the same way again
            (501, "NotImplemented", Permanent),
            (404, "NoSuchBucket", Permanent),
            (404, "NoSuchKey", Permanent),
            (404, "", Permanent),
            (403, "AccessDenied", Permanent),
            (403, "InvalidAccessKeyId", Permanent),
            (403, "SignatureDoesNotMatch", Permanent),
            (400, "KMS.NotFoundException", Permanent),
            (400, "KmsDisabled", Permanent),
            (400, "KmsAccessDenied", Permanent),
            (400, "AWS.SimpleQueueService.NonExistentQueue", Permanent),
            (400, "QueueDoesNotExist", Permanent),
            (400, "InvalidParameterValue", Permanent),
            (400, "RequestTimeTooSkewed", Permanent),
            (404, "NotFound", Permanent),
            (403, "AuthorizationError", Permanent),
        ];
        for &(status, code, want) in table {
            assert_eq!(service(status, code).kind, want, "HTTP {status} {code}");
        }
        assert_eq!(classify_answer(PUT, Answer::NoAnswer("timeout")).kind, Transient);
        assert_eq!(classify_answer(PUT, Answer::NotSent("no credentials")).kind, Permanent);
    }

    #[test]
    fn messages_name_the_call_its_target_and_what_to_check() {
        assert_eq!(
            service(404, "NoSuchBucket").message,
            "s3://audit-logs/workato/x.json: PutObject failed: HTTP 404 NoSuchBucket: the service's words (does the bucket exist, in this region?)"
        );
        let get = AwsCall::s3("GetObject", "s3://payloads/k");
        let gone = classify_answer(get, Answer::Service { status: 404, code: "NoSuchKey", message: "The specified key does not exist." });
        assert_eq!(
            gone.message,
            "s3://payloads/k: GetObject failed: HTTP 404 NoSuchKey: The specified key does not exist. (the object does not exist: deleted, expired by the bucket's lifecycle rule, or never written)"
        );
        let archived = classify_answer(
            get,
            Answer::Service { status: 403, code: "InvalidObjectState", message: "The operation is not valid for the object's storage class" },
        );
        assert_eq!(archived.kind, crate::delivery::retry::FailureKind::Permanent, "a restore takes hours");
        assert_eq!(
            archived.message,
            "s3://payloads/k: GetObject failed: HTTP 403 InvalidObjectState: The operation is not valid for the object's storage class \
             (the object is in the S3 Glacier Flexible Retrieval or Deep Archive storage class, or an Intelligent-Tiering archive tier: \
             restore it (RestoreObject: aws s3api restore-object) and try again once the restore is done)",
            "an archived object is no matter of permissions"
        );
        let denied = service(403, "AccessDenied").message;
        assert!(denied.ends_with("(does the role allow s3:PutObject on the bucket and prefix, and kms:GenerateDataKey/kms:Decrypt on its key?)"), "{denied}");
        let send = AwsCall::sqs("SendMessageBatch", "https://sqs.us-east-1.amazonaws.com/1/dlq");
        let missing = classify_answer(send, Answer::Service { status: 400, code: "AWS.SimpleQueueService.NonExistentQueue", message: "" });
        assert_eq!(
            missing.message,
            "https://sqs.us-east-1.amazonaws.com/1/dlq: SendMessageBatch failed: HTTP 400 AWS.SimpleQueueService.NonExistentQueue (does the queue exist, in this region and account?)"
        );
        let sqs_denied = classify_answer(send, Answer::Service { status: 403, code: "AccessDenied", message: "" }).message;
        assert!(sqs_denied.ends_with("(does the role allow sqs:SendMessage on the queue, and kms:GenerateDataKey/kms:Decrypt on its key?)"), "{sqs_denied}");
        // S3 operations without an IAM action of their own name the action that allows them
        let denied = |operation: &str| {
            classify_answer(AwsCall::s3(operation, "s3://audit-logs/workato/x.json"), Answer::Service { status: 403, code: "AccessDenied", message: "" })
                .message
        };
        assert!(denied("HeadObject").ends_with("(does the role allow s3:GetObject on the bucket and prefix, and kms:GenerateDataKey/kms:Decrypt on its key?)"));
        assert!(
            denied("ListObjectsV2").ends_with("(does the role allow s3:ListBucket on the bucket and prefix, and kms:GenerateDataKey/kms:Decrypt on its key?)")
        );
        assert!(denied("GetObject").ends_with("(does the role allow s3:GetObject on the bucket and prefix, and kms:GenerateDataKey/kms:Decrypt on its key?)"));
        assert!(service(400, "KmsDisabled")
            .message
            .ends_with("(is the KMS key enabled and not pending deletion, and does the role allow kms:GenerateDataKey and kms:Decrypt on it?)"));
        // a PUT encrypting with a named key names it
        let sse = PUT.with_kms_key(Some("alias/audit"));
        let disabled =
            classify_answer(sse, Answer::Service { status: 400, code: "KMS.DisabledException", message: "arn:aws:kms:us-east-1:1:key/k is disabled." });
        assert!(
            disabled
                .message
                .ends_with("(is KMS key alias/audit enabled and not pending deletion, and does the role allow kms:GenerateDataKey and kms:Decrypt on it?)"),
            "{}",
            disabled.message
        );
        let denied = classify_answer(sse, Answer::Service { status: 403, code: "AccessDenied", message: "" }).message;
        assert!(
            denied.ends_with("(does the role allow s3:PutObject on the bucket and prefix, and kms:GenerateDataKey/kms:Decrypt on KMS key alias/audit?)"),
            "{denied}"
        );
        // HeadBucket: allowed by s3:ListBucket; its 404 has no code (a HEAD has no body)
        let head = AwsCall::s3("HeadBucket", "s3://audit-logs");
        let missing = classify_answer(head, Answer::Service { status: 404, code: "NotFound", message: "" }).message;
        assert_eq!(missing, "s3://audit-logs: HeadBucket failed: HTTP 404 NotFound (no such bucket in this region: check the bucket's name and AWS_REGION)");
        let denied = classify_answer(head, Answer::Service { status: 403, code: "", message: "" }).message;
        assert!(denied.ends_with("(does the role allow s3:ListBucket on the bucket and prefix, and kms:GenerateDataKey/kms:Decrypt on its key?)"), "{denied}");
        // a transient failure says what happened, not what to fix
        assert_eq!(service(503, "SlowDown").message, "s3://audit-logs/workato/x.json: PutObject failed: HTTP 503 SlowDown: the service's words");
        assert_eq!(
            classify_answer(PUT, Answer::NoAnswer("timeout: read timed out")).message,
            "s3://audit-logs/workato/x.json: PutObject failed: timeout: read timed out"
        );
    }

    #[test]
    fn the_services_words_are_quoted_on_one_line_and_cut() {
        let message = format!("line one\nRequestId: 1\u{1b}[2J{}", "x".repeat(1000));
        let e = classify_answer(PUT, Answer::Service { status: 400, code: "InvalidArgument", message: &message });
        assert!(!e.message.contains('\n') && !e.message.contains('\u{1b}'), "{}", e.message);
        assert!(e.message.len() < 600, "{}", e.message);
    }

    #[test]
    fn sdk_errors_are_read_for_their_status_code_and_kind() {
        use aws_sdk_s3::operation::put_object::PutObjectError;
        use aws_smithy_runtime_api::client::result::ConnectorError;
        use aws_smithy_runtime_api::http::StatusCode;
        use aws_smithy_types::body::SdkBody;
        use aws_smithy_types::error::ErrorMetadata;

        let answer = |status: u16, code: &str| {
            let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
            SdkError::service_error(PutObjectError::generic(ErrorMetadata::builder().code(code).message("slow down").build()), raw)
        };
        let slow = classify(PUT, &answer(503, "SlowDown"));
        assert_eq!((slow.kind, slow.message.as_str()), (Transient, "s3://audit-logs/workato/x.json: PutObject failed: HTTP 503 SlowDown: slow down"));
        assert_eq!(classify(PUT, &answer(404, "NoSuchBucket")).kind, Permanent);

        // a bucket in another region: S3 names it in a header
        let mut raw = HttpResponse::new(StatusCode::try_from(301).unwrap(), SdkBody::empty());
        raw.headers_mut().insert("x-amz-bucket-region", "eu-west-1");
        let moved = SdkError::service_error(PutObjectError::generic(ErrorMetadata::builder().code("PermanentRedirect").build()), raw);
        let moved = classify(PUT, &moved);
        assert_eq!(moved.kind, Permanent);
        assert!(moved.message.ends_with("HTTP 301 PermanentRedirect (the bucket is in region eu-west-1: set AWS_REGION to it)"), "{}", moved.message);

        let timeout: SdkError<PutObjectError, HttpResponse> = SdkError::timeout_error("operation timed out");
        assert_eq!(classify(PUT, &timeout).kind, Transient);
        let refused: SdkError<PutObjectError, HttpResponse> = SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        let e = classify(PUT, &refused);
        assert_eq!(e.kind, Transient);
        assert!(
            e.message.starts_with("s3://audit-logs/workato/x.json: PutObject failed: dispatch failure") && e.message.contains("connection refused"),
            "{}",
            e.message
        );
        let unsigned: SdkError<PutObjectError, HttpResponse> = SdkError::construction_failure("no credentials in the chain");
        let e = classify(PUT, &unsigned);
        assert_eq!(e.kind, Permanent);
        assert!(e.message.starts_with("s3://audit-logs/workato/x.json: PutObject could not be sent: "), "{}", e.message);
    }

    #[test]
    fn batch_entries_are_retried_unless_the_sender_was_at_fault() {
        assert!(matches!(entry_failure(true, "InvalidParameterValue", None), EntryResult::Failed(w) if w == "InvalidParameterValue: no message"));
        assert!(matches!(entry_failure(false, "InternalError", None), EntryResult::Retry(_)));
        assert!(matches!(entry_failure(true, "RequestThrottled", Some("slow down")), EntryResult::Retry(w) if w == "RequestThrottled: slow down"));
        assert!(matches!(entry_failure(true, "Throttled", Some("rate exceeded")), EntryResult::Retry(_)));
        assert!(matches!(entry_failure(true, "KMSAccessDenied", None), EntryResult::Failed(_)));
    }
}
