//! [`HttpHandler`]: `http.get|post|put|patch|delete` over one pooled reqwest client.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use onex_core::{Clock, Operation, SystemClock};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, redirect};
use serde_json::{Map, Value};
use url::{Origin, Url};

use super::client;
use super::config::HttpHandlerConfig;
use super::request::{HttpRequest, Target, display_url};
use super::response::{Truncate, class_of, permanent, read_limited, status_error, transport_error};
use crate::error::HandlerError;
use crate::handler::{CallContext, Handler, HandlerDescription, HandlerHealth};

const HANDLER_TYPE: &str = "http";

const OPERATIONS: [(&str, Method, &str); 5] = [
    ("http.get", Method::GET, "GET `url`; payload {url, headers?, query?, timeout_ms?}."),
    ("http.post", Method::POST, "POST `json` or `body` to `url`."),
    ("http.put", Method::PUT, "PUT `json` or `body` to `url`."),
    ("http.patch", Method::PATCH, "PATCH `json` or `body` to `url`."),
    ("http.delete", Method::DELETE, "DELETE `url` (a body is allowed)."),
];

/// Calls HTTP APIs for EFFECT nodes.
///
/// One client per binding: connections are pooled per host and reused across
/// calls and tasks. After [`Handler::shutdown`] the client (and with it every
/// pooled connection) is dropped and calls fail with a permanent error.
pub struct HttpHandler {
    /// `None` once shut down. A std lock held only to clone the client (an `Arc` bump).
    client: RwLock<Option<Client>>,
    target: Target,
    max_request_bytes: u64,
    max_response_bytes: u64,
    health_timeout: Duration,
    clock: Arc<dyn Clock>,
    config: HttpHandlerConfig,
}

impl HttpHandler {
    /// The handler for a binding's `config` map: the one call the runtime's wiring makes.
    ///
    /// ```
    /// use onex_handlers::{Handler, HttpHandler};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = serde_json::json!({"base_url": "https://api.example.com/v1/"});
    /// let handler = HttpHandler::from_config(config.as_object().ok_or("not a map")?)?;
    /// assert!(handler.describe().supports("http.post"));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`HandlerError::Config`] listing every problem of the config.
    pub fn from_config(map: &Map<String, Value>) -> Result<Self, HandlerError> {
        let config = HttpHandlerConfig::from_map(map).map_err(|problems| HandlerError::Config {
            handler_type: HANDLER_TYPE.into(),
            message: problems.join("; "),
        })?;
        Self::new(config)
    }

    /// The handler for a parsed config.
    ///
    /// # Errors
    /// [`HandlerError::Config`] when the config is invalid or the client cannot be built.
    pub fn new(config: HttpHandlerConfig) -> Result<Self, HandlerError> {
        let config_error = |message: String| HandlerError::Config { handler_type: HANDLER_TYPE.into(), message };
        config.validate().map_err(|problems| config_error(problems.join("; ")))?;
        let base_url = config.parsed_base_url().map_err(config_error)?;
        let target = Target { base_url, allow_any_host: config.allow_any_host };

        let mut headers = HeaderMap::with_capacity(config.default_headers.len());
        for (name, value) in &config.default_headers {
            let (Ok(name), Ok(mut value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
            else {
                return Err(config_error(format!("`default_headers`: `{name}` is not a valid header")));
            };
            // Never printed by reqwest's or hyper's Debug, and never added to HPACK tables.
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let client = client::builder()
            .default_headers(headers)
            .user_agent(config.user_agent.as_str())
            .connect_timeout(config.connect_timeout())
            .pool_idle_timeout(config.pool_idle_timeout())
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .redirect(redirect_policy(&config, &target))
            .build()
            .map_err(|e| config_error(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client: RwLock::new(Some(client)),
            target,
            max_request_bytes: config.max_request_bytes.get(),
            max_response_bytes: config.max_response_bytes.get(),
            health_timeout: config.connect_timeout(),
            clock: Arc::new(SystemClock::new()),
            config,
        })
    }

    /// Reads time from `clock`: `Retry-After` dates are turned into delays against it.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The config this handler was built from.
    pub fn config(&self) -> &HttpHandlerConfig {
        &self.config
    }

    fn client(&self) -> Option<Client> {
        self.client.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn unsupported(operation: &Operation) -> HandlerError {
        HandlerError::UnsupportedOperation {
            handler_type: HANDLER_TYPE.into(),
            operation: operation.to_string(),
            supported: OPERATIONS.iter().map(|(name, ..)| (*name).to_owned()).collect(),
        }
    }
}

/// Redirects: at most `max_redirects`, and, with a `base_url` and no `allow_any_host`, only
/// within its origin (a redirect must not walk around the SSRF rule).
fn redirect_policy(config: &HttpHandlerConfig, target: &Target) -> redirect::Policy {
    let max = config.max_redirects;
    if max == 0 {
        return redirect::Policy::none();
    }
    let origin: Option<Origin> = match (&target.base_url, target.allow_any_host) {
        (Some(base), false) => Some(base.origin()),
        _ => None,
    };
    redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > max {
            attempt.error(RedirectRefused(format!("more than {max} redirects (max_redirects)")))
        } else if origin.as_ref().is_some_and(|o| *o != attempt.url().origin()) {
            let to = display_url(attempt.url());
            attempt.error(RedirectRefused(format!("redirect to `{to}` leaves base_url's origin")))
        } else {
            attempt.follow()
        }
    })
}

#[derive(Debug)]
struct RedirectRefused(String);

impl fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RedirectRefused {}

#[async_trait]
impl Handler for HttpHandler {
    fn handler_type(&self) -> &str {
        HANDLER_TYPE
    }

    fn describe(&self) -> HandlerDescription {
        HandlerDescription::new(HANDLER_TYPE, &OPERATIONS.map(|(name, _, description)| (name, description)))
    }

    async fn execute(&self, _ctx: &CallContext, operation: &Operation, payload: &Value) -> Result<Value, HandlerError> {
        // Accept `http.get` and a bare `get`, as the local handler does.
        let verb = operation.as_str().strip_prefix("http.").unwrap_or(operation.as_str());
        let Some((name, method, _)) = OPERATIONS.iter().find(|(name, ..)| name.strip_prefix("http.") == Some(verb))
        else {
            return Err(Self::unsupported(operation));
        };
        let Some(client) = self.client() else {
            return Err(permanent(format!("{name}: the http handler is shut down")));
        };
        let request = HttpRequest::from_payload(method.clone(), payload, &self.target, self.max_request_bytes)?;
        let what = format!("{name} {}", display_url(&request.url));
        let timeout = request.timeout;

        let mut builder = client.request(request.method, request.url).headers(request.headers);
        if let Some(t) = timeout {
            builder = builder.timeout(t);
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let response = builder.send().await.map_err(|e| transport_error(&what, e, timeout))?;

        let status = response.status();
        if class_of(status).is_some() {
            return Err(status_error(&what, response, self.clock.now()).await);
        }
        let headers = headers_to_json(response.headers());
        let is_json =
            response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(is_json_content_type);
        let body = read_limited(response, self.max_response_bytes, Truncate::No)
            .await
            .map_err(|e| e.into_handler_error(&what, timeout))?;

        let mut out = Map::with_capacity(3);
        out.insert("status".into(), Value::from(status.as_u16()));
        out.insert("headers".into(), Value::Object(headers));
        // A body that claims JSON but does not parse is returned as text rather than lost.
        match is_json.then(|| serde_json::from_slice::<Value>(&body).ok()).flatten() {
            Some(json) => out.insert("json".into(), json),
            None => out.insert("body".into(), Value::String(String::from_utf8_lossy(&body).into_owned())),
        };
        Ok(Value::Object(out))
    }

    /// With a `base_url`: a `HEAD` to it; any HTTP answer (even a 404) proves the server is
    /// reachable. Without one there is no fixed peer to check.
    async fn health(&self) -> HandlerHealth {
        let Some(client) = self.client() else {
            return HandlerHealth { healthy: false, detail: "shut down".into() };
        };
        let Some(base) = &self.target.base_url else {
            return HandlerHealth {
                healthy: true,
                detail: "no base_url configured; connectivity is checked by each call".into(),
            };
        };
        let shown = display_url(base);
        match client.head(Url::clone(base)).timeout(self.health_timeout).send().await {
            Ok(response) => {
                HandlerHealth { healthy: true, detail: format!("{shown} answered {}", response.status().as_u16()) }
            }
            Err(e) => HandlerHealth {
                healthy: false,
                detail: transport_error(&format!("HEAD {shown}"), e, Some(self.health_timeout)).to_string(),
            },
        }
    }

    async fn shutdown(&self) {
        // Dropping the last client closes the pooled connections; in-flight calls hold their own clone.
        let client = self.client.write().unwrap_or_else(PoisonError::into_inner).take();
        if client.is_none() {
            tracing::debug!(handler_type = HANDLER_TYPE, "Shutdown called again; nothing left to release.");
        }
    }
}

impl fmt::Debug for HttpHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The config's Debug prints header names only.
        f.debug_struct("HttpHandler").field("config", &self.config).finish_non_exhaustive()
    }
}

/// `application/json`, or any `+json` type (`application/problem+json`).
fn is_json_content_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.rsplit_once('+').is_some_and(|(_, suffix)| suffix.eq_ignore_ascii_case("json"))
}

/// Response headers as JSON: a string per name, an array of strings for a repeated name (`set-cookie`).
fn headers_to_json(headers: &HeaderMap) -> Map<String, Value> {
    let mut out = Map::with_capacity(headers.keys_len());
    for name in headers.keys() {
        let mut values =
            headers.get_all(name).iter().map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()));
        let value = match (values.next(), values.next()) {
            (Some(one), None) => one,
            (Some(first), Some(second)) => Value::Array([first, second].into_iter().chain(values).collect()),
            (None, _) => continue,
        };
        out.insert(name.as_str().to_owned(), value);
    }
    out
}

#[cfg(test)]
pub(super) fn json_content_type(value: &str) -> bool {
    is_json_content_type(value)
}
