//! The token (or password) of a REST endpoint: where it comes from, and how it is found in a
//! secret's text.
//!
//! In Lambda the token lives in AWS Secrets Manager (`AUDITSTREAM_REST_TOKEN_SECRET_ARN`) and is
//! read once per cold start with the shared reader, [`crate::secret::fetch_secret`]; for local runs
//! `AUDITSTREAM_REST_TOKEN` may hold it. The secret string is the token itself, or a JSON object
//! (the console's key/value form) whose `AUDITSTREAM_REST_TOKEN_SECRET_KEY` field (default `token`)
//! holds it. The token is a [`Secret`], trimmed: a token pasted with a trailing newline would
//! otherwise be an invalid header.

use crate::config::{ConfigError, Env, EnvExt};
use crate::secret::{fetch_secret, Secret, SecretError};

pub const TOKEN_SECRET_ARN_VAR: &str = "AUDITSTREAM_REST_TOKEN_SECRET_ARN";
pub const TOKEN_VAR: &str = "AUDITSTREAM_REST_TOKEN";
pub const TOKEN_SECRET_KEY_VAR: &str = "AUDITSTREAM_REST_TOKEN_SECRET_KEY";

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
    pub async fn resolve_with(&self, aws: &aws_config::SdkConfig) -> Result<Option<Secret>, SecretError> {
        match self {
            TokenSource::None => Ok(None),
            TokenSource::Inline(secret) => Ok(Some(secret.clone())),
            TokenSource::SecretsManager { secret_id, json_key } => {
                let client = aws_sdk_secretsmanager::Client::new(aws);
                fetch_token(&client, secret_id, json_key).await.map(Some)
            }
        }
    }

    /// [`Self::resolve_with`] loading the standard AWS configuration only when a secret must be
    /// read (the command-line tool needs no AWS setup for a token given inline).
    pub async fn resolve(&self) -> Result<Option<Secret>, SecretError> {
        match self {
            TokenSource::SecretsManager { .. } => self.resolve_with(&aws_config::load_from_env().await).await,
            TokenSource::None => Ok(None),
            TokenSource::Inline(secret) => Ok(Some(secret.clone())),
        }
    }
}

/// The secret `secret_id` (named by `AUDITSTREAM_REST_TOKEN_SECRET_ARN`), and the token out of its
/// text.
pub async fn fetch_token(client: &aws_sdk_secretsmanager::Client, secret_id: &str, json_key: &str) -> Result<Secret, SecretError> {
    let text = fetch_secret(client, TOKEN_SECRET_ARN_VAR, secret_id).await?;
    token_from_secret_string(text.expose(), json_key).map_err(|reason| SecretError::Unusable {
        var: TOKEN_SECRET_ARN_VAR,
        secret_id: secret_id.to_owned(),
        reason,
    })
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
    fn an_inline_token_never_prints() {
        let source = TokenSource::Inline(Secret::new(" tok-123456\n"));
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
