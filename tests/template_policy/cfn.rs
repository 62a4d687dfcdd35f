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
        Yaml::Sequence(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| to_json(item, &format!("{path}/{i}")))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(entries) => {
            let mut out = Map::new();
            for (key, value) in entries {
                let key = match key {
                    Yaml::String(s) => s.clone(),
                    // Unquoted numeric keys (a mapping keyed by timeouts) are strings to CloudFormation.
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    _ => {
                        return Err(TemplateError::BadKey {
                            path: path.to_owned(),
                        })
                    }
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
    n.as_f64()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| TemplateError::BadNumber {
            value: n.to_string(),
            path: path.to_owned(),
        })
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
                Some((resource, attribute)) => Ok((
                    "Fn::GetAtt".to_owned(),
                    Value::Array(vec![Value::from(resource), Value::from(attribute)]),
                )),
                None => Err(TemplateError::BadGetAtt {
                    value: s,
                    path: path.to_owned(),
                }),
            },
            list => Ok(("Fn::GetAtt".to_owned(), list)),
        },
        f if FUNCTIONS.contains(&f) => Ok((format!("Fn::{f}"), inner)),
        other => Err(TemplateError::UnknownTag {
            tag: format!("!{other}"),
            path: path.to_owned(),
        }),
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
        assert!(matches!(
            parse("A: !GetAtt Queue\n"),
            Err(TemplateError::BadGetAtt { .. })
        ));
    }
}
