//! The admin routes: thin handlers over [`Shared::status`](crate::host::Shared).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::auth::{self, Token};
use crate::activity::Phase;
use crate::host::Shared;
use crate::status::RuntimeStatus;

/// The dashboard: one self-contained page (no build step), polling `/api/status`.
const DASHBOARD: &str = include_str!("dashboard.html");

pub(crate) fn router(shared: Arc<Shared>, token: Option<Token>) -> Router {
    let protected = Router::new()
        .route("/api/status", get(status))
        .route("/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(token, auth::require));
    Router::new()
        .route("/health/live", get(live))
        .route("/health/startup", get(startup))
        .route("/health/ready", get(ready))
        .route("/health/handlers", get(handlers))
        .route("/", get(dashboard))
        .route("/dashboard", get(dashboard))
        .merge(protected)
        .with_state(shared)
}

async fn live() -> Response {
    axum::Json(json!({"status": "live"})).into_response()
}

async fn startup(State(shared): State<Arc<Shared>>) -> Response {
    let phase = shared.activity.phase();
    let code = if phase == Phase::Starting { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (code, axum::Json(json!({"status": phase}))).into_response()
}

async fn ready(State(shared): State<Arc<Shared>>) -> Response {
    let status = shared.status().await;
    let reasons = not_ready_reasons(&status);
    if reasons.is_empty() {
        axum::Json(json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "not_ready", "phase": status.phase, "reasons": reasons})),
        )
            .into_response()
    }
}

/// Why the host is not ready, one line each; empty when it is.
pub(crate) fn not_ready_reasons(status: &RuntimeStatus) -> Vec<String> {
    let mut reasons = Vec::new();
    match status.phase {
        Phase::Ready => {}
        Phase::Starting => reasons.push("starting: not consuming yet".to_owned()),
        Phase::Draining => reasons.push(format!("draining: shutting down, {} envelope(s) in flight", status.in_flight)),
        Phase::Stopped => reasons.push("stopped".to_owned()),
    }
    if !status.bus.ready {
        reasons.push(format!("bus: {}", status.bus.detail));
    }
    for h in status.handlers.iter().filter(|h| !h.healthy) {
        reasons.push(format!("handler `{}` ({}): {}", h.name, h.handler_type, h.detail));
    }
    reasons
}

async fn handlers(State(shared): State<Arc<Shared>>) -> Response {
    let status = shared.status().await;
    axum::Json(json!({"handlers": status.handlers})).into_response()
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.status().await).into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let text = shared.metrics_text();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

async fn dashboard() -> Html<&'static str> {
    Html(DASHBOARD)
}
