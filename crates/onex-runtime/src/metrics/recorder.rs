//! The process-wide Prometheus recorder: installed once, on first use.
//!
//! The runtime registers its handles on this recorder directly, so its own
//! metrics land here even when an embedding application installed another
//! global `metrics` recorder first. When none is installed, this one also
//! becomes the global recorder, so `metrics::counter!` anywhere in the
//! process (other crates' internal events) renders in the same text.
//!
//! Histogram samples are buffered lock-free until they are folded into their
//! buckets, which rendering does; a background thread also does it every few
//! seconds so a process nobody scrapes does not buffer without bound.

use std::sync::{Once, OnceLock};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};
use tracing::{debug, warn};

use super::catalog::{self, CATALOG, Kind};

/// Buckets of every `_seconds` histogram: 100 µs to 30 s, about three per decade.
const DURATION_BUCKETS: [f64; 17] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// How often buffered histogram samples are folded into buckets between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

const METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

static RECORDER: OnceLock<PrometheusRecorder> = OnceLock::new();

/// The recorder, built, described and installed on first call.
fn recorder() -> &'static PrometheusRecorder {
    static INSTALL: Once = Once::new();
    let recorder = RECORDER.get_or_init(build);
    INSTALL.call_once(|| install(recorder));
    recorder
}

fn build() -> PrometheusRecorder {
    let builder = PrometheusBuilder::new();
    // Only fails for an empty bucket list; a summary is then a usable fallback.
    let builder = match builder.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &DURATION_BUCKETS) {
        Ok(b) => b,
        Err(e) => {
            warn!(error = %e, "Could not set histogram buckets; durations are exported as summaries.");
            PrometheusBuilder::new()
        }
    };
    let recorder = builder.build_recorder();
    for &(name, kind, help) in CATALOG {
        let (name, help) = (KeyName::from_const_str(name), SharedString::const_str(help));
        match kind {
            Kind::Counter => recorder.describe_counter(name, None, help),
            Kind::Gauge => recorder.describe_gauge(name, None, help),
            Kind::Histogram => recorder.describe_histogram(name, None, help),
        }
    }
    let build_info = [
        Label::from_static_parts("version", env!("CARGO_PKG_VERSION")),
        Label::from_static_parts("profile", if cfg!(debug_assertions) { "debug" } else { "release" }),
        Label::from_static_parts("kafka", if cfg!(feature = "kafka") { "true" } else { "false" }),
    ];
    recorder.register_gauge(&Key::from_parts(catalog::BUILD_INFO, build_info.to_vec()), &METADATA).set(1.0);
    recorder
}

fn install(recorder: &'static PrometheusRecorder) {
    if metrics::set_global_recorder(recorder).is_err() {
        debug!("Another metrics recorder is installed; onex renders its own metrics only.");
    }
    let handle = recorder.handle();
    // Lives as long as the process, like the recorder it drains: nothing owns or joins it.
    let spawned = std::thread::Builder::new().name("onex-metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        }
    });
    if let Err(e) = spawned {
        warn!(error = %e, "Could not start the metrics upkeep thread; histogram samples are folded at scrape time only.");
    }
}

/// Renders every metric of the process in the Prometheus text format.
///
/// Values a host reports at scrape time (breaker states, bus lag) are as of
/// that host's last [`crate::RunningHost::metrics_text`]; call that to refresh them.
pub fn render() -> String {
    recorder().handle().render()
}

pub(super) fn counter(name: &'static str, labels: Vec<Label>) -> Counter {
    recorder().register_counter(&Key::from_parts(name, labels), &METADATA)
}

pub(super) fn gauge(name: &'static str, labels: Vec<Label>) -> Gauge {
    recorder().register_gauge(&Key::from_parts(name, labels), &METADATA)
}

pub(super) fn histogram(name: &'static str, labels: Vec<Label>) -> Histogram {
    recorder().register_histogram(&Key::from_parts(name, labels), &METADATA)
}

/// A label from a static name and any value (a node, handler or topic name).
pub(super) fn label(name: &'static str, value: impl Into<String>) -> Label {
    Label::new(name, value.into())
}
