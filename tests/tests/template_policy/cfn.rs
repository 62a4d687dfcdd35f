//! Reading a CloudFormation / SAM template written in YAML into the JSON form CloudFormation itself uses.
//!
//! CloudFormation's YAML has short-form tags (`!Ref X`, `!GetAtt A.B`, `!Sub ...`, `!If [...]`) that a
//! plain YAML reader does not know. `serde_yaml_ng` keeps them as tagged values; this module rewrites each
//! into its long form (`{"Ref": "X"}`, `{"Fn::GetAtt": ["A", "B"]}`, `{"Fn::Sub": ...}`), so the checks
//! see one shape whichever form the template used.

use serde_json::{Map, Value};
use serde_yaml_ng::Value as Yaml;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("the template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("unknown CloudFormation tag {tag} at {path}: add it to cfn::long_form if CloudFormation has it")]
    UnknownTag { tag: String, path: String },
    #[error("!GetAtt {value:?} at {path} is not of the form Resource.Attribute")]
    BadGetAtt { value: String, path: String },
    #[error("a mapping key at {path} is not a string or number")]
    BadKey { path: String },
    #[error("the number {value} at {path} is not representable in JSON")]
    BadNumber { value: String, path: String },
}

/// Parses template text into CloudFormation's JSON form.
pub fn parse(text: &str) -> Result<Value, TemplateError> {
    let yaml: Yaml = serde_yaml_ng::from_str(text)?;
    to_json(&yaml, "")
}

fn to_json(yaml: &Yaml, path: &str) -> Result<Value, TemplateError> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => number(n, path)?,
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Sequence(items) => Value::Array(items.iter().enumerate().map(|(i, item)| to_json(item, &format!("{path}/{i}"))).collect::<Result<_, _>>()?),
        Yaml::Mapping(entries) => {
            let mut out = Map::new();
            for (key, value) in entries {
                let key = match key {
                    Yaml::String(s) => s.clone(),
                    // Unquoted numeric keys (a mapping keyed by timeouts) are strings to CloudFormation.
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    _ => return Err(TemplateError::BadKey { path: path.to_owned() }),
                };
                let child = to_json(value, &format!("{path}/{key}"))?;
                out.insert(key, child);
            }
            Value::Object(out)
        }
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = to_json(&tagged.value, path)?;
            let (key, value) = long_form(name, inner, path)?;
            let mut out = Map::new();
            out.insert(key, value);
            Value::Object(out)
        }
    })
}

fn number(n: &serde_yaml_ng::Number, path: &str) -> Result<Value, TemplateError> {
    if let Some(i) = n.as_i64() {
        return Ok(Value::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Ok(Value::from(u));
    }
    n.as_f64().and_then(serde_json::Number::from_f64).map(Value::Number).ok_or_else(|| TemplateError::BadNumber { value: n.to_string(), path: path.to_owned() })
}

/// The long form of one short-form tag: `!Ref` → `Ref`, `!Condition` → `Condition`, `!GetAtt A.B` →
/// `Fn::GetAtt: [A, B]`, every other intrinsic `!X` → `Fn::X`.
fn long_form(name: &str, inner: Value, path: &str) -> Result<(String, Value), TemplateError> {
    const FUNCTIONS: &[&str] = &[
        "And",
        "Base64",
        "Cidr",
        "Contains",
        "EachMemberEquals",
        "EachMemberIn",
        "Equals",
        "FindInMap",
        "ForEach",
        "GetAZs",
        "If",
        "ImportValue",
        "Join",
        "Length",
        "Not",
        "Or",
        "RefAll",
        "Select",
        "Split",
        "Sub",
        "ToJsonString",
        "Transform",
        "ValueOf",
        "ValueOfAll",
    ];
    match name {
        "Ref" | "Condition" => Ok((name.to_owned(), inner)),
        "GetAtt" => match inner {
            Value::String(s) => match s.split_once('.') {
                Some((resource, attribute)) => Ok(("Fn::GetAtt".to_owned(), Value::Array(vec![Value::from(resource), Value::from(attribute)]))),
                None => Err(TemplateError::BadGetAtt { value: s, path: path.to_owned() }),
            },
            list => Ok(("Fn::GetAtt".to_owned(), list)),
        },
        f if FUNCTIONS.contains(&f) => Ok((format!("Fn::{f}"), inner)),
        other => Err(TemplateError::UnknownTag { tag: format!("!{other}"), path: path.to_owned() }),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Resolving a template for one choice of parameters

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("parameter {0} is not in the template (a test names a parameter that does not exist)")]
    UnknownParameter(String),
    #[error("parameter {name}={value:?} is not one of its AllowedValues {allowed}")]
    NotAllowed { name: String, value: String, allowed: Value },
    #[error("parameter {0} has no Default and no value was given")]
    NoValue(String),
    #[error("condition {0} is not defined under Conditions")]
    UnknownCondition(String),
    #[error("cannot evaluate the condition expression {0}: use Fn::Equals, Fn::Not, Fn::And, Fn::Or or Condition")]
    BadCondition(Value),
}

/// The template as CloudFormation deploys it with `parameters` set and every other parameter at its
/// default: each condition evaluated, a resource or output whose condition is false removed, each `Fn::If`
/// replaced by its chosen branch, `AWS::NoValue` removed, and `Ref` to a parameter replaced by the value
/// (a string, as CloudFormation passes it). Other intrinsics (`Fn::Sub`, `Fn::GetAtt`, `Ref` to a
/// resource) stay as they are.
pub fn resolve(template: &Value, parameters: &[(&str, &str)]) -> Result<Value, ResolveError> {
    let defined = template.get("Parameters").and_then(Value::as_object);
    let mut values: Map<String, Value> = Map::new();
    for (name, definition) in defined.into_iter().flatten() {
        if let Some(default) = definition.get("Default").and_then(scalar) {
            values.insert(name.clone(), Value::String(default));
        }
    }
    for (name, value) in parameters {
        let definition = defined.and_then(|d| d.get(*name)).ok_or_else(|| ResolveError::UnknownParameter((*name).to_owned()))?;
        if let Some(allowed) = definition.get("AllowedValues").and_then(Value::as_array) {
            if !allowed.iter().filter_map(scalar).any(|a| a == *value) {
                return Err(ResolveError::NotAllowed { name: (*name).to_owned(), value: (*value).to_owned(), allowed: Value::Array(allowed.clone()) });
            }
        }
        values.insert((*name).to_owned(), Value::String((*value).to_owned()));
    }
    for name in defined.into_iter().flat_map(|d| d.keys()) {
        if !values.contains_key(name) {
            return Err(ResolveError::NoValue(name.clone()));
        }
    }
    let resolver = Resolver { template, parameters: values };
    let mut out = template.clone();
    for section in ["Resources", "Outputs"] {
        let Some(entries) = template.get(section).and_then(Value::as_object) else {
            continue;
        };
        let mut kept = Map::new();
        for (name, entry) in entries {
            if let Some(condition) = entry.get("Condition").and_then(Value::as_str) {
                if !resolver.condition(condition)? {
                    continue;
                }
            }
            if let Some(resolved) = resolver.value(entry)? {
                kept.insert(name.clone(), resolved);
            }
        }
        out[section] = Value::Object(kept);
    }
    Ok(out)
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

struct Resolver<'a> {
    template: &'a Value,
    parameters: Map<String, Value>,
}

impl Resolver<'_> {
    fn condition(&self, name: &str) -> Result<bool, ResolveError> {
        let expr = self.template.get("Conditions").and_then(|c| c.get(name)).ok_or_else(|| ResolveError::UnknownCondition(name.to_owned()))?;
        self.truth(expr)
    }

    fn truth(&self, expr: &Value) -> Result<bool, ResolveError> {
        let bad = || ResolveError::BadCondition(expr.clone());
        if let Some(name) = expr.get("Condition").and_then(Value::as_str) {
            return self.condition(name);
        }
        let args = |key: &str| expr.get(key).and_then(Value::as_array);
        if let Some(pair) = args("Fn::Equals") {
            let [a, b] = pair.as_slice() else {
                return Err(bad());
            };
            let a = self.value(a)?.and_then(|v| scalar(&v)).ok_or_else(bad)?;
            let b = self.value(b)?.and_then(|v| scalar(&v)).ok_or_else(bad)?;
            return Ok(a == b);
        }
        if let Some(one) = args("Fn::Not") {
            let [inner] = one.as_slice() else {
                return Err(bad());
            };
            return Ok(!self.truth(inner)?);
        }
        if let Some(all) = args("Fn::And") {
            return all.iter().try_fold(true, |acc, c| Ok(acc && self.truth(c)?));
        }
        if let Some(any) = args("Fn::Or") {
            return any.iter().try_fold(false, |acc, c| Ok(acc || self.truth(c)?));
        }
        Err(bad())
    }

    /// The resolved value, or `None` where it is `AWS::NoValue` (the key or item disappears).
    fn value(&self, value: &Value) -> Result<Option<Value>, ResolveError> {
        match value {
            Value::Object(map) => {
                if let Some(name) = map.get("Ref").and_then(Value::as_str) {
                    if name == "AWS::NoValue" {
                        return Ok(None);
                    }
                    if let Some(v) = self.parameters.get(name) {
                        return Ok(Some(v.clone()));
                    }
                }
                if let Some(args) = map.get("Fn::If").and_then(Value::as_array) {
                    if let [Value::String(condition), then, otherwise] = args.as_slice() {
                        let chosen = if self.condition(condition)? { then } else { otherwise };
                        return self.value(chosen);
                    }
                }
                let mut out = Map::new();
                for (key, v) in map {
                    if let Some(v) = self.value(v)? {
                        out.insert(key.clone(), v);
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            Value::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    if let Some(v) = self.value(item)? {
                        out.push(v);
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_forms_become_long_forms() {
        let parsed = parse(
            "A: !Ref X\nB: !GetAtt Q.Arn\nC: !Sub '${X}-y'\nD: !If [C, !Ref X, !Ref AWS::NoValue]\n\
             E: !FindInMap [M, !Ref T, k]\nF: !Condition G\n'10': {'0': 60}\n20: 1\n",
        )
        .unwrap();
        assert_eq!(
            parsed,
            json!({
                "A": {"Ref": "X"},
                "B": {"Fn::GetAtt": ["Q", "Arn"]},
                "C": {"Fn::Sub": "${X}-y"},
                "D": {"Fn::If": ["C", {"Ref": "X"}, {"Ref": "AWS::NoValue"}]},
                "E": {"Fn::FindInMap": ["M", {"Ref": "T"}, "k"]},
                "F": {"Condition": "G"},
                "10": {"0": 60},
                "20": 1
            })
        );
    }

    #[test]
    fn an_unknown_tag_is_an_error_not_a_silent_string() {
        let err = parse("A: !Reff X\n").unwrap_err();
        assert!(err.to_string().contains("!Reff"), "{err}");
    }

    #[test]
    fn a_getatt_without_attribute_is_an_error() {
        assert!(matches!(parse("A: !GetAtt Queue\n"), Err(TemplateError::BadGetAtt { .. })));
    }

    #[test]
    fn resolving_picks_branches_drops_no_value_and_conditional_resources() {
        let template = parse(
            "Parameters:\n  Days: {Type: Number, Default: 0}\n  Mode: {Type: String, AllowedValues: [off, on], Default: off}\n\
             Conditions:\n  Expires: !Not [!Equals [!Ref Days, 0]]\n  On: !Equals [!Ref Mode, on]\n\
             \x20 Either: !Or [!Condition Expires, !Condition On]\n\
             Resources:\n  B:\n    Type: X\n    Properties:\n      D: !If [Expires, !Ref Days, !Ref AWS::NoValue]\n\
             \x20     L: [!If [On, a, !Ref AWS::NoValue], b]\n      S: !Sub '${B.Arn}/x'\n\
             \x20 C:\n    Type: Y\n    Condition: Either\n",
        )
        .unwrap();
        let defaults = resolve(&template, &[]).unwrap();
        assert_eq!(defaults["Resources"], json!({"B": {"Type": "X", "Properties": {"L": ["b"], "S": {"Fn::Sub": "${B.Arn}/x"}}}}));
        let set = resolve(&template, &[("Days", "30"), ("Mode", "on")]).unwrap();
        assert_eq!(set["Resources"]["B"]["Properties"]["D"], json!("30"));
        assert_eq!(set["Resources"]["B"]["Properties"]["L"], json!(["a", "b"]));
        assert!(set["Resources"].get("C").is_some());
        assert!(matches!(resolve(&template, &[("Mode", "maybe")]), Err(ResolveError::NotAllowed { .. })));
        assert!(matches!(resolve(&template, &[("Nope", "1")]), Err(ResolveError::UnknownParameter(_))));
    }
}
