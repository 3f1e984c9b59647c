//! How dead letters are printed: a table for people, JSON for tools.

use serde_json::{Map, Value, json};

use super::Entry;

/// Reasons longer than this are cut in the table; `show` prints them whole.
const REASON_CHARS: usize = 80;

/// A header and one line per entry, columns aligned; the reason comes last, shortened.
pub fn table(entries: &[&Entry]) -> Vec<String> {
    let header = ["DLQ", "ORIGINAL", "ERROR", "ATTEMPTS", "LAST FAILURE", "ENVELOPE", "REASON"].map(String::from);
    let rows: Vec<[String; 7]> = entries
        .iter()
        .map(|e| {
            let r = &e.record;
            [
                format!("{}:{}", e.partition, e.offset),
                format!("{} {}:{}", r.original_topic, r.partition, r.offset),
                format!("{}/{}", r.error_code, r.error_class),
                r.attempts.to_string(),
                r.last_failure_at.to_string(),
                r.envelope_id.map_or_else(|| "-".into(), |id| id.to_string()),
                shorten(&r.reason, REASON_CHARS),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    std::iter::once(&header)
        .chain(&rows)
        .map(|row| {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  "));
                }
            }
            line
        })
        .collect()
}

/// The record as JSON plus where it sits in the DLQ topic (`list --format json`).
pub fn json(entry: &Entry) -> Value {
    let mut object = match serde_json::to_value(&entry.record) {
        Ok(Value::Object(map)) => map,
        // A record of strings, numbers and timestamps is always an object.
        _ => Map::new(),
    };
    object.insert("dlq_partition".into(), json!(entry.partition));
    object.insert("dlq_offset".into(), json!(entry.offset));
    Value::Object(object)
}

/// Everything about one record (`show`): the JSON of `list`, the message key, and
/// the original payload parsed, when it is JSON, so it reads as JSON rather than
/// as one escaped string.
pub fn detail(entry: &Entry) -> Value {
    let mut value = json(entry);
    if let Value::Object(object) = &mut value {
        match entry.key.as_deref().map(std::str::from_utf8) {
            Some(Ok(key)) => {
                object.insert("key".into(), json!(key));
            }
            Some(Err(_)) => {
                object.insert("key_hex".into(), json!(hex(entry.key.as_deref().unwrap_or_default())));
            }
            None => {}
        }
        if let Some(parsed) =
            entry.record.original_payload.as_deref().and_then(|p| serde_json::from_str::<Value>(p).ok())
        {
            object.insert("original_payload_json".into(), parsed);
        }
    }
    value
}

/// A message key for a one-line summary: the text, or hex when it is not UTF-8.
pub fn key(key: Option<&[u8]>) -> String {
    match key.map(std::str::from_utf8) {
        None => "(none)".into(),
        Some(Ok(text)) => format!("`{text}`"),
        Some(Err(_)) => format!("0x{}", hex(key.unwrap_or_default())),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `s` on one line, at most `max` characters, with `…` when cut.
pub fn shorten(s: &str, max: usize) -> String {
    let flat: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() <= max {
        return flat;
    }
    let mut out: String = flat.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use bytes::Bytes;
    use onex_core::{DeadLetter, ErrorClass, ErrorCode, Timestamp};

    use super::*;

    fn entry(reason: &str, payload: &[u8]) -> Entry {
        let record = DeadLetter {
            reason: reason.into(),
            error_code: ErrorCode::EnvelopeValidation,
            error_class: ErrorClass::Permanent,
            original_topic: "onex.acme.orders.cmd.v1".into(),
            partition: 3,
            offset: 12,
            envelope_id: None,
            correlation_id: None,
            attempts: 0,
            error_response_sent: false,
            first_failure_at: Timestamp::UNIX_EPOCH,
            last_failure_at: Timestamp::UNIX_EPOCH,
            original_payload: None,
            original_payload_hex: None,
        }
        .with_original(payload);
        Entry { partition: 0, offset: 5, key: Some(Bytes::from_static(b"order-7")), record }
    }

    #[test]
    fn shorten_flattens_lines_and_cuts_on_character_boundaries() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("a\nb", 10), "a b");
        assert_eq!(shorten("ééééé", 3), "éé…");
    }

    #[test]
    fn the_table_aligns_columns_and_puts_the_reason_last() {
        let a = entry("not json", b"{oops");
        let mut b = entry(&"x".repeat(200), b"{}");
        b.offset = 123_456;
        let lines = table(&[&a, &b]);
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("DLQ       ORIGINAL"), "{lines:?}");
        assert!(
            lines[1].starts_with("0:5       onex.acme.orders.cmd.v1 3:12  ENVELOPE_VALIDATION/permanent"),
            "{lines:?}"
        );
        assert!(lines[1].ends_with("  not json"), "{lines:?}");
        assert!(lines[2].ends_with(&format!("{}…", "x".repeat(79))), "{lines:?}");
        let column = |l: &str| l.find("ENVELOPE_VALIDATION");
        assert_eq!(column(&lines[1]), column(&lines[2]));
    }

    #[test]
    fn json_adds_the_dlq_position_and_detail_adds_key_and_parsed_payload() {
        let e = entry("r", br#"{"operation":"greet"}"#);
        let line = json(&e);
        assert_eq!(line["dlq_partition"], 0);
        assert_eq!(line["dlq_offset"], 5);
        assert_eq!(line["original_payload"], r#"{"operation":"greet"}"#);
        assert!(line.get("key").is_none());
        let full = detail(&e);
        assert_eq!(full["key"], "order-7");
        assert_eq!(full["original_payload_json"]["operation"], "greet");
        assert!(detail(&entry("r", b"{oops")).get("original_payload_json").is_none());
    }

    #[test]
    fn keys_print_as_text_or_hex() {
        assert_eq!(key(None), "(none)");
        assert_eq!(key(Some(b"k-1")), "`k-1`");
        assert_eq!(key(Some(&[0xff, 0x01])), "0xff01");
    }
}
