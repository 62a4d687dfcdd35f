//! The Azure destinations.
//!
//! - [`blob_store`]: Azure Blob Storage as an [`crate::destination::ObjectStore`] — one block blob
//!   per event, create-only, the same names as the S3 keys. Signed by hand with
//!   [`shared_key`] (or a SAS token); the account comes from [`connection`].
//! - [`monitor_sink`]: the Azure Monitor Logs Ingestion API as a [`crate::destination::LogSink`]
//!   — gzip'd JSON arrays of [`monitor_rows`] to a data collection rule's stream, with an
//!   [`entra_token`] client-credentials token.
//!
//! Why no Azure SDK crate: the official `azure_storage_blob` (1.x) authorizes only with Entra ID
//! tokens (no Shared Key, so it cannot talk to Azurite with the account key), needs a newer Rust
//! than this workspace's minimum and brings `azure_core`/`typespec` with it; the older
//! `azure_storage_blobs` 0.21 is unmaintained. We need one call per destination (Put Blob; one
//! POST plus a token request), so `reqwest` with a small, fully tested signer is lighter and
//! keeps retries in the one shared policy.

pub mod blob_store;
pub mod connection;
pub mod entra_token;
pub mod monitor_rows;
pub mod monitor_sink;
pub mod shared_key;

use std::time::Duration;

use reqwest::header::HeaderMap;

/// How long the server asked us to wait: `x-ms-retry-after-ms` / `retry-after-ms` (milliseconds,
/// Azure's own) before the standard `Retry-After` (seconds or an HTTP date).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    for name in ["x-ms-retry-after-ms", "retry-after-ms"] {
        if let Some(ms) = headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok()) {
            return Some(Duration::from_millis(ms));
        }
    }
    headers.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(crate::retry::parse_retry_after)
}

/// Why an Azure destination cannot be set up at cold start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The HTTP client of the Azure destinations: built once per cold start and shared. No request
/// timeout here (each call sets its own); a connect timeout so that a black-holed endpoint fails
/// as transient quickly.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(50))
        .user_agent(concat!("auditstream/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Whether an `http://` URL may be used: only for loopback hosts (Azurite, local fakes). Anything
/// that leaves the machine must be `https://`.
pub(crate) fn is_loopback_http(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
    url.scheme() == "http"
        && (host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()))
}

/// Up to `max` characters of a server's message, on one line.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    let mut out: String = line.chars().take(max).collect();
    if line.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_prefers_azures_milliseconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("x-ms-retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        let mut h = HeaderMap::new();
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for (url, ok) in [
            ("http://127.0.0.1:10000/devstoreaccount1", true),
            ("http://localhost:8080", true),
            ("http://[::1]:80", true),
            ("http://example.com", false),
            ("http://10.0.0.1", false),
            ("https://127.0.0.1", false),
        ] {
            assert_eq!(is_loopback_http(&reqwest::Url::parse(url).unwrap()), ok, "{url}");
        }
    }

    #[test]
    fn one_line_is_the_first_non_empty_line_cut_to_length() {
        assert_eq!(one_line("\n  first line  \nsecond", 5), "first…");
    }
}
