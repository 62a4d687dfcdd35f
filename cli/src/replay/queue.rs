//! `auditstream replay --queue URL | --topic ARN`: an S3 archive replayed through the deployed
//! functions, for millions of events (`docs/operations.md`, "Replay by pointer"). Each selected
//! object is read and checked as `--to` checks it ([`super::ReadAhead`]): one that is not an audit
//! event is named and skipped, never sent. Each event becomes one message whose body is an
//! Extended Client pointer to the object itself ([`replay_pointer`]: no copy), sent in batches
//! through [`Target`] as `send` sends; the functions (or `auditstream poll`) read each object
//! again and deliver it with their own settings.
//!
//! The same listing, selection and checkpoint as `--to`: the checkpoint advances only past objects
//! whose message was sent (or that were skipped), and every object whose read or send failed is
//! named on stderr and counted.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use auditstream::aws::errors::{classify, AwsCall};
use auditstream::aws::s3::s3_client;
use auditstream::aws::sqs::{deduplication_id, is_fifo, OutgoingMessage};
use auditstream::config::{PipelineSettings, ProcessEnv};
use auditstream::intake::payload_pointer::{replay_pointer, PayloadPointer};
use auditstream::intake::payload_store::DEFAULT_MAX_PAYLOAD_BYTES;
use auditstream::intake::replay::select::Selection;
use auditstream::intake::replay::{ArchiveLocation, ArchiveSource};
use aws_sdk_s3::types::BucketVersioningStatus;
use indicatif::ProgressBar;
use tokio::sync::mpsc::error::TryRecvError;

use super::{read_checkpoint, Listed, ReadAhead, ReplayArgs, SizeLimit, Step, Tracker};
use crate::input::BatchShape;
use crate::send::Target;

/// Objects handled per round of sends: a hundred SendMessageBatch requests, several at a time,
/// while the listing and reading go on ahead.
const ROUND: usize = 1000;

/// Messages per SendMessageBatch (SNS: PublishBatch) request.
const PER_REQUEST: usize = 10;

/// How long a round waits for more objects to fill its last request: reading objects may be slower
/// than sending their pointers, and a request of one message costs as much as one of ten.
const FILL_WAIT: Duration = Duration::from_millis(200);

/// The events of a round.
fn events(round: &[Step]) -> usize {
    round.iter().filter(|step| matches!(step, Step::Event { .. })).count()
}

/// The message group of every message to a FIFO queue or topic.
const FIFO_GROUP: &str = "auditstream-replay";

/// Replays `location` by pointer to `--queue` or `--topic`.
pub(super) async fn replay(args: &ReplayArgs, location: ArchiveLocation, selection: Selection, progress: ProgressBar) -> Result<ExitCode> {
    let (bucket, prefix) = match location {
        ArchiveLocation::S3 { bucket, prefix } => (bucket, prefix),
        ArchiveLocation::Dir(path) => bail!(
            "--from dir:{}: a directory cannot be replayed by pointer: --queue and --topic send pointers to S3 objects, for the deployed functions to read. \
             Replay it from this machine with --to DEST, or upload it to S3 (aws s3 sync {} s3://BUCKET/PREFIX) and replay that",
            path.display(),
            path.display()
        ),
    };
    if args.unwrap.is_some() {
        bail!("--unwrap works with --to only: with --queue or --topic the deployed functions read each archived object as it is");
    }
    let mut settings = PipelineSettings::from_env(&ProcessEnv)?;
    if let Some(n) = args.concurrency {
        settings.concurrency = usize::from(n);
    }
    let max_input_bytes = BatchShape::for_max_event_bytes(settings.pipeline.max_event_bytes).max_input_bytes;
    // An object is read (to check that it is an event) only up to what the functions would
    // read from its pointer.
    let limit = if max_input_bytes <= DEFAULT_MAX_PAYLOAD_BYTES {
        SizeLimit { bytes: max_input_bytes, why: "an event may have here (AUDITSTREAM_MAX_EVENT_BYTES plus 1 MiB)" }
    } else {
        SizeLimit { bytes: DEFAULT_MAX_PAYLOAD_BYTES, why: "the functions read from a pointer" }
    };
    let aws = aws_config::load_from_env().await;
    let target = Target::new(&aws, args.queue.clone(), args.topic.clone())?;
    let source = ArchiveSource::s3(s3_client(&aws), bucket.clone(), prefix);
    let from = source.location().to_string();
    let resume = match &args.checkpoint {
        Some(path) => read_checkpoint(path, &from)?,
        None => None,
    };
    warn_unless_deletes_are_recoverable(&s3_client(&aws), &bucket, &progress).await;
    let fifo = is_fifo(target.name());
    let source = Arc::new(source);
    let selection = Arc::new(selection);
    let (mut tracker, start_after) = Tracker::start(progress.clone(), args.checkpoint.as_deref(), &from, resume, &source, &selection);

    // Objects are read `concurrency` at a time, in key order, only their keys and sizes kept: a
    // round of them at most waits for the sends.
    let ahead = ReadAhead { concurrency: settings.concurrency, queued: ROUND, limit, unwrap: None, keep_bodies: false };
    let (mut rx, reader) = ahead.start(&source, &selection, start_after);

    let (mut listed, mut sent, mut not_sent) = (Listed::default(), 0u64, 0u64);
    while let Some(first) = rx.recv().await {
        // What is ready now; while the last request would not be full, what comes within FILL_WAIT.
        let mut round = vec![first];
        let fill_until = tokio::time::Instant::now() + FILL_WAIT;
        while round.len() < ROUND {
            let next = match rx.try_recv() {
                Ok(step) => Some(step),
                Err(TryRecvError::Disconnected) => None,
                Err(TryRecvError::Empty) if events(&round).is_multiple_of(PER_REQUEST) => None,
                Err(TryRecvError::Empty) => tokio::time::timeout_at(fill_until, rx.recv()).await.ok().flatten(),
            };
            match next {
                Some(step) => round.push(step),
                None => break,
            }
        }
        let messages: Vec<OutgoingMessage> = round
            .iter()
            .filter_map(|step| match step {
                Step::Event { key, size, .. } => Some(pointer_message(&bucket, key, *size, &from, fifo)),
                _ => None,
            })
            .collect();
        let mut results = target.send(&messages).await.into_iter();
        for step in round {
            let Some(key) = tracker.event_or_settle(&mut listed, step) else { continue };
            let ok = match results.next() {
                Some(Ok(_)) => {
                    sent += 1;
                    true
                }
                Some(Err(why)) => {
                    crate::progress::say(&progress, &format!("failed {key}: {why}"));
                    false
                }
                None => {
                    crate::progress::say(&progress, &format!("failed {key}: no answer from {} for its message", target.name()));
                    false
                }
            };
            not_sent += u64::from(!ok);
            tracker.settled(key, ok);
        }
        tracker.save()?;
        progress.set_message(format!("{sent} sent"));
    }
    tracker.finish(reader).await?;

    let failed = not_sent + listed.failed();
    println!(
        "{} listed, {} selected, {sent} sent as pointers to {from}, {} skipped (not events), {failed} failed -> {}",
        listed.listed(),
        listed.selected,
        listed.skipped,
        target.name()
    );
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The message replaying the object at `key`: its pointer, as the Extended Clients read it.
fn pointer_message(bucket: &str, key: &str, size: u64, archive: &str, fifo: bool) -> OutgoingMessage {
    let (body, attributes) = replay_pointer(&PayloadPointer { bucket: bucket.to_owned(), key: key.to_owned() }, size, archive);
    let mut message = OutgoingMessage { body, attributes, ..OutgoingMessage::default() };
    if fifo {
        // The body names the object, so a message sent twice within SQS's five-minute window
        // (a resumed replay) is taken once.
        message.message_group_id = Some(FIFO_GROUP.to_owned());
        message.deduplication_id = Some(deduplication_id(&message.body));
    }
    message
}

/// Warns on stderr unless a deleted object of the archive could be brought back. The pointers
/// name the archived objects themselves: a consumer that deletes a pointer's payload (AWS's Java
/// Extended Client does by default) would otherwise destroy the only copy. Versioning is what
/// keeps a deleted object (as a previous version); Object Lock cannot be on without it.
async fn warn_unless_deletes_are_recoverable(s3: &aws_sdk_s3::Client, bucket: &str, progress: &ProgressBar) {
    let at = format!("s3://{bucket}");
    let warning = match s3.get_bucket_versioning().bucket(bucket).send().await {
        Ok(answer) => versioning_warning(&at, answer.status()),
        // An answer the SDK would not read may still hold the state (moto's; see `versioning_in_answer`).
        Err(e) => match e.raw_response().filter(|r| r.status().as_u16() == 200).and_then(|r| r.body().bytes()).and_then(versioning_in_answer) {
            Some(status) => versioning_warning(&at, status.as_ref()),
            None => Some(format!(
                "warning: cannot tell whether {at} keeps deleted objects ({}); make sure no consumer of these messages deletes a pointer's payload \
                 (docs/operations.md, \"Replay by pointer\")",
                classify(AwsCall::s3("GetBucketVersioning", &at), &e)
            )),
        },
    };
    if let Some(warning) = warning {
        crate::progress::say(progress, &warning);
    }
}

/// The versioning state in a GetBucketVersioning answer of HTTP 200 (`None`: not such an answer;
/// `Some(None)`: versioning never turned on). S3 answers a `VersioningConfiguration` document, empty
/// for a bucket whose versioning was never set, else with its `Status`, `Enabled` or `Suspended`
/// ([GetBucketVersioning](https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketVersioning.html)).
/// moto (5.x) names the same document's root `GetBucketVersioningResponse`, which the SDK refuses
/// to read as S3's; the state it holds is the same, so it is read here.
fn versioning_in_answer(body: &[u8]) -> Option<Option<BucketVersioningStatus>> {
    let text = std::str::from_utf8(body).ok()?.trim_start();
    let text = match text.strip_prefix("<?xml") {
        Some(declared) => declared.split_once("?>")?.1.trim_start(),
        None => text,
    };
    let root = text.strip_prefix('<')?.split(|c: char| c.is_whitespace() || c == '>' || c == '/').next()?;
    if root != "VersioningConfiguration" && root != "GetBucketVersioningResponse" {
        return None;
    }
    match text.split_once("<Status>") {
        None => Some(None),
        Some((_, rest)) => Some(Some(BucketVersioningStatus::from(rest.split_once("</Status>")?.0.trim()))),
    }
}

/// The warning for an archive bucket at `at` whose versioning is `status` (`None`: never turned on).
fn versioning_warning(at: &str, status: Option<&BucketVersioningStatus>) -> Option<String> {
    (status != Some(&BucketVersioningStatus::Enabled)).then(|| {
        format!(
            "warning: {at} has neither versioning nor Object Lock: a consumer of these messages that deletes a pointer's payload \
             (AWS's Java Extended Client does by default) would delete the archived object itself, the only copy. \
             Turn versioning on, and let no such consumer near the queue (docs/operations.md, \"Replay by pointer\")"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_archive_with_versioning_on_is_not_warned_about() {
        assert_eq!(versioning_warning("s3://audit", Some(&BucketVersioningStatus::Enabled)), None);
        for status in [None, Some(&BucketVersioningStatus::Suspended)] {
            let warning = versioning_warning("s3://audit", status).unwrap_or_default();
            assert!(warning.starts_with("warning: s3://audit has neither versioning nor Object Lock: "), "{status:?}: {warning}");
            assert!(warning.contains("the only copy") && warning.contains("docs/operations.md"), "{warning}");
        }
    }

    #[test]
    fn the_versioning_state_is_read_from_s3s_answer_and_from_motos_whose_root_element_differs() {
        const XML: &str = r#"<?xml version="1.0" encoding="utf-8"?>"#;
        let ns = r#" xmlns="http://s3.amazonaws.com/doc/2006-03-01/""#;
        for root in ["VersioningConfiguration", "GetBucketVersioningResponse"] {
            let never = format!("{XML}\n<{root}{ns}/>");
            assert_eq!(versioning_in_answer(never.as_bytes()), Some(None), "{never}");
            for (status, expected) in [("Enabled", BucketVersioningStatus::Enabled), ("Suspended", BucketVersioningStatus::Suspended)] {
                let answer = format!("{XML}<{root}{ns}><Status>{status}</Status><MfaDelete>Disabled</MfaDelete></{root}>");
                assert_eq!(versioning_in_answer(answer.as_bytes()), Some(Some(expected)), "{answer}");
            }
        }
        assert_eq!(
            versioning_in_answer(b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"),
            Some(Some(BucketVersioningStatus::Enabled))
        );
        // Anything else is no answer: replay says it cannot tell.
        for other in ["<Error><Code>AccessDenied</Code><Status>Enabled</Status></Error>", "", "Enabled", "<?xml version=\"1.0\"", "\u{0}"] {
            assert_eq!(versioning_in_answer(other.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn a_pointer_message_points_at_the_archived_object_and_to_a_fifo_target_is_deduplicated_by_it() {
        let m = pointer_message("audit", "workato/jobs/k.json", 42, "s3://audit/workato/", false);
        assert_eq!(PayloadPointer::parse(&m.body, true).unwrap(), Some(PayloadPointer { bucket: "audit".into(), key: "workato/jobs/k.json".into() }));
        assert_eq!((m.message_group_id, m.deduplication_id), (None, None));
        let fifo = pointer_message("audit", "workato/jobs/k.json", 42, "s3://audit/workato/", true);
        assert_eq!(fifo.message_group_id.as_deref(), Some(FIFO_GROUP));
        assert_eq!(fifo.deduplication_id, Some(deduplication_id(&fifo.body)));
        let other = pointer_message("audit", "workato/jobs/other.json", 42, "s3://audit/workato/", true);
        assert_ne!(fifo.deduplication_id, other.deduplication_id);
    }
}
