//! `${VAR}` interpolation of string values, before they are typed.
//!
//! Syntaxes (all found in real ONEX contracts):
//! - `${VAR}`: the variable, which must be set;
//! - `${VAR:-default}`: the variable, or `default` when unset or empty;
//! - `${env.NAME:default}` / `${env.NAME}`: the same, in the ONEX core spelling;
//! - `$$`: a literal `$`.
//!
//! `${envelope.*}`, `${payload.*}` and `${input.*}` are operation-binding
//! templates evaluated per envelope by the runtime, not environment
//! variables: they are left exactly as written.
//!
//! A plain (unquoted) scalar is re-typed after substitution, so
//! `timeout_ms: ${T:-30}` is the integer 30 — YAML itself sees a string there.
//! Quoted scalars stay strings. Keys are never interpolated.

use super::Sources;
use super::decode::Decoder;
use super::yaml::{Kind, Node, type_plain};

/// Template namespaces evaluated by the runtime per envelope, left untouched here.
const TEMPLATE_NAMESPACES: [&str; 3] = ["envelope.", "payload.", "input."];

/// Interpolates every string value under `node` in place, reporting unset variables.
pub fn interpolate(node: &mut Node, path: &str, sources: &dyn Sources, d: &mut Decoder<'_>) {
    match &mut node.kind {
        Kind::String(s) => {
            if !s.contains('$') {
                return;
            }
            let Some(out) = expand(s, sources, |msg, hint, fix| d.error(node.pos, path, msg, hint, fix)) else {
                return;
            };
            node.kind = if node.plain { type_plain(&out) } else { Kind::String(out) };
        }
        Kind::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &format!("{path}[{i}]"), sources, d);
            }
        }
        Kind::Map(entries) => {
            for (k, v) in entries.iter_mut() {
                let p = if path.is_empty() { k.name.clone() } else { format!("{path}.{}", k.name) };
                interpolate(v, &p, sources, d);
            }
        }
        Kind::Null | Kind::Bool(_) | Kind::Int(_) | Kind::Float(_) => {}
    }
}

/// Expands one string. Returns `None` (after reporting) when a placeholder cannot be resolved.
fn expand(
    s: &str,
    sources: &dyn Sources,
    mut report: impl FnMut(String, Option<String>, Option<String>),
) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut ok = true;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let Some(body_start) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(end) = body_start.find('}') else {
            report(
                "unclosed `${` in value".into(),
                Some("placeholders are written `${VAR}` or `${VAR:-default}`".into()),
                Some("add the closing `}`, or write `$$` for a literal `$`".into()),
            );
            return None;
        };
        let body = &body_start[..end];
        rest = &body_start[end + 1..];
        if TEMPLATE_NAMESPACES.iter().any(|ns| body.starts_with(ns)) {
            out.push_str("${");
            out.push_str(body);
            out.push('}');
            continue;
        }
        let (name, default) = split_placeholder(body);
        if !is_var_name(name) {
            report(
                format!("`${{{body}}}` is not a valid placeholder"),
                Some("variable names are letters, digits and `_`, not starting with a digit".into()),
                Some("write `${VAR}`, `${VAR:-default}`, or `$$` for a literal `$`".into()),
            );
            ok = false;
            continue;
        }
        match (sources.env(name).filter(|v| !v.is_empty() || default.is_none()), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                report(
                    format!("environment variable `{name}` is not set"),
                    Some(format!("`${{{body}}}` has no default, so `{name}` must be set when the contract is loaded")),
                    Some(format!("`export {name}=...`, or add a default: `${{{name}:-value}}`")),
                );
                ok = false;
            }
        }
    }
    out.push_str(rest);
    ok.then_some(out)
}

/// Splits `VAR:-default`, `env.NAME:default`, `VAR` into name and default.
fn split_placeholder(body: &str) -> (&str, Option<&str>) {
    if let Some(env) = body.strip_prefix("env.") {
        return match env.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => match env.split_once(':') {
                Some((n, d)) => (n, Some(d)),
                None => (env, None),
            },
        };
    }
    match body.split_once(":-") {
        Some((n, d)) => (n, Some(d)),
        None => (body, None),
    }
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
#[allow(clippy::panic, reason = "a test fails by panicking")]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::contract::sources::MapSources;
    use crate::contract::yaml::parse;

    fn run(src: &str, env: &[(&str, &str)]) -> (Node, Vec<crate::contract::Diagnostic>) {
        let sources = MapSources::new().with_env_vars(env);
        let (root, _) = parse(src, Path::new("c.yaml"));
        let mut root = root.unwrap_or_else(|| panic!("bad yaml"));
        let mut d = Decoder::new(Path::new("c.yaml"));
        interpolate(&mut root, "", &sources, &mut d);
        (root, d.into_diagnostics())
    }

    #[test]
    fn unquoted_placeholder_with_default_becomes_an_integer() {
        let (root, diags) = run("timeout_ms: ${T:-30}\n", &[]);
        assert!(diags.is_empty());
        assert_eq!(root.get("timeout_ms").map(|n| &n.kind), Some(&Kind::Int(30)));
    }

    #[test]
    fn quoted_placeholder_stays_a_string() {
        let (root, _) = run("t: \"${T:-30}\"\n", &[]);
        assert_eq!(root.get("t").map(|n| &n.kind), Some(&Kind::String("30".into())));
    }

    #[test]
    fn set_variable_wins_over_default() {
        let (root, _) =
            run("a: ${T:-30}\nb: \"x-${env.NAME:none}-y\"\nc: ${env.FLAG:false}\n", &[("T", "45"), ("NAME", "n")]);
        assert_eq!(root.get("a").map(|n| &n.kind), Some(&Kind::Int(45)));
        assert_eq!(root.get("b").and_then(Node::as_str), Some("x-n-y"));
        assert_eq!(root.get("c").map(|n| &n.kind), Some(&Kind::Bool(false)));
    }

    #[test]
    fn unset_variable_without_default_names_variable_and_fix() {
        let (_, diags) = run("runtime:\n  event_bus:\n    url: \"${KAFKA_URL}\"\n", &[]);
        assert_eq!(diags.len(), 1);
        let d = &diags[0];
        assert_eq!((d.line, d.column, d.path.as_str()), (3, 10, "runtime.event_bus.url"));
        assert!(d.message.contains("`KAFKA_URL`"));
        assert!(d.fix.as_deref().unwrap_or("").contains("export KAFKA_URL="));
        assert!(d.fix.as_deref().unwrap_or("").contains("${KAFKA_URL:-value}"));
    }

    #[test]
    fn operation_templates_are_left_untouched() {
        let src = "a: \"${envelope.correlation_id}\"\nb: \"${payload.url}\"\nc: \"${input.node_id}\"\n";
        let (root, diags) = run(src, &[]);
        assert!(diags.is_empty());
        assert_eq!(root.get("a").and_then(Node::as_str), Some("${envelope.correlation_id}"));
        assert_eq!(root.get("b").and_then(Node::as_str), Some("${payload.url}"));
        assert_eq!(root.get("c").and_then(Node::as_str), Some("${input.node_id}"));
    }

    #[test]
    fn double_dollar_escapes_a_literal_dollar() {
        let (root, diags) = run("a: \"cost $$5 and $${HOME}\"\nb: \"$x\"\n", &[]);
        assert!(diags.is_empty());
        assert_eq!(root.get("a").and_then(Node::as_str), Some("cost $5 and ${HOME}"));
        assert_eq!(root.get("b").and_then(Node::as_str), Some("$x"));
    }

    #[test]
    fn unclosed_placeholder_is_an_error() {
        let (_, diags) = run("a: \"${OOPS\"\n", &[]);
        assert_eq!(diags.len(), 1);
        assert!(diags[0].message.contains("unclosed"));
    }
}
