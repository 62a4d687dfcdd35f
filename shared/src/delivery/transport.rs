//! What every HTTP destination (REST, Azure Blob, Azure Monitor, Entra ID) needs around its
//! requests: the one builder of HTTP clients (which never follow a redirect), a transport failure
//! in words that never carry the URL, and gzip of a body.

use std::io::Write;
use std::time::Duration;

/// How long and over what an HTTP client may talk; everything else is the same for every client.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// Per request; `None` when each call sets its own.
    pub timeout: Option<Duration>,
    pub connect_timeout: Duration,
    /// Refuse plain `http://` (set unless the endpoint is a loopback one).
    pub https_only: bool,
}

/// The HTTP client of every destination, built once per cold start. It follows no redirect: a
/// redirect would re-send the request — its `Authorization` header, a client secret in a form
/// body, a SAS token in the URL, the events — to whatever host the answer names (another domain,
/// `http://10.x`), and a `Referer` would carry the URL there too. A 3xx answer is a permanent
/// failure instead ([`redirect_not_followed`]): the operator configures the final URL.
pub fn http_client(options: ClientOptions) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .connect_timeout(options.connect_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(50))
        .user_agent(concat!("auditstream/", env!("CARGO_PKG_VERSION")))
        .https_only(options.https_only);
    if let Some(timeout) = options.timeout {
        builder = builder.timeout(timeout);
    }
    builder.build()
}

/// Whether `url` is plain `http://` to a loopback host (`127.0.0.0/8`, `::1`, `localhost`): a local
/// receiver, Azurite or a test fake, the only place a credential or an event may travel
/// unencrypted. Every HTTP destination (REST endpoints, Azure Blob, Azure Monitor, Entra ID)
/// accepts `http://` only when this holds.
pub fn is_loopback_http(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
    url.scheme() == "http" && (host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()))
}

/// Why a 3xx answer failed, and what to fix: the variable holding the URL to point at the final
/// address.
pub fn redirect_not_followed(url_var: &str) -> String {
    format!("redirects are not followed (a redirect would carry the credentials and the events to another host): set {url_var} to the final URL")
}

/// A transport failure (no HTTP answer) in words, with its chain of causes and without the URL:
/// a SAS token, a Sumo Logic code or a signed query may be in it.
pub fn transport_failure(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "error sending the request"
    };
    let mut out = kind.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        push_cause(&mut out, &s.to_string());
        source = s.source();
    }
    out
}

/// An error and its causes, `outer: inner: innermost`, each said once.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        push_cause(&mut text, &s.to_string());
        source = s.source();
    }
    text
}

/// Appends `cause` unless the text already says it (many errors repeat their source's message).
fn push_cause(text: &mut String, cause: &str) {
    if !text.contains(cause) {
        text.push_str(": ");
        text.push_str(cause);
    }
}

/// Gzip of `body` at level 1: Lambda bills CPU time, and the fast level already shrinks JSON
/// several times over.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4 + 64), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for (url, ok) in [
            ("http://127.0.0.1:10000/devstoreaccount1", true),
            ("http://127.9.9.9/", true),
            ("http://localhost:8080", true),
            ("http://LOCALHOST/", true),
            ("http://[::1]:80", true),
            ("http://example.com", false),
            ("http://10.0.0.1", false),
            ("http://localhost.example.com/", false),
            ("https://127.0.0.1", false),
        ] {
            assert_eq!(is_loopback_http(&reqwest::Url::parse(url).unwrap()), ok, "{url}");
        }
    }

    #[test]
    fn a_chain_says_each_cause_once() {
        let e = Layer("client error (Connect)", Some(Box::new(Layer("tcp connect error", Some(Box::new(Layer("Connection refused (os error 111)", None)))))));
        assert_eq!(error_chain(&e), "client error (Connect): tcp connect error: Connection refused (os error 111)");
        let repeated = Layer("dns error: no such host", Some(Box::new(Layer("no such host", None))));
        assert_eq!(error_chain(&repeated), "dns error: no such host");
    }

    #[tokio::test]
    async fn a_refused_connection_is_named_without_the_url() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/container/blob?sig=SECRET-SAS", closed.local_addr().unwrap());
        drop(closed);
        let e = reqwest::Client::new().get(&url).send().await.unwrap_err();
        let text = transport_failure(&e);
        assert!(text.starts_with("cannot connect"), "{text}");
        assert!(!text.contains("SECRET-SAS") && !text.contains("127.0.0.1"), "{text}");
    }

    #[test]
    fn gzip_round_trips() {
        let body = br#"{"id":"j-1","lines":[]}"#.repeat(100);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gzip(&body)[..]), &mut out).unwrap();
        assert_eq!(out, body);
    }
}
