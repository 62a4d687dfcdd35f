//! What an error, a log line or a dead-letter attribute may contain: the one place that decides.
//!
//! Messages are read by people who should see neither the customer's events nor a credential
//! (CloudWatch readers, whoever handles the dead-letter queue, a terminal), so three kinds of text
//! only enter a message through this module:
//!
//! - **A server's reply** (a vendor's error text) through [`Redactor::quote`]: every configured
//!   credential is removed in every form it is sent in, every run of [`MIN_REQUEST_SPAN`] or more
//!   bytes that also occurs in the request body is replaced by [`REQUEST_DATA`] (a careless server
//!   echoes what it was sent: the events, the headers), and what is left is put on one line,
//!   escaped and cut. Callers pass the vendor's documented error field (Splunk HEC `text`, Datadog
//!   `errors`, Azure `error.message`, Blob `<Message>`) when there is one, and the raw text only
//!   when there is not.
//! - **A URL** through [`url_for_message`]: `scheme://host[:port]/path`, never its user info or
//!   query string (a SAS `sig=`, an Azure Monitor `code=`, a password).
//! - **Untrusted text** (message ids, file names, event fields, vendor text) through
//!   [`escape_controls`] / [`Escaped`]: control characters and bidirectional overrides are written
//!   as escapes, so a name can neither forge a line such as `failed …` nor drive the terminal.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Write as _;

use base64::Engine;
use reqwest::header::HeaderValue;
use reqwest::Url;

pub use crate::secret::REDACTED;

/// What replaces a span of a reply that is also in the request body.
pub const REQUEST_DATA: &str = "[request data]";

/// A reply span this long (bytes) or longer that occurs in the request body is not quoted. Shorter
/// runs are too common to tell apart from the vendor's own words.
pub const MIN_REQUEST_SPAN: usize = 8;

/// Credentials shorter than this are not searched for: they would match ordinary words, and every
/// credential the configuration accepts is longer.
const MIN_SECRET_CHARS: usize = 4;

/// Removes configured credentials from text. Built once, when a destination is set up, from
/// everything it sends that is secret; used wherever a reply is quoted.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Every form of every credential, longest first (so a value containing another is removed whole).
    needles: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} forms)", self.needles.len())
    }
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// A credential, in the forms it is sent or echoed in: as is, percent-encoded (a form body or
    /// a query string), JSON-escaped (a server quoting it in a JSON answer), and base64, standard
    /// and URL-safe, padded or not (a server echoing a header it decoded or encoded).
    pub fn add_secret(&mut self, value: &str) {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        let value = value.trim();
        if value.chars().count() < MIN_SECRET_CHARS {
            return;
        }
        let json = serde_json::to_string(value).map(|s| s[1..s.len() - 1].to_owned()).unwrap_or_default();
        let base64 = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].map(|engine| engine.encode(value));
        // JSON may also escape `/` as `\/`.
        let forms = [value.to_owned(), percent_encoded(value), json.replace('/', "\\/"), json].into_iter().chain(base64);
        for form in forms {
            if form.chars().count() >= MIN_SECRET_CHARS && !self.needles.contains(&form) {
                self.needles.push(form);
            }
        }
        self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    }

    /// [`Self::add_secret`], builder style.
    pub fn with_secret(mut self, value: &str) -> Redactor {
        self.add_secret(value);
        self
    }

    /// A header value sent with every request: the credential after an authentication scheme
    /// (`Basic <base64 of user:password>`, `Bearer <token>`, `Splunk <token>`: the scheme's name
    /// is no secret and stays readable), else the whole value.
    pub fn add_header_value(&mut self, value: &HeaderValue) {
        let text = String::from_utf8_lossy(value.as_bytes());
        match text.split_once(' ') {
            Some((scheme, credential)) if !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphabetic()) => self.add_secret(credential),
            _ => self.add_secret(&text),
        }
    }

    /// The credentials `user:password` are sent as in a Basic `Authorization` header, and each
    /// part on its own.
    pub fn add_basic_credentials(&mut self, user: &str, password: &str) {
        self.add_secret(password);
        let pair = format!("{user}:{password}");
        for engine in [&base64::engine::general_purpose::STANDARD, &base64::engine::general_purpose::STANDARD_NO_PAD] {
            self.add_secret(&engine.encode(&pair));
        }
    }

    /// What a URL carries that may be secret: the password of its user info, every query value
    /// (as sent and decoded) and the path segments from `secret_path_from` on.
    pub fn add_url(&mut self, url: &Url, secret_path_from: Option<usize>) {
        if let Some(password) = url.password() {
            self.add_basic_credentials(url.username(), password);
            self.add_secret(&percent_decoded(password));
        }
        if let Some(query) = url.query() {
            self.add_secret(query);
            for part in query.split('&') {
                let value = part.split_once('=').map_or(part, |(_, v)| v);
                self.add_secret(value);
                self.add_secret(&percent_decoded(value));
            }
        }
        if let (Some(from), Some(segments)) = (secret_path_from, url.path_segments()) {
            for segment in segments.skip(from) {
                self.add_secret(segment);
                self.add_secret(&percent_decoded(segment));
            }
        }
    }

    /// `text` with every credential form replaced by [`REDACTED`], and a credential cut off at the
    /// end of `text` (a reply read only in part) too.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), REDACTED);
            }
        }
        for needle in &self.needles {
            let cut_at_end = (MIN_SECRET_CHARS..needle.len()).rev().filter(|&n| needle.is_char_boundary(n)).find(|&n| out.ends_with(&needle[..n]));
            if let Some(n) = cut_at_end {
                out.truncate(out.len() - n);
                out.push_str(REDACTED);
                break;
            }
        }
        out
    }

    /// A server's reply (or the vendor's error field of it), fit for an error message: credentials
    /// removed, spans of `request_body` replaced by [`REQUEST_DATA`], on one line, control
    /// characters escaped, cut to `max_chars` characters.
    pub fn quote(&self, reply: &str, request_body: &[u8], max_chars: usize) -> String {
        let redacted = self.redact(reply);
        let without_request = without_request_spans(&redacted, request_body);
        let one_line = without_request.split_whitespace().collect::<Vec<_>>().join(" ");
        let escaped = escape_controls(&one_line);
        if escaped.chars().count() <= max_chars {
            return escaped.into_owned();
        }
        let cut: String = escaped.chars().take(max_chars).collect();
        format!("{cut}… ({} bytes in all)", reply.len())
    }
}

/// Percent-encoding as a form body or query string carries a value: unreserved characters as
/// they are, space as `+`, the rest `%XX`.
pub fn percent_encoded(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

fn percent_decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `reply` with every run of [`MIN_REQUEST_SPAN`] or more bytes that also occurs in `body`
/// replaced by [`REQUEST_DATA`]. A reply that quotes the body inside a JSON string (`\"`, `\\`,
/// `\/`) is matched both as it is and unescaped. One pass over the body per reading: an
/// eight-byte window is a `u64`, so the reply's windows are a set the body's windows are looked up
/// in.
pub fn without_request_spans(reply: &str, body: &[u8]) -> String {
    let raw = reply.as_bytes();
    let mut covered = vec![false; raw.len()];
    let as_is: Vec<usize> = (0..raw.len()).collect();
    cover_request_spans(raw, &as_is, body, &mut covered);
    // The reply with JSON string escapes of `"`, `\` and `/` undone; `origin[i]` is where byte i was.
    let mut plain = Vec::with_capacity(raw.len());
    let mut origin = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' && matches!(raw.get(i + 1), Some(b'"' | b'\\' | b'/')) {
            i += 1;
        }
        plain.push(raw[i]);
        origin.push(i);
        i += 1;
    }
    if plain.len() < raw.len() {
        cover_request_spans(&plain, &origin, body, &mut covered);
    }
    if !covered.contains(&true) {
        return reply.to_owned();
    }
    let mut out = String::with_capacity(reply.len());
    let mut in_span = false;
    for (at, c) in reply.char_indices() {
        if covered[at..at + c.len_utf8()].iter().any(|&f| f) {
            if !in_span {
                out.push_str(REQUEST_DATA);
                in_span = true;
            }
        } else {
            in_span = false;
            out.push(c);
        }
    }
    out
}

/// Marks in `covered` (indexed like the reply) the bytes of every window of `text` that occurs in
/// `body`; `origin[i]` is the reply index of `text[i]`.
fn cover_request_spans(text: &[u8], origin: &[usize], body: &[u8], covered: &mut [bool]) {
    const K: usize = MIN_REQUEST_SPAN;
    if text.len() < K || body.len() < K {
        return;
    }
    let window = |bytes: &[u8]| bytes.iter().fold(0u64, |w, &b| (w << 8) | u64::from(b));
    let wanted: HashSet<u64> = text.windows(K).map(window).collect();
    let mut found: HashSet<u64> = HashSet::new();
    let mut w = 0u64;
    for (n, &b) in body.iter().enumerate() {
        w = (w << 8) | u64::from(b);
        if n + 1 >= K && wanted.contains(&w) {
            found.insert(w);
            if found.len() == wanted.len() {
                break;
            }
        }
    }
    for (start, bytes) in text.windows(K).enumerate() {
        if found.contains(&window(bytes)) {
            // From the first byte's place to the last one's, escapes between them included.
            for flag in &mut covered[origin[start]..=origin[start + K - 1]] {
                *flag = true;
            }
        }
    }
}

/// `scheme://host[:port]/path` of a URL: never its user info, query string or fragment. A query
/// is said to be there (`?[query not shown]`), not shown. An empty path (`/`) is left out, so the
/// host reads as it was configured.
pub fn url_for_message(url: &Url) -> String {
    url_for_message_hiding(url, None)
}

/// [`url_for_message`] with the path segments from `secret_path_from` on replaced by
/// [`REDACTED`] (a Sumo Logic collector code is a path segment).
pub fn url_for_message_hiding(url: &Url, secret_path_from: Option<usize>) -> String {
    let mut out = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        let _ = write!(out, ":{port}");
    }
    match url.path_segments() {
        Some(_) if url.path() == "/" => {}
        Some(segments) => {
            for (i, segment) in segments.enumerate() {
                out.push('/');
                if secret_path_from.is_some_and(|from| i >= from) && !segment.is_empty() {
                    out.push_str(REDACTED);
                } else {
                    out.push_str(segment);
                }
            }
        }
        None => out.push_str(url.path()),
    }
    if url.query().is_some() {
        out.push_str("?[query not shown]");
    }
    escape_controls(&out).into_owned()
}

/// [`url_for_message`] of a configured value that may not even parse: the text before any `?` or
/// `#`, without user info, when it is not a URL.
pub fn url_text_for_message(text: &str) -> String {
    if let Ok(url) = Url::parse(text.trim()) {
        return url_for_message(&url);
    }
    let before_query = text.trim().split(['?', '#']).next().unwrap_or("");
    let shown = match before_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let path = if path.is_empty() && !rest.contains('/') { String::new() } else { format!("/{path}") };
            format!("{scheme}://{host}{path}")
        }
        None => before_query.rsplit_once('@').map_or(before_query, |(_, h)| h).to_owned(),
    };
    escape_controls(&shown).into_owned()
}

/// Whether `c` must not reach a message as it is: C0 and C1 controls, DEL, the line and paragraph
/// separators, and the bidirectional marks and overrides (which reorder what a terminal shows).
fn must_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with control characters written as escapes: `\n`, `\r`, `\t`, else `\u{1b}`. A
/// backslash is left as it is, so escaping twice changes nothing.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(must_escape) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(Escaped(text).to_string())
}

/// Displays its text with [`escape_controls`] applied, without allocating: for `format!` and
/// tracing fields (`message_id = %Escaped(id)`).
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if must_escape(c) => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "tok-7f3e9c2a/+x=";

    #[test]
    fn a_credential_is_removed_in_every_form_it_is_sent_in() {
        let mut r = Redactor::new().with_secret(TOKEN);
        r.add_basic_credentials("svc", TOKEN);
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("svc:{TOKEN}"));
        let token_base64 = [&base64::engine::general_purpose::STANDARD, &base64::engine::general_purpose::URL_SAFE_NO_PAD].map(|e| e.encode(TOKEN));
        let forms = [
            TOKEN.to_owned(),
            percent_encoded(TOKEN),
            r#"tok-7f3e9c2a\/+x="#.to_owned(),
            basic.clone(),
            basic.trim_end_matches('=').to_owned(),
            token_base64[0].clone(),
            token_base64[1].clone(),
        ];
        for form in &forms {
            let text = r.redact(&format!("you sent: {form}!"));
            assert_eq!(text, "you sent: [redacted]!", "{form}");
        }
        let mut headers = Redactor::new();
        headers.add_header_value(&HeaderValue::from_str(&format!("Basic {basic}")).unwrap());
        assert_eq!(headers.redact(&format!("got Authorization: Basic {basic}")), "got Authorization: Basic [redacted]");
        assert_eq!(headers.redact(&format!("got {basic}")), "got [redacted]");
    }

    #[test]
    fn short_values_are_not_searched_and_a_credential_cut_at_the_end_is_removed() {
        let r = Redactor::new().with_secret("abc");
        assert_eq!(r.redact("abc abcd"), "abc abcd");
        let r = Redactor::new().with_secret("0123456789-SECRET");
        assert_eq!(r.redact("echo: 0123456"), "echo: [redacted]");
        assert_eq!(r.redact("echo: 012"), "echo: 012");
    }

    #[test]
    fn url_credentials_are_secrets() {
        let url = Url::parse("https://user:pa%24%24word@logs.example.com/receiver/v1/http/CODE-SECRET?sv=2025&sig=ab%2Bcd%3D%3D").unwrap();
        let mut r = Redactor::new();
        r.add_url(&url, Some(3));
        for form in ["pa%24%24word", "pa$$word", "ab%2Bcd%3D%3D", "ab+cd==", "CODE-SECRET"] {
            assert_eq!(r.redact(&format!("<{form}>")), "<[redacted]>", "{form}");
        }
    }

    #[test]
    fn spans_of_the_request_body_are_not_quoted() {
        let body = br#"{"id":"j-1","lines":[{"input":"EVENT-FIELD-MARKER-42"}],"status":"ok"}"#;
        assert_eq!(without_request_spans("bad value EVENT-FIELD-MARKER-42 at 3", body), "bad value [request data] at 3");
        // echoed inside a JSON string: the escapes do not hide it
        let echoed = r#"{"error":"cannot parse {\"id\":\"j-1\",\"lines\":[{\"input\":\"EVENT-FIELD-MARKER-42\"}]}"}"#;
        let quoted = without_request_spans(echoed, body);
        assert!(!quoted.contains("MARKER") && !quoted.contains("lines"), "{quoted}");
        assert!(quoted.starts_with(r#"{"error":"cannot parse [request data]"#), "{quoted}");
        // the vendor's own words stay
        assert_eq!(without_request_spans("Invalid data format", body), "Invalid data format");
        assert_eq!(without_request_spans("é EVENT-FIELD-MARKER-42 é", body), "é [request data] é");
        // a body that is itself escaped JSON (Datadog's message), echoed as it was sent
        let escaped_body = br#"[{"message":"{\"id\":\"j-1\",\"recipe_id\":\"7\"}"}]"#;
        let echoed = r#"bad item: [{"message":"{\"id\":\"j-1\",\"recipe_id\":\"7\"}"}]"#;
        assert_eq!(without_request_spans(echoed, escaped_body), "bad item: [request data]");
    }

    #[test]
    fn a_quote_is_redacted_on_one_line_escaped_and_cut() {
        let r = Redactor::new().with_secret(TOKEN);
        let body = b"{\"id\":\"EVENT-FIELD-MARKER-42\"}";
        let reply = format!("invalid\n  token {TOKEN} for \"EVENT-FIELD-MARKER-42\"\x1b[2J\u{202e}");
        assert_eq!(r.quote(&reply, body, 300), "invalid token [redacted] for [request data]\\u{1b}[2J\\u{202e}");
        let long = "é".repeat(400);
        assert_eq!(r.quote(&long, body, 300), format!("{}… (800 bytes in all)", "é".repeat(300)));
    }

    #[test]
    fn urls_show_scheme_host_port_and_path_only() {
        let cases = [
            ("https://acct.blob.core.windows.net/audit?sv=2025-11-05&sp=cw&sig=SECRET", "https://acct.blob.core.windows.net/audit?[query not shown]"),
            ("https://user:SECRET@logs.example.com:8443/in", "https://logs.example.com:8443/in"),
            ("https://x.ingest.monitor.azure.com/?code=SECRET#frag", "https://x.ingest.monitor.azure.com?[query not shown]"),
        ];
        for (text, want) in cases {
            assert_eq!(url_for_message(&Url::parse(text).unwrap()), want);
            assert_eq!(url_text_for_message(text), want);
        }
        let hidden = url_for_message_hiding(&Url::parse("https://c.sumologic.com/receiver/v1/http/SECRET").unwrap(), Some(3));
        assert_eq!(hidden, "https://c.sumologic.com/receiver/v1/http/[redacted]");
        // not URLs at all: still no query and no user info
        assert_eq!(url_text_for_message("https://user:SECRET@[bad/x?sig=SECRET"), "https://[bad/x");
        assert_eq!(url_text_for_message("acct.blob.core.windows.net?sig=SECRET"), "acct.blob.core.windows.net");
        assert_eq!(url_text_for_message("https://u:SECRET@host/"), "https://host");
    }

    #[test]
    fn configuration_errors_never_show_a_query_string_or_user_info() {
        use crate::destinations::azure::connection::BlobSettings;
        use crate::destinations::azure::entra_token::EntraSettings;
        use crate::destinations::azure::monitor_sink::MonitorSettings;
        use crate::destinations::rest::RestSettings;
        use crate::intake::dead_letter::DeadLetterSettings;

        let blob_sas_url = "https://acct.blob.core.windows.net/audit?sv=2025-11-05&sp=cw&sig=SECRET";
        let blob = [
            ("AUDITSTREAM_AZURE_BLOB_CONTAINER", "audit"),
            ("AUDITSTREAM_AZURE_BLOB_ACCOUNT", "acct"),
            ("AUDITSTREAM_AZURE_BLOB_ENDPOINT", blob_sas_url),
            ("AUDITSTREAM_AZURE_BLOB_KEY_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:k"),
        ];
        let monitor = [
            ("AUDITSTREAM_AZURE_MONITOR_ENDPOINT", "https://dce.eastus-1.ingest.monitor.azure.com/?code=SECRET"),
            ("AUDITSTREAM_AZURE_MONITOR_DCR_ID", "dcr-0a"),
            ("AUDITSTREAM_AZURE_MONITOR_STREAM", "Custom-T_CL"),
        ];
        let entra = [
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "client-secret"),
            ("AZURE_AUTHORITY_HOST", "https://user:SECRET@login.example.com/?sig=SECRET"),
        ];
        let errors = [
            BlobSettings::from_env(&blob[..]).unwrap_err().to_string(),
            MonitorSettings::from_env(&monitor[..]).unwrap_err().to_string(),
            EntraSettings::from_env(&entra[..]).unwrap_err().to_string(),
            DeadLetterSettings::from_env(&[("AUDITSTREAM_DLQ_URL", "ftp://user:SECRET@sqs.example.com/q?sig=SECRET")][..]).unwrap_err().to_string(),
            RestSettings::from_env(&[("AUDITSTREAM_REST_URL", "http://user:SECRET@logs.example.com/in?token=SECRET")][..], None).unwrap_err().to_string(),
        ];
        for err in &errors {
            assert!(!err.contains("SECRET") && !err.contains("user"), "{err}");
        }
        assert!(
            errors[0].starts_with("AUDITSTREAM_AZURE_BLOB_ENDPOINT=\"https://acct.blob.core.windows.net/audit?[query not shown]\" is not valid"),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].starts_with("AUDITSTREAM_AZURE_MONITOR_ENDPOINT=\"https://dce.eastus-1.ingest.monitor.azure.com?[query not shown]\" is not valid"),
            "{}",
            errors[1]
        );
        assert!(errors[2].starts_with("AZURE_AUTHORITY_HOST=\"https://login.example.com?[query not shown]\" is not valid"), "{}", errors[2]);
        assert!(errors[3].starts_with("AUDITSTREAM_DLQ_URL=\"ftp://sqs.example.com/q?[query not shown]\" is not valid"), "{}", errors[3]);
    }

    #[test]
    fn control_characters_are_escaped_once() {
        let name = "events\x1b[2J\nfailed fake\r\u{7f}\u{9b}\u{202e}\u{2028}.json";
        let escaped = escape_controls(name);
        assert_eq!(escaped, "events\\u{1b}[2J\\nfailed fake\\r\\u{7f}\\u{9b}\\u{202e}\\u{2028}.json");
        assert!(!escaped.chars().any(must_escape));
        assert_eq!(escape_controls(&escaped), escaped, "escaping twice changes nothing");
        assert!(matches!(escape_controls("plain é/ü \\ text"), Cow::Borrowed(_)));
        assert_eq!(format!("failed {}", Escaped("m-1\nfailed m-2")), "failed m-1\\nfailed m-2");
    }
}
