//! Binding JSON values as typed statement parameters.
//!
//! The statement is prepared first, so PostgreSQL says what type each `$n`
//! has; each JSON value is then converted to exactly that type, or refused
//! with a permanent error naming the parameter. Values always travel as
//! bound parameters in the binary protocol: nothing from a payload is ever
//! spliced into SQL text, whatever it contains.
//!
//! | parameter type                    | JSON value                                  |
//! |-----------------------------------|---------------------------------------------|
//! | any                               | `null` → SQL NULL                           |
//! | bool                              | `true` / `false`                            |
//! | int2, int4, int8, oid             | an integer in range                         |
//! | float4, float8                    | a number                                    |
//! | text, varchar, bpchar, name       | a string                                    |
//! | json, jsonb                       | any value                                   |
//! | uuid                              | a string `"67e55044-10b1-426f-9247-bb680e5fe0c8"` |
//! | timestamptz                       | an RFC 3339 string `"2025-01-01T12:00:00Z"` |
//! | timestamp                         | `"2025-01-01T12:00:00"` (fraction optional) |
//! | date                              | `"2025-01-01"`                              |
//! | bytea                             | a hex string `"\\xdeadbeef"` (`\x` optional) |
//! | int4[], int8[], text[]            | an array of the element values (or `null`s) |
//!
//! Other types (numeric, intervals, …): cast in SQL, e.g. `$1::text::numeric`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;
use tokio_postgres::types::{ToSql, Type};

/// A parameter ready to bind.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// Converts `values` to the statement's parameter types.
///
/// # Errors
/// A message naming the first parameter (1-based, as `$n`) that does not fit, and why.
pub(crate) fn bind(types: &[Type], values: &[Value]) -> Result<Vec<Param>, String> {
    if types.len() != values.len() {
        return Err(format!(
            "the statement has {} parameter(s) but `params` has {} value(s)",
            types.len(),
            values.len()
        ));
    }
    types
        .iter()
        .zip(values)
        .enumerate()
        .map(|(i, (ty, v))| param(ty, v).map_err(|why| format!("${}: {why}", i + 1)))
        .collect()
}

fn param(ty: &Type, v: &Value) -> Result<Param, String> {
    macro_rules! typed {
        ($t:ty, $conv:expr) => {{
            if v.is_null() {
                Ok(Box::new(None::<$t>) as Param)
            } else {
                let conv: fn(&Value) -> Result<$t, String> = $conv;
                conv(v).map(|x| Box::new(x) as Param)
            }
        }};
    }
    match *ty {
        Type::BOOL => typed!(bool, |v| v.as_bool().ok_or_else(|| expected("a boolean", v))),
        Type::INT2 => {
            typed!(i16, |v| int(v).and_then(|n| i16::try_from(n).map_err(|_| "out of range for int2".into())))
        }
        Type::INT4 => {
            typed!(i32, |v| int(v).and_then(|n| i32::try_from(n).map_err(|_| "out of range for int4".into())))
        }
        Type::INT8 => typed!(i64, int),
        Type::OID => typed!(u32, |v| int(v).and_then(|n| u32::try_from(n).map_err(|_| "out of range for oid".into()))),
        #[expect(clippy::cast_possible_truncation, reason = "float4 is single precision by definition")]
        Type::FLOAT4 => typed!(f32, |v| v.as_f64().map(|f| f as f32).ok_or_else(|| expected("a number", v))),
        Type::FLOAT8 => typed!(f64, |v| v.as_f64().ok_or_else(|| expected("a number", v))),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => typed!(String, text),
        Type::JSON | Type::JSONB => typed!(Value, |v| Ok(v.clone())),
        Type::UUID => {
            typed!(uuid::Uuid, |v| text(v).and_then(|s| uuid::Uuid::parse_str(&s).map_err(|_| "not a UUID".into())))
        }
        Type::TIMESTAMPTZ => typed!(DateTime<Utc>, |v| text(v).and_then(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| "not an RFC 3339 timestamp such as `2025-01-01T12:00:00Z`".into())
        })),
        Type::TIMESTAMP => typed!(NaiveDateTime, |v| text(v).and_then(|s| {
            NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S%.f")
                .map_err(|_| "not a timestamp such as `2025-01-01T12:00:00`".into())
        })),
        Type::DATE => typed!(NaiveDate, |v| text(v).and_then(
            |s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|_| "not a date such as `2025-01-01`".into())
        )),
        Type::BYTEA => typed!(Vec<u8>, |v| text(v).and_then(|s| hex(&s))),
        Type::INT4_ARRAY => typed!(Vec<Option<i32>>, |v| array(v, |e| int(e)
            .and_then(|n| i32::try_from(n).map_err(|_| "out of range for int4".into())))),
        Type::INT8_ARRAY => typed!(Vec<Option<i64>>, |v| array(v, int)),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => typed!(Vec<Option<String>>, |v| array(v, text)),
        _ => Err(format!("type `{ty}` cannot be bound from JSON; cast the parameter in SQL, e.g. `$n::text::{ty}`")),
    }
}

fn expected(what: &str, v: &Value) -> String {
    format!("expected {what}, got {}", kind(v))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn int(v: &Value) -> Result<i64, String> {
    v.as_i64().ok_or_else(|| expected("an integer", v))
}

fn text(v: &Value) -> Result<String, String> {
    v.as_str().map(str::to_owned).ok_or_else(|| expected("a string", v))
}

fn array<T>(v: &Value, elem: impl Fn(&Value) -> Result<T, String>) -> Result<Vec<Option<T>>, String> {
    let items = v.as_array().ok_or_else(|| expected("an array", v))?;
    items.iter().map(|e| if e.is_null() { Ok(None) } else { elem(e).map(Some) }).collect()
}

/// Decodes `\xdeadbeef` or `deadbeef`.
pub(crate) fn hex(s: &str) -> Result<Vec<u8>, String> {
    let digits = s.strip_prefix("\\x").unwrap_or(s);
    if digits.len() % 2 != 0 {
        return Err("hex string has an odd number of digits".into());
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            digits
                .get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| "not a hex string".into())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_that_fit_their_types_bind() {
        let types = [Type::INT4, Type::TEXT, Type::JSONB, Type::BOOL, Type::TIMESTAMPTZ, Type::BYTEA, Type::INT8_ARRAY];
        let values = [
            json!(7),
            json!("x'; drop table t; --"),
            json!({"a": 1}),
            json!(null),
            json!("2025-01-01T00:00:00Z"),
            json!("\\x00ff"),
            json!([1, null]),
        ];
        assert_eq!(bind(&types, &values).map(|p| p.len()), Ok(7));
    }

    #[test]
    fn a_mismatch_names_the_parameter() {
        let err = bind(&[Type::INT8, Type::INT4], &[json!(1), json!("7")]).err().unwrap_or_default();
        assert_eq!(err, "$2: expected an integer, got a string");
        let err = bind(&[Type::INT2], &[json!(70_000)]).err().unwrap_or_default();
        assert_eq!(err, "$1: out of range for int2");
    }

    #[test]
    fn the_parameter_count_must_match() {
        let err = bind(&[Type::INT4], &[]).err().unwrap_or_default();
        assert!(err.contains("1 parameter(s) but `params` has 0"), "{err}");
    }

    #[test]
    fn unsupported_types_suggest_a_cast() {
        let err = bind(&[Type::NUMERIC], &[json!("1.5")]).err().unwrap_or_default();
        assert!(err.contains("$n::text::numeric"), "{err}");
    }

    #[test]
    fn hex_accepts_the_postgres_prefix() {
        assert_eq!(hex("\\xdeadBEEF"), Ok(vec![0xde, 0xad, 0xbe, 0xef]));
        assert_eq!(hex("0"), Err("hex string has an odd number of digits".into()));
        assert!(hex("zz").is_err());
    }
}
