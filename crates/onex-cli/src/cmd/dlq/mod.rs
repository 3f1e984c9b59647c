//! `onex dlq`: inspect and replay the dead letters of a Kafka contract.
//!
//! Every subcommand reads the contract's DLQ topic from the beginning without
//! joining a consumer group or committing anything, so it never disturbs a
//! running host. The end of the topic is where nothing new arrived for
//! `--idle-ms` (brokers' high watermarks are not always trustworthy).

mod filter;
mod render;
mod replay;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Subcommand};
use onex_bus::kafka::KafkaBus;
use onex_core::contract::BusKind;
use onex_core::{DeadLetter, TopicConvention, TopicName};

use crate::{ReportFormat, contract};
use filter::Filter;

/// Options of `onex dlq`.
#[derive(Debug, Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// List dead letters, one line each (oldest first per partition).
    List {
        #[command(flatten)]
        read: ReadArgs,
        #[command(flatten)]
        filter: Filter,
        /// Print at most this many records (the first ones, by DLQ partition and offset).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// `human`: an aligned table; `json`: one JSON object per line (the record plus `dlq_partition`, `dlq_offset`).
        #[arg(long, value_enum, default_value = "human")]
        format: ReportFormat,
    },
    /// Print one dead letter in full (pretty JSON), with its original payload.
    Show {
        #[command(flatten)]
        read: ReadArgs,
        /// Where the record sits in the DLQ topic, as `PARTITION:OFFSET` (the first column of `list`).
        #[arg(value_name = "PARTITION:OFFSET", value_parser = position, required_unless_present = "partition", conflicts_with_all = ["partition", "offset"])]
        at: Option<(i32, i64)>,
        /// DLQ partition of the record (with --offset).
        #[arg(long, requires = "offset")]
        partition: Option<i32>,
        /// DLQ offset of the record (with --partition).
        #[arg(long, requires = "partition")]
        offset: Option<i64>,
    },
    /// Publish dead letters' original bytes again, with their original key.
    ///
    /// Each goes to its original topic (or --to) and is durable when its line
    /// is printed. Records stay in the DLQ: replaying twice publishes twice,
    /// so narrow the selection with filters and check it with --dry-run first.
    Replay {
        #[command(flatten)]
        read: ReadArgs,
        #[command(flatten)]
        filter: Filter,
        /// Publish to this topic instead of each record's original topic.
        #[arg(long, value_name = "TOPIC")]
        to: Option<String>,
        /// Print what would be replayed; publish nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Options every subcommand has: which contract, and when reading stops.
#[derive(Debug, Args)]
struct ReadArgs {
    /// The runtime contract (YAML) with `event_bus.kind: kafka`.
    contract: PathBuf,
    /// Stop reading once no record arrived for this many milliseconds
    /// (default: twice the contract's fetch_wait_max_ms, at least 500).
    #[arg(long, value_name = "MS")]
    idle_ms: Option<u64>,
}

/// One dead letter and where it sits in the DLQ topic.
#[derive(Debug)]
pub struct Entry {
    pub partition: i32,
    pub offset: i64,
    /// The DLQ record's key: the original message's key.
    pub key: Option<Bytes>,
    pub record: DeadLetter,
}

/// The DLQ of a contract, read.
struct Dlq {
    bus: KafkaBus,
    topic: TopicName,
    convention: TopicConvention,
    entries: Vec<Entry>,
}

pub async fn run(args: DlqArgs) -> ExitCode {
    let ok = match args.command {
        DlqCommand::List { read, filter, limit, format } => match open(&read).await {
            Some(dlq) => list(&dlq, &filter, limit, format),
            None => false,
        },
        DlqCommand::Show { read, at, partition, offset } => {
            // clap guarantees one of the two spellings is complete.
            let at = at.or(partition.zip(offset));
            match (open(&read).await, at) {
                (Some(dlq), Some(at)) => show(&dlq, at),
                _ => false,
            }
        }
        DlqCommand::Replay { read, filter, to, dry_run } => match open(&read).await {
            Some(dlq) => replay(&dlq, &filter, to.as_deref(), dry_run).await,
            None => false,
        },
    };
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Loads the contract, connects to its broker and reads the whole DLQ topic.
/// Prints why on failure.
async fn open(read: &ReadArgs) -> Option<Dlq> {
    let loaded = contract::load(&read.contract)?;
    let c = loaded.contract;
    if c.event_bus.kind != BusKind::Kafka {
        eprintln!(
            "error: {} uses the in-memory bus (`event_bus.kind: memory`), which lives inside one process: \
             there is no DLQ topic to read from outside it. Use `onex dev {}` to see dead letters as they \
             happen, or switch the contract to `kind: kafka`.",
            read.contract.display(),
            read.contract.display()
        );
        return None;
    }
    let settings = match onex_runtime::kafka_settings(&c, &|name| std::env::var(name).ok()) {
        Ok(s) => s,
        Err(e) => {
            contract::report_host_error(&e);
            return None;
        }
    };
    // Long enough for a fetch round trip (brokers may hold a fetch for fetch_wait_max).
    let idle = read
        .idle_ms
        .map_or_else(|| (settings.config.fetch_wait_max * 2).max(Duration::from_millis(500)), Duration::from_millis);
    let bus = match KafkaBus::connect(settings.config).await {
        Ok(bus) => bus,
        Err(e) => {
            eprintln!("error: {e}");
            return None;
        }
    };
    let records = match bus.read_topic(&settings.dlq, usize::MAX, idle).await {
        Ok(records) => records,
        Err(e) => {
            eprintln!("error: cannot read the DLQ topic `{}`: {e}", settings.dlq);
            return None;
        }
    };
    if records.is_empty() {
        eprintln!("The DLQ topic `{}` has no records (or does not exist yet).", settings.dlq);
    }
    let entries = records
        .into_iter()
        .filter_map(|r| match serde_json::from_slice::<DeadLetter>(&r.payload) {
            Ok(record) => Some(Entry { partition: r.partition, offset: r.offset, key: r.key, record }),
            Err(e) => {
                // Someone else wrote to the topic; nothing here can act on it.
                eprintln!(
                    "warning: {}:{} in `{}` is not a dead-letter record ({e}); ignored.",
                    r.partition, r.offset, settings.dlq
                );
                None
            }
        })
        .collect();
    Some(Dlq { bus, topic: settings.dlq, convention: c.runtime.topic_convention, entries })
}

fn list(dlq: &Dlq, filter: &Filter, limit: Option<usize>, format: ReportFormat) -> bool {
    let matching: Vec<&Entry> = dlq.entries.iter().filter(|e| filter.matches(&e.record)).collect();
    let shown = &matching[..limit.unwrap_or(usize::MAX).min(matching.len())];
    match format {
        ReportFormat::Human => {
            if !shown.is_empty() {
                render::table(shown).iter().for_each(|line| println!("{line}"));
            }
        }
        ReportFormat::Json => shown.iter().for_each(|e| println!("{}", render::json(e))),
    }
    let filtered = if filter.is_empty() { String::new() } else { format!(", {} matching", matching.len()) };
    eprintln!("{} of {} dead letter(s) in `{}` shown{filtered}.", shown.len(), dlq.entries.len(), dlq.topic);
    true
}

fn show(dlq: &Dlq, (partition, offset): (i32, i64)) -> bool {
    let Some(entry) = dlq.entries.iter().find(|e| e.partition == partition && e.offset == offset) else {
        eprintln!(
            "error: no dead letter at {partition}:{offset} in `{}`; `onex dlq list` shows where each record is \
             (first column, PARTITION:OFFSET). If it was written just now or the broker is slow, raise --idle-ms.",
            dlq.topic
        );
        return false;
    };
    match serde_json::to_string_pretty(&render::detail(entry)) {
        Ok(text) => {
            println!("{text}");
            true
        }
        Err(e) => {
            eprintln!("error: cannot print {partition}:{offset}: {e}");
            false
        }
    }
}

async fn replay(dlq: &Dlq, filter: &Filter, to: Option<&str>, dry_run: bool) -> bool {
    let to = match to.map(|t| TopicName::parse(t, dlq.convention)) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            eprintln!("error: --to `{}`: {e}; use a topic like `onex.acme.orders.cmd.v1`", to.unwrap_or_default());
            return false;
        }
    };
    let matching: Vec<&Entry> = dlq.entries.iter().filter(|e| filter.matches(&e.record)).collect();
    if matching.is_empty() {
        eprintln!("No dead letters in `{}` match; nothing to replay.", dlq.topic);
        return true;
    }
    replay::run(&dlq.bus, &matching, to.as_ref(), dlq.convention, dry_run).await
}

/// Parses `PARTITION:OFFSET`.
fn position(s: &str) -> Result<(i32, i64), String> {
    let parsed = s.split_once(':').and_then(|(p, o)| Some((p.parse().ok()?, o.parse().ok()?)));
    parsed.ok_or_else(|| "expected PARTITION:OFFSET, e.g. `2:17` (the first column of `onex dlq list`)".into())
}
