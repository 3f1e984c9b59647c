//! COMPUTE nodes: a pure jq transform of the payload (jaq).
//!
//! The expression is compiled once at start-up; a syntax error stops the
//! runtime before it consumes anything. At run time the filter must yield
//! exactly one value: none or several is a `COMPUTE_FAILED` error that says
//! how to fix the expression.

use async_trait::async_trait;
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use onex_core::{Envelope, ErrorCode, Operation, RuntimeError};
use serde::Deserialize;
use serde_json::Value;

use super::Node;

type Filter = jaq_core::compile::Filter<jaq_core::Native<data::JustLut<Val>>>;

/// A COMPUTE node running one jq expression over the payload.
pub struct ComputeNode {
    expression: String,
    filter: Filter,
    operations: Vec<Operation>,
}

impl std::fmt::Debug for ComputeNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComputeNode")
            .field("expression", &self.expression)
            .field("operations", &self.operations)
            .finish()
    }
}

impl ComputeNode {
    /// Compiles `expression`.
    ///
    /// # Errors
    /// A message naming the expression and what jaq rejected.
    pub fn new(expression: &str, operations: Vec<Operation>) -> Result<Self, String> {
        let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
        let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(&arena, File { code: expression, path: () })
            .map_err(|errs| format!("jq expression `{expression}` does not parse: {}", describe(&errs)))?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errs| format!("jq expression `{expression}` does not compile: {}", describe(&errs)))?;
        Ok(Self { expression: expression.to_owned(), filter, operations })
    }

    /// Runs the expression on `payload`.
    ///
    /// # Errors
    /// `COMPUTE_FAILED` when jq fails or yields other than exactly one value.
    pub fn apply(&self, payload: &Value) -> Result<Value, RuntimeError> {
        let failed = |msg: String| RuntimeError::new(ErrorCode::ComputeFailed, msg);
        let input =
            Val::deserialize(payload).map_err(|e| failed(format!("payload is not representable in jq: {e}")))?;
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let mut out = self.filter.id.run((ctx, input)).map(unwrap_valr);
        let first = match out.next() {
            None => {
                return Err(failed(format!("jq expression `{}` produced no value for this payload", self.expression)));
            }
            Some(Err(e)) => return Err(failed(format!("jq expression `{}` failed: {e}", self.expression))),
            Some(Ok(v)) => v,
        };
        if out.next().is_some() {
            return Err(failed(format!(
                "jq expression `{}` produced more than one value; wrap it in `[ … ]` to return an array",
                self.expression
            )));
        }
        // jaq prints values as JSON; read them back as serde_json values.
        serde_json::from_str(&first.to_string())
            .map_err(|e| failed(format!("jq produced a value that is not JSON: {e}")))
    }
}

fn describe<T: std::fmt::Debug>(errs: &T) -> String {
    // jaq's error types carry positions but no Display; Debug is the most precise text available.
    let text = format!("{errs:?}");
    if text.len() > 300 {
        format!("{}…", &text[..text.char_indices().nth(300).map_or(text.len(), |(i, _)| i)])
    } else {
        text
    }
}

#[async_trait]
impl Node for ComputeNode {
    fn operations(&self) -> Vec<Operation> {
        self.operations.clone()
    }

    async fn process(&self, envelope: &Envelope) -> Result<Value, RuntimeError> {
        self.apply(&envelope.payload)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn node(expr: &str) -> ComputeNode {
        ComputeNode::new(expr, vec![]).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn transforms_the_payload() {
        let out = node(r#"{greeting: ("hello, " + .name), n: (.xs | length)}"#)
            .apply(&json!({"name": "ada", "xs": [1, 2, 3]}));
        assert_eq!(out, Ok(json!({"greeting": "hello, ada", "n": 3})));
    }

    #[test]
    fn a_syntax_error_is_reported_at_compile_time() {
        let err = ComputeNode::new("{greeting: ", vec![]).err().unwrap_or_default();
        assert!(err.contains("does not parse"), "{err}");
    }

    #[test]
    fn an_undefined_function_is_reported_at_compile_time() {
        let err = ComputeNode::new("nosuchfn(1)", vec![]).err().unwrap_or_default();
        assert!(err.contains("does not compile"), "{err}");
    }

    #[test]
    fn several_outputs_are_an_error_with_a_fix() {
        let err = node(".[]").apply(&json!([1, 2])).err().map(|e| e.message).unwrap_or_default();
        assert!(err.contains("wrap it in"), "{err}");
    }

    #[test]
    fn no_output_is_an_error() {
        let err = node("empty").apply(&json!(1)).err().map(|e| e.code);
        assert_eq!(err, Some(ErrorCode::ComputeFailed));
    }

    #[test]
    fn runtime_errors_are_compute_failed() {
        let err = node(".a + 1").apply(&json!({"a": "x"})).err();
        assert_eq!(err.as_ref().map(|e| e.code), Some(ErrorCode::ComputeFailed));
    }

    #[test]
    fn filters_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ComputeNode>();
    }
}
