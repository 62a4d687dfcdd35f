//! The Azure Blob health check. With Shared Key: Get Container Properties (the endpoint answers,
//! the key is accepted, the container exists), then the store's own create-only Put Blob of a
//! probe, then Get Blob to read it back. A SAS token for writing (`sp=cw`) may read neither the
//! container's properties nor a blob, so with a SAS the probe write alone proves access.

use std::time::{Duration, Instant, SystemTime};

use super::{auth_failure, AzureBlobStore, BlobContext, StorageError, BLOB_API_VERSION};
use crate::delivery::health::{HealthReport, Step, Verdict};
use crate::destinations::azure::connection::BlobAuth;
use crate::destinations::azure::shared_key::RequestToSign;
use crate::pipeline::key::ObjectKey;

/// Time for one check call.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// A signed GET of `url` (its query as `query`): the status and the service's error, if any.
async fn signed_get(store: &AzureBlobStore, url: reqwest::Url, query: &[(&str, &str)]) -> Result<(u16, StorageError, bytes::Bytes), String> {
    let BlobAuth::SharedKey(cred) = &store.auth else {
        return Err("not signed with Shared Key".to_owned());
    };
    let date = httpdate::fmt_http_date(SystemTime::now());
    let headers: [(&str, &str); 2] = [("x-ms-date", &date), ("x-ms-version", BLOB_API_VERSION)];
    let authorization = cred.authorization(&RequestToSign { method: "GET", path: url.path(), query, headers: &headers });
    let mut redactor = store.redactor.clone();
    redactor.add_secret(&authorization);
    let mut request = store.http.get(url).timeout(CALL_TIMEOUT).header("authorization", authorization);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(|e| {
        format!(
            "cannot reach {}: {} (check the endpoint in AZURE_STORAGE_CONNECTION_STRING or AUDITSTREAM_AZURE_BLOB_ENDPOINT, DNS and the network path)",
            store.endpoint_for_message(),
            crate::delivery::transport::transport_failure(&e)
        )
    })?;
    let status = response.status().as_u16();
    let header_code = response.headers().get("x-ms-error-code").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.bytes().await.unwrap_or_default();
    let error = if status < 300 { StorageError::default() } else { StorageError::parse(header_code, &body, &|text| redactor.quote(text, b"", 200)) };
    Ok((status, error, body))
}

pub(super) async fn access(store: &AzureBlobStore, report: &mut HealthReport) {
    if matches!(store.auth, BlobAuth::Sas(_)) {
        report.skip(Step::Reachability, "a SAS token for writing (sp=cw) may not read the container's properties: the probe write proves access");
        return;
    }
    let mut url = store.endpoint.clone();
    url.set_path(&format!("{}/{}", store.endpoint.path().trim_end_matches('/'), store.container));
    url.set_query(Some("restype=container"));
    let where_ = format!("{}/{}", store.endpoint_for_message(), store.container);
    let started = Instant::now();
    let answer = signed_get(store, url, &[("restype", "container")]).await;
    let elapsed = started.elapsed();
    let (status, error) = match answer {
        Ok((status, error, _)) => (status, error),
        Err(detail) => return report.record(Step::Reachability, Verdict::Failed, detail, elapsed),
    };
    let what = format!("{where_}: Get Container Properties: HTTP {status}{}{}", if error.code.is_empty() { "" } else { " " }, error.code);
    let said = if error.message.is_empty() { String::new() } else { format!(" ({})", error.message) };
    let ctx = BlobContext { account: &store.account, container: &store.container, location: where_.clone(), sas: false };
    match status {
        200 => {
            report.record(Step::Reachability, Verdict::Passed, format!("container {where_} answers"), elapsed);
            report.record(Step::Authentication, Verdict::Passed, format!("the account key of {} is accepted", store.account), Duration::ZERO);
        }
        401 | 403 => {
            report.record(Step::Reachability, Verdict::Passed, format!("{} answers", store.endpoint_for_message()), elapsed);
            let detail = auth_failure(&what, &said, &error, &ctx).err().map(|e| e.message).unwrap_or_default();
            report.record(Step::Authentication, Verdict::Failed, detail, Duration::ZERO);
        }
        404 => report.record(
            Step::Reachability,
            Verdict::Failed,
            format!(
                "{what}: container {} does not exist in account {}: create it (az storage container create --name {} --account-name {}) or fix AUDITSTREAM_AZURE_BLOB_CONTAINER",
                store.container, store.account, store.container, store.account
            ),
            elapsed,
        ),
        _ => report.record(Step::Reachability, Verdict::Failed, format!("{what}{said}"), elapsed),
    }
}

pub(super) async fn read_back(store: &AzureBlobStore, key: &ObjectKey, body: &[u8]) -> Option<Result<String, String>> {
    if matches!(store.auth, BlobAuth::Sas(_)) {
        return None;
    }
    let mut url = store.blob_url(key);
    url.set_query(None);
    let location = store.location(key);
    Some(match signed_get(store, url, &[]).await {
        Ok((200, _, found)) if found.as_ref() == body => Ok(format!("probe read back ({} bytes)", found.len())),
        Ok((200, _, _)) => Err(format!("{location}: the probe reads back different from what was written")),
        Ok((status, error, _)) => Err(format!("{location}: Get Blob: HTTP {status} {}: the probe was written but cannot be read back", error.code)),
        Err(detail) => Err(detail),
    })
}
