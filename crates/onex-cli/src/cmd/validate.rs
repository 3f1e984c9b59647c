//! `onex validate`: report every problem in every file, exit 0 or 1.

use std::path::PathBuf;
use std::process::ExitCode;

use onex_core::contract::{self, Severity};
use onex_runtime::StdSources;

use crate::ReportFormat;

pub fn run(paths: &[PathBuf], format: ReportFormat) -> ExitCode {
    let mut all = Vec::new();
    for path in paths {
        all.extend(contract::validate_file(path, &StdSources));
    }
    let errors = all.iter().filter(|d| d.severity == Severity::Error).count();
    match format {
        ReportFormat::Human => {
            let shown: Vec<_> = all.iter().filter(|d| d.severity != Severity::Info).cloned().collect();
            if !shown.is_empty() {
                eprint!("{}", contract::render_human(&shown, &StdSources));
            }
            if errors == 0 {
                println!("{} contract file(s) valid.", paths.len());
            }
        }
        ReportFormat::Json => println!("{}", contract::render_json(&all)),
    }
    if errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
