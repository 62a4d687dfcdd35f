//! Microsoft Entra ID access tokens by the OAuth2 client-credentials grant, for the Logs
//! Ingestion API.
//!
//! `POST {authority}/{tenant}/oauth2/v2.0/token` with the form `client_id`, `client_secret`,
//! `grant_type=client_credentials`, `scope=https://monitor.azure.com/.default`; the answer is
//! `{"token_type":"Bearer","expires_in":3599,"access_token":"…"}`. The token is cached until
//! shortly before it expires (five minutes, or a fifth of its life if that is shorter) and
//! fetched again when the ingestion API says 401 — once per rejected token, however many requests
//! saw the 401 at the same time.
//!
//! Errors show Entra's `error` and the first line of its `error_description` (the `AADSTS…` code
//! and text, which say what is wrong), quoted through [`Redactor::quote`] so that neither the
//! client secret nor any bytes of the form sent are repeated, and a hint for the common codes;
//! never a token. A redirect is not followed (it would re-post the client secret to another host):
//! a 3xx fails permanently.
//!
//! Settings (Azure's own names, as the Azure SDKs and CLI read them):
//!
//! | variable | meaning |
//! |---|---|
//! | `AZURE_TENANT_ID` | the directory (tenant) id or domain |
//! | `AZURE_CLIENT_ID` | the application (client) id of the app registration |
//! | `AZURE_CLIENT_SECRET` | its client secret, for local runs… |
//! | `AUDITSTREAM_AZURE_CLIENT_SECRET_ARN` | …or an AWS Secrets Manager secret holding it (read once per cold start) |
//! | `AZURE_AUTHORITY_HOST` | default `https://login.microsoftonline.com`; `https://login.microsoftonline.us` (US Gov), `https://login.chinacloudapi.cn` (21Vianet), or a local fake |

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::{ConfigError, Env, EnvExt};
use crate::delivery::retry::DeliveryError;
use crate::delivery::transport::redirect_not_followed;
use crate::redact::{url_for_message, url_text_for_message, Redactor};
use crate::secret::Secret;

pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The Logs Ingestion API's scope (public cloud; sovereign clouds use `monitor.azure.us`/`.cn`).
pub const MONITOR_SCOPE: &str = "https://monitor.azure.com/.default";

const TOKEN_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the client secret is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSecretSource {
    Value(Secret),
    SecretArn { var: &'static str, arn: String },
}

/// The app registration that gets tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraSettings {
    pub authority: reqwest::Url,
    pub tenant_id: String,
    pub client_id: String,
    pub secret: ClientSecretSource,
}

impl EntraSettings {
    pub fn from_env(env: &(impl Env + ?Sized)) -> Result<Self, ConfigError> {
        let tenant_id = env.required("AZURE_TENANT_ID", "set it to the directory (tenant) id of the app registration that sends logs")?;
        if !tenant_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
            return Err(ConfigError::Invalid {
                var: "AZURE_TENANT_ID",
                value: tenant_id,
                expected: "a tenant id (a GUID) or domain (contoso.onmicrosoft.com)".into(),
            });
        }
        let client_id = env.required("AZURE_CLIENT_ID", "set it to the application (client) id of the app registration that sends logs")?;
        if !client_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(ConfigError::Invalid { var: "AZURE_CLIENT_ID", value: client_id, expected: "an application (client) id, a GUID".into() });
        }
        let secret = match (env.optional("AZURE_CLIENT_SECRET"), env.optional("AUDITSTREAM_AZURE_CLIENT_SECRET_ARN")) {
            (Some(value), None) => ClientSecretSource::Value(Secret::new(value)),
            (None, Some(arn)) if arn.starts_with("arn:") && arn.contains(":secretsmanager:") => {
                ClientSecretSource::SecretArn { var: "AUDITSTREAM_AZURE_CLIENT_SECRET_ARN", arn }
            }
            (None, Some(arn)) => {
                return Err(ConfigError::Invalid {
                    var: "AUDITSTREAM_AZURE_CLIENT_SECRET_ARN",
                    value: arn,
                    expected: "a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)".into(),
                })
            }
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    var: "AUDITSTREAM_AZURE_CLIENT_SECRET_ARN",
                    value: "(set)".into(),
                    expected: "unset when AZURE_CLIENT_SECRET is set: give the client secret one way only".into(),
                })
            }
            (None, None) => {
                return Err(ConfigError::Missing {
                    var: "AUDITSTREAM_AZURE_CLIENT_SECRET_ARN",
                    hint: "set it to the ARN of a Secrets Manager secret holding the app's client secret (or, for local runs, set AZURE_CLIENT_SECRET)",
                })
            }
        };
        let authority_text = env.optional("AZURE_AUTHORITY_HOST").unwrap_or_else(|| DEFAULT_AUTHORITY.to_owned());
        let authority = parse_authority(&authority_text).map_err(|expected| ConfigError::Invalid {
            var: "AZURE_AUTHORITY_HOST",
            value: url_text_for_message(&authority_text),
            expected,
        })?;
        Ok(EntraSettings { authority, tenant_id, client_id, secret })
    }

    /// `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> reqwest::Url {
        let mut url = self.authority.clone();
        url.set_path(&format!("{}/{}/oauth2/v2.0/token", self.authority.path().trim_end_matches('/'), self.tenant_id));
        url
    }
}

fn parse_authority(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| format!("a URL such as {DEFAULT_AUTHORITY} ({e})"))?;
    if url.scheme() != "https" && !crate::delivery::transport::is_loopback_http(&url) {
        return Err("an https:// URL (plain http:// only to 127.0.0.1 or localhost)".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a URL without `?` or `#`".into());
    }
    Ok(url)
}

/// A bearer token. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Arc<str>);

impl AccessToken {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

/// Gets and caches tokens for one app registration and scope.
pub struct EntraTokenSource {
    http: reqwest::Client,
    token_url: reqwest::Url,
    client_id: String,
    secret: Secret,
    /// The client secret, in every form it is sent in.
    redactor: Redactor,
    scope: String,
    cache: tokio::sync::Mutex<Option<Cached>>,
}

impl EntraTokenSource {
    pub fn new(http: reqwest::Client, token_url: reqwest::Url, client_id: String, secret: Secret, scope: impl Into<String>) -> Self {
        let redactor = Redactor::new().with_secret(secret.expose());
        EntraTokenSource { http, token_url, client_id, secret, redactor, scope: scope.into(), cache: tokio::sync::Mutex::new(None) }
    }

    /// What must never be quoted from an answer of this source's, or of a service its tokens are
    /// sent to (add the token in use).
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// A valid token: the cached one, or a new one.
    pub async fn token(&self) -> Result<AccessToken, DeliveryError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(cached.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    /// After the service refused `rejected` (HTTP 401): a new token, unless another request has
    /// already replaced it, in which case that one.
    pub async fn refresh_after_rejection(&self, rejected: &AccessToken) -> Result<AccessToken, DeliveryError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref().filter(|c| c.token != *rejected && Instant::now() < c.refresh_at) {
            return Ok(cached.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    async fn fetch(&self) -> Result<Cached, DeliveryError> {
        let form = form_urlencoded(&[
            ("client_id", &self.client_id),
            ("client_secret", self.secret.expose()),
            ("grant_type", "client_credentials"),
            ("scope", &self.scope),
        ]);
        let started = Instant::now();
        let response = self
            .http
            .post(self.token_url.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .timeout(TOKEN_TIMEOUT)
            .body(form.clone())
            .send()
            .await
            .map_err(|e| {
                DeliveryError::unanswered(format!(
                    "Entra ID token request to {} failed: {}",
                    url_for_message(&self.token_url),
                    crate::delivery::transport::transport_failure(&e)
                ))
            })?;
        let status = response.status().as_u16();
        let retry_after = super::retry_after(response.headers());
        let body = response.bytes().await.unwrap_or_default();
        let quote = |text: &str| self.redactor.quote(text, form.as_bytes(), 300);
        match parse_token_response(status, &body, &quote) {
            Ok((token, expires_in)) => {
                let life = Duration::from_secs(expires_in);
                let margin = Duration::from_secs(300).min(life / 5);
                Ok(Cached { token: AccessToken(token.into()), refresh_at: started + life - margin })
            }
            Err(problem) => {
                let message = format!("Entra ID token request to {} for client {} failed: {problem}", url_for_message(&self.token_url), self.client_id);
                let transient = status == 408 || status == 429 || status >= 500 || status == 200;
                Err(if transient { DeliveryError::transient(message).with_retry_after(retry_after) } else { DeliveryError::permanent(message) })
            }
        }
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    error: Option<String>,
    error_description: Option<String>,
    error_codes: Option<Vec<u64>>,
}

/// Reads a token endpoint's answer: the token and its lifetime in seconds, or what went wrong
/// (with a hint for the common `AADSTS` codes; the server's words passed through `quote`). Pure.
pub fn parse_token_response(status: u16, body: &[u8], quote: &dyn Fn(&str) -> String) -> Result<(String, u64), String> {
    if (300..=399).contains(&status) {
        return Err(format!("HTTP {status}: {}", redirect_not_followed("AZURE_AUTHORITY_HOST")));
    }
    let answer: Option<TokenAnswer> = serde_json::from_slice(body).ok();
    if status == 200 {
        let answer = answer.ok_or("HTTP 200 but the body is not a JSON token answer")?;
        let token = answer.access_token.filter(|t| !t.is_empty()).ok_or("HTTP 200 but no access_token in the answer")?;
        if !answer.token_type.as_deref().unwrap_or("Bearer").eq_ignore_ascii_case("bearer") {
            return Err("the token is not a Bearer token".into());
        }
        let expires_in = match answer.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .ok_or("HTTP 200 but no expires_in in the answer")?;
        return Ok((token, expires_in));
    }
    let Some(answer) = answer.filter(|a| a.error.is_some()) else {
        return Err(format!("HTTP {status} (no OAuth error in the answer)"));
    };
    let error = quote(answer.error.as_deref().unwrap_or_default());
    let description = answer.error_description.as_deref().map(|d| quote(super::first_line(d))).unwrap_or_default();
    let codes = answer.error_codes.unwrap_or_default();
    let hint = codes.iter().find_map(|code| match code {
        7000215 => Some("the client secret is wrong: check AZURE_CLIENT_SECRET or the secret in Secrets Manager (use the secret's Value, not its ID)"),
        7000222 => Some("the client secret has expired: create a new one for the app registration and store it"),
        700016 => Some("no such application in this tenant: check AZURE_CLIENT_ID and AZURE_TENANT_ID"),
        90002 | 900023 => Some("no such tenant: check AZURE_TENANT_ID"),
        70011 | 1002012 => Some("the scope was refused; it must be https://monitor.azure.com/.default"),
        _ => None,
    });
    Err(match hint {
        Some(hint) => format!("HTTP {status} {error}: {description} — {hint}"),
        None => format!("HTTP {status} {error}: {description}"),
    })
}

/// `application/x-www-form-urlencoded`: unreserved characters as they are, space as `+`, the rest
/// percent-encoded.
pub fn form_urlencoded(fields: &[(&str, &str)]) -> String {
    let encode = crate::redact::percent_encoded;
    fields.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_is(text: &str) -> String {
        text.to_owned()
    }

    #[test]
    fn the_form_is_encoded_as_browsers_do() {
        assert_eq!(
            form_urlencoded(&[("client_id", "11111111-2222"), ("client_secret", "a b+c/d=e~f&g"), ("scope", MONITOR_SCOPE)]),
            "client_id=11111111-2222&client_secret=a+b%2Bc%2Fd%3De%7Ef%26g&scope=https%3A%2F%2Fmonitor.azure.com%2F.default"
        );
    }

    #[test]
    fn token_answers_are_read() {
        assert_eq!(parse_token_response(200, br#"{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ0"}"#, &as_is), Ok(("eyJ0".into(), 3599)));
        assert_eq!(
            parse_token_response(200, br#"{"token_type":"Bearer","expires_in":"3599","ext_expires_in":"3599","access_token":"eyJ0"}"#, &as_is),
            Ok(("eyJ0".into(), 3599))
        );
        let cases: [(u16, &[u8], &str); 5] = [
            (
                401,
                br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.\r\nTrace ID: 1\r\nCorrelation ID: 2","error_codes":[7000215]}"#,
                "HTTP 401 invalid_client: AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID. — the client secret is wrong: check AZURE_CLIENT_SECRET or the secret in Secrets Manager (use the secret's Value, not its ID)",
            ),
            (
                400,
                br#"{"error":"invalid_scope","error_description":"AADSTS70011: The provided request must include a 'scope' input parameter.","error_codes":[70011]}"#,
                "HTTP 400 invalid_scope: AADSTS70011: The provided request must include a 'scope' input parameter. — the scope was refused; it must be https://monitor.azure.com/.default",
            ),
            (400, br#"{"error":"unauthorized_client","error_description":"AADSTS700016: Application with identifier 'x' was not found","error_codes":[700016]}"#, "HTTP 400 unauthorized_client: AADSTS700016: Application with identifier 'x' was not found — no such application in this tenant: check AZURE_CLIENT_ID and AZURE_TENANT_ID"),
            (503, b"<html>busy</html>", "HTTP 503 (no OAuth error in the answer)"),
            (200, br#"{"token_type":"Bearer","expires_in":3599}"#, "HTTP 200 but no access_token in the answer"),
        ];
        for (status, body, want) in cases {
            assert_eq!(parse_token_response(status, body, &as_is).unwrap_err(), want);
        }
    }

    #[test]
    fn settings_use_azures_names() {
        let env = [
            ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001"),
            ("AZURE_CLIENT_SECRET", "hunter2~x"),
        ];
        let s = EntraSettings::from_env(&env[..]).unwrap();
        assert_eq!(s.token_url().as_str(), "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token");
        assert_eq!(s.secret, ClientSecretSource::Value(Secret::new("hunter2~x")));
        assert!(!format!("{s:?}").contains("hunter2"));

        let env = [
            ("AZURE_TENANT_ID", "contoso.onmicrosoft.com"),
            ("AZURE_CLIENT_ID", "abc"),
            ("AUDITSTREAM_AZURE_CLIENT_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:x"),
            ("AZURE_AUTHORITY_HOST", "http://127.0.0.1:8080/"),
        ];
        let s = EntraSettings::from_env(&env[..]).unwrap();
        assert_eq!(s.token_url().as_str(), "http://127.0.0.1:8080/contoso.onmicrosoft.com/oauth2/v2.0/token");
        assert_eq!(
            s.secret,
            ClientSecretSource::SecretArn { var: "AUDITSTREAM_AZURE_CLIENT_SECRET_ARN", arn: "arn:aws:secretsmanager:us-east-1:1:secret:x".into() }
        );
    }

    #[test]
    fn bad_settings_name_the_variable() {
        let t = ("AZURE_TENANT_ID", "t");
        let c = ("AZURE_CLIENT_ID", "c");
        let s = ("AZURE_CLIENT_SECRET", "hunter2");
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![c, s], "AZURE_TENANT_ID is not set"),
            (vec![t, s], "AZURE_CLIENT_ID is not set"),
            (vec![t, c], "AUDITSTREAM_AZURE_CLIENT_SECRET_ARN is not set: set it to the ARN"),
            (
                vec![t, c, s, ("AUDITSTREAM_AZURE_CLIENT_SECRET_ARN", "arn:aws:secretsmanager:x")],
                "AUDITSTREAM_AZURE_CLIENT_SECRET_ARN=\"(set)\" is not valid: expected unset when AZURE_CLIENT_SECRET is set",
            ),
            (
                vec![t, c, s, ("AZURE_AUTHORITY_HOST", "http://login.example.com")],
                "AZURE_AUTHORITY_HOST=\"http://login.example.com\" is not valid: expected an https:// URL",
            ),
            (vec![("AZURE_TENANT_ID", "a/b"), c, s], "AZURE_TENANT_ID=\"a/b\" is not valid"),
        ];
        for (pairs, want) in cases {
            let err = EntraSettings::from_env(&pairs[..]).unwrap_err().to_string();
            assert!(err.starts_with(want), "{pairs:?}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }
}
