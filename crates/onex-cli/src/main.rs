//! `onex`: host event-driven nodes from a runtime contract.

mod cmd;
mod contract;
mod input;
mod logging;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

// glibc's malloc spent a quarter of the pipelined round trip in allocation and
// arena-lock contention (perf, docs/performance.md); mimalloc's thread-local
// heaps remove both.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// onex hosts many event-driven nodes in one process: it reads a runtime
/// contract, consumes command envelopes from `onex.<tenant>.<domain>.cmd.vN`
/// topics, routes each to the node and handler that own it, and publishes
/// one result envelope per command.
#[derive(Debug, Parser)]
#[command(name = "onex", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    /// Log level or filter (overridden by RUST_LOG), e.g. `info`, `debug`, `onex_runtime=trace`.
    /// Default: the contract's `runtime.observability.log_level` for `run`, else `info`.
    #[arg(long, global = true, env = "ONEX_LOG_LEVEL")]
    log_level: Option<String>,
    /// Log format. Default: `json` for `run`, `human` otherwise.
    #[arg(long, global = true, value_enum, env = "ONEX_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Json,
    Human,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the nodes of a runtime contract until SIGTERM or Ctrl-C.
    ///
    /// Logs are JSON lines on stderr. On the in-memory bus nothing outside
    /// this process can publish, so use `onex dev` or `onex send` to try a
    /// contract; `run` is for buses other processes share.
    Run {
        /// The runtime contract (YAML).
        contract: PathBuf,
    },
    /// Check contracts without running them; exit 0 when valid, 1 otherwise.
    ///
    /// Reports every problem of every file at once, with file:line:column,
    /// the field, a hint and the fix. Accepts runtime contracts and node contracts.
    Validate {
        /// Contract files to check.
        #[arg(required = true)]
        contracts: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "human")]
        format: ReportFormat,
    },
    /// Run a contract interactively: type envelopes on stdin, see every envelope as it flows.
    ///
    /// Each stdin line is either a JSON envelope (missing `envelope_id`,
    /// `correlation_id` and `timestamp` are filled in) or the shorthand
    /// `OPERATION [JSON-PAYLOAD]`, optionally `NODE:OPERATION …` to target a
    /// node. At end of input, dev waits for every answer, then exits.
    /// The `local` handler is allowed here (unless the contract says prod).
    Dev {
        /// The runtime contract (YAML).
        contract: PathBuf,
        /// Topic to send to (default: the contract's first input topic).
        #[arg(long)]
        topic: Option<String>,
    },
    /// Send envelopes through a contract's nodes and print each outcome as a JSON line.
    ///
    /// Starts the host in-process, sends the envelopes (from --operation/--payload,
    /// or one per line on stdin, as in `onex dev`), prints every response or
    /// dead letter on stdout, and exits when all are answered. Exit code 0
    /// when every response succeeded, 1 otherwise.
    Send {
        /// The runtime contract (YAML).
        contract: PathBuf,
        /// Operation of a single envelope to send; without it, envelopes are read from stdin.
        #[arg(long)]
        operation: Option<String>,
        /// JSON payload of that envelope.
        #[arg(long, default_value = "{}", requires = "operation")]
        payload: String,
        /// Target node of that envelope.
        #[arg(long, requires = "operation")]
        target: Option<String>,
        /// Topic to send to (default: the contract's first input topic).
        #[arg(long)]
        topic: Option<String>,
    },
    /// Measure throughput and latency; prints one JSON line per scenario.
    Bench(cmd::bench::BenchArgs),
    /// Inspect and replay the dead letters of a Kafka contract (`list`, `show`, `replay`).
    ///
    /// Reads the contract's DLQ topic from the beginning without committing
    /// anything. Exit code 0 on success, 1 when the broker or topic cannot be read
    /// or a replay fails.
    Dlq(cmd::dlq::DlqArgs),
    /// Show a running host's status, read from its admin server (`/api/status`).
    ///
    /// Prints phase and readiness, uptime, envelope totals, per-node counts,
    /// per-handler health, breaker state, latency and last error, bus readiness
    /// and partition lag, in-flight envelopes and the latest dead letters.
    /// Exit code 0 when the host is ready; 1 when it is not (with the reasons)
    /// or no admin server answers; 2 on usage errors (bad URL, missing or
    /// rejected token).
    Status(cmd::status::StatusArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    Human,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_format = if matches!(cli.command, Command::Run { .. }) { LogFormat::Json } else { LogFormat::Human };
    // Declared before the async runtime, so it is dropped after it: the last spans are flushed at exit.
    // `run` takes its log level and OTLP endpoint from the contract unless flags or the environment say otherwise.
    let observability = match &cli.command {
        Command::Run { contract } => logging::contract_observability(contract),
        _ => onex_core::contract::ObservabilitySpec::default(),
    };
    let level = cli.log_level.clone().or(observability.log_level).unwrap_or_else(|| "info".to_owned());
    let _telemetry = logging::init(&level, cli.log_format.unwrap_or(default_format), observability.otlp_endpoint);
    if let Command::Validate { contracts, format } = &cli.command {
        return cmd::validate::run(contracts, *format);
    }
    let threads = if let Command::Bench(args) = &cli.command { args.worker_threads } else { None };
    let builder = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match { builder }.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Run { contract } => cmd::run::run(&contract).await,
            Command::Dev { contract, topic } => cmd::dev::run(&contract, topic.as_deref()).await,
            Command::Send { contract, operation, payload, target, topic } => {
                cmd::send::run(&contract, operation.as_deref(), &payload, target.as_deref(), topic.as_deref()).await
            }
            Command::Bench(args) => cmd::bench::run(&args).await,
            Command::Dlq(args) => cmd::dlq::run(args).await,
            Command::Status(args) => cmd::status::run(&args).await,
            Command::Validate { .. } => ExitCode::SUCCESS,
        }
    })
}
