//! `--to DEST`: which destination the command-line tool delivers to, built from the same shared
//! adapters and `AUDITSTREAM_*` settings as the Lambda functions.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use auditstream::aws::s3::s3_client;
use auditstream::config::{PipelineSettings, ProcessEnv};
use auditstream::delivery::destination::{Destination, ObjectStoreDestination};
use auditstream::delivery::log_batching::LogSinkDestination;
use auditstream::delivery::retry::RetryPolicy;
use auditstream::destinations::azure::blob_store::AzureBlobStore;
use auditstream::destinations::azure::connection::BlobSettings;
use auditstream::destinations::azure::entra_token::EntraSettings;
use auditstream::destinations::azure::monitor_sink::{AzureMonitorSink, MonitorSettings};
use auditstream::destinations::dir::DirStore;
use auditstream::destinations::rest::{http::HttpLogSink, RestSettings};
use auditstream::destinations::s3::{S3Settings, S3Store};
use auditstream::pipeline::key::KeyPrefix;

/// A parsed `--to` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestSpec {
    /// `dir:PATH`: files laid out exactly as the object keys.
    Dir(PathBuf),
    /// `s3://BUCKET[/PREFIX]`.
    S3 { bucket: String, prefix: String },
    /// `rest`: the REST destination configured by `AUDITSTREAM_REST_*` (any preset).
    Rest,
    /// `https://…`: the generic REST preset, POSTing to that URL.
    Url(String),
    /// `azure-blob`: Azure Blob Storage, configured as the azure-blob-writer function.
    AzureBlob,
    /// `azure-monitor`: Azure Monitor Logs Ingestion, configured as the azure-monitor-forwarder function.
    AzureMonitor,
}

pub const DEST_HELP: &str = "expected dir:PATH, s3://BUCKET[/PREFIX], rest (configured by AUDITSTREAM_REST_*), https://URL, azure-blob (configured by AZURE_STORAGE_CONNECTION_STRING or AUDITSTREAM_AZURE_BLOB_*) or azure-monitor (configured by AZURE_* and AUDITSTREAM_AZURE_MONITOR_*)";

impl DestSpec {
    pub fn parse(text: &str) -> Result<DestSpec> {
        if let Some(path) = text.strip_prefix("dir:") {
            if path.is_empty() {
                bail!("--to {text:?}: the directory is missing ({DEST_HELP})");
            }
            return Ok(DestSpec::Dir(PathBuf::from(path)));
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                bail!("--to {text:?}: the bucket is missing ({DEST_HELP})");
            }
            return Ok(DestSpec::S3 { bucket: bucket.to_owned(), prefix: prefix.to_owned() });
        }
        if text == "rest" {
            return Ok(DestSpec::Rest);
        }
        if text == "azure-blob" {
            return Ok(DestSpec::AzureBlob);
        }
        if text == "azure-monitor" {
            return Ok(DestSpec::AzureMonitor);
        }
        // The URL is checked when the destination is built (https, or http on loopback only).
        if text.starts_with("https://") || text.starts_with("http://") {
            return Ok(DestSpec::Url(text.to_owned()));
        }
        // Shown without user info or query: a mistyped URL may still hold a token.
        bail!("--to {:?} is not a destination: {DEST_HELP}", auditstream::redact::url_text_for_message(text))
    }
}

/// Builds the destination, and sets the key prefix it implies on the pipeline settings.
pub async fn build(spec: &DestSpec, settings: &mut PipelineSettings) -> Result<Arc<dyn Destination>> {
    let retry = RetryPolicy::default();
    Ok(match spec {
        DestSpec::Dir(path) => Arc::new(ObjectStoreDestination::new(DirStore::new(path), settings.concurrency, retry)),
        DestSpec::S3 { bucket, prefix } => {
            let env = [("AUDITSTREAM_S3_BUCKET", bucket.as_str()), ("AUDITSTREAM_S3_PREFIX", prefix.as_str())];
            let mut s3 = S3Settings::from_env(&env[..]).context("--to s3://")?;
            s3.sse_kms_key_id = auditstream::config::EnvExt::optional(&ProcessEnv, "AUDITSTREAM_S3_SSE_KMS_KEY_ID");
            settings.pipeline.key_prefix = KeyPrefix::new(prefix).map_err(anyhow::Error::msg)?;
            let aws = aws_config::load_from_env().await;
            Arc::new(ObjectStoreDestination::new(S3Store::new(s3_client(&aws), s3), settings.concurrency, retry))
        }
        DestSpec::Rest | DestSpec::Url(_) => {
            let rest = match spec {
                DestSpec::Url(url) => RestSettings::for_url(&ProcessEnv, url).context("--to URL")?,
                _ => RestSettings::from_env(&ProcessEnv, settings.pipeline.template.as_ref()).context("--to rest")?,
            };
            Arc::new(LogSinkDestination::new(HttpLogSink::from_settings(rest).await?, settings.concurrency, retry))
        }
        DestSpec::AzureBlob => {
            let blob = BlobSettings::from_env(&ProcessEnv).context("--to azure-blob")?;
            let (store, prefix) = AzureBlobStore::connect(blob, None).await.context("--to azure-blob")?;
            settings.pipeline.key_prefix = prefix;
            Arc::new(ObjectStoreDestination::new(store, settings.concurrency, retry))
        }
        DestSpec::AzureMonitor => {
            let monitor = MonitorSettings::from_env(&ProcessEnv).context("--to azure-monitor")?;
            let entra = EntraSettings::from_env(&ProcessEnv).context("--to azure-monitor")?;
            let sink = AzureMonitorSink::connect(&monitor, &entra, None).await.context("--to azure-monitor")?;
            Arc::new(LogSinkDestination::new(sink, settings.concurrency, retry))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(DestSpec::parse("dir:./audit-logs").unwrap(), DestSpec::Dir("./audit-logs".into()));
        assert_eq!(DestSpec::parse("s3://bucket").unwrap(), DestSpec::S3 { bucket: "bucket".into(), prefix: "".into() });
        assert_eq!(DestSpec::parse("s3://bucket/a/b/").unwrap(), DestSpec::S3 { bucket: "bucket".into(), prefix: "a/b/".into() });
        assert_eq!(DestSpec::parse("rest").unwrap(), DestSpec::Rest);
        assert_eq!(DestSpec::parse("azure-blob").unwrap(), DestSpec::AzureBlob);
        assert_eq!(DestSpec::parse("azure-monitor").unwrap(), DestSpec::AzureMonitor);
        assert_eq!(DestSpec::parse("https://logs.example.com/in").unwrap(), DestSpec::Url("https://logs.example.com/in".into()));
        for bad in ["dir:", "s3://", "ftp://x", "./audit-logs", "REST"] {
            let err = DestSpec::parse(bad).unwrap_err().to_string();
            assert!(err.contains("expected dir:PATH"), "{bad}: {err}");
        }
    }
}
