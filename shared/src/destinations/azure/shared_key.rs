//! Azure Storage Shared Key authorization (Blob service, version 2009-09-19 and later), as
//! described on Microsoft's "Authorize with Shared Key" page:
//!
//! ```text
//! StringToSign = VERB + "\n" + Content-Encoding + "\n" + Content-Language + "\n" +
//!                Content-Length + "\n" +   (empty when 0)
//!                Content-MD5 + "\n" + Content-Type + "\n" + Date + "\n" +
//!                If-Modified-Since + "\n" + If-Match + "\n" + If-None-Match + "\n" +
//!                If-Unmodified-Since + "\n" + Range + "\n" +
//!                CanonicalizedHeaders + CanonicalizedResource
//! Authorization: SharedKey <account>:Base64(HMAC-SHA256(Base64Decode(key), UTF-8(StringToSign)))
//! ```
//!
//! The canonicalized resource is `/` + account + the URL path *as sent*. With a path-style
//! endpoint (Azurite: `http://127.0.0.1:10000/devstoreaccount1/container/blob`) the path already
//! holds the account, so it appears twice: `/devstoreaccount1/devstoreaccount1/container/blob`.
//! Signing the exact path of the request gets this right for both endpoint styles without a
//! special case.
//!
//! Pure: no clock and no I/O; the caller puts `x-ms-date` among the headers.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A storage account key, decoded. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountKey(Vec<u8>);

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountKey(<redacted>)")
    }
}

/// Why a text is not an account key. Never quotes the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadAccountKey {
    #[error("an account key is base64 (the 88 characters shown under Access keys in the portal), but this is not valid base64")]
    NotBase64,
    #[error("an account key is base64 of at least 16 bytes, but this decodes to {0} bytes")]
    TooShort(usize),
}

impl AccountKey {
    pub fn from_base64(text: &str) -> Result<AccountKey, BadAccountKey> {
        let bytes = BASE64.decode(text.trim()).map_err(|_| BadAccountKey::NotBase64)?;
        // Real keys are 64 bytes; anything very short is a mistake (a name, a placeholder).
        if bytes.len() < 16 {
            return Err(BadAccountKey::TooShort(bytes.len()));
        }
        Ok(AccountKey(bytes))
    }
}

/// An account name with its key: signs requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedKeyCredential {
    pub account: String,
    key: AccountKey,
}

/// The parts of a request that Shared Key signs.
#[derive(Debug, Clone, Copy)]
pub struct RequestToSign<'a> {
    /// `PUT`, `GET`…
    pub method: &'a str,
    /// The URL path exactly as sent (percent-encoded), starting with `/`.
    pub path: &'a str,
    /// Query parameters, names and values URL-decoded.
    pub query: &'a [(&'a str, &'a str)],
    /// Every header the request carries (`x-ms-date` included); names in any case.
    pub headers: &'a [(&'a str, &'a str)],
}

/// The standard headers, in string-to-sign order.
const STANDARD_HEADERS: [&str; 11] = [
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
];

impl SharedKeyCredential {
    pub fn new(account: impl Into<String>, key: AccountKey) -> Self {
        SharedKeyCredential { account: account.into(), key }
    }

    /// The `Authorization` header value: `SharedKey account:signature`.
    pub fn authorization(&self, request: &RequestToSign<'_>) -> String {
        format!("SharedKey {}:{}", self.account, self.signature(&string_to_sign(&self.account, request)))
    }

    /// Base64 of HMAC-SHA256 of `string_to_sign` under the account key.
    pub fn signature(&self, string_to_sign: &str) -> String {
        // HMAC accepts a key of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key.0).expect("HMAC takes keys of any length");
        mac.update(string_to_sign.as_bytes());
        BASE64.encode(mac.finalize().into_bytes())
    }
}

/// The string to sign for `request` on `account`.
pub fn string_to_sign(account: &str, request: &RequestToSign<'_>) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(&request.method.to_ascii_uppercase());
    out.push('\n');
    for name in STANDARD_HEADERS {
        let value = header(request.headers, name).unwrap_or("");
        // Versions 2015-02-21 and later sign a zero Content-Length as an empty string.
        let value = if name == "content-length" && value.trim() == "0" { "" } else { value };
        out.push_str(value);
        out.push('\n');
    }
    out.push_str(&canonicalized_headers(request.headers));
    out.push_str(&canonicalized_resource(account, request.path, request.query));
    out
}

/// The value of the first header named `name` (case-insensitive).
fn header<'a>(headers: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
}

/// Every `x-ms-` header, names lower-cased and sorted, values trimmed with runs of whitespace
/// made one space, repeated headers comma-joined; each as `name:value\n`.
pub fn canonicalized_headers(headers: &[(&str, &str)]) -> String {
    let mut ms: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let name = name.trim().to_ascii_lowercase();
        if !name.starts_with("x-ms-") {
            continue;
        }
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        match ms.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            None => ms.push((name, value)),
        }
    }
    ms.sort_by(|a, b| a.0.cmp(&b.0));
    ms.into_iter().map(|(n, v)| format!("{n}:{v}\n")).collect()
}

/// `/account/path`, then for each query parameter (names lower-cased and sorted; the values of a
/// repeated parameter sorted and comma-joined) `\nname:value`.
pub fn canonicalized_resource(account: &str, path: &str, query: &[(&str, &str)]) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let mut out = format!("/{account}{path}");
    let mut params: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, value) in query {
        let name = name.to_ascii_lowercase();
        match params.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => params.push((name, vec![value])),
        }
    }
    params.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, mut values) in params {
        values.sort_unstable();
        out.push('\n');
        out.push_str(&name);
        out.push(':');
        out.push_str(&values.join(","));
    }
    out
}

/// Percent-encodes a blob name for the URL path: everything but `A–Z a–z 0–9 - . _ ~` and `/`.
/// Object keys may contain `%` (key parts are percent-encoded), which must travel as `%25` so the
/// blob's name is the key itself.
pub fn encode_blob_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Azurite's well-known development key (public, documented by Microsoft).
    const DEV_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    fn put_blob_headers() -> Vec<(&'static str, &'static str)> {
        vec![
            ("Content-Type", "application/json"),
            ("Content-Length", "27"),
            ("If-None-Match", "*"),
            ("x-ms-version", "2025-11-05"),
            ("x-ms-date", "Wed, 25 Nov 2026 21:00:00 GMT"),
            ("x-ms-blob-type", "BlockBlob"),
        ]
    }

    #[test]
    fn put_blob_string_to_sign_reads_like_the_documentation() {
        let headers = put_blob_headers();
        let request = RequestToSign { method: "put", path: "/devstoreaccount1/audit/5/jobs/7/x.json", query: &[], headers: &headers };
        assert_eq!(
            string_to_sign("devstoreaccount1", &request),
            concat!(
                "PUT\n",
                "\n",                 // Content-Encoding
                "\n",                 // Content-Language
                "27\n",               // Content-Length
                "\n",                 // Content-MD5
                "application/json\n", // Content-Type
                "\n",                 // Date (x-ms-date is used)
                "\n\n",               // If-Modified-Since, If-Match
                "*\n",                // If-None-Match
                "\n\n",               // If-Unmodified-Since, Range
                "x-ms-blob-type:BlockBlob\n",
                "x-ms-date:Wed, 25 Nov 2026 21:00:00 GMT\n",
                "x-ms-version:2025-11-05\n",
                // path-style: the account twice
                "/devstoreaccount1/devstoreaccount1/audit/5/jobs/7/x.json",
            )
        );
    }

    #[test]
    fn zero_content_length_is_signed_empty() {
        let headers = [("Content-Length", "0"), ("x-ms-date", "d")];
        let s = string_to_sign("acct", &RequestToSign { method: "GET", path: "/c", query: &[], headers: &headers });
        assert!(s.starts_with("GET\n\n\n\n"), "{s:?}");
    }

    #[test]
    fn canonicalized_headers_are_lowercased_sorted_trimmed_and_joined() {
        let headers = [
            ("X-MS-Version", " 2025-11-05 "),
            ("Content-Type", "application/json"),
            ("x-ms-meta-b", "two   words\there"),
            ("x-ms-date", "Wed, 25 Nov 2026 21:00:00 GMT"),
            ("x-ms-meta-b", "again"),
            ("X-Ms-Meta-A", "1"),
        ];
        assert_eq!(
            canonicalized_headers(&headers),
            "x-ms-date:Wed, 25 Nov 2026 21:00:00 GMT\nx-ms-meta-a:1\nx-ms-meta-b:two words here,again\nx-ms-version:2025-11-05\n"
        );
        assert_eq!(canonicalized_headers(&[("Content-Type", "x")]), "");
    }

    #[test]
    fn canonicalized_resource_as_in_the_documentation() {
        // Microsoft's examples: list containers, and a container with a query.
        assert_eq!(canonicalized_resource("myaccount", "/", &[("comp", "list")]), "/myaccount/\ncomp:list");
        assert_eq!(
            canonicalized_resource("myaccount", "/mycontainer", &[("restype", "container"), ("comp", "metadata")]),
            "/myaccount/mycontainer\ncomp:metadata\nrestype:container"
        );
        assert_eq!(
            canonicalized_resource(
                "myaccount",
                "/mycontainer",
                &[("Comp", "list"), ("include", "snapshots"), ("include", "metadata"), ("include", "uncommittedblobs")]
            ),
            "/myaccount/mycontainer\ncomp:list\ninclude:metadata,snapshots,uncommittedblobs"
        );
        // virtual-host style vs path style (the emulator)
        assert_eq!(canonicalized_resource("acct", "/c/b.json", &[]), "/acct/c/b.json");
        assert_eq!(canonicalized_resource("devstoreaccount1", "/devstoreaccount1/c/b.json", &[]), "/devstoreaccount1/devstoreaccount1/c/b.json");
        assert_eq!(canonicalized_resource("acct", "", &[]), "/acct/");
    }

    #[test]
    fn blob_names_are_percent_encoded_for_the_path() {
        assert_eq!(
            encode_blob_path("5/jobs/7/20221020/j-1/5-7-j-1-20221020053046-succeeded.json"),
            "5/jobs/7/20221020/j-1/5-7-j-1-20221020053046-succeeded.json"
        );
        assert_eq!(encode_blob_path("a b/%2E/ü?#"), "a%20b/%252E/%C3%BC%3F%23");
    }

    #[test]
    fn account_keys_must_be_base64_and_are_never_shown() {
        let key = AccountKey::from_base64(DEV_KEY).unwrap();
        assert_eq!(key.0.len(), 64);
        assert_eq!(format!("{key:?}"), "AccountKey(<redacted>)");
        let cred = SharedKeyCredential::new("devstoreaccount1", key);
        assert!(!format!("{cred:?}").contains("Eby8"));
        assert_eq!(AccountKey::from_base64("not base64!").unwrap_err(), BadAccountKey::NotBase64);
        assert_eq!(AccountKey::from_base64("c2hvcnQ=").unwrap_err(), BadAccountKey::TooShort(5));
    }

    /// The signature must equal one computed independently of this module: a few lines of Python
    /// that build the string to sign from Microsoft's description and sign it with the standard
    /// library's HMAC. Python is a prerequisite of the tests (`scripts/test`).
    #[test]
    fn signature_matches_an_independent_python_implementation() {
        let python = std::env::var("AUDITSTREAM_TEST_PYTHON").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "python3".into());
        const SCRIPT: &str = r#"
import base64, hashlib, hmac, sys
account, key, method, path, body_len = sys.argv[1:6]
headers = dict(h.split(":", 1) for h in sys.argv[6:])
std = ["Content-Encoding", "Content-Language", "Content-Length", "Content-MD5", "Content-Type", "Date",
       "If-Modified-Since", "If-Match", "If-None-Match", "If-Unmodified-Since", "Range"]
lines = [method]
for name in std:
    v = headers.get(name, "")
    lines.append("" if name == "Content-Length" and v == "0" else v)
ms = sorted((k.lower(), " ".join(v.split())) for k, v in headers.items() if k.lower().startswith("x-ms-"))
sts = "\n".join(lines) + "\n" + "".join(f"{k}:{v}\n" for k, v in ms) + "/" + account + path
sig = base64.b64encode(hmac.new(base64.b64decode(key), sts.encode("utf-8"), hashlib.sha256).digest()).decode()
print(f"SharedKey {account}:{sig}")
"#;
        let headers = put_blob_headers();
        let cases: [(&str, &str, &str); 3] = [
            ("devstoreaccount1", "PUT", "/devstoreaccount1/audit/5/jobs/7/20221020/j-1/5-7-j-1-20221020053046-succeeded.json"),
            ("contoso", "PUT", "/audit/ws%252E1/activities/x.json"),
            ("contoso", "PUT", "/audit/b"),
        ];
        for (account, method, path) in cases {
            let mut args =
                vec!["-c".to_owned(), SCRIPT.to_owned(), account.to_owned(), DEV_KEY.to_owned(), method.to_owned(), path.to_owned(), "27".to_owned()];
            args.extend(headers.iter().map(|(n, v)| format!("{n}:{v}")));
            let out = std::process::Command::new(&python).args(&args).output().unwrap_or_else(|e| {
                panic!("cannot run {python} to cross-check the signature ({e}): install Python 3 or run the tests with scripts/test, which sets AUDITSTREAM_TEST_PYTHON")
            });
            assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
            let expected = String::from_utf8(out.stdout).unwrap().trim().to_owned();
            let cred = SharedKeyCredential::new(account, AccountKey::from_base64(DEV_KEY).unwrap());
            let ours = cred.authorization(&RequestToSign { method, path, query: &[], headers: &headers });
            assert_eq!(ours, expected, "{path}");
        }
    }

    /// A fixed vector, so that a change to this module shows up even where Python is missing. The
    /// signature was computed once, by hand, in Python (`base64(hmac.new(b64decode(key), sts,
    /// sha256))`) from the literal string to sign of `put_blob_string_to_sign_reads_like_the_documentation`
    /// with the path `/devstoreaccount1/audit/b`.
    #[test]
    fn signature_of_a_known_put_blob_request() {
        let headers = put_blob_headers();
        let cred = SharedKeyCredential::new("devstoreaccount1", AccountKey::from_base64(DEV_KEY).unwrap());
        let auth = cred.authorization(&RequestToSign { method: "PUT", path: "/devstoreaccount1/audit/b", query: &[], headers: &headers });
        assert_eq!(auth, KNOWN_PUT_BLOB_AUTHORIZATION);
    }

    const KNOWN_PUT_BLOB_AUTHORIZATION: &str = "SharedKey devstoreaccount1:16HAzlAZHjH+2IFbeLLplLzv8Aev+B3JB9Z3IiXM7CI=";
}
