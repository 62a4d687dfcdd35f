//! How a request proves who sends it (`AUDITSTREAM_REST_AUTH`), and the header that carries it.
//!
//! | value | header |
//! |---|---|
//! | `none` | none (a Sumo Logic URL carries its own code) |
//! | `bearer` | `Authorization: Bearer <token>` |
//! | `basic` | `Authorization: Basic base64(<AUDITSTREAM_REST_USERNAME>:<token>)` |
//! | `header` | `<AUDITSTREAM_REST_AUTH_HEADER>: <token>` (e.g. `DD-API-KEY`) |
//! | `splunk` | `Authorization: Splunk <token>` (Splunk HEC) |
//!
//! The header value is marked sensitive, so the HTTP stack never prints it.

use base64::Engine;
use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION};

use super::token::{TOKEN_SECRET_ARN_VAR, TOKEN_VAR};
use crate::config::ConfigError;
use crate::secret::Secret;

pub const AUTH_VAR: &str = "AUDITSTREAM_REST_AUTH";
pub const AUTH_HEADER_VAR: &str = "AUDITSTREAM_REST_AUTH_HEADER";
pub const USERNAME_VAR: &str = "AUDITSTREAM_REST_USERNAME";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthScheme {
    None,
    Bearer,
    Basic { username: String },
    Header { name: HeaderName },
    Splunk,
}

impl AuthScheme {
    pub fn needs_token(&self) -> bool {
        *self != AuthScheme::None
    }

    /// The header to send, or none. `token` must be present when [`AuthScheme::needs_token`].
    pub fn header(&self, token: Option<&Secret>) -> Result<Option<(HeaderName, HeaderValue)>, ConfigError> {
        if *self == AuthScheme::None {
            return Ok(None);
        }
        let token = token.ok_or(ConfigError::Missing {
            var: TOKEN_SECRET_ARN_VAR,
            hint: "this authentication needs a token: set AUDITSTREAM_REST_TOKEN_SECRET_ARN to a Secrets Manager secret (or AUDITSTREAM_REST_TOKEN for local runs), or AUDITSTREAM_REST_AUTH=none",
        })?;
        if token.expose().len() < 4 {
            return Err(ConfigError::InvalidSecret { var: TOKEN_VAR, reason: "the token is shorter than 4 characters; is it the right value?".into() });
        }
        let (name, text) = match self {
            AuthScheme::None => return Ok(None),
            AuthScheme::Bearer => (AUTHORIZATION, format!("Bearer {}", token.expose())),
            AuthScheme::Splunk => (AUTHORIZATION, format!("Splunk {}", token.expose())),
            AuthScheme::Basic { username } => {
                let pair = format!("{username}:{}", token.expose());
                (AUTHORIZATION, format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))
            }
            AuthScheme::Header { name } => (name.clone(), token.expose().to_owned()),
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| ConfigError::InvalidSecret {
            var: TOKEN_VAR,
            reason: "the token holds characters an HTTP header cannot carry (a line break or a control character?)".into(),
        })?;
        value.set_sensitive(true);
        Ok(Some((name, value)))
    }
}

/// Parses `AUDITSTREAM_REST_AUTH` and the variables its choice needs.
pub fn scheme_from_parts(kind: Option<&str>, header_name: Option<&str>, username: Option<&str>, default: AuthScheme) -> Result<AuthScheme, ConfigError> {
    let Some(kind) = kind else { return Ok(default) };
    let invalid = || ConfigError::Invalid { var: AUTH_VAR, value: kind.to_owned(), expected: "one of none, bearer, basic, header, splunk".into() };
    Ok(match kind.to_ascii_lowercase().as_str() {
        "none" => AuthScheme::None,
        "bearer" => AuthScheme::Bearer,
        "splunk" => AuthScheme::Splunk,
        "basic" => {
            let username = username
                .ok_or(ConfigError::Missing { var: USERNAME_VAR, hint: "AUDITSTREAM_REST_AUTH=basic needs the user name (the token is the password)" })?;
            if username.contains(':') {
                return Err(ConfigError::Invalid {
                    var: USERNAME_VAR,
                    value: username.to_owned(),
                    expected: "a user name without `:` (Basic authentication separates user and password with it)".into(),
                });
            }
            AuthScheme::Basic { username: username.to_owned() }
        }
        "header" => {
            let text = match (header_name, &default) {
                (Some(name), _) => name,
                (None, AuthScheme::Header { name }) => return Ok(AuthScheme::Header { name: name.clone() }),
                (None, _) => {
                    return Err(ConfigError::Missing {
                        var: AUTH_HEADER_VAR,
                        hint: "AUDITSTREAM_REST_AUTH=header needs the header's name, e.g. DD-API-KEY or X-Api-Key",
                    })
                }
            };
            AuthScheme::Header { name: header_name_from(AUTH_HEADER_VAR, text)? }
        }
        _ => return Err(invalid()),
    })
}

/// A header name read from `var`.
pub fn header_name_from(var: &'static str, text: &str) -> Result<HeaderName, ConfigError> {
    HeaderName::from_bytes(text.trim().as_bytes()).map_err(|_| ConfigError::Invalid {
        var,
        value: text.to_owned(),
        expected: "an HTTP header name (letters, digits and -)".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Secret {
        Secret::new("s3cr3t-t0ken")
    }

    #[test]
    fn each_scheme_builds_its_header() {
        let cases: [(AuthScheme, Option<(&str, &str)>); 5] = [
            (AuthScheme::None, None),
            (AuthScheme::Bearer, Some(("authorization", "Bearer s3cr3t-t0ken"))),
            (AuthScheme::Splunk, Some(("authorization", "Splunk s3cr3t-t0ken"))),
            (AuthScheme::Basic { username: "x".into() }, Some(("authorization", "Basic eDpzM2NyM3QtdDBrZW4="))),
            (AuthScheme::Header { name: HeaderName::from_static("dd-api-key") }, Some(("dd-api-key", "s3cr3t-t0ken"))),
        ];
        for (scheme, want) in cases {
            let got = scheme.header(Some(&token())).unwrap();
            let got = got.as_ref().map(|(n, v)| (n.as_str(), v.to_str().unwrap()));
            assert_eq!(got, want, "{scheme:?}");
            if let Some((_, v)) = scheme.header(Some(&token())).unwrap() {
                assert!(v.is_sensitive());
                assert!(!format!("{v:?}").contains("s3cr3t"));
            }
        }
    }

    #[test]
    fn missing_or_bad_tokens_are_named_not_shown() {
        let err = AuthScheme::Bearer.header(None).unwrap_err().to_string();
        assert!(err.starts_with("AUDITSTREAM_REST_TOKEN_SECRET_ARN is not set"), "{err}");
        let err = AuthScheme::Bearer.header(Some(&Secret::new("abc\u{7f}defg"))).unwrap_err().to_string();
        assert!(err.starts_with("AUDITSTREAM_REST_TOKEN is not valid") && !err.contains("abc"), "{err}");
    }

    #[test]
    fn parsing_the_choice() {
        let dd = AuthScheme::Header { name: HeaderName::from_static("dd-api-key") };
        assert_eq!(scheme_from_parts(None, None, None, AuthScheme::Splunk).unwrap(), AuthScheme::Splunk);
        assert_eq!(scheme_from_parts(Some("Bearer"), None, None, AuthScheme::None).unwrap(), AuthScheme::Bearer);
        assert_eq!(scheme_from_parts(Some("header"), None, None, dd.clone()).unwrap(), dd);
        assert_eq!(
            scheme_from_parts(Some("header"), Some("X-Api-Key"), None, AuthScheme::None).unwrap(),
            AuthScheme::Header { name: HeaderName::from_static("x-api-key") }
        );
        assert_eq!(scheme_from_parts(Some("basic"), None, Some("svc"), AuthScheme::None).unwrap(), AuthScheme::Basic { username: "svc".into() });
        let errors = [
            (
                scheme_from_parts(Some("oauth"), None, None, AuthScheme::None),
                "AUDITSTREAM_REST_AUTH=\"oauth\" is not valid: expected one of none, bearer, basic, header, splunk",
            ),
            (
                scheme_from_parts(Some("basic"), None, None, AuthScheme::None),
                "AUDITSTREAM_REST_USERNAME is not set: AUDITSTREAM_REST_AUTH=basic needs the user name (the token is the password)",
            ),
            (
                scheme_from_parts(Some("header"), None, None, AuthScheme::None),
                "AUDITSTREAM_REST_AUTH_HEADER is not set: AUDITSTREAM_REST_AUTH=header needs the header's name, e.g. DD-API-KEY or X-Api-Key",
            ),
            (
                scheme_from_parts(Some("header"), Some("bad header"), None, AuthScheme::None),
                "AUDITSTREAM_REST_AUTH_HEADER=\"bad header\" is not valid: expected an HTTP header name (letters, digits and -)",
            ),
        ];
        for (got, want) in errors {
            assert_eq!(got.unwrap_err().to_string(), want);
        }
    }
}
