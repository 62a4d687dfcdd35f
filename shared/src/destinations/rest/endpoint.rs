//! The URL events are POSTed to: validated once at cold start, and a display form for logs and
//! errors that carries no credentials.
//!
//! HTTPS is required. Plain `http://` is accepted only for loopback hosts (`127.0.0.0/8`, `::1`,
//! `localhost`): local receivers and tests, never a network where the token could be read.
//!
//! The display form drops user info and the query string (either may hold a token), and a preset
//! can hide path segments that are secrets themselves (the collector code of a Sumo Logic HTTP
//! source URL).

use reqwest::Url;

use crate::config::ConfigError;

/// A validated endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: Url,
    display: String,
    secret_path_from: Option<usize>,
}

impl std::fmt::Debug for Endpoint {
    // The full URL may hold a secret (Sumo Logic); Debug shows what Display shows.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Endpoint({})", self.display)
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl Endpoint {
    /// Parses and checks a URL read from `var`. `secret_path_from` hides path segments from that
    /// index on in the display form (and in errors about the value).
    pub fn parse(var: &'static str, text: &str, secret_path_from: Option<usize>) -> Result<Endpoint, ConfigError> {
        let shown = |text: &str| match Url::parse(text) {
            Ok(url) => display(&url, secret_path_from),
            Err(_) => "(not shown: it may hold a secret)".to_owned(),
        };
        let invalid = |expected: &str| ConfigError::Invalid { var, value: shown(text), expected: expected.to_owned() };
        let url = Url::parse(text.trim()).map_err(|e| invalid(&format!("an absolute URL like https://logs.example.com/ingest ({e})")))?;
        match url.scheme() {
            "https" => {}
            "http" if crate::delivery::transport::is_loopback_http(&url) => {}
            "http" => return Err(invalid(
                "an https:// URL (plain http:// is allowed only for 127.0.0.1, ::1 and localhost, so that tokens and events never cross a network unencrypted)",
            )),
            _ => return Err(invalid("an https:// URL")),
        }
        if url.host().is_none() {
            return Err(invalid("a URL with a host name"));
        }
        if url.fragment().is_some() {
            return Err(invalid("a URL without a #fragment"));
        }
        Ok(Endpoint { display: display(&url, secret_path_from), url, secret_path_from })
    }

    /// The full URL, credentials included: only for sending requests.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Whether the path is empty (`https://host` or `https://host/`), for presets that fill in
    /// their vendor's path.
    pub fn has_empty_path(&self) -> bool {
        self.url.path() == "/" || self.url.path().is_empty()
    }

    pub fn path(&self) -> &str {
        self.url.path()
    }

    /// The same endpoint with `path` instead of an empty one.
    pub fn with_path(&self, path: &str, secret_path_from: Option<usize>) -> Endpoint {
        let mut url = self.url.clone();
        url.set_path(path);
        Endpoint { display: display(&url, secret_path_from), url, secret_path_from }
    }

    /// The same endpoint with one more path segment (a Sumo Logic collector code kept in a secret).
    pub fn with_segment(&self, segment: &str, secret_path_from: Option<usize>) -> Endpoint {
        let mut url = self.url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(segment);
        }
        Endpoint { display: display(&url, secret_path_from), url, secret_path_from }
    }

    /// The index of the first path segment that is a secret, if any.
    pub fn secret_path_from(&self) -> Option<usize> {
        self.secret_path_from
    }

    /// Whether requests go over plain HTTP (loopback only).
    pub fn is_plain_http(&self) -> bool {
        self.url.scheme() == "http"
    }
}

/// `scheme://host[:port]/path`, without user info or query, secret segments replaced: the one
/// rendering of URLs in messages, [`crate::redact::url_for_message_hiding`].
fn display(url: &Url, secret_path_from: Option<usize>) -> String {
    crate::redact::url_for_message_hiding(url, secret_path_from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VAR: &str = "AUDITSTREAM_REST_URL";

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        for ok in
            ["https://logs.example.com/in", "http://127.0.0.1:8080/in", "http://127.9.9.9/", "http://[::1]:9/x", "http://localhost:1/", "http://LOCALHOST/"]
        {
            assert!(Endpoint::parse(VAR, ok, None).is_ok(), "{ok}");
        }
        let cases = [
            ("http://logs.example.com/in", "plain http:// is allowed only for 127.0.0.1, ::1 and localhost"),
            ("http://10.0.0.1/in", "plain http:// is allowed only"),
            ("http://localhost.example.com/", "plain http:// is allowed only"),
            ("ftp://logs.example.com/", "expected an https:// URL"),
            ("logs.example.com/in", "expected an absolute URL"),
            ("https://logs.example.com/in#x", "without a #fragment"),
        ];
        for (text, want) in cases {
            let err = Endpoint::parse(VAR, text, None).unwrap_err().to_string();
            assert!(err.starts_with("AUDITSTREAM_REST_URL="), "{err}");
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn the_display_form_carries_no_credentials() {
        let e = Endpoint::parse(VAR, "https://user:pa55word@logs.example.com:8443/in/v1?token=s3cret", None).unwrap();
        assert_eq!(e.to_string(), "https://logs.example.com:8443/in/v1?[query not shown]");
        assert_eq!(format!("{e:?}"), "Endpoint(https://logs.example.com:8443/in/v1?[query not shown])");
        assert_eq!(e.url().as_str(), "https://user:pa55word@logs.example.com:8443/in/v1?token=s3cret");

        let sumo = Endpoint::parse(VAR, "https://collectors.sumologic.com/receiver/v1/http/ZaVnC4dhaV0xTOPSECRET==", Some(3)).unwrap();
        assert_eq!(sumo.to_string(), "https://collectors.sumologic.com/receiver/v1/http/[redacted]");
        // and a rejected value is not echoed with its secret either
        let err = Endpoint::parse(VAR, "http://collectors.sumologic.com/receiver/v1/http/TOPSECRET", Some(3)).unwrap_err().to_string();
        assert!(!err.contains("TOPSECRET") && err.contains("[redacted]"), "{err}");
        let err = Endpoint::parse(VAR, "http://u:TOPSECRET@example.com/", None).unwrap_err().to_string();
        assert!(!err.contains("TOPSECRET"), "{err}");
    }

    #[test]
    fn presets_fill_in_paths() {
        let e = Endpoint::parse(VAR, "https://splunk.example.com:8088", None).unwrap();
        assert!(e.has_empty_path());
        assert_eq!(e.with_path("/services/collector/event", None).url().as_str(), "https://splunk.example.com:8088/services/collector/event");
        let sumo = Endpoint::parse(VAR, "https://collectors.sumologic.com/receiver/v1/http/", Some(3)).unwrap();
        let full = sumo.with_segment("CODE123", Some(3));
        assert_eq!(full.url().as_str(), "https://collectors.sumologic.com/receiver/v1/http/CODE123");
        assert_eq!(full.to_string(), "https://collectors.sumologic.com/receiver/v1/http/[redacted]");
    }
}
