//! Rendering diagnostics for people (rustc/miette style) and for tools (JSON).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::Sources;
use super::diagnostic::{Diagnostic, Severity};

/// Renders diagnostics like rustc:
///
/// ```text
/// error: unknown field `handlrs` in `runtime`
///   --> onex.yaml:7:3
///    |
///  7 |   handlrs:
///    |   ^
///   = field: runtime.handlrs
///   = hint: did you mean `handlers`?
///   = fix: rename `handlrs` to `handlers`
/// ```
///
/// followed by a summary line. Source lines are read through `sources`;
/// a file that cannot be read is rendered without them.
pub fn render_human(diags: &[Diagnostic], sources: &dyn Sources) -> String {
    let mut cache: HashMap<PathBuf, Option<Vec<String>>> = HashMap::new();
    let mut out = String::new();
    for d in diags {
        let label = severity_label(d.severity);
        let _ = writeln!(out, "{label}: {}", d.message);
        // rustc's layout: the gutter is as wide as the line number, and every
        // continuation line (`-->`, `|`, `=`) is indented to it.
        let pad = " ".repeat(d.line.max(1).to_string().len());
        if d.line == 0 {
            let _ = writeln!(out, "{pad}--> {}", d.file.display());
        } else {
            let _ = writeln!(out, "{pad}--> {}:{}:{}", d.file.display(), d.line, d.column);
            let lines = cache
                .entry(d.file.clone())
                .or_insert_with(|| sources.read(&d.file).ok().map(|t| t.lines().map(str::to_owned).collect()));
            if let Some(src) = lines.as_ref().and_then(|l| l.get(d.line - 1)) {
                let caret_pad: String =
                    src.chars().take(d.column.saturating_sub(1)).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
                let _ = writeln!(out, "{pad} |");
                let _ = writeln!(out, "{} | {src}", d.line);
                let _ = writeln!(out, "{pad} | {caret_pad}^");
            }
        }
        if !d.path.is_empty() {
            let _ = writeln!(out, "{pad} = field: {}", d.path);
        }
        if let Some(h) = &d.hint {
            let _ = writeln!(out, "{pad} = hint: {h}");
        }
        if let Some(f) = &d.fix {
            let _ = writeln!(out, "{pad} = fix: {f}");
        }
        out.push('\n');
    }
    let count = |s: Severity| diags.iter().filter(|d| d.severity == s).count();
    let (errors, warnings, infos) = (count(Severity::Error), count(Severity::Warning), count(Severity::Info));
    let plural = |n: usize, w: &str| {
        if n == 1 { format!("{n} {w}") } else { format!("{n} {w}s") }
    };
    let verdict = if errors == 0 { "contract is valid" } else { "contract is invalid" };
    let _ = writeln!(
        out,
        "{verdict}: {}, {}, {}",
        plural(errors, "error"),
        plural(warnings, "warning"),
        plural(infos, "note")
    );
    out
}

/// Renders diagnostics as a JSON array of objects with `severity`, `file`,
/// `line`, `column`, `path`, `message` and, when present, `hint` and `fix`.
pub fn render_json(diags: &[Diagnostic]) -> String {
    serde_json::to_string_pretty(diags).unwrap_or_else(|_| "[]".to_owned())
}

fn severity_label(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}
