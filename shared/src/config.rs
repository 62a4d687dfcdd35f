//! Configuration from `AUDITSTREAM_*` environment variables, parsed once at cold start.
//!
//! A bad value stops the function at init with a message that names the variable, what it holds
//! and what it should hold — better than a function that runs and silently drops events. Each
//! destination module adds its own settings struct with the same [`Env`] helpers.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `AUDITSTREAM_STREAMS` | `job_status,job_details,user_activity` | streams sent (see [`crate::filter`]) |
//! | `AUDITSTREAM_INCLUDE_EVENT_TYPES` | (all) | activity event types sent, comma-separated |
//! | `AUDITSTREAM_EXCLUDE_EVENT_TYPES` | (none) | activity event types not sent |
//! | `AUDITSTREAM_INCLUDE_RESOURCE_TYPES` | (all) | activity resource types sent |
//! | `AUDITSTREAM_EXCLUDE_RESOURCE_TYPES` | (none) | activity resource types not sent |
//! | `AUDITSTREAM_MAX_EVENT_BYTES` | `41943040` (40 MiB) | size limit per written event |
//! | `AUDITSTREAM_LOG_TEMPLATE` | (none) | "Customize log message" template |
//! | `AUDITSTREAM_KEY_LAYOUT` | `standard` | `standard` or `embedded` job keys |
//! | `AUDITSTREAM_CONCURRENCY` | `16` | deliveries in flight per batch |

use std::collections::{BTreeSet, HashMap};

use crate::filter::{EventFilter, Stream};
use crate::key::{KeyLayout, KeyPrefix};
use crate::pipeline::{PipelineConfig, DEFAULT_MAX_EVENT_BYTES};
use crate::template::{LogTemplate, TemplateProblem};

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

    fn list(&self, var: &'static str) -> BTreeSet<String> {
        self.optional(var).map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()).unwrap_or_default()
    }

    fn number(&self, var: &'static str, default: u64, range: std::ops::RangeInclusive<u64>) -> Result<u64, ConfigError> {
        let Some(text) = self.optional(var) else { return Ok(default) };
        let invalid = || ConfigError::Invalid { var, value: text.clone(), expected: format!("a whole number from {} to {}", range.start(), range.end()) };
        let n: u64 = text.replace('_', "").parse().map_err(|_| invalid())?;
        if range.contains(&n) { Ok(n) } else { Err(invalid()) }
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

/// The pipeline settings shared by every function, and a template problem to warn about once.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    pub pipeline: PipelineConfig,
    /// Deliveries in flight per batch.
    pub concurrency: usize,
    /// Set when `AUDITSTREAM_LOG_TEMPLATE` is set but ignored under Workato's fallback rule.
    pub template_problem: Option<TemplateProblem>,
}

impl PipelineSettings {
    pub fn from_env(env: &(impl Env + ?Sized)) -> Result<Self, ConfigError> {
        let streams_text = env.optional("AUDITSTREAM_STREAMS");
        let streams = match &streams_text {
            None => Stream::ALL.into_iter().collect(),
            Some(text) => {
                let mut set = BTreeSet::new();
                for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let stream = Stream::from_name(name).ok_or_else(|| ConfigError::Invalid {
                        var: "AUDITSTREAM_STREAMS",
                        value: text.clone(),
                        expected: "a comma-separated list of job_status, job_details, user_activity".into(),
                    })?;
                    set.insert(stream);
                }
                if set.is_empty() {
                    return Err(ConfigError::Invalid { var: "AUDITSTREAM_STREAMS", value: text.clone(), expected: "at least one of job_status, job_details, user_activity".into() });
                }
                set
            }
        };
        let filter = EventFilter {
            streams,
            include_event_types: env.list("AUDITSTREAM_INCLUDE_EVENT_TYPES"),
            exclude_event_types: env.list("AUDITSTREAM_EXCLUDE_EVENT_TYPES"),
            include_resource_types: env.list("AUDITSTREAM_INCLUDE_RESOURCE_TYPES"),
            exclude_resource_types: env.list("AUDITSTREAM_EXCLUDE_RESOURCE_TYPES"),
        };
        let max_event_bytes = env.number("AUDITSTREAM_MAX_EVENT_BYTES", DEFAULT_MAX_EVENT_BYTES as u64, 1024..=(1 << 32))? as usize;
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
        })
    }

    /// Logs the one warning per cold start that Workato's fallback rule calls for.
    pub fn warn_about_template(&self) {
        if let Some(problem) = &self.template_problem {
            tracing::warn!(variable = "AUDITSTREAM_LOG_TEMPLATE", "log message template ignored, events are sent unwrapped: {problem}");
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
            ("AUDITSTREAM_STREAMS", "jobs", "AUDITSTREAM_STREAMS=\"jobs\" is not valid: expected a comma-separated list of job_status, job_details, user_activity"),
            ("AUDITSTREAM_STREAMS", ",", "AUDITSTREAM_STREAMS=\",\" is not valid: expected at least one of job_status, job_details, user_activity"),
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
