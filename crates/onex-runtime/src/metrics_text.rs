//! Placeholder until the Prometheus exporter lands: the counters every host has.

use std::fmt::Write as _;

use crate::host::Shared;

pub(crate) async fn render(shared: &Shared) -> String {
    let s = shared.stats();
    let mut out = String::new();
    for (name, help, v) in [
        ("onex_envelopes_received_total", "Deliveries taken from the bus.", s.received),
        ("onex_envelopes_succeeded_total", "Success responses published.", s.succeeded),
        ("onex_envelopes_failed_total", "Error responses published.", s.failed),
        ("onex_dead_letters_total", "Dead-letter records published.", s.dead_lettered),
    ] {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n");
    }
    out
}
