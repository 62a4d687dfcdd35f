//! Reading a secret from AWS Secrets Manager, once per cold start.
//!
//! The functions keep Azure credentials (an account key, a SAS token, a client secret) in Secrets
//! Manager and name them by ARN in their environment. The value is fetched at init; an error names
//! the variable and the ARN (not secret) and says which permission to check — it never shows the
//! value.

use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};

use super::Secret;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{var}: cannot read secret {arn} from AWS Secrets Manager: {reason} (does the function's role allow secretsmanager:GetSecretValue on this secret, and kms:Decrypt on its key?)")]
    Unreadable { var: &'static str, arn: String, reason: String },
    #[error("{var}: secret {arn} has no text value (SecretString); store the value as text")]
    NotText { var: &'static str, arn: String },
}

/// The secret's text, from the client built from the function's AWS configuration.
pub async fn fetch_secret(client: &aws_sdk_secretsmanager::Client, var: &'static str, arn: &str) -> Result<Secret, SecretError> {
    let output = client.get_secret_value().secret_id(arn).send().await.map_err(|e| {
        let reason = match e.code() {
            Some(code) => format!("{code}: {}", e.message().unwrap_or("no message")),
            None => DisplayErrorContext(&e).to_string(),
        };
        SecretError::Unreadable { var, arn: arn.to_owned(), reason }
    })?;
    output.secret_string().map(Secret::new).ok_or_else(|| SecretError::NotText { var, arn: arn.to_owned() })
}
