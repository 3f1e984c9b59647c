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
