//! Log line formats that keep the envelope's context on every line and
//! cannot be forged by the data they carry.
//!
//! - [`JsonLines`]: one JSON object per line. The fields of every span the
//!   event is inside (envelope → handler call) are merged into the top level
//!   with the event's own fields, so `envelope_id`, `node_id`, … are plain
//!   keys a log system can index. tracing-subscriber's own JSON formatter
//!   only offers the current span (`span`) or a list of spans (`spans`),
//!   which misses the envelope's fields inside a handler call, or nests them
//!   in an array that log systems index poorly.
//! - [`EscapedFields`]: the human format's field writer. The default one
//!   writes `%`-recorded values and messages verbatim, so a newline in an
//!   operation name or error message would start a fake log line.
//!
//! Both escape control characters in every recorded value.

use std::cell::RefCell;
use std::fmt::{self, Write as _};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Fields named `otel.*` steer the OpenTelemetry layer (span kind, status);
/// they are not log data.
fn is_otel_hint(field: &Field) -> bool {
    field.name().starts_with("otel.")
}

/// Writes JSON log lines; pair it with [`JsonFields`].
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLines;

/// Keys every line has; event or span fields of the same name are dropped
/// rather than written twice (they come from code, never from data).
const RESERVED: [&str; 5] = ["timestamp", "level", "target", "span", "message"];

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        // Span fields, outermost first, so an inner span's value wins.
        let mut fields = Map::new();
        let mut span_name = None;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                span_name = Some(span.name());
                let ext = span.extensions();
                if let Some(stored) = ext.get::<FormattedFields<N>>() {
                    merge_fragment(&mut fields, stored);
                }
            }
        }
        let mut visitor = JsonEventVisitor { fields: &mut fields, message: None };
        event.record(&mut visitor);
        let message = visitor.message.take();

        let mut time = String::new();
        SystemTime.format_time(&mut Writer::new(&mut time))?;
        writer.write_str("{\"timestamp\":")?;
        write_json_str(&mut writer, &time)?;
        writer.write_str(",\"level\":")?;
        write_json_str(&mut writer, meta.level().as_str())?;
        writer.write_str(",\"target\":")?;
        write_json_str(&mut writer, meta.target())?;
        if let Some(message) = &message {
            writer.write_str(",\"message\":")?;
            write_json_str(&mut writer, message)?;
        }
        if let Some(name) = span_name {
            writer.write_str(",\"span\":")?;
            write_json_str(&mut writer, name)?;
        }
        for (key, value) in &fields {
            if RESERVED.contains(&key.as_str()) {
                continue;
            }
            writer.write_char(',')?;
            write_json_str(&mut writer, key)?;
            writer.write_char(':')?;
            // serde_json escapes every control character in strings.
            writer.write_str(&value.to_string())?;
        }
        writer.write_str("}\n")
    }
}

/// Adds one span's stored fields (`"key":value,…`, see [`JsonFields`]) to `into`.
fn merge_fragment<N>(into: &mut Map<String, Value>, stored: &FormattedFields<N>) {
    if stored.fields.is_empty() {
        return;
    }
    let object = format!("{{{}}}", stored.fields);
    // The fragment is written by `JsonFields`, so it parses; if a foreign
    // field formatter stored something else, the span's fields are skipped.
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&object) {
        into.extend(map);
    }
}

/// Stores span fields as a JSON object body without braces (`"a":1,"b":"x"`),
/// so recording a field later is an append, not a re-parse.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonFields;

impl<'w> FormatFields<'w> for JsonFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        buffered(&mut writer, |writer| {
            let mut visitor = JsonFragmentVisitor { writer, first: true, result: Ok(()) };
            fields.record(&mut visitor);
            visitor.result
        })
    }

    fn add_fields(&self, current: &'w mut FormattedFields<Self>, fields: &tracing::span::Record<'_>) -> fmt::Result {
        let first = current.fields.is_empty();
        buffered(&mut current.as_writer(), |writer| {
            let mut visitor = JsonFragmentVisitor { writer, first, result: Ok(()) };
            fields.record(&mut visitor);
            visitor.result
        })
    }
}

/// Formats with `format` into a reused thread-local buffer, then hands the
/// result to `writer` in one piece: span fields are stored in a fresh
/// `String` per span, which would otherwise grow (and reallocate) field by
/// field, for every envelope.
fn buffered(writer: &mut Writer<'_>, format: impl FnOnce(&mut Writer<'_>) -> fmt::Result) -> fmt::Result {
    thread_local! {
        static SCRATCH: RefCell<String> = RefCell::new(String::with_capacity(256));
    }
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            format(&mut Writer::new(&mut *buf))?;
            writer.write_str(&buf)
        }
        // Formatting a value that itself logs: write directly.
        Err(_) => format(writer),
    })
}

struct JsonFragmentVisitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl JsonFragmentVisitor<'_, '_> {
    fn key(&mut self, field: &Field) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.writer.write_char(',')?;
        }
        write_json_str(self.writer, field.name())?;
        self.writer.write_char(':')
    }

    fn raw(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.result.is_ok() && !is_otel_hint(field) {
            self.result = self.key(field).and_then(|()| self.writer.write_fmt(value));
        }
    }

    fn quoted(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.result.is_ok() && !is_otel_hint(field) {
            self.result = self.key(field).and_then(|()| {
                self.writer.write_char('"')?;
                JsonEscape(&mut *self.writer).write_fmt(value)?;
                self.writer.write_char('"')
            });
        }
    }

    /// As `quoted`, without the formatting machinery: spans are opened for
    /// every envelope, and most of their fields are plain strings.
    fn string(&mut self, field: &Field, value: &str) {
        if self.result.is_ok() && !is_otel_hint(field) {
            self.result = self.key(field).and_then(|()| write_json_str(self.writer, value));
        }
    }
}

impl Visit for JsonFragmentVisitor<'_, '_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.raw(field, format_args!("{value}"));
        } else {
            self.quoted(field, format_args!("{value}"));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.raw(field, format_args!("{value}"));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.raw(field, format_args!("{value}"));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.raw(field, format_args!("{value}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.string(field, value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.quoted(field, format_args!("{value}"));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.quoted(field, format_args!("{value:?}"));
    }
}

/// Collects an event's fields; `message` is kept apart.
struct JsonEventVisitor<'a> {
    fields: &'a mut Map<String, Value>,
    message: Option<String>,
}

impl JsonEventVisitor<'_> {
    fn insert(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else if !is_otel_hint(field) {
            self.fields.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for JsonEventVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let v = serde_json::Number::from_f64(value).map_or_else(|| Value::String(value.to_string()), Value::Number);
        self.insert(field, v);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.insert(field, Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.insert(field, Value::String(format!("{value:?}")));
    }
}

/// Whether `s` may hold a character an escaper acts on: C0 controls, DEL,
/// the C1 controls (UTF-8 `C2 80`–`C2 9F`), U+2028/U+2029 (`E2 80 A8`/`A9`),
/// and with `quotes` also `"` and `\`. A byte test with no early exit, so the
/// compiler vectorizes it: most values (ids, names) are written in one piece.
fn needs_escape(s: &str, quotes: bool) -> bool {
    let (quote, backslash) = if quotes { (b'"', b'\\') } else { (0, 0) };
    s.bytes().fold(false, |found, b| {
        found
            | (b < 0x20)
            | (b == 0x7f)
            | (b == 0xc2)
            | (b == 0xe2)
            | (b == quote && quotes)
            | (b == backslash && quotes)
    })
}

/// Writes `s` as a JSON string literal.
fn write_json_str(w: &mut impl fmt::Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    JsonEscape(&mut *w).write_str(s)?;
    w.write_char('"')
}

/// Escapes what JSON requires inside a string literal, as it streams by.
struct JsonEscape<W>(W);

impl<W: fmt::Write> fmt::Write for JsonEscape<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if !needs_escape(s, true) {
            return self.0.write_str(s);
        }
        let mut start = 0;
        for (i, c) in s.char_indices() {
            let escaped = match c {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                c if c.is_control() => "",
                _ => continue,
            };
            self.0.write_str(&s[start..i])?;
            if escaped.is_empty() {
                // Other C0/C1 controls and DEL; C1 is outside JSON's must-escape
                // set, but a terminal may still act on it.
                write!(self.0, "\\u{:04x}", c as u32)?;
            } else {
                self.0.write_str(escaped)?;
            }
            start = i + c.len_utf8();
        }
        self.0.write_str(&s[start..])
    }
}

/// The human format's field writer: `key=value` pairs, with control
/// characters in values (and in the message) escaped so one event stays
/// one line.
#[derive(Debug, Default, Clone, Copy)]
pub struct EscapedFields;

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        buffered(&mut writer, |writer| {
            let mut visitor = HumanVisitor { writer, first: true, result: Ok(()) };
            fields.record(&mut visitor);
            visitor.result
        })
    }

    fn add_fields(&self, current: &'w mut FormattedFields<Self>, fields: &tracing::span::Record<'_>) -> fmt::Result {
        let first = current.fields.is_empty();
        buffered(&mut current.as_writer(), |writer| {
            let mut visitor = HumanVisitor { writer, first, result: Ok(()) };
            fields.record(&mut visitor);
            visitor.result
        })
    }
}

struct HumanVisitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl HumanVisitor<'_, '_> {
    /// Writes ` name=` (nothing for the message) and then the value with `write`.
    fn field(&mut self, field: &Field, write: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() || is_otel_hint(field) {
            return;
        }
        let writer = &mut *self.writer;
        let first = std::mem::take(&mut self.first);
        self.result = (|| {
            if !first {
                writer.write_char(' ')?;
            }
            if field.name() != "message" {
                writer.write_str(field.name())?;
                writer.write_char('=')?;
            }
            write(writer)
        })();
    }
}

impl Visit for HumanVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.field(field, |w| ControlEscape { inner: w, quotes: false }.write_str(value));
        } else {
            // Quoted as the default format does, so spaces inside stay visible.
            self.field(field, |w| {
                w.write_char('"')?;
                ControlEscape { inner: &mut *w, quotes: true }.write_str(value)?;
                w.write_char('"')
            });
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, |w| ControlEscape { inner: w, quotes: false }.write_fmt(format_args!("{value}")));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |w| ControlEscape { inner: w, quotes: false }.write_fmt(format_args!("{value:?}")));
    }
}

/// Replaces control characters (newline, carriage return, escape, …) with
/// visible escapes as text streams by; inside a quoted value also `"` and `\`.
struct ControlEscape<W> {
    inner: W,
    quotes: bool,
}

impl<W: fmt::Write> fmt::Write for ControlEscape<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let quotes = self.quotes;
        if !needs_escape(s, quotes) {
            return self.inner.write_str(s);
        }
        let mut start = 0;
        for (i, c) in s.char_indices() {
            // U+2028/U+2029 are line breaks to some viewers.
            let escape = c.is_control() || c == '\u{2028}' || c == '\u{2029}' || (quotes && (c == '"' || c == '\\'));
            if !escape {
                continue;
            }
            self.inner.write_str(&s[start..i])?;
            match c {
                '\n' => self.inner.write_str("\\n")?,
                '\r' => self.inner.write_str("\\r")?,
                '\t' => self.inner.write_str("\\t")?,
                '"' => self.inner.write_str("\\\"")?,
                '\\' => self.inner.write_str("\\\\")?,
                c => write!(self.inner, "\\u{{{:x}}}", c as u32)?,
            }
            start = i + c.len_utf8();
        }
        self.inner.write_str(&s[start..])
    }
}
