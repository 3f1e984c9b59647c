//! Envelopes typed by a person: a JSON envelope, or `[NODE:]OPERATION [JSON]`.

use onex_core::{Clock, Envelope, IdGen, NodeId};
use serde_json::Value;

/// Turns one input line into an envelope, filling in ids and the timestamp.
///
/// # Errors
/// A message saying what is wrong with the line and what is accepted.
pub fn parse_line(line: &str, ids: &dyn IdGen, clock: &dyn Clock) -> Result<Option<Envelope>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    if line.starts_with('{') {
        let mut value: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
        if let Value::Object(map) = &mut value {
            let id = ids.next_id().to_string();
            map.entry("envelope_id").or_insert_with(|| Value::String(id.clone()));
            map.entry("correlation_id").or_insert_with(|| Value::String(id));
            map.entry("timestamp").or_insert_with(|| Value::String(clock.now().to_string()));
        }
        let bytes = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
        return Envelope::from_json(&bytes).map(Some).map_err(|e| format!("{e}; {}", e.hint()));
    }
    let (head, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let payload = match rest.trim() {
        "" => Value::Object(serde_json::Map::new()),
        json => serde_json::from_str(json).map_err(|e| format!("the payload after `{head}` is not valid JSON: {e}"))?,
    };
    let (target, operation) = match head.split_once(':') {
        Some((node, op)) => (Some(NodeId::from(node)), op),
        None => (None, head),
    };
    if operation.is_empty() {
        return Err("expected `OPERATION [JSON-PAYLOAD]`, `NODE:OPERATION [JSON-PAYLOAD]` or a JSON envelope".into());
    }
    let mut envelope = Envelope::command(ids, clock, operation, payload);
    envelope.target_node = target;
    Ok(Some(envelope))
}

#[cfg(test)]
mod tests {
    use onex_core::{ManualClock, SequentialIds};
    use serde_json::json;

    use super::*;

    fn parse(line: &str) -> Result<Option<Envelope>, String> {
        parse_line(line, &SequentialIds::new(), &ManualClock::at_fixed_start())
    }

    #[test]
    fn shorthand_with_payload() {
        let e = parse(r#"local.echo {"name": "ada"}"#).ok().flatten();
        let e = e.unwrap_or_else(|| panic!("no envelope"));
        assert_eq!(e.operation.as_ref().map(|o| o.as_str()), Some("local.echo"));
        assert_eq!(e.payload, json!({"name": "ada"}));
        assert!(e.target_node.is_none());
    }

    #[test]
    fn shorthand_with_target_node() {
        let e = parse("greeter:local.echo").ok().flatten().unwrap_or_else(|| panic!("no envelope"));
        assert_eq!(e.target_node, Some(NodeId::from("greeter")));
        assert_eq!(e.payload, json!({}));
    }

    #[test]
    fn json_envelopes_get_missing_ids_filled_in() {
        let e = parse(r#"{"operation": "local.echo", "payload": 1}"#)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no envelope"));
        assert_eq!(e.correlation_id.map(|c| c.0), Some(e.envelope_id.0));
        assert!(e.timestamp.is_some());
    }

    #[test]
    fn blank_lines_and_comments_are_skipped() {
        assert_eq!(parse("   "), Ok(None));
        assert_eq!(parse("# a comment"), Ok(None));
    }

    #[test]
    fn bad_payloads_say_what_is_wrong() {
        let err = parse("local.echo {nope").err().unwrap_or_default();
        assert!(err.contains("not valid JSON"), "{err}");
    }
}
