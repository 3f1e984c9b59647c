//! Reading secret files: permission checks, systemd credentials.

use std::path::{Path, PathBuf};

use onex_core::ErrorClass;
use secrecy::SecretString;
use zeroize::Zeroizing;

/// Why a file could not give a secret.
#[derive(Debug)]
pub(super) enum FileFailure {
    NotFound,
    Refused(ErrorClass, String),
}

/// Reads `path` as a secret: a regular file, not readable or writable by other users, not
/// empty, UTF-8. One trailing newline (`\n` or `\r\n`) is removed, as `echo pw > file` adds it.
pub(super) async fn read_secret_file(path: &Path) -> Result<SecretString, FileFailure> {
    let meta = match tokio::fs::metadata(path).await {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(FileFailure::NotFound),
        Err(e) => return Err(refused(format!("cannot read `{}`: {e}", path.display()))),
    };
    if !meta.is_file() {
        return Err(refused(format!("`{}` is not a regular file", path.display())));
    }
    check_permissions(path, &meta)?;
    let bytes = Zeroizing::new(
        tokio::fs::read(path).await.map_err(|e| refused(format!("cannot read `{}`: {e}", path.display())))?,
    );
    let text = std::str::from_utf8(&bytes).map_err(|_| refused(format!("`{}` is not UTF-8 text", path.display())))?;
    let text = text.strip_suffix('\n').map_or(text, |t| t.strip_suffix('\r').unwrap_or(t));
    if text.is_empty() {
        return Err(refused(format!("`{}` is empty", path.display())));
    }
    Ok(SecretString::from(text.to_owned()))
}

#[cfg(unix)]
fn check_permissions(path: &Path, meta: &std::fs::Metadata) -> Result<(), FileFailure> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o007 != 0 {
        return Err(refused(format!(
            "`{}` is accessible to other users (mode {mode:04o}); run `chmod 600 {}` (or 0640 with a dedicated group)",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_: &Path, _: &std::fs::Metadata) -> Result<(), FileFailure> {
    Ok(())
}

fn refused(message: String) -> FileFailure {
    FileFailure::Refused(ErrorClass::Permanent, message)
}

/// `path` if absolute; otherwise under the credentials directory, if there is one.
pub(super) fn locate(path: &Path, credentials_dir: Option<&Path>) -> Result<PathBuf, String> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    if path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err("a relative secret file may not contain `..`".into());
    }
    credentials_dir.map(|d| d.join(path)).ok_or_else(|| {
        "a relative secret file is looked up in $CREDENTIALS_DIRECTORY (systemd LoadCredential=), which is not set; \
         give an absolute path"
            .into()
    })
}
