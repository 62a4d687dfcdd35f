//! Which storage account the Blob writer talks to, and how it authorizes: parsed from the
//! environment once at cold start. Pure: a secret held in AWS Secrets Manager is named here and
//! fetched by [`super::secrets`].
//!
//! Either Azure's own connection string —
//!
//! | variable | meaning |
//! |---|---|
//! | `AZURE_STORAGE_CONNECTION_STRING` | `DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…;EndpointSuffix=core.windows.net`, or with `BlobEndpoint=…` and/or `SharedAccessSignature=…`, or `UseDevelopmentStorage=true` (Azurite on `127.0.0.1:10000`) |
//!
//! — or our variables (setting both ways is an error, so it is always clear which one is used):
//!
//! | variable | meaning |
//! |---|---|
//! | `AUDITSTREAM_AZURE_BLOB_ACCOUNT` | the storage account name |
//! | `AUDITSTREAM_AZURE_BLOB_ENDPOINT` | default `https://ACCOUNT.blob.core.windows.net`; a path-style URL such as `http://127.0.0.1:10000/devstoreaccount1` for Azurite |
//! | `AUDITSTREAM_AZURE_BLOB_KEY` | the account key (base64), for local runs |
//! | `AUDITSTREAM_AZURE_BLOB_SAS` | a SAS token (`sv=…&sig=…`, with or without the leading `?`), for local runs |
//! | `AUDITSTREAM_AZURE_BLOB_KEY_SECRET_ARN` | an AWS Secrets Manager secret holding either of those (read once per cold start) |
//!
//! Exactly one of the last three. What a secret holds is told apart by its shape (see
//! [`parse_secret_value`]): a SAS token is a query string, so it has `&` between its parameters
//! and `sig=` among them, while an account key is base64, which has neither `&` nor `?`. A JSON
//! secret (the Secrets Manager console's key/value form) is read for an `AccountKey` or
//! `SharedAccessSignature` member, the connection-string names.
//!
//! In both ways: `AUDITSTREAM_AZURE_BLOB_CONTAINER` (required) and `AUDITSTREAM_AZURE_BLOB_PREFIX`
//! (key prefix, as `AUDITSTREAM_S3_PREFIX`). Plain `http://` endpoints are accepted for loopback
//! hosts only.

use crate::config::{ConfigError, Env, EnvExt};
use crate::pipeline::key::KeyPrefix;

use super::shared_key::{AccountKey, SharedKeyCredential};
use crate::secret::Secret;

/// Azurite's development account, documented by Microsoft (not a secret).
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
pub const DEV_ACCOUNT_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
pub const DEV_BLOB_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

const CONNECTION_STRING: &str = "AZURE_STORAGE_CONNECTION_STRING";
const ACCOUNT: &str = "AUDITSTREAM_AZURE_BLOB_ACCOUNT";
const ENDPOINT: &str = "AUDITSTREAM_AZURE_BLOB_ENDPOINT";
const KEY: &str = "AUDITSTREAM_AZURE_BLOB_KEY";
const SAS: &str = "AUDITSTREAM_AZURE_BLOB_SAS";
const KEY_SECRET_ARN: &str = "AUDITSTREAM_AZURE_BLOB_KEY_SECRET_ARN";
const CONTAINER: &str = "AUDITSTREAM_AZURE_BLOB_CONTAINER";
const PREFIX: &str = "AUDITSTREAM_AZURE_BLOB_PREFIX";

/// A SAS token: the query string, without the leading `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SasToken(Secret);

impl SasToken {
    /// Accepts `?sv=…&sig=…` or `sv=…&sig=…`. The reason for a refusal never quotes the value.
    pub fn parse(text: &str) -> Result<SasToken, String> {
        let token = text.trim().trim_start_matches('?');
        let has_sig = token.split('&').any(|p| p.starts_with("sig=") && p.len() > 4);
        if !has_sig {
            return Err("a SAS token is a query string with a `sig=` parameter (e.g. `sv=…&se=…&sp=cw&sig=…`), but this has none".into());
        }
        if token.contains(char::is_whitespace) {
            return Err("a SAS token contains no whitespace".into());
        }
        Ok(SasToken(Secret::new(token)))
    }

    pub fn query(&self) -> &str {
        self.0.expose()
    }
}

/// How requests are authorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobAuth {
    SharedKey(SharedKeyCredential),
    Sas(SasToken),
}

/// Where the credential is: at hand, or in AWS Secrets Manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobAuthSource {
    Ready(BlobAuth),
    /// A secret ARN (from `var`) holding an account key or a SAS token.
    SecretArn {
        var: &'static str,
        arn: String,
    },
}

/// The storage account and container to write to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobSettings {
    /// The account name; `None` only with a SAS token and an explicit endpoint, where it is not needed.
    pub account: Option<String>,
    /// The blob service endpoint, without a trailing `/`: `https://acct.blob.core.windows.net` or
    /// `http://127.0.0.1:10000/devstoreaccount1`.
    pub endpoint: reqwest::Url,
    pub auth: BlobAuthSource,
    pub container: String,
    pub prefix: KeyPrefix,
}

impl BlobSettings {
    pub fn from_env(env: &(impl Env + ?Sized)) -> Result<Self, ConfigError> {
        let container = env.required(CONTAINER, "set it to the name of the blob container audit events are written to")?;
        if let Err(why) = check_container_name(&container) {
            return Err(ConfigError::Invalid { var: CONTAINER, value: container, expected: why.into() });
        }
        let prefix = crate::config::key_prefix(env, PREFIX)?;
        let (account, endpoint, auth) = match env.optional(CONNECTION_STRING) {
            Some(text) => {
                if let Some(other) = [ACCOUNT, ENDPOINT, KEY, SAS, KEY_SECRET_ARN].into_iter().find(|v| env.optional(v).is_some()) {
                    return Err(ConfigError::Invalid {
                        var: other,
                        value: "(set)".into(),
                        expected: format!("unset when {CONNECTION_STRING} is set: configure the account one way only"),
                    });
                }
                let parsed = parse_connection_string(&text).map_err(|reason| ConfigError::InvalidSecret { var: CONNECTION_STRING, reason })?;
                (parsed.account, parsed.endpoint, BlobAuthSource::Ready(parsed.auth))
            }
            None => from_variables(env)?,
        };
        Ok(BlobSettings { account, endpoint, auth, container, prefix })
    }

    /// Whether AWS credentials are needed to finish (a secret to fetch).
    pub fn needs_secret(&self) -> Option<(&'static str, &str)> {
        match &self.auth {
            BlobAuthSource::SecretArn { var, arn } => Some((var, arn)),
            BlobAuthSource::Ready(_) => None,
        }
    }
}

fn from_variables(env: &(impl Env + ?Sized)) -> Result<(Option<String>, reqwest::Url, BlobAuthSource), ConfigError> {
    let account = env.required(ACCOUNT, "set it to the storage account name, or set AZURE_STORAGE_CONNECTION_STRING instead")?;
    if !valid_account_name(&account) {
        return Err(ConfigError::Invalid { var: ACCOUNT, value: account, expected: "a storage account name: 3-24 lowercase letters and digits".into() });
    }
    let endpoint_text = env.optional(ENDPOINT).unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
    let endpoint = parse_endpoint(&endpoint_text).map_err(|why| ConfigError::Invalid {
        var: ENDPOINT,
        value: crate::redact::url_text_for_message(&endpoint_text),
        expected: why,
    })?;
    let given: Vec<&'static str> = [KEY, SAS, KEY_SECRET_ARN].into_iter().filter(|v| env.optional(v).is_some()).collect();
    let auth = match given.as_slice() {
        [] => {
            return Err(ConfigError::Missing { var: KEY_SECRET_ARN, hint: "set it to the ARN of a Secrets Manager secret holding the account key or a SAS token (or, for local runs, AUDITSTREAM_AZURE_BLOB_KEY or AUDITSTREAM_AZURE_BLOB_SAS)" })
        }
        [KEY] => {
            let key = AccountKey::from_base64(&env.optional(KEY).unwrap_or_default()).map_err(|e| ConfigError::InvalidSecret { var: KEY, reason: e.to_string() })?;
            BlobAuthSource::Ready(BlobAuth::SharedKey(SharedKeyCredential::new(account.clone(), key)))
        }
        [SAS] => BlobAuthSource::Ready(BlobAuth::Sas(SasToken::parse(&env.optional(SAS).unwrap_or_default()).map_err(|reason| ConfigError::InvalidSecret { var: SAS, reason })?)),
        [KEY_SECRET_ARN] => {
            let arn = env.optional(KEY_SECRET_ARN).unwrap_or_default();
            if !arn.starts_with("arn:") || !arn.contains(":secretsmanager:") {
                return Err(ConfigError::Invalid { var: KEY_SECRET_ARN, value: arn, expected: "a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)".into() });
            }
            BlobAuthSource::SecretArn { var: KEY_SECRET_ARN, arn }
        }
        several => {
            return Err(ConfigError::Invalid { var: several[1], value: "(set)".into(), expected: format!("only one of {KEY}, {SAS}, {KEY_SECRET_ARN} set, but {} are", several.join(" and ")) });
        }
    };
    Ok((Some(account), endpoint, auth))
}

/// The credential a secret holds (see the module docs for how key and SAS are told apart).
pub fn parse_secret_value(account: Option<&str>, text: &str) -> Result<BlobAuth, String> {
    let text = text.trim();
    if text.starts_with('{') {
        let fields: std::collections::HashMap<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|_| "the secret starts with `{` but is not a JSON object".to_owned())?;
        let find = |name: &str| fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str());
        return match (find("AccountKey"), find("SharedAccessSignature")) {
            (Some(key), None) => parse_secret_value(account, key),
            (None, Some(sas)) => SasToken::parse(sas).map(BlobAuth::Sas),
            _ => Err("a JSON secret must have exactly one of the members AccountKey or SharedAccessSignature (a string)".into()),
        };
    }
    if text.starts_with('?') || text.contains('&') || text.contains("sig=") && !is_base64(text) {
        return SasToken::parse(text).map(BlobAuth::Sas);
    }
    let key =
        AccountKey::from_base64(text).map_err(|e| format!("the secret is neither a SAS token (a query string with `&` and `sig=`) nor an account key: {e}"))?;
    let account = account.ok_or("the secret holds an account key, which needs the account name (AUDITSTREAM_AZURE_BLOB_ACCOUNT)")?;
    Ok(BlobAuth::SharedKey(SharedKeyCredential::new(account, key)))
}

fn is_base64(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

/// A parsed `AZURE_STORAGE_CONNECTION_STRING`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionString {
    pub account: Option<String>,
    pub endpoint: reqwest::Url,
    pub auth: BlobAuth,
}

/// Parses a storage connection string. Errors never quote it (it holds the key).
pub fn parse_connection_string(text: &str) -> Result<ConnectionString, String> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').ok_or_else(|| {
            format!("every part of a connection string is Name=Value; a part without `=` was found (after {} well-formed parts)", fields.len())
        })?;
        fields.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let get = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());

    if let Some(dev) = get("usedevelopmentstorage") {
        if !dev.eq_ignore_ascii_case("true") {
            return Err("UseDevelopmentStorage must be `true` when present".into());
        }
        if get("developmentstorageproxyuri").is_some() {
            return Err("DevelopmentStorageProxyUri is not supported; give Azurite's address as BlobEndpoint=http://127.0.0.1:PORT/devstoreaccount1 with AccountName and AccountKey instead".into());
        }
        let key = AccountKey::from_base64(DEV_ACCOUNT_KEY).map_err(|e| e.to_string())?;
        let endpoint = parse_endpoint(DEV_BLOB_ENDPOINT)?;
        return Ok(ConnectionString { account: Some(DEV_ACCOUNT.into()), endpoint, auth: BlobAuth::SharedKey(SharedKeyCredential::new(DEV_ACCOUNT, key)) });
    }

    let account = get("accountname").map(str::to_owned);
    let endpoint = match get("blobendpoint") {
        Some(url) => parse_endpoint(url).map_err(|why| format!("BlobEndpoint: {why}"))?,
        None => {
            let name = account.as_deref().ok_or("the connection string has neither BlobEndpoint nor AccountName")?;
            let protocol = get("defaultendpointsprotocol").unwrap_or("https").to_ascii_lowercase();
            if protocol != "https" && protocol != "http" {
                return Err("DefaultEndpointsProtocol must be https or http".into());
            }
            let suffix = get("endpointsuffix").unwrap_or("core.windows.net");
            parse_endpoint(&format!("{protocol}://{name}.blob.{suffix}"))?
        }
    };
    let auth = match (get("accountkey"), get("sharedaccesssignature")) {
        (Some(key), None) => {
            let name = account.clone().ok_or("AccountKey needs AccountName in the connection string")?;
            BlobAuth::SharedKey(SharedKeyCredential::new(name, AccountKey::from_base64(key).map_err(|e| format!("AccountKey: {e}"))?))
        }
        (None, Some(sas)) => BlobAuth::Sas(SasToken::parse(sas).map_err(|e| format!("SharedAccessSignature: {e}"))?),
        (Some(_), Some(_)) => return Err("the connection string has both AccountKey and SharedAccessSignature; keep one".into()),
        (None, None) => return Err("the connection string has neither AccountKey nor SharedAccessSignature".into()),
    };
    Ok(ConnectionString { account, endpoint, auth })
}

/// A blob service endpoint: `https://` (or `http://` to a loopback host), no query or fragment;
/// the trailing `/` removed.
pub fn parse_endpoint(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| format!("a URL such as https://ACCOUNT.blob.core.windows.net ({e})"))?;
    if url.scheme() != "https" && !crate::delivery::transport::is_loopback_http(&url) {
        return Err("an https:// URL (plain http:// only to 127.0.0.1 or localhost, for Azurite)".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a URL without `?` or `#` (give a SAS token in its own variable)".into());
    }
    let mut url = url;
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

fn valid_account_name(name: &str) -> bool {
    (3..=24).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Azure's container naming rules.
pub fn check_container_name(name: &str) -> Result<(), &'static str> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !(3..=63).contains(&name.len()) || !ok_chars {
        return Err("a container name: 3-63 lowercase letters, digits and hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Err("a container name that starts and ends with a letter or digit and has no `--`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_B64: &str = DEV_ACCOUNT_KEY;

    fn shared_key(account: &str) -> BlobAuth {
        BlobAuth::SharedKey(SharedKeyCredential::new(account, AccountKey::from_base64(KEY_B64).unwrap()))
    }

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).unwrap()
    }

    #[test]
    fn connection_strings_as_azure_writes_them() {
        let cases: Vec<(String, ConnectionString)> = vec![
            (
                "UseDevelopmentStorage=true".into(),
                ConnectionString { account: Some("devstoreaccount1".into()), endpoint: url("http://127.0.0.1:10000/devstoreaccount1"), auth: shared_key("devstoreaccount1") },
            ),
            (
                format!("DefaultEndpointsProtocol=https;AccountName=contoso;AccountKey={KEY_B64};EndpointSuffix=core.windows.net"),
                ConnectionString { account: Some("contoso".into()), endpoint: url("https://contoso.blob.core.windows.net"), auth: shared_key("contoso") },
            ),
            (
                // Azurite's documented connection string; also the sovereign-cloud suffix form
                format!("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY_B64};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"),
                ConnectionString { account: Some("devstoreaccount1".into()), endpoint: url("http://127.0.0.1:10000/devstoreaccount1"), auth: shared_key("devstoreaccount1") },
            ),
            (
                format!("AccountName=contoso;AccountKey={KEY_B64};EndpointSuffix=core.chinacloudapi.cn"),
                ConnectionString { account: Some("contoso".into()), endpoint: url("https://contoso.blob.core.chinacloudapi.cn"), auth: shared_key("contoso") },
            ),
            (
                "BlobEndpoint=https://contoso.blob.core.windows.net/;SharedAccessSignature=sv=2025-11-05&ss=b&srt=o&sp=cw&se=2027-01-01T00:00:00Z&sig=abc%2Bdef%3D".into(),
                ConnectionString {
                    account: None,
                    endpoint: url("https://contoso.blob.core.windows.net"),
                    auth: BlobAuth::Sas(SasToken::parse("sv=2025-11-05&ss=b&srt=o&sp=cw&se=2027-01-01T00:00:00Z&sig=abc%2Bdef%3D").unwrap()),
                },
            ),
        ];
        for (text, want) in cases {
            let got = parse_connection_string(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn bad_connection_strings_say_why_without_the_key() {
        let cases = [
            ("AccountName=contoso", "the connection string has neither AccountKey nor SharedAccessSignature"),
            ("AccountKey=secretsecretsecretsecretsecret==", "the connection string has neither BlobEndpoint nor AccountName"),
            ("AccountName=contoso;AccountKey=!!secret!!", "AccountKey: an account key is base64"),
            ("AccountName=contoso;secretsecret", "every part of a connection string is Name=Value"),
            ("UseDevelopmentStorage=false", "UseDevelopmentStorage must be `true`"),
            ("BlobEndpoint=http://example.com/;AccountName=contoso;AccountKey=x", "BlobEndpoint: an https:// URL"),
            (
                "BlobEndpoint=https://contoso.blob.core.windows.net;SharedAccessSignature=sv=1&se=2",
                "SharedAccessSignature: a SAS token is a query string with a `sig=`",
            ),
        ];
        for (text, want) in cases {
            let err = parse_connection_string(text).unwrap_err();
            assert!(err.starts_with(want), "{text}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> &'a [(&'a str, &'a str)] {
        pairs
    }

    #[test]
    fn our_variables_configure_an_account() {
        let s = BlobSettings::from_env(env(&[
            ("AUDITSTREAM_AZURE_BLOB_CONTAINER", "audit-logs"),
            ("AUDITSTREAM_AZURE_BLOB_PREFIX", "workato"),
            ("AUDITSTREAM_AZURE_BLOB_ACCOUNT", "contoso"),
            ("AUDITSTREAM_AZURE_BLOB_KEY", KEY_B64),
        ]))
        .unwrap();
        assert_eq!(s.account.as_deref(), Some("contoso"));
        assert_eq!(s.endpoint.as_str(), "https://contoso.blob.core.windows.net/");
        assert_eq!(s.auth, BlobAuthSource::Ready(shared_key("contoso")));
        assert_eq!(s.prefix.as_str(), "workato/");
        assert!(s.needs_secret().is_none());

        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:azure-blob-key-AbCdEf";
        let s = BlobSettings::from_env(env(&[
            ("AUDITSTREAM_AZURE_BLOB_CONTAINER", "audit-logs"),
            ("AUDITSTREAM_AZURE_BLOB_ACCOUNT", "devstoreaccount1"),
            ("AUDITSTREAM_AZURE_BLOB_ENDPOINT", "http://127.0.0.1:10000/devstoreaccount1/"),
            ("AUDITSTREAM_AZURE_BLOB_KEY_SECRET_ARN", arn),
        ]))
        .unwrap();
        assert_eq!(s.endpoint.as_str(), "http://127.0.0.1:10000/devstoreaccount1");
        assert_eq!(s.needs_secret(), Some(("AUDITSTREAM_AZURE_BLOB_KEY_SECRET_ARN", arn)));

        let s = BlobSettings::from_env(env(&[
            ("AUDITSTREAM_AZURE_BLOB_CONTAINER", "audit-logs"),
            ("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true"),
        ]))
        .unwrap();
        assert_eq!(s.endpoint.as_str(), "http://127.0.0.1:10000/devstoreaccount1");
    }

    #[test]
    fn bad_settings_name_the_variable_and_never_the_secret() {
        let c = ("AUDITSTREAM_AZURE_BLOB_CONTAINER", "audit-logs");
        let a = ("AUDITSTREAM_AZURE_BLOB_ACCOUNT", "contoso");
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![a], "AUDITSTREAM_AZURE_BLOB_CONTAINER is not set"),
            (
                vec![("AUDITSTREAM_AZURE_BLOB_CONTAINER", "Audit_Logs"), a],
                "AUDITSTREAM_AZURE_BLOB_CONTAINER=\"Audit_Logs\" is not valid: expected a container name",
            ),
            (vec![c], "AUDITSTREAM_AZURE_BLOB_ACCOUNT is not set: set it to the storage account name, or set AZURE_STORAGE_CONNECTION_STRING instead"),
            (vec![c, a], "AUDITSTREAM_AZURE_BLOB_KEY_SECRET_ARN is not set"),
            (vec![c, a, ("AUDITSTREAM_AZURE_BLOB_KEY", "hunter2-not-base64!")], "AUDITSTREAM_AZURE_BLOB_KEY is not valid: an account key is base64"),
            (vec![c, a, ("AUDITSTREAM_AZURE_BLOB_SAS", "hunter2")], "AUDITSTREAM_AZURE_BLOB_SAS is not valid: a SAS token is a query string"),
            (
                vec![c, a, ("AUDITSTREAM_AZURE_BLOB_KEY", KEY_B64), ("AUDITSTREAM_AZURE_BLOB_SAS", "sv=1&sig=2")],
                "AUDITSTREAM_AZURE_BLOB_SAS=\"(set)\" is not valid: expected only one of",
            ),
            (
                vec![c, a, ("AUDITSTREAM_AZURE_BLOB_KEY_SECRET_ARN", "azure-key")],
                "AUDITSTREAM_AZURE_BLOB_KEY_SECRET_ARN=\"azure-key\" is not valid: expected a Secrets Manager secret ARN",
            ),
            (
                vec![c, a, ("AUDITSTREAM_AZURE_BLOB_KEY", KEY_B64), ("AUDITSTREAM_AZURE_BLOB_ENDPOINT", "http://storage.example.com")],
                "AUDITSTREAM_AZURE_BLOB_ENDPOINT=\"http://storage.example.com\" is not valid: expected an https:// URL",
            ),
            (
                vec![c, ("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true"), a],
                "AUDITSTREAM_AZURE_BLOB_ACCOUNT=\"(set)\" is not valid: expected unset when AZURE_STORAGE_CONNECTION_STRING is set",
            ),
            (
                vec![c, ("AZURE_STORAGE_CONNECTION_STRING", "AccountName=x;AccountKey=hunter2")],
                "AZURE_STORAGE_CONNECTION_STRING is not valid: AccountKey: an account key is base64",
            ),
        ];
        for (pairs, want) in cases {
            let err = BlobSettings::from_env(env(&pairs)).unwrap_err().to_string();
            assert!(err.starts_with(want), "{pairs:?}:\n got {err}\nwant {want}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn a_secret_is_told_apart_by_its_shape() {
        let sas = "sv=2025-11-05&sp=cw&se=2027-01-01T00%3A00%3A00Z&sr=c&sig=AbC%2Bd%3D";
        let cases: Vec<(String, Result<BlobAuth, &str>)> = vec![
            (KEY_B64.into(), Ok(shared_key("contoso"))),
            (format!("  {KEY_B64}\n"), Ok(shared_key("contoso"))),
            (sas.into(), Ok(BlobAuth::Sas(SasToken::parse(sas).unwrap()))),
            (format!("?{sas}"), Ok(BlobAuth::Sas(SasToken::parse(sas).unwrap()))),
            (format!(r#"{{"AccountKey":"{KEY_B64}"}}"#), Ok(shared_key("contoso"))),
            (format!(r#"{{"sharedAccessSignature":"?{sas}"}}"#), Ok(BlobAuth::Sas(SasToken::parse(sas).unwrap()))),
            ("sv=2025-11-05&sp=cw".into(), Err("a SAS token is a query string with a `sig=` parameter")),
            ("hunter2".into(), Err("the secret is neither a SAS token")),
            (r#"{"password":"hunter2"}"#.into(), Err("a JSON secret must have exactly one of")),
            ("{hunter2".into(), Err("the secret starts with `{` but is not a JSON object")),
        ];
        for (text, want) in cases {
            match (parse_secret_value(Some("contoso"), &text), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(got), Err(want)) => {
                    assert!(got.starts_with(want), "{text}: {got}");
                    assert!(!got.contains("hunter2"), "{got}");
                }
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
        // the key ending in "sig=" is still a key: base64 has no `&`
        let key_like = format!("{}sig=", &KEY_B64[..84]);
        assert!(matches!(parse_secret_value(Some("contoso"), &key_like), Ok(BlobAuth::SharedKey(_))));
        assert!(parse_secret_value(None, KEY_B64).unwrap_err().contains("needs the account name"));
    }

    #[test]
    fn container_names_follow_azure_rules() {
        for ok in ["abc", "audit-logs", "a1-b2", &"a".repeat(63)] {
            assert_eq!(check_container_name(ok), Ok(()), "{ok}");
        }
        for bad in ["ab", "Audit", "a_b", "-ab", "ab-", "a--b", &"a".repeat(64)] {
            assert!(check_container_name(bad).is_err(), "{bad}");
        }
    }
}
