//! The Azure destinations.
//!
//! - [`blob_store`]: Azure Blob Storage as an [`crate::delivery::destination::ObjectStore`] — one block blob
//!   per event, create-only, the same names as the S3 keys. Signed by hand with
//!   [`shared_key`] (or a SAS token); the account comes from [`connection`].
//! - [`monitor_sink`]: the Azure Monitor Logs Ingestion API as a [`crate::delivery::destination::LogSink`]
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
    headers.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(crate::delivery::retry::parse_retry_after)
}

/// The HTTP client of the Azure destinations (Blob, Logs Ingestion, Entra ID): the shared one of
/// [`crate::delivery::transport::http_client`], which follows no redirect. Built once per cold start and
/// shared. No request timeout here (each call sets its own); a connect timeout so that a
/// black-holed endpoint fails as transient quickly.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    crate::delivery::transport::http_client(crate::delivery::transport::ClientOptions {
        timeout: None,
        connect_timeout: Duration::from_secs(10),
        https_only: false,
    })
}

/// The first non-empty line of a server's message (Azure appends `RequestId:`, `Time:`, `Trace
/// ID:` lines), to be quoted through [`crate::redact::Redactor::quote`].
pub(crate) fn first_line(text: &str) -> &str {
    text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("")
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
    fn first_line_is_the_first_non_empty_line() {
        assert_eq!(first_line("\n  first line  \nsecond"), "first line");
    }
}

/// Every Azure client refuses a redirect: the host it points to gets no request, and the error
/// says why.
#[cfg(test)]
mod redirect_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use axum::http::{header::LOCATION, StatusCode, Uri};
    use axum::response::IntoResponse;

    use super::blob_store::AzureBlobStore;
    use super::connection::{BlobAuth, SasToken};
    use super::entra_token::{EntraTokenSource, MONITOR_SCOPE};
    use super::monitor_sink::{AzureMonitorSink, MonitorSettings};
    use crate::delivery::destination::{LogSink, ObjectStore};
    use crate::delivery::retry::FailureKind;
    use crate::secret::Secret;

    const CLIENT_SECRET: &str = "client-SECRET-0d1e";
    const SAS: &str = "sv=2025-11-05&sp=cw&sig=SAS-SECRET-SIG";

    /// A listener that counts the requests it gets (it must get none).
    async fn elsewhere() -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("the bound address"));
        let app = axum::Router::new().fallback(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { (StatusCode::OK, r#"{"token_type":"Bearer","expires_in":3599,"access_token":"stolen"}"#) }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, hits)
    }

    /// A service that answers every request with 307 to `target` (the same path), except token
    /// requests when `tokens` is set.
    async fn redirecting_to(target: String, tokens: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("the bound address"));
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let target = target.clone();
            async move {
                if tokens && uri.path().ends_with("/oauth2/v2.0/token") {
                    return (StatusCode::OK, r#"{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ0.eyJ0.sig"}"#).into_response();
                }
                (StatusCode::TEMPORARY_REDIRECT, [(LOCATION, format!("{target}{uri}"))], "").into_response()
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    fn token_url(base: &str) -> reqwest::Url {
        reqwest::Url::parse(&format!("{base}/tenant/oauth2/v2.0/token")).unwrap()
    }

    fn assert_refused(err: &crate::delivery::retry::DeliveryError, hits: &AtomicUsize) {
        assert_eq!(err.kind, FailureKind::Permanent, "{err}");
        assert!(err.message.contains("HTTP 307") && err.message.contains("redirects are not followed"), "{err}");
        assert!(!err.message.contains("SECRET"), "{err}");
        assert_eq!(hits.load(Ordering::SeqCst), 0, "the redirect was followed: {err}");
    }

    #[tokio::test]
    async fn the_entra_client_secret_is_not_posted_again_to_where_a_redirect_points() {
        let (target, hits) = elsewhere().await;
        let authority = redirecting_to(target, false).await;
        let tokens = EntraTokenSource::new(super::http_client().unwrap(), token_url(&authority), "client".into(), Secret::new(CLIENT_SECRET), MONITOR_SCOPE);
        let err = tokens.token().await.expect_err("a 307 is no token");
        assert_refused(&err, &hits);
        assert!(err.message.contains("AZURE_AUTHORITY_HOST"), "{err}");
    }

    #[tokio::test]
    async fn a_blob_put_with_a_sas_token_is_not_sent_on_by_a_redirect() {
        let (target, hits) = elsewhere().await;
        let endpoint = redirecting_to(target, false).await;
        let store = AzureBlobStore::new(
            super::http_client().unwrap(),
            reqwest::Url::parse(&endpoint).unwrap(),
            Some("acct".into()),
            BlobAuth::Sas(SasToken::parse(SAS).unwrap()),
            "audit".into(),
        );
        let key = crate::pipeline::key::ObjectKey::for_event(
            &crate::pipeline::event::EventMeta::Job(crate::pipeline::event::JobMeta {
                id: "j-1".into(),
                recipe_id: "7".into(),
                status: "ok".into(),
                user_id: "5".into(),
                time: crate::pipeline::timestamp::UtcTime::from_epoch_seconds(0),
            }),
            crate::pipeline::key::KeyLayout::Standard,
            &crate::pipeline::key::KeyPrefix::default(),
            b"",
        );
        let err = store.put_new(&key, bytes::Bytes::from_static(b"{}")).await.expect_err("a 307 is no write");
        assert_refused(&err, &hits);
    }

    #[tokio::test]
    async fn logs_ingestion_with_a_bearer_token_is_not_sent_on_by_a_redirect() {
        let (target, hits) = elsewhere().await;
        let service = redirecting_to(target, true).await;
        let http = super::http_client().unwrap();
        let tokens = EntraTokenSource::new(http.clone(), token_url(&service), "client".into(), Secret::new(CLIENT_SECRET), MONITOR_SCOPE);
        let settings = MonitorSettings { endpoint: reqwest::Url::parse(&service).unwrap(), dcr_id: "dcr-0a".into(), stream: "Custom-T_CL".into() };
        let sink = AzureMonitorSink::new(http, &settings, tokens);
        let doc = crate::destinations::rest::test_docs::job_doc("j-1", "2024-05-01T10:15:30Z", r#"{"id":"j-1"}"#);
        let err = sink.send(&[&doc]).await.expect_err("a 307 is no delivery");
        assert_refused(&err, &hits);
        assert!(err.message.contains("AUDITSTREAM_AZURE_MONITOR_ENDPOINT"), "{err}");
    }
}
