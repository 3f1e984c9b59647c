//! The `http.*` payload, checked and turned into a request.
//!
//! Everything that can be wrong with a payload is found here, before any
//! byte is sent, and is permanent: the same payload would fail the same way
//! on every retry. That includes a URL outside `base_url`'s origin (see
//! `HttpHandlerConfig::base_url` on why) and a body over `max_request_bytes`.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::response::permanent;
use crate::error::HandlerError;

/// `{"url", "headers"?, "query"?, "json"? | "body"?, "timeout_ms"?}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    query: BTreeMap<String, Value>,
    #[serde(default)]
    json: Option<Value>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// Where a request may go: the base URL and whether other origins are allowed.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub base_url: Option<Url>,
    pub allow_any_host: bool,
}

/// A request, ready to send.
#[derive(Debug)]
pub(super) struct HttpRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    pub timeout: Option<Duration>,
}

impl HttpRequest {
    /// Checks `payload` and builds the request.
    ///
    /// # Errors
    /// A permanent [`HandlerError::Failed`] naming what is wrong with the payload.
    pub(super) fn from_payload(
        method: Method,
        payload: &Value,
        target: &Target,
        max_request_bytes: u64,
    ) -> Result<Self, HandlerError> {
        let p = Payload::deserialize(payload).map_err(|e| {
            permanent(format!(
                "invalid http payload: {e}; expected {{\"url\", \"headers\"?, \"query\"?, \"json\"? | \"body\"?, \"timeout_ms\"?}}"
            ))
        })?;
        let mut url = resolve(&p.url, target)?;
        append_query(&mut url, &p.query)?;

        let mut headers = HeaderMap::with_capacity(p.headers.len() + 1);
        for (name, value) in &p.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| permanent(format!("invalid http payload: `{name}` is not a valid header name")))?;
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                permanent(format!("invalid http payload: the value of header `{name}` is not a valid header value"))
            })?;
            // Payload headers may carry credentials too; keep them out of any debug output.
            value.set_sensitive(true);
            headers.insert(name, value);
        }

        let body = match (p.json, p.body) {
            (Some(_), Some(_)) => {
                return Err(permanent("invalid http payload: give `json` or `body`, not both".to_owned()));
            }
            (Some(json), None) => {
                let bytes = serde_json::to_vec(&json)
                    .map_err(|e| permanent(format!("invalid http payload: `json` cannot be encoded: {e}")))?;
                if !headers.contains_key(CONTENT_TYPE) {
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
                Some(Bytes::from(bytes))
            }
            (None, Some(text)) => {
                if !headers.contains_key(CONTENT_TYPE) {
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
                }
                Some(Bytes::from(text))
            }
            (None, None) => None,
        };
        if let Some(body) = &body {
            let len = u64::try_from(body.len()).unwrap_or(u64::MAX);
            if len > max_request_bytes {
                return Err(permanent(format!(
                    "request body is {len} bytes, over max_request_bytes ({max_request_bytes}); send less or raise the limit"
                )));
            }
        }
        let timeout = match p.timeout_ms {
            Some(0) => return Err(permanent("invalid http payload: `timeout_ms` must be at least 1".to_owned())),
            other => other.map(Duration::from_millis),
        };
        Ok(Self { method, url, headers, body, timeout })
    }
}

/// Resolves `raw` against the base URL and enforces the origin rule.
fn resolve(raw: &str, target: &Target) -> Result<Url, HandlerError> {
    let url = match &target.base_url {
        Some(base) => base.join(raw),
        None => Url::parse(raw),
    }
    .map_err(|e| {
        let hint = if target.base_url.is_none() { "; without base_url every url must be absolute" } else { "" };
        permanent(format!("invalid http payload: url `{}` does not parse ({e}){hint}", redact(raw)))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(permanent(format!(
            "invalid http payload: scheme `{}` is not supported; use http or https",
            url.scheme()
        )));
    }
    if let Some(base) = &target.base_url {
        if !target.allow_any_host && url.origin() != base.origin() {
            return Err(permanent(format!(
                "url `{}` is outside the origin of base_url `{}`; use a relative url, or set allow_any_host: true \
                 if commands may name any host",
                display_url(&url),
                display_url(base)
            )));
        }
    }
    Ok(url)
}

fn append_query(url: &mut Url, query: &BTreeMap<String, Value>) -> Result<(), HandlerError> {
    if query.is_empty() {
        return Ok(());
    }
    let mut pairs = url.query_pairs_mut();
    for (key, value) in query {
        // An array repeats the key (`?tag=a&tag=b`), the usual encoding of a list.
        let values = match value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for v in values {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(permanent(format!(
                        "invalid http payload: query `{key}` must be a string, number, boolean or an array of them"
                    )));
                }
            };
            pairs.append_pair(key, &text);
        }
    }
    drop(pairs);
    Ok(())
}

/// The URL as it may appear in errors and logs: no credentials, no query string (both can hold secrets).
pub(crate) fn display_url(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
        None => format!("{}://{host}{}", url.scheme(), url.path()),
    }
}

/// A URL that did not parse, without anything that may be a secret: the query string is cut,
/// and a URL with user info is not shown at all.
fn redact(raw: &str) -> String {
    let before_query = raw.split('?').next().unwrap_or("");
    if before_query.contains('@') {
        return "<url with credentials, not shown>".to_owned();
    }
    before_query.chars().take(200).collect()
}
