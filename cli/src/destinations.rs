//! `--to DEST`: which destination the command-line tool delivers to, built from the same shared
//! adapters and `AUDITSTREAM_*` settings as the Lambda functions.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use auditstream::aws::s3::{valid_bucket_name, BUCKET_NAME_EXPECTED};
use auditstream::config::{PipelineSettings, ProcessEnv};
use auditstream::delivery::destination::Destination;
use auditstream::destinations::azure::blob_store::AzureBlobStore;
use auditstream::destinations::azure::monitor_sink::AzureMonitorSink;
use auditstream::destinations::dir::DirStore;
use auditstream::destinations::rest::{http::HttpLogSink, RestSettings};
use auditstream::destinations::s3::{S3Settings, S3Store};
use auditstream::destinations::Setup;
use auditstream::pipeline::key::KeyPrefix;

/// A parsed `--to` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestSpec {
    /// `dir:PATH`: files laid out exactly as the object keys.
    Dir(PathBuf),
    /// `s3://BUCKET[/PREFIX]`.
    S3 { bucket: String, prefix: KeyPrefix },
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
        if let Some(path) = parse_dir_url("--to", text, DEST_HELP)? {
            return Ok(DestSpec::Dir(path));
        }
        if let Some((bucket, prefix)) = parse_s3_url("--to", text, DEST_HELP)? {
            return Ok(DestSpec::S3 { bucket, prefix });
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

/// `dir:PATH` as the directory; `None` for text that is not a `dir:` URL. `flag` and `expected` are
/// for messages.
pub fn parse_dir_url(flag: &str, text: &str, expected: &str) -> Result<Option<PathBuf>> {
    let Some(path) = text.strip_prefix("dir:") else { return Ok(None) };
    if path.is_empty() {
        bail!("{flag} {text:?}: the directory is missing ({expected})");
    }
    Ok(Some(PathBuf::from(path)))
}

/// `s3://BUCKET[/PREFIX]` as the bucket and the key prefix, checked as the s3-writer checks its
/// settings; `None` for text that is not an `s3://` URL. `flag` and `expected` are for messages.
pub fn parse_s3_url(flag: &str, text: &str, expected: &str) -> Result<Option<(String, KeyPrefix)>> {
    let Some(rest) = text.strip_prefix("s3://") else { return Ok(None) };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("{flag} {text:?}: the bucket is missing ({expected})");
    }
    if !valid_bucket_name(bucket) {
        bail!("{flag} {text:?}: {bucket:?} is not a bucket name: expected {BUCKET_NAME_EXPECTED}");
    }
    let prefix = KeyPrefix::new(prefix).map_err(|e| anyhow::anyhow!("{flag} {text:?}: the key prefix {prefix:?} is not valid: {e}"))?;
    Ok(Some((bucket.to_owned(), prefix)))
}

/// Builds the destination with the same setup entries as the functions, and the pipeline that
/// feeds it (with the destination's key prefix).
pub async fn build(spec: &DestSpec, settings: &PipelineSettings) -> Result<Setup<Arc<dyn Destination>>> {
    Ok(match spec {
        DestSpec::Dir(path) => DirStore::setup(settings, path).shared(),
        DestSpec::S3 { bucket, prefix } => {
            let s3 = S3Settings::for_bucket(&ProcessEnv, bucket.clone(), prefix.clone())?;
            S3Store::setup(s3, settings, &aws_config::load_from_env().await).shared()
        }
        DestSpec::Url(url) => {
            let rest = RestSettings::for_url(&ProcessEnv, "--to", url)?;
            HttpLogSink::setup(rest, settings, None).await?.shared()
        }
        DestSpec::Rest => HttpLogSink::from_env(&ProcessEnv, settings, None).await.context("--to rest")?.shared(),
        DestSpec::AzureBlob => AzureBlobStore::from_env(&ProcessEnv, settings, None).await.context("--to azure-blob")?.shared(),
        DestSpec::AzureMonitor => AzureMonitorSink::from_env(&ProcessEnv, settings, None).await.context("--to azure-monitor")?.shared(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(DestSpec::parse("dir:./audit-logs").unwrap(), DestSpec::Dir("./audit-logs".into()));
        assert_eq!(DestSpec::parse("s3://bucket").unwrap(), DestSpec::S3 { bucket: "bucket".into(), prefix: KeyPrefix::default() });
        assert_eq!(DestSpec::parse("s3://bucket/a/b/").unwrap(), DestSpec::S3 { bucket: "bucket".into(), prefix: KeyPrefix::new("a/b/").unwrap() });
        assert_eq!(DestSpec::parse("s3://bucket/a/b").unwrap(), DestSpec::S3 { bucket: "bucket".into(), prefix: KeyPrefix::new("a/b/").unwrap() });
        assert_eq!(DestSpec::parse("rest").unwrap(), DestSpec::Rest);
        assert_eq!(DestSpec::parse("azure-blob").unwrap(), DestSpec::AzureBlob);
        assert_eq!(DestSpec::parse("azure-monitor").unwrap(), DestSpec::AzureMonitor);
        assert_eq!(DestSpec::parse("https://logs.example.com/in").unwrap(), DestSpec::Url("https://logs.example.com/in".into()));
        for bad in ["dir:", "s3://", "ftp://x", "./audit-logs", "REST"] {
            let err = DestSpec::parse(bad).unwrap_err().to_string();
            assert!(err.contains("expected dir:PATH"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_directory_is_dir_and_a_path_for_to_and_from_alike() {
        assert_eq!(parse_dir_url("--from", "dir:/var/audit", "expected dir:PATH").unwrap(), Some(PathBuf::from("/var/audit")));
        assert_eq!(parse_dir_url("--from", "s3://audit", "expected dir:PATH").unwrap(), None);
        let err = parse_dir_url("--from", "dir:", "expected dir:PATH").unwrap_err().to_string();
        assert_eq!(err, "--from \"dir:\": the directory is missing (expected dir:PATH)");
    }

    #[test]
    fn an_s3_destination_is_checked_as_the_s3_writer_checks_its_settings_and_named_as_typed() {
        let err = DestSpec::parse("s3://Audit_Logs/x").unwrap_err().to_string();
        assert_eq!(
            err,
            "--to \"s3://Audit_Logs/x\": \"Audit_Logs\" is not a bucket name: expected a bucket name (3-63 lowercase letters, digits, dots and hyphens), without s3:// or a path"
        );
        let err = DestSpec::parse("s3://audit-logs/../up").unwrap_err().to_string();
        assert!(err.starts_with("--to \"s3://audit-logs/../up\": the key prefix \"../up\" is not valid: "), "{err}");
        // what was faked as AUDITSTREAM_S3_* before is not named: the user typed --to
        assert!(!err.contains("AUDITSTREAM_S3"), "{err}");
    }

    #[tokio::test]
    async fn a_directory_has_no_key_prefix() {
        let settings = PipelineSettings::from_env(&[][..]).unwrap();
        let dir = build(&DestSpec::parse("dir:/tmp/x").unwrap(), &settings).await.unwrap();
        assert_eq!(dir.pipeline.config.key_prefix, KeyPrefix::default());
        assert_eq!(dir.destination.describe(), auditstream::delivery::destination::ObjectStore::describe(&DirStore::new("/tmp/x")));
    }
}
