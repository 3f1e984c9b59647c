//! Secret resolution: contracts name secrets, the runtime fetches them, handlers get values.
//!
//! A handler config value may be `{"secret_ref": "<reference>"}` (in YAML,
//! `password: { secret_ref: "vault:secret/app/db#password" }`). Before a
//! handler is built, [`SecretResolver::resolve_config`] replaces every such
//! object with the secret's value, so handlers never read environment
//! variables, credential files or Vault on their own (seed 000, issue 3.12).
//!
//! References ([`SecretRef`]):
//! - `vault:<mount>/<path>#<key>`: key `<key>` of KV v2 secret `<path>` in `<mount>`;
//! - `env:<NAME>`: environment variable `NAME` of the runtime process;
//! - `file:<path>`: a file; a relative path is under systemd's `$CREDENTIALS_DIRECTORY`;
//! - `<logical_name>` (no scheme): tried in order Vault (key `<logical_name>` of
//!   `<mount>/<logical_path>`, when Vault is configured) > env (`LOGICAL_NAME`
//!   upper-cased) > file (`$CREDENTIALS_DIRECTORY/<logical_name>`). Only *not found*
//!   moves on to the next source; any other failure (Vault denies access, a file is
//!   world-readable) stops resolution, so a misconfiguration is never masked.
//!
//! Values are `SecretString`s (redacted in `Debug`, zeroized on drop); a
//! resolved config map zeroizes its strings on drop and redacts them in
//! `Debug`. Errors name the reference and the config path, never the value.
//! A secret file readable or writable by other users is refused (seed 003).

mod file;
mod reference;
mod resolver;
#[cfg(test)]
mod tests;

pub use reference::SecretRef;
pub use resolver::{ConfigSecretError, EnvSource, FileSource, ResolvedConfig, SecretError, SecretResolver};
