//! Configuration from `AUDITSTREAM_*` environment variables, parsed once at cold start.
//!
//! A bad value stops the function at init with a message that names the variable, what it holds
//! and what it should hold — better than a function that runs and silently drops events. Each
//! destination module adds its own settings struct with the same [`Env`] helpers.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `AUDITSTREAM_STREAMS` | `job_status,job_details,user_activity,other` | streams sent (see [`crate::pipeline::filter`]) |
//! | `AUDITSTREAM_INCLUDE_EVENT_TYPES` | (all) | activity event types sent, comma-separated, any case |
//! | `AUDITSTREAM_EXCLUDE_EVENT_TYPES` | (none) | activity event types not sent |
//! | `AUDITSTREAM_INCLUDE_RESOURCE_TYPES` | (all) | activity resource types sent |
//! | `AUDITSTREAM_EXCLUDE_RESOURCE_TYPES` | (none) | activity resource types not sent |
//! | `AUDITSTREAM_MAX_EVENT_BYTES` | `41943040` (40 MiB) | size limit per written event |
//! | `AUDITSTREAM_LOG_TEMPLATE` | (none) | "Customize log message" template |
//! | `AUDITSTREAM_KEY_LAYOUT` | `standard` | `standard` or `embedded` job keys |
//! | `AUDITSTREAM_CONCURRENCY` | `16` | deliveries in flight per batch |

use std::collections::{BTreeSet, HashMap};

use crate::pipeline::activity_types::TypeKind;
use crate::pipeline::filter::{EventFilter, Stream};
use crate::pipeline::key::{KeyLayout, KeyPrefix};
use crate::pipeline::{PipelineConfig, DEFAULT_MAX_EVENT_BYTES};

/// The size limit of a written event, for every destination.
pub const MAX_EVENT_BYTES_VAR: &str = "AUDITSTREAM_MAX_EVENT_BYTES";
use crate::pipeline::template::{LogTemplate, TemplateProblem};

/// Where variables are read from: the process environment, or a map in tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Env for [(&str, &str)] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }
}

/// A configuration value that cannot be used.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is not set: {hint}")]
    Missing { var: &'static str, hint: &'static str },
    #[error("{var}={value:?} is not valid: expected {expected}")]
    Invalid { var: &'static str, value: String, expected: String },
    /// For values that must not be echoed back (secrets).
    #[error("{var} is not valid: {reason}")]
    InvalidSecret { var: &'static str, reason: String },
}

/// Debug shows the message: a function's `main` returning this error at init prints it with `{:?}`
/// (as `Error: …` on stderr, which Lambda puts in the log), and the message is what helps there.
impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Typed readers over an [`Env`]; empty values count as unset.
pub trait EnvExt: Env {
    fn optional(&self, var: &'static str) -> Option<String> {
        self.var(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    fn required(&self, var: &'static str, hint: &'static str) -> Result<String, ConfigError> {
        self.optional(var).ok_or(ConfigError::Missing { var, hint })
    }

    fn number(&self, var: &'static str, default: u64, range: std::ops::RangeInclusive<u64>) -> Result<u64, ConfigError> {
        let Some(text) = self.optional(var) else { return Ok(default) };
        let invalid = || ConfigError::Invalid { var, value: text.clone(), expected: format!("a whole number from {} to {}", range.start(), range.end()) };
        let n: u64 = text.replace('_', "").parse().map_err(|_| invalid())?;
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(invalid())
        }
    }

    fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.optional(var).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
            Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
            Some(v) => Err(ConfigError::Invalid { var, value: v, expected: "true or false".into() }),
        }
    }

    fn choice<T: Copy>(&self, var: &'static str, default: T, options: &[(&str, T)]) -> Result<T, ConfigError> {
        let Some(text) = self.optional(var) else { return Ok(default) };
        options.iter().find(|(name, _)| name.eq_ignore_ascii_case(&text)).map(|(_, v)| *v).ok_or_else(|| ConfigError::Invalid {
            var,
            value: text,
            expected: format!("one of {}", options.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")),
        })
    }
}

impl<E: Env + ?Sized> EnvExt for E {}

/// The pipeline settings shared by every function, and what to warn about once per cold start.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    pub pipeline: PipelineConfig,
    /// Deliveries in flight per batch.
    pub concurrency: usize,
    /// Set when `AUDITSTREAM_LOG_TEMPLATE` is set but ignored under Workato's fallback rule.
    pub template_problem: Option<TemplateProblem>,
    /// Filter names that are no type Workato documents: applied as written, warned about.
    pub unknown_type_names: Vec<UnknownTypeName>,
}

/// A name in a type filter that is no event or resource type Workato documents
/// ([`crate::pipeline::activity_types`]). It is applied as written — Workato may add types before the list
/// here knows them — but a typo would silently match nothing, so it is warned about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownTypeName {
    pub var: &'static str,
    pub name: String,
    pub kind: TypeKind,
    /// The documented name nearest to it.
    pub closest: Option<&'static str>,
}

impl std::fmt::Display for UnknownTypeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} names {:?}, which is no {} Workato documents", self.var, self.name, self.kind.noun())?;
        if let Some(closest) = self.closest {
            write!(f, " (the closest is {closest:?})")?;
        }
        write!(f, "; it is applied as written")
    }
}

/// The type filter variables, and the kind of name each holds.
const TYPE_FILTERS: [(&str, TypeKind); 4] = [
    ("AUDITSTREAM_INCLUDE_EVENT_TYPES", TypeKind::Event),
    ("AUDITSTREAM_EXCLUDE_EVENT_TYPES", TypeKind::Event),
    ("AUDITSTREAM_INCLUDE_RESOURCE_TYPES", TypeKind::Resource),
    ("AUDITSTREAM_EXCLUDE_RESOURCE_TYPES", TypeKind::Resource),
];

/// The items of a comma-separated list, trimmed of spaces; empty items (`a,,b`, a trailing comma)
/// are skipped.
pub fn comma_separated(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Reads `AUDITSTREAM_STREAMS`: stream names separated by commas, at least one; all streams when unset.
fn stream_list(env: &(impl Env + ?Sized)) -> Result<BTreeSet<Stream>, ConfigError> {
    const VAR: &str = "AUDITSTREAM_STREAMS";
    let Some(text) = env.optional(VAR) else { return Ok(Stream::ALL.into_iter().collect()) };
    let invalid = |expected: String| ConfigError::Invalid { var: VAR, value: text.clone(), expected };
    let mut streams = BTreeSet::new();
    for name in comma_separated(&text) {
        streams.insert(Stream::from_name(name).ok_or_else(|| invalid(format!("a comma-separated list of {}", Stream::all_names())))?);
    }
    if streams.is_empty() {
        return Err(invalid(format!("at least one of {}", Stream::all_names())));
    }
    Ok(streams)
}

/// Reads one type filter: names separated by commas (spaces around them allowed). A name holds
/// letters, digits, `_` and `:` (`Tags::Models::Tag`), so any other character means the list was
/// written with another separator (`;`, spaces, `|`…) and would silently match nothing: refused.
fn type_list(env: &(impl Env + ?Sized), var: &'static str, kind: TypeKind, unknown: &mut Vec<UnknownTypeName>) -> Result<BTreeSet<String>, ConfigError> {
    let Some(text) = env.optional(var) else { return Ok(BTreeSet::new()) };
    let mut names = BTreeSet::new();
    for name in comma_separated(&text) {
        if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == ':')) {
            let example = match kind {
                TypeKind::Event => "user_login,user_logout",
                TypeKind::Resource => "User,Flow",
            };
            return Err(ConfigError::Invalid {
                var,
                value: text.clone(),
                expected: format!(
                    "{}s separated by commas, e.g. {example} (a name holds only letters, digits, `_` and `:`; this list holds {bad:?})",
                    kind.noun()
                ),
            });
        }
        if !kind.is_known(name) {
            unknown.push(UnknownTypeName { var, name: name.to_owned(), kind, closest: kind.closest(name) });
        }
        names.insert(name.to_owned());
    }
    Ok(names)
}

impl PipelineSettings {
    pub fn from_env(env: &(impl Env + ?Sized)) -> Result<Self, ConfigError> {
        let streams = stream_list(env)?;
        let mut unknown_type_names = Vec::new();
        let [include_event_types, exclude_event_types, include_resource_types, exclude_resource_types] =
            TYPE_FILTERS.map(|(var, kind)| type_list(env, var, kind, &mut unknown_type_names));
        let filter = EventFilter {
            streams,
            include_event_types: include_event_types?,
            exclude_event_types: exclude_event_types?,
            include_resource_types: include_resource_types?,
            exclude_resource_types: exclude_resource_types?,
        };
        let max_event_bytes = env.number(MAX_EVENT_BYTES_VAR, DEFAULT_MAX_EVENT_BYTES as u64, 1024..=(1 << 32))? as usize;
        let (template, template_problem) = match env.optional("AUDITSTREAM_LOG_TEMPLATE") {
            None => (None, None),
            Some(text) => match LogTemplate::compile(&text) {
                Ok(t) => (Some(t), None),
                Err(problem) => (None, Some(problem)),
            },
        };
        let key_layout = env.choice("AUDITSTREAM_KEY_LAYOUT", KeyLayout::Standard, &[("standard", KeyLayout::Standard), ("embedded", KeyLayout::Embedded)])?;
        // The key prefix belongs to the object-store destinations (`AUDITSTREAM_S3_PREFIX`,
        // `AUDITSTREAM_AZURE_BLOB_PREFIX`); they set it on the pipeline.
        let key_prefix = KeyPrefix::default();
        let concurrency = env.number("AUDITSTREAM_CONCURRENCY", 16, 1..=1000)? as usize;
        Ok(PipelineSettings {
            pipeline: PipelineConfig { filter, max_event_bytes, template, key_layout, key_prefix },
            concurrency,
            template_problem,
            unknown_type_names,
        })
    }

    /// Logs, once per cold start (every `main` calls it once, after reading the settings), what
    /// is configured but may not do what was meant: a template ignored under Workato's fallback
    /// rule, filter names that are no documented type.
    pub fn log_warnings(&self) {
        if let Some(problem) = &self.template_problem {
            tracing::warn!(variable = "AUDITSTREAM_LOG_TEMPLATE", "log message template ignored, events are sent unwrapped: {problem}");
        }
        for unknown in &self.unknown_type_names {
            tracing::warn!(variable = unknown.var, name = %unknown.name, closest = unknown.closest, "{unknown}");
        }
    }
}

/// Reads a key prefix variable.
pub fn key_prefix(env: &(impl Env + ?Sized), var: &'static str) -> Result<KeyPrefix, ConfigError> {
    match env.optional(var) {
        None => Ok(KeyPrefix::default()),
        Some(text) => KeyPrefix::new(&text).map_err(|e| ConfigError::Invalid { var, value: text, expected: e.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_send_everything_as_workato_does() {
        let s = PipelineSettings::from_env(&[][..]).unwrap();
        assert_eq!(s.pipeline.filter, EventFilter::default());
        assert_eq!(s.pipeline.max_event_bytes, 41_943_040);
        assert_eq!(s.pipeline.key_layout, KeyLayout::Standard);
        assert_eq!(s.concurrency, 16);
        assert!(s.pipeline.template.is_none() && s.template_problem.is_none());
        assert!(s.unknown_type_names.is_empty());
    }

    #[test]
    fn a_type_list_with_another_separator_is_refused_naming_the_variable() {
        let cases = [
            ("AUDITSTREAM_INCLUDE_EVENT_TYPES", "user_login;user_logout", "AUDITSTREAM_INCLUDE_EVENT_TYPES=\"user_login;user_logout\" is not valid: expected event types separated by commas, e.g. user_login,user_logout (a name holds only letters, digits, `_` and `:`; this list holds ';')"),
            ("AUDITSTREAM_EXCLUDE_EVENT_TYPES", "user_login user_logout", "AUDITSTREAM_EXCLUDE_EVENT_TYPES=\"user_login user_logout\" is not valid: expected event types separated by commas, e.g. user_login,user_logout (a name holds only letters, digits, `_` and `:`; this list holds ' ')"),
            ("AUDITSTREAM_INCLUDE_RESOURCE_TYPES", "User|Flow", "AUDITSTREAM_INCLUDE_RESOURCE_TYPES=\"User|Flow\" is not valid: expected resource types separated by commas, e.g. User,Flow (a name holds only letters, digits, `_` and `:`; this list holds '|')"),
            ("AUDITSTREAM_EXCLUDE_RESOURCE_TYPES", "User,\"Flow\"", "AUDITSTREAM_EXCLUDE_RESOURCE_TYPES=\"User,\\\"Flow\\\"\" is not valid: expected resource types separated by commas, e.g. User,Flow (a name holds only letters, digits, `_` and `:`; this list holds '\"')"),
        ];
        for (var, value, want) in cases {
            let err = PipelineSettings::from_env(&[(var, value)][..]).unwrap_err();
            assert_eq!(err.to_string(), want);
        }
        for ok in ["user_login, user_logout", " user_login ,user_logout,", "Tags::Models::Tag,User"] {
            assert!(PipelineSettings::from_env(&[("AUDITSTREAM_INCLUDE_RESOURCE_TYPES", ok)][..]).is_ok(), "{ok}");
        }
    }

    #[test]
    fn an_unknown_type_name_is_applied_and_warned_about_with_the_closest_known_name() {
        let env = [("AUDITSTREAM_INCLUDE_EVENT_TYPES", "USER_LOGIN,user_logn"), ("AUDITSTREAM_EXCLUDE_RESOURCE_TYPES", "user,Flows,Tags::Models::Tag")];
        let s = PipelineSettings::from_env(&env[..]).unwrap();
        assert_eq!(s.pipeline.filter.include_event_types, ["USER_LOGIN".to_string(), "user_logn".to_string()].into_iter().collect());
        assert_eq!(s.pipeline.filter.exclude_resource_types.len(), 3);
        let warnings: Vec<String> = s.unknown_type_names.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [
                "AUDITSTREAM_INCLUDE_EVENT_TYPES names \"user_logn\", which is no event type Workato documents (the closest is \"user_login\"); it is applied as written",
                "AUDITSTREAM_EXCLUDE_RESOURCE_TYPES names \"Flows\", which is no resource type Workato documents (the closest is \"Flow\"); it is applied as written",
            ]
        );
    }

    #[test]
    fn values_are_parsed() {
        let env = [
            ("AUDITSTREAM_STREAMS", "job_status, user_activity"),
            ("AUDITSTREAM_EXCLUDE_EVENT_TYPES", "user_login,,user_logout "),
            ("AUDITSTREAM_MAX_EVENT_BYTES", "1_048_576"),
            ("AUDITSTREAM_KEY_LAYOUT", "Embedded"),
            ("AUDITSTREAM_LOG_TEMPLATE", r#"{"m":{{{log_message}}}}"#),
            ("AUDITSTREAM_CONCURRENCY", "64"),
        ];
        let s = PipelineSettings::from_env(&env[..]).unwrap();
        assert_eq!(s.pipeline.filter.streams, [Stream::JobStatus, Stream::UserActivity].into_iter().collect());
        assert_eq!(s.pipeline.filter.exclude_event_types, ["user_login".to_string(), "user_logout".to_string()].into_iter().collect());
        assert_eq!(s.pipeline.max_event_bytes, 1_048_576);
        assert_eq!(s.pipeline.key_layout, KeyLayout::Embedded);
        assert!(s.pipeline.template.is_some());
        assert_eq!(s.concurrency, 64);
    }

    #[test]
    fn a_bad_template_is_ignored_with_a_reason() {
        let s = PipelineSettings::from_env(&[("AUDITSTREAM_LOG_TEMPLATE", r#"{"source":"workato"}"#)][..]).unwrap();
        assert!(s.pipeline.template.is_none());
        assert_eq!(s.template_problem, Some(TemplateProblem::NoLogMessage));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases = [
            (
                "AUDITSTREAM_STREAMS",
                "jobs",
                "AUDITSTREAM_STREAMS=\"jobs\" is not valid: expected a comma-separated list of job_status, job_details, user_activity, other",
            ),
            ("AUDITSTREAM_STREAMS", ",", "AUDITSTREAM_STREAMS=\",\" is not valid: expected at least one of job_status, job_details, user_activity, other"),
            ("AUDITSTREAM_MAX_EVENT_BYTES", "40MB", "AUDITSTREAM_MAX_EVENT_BYTES=\"40MB\" is not valid: expected a whole number from 1024 to 4294967296"),
            ("AUDITSTREAM_MAX_EVENT_BYTES", "10", "AUDITSTREAM_MAX_EVENT_BYTES=\"10\" is not valid: expected a whole number from 1024 to 4294967296"),
            ("AUDITSTREAM_KEY_LAYOUT", "partner", "AUDITSTREAM_KEY_LAYOUT=\"partner\" is not valid: expected one of standard, embedded"),
            ("AUDITSTREAM_CONCURRENCY", "0", "AUDITSTREAM_CONCURRENCY=\"0\" is not valid: expected a whole number from 1 to 1000"),
        ];
        for (var, value, want) in cases {
            let err = PipelineSettings::from_env(&[(var, value)][..]).unwrap_err();
            assert_eq!(err.to_string(), want);
        }
        let err = key_prefix(&[("AUDITSTREAM_S3_PREFIX", "a/../b")][..], "AUDITSTREAM_S3_PREFIX").unwrap_err();
        assert_eq!(err.to_string(), "AUDITSTREAM_S3_PREFIX=\"a/../b\" is not valid: expected key prefix \"a/../b\" has an empty, `.` or `..` segment; use something like `audit/` or `tenants/acme/`");
    }
}
