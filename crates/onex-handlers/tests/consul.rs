//! The consul handler against `ConsulTestServer`, a test double implementing
//! the Consul HTTP API endpoints the handler uses as Consul documents them
//! (no Consul server can be installed where these tests run).

#![allow(clippy::unwrap_used, reason = "helper fns of the tests: a failed set-up must fail the test")]

mod support;

use onex_core::ErrorClass;
use onex_handlers::{ConsulHandler, Handler, HandlerError};
use serde_json::{Value, json};
use support::consul_server::ConsulTestServer;
use support::{closed_port_url, ctx, map, op};

fn handler_for(server: &ConsulTestServer) -> ConsulHandler {
    ConsulHandler::from_config(&map(json!({"address": server.address()}))).unwrap()
}

async fn call(handler: &ConsulHandler, operation: &str, payload: Value) -> Result<Value, HandlerError> {
    handler.execute(&ctx(), &op(operation), &payload).await
}

#[tokio::test]
async fn register_then_get_service_lists_the_instance() {
    let server = ConsulTestServer::start().await;
    let consul = handler_for(&server);
    let registered = call(
        &consul,
        "consul.register",
        json!({"name": "web", "id": "web-1", "address": "10.0.0.5", "port": 8080, "tags": ["v1"], "meta": {"zone": "a"}}),
    )
    .await
    .unwrap();
    assert_eq!(registered, json!({"id": "web-1", "name": "web", "registered": true}));

    let found = call(&consul, "consul.get_service", json!({"name": "web"})).await.unwrap();
    assert_eq!(
        found,
        json!({"name": "web", "instances": [{
            "id": "web-1", "node": "test-node", "address": "10.0.0.5", "port": 8080, "tags": ["v1"], "meta": {"zone": "a"}
        }]})
    );
}

#[tokio::test]
async fn register_sends_consuls_pascal_case_service_definition() {
    let server = ConsulTestServer::start().await;
    let consul = handler_for(&server);
    call(
        &consul,
        "consul.register",
        json!({"name": "api", "port": 9000, "check": {"http": "http://10.0.0.5:9000/health", "interval": "10s", "timeout": "1s"}}),
    )
    .await
    .unwrap();
    let body = server.requests()[0].body.clone().unwrap();
    assert_eq!(
        body,
        json!({"Name": "api", "Port": 9000, "Check": {"HTTP": "http://10.0.0.5:9000/health", "Interval": "10s", "Timeout": "1s"}})
    );
}

#[tokio::test]
async fn register_without_id_uses_the_name_as_id() {
    let server = ConsulTestServer::start().await;
    let out = call(&handler_for(&server), "consul.register", json!({"name": "cache"})).await.unwrap();
    assert_eq!(out["id"], "cache");
    assert!(server.services().contains_key("cache"));
}

#[tokio::test]
async fn a_400_from_consul_is_a_permanent_error_quoting_consul() {
    let server = ConsulTestServer::start().await;
    let err =
        call(&handler_for(&server), "consul.register", json!({"name": "api", "check": {"tcp": "h:1", "interval": ""}}))
            .await
            .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(err.to_string().contains("400 Bad Request: Invalid check: Interval must be > 0"), "{err}");
}

#[tokio::test]
async fn a_check_needs_exactly_one_target() {
    let server = ConsulTestServer::start().await;
    let err = call(&handler_for(&server), "consul.register", json!({"name": "api", "check": {"interval": "5s"}}))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(server.requests().is_empty(), "refused before calling consul");
}

#[tokio::test]
async fn deregister_removes_the_instance() {
    let server = ConsulTestServer::start().await;
    let consul = handler_for(&server);
    call(&consul, "consul.register", json!({"name": "web", "id": "web-1"})).await.unwrap();
    let out = call(&consul, "consul.deregister", json!({"id": "web-1"})).await.unwrap();
    assert_eq!(out, json!({"id": "web-1", "deregistered": true}));
    assert!(server.services().is_empty());
}

#[tokio::test]
async fn deregistering_an_unknown_id_succeeds_with_deregistered_false() {
    let server = ConsulTestServer::start().await;
    let out = call(&handler_for(&server), "consul.deregister", json!({"id": "ghost"})).await.unwrap();
    assert_eq!(out, json!({"id": "ghost", "deregistered": false}));
}

#[tokio::test]
async fn list_services_returns_every_service_with_its_tags() {
    let server = ConsulTestServer::start().await;
    let consul = handler_for(&server);
    call(&consul, "consul.register", json!({"name": "web", "id": "web-1", "tags": ["v1"]})).await.unwrap();
    call(&consul, "consul.register", json!({"name": "web", "id": "web-2", "tags": ["v2"]})).await.unwrap();
    let out = call(&consul, "consul.list_services", Value::Null).await.unwrap();
    assert_eq!(out, json!({"services": [{"name": "consul", "tags": []}, {"name": "web", "tags": ["v1", "v2"]}]}));
}

#[tokio::test]
async fn get_service_filters_by_tag() {
    let server = ConsulTestServer::start().await;
    let consul = handler_for(&server);
    call(&consul, "consul.register", json!({"name": "web", "id": "web-1", "tags": ["blue"]})).await.unwrap();
    call(&consul, "consul.register", json!({"name": "web", "id": "web-2", "tags": ["green"]})).await.unwrap();
    let out = call(&consul, "consul.get_service", json!({"name": "web", "tag": "green"})).await.unwrap();
    let ids: Vec<&str> = out["instances"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["web-2"]);
}

#[tokio::test]
async fn an_unknown_service_has_no_instances() {
    let server = ConsulTestServer::start().await;
    let out = call(&handler_for(&server), "consul.get_service", json!({"name": "nope"})).await.unwrap();
    assert_eq!(out, json!({"name": "nope", "instances": []}));
}

#[tokio::test]
async fn health_reports_each_instance_with_its_checks_and_status() {
    let server = ConsulTestServer::start().await;
    let consul = handler_for(&server);
    let check = json!({"http": "http://10.0.0.5/health", "interval": "10s"});
    call(&consul, "consul.register", json!({"name": "web", "id": "web-1", "check": check})).await.unwrap();
    call(&consul, "consul.register", json!({"name": "web", "id": "web-2", "check": check})).await.unwrap();
    server.set_check_status("web-1", "passing");

    let out = call(&consul, "consul.health", json!({"name": "web"})).await.unwrap();
    let statuses: Vec<(&str, &str)> = out["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["id"].as_str().unwrap(), i["status"].as_str().unwrap()))
        .collect();
    assert_eq!(statuses, [("web-1", "passing"), ("web-2", "critical")]);
    let checks = &out["instances"][1]["checks"];
    assert_eq!(checks[1]["id"], "service:web-2");
    assert_eq!(checks[1]["status"], "critical");
}

#[tokio::test]
async fn health_with_passing_lists_only_passing_instances() {
    let server = ConsulTestServer::start().await;
    let consul = handler_for(&server);
    let check = json!({"tcp": "10.0.0.5:80", "interval": "10s"});
    call(&consul, "consul.register", json!({"name": "web", "id": "web-1", "check": check})).await.unwrap();
    call(&consul, "consul.register", json!({"name": "web", "id": "web-2", "check": check})).await.unwrap();
    server.set_check_status("web-2", "passing");
    let out = call(&consul, "consul.health", json!({"name": "web", "passing": true})).await.unwrap();
    let ids: Vec<&str> = out["instances"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["web-2"]);
}

#[tokio::test]
async fn the_token_is_sent_as_x_consul_token() {
    let server = ConsulTestServer::start_with_acl_token("s3cr3t-token").await;
    let config = json!({"address": server.address(), "token": "s3cr3t-token"});
    let consul = ConsulHandler::from_config(&map(config)).unwrap();
    call(&consul, "consul.list_services", json!({})).await.unwrap();
    assert_eq!(server.requests()[0].token.as_deref(), Some("s3cr3t-token"));
}

#[tokio::test]
async fn a_missing_token_is_refused_by_consul_as_permanent() {
    let server = ConsulTestServer::start_with_acl_token("s3cr3t-token").await;
    let err = call(&handler_for(&server), "consul.list_services", json!({})).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(err.to_string().contains("403 Forbidden: ACL not found"), "{err}");
}

#[tokio::test]
async fn the_datacenter_is_passed_to_catalog_queries() {
    let server = ConsulTestServer::start().await;
    let config = json!({"address": server.address(), "datacenter": "dc9"});
    let consul = ConsulHandler::from_config(&map(config)).unwrap();
    let err = call(&consul, "consul.get_service", json!({"name": "web"})).await.unwrap_err();
    assert!(err.to_string().contains("No path to datacenter"), "{err}");
}

#[tokio::test]
async fn seed_operation_names_are_accepted_as_aliases() {
    let server = ConsulTestServer::start().await;
    let consul = handler_for(&server);
    call(&consul, "consul.register_service", json!({"name": "web"})).await.unwrap();
    let out = call(&consul, "consul.health_check_service", json!({"name": "web"})).await.unwrap();
    assert_eq!(out["instances"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn describe_lists_the_five_operations() {
    let server = ConsulTestServer::start().await;
    let d = handler_for(&server).describe();
    let names: Vec<&str> = d.operations.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        ["consul.register", "consul.deregister", "consul.list_services", "consul.get_service", "consul.health"]
    );
}

#[tokio::test]
async fn unknown_operations_are_refused_with_the_supported_list() {
    let server = ConsulTestServer::start().await;
    let err = call(&handler_for(&server), "consul.kv_get", json!({})).await.unwrap_err();
    assert!(matches!(err, HandlerError::UnsupportedOperation { ref supported, .. } if supported.len() == 5), "{err}");
}

#[tokio::test]
async fn health_is_healthy_when_the_cluster_has_a_leader() {
    let server = ConsulTestServer::start().await;
    let health = handler_for(&server).health().await;
    assert!(health.healthy, "{health:?}");
    assert!(health.detail.contains("127.0.0.1:8300"));
}

#[tokio::test]
async fn health_is_unhealthy_without_a_leader() {
    let server = ConsulTestServer::start().await;
    server.lose_leader();
    let health = handler_for(&server).health().await;
    assert!(!health.healthy);
    assert_eq!(health.detail, "consul has no leader");
}

#[tokio::test]
async fn an_unreachable_agent_is_unhealthy_and_calls_fail_transiently() {
    let consul = ConsulHandler::from_config(&map(json!({"address": closed_port_url().await}))).unwrap();
    assert!(!consul.health().await.healthy);
    let err = call(&consul, "consul.list_services", json!({})).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");
}

#[tokio::test]
async fn after_shutdown_calls_fail_and_health_is_down() {
    let server = ConsulTestServer::start().await;
    let consul = handler_for(&server);
    consul.shutdown().await;
    let err = call(&consul, "consul.list_services", json!({})).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(err.to_string().contains("shut down"));
    assert!(!consul.health().await.healthy);
    assert!(server.requests().is_empty());
}
