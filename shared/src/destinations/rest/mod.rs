//! REST log services: a generic HTTPS endpoint, and presets for Splunk HEC, Datadog and Sumo Logic.
//!
//! One [`http::HttpLogSink`] sends every preset's requests; a preset only says what its vendor's
//! API page says — the URL, the auth header, the body, the limits, how its errors read — as one
//! implementation of [`RestPreset`] in one file ([`splunk_hec`], [`datadog`], [`sumo_logic`],
//! [`generic`]), listed once in `presets` below. Batching, splitting on 413 and retries are the shared
//! [`crate::delivery::log_batching::LogSinkDestination`] and [`crate::delivery::retry::RetryPolicy`]; documents arrive
//! masked, sized and templated, and are embedded in bodies as the JSON text they are.
//!
//! Used by the `rest-forwarder` Lambda and by `auditstream run --to rest` / `--to https://…`.
//!
//! # Configuration
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `AUDITSTREAM_REST_PRESET` | `generic` | `generic`, `splunk_hec`, `datadog` or `sumo_logic` |
//! | `AUDITSTREAM_REST_URL` | (required; Datadog: from the site) | the endpoint; `https://` required, `http://` only for 127.0.0.0/8, ::1, localhost |
//! | `AUDITSTREAM_REST_BATCH_MAX_EVENTS` | `1` | events per request: 1 is Workato's one POST per event; up to 10,000 (Datadog 1,000) |
//! | `AUDITSTREAM_REST_BATCH_MAX_BYTES` | the preset's limit | bytes per request body, uncompressed: generic 41,943,040 (one 40 MiB event, Workato's largest, plus the format's 0–3 bytes of wrapping; ≤ 100 MiB), Splunk 1,000,000 (≤ 800 MiB), Datadog 5,000,000 (max), Sumo 1,000,000 (max) |
//! | `AUDITSTREAM_REST_BATCH_FORMAT` | `json` (1 event), else `json_array` | generic only: `json`, `json_array` or `ndjson` |
//! | `AUDITSTREAM_REST_GZIP` | `false` | gzip request bodies (`Content-Encoding: gzip`; costs CPU, saves bandwidth) |
//! | `AUDITSTREAM_REST_HEADERS` | (none) | extra headers, `Name: value; Other-Name: value` (values treated as secrets) |
//! | `AUDITSTREAM_REST_AUTH` | generic/sumo `none`, splunk `splunk`, datadog `header` | `none`, `bearer`, `basic`, `header`, `splunk` ([`auth`]) |
//! | `AUDITSTREAM_REST_AUTH_HEADER` | datadog `DD-API-KEY` | the header carrying the token with `AUDITSTREAM_REST_AUTH=header` |
//! | `AUDITSTREAM_REST_USERNAME` | — | user name with `AUDITSTREAM_REST_AUTH=basic` (the token is the password) |
//! | `AUDITSTREAM_REST_TOKEN_SECRET_ARN` | — | Secrets Manager secret holding the token (read once per cold start) |
//! | `AUDITSTREAM_REST_TOKEN_SECRET_KEY` | `token` | the field holding the token when the secret is a JSON object |
//! | `AUDITSTREAM_REST_TOKEN` | — | the token itself, for local runs only |
//! | `AUDITSTREAM_REST_TIMEOUT_SECS` | `15` | per request; keep the function's timeout well above it |
//! | `AUDITSTREAM_SPLUNK_INDEX` / `_SOURCE` / `_SOURCETYPE` / `_HOST` | —, `workato`, `_json`, — | HEC envelope fields ([`splunk_hec`]) |
//! | `AUDITSTREAM_DATADOG_SITE` | `datadoghq.com` | the intake site ([`datadog`]) |
//! | `AUDITSTREAM_DATADOG_SERVICE` / `_SOURCE` / `_TAGS` / `_HOSTNAME` | `workato`, `workato`, —, — | log item fields |
//! | `AUDITSTREAM_SUMO_CATEGORY` / `_NAME` / `_HOST` / `_FIELDS` | — | `X-Sumo-*` headers ([`sumo_logic`]) |
//!
//! Sizes: a request never exceeds `AUDITSTREAM_REST_BATCH_MAX_BYTES`; events are packed into
//! requests within it, and an event that would not fit a request alone (or Datadog's 1,000,000
//! bytes per log) has its `lines` replaced by the size placeholder, as `AUDITSTREAM_MAX_EVENT_BYTES`
//! does — with a warning naming the message and what sets the limit (the variable to raise, or the
//! vendor's own limit), never the event's content.
//!
//! Every request also carries `X-Auditstream-Event-Ids` ([`headers`]) so a receiver can drop
//! duplicates: delivery is at least once (a retried or redelivered request is sent again).
//!
//! # With a log template
//!
//! With `AUDITSTREAM_LOG_TEMPLATE` set, each document is the rendered template, and a preset sends
//! it as the event it carries, never wrapped a second time in an object of the same kind:
//!
//! - **generic** and **sumo_logic**: the rendered template is the event, as the body (`json`) or
//!   as one item or line of it; these presets add nothing around an event.
//! - **splunk_hec**: a template whose own object has a top-level `event` key is the HEC envelope
//!   itself and is sent as it is, `time` and the configured envelope fields added where it has
//!   none; any other template is the envelope's `event` ([`splunk_hec`]).
//! - **datadog**: a template whose own object has a top-level `message` key (Workato's documented
//!   Datadog template) is the log item itself, `ddsource`/`service`/… added where it has none and
//!   a non-string `message` sent as its JSON text; any other template is the item's `message`
//!   ([`datadog`]).
//!
//! Which case applies is decided once, at cold start, from the template's own keys
//! ([`crate::pipeline::template::LogTemplate::object_keys`]), never from an event's.

pub mod auth;
pub mod datadog;
pub mod endpoint;
pub mod generic;
pub mod headers;
pub mod http;
pub mod preset;
pub mod splunk_hec;
pub mod sumo_logic;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;

use self::auth::{scheme_from_parts, AuthScheme, AUTH_HEADER_VAR, AUTH_VAR, USERNAME_VAR};
use self::datadog::Datadog;
use self::endpoint::Endpoint;
use self::generic::Generic;
use self::headers::{parse_extra_headers, HEADERS_VAR};
pub use self::preset::RestPreset;
use self::splunk_hec::SplunkHec;
use self::sumo_logic::SumoLogic;
use self::token::{TokenSource, TOKEN_SECRET_ARN_VAR};
use crate::config::{ConfigError, Env, EnvExt};
use crate::delivery::destination::{EventLimit, SinkLimits};
use crate::pipeline::template::LogTemplate;
use crate::secret::Secret;

pub const PRESET_VAR: &str = "AUDITSTREAM_REST_PRESET";
pub const URL_VAR: &str = "AUDITSTREAM_REST_URL";
pub const MAX_EVENTS_VAR: &str = "AUDITSTREAM_REST_BATCH_MAX_EVENTS";
pub const MAX_BYTES_VAR: &str = "AUDITSTREAM_REST_BATCH_MAX_BYTES";
pub const GZIP_VAR: &str = "AUDITSTREAM_REST_GZIP";
pub const TIMEOUT_VAR: &str = "AUDITSTREAM_REST_TIMEOUT_SECS";

/// Reads the settings of one preset from `E`.
type Configure<E> = fn(&E, Option<&LogTemplate>) -> Result<RestSettings, ConfigError>;

/// Every preset, by its `AUDITSTREAM_REST_PRESET` name; the first is the default. A new vendor is
/// a file implementing [`RestPreset`] and one line here.
fn presets<E: Env + ?Sized>() -> [(&'static str, Configure<E>); 4] {
    [preset::<Generic, E>(), preset::<SplunkHec, E>(), preset::<Datadog, E>(), preset::<SumoLogic, E>()]
}

fn preset<P: RestPreset + 'static, E: Env + ?Sized>() -> (&'static str, Configure<E>) {
    (P::name(), RestSettings::configure::<P, E>)
}

/// Everything the REST destination is configured with. The token itself is not here: it is
/// resolved from [`RestSettings::token`] once, when the sink is built.
#[derive(Debug, Clone)]
pub struct RestSettings {
    /// What the vendor's requests look like.
    pub preset: Arc<dyn RestPreset>,
    pub endpoint: Endpoint,
    pub auth: AuthScheme,
    pub token: TokenSource,
    pub extra_headers: HeaderMap,
    pub gzip: bool,
    pub max_events: usize,
    /// The largest request body, uncompressed.
    pub max_request_bytes: usize,
    pub timeout: Duration,
}

impl RestSettings {
    /// The destination from its variables. `template` is the pipeline's log template
    /// (`PipelineSettings::pipeline.template`): whether a document is already the vendor's object
    /// depends on it (see "With a log template" above).
    pub fn from_env<E: Env + ?Sized>(env: &E, template: Option<&LogTemplate>) -> Result<RestSettings, ConfigError> {
        let presets = presets::<E>();
        let configure = env.choice(PRESET_VAR, presets[0].1, &presets)?;
        configure(env, template)
    }

    /// The settings of preset `P`: the variables every preset reads, and its own.
    fn configure<P: RestPreset + 'static, E: Env + ?Sized>(env: &E, template: Option<&LogTemplate>) -> Result<RestSettings, ConfigError> {
        RestSettings::configure_at::<P, E>(env, template, || P::endpoint(env))
    }

    /// [`RestSettings::configure`] with the endpoint from `endpoint` (its variables, or a URL
    /// given on the command line), read after the token as always.
    fn configure_at<P: RestPreset + 'static, E: Env + ?Sized>(
        env: &E,
        template: Option<&LogTemplate>,
        endpoint: impl FnOnce() -> Result<Endpoint, ConfigError>,
    ) -> Result<RestSettings, ConfigError> {
        let token = TokenSource::from_env(env)?;
        let endpoint = endpoint()?;
        let auth = scheme_from_parts(
            env.optional(AUTH_VAR).as_deref(),
            env.optional(AUTH_HEADER_VAR).as_deref(),
            env.optional(USERNAME_VAR).as_deref(),
            P::default_auth(),
        )?;
        // A token must have somewhere to go, and an authentication that needs one must have one.
        match auth.needs_token() {
            true if token.is_none() => {
                return Err(ConfigError::Missing {
                    var: TOKEN_SECRET_ARN_VAR,
                    hint: "this endpoint's authentication needs a token: set AUDITSTREAM_REST_TOKEN_SECRET_ARN to a Secrets Manager secret holding it (AUDITSTREAM_REST_TOKEN for local runs), or AUDITSTREAM_REST_AUTH=none",
                })
            }
            true => {}
            false => P::check_unsent_token(&token, &endpoint)?,
        }

        let extra_headers = match env.optional(HEADERS_VAR) {
            Some(text) => parse_extra_headers(&text)?,
            None => HeaderMap::new(),
        };
        let max_events = env.number(MAX_EVENTS_VAR, 1, 1..=P::max_events() as u64)? as usize;
        if let Some(format) = env.optional(generic::FORMAT_VAR).filter(|_| !P::has_body_formats()) {
            return Err(ConfigError::Invalid {
                var: generic::FORMAT_VAR,
                value: format,
                expected: "unset: only the generic preset has a choice of body format; the vendor presets send their vendor's format".into(),
            });
        }
        let preset = P::from_env(env, template, max_events)?;
        let bytes = preset.request_bytes();
        let max_request_bytes = env.number(MAX_BYTES_VAR, bytes.default as u64, 1024..=bytes.max as u64)? as usize;
        Ok(RestSettings {
            preset: Arc::new(preset),
            endpoint,
            auth,
            token,
            extra_headers,
            gzip: env.flag(GZIP_VAR, false)?,
            max_events,
            max_request_bytes,
            timeout: Duration::from_secs(env.number(TIMEOUT_VAR, 15, 1..=900)?),
        })
    }

    /// The generic preset for one URL given on the command line (`auditstream run --to
    /// https://…`), named `option` in errors; every other variable is read from `env` as usual
    /// (`AUDITSTREAM_REST_PRESET` and `AUDITSTREAM_REST_URL` are not read). The generic preset
    /// sends a rendered template as the event it is, so no template is needed here.
    pub fn for_url<E: Env + ?Sized>(env: &E, option: &'static str, url: &str) -> Result<RestSettings, ConfigError> {
        RestSettings::configure_at::<Generic, E>(env, None, || Endpoint::parse(option, url, None))
    }

    /// The limits the batcher packs by. `max_request_bytes` there is a packing budget: documents
    /// whose sizes add up to it make a body within the real limit once wrapped, which the sink
    /// checks again before sending (an over-full request is split, never sent); a preset whose
    /// body escapes documents keeps some in reserve ([`RestPreset::packing_budget`]).
    pub fn limits(&self) -> SinkLimits {
        let hard = self.max_request_bytes;
        let (per_doc, per_request) = self.preset.overhead();
        let budget = self.preset.packing_budget(hard.saturating_sub(per_request + per_doc * self.max_events));
        SinkLimits { max_events: self.max_events, max_request_bytes: budget.max(hard / 2), max_event_bytes: Some(self.max_event_bytes()) }
    }

    /// The largest document a request carries alone, and what sets it.
    fn max_event_bytes(&self) -> EventLimit {
        self.preset.max_event_bytes(self.max_request_bytes)
    }

    /// The URL requests go to once the token is known.
    pub fn request_endpoint(&self, token: Option<&Secret>) -> Endpoint {
        self.preset.request_endpoint(&self.endpoint, &self.auth, token)
    }
}

/// Documents for the encoders' tests.
#[cfg(test)]
pub(crate) mod test_docs {
    use crate::pipeline::event::{ActivityMeta, EventMeta, JobMeta};
    use crate::pipeline::key::{KeyLayout, KeyPrefix, ObjectKey};
    use crate::pipeline::template::LogTemplate;
    use crate::pipeline::timestamp::UtcTime;
    use crate::pipeline::Document;

    pub fn job_doc(id: &str, time: &str, body: &str) -> Document {
        let time = UtcTime::parse(time).expect("test time");
        let meta = EventMeta::Job(JobMeta { id: id.into(), recipe_id: "7".into(), status: "succeeded".into(), user_id: "5".into(), time });
        let key = ObjectKey::for_event(&meta, KeyLayout::Standard, &KeyPrefix::default(), body.as_bytes());
        Document { key, body: body.as_bytes().to_vec(), meta, masked_lines: 0, truncated: false }
    }

    /// A log template, and a job document at `time` whose body is the template rendered around
    /// `event`.
    pub fn templated(time: &str, template: &str, event: &str) -> (LogTemplate, Document) {
        let t = LogTemplate::compile(template).unwrap_or_else(|e| panic!("{template}: {e}"));
        let mut body = Vec::new();
        t.render(&mut body, crate::pipeline::timestamp::Now { epoch_nanos: 1_685_683_801_002_213_900 }, &|o: &mut dyn crate::pipeline::json_text::JsonOut| {
            o.raw(event)
        });
        let mut doc = job_doc("j-1", time, "{}");
        doc.body = body;
        (t, doc)
    }

    pub fn activity_doc(id: &str, time: &str, body: &str) -> Document {
        let time = UtcTime::parse(time).expect("test time");
        let meta =
            EventMeta::Activity(ActivityMeta { id: Some(id.into()), event_type: "user_login".into(), resource_type: None, workspace_id: "9".into(), time });
        let key = ObjectKey::for_event(&meta, KeyLayout::Standard, &KeyPrefix::default(), body.as_bytes());
        Document { key, body: body.as_bytes().to_vec(), meta, masked_lines: 0, truncated: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::DEFAULT_MAX_EVENT_BYTES;

    use super::generic::BodyFormat;
    use super::token::TOKEN_VAR;
    use crate::delivery::destination::LimitSource;
    use crate::pipeline::Document;
    use reqwest::header::HeaderName;

    fn settings(env: &[(&str, &str)]) -> Result<RestSettings, ConfigError> {
        RestSettings::from_env(env, None)
    }

    /// The preset `s` was configured with, as `P` (a panic if it is another).
    fn preset_as<P: 'static>(s: &RestSettings) -> &P {
        s.preset.as_any().downcast_ref::<P>().unwrap_or_else(|| panic!("another preset: {:?}", s.preset))
    }

    #[test]
    fn generic_defaults_are_one_json_event_per_request() {
        let s = settings(&[(URL_VAR, "https://logs.example.com/in")]).unwrap();
        assert_eq!(preset_as::<Generic>(&s), &Generic { format: BodyFormat::Json });
        assert_eq!(s.endpoint.url().as_str(), "https://logs.example.com/in");
        assert_eq!((s.auth.clone(), s.token.clone(), s.gzip, s.max_events, s.max_request_bytes), (AuthScheme::None, TokenSource::None, false, 1, 41_943_040));
        assert_eq!(s.timeout, Duration::from_secs(15));
        // one event of Workato's largest, 40 MiB, goes whole
        let limit = EventLimit::new(DEFAULT_MAX_EVENT_BYTES, LimitSource::Variable(MAX_BYTES_VAR));
        assert_eq!(s.limits(), SinkLimits { max_events: 1, max_request_bytes: DEFAULT_MAX_EVENT_BYTES, max_event_bytes: Some(limit) });
        assert_eq!(s.preset.content_type(), "application/json");
    }

    #[test]
    fn the_generic_preset_sends_any_event_workato_sends_whole_and_packs_within_the_request_limit() {
        let url = (URL_VAR, "https://logs.example.com/in");
        let big = test_docs::job_doc("j-big", "2024-01-01T00:00:00Z", &format!("{{\"x\":\"{}\"}}", "a".repeat(DEFAULT_MAX_EVENT_BYTES - 8)));
        assert_eq!(big.body.len(), DEFAULT_MAX_EVENT_BYTES);
        for env in [vec![url], vec![url, (MAX_EVENTS_VAR, "10")], vec![url, (MAX_EVENTS_VAR, "10"), (generic::FORMAT_VAR, "ndjson")]] {
            let s = settings(&env).unwrap();
            assert_eq!(s.limits().max_event_bytes, Some(EventLimit::new(DEFAULT_MAX_EVENT_BYTES, LimitSource::Variable(MAX_BYTES_VAR))), "{env:?}");
            let mut body = Vec::new();
            s.preset.encode(&[&big], &mut body);
            assert!(body.len() <= s.max_request_bytes, "{env:?}: a 40 MiB event alone is a request of {} bytes, over {}", body.len(), s.max_request_bytes);
        }
        // batched, requests stay within a configured limit
        let s = settings(&[url, (MAX_EVENTS_VAR, "10"), (generic::FORMAT_VAR, "json_array"), (MAX_BYTES_VAR, "2000000")]).unwrap();
        let docs: Vec<Document> =
            (0..5).map(|i| test_docs::job_doc(&format!("j-{i}"), "2024-01-01T00:00:00Z", &format!("{{\"x\":\"{}\"}}", "a".repeat(900_000)))).collect();
        let limits = s.limits();
        let batches = crate::delivery::pack::pack(
            &docs.iter().map(|d| d.body.len()).collect::<Vec<_>>(),
            crate::delivery::pack::BatchLimits { max_entries: limits.max_events, max_bytes: limits.max_request_bytes },
        );
        assert_eq!(batches, [0..2, 2..4, 4..5]);
        for range in batches {
            let mut body = Vec::new();
            s.preset.encode(&docs[range].iter().collect::<Vec<_>>(), &mut body);
            assert!(body.len() <= 2_000_000, "{}", body.len());
        }
    }

    #[test]
    fn generic_batching_and_auth() {
        let s = settings(&[
            (URL_VAR, "https://logs.example.com/in"),
            (MAX_EVENTS_VAR, "100"),
            (MAX_BYTES_VAR, "2_000_000"),
            (generic::FORMAT_VAR, "ndjson"),
            (GZIP_VAR, "true"),
            (AUTH_VAR, "header"),
            (AUTH_HEADER_VAR, "X-Api-Key"),
            (TOKEN_VAR, "k3y-k3y-k3y"),
            (HEADERS_VAR, "X-Env: prod"),
            (TIMEOUT_VAR, "30"),
        ])
        .unwrap();
        assert_eq!(preset_as::<Generic>(&s), &Generic { format: BodyFormat::Ndjson });
        assert_eq!(s.auth, AuthScheme::Header { name: HeaderName::from_static("x-api-key") });
        assert_eq!(s.token, TokenSource::Inline(Secret::new("k3y-k3y-k3y")));
        assert!(s.gzip);
        assert_eq!(s.extra_headers["x-env"], "prod");
        assert_eq!(s.timeout, Duration::from_secs(30));
        // 100 newlines reserved out of 2,000,000
        let limit = EventLimit::new(1_999_999, LimitSource::Variable(MAX_BYTES_VAR));
        assert_eq!(s.limits(), SinkLimits { max_events: 100, max_request_bytes: 1_999_900, max_event_bytes: Some(limit) });
        let s = settings(&[(URL_VAR, "https://logs.example.com/in"), (MAX_EVENTS_VAR, "10")]).unwrap();
        assert_eq!(preset_as::<Generic>(&s), &Generic { format: BodyFormat::JsonArray });
    }

    #[test]
    fn splunk_preset() {
        let s = settings(&[
            (PRESET_VAR, "splunk_hec"),
            (URL_VAR, "https://splunk.example.com:8088"),
            (TOKEN_VAR, "0000-1111-2222"),
            ("AUDITSTREAM_SPLUNK_INDEX", "audit"),
        ])
        .unwrap();
        assert_eq!(s.endpoint.url().as_str(), "https://splunk.example.com:8088/services/collector/event");
        assert_eq!(s.auth, AuthScheme::Splunk);
        assert_eq!(s.max_request_bytes, 1_000_000);
        let hec = preset_as::<SplunkHec>(&s);
        assert_eq!(hec.index.as_deref(), Some("audit"));
        let limits = s.limits();
        assert_eq!(limits.max_events, 1);
        assert_eq!(limits.max_event_bytes, Some(EventLimit::new(1_000_000 - hec.envelope_bytes(), LimitSource::Variable(MAX_BYTES_VAR))));
    }

    #[test]
    fn datadog_preset() {
        let s = settings(&[(PRESET_VAR, "datadog"), (TOKEN_VAR, "dd-api-key-value"), ("AUDITSTREAM_DATADOG_SITE", "datadoghq.eu"), (MAX_EVENTS_VAR, "1000")])
            .unwrap();
        assert_eq!(s.endpoint.url().as_str(), "https://http-intake.logs.datadoghq.eu/api/v2/logs");
        assert_eq!(s.auth, AuthScheme::Header { name: HeaderName::from_static("dd-api-key") });
        let limits = s.limits();
        let per_log = EventLimit::new(1_000_000, LimitSource::Service("Datadog takes at most 1,000,000 bytes per log"));
        assert_eq!((limits.max_events, limits.max_event_bytes), (1000, Some(per_log)));
        // a smaller request size is what limits an event then
        let s = settings(&[(PRESET_VAR, "datadog"), (TOKEN_VAR, "dd-api-key-value"), (MAX_BYTES_VAR, "1000000")]).unwrap();
        assert_eq!(s.limits().max_event_bytes.map(|l| l.set_by), Some(LimitSource::Variable(MAX_BYTES_VAR)));
        assert!(limits.max_request_bytes < 4_000_000 && limits.max_request_bytes > 3_000_000, "{limits:?}");
        // a proxy URL gets the path; the site and a URL together are ambiguous
        let s = settings(&[(PRESET_VAR, "datadog"), (TOKEN_VAR, "dd-api-key-value"), (URL_VAR, "http://127.0.0.1:9000")]).unwrap();
        assert_eq!(s.endpoint.url().as_str(), "http://127.0.0.1:9000/api/v2/logs");
        let err = settings(&[
            (PRESET_VAR, "datadog"),
            (TOKEN_VAR, "dd-api-key-value"),
            (URL_VAR, "http://127.0.0.1:9000"),
            ("AUDITSTREAM_DATADOG_SITE", "datadoghq.eu"),
        ])
        .unwrap_err();
        assert_eq!(err.to_string(), "AUDITSTREAM_DATADOG_SITE=\"datadoghq.eu\" is not valid: expected unset when AUDITSTREAM_REST_URL is set (set one of them: the site, or the full intake URL)");
    }

    #[test]
    fn sumo_preset_keeps_the_collector_code_secret() {
        let s = settings(&[
            (PRESET_VAR, "sumo_logic"),
            (URL_VAR, "https://collectors.sumologic.com/receiver/v1/http/ZaVnC4dhaV0SECRET"),
            ("AUDITSTREAM_SUMO_CATEGORY", "prod/audit"),
        ])
        .unwrap();
        assert_eq!(s.endpoint.to_string(), "https://collectors.sumologic.com/receiver/v1/http/[redacted]");
        assert!(!format!("{s:?}").contains("SECRET"));
        assert_eq!(s.request_endpoint(None).url().as_str(), "https://collectors.sumologic.com/receiver/v1/http/ZaVnC4dhaV0SECRET");
        assert_eq!(s.limits().max_event_bytes, Some(EventLimit::new(999_999, LimitSource::Service("Sumo Logic takes at most 1,000,000 bytes per request"))));

        let s =
            settings(&[(PRESET_VAR, "sumo_logic"), (URL_VAR, "https://collectors.sumologic.com/receiver/v1/http"), (TOKEN_VAR, "ZaVnC4dhaV0SECRET")]).unwrap();
        let e = s.request_endpoint(Some(&Secret::new("ZaVnC4dhaV0SECRET")));
        assert_eq!(e.url().as_str(), "https://collectors.sumologic.com/receiver/v1/http/ZaVnC4dhaV0SECRET");
        assert_eq!(e.to_string(), "https://collectors.sumologic.com/receiver/v1/http/[redacted]");
    }

    #[test]
    fn bad_values_name_the_variable_and_never_show_a_secret() {
        let url = (URL_VAR, "https://logs.example.com/in");
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![(PRESET_VAR, "elastic"), url], "AUDITSTREAM_REST_PRESET=\"elastic\" is not valid: expected one of generic, splunk_hec, datadog, sumo_logic"),
            (vec![], "AUDITSTREAM_REST_URL is not set: the endpoint to POST events to, e.g. https://logs.example.com/ingest"),
            (vec![(URL_VAR, "http://logs.example.com/in")], "AUDITSTREAM_REST_URL=\"http://logs.example.com/in\" is not valid: expected an https:// URL (plain http:// is allowed only for 127.0.0.1, ::1 and localhost, so that tokens and events never cross a network unencrypted)"),
            (vec![url, (MAX_EVENTS_VAR, "0")], "AUDITSTREAM_REST_BATCH_MAX_EVENTS=\"0\" is not valid: expected a whole number from 1 to 10000"),
            (vec![(PRESET_VAR, "datadog"), (TOKEN_VAR, "dd-key-secret"), (MAX_EVENTS_VAR, "5000")], "AUDITSTREAM_REST_BATCH_MAX_EVENTS=\"5000\" is not valid: expected a whole number from 1 to 1000"),
            (vec![(PRESET_VAR, "sumo_logic"), (URL_VAR, "https://c.sumologic.com/receiver/v1/http/X"), (MAX_BYTES_VAR, "2000000")], "AUDITSTREAM_REST_BATCH_MAX_BYTES=\"2000000\" is not valid: expected a whole number from 1024 to 1000000"),
            (vec![url, (MAX_EVENTS_VAR, "10"), (generic::FORMAT_VAR, "json")], "AUDITSTREAM_REST_BATCH_FORMAT=\"json\" is not valid: expected json_array or ndjson when AUDITSTREAM_REST_BATCH_MAX_EVENTS is above 1 (json sends one event per request)"),
            (vec![(PRESET_VAR, "splunk_hec"), (URL_VAR, "https://s:8088"), (TOKEN_VAR, "hec-secret-token"), (generic::FORMAT_VAR, "ndjson")], "AUDITSTREAM_REST_BATCH_FORMAT=\"ndjson\" is not valid: expected unset: only the generic preset has a choice of body format; the vendor presets send their vendor's format"),
            (vec![(PRESET_VAR, "splunk_hec"), (URL_VAR, "https://s:8088/services/collector/raw"), (TOKEN_VAR, "hec-secret-token")], "AUDITSTREAM_REST_URL=\"https://s:8088/services/collector/raw\" is not valid: expected the HEC JSON event endpoint, https://<host>:8088/services/collector/event (raw, ack and health endpoints take other requests)"),
            (vec![(PRESET_VAR, "splunk_hec"), (URL_VAR, "https://s:8088")], "AUDITSTREAM_REST_TOKEN_SECRET_ARN is not set: this endpoint's authentication needs a token: set AUDITSTREAM_REST_TOKEN_SECRET_ARN to a Secrets Manager secret holding it (AUDITSTREAM_REST_TOKEN for local runs), or AUDITSTREAM_REST_AUTH=none"),
            (vec![url, (TOKEN_VAR, "hunter2-secret")], "AUDITSTREAM_REST_TOKEN is not valid: a token is configured but AUDITSTREAM_REST_AUTH is none, so it would never be sent: set AUDITSTREAM_REST_AUTH to bearer, basic, header or splunk"),
            (vec![(PRESET_VAR, "sumo_logic"), (URL_VAR, "https://c.sumologic.com/receiver/v1/http/")], "AUDITSTREAM_REST_TOKEN_SECRET_ARN is not set: AUDITSTREAM_REST_URL ends at /receiver/v1/http without the collector code: use the source's full URL, or put the code in a secret named by AUDITSTREAM_REST_TOKEN_SECRET_ARN"),
            (vec![(PRESET_VAR, "sumo_logic"), (URL_VAR, "https://c.sumologic.com/receiver/v1/http/CODEq7Z9"), (TOKEN_VAR, "CODEq7Z9")], "AUDITSTREAM_REST_TOKEN is not valid: AUDITSTREAM_REST_URL already holds the collector code, so a token has nowhere to go: remove the token, or end the URL at /receiver/v1/http"),
            (vec![(PRESET_VAR, "sumo_logic"), (URL_VAR, "http://c.sumologic.com/receiver/v1/http/CODEq7Z9")], "AUDITSTREAM_REST_URL=\"http://c.sumologic.com/receiver/v1/http/[redacted]\" is not valid: expected an https:// URL (plain http:// is allowed only for 127.0.0.1, ::1 and localhost, so that tokens and events never cross a network unencrypted)"),
            (vec![url, (HEADERS_VAR, "X-Key hunter2-secret")], "AUDITSTREAM_REST_HEADERS is not valid: header 1 has no `:`; write `Name: value; Other-Name: value`"),
            (vec![url, (GZIP_VAR, "maybe")], "AUDITSTREAM_REST_GZIP=\"maybe\" is not valid: expected true or false"),
        ];
        for (env, want) in cases {
            let err = settings(&env).unwrap_err().to_string();
            assert_eq!(err, want, "{env:?}");
            for secret in ["hunter2", "q7Z9", "dd-key-secret", "hec-secret-token"] {
                assert!(!err.contains(secret), "{err}");
            }
        }
    }

    /// Each preset's defaults as the table above gives them: the content type, the authentication,
    /// the request size (default and largest accepted), the most events per request, and what
    /// limits one event at the largest request size (the variable, or the vendor's own limit).
    #[test]
    fn each_preset_has_its_documented_defaults_and_limits() {
        struct Want {
            content_type: &'static str,
            auth: AuthScheme,
            default_bytes: usize,
            max_bytes: usize,
            max_events: usize,
            event_limit_at_max: LimitSource,
        }
        let dd_key = AuthScheme::Header { name: HeaderName::from_static("dd-api-key") };
        let cases: [(Vec<(&str, &str)>, Want); 4] = [
            (
                vec![(URL_VAR, "https://logs.example.com/in")],
                Want {
                    content_type: "application/json",
                    auth: AuthScheme::None,
                    default_bytes: 41_943_040,
                    max_bytes: 104_857_600,
                    max_events: 10_000,
                    event_limit_at_max: LimitSource::Variable(MAX_BYTES_VAR),
                },
            ),
            (
                vec![(PRESET_VAR, "splunk_hec"), (URL_VAR, "https://s:8088"), (TOKEN_VAR, "hec-token-1")],
                Want {
                    content_type: "application/json",
                    auth: AuthScheme::Splunk,
                    default_bytes: 1_000_000,
                    max_bytes: 838_860_800,
                    max_events: 10_000,
                    event_limit_at_max: LimitSource::Variable(MAX_BYTES_VAR),
                },
            ),
            (
                vec![(PRESET_VAR, "datadog"), (TOKEN_VAR, "dd-api-key-1")],
                Want {
                    content_type: "application/json",
                    auth: dd_key,
                    default_bytes: 5_000_000,
                    max_bytes: 5_000_000,
                    max_events: 1000,
                    event_limit_at_max: LimitSource::Service("Datadog takes at most 1,000,000 bytes per log"),
                },
            ),
            (
                vec![(PRESET_VAR, "sumo_logic"), (URL_VAR, "https://c.sumologic.com/receiver/v1/http/CODE1")],
                Want {
                    content_type: "text/plain; charset=utf-8",
                    auth: AuthScheme::None,
                    default_bytes: 1_000_000,
                    max_bytes: 1_000_000,
                    max_events: 10_000,
                    event_limit_at_max: LimitSource::Service("Sumo Logic takes at most 1,000,000 bytes per request"),
                },
            ),
        ];
        for (env, want) in cases {
            let s = settings(&env).unwrap_or_else(|e| panic!("{env:?}: {e}"));
            assert_eq!(s.preset.content_type(), want.content_type, "{env:?}");
            assert_eq!(s.auth, want.auth, "{env:?}");
            assert_eq!((s.max_events, s.max_request_bytes), (1, want.default_bytes), "{env:?}");

            let with = |var: &'static str, value: &str| settings(&env.iter().copied().chain([(var, value)]).collect::<Vec<_>>());
            assert_eq!(with(MAX_EVENTS_VAR, &want.max_events.to_string()).unwrap().max_events, want.max_events, "{env:?}");
            let over = (want.max_events + 1).to_string();
            let err = with(MAX_EVENTS_VAR, &over).unwrap_err().to_string();
            assert_eq!(err, format!("{MAX_EVENTS_VAR}=\"{over}\" is not valid: expected a whole number from 1 to {}", want.max_events));

            let at_max = with(MAX_BYTES_VAR, &want.max_bytes.to_string()).unwrap();
            assert_eq!(at_max.limits().max_event_bytes.map(|l| l.set_by), Some(want.event_limit_at_max), "{env:?}");
            let over = (want.max_bytes + 1).to_string();
            let err = with(MAX_BYTES_VAR, &over).unwrap_err().to_string();
            assert_eq!(err, format!("{MAX_BYTES_VAR}=\"{over}\" is not valid: expected a whole number from 1024 to {}", want.max_bytes));
            // below the largest, the variable is what limits an event
            let below = with(MAX_BYTES_VAR, "100000").unwrap();
            assert_eq!(below.limits().max_event_bytes.map(|l| l.set_by), Some(LimitSource::Variable(MAX_BYTES_VAR)), "{env:?}");
        }
    }

    /// Splunk HEC's pre-check is its health endpoint beside the event endpoint, sent no token;
    /// Datadog's is the API key validation on the site's API host (not the intake host), sent the
    /// key; Sumo Logic and the generic preset have none.
    #[test]
    fn each_vendor_declares_its_pre_check() {
        use crate::delivery::health::Step;
        let pre = |env: &[(&str, &str)]| {
            let s = settings(env).unwrap_or_else(|e| panic!("{env:?}: {e}"));
            s.preset.pre_check(&s.endpoint).map(|p| (p.step, p.url.url().as_str().to_owned(), p.authenticated))
        };
        let hec = |url| pre(&[(PRESET_VAR, "splunk_hec"), (URL_VAR, url), (TOKEN_VAR, "hec-token-1")]);
        let health = |url: &str| Some((Step::Reachability, url.to_owned(), false));
        assert_eq!(hec("https://splunk.example.com:8088"), health("https://splunk.example.com:8088/services/collector/health"));
        assert_eq!(hec("https://splunk.example.com:8088/services/collector/event/1.0"), health("https://splunk.example.com:8088/services/collector/health"));
        assert_eq!(hec("https://proxy.example.com/splunk/services/collector"), health("https://proxy.example.com/splunk/services/collector/health"));
        assert_eq!(hec("https://proxy.example.com/hec-in"), None, "a proxy's own path: no health endpoint known");

        let dd = |extra: &[(&'static str, &'static str)]| pre(&[&[(PRESET_VAR, "datadog"), (TOKEN_VAR, "dd-api-key-1")], extra].concat());
        let validate = |url: &str| Some((Step::Authentication, url.to_owned(), true));
        assert_eq!(dd(&[]), validate("https://api.datadoghq.com/api/v1/validate"));
        assert_eq!(dd(&[("AUDITSTREAM_DATADOG_SITE", "us5.datadoghq.com")]), validate("https://api.us5.datadoghq.com/api/v1/validate"));
        assert_eq!(dd(&[(URL_VAR, "http://127.0.0.1:9000")]), validate("http://127.0.0.1:9000/api/v1/validate"));
        assert_eq!(dd(&[(URL_VAR, "https://proxy.example.com/dd/in")]), None);

        assert_eq!(pre(&[(PRESET_VAR, "sumo_logic"), (URL_VAR, "https://c.sumologic.com/receiver/v1/http/CODE1")]), None);
        assert_eq!(pre(&[(URL_VAR, "https://logs.example.com/in")]), None);
    }

    /// What the vendors document their pre-check endpoints to answer, read as each step's verdict.
    #[test]
    fn the_pre_check_answers_read_as_the_vendors_document_them() {
        let quote = |t: &str| t.replace("SECRET", "[redacted]");
        let hec = settings(&[(PRESET_VAR, "splunk_hec"), (URL_VAR, "https://s:8088"), (TOKEN_VAR, "hec-token-1")]).unwrap().preset;
        assert_eq!(
            hec.read_pre_check(200, r#"{"text":"HEC is healthy","code":17}"#, &quote),
            Ok(r#"HEC answers {"text":"HEC is healthy","code":17}"#.to_owned())
        );
        let busy = hec.read_pre_check(503, r#"{"text":"HEC is unhealthy, queues are full","code":18}"#, &quote).unwrap_err();
        assert!(busy.starts_with(r#"HTTP 503: {"text":"HEC is unhealthy, queues are full","code":18}: HEC cannot take events now"#), "{busy}");
        let missing = hec.read_pre_check(404, "not here SECRET", &quote).unwrap_err();
        assert!(missing.starts_with("HTTP 404: not here [redacted]: no HEC health endpoint here") && missing.contains("AUDITSTREAM_REST_URL"), "{missing}");

        let dd = settings(&[(PRESET_VAR, "datadog"), (TOKEN_VAR, "dd-api-key-1")]).unwrap().preset;
        assert_eq!(dd.read_pre_check(200, r#"{"valid":true}"#, &quote), Ok("the API key is valid".to_owned()));
        let forbidden = dd.read_pre_check(403, r#"{"errors":["Forbidden"]}"#, &quote).unwrap_err();
        assert!(
            forbidden.starts_with("HTTP 403: Forbidden: the API key is not valid on this site") && forbidden.contains("AUDITSTREAM_DATADOG_SITE"),
            "{forbidden}"
        );
        assert!(dd.read_pre_check(200, r#"{"valid":false}"#, &quote).is_err());
    }

    #[test]
    fn a_url_on_the_command_line_is_the_generic_preset() {
        let env = [(PRESET_VAR, "datadog"), (MAX_EVENTS_VAR, "5"), (generic::FORMAT_VAR, "ndjson"), (URL_VAR, "https://elsewhere.example.com/")];
        let s = RestSettings::for_url(&env[..], "--to", "http://127.0.0.1:8080/hook").unwrap();
        assert_eq!(preset_as::<Generic>(&s), &Generic { format: BodyFormat::Ndjson });
        assert_eq!(s.endpoint.url().as_str(), "http://127.0.0.1:8080/hook");
        assert_eq!(s.max_events, 5);
        // A bad URL is named as what the user typed, not as a variable they never set.
        let err = RestSettings::for_url(&[][..], "--to", "http://logs.example.com/hook").unwrap_err().to_string();
        assert!(err.starts_with("--to=\"http://logs.example.com/hook\" is not valid: expected an https:// URL"), "{err}");
        assert!(!err.contains(URL_VAR), "{err}");
    }
}
