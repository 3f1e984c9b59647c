//! Typed handler configs from a binding's `config` map.
//!
//! The contract loader keeps a handler's `config` as a JSON map (after
//! `${VAR}` interpolation and the `config_ref` merge), because only the
//! handler knows its fields. Each handler parses that map into its own
//! `<Name>HandlerConfig` through [`parse`], which reports *every* unknown
//! field (with a did-you-mean) before the first type error, each as a
//! [`ConfigProblem`] naming the field path. The runtime turns problems into
//! contract diagnostics located at the binding.
//!
//! Messages never quote a field's value: a resolved secret may sit in the
//! wrong field, and a type error must not print it.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// One problem in a handler's `config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The field path under `config`, e.g. `pool_size` or `auth.role_id`; empty for the map as a whole.
    pub field: String,
    /// What is wrong, in one sentence.
    pub message: String,
    /// What is expected, or the fix.
    pub hint: Option<String>,
}

impl ConfigProblem {
    pub fn new(field: impl Into<String>, message: impl Into<String>, hint: Option<String>) -> Self {
        Self { field: field.into(), message: message.into(), hint }
    }
}

impl ConfigProblem {
    /// Reads a problem written as one line, "`field`: what is wrong; the fix"
    /// (how the http and consul configs report them), back into its parts.
    pub fn from_line(line: &str) -> Self {
        let parsed = line.strip_prefix('`').and_then(|rest| rest.split_once("`: "));
        match parsed {
            Some((field, message)) => Self::new(field, message, None),
            None => Self::new("", line, None),
        }
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)?;
        } else {
            write!(f, "`{}`: {}", self.field, self.message)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// Joins problems into one line, for [`crate::HandlerError::Config`].
pub(crate) fn join(problems: &[ConfigProblem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Parses `map` into `T`, given `T`'s top-level field names.
///
/// Unknown top-level fields are all reported (serde's `deny_unknown_fields`
/// stops at the first); then the first type error, with its field path.
pub(crate) fn parse<T: DeserializeOwned>(map: &Map<String, Value>, fields: &[&str]) -> Result<T, Vec<ConfigProblem>> {
    let unknown: Vec<ConfigProblem> = map
        .keys()
        .filter(|k| !fields.contains(&k.as_str()))
        .map(|k| {
            let hint = match did_you_mean(k, fields) {
                Some(g) => format!("did you mean `{g}`? known fields: {}", fields.join(", ")),
                None => format!("known fields: {}", fields.join(", ")),
            };
            ConfigProblem::new(k.clone(), "unknown field", Some(hint))
        })
        .collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    serde_path_to_error::deserialize(Value::Object(map.clone())).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        vec![ConfigProblem::new(field, redacted_serde_message(&e.into_inner().to_string()), None)]
    })
}

/// serde_json's messages quote the offending value (`invalid type: string "hunter2", expected u64`);
/// keep the kind and the expectation, drop the value.
fn redacted_serde_message(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        let kind = found.split_whitespace().next().unwrap_or("value");
        if expected.is_empty() {
            return format!("invalid type: {kind}");
        }
        return format!("invalid type: {kind}, expected {expected}");
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        let expected = rest.split_once(", expected ").map_or("", |(_, e)| e);
        return format!("invalid value, expected {expected}");
    }
    message.to_owned()
}

pub(crate) use onex_core::contract::did_you_mean;

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[test]
    fn one_line_problems_are_split_into_field_and_message() {
        let p = ConfigProblem::from_line("`base_ur`: unknown field `base_ur`; fix the spelling");
        assert_eq!((p.field.as_str(), p.message.as_str()), ("base_ur", "unknown field `base_ur`; fix the spelling"));
        assert_eq!(p.to_string(), "`base_ur`: unknown field `base_ur`; fix the spelling");
        let whole = ConfigProblem::from_line("the map is empty");
        assert_eq!((whole.field.as_str(), whole.message.as_str()), ("", "the map is empty"));
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only parsed")]
    struct Sample {
        pool_size: u32,
        url: String,
    }

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn every_unknown_field_is_reported_with_a_guess() {
        let err = parse::<Sample>(&map(json!({"pool_sise": 1, "urll": "x", "zzz": 1})), &["pool_size", "url"])
            .err()
            .unwrap_or_default();
        assert_eq!(err.len(), 3);
        assert!(err[0].to_string().contains("did you mean `pool_size`"), "{}", err[0]);
    }

    #[test]
    fn type_errors_name_the_field_and_never_quote_the_value() {
        let err = parse::<Sample>(&map(json!({"pool_size": "hunter2", "url": "x"})), &["pool_size", "url"])
            .err()
            .unwrap_or_default();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].field, "pool_size");
        assert!(!err[0].to_string().contains("hunter2"), "{}", err[0]);
        assert!(err[0].message.contains("expected u32"), "{}", err[0]);
    }
}
