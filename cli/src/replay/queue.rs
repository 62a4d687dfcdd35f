//! `auditstream replay --queue URL | --topic ARN`: an S3 archive replayed through the deployed
//! functions, for millions of events (`docs/operations.md`, "Replay by pointer"). Each selected
//! object becomes one message whose body is an Extended Client pointer to the object itself
//! ([`replay_pointer`]: no copy, no read), sent in batches through [`Target`] as `send` sends; the
//! functions (or `auditstream poll`) read each object and deliver it with their own settings.
//!
//! The same listing, selection and checkpoint as `--to`: the checkpoint advances only past objects
//! whose message was sent, and every object whose send failed is named on stderr and counted.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use auditstream::aws::errors::{classify, AwsCall};
use auditstream::aws::s3::s3_client;
use auditstream::aws::sqs::{deduplication_id, is_fifo, OutgoingMessage};
use auditstream::intake::payload_pointer::{replay_pointer, PayloadPointer};
use auditstream::intake::payload_store::DEFAULT_MAX_PAYLOAD_BYTES;
use auditstream::intake::replay::select::{Selection, Verdict};
use auditstream::intake::replay::{ArchiveLocation, ArchiveSource};
use aws_sdk_s3::types::BucketVersioningStatus;
use futures::StreamExt;
use indicatif::ProgressBar;

use super::{read_checkpoint, CheckpointFile, ReplayArgs};
use crate::send::Target;

/// Listed objects handled per round of sends: a hundred SendMessageBatch requests, several at a
/// time, while the listing goes on ahead.
const ROUND: usize = 1000;

/// The message group of every message to a FIFO queue or topic.
const FIFO_GROUP: &str = "auditstream-replay";

/// One listed object.
enum Listed {
    /// Selected: its pointer is sent.
    Send { key: String, size: u64 },
    /// Not sent on purpose: a record or a key outside the selection (`why` is `None`: silent), or
    /// not an event (named on stderr).
    Passed { key: String, why: Option<String> },
    /// The listing failed: nothing after this point is known.
    ListFailed(String),
}

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
    if args.concurrency.is_some() {
        bail!("--concurrency works with --to only: --queue and --topic send 10 messages per request, several requests at a time");
    }
    let aws = aws_config::load_from_env().await;
    let target = Target::new(&aws, args.queue.clone(), args.topic.clone())?;
    let source = ArchiveSource::s3(s3_client(&aws), bucket.clone(), prefix);
    let from = source.location().to_string();
    let resume = match &args.checkpoint {
        Some(path) => read_checkpoint(path, &from)?,
        None => None,
    };
    warn_unless_deletes_are_recoverable(&s3_client(&aws), &bucket, &progress).await;
    if let Some(checkpoint) = &resume {
        crate::say(
            &progress,
            &format!(
                "continuing after {} (checkpoint {})",
                checkpoint.last_key,
                args.checkpoint.as_deref().unwrap_or_else(|| std::path::Path::new("")).display()
            ),
        );
    }
    let start_after = resume.map(|c| c.last_key);
    let fifo = is_fifo(target.name());
    let source = Arc::new(source);
    let selection = Arc::new(selection);
    let counter = super::count_for_progress(&source, &selection, &progress, start_after.clone());

    // The listing runs ahead of the sends, a round of objects at most.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Listed>(ROUND);
    let lister = {
        let (source, selection) = (Arc::clone(&source), Arc::clone(&selection));
        tokio::spawn(async move {
            let prefix = source.prefix();
            let mut listing = source.list(start_after);
            while let Some(listed) = listing.next().await {
                let step = match listed {
                    Err(e) => Listed::ListFailed(e.to_string()),
                    Ok(object) => {
                        let key = object.key;
                        match selection.verdict(&prefix, &key) {
                            Verdict::Record | Verdict::Outside => Listed::Passed { key, why: None },
                            Verdict::NotAnEventKey => Listed::Passed { key, why: Some("not an archived event's key (is the --from prefix right?)".into()) },
                            Verdict::Selected(_) if object.size == 0 => Listed::Passed { key, why: Some("empty".into()) },
                            // What the functions' payload store refuses to read; not an event.
                            Verdict::Selected(_) if object.size > DEFAULT_MAX_PAYLOAD_BYTES => Listed::Passed {
                                key,
                                why: Some(format!("{} bytes, over the {DEFAULT_MAX_PAYLOAD_BYTES} bytes the functions read from a pointer", object.size)),
                            },
                            Verdict::Selected(_) => Listed::Send { key, size: object.size },
                        }
                    }
                };
                let stop = matches!(step, Listed::ListFailed(_));
                if tx.send(step).await.is_err() || stop {
                    break;
                }
            }
        })
    };

    let mut totals = Totals::default();
    let mut checkpoint = args.checkpoint.as_deref().map(|path| CheckpointFile::new(path, &from));
    // The last key up to which everything was sent or passed; frozen at the first failure.
    let mut handled: Option<String> = None;
    let mut failed_once = false;
    while let Some(first) = rx.recv().await {
        let mut round = vec![first];
        while round.len() < ROUND {
            match rx.try_recv() {
                Ok(listed) => round.push(listed),
                Err(_) => break,
            }
        }
        let messages: Vec<OutgoingMessage> = round
            .iter()
            .filter_map(|listed| match listed {
                Listed::Send { key, size } => Some(pointer_message(&bucket, key, *size, &from, fifo)),
                _ => None,
            })
            .collect();
        let mut results = target.send(&messages).await.into_iter();
        for listed in round {
            let (key, ok) = match listed {
                Listed::Send { key, .. } => {
                    totals.selected += 1;
                    progress.inc(1);
                    match results.next() {
                        Some(Ok(_)) => {
                            totals.sent += 1;
                            (key, true)
                        }
                        Some(Err(why)) => {
                            crate::say(&progress, &format!("failed {key}: {why}"));
                            (key, false)
                        }
                        None => {
                            crate::say(&progress, &format!("failed {key}: no answer from {} for its message", target.name()));
                            (key, false)
                        }
                    }
                }
                Listed::Passed { key, why } => {
                    totals.listed_only += 1;
                    if let Some(why) = why {
                        totals.skipped += 1;
                        progress.inc(1);
                        crate::say(&progress, &format!("skipped {key}: not an audit event: {why}"));
                    }
                    (key, true)
                }
                Listed::ListFailed(error) => {
                    totals.list_failed = true;
                    failed_once = true;
                    crate::say(&progress, &format!("failed: {error}"));
                    continue;
                }
            };
            if !ok {
                totals.failed += 1;
                failed_once = true;
            }
            if !failed_once {
                handled = Some(key);
            }
        }
        if let (Some(file), Some(key)) = (&mut checkpoint, &handled) {
            file.save(key, false).with_context(|| format!("--checkpoint {}", file.path.display()))?;
        }
        progress.set_message(format!("{} sent", totals.sent));
    }
    lister.await?;
    if let Some(counter) = counter {
        counter.abort();
    }
    if let (Some(file), Some(key)) = (&mut checkpoint, &handled) {
        file.save(key, true).with_context(|| format!("--checkpoint {}", file.path.display()))?;
    }
    progress.finish_and_clear();

    let failed = totals.failed + u64::from(totals.list_failed);
    println!(
        "{} listed, {} selected, {} sent as pointers to {from}, {} skipped (not events), {failed} failed -> {}",
        totals.selected + totals.listed_only,
        totals.selected + totals.skipped,
        totals.sent,
        totals.skipped,
        target.name()
    );
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

#[derive(Default)]
struct Totals {
    /// Objects whose pointer was to be sent.
    selected: u64,
    sent: u64,
    failed: u64,
    /// Listed and not sent: records, outside the selection, not events.
    listed_only: u64,
    /// Named and skipped as not events.
    skipped: u64,
    list_failed: bool,
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
        Err(e) => Some(format!(
            "warning: cannot tell whether {at} keeps deleted objects ({}); make sure no consumer of these messages deletes a pointer's payload \
             (docs/operations.md, \"Replay by pointer\")",
            classify(AwsCall::s3("GetBucketVersioning", &at), &e)
        )),
    };
    if let Some(warning) = warning {
        crate::say(progress, &warning);
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
