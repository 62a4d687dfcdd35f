//! What a REST preset is: one vendor's HTTP contract, as [`RestPreset`].
//!
//! Everything that differs between vendors is a method of the trait, and nothing else: the
//! endpoint and authentication its variables default to, the body a batch becomes, the limits of
//! a request and of one event, and how its error answers read. The one sink
//! ([`super::http::HttpLogSink`]) and the one settings reader ([`super::RestSettings`]) ask the
//! trait and never name a vendor. A new vendor is a file implementing it and one line in
//! `presets` in the parent module.

use std::any::Any;
use std::collections::BTreeSet;

use reqwest::header::HeaderMap;

use super::auth::AuthScheme;
use super::endpoint::Endpoint;
use super::token::{TokenSource, TOKEN_VAR};
use super::{MAX_BYTES_VAR, URL_VAR};
use crate::config::{ConfigError, Env, EnvExt};
use crate::delivery::destination::{EventLimit, LimitSource};
use crate::delivery::health::Step;
use crate::delivery::retry::DeliveryError;
use crate::pipeline::json_text::push_string;
use crate::pipeline::template::LogTemplate;
use crate::pipeline::Document;
use crate::secret::Secret;

/// Events per request at most, for presets without a vendor limit (an SQS batch holds ≤ 10,000).
pub const MAX_EVENTS: usize = 10_000;

/// The range of `AUDITSTREAM_REST_BATCH_MAX_BYTES` a preset accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestBytes {
    /// The request size when the variable is unset.
    pub default: usize,
    /// The largest request size the variable may set.
    pub max: usize,
    /// Set when `max` is the vendor's own limit, which no setting raises: the words that say so,
    /// for the warning about an event that a request at that size cannot hold.
    pub vendor_limit: Option<&'static str>,
}

/// A request a vendor documents for checking an endpoint without sending it data, which the
/// health check (`auditstream check`, the scheduled check) makes before its probe event: Splunk
/// HEC's health endpoint, Datadog's API key validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreCheck {
    /// The step it proves: [`Step::Reachability`] (the service answers and can take data) or
    /// [`Step::Authentication`] (the key is valid). Whatever the step, a request that gets no
    /// answer fails the reachability step.
    pub step: Step,
    /// What it is, for the report: `the HEC health endpoint`.
    pub name: &'static str,
    /// Where the `GET` goes.
    pub url: Endpoint,
    /// Whether it carries the sink's authentication header (only to a host of the same vendor).
    pub authenticated: bool,
}

/// One vendor's HTTP contract. The functions bound by `Self: Sized` are read once, while the
/// settings are read and before the preset exists (in the order [`super::RestSettings::from_env`]
/// checks the variables); the methods describe the requests of the preset built by
/// [`RestPreset::from_env`].
pub trait RestPreset: AsAny + std::fmt::Debug + Send + Sync {
    /// The value of `AUDITSTREAM_REST_PRESET` that chooses this preset.
    fn name() -> &'static str
    where
        Self: Sized;

    /// The most events a request may hold (`AUDITSTREAM_REST_BATCH_MAX_EVENTS` is refused above it).
    fn max_events() -> usize
    where
        Self: Sized,
    {
        MAX_EVENTS
    }

    /// The authentication used when `AUDITSTREAM_REST_AUTH` is unset.
    fn default_auth() -> AuthScheme
    where
        Self: Sized,
    {
        AuthScheme::None
    }

    /// Whether `AUDITSTREAM_REST_BATCH_FORMAT` means anything to this preset; for the vendors'
    /// presets it does not (they send their vendor's format), and setting it is refused.
    fn has_body_formats() -> bool
    where
        Self: Sized,
    {
        false
    }

    /// Where requests go: by default `AUDITSTREAM_REST_URL` as given.
    fn endpoint(env: &(impl Env + ?Sized)) -> Result<Endpoint, ConfigError>
    where
        Self: Sized,
    {
        Endpoint::parse(URL_VAR, &env.required(URL_VAR, "the endpoint to POST events to, e.g. https://logs.example.com/ingest")?, None)
    }

    /// With `AUDITSTREAM_REST_AUTH=none`, whether the configured token (if any) has somewhere to
    /// go. By default it has not, and a token would never be sent.
    fn check_unsent_token(token: &TokenSource, _endpoint: &Endpoint) -> Result<(), ConfigError>
    where
        Self: Sized,
    {
        match token.is_none() {
            true => Ok(()),
            false => Err(ConfigError::InvalidSecret {
                var: TOKEN_VAR,
                reason: "a token is configured but AUDITSTREAM_REST_AUTH is none, so it would never be sent: set AUDITSTREAM_REST_AUTH to bearer, basic, header or splunk".into(),
            }),
        }
    }

    /// The preset from its own variables, the pipeline's log template (whether a document is
    /// already the vendor's object depends on it) and the events per request.
    fn from_env(env: &(impl Env + ?Sized), template: Option<&LogTemplate>, max_events: usize) -> Result<Self, ConfigError>
    where
        Self: Sized;

    /// The `Content-Type` of a request body.
    fn content_type(&self) -> &'static str;

    /// Headers the preset adds to every request (Sumo Logic's metadata).
    fn headers(&self) -> Option<&HeaderMap> {
        None
    }

    /// Appends the request body for `docs` to `out`.
    fn encode(&self, docs: &[&Document], out: &mut Vec<u8>);

    /// Whether the body of a request holding one document is that document's bytes, unchanged
    /// ([`RestPreset::encode`] would copy them as they are): the sink then hands the document's
    /// own bytes to the HTTP client instead of copying them. By default not.
    fn one_document_is_the_body(&self) -> bool {
        false
    }

    /// Bytes the body adds per document and per request, at most (escaping aside, see
    /// [`RestPreset::packing_budget`]).
    fn overhead(&self) -> (usize, usize);

    /// The request sizes `AUDITSTREAM_REST_BATCH_MAX_BYTES` may set.
    fn request_bytes(&self) -> RequestBytes;

    /// Of `room` bytes of documents that fit a request once wrapped, how many to pack: all of them,
    /// unless the body escapes documents (then what it adds cannot be known without encoding).
    fn packing_budget(&self, room: usize) -> usize {
        room
    }

    /// The largest document a request of `max_request_bytes` carries alone, and what sets it:
    /// the request size (`AUDITSTREAM_REST_BATCH_MAX_BYTES`) unless that is already at the
    /// vendor's own limit.
    fn max_event_bytes(&self, max_request_bytes: usize) -> EventLimit {
        let (per_doc, per_request) = self.overhead();
        let bytes = max_request_bytes.saturating_sub(per_request + per_doc);
        let limits = self.request_bytes();
        match limits.vendor_limit {
            Some(words) if max_request_bytes == limits.max => EventLimit::new(bytes, LimitSource::Service(words)),
            _ => EventLimit::new(bytes, LimitSource::Variable(MAX_BYTES_VAR)),
        }
    }

    /// The URL requests go to once the token is known (a Sumo Logic collector code kept in the
    /// secret is part of it); by default the configured one.
    fn request_endpoint(&self, endpoint: &Endpoint, _auth: &AuthScheme, _token: Option<&Secret>) -> Endpoint {
        endpoint.clone()
    }

    /// The vendor's documented error fields in `reply`, each text passed through `quote`; `None`
    /// when the vendor documents none or the reply is not of that shape (then it is quoted whole).
    fn error_answer(&self, _reply: &str, _quote: &dyn Fn(&str) -> String) -> Option<String> {
        None
    }

    /// The request the health check makes before its probe event, for requests going to
    /// `endpoint`; `None` (the default) when the vendor documents none, or none is known for a
    /// proxy's URL: the probe event alone then proves the endpoint.
    fn pre_check(&self, _endpoint: &Endpoint) -> Option<PreCheck> {
        None
    }

    /// What the answer to [`RestPreset::pre_check`]'s request means: `Ok(what it proved)` or
    /// `Err(what is wrong and what to fix)`, the vendor's text passed through `quote`. Called
    /// only for a preset that has a pre-check.
    fn read_pre_check(&self, status: u16, reply: &str, quote: &dyn Fn(&str) -> String) -> Result<String, String> {
        match status {
            200..=299 => Ok(format!("HTTP {status}")),
            _ => Err(format!("HTTP {status}: {}", self.error_answer(reply, quote).unwrap_or_else(|| quote(reply)))),
        }
    }

    /// A refused request's error, given what the vendor answered (`status`, `reply`) to a request
    /// of `events` events: where the vendor says it accepted the events before one it refused
    /// (Splunk HEC's `invalid-event-number`), the error is that event's alone
    /// ([`DeliveryError::after_accepting`]). By default the whole request failed.
    fn partly_accepted(&self, err: DeliveryError, _status: u16, _reply: &str, _events: usize) -> DeliveryError {
        err
    }
}

/// A preset as [`Any`], so that a test can see which preset and settings were read.
pub trait AsAny {
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The keys of a log template that is the vendor's whole object, told by a top-level `key` of its
/// own (Splunk HEC's `event`, Datadog's `message`); `None` for any other template, which is the
/// event the vendor's object carries. Decided once, from the template, never from an event.
pub fn template_object_keys<'t>(template: Option<&'t LogTemplate>, key: &str) -> Option<&'t BTreeSet<String>> {
    template.and_then(LogTemplate::object_keys).filter(|keys| keys.contains(key))
}

/// For a log template that is the vendor's whole object (Splunk HEC's envelope, Datadog's log
/// item): the configured fields it does not set, as object members (`"key":"value",` each), so
/// that they can be added to every rendered template. `fields` are `(variable, key, value)`; a
/// variable set for a key the template sets too is refused (one value, in one place), and
/// `object` names what the template is in that message.
pub fn members_missing_from_template(
    env: &(impl Env + ?Sized),
    keys: &BTreeSet<String>,
    fields: &[(&'static str, &str, Option<&str>)],
    object: &str,
) -> Result<Vec<u8>, ConfigError> {
    for &(var, key, _) in fields {
        if let (true, Some(set)) = (keys.contains(key), env.optional(var)) {
            return Err(ConfigError::Invalid {
                var,
                value: set,
                expected: format!("unset: AUDITSTREAM_LOG_TEMPLATE is the whole {object} and sets \"{key}\" itself (give it in one place)"),
            });
        }
    }
    let missing: Vec<(&str, Option<&str>)> = fields.iter().filter(|(_, key, _)| !keys.contains(*key)).map(|&(_, key, value)| (key, value)).collect();
    let mut members = Vec::new();
    push_members(&mut members, &missing, b',');
    Ok(members)
}

/// `"key":"value"` for each field that has a value, each followed by `separator`: the members a
/// preset renders once and writes around every event.
pub fn push_members(out: &mut Vec<u8>, fields: &[(&str, Option<&str>)], separator: u8) {
    for &(key, value) in fields {
        if let Some(value) = value {
            push_string(out, key);
            out.push(b':');
            push_string(out, value);
            out.push(separator);
        }
    }
}
