//! Where contract files and environment variables come from.
//!
//! The core never touches the file system or the process environment: the
//! loader reads through [`Sources`]. The runtime crate supplies the
//! implementation over `std::fs` and `std::env`; [`MapSources`] is the
//! in-memory one used by tests and by tools that validate unsaved text.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where contract files and environment variables come from.
pub trait Sources {
    /// Reads a UTF-8 file.
    ///
    /// # Errors
    /// Returns the I/O error; the loader turns it into a diagnostic.
    fn read(&self, path: &Path) -> std::io::Result<String>;
    /// Looks up an environment variable for `${VAR}` interpolation.
    fn env(&self, name: &str) -> Option<String>;
}

/// Files and environment variables held in memory.
#[derive(Debug, Clone, Default)]
pub struct MapSources {
    pub files: HashMap<PathBuf, String>,
    pub env: HashMap<String, String>,
}

impl MapSources {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file.
    #[must_use]
    pub fn with_file(mut self, path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        self.files.insert(path.into(), text.into());
        self
    }

    /// Sets an environment variable.
    #[must_use]
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// Sets several environment variables.
    #[must_use]
    pub fn with_env_vars(mut self, vars: &[(&str, &str)]) -> Self {
        for (k, v) in vars {
            self.env.insert((*k).to_owned(), (*v).to_owned());
        }
        self
    }
}

impl Sources for MapSources {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("{} not found", path.display())))
    }

    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
}
