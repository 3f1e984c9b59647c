//! `SecretRef`: a parsed secret reference.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use onex_core::ErrorClass;

use super::resolver::SecretError;

/// Where a secret lives. Parsed from the text of a `secret_ref`; displays as that text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `vault:<mount>/<path>#<key>`.
    Vault { mount: String, path: String, key: String },
    /// `env:<NAME>`.
    Env(String),
    /// `file:<path>`; relative paths are under `$CREDENTIALS_DIRECTORY`.
    File(PathBuf),
    /// A bare name, looked up in Vault, then env, then the credentials directory.
    Logical(String),
}

impl FromStr for SecretRef {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| SecretError::new(s, ErrorClass::Permanent, reason.to_owned());
        if let Some(rest) = s.strip_prefix("vault:") {
            let (location, key) = rest
                .rsplit_once('#')
                .ok_or_else(|| invalid("a vault reference names a key: `vault:<mount>/<path>#<key>`"))?;
            let (mount, path) = location
                .trim_matches('/')
                .split_once('/')
                .ok_or_else(|| invalid("a vault reference names a mount and a path: `vault:secret/app/db#password`"))?;
            if mount.is_empty() || path.is_empty() || key.is_empty() {
                return Err(invalid("mount, path and key must not be empty: `vault:secret/app/db#password`"));
            }
            return Ok(Self::Vault { mount: mount.to_owned(), path: path.to_owned(), key: key.to_owned() });
        }
        if let Some(name) = s.strip_prefix("env:") {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(invalid("an env reference names a variable: `env:DB_PASSWORD`"));
            }
            return Ok(Self::Env(name.to_owned()));
        }
        if let Some(path) = s.strip_prefix("file:") {
            if path.is_empty() {
                return Err(invalid("a file reference names a file: `file:/run/credentials/onex/db_password`"));
            }
            return Ok(Self::File(PathBuf::from(path)));
        }
        let logical = s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) && !s.is_empty();
        if logical {
            return Ok(Self::Logical(s.to_owned()));
        }
        Err(invalid(
            "write `vault:<mount>/<path>#<key>`, `env:<NAME>`, `file:<path>` or a logical name like `db_password`",
        ))
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vault { mount, path, key } => write!(f, "vault:{mount}/{path}#{key}"),
            Self::Env(name) => write!(f, "env:{name}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Logical(name) => f.write_str(name),
        }
    }
}

impl SecretRef {
    /// The environment variable a logical name maps to: upper-cased, `-` and `.` as `_`.
    pub fn env_name(logical: &str) -> String {
        logical.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
    }
}
