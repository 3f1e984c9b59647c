//! Runtime and node contracts: loading, validation and the validated model.
//!
//! Loading never panics and never stops at the first problem: it returns
//! either a [`model::RuntimeContract`] with notes (warnings, info) or every
//! [`Diagnostic`] found. File and environment access go through
//! [`Sources`], so this crate stays free of I/O it does not control and
//! tests run on in-memory files.
//!
//! The pipeline for each file: read (through [`Sources`]) → [`yaml`] tree
//! with positions → `${VAR}` interpolation → typed decoding that collects
//! diagnostics (`runtime.rs` / `node.rs`) → the model.

mod binding;
mod decode;
pub mod diagnostic;
mod fsm;
mod interpolate;
pub mod model;
mod node;
mod render;
mod runtime;
mod sources;
#[cfg(test)]
mod tests;
mod workflow;
pub mod yaml;

use std::path::Path;

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use model::*;
pub use node::KNOWN_ONEX_KEYS;
pub use render::{render_human, render_json};
pub use runtime::UPGRADE_DOC;
pub use sources::{MapSources, Sources};

use decode::Decoder;
pub use decode::did_you_mean;

/// A successfully loaded runtime contract and the non-fatal notes about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub contract: RuntimeContract,
    /// Warnings (deprecated fields) and info (known ONEX keys onex does not use).
    pub notes: Vec<Diagnostic>,
}

/// Loads and validates the runtime contract at `path` and every node contract it references.
///
/// ```
/// use onex_core::contract::{load_runtime_contract, MapSources};
/// let sources = MapSources::new().with_file("onex.yaml", "runtime:\n  name: hello\n  event_bus:\n    kind: memory\n    config:\n      topics: {input: onex.acme.hello.cmd.v1, output: onex.acme.hello.evt.v1}\n");
/// let loaded = load_runtime_contract("onex.yaml".as_ref(), &sources)?;
/// assert_eq!(loaded.contract.runtime.name, "hello");
/// # Ok::<(), onex_core::contract::Diagnostics>(())
/// ```
///
/// # Errors
/// Every problem found, each with file, line, column, field path, hint and
/// fix, sorted by file and line.
pub fn load_runtime_contract(path: &Path, sources: &dyn Sources) -> Result<Loaded, Diagnostics> {
    let (contract, mut diags) = load(path, sources);
    sort(&mut diags);
    match contract {
        Some(contract) if !diags.iter().any(|d| d.severity == Severity::Error) => Ok(Loaded { contract, notes: diags }),
        _ => {
            let (mut errors, notes): (Vec<_>, Vec<_>) = diags.into_iter().partition(|d| d.severity == Severity::Error);
            if errors.is_empty() {
                // Defensive: decoding gave up without saying why.
                errors.push(file_diagnostic(path, "the contract could not be loaded".into()));
            }
            errors.extend(notes);
            Err(Diagnostics(errors))
        }
    }
}

/// Validates one file, a runtime contract (has `runtime:`) or a standalone
/// node contract (has `node_type` or a `contract_version` map), and returns
/// every diagnostic: errors, warnings and info, sorted by file and line.
///
/// A standalone node contract is checked without a runtime contract: its
/// topics may follow either convention and its routes are not matched to
/// handler bindings.
pub fn validate_file(path: &Path, sources: &dyn Sources) -> Vec<Diagnostic> {
    let text = match sources.read(path) {
        Ok(t) => t,
        Err(e) => {
            return vec![file_diagnostic(path, format!("cannot read `{}`: {e}", path.display()))];
        }
    };
    let (tree, mut diags) = parse_tree(&text, path, sources);
    if let Some(root) = tree {
        if root.get("runtime").is_none() && node::looks_like_node(&root) {
            let mut d = Decoder::new(path);
            let ctx = node::NodeContext { convention: None, bindings: None, runtime_file: None };
            let _ = node::decode(&root, &ctx, &mut d);
            diags.extend(d.into_diagnostics());
        } else {
            diags.extend(decode_runtime(&root, path, sources).1);
        }
    }
    sort(&mut diags);
    diags
}

fn load(path: &Path, sources: &dyn Sources) -> (Option<RuntimeContract>, Vec<Diagnostic>) {
    let text = match sources.read(path) {
        Ok(t) => t,
        Err(e) => {
            return (None, vec![file_diagnostic(path, format!("cannot read `{}`: {e}", path.display()))]);
        }
    };
    let (tree, mut diags) = parse_tree(&text, path, sources);
    let Some(root) = tree else {
        return (None, diags);
    };
    let (contract, more) = decode_runtime(&root, path, sources);
    diags.extend(more);
    (contract, diags)
}

fn decode_runtime(root: &yaml::Node, path: &Path, sources: &dyn Sources) -> (Option<RuntimeContract>, Vec<Diagnostic>) {
    let mut d = Decoder::new(path);
    if root.as_map().is_none() {
        d.error(
            root.pos,
            "",
            format!("the contract must be a map, found {}", root.type_name()),
            Some("a runtime contract starts with `runtime:`".into()),
            Some("add `runtime:` with `name` and `event_bus`".into()),
        );
        return (None, d.into_diagnostics());
    }
    let contract = runtime::decode(root, path, sources, &mut d);
    (contract, d.into_diagnostics())
}

/// Parses and interpolates one file's text. `None` when the YAML is unusable.
fn parse_tree(text: &str, path: &Path, sources: &dyn Sources) -> (Option<yaml::Node>, Vec<Diagnostic>) {
    let (tree, mut diags) = yaml::parse(text, path);
    let Some(mut root) = tree else {
        return (None, diags);
    };
    let mut d = Decoder::new(path);
    interpolate::interpolate(&mut root, "", sources, &mut d);
    diags.extend(d.into_diagnostics());
    (Some(root), diags)
}

fn file_diagnostic(path: &Path, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        path: String::new(),
        message,
        hint: None,
        fix: Some("check the path, and that the file is readable UTF-8".into()),
    }
}

fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
}
