//! OTLP export over HTTP/protobuf (the `otlp` feature).
//!
//! The exporter posts batches from the SDK's batch thread, which has no
//! async runtime. Rather than pull in a second HTTP stack (opentelemetry-otlp's
//! own clients are reqwest 0.13 or tonic), [`OtlpHttpClient`] drives the
//! reqwest client the handlers already use on a small current-thread tokio
//! runtime of its own, created on that thread at the first export.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithHttpConfig};

/// How long one export request may take before it is abandoned
/// (OpenTelemetry's default `OTEL_EXPORTER_OTLP_TIMEOUT`).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the span exporter for `endpoint`, the collector's base URL
/// (`http://localhost:4318`): spans go to `{endpoint}/v1/traces`, unless
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` names the full URL.
pub(super) fn span_exporter(endpoint: &str) -> Result<SpanExporter, String> {
    let client = onex_handlers::http::client_builder().timeout(EXPORT_TIMEOUT).build().map_err(|e| e.to_string())?;
    let mut builder = SpanExporter::builder()
        .with_http()
        .with_http_client(OtlpHttpClient { client, runtime: OnceLock::new() })
        .with_timeout(EXPORT_TIMEOUT);
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
}

#[async_trait::async_trait]
impl HttpClient for OtlpHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let runtime = self
            .runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| HttpError::from(e.clone()))?;
        let request = reqwest::Request::try_from(request)?;
        // Blocking is fine here: the SDK calls exporters on its own batch thread.
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
