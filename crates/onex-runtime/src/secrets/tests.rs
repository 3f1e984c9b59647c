//! Unit tests of references, files, env and config walking (Vault is tested in `tests/secrets.rs`).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use onex_core::ErrorClass;
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use super::{EnvSource, FileSource, SecretRef, SecretResolver};

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A fresh directory of this test's own under the system temp dir.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("onex-secrets-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}

fn write(path: &std::path::Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap_or_else(|e| panic!("{e}"));
}

fn resolver(env: &[(&str, &str)], creds: Option<PathBuf>) -> SecretResolver {
    SecretResolver::new(
        None,
        EnvSource::from_pairs(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))),
        FileSource::with_credentials_dir(creds),
    )
}

#[test]
fn references_parse_and_display_as_written() {
    for text in ["vault:secret/app/db#password", "env:DB_PASSWORD", "file:/run/credentials/onex/db", "db_password"] {
        let r: SecretRef = text.parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.to_string(), text);
    }
    assert_eq!(
        "vault:secret/app/db#password".parse::<SecretRef>().ok(),
        Some(SecretRef::Vault { mount: "secret".into(), path: "app/db".into(), key: "password".into() })
    );
}

#[test]
fn malformed_references_say_how_to_write_them() {
    for text in ["vault:secret/app/db", "vault:nomount#k", "env:", "file:", "has spaces", ""] {
        let err = text.parse::<SecretRef>().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(&format!("`{text}`")), "{err}");
    }
}

#[tokio::test]
async fn env_references_read_the_given_environment() {
    let r = resolver(&[("DB_PASSWORD", "pw")], None);
    let v = r.resolve(&SecretRef::Env("DB_PASSWORD".into())).await.map(|s| s.expose_secret().to_owned());
    assert_eq!(v.as_deref(), Ok("pw"));
    let err = r.resolve(&SecretRef::Env("MISSING".into())).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(err, "cannot resolve secret `env:MISSING`: environment variable `MISSING` is not set");
}

#[tokio::test]
async fn a_world_readable_secret_file_is_refused_with_the_fix() {
    let dir = temp_dir("world-readable");
    let path = dir.join("db_password");
    write(&path, "hunter2\n", 0o644);
    let err = resolver(&[], None).resolve(&SecretRef::File(path.clone())).await.err();
    let msg = err.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(msg.contains("accessible to other users (mode 0644)") && msg.contains("chmod 600"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    assert_eq!(err.map(|e| e.class()), Some(ErrorClass::Permanent));
}

#[tokio::test]
async fn a_private_secret_file_is_read_without_its_trailing_newline() {
    let dir = temp_dir("private");
    let path = dir.join("db_password");
    write(&path, "hunter2\n", 0o600);
    let v = resolver(&[], None).resolve(&SecretRef::File(path)).await.map(|s| s.expose_secret().to_owned());
    assert_eq!(v.as_deref(), Ok("hunter2"));
}

#[tokio::test]
async fn relative_files_resolve_in_the_systemd_credentials_directory() {
    let dir = temp_dir("credentials");
    write(&dir.join("db_password"), "from-systemd", 0o400);
    let r = resolver(&[], Some(dir));
    let v = r.resolve(&SecretRef::File("db_password".into())).await.map(|s| s.expose_secret().to_owned());
    assert_eq!(v.as_deref(), Ok("from-systemd"));
    let err = resolver(&[], None).resolve(&SecretRef::File("db_password".into())).await.err();
    assert!(err.map(|e| e.to_string()).unwrap_or_default().contains("$CREDENTIALS_DIRECTORY"));
}

#[tokio::test]
async fn logical_names_prefer_env_over_files_and_list_where_they_looked() {
    let dir = temp_dir("logical");
    write(&dir.join("api_key"), "from-file", 0o600);
    write(&dir.join("only_file"), "file-only", 0o600);
    let r = resolver(&[("API_KEY", "from-env")], Some(dir));
    let v = r.resolve(&SecretRef::Logical("api_key".into())).await.map(|s| s.expose_secret().to_owned());
    assert_eq!(v.as_deref(), Ok("from-env"));
    let v = r.resolve(&SecretRef::Logical("only_file".into())).await.map(|s| s.expose_secret().to_owned());
    assert_eq!(v.as_deref(), Ok("file-only"));
    let err = r.resolve(&SecretRef::Logical("nowhere".into())).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("environment variable `NOWHERE`") && err.contains("nowhere"), "{err}");
}

#[tokio::test]
async fn vault_references_without_vault_say_how_to_configure_it() {
    let err = resolver(&[], None)
        .resolve(&"vault:secret/app/db#password".parse().unwrap_or_else(|e| panic!("{e}")))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("VAULT_ADDR"), "{err}");
}

#[tokio::test]
async fn config_references_are_replaced_at_any_depth_and_redacted_in_debug() {
    let r = resolver(&[("PW", "s3cret"), ("SID", "sid-value")], None);
    let config = map(json!({
        "url": "postgres://app@db/x",
        "password": {"secret_ref": "env:PW"},
        "auth": {"method": "approle", "secret_id": {"secret_ref": "env:SID"}},
        "list": [{"secret_ref": "env:PW"}]
    }));
    let resolved = r.resolve_config(&config).await.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(resolved.as_map()["password"], json!("s3cret"));
    assert_eq!(resolved.as_map()["auth"]["secret_id"], json!("sid-value"));
    assert_eq!(resolved.as_map()["list"][0], json!("s3cret"));
    assert_eq!(resolved.secret_paths(), ["auth.secret_id", "list[0]", "password"]);
    let dbg = format!("{resolved:?}");
    assert!(!dbg.contains("s3cret") && !dbg.contains("sid-value") && dbg.contains("[REDACTED]"), "{dbg}");
    assert_eq!(resolved.redact("bad value s3cret here"), "bad value [REDACTED] here");
}

#[tokio::test]
async fn every_failed_reference_is_reported_with_its_config_path() {
    let r = resolver(&[], None);
    let config = map(json!({"password": {"secret_ref": "env:NOPE"}, "auth": {"token": {"secret_ref": "bad ref"}}}));
    let errors = r.resolve_config(&config).await.err().unwrap_or_default();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["auth.token", "password"]);
    assert!(errors.iter().all(|e| e.error.code() == onex_core::ErrorCode::SecretResolution));
}
