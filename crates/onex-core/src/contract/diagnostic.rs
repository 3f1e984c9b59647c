//! Diagnostics: one problem in one contract file, located and explained.
//!
//! Loading reports *every* problem of a file in one run, so a user fixes a
//! contract in one pass instead of one error per attempt.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// How bad a diagnostic is. Any `Error` fails loading; warnings and info do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

/// One located problem (or note) in a contract file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based; 0 when the problem concerns the file as a whole.
    pub line: usize,
    /// 1-based; 0 when the problem concerns the file as a whole.
    pub column: usize,
    /// The field path, e.g. `runtime.handlers[1].type`.
    pub path: String,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Why, or what is expected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The concrete edit that fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        write!(f, "{sev}: {}:{}:{}: {}: {}", self.file.display(), self.line, self.column, self.path, self.message)
    }
}

/// Loading failed; holds every diagnostic found, errors first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} error(s) in contract", self.error_count())]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// How many diagnostics are errors.
    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.severity == Severity::Error).count()
    }
}
