//! The token (or password) of a REST endpoint: where it comes from, and a type that never shows it.
//!
//! In Lambda the token lives in AWS Secrets Manager (`AUDITSTREAM_REST_TOKEN_SECRET_ARN`) and is
//! read once per cold start with `GetSecretValue`; for local runs `AUDITSTREAM_REST_TOKEN` may hold
//! it. The secret string is the token itself, or a JSON object (the console's key/value form) whose
//! `AUDITSTREAM_REST_TOKEN_SECRET_KEY` field (default `token`) holds it. Surrounding whitespace is
//! trimmed: a token pasted with a trailing newline would otherwise be an invalid header.

use crate::config::{ConfigError, Env, EnvExt};

pub const TOKEN_SECRET_ARN_VAR: &str = "AUDITSTREAM_REST_TOKEN_SECRET_ARN";
pub const TOKEN_VAR: &str = "AUDITSTREAM_REST_TOKEN";
pub const TOKEN_SECRET_KEY_VAR: &str = "AUDITSTREAM_REST_TOKEN_SECRET_KEY";

/// A secret value. `Debug` and `Display` print `[redacted]`; only [`Secret::expose`] gives it out.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into().trim().to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of the secret in `text` (a server may echo what it was sent).
    pub fn scrub(&self, text: &str) -> String {
        if self.0.len() < 4 {
            // Too short to search for without mangling ordinary words; such a token is rejected
            // at configuration time anyway.
            return text.to_owned();
        }
        text.replace(&self.0, "[redacted]")
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where the token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// No token configured.
    None,
    /// An AWS Secrets Manager secret (ARN or name), and the JSON field to read if it is an object.
    SecretsManager { secret_id: String, json_key: String },
    /// The value itself (local runs).
    Inline(Secret),
}

impl TokenSource {
    pub fn from_env(env: &(impl Env + ?Sized)) -> Result<TokenSource, ConfigError> {
        let arn = env.optional(TOKEN_SECRET_ARN_VAR);
        let inline = env.optional(TOKEN_VAR);
        match (arn, inline) {
            (Some(_), Some(_)) => Err(ConfigError::InvalidSecret {
                var: TOKEN_VAR,
                reason: format!("set either {TOKEN_SECRET_ARN_VAR} (in AWS) or {TOKEN_VAR} (local runs), not both"),
            }),
            (Some(secret_id), None) => {
                let json_key = env.optional(TOKEN_SECRET_KEY_VAR).unwrap_or_else(|| "token".to_owned());
                Ok(TokenSource::SecretsManager { secret_id, json_key })
            }
            (None, Some(value)) => Ok(TokenSource::Inline(Secret::new(value))),
            (None, None) => Ok(TokenSource::None),
        }
    }

    pub fn is_none(&self) -> bool {
        *self == TokenSource::None
    }

    /// The token, reading Secrets Manager with `aws` if that is where it is. Call once per cold
    /// start.
    pub async fn resolve_with(&self, aws: &aws_config::SdkConfig) -> Result<Option<Secret>, ConfigError> {
        match self {
            TokenSource::None => Ok(None),
            TokenSource::Inline(secret) => Ok(Some(secret.clone())),
            TokenSource::SecretsManager { secret_id, json_key } => {
                let client = aws_sdk_secretsmanager::Client::new(aws);
                fetch_secret(&client, secret_id, json_key).await.map(Some)
            }
        }
    }

    /// [`Self::resolve_with`] loading the standard AWS configuration only when a secret must be
    /// read (the command-line tool needs no AWS setup for a token given inline).
    pub async fn resolve(&self) -> Result<Option<Secret>, ConfigError> {
        match self {
            TokenSource::SecretsManager { .. } => self.resolve_with(&aws_config::load_from_env().await).await,
            TokenSource::None => Ok(None),
            TokenSource::Inline(secret) => Ok(Some(secret.clone())),
        }
    }
}

/// `GetSecretValue`, and the token out of its `SecretString`.
pub async fn fetch_secret(client: &aws_sdk_secretsmanager::Client, secret_id: &str, json_key: &str) -> Result<Secret, ConfigError> {
    let fail = |reason: String| ConfigError::InvalidSecret { var: TOKEN_SECRET_ARN_VAR, reason };
    let out = client.get_secret_value().secret_id(secret_id).send().await.map_err(|e| {
        // The SDK error names the service's error code and message, never the secret's value.
        let detail = aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string();
        fail(format!("GetSecretValue of {secret_id} failed: {detail} (the function's role needs secretsmanager:GetSecretValue on it, and kms:Decrypt for a customer-managed key)"))
    })?;
    let text = out.secret_string().ok_or_else(|| fail(format!("secret {secret_id} has no SecretString (binary secrets are not supported): store the token as text")))?;
    token_from_secret_string(text, json_key).map_err(|reason| fail(format!("secret {secret_id}: {reason}")))
}

/// The token in a secret string: the string itself, or the `json_key` field of a JSON object.
pub fn token_from_secret_string(text: &str, json_key: &str) -> Result<Secret, String> {
    let trimmed = text.trim();
    if trimmed.starts_with('{') {
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(trimmed).map_err(|_| "the secret starts with `{` but is not a JSON object".to_owned())?;
        return match object.get(json_key) {
            Some(serde_json::Value::String(token)) if !token.trim().is_empty() => Ok(Secret::new(token.as_str())),
            Some(_) => Err(format!("field {json_key:?} of the secret's JSON is not a non-empty string")),
            None => {
                let keys: Vec<&str> = object.keys().map(String::as_str).collect();
                Err(format!("the secret's JSON has no field {json_key:?} (it has {keys:?}); set {TOKEN_SECRET_KEY_VAR} to the field holding the token"))
            }
        };
    }
    if trimmed.is_empty() {
        return Err("the secret is empty".to_owned());
    }
    Ok(Secret::new(trimmed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints() {
        let s = Secret::new(" tok-123456\n");
        assert_eq!(s.expose(), "tok-123456");
        assert_eq!(format!("{s} {s:?}"), "[redacted] Secret([redacted])");
        assert_eq!(s.scrub("bad token tok-123456!"), "bad token [redacted]!");
        let source = TokenSource::Inline(s);
        assert!(!format!("{source:?}").contains("tok-123456"));
    }

    #[test]
    fn sources() {
        assert_eq!(TokenSource::from_env(&[][..]).unwrap(), TokenSource::None);
        assert_eq!(TokenSource::from_env(&[(TOKEN_VAR, "abc1234")][..]).unwrap(), TokenSource::Inline(Secret::new("abc1234")));
        assert_eq!(
            TokenSource::from_env(&[(TOKEN_SECRET_ARN_VAR, "arn:aws:secretsmanager:eu-west-1:1:secret:hec")][..]).unwrap(),
            TokenSource::SecretsManager { secret_id: "arn:aws:secretsmanager:eu-west-1:1:secret:hec".into(), json_key: "token".into() }
        );
        let err = TokenSource::from_env(&[(TOKEN_SECRET_ARN_VAR, "arn"), (TOKEN_VAR, "hunter2-token")][..]).unwrap_err().to_string();
        assert!(err.contains("not both") && !err.contains("hunter2"), "{err}");
    }

    #[test]
    fn secret_strings_plain_or_json() {
        assert_eq!(token_from_secret_string("abc-def\n", "token").unwrap(), Secret::new("abc-def"));
        assert_eq!(token_from_secret_string(r#"{"token":"abc-def","other":"x"}"#, "token").unwrap(), Secret::new("abc-def"));
        assert_eq!(token_from_secret_string(r#"{"api_key":"abc-def"}"#, "api_key").unwrap(), Secret::new("abc-def"));
        let err = token_from_secret_string(r#"{"api_key":"abc-def"}"#, "token").unwrap_err();
        assert_eq!(err, r#"the secret's JSON has no field "token" (it has ["api_key"]); set AUDITSTREAM_REST_TOKEN_SECRET_KEY to the field holding the token"#);
        assert!(!err.contains("abc-def"));
        let err = token_from_secret_string(r#"{"token":"abc-def""#, "token").unwrap_err();
        assert!(!err.contains("abc-def"), "{err}");
        assert!(token_from_secret_string("  ", "token").is_err());
    }
}
