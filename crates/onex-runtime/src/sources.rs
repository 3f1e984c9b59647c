//! Contract files and environment variables from the real process.

use std::path::Path;

use onex_core::contract::Sources;

/// Reads contract files from disk and `${VAR}` values from the process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdSources;

impl Sources for StdSources {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}
