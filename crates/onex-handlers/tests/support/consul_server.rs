//! `ConsulTestServer`: a test double of a Consul agent's HTTP API.
//!
//! No Consul server can be installed where onex is tested, so the consul
//! handler is tested against this: an in-memory catalog behind exactly the
//! endpoints the handler uses, answering with the JSON shapes, status codes
//! and messages Consul's HTTP API documentation gives:
//!
//! | endpoint | answer |
//! |---|---|
//! | `PUT /v1/agent/service/register` | 200, empty; 400 `Request decode failed: …`, `Missing service name`, `Invalid check: …` |
//! | `PUT /v1/agent/service/deregister/:id` | 200, empty; 404 `Unknown service ID "…"` |
//! | `GET /v1/catalog/services` | `{"consul": [], "<name>": [tags…]}` |
//! | `GET /v1/catalog/service/:name` `?tag` | `[{ID, Node, Address, Datacenter, ServiceID, ServiceName, ServiceAddress, ServicePort, ServiceTags, ServiceMeta}]`, `[]` when unknown |
//! | `GET /v1/health/service/:name` `?passing` | `[{Node: {…}, Service: {ID, Service, Tags, Address, Port, Meta}, Checks: [{CheckID, Name, Status, Output, ServiceID, ServiceName}]}]` |
//! | `GET /v1/status/leader` | `"127.0.0.1:8300"`, or `""` without a leader |
//! | any, `?dc=` other than `dc1` | 500 `No path to datacenter` |
//! | any, ACLs on and a wrong or missing `X-Consul-Token` | 403 `ACL not found` |
//!
//! As in Consul, a new service check starts `critical` until the agent runs it;
//! tests play the agent with [`ConsulTestServer::set_check_status`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Value, json};

use super::TestServer;

const NODE: &str = "test-node";
const NODE_ID: &str = "40e4a748-2192-161a-0510-9bf59fe950b5";
const NODE_ADDRESS: &str = "127.0.0.1";
const DATACENTER: &str = "dc1";

#[derive(Debug, Clone)]
pub struct Service {
    pub id: String,
    pub name: String,
    pub address: String,
    pub port: u16,
    pub tags: Vec<String>,
    pub meta: BTreeMap<String, String>,
    pub check_status: Option<String>,
}

/// One request the double received.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub token: Option<String>,
    pub body: Option<Value>,
}

#[derive(Debug, Default)]
struct Agent {
    services: BTreeMap<String, Service>,
    leader: String,
    acl_token: Option<String>,
    requests: Vec<SeenRequest>,
}

type Shared = Arc<Mutex<Agent>>;

/// A Consul agent double on a loopback port.
pub struct ConsulTestServer {
    server: TestServer,
    agent: Shared,
}

impl ConsulTestServer {
    /// An agent with a leader and ACLs off.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// An agent that accepts only requests carrying `token` in `X-Consul-Token`.
    pub async fn start_with_acl_token(token: &str) -> Self {
        Self::start_with(Some(token.to_owned())).await
    }

    async fn start_with(acl_token: Option<String>) -> Self {
        let agent = Arc::new(Mutex::new(Agent { leader: "127.0.0.1:8300".into(), acl_token, ..Agent::default() }));
        let app = Router::new()
            .route("/v1/agent/service/register", put(register))
            .route("/v1/agent/service/deregister/{id}", put(deregister))
            .route("/v1/catalog/services", get(catalog_services))
            .route("/v1/catalog/service/{name}", get(catalog_service))
            .route("/v1/health/service/{name}", get(health_service))
            .route("/v1/status/leader", get(status_leader))
            .with_state(Arc::clone(&agent));
        Self { server: TestServer::start(app).await, agent }
    }

    /// The agent's address, as the handler's `address` config.
    pub fn address(&self) -> String {
        self.server.url("")
    }

    pub fn services(&self) -> BTreeMap<String, Service> {
        self.agent.lock().unwrap().services.clone()
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        self.agent.lock().unwrap().requests.clone()
    }

    /// Plays the agent running a service's check.
    pub fn set_check_status(&self, service_id: &str, status: &str) {
        let mut agent = self.agent.lock().unwrap();
        let service = agent.services.get_mut(service_id).expect("a registered service");
        service.check_status = Some(status.to_owned());
    }

    /// Simulates a cluster that lost its leader.
    pub fn lose_leader(&self) {
        self.agent.lock().unwrap().leader.clear();
    }
}

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (status, [("content-type", "text/plain; charset=utf-8")], message.into()).into_response()
}

/// Whether an endpoint needs an ACL token (Consul's `/v1/status/*` does not).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Acl {
    Required,
    Exempt,
}

/// Records the request and applies the ACL and datacenter rules every endpoint shares.
#[allow(clippy::result_large_err, reason = "the error is the response the endpoint returns at once")]
fn admit(
    agent: &mut Agent,
    acl: Acl,
    method: &str,
    path: String,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: Option<Value>,
) -> Result<(), Response> {
    let token = headers.get("x-consul-token").and_then(|v| v.to_str().ok()).map(str::to_owned);
    agent.requests.push(SeenRequest { method: method.into(), path, token: token.clone(), body });
    if let (Some(required), Acl::Required) = (&agent.acl_token, acl) {
        if token.as_deref() != Some(required.as_str()) {
            return Err(text(StatusCode::FORBIDDEN, "ACL not found"));
        }
    }
    if query.get("dc").is_some_and(|dc| dc != DATACENTER) {
        return Err(text(StatusCode::INTERNAL_SERVER_ERROR, "No path to datacenter"));
    }
    Ok(())
}

async fn register(
    State(agent): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let mut agent = agent.lock().unwrap();
    if let Err(r) = admit(
        &mut agent,
        Acl::Required,
        "PUT",
        "/v1/agent/service/register".into(),
        &headers,
        &query,
        parsed.as_ref().ok().cloned(),
    ) {
        return r;
    }
    let definition = match parsed {
        Ok(Value::Object(d)) => d,
        Ok(_) => return text(StatusCode::BAD_REQUEST, "Request decode failed: expected an object"),
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("Request decode failed: {e}")),
    };
    let field = |name: &str| definition.get(name).and_then(Value::as_str).unwrap_or("").to_owned();
    let name = field("Name");
    if name.is_empty() {
        return text(StatusCode::BAD_REQUEST, "Missing service name");
    }
    let check_status = match definition.get("Check") {
        None | Some(Value::Null) => None,
        Some(check) => {
            let has_target = check.get("HTTP").is_some() || check.get("TCP").is_some();
            let interval = check.get("Interval").and_then(Value::as_str).unwrap_or("");
            if has_target && (interval.is_empty() || interval.starts_with('0')) {
                return text(
                    StatusCode::BAD_REQUEST,
                    "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks",
                );
            }
            // Consul: checks start critical until they first pass.
            Some("critical".to_owned())
        }
    };
    let id = match field("ID") {
        id if id.is_empty() => name.clone(),
        id => id,
    };
    let tags = definition
        .get("Tags")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let meta = definition
        .get("Meta")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
        .unwrap_or_default();
    let port = definition.get("Port").and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok()).unwrap_or(0);
    let service = Service { id: id.clone(), name, address: field("Address"), port, tags, meta, check_status };
    agent.services.insert(id, service);
    StatusCode::OK.into_response()
}

async fn deregister(
    State(agent): State<Shared>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut agent = agent.lock().unwrap();
    if let Err(r) =
        admit(&mut agent, Acl::Required, "PUT", format!("/v1/agent/service/deregister/{id}"), &headers, &query, None)
    {
        return r;
    }
    match agent.services.remove(&id) {
        Some(_) => StatusCode::OK.into_response(),
        None => text(
            StatusCode::NOT_FOUND,
            format!("Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."),
        ),
    }
}

async fn catalog_services(
    State(agent): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut agent = agent.lock().unwrap();
    if let Err(r) = admit(&mut agent, Acl::Required, "GET", "/v1/catalog/services".into(), &headers, &query, None) {
        return r;
    }
    // Consul lists itself as a service.
    let mut by_name: BTreeMap<String, BTreeSet<String>> = BTreeMap::from([("consul".into(), BTreeSet::new())]);
    for s in agent.services.values() {
        by_name.entry(s.name.clone()).or_default().extend(s.tags.iter().cloned());
    }
    axum::Json(by_name).into_response()
}

async fn catalog_service(
    State(agent): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut agent = agent.lock().unwrap();
    if let Err(r) =
        admit(&mut agent, Acl::Required, "GET", format!("/v1/catalog/service/{name}"), &headers, &query, None)
    {
        return r;
    }
    let entries: Vec<Value> = agent
        .services
        .values()
        .filter(|s| s.name == name)
        .filter(|s| query.get("tag").is_none_or(|tag| s.tags.contains(tag)))
        .map(|s| {
            json!({
                "ID": NODE_ID, "Node": NODE, "Address": NODE_ADDRESS, "Datacenter": DATACENTER,
                "TaggedAddresses": {"lan": NODE_ADDRESS, "wan": NODE_ADDRESS}, "NodeMeta": {},
                "ServiceID": s.id, "ServiceName": s.name, "ServiceAddress": s.address, "ServicePort": s.port,
                "ServiceTags": s.tags, "ServiceMeta": s.meta, "ServiceEnableTagOverride": false,
                "CreateIndex": 10, "ModifyIndex": 10,
            })
        })
        .collect();
    axum::Json(entries).into_response()
}

async fn health_service(
    State(agent): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut agent = agent.lock().unwrap();
    if let Err(r) =
        admit(&mut agent, Acl::Required, "GET", format!("/v1/health/service/{name}"), &headers, &query, None)
    {
        return r;
    }
    let passing_only = query.contains_key("passing");
    let entries: Vec<Value> = agent
        .services
        .values()
        .filter(|s| s.name == name)
        .filter(|s| !passing_only || s.check_status.as_deref().is_none_or(|st| st == "passing"))
        .map(|s| {
            let mut checks = vec![json!({
                "Node": NODE, "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing",
                "Notes": "", "Output": "Agent alive and reachable", "ServiceID": "", "ServiceName": "",
            })];
            if let Some(status) = &s.check_status {
                checks.push(json!({
                    "Node": NODE, "CheckID": format!("service:{}", s.id), "Name": format!("Service '{}' check", s.name),
                    "Status": status, "Notes": "", "Output": "", "ServiceID": s.id, "ServiceName": s.name,
                }));
            }
            json!({
                "Node": {"ID": NODE_ID, "Node": NODE, "Address": NODE_ADDRESS, "Datacenter": DATACENTER},
                "Service": {"ID": s.id, "Service": s.name, "Tags": s.tags, "Address": s.address, "Port": s.port, "Meta": s.meta},
                "Checks": checks,
            })
        })
        .collect();
    axum::Json(entries).into_response()
}

async fn status_leader(
    State(agent): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut agent = agent.lock().unwrap();
    if let Err(r) = admit(&mut agent, Acl::Exempt, "GET", "/v1/status/leader".into(), &headers, &query, None) {
        return r;
    }
    axum::Json(agent.leader.clone()).into_response()
}
