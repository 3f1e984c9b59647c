//! `SecretResolver`: resolves references against Vault, the environment and files.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use onex_core::{ErrorClass, ErrorCode, RuntimeError};
use onex_handlers::vault::{VaultAuth, VaultHandlerConfig};
use onex_handlers::{HandlerError, TokioClock, VaultClient};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use zeroize::Zeroize;

use super::file::{self, FileFailure};
use super::reference::SecretRef;

/// The key of a config object that is a secret reference: `{"secret_ref": "env:DB_PASSWORD"}`.
pub const SECRET_REF_KEY: &str = "secret_ref";

/// Where logical names live in Vault unless configured: key `<name>` of `secret/onex`.
const DEFAULT_LOGICAL_PATH: &str = "onex";

/// A reference that could not be resolved. Names the reference, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot resolve secret `{reference}`: {reason}")]
pub struct SecretError {
    reference: String,
    class: ErrorClass,
    reason: String,
}

impl SecretError {
    pub(super) fn new(reference: impl Into<String>, class: ErrorClass, reason: String) -> Self {
        Self { reference: reference.into(), class, reason }
    }

    /// The reference as written.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// Transient when the source was unreachable (Vault down), permanent otherwise.
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    /// Always [`ErrorCode::SecretResolution`].
    pub fn code(&self) -> ErrorCode {
        ErrorCode::SecretResolution
    }

    /// The error for envelopes and reports.
    pub fn to_runtime_error(&self) -> RuntimeError {
        RuntimeError::new(self.code(), self.to_string()).with_class(self.class)
    }
}

/// A failed reference inside a handler config, with its path (`password`, `auth.secret_id`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config `{path}`: {error}")]
pub struct ConfigSecretError {
    pub path: String,
    pub error: SecretError,
}

/// Environment variables, as the process has them or as given (tests, `onex validate`).
#[derive(Clone)]
pub struct EnvSource {
    vars: Option<Arc<HashMap<String, String>>>,
}

impl fmt::Debug for EnvSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets: show the names only.
        let names: Vec<&String> = self.vars.as_ref().map(|v| v.keys().collect()).unwrap_or_default();
        f.debug_struct("EnvSource").field("process", &self.vars.is_none()).field("names", &names).finish()
    }
}

impl EnvSource {
    /// The process environment, read at each lookup.
    pub fn process() -> Self {
        Self { vars: None }
    }

    /// A fixed set of variables.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self { vars: Some(Arc::new(pairs.into_iter().collect())) }
    }

    /// The variable's value, if set (and valid Unicode).
    pub fn get(&self, name: &str) -> Option<String> {
        match &self.vars {
            Some(vars) => vars.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
    }

    /// Every variable whose name starts with `prefix`, sorted by name.
    pub fn with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = match &self.vars {
            Some(vars) => {
                vars.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(k, v)| (k.clone(), v.clone())).collect()
            }
            None => std::env::vars().filter(|(k, _)| k.starts_with(prefix)).collect(),
        };
        out.sort();
        out
    }
}

/// Secret files: absolute paths, or names under systemd's credentials directory.
#[derive(Debug, Clone, Default)]
pub struct FileSource {
    credentials_dir: Option<PathBuf>,
}

impl FileSource {
    /// Relative names resolve under `dir` (what systemd passes as `$CREDENTIALS_DIRECTORY`).
    pub fn with_credentials_dir(dir: Option<PathBuf>) -> Self {
        Self { credentials_dir: dir }
    }
}

/// Resolves [`SecretRef`]s: Vault (if configured) > environment > files.
///
/// Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct SecretResolver {
    vault: Option<VaultClient>,
    /// Where logical names live in Vault: `<mount>/<logical_path>`, key = the name.
    logical_path: String,
    env: EnvSource,
    files: FileSource,
}

impl SecretResolver {
    /// A resolver over the given sources. Without Vault, `vault:` references fail and logical
    /// names skip Vault.
    pub fn new(vault: Option<VaultClient>, env: EnvSource, files: FileSource) -> Self {
        Self { vault, logical_path: DEFAULT_LOGICAL_PATH.into(), env, files }
    }

    /// Where logical names are looked up in Vault (default `onex`: key `<name>` of `secret/onex`).
    #[must_use]
    pub fn with_logical_path(mut self, path: impl Into<String>) -> Self {
        self.logical_path = path.into();
        self
    }

    /// The resolver a runtime process uses, configured by its environment (the one place
    /// that reads it; handlers never do):
    /// - `VAULT_ADDR` with `VAULT_TOKEN`, or with `VAULT_ROLE_ID` + `VAULT_SECRET_ID` (AppRole):
    ///   enables Vault; `VAULT_NAMESPACE` is sent when set; `ONEX_SECRETS_VAULT_MOUNT` (default
    ///   `secret`) and `ONEX_SECRETS_VAULT_PATH` (default `onex`) locate logical names;
    /// - `CREDENTIALS_DIRECTORY` (set by systemd's `LoadCredential=`): relative `file:` names.
    ///
    /// # Errors
    /// A [`HandlerError::Config`] when `VAULT_ADDR` is set but unusable.
    pub fn from_env() -> Result<Self, HandlerError> {
        let env = EnvSource::process();
        let vault = match env.get("VAULT_ADDR") {
            Some(address) => {
                let auth = match (env.get("VAULT_TOKEN"), env.get("VAULT_ROLE_ID"), env.get("VAULT_SECRET_ID")) {
                    (Some(token), _, _) => VaultAuth::Token { token: SecretString::from(token) },
                    (None, Some(role_id), Some(secret_id)) => VaultAuth::Approle {
                        role_id,
                        secret_id: SecretString::from(secret_id),
                        mount: onex_handlers::vault::default_approle_mount(),
                    },
                    _ => {
                        return Err(HandlerError::Config {
                            handler_type: "vault".into(),
                            message: "VAULT_ADDR is set but neither VAULT_TOKEN nor VAULT_ROLE_ID and VAULT_SECRET_ID"
                                .into(),
                        });
                    }
                };
                let mut cfg = VaultHandlerConfig::with_token(address, SecretString::from(String::new()));
                cfg.auth = auth;
                cfg.namespace = env.get("VAULT_NAMESPACE");
                if let Some(mount) = env.get("ONEX_SECRETS_VAULT_MOUNT") {
                    cfg.mount = mount;
                }
                Some(VaultClient::new(&cfg, Arc::new(TokioClock::new()))?)
            }
            None => None,
        };
        let files = FileSource::with_credentials_dir(env.get("CREDENTIALS_DIRECTORY").map(PathBuf::from));
        let logical = env.get("ONEX_SECRETS_VAULT_PATH").unwrap_or_else(|| DEFAULT_LOGICAL_PATH.into());
        Ok(Self::new(vault, env, files).with_logical_path(logical))
    }

    /// Resolves one reference.
    ///
    /// # Errors
    /// A [`SecretError`] naming the reference and what to check.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn resolve(&self, r: &SecretRef) -> Result<SecretString, SecretError> {
        let fail = |class, reason: String| SecretError::new(r.to_string(), class, reason);
        let result = match r {
            SecretRef::Vault { mount, path, key } => match self.vault_value(mount, path, key).await {
                Ok(Some(v)) => Ok(v),
                Ok(None) => Err(fail(
                    ErrorClass::Permanent,
                    format!("Vault has no key `{key}` in secret `{path}` of mount `{mount}`"),
                )),
                Err(e) => Err(e),
            },
            SecretRef::Env(name) => self
                .env
                .get(name)
                .map(SecretString::from)
                .ok_or_else(|| fail(ErrorClass::Permanent, format!("environment variable `{name}` is not set"))),
            SecretRef::File(path) => {
                let located = file::locate(path, self.files.credentials_dir.as_deref())
                    .map_err(|reason| fail(ErrorClass::Permanent, reason))?;
                match file::read_secret_file(&located).await {
                    Ok(v) => Ok(v),
                    Err(FileFailure::NotFound) => {
                        Err(fail(ErrorClass::Permanent, format!("file `{}` does not exist", located.display())))
                    }
                    Err(FileFailure::Refused(class, reason)) => Err(fail(class, reason)),
                }
            }
            SecretRef::Logical(name) => self.logical(name).await,
        };
        match &result {
            Ok(_) => tracing::debug!(secret_ref = %r, "Resolved secret reference."),
            Err(e) => tracing::debug!(secret_ref = %r, error = %e, "Secret reference did not resolve."),
        }
        result
    }

    /// Resolves several references; the first failure wins.
    ///
    /// # Errors
    /// As [`SecretResolver::resolve`].
    pub async fn resolve_all(&self, refs: &[SecretRef]) -> Result<Vec<SecretString>, SecretError> {
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            out.push(self.resolve(r).await?);
        }
        Ok(out)
    }

    /// Vault > env > credentials directory; only "not found" moves on.
    async fn logical(&self, name: &str) -> Result<SecretString, SecretError> {
        let mut looked = Vec::new();
        if let Some(vault) = &self.vault {
            let mount = vault.mount().to_owned();
            if let Some(v) = self.vault_value(&mount, &self.logical_path, name).await? {
                return Ok(v);
            }
            looked.push(format!("Vault key `{name}` of `{mount}/{}`", self.logical_path));
        }
        let var = SecretRef::env_name(name);
        if let Some(v) = self.env.get(&var) {
            return Ok(SecretString::from(v));
        }
        looked.push(format!("environment variable `{var}`"));
        if let Some(dir) = &self.files.credentials_dir {
            let path = dir.join(name);
            match file::read_secret_file(&path).await {
                Ok(v) => return Ok(v),
                Err(FileFailure::NotFound) => looked.push(format!("file `{}`", path.display())),
                Err(FileFailure::Refused(class, reason)) => return Err(SecretError::new(name, class, reason)),
            }
        } else {
            looked.push("$CREDENTIALS_DIRECTORY (not set)".into());
        }
        Err(SecretError::new(name, ErrorClass::Permanent, format!("not found; looked in {}", looked.join(", "))))
    }

    /// The value of `key` in `mount/path`; `None` when the secret or the key does not exist.
    async fn vault_value(&self, mount: &str, path: &str, key: &str) -> Result<Option<SecretString>, SecretError> {
        let reference = format!("vault:{mount}/{path}#{key}");
        let Some(vault) = &self.vault else {
            return Err(SecretError::new(
                reference,
                ErrorClass::Permanent,
                "no Vault is configured; set VAULT_ADDR and VAULT_TOKEN (or VAULT_ROLE_ID and VAULT_SECRET_ID)".into(),
            ));
        };
        if mount != vault.mount() {
            return Err(SecretError::new(
                reference,
                ErrorClass::Permanent,
                format!("the secret resolver reads mount `{}`; set ONEX_SECRETS_VAULT_MOUNT={mount}", vault.mount()),
            ));
        }
        match vault.get(path, None).await {
            Ok(secret) => match secret.data.get(key) {
                Some(Value::String(s)) => Ok(Some(SecretString::from(s.clone()))),
                Some(Value::Number(n)) => Ok(Some(SecretString::from(n.to_string()))),
                Some(_) => {
                    Err(SecretError::new(reference, ErrorClass::Permanent, format!("key `{key}` is not a string")))
                }
                None => Ok(None),
            },
            Err(e) if e.to_string().contains("not found in mount") => Ok(None),
            Err(e) => Err(SecretError::new(reference, e.class(), e.to_string())),
        }
    }

    /// Replaces every `{"secret_ref": "..."}` object in `config` (at any depth) by the secret's
    /// value, returning every failure with its path.
    ///
    /// # Errors
    /// Every reference that did not resolve, or was malformed.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn resolve_config(&self, config: &Map<String, Value>) -> Result<ResolvedConfig, Vec<ConfigSecretError>> {
        let mut refs = Vec::new();
        collect_refs(config, "", &mut refs);
        let mut resolved = ResolvedConfig { map: config.clone(), secret_paths: Vec::new() };
        let mut errors = Vec::new();
        for (path, raw) in refs {
            let outcome = match raw.parse::<SecretRef>() {
                Ok(r) => self.resolve(&r).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(secret) => {
                    if let Some(slot) = pointer_mut(&mut resolved.map, &path) {
                        *slot = Value::String(secret.expose_secret().to_owned());
                    }
                    resolved.secret_paths.push(path);
                }
                Err(error) => errors.push(ConfigSecretError { path, error }),
            }
        }
        if errors.is_empty() { Ok(resolved) } else { Err(errors) }
    }
}

/// Finds `{"secret_ref": "<text>"}` objects (exactly that one key) and their dotted paths.
fn collect_refs(map: &Map<String, Value>, prefix: &str, out: &mut Vec<(String, String)>) {
    for (k, v) in map {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        collect_value(v, path, out);
    }
}

fn collect_value(v: &Value, path: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(obj) => match secret_ref_text(obj) {
            Some(text) => out.push((path, text.to_owned())),
            None => collect_refs(obj, &path, out),
        },
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_value(item, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The reference text when `obj` is a secret reference object.
pub(crate) fn secret_ref_text(obj: &Map<String, Value>) -> Option<&str> {
    if obj.len() == 1 { obj.get(SECRET_REF_KEY).and_then(Value::as_str) } else { None }
}

/// The value at a dotted path with `[i]` indexes, as [`collect_refs`] writes them.
fn pointer_mut<'a>(map: &'a mut Map<String, Value>, path: &str) -> Option<&'a mut Value> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let (key, indexes) = split_indexes(first);
    let mut cur = map.get_mut(key)?;
    for i in indexes {
        cur = cur.get_mut(i)?;
    }
    for part in parts {
        let (key, indexes) = split_indexes(part);
        cur = cur.get_mut(key)?;
        for i in indexes {
            cur = cur.get_mut(i)?;
        }
    }
    Some(cur)
}

fn split_indexes(part: &str) -> (&str, Vec<usize>) {
    let mut pieces = part.split('[');
    let key = pieces.next().unwrap_or_default();
    (key, pieces.filter_map(|p| p.trim_end_matches(']').parse().ok()).collect())
}

/// A handler config with its secret references replaced by values.
///
/// `Debug` shows `[REDACTED]` at every secret path; dropping it zeroizes every string in it.
pub struct ResolvedConfig {
    map: Map<String, Value>,
    secret_paths: Vec<String>,
}

impl ResolvedConfig {
    /// A config that holds no secrets.
    pub fn plain(map: Map<String, Value>) -> Self {
        Self { map, secret_paths: Vec::new() }
    }

    /// The config with values, for the handler's `from_config`.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.map
    }

    /// The paths that held references (`password`, `auth.secret_id`).
    pub fn secret_paths(&self) -> &[String] {
        &self.secret_paths
    }

    /// `text` with every secret value replaced by `[REDACTED]`, for messages built from
    /// the config (a type error quoting a misplaced secret).
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for path in &self.secret_paths {
            if let Some(Value::String(secret)) = self.get(path) {
                if !secret.is_empty() {
                    out = out.replace(secret.as_str(), "[REDACTED]");
                }
            }
        }
        out
    }

    fn get(&self, path: &str) -> Option<&Value> {
        lookup(&self.map, path)
    }
}

fn lookup<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let (key, indexes) = split_indexes(parts.next()?);
    let mut cur = map.get(key)?;
    for i in indexes {
        cur = cur.get(i)?;
    }
    for part in parts {
        let (key, indexes) = split_indexes(part);
        cur = cur.get(key)?;
        for i in indexes {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

impl fmt::Debug for ResolvedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.map.clone();
        for path in &self.secret_paths {
            if let Some(v) = pointer_mut(&mut shown, path) {
                *v = Value::String("[REDACTED]".into());
            }
        }
        let text = format!("{shown:?}");
        zeroize_map(&mut shown);
        f.debug_struct("ResolvedConfig")
            .field("map", &format_args!("{text}"))
            .field("secret_paths", &self.secret_paths)
            .finish()
    }
}

impl Drop for ResolvedConfig {
    fn drop(&mut self) {
        zeroize_map(&mut self.map);
    }
}

fn zeroize_map(map: &mut Map<String, Value>) {
    for v in map.values_mut() {
        zeroize_value(v);
    }
}

fn zeroize_value(v: &mut Value) {
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(zeroize_value),
        Value::Object(obj) => zeroize_map(obj),
        _ => {}
    }
}

/// Secret files are looked up here when the path is relative.
impl FileSource {
    /// The credentials directory, if any.
    pub fn credentials_dir(&self) -> Option<&Path> {
        self.credentials_dir.as_deref()
    }
}
