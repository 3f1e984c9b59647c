//! Behaviour of the db handler: pooled, parameterized PostgreSQL statements.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use onex_core::{Clock, ErrorClass, Operation};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio_postgres::NoTls;

use super::config::DbHandlerConfig;
use super::{error, params, rows};
use crate::config;
use crate::error::HandlerError;
use crate::handler::{CallContext, Handler, HandlerDescription, HandlerHealth};
use crate::resilience::TokioClock;

const HANDLER_TYPE: &str = "db";

const OPERATIONS: [(&str, &str); 3] = [
    (
        "db.query",
        "Runs one statement and returns its rows. Payload `{\"sql\": \"select … where id = $1\", \"params\": [7]}`; \
         result `{\"columns\": [...], \"rows\": [{...}], \"row_count\": n}`.",
    ),
    (
        "db.execute",
        "Runs one statement and returns the rows it changed. Payload `{\"sql\", \"params\"}`; result `{\"rows_affected\": n}`.",
    ),
    (
        "db.transaction",
        "Runs statements in one transaction, all or nothing. Payload `{\"statements\": [{\"sql\", \"params\"}, ...]}`; \
         result `{\"results\": [...]}`, one per statement (rows for statements that return rows, rows_affected otherwise).",
    ),
];

/// One statement of a payload. SQL text and parameter values are separate fields and stay
/// separate all the way to the server: there is no templating, so a value cannot become SQL.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Statement {
    sql: String,
    #[serde(default)]
    params: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransactionPayload {
    statements: Vec<Statement>,
}

/// What a statement's result looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `{"columns", "rows", "row_count"}`.
    Rows,
    /// `{"rows_affected"}`.
    Affected,
    /// Rows if the statement returns any columns, else rows affected (transactions).
    Auto,
}

/// The PostgreSQL handler. Cheap to share: the pool is reference-counted.
///
/// Connections are opened lazily, on the first call (or [`Handler::health`]),
/// so building the handler never blocks and never fails on an unreachable server.
#[derive(Debug)]
pub struct DbHandler {
    pool: Pool,
    pool_size: usize,
    pool_timeout: Duration,
    clock: Arc<dyn Clock>,
    shut_down: AtomicBool,
}

impl DbHandler {
    /// Builds the handler from a binding's `config` map (secret references already resolved).
    /// This is the one call wiring makes.
    ///
    /// # Errors
    /// [`HandlerError::Config`] listing every problem of the config.
    pub fn from_config(map: &Map<String, Value>) -> Result<Self, HandlerError> {
        let cfg = DbHandlerConfig::from_map(map).map_err(|p| config_error(&config::join(&p)))?;
        Self::new(&cfg)
    }

    /// Builds the handler from a typed config.
    ///
    /// # Errors
    /// [`HandlerError::Config`] when the config is invalid.
    pub fn new(cfg: &DbHandlerConfig) -> Result<Self, HandlerError> {
        Self::with_clock(cfg, Arc::new(TokioClock::new()))
    }

    /// As [`DbHandler::new`], reading deadlines against `clock`.
    ///
    /// # Errors
    /// [`HandlerError::Config`] when the config is invalid.
    pub fn with_clock(cfg: &DbHandlerConfig, clock: Arc<dyn Clock>) -> Result<Self, HandlerError> {
        cfg.validate().map_err(|p| config_error(&config::join(&p)))?;
        let pg = cfg.pg_config().map_err(|p| config_error(&p.to_string()))?;
        // Fast recycling: a pooled client is reused unless tokio-postgres saw its connection close,
        // so a lost connection costs one failed (transient, retried) call, not a probe per call.
        let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool_size = cfg.pool_size.get();
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(cfg.pool_timeout()))
            .create_timeout(Some(cfg.connect_timeout()))
            .recycle_timeout(Some(cfg.connect_timeout()))
            .build()
            .map_err(|e| config_error(&format!("connection pool: {e}")))?;
        Ok(Self { pool, pool_size, pool_timeout: cfg.pool_timeout(), clock, shut_down: AtomicBool::new(false) })
    }

    /// Connections open now and connections in use, for diagnostics and tests.
    pub fn pool_status(&self) -> (usize, usize) {
        let s = self.pool.status();
        (s.size, s.size.saturating_sub(s.available))
    }

    /// Gets a connection, waiting at most `pool_timeout_ms` and never past the deadline.
    async fn connection(&self, ctx: &CallContext) -> Result<deadpool_postgres::Object, HandlerError> {
        let wait = match ctx.remaining(self.clock.as_ref()) {
            Some(left) if left.is_zero() => {
                return Err(HandlerError::DeadlineExceeded { deadline: ctx.deadline.unwrap_or(self.clock.now()) });
            }
            Some(left) => left.min(self.pool_timeout),
            None => self.pool_timeout,
        };
        let mut timeouts: Timeouts = self.pool.timeouts();
        timeouts.wait = Some(wait);
        self.pool.timeout_get(&timeouts).await.map_err(|e| error::from_pool(&e, self.pool_size, wait.as_millis()))
    }

    async fn run_one(&self, ctx: &CallContext, payload: &Value, shape: Shape) -> Result<Value, HandlerError> {
        let st = parse_payload::<Statement>(payload)?;
        let client = self.connection(ctx).await?;
        let result = run(&client, &st, shape).await;
        result.map_err(|f| f.into_error(client))
    }

    async fn run_transaction(&self, ctx: &CallContext, payload: &Value) -> Result<Value, HandlerError> {
        let tx_payload = parse_payload::<TransactionPayload>(payload)?;
        let mut client = self.connection(ctx).await?;
        let result = transaction(&mut client, &tx_payload).await;
        result.map_err(|f| f.into_error(client))
    }
}

/// Why a statement failed, keeping the driver error so the connection can be judged.
enum Failure {
    Pg(tokio_postgres::Error),
    /// Statement `index` of a transaction failed.
    InTransaction(usize, Box<Failure>),
    Other(HandlerError),
}

impl Failure {
    fn connection_lost(&self) -> bool {
        match self {
            Self::Pg(e) => error::connection_lost(e),
            Self::InTransaction(_, inner) => inner.connection_lost(),
            Self::Other(_) => false,
        }
    }

    /// The handler error; a connection the server dropped is taken out of the pool first, so the
    /// retry layer's next attempt gets a fresh one instead of racing tokio-postgres noticing the close.
    fn into_error(self, client: deadpool_postgres::Object) -> HandlerError {
        if self.connection_lost() {
            drop(deadpool_postgres::Object::take(client));
        }
        self.to_error()
    }

    fn to_error(&self) -> HandlerError {
        match self {
            Self::Pg(e) => error::from_pg(e),
            Self::InTransaction(i, inner) => match inner.to_error() {
                HandlerError::Failed { class, message } => {
                    HandlerError::Failed { class, message: format!("statement {i} (rolled back): {message}") }
                }
                other => other,
            },
            Self::Other(e) => e.clone(),
        }
    }
}

async fn transaction(client: &mut deadpool_postgres::Object, payload: &TransactionPayload) -> Result<Value, Failure> {
    let tx = client.transaction().await.map_err(Failure::Pg)?;
    let mut results = Vec::with_capacity(payload.statements.len());
    for (i, st) in payload.statements.iter().enumerate() {
        // On error the transaction is dropped, which rolls it back.
        let result = run(&tx, st, Shape::Auto).await.map_err(|f| Failure::InTransaction(i, Box::new(f)))?;
        results.push(result);
    }
    tx.commit().await.map_err(Failure::Pg)?;
    let mut out = Map::new();
    out.insert("results".into(), Value::Array(results));
    Ok(Value::Object(out))
}

async fn run<C: GenericClient>(client: &C, st: &Statement, shape: Shape) -> Result<Value, Failure> {
    let stmt = client.prepare_cached(&st.sql).await.map_err(Failure::Pg)?;
    let bound =
        params::bind(stmt.params(), &st.params).map_err(|m| Failure::Other(permanent(format!("bad params: {m}"))))?;
    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        bound.iter().map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
    let rows_shape = match shape {
        Shape::Rows => true,
        Shape::Affected => false,
        Shape::Auto => !stmt.columns().is_empty(),
    };
    if rows_shape {
        let rows = client.query(&stmt, &refs).await.map_err(Failure::Pg)?;
        rows::rows_to_json(stmt.columns(), &rows).map_err(|m| Failure::Other(permanent(m)))
    } else {
        let n = client.execute(&stmt, &refs).await.map_err(Failure::Pg)?;
        let mut out = Map::new();
        out.insert("rows_affected".into(), Value::from(n));
        Ok(Value::Object(out))
    }
}

fn parse_payload<T: serde::de::DeserializeOwned>(payload: &Value) -> Result<T, HandlerError> {
    T::deserialize(payload).map_err(|e| permanent(format!("invalid payload: {e}")))
}

fn permanent(message: String) -> HandlerError {
    HandlerError::Failed { class: ErrorClass::Permanent, message }
}

fn config_error(message: &str) -> HandlerError {
    HandlerError::Config { handler_type: HANDLER_TYPE.into(), message: message.into() }
}

#[async_trait]
impl Handler for DbHandler {
    fn handler_type(&self) -> &str {
        HANDLER_TYPE
    }

    fn describe(&self) -> HandlerDescription {
        HandlerDescription::new(HANDLER_TYPE, &OPERATIONS)
    }

    async fn execute(&self, ctx: &CallContext, operation: &Operation, payload: &Value) -> Result<Value, HandlerError> {
        let verb = operation.as_str().strip_prefix("db.").unwrap_or(operation.as_str());
        match verb {
            "query" => self.run_one(ctx, payload, Shape::Rows).await,
            "execute" => self.run_one(ctx, payload, Shape::Affected).await,
            "transaction" => self.run_transaction(ctx, payload).await,
            _ => Err(HandlerError::UnsupportedOperation {
                handler_type: HANDLER_TYPE.into(),
                operation: operation.to_string(),
                supported: OPERATIONS.iter().map(|(n, _)| (*n).to_owned()).collect(),
            }),
        }
    }

    async fn health(&self) -> HandlerHealth {
        let ctx_free = self.pool.timeout_get(&self.pool.timeouts()).await;
        let result = match ctx_free {
            Ok(client) => client.simple_query("select 1").await.map_err(|e| error::from_pg(&e)),
            Err(e) => Err(error::from_pool(&e, self.pool_size, self.pool_timeout.as_millis())),
        };
        match result {
            Ok(_) => {
                let (open, busy) = self.pool_status();
                HandlerHealth {
                    healthy: true,
                    detail: format!("postgres answers; {open} of {} connections open, {busy} in use", self.pool_size),
                }
            }
            Err(e) => HandlerHealth { healthy: false, detail: e.to_string() },
        }
    }

    async fn shutdown(&self) {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            tracing::warn!(handler_type = HANDLER_TYPE, "Handler shutdown called more than once; ignored.");
            return;
        }
        // Closing drops idle connections now and the busy ones when they are returned.
        self.pool.close();
    }
}
