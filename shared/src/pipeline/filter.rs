//! Which events a stream sends (`docs/event-format.md`, "Streams"): job status, job details, user activity, plus the
//! activity-log API's include/exclude lists of event types and resource types; and `other`, every
//! event that is neither a job nor an activity (see [`crate::pipeline::event`]). The type lists apply to
//! activity events only. Type names match whatever their case: `USER_LOGIN` selects `user_login`,
//! `user` selects `User` (ASCII case, the only case Workato's names have).

use std::collections::BTreeSet;

use crate::pipeline::event::EventMeta;
use crate::pipeline::write::LinesMode;

/// One selectable stream, named as in `AUDITSTREAM_STREAMS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stream {
    /// Job summaries: job events without their step `lines`.
    JobStatus,
    /// Full job details: job events with their (masked) step `lines`.
    JobDetails,
    /// Logins and every other user-activity event.
    UserActivity,
    /// Events that are neither jobs nor activities, with their (masked) `lines` if they have any.
    Other,
}

impl Stream {
    pub const ALL: [Stream; 4] = [Stream::JobStatus, Stream::JobDetails, Stream::UserActivity, Stream::Other];

    pub fn name(self) -> &'static str {
        match self {
            Stream::JobStatus => "job_status",
            Stream::JobDetails => "job_details",
            Stream::UserActivity => "user_activity",
            Stream::Other => "other",
        }
    }

    /// Every stream's name, for messages: `job_status, job_details, user_activity, other`.
    pub fn all_names() -> String {
        Stream::ALL.map(Stream::name).join(", ")
    }

    pub fn from_name(name: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The configured selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    pub streams: BTreeSet<Stream>,
    pub include_event_types: BTreeSet<String>,
    pub exclude_event_types: BTreeSet<String>,
    pub include_resource_types: BTreeSet<String>,
    pub exclude_resource_types: BTreeSet<String>,
}

impl Default for EventFilter {
    /// Every stream, no type lists: everything is sent.
    fn default() -> Self {
        EventFilter {
            streams: Stream::ALL.into_iter().collect(),
            include_event_types: BTreeSet::new(),
            exclude_event_types: BTreeSet::new(),
            include_resource_types: BTreeSet::new(),
            exclude_resource_types: BTreeSet::new(),
        }
    }
}

/// Why an event is not sent. Filtered events are acknowledged and counted, never written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilteredOut {
    JobStreamsOff,
    UserActivityOff,
    OtherOff,
    EventTypeNotIncluded(String),
    EventTypeExcluded(String),
    ResourceTypeNotIncluded(Option<String>),
    ResourceTypeExcluded(String),
}

impl std::fmt::Display for FilteredOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilteredOut::JobStreamsOff => f.write_str("job event, but neither job_status nor job_details is in AUDITSTREAM_STREAMS"),
            FilteredOut::UserActivityOff => f.write_str("activity event, but user_activity is not in AUDITSTREAM_STREAMS"),
            FilteredOut::OtherOff => f.write_str("neither a job nor an activity event, and other is not in AUDITSTREAM_STREAMS"),
            FilteredOut::EventTypeNotIncluded(t) => write!(f, "event type {t} is not in AUDITSTREAM_INCLUDE_EVENT_TYPES"),
            FilteredOut::EventTypeExcluded(t) => write!(f, "event type {t} is in AUDITSTREAM_EXCLUDE_EVENT_TYPES"),
            FilteredOut::ResourceTypeNotIncluded(Some(t)) => write!(f, "resource type {t} is not in AUDITSTREAM_INCLUDE_RESOURCE_TYPES"),
            FilteredOut::ResourceTypeNotIncluded(None) => f.write_str("event has no resource type and AUDITSTREAM_INCLUDE_RESOURCE_TYPES is set"),
            FilteredOut::ResourceTypeExcluded(t) => write!(f, "resource type {t} is in AUDITSTREAM_EXCLUDE_RESOURCE_TYPES"),
        }
    }
}

impl EventFilter {
    /// Decides whether an event is sent and, for jobs, whether with its lines.
    pub fn select(&self, meta: &EventMeta) -> Result<LinesMode, FilteredOut> {
        match meta {
            // Other events keep their lines (masked) like job details: nothing is known of them
            // that could justify dropping a field.
            EventMeta::Other(_) if self.streams.contains(&Stream::Other) => Ok(LinesMode::Keep),
            EventMeta::Other(_) => Err(FilteredOut::OtherOff),
            EventMeta::Job(_) => {
                if self.streams.contains(&Stream::JobDetails) {
                    Ok(LinesMode::Keep)
                } else if self.streams.contains(&Stream::JobStatus) {
                    Ok(LinesMode::Drop)
                } else {
                    Err(FilteredOut::JobStreamsOff)
                }
            }
            EventMeta::Activity(a) => {
                if !self.streams.contains(&Stream::UserActivity) {
                    return Err(FilteredOut::UserActivityOff);
                }
                if !self.include_event_types.is_empty() && !listed(&self.include_event_types, &a.event_type) {
                    return Err(FilteredOut::EventTypeNotIncluded(a.event_type.clone()));
                }
                if listed(&self.exclude_event_types, &a.event_type) {
                    return Err(FilteredOut::EventTypeExcluded(a.event_type.clone()));
                }
                let resource = a.resource_type.as_ref();
                if !self.include_resource_types.is_empty() && !resource.is_some_and(|r| listed(&self.include_resource_types, r)) {
                    return Err(FilteredOut::ResourceTypeNotIncluded(a.resource_type.clone()));
                }
                if let Some(r) = resource.filter(|r| listed(&self.exclude_resource_types, r)) {
                    return Err(FilteredOut::ResourceTypeExcluded(r.clone()));
                }
                Ok(LinesMode::Keep)
            }
        }
    }
}

/// Whether a type list names `name`, whatever the case of either.
fn listed(list: &BTreeSet<String>, name: &str) -> bool {
    list.iter().any(|t| t.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::event::{ActivityMeta, JobMeta, OtherMeta};
    use crate::pipeline::timestamp::UtcTime;

    fn other() -> EventMeta {
        EventMeta::Other(OtherMeta { id: None, workspace_id: None, time: UtcTime::from_epoch_seconds(0), time_field: None })
    }

    fn job() -> EventMeta {
        EventMeta::Job(JobMeta { id: "j".into(), recipe_id: "1".into(), status: "succeeded".into(), user_id: "2".into(), time: UtcTime::from_epoch_seconds(0) })
    }

    fn activity(event_type: &str, resource: Option<&str>) -> EventMeta {
        EventMeta::Activity(ActivityMeta {
            id: None,
            event_type: event_type.into(),
            resource_type: resource.map(Into::into),
            workspace_id: "1".into(),
            time: UtcTime::from_epoch_seconds(0),
        })
    }

    fn filter(streams: &[Stream]) -> EventFilter {
        EventFilter { streams: streams.iter().copied().collect(), ..EventFilter::default() }
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn streams_choose_what_jobs_carry() {
        use Stream::*;
        assert_eq!(filter(&[JobStatus, JobDetails, UserActivity]).select(&job()), Ok(LinesMode::Keep));
        assert_eq!(filter(&[JobDetails]).select(&job()), Ok(LinesMode::Keep));
        assert_eq!(filter(&[JobStatus]).select(&job()), Ok(LinesMode::Drop));
        assert_eq!(filter(&[UserActivity]).select(&job()), Err(FilteredOut::JobStreamsOff));
        assert_eq!(filter(&[JobStatus]).select(&activity("user_login", None)), Err(FilteredOut::UserActivityOff));
    }

    #[test]
    fn type_lists_narrow_activity_events() {
        let f =
            EventFilter { include_event_types: set(&["user_login", "user_logout"]), exclude_resource_types: set(&["SharedAccount"]), ..EventFilter::default() };
        assert_eq!(f.select(&activity("user_login", Some("User"))), Ok(LinesMode::Keep));
        assert_eq!(f.select(&activity("recipe_started", Some("Flow"))), Err(FilteredOut::EventTypeNotIncluded("recipe_started".into())));
        assert_eq!(f.select(&activity("user_logout", Some("SharedAccount"))), Err(FilteredOut::ResourceTypeExcluded("SharedAccount".into())));
        let f = EventFilter { exclude_event_types: set(&["user_login"]), include_resource_types: set(&["Flow"]), ..EventFilter::default() };
        assert_eq!(f.select(&activity("user_login", Some("Flow"))), Err(FilteredOut::EventTypeExcluded("user_login".into())));
        assert_eq!(f.select(&activity("recipe_started", None)), Err(FilteredOut::ResourceTypeNotIncluded(None)));
        assert_eq!(f.select(&activity("recipe_started", Some("Flow"))), Ok(LinesMode::Keep));
        // type lists never touch job events, nor other events
        assert_eq!(f.select(&job()), Ok(LinesMode::Keep));
        assert_eq!(f.select(&other()), Ok(LinesMode::Keep));
    }

    #[test]
    fn the_other_stream_is_on_by_default_and_keeps_lines() {
        use Stream::*;
        assert_eq!(Stream::from_name("other"), Some(Other));
        assert!(EventFilter::default().streams.contains(&Other));
        assert_eq!(EventFilter::default().select(&other()), Ok(LinesMode::Keep));
        assert_eq!(filter(&[Other]).select(&other()), Ok(LinesMode::Keep));
        assert_eq!(filter(&[JobStatus, JobDetails, UserActivity]).select(&other()), Err(FilteredOut::OtherOff));
        // and it selects nothing else
        assert_eq!(filter(&[Other]).select(&job()), Err(FilteredOut::JobStreamsOff));
        assert_eq!(filter(&[Other]).select(&activity("user_login", None)), Err(FilteredOut::UserActivityOff));
        assert_eq!(Stream::all_names(), "job_status, job_details, user_activity, other");
    }

    #[test]
    fn type_names_match_whatever_their_case() {
        let f = EventFilter { include_event_types: set(&["USER_LOGIN"]), include_resource_types: set(&["user"]), ..EventFilter::default() };
        assert_eq!(f.select(&activity("user_login", Some("User"))), Ok(LinesMode::Keep));
        assert_eq!(f.select(&activity("User_Login", Some("USER"))), Ok(LinesMode::Keep));
        assert_eq!(f.select(&activity("user_logout", Some("User"))), Err(FilteredOut::EventTypeNotIncluded("user_logout".into())));
        let f = EventFilter { exclude_event_types: set(&["Recipe_Stopped"]), exclude_resource_types: set(&["sharedaccount"]), ..EventFilter::default() };
        assert_eq!(f.select(&activity("recipe_stopped", Some("Flow"))), Err(FilteredOut::EventTypeExcluded("recipe_stopped".into())));
        assert_eq!(f.select(&activity("connection_created", Some("SharedAccount"))), Err(FilteredOut::ResourceTypeExcluded("SharedAccount".into())));
        assert_eq!(f.select(&activity("connection_created", Some("Flow"))), Ok(LinesMode::Keep));
    }
}
