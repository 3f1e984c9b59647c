//! `VaultClient`: KV v2 over Vault's HTTP API, with token or AppRole auth and renewal.
//!
//! Shared by the vault handler and the runtime's secret resolver. The token is
//! renewed lazily, before the request that finds it two thirds through its
//! TTL (no background task to own); an AppRole token that can no longer be
//! renewed, or that Vault refuses with 403, is replaced by a fresh login once.
//! Tokens travel only in the `X-Vault-Token` header, marked sensitive, and
//! never appear in errors, logs or `Debug` output.

use std::sync::Arc;

use onex_core::{Clock, ErrorClass, Timestamp};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

use super::config::{VaultAuth, VaultHandlerConfig};
use crate::error::HandlerError;

/// One secret read from KV v2.
#[derive(Debug, Clone, PartialEq)]
pub struct KvSecret {
    /// The key/value pairs.
    pub data: Map<String, Value>,
    /// The version read.
    pub version: u64,
}

/// The token in use and when to renew it.
#[derive(Debug, Clone)]
struct Token {
    value: SecretString,
    /// When to renew; `None` for a token without TTL (root) or not renewable.
    renew_at: Option<Timestamp>,
    renewable: bool,
}

/// A KV v2 client for one Vault (or OpenBao) server and mount.
#[derive(Debug)]
pub struct VaultClient {
    http: reqwest::Client,
    base: Url,
    mount: String,
    auth: VaultAuth,
    clock: Arc<dyn Clock>,
    /// `None` until the first request (token auth: looked up; AppRole: logged in).
    token: Mutex<Option<Token>>,
}

/// What a request is, for error messages: the operation, the KV path and the capability it needs.
#[derive(Debug, Clone, Copy)]
struct Target<'a> {
    op: &'a str,
    path: &'a str,
    capability: &'a str,
}

impl VaultClient {
    /// A client for `cfg`. Makes no request; authentication happens on first use.
    ///
    /// # Errors
    /// [`HandlerError::Config`] when the config is invalid.
    pub fn new(cfg: &VaultHandlerConfig, clock: Arc<dyn Clock>) -> Result<Self, HandlerError> {
        let config_error = |message: String| HandlerError::Config { handler_type: "vault".into(), message };
        cfg.validate().map_err(|p| config_error(crate::config::join(&p)))?;
        let base = Url::parse(&cfg.address).map_err(|_| config_error("`address` is not a URL".into()))?;
        let mut headers = HeaderMap::new();
        if let Some(ns) = &cfg.namespace {
            let v = HeaderValue::from_str(ns)
                .map_err(|_| config_error("`namespace` is not a valid header value".into()))?;
            headers.insert("X-Vault-Namespace", v);
        }
        // Through the one builder that installs the TLS crypto provider.
        let http = crate::http::client_builder()
            .timeout(cfg.request_timeout())
            .default_headers(headers)
            .build()
            .map_err(|e| config_error(format!("http client: {e}")))?;
        Ok(Self {
            http,
            base,
            mount: cfg.mount.trim_matches('/').to_owned(),
            auth: cfg.auth.clone(),
            clock,
            token: Mutex::new(None),
        })
    }

    /// The KV v2 mount.
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// Reads the latest version of `path` (or `version`).
    ///
    /// # Errors
    /// Permanent for 403/404 (with what to check), transient for connection failures and 5xx.
    pub async fn get(&self, path: &str, version: Option<u64>) -> Result<KvSecret, HandlerError> {
        let target = Target { op: "read", path, capability: "read" };
        let mut url = self.kv_url("data", path)?;
        if let Some(v) = version {
            url.query_pairs_mut().append_pair("version", &v.to_string());
        }
        let body = match self.request(Method::GET, url, None, target).await {
            Ok(body) => body,
            Err(NotFound) => {
                return Err(permanent(format!(
                    "secret `{path}` not found in mount `{}`{}; check the path, and that `{}` is a KV version 2 mount",
                    self.mount,
                    version.map_or_else(String::new, |v| format!(" at version {v}")),
                    self.mount
                )));
            }
            Err(Other(e)) => return Err(e),
        };
        let data = body.pointer("/data/data").and_then(Value::as_object).cloned().ok_or_else(|| {
            permanent(format!("secret `{path}` in mount `{}` has no data at that version (it was deleted)", self.mount))
        })?;
        let version = body.pointer("/data/metadata/version").and_then(Value::as_u64).unwrap_or(0);
        Ok(KvSecret { data, version })
    }

    /// Writes `data` as a new version of `path`; with `cas`, only if the current version is `cas`.
    ///
    /// # Errors
    /// Conflict when `cas` does not match; otherwise as [`VaultClient::get`].
    pub async fn set(&self, path: &str, data: &Map<String, Value>, cas: Option<u64>) -> Result<u64, HandlerError> {
        let target = Target { op: "write", path, capability: "create/update" };
        let url = self.kv_url("data", path)?;
        let mut body = json!({ "data": data });
        if let Some(cas) = cas {
            body["options"] = json!({ "cas": cas });
        }
        let out = self.request(Method::POST, url, Some(body), target).await?;
        Ok(out.pointer("/data/version").and_then(Value::as_u64).unwrap_or(0))
    }

    /// Deletes the latest version of `path` (recoverable with `vault kv undelete`), or with
    /// [`Versions::All`] the secret's metadata and every version.
    ///
    /// # Errors
    /// As [`VaultClient::get`].
    pub async fn delete(&self, path: &str, versions: Versions) -> Result<(), HandlerError> {
        let target = Target { op: "delete", path, capability: "delete" };
        let url = match versions {
            Versions::Latest => self.kv_url("data", path)?,
            Versions::All => self.kv_url("metadata", path)?,
        };
        self.request(Method::DELETE, url, None, target).await?;
        Ok(())
    }

    /// Lists the keys under `path` (folders end in `/`); an empty list when there are none.
    ///
    /// # Errors
    /// As [`VaultClient::get`].
    pub async fn list(&self, path: &str) -> Result<Vec<String>, HandlerError> {
        let target = Target { op: "list", path, capability: "list" };
        let mut url = self.kv_url("metadata", path)?;
        // LIST wants a trailing slash on the folder.
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty().push("");
        }
        let method = Method::from_bytes(b"LIST").map_err(|e| permanent(e.to_string()))?;
        match self.request(method, url, None, target).await {
            Ok(body) => Ok(body
                .pointer("/data/keys")
                .and_then(Value::as_array)
                .map(|keys| keys.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default()),
            // Vault answers 404 for a folder with nothing in it.
            Err(NotFound) => Ok(Vec::new()),
            Err(Other(e)) => Err(e),
        }
    }

    /// Checks that Vault is reachable, unsealed and accepts the token.
    ///
    /// # Errors
    /// What is wrong.
    pub async fn check(&self) -> Result<String, HandlerError> {
        let mut url = self.api_url(&["sys", "health"]);
        url.query_pairs_mut().append_pair("standbyok", "true").append_pair("perfstandbyok", "true");
        let resp = self.http.get(url).send().await.map_err(|e| transport(&e))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let why = match status.as_u16() {
                501 => "not initialized",
                503 => "sealed",
                _ => "unhealthy",
            };
            return Err(HandlerError::Failed {
                class: ErrorClass::Transient,
                message: format!("vault is {why} (sys/health answered {status})"),
            });
        }
        let target = Target { op: "look up its token", path: "", capability: "read on auth/token/lookup-self" };
        let url = self.api_url(&["auth", "token", "lookup-self"]);
        self.request(Method::GET, url, None, target).await?;
        let version = body.get("version").and_then(Value::as_str).unwrap_or("unknown");
        Ok(format!("vault {version} unsealed; token accepted"))
    }

    /// Revokes a token this client obtained by logging in (never a token it was given).
    pub async fn revoke_login_token(&self) {
        if !matches!(self.auth, VaultAuth::Approle { .. }) {
            return;
        }
        let Some(token) = self.token.lock().await.take() else {
            return;
        };
        let url = self.api_url(&["auth", "token", "revoke-self"]);
        let result = self.http.post(url).headers(token_header(&token.value)).send().await;
        if let Err(e) = result {
            tracing::warn!(error = %transport(&e), "Could not revoke the Vault login token; it expires with its TTL.");
        }
    }

    fn api_url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty().push("v1").extend(segments);
        }
        url
    }

    /// `{address}/v1/{mount}/{kind}/{path}`, each segment percent-encoded.
    fn kv_url(&self, kind: &str, path: &str) -> Result<Url, HandlerError> {
        let segments = kv_path(path, kind == "metadata")?;
        let mut url = self.base.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty().push("v1").extend(self.mount.split('/')).push(kind).extend(segments);
        }
        Ok(url)
    }

    async fn request(
        &self,
        method: Method,
        url: Url,
        body: Option<Value>,
        target: Target<'_>,
    ) -> Result<Value, RequestError> {
        let token = self.token(false).await?;
        match self.send(method.clone(), url.clone(), body.as_ref(), &token, target).await {
            // An AppRole token may have expired between renewals: log in again, once.
            Err(Other(e)) if is_forbidden(&e) && matches!(self.auth, VaultAuth::Approle { .. }) => {
                let token = self.token(true).await?;
                self.send(method, url, body.as_ref(), &token, target).await
            }
            other => other,
        }
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        token: &SecretString,
        target: Target<'_>,
    ) -> Result<Value, RequestError> {
        let mut req = self.http.request(method, url).headers(token_header(token));
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| Other(transport(&e)))?;
        let status = resp.status();
        if status == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        Err(self.status_error(status, &body, target))
    }

    fn status_error(&self, status: StatusCode, body: &Value, t: Target<'_>) -> RequestError {
        let errors = vault_errors(body);
        let what = if t.path.is_empty() { String::new() } else { format!(" `{}` in mount `{}`", t.path, self.mount) };
        let (class, message) = match status.as_u16() {
            403 => (
                ErrorClass::Permanent,
                format!(
                    "vault denied permission to {}{what}; check that the token's policy grants `{}` on `{}/data/{}` \
                     (or `{}/metadata/...` for list and delete-all) and that the token has not expired",
                    t.op, t.capability, self.mount, t.path, self.mount
                ),
            ),
            404 if errors.is_empty() => return NotFound,
            404 => (ErrorClass::Permanent, format!("vault could not {}{what}: {errors}", t.op)),
            400 if errors.contains("check-and-set") => {
                (ErrorClass::Conflict, format!("vault refused to {}{what}: {errors}", t.op))
            }
            412 => (ErrorClass::Conflict, format!("vault refused to {}{what}: {errors}", t.op)),
            429 | 500..=599 => (ErrorClass::Transient, format!("vault answered {status} to {}{what}: {errors}", t.op)),
            _ => (ErrorClass::Permanent, format!("vault answered {status} to {}{what}: {errors}", t.op)),
        };
        Other(HandlerError::Failed { class, message })
    }

    /// The current token: looked up or logged in on first use, renewed when due, replaced when `fresh`.
    async fn token(&self, fresh: bool) -> Result<SecretString, HandlerError> {
        let mut slot = self.token.lock().await;
        let now = self.clock.now();
        match slot.as_ref() {
            Some(t) if !fresh && t.renew_at.is_none_or(|at| now < at) => return Ok(t.value.clone()),
            Some(t) if !fresh && t.renewable => match self.renew(&t.value).await {
                Ok(renewed) => {
                    let value = renewed.value.clone();
                    *slot = Some(renewed);
                    return Ok(value);
                }
                Err(e) if matches!(self.auth, VaultAuth::Token { .. }) => {
                    // The token may still be valid until its TTL ends; try again on the next call.
                    tracing::warn!(error = %e, "Vault token renewal failed; the token is used until it expires.");
                    return Ok(t.value.clone());
                }
                Err(_) => {}
            },
            _ => {}
        }
        let token = match &self.auth {
            VaultAuth::Token { token } => self.lookup(token).await?,
            VaultAuth::Approle { role_id, secret_id, mount } => self.login(mount, role_id, secret_id).await?,
        };
        let value = token.value.clone();
        *slot = Some(token);
        Ok(value)
    }

    async fn lookup(&self, token: &SecretString) -> Result<Token, HandlerError> {
        let url = self.api_url(&["auth", "token", "lookup-self"]);
        let target = Target { op: "look up its token", path: "", capability: "read on auth/token/lookup-self" };
        let body = self.send(Method::GET, url, None, token, target).await.map_err(RequestError::into_error)?;
        let ttl = body.pointer("/data/ttl").and_then(Value::as_u64).unwrap_or(0);
        let renewable = body.pointer("/data/renewable").and_then(Value::as_bool).unwrap_or(false);
        Ok(self.token_with_ttl(token.clone(), ttl, renewable))
    }

    async fn login(&self, mount: &str, role_id: &str, secret_id: &SecretString) -> Result<Token, HandlerError> {
        let mut url = self.api_url(&["auth"]);
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.extend(mount.trim_matches('/').split('/')).push("login");
        }
        let body = json!({ "role_id": role_id, "secret_id": secret_id.expose_secret() });
        let resp = self.http.post(url).json(&body).send().await.map_err(|e| transport(&e))?;
        let status = resp.status();
        let out: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let class = if status.is_server_error() { ErrorClass::Transient } else { ErrorClass::Permanent };
            return Err(HandlerError::Failed {
                class,
                message: format!(
                    "vault AppRole login at `auth/{mount}` failed ({status}): {}; check role_id and secret_id",
                    vault_errors(&out)
                ),
            });
        }
        let token = out
            .pointer("/auth/client_token")
            .and_then(Value::as_str)
            .map(|s| SecretString::from(s.to_owned()))
            .ok_or_else(|| permanent("vault AppRole login answered without a token".into()))?;
        let ttl = out.pointer("/auth/lease_duration").and_then(Value::as_u64).unwrap_or(0);
        let renewable = out.pointer("/auth/renewable").and_then(Value::as_bool).unwrap_or(false);
        tracing::info!(ttl_seconds = ttl, renewable, "Logged in to Vault with AppRole.");
        Ok(self.token_with_ttl(token, ttl, renewable))
    }

    async fn renew(&self, token: &SecretString) -> Result<Token, HandlerError> {
        let url = self.api_url(&["auth", "token", "renew-self"]);
        let target = Target { op: "renew its token", path: "", capability: "update on auth/token/renew-self" };
        let body =
            self.send(Method::POST, url, Some(&json!({})), token, target).await.map_err(RequestError::into_error)?;
        let ttl = body.pointer("/auth/lease_duration").and_then(Value::as_u64).unwrap_or(0);
        let renewable = body.pointer("/auth/renewable").and_then(Value::as_bool).unwrap_or(false);
        tracing::debug!(ttl_seconds = ttl, "Renewed the Vault token.");
        Ok(self.token_with_ttl(token.clone(), ttl, renewable))
    }

    /// Renew two thirds through the TTL, leaving a third for renewal to fail and a login to happen.
    fn token_with_ttl(&self, value: SecretString, ttl_seconds: u64, renewable: bool) -> Token {
        let renew_at = (ttl_seconds > 0).then(|| {
            self.clock.now().saturating_add(std::time::Duration::from_millis(ttl_seconds.saturating_mul(2000) / 3))
        });
        Token { value, renew_at, renewable: renewable || matches!(self.auth, VaultAuth::Approle { .. }) }
    }
}

/// Which versions [`VaultClient::delete`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Versions {
    /// The latest version only (soft delete; recoverable).
    #[default]
    Latest,
    /// The metadata and every version (permanent).
    All,
}

/// A request error; 404 without detail is kept apart so `list` can read it as "empty".
#[derive(Debug)]
enum RequestError {
    NotFound,
    Other(HandlerError),
}
use RequestError::{NotFound, Other};

impl RequestError {
    fn into_error(self) -> HandlerError {
        match self {
            NotFound => permanent("vault answered 404".into()),
            Other(e) => e,
        }
    }
}

impl From<HandlerError> for RequestError {
    fn from(e: HandlerError) -> Self {
        Other(e)
    }
}

impl From<RequestError> for HandlerError {
    fn from(e: RequestError) -> Self {
        e.into_error()
    }
}

fn token_header(token: &SecretString) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(mut v) = HeaderValue::from_str(token.expose_secret()) {
        v.set_sensitive(true);
        headers.insert("X-Vault-Token", v);
    }
    headers
}

/// Splits a KV path into segments, refusing empty, `.` and `..` segments. The root (`""`) is
/// allowed only where a folder is meant (list, metadata).
fn kv_path(path: &str, folder: bool) -> Result<Vec<&str>, HandlerError> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return if folder { Ok(Vec::new()) } else { Err(permanent("`path` must name a secret, e.g. `app/db`".into())) };
    }
    let segments: Vec<&str> = trimmed.split('/').collect();
    if segments.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
        return Err(permanent(format!("`path` `{path}` has an empty, `.` or `..` segment")));
    }
    Ok(segments)
}

fn vault_errors(body: &Value) -> String {
    let joined = body
        .get("errors")
        .and_then(Value::as_array)
        .map(|errs| errs.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
        .unwrap_or_default();
    joined.chars().take(300).collect()
}

fn is_forbidden(e: &HandlerError) -> bool {
    matches!(e, HandlerError::Failed { message, .. } if message.starts_with("vault denied permission"))
}

fn transport(e: &reqwest::Error) -> HandlerError {
    // reqwest's Display includes the URL: address and path, never the token (a header).
    let class = if e.is_decode() || e.is_builder() { ErrorClass::Permanent } else { ErrorClass::Transient };
    let detail = std::error::Error::source(e).map_or_else(String::new, |s| format!(": {s}"));
    HandlerError::Failed { class, message: format!("vault request failed: {e}{detail}") }
}

pub(crate) fn permanent(message: String) -> HandlerError {
    HandlerError::Failed { class: ErrorClass::Permanent, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_paths_refuse_traversal_and_empty_names() {
        assert_eq!(kv_path("/app/db/", false).ok(), Some(vec!["app", "db"]));
        assert!(kv_path("app/../sys", false).is_err());
        assert!(kv_path("app//db", false).is_err());
        assert!(kv_path("", false).is_err());
        assert_eq!(kv_path("", true).ok(), Some(vec![]));
    }

    #[test]
    fn vault_error_lists_are_joined_and_bounded() {
        let body = json!({"errors": ["a", "b"]});
        assert_eq!(vault_errors(&body), "a; b");
        let long = json!({"errors": ["x".repeat(1000)]});
        assert_eq!(vault_errors(&long).len(), 300);
    }
}
