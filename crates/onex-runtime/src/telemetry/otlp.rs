//! OTLP export over HTTP/protobuf (the `otlp` feature).
//!
//! The exporter posts batches from the SDK's batch thread, which has no
//! async runtime. Rather than compile a second HTTP stack (opentelemetry-otlp's
//! own clients are reqwest 0.13 or hyper, its gRPC transport is tonic),
//! [`OtlpHttpClient`] drives the reqwest client the handlers already use on a
//! small current-thread tokio runtime of its own, made on that thread at the
//! first export.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithHttpConfig};

/// How long one export may take: `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` or
/// `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds), else 10 s, as the exporter
/// itself reads them for its retry deadline.
fn export_timeout() -> Duration {
    ["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.trim().parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis)
}

/// Builds the span exporter for `endpoint`, the collector's base URL
/// (`http://localhost:4318`): spans go to `{endpoint}/v1/traces`, unless
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` names the full URL.
pub(super) fn span_exporter(endpoint: &str) -> Result<SpanExporter, String> {
    let client = onex_handlers::http::client_builder().timeout(export_timeout()).build().map_err(|e| e.to_string())?;
    let client = OtlpHttpClient { client, runtime: OnceLock::new(), failing: AtomicBool::new(false) };
    let mut builder = SpanExporter::builder().with_http().with_http_client(client);
    if std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none() {
        builder = builder.with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')));
    }
    builder.build().map_err(|e| e.to_string())
}

/// The reqwest client, run on its own runtime (see the module docs).
#[derive(Debug)]
struct OtlpHttpClient {
    client: reqwest::Client,
    runtime: OnceLock<Result<tokio::runtime::Runtime, String>>,
    /// Whether the last export failed: a collector that is down is reported
    /// once when it goes and once when it comes back, not once per batch.
    failing: AtomicBool,
}

impl OtlpHttpClient {
    async fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        // Blocking is fine on the SDK's batch thread; inside an async runtime it would
        // panic, so refuse instead (only a span processor other than the batch one could get here).
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err("the OTLP client runs on the batch span processor's thread only".into());
        }
        let runtime = self
            .runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| HttpError::from(e.clone()))?;
        let request = reqwest::Request::try_from(request)?;
        runtime.block_on(async {
            let response = self.client.execute(request).await?;
            let mut out = Response::builder().status(response.status());
            if let Some(headers) = out.headers_mut() {
                *headers = response.headers().clone();
            }
            Ok(out.body(response.bytes().await?)?)
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for OtlpHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let uri = request.uri().clone();
        let result = self.send(request).await;
        let problem = match &result {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!("HTTP status {}", response.status())),
            Err(e) => Some(e.to_string()),
        };
        match problem {
            Some(problem) if !self.failing.swap(true, Ordering::Relaxed) => {
                tracing::warn!(url = %uri, problem = %problem, "Could not export spans; dropping them until the OTLP endpoint answers.");
            }
            Some(problem) => tracing::debug!(url = %uri, problem = %problem, "Could not export spans again."),
            None if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!(url = %uri, "Exporting spans again.");
            }
            None => {}
        }
        result
    }
}
