//! Azurite (the Azure Storage emulator) for the Azure Blob tests: containers, listings and blobs,
//! read back with requests signed by the development account's key — which Azurite checks, so a
//! helper that signs wrongly fails loudly too.

use std::time::SystemTime;

use auditstream::destinations::azure::connection::DEV_ACCOUNT_KEY;
use auditstream::destinations::azure::shared_key::{AccountKey, RequestToSign, SharedKeyCredential};

use crate::services::{azurite_blob_endpoint, unique_name, AZURITE_ACCOUNT};

const VERSION: &str = auditstream::destinations::azure::blob_store::BLOB_API_VERSION;

/// The running Azurite's blob service.
pub struct Azurite {
    /// `http://127.0.0.1:PORT/devstoreaccount1`.
    pub endpoint: reqwest::Url,
    http: reqwest::Client,
    credential: SharedKeyCredential,
}

/// A blob as Azurite returns it.
#[derive(Debug, Clone)]
pub struct StoredBlob {
    pub content_type: String,
    pub etag: String,
    pub body: Vec<u8>,
}

impl Azurite {
    /// Panics, saying how to start it, when Azurite is not running.
    pub fn from_env() -> Azurite {
        let endpoint = reqwest::Url::parse(&azurite_blob_endpoint()).unwrap_or_else(|e| panic!("Azurite endpoint: {e}"));
        // No idle connections kept: a test may block its runtime for a minute (building a binary, running
        // one), long past Azurite's 5 s keep-alive, and a pooled connection Azurite has closed meanwhile
        // fails the next request with "error sending request".
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap_or_else(|e| panic!("HTTP client: {e}"));
        Azurite { endpoint, http, credential: dev_credential() }
    }

    /// Creates a container with a unique name and returns the name.
    pub async fn create_container(&self, prefix: &str) -> String {
        let name = unique_name(prefix);
        let response = self.send(reqwest::Method::PUT, &name, &[("restype", "container")]).await;
        assert_eq!(response.status().as_u16(), 201, "creating container {name} in Azurite at {}: {}", self.endpoint, response.text().await.unwrap_or_default());
        name
    }

    /// The names of every blob in `container`, sorted.
    pub async fn list_blobs(&self, container: &str) -> Vec<String> {
        let response = self.send(reqwest::Method::GET, container, &[("restype", "container"), ("comp", "list")]).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, 200, "listing container {container}: {text}");
        let mut names = Vec::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("<Name>") {
            let after = &rest[start + 6..];
            let Some(end) = after.find("</Name>") else { break };
            names.push(after[..end].replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&"));
            rest = &after[end..];
        }
        names.sort();
        names
    }

    /// Reads a blob; panics if it is not there.
    pub async fn get_blob(&self, container: &str, name: &str) -> StoredBlob {
        let path = format!("{container}/{}", auditstream::destinations::azure::shared_key::encode_blob_path(name));
        let response = self.send(reqwest::Method::GET, &path, &[]).await;
        let status = response.status().as_u16();
        let header = |n: &str| response.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let (content_type, etag) = (header("content-type"), header("etag"));
        let body = response.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        assert_eq!(status, 200, "reading blob {name} of {container}: {}", String::from_utf8_lossy(&body));
        StoredBlob { content_type, etag, body }
    }

    /// An account SAS token for the blob service and objects, with `permissions` (e.g. `cw`),
    /// valid for a day, signed with the development key (Azurite checks it).
    pub fn account_sas(&self, permissions: &str) -> String {
        let expiry = iso8601(SystemTime::now() + std::time::Duration::from_secs(86_400));
        // Account SAS string to sign, version 2020-12-06 and later (Microsoft's "Create an account SAS").
        let to_sign = format!("{AZURITE_ACCOUNT}\n{permissions}\nb\no\n\n{expiry}\n\nhttp,https\n{VERSION}\n\n");
        let sig = self.credential.signature(&to_sign);
        let enc = |s: &str| {
            s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect::<String>()
        };
        format!("sv={VERSION}&ss=b&srt=o&sp={permissions}&se={}&spr=http,https&sig={}", enc(&expiry), enc(&sig))
    }

    /// Sends a signed request for `path` (container[/blob], already URL-encoded) under the account.
    async fn send(&self, method: reqwest::Method, path: &str, query: &[(&str, &str)]) -> reqwest::Response {
        let mut url = self.endpoint.clone();
        url.set_path(&format!("{}/{path}", self.endpoint.path().trim_end_matches('/')));
        if !query.is_empty() {
            url.set_query(Some(&query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")));
        }
        let date = httpdate::fmt_http_date(SystemTime::now());
        let headers = [("x-ms-date", date.as_str()), ("x-ms-version", VERSION)];
        let auth = self.credential.authorization(&RequestToSign { method: method.as_str(), path: url.path(), query, headers: &headers });
        let mut request = self.http.request(method, url.clone()).header("authorization", auth);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send().await.unwrap_or_else(|e| panic!("request to Azurite at {url}: {e}"))
    }
}

/// The development account's credential.
pub fn dev_credential() -> SharedKeyCredential {
    SharedKeyCredential::new(AZURITE_ACCOUNT, AccountKey::from_base64(DEV_ACCOUNT_KEY).unwrap_or_else(|e| panic!("{e}")))
}

/// `2026-11-26T21:00:00Z` for a time.
fn iso8601(t: SystemTime) -> String {
    let nanos = t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    auditstream::pipeline::timestamp::Now { epoch_nanos: nanos }.iso8601_seconds()
}
