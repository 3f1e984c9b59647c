//! Classifying PostgreSQL failures.
//!
//! The class decides whether the resilience stack retries: a lost
//! connection, an exhausted pool or a serialization failure may succeed on
//! the next attempt (transient); a syntax error or a constraint violation
//! never will (permanent), and a unique violation is a `conflict` (the
//! caller's view of the data is stale). Messages carry PostgreSQL's own
//! message, SQLSTATE and constraint name, never the error's `DETAIL` (which
//! quotes row values) and never the connection string.

use std::error::Error as _;

use deadpool_postgres::{PoolError, TimeoutType};
use onex_core::ErrorClass;
use tokio_postgres::error::SqlState;

use crate::error::HandlerError;

/// A failure of a statement (or of getting the connection for it).
pub(crate) fn from_pg(e: &tokio_postgres::Error) -> HandlerError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let mut message = format!("postgres error {}: {}", code.code(), db.message());
        if let Some(c) = db.constraint() {
            message.push_str(&format!(" (constraint `{c}`)"));
        }
        if let Some(hint) = db.hint() {
            message.push_str(&format!("; hint: {hint}"));
        }
        return HandlerError::Failed { class: classify_sqlstate(code), message };
    }
    // Not from the server: the connection (io, closed, timeout, tls) or the client library.
    let detail = e.source().map_or_else(String::new, |s| format!(": {s}"));
    let class = if e.is_closed() || e.source().is_some_and(|s| s.is::<std::io::Error>()) || is_connect_failure(e) {
        ErrorClass::Transient
    } else {
        ErrorClass::Permanent
    };
    HandlerError::Failed { class, message: format!("postgres: {e}{detail}") }
}

/// Whether the connection that saw `e` is unusable: closed, an io failure, or the server
/// ending the session (SQLSTATE class 08, or 57P01..57P03 shutdown).
pub(crate) fn connection_lost(e: &tokio_postgres::Error) -> bool {
    if let Some(code) = e.code() {
        let c = code.code();
        return c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03");
    }
    e.is_closed() || e.source().is_some_and(|s| s.is::<std::io::Error>())
}

fn is_connect_failure(e: &tokio_postgres::Error) -> bool {
    // tokio-postgres exposes no kind accessor; these are its Display texts for connect-time failures.
    let text = e.to_string();
    text == "error connecting to server"
        || text == "timeout waiting for server"
        || text == "unexpected message from server"
}

/// Transient: connection exceptions (08), serialization failure and deadlock (40001, 40P01),
/// insufficient resources (53), operator intervention (57: shutdown, cancel on timeout),
/// lock not available (55P03). Conflict: unique violation (23505), exclusion violation (23P01).
/// Everything else is permanent.
pub(crate) fn classify_sqlstate(code: &SqlState) -> ErrorClass {
    let c = code.code();
    if *code == SqlState::UNIQUE_VIOLATION || *code == SqlState::EXCLUSION_VIOLATION {
        return ErrorClass::Conflict;
    }
    if c.starts_with("08")
        || c.starts_with("53")
        || c.starts_with("57")
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::LOCK_NOT_AVAILABLE
    {
        return ErrorClass::Transient;
    }
    ErrorClass::Permanent
}

/// A failure to get a connection from the pool within `waited`.
pub(crate) fn from_pool(e: &PoolError, pool_size: usize, waited_ms: u128) -> HandlerError {
    match e {
        PoolError::Timeout(TimeoutType::Wait) => HandlerError::Failed {
            class: ErrorClass::Transient,
            message: format!(
                "no database connection became free within {waited_ms} ms (pool_size {pool_size}); \
                 raise pool_size, lower the node's concurrency, or look for slow statements"
            ),
        },
        PoolError::Timeout(TimeoutType::Create) => HandlerError::Failed {
            class: ErrorClass::Transient,
            message: "connecting to postgres timed out (connect_timeout_ms); check the server is reachable".into(),
        },
        PoolError::Timeout(TimeoutType::Recycle) => HandlerError::Failed {
            class: ErrorClass::Transient,
            message: "checking a pooled connection timed out".into(),
        },
        PoolError::Backend(pg) => {
            let mut err = from_pg(pg);
            if let HandlerError::Failed { message, class } = &mut err {
                // Authentication and unknown-database errors come back as db errors of class 28 / 3D: permanent,
                // and worth saying where to look.
                if *class == ErrorClass::Permanent {
                    message.push_str("; check the db handler's url, user, password and database name");
                }
            }
            err
        }
        PoolError::Closed => {
            HandlerError::Failed { class: ErrorClass::Permanent, message: "the db handler has been shut down".into() }
        }
        PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => {
            HandlerError::Failed { class: ErrorClass::Permanent, message: format!("connection pool: {e}") }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_classes() {
        let cases = [
            (SqlState::UNIQUE_VIOLATION, ErrorClass::Conflict),
            (SqlState::FOREIGN_KEY_VIOLATION, ErrorClass::Permanent),
            (SqlState::SYNTAX_ERROR, ErrorClass::Permanent),
            (SqlState::UNDEFINED_TABLE, ErrorClass::Permanent),
            (SqlState::CONNECTION_FAILURE, ErrorClass::Transient),
            (SqlState::T_R_SERIALIZATION_FAILURE, ErrorClass::Transient),
            (SqlState::T_R_DEADLOCK_DETECTED, ErrorClass::Transient),
            (SqlState::ADMIN_SHUTDOWN, ErrorClass::Transient),
            (SqlState::TOO_MANY_CONNECTIONS, ErrorClass::Transient),
            (SqlState::INVALID_PASSWORD, ErrorClass::Permanent),
        ];
        for (code, class) in cases {
            assert_eq!(classify_sqlstate(&code), class, "{}", code.code());
        }
    }

    #[test]
    fn pool_wait_timeout_is_transient_and_says_what_to_change() {
        let e = from_pool(&PoolError::Timeout(TimeoutType::Wait), 5, 250);
        assert_eq!(e.class(), ErrorClass::Transient);
        assert!(e.to_string().contains("within 250 ms (pool_size 5)"), "{e}");
    }
}
