//! The rules `template.yaml` must keep that `sam validate --lint` (cfn-lint) does not check.
//!
//! Each check takes the whole template (in CloudFormation's JSON form, see `cfn.rs`) and returns one
//! `Violation` per problem, naming the resource and saying what is wrong and why it matters. A check looks
//! at both branches of every `Fn::If`, because a parameter choice at deploy time picks one of them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

pub const REPORT_BATCH_ITEM_FAILURES: &str = "report-batch-item-failures";
pub const DEAD_LETTER_QUEUES: &str = "dead-letter-queues";
pub const QUEUE_ENCRYPTION: &str = "queue-encryption";
pub const NO_WILDCARD_GRANTS: &str = "no-wildcard-grants";
pub const VISIBILITY_TIMEOUT: &str = "visibility-timeout";
pub const BUCKET_PROTECTION: &str = "bucket-protection";
pub const CREATE_ONLY: &str = "create-only";
pub const FUNCTION_SHAPE: &str = "function-shape";

/// 14 days, the longest SQS keeps a message: a dead letter must wait that long for someone to look at it.
pub const DLQ_RETENTION_SECONDS: i64 = 1_209_600;
/// AWS recommends at least 5 receives before a message is dead-lettered (Lambda retries throttled batches).
pub const MIN_MAX_RECEIVE_COUNT: i64 = 5;
/// Lambda's defaults when a template does not say: function timeout 3 s; SQS visibility timeout 30 s.
const LAMBDA_DEFAULT_TIMEOUT: i64 = 3;
const SQS_DEFAULT_VISIBILITY_TIMEOUT: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub check: &'static str,
    pub location: String,
    pub problem: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}: {}", self.check, self.location, self.problem)
    }
}

fn violation(check: &'static str, location: impl Into<String>, problem: impl Into<String>) -> Violation {
    Violation { check, location: location.into(), problem: problem.into() }
}

/// Every check, in the order a reader of the template meets the things they check.
pub fn all(template: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    out.extend(report_batch_item_failures(template));
    out.extend(dead_letter_queues(template));
    out.extend(queue_encryption(template));
    out.extend(no_wildcard_grants(template));
    out.extend(visibility_timeout(template));
    out.extend(bucket_protection(template));
    out.extend(create_only(template));
    out.extend(function_shape(template));
    out
}

// ---------------------------------------------------------------------------------------------------------
// Reading the template

pub fn resources<'a>(template: &'a Value, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
    template
        .get("Resources")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|map| map.iter())
        .filter(move |(_, resource)| resource.get("Type").and_then(Value::as_str) == Some(kind))
        .map(|(name, resource)| (name.as_str(), resource))
}

fn resource_type<'a>(template: &'a Value, name: &str) -> Option<&'a str> {
    template.get("Resources")?.get(name)?.get("Type")?.as_str()
}

fn properties(resource: &Value) -> &Value {
    resource.get("Properties").unwrap_or(&Value::Null)
}

fn parameter<'a>(template: &'a Value, name: &str) -> Option<&'a Value> {
    template.get("Parameters")?.get(name)
}

/// A function property, or the one `Globals.Function` gives every function.
fn function_property<'a>(template: &'a Value, function: &'a Value, key: &str) -> Option<&'a Value> {
    properties(function).get(key).or_else(|| template.get("Globals")?.get("Function")?.get(key))
}

fn is_no_value(value: &Value) -> bool {
    value.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue")
}

/// The values an expression can take: both branches of every `Fn::If`, without `AWS::NoValue`.
fn branches(value: &Value) -> Vec<&Value> {
    if let Some(args) = value.get("Fn::If").and_then(Value::as_array) {
        if args.len() == 3 {
            let mut out = branches(&args[1]);
            out.extend(branches(&args[2]));
            return out;
        }
    }
    if is_no_value(value) {
        return Vec::new();
    }
    vec![value]
}

/// A property that may be one item or a list of items (an IAM `Action`, `Resource`, `Statement`).
fn items(value: &Value) -> Vec<&Value> {
    branches(value)
        .into_iter()
        .flat_map(|v| match v.as_array() {
            Some(list) => list.iter().flat_map(branches).collect(),
            None => vec![v],
        })
        .collect()
}

fn is_true(value: &Value) -> bool {
    matches!(value, Value::Bool(true)) || value.as_str() == Some("true")
}

fn as_integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `{"Fn::GetAtt": [name, attribute]}` → (name, attribute).
fn get_att(value: &Value) -> Option<(&str, &str)> {
    let args = value.get("Fn::GetAtt")?.as_array()?;
    Some((args.first()?.as_str()?, args.get(1)?.as_str()?))
}

// ---------------------------------------------------------------------------------------------------------
// ReportBatchItemFailures

/// Without `ReportBatchItemFailures` Lambda ignores the function's `batchItemFailures` answer: one bad
/// message then fails (and later redelivers) its whole batch.
pub fn report_batch_item_failures(template: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let reports =
        |mapping: &Value| items(mapping.get("FunctionResponseTypes").unwrap_or(&Value::Null)).iter().any(|t| t.as_str() == Some("ReportBatchItemFailures"));
    for (name, function) in resources(template, "AWS::Serverless::Function") {
        let events = properties(function).get("Events").and_then(Value::as_object);
        let of_type = |kind: &str| -> Vec<(&String, &Value)> {
            events.into_iter().flatten().filter(|(_, event)| event.get("Type").and_then(Value::as_str) == Some(kind)).collect()
        };
        let sqs = of_type("SQS");
        // The one function not fed by a queue is the digest function, run by a schedule alone.
        let scheduled_only = events.is_some_and(|e| !e.is_empty()) && of_type("Schedule").len() == events.map_or(0, |e| e.len());
        if sqs.is_empty() && !scheduled_only {
            out.push(violation(REPORT_BATCH_ITEM_FAILURES, name, "has no SQS event: every auditstream function but a scheduled one is fed by a queue"));
        }
        for (event_name, event) in sqs {
            if !reports(properties(event)) {
                out.push(violation(
                    REPORT_BATCH_ITEM_FAILURES,
                    format!("{name}.Events.{event_name}"),
                    "FunctionResponseTypes lacks ReportBatchItemFailures: Lambda would ignore the partial batch \
                     response and retry the whole batch for one failed message",
                ));
            }
        }
    }
    for (name, mapping) in resources(template, "AWS::Lambda::EventSourceMapping") {
        if !reports(properties(mapping)) {
            out.push(violation(REPORT_BATCH_ITEM_FAILURES, name, "FunctionResponseTypes lacks ReportBatchItemFailures"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------
// Dead-letter queues

fn dead_letter_targets(template: &Value) -> BTreeSet<String> {
    resources(template, "AWS::SQS::Queue")
        .filter_map(|(_, queue)| properties(queue).get("RedrivePolicy")?.get("deadLetterTargetArn"))
        .flat_map(branches)
        .filter_map(get_att)
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// Every queue that is not itself a dead-letter queue has one, after at least 5 receives; every
/// dead-letter queue keeps its messages 14 days.
pub fn dead_letter_queues(template: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let targets = dead_letter_targets(template);
    for (name, queue) in resources(template, "AWS::SQS::Queue") {
        let props = properties(queue);
        if targets.contains(name) {
            let retention = props.get("MessageRetentionPeriod").and_then(as_integer);
            if retention != Some(DLQ_RETENTION_SECONDS) {
                out.push(violation(
                    DEAD_LETTER_QUEUES,
                    name,
                    format!(
                        "is a dead-letter queue keeping messages {} s, not {DLQ_RETENTION_SECONDS} s (14 days)",
                        retention.map_or_else(|| "the default 345600".to_owned(), |r| r.to_string())
                    ),
                ));
            }
            continue;
        }
        let Some(redrive) = props.get("RedrivePolicy") else {
            out.push(violation(
                DEAD_LETTER_QUEUES,
                name,
                "has no RedrivePolicy: a message that keeps failing would be retried until it expires \
                 instead of moving to a dead-letter queue",
            ));
            continue;
        };
        let target = redrive.get("deadLetterTargetArn").unwrap_or(&Value::Null);
        let target_ok = !branches(target).is_empty()
            && branches(target).iter().all(|t| get_att(t).is_some_and(|(q, attr)| attr == "Arn" && resource_type(template, q) == Some("AWS::SQS::Queue")));
        if !target_ok {
            out.push(violation(DEAD_LETTER_QUEUES, name, format!("RedrivePolicy.deadLetterTargetArn {target} is not !GetAtt <a queue of this template>.Arn")));
        }
        match redrive.get("maxReceiveCount") {
            None => out.push(violation(DEAD_LETTER_QUEUES, name, "RedrivePolicy has no maxReceiveCount")),
            Some(count) => {
                if let Some(problem) = min_receive_count_problem(template, count) {
                    out.push(violation(DEAD_LETTER_QUEUES, name, problem));
                }
            }
        }
    }
    out
}

fn min_receive_count_problem(template: &Value, count: &Value) -> Option<String> {
    if let Some(n) = as_integer(count) {
        return (n < MIN_MAX_RECEIVE_COUNT).then(|| format!("maxReceiveCount {n} is below {MIN_MAX_RECEIVE_COUNT}"));
    }
    let Some(param) = count.get("Ref").and_then(Value::as_str) else {
        return Some(format!("maxReceiveCount {count} is neither a number nor a parameter"));
    };
    let Some(def) = parameter(template, param) else {
        return Some(format!("maxReceiveCount refers to {param}, which is not a parameter"));
    };
    match def.get("MinValue").and_then(as_integer) {
        Some(min) if min >= MIN_MAX_RECEIVE_COUNT => None,
        Some(min) => Some(format!("parameter {param} allows maxReceiveCount {min}, below {MIN_MAX_RECEIVE_COUNT}")),
        None => Some(format!("parameter {param} has no MinValue, so maxReceiveCount could be below 5")),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Queue encryption

/// Audit events hold personal data: every queue is encrypted at rest (SSE-SQS or a KMS key).
pub fn queue_encryption(template: &Value) -> Vec<Violation> {
    resources(template, "AWS::SQS::Queue")
        .filter(|(_, queue)| {
            let props = properties(queue);
            let sse_sqs = props.get("SqsManagedSseEnabled").is_some_and(|v| {
                let b = branches(v);
                !b.is_empty() && b.iter().all(|v| is_true(v))
            });
            let kms = props.get("KmsMasterKeyId").is_some_and(|v| {
                let b = branches(v);
                !b.is_empty() && b.iter().all(|v| v.as_str() != Some(""))
            });
            !(sse_sqs || kms)
        })
        .map(|(name, _)| violation(QUEUE_ENCRYPTION, name, "is not encrypted at rest: set SqsManagedSseEnabled: true (or KmsMasterKeyId) on every branch"))
        .collect()
}

// ---------------------------------------------------------------------------------------------------------
// No wildcard grants

/// Wildcard shapes a parameter used in a policy `Resource` must refuse (by its AllowedPattern).
const WILDCARD_PROBES: &[&str] = &[
    "*",
    "arn:aws:s3:::*",
    "arn:aws:sqs:us-east-1:123456789012:*",
    "arn:aws:kms:us-east-1:123456789012:*",
    "arn:aws:kms:us-east-1:123456789012:key/*",
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:*",
    "bucket*",
    "prefix/*",
];

/// No `Allow` statement grants an action pattern (`s3:*`, `s3:Put*`) or a resource pattern that spans a
/// whole account or service (`*`, `arn:aws:s3:::*`, `...:secret:*`), and nothing pulls in policies this
/// test cannot read: AWS managed policies, SAM policy templates, or the role SAM makes for a function
/// without `Role` (SAM adds AWSLambdaBasicExecutionRole and AWSLambdaSQSQueueExecutionRole to it, both on
/// every resource).
pub fn no_wildcard_grants(template: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    for (name, function) in resources(template, "AWS::Serverless::Function") {
        let props = properties(function);
        if props.get("Role").is_none() {
            out.push(violation(
                NO_WILDCARD_GRANTS,
                name,
                "has no Role: SAM would create one with the managed policies AWSLambdaBasicExecutionRole and \
                 AWSLambdaSQSQueueExecutionRole, whose actions apply to every resource",
            ));
        }
        if props.get("Policies").is_some() {
            out.push(violation(NO_WILDCARD_GRANTS, name, "has Policies: grant through statements in its explicit role, where this test can read them"));
        }
    }
    for (name, role) in resources(template, "AWS::IAM::Role") {
        let props = properties(role);
        if props.get("ManagedPolicyArns").is_some_and(|v| !items(v).is_empty()) {
            out.push(violation(
                NO_WILDCARD_GRANTS,
                name,
                "has ManagedPolicyArns: a managed policy's grants cannot be checked here (AWS's Lambda policies \
                 use Resource \"*\"); use inline statements",
            ));
        }
        for (i, policy) in items(props.get("Policies").unwrap_or(&Value::Null)).into_iter().enumerate() {
            let doc = policy.get("PolicyDocument").unwrap_or(&Value::Null);
            check_document(template, &format!("{name}.Policies[{i}]"), doc, false, &mut out);
        }
    }
    for kind in ["AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"] {
        for (name, policy) in resources(template, kind) {
            let doc = properties(policy).get("PolicyDocument").unwrap_or(&Value::Null);
            check_document(template, name, doc, false, &mut out);
        }
    }
    for kind in ["AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"] {
        for (name, policy) in resources(template, kind) {
            let doc = properties(policy).get("PolicyDocument").unwrap_or(&Value::Null);
            check_document(template, name, doc, true, &mut out);
        }
    }
    out
}

fn check_document(template: &Value, location: &str, doc: &Value, resource_policy: bool, out: &mut Vec<Violation>) {
    let statements = items(doc.get("Statement").unwrap_or(&Value::Null));
    if statements.is_empty() {
        out.push(violation(NO_WILDCARD_GRANTS, location, "policy document has no Statement"));
    }
    for (i, statement) in statements.into_iter().enumerate() {
        let at = match statement.get("Sid").and_then(Value::as_str) {
            Some(sid) => format!("{location}.{sid}"),
            None => format!("{location}.Statement[{i}]"),
        };
        if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
            // A Deny may be as broad as it likes (the TLS-only bucket policy denies s3:* to everyone).
            continue;
        }
        for inverse in ["NotAction", "NotResource", "NotPrincipal"] {
            if statement.get(inverse).is_some() {
                out.push(violation(NO_WILDCARD_GRANTS, &at, format!("Allow with {inverse} grants everything else")));
            }
        }
        let actions = items(statement.get("Action").unwrap_or(&Value::Null));
        if actions.is_empty() && statement.get("NotAction").is_none() {
            out.push(violation(NO_WILDCARD_GRANTS, &at, "Allow statement without Action"));
        }
        for action in actions {
            match action.as_str() {
                Some(a) if a.contains('*') => out.push(violation(NO_WILDCARD_GRANTS, &at, format!("grants the action pattern {a:?}: name each action"))),
                Some(_) => {}
                None => out.push(violation(NO_WILDCARD_GRANTS, &at, format!("action {action} is not a literal"))),
            }
        }
        if resource_policy {
            for principal in principals(statement.get("Principal").unwrap_or(&Value::Null)) {
                if principal == "*" {
                    out.push(violation(NO_WILDCARD_GRANTS, &at, "allows Principal \"*\" (anyone)"));
                }
            }
        }
        let resources = items(statement.get("Resource").unwrap_or(&Value::Null));
        if resources.is_empty() && !resource_policy {
            out.push(violation(NO_WILDCARD_GRANTS, &at, "Allow statement without Resource"));
        }
        for resource in resources {
            if let Some(problem) = wildcard_resource(template, resource) {
                out.push(violation(NO_WILDCARD_GRANTS, &at, problem));
            }
        }
    }
}

fn principals(principal: &Value) -> Vec<String> {
    match principal {
        Value::String(s) => vec![s.clone()],
        Value::Object(map) => map.values().flat_map(items).filter_map(scalar_string).collect(),
        Value::Array(list) => list.iter().flat_map(principals).collect(),
        _ => Vec::new(),
    }
}

/// Why `resource` could be a wildcard, or None when it is scoped.
fn wildcard_resource(template: &Value, resource: &Value) -> Option<String> {
    if let Some(s) = resource.as_str() {
        return wildcard_literal(s).then(|| format!("grants on {s:?}, which spans a whole service or account"));
    }
    if let Some(name) = resource.get("Ref").and_then(Value::as_str) {
        return parameter(template, name).and_then(|_| parameter_admits_wildcard(template, name));
    }
    if get_att(resource).is_some() {
        return None; // an attribute of a resource of this template: one resource
    }
    if let Some(sub) = resource.get("Fn::Sub") {
        let (text, vars) = match sub {
            Value::String(s) => (s.as_str(), None),
            Value::Array(args) => match (args.first().and_then(Value::as_str), args.get(1)) {
                (Some(s), vars) => (s, vars.and_then(Value::as_object)),
                (None, _) => return Some(format!("cannot read the Fn::Sub {sub}")),
            },
            _ => return Some(format!("cannot read the Fn::Sub {sub}")),
        };
        let (shape, names) = sub_shape(text);
        if wildcard_literal(&shape) {
            return Some(format!("grants on {text:?}, which spans a whole service or account"));
        }
        for name in names {
            let bound = vars.and_then(|v| v.get(&name));
            let params = match bound {
                Some(expr) => referenced_parameters(template, expr),
                None if parameter(template, &name).is_some() => BTreeSet::from([name.clone()]),
                None => BTreeSet::new(), // a resource attribute or pseudo parameter
            };
            for param in params {
                if let Some(problem) = parameter_admits_wildcard(template, &param) {
                    return Some(problem);
                }
            }
        }
        return None;
    }
    Some(format!("cannot verify the resource {resource}: use a literal ARN, !Ref, !GetAtt or !Sub"))
}

/// The text of a `Fn::Sub` with each `${...}` replaced by a plain word, and the names it referenced.
fn sub_shape(text: &str) -> (String, Vec<String>) {
    let mut shape = String::new();
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        shape.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            shape.push_str(&rest[start..]);
            return (shape, names);
        };
        let name = &after[..end];
        if let Some(literal) = name.strip_prefix('!') {
            shape.push_str("${");
            shape.push_str(literal);
            shape.push('}');
        } else {
            shape.push('x');
            names.push(name.split('.').next().unwrap_or(name).to_owned());
        }
        rest = &after[end + 1..];
    }
    shape.push_str(rest);
    (shape, names)
}

/// `*`, or an ARN whose resource part is `*`, empty, or a bare type followed by `*` (`key/*`, `secret:*`).
fn wildcard_literal(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    if !s.starts_with("arn:") {
        return false;
    }
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let Some(resource) = parts.get(5) else {
        return true; // not a complete ARN: cannot tell what it covers
    };
    if resource.is_empty() || resource.starts_with('*') {
        return true;
    }
    if parts[2] == "s3" {
        // S3 ARNs have no resource type: `bucket/*` is the objects of one bucket.
        return false;
    }
    match resource.strip_suffix('*') {
        Some(head) => {
            let kind = head.trim_end_matches([':', '/']);
            (head.ends_with(':') || head.ends_with('/')) && !kind.is_empty() && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        }
        None => false,
    }
}

fn referenced_parameters(template: &Value, expr: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    collect_refs(expr, &mut out);
    out.retain(|name| parameter(template, name).is_some());
    out
}

fn collect_refs(expr: &Value, out: &mut BTreeSet<String>) {
    match expr {
        Value::Object(map) => {
            if let Some(name) = map.get("Ref").and_then(Value::as_str) {
                out.insert(name.to_owned());
            }
            if let Some(text) = map.get("Fn::Sub").and_then(|s| s.as_str().or_else(|| s.get(0)?.as_str())) {
                out.extend(sub_shape(text).1);
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(list) => list.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

fn parameter_admits_wildcard(template: &Value, name: &str) -> Option<String> {
    let def = parameter(template, name)?;
    if let Some(values) = def.get("AllowedValues").and_then(Value::as_array) {
        return values
            .iter()
            .filter_map(scalar_string)
            .find(|v| v.contains('*'))
            .map(|v| format!("parameter {name} used in a policy Resource allows the wildcard {v:?}"));
    }
    let Some(pattern) = def.get("AllowedPattern").and_then(Value::as_str) else {
        return Some(format!("parameter {name} is used in a policy Resource without an AllowedPattern, so \"*\" could be passed"));
    };
    // CloudFormation matches AllowedPattern against the whole value.
    let regex = match regex_lite::Regex::new(&format!("^(?:{pattern})$")) {
        Ok(r) => r,
        Err(e) => return Some(format!("cannot read the AllowedPattern of {name} ({e}), so cannot rule out \"*\"")),
    };
    WILDCARD_PROBES
        .iter()
        .find(|probe| regex.is_match(probe))
        .map(|probe| format!("parameter {name} used in a policy Resource accepts the wildcard {probe:?} (AllowedPattern {pattern:?})"))
}

// ---------------------------------------------------------------------------------------------------------
// Visibility timeout

/// For every queue of this template that feeds a function, under every value the parameters allow:
/// visibility timeout ≥ 6 × function timeout + batching window. A message in a batch stays invisible for
/// the window while Lambda gathers the batch, then the function runs; AWS asks for 6 × the timeout so a
/// throttled batch can be retried before the message reappears and is processed twice.
pub fn visibility_timeout(template: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    for (name, function) in resources(template, "AWS::Serverless::Function") {
        let default_timeout = Value::from(LAMBDA_DEFAULT_TIMEOUT);
        let timeout = function_property(template, function, "Timeout").unwrap_or(&default_timeout);
        let Some(events) = properties(function).get("Events").and_then(Value::as_object) else {
            continue;
        };
        for (event_name, event) in events {
            if event.get("Type").and_then(Value::as_str) != Some("SQS") {
                continue;
            }
            let props = properties(event);
            let window = props.get("MaximumBatchingWindowInSeconds").unwrap_or(&Value::Null);
            // A queue given by parameter (an existing queue) is the deployer's; the stack outputs the
            // visibility timeout it needs.
            let queues = branches(props.get("Queue").unwrap_or(&Value::Null))
                .into_iter()
                .filter_map(get_att)
                .filter(|(q, _)| resource_type(template, q) == Some("AWS::SQS::Queue"))
                .map(|(q, _)| q);
            for queue in queues {
                let at = format!("{name}.Events.{event_name} <- {queue}");
                let default_visibility = Value::from(SQS_DEFAULT_VISIBILITY_TIMEOUT);
                let visibility = template["Resources"][queue].get("Properties").and_then(|p| p.get("VisibilityTimeout")).unwrap_or(&default_visibility);
                if let Err(problem) = check_visibility(template, timeout, window, visibility) {
                    out.push(violation(VISIBILITY_TIMEOUT, at, problem));
                }
            }
        }
    }
    out
}

type Assignment = BTreeMap<String, String>;

fn check_visibility(template: &Value, timeout: &Value, window: &Value, visibility: &Value) -> Result<(), String> {
    let keyed_by = referenced_parameters(template, visibility);
    let mut names = referenced_parameters(template, timeout);
    names.extend(referenced_parameters(template, window));
    names.extend(keyed_by.iter().cloned());
    // Each parameter's possible values. One the visibility timeout depends on must list them all
    // (AllowedValues); for the others their largest value is the worst case.
    let mut domains: Vec<(String, Vec<String>)> = Vec::new();
    for name in names {
        let def = &template["Parameters"][&name];
        let domain = match def.get("AllowedValues").and_then(Value::as_array) {
            Some(values) => values.iter().filter_map(scalar_string).collect(),
            None if keyed_by.contains(&name) => {
                return Err(format!(
                    "the visibility timeout depends on parameter {name}, which has no AllowedValues, so some \
                     values cannot be checked"
                ))
            }
            None => match def.get("MaxValue").and_then(scalar_string) {
                Some(max) => vec![max],
                None => return Err(format!("parameter {name} has no AllowedValues or MaxValue: no upper bound")),
            },
        };
        domains.push((name, domain));
    }
    let mut assignments: Vec<Assignment> = vec![Assignment::new()];
    for (name, domain) in &domains {
        assignments = assignments
            .into_iter()
            .flat_map(|a| {
                domain.iter().map(move |v| {
                    let mut a = a.clone();
                    a.insert(name.clone(), v.clone());
                    a
                })
            })
            .collect();
    }
    for assignment in &assignments {
        let t = worst(evaluate(template, timeout, assignment)?, LAMBDA_DEFAULT_TIMEOUT, i64::max);
        let w = worst(evaluate(template, window, assignment)?, 0, i64::max);
        let v = worst(evaluate(template, visibility, assignment)?, SQS_DEFAULT_VISIBILITY_TIMEOUT, i64::min);
        if v < 6 * t + w {
            return Err(format!(
                "with {assignment:?}: visibility timeout {v} s < 6 x function timeout {t} s + batching window \
                 {w} s = {} s",
                6 * t + w
            ));
        }
    }
    Ok(())
}

/// The worst of the values an expression can take (a missing value is the AWS default).
fn worst(values: Vec<Option<i64>>, default: i64, pick: fn(i64, i64) -> i64) -> i64 {
    values.into_iter().map(|v| v.unwrap_or(default)).reduce(pick).unwrap_or(default)
}

/// The values of a numeric expression under one parameter assignment (`None` = `AWS::NoValue`/absent).
fn evaluate(template: &Value, expr: &Value, assignment: &Assignment) -> Result<Vec<Option<i64>>, String> {
    if expr.is_null() || is_no_value(expr) {
        return Ok(vec![None]);
    }
    if let Some(n) = as_integer(expr) {
        return Ok(vec![Some(n)]);
    }
    if let Some(args) = expr.get("Fn::If").and_then(Value::as_array) {
        let mut out = Vec::new();
        for branch in args.iter().skip(1) {
            out.extend(evaluate(template, branch, assignment)?);
        }
        return Ok(out);
    }
    if expr.get("Ref").is_some() || expr.get("Fn::FindInMap").is_some() {
        let text = evaluate_key(template, expr, assignment)?;
        return text.parse().map(|n| vec![Some(n)]).map_err(|_| format!("{expr} is {text:?}, not a number of seconds"));
    }
    Err(format!("cannot evaluate {expr}: use a number, !Ref, !If or !FindInMap"))
}

fn evaluate_key(template: &Value, expr: &Value, assignment: &Assignment) -> Result<String, String> {
    if let Some(s) = scalar_string(expr) {
        return Ok(s);
    }
    if let Some(name) = expr.get("Ref").and_then(Value::as_str) {
        return assignment.get(name).cloned().ok_or_else(|| format!("!Ref {name} is not a parameter"));
    }
    if let Some(args) = expr.get("Fn::FindInMap").and_then(Value::as_array) {
        let [map, first, second] = args.as_slice() else {
            return Err(format!("Fn::FindInMap {expr} needs three arguments"));
        };
        let map = evaluate_key(template, map, assignment)?;
        let first = evaluate_key(template, first, assignment)?;
        let second = evaluate_key(template, second, assignment)?;
        return template
            .get("Mappings")
            .and_then(|m| m.get(&map))
            .and_then(|m| m.get(&first))
            .and_then(|m| m.get(&second))
            .and_then(scalar_string)
            .ok_or_else(|| format!("mapping {map} has no entry [{first}][{second}]"));
    }
    Err(format!("cannot evaluate {expr}"))
}

// ---------------------------------------------------------------------------------------------------------
// Buckets

const SSE_ALGORITHMS: &[&str] = &["AES256", "aws:kms", "aws:kms:dsse"];

/// Every bucket: default encryption, all four Block Public Access settings, and a bucket policy denying
/// requests without TLS on the bucket and its objects. Then what its lifecycle may delete depends on who
/// the data belongs to:
/// - a bucket deleted with the stack holds scratch data (offloaded payloads): an enabled lifecycle rule
///   must expire its objects, or they pile up forever;
/// - a bucket the stack keeps when it is deleted (`DeletionPolicy: Retain`) holds the customer's own copy:
///   with the template's default parameters no lifecycle rule may expire or remove anything in it. An
///   expiry exists only when a parameter asks for one (compliance often needs years, not Workato's one).
pub fn bucket_protection(template: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    for (name, bucket) in resources(template, "AWS::S3::Bucket") {
        let props = properties(bucket);
        let mut problem = |p: String| out.push(violation(BUCKET_PROTECTION, name, p));

        let rules = props.get("BucketEncryption").and_then(|e| e.get("ServerSideEncryptionConfiguration")).map(items).unwrap_or_default();
        if rules.is_empty() {
            problem("has no BucketEncryption.ServerSideEncryptionConfiguration".into());
        }
        for rule in rules {
            let algorithms = rule.get("ServerSideEncryptionByDefault").and_then(|d| d.get("SSEAlgorithm")).map(branches).unwrap_or_default();
            if algorithms.is_empty() || !algorithms.iter().all(|a| a.as_str().is_some_and(|a| SSE_ALGORITHMS.contains(&a))) {
                problem(format!("an encryption rule's SSEAlgorithm is not one of {SSE_ALGORITHMS:?} on every branch"));
            }
        }

        let block = props.get("PublicAccessBlockConfiguration").unwrap_or(&Value::Null);
        for setting in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"] {
            if !block.get(setting).is_some_and(is_true) {
                problem(format!("PublicAccessBlockConfiguration.{setting} is not true"));
            }
        }

        if !has_tls_only_policy(template, name) {
            problem(
                "has no bucket policy that denies s3:* to Principal \"*\" when aws:SecureTransport is false, on \
                 both the bucket and its objects"
                    .into(),
            );
        }

        let retained = bucket.get("DeletionPolicy").and_then(Value::as_str) == Some("Retain");
        let expires = lifecycle_rules(props).into_iter().any(|rule| rule_is_enabled(rule) && EXPIRATIONS[..2].iter().any(|e| rule.get(e).is_some()));
        if !retained && !expires {
            problem(
                "is deleted with the stack (no DeletionPolicy: Retain), so it holds scratch data, yet has no \
                 enabled lifecycle rule that expires objects"
                    .into(),
            );
        }
    }
    out.extend(retained_buckets_keep_everything_by_default(template));
    out
}

/// Lifecycle rule properties that delete objects or versions.
const EXPIRATIONS: &[&str] = &["ExpirationInDays", "ExpirationDate", "NoncurrentVersionExpiration", "NoncurrentVersionExpirationInDays"];

fn lifecycle_rules(props: &Value) -> Vec<&Value> {
    props.get("LifecycleConfiguration").and_then(|l| l.get("Rules")).map(items).unwrap_or_default()
}

/// The health check's probes live under `PREFIX_auditstream/health/`, which no audit object's key
/// starts with (docs/operations.md): a rule scoped by that prefix alone deletes no audit object.
pub fn reaches_only_health_probes(rule: &Value) -> bool {
    let prefix = rule.get("Prefix").and_then(|p| p.as_str().or_else(|| p.get("Fn::Sub").and_then(Value::as_str)));
    prefix.is_some_and(|p| p.ends_with("_auditstream/health/") && !p.trim_end_matches("_auditstream/health/").contains('*'))
        && rule.get("Filter").is_none()
        && rule.get("TagFilters").is_none()
}

fn rule_is_enabled(rule: &Value) -> bool {
    rule.get("Status").and_then(Value::as_str) == Some("Enabled")
}

fn retained_buckets_keep_everything_by_default(template: &Value) -> Vec<Violation> {
    let retained: Vec<&str> = resources(template, "AWS::S3::Bucket")
        .filter(|(_, b)| b.get("DeletionPolicy").and_then(Value::as_str) == Some("Retain"))
        .map(|(name, _)| name)
        .collect();
    if retained.is_empty() {
        return Vec::new();
    }
    let defaults = match crate::cfn::resolve(template, &[]) {
        Ok(t) => t,
        Err(e) => {
            return vec![violation(
                BUCKET_PROTECTION,
                retained.join(", "),
                format!("cannot resolve the template with its default parameters to check the lifecycle: {e}"),
            )]
        }
    };
    let mut out = Vec::new();
    for name in retained {
        let Some(bucket) = defaults["Resources"].get(name) else {
            continue; // not created with the default parameters
        };
        for rule in lifecycle_rules(properties(bucket)).into_iter().filter(|r| !reaches_only_health_probes(r)) {
            let deletes: Vec<&str> = EXPIRATIONS.iter().copied().filter(|e| rule.get(*e).is_some()).collect();
            if rule_is_enabled(rule) && !deletes.is_empty() {
                out.push(violation(
                    BUCKET_PROTECTION,
                    name,
                    format!(
                        "is kept when the stack is deleted (DeletionPolicy: Retain), so it holds the customer's own \
                         copy, yet with the default parameters its lifecycle rule {} deletes objects ({}): expire \
                         only when a parameter asks",
                        rule.get("Id").and_then(Value::as_str).unwrap_or("(no Id)"),
                        deletes.join(", ")
                    ),
                ));
            }
        }
    }
    out
}

fn refers_to(expr: &Value, bucket: &str) -> bool {
    expr.get("Ref").and_then(Value::as_str) == Some(bucket)
}

fn has_tls_only_policy(template: &Value, bucket: &str) -> bool {
    resources(template, "AWS::S3::BucketPolicy")
        .filter(|(_, policy)| properties(policy).get("Bucket").is_some_and(|b| refers_to(b, bucket)))
        .flat_map(|(_, policy)| items(&properties(policy)["PolicyDocument"]["Statement"]))
        .any(|statement| {
            let denies = statement.get("Effect").and_then(Value::as_str) == Some("Deny");
            let everyone = principals(statement.get("Principal").unwrap_or(&Value::Null)).iter().any(|p| p == "*");
            let all_actions = items(statement.get("Action").unwrap_or(&Value::Null)).iter().any(|a| matches!(a.as_str(), Some("s3:*" | "*")));
            let insecure = statement
                .get("Condition")
                .and_then(|c| c.get("Bool"))
                .and_then(|b| b.get("aws:SecureTransport"))
                .is_some_and(|v| matches!(v, Value::Bool(false)) || v.as_str() == Some("false"));
            let resources = items(statement.get("Resource").unwrap_or(&Value::Null));
            let (mut covers_bucket, mut covers_objects) = (false, false);
            for resource in resources {
                match bucket_resource_scope(resource, bucket) {
                    Some(Scope::Bucket) => covers_bucket = true,
                    Some(Scope::Objects) => covers_objects = true,
                    None => {}
                }
            }
            denies && everyone && all_actions && insecure && covers_bucket && covers_objects
        })
}

enum Scope {
    Bucket,
    Objects,
}

fn bucket_resource_scope(resource: &Value, bucket: &str) -> Option<Scope> {
    if get_att(resource) == Some((bucket, "Arn")) {
        return Some(Scope::Bucket);
    }
    let text = match resource.get("Fn::Sub")? {
        Value::String(s) => s.as_str(),
        Value::Array(args) => args.first()?.as_str()?,
        _ => return None,
    };
    let arn = format!("${{{bucket}.Arn}}");
    let by_name = format!("arn:${{AWS::Partition}}:s3:::${{{bucket}}}");
    if text == arn || text == by_name {
        Some(Scope::Bucket)
    } else if text == format!("{arn}/*") || text == format!("{by_name}/*") {
        Some(Scope::Objects)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------------------
// Create-only writes

/// Every bucket of this template that a role may `s3:PutObject` to has a bucket policy that denies, to
/// everyone, a `PutObject` on what the role may write unless the request carries `If-None-Match`: an
/// object, once written, cannot be overwritten, even by a compromised function (which could otherwise drop
/// the header). The one exemption allowed is the documented one for the steps of a multipart upload that
/// take no conditional header (`s3:ObjectCreationOperation` false); the completion is still denied.
/// See <https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes-enforce.html>.
pub fn create_only(template: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    for (role, definition) in resources(template, "AWS::IAM::Role") {
        for (i, policy) in items(properties(definition).get("Policies").unwrap_or(&Value::Null)).into_iter().enumerate() {
            let statements = items(&policy["PolicyDocument"]["Statement"]);
            for (j, statement) in statements.into_iter().enumerate() {
                let puts = statement.get("Effect").and_then(Value::as_str) == Some("Allow")
                    && items(statement.get("Action").unwrap_or(&Value::Null)).iter().any(|a| a.as_str() == Some("s3:PutObject"));
                if !puts {
                    continue;
                }
                let at = match statement.get("Sid").and_then(Value::as_str) {
                    Some(sid) => format!("{role}.Policies[{i}].{sid}"),
                    None => format!("{role}.Policies[{i}].Statement[{j}]"),
                };
                for resource in items(statement.get("Resource").unwrap_or(&Value::Null)) {
                    let Some((bucket, objects)) = objects_of_template_bucket(template, resource) else {
                        continue; // not a bucket of this template: its policy is not ours to set
                    };
                    if !denies_unconditional_puts(template, bucket, &objects) {
                        out.push(violation(
                            CREATE_ONLY,
                            &at,
                            format!(
                                "may s3:PutObject to {objects:?}, but no statement of {bucket}'s bucket policy (outside \
                                 any Fn::If) denies Principal \"*\" s3:PutObject there when s3:if-none-match is Null: \
                                 an object written could be overwritten"
                            ),
                        ));
                    }
                }
            }
        }
    }
    out
}

/// `${Bucket.Arn}/...` or `arn:${AWS::Partition}:s3:::${Bucket}/...` naming a bucket of this template:
/// (the bucket, the object ARN pattern as written).
fn objects_of_template_bucket<'a>(template: &'a Value, resource: &Value) -> Option<(&'a str, String)> {
    let text = match resource.get("Fn::Sub")? {
        Value::String(s) => s.as_str(),
        Value::Array(args) => args.first()?.as_str()?,
        _ => return None,
    };
    let (name, _) = resources(template, "AWS::S3::Bucket")
        .find(|(name, _)| text.starts_with(&format!("${{{name}.Arn}}/")) || text.starts_with(&format!("arn:${{AWS::Partition}}:s3:::${{{name}}}/")))?;
    Some((name, text.to_owned()))
}

fn denies_unconditional_puts(template: &Value, bucket: &str, objects: &str) -> bool {
    let whole_bucket = [format!("${{{bucket}.Arn}}/*"), format!("arn:${{AWS::Partition}}:s3:::${{{bucket}}}/*")];
    let holds = |v: Option<&Value>| v.is_some_and(is_true);
    resources(template, "AWS::S3::BucketPolicy")
        .filter(|(_, policy)| properties(policy).get("Bucket").is_some_and(|b| refers_to(b, bucket)))
        // A statement inside an Fn::If is absent under some parameters: only unconditional ones count.
        .flat_map(|(_, policy)| {
            properties(policy)["PolicyDocument"]["Statement"]
                .as_array()
                .map(|list| list.iter().filter(|s| s.get("Fn::If").is_none()).collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .any(|statement| {
            let denies = statement.get("Effect").and_then(Value::as_str) == Some("Deny");
            let everyone = principals(statement.get("Principal").unwrap_or(&Value::Null)).iter().any(|p| p == "*");
            // Exactly s3:PutObject: a broader deny under this condition would also refuse every read.
            let put = items(statement.get("Action").unwrap_or(&Value::Null)).iter().any(|a| a.as_str() == Some("s3:PutObject"));
            let covers = items(statement.get("Resource").unwrap_or(&Value::Null))
                .iter()
                .filter_map(|r| match r.get("Fn::Sub")? {
                    Value::String(s) => Some(s.as_str()),
                    Value::Array(args) => args.first()?.as_str(),
                    _ => None,
                })
                .any(|text| {
                    // A deny of `prefix*` covers every pattern below that prefix.
                    text == objects || whole_bucket.iter().any(|w| w == text) || text.strip_suffix('*').is_some_and(|p| objects.starts_with(p))
                });
            let condition = statement.get("Condition").and_then(Value::as_object);
            let unconditional_request = condition.is_some_and(|c| {
                let null = c.get("Null").and_then(Value::as_object);
                let bool_ = c.get("Bool").and_then(Value::as_object);
                let null_ok = null.is_some_and(|n| n.len() == 1 && holds(n.get("s3:if-none-match")));
                // Any other key would narrow the deny (to some principals, times, ...).
                let bool_ok = bool_.is_none_or(|b| b.len() == 1 && holds(b.get("s3:ObjectCreationOperation")));
                let only_these = c.keys().all(|k| k == "Null" || k == "Bool");
                null_ok && bool_ok && only_these
            });
            denies && everyone && put && covers && unconditional_request
        })
}

// ---------------------------------------------------------------------------------------------------------
// Function shape

/// Each function is a Rust binary for Graviton built by cargo-lambda, logging JSON: what `sam build` and
/// the functions' own JSON logs (CloudWatch Logs Insights fields) rely on.
pub fn function_shape(template: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    for (name, function) in resources(template, "AWS::Serverless::Function") {
        let mut problem = |p: String| out.push(violation(FUNCTION_SHAPE, name, p));
        let get = |key: &str| function_property(template, function, key);
        if get("Runtime").and_then(Value::as_str) != Some("provided.al2023") {
            problem("Runtime is not provided.al2023".into());
        }
        if get("Handler").and_then(Value::as_str) != Some("bootstrap") {
            problem("Handler is not bootstrap".into());
        }
        let arm64 = get("Architectures").and_then(Value::as_array).is_some_and(|a| a.len() == 1 && a[0].as_str() == Some("arm64"));
        if !arm64 {
            problem("Architectures is not [arm64]".into());
        }
        let metadata = function.get("Metadata").unwrap_or(&Value::Null);
        if metadata.get("BuildMethod").and_then(Value::as_str) != Some("rust-cargolambda") {
            problem("Metadata.BuildMethod is not rust-cargolambda".into());
        }
        let binary = metadata.get("BuildProperties").and_then(|p| p.get("Binary")).and_then(Value::as_str);
        if binary.is_none_or(str::is_empty) {
            problem("Metadata.BuildProperties.Binary does not name the binary (the workspace has several)".into());
        }
        let log_format = get("LoggingConfig").and_then(|l| l.get("LogFormat")).and_then(Value::as_str);
        if log_format != Some("JSON") {
            problem("LoggingConfig.LogFormat is not JSON".into());
        }
    }
    out
}
