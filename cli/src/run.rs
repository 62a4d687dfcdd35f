//! `auditstream run`: local files through the shared pipeline to a destination.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::input::{expand_inputs, BatchShape, InputBatch, InputBatches};
use anyhow::Result;
use auditstream::config::{PipelineSettings, ProcessEnv};
use auditstream::delivery::process::{process_batch, Outcome};
use auditstream::delivery::retry::Deadline;
use auditstream::report::metrics::Counts;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use crate::destinations::{self, DestSpec};

pub async fn run(to: &str, inputs: &[PathBuf]) -> Result<ExitCode> {
    let spec = DestSpec::parse(to)?;
    let settings = PipelineSettings::from_env(&ProcessEnv)?;
    settings.log_warnings();
    let setup = destinations::build(&spec, &settings).await?;
    let (pipeline, destination) = (Arc::new(setup.pipeline), setup.destination);

    let shape = BatchShape::for_max_event_bytes(settings.pipeline.max_event_bytes);
    let (files, problems) = expand_inputs(inputs);
    let total_bytes: u64 = files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    let progress = ProgressBar::new(total_bytes).with_style(
        ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {wide_bar} {elapsed} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    // Files are read on a blocking thread, one batch ahead of delivery, so memory stays bounded.
    let (tx, rx) = tokio::sync::mpsc::channel::<InputBatch>(2);
    let reader = tokio::task::spawn_blocking(move || {
        for batch in InputBatches::new(files, shape) {
            if tx.blocking_send(batch).is_err() {
                break;
            }
        }
    });

    let mut counts = Counts::default();
    // Inputs that could not be read count as read and failed.
    let mut unreadable = problems.len() as u64;
    for p in &problems {
        crate::progress::say(&progress, &format!("failed {}: {}", p.id, p.message));
    }
    let described = destination.describe();
    let mut batches = tokio_stream_from(rx)
        .map(|batch| {
            let pipeline = Arc::clone(&pipeline);
            let destination = Arc::clone(&destination);
            async move {
                let report = process_batch(&pipeline, destination.as_ref(), batch.messages, Deadline::NONE).await;
                (report, batch.problems, batch.bytes_read)
            }
        })
        .buffered(2);
    while let Some((report, problems, bytes_read)) = batches.next().await {
        progress.inc(bytes_read);
        for p in &problems {
            unreadable += 1;
            crate::progress::say(&progress, &format!("failed {}: {}", p.id, p.message));
        }
        for (id, outcome) in &report.outcomes {
            if let Outcome::Failed(f) = outcome {
                let kind = if f.is_permanent() { "" } else { " (transient)" };
                crate::progress::say(&progress, &format!("failed {id}{kind}: {f}"));
            }
        }
        counts.add(&report.counts);
        progress.set_message(format!("{} written", counts.written));
    }
    progress.finish_and_clear();
    reader.await?;

    let failed = unreadable + counts.failed();
    println!(
        "{} read, {} written, {} duplicates, {} filtered, {} masked lines, {} truncated, {} failed -> {}",
        counts.received + unreadable,
        counts.written,
        counts.duplicates,
        counts.filtered,
        counts.masked_lines,
        counts.truncated,
        failed,
        described
    );
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// A receiver as a stream.
fn tokio_stream_from<T: Send + 'static>(mut rx: tokio::sync::mpsc::Receiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
