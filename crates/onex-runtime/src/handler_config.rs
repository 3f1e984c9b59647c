//! Handler config resolution: contract values + `config_ref` + environment overrides + secrets,
//! validated per handler type (seed 000, issue 3.13).
//!
//! The contract loader has already merged the `config_ref` file under the
//! binding's `config` (inline keys win) and interpolated `${VAR}`s. This
//! module adds, in order:
//!
//! 1. **Environment overrides**: `ONEX_HANDLER_<NAME>_<FIELD>=value` sets the
//!    top-level field `<field>` of the binding named `<name>`. `<NAME>` is the
//!    binding name upper-cased with every non-alphanumeric character as `_`
//!    (`orders-db` → `ORDERS_DB`); `<FIELD>` is the field name upper-cased
//!    (`POOL_SIZE` → `pool_size`). The value keeps the type of the contract
//!    value it replaces (a string stays a string even when it looks like a
//!    number); a field the contract does not set is read as JSON when it
//!    parses (`10`, `true`, `{"method": "token", ...}`) and as a string otherwise.
//! 2. **Secrets**: every `{secret_ref: ...}` is resolved by the [`SecretResolver`].
//! 3. **Typed validation**: the map is parsed into the handler's config struct
//!    (`DbHandlerConfig`, `VaultHandlerConfig`), and every problem becomes a
//!    [`Diagnostic`] located at `runtime.handlers[<i>].config.<field>` — or
//!    naming the environment variable that set the field.
//!
//! The result is what the handler's `from_config` takes.

use std::path::Path;

use onex_core::contract::{BindingSource, Diagnostic, HandlerBinding, HandlerType, Severity};
use onex_handlers::{ConfigProblem, ConsulHandlerConfig, DbHandlerConfig, HttpHandlerConfig, VaultHandlerConfig};
use serde_json::{Map, Value};

use crate::secrets::{EnvSource, ResolvedConfig, SecretResolver};

/// Prefix of handler config environment overrides.
pub const ENV_PREFIX: &str = "ONEX_HANDLER_";

/// `ONEX_HANDLER_<NAME>_` for a binding name.
pub fn env_prefix(binding_name: &str) -> String {
    let name: String =
        binding_name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("{ENV_PREFIX}{name}_")
}

/// Resolves and validates handler configs. One per runtime; cheap to call per binding.
#[derive(Debug)]
pub struct HandlerConfigResolver<'a> {
    secrets: &'a SecretResolver,
    env: EnvSource,
}

/// A field set from the environment: which variable set which field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvOverride {
    pub variable: String,
    pub field: String,
}

impl<'a> HandlerConfigResolver<'a> {
    /// A resolver reading overrides from the process environment.
    pub fn new(secrets: &'a SecretResolver) -> Self {
        Self { secrets, env: EnvSource::process() }
    }

    /// A resolver reading overrides from `env`.
    pub fn with_env(secrets: &'a SecretResolver, env: EnvSource) -> Self {
        Self { secrets, env }
    }

    /// The final config of `binding` (the `index`-th of `contract_file`'s `runtime.handlers`).
    ///
    /// # Errors
    /// Every problem, as contract diagnostics: a secret that did not resolve (naming the
    /// reference, never a value), an unknown field, a wrong type, an invalid value.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn resolve(
        &self,
        contract_file: &Path,
        index: usize,
        binding: &HandlerBinding,
    ) -> Result<ResolvedConfig, Vec<Diagnostic>> {
        let at = Location {
            file: contract_file,
            base: format!("runtime.handlers[{index}].config"),
            source: &binding.source,
        };
        let mut config = binding.config.clone();
        let overrides = self.apply_env_overrides(&binding.name, &mut config);
        for o in &overrides {
            tracing::info!(
                handler = binding.name.as_str(),
                variable = o.variable.as_str(),
                field = o.field.as_str(),
                "Handler config field set from the environment."
            );
        }
        let resolved = self.secrets.resolve_config(&config).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| {
                    at.diagnostic(
                        &e.path,
                        &overrides,
                        e.error.to_string(),
                        Some("check the reference; see docs/secrets.md for the syntax and the lookup order".into()),
                    )
                })
                .collect::<Vec<_>>()
        })?;
        let problems = validate(binding.handler_type, resolved.as_map());
        if problems.is_empty() {
            return Ok(resolved);
        }
        Err(problems
            .into_iter()
            .map(|p| {
                at.diagnostic(&p.field, &overrides, resolved.redact(&p.message), p.hint.map(|h| resolved.redact(&h)))
            })
            .collect())
    }

    /// Applies `ONEX_HANDLER_<NAME>_<FIELD>` variables to `config`; returns what it set.
    pub fn apply_env_overrides(&self, binding_name: &str, config: &mut Map<String, Value>) -> Vec<EnvOverride> {
        let prefix = env_prefix(binding_name);
        let mut applied = Vec::new();
        for (variable, raw) in self.env.with_prefix(&prefix) {
            let field = variable[prefix.len()..].to_ascii_lowercase();
            if field.is_empty() {
                continue;
            }
            let value = match config.get(&field) {
                Some(Value::String(_)) => Value::String(raw),
                Some(Value::Number(_) | Value::Bool(_)) => serde_json::from_str(&raw).unwrap_or(Value::String(raw)),
                _ => serde_json::from_str(&raw).unwrap_or(Value::String(raw)),
            };
            config.insert(field.clone(), value);
            applied.push(EnvOverride { variable, field });
        }
        applied
    }
}

/// Typed validation per handler type; `local` takes no config (the loader checks that).
pub fn validate(handler_type: HandlerType, config: &Map<String, Value>) -> Vec<ConfigProblem> {
    // The http and consul configs report problems as "`field`: message" lines.
    let lines = |problems: Vec<String>| problems.iter().map(|l| ConfigProblem::from_line(l)).collect();
    match handler_type {
        HandlerType::Db => DbHandlerConfig::from_map(config).err().unwrap_or_default(),
        HandlerType::Vault => VaultHandlerConfig::from_map(config).err().unwrap_or_default(),
        HandlerType::Http => HttpHandlerConfig::from_map(config).err().map(lines).unwrap_or_default(),
        HandlerType::Consul => ConsulHandlerConfig::from_map(config).err().map(lines).unwrap_or_default(),
        HandlerType::Local => Vec::new(),
    }
}

struct Location<'a> {
    file: &'a Path,
    base: String,
    /// Where the binding and its config keys are written.
    source: &'a BindingSource,
}

impl Location<'_> {
    fn diagnostic(&self, field: &str, overrides: &[EnvOverride], message: String, hint: Option<String>) -> Diagnostic {
        let top = field.split(['.', '[']).next().unwrap_or_default();
        let from_env = overrides.iter().find(|o| o.field == top);
        let path = if field.is_empty() { self.base.clone() } else { format!("{}.{field}", self.base) };
        let (message, fix) = match from_env {
            Some(o) => (
                format!("{message} (set by environment variable {})", o.variable),
                Some(format!("correct or unset {}", o.variable)),
            ),
            None => (message, None),
        };
        // Point at the config key the problem names, else at the binding.
        let (line, column) =
            self.source.config_keys.get(top).copied().unwrap_or((self.source.line, self.source.column));
        Diagnostic { severity: Severity::Error, file: self.file.to_path_buf(), line, column, path, message, hint, fix }
    }
}
