//! [`ConsulHandler`]: service registration and discovery through Consul's HTTP API.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use onex_core::{Clock, Operation, SystemClock};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use url::Url;

use super::api::{
    CatalogEntry, CheckDefinition, DeregisterPayload, GetServicePayload, HealthEntry, HealthPayload, ListPayload,
    RegisterPayload, ServiceDefinition,
};
use super::config::ConsulHandlerConfig;
use crate::error::HandlerError;
use crate::handler::{CallContext, Handler, HandlerDescription, HandlerHealth, OperationInfo};
use crate::http::client_builder;
use crate::http::response::{Truncate, class_of, permanent, read_limited, status_error, transport_error};

const HANDLER_TYPE: &str = "consul";

/// The header Consul reads the ACL token from.
const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-consul-token");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Register,
    Deregister,
    ListServices,
    GetService,
    Health,
}

/// Operation names, each with the seed 000 name (`HandlerConsul`) accepted as an alias.
const OPERATIONS: [(&str, &str, Op, &str); 5] = [
    (
        "consul.register",
        "register_service",
        Op::Register,
        "Registers a service with the local agent; payload {name, id?, address?, port?, tags?, meta?, check?: {http|tcp, interval, timeout?, deregister_critical_service_after?}}.",
    ),
    (
        "consul.deregister",
        "deregister_service",
        Op::Deregister,
        "Deregisters a service instance by id; payload {id}. An unknown id answers deregistered: false.",
    ),
    ("consul.list_services", "list_services", Op::ListServices, "Lists the services of the catalog with their tags."),
    (
        "consul.get_service",
        "get_service",
        Op::GetService,
        "Lists the instances of a service from the catalog; payload {name, tag?}.",
    ),
    (
        "consul.health",
        "health_check_service",
        Op::Health,
        "Lists the instances of a service with their checks; payload {name, passing?}.",
    ),
];

/// Registers, deregisters and discovers services through a Consul agent.
///
/// Tested against `ConsulTestServer`, a test double implementing the endpoints
/// used here as Consul's HTTP API documentation describes them, because no
/// Consul server can be installed in this project's CI.
pub struct ConsulHandler {
    /// `None` once shut down.
    client: RwLock<Option<Client>>,
    address: Url,
    datacenter: Option<String>,
    max_response_bytes: u64,
    clock: Arc<dyn Clock>,
    config: ConsulHandlerConfig,
}

impl ConsulHandler {
    /// The handler for a binding's `config` map: the one call the runtime's wiring makes.
    ///
    /// ```
    /// use onex_handlers::{ConsulHandler, Handler};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = serde_json::json!({"address": "http://127.0.0.1:8500", "datacenter": "dc1"});
    /// let handler = ConsulHandler::from_config(config.as_object().ok_or("not a map")?)?;
    /// assert!(handler.describe().supports("consul.register"));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`HandlerError::Config`] listing every problem of the config.
    pub fn from_config(map: &Map<String, Value>) -> Result<Self, HandlerError> {
        let config = ConsulHandlerConfig::from_map(map).map_err(|problems| config_error(problems.join("; ")))?;
        Self::new(config)
    }

    /// The handler for a parsed config.
    ///
    /// # Errors
    /// [`HandlerError::Config`] when the config is invalid or the client cannot be built.
    pub fn new(config: ConsulHandlerConfig) -> Result<Self, HandlerError> {
        config.validate().map_err(|problems| config_error(problems.join("; ")))?;
        let address = config.parsed_address().map_err(config_error)?;
        let mut headers = HeaderMap::new();
        if let Some(token) = &config.token {
            let mut value =
                HeaderValue::from_str(token).map_err(|_| config_error("`token`: not a valid header value".into()))?;
            value.set_sensitive(true);
            headers.insert(TOKEN_HEADER, value);
        }
        let client = client_builder()
            .default_headers(headers)
            .user_agent(concat!("onex/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.connect_timeout())
            // The agent API does not redirect; a redirect would be a misconfigured proxy.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| config_error(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client: RwLock::new(Some(client)),
            address,
            datacenter: config.datacenter.clone(),
            max_response_bytes: config.max_response_bytes.get(),
            clock: Arc::new(SystemClock::new()),
            config,
        })
    }

    /// Reads time from `clock` (for `Retry-After` dates).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The config this handler was built from.
    pub fn config(&self) -> &ConsulHandlerConfig {
        &self.config
    }

    fn client(&self) -> Option<Client> {
        self.client.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// `address` + `/v1/...` segments, each percent-encoded (a service id may hold any character).
    fn endpoint(&self, segments: &[&str], with_dc: bool) -> Url {
        let mut url = self.address.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("v1").extend(segments);
        }
        if with_dc {
            if let Some(dc) = &self.datacenter {
                url.query_pairs_mut().append_pair("dc", dc);
            }
        }
        url
    }

    /// Sends one request; `Ok(None)` for a 404 (the caller decides what absence means).
    async fn send(
        &self,
        operation: &str,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<Option<bytes::Bytes>, HandlerError> {
        let Some(client) = self.client() else {
            return Err(permanent(format!("{operation}: the consul handler is shut down")));
        };
        let what = format!("{operation} {}", crate::http::response::path_of(&url));
        let mut request = client.request(method, url);
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        let response = request.send().await.map_err(|e| transport_error(&what, e, None))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if class_of(response.status()).is_some() {
            return Err(status_error(&what, response, self.clock.now()).await);
        }
        let body = read_limited(response, self.max_response_bytes, Truncate::No)
            .await
            .map_err(|e| e.into_handler_error(&what, None))?;
        Ok(Some(body))
    }

    async fn get_json<T: DeserializeOwned>(&self, operation: &str, url: Url) -> Result<Option<T>, HandlerError> {
        let Some(body) = self.send(operation, Method::GET, url, None).await? else { return Ok(None) };
        serde_json::from_slice(&body)
            .map(Some)
            // Consul answered 2xx with a body we cannot read: a proxy in the way, or an incompatible version.
            .map_err(|e| permanent(format!("{operation}: unexpected response from consul: {e}")))
    }

    async fn register(&self, p: RegisterPayload) -> Result<Value, HandlerError> {
        const OP: &str = "consul.register";
        if p.name.trim().is_empty() {
            return Err(permanent(format!("{OP}: `name` is empty; give the service's name")));
        }
        let check = match &p.check {
            None => None,
            Some(c) => {
                if c.http.is_some() == c.tcp.is_some() {
                    return Err(permanent(format!(
                        "{OP}: `check` needs exactly one of `http` (a URL) or `tcp` (host:port)"
                    )));
                }
                Some(CheckDefinition {
                    http: c.http.as_deref(),
                    tcp: c.tcp.as_deref(),
                    interval: &c.interval,
                    timeout: c.timeout.as_deref(),
                    deregister_critical_service_after: c.deregister_critical_service_after.as_deref(),
                })
            }
        };
        let definition = ServiceDefinition {
            name: &p.name,
            id: p.id.as_deref(),
            address: p.address.as_deref(),
            port: p.port,
            tags: &p.tags,
            meta: &p.meta,
            check,
        };
        let body = serde_json::to_vec(&definition)
            .map_err(|e| permanent(format!("{OP}: cannot encode the service definition: {e}")))?;
        let url = self.endpoint(&["agent", "service", "register"], false);
        if self.send(OP, Method::PUT, url, Some(body)).await?.is_none() {
            return Err(permanent(format!("{OP}: the agent has no /v1/agent/service/register endpoint (404)")));
        }
        // Consul uses the name as the id when none is given.
        let id = p.id.as_deref().unwrap_or(&p.name);
        Ok(json!({"id": id, "name": p.name, "registered": true}))
    }

    async fn deregister(&self, p: DeregisterPayload) -> Result<Value, HandlerError> {
        const OP: &str = "consul.deregister";
        let url = self.endpoint(&["agent", "service", "deregister", &p.id], false);
        // Unknown id (404) is not an error: deregistering is idempotent, so a retried call
        // whose first attempt succeeded does not fail.
        let found = self.send(OP, Method::PUT, url, None).await?.is_some();
        Ok(json!({"id": p.id, "deregistered": found}))
    }

    async fn list_services(&self) -> Result<Value, HandlerError> {
        const OP: &str = "consul.list_services";
        let url = self.endpoint(&["catalog", "services"], true);
        let services: Map<String, Value> = self.get_json(OP, url).await?.unwrap_or_default();
        let list: Vec<Value> = services
            .into_iter()
            .map(|(name, tags)| {
                let tags = if tags.is_array() { tags } else { Value::Array(Vec::new()) };
                json!({"name": name, "tags": tags})
            })
            .collect();
        Ok(json!({"services": list}))
    }

    async fn get_service(&self, p: GetServicePayload) -> Result<Value, HandlerError> {
        const OP: &str = "consul.get_service";
        let mut url = self.endpoint(&["catalog", "service", &p.name], true);
        if let Some(tag) = &p.tag {
            url.query_pairs_mut().append_pair("tag", tag);
        }
        let entries: Vec<CatalogEntry> = self.get_json(OP, url).await?.unwrap_or_default();
        let instances: Vec<Value> = entries.iter().map(CatalogEntry::to_json).collect();
        Ok(json!({"name": p.name, "instances": instances}))
    }

    async fn service_health(&self, p: HealthPayload) -> Result<Value, HandlerError> {
        const OP: &str = "consul.health";
        let mut url = self.endpoint(&["health", "service", &p.name], true);
        if p.passing {
            // Consul's documented form is a bare `?passing`.
            let query = match url.query() {
                Some(q) => format!("{q}&passing"),
                None => "passing".to_owned(),
            };
            url.set_query(Some(&query));
        }
        let entries: Vec<HealthEntry> = self.get_json(OP, url).await?.unwrap_or_default();
        let instances: Vec<Value> = entries.iter().map(HealthEntry::to_json).collect();
        Ok(json!({"name": p.name, "instances": instances}))
    }
}

fn config_error(message: String) -> HandlerError {
    HandlerError::Config { handler_type: HANDLER_TYPE.into(), message }
}

/// Deserializes a payload; `null` counts as `{}` for operations without required fields.
fn payload<T: DeserializeOwned>(operation: &str, payload: &Value) -> Result<T, HandlerError> {
    let empty = Value::Object(Map::new());
    let value = if payload.is_null() { &empty } else { payload };
    T::deserialize(value).map_err(|e| permanent(format!("invalid {operation} payload: {e}")))
}

#[async_trait]
impl Handler for ConsulHandler {
    fn handler_type(&self) -> &str {
        HANDLER_TYPE
    }

    fn describe(&self) -> HandlerDescription {
        HandlerDescription {
            handler_type: HANDLER_TYPE.into(),
            operations: OPERATIONS
                .iter()
                .map(|(name, alias, _, description)| OperationInfo {
                    name: (*name).into(),
                    description: format!("{description} Alias: `consul.{alias}`."),
                })
                .collect(),
        }
    }

    async fn execute(&self, _ctx: &CallContext, operation: &Operation, body: &Value) -> Result<Value, HandlerError> {
        let verb = operation.as_str().strip_prefix("consul.").unwrap_or(operation.as_str());
        let found =
            OPERATIONS.iter().find(|(name, alias, ..)| name.strip_prefix("consul.") == Some(verb) || *alias == verb);
        let Some((name, _, op, _)) = found else {
            return Err(HandlerError::UnsupportedOperation {
                handler_type: HANDLER_TYPE.into(),
                operation: operation.to_string(),
                supported: OPERATIONS.iter().map(|(name, ..)| (*name).to_owned()).collect(),
            });
        };
        match op {
            Op::Register => self.register(payload(name, body)?).await,
            Op::Deregister => self.deregister(payload(name, body)?).await,
            Op::ListServices => {
                let ListPayload {} = payload(name, body)?;
                self.list_services().await
            }
            Op::GetService => self.get_service(payload(name, body)?).await,
            Op::Health => self.service_health(payload(name, body)?).await,
        }
    }

    /// `GET /v1/status/leader`: healthy when the agent answers and the cluster has a leader
    /// (an agent without a leader cannot serve catalog writes).
    async fn health(&self) -> HandlerHealth {
        let url = self.endpoint(&["status", "leader"], false);
        match self.get_json::<String>("consul.status.leader", url).await {
            Ok(Some(leader)) if !leader.is_empty() => {
                HandlerHealth { healthy: true, detail: format!("consul leader is {leader}") }
            }
            Ok(_) => HandlerHealth { healthy: false, detail: "consul has no leader".into() },
            Err(e) => HandlerHealth { healthy: false, detail: e.to_string() },
        }
    }

    async fn shutdown(&self) {
        let client = self.client.write().unwrap_or_else(PoisonError::into_inner).take();
        if client.is_none() {
            tracing::debug!(handler_type = HANDLER_TYPE, "Shutdown called again; nothing left to release.");
        }
    }
}

impl fmt::Debug for ConsulHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The config's Debug redacts the token.
        f.debug_struct("ConsulHandler").field("config", &self.config).finish_non_exhaustive()
    }
}

/// For the unit tests: the URL an operation would call.
#[cfg(test)]
pub(super) fn endpoint_for(handler: &ConsulHandler, segments: &[&str], with_dc: bool) -> Url {
    handler.endpoint(segments, with_dc)
}

#[cfg(test)]
pub(super) fn parse_payload<T: DeserializeOwned>(operation: &str, body: &Value) -> Result<T, HandlerError> {
    payload(operation, body)
}
