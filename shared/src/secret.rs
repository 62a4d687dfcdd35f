//! Secrets: a type that never shows its value, and the one reader of AWS Secrets Manager.
//!
//! Every credential the destinations use — a REST token, an Azure account key, SAS token or
//! client secret — is a [`Secret`]. In Lambda they live in Secrets Manager, named by ARN in an
//! environment variable, and are read once per cold start with [`fetch_secret`]. What a secret's
//! text means (a bare token or a JSON field, a key or a SAS token) is the destination's business:
//! [`crate::destinations::rest::token`], [`crate::destinations::azure::connection`].
//!
//! A value is trimmed when it becomes a [`Secret`]: a secret stored from a shell often ends in a
//! newline, which would make an invalid header or a wrong signature, and no token, key or client
//! secret begins or ends with whitespace.

use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};

/// What `Debug` and `Display` print in place of a value, and [`crate::redact::Redactor`] in place of
/// a credential a server echoed.
pub const REDACTED: &str = "[redacted]";

/// A secret value, trimmed. `Debug` and `Display` print `[redacted]`; only [`Secret::expose`]
/// gives it out.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into().trim().to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Why a secret could not be had. Each names the variable that names the secret and the secret's
/// id (an ARN or name, not secret); none ever shows the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("{var}: cannot read secret {secret_id} from AWS Secrets Manager: {reason} (does the function's role allow secretsmanager:GetSecretValue on this secret, and kms:Decrypt on its key?)")]
    Unreadable { var: &'static str, secret_id: String, reason: String },
    #[error("{var}: secret {secret_id} has no text value (SecretString; binary secrets are not supported): store the value as text")]
    NotText { var: &'static str, secret_id: String },
    /// The text was read but is not what the destination needs; `reason` never quotes it.
    #[error("{var}: secret {secret_id} cannot be used: {reason}")]
    Unusable { var: &'static str, secret_id: String, reason: String },
}

/// `GetSecretValue` of `secret_id` (an ARN or name, from the variable `var`): the secret's text.
/// `client` is built from the function's AWS configuration.
pub async fn fetch_secret(client: &aws_sdk_secretsmanager::Client, var: &'static str, secret_id: &str) -> Result<Secret, SecretError> {
    let output = client.get_secret_value().secret_id(secret_id).send().await.map_err(|e| {
        // The service's error code and message, or the SDK's chain for a failure to connect or
        // sign; neither can hold the value, which was never received.
        let reason = match e.code() {
            Some(code) => format!("{code}: {}", e.message().unwrap_or("no message")),
            None => DisplayErrorContext(&e).to_string(),
        };
        SecretError::Unreadable { var, secret_id: secret_id.to_owned(), reason }
    })?;
    output.secret_string().map(Secret::new).ok_or_else(|| SecretError::NotText { var, secret_id: secret_id.to_owned() })
}

/// [`fetch_secret`] with the AWS configuration `aws`, or with the standard one (the function's role)
/// loaded now when `aws` is `None`, so that a caller given its value inline never needs AWS set up.
pub async fn fetch_secret_with(aws: Option<&aws_config::SdkConfig>, var: &'static str, secret_id: &str) -> Result<Secret, SecretError> {
    match aws {
        Some(sdk) => fetch_secret(&aws_sdk_secretsmanager::Client::new(sdk), var, secret_id).await,
        None => fetch_secret(&aws_sdk_secretsmanager::Client::new(&aws_config::load_from_env().await), var, secret_id).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VAR: &str = "AUDITSTREAM_TEST_SECRET_ARN";
    const VALUE: &str = "tok-123456";

    #[test]
    fn a_secret_never_prints() {
        let s = Secret::new(" tok-123456\n");
        assert_eq!(s.expose(), VALUE, "trimmed");
        assert_eq!(format!("{s} {s:?} {:?}", Some(&s)), "[redacted] Secret([redacted]) Some(Secret([redacted]))");
    }

    #[test]
    fn errors_name_the_variable_and_the_secret_and_the_permissions() {
        let id = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:hec-AbCdEf";
        let unreadable = SecretError::Unreadable { var: VAR, secret_id: id.into(), reason: "AccessDeniedException: not authorized".into() };
        assert_eq!(
            unreadable.to_string(),
            format!("{VAR}: cannot read secret {id} from AWS Secrets Manager: AccessDeniedException: not authorized (does the function's role allow secretsmanager:GetSecretValue on this secret, and kms:Decrypt on its key?)")
        );
        assert_eq!(
            SecretError::NotText { var: VAR, secret_id: id.into() }.to_string(),
            format!("{VAR}: secret {id} has no text value (SecretString; binary secrets are not supported): store the value as text")
        );
        assert_eq!(
            SecretError::Unusable { var: VAR, secret_id: id.into(), reason: "not a key".into() }.to_string(),
            format!("{VAR}: secret {id} cannot be used: not a key")
        );
    }

    /// A loopback stand-in for Secrets Manager's JSON API: the answer depends on the secret id.
    async fn fake_secrets_manager() -> aws_sdk_secretsmanager::Client {
        use axum::http::{HeaderMap, StatusCode};

        async fn answer(headers: HeaderMap, body: String) -> (StatusCode, String) {
            let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
            assert_eq!(target, "secretsmanager.GetSecretValue");
            let request: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let id = request["SecretId"].as_str().unwrap_or("").to_owned();
            match id.as_str() {
                "text" => (StatusCode::OK, serde_json::json!({"ARN": "arn:text", "Name": id, "SecretString": format!("{VALUE}\n")}).to_string()),
                "binary" => (StatusCode::OK, serde_json::json!({"ARN": "arn:binary", "Name": id, "SecretBinary": "dG9rLTEyMzQ1Ng=="}).to_string()),
                _ => (
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({"__type": "AccessDeniedException", "message": format!("User is not authorized to perform: secretsmanager:GetSecretValue on resource: {id}")}).to_string(),
                ),
            }
        }

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("the bound address"));
        tokio::spawn(async move { axum::serve(listener, axum::Router::new().route("/", axum::routing::post(answer))).await });
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new("AKIDTEST", "test-secret-key", None, None, "test"))
            .endpoint_url(url)
            .build();
        aws_sdk_secretsmanager::Client::from_conf(config)
    }

    #[tokio::test]
    async fn the_reader_gives_the_trimmed_text_or_an_error_without_the_value() {
        let client = fake_secrets_manager().await;

        let secret = fetch_secret(&client, VAR, "text").await.expect("a text secret is read");
        assert_eq!(secret.expose(), VALUE);

        let err = fetch_secret(&client, VAR, "binary").await.expect_err("a binary secret is refused");
        assert_eq!(err, SecretError::NotText { var: VAR, secret_id: "binary".into() });

        let err = fetch_secret(&client, VAR, "denied").await.expect_err("access denied fails");
        let message = err.to_string();
        assert!(matches!(err, SecretError::Unreadable { .. }), "{message}");
        assert!(
            message.starts_with(&format!("{VAR}: cannot read secret denied from AWS Secrets Manager: AccessDeniedException: User is not authorized")),
            "{message}"
        );
        assert!(message.contains("secretsmanager:GetSecretValue") && message.contains("kms:Decrypt"), "{message}");
        assert!(!message.contains(VALUE), "{message}");
    }
}
