//! Every metric the runtime exports: name, type and help text, in one table.
//!
//! Names follow Prometheus conventions: `onex_` prefix, `_total` on counters
//! and only there, base units (`_seconds`). Each is described to the recorder
//! once, when it is installed, so every family renders with `# HELP` (promtool
//! treats a missing one as a problem). `docs/operations.md` (Metrics) documents
//! the same list with labels; keep the two in step.

/// What kind of metric a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

pub(crate) const BUILD_INFO: &str = "onex_build_info";
pub(crate) const ENVELOPES_IN_FLIGHT: &str = "onex_envelopes_in_flight";
pub(crate) const ENVELOPES_RECEIVED: &str = "onex_envelopes_received_total";
pub(crate) const ENVELOPES_PROCESSED: &str = "onex_envelopes_processed_total";
pub(crate) const ENVELOPES_DEAD_LETTERED: &str = "onex_envelopes_dead_lettered_total";
pub(crate) const ENVELOPES_MALFORMED: &str = "onex_envelopes_malformed_total";
pub(crate) const ENVELOPES_UNROUTABLE: &str = "onex_envelopes_unroutable_total";
pub(crate) const BUS_DELIVERIES: &str = "onex_bus_deliveries_total";
pub(crate) const BUS_RECEIVE_ERRORS: &str = "onex_bus_receive_errors_total";
pub(crate) const BUS_PUBLISH_ERRORS: &str = "onex_bus_publish_errors_total";
pub(crate) const BUS_READY: &str = "onex_bus_ready";
pub(crate) const BUS_CONSUMER_LAG: &str = "onex_bus_consumer_lag";
pub(crate) const BUS_IN_FLIGHT: &str = "onex_bus_in_flight";
pub(crate) const BUS_PARTITION_PAUSED: &str = "onex_bus_partition_paused";
pub(crate) const HANDLER_CALLS: &str = "onex_handler_calls_total";
pub(crate) const HANDLER_CALL_DURATION: &str = "onex_handler_call_duration_seconds";
pub(crate) const HANDLER_RETRIES: &str = "onex_handler_retries_total";
pub(crate) const HANDLER_TIMEOUTS: &str = "onex_handler_timeouts_total";
pub(crate) const HANDLER_DEADLINE_EXCEEDED: &str = "onex_handler_deadline_exceeded_total";
pub(crate) const RATE_LIMITED: &str = "onex_rate_limited_total";
pub(crate) const CIRCUIT_BREAKER_STATE: &str = "onex_circuit_breaker_state";
pub(crate) const CIRCUIT_BREAKER_TRANSITIONS: &str = "onex_circuit_breaker_transitions_total";
pub(crate) const CIRCUIT_BREAKER_REJECTED: &str = "onex_circuit_breaker_rejected_total";

/// Name, kind, help text.
pub(crate) const CATALOG: &[(&str, Kind, &str)] = &[
    (BUILD_INFO, Kind::Gauge, "Always 1; the labels say which onex build this is."),
    (ENVELOPES_IN_FLIGHT, Kind::Gauge, "Deliveries taken from the bus whose outcome is not yet published and acked."),
    (ENVELOPES_RECEIVED, Kind::Counter, "Envelopes routed to a node."),
    (ENVELOPES_PROCESSED, Kind::Counter, "Responses published per node, by outcome (success or error)."),
    (
        ENVELOPES_DEAD_LETTERED,
        Kind::Counter,
        "Dead-letter records published, by node and reason (no node label for envelopes that reached no node).",
    ),
    (ENVELOPES_MALFORMED, Kind::Counter, "Deliveries that are not a processable envelope (dead-lettered), by reason."),
    (ENVELOPES_UNROUTABLE, Kind::Counter, "Envelopes no hosted node answers (answered with an error response)."),
    (BUS_DELIVERIES, Kind::Counter, "Deliveries taken from the bus."),
    (BUS_RECEIVE_ERRORS, Kind::Counter, "Errors receiving from the bus (the consumer backs off and retries)."),
    (
        BUS_PUBLISH_ERRORS,
        Kind::Counter,
        "Failed attempts to publish an outcome (each is retried; the delivery stays unacked meanwhile).",
    ),
    (BUS_READY, Kind::Gauge, "1 when the event bus reports itself ready, else 0."),
    (
        BUS_CONSUMER_LAG,
        Kind::Gauge,
        "Records not yet read from a partition this process consumes (log end - position).",
    ),
    (BUS_IN_FLIGHT, Kind::Gauge, "Records read from a partition but not yet acked."),
    (BUS_PARTITION_PAUSED, Kind::Gauge, "1 while fetching from the partition is paused for backpressure, else 0."),
    (HANDLER_CALLS, Kind::Counter, "Handler calls made by EFFECT nodes, retries included in one call, by outcome."),
    (
        HANDLER_CALL_DURATION,
        Kind::Histogram,
        "Duration of a handler call made by an EFFECT node, through its whole resilience stack (retries and waits included).",
    ),
    (HANDLER_RETRIES, Kind::Counter, "Retries started by a handler binding (attempts after the first)."),
    (HANDLER_TIMEOUTS, Kind::Counter, "Attempts abandoned by a handler binding's per-attempt timeout."),
    (HANDLER_DEADLINE_EXCEEDED, Kind::Counter, "Calls ended by the envelope's deadline."),
    (RATE_LIMITED, Kind::Counter, "Calls that found no rate-limit token, by action: waited for one, or rejected."),
    (CIRCUIT_BREAKER_STATE, Kind::Gauge, "Circuit breaker state of a handler binding: 0 closed, 1 half-open, 2 open."),
    (CIRCUIT_BREAKER_TRANSITIONS, Kind::Counter, "Circuit breaker state changes, by the state entered."),
    (CIRCUIT_BREAKER_REJECTED, Kind::Counter, "Calls refused by an open (or fully probing half-open) circuit breaker."),
];
