//! The `consul.*` payloads, and the JSON of Consul's HTTP API they map to.
//!
//! Payloads are snake_case and strict (an unknown key is a permanent error,
//! as everywhere in onex); Consul's JSON is PascalCase and read leniently
//! (only the fields used here, unknown ones ignored), because Consul adds
//! fields in minor releases. Shapes follow Consul's API documentation:
//! `/v1/agent/service/register` (the service definition), `/v1/catalog/service/:name`
//! (catalog entries) and `/v1/health/service/:name` (service health entries).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

// --- payloads ---

/// `consul.register`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RegisterPayload {
    pub name: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    #[serde(default)]
    pub check: Option<CheckPayload>,
}

/// The health check of `consul.register`: one of `http` or `tcp`, run every `interval`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckPayload {
    #[serde(default)]
    pub http: Option<String>,
    #[serde(default)]
    pub tcp: Option<String>,
    /// A Go duration, e.g. `10s`.
    pub interval: String,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub deregister_critical_service_after: Option<String>,
}

/// `consul.deregister`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeregisterPayload {
    pub id: String,
}

/// `consul.list_services`: no fields (an empty object or null).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListPayload {}

/// `consul.get_service`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GetServicePayload {
    pub name: String,
    /// Only instances with this tag.
    #[serde(default)]
    pub tag: Option<String>,
}

/// `consul.health`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HealthPayload {
    pub name: String,
    /// Only instances whose checks all pass.
    #[serde(default)]
    pub passing: bool,
}

// --- Consul's JSON ---

/// Body of `PUT /v1/agent/service/register`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ServiceDefinition<'a> {
    pub name: &'a str,
    #[serde(rename = "ID", skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub tags: &'a [String],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckDefinition<'a>>,
}

/// The `Check` of a service definition.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CheckDefinition<'a> {
    #[serde(rename = "HTTP", skip_serializing_if = "Option::is_none")]
    pub http: Option<&'a str>,
    #[serde(rename = "TCP", skip_serializing_if = "Option::is_none")]
    pub tcp: Option<&'a str>,
    pub interval: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deregister_critical_service_after: Option<&'a str>,
}

/// One entry of `GET /v1/catalog/service/:name`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CatalogEntry {
    pub node: String,
    /// The node's address, used when the service has none of its own.
    pub address: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    #[serde(default)]
    pub service_address: String,
    #[serde(default)]
    pub service_port: u16,
    #[serde(default)]
    pub service_tags: Option<Vec<String>>,
    #[serde(default)]
    pub service_meta: Option<BTreeMap<String, String>>,
}

impl CatalogEntry {
    pub(super) fn to_json(&self) -> Value {
        instance(
            &self.service_id,
            &self.node,
            &self.service_address,
            &self.address,
            self.service_port,
            &self.service_tags,
            &self.service_meta,
        )
    }
}

/// One entry of `GET /v1/health/service/:name`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct HealthEntry {
    pub node: HealthNode,
    pub service: HealthService,
    #[serde(default)]
    pub checks: Vec<HealthCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct HealthNode {
    pub node: String,
    pub address: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct HealthService {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub meta: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct HealthCheck {
    #[serde(rename = "CheckID")]
    pub check_id: String,
    #[serde(default)]
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub output: String,
}

impl HealthEntry {
    /// The instance with its checks and their aggregate status: `critical` if any check is
    /// critical (or in maintenance), else `warning` if any warns, else `passing` (the order
    /// Consul's own `AggregatedStatus` uses).
    pub(super) fn to_json(&self) -> Value {
        let status = aggregate(self.checks.iter().map(|c| c.status.as_str()));
        let checks: Vec<Value> = self
            .checks
            .iter()
            .map(|c| json!({"id": c.check_id, "name": c.name, "status": c.status, "output": c.output}))
            .collect();
        let s = &self.service;
        let mut out = instance(&s.id, &self.node.node, &s.address, &self.node.address, s.port, &s.tags, &s.meta);
        if let Value::Object(map) = &mut out {
            map.insert("status".into(), Value::from(status));
            map.insert("checks".into(), Value::Array(checks));
        }
        out
    }
}

fn aggregate<'a>(statuses: impl Iterator<Item = &'a str>) -> &'static str {
    let mut worst = "passing";
    for status in statuses {
        match status {
            "critical" | "maintenance" => return "critical",
            "warning" => worst = "warning",
            _ => {}
        }
    }
    worst
}

/// One service instance, as every `consul.*` result writes it.
fn instance(
    id: &str,
    node: &str,
    service_address: &str,
    node_address: &str,
    port: u16,
    tags: &Option<Vec<String>>,
    meta: &Option<BTreeMap<String, String>>,
) -> Value {
    // Consul leaves ServiceAddress empty when the service runs on the node's address.
    let address = if service_address.is_empty() { node_address } else { service_address };
    json!({
        "id": id,
        "node": node,
        "address": address,
        "port": port,
        "tags": tags.clone().unwrap_or_default(),
        "meta": meta.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
pub(super) fn aggregate_status(statuses: &[&str]) -> &'static str {
    aggregate(statuses.iter().copied())
}
