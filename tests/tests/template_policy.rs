//! `template.yaml` keeps the rules of issue 5 that `sam validate --lint` does not check: every function
//! reports batch item failures, every queue has a dead-letter queue and encryption, no policy grants `*`,
//! no parameter choice breaks "visibility timeout ≥ 6 × function timeout", every bucket is encrypted,
//! blocks public access and denies plain HTTP, a bucket the stack keeps (the customer's copy) deletes
//! nothing with the default parameters, and a bucket a function writes refuses any write that could
//! overwrite an object.
//!
//! The checks live in `template_policy/checks.rs`. Below, the shipped template must pass them all, and a
//! small good template is broken one way at a time to show each check fires on exactly what it guards.
//! `cfn::resolve` gives the shipped template as deployed with chosen parameters, for the tests of what
//! each parameter turns on (the audit bucket's retention, Object Lock, the security-review options).

#[path = "template_policy/cfn.rs"]
mod cfn;
#[path = "template_policy/checks.rs"]
mod checks;

use checks::Violation;

const TEMPLATE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");

fn shipped_template() -> serde_json::Value {
    let text = std::fs::read_to_string(TEMPLATE_PATH).unwrap_or_else(|e| panic!("cannot read {TEMPLATE_PATH}: {e}"));
    cfn::parse(&text).unwrap_or_else(|e| panic!("{TEMPLATE_PATH}: {e}"))
}

fn listing(violations: &[Violation]) -> String {
    violations.iter().map(|v| format!("\n  {v}")).collect()
}

#[test]
fn the_shipped_template_passes_every_check() {
    let template = shipped_template();
    let violations = checks::all(&template);
    assert!(violations.is_empty(), "template.yaml breaks these rules:{}", listing(&violations));
}

#[test]
fn the_shipped_template_has_what_the_checks_look_at() {
    // Guards against the checks passing on an empty or moved template.
    let template = shipped_template();
    let count = |kind| checks::resources(&template, kind).count();
    assert_eq!(count("AWS::Serverless::Function"), 5, "one function per destination, and the digest function");
    assert_eq!(count("AWS::SQS::Queue"), 8, "a queue and a dead-letter queue per destination");
    assert_eq!(count("AWS::S3::Bucket"), 2, "the audit bucket and the large-payload bucket");
    assert_eq!(count("AWS::IAM::Role"), 5, "an explicit role per function");
    let mut binaries: Vec<&str> =
        checks::resources(&template, "AWS::Serverless::Function").filter_map(|(_, f)| f["Metadata"]["BuildProperties"]["Binary"].as_str()).collect();
    binaries.sort_unstable();
    assert_eq!(binaries, ["archive-digest", "azure-blob-writer", "azure-monitor-forwarder", "rest-forwarder", "s3-writer"]);
}

/// Variables the template may set that no source file of ours names: read by a library.
const READ_BY_LIBRARIES: &[&str] = &["RUST_LOG"]; // tracing-subscriber's EnvFilter

#[test]
fn every_variable_the_template_sets_is_read_by_the_code() {
    // A misspelt or renamed variable would be silently ignored by the function it configures.
    let template = shipped_template();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut sources = String::new();
    for dir in ["shared/src", "functions"] {
        read_rust_sources(&std::path::Path::new(root).join(dir), &mut sources);
    }
    assert!(sources.len() > 10_000, "found almost no Rust sources under {root}/shared/src and functions/");
    let mut sets: Vec<(String, String)> = Vec::new();
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    for name in globals.as_object().into_iter().flat_map(|m| m.keys()) {
        sets.push(("Globals".into(), name.clone()));
    }
    for (function, f) in checks::resources(&template, "AWS::Serverless::Function") {
        let vars = &f["Properties"]["Environment"]["Variables"];
        for name in vars.as_object().into_iter().flat_map(|m| m.keys()) {
            sets.push((function.to_owned(), name.clone()));
        }
    }
    assert!(sets.len() > 20, "the template sets almost no variables: {sets:?}");
    let unread: Vec<String> = sets
        .iter()
        .filter(|(_, name)| !READ_BY_LIBRARIES.contains(&name.as_str()))
        .filter(|(_, name)| !sources.contains(&format!("\"{name}\"")))
        .map(|(at, name)| format!("{at}: {name}"))
        .collect();
    assert!(
        unread.is_empty(),
        "template.yaml sets variables that no code under shared/src or functions/ reads (as a \"NAME\" \
         literal):\n  {}",
        unread.join("\n  ")
    );
}

fn read_rust_sources(dir: &std::path::Path, out: &mut String) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())).path();
        if path.is_dir() {
            read_rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            out.push_str(&text);
        }
    }
}

#[test]
fn every_mapped_visibility_timeout_is_six_timeouts_plus_the_window() {
    // The table is data: recompute it so a hand edit cannot drift from the rule it encodes.
    let template = shipped_template();
    let table = template["Mappings"]["VisibilityTimeouts"].as_object().expect("VisibilityTimeouts mapping");
    let allowed = |param: &str| -> Vec<String> {
        template["Parameters"][param]["AllowedValues"]
            .as_array()
            .unwrap_or_else(|| panic!("{param} has AllowedValues"))
            .iter()
            .map(|v| v.to_string().trim_matches('"').to_owned())
            .collect()
    };
    let timeouts = allowed("FunctionTimeout");
    let windows = allowed("MaximumBatchingWindowInSeconds");
    assert_eq!(table.len(), timeouts.len(), "one row per FunctionTimeout value");
    for t in &timeouts {
        let row = table[t].as_object().unwrap_or_else(|| panic!("row {t}"));
        assert_eq!(row.len(), windows.len(), "row {t}: one entry per batching window value");
        for w in &windows {
            let expected = 6 * t.parse::<i64>().unwrap() + w.parse::<i64>().unwrap();
            assert_eq!(row[w].as_i64(), Some(expected), "VisibilityTimeouts[{t}][{w}]");
            assert!(expected <= 43_200, "SQS allows at most 12 hours");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// The audit bucket holds the customer's own copy: the deployed application never deletes or overwrites it
// unless a parameter asks (docs/deploy.md, "The audit bucket: retention, Object Lock, create-only").

/// The shipped template as CloudFormation deploys it with these parameters (the rest at their defaults).
fn deployed(parameters: &[(&str, &str)]) -> serde_json::Value {
    cfn::resolve(&shipped_template(), parameters).unwrap_or_else(|e| panic!("template.yaml with {parameters:?}: {e}"))
}

fn audit_bucket(template: &serde_json::Value) -> &serde_json::Value {
    let bucket = &template["Resources"]["AuditBucket"]["Properties"];
    assert!(bucket.is_object(), "no AuditBucket in the deployed template");
    bucket
}

/// The lifecycle rules that can reach audit objects: every rule but the one for health-check probes,
/// whose prefix no audit object's key starts with (see [`health_probes_expire_after_a_day_and_nothing_else_does`]).
fn lifecycle_rules(template: &serde_json::Value) -> Vec<serde_json::Value> {
    all_lifecycle_rules(template).into_iter().filter(|r| !is_health_probe_rule(r)).collect()
}

fn all_lifecycle_rules(template: &serde_json::Value) -> Vec<serde_json::Value> {
    audit_bucket(template)["LifecycleConfiguration"]["Rules"].as_array().cloned().unwrap_or_default()
}

fn is_health_probe_rule(rule: &serde_json::Value) -> bool {
    checks::reaches_only_health_probes(rule)
}

#[test]
fn health_probes_expire_after_a_day_and_nothing_else_does() {
    let template = deployed(&[]);
    let probes: Vec<_> = all_lifecycle_rules(&template).into_iter().filter(is_health_probe_rule).collect();
    assert_eq!(probes.len(), 1, "{:?}", all_lifecycle_rules(&template));
    // Under the writer's own prefix, as the function writes its probes.
    assert_eq!(probes[0]["Prefix"], serde_json::json!({"Fn::Sub": "${S3Prefix}_auditstream/health/"}));
    assert_eq!(probes[0]["Status"], "Enabled");
    assert_eq!(number(&probes[0]["ExpirationInDays"]), Some(1));
    // The same rule over the writer's whole prefix would delete audit objects: the policy check says so.
    let text = std::fs::read_to_string(TEMPLATE_PATH).unwrap();
    let from = "Prefix: !Sub '${S3Prefix}_auditstream/health/'";
    assert_eq!(text.matches(from).count(), 1);
    let widened = checks::all(&cfn::parse(&text.replacen(from, "Prefix: !Sub '${S3Prefix}'", 1)).unwrap());
    assert!(widened.iter().any(|v| v.to_string().contains("ExpireHealthCheckProbes")), "{}", listing(&widened));
}

/// A number CloudFormation passes as a string ("365") or the template wrote as a number (365).
fn number(value: &serde_json::Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

#[test]
fn by_default_the_audit_bucket_never_expires_or_moves_an_object() {
    let template = deployed(&[]);
    for rule in lifecycle_rules(&template) {
        for deleting in [
            "ExpirationInDays",
            "ExpirationDate",
            "NoncurrentVersionExpiration",
            "NoncurrentVersionExpirationInDays",
            "Transitions",
            "Transition",
            "NoncurrentVersionTransitions",
        ] {
            assert!(rule.get(deleting).is_none(), "with the default parameters, lifecycle rule {rule} has {deleting}");
        }
    }
    // Incomplete multipart uploads are not objects: cleaning them up stays (it deletes no audit copy).
    assert!(
        lifecycle_rules(&template).iter().any(|r| r["Status"] == "Enabled" && number(&r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]).is_some()),
        "the audit bucket should still abort incomplete multipart uploads: {:?}",
        lifecycle_rules(&template)
    );
}

#[test]
fn an_expiry_exists_only_when_asked_and_keeps_deleted_versions_as_long() {
    let template = deployed(&[("AuditExpirationDays", "2557")]);
    let expiring: Vec<_> = lifecycle_rules(&template).into_iter().filter(|r| r.get("ExpirationInDays").is_some()).collect();
    assert_eq!(expiring.len(), 1, "one expiring rule: {expiring:?}");
    let rule = &expiring[0];
    assert_eq!(rule["Status"], "Enabled");
    assert_eq!(number(&rule["ExpirationInDays"]), Some(2557));
    // With versioning an expiry only adds a delete marker; the version it hides is removed as many days
    // later, so no version is ever removed before it is that old.
    assert_eq!(number(&rule["NoncurrentVersionExpiration"]["NoncurrentDays"]), Some(2557));
    assert!(rule.get("Transitions").is_none(), "{rule}");
    // 0 is "never", the default.
    let never = deployed(&[("AuditExpirationDays", "0")]);
    assert!(lifecycle_rules(&never).iter().all(|r| r.get("ExpirationInDays").is_none() && r.get("NoncurrentVersionExpiration").is_none()));
}

#[test]
fn a_transition_to_a_colder_storage_class_exists_only_when_asked() {
    let template = deployed(&[("AuditTransitionStorageClass", "GLACIER_IR"), ("AuditTransitionDays", "90")]);
    let transitions: Vec<_> = lifecycle_rules(&template).into_iter().filter_map(|r| r.get("Transitions").cloned()).collect();
    assert_eq!(transitions.len(), 1, "{transitions:?}");
    let [only] = transitions[0].as_array().map(Vec::as_slice).unwrap_or_default() else {
        panic!("one transition: {transitions:?}");
    };
    assert_eq!(only["StorageClass"], "GLACIER_IR");
    assert_eq!(number(&only["TransitionInDays"]), Some(90));
    // A transition deletes nothing.
    assert!(lifecycle_rules(&template).iter().all(|r| r.get("ExpirationInDays").is_none()));
}

#[test]
fn object_lock_is_off_by_default_and_sets_the_asked_mode_and_days() {
    let off = deployed(&[]);
    assert!(audit_bucket(&off).get("ObjectLockEnabled").is_none());
    assert!(audit_bucket(&off).get("ObjectLockConfiguration").is_none());
    for mode in ["GOVERNANCE", "COMPLIANCE"] {
        let on = deployed(&[("AuditObjectLockMode", mode), ("AuditObjectLockRetentionDays", "2557")]);
        let bucket = audit_bucket(&on);
        assert_eq!(bucket["ObjectLockEnabled"], serde_json::json!(true), "{mode}");
        let lock = &bucket["ObjectLockConfiguration"];
        assert_eq!(lock["ObjectLockEnabled"], "Enabled", "{mode}: {lock}");
        let retention = &lock["Rule"]["DefaultRetention"];
        assert_eq!(retention["Mode"], mode, "{lock}");
        assert_eq!(number(&retention["Days"]), Some(2557), "{lock}");
        assert!(retention.get("Years").is_none(), "Days and Years exclude each other: {lock}");
    }
}

#[test]
fn the_audit_bucket_is_versioned_by_default_and_always_with_object_lock() {
    let status = |parameters: &[(&str, &str)]| audit_bucket(&deployed(parameters))["VersioningConfiguration"]["Status"].as_str().map(str::to_owned);
    assert_eq!(status(&[]).as_deref(), Some("Enabled"));
    assert_eq!(status(&[("AuditBucketVersioning", "Disabled")]), None);
    // Object Lock requires versioning: asking for the lock turns it on whatever the versioning parameter says.
    for mode in ["GOVERNANCE", "COMPLIANCE"] {
        assert_eq!(status(&[("AuditBucketVersioning", "Disabled"), ("AuditObjectLockMode", mode)]).as_deref(), Some("Enabled"), "{mode}");
    }
}

#[test]
fn the_audit_bucket_policy_denies_every_unconditional_put_under_the_audit_prefix() {
    for prefix in ["", "audit/"] {
        let template = deployed(&[("S3Prefix", prefix)]);
        let statements = template["Resources"]["AuditBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"].as_array().cloned().unwrap_or_default();
        let deny = statements
            .iter()
            .find(|s| s["Effect"] == "Deny" && s["Action"] == "s3:PutObject")
            .unwrap_or_else(|| panic!("no Deny of s3:PutObject in {statements:?}"));
        assert_eq!(deny["Principal"], "*", "everyone, the writer's own role included");
        assert_eq!(deny["Resource"], serde_json::json!({"Fn::Sub": "${AuditBucket.Arn}/${S3Prefix}*"}), "what the S3 writer may write");
        // Denied when the request has no If-None-Match; the steps of a multipart upload that cannot carry
        // the header (s3:ObjectCreationOperation false) pass, its completion does not.
        assert_eq!(
            deny["Condition"],
            serde_json::json!({
                "Null": {"s3:if-none-match": "true"},
                "Bool": {"s3:ObjectCreationOperation": "true"}
            })
        );
    }
}

#[test]
fn the_s3_writer_puts_with_if_none_match_as_the_bucket_policy_requires() {
    // The bucket policy above refuses any PutObject without the header: the one writer must send it.
    // (tests/tests/s3_writer.rs shows the header working: a second delivery counts as a duplicate.)
    // The test crate lives in tests/; the shared crate beside it, in shared/.
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root");
    let source = std::fs::read_to_string(workspace.join("shared/src/destinations/s3.rs")).expect("shared/src/destinations/s3.rs");
    assert_eq!(source.matches(".put_object()").count(), 1, "one PutObject call");
    assert!(source.contains(".if_none_match(\"*\")"), "S3Store::put_new must send If-None-Match: *");
    assert!(
        !source.contains("create_multipart_upload") && !source.contains("copy_object"),
        "a multipart upload or copy to the audit bucket needs If-None-Match on its completion too"
    );
}

// ---------------------------------------------------------------------------------------------------------
// What a security review asks for (docs/deploy.md, "Security review: checkov"): each an option, off by
// default because it needs a key or bucket of the customer's own, and set exactly where it applies when given.

const KEY: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn log_groups(template: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    let groups: Vec<_> = template["Resources"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, r)| r["Type"] == "AWS::Logs::LogGroup")
        .map(|(name, r)| (name.clone(), r["Properties"].clone()))
        .collect();
    assert!(!groups.is_empty(), "no log group in the deployed template");
    groups
}

const EVERY_DESTINATION: &[(&str, &str)] = &[
    ("EnableRestForwarder", "true"),
    ("RestUrl", "https://logs.example.com/in"),
    ("EnableAzureBlobWriter", "true"),
    ("AzureBlobAccount", "auditlogs"),
    ("AzureBlobContainer", "audit"),
    ("AzureBlobKeySecretArn", "arn:aws:secretsmanager:eu-west-1:111122223333:secret:blob-AbCdEf"),
    ("EnableAzureMonitorForwarder", "true"),
];

#[test]
fn log_groups_use_the_customer_key_only_when_given() {
    for (name, group) in log_groups(&deployed(EVERY_DESTINATION)) {
        assert!(group.get("KmsKeyId").is_none(), "{name}: {group}");
    }
    let with_key: Vec<_> = [EVERY_DESTINATION, &[("LogsKmsKeyArn", KEY)]].concat();
    let groups = log_groups(&deployed(&with_key));
    assert_eq!(groups.len(), 5, "one log group per function");
    for (name, group) in groups {
        assert_eq!(group["KmsKeyId"], KEY, "{name}");
    }
}

#[test]
fn queues_use_the_customer_key_only_when_given() {
    let queues = |template: &serde_json::Value| -> Vec<(String, serde_json::Value)> {
        template["Resources"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, r)| r["Type"] == "AWS::SQS::Queue")
            .map(|(name, r)| (name.clone(), r["Properties"].clone()))
            .collect()
    };
    let key_grants = |template: &serde_json::Value| -> Vec<serde_json::Value> {
        template["Resources"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, r)| r["Type"] == "AWS::IAM::Role")
            .flat_map(|(_, r)| r["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].as_array().cloned().unwrap_or_default())
            .filter(|s| s["Sid"] == "UseTheQueueKeyThroughSqs")
            .collect()
    };
    let plain = deployed(EVERY_DESTINATION);
    assert_eq!(queues(&plain).len(), 8, "a queue and a dead-letter queue per destination");
    for (name, queue) in queues(&plain) {
        assert_eq!(queue["SqsManagedSseEnabled"], serde_json::json!(true), "{name}");
        assert!(queue.get("KmsMasterKeyId").is_none(), "{name}: {queue}");
    }
    assert!(key_grants(&plain).is_empty());

    let with_key: Vec<_> = [EVERY_DESTINATION, &[("QueueKmsKeyArn", KEY)]].concat();
    let encrypted = deployed(&with_key);
    for (name, queue) in queues(&encrypted) {
        assert_eq!(queue["KmsMasterKeyId"], KEY, "{name}");
        // SQS refuses SSE-SQS and SSE-KMS together.
        assert!(queue.get("SqsManagedSseEnabled").is_none(), "{name}: {queue}");
    }
    // Each function decrypts what it receives and encrypts what it dead-letters, only through SQS.
    let grants = key_grants(&encrypted);
    assert_eq!(grants.len(), 4, "one per function role: {grants:?}");
    for grant in grants {
        assert_eq!(grant["Action"], serde_json::json!(["kms:Decrypt", "kms:GenerateDataKey"]));
        assert_eq!(grant["Resource"], KEY);
        assert_eq!(grant["Condition"]["StringEquals"]["kms:ViaService"], serde_json::json!({"Fn::Sub": "sqs.${AWS::Region}.amazonaws.com"}));
    }
}

#[test]
fn the_alarm_topic_is_encrypted_only_when_given_a_key() {
    let topic = |parameters: &[(&str, &str)]| deployed(parameters)["Resources"]["AlarmTopic"]["Properties"].clone();
    let plain = topic(&[("AlarmEmail", "secops@example.com")]);
    assert!(plain.is_object(), "the alarm topic exists with AlarmEmail");
    assert!(plain.get("KmsMasterKeyId").is_none(), "{plain}");
    let encrypted = topic(&[("AlarmEmail", "secops@example.com"), ("AlarmTopicKmsKeyArn", KEY)]);
    assert_eq!(encrypted["KmsMasterKeyId"], KEY);
}

#[test]
fn both_buckets_log_requests_only_when_given_a_target_bucket() {
    let buckets = |parameters: &[(&str, &str)]| {
        let template = deployed(parameters);
        ["AuditBucket", "PayloadBucket"].map(|b| template["Resources"][b]["Properties"].clone())
    };
    for bucket in buckets(&[]) {
        assert!(bucket.is_object());
        assert!(bucket.get("LoggingConfiguration").is_none(), "{bucket}");
    }
    let [audit, payload] = buckets(&[("AccessLogBucketName", "access-logs-111122223333")]);
    for (bucket, folder) in [(audit, "audit-bucket"), (payload, "payload-bucket")] {
        let logging = &bucket["LoggingConfiguration"];
        assert_eq!(logging["DestinationBucketName"], "access-logs-111122223333");
        assert_eq!(logging["LogFilePrefix"], serde_json::json!({"Fn::Sub": format!("${{AWS::StackName}}/{folder}/")}));
    }
}

/// Every statement of every role, with its role's name.
fn role_statements(template: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    checks::resources(template, "AWS::IAM::Role")
        .flat_map(|(role, r)| {
            let policies = r["Properties"]["Policies"].as_array().cloned().unwrap_or_default();
            policies.into_iter().flat_map(|p| p["PolicyDocument"]["Statement"].as_array().cloned().unwrap_or_default()).map(move |s| (role.to_owned(), s))
        })
        .collect()
}

#[test]
fn a_replay_source_bucket_is_readable_by_each_destination_only_when_given_and_only_read() {
    // `auditstream replay --queue` sends pointers to the archived objects themselves
    // (docs/operations.md): the functions must read them, and must not be able to delete or
    // overwrite them, whatever a consumer library would like to do.
    let grants_on_replay_bucket = |template: &serde_json::Value| -> Vec<(String, serde_json::Value)> {
        role_statements(template).into_iter().filter(|(_, s)| s["Resource"].to_string().contains("ReplaySourceBucket")).collect()
    };
    let plain = deployed(EVERY_DESTINATION);
    assert!(role_statements(&plain).len() > 20, "found almost no role statements");
    assert_eq!(grants_on_replay_bucket(&plain), vec![], "no grant without ReplaySourceBucket");

    let with_bucket: Vec<_> = [EVERY_DESTINATION, &[("ReplaySourceBucket", "audit-archive-111122223333")]].concat();
    let grants = grants_on_replay_bucket(&deployed(&with_bucket));
    let mut roles: Vec<&str> = grants.iter().map(|(role, _)| role.as_str()).collect();
    roles.sort_unstable();
    assert_eq!(roles, ["AzureBlobWriterRole", "AzureMonitorForwarderRole", "RestForwarderRole", "S3WriterRole"], "one grant per destination function");
    for (role, grant) in &grants {
        assert_eq!(grant["Effect"], "Allow", "{role}");
        assert_eq!(grant["Action"], "s3:GetObject", "{role}: read only, no delete and no put");
        assert_eq!(grant["Resource"], serde_json::json!({"Fn::Sub": "arn:${AWS::Partition}:s3:::${ReplaySourceBucket}/*"}), "{role}");
        assert!(grant.get("Condition").is_none(), "{role}: {grant}");
    }
    // The parameter cannot name more than one bucket, nor all of them.
    let definition = &shipped_template()["Parameters"]["ReplaySourceBucket"];
    assert_eq!(definition["Default"], "");
    assert!(pattern_accepts(definition, "") && pattern_accepts(definition, "audit-archive-111122223333"));
    for refused in ["*", "a*", "bucket/prefix", "arn:aws:s3:::bucket"] {
        assert!(!pattern_accepts(definition, refused), "ReplaySourceBucket accepts {refused:?}");
    }
}

#[test]
fn a_replay_source_kms_key_is_usable_by_each_destination_only_when_given_only_to_decrypt_and_only_through_s3() {
    // An archive encrypted with a customer-managed key (SSE-KMS): S3 decrypts each object for a
    // GetObject only if the caller may kms:Decrypt with that key.
    const KEY: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const BUCKET: (&str, &str) = ("ReplaySourceBucket", "audit-archive-111122223333");
    let grants_on_key = |parameters: &[(&str, &str)]| -> Vec<(String, serde_json::Value)> {
        let template = deployed(&[EVERY_DESTINATION, parameters].concat());
        role_statements(&template).into_iter().filter(|(_, s)| s.to_string().contains(KEY)).collect()
    };
    assert_eq!(grants_on_key(&[BUCKET]), vec![], "no key grant without ReplaySourceKmsKeyArn");
    assert_eq!(grants_on_key(&[("ReplaySourceKmsKeyArn", KEY)]), vec![], "a key without a replay source bucket grants nothing");

    let grants = grants_on_key(&[BUCKET, ("ReplaySourceKmsKeyArn", KEY)]);
    let mut roles: Vec<&str> = grants.iter().map(|(role, _)| role.as_str()).collect();
    roles.sort_unstable();
    assert_eq!(roles, ["AzureBlobWriterRole", "AzureMonitorForwarderRole", "RestForwarderRole", "S3WriterRole"], "one grant per destination function");
    for (role, grant) in &grants {
        assert_eq!(grant["Effect"], "Allow", "{role}");
        assert_eq!(grant["Action"], "kms:Decrypt", "{role}: decrypt only, no GenerateDataKey (nothing is written there)");
        assert_eq!(grant["Resource"], KEY, "{role}: that key only");
        assert_eq!(
            grant["Condition"],
            serde_json::json!({"StringEquals": {"kms:ViaService": {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}}}),
            "{role}: through S3 only"
        );
    }
    let definition = &shipped_template()["Parameters"]["ReplaySourceKmsKeyArn"];
    assert_eq!(definition["Default"], "");
    assert!(pattern_accepts(definition, "") && pattern_accepts(definition, KEY));
    for refused in ["*", "arn:aws:kms:eu-west-1:111122223333:key/*", "arn:aws:kms:eu-west-1:111122223333:alias/audit", "1234abcd-12ab-34cd-56ef-1234567890ab"] {
        assert!(!pattern_accepts(definition, refused), "ReplaySourceKmsKeyArn accepts {refused:?}");
    }
}

/// Whether a parameter's AllowedPattern (matched against the whole value, as CloudFormation does) accepts `value`.
fn pattern_accepts(definition: &serde_json::Value, value: &str) -> bool {
    let pattern = definition["AllowedPattern"].as_str().unwrap_or_else(|| panic!("no AllowedPattern in {definition}"));
    regex_lite::Regex::new(&format!("^(?:{pattern})$")).unwrap_or_else(|e| panic!("{pattern}: {e}")).is_match(value)
}

// ---------------------------------------------------------------------------------------------------------
// Each check fires: a good template, broken one way at a time.

const GOOD: &str = r#"
Transform: AWS::Serverless-2016-10-31
Parameters:
  FunctionTimeout: {Type: Number, AllowedValues: [30, 60], Default: 60}
  Window: {Type: Number, AllowedValues: [0, 5], Default: 0}
  MaxReceiveCount: {Type: Number, MinValue: 5, Default: 5}
  SecretArn:
    Type: String
    Default: ''
    AllowedPattern: '^$|^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$'
  Prefix: {Type: String, Default: '', AllowedPattern: '^[A-Za-z0-9_/-]*$'}
Conditions:
  HasSecret: !Not [!Equals [!Ref SecretArn, '']]
Mappings:
  Visibility:
    '30': {'0': 180, '5': 185}
    '60': {'0': 360, '5': 365}
Globals:
  Function:
    Runtime: provided.al2023
    Architectures: [arm64]
    Handler: bootstrap
    Timeout: !Ref FunctionTimeout
Resources:
  DeadLetters:
    Type: AWS::SQS::Queue
    Properties: {MessageRetentionPeriod: 1209600, SqsManagedSseEnabled: true}
  Inbox:
    Type: AWS::SQS::Queue
    Properties:
      SqsManagedSseEnabled: true
      VisibilityTimeout: !FindInMap [Visibility, !Ref FunctionTimeout, !Ref Window]
      RedrivePolicy: {deadLetterTargetArn: !GetAtt DeadLetters.Arn, maxReceiveCount: !Ref MaxReceiveCount}
  WriterRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - {Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}
      Policies:
        - PolicyName: writer
          PolicyDocument:
            Statement:
              - Sid: Poll
                Effect: Allow
                Action: [sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes]
                Resource: !GetAtt Inbox.Arn
              - Sid: Write
                Effect: Allow
                Action: s3:PutObject
                Resource: !Sub '${Archive.Arn}/${Prefix}*'
              - !If
                - HasSecret
                - Sid: Secret
                  Effect: Allow
                  Action: secretsmanager:GetSecretValue
                  Resource: !Ref SecretArn
                - !Ref AWS::NoValue
  Writer:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: rust-cargolambda, BuildProperties: {Binary: s3-writer}}
    Properties:
      CodeUri: .
      Role: !GetAtt WriterRole.Arn
      LoggingConfig: {LogFormat: JSON}
      Events:
        Inbox:
          Type: SQS
          Properties:
            Queue: !GetAtt Inbox.Arn
            MaximumBatchingWindowInSeconds: !If [HasSecret, !Ref Window, !Ref AWS::NoValue]
            FunctionResponseTypes: [ReportBatchItemFailures]
  Archive:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption:
        ServerSideEncryptionConfiguration:
          - ServerSideEncryptionByDefault: {SSEAlgorithm: AES256}
      PublicAccessBlockConfiguration:
        BlockPublicAcls: true
        BlockPublicPolicy: true
        IgnorePublicAcls: true
        RestrictPublicBuckets: true
      LifecycleConfiguration:
        Rules: [{Id: Expire, Status: Enabled, ExpirationInDays: 365}]
  ArchivePolicy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref Archive
      PolicyDocument:
        Statement:
          - Sid: DenyInsecureTransport
            Effect: Deny
            Principal: '*'
            Action: 's3:*'
            Resource: [!GetAtt Archive.Arn, !Sub '${Archive.Arn}/*']
            Condition: {Bool: {'aws:SecureTransport': 'false'}}
          - {Sid: DenyOverwrites, Effect: Deny, Principal: '*', Action: [s3:PutObject],
             Resource: [!Sub '${Archive.Arn}/${Prefix}*'],
             Condition: {'Null': {'s3:if-none-match': 'true'}, Bool: {'s3:ObjectCreationOperation': 'true'}}}
"#;

/// The violations of GOOD with `from` replaced by `to` (which must occur exactly once).
fn violations_with(from: &str, to: &str) -> Vec<Violation> {
    assert_eq!(GOOD.matches(from).count(), 1, "the test's edit {from:?} must match GOOD exactly once");
    let broken = GOOD.replacen(from, to, 1);
    let template = cfn::parse(&broken).unwrap_or_else(|e| panic!("the broken template does not parse: {e}"));
    checks::all(&template)
}

/// The violations of GOOD with each `from` replaced by its `to` (each must occur exactly once).
fn violations_with_all(edits: &[(&str, &str)]) -> Vec<Violation> {
    let mut text = GOOD.to_owned();
    for (from, to) in edits {
        assert_eq!(text.matches(from).count(), 1, "the test's edit {from:?} must match exactly once");
        text = text.replacen(from, to, 1);
    }
    let template = cfn::parse(&text).unwrap_or_else(|e| panic!("the edited template does not parse: {e}"));
    checks::all(&template)
}

/// Asserts the edit makes `check` report a problem at `location` that mentions `words`.
fn assert_fires(from: &str, to: &str, check: &str, location: &str, words: &str) {
    let violations = violations_with(from, to);
    assert!(
        violations.iter().any(|v| v.check == check && v.location.contains(location) && v.problem.contains(words)),
        "replacing {from:?} by {to:?} should make [{check}] fire at {location} about {words:?}; got:{}",
        listing(&violations)
    );
}

#[test]
fn the_good_template_passes() {
    let template = cfn::parse(GOOD).unwrap();
    let violations = checks::all(&template);
    assert!(violations.is_empty(), "{}", listing(&violations));
}

#[test]
fn a_function_without_report_batch_item_failures_fails() {
    assert_fires(
        "FunctionResponseTypes: [ReportBatchItemFailures]",
        "FunctionResponseTypes: []",
        checks::REPORT_BATCH_ITEM_FAILURES,
        "Writer.Events.Inbox",
        "ReportBatchItemFailures",
    );
}

#[test]
fn a_function_without_an_sqs_event_fails() {
    assert_fires("          Type: SQS\n", "          Type: SNS\n", checks::REPORT_BATCH_ITEM_FAILURES, "Writer", "no SQS event");
}

#[test]
fn a_raw_event_source_mapping_without_report_batch_item_failures_fails() {
    assert_fires(
        "  Archive:\n    Type: AWS::S3::Bucket",
        "  Mapping:\n    Type: AWS::Lambda::EventSourceMapping\n    Properties: {FunctionName: !Ref Writer, \
         EventSourceArn: !GetAtt Inbox.Arn}\n  Archive:\n    Type: AWS::S3::Bucket",
        checks::REPORT_BATCH_ITEM_FAILURES,
        "Mapping",
        "ReportBatchItemFailures",
    );
}

#[test]
fn a_queue_without_a_dead_letter_queue_fails() {
    assert_fires(
        "      RedrivePolicy: {deadLetterTargetArn: !GetAtt DeadLetters.Arn, maxReceiveCount: !Ref MaxReceiveCount}\n",
        "",
        checks::DEAD_LETTER_QUEUES,
        "Inbox",
        "no RedrivePolicy",
    );
}

#[test]
fn a_redrive_to_something_that_is_not_a_queue_of_the_template_fails() {
    assert_fires(
        "deadLetterTargetArn: !GetAtt DeadLetters.Arn",
        "deadLetterTargetArn: !GetAtt Archive.Arn",
        checks::DEAD_LETTER_QUEUES,
        "Inbox",
        "deadLetterTargetArn",
    );
}

#[test]
fn a_max_receive_count_that_may_be_below_five_fails() {
    assert_fires(
        "MaxReceiveCount: {Type: Number, MinValue: 5, Default: 5}",
        "MaxReceiveCount: {Type: Number, MinValue: 1, Default: 5}",
        checks::DEAD_LETTER_QUEUES,
        "Inbox",
        "below 5",
    );
    assert_fires("maxReceiveCount: !Ref MaxReceiveCount", "maxReceiveCount: 3", checks::DEAD_LETTER_QUEUES, "Inbox", "below 5");
}

#[test]
fn a_dead_letter_queue_keeping_messages_less_than_14_days_fails() {
    assert_fires("MessageRetentionPeriod: 1209600, ", "MessageRetentionPeriod: 345600, ", checks::DEAD_LETTER_QUEUES, "DeadLetters", "14 days");
}

#[test]
fn an_unencrypted_queue_fails() {
    assert_fires(
        "      SqsManagedSseEnabled: true\n      VisibilityTimeout",
        "      SqsManagedSseEnabled: false\n      VisibilityTimeout",
        checks::QUEUE_ENCRYPTION,
        "Inbox",
        "not encrypted",
    );
    assert_fires(
        "Properties: {MessageRetentionPeriod: 1209600, SqsManagedSseEnabled: true}",
        "Properties: {MessageRetentionPeriod: 1209600}",
        checks::QUEUE_ENCRYPTION,
        "DeadLetters",
        "not encrypted",
    );
}

#[test]
fn a_wildcard_action_fails() {
    assert_fires("Action: s3:PutObject", "Action: 's3:Put*'", checks::NO_WILDCARD_GRANTS, "WriterRole", "s3:Put*");
}

#[test]
fn a_wildcard_resource_fails() {
    assert_fires("Resource: !Sub '${Archive.Arn}/${Prefix}*'", "Resource: '*'", checks::NO_WILDCARD_GRANTS, "WriterRole.Policies[0].Write", "\"*\"");
    assert_fires(
        "Resource: !Sub '${Archive.Arn}/${Prefix}*'",
        "Resource: !Sub 'arn:${AWS::Partition}:s3:::*'",
        checks::NO_WILDCARD_GRANTS,
        "Write",
        "spans a whole service",
    );
    assert_fires(
        "Resource: !GetAtt Inbox.Arn",
        "Resource: 'arn:aws:sqs:us-east-1:123456789012:*'",
        checks::NO_WILDCARD_GRANTS,
        "Poll",
        "spans a whole service",
    );
}

#[test]
fn a_wildcard_inside_a_conditional_statement_fails() {
    assert_fires(
        "                  Resource: !Ref SecretArn",
        "                  Resource: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:*'",
        checks::NO_WILDCARD_GRANTS,
        "Secret",
        "spans a whole service",
    );
}

#[test]
fn a_parameter_resource_that_could_be_a_wildcard_fails() {
    assert_fires(
        "AllowedPattern: '^$|^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$'",
        "AllowedPattern: '.*'",
        checks::NO_WILDCARD_GRANTS,
        "Secret",
        "SecretArn",
    );
    assert_fires(
        "Prefix: {Type: String, Default: '', AllowedPattern: '^[A-Za-z0-9_/-]*$'}",
        "Prefix: {Type: String, Default: ''}",
        checks::NO_WILDCARD_GRANTS,
        "Write",
        "without an AllowedPattern",
    );
}

#[test]
fn a_managed_policy_fails() {
    assert_fires(
        "      Policies:\n        - PolicyName: writer",
        "      ManagedPolicyArns: [arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole]\n      \
         Policies:\n        - PolicyName: writer",
        checks::NO_WILDCARD_GRANTS,
        "WriterRole",
        "ManagedPolicyArns",
    );
}

#[test]
fn a_function_left_to_sams_generated_role_fails() {
    assert_fires("      Role: !GetAtt WriterRole.Arn\n", "", checks::NO_WILDCARD_GRANTS, "Writer", "has no Role");
    assert_fires(
        "      Role: !GetAtt WriterRole.Arn\n",
        "      Policies: [SQSPollerPolicy: {QueueName: !GetAtt Inbox.QueueName}]\n",
        checks::NO_WILDCARD_GRANTS,
        "Writer",
        "has Policies",
    );
}

#[test]
fn a_resource_policy_open_to_anyone_fails() {
    assert_fires(
        "            Effect: Deny\n            Principal: '*'",
        "            Effect: Allow\n            Principal: {AWS: '*'}",
        checks::NO_WILDCARD_GRANTS,
        "ArchivePolicy",
        "anyone",
    );
}

#[test]
fn a_mapped_visibility_timeout_below_six_timeouts_fails() {
    assert_fires(
        "'60': {'0': 360, '5': 365}",
        "'60': {'0': 359, '5': 365}",
        checks::VISIBILITY_TIMEOUT,
        "Writer.Events.Inbox <- Inbox",
        "359 s < 6 x function timeout 60 s",
    );
}

#[test]
fn a_visibility_timeout_that_ignores_the_batching_window_fails() {
    assert_fires("'60': {'0': 360, '5': 365}", "'60': {'0': 360, '5': 360}", checks::VISIBILITY_TIMEOUT, "Inbox", "batching window 5 s");
}

#[test]
fn a_parameter_value_missing_from_the_mapping_fails() {
    assert_fires("AllowedValues: [30, 60], Default: 60", "AllowedValues: [30, 60, 90], Default: 60", checks::VISIBILITY_TIMEOUT, "Inbox", "no entry [90]");
}

#[test]
fn a_timeout_parameter_without_allowed_values_fails() {
    assert_fires(
        "FunctionTimeout: {Type: Number, AllowedValues: [30, 60], Default: 60}",
        "FunctionTimeout: {Type: Number, MinValue: 1, MaxValue: 900, Default: 60}",
        checks::VISIBILITY_TIMEOUT,
        "Inbox",
        "no AllowedValues",
    );
}

#[test]
fn a_fixed_visibility_timeout_below_the_largest_timeout_fails() {
    assert_fires(
        "VisibilityTimeout: !FindInMap [Visibility, !Ref FunctionTimeout, !Ref Window]",
        "VisibilityTimeout: 300",
        checks::VISIBILITY_TIMEOUT,
        "Inbox",
        "300 s < 6 x function timeout 60 s",
    );
    assert_fires(
        "      VisibilityTimeout: !FindInMap [Visibility, !Ref FunctionTimeout, !Ref Window]\n",
        "",
        checks::VISIBILITY_TIMEOUT,
        "Inbox",
        "visibility timeout 30 s",
    );
}

#[test]
fn a_bucket_without_encryption_fails() {
    assert_fires(
        "          - ServerSideEncryptionByDefault: {SSEAlgorithm: AES256}\n",
        "          []\n",
        checks::BUCKET_PROTECTION,
        "Archive",
        "BucketEncryption",
    );
    assert_fires("{SSEAlgorithm: AES256}", "{SSEAlgorithm: none}", checks::BUCKET_PROTECTION, "Archive", "SSEAlgorithm");
}

#[test]
fn a_bucket_without_full_block_public_access_fails() {
    assert_fires("RestrictPublicBuckets: true", "RestrictPublicBuckets: false", checks::BUCKET_PROTECTION, "Archive", "RestrictPublicBuckets");
    assert_fires("        BlockPublicAcls: true\n", "", checks::BUCKET_PROTECTION, "Archive", "BlockPublicAcls");
}

#[test]
fn a_bucket_without_the_tls_only_policy_fails() {
    let words = "aws:SecureTransport is false";
    assert_fires("Bucket: !Ref Archive", "Bucket: !Ref SomethingElse", checks::BUCKET_PROTECTION, "Archive", words);
    assert_fires("'aws:SecureTransport': 'false'", "'aws:SecureTransport': 'true'", checks::BUCKET_PROTECTION, "Archive", words);
    assert_fires("Resource: [!GetAtt Archive.Arn, !Sub '${Archive.Arn}/*']", "Resource: [!GetAtt Archive.Arn]", checks::BUCKET_PROTECTION, "Archive", words);
    assert_fires("Action: 's3:*'", "Action: 's3:GetObject'", checks::BUCKET_PROTECTION, "Archive", words);
}

#[test]
fn a_scratch_bucket_that_never_expires_objects_fails() {
    assert_fires(
        "Rules: [{Id: Expire, Status: Enabled, ExpirationInDays: 365}]",
        "Rules: [{Id: Expire, Status: Disabled, ExpirationInDays: 365}]",
        checks::BUCKET_PROTECTION,
        "Archive",
        "expires objects",
    );
}

const RETAINED: (&str, &str) = ("  Archive:\n    Type: AWS::S3::Bucket\n", "  Archive:\n    Type: AWS::S3::Bucket\n    DeletionPolicy: Retain\n");

#[test]
fn a_retained_bucket_that_expires_objects_by_default_fails() {
    // The customer's copy: kept with the stack's deletion, so nothing may delete it unless asked.
    let violations = violations_with_all(&[RETAINED]);
    assert!(
        violations.iter().any(|v| v.check == checks::BUCKET_PROTECTION && v.location == "Archive" && v.problem.contains("ExpirationInDays")),
        "{}",
        listing(&violations)
    );
    let noncurrent = violations_with_all(&[
        RETAINED,
        (
            "Rules: [{Id: Expire, Status: Enabled, ExpirationInDays: 365}]",
            "Rules: [{Id: Old, Status: Enabled, NoncurrentVersionExpiration: {NoncurrentDays: 30}}]",
        ),
    ]);
    assert!(noncurrent.iter().any(|v| v.location == "Archive" && v.problem.contains("NoncurrentVersionExpiration")), "{}", listing(&noncurrent));
}

#[test]
fn a_retained_bucket_that_expires_only_when_a_parameter_asks_passes() {
    let violations = violations_with_all(&[
        RETAINED,
        ("Conditions:\n", "  ExpireDays: {Type: Number, MinValue: 0, Default: 0}\nConditions:\n  Expires: !Not [!Equals [!Ref ExpireDays, 0]]\n"),
        (
            "Rules: [{Id: Expire, Status: Enabled, ExpirationInDays: 365}]",
            "Rules: [{Id: Abort, Status: Enabled, AbortIncompleteMultipartUpload: {DaysAfterInitiation: 7}}, \
             !If [Expires, {Id: Expire, Status: Enabled, ExpirationInDays: !Ref ExpireDays}, !Ref AWS::NoValue]]",
        ),
    ]);
    assert!(violations.is_empty(), "{}", listing(&violations));
}

#[test]
fn a_bucket_a_function_writes_without_the_create_only_deny_fails() {
    let words = "s3:if-none-match is Null";
    let deny = "          - {Sid: DenyOverwrites, Effect: Deny, Principal: '*', Action: [s3:PutObject],\n";
    assert_fires(
        deny,
        "          - {Sid: DenyOverwrites, Effect: Allow, Principal: {Service: s3.amazonaws.com}, Action: [s3:PutObject],\n",
        checks::CREATE_ONLY,
        "WriterRole.Policies[0].Write",
        words,
    );
    // Deleted outright, the whole statement.
    let all = violations_with_all(&[(deny, "          - {Sid: DenyOverwrites, Effect: Deny, Principal: '*', Action: [s3:GetObject],\n")]);
    assert!(all.iter().any(|v| v.check == checks::CREATE_ONLY), "{}", listing(&all));
    assert_fires("'s3:if-none-match': 'true'", "'s3:if-none-match': 'false'", checks::CREATE_ONLY, "Write", words);
    assert_fires("Resource: [!Sub '${Archive.Arn}/${Prefix}*']", "Resource: [!Sub '${Archive.Arn}/other/*']", checks::CREATE_ONLY, "Write", words);
    // Another key would narrow the deny to some requests only.
    assert_fires(
        "Bool: {'s3:ObjectCreationOperation': 'true'}}}",
        "Bool: {'s3:ObjectCreationOperation': 'true'}, StringEquals: {'aws:PrincipalAccount': '111122223333'}}}",
        checks::CREATE_ONLY,
        "Write",
        words,
    );
    assert_fires("Bool: {'s3:ObjectCreationOperation': 'true'}}}", "Bool: {'s3:ObjectCreationOperation': 'false'}}}", checks::CREATE_ONLY, "Write", words);
}

#[test]
fn a_create_only_deny_for_the_whole_bucket_or_without_the_multipart_exemption_passes() {
    for (from, to) in
        [("Resource: [!Sub '${Archive.Arn}/${Prefix}*']", "Resource: [!Sub '${Archive.Arn}/*']"), (", Bool: {'s3:ObjectCreationOperation': 'true'}}}", "}}")]
    {
        let violations = violations_with_all(&[(from, to)]);
        assert!(violations.is_empty(), "{from:?} -> {to:?}:{}", listing(&violations));
    }
}

#[test]
fn a_function_not_built_as_an_arm64_rust_binary_fails() {
    assert_fires("Architectures: [arm64]", "Architectures: [x86_64]", checks::FUNCTION_SHAPE, "Writer", "arm64");
    assert_fires("BuildMethod: rust-cargolambda, ", "BuildMethod: makefile, ", checks::FUNCTION_SHAPE, "Writer", "rust-cargolambda");
    assert_fires("LoggingConfig: {LogFormat: JSON}", "LoggingConfig: {LogFormat: Text}", checks::FUNCTION_SHAPE, "Writer", "JSON");
    assert_fires(", BuildProperties: {Binary: s3-writer}", "", checks::FUNCTION_SHAPE, "Writer", "Binary");
}

// ---------------------------------------------------------------------------------------------------------
// Operating it (docs/operations.md): a scheduled health check per function, an alarm on its Healthy metric
// (missing data is unhealthy), the queue-age alarms, and one dashboard.

const FUNCTIONS: [&str; 4] = ["S3Writer", "RestForwarder", "AzureBlobWriter", "AzureMonitorForwarder"];

#[test]
fn each_function_checks_its_destination_on_a_schedule_and_an_alarm_watches_healthy() {
    let template = shipped_template();
    let resources = &template["Resources"];
    for f in FUNCTIONS {
        let schedule = &resources[format!("{f}Function")]["Properties"]["Events"]["HealthCheck"];
        assert_eq!(schedule["Type"], "ScheduleV2", "{f}: {schedule}");
        assert_eq!(schedule["Properties"]["Input"], r#"{"auditstream":"health-check"}"#, "{f}: the input the functions take (intake/schedule.rs)");
        assert_eq!(
            schedule["Properties"]["ScheduleExpression"],
            serde_json::json!({"Fn::FindInMap": ["HealthCheckIntervals", {"Ref": "HealthCheckIntervalHours"}, "Expression"]})
        );

        let alarm = &resources[format!("{f}HealthAlarm")];
        assert_eq!(alarm["Condition"], format!("{f}Enabled"));
        let p = &alarm["Properties"];
        assert_eq!((p["Namespace"].as_str(), p["MetricName"].as_str()), (Some("auditstream"), Some("Healthy")), "{f}");
        assert_eq!(p["Dimensions"][0]["Value"], serde_json::json!({"Ref": format!("{f}Function")}));
        assert_eq!(p["TreatMissingData"], "breaching", "{f}: a check that did not run is unhealthy");
        assert_eq!((p["ComparisonOperator"].as_str(), number(&p["Threshold"])), (Some("LessThanThreshold"), Some(1)));
        assert_eq!(p["Period"], serde_json::json!({"Fn::FindInMap": ["HealthCheckIntervals", {"Ref": "HealthCheckIntervalHours"}, "Seconds"]}));
        for name in [format!("{f}HealthAlarm"), format!("{f}QueueAgeAlarm"), format!("{f}DeadLetterQueueAgeAlarm")] {
            let actions = &resources[&name]["Properties"]["AlarmActions"];
            assert!(actions.to_string().contains("AlarmTopic"), "{name} notifies the alarm topic: {actions}");
        }
        assert_eq!(resources[format!("{f}QueueAgeAlarm")]["Properties"]["MetricName"], "ApproximateAgeOfOldestMessage");
        assert_eq!(
            resources[format!("{f}DeadLetterQueueAgeAlarm")]["Properties"]["Dimensions"][0]["Value"],
            serde_json::json!({"Fn::GetAtt": [format!("{f}DeadLetterQueue"), "QueueName"]})
        );
    }
    // Every allowed interval has a schedule and an alarm period.
    let allowed = template["Parameters"]["HealthCheckIntervalHours"]["AllowedValues"].as_array().unwrap().clone();
    for hours in allowed {
        let row = &template["Mappings"]["HealthCheckIntervals"][hours.as_str().unwrap()];
        let seconds = number(&row["Seconds"]).unwrap_or_else(|| panic!("{hours}: {row}"));
        assert_eq!(seconds, hours.as_str().unwrap().parse::<i64>().unwrap() * 3600);
        assert!(row["Expression"].as_str().is_some_and(|e| e.starts_with("rate(")), "{row}");
    }
    assert_eq!(template["Parameters"]["HealthCheckIntervalHours"]["Default"], "24", "daily by default");
}

#[test]
fn one_dashboard_shows_each_destination() {
    let template = shipped_template();
    let body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"].to_string();
    for f in FUNCTIONS {
        assert!(body.contains(&format!("{f}Function")) && body.contains(&format!("{f}DeadLetterQueue")), "{f} is on the dashboard");
    }
    for metric in ["Received", "Written", "Duplicates", "Failed", "DeadLettered", "DeliveryLatency", "ApproximateAgeOfOldestMessage", "Healthy"] {
        assert!(body.contains(metric), "{metric}");
    }
}

/// The functions whose role may put objects into the audit bucket, with their environment and grants.
fn audit_bucket_writers(template: &serde_json::Value) -> Vec<(String, serde_json::Value, Vec<serde_json::Value>)> {
    let statements = role_statements(template);
    checks::resources(template, "AWS::Serverless::Function")
        .filter_map(|(name, function)| {
            let role = function["Properties"]["Role"]["Fn::GetAtt"][0].as_str()?;
            let grants: Vec<serde_json::Value> = statements.iter().filter(|(r, _)| r == role).map(|(_, s)| s.clone()).collect();
            let puts_audit_objects =
                grants.iter().any(|s| s["Action"].to_string().contains("s3:PutObject") && s["Resource"].to_string().contains("AuditBucket"));
            puts_audit_objects.then(|| (name.to_owned(), function["Properties"]["Environment"]["Variables"].clone(), grants))
        })
        .collect()
}

#[test]
fn every_function_that_writes_to_an_sse_kms_audit_bucket_names_the_key_and_may_use_it() {
    // A write that names no key falls back to the bucket's default encryption, which a bucket policy
    // or a later change of the default would turn into another key or a refusal: every writer of the
    // audit bucket — the S3 writer's events and manifests, the digest function's digests — names the
    // same key (`AUDITSTREAM_S3_SSE_KMS_KEY_ID`) and may use it through S3 (docs/deploy.md).
    let writers = |template: &serde_json::Value| {
        let mut names: Vec<String> = audit_bucket_writers(template).into_iter().map(|(name, ..)| name).collect();
        names.sort_unstable();
        names
    };
    let plain = deployed(&[]);
    assert_eq!(writers(&plain), ["DigestFunction", "S3WriterFunction"]);
    for (name, variables, _) in audit_bucket_writers(&plain) {
        assert!(variables.get("AUDITSTREAM_S3_SSE_KMS_KEY_ID").is_none(), "{name}: no key without BucketKmsKeyArn: {variables}");
    }

    let with_key = deployed(&[("BucketKmsKeyArn", KEY)]);
    assert_eq!(writers(&with_key), ["DigestFunction", "S3WriterFunction"]);
    for (name, variables, grants) in audit_bucket_writers(&with_key) {
        assert_eq!(variables["AUDITSTREAM_S3_SSE_KMS_KEY_ID"], KEY, "{name}: the bucket's key, as every other writer of the bucket: {variables}");
        let uses_the_key = grants.iter().any(|s| {
            s["Effect"] == "Allow"
                && s["Resource"] == KEY
                && s["Action"].to_string().contains("kms:GenerateDataKey")
                && s["Condition"]["StringEquals"]["kms:ViaService"].to_string().contains("s3.")
        });
        assert!(uses_the_key, "{name}: its role may not use {KEY} through S3: {grants:#?}");
    }
}
