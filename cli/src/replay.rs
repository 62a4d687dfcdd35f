//! `auditstream replay`: an archive's events back through the pipeline to a destination
//! (`docs/operations.md`, "Replay"). The archive is listed in key order and only read; what is
//! sent is chosen from the keys ([`auditstream::intake::replay::select`]), each object is turned
//! back into its event ([`auditstream::intake::replay::body`]) and delivered with
//! [`process_batch`], exactly as `run` delivers.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use auditstream::aws::s3::s3_client;
use auditstream::config::{PipelineSettings, ProcessEnv};
use auditstream::delivery::process::{process_batch, InboundMessage, Outcome};
use auditstream::delivery::retry::Deadline;
use auditstream::intake::replay::body::event_body;
use auditstream::intake::replay::select::{Checkpoint, Selection, Verdict};
use auditstream::intake::replay::{ArchiveLocation, ArchiveSource, ArchivedObject};
use auditstream::pipeline::key::KeyPrefix;
use auditstream::report::metrics::Counts;
use clap::{ArgGroup, Args};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

mod queue;

use crate::destinations::{self, parse_dir_url, parse_s3_url, DestSpec};
use crate::input::BatchShape;

pub const LONG_ABOUT: &str = "Send archived events again: from an archive written by the s3-writer function or by \
auditstream run --to, to a destination (--to, from this machine), or to a queue or topic for the deployed functions \
(--queue, --topic, for millions of events).\n\n\
SELECTION. The archive is listed in key order (S3's ListObjectsV2; a dir: archive is walked in the same order) and \
only read: nothing in it is written, changed or deleted. What is sent is chosen from the keys alone: --stream jobs, \
activities or other (the key's second segment; several separated by commas; all by default); --since (inclusive) \
and --until (exclusive) compare the time in the object's name, in UTC: a date means midnight UTC \
(--since 2024-03-01 --until 2024-04-01 is March), a date and time is to the second (2024-03-01T12:00:00Z, or with \
an offset such as +02:00). An event filed by date alone counts as at midnight of its date folder. auditstream's own \
records under PREFIX_auditstream/ (manifests, digests, health probes) are never sent; any other key that is not an \
event's is named on stderr and skipped.\n\n\
DELIVERY. Each object is read back as the event it holds and goes through the pipeline as `run` sends it: the \
target's AUDITSTREAM_* filters, template and limits apply, and masking an archived (already masked) event changes \
nothing. An archive written with a log message template is read back with --unwrap FIELD (the template's field \
holding the event, as an object or as JSON text; a.b for a field in a field). An object that is not an audit event \
(not UTF-8, not one JSON object, no such field, larger than AUDITSTREAM_MAX_EVENT_BYTES plus 1 MiB) is named on \
stderr and skipped, never sent. --concurrency objects are read, and deliveries made, at a time (default: \
AUDITSTREAM_CONCURRENCY, 16).\n\n\
BY POINTER. With --queue URL or --topic ARN (an s3:// archive only), nothing is delivered here: each selected object \
is read and checked as above (one that is not an audit event is named on stderr and skipped, never sent; --concurrency \
objects at a time, only their keys kept), and each event becomes one message whose body is an Amazon SQS Extended \
Client pointer to the archived object itself (no copy), with the ExtendedPayloadSize attribute and auditstream-replay \
(the archive), sent 10 per SendMessageBatch (SNS: PublishBatch) request, several requests at a time; the deployed \
functions (or auditstream poll) read each object again and deliver it with their own settings. The functions need \
s3:GetObject on the archive (the template's ReplaySourceBucket parameter; ReplaySourceKmsKeyArn for a \
customer-managed KMS key). No \
consumer of these messages may delete a pointer's payload: AWS's Java Extended Client does so by default, which \
would delete the archived object; replay warns when the archive bucket has neither versioning nor Object Lock \
(docs/operations.md, \"Replay by pointer\"). An object that could not be read, or whose message could not be sent, \
is named and counts as failed.\n\n\
CHECKPOINT. --checkpoint FILE records the last key up to which everything was handled (delivered, a duplicate, \
filtered or skipped; with --queue or --topic: sent or skipped), written atomically every fraction of a second and at the end. A replay run again with the \
same file continues after that key; a failed event stops the checkpoint before it, so a rerun tries it again \
(objects a create-only destination already holds then count as duplicates, never written twice). The file names \
the archive: it is refused for another --from. Remove it to start from the beginning.\n\n\
Prints progress on a terminal (objects, rate, ETA), each failure and skipped object on stderr, and a summary on \
stdout. Exits 0 when every selected event was delivered, duplicate, filtered or skipped as not an event; 1 when \
any failed (an object that could not be read counts: one in S3 Glacier Flexible Retrieval or Deep Archive must be \
restored first; or the listing failed); 2 on a usage or configuration error.";

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("target").required(true).args(["to", "queue", "topic"])))]
pub struct ReplayArgs {
    /// The archive: s3://BUCKET[/PREFIX] or dir:PATH.
    #[arg(long, value_name = "ARCHIVE")]
    pub from: String,
    /// Only events at or after this date (midnight UTC) or date and time (2024-03-01T12:00:00Z).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only events before this date (midnight UTC) or date and time.
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Only these streams: jobs, activities, other (repeat, or separate with commas).
    #[arg(long = "stream", value_name = "STREAM")]
    pub streams: Vec<String>,
    /// Deliver from this machine to DEST (the forms of `run --to`).
    #[arg(long, value_name = "DEST")]
    pub to: Option<String>,
    /// Send pointers to the archived objects to this SQS queue, for the deployed functions.
    #[arg(long, value_name = "URL")]
    pub queue: Option<String>,
    /// Send pointers to the archived objects to this SNS topic, for the deployed functions.
    #[arg(long, value_name = "ARN")]
    pub topic: Option<String>,
    /// Continue after the key this file records, and record progress in it.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Take the event from this field of each object (an archive written with a log message template).
    #[arg(long, value_name = "FIELD")]
    pub unwrap: Option<String>,
    /// Objects read (and, with --to, deliveries made) at a time (default: AUDITSTREAM_CONCURRENCY, 16).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub concurrency: Option<u16>,
}

/// What `--from` may be.
const FROM_EXPECTED: &str = "expected s3://BUCKET[/PREFIX] or dir:PATH, an archive written by the s3-writer function or by auditstream run --to";

/// `--from`: `s3://BUCKET[/PREFIX]` or `dir:PATH`.
pub fn parse_from(text: &str) -> Result<ArchiveLocation> {
    if let Some(path) = parse_dir_url("--from", text, FROM_EXPECTED)? {
        return Ok(ArchiveLocation::Dir(path));
    }
    if let Some((bucket, prefix)) = parse_s3_url("--from", text, FROM_EXPECTED)? {
        return Ok(ArchiveLocation::S3 { bucket, prefix });
    }
    bail!("--from {:?} is not an archive: {FROM_EXPECTED}", auditstream::redact::url_text_for_message(text))
}

/// The archive source for a location, with the standard AWS configuration for S3.
pub async fn source(location: ArchiveLocation) -> ArchiveSource {
    match location {
        ArchiveLocation::S3 { bucket, prefix } => ArchiveSource::s3(s3_client(&aws_config::load_from_env().await), bucket, prefix),
        ArchiveLocation::Dir(path) => ArchiveSource::dir(path),
    }
}

/// The progress bar (objects, rate, ETA) on a terminal; hidden otherwise.
fn progress_bar() -> ProgressBar {
    let progress = if std::io::stderr().is_terminal() { ProgressBar::new(0) } else { ProgressBar::hidden() };
    progress.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} objects {wide_bar} {per_sec} ETA {eta} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress
}

/// The bar's length: a second listing, of keys only, on a terminal alone (one LIST per 1,000
/// objects, against a GET per object).
fn count_for_progress(
    source: &Arc<ArchiveSource>,
    selection: &Arc<Selection>,
    progress: &ProgressBar,
    start_after: Option<String>,
) -> Option<tokio::task::JoinHandle<()>> {
    (!progress.is_hidden()).then(|| {
        let (source, selection, progress) = (Arc::clone(source), Arc::clone(selection), progress.clone());
        let mut listing = source.list(start_after);
        tokio::spawn(async move {
            let prefix = source.prefix();
            while let Some(Ok(object)) = listing.next().await {
                if matches!(selection.verdict(&prefix, &object.key), Verdict::Selected(_) | Verdict::NotAnEventKey) {
                    progress.inc_length(1);
                }
            }
        })
    })
}

/// One listed object, ready for delivery or settled already.
enum Step {
    /// An event to deliver, and its key; its body is empty unless [`ReadAhead::keep_bodies`].
    Event { key: String, size: u64, body: String },
    /// Not sent on purpose: a record or a key outside the selection (`why` is `None`: silent), or
    /// not an event (named on stderr); `selected` when its key was an event's.
    Passed { key: String, why: Option<String>, selected: bool },
    /// Selected, but the object could not be read.
    Unread { key: String, error: String },
    /// The listing failed: nothing after this point is known.
    ListFailed(String),
}

impl Step {
    fn bytes(&self) -> usize {
        match self {
            Step::Event { body, .. } => body.len(),
            _ => 0,
        }
    }
}

/// The largest object read as an event, and what sets it (said when one is skipped).
#[derive(Clone, Copy)]
struct SizeLimit {
    bytes: u64,
    why: &'static str,
}

/// The archive listed and each selected object read and checked ([`event_body`]), ahead of
/// what is done with it: both ways of replaying take the same rule of what is an event.
struct ReadAhead {
    /// Objects read at a time.
    concurrency: usize,
    /// Steps held ready, at most.
    queued: usize,
    limit: SizeLimit,
    unwrap: Option<String>,
    /// Whether each event's body is kept for delivery (`--to`), or only its size (by pointer).
    keep_bodies: bool,
}

impl ReadAhead {
    /// Starts listing after `start_after`: the steps, in key order, and the task making them.
    fn start(
        self,
        source: &Arc<ArchiveSource>,
        selection: &Arc<Selection>,
        start_after: Option<String>,
    ) -> (tokio::sync::mpsc::Receiver<Step>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = tokio::sync::mpsc::channel::<Step>(self.queued);
        let (source, selection) = (Arc::clone(source), Arc::clone(selection));
        let ahead = Arc::new(self);
        let reader = tokio::spawn(async move {
            let prefix = source.prefix();
            let steps = source
                .list(start_after)
                .map(|listed| {
                    let (source, selection, prefix, ahead) = (Arc::clone(&source), Arc::clone(&selection), prefix.clone(), Arc::clone(&ahead));
                    async move {
                        match listed {
                            Ok(object) => ahead.step(&source, &selection, &prefix, object).await,
                            Err(e) => Step::ListFailed(e.to_string()),
                        }
                    }
                })
                .buffered(ahead.concurrency);
            futures::pin_mut!(steps);
            while let Some(step) = steps.next().await {
                let stop = matches!(step, Step::ListFailed(_));
                if tx.send(step).await.is_err() || stop {
                    break;
                }
            }
        });
        (rx, reader)
    }

    /// What one listed object is: passed over by its key, skipped as not an event (named), an
    /// event, or unread.
    async fn step(&self, source: &ArchiveSource, selection: &Selection, prefix: &KeyPrefix, object: ArchivedObject) -> Step {
        let key = object.key;
        match selection.verdict(prefix, &key) {
            Verdict::Record | Verdict::Outside => Step::Passed { key, why: None, selected: false },
            Verdict::NotAnEventKey => Step::Passed { key, why: Some("not an archived event's key (is the --from prefix right?)".into()), selected: false },
            Verdict::Selected(_) if !object.regular => Step::Passed { key, why: Some("not a regular file".into()), selected: true },
            Verdict::Selected(_) if object.size > self.limit.bytes => {
                Step::Passed { key, why: Some(format!("{} bytes, over the {} bytes {}", object.size, self.limit.bytes, self.limit.why)), selected: true }
            }
            Verdict::Selected(_) => match source.read(&key, self.limit.bytes).await {
                Ok(bytes) => match event_body(bytes, self.unwrap.as_deref()) {
                    Ok(body) => {
                        let size = body.len() as u64;
                        Step::Event { key, size, body: if self.keep_bodies { body } else { String::new() } }
                    }
                    Err(why) => Step::Passed { key, why: Some(why.to_string()), selected: true },
                },
                Err(e) => Step::Unread { key, error: e.to_string() },
            },
        }
    }
}

pub async fn replay(args: ReplayArgs) -> Result<ExitCode> {
    let location = parse_from(&args.from)?;
    let selection = Selection::new(args.since.as_deref(), args.until.as_deref(), &args.streams)?;
    let Some(to) = &args.to else {
        // --queue or --topic: pointers to the archived objects, for the deployed functions.
        return queue::replay(&args, location, selection, progress_bar()).await;
    };
    let spec = DestSpec::parse(to)?;
    let mut settings = PipelineSettings::from_env(&ProcessEnv)?;
    if let Some(n) = args.concurrency {
        settings.concurrency = usize::from(n);
    }
    settings.log_warnings();
    let from = location.to_string();
    let resume = match &args.checkpoint {
        Some(path) => read_checkpoint(path, &from)?,
        None => None,
    };
    let setup = destinations::build(&spec, &settings).await?;
    let (pipeline, destination) = (setup.pipeline, setup.destination);
    let source = Arc::new(source(location).await);
    let selection = Arc::new(selection);
    let shape = BatchShape::for_max_event_bytes(settings.pipeline.max_event_bytes);
    let concurrency = settings.concurrency;

    let (mut tracker, start_after) = Tracker::start(progress_bar(), args.checkpoint.as_deref(), &from, resume, &source, &selection);
    let progress = tracker.progress.clone();

    // Objects are listed and read ahead of delivery, `concurrency` at a time, in key order, into a
    // channel as long: memory holds at most that many objects besides the batch being delivered.
    let limit = SizeLimit { bytes: shape.max_input_bytes, why: "an event may have here (AUDITSTREAM_MAX_EVENT_BYTES plus 1 MiB)" };
    let ahead = ReadAhead { concurrency, queued: concurrency, limit, unwrap: args.unwrap.clone(), keep_bodies: true };
    let (mut rx, reader) = ahead.start(&source, &selection, start_after);

    let described = destination.describe();
    let (mut counts, mut listed) = (Counts::default(), Listed::default());
    while let Some(first) = rx.recv().await {
        // A batch: what is ready now, within the shape `run` uses.
        let mut bytes = first.bytes();
        let mut batch = vec![first];
        while batch.len() < shape.max_messages && bytes < shape.max_bytes {
            match rx.try_recv() {
                Ok(step) => {
                    bytes += step.bytes();
                    batch.push(step);
                }
                Err(_) => break,
            }
        }
        let mut messages = Vec::new();
        for step in &mut batch {
            if let Step::Event { key, body, .. } = step {
                messages.push(InboundMessage::new(key.clone(), std::mem::take(body)));
            }
        }
        let report = process_batch(&pipeline, destination.as_ref(), messages, Deadline::NONE).await;
        counts.add(&report.counts);
        let mut outcomes = report.outcomes.into_iter();
        for step in batch {
            let Some(key) = tracker.event_or_settle(&mut listed, step) else { continue };
            let ok = match outcomes.next() {
                Some((_, Outcome::Failed(f))) => {
                    let kind = if f.is_permanent() { "" } else { " (transient)" };
                    crate::progress::say(&progress, &format!("failed {key}{kind}: {f}"));
                    false
                }
                Some(_) => true,
                None => false,
            };
            tracker.settled(key, ok);
        }
        tracker.save()?;
        progress.set_message(format!("{} written", counts.written));
    }
    tracker.finish(reader).await?;

    let c = &counts;
    let failed = c.failed() + listed.failed();
    println!(
        "{} listed, {} selected, {} written, {} duplicates, {} filtered, {} skipped (not events), {} masked lines, {} truncated, {} failed -> {described}",
        listed.listed(),
        listed.selected,
        c.written,
        c.duplicates,
        c.filtered,
        listed.skipped,
        c.masked_lines,
        c.truncated,
        failed,
    );
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// What the listing and the reading came to, counted alike by both ways of replaying.
#[derive(Default)]
struct Listed {
    /// Objects whose key is a selected event's (delivered or sent, skipped, or failed).
    selected: u64,
    /// Listed and not selected: records, outside the selection, keys not an event's.
    listed_only: u64,
    /// Named and skipped as not events.
    skipped: u64,
    /// Selected, and could not be read.
    unread: u64,
    list_failed: bool,
}

impl Listed {
    fn listed(&self) -> u64 {
        self.selected + self.listed_only
    }

    /// The failures before any delivery: objects that could not be read, and a failed listing.
    fn failed(&self) -> u64 {
        self.unread + u64::from(self.list_failed)
    }
}

/// What both ways of replaying (`--to`, and by pointer) keep while they go: the progress bar and
/// the listing that counts its length, and the checkpoint with the last key up to which
/// everything was handled, frozen at the first failure so that a rerun tries it again.
struct Tracker {
    progress: ProgressBar,
    counter: Option<tokio::task::JoinHandle<()>>,
    checkpoint: Option<CheckpointFile>,
    handled: Option<String>,
    failed_once: bool,
}

impl Tracker {
    /// Starts after `resume` (read from `checkpoint_path` for the archive `from`), saying so, and
    /// counts the bar's length; returns the key to list after.
    fn start(
        progress: ProgressBar,
        checkpoint_path: Option<&Path>,
        from: &str,
        resume: Option<Checkpoint>,
        source: &Arc<ArchiveSource>,
        selection: &Arc<Selection>,
    ) -> (Self, Option<String>) {
        if let Some(checkpoint) = &resume {
            crate::progress::say(
                &progress,
                &format!("continuing after {} (checkpoint {})", checkpoint.last_key, checkpoint_path.unwrap_or(Path::new("")).display()),
            );
        }
        let start_after = resume.map(|c| c.last_key);
        let counter = count_for_progress(source, selection, &progress, start_after.clone());
        let checkpoint = checkpoint_path.map(|path| CheckpointFile::new(path, from));
        (Tracker { progress, counter, checkpoint, handled: None, failed_once: false }, start_after)
    }

    /// The object at `key` is settled: handled (`ok`), or failed, which freezes the checkpoint.
    fn settled(&mut self, key: String, ok: bool) {
        self.failed_once |= !ok;
        if !self.failed_once {
            self.handled = Some(key);
        }
    }

    /// Counts `step` in `listed` and settles it, unless it is an event: that is returned, counted
    /// as selected, for the caller to deliver or send and then settle with [`Tracker::settled`].
    /// The rule for everything else (passed silently, skipped and named as not an event, unread,
    /// the listing failed) is the same for both ways of replaying.
    fn event_or_settle(&mut self, listed: &mut Listed, step: Step) -> Option<String> {
        let progress = &self.progress;
        let (key, ok) = match step {
            Step::Event { key, .. } => {
                listed.selected += 1;
                progress.inc(1);
                return Some(key);
            }
            Step::Passed { key, why, selected } => {
                listed.selected += u64::from(selected);
                listed.listed_only += u64::from(!selected);
                if let Some(why) = why {
                    listed.skipped += 1;
                    progress.inc(1);
                    crate::progress::say(progress, &format!("skipped {key}: not an audit event: {why}"));
                }
                (key, true)
            }
            Step::Unread { key, error } => {
                listed.selected += 1;
                listed.unread += 1;
                progress.inc(1);
                crate::progress::say(progress, &format!("failed {key}: {error}"));
                (key, false)
            }
            Step::ListFailed(error) => {
                listed.list_failed = true;
                crate::progress::say(progress, &format!("failed: {error}"));
                // Nothing after the last key handled is known.
                self.failed_once = true;
                return None;
            }
        };
        self.settled(key, ok);
        None
    }

    /// Records the last key handled, at most every [`CheckpointFile::EVERY`].
    fn save(&mut self) -> Result<()> {
        self.save_now(false)
    }

    fn save_now(&mut self, now: bool) -> Result<()> {
        if let (Some(file), Some(key)) = (&mut self.checkpoint, &self.handled) {
            file.save(key, now).with_context(|| format!("--checkpoint {}", file.path.display()))?;
        }
        Ok(())
    }

    /// The end: waits for the task reading ahead (`reader`), stops the counter, records the last key
    /// handled and clears the bar.
    async fn finish(mut self, reader: tokio::task::JoinHandle<()>) -> Result<()> {
        reader.await?;
        if let Some(counter) = self.counter.take() {
            counter.abort();
        }
        self.save_now(true)?;
        self.progress.finish_and_clear();
        Ok(())
    }
}

/// The checkpoint in `path` for the archive `from`, if the file exists.
fn read_checkpoint(path: &Path, from: &str) -> Result<Option<Checkpoint>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(Checkpoint::parse(&bytes, from).with_context(|| format!("--checkpoint {}", path.display()))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("--checkpoint {}: cannot read it", path.display())),
    }
}

/// The checkpoint file, written whole or not at all: a temporary file beside it, renamed over
/// it (a rename within a directory is atomic), at most every [`CheckpointFile::EVERY`] and at
/// the end.
struct CheckpointFile {
    path: PathBuf,
    from: String,
    saved: Option<(String, Instant)>,
}

impl CheckpointFile {
    const EVERY: Duration = Duration::from_millis(200);

    fn new(path: &Path, from: &str) -> Self {
        CheckpointFile { path: path.to_owned(), from: from.to_owned(), saved: None }
    }

    fn save(&mut self, last_key: &str, now: bool) -> Result<()> {
        match &self.saved {
            Some((key, _)) if key == last_key => return Ok(()),
            Some((_, at)) if !now && at.elapsed() < Self::EVERY => return Ok(()),
            _ => {}
        }
        let json = Checkpoint { from: self.from.clone(), last_key: last_key.to_owned() }.to_json();
        let mut temp = self.path.clone().into_os_string();
        temp.push(".tmp");
        let temp = PathBuf::from(temp);
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&temp).context("cannot write it")?;
            file.write_all(json.as_bytes()).context("cannot write it")?;
            file.sync_all().context("cannot write it")?;
        }
        std::fs::rename(&temp, &self.path).context("cannot replace it")?;
        self.saved = Some((last_key.to_owned(), Instant::now()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditstream::pipeline::key::KeyPrefix;

    #[test]
    fn an_archive_is_a_bucket_with_a_prefix_or_a_directory() {
        assert_eq!(parse_from("dir:./audit-logs").unwrap(), ArchiveLocation::Dir("./audit-logs".into()));
        assert_eq!(parse_from("s3://audit/workato").unwrap(), ArchiveLocation::S3 { bucket: "audit".into(), prefix: KeyPrefix::new("workato/").unwrap() });
        assert_eq!(parse_from("s3://audit").unwrap().to_string(), "s3://audit/");
        for bad in ["dir:", "s3://", "s3://Audit", "./audit-logs", "https://x"] {
            let err = parse_from(bad).unwrap_err().to_string();
            assert!(err.starts_with(&format!("--from {bad:?}")), "{err}");
        }
    }

    #[test]
    fn a_checkpoint_is_replaced_whole_and_read_back_for_its_own_archive_only() {
        let dir = std::env::temp_dir().join(format!("auditstream-checkpoint-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("replay.checkpoint");
        assert_eq!(read_checkpoint(&path, "dir:a").unwrap(), None, "no file: from the beginning");
        let mut file = CheckpointFile::new(&path, "dir:a");
        file.save("1/jobs/a", true).unwrap();
        file.save("1/jobs/b", false).unwrap();
        assert_eq!(read_checkpoint(&path, "dir:a").unwrap().unwrap().last_key, "1/jobs/a", "not again within the interval");
        file.save("1/jobs/b", true).unwrap();
        assert_eq!(read_checkpoint(&path, "dir:a").unwrap().unwrap().last_key, "1/jobs/b");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left");
        let err = format!("{:#}", read_checkpoint(&path, "dir:b").unwrap_err());
        assert!(err.contains("was written by a replay from dir:a, not from dir:b"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
