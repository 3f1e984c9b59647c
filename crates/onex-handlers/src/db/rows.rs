//! Rows to JSON.
//!
//! | column type                   | JSON                                          |
//! |-------------------------------|-----------------------------------------------|
//! | NULL (any type), void         | `null`                                        |
//! | bool                          | boolean                                       |
//! | int2, int4, int8, oid         | number                                        |
//! | float4, float8                | number; NaN and ±Infinity as strings          |
//! | numeric                       | string, exact (`"12.50"`), so no precision is lost |
//! | text, varchar, bpchar, name   | string                                        |
//! | json, jsonb                   | the value itself                              |
//! | uuid                          | string                                        |
//! | timestamptz                   | RFC 3339 string in UTC (`"2025-01-01T12:00:00Z"`) |
//! | timestamp, date, time         | ISO 8601 string without offset                |
//! | bytea                         | hex string `"\\xdeadbeef"` (PostgreSQL's own text form) |
//! | int4[], int8[], text[]        | array                                         |
//!
//! Any other type fails the call with a permanent error naming the column and
//! suggesting a cast (`col::text`) rather than guessing a representation.

use std::error::Error;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use serde_json::{Map, Number, Value};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Type};

/// The result of a statement that returns rows: `{"columns", "rows", "row_count"}`.
pub(crate) fn rows_to_json(columns: &[tokio_postgres::Column], rows: &[Row]) -> Result<Value, String> {
    let names: Vec<Value> = columns.iter().map(|c| Value::String(c.name().to_owned())).collect();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut obj = Map::new();
        for (i, col) in row.columns().iter().enumerate() {
            let v = cell(row, i, col.type_()).map_err(|why| format!("column `{}`: {why}", col.name()))?;
            obj.insert(col.name().to_owned(), v);
        }
        out.push(Value::Object(obj));
    }
    let mut result = Map::new();
    result.insert("columns".into(), Value::Array(names));
    result.insert("row_count".into(), Value::from(out.len()));
    result.insert("rows".into(), Value::Array(out));
    Ok(Value::Object(result))
}

fn get<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<Option<T>, String> {
    row.try_get::<_, Option<T>>(i).map_err(|e| e.source().map_or_else(|| e.to_string(), ToString::to_string))
}

fn cell(row: &Row, i: usize, ty: &Type) -> Result<Value, String> {
    fn map<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
        v.map_or(Value::Null, f)
    }
    Ok(match *ty {
        // Functions returning `void` (`pg_advisory_lock`, `pg_sleep`).
        Type::VOID => Value::Null,
        Type::BOOL => map(get::<bool>(row, i)?, Value::Bool),
        Type::INT2 => map(get::<i16>(row, i)?, Value::from),
        Type::INT4 => map(get::<i32>(row, i)?, Value::from),
        Type::INT8 => map(get::<i64>(row, i)?, Value::from),
        Type::OID => map(get::<u32>(row, i)?, Value::from),
        Type::FLOAT4 => map(get::<f32>(row, i)?, |f| float(f64::from(f))),
        Type::FLOAT8 => map(get::<f64>(row, i)?, float),
        Type::NUMERIC => map(get::<PgNumeric>(row, i)?, |n| Value::String(n.0)),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            map(get::<String>(row, i)?, Value::String)
        }
        Type::JSON | Type::JSONB => get::<Value>(row, i)?.unwrap_or(Value::Null),
        Type::UUID => map(get::<uuid::Uuid>(row, i)?, |u| Value::String(u.to_string())),
        Type::TIMESTAMPTZ => {
            map(get::<DateTime<Utc>>(row, i)?, |t| Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)))
        }
        Type::TIMESTAMP => {
            map(get::<NaiveDateTime>(row, i)?, |t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string()))
        }
        Type::DATE => map(get::<NaiveDate>(row, i)?, |d| Value::String(d.format("%Y-%m-%d").to_string())),
        Type::TIME => map(get::<NaiveTime>(row, i)?, |t| Value::String(t.format("%H:%M:%S%.f").to_string())),
        Type::BYTEA => map(get::<Vec<u8>>(row, i)?, |b| Value::String(to_hex(&b))),
        Type::INT4_ARRAY => map(get::<Vec<Option<i32>>>(row, i)?, |v| v.into_iter().map(Value::from).collect()),
        Type::INT8_ARRAY => map(get::<Vec<Option<i64>>>(row, i)?, |v| v.into_iter().map(Value::from).collect()),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => {
            map(get::<Vec<Option<String>>>(row, i)?, |v| v.into_iter().map(Value::from).collect())
        }
        _ => return Err(format!("type `{ty}` has no JSON mapping; cast it in SQL, e.g. `col::text`")),
    })
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map_or_else(
        || {
            let s = if f.is_nan() {
                "NaN"
            } else if f > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            };
            Value::String(s.into())
        },
        Value::Number,
    )
}

/// `\x` followed by lowercase hex digits, as PostgreSQL prints bytea.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("\\x");
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A `numeric` value as its exact decimal text.
struct PgNumeric(String);

impl<'a> FromSql<'a> for PgNumeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        decode_numeric(raw).map(Self).ok_or_else(|| "malformed numeric value".into())
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

/// Decodes PostgreSQL's binary `numeric`: `ndigits`, `weight`, `sign`, `dscale` (all 16-bit,
/// big-endian), then `ndigits` base-10000 digits; the first digit is worth 10000^weight.
fn decode_numeric(raw: &[u8]) -> Option<String> {
    let word = |i: usize| raw.get(i * 2..i * 2 + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let signed_word = |i: usize| raw.get(i * 2..i * 2 + 2).map(|b| i16::from_be_bytes([b[0], b[1]]));
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(signed_word(1)?);
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        _ => return None,
    }
    let digits: Vec<u16> = (0..ndigits).map(|i| word(4 + i)).collect::<Option<_>>()?;
    let digit_at =
        |w: i32| -> u16 { usize::try_from(weight - w).ok().and_then(|idx| digits.get(idx)).copied().unwrap_or(0) };
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        for w in (0..=weight).rev() {
            let d = digit_at(w);
            if w == weight {
                let _ = write!(s, "{d}");
            } else {
                let _ = write!(s, "{d:04}");
            }
        }
    }
    if dscale > 0 {
        s.push('.');
        let mut frac = String::new();
        let mut w = -1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit_at(w));
            w -= 1;
        }
        frac.truncate(dscale);
        s.push_str(&frac);
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in
            [ndigits, u16::from_be_bytes(weight.to_be_bytes()), sign, dscale].into_iter().chain(digits.iter().copied())
        {
            v.extend_from_slice(&w.to_be_bytes());
        }
        v
    }

    #[test]
    fn numeric_decodes_exactly() {
        // 12345678.9012 = [1234, 5678, 9012], weight 1, dscale 4
        assert_eq!(decode_numeric(&encode(3, 1, 0, 4, &[1234, 5678, 9012])).as_deref(), Some("12345678.9012"));
        // -0.05 = [500], weight -1, dscale 2
        assert_eq!(decode_numeric(&encode(1, -1, 0x4000, 2, &[500])).as_deref(), Some("-0.05"));
        // 10000 = [1], weight 1, dscale 0
        assert_eq!(decode_numeric(&encode(1, 1, 0, 0, &[1])).as_deref(), Some("10000"));
        // 12.50 = [12, 5000], weight 0, dscale 2
        assert_eq!(decode_numeric(&encode(2, 0, 0, 2, &[12, 5000])).as_deref(), Some("12.50"));
        // 0 = no digits
        assert_eq!(decode_numeric(&encode(0, 0, 0, 0, &[])).as_deref(), Some("0"));
        assert_eq!(decode_numeric(&encode(0, 0, 0xC000, 0, &[])).as_deref(), Some("NaN"));
        assert_eq!(decode_numeric(&[0, 1]), None);
    }

    #[test]
    fn non_finite_floats_become_strings() {
        assert_eq!(float(f64::NAN), Value::String("NaN".into()));
        assert_eq!(float(f64::NEG_INFINITY), Value::String("-Infinity".into()));
        assert_eq!(float(1.5), serde_json::json!(1.5));
    }

    #[test]
    fn bytea_prints_as_postgres_hex() {
        assert_eq!(to_hex(&[0xde, 0xad, 0x01]), "\\xdead01");
    }
}
