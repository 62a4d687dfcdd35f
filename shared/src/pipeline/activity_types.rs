//! The activity-log event type and resource type names Workato documents, so that a filter naming
//! something else (a typo, a display name, an event of another product) is warned about at cold
//! start instead of silently matching nothing.
//!
//! Sources, both public Workato docs:
//! - the activity audit log API reference, <https://docs.workato.com/workato-api/activity-reference.html>
//!   (and its Embedded twin, <https://docs.workato.com/oem/oem-api/activity-reference.html>): every
//!   resource type, and the event types of its first sections;
//! - the user-activity samples of Workato's audit log streaming page as published in 2019
//!   (<https://docs.workato.com/job-history-replication.html>), for the event types streamed then:
//!   logins, recipes, folders, packages, connections, invitations.
//!
//! The API reference lists more event types than are copied here. A name missing from these lists
//! is still applied exactly as configured: it only costs one warning per cold start, so add a name
//! here (with its source) when Workato documents it.

/// Resource types (`resource.type`), as the API reference spells them (its current version adds
/// `CustomOauthKeyAssignment`, the workflow apps' `LCAP::Models::*` and
/// `OrganizationAdapterPublication` to the list the Embedded page gives).
pub const KNOWN_RESOURCE_TYPES: &[&str] = &[
    "Account",
    "AccountProperty",
    "Adapter",
    "ApiAccessProfile",
    "ApiClient",
    "ApiCustomer",
    "ApiEndpoint",
    "ApiGroup",
    "ApiPolicy",
    "ApiPrivilegeGroup",
    "AuditLogReplicationSettings",
    "CommunityAdapterPublication",
    "CustomOauthKey",
    "CustomOauthKeyAssignment",
    "Deployment",
    "ExportManifest",
    "Flow",
    "Folder",
    "LCAP::Models::App",
    "LCAP::Models::Page",
    "LookupTable",
    "ManagedUserGrant",
    "MemberInvitation",
    "OrganizationAdapterPublication",
    "Package",
    "PrivilegeGroup",
    "Project",
    "ProjectBuild",
    "ProjectProperty",
    "SharedAccount",
    "SharingToken",
    "Tags::Models::Tag",
    "TeamProfile",
    "Topic",
    "User",
];

/// Event types (`event_type`, or `event` in the 2019 stream samples).
pub const KNOWN_EVENT_TYPES: &[&str] = &[
    // API reference: Account, AccountProperty, Adapter, ApiAccessProfile, ApiClient
    "branding_updated",
    "account_property_created",
    "account_property_deleted",
    "account_property_updated",
    "connector_created",
    "connector_deleted",
    "connector_installed",
    "connector_released",
    "connector_shared",
    "connector_shared_closed_source_changed",
    "connector_updated",
    "access_profile_api_key_refreshed",
    "access_profile_created",
    "access_profile_deleted",
    "access_profile_updated",
    "developer_api_client_created",
    "developer_api_client_deleted",
    "developer_api_client_updated",
    "token_leaked",
    "token_regenerated",
    // the 2019 stream samples
    "user_login",
    "user_logout",
    "package_exported",
    "package_imported",
    "recipe_created",
    "recipe_deleted",
    "recipe_started",
    "recipe_stopped",
    "folder_created",
    "folder_deleted",
    "team_invitation_created",
    "team_invitation_accept",
    "connection_connected",
    "connection_disconnected",
    "connection_created",
    "connection_deleted",
];

/// Which kind of name a filter list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeKind {
    Event,
    Resource,
}

impl TypeKind {
    pub fn known(self) -> &'static [&'static str] {
        match self {
            TypeKind::Event => KNOWN_EVENT_TYPES,
            TypeKind::Resource => KNOWN_RESOURCE_TYPES,
        }
    }

    pub fn noun(self) -> &'static str {
        match self {
            TypeKind::Event => "event type",
            TypeKind::Resource => "resource type",
        }
    }

    /// Whether `name` is a documented name of this kind, whatever its case (filters match that way).
    pub fn is_known(self, name: &str) -> bool {
        self.known().iter().any(|k| k.eq_ignore_ascii_case(name))
    }

    /// The documented name nearest to `name` (case ignored), for a "did you mean" hint.
    pub fn closest(self, name: &str) -> Option<&'static str> {
        let name = name.to_ascii_lowercase();
        self.known().iter().map(|k| (edit_distance(&name, &k.to_ascii_lowercase()), *k)).min_by_key(|(d, _)| *d).map(|(_, k)| k)
    }
}

/// Levenshtein distance: insertions, deletions and substitutions of one character each.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("user_login", "user_login"), 0);
        assert_eq!(edit_distance("user_logn", "user_login"), 1);
        assert_eq!(edit_distance("user_logni", "user_login"), 2);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn names_are_known_whatever_their_case_and_the_closest_is_suggested() {
        assert!(TypeKind::Event.is_known("USER_LOGIN"));
        assert!(TypeKind::Resource.is_known("user") && TypeKind::Resource.is_known("tags::models::tag") && TypeKind::Resource.is_known("LCAP::Models::App"));
        assert!(!TypeKind::Event.is_known("User") && !TypeKind::Resource.is_known("user_login"));
        assert_eq!(TypeKind::Event.closest("user_logn"), Some("user_login"));
        assert_eq!(TypeKind::Event.closest("RECIPE_STOP"), Some("recipe_stopped"));
        assert_eq!(TypeKind::Resource.closest("Flows"), Some("Flow"));
        assert_eq!(TypeKind::Resource.closest("shared_account"), Some("SharedAccount"));
    }

    #[test]
    fn the_lists_hold_no_duplicates_and_only_filterable_names() {
        for kind in [TypeKind::Event, TypeKind::Resource] {
            let mut seen = std::collections::BTreeSet::new();
            for name in kind.known() {
                assert!(seen.insert(name.to_ascii_lowercase()), "{name} twice");
                assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'), "{name}");
            }
        }
    }
}
