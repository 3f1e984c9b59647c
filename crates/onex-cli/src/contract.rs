//! Loading a contract for a command, with diagnostics printed for the user.

use std::path::Path;

use onex_core::contract::{self, Loaded, Severity};
use onex_runtime::StdSources;

/// Loads `path`; prints warnings to stderr; on errors prints them all and returns `None`.
pub fn load(path: &Path) -> Option<Loaded> {
    match contract::load_runtime_contract(path, &StdSources) {
        Ok(loaded) => {
            let notes: Vec<_> = loaded.notes.iter().filter(|d| d.severity == Severity::Warning).cloned().collect();
            if !notes.is_empty() {
                eprint!("{}", contract::render_human(&notes, &StdSources));
            }
            Some(loaded)
        }
        Err(diagnostics) => {
            eprint!("{}", contract::render_human(&diagnostics.0, &StdSources));
            None
        }
    }
}

/// Prints why the host could not be built or started. Contract problems found
/// while wiring (a `secret_ref` that does not resolve, a handler config field
/// with a wrong type) are shown like `onex validate` shows them.
pub fn report_host_error(e: &onex_runtime::HostError) {
    match e {
        onex_runtime::HostError::Contract(diagnostics) => {
            eprint!("{}", contract::render_human(&diagnostics.0, &StdSources));
        }
        other => eprintln!("error: {other}"),
    }
}
