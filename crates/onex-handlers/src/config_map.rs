//! Turning a handler binding's `config` map into a handler's typed config,
//! reporting every problem at once.
//!
//! `serde` stops at the first error; a user fixing a contract wants the whole
//! list. So each key is first deserialized on its own (every field of a
//! handler config has a default, so a one-key map is a complete config and
//! fails only because of that key: an unknown name, or a wrong type or
//! value), then the whole map once more. Semantic checks (a URL that does not
//! parse, a header name with a space) are the config's own `validate()`.
//!
//! The precondition is that every field of `T` has a serde default; a
//! required field would make every one-key map fail with "missing field".

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Deserializes `map` into `T`, or returns one line per problem, each naming its field.
pub(crate) fn parse<T: DeserializeOwned>(map: &Map<String, Value>) -> Result<T, Vec<String>> {
    let mut problems = Vec::new();
    for (key, value) in map {
        let single = Map::from_iter([(key.clone(), value.clone())]);
        if let Err(e) = serde_json::from_value::<T>(Value::Object(single)) {
            problems.push(describe(key, &e.to_string()));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    serde_json::from_value(Value::Object(map.clone())).map_err(|e| vec![e.to_string()])
}

fn describe(key: &str, serde_message: &str) -> String {
    if serde_message.starts_with("unknown field") {
        // serde lists the expected names; say what to do with them.
        format!("`{key}`: {serde_message}; fix the spelling or remove the key")
    } else {
        format!("`{key}`: {serde_message}; fix the value's type")
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[serde(default)]
        size: u64,
        #[serde(default)]
        name: String,
    }

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let problems = parse::<Sample>(&map(json!({"size": "big", "nmae": "x", "name": 3}))).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("`size`: invalid type")), "{problems:?}");
        assert!(
            problems.iter().any(|p| p.starts_with("`nmae`: unknown field") && p.contains("`name`")),
            "{problems:?}"
        );
        assert!(problems.iter().any(|p| p.starts_with("`name`: invalid type")), "{problems:?}");
    }

    #[test]
    fn a_valid_map_parses() {
        let got = parse::<Sample>(&map(json!({"size": 3}))).unwrap();
        assert_eq!(got, Sample { size: 3, name: String::new() });
    }
}
