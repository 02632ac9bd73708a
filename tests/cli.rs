//! The command line as an operator uses it: `sign`, configuration errors, `keys`.

use std::process::Command;

const PASSWORD: &str = "aad16aabac2b3d4e17f04a95e2a2372f";
const KEY: &str = "f1ntechSBU@2018#";

fn gateway(workdir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mpospay-gateway"));
    command
        .current_dir(workdir)
        .env_clear()
        .env("GATEWAY_UPSTREAM_URL", "http://127.0.0.1:9")
        .env("GATEWAY_UPSTREAM_CLIENT_ID", "partner")
        .env("GATEWAY_UPSTREAM_CLIENT_SECRET", "basic-secret-value")
        .env("GATEWAY_UPSTREAM_PASSWORD", PASSWORD)
        .env("GATEWAY_UPSTREAM_ACCOUNT", "0000000018")
        .env("GATEWAY_UPSTREAM_INSTITUTION_CODE", "180309000002")
        .env("GATEWAY_UPSTREAM_ORIGIN", "partner.example");
    command
}

#[test]
fn sign_reproduces_the_vendor_vector_and_explains_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.txt");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let output = gateway(dir.path())
        .env("GATEWAY_UPSTREAM_KEY_FILE", &key_file)
        .args([
            "sign",
            "--type",
            "payment",
            "--product",
            "2042",
            "--bill-number",
            "AF085713323054",
            "--trx-id",
            "00000002",
            "--date",
            "2018-03-22",
            "--explain",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "1a3a62586844e13ca9bb64d0056d7d7c"
    );
    let explained = String::from_utf8_lossy(&output.stderr);
    assert!(explained.contains("2018-03-22"));
    assert!(explained.contains("Asia/Jakarta"));
    assert!(explained.contains("trxId"));
    for secret in [PASSWORD, KEY, "basic-secret-value"] {
        assert!(!explained.contains(secret), "{secret} shown: {explained}");
    }
}

#[test]
fn a_malformed_account_stops_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let output = gateway(dir.path())
        .env("GATEWAY_UPSTREAM_KEY", KEY)
        .env("GATEWAY_UPSTREAM_ACCOUNT", "00000000181")
        .args(["serve"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("upstream.account"), "{message}");
    assert!(message.contains("10 digits"), "{message}");
    assert!(!message.contains(PASSWORD));
}

#[test]
fn keys_create_prints_the_key_alone_and_list_never_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/gw.db", dir.path().display());
    let created = gateway(dir.path())
        .env("GATEWAY_UPSTREAM_KEY", KEY)
        .env("GATEWAY_DATABASE_URL", &database)
        .args([
            "keys",
            "create",
            "--role",
            "finance",
            "--name",
            "finance-team",
        ])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let key = String::from_utf8(created.stdout).unwrap();
    let key = key.trim();
    assert!(
        key.starts_with("mpg_") && !key.contains(char::is_whitespace),
        "{key:?}"
    );
    let listed = gateway(dir.path())
        .env("GATEWAY_UPSTREAM_KEY", KEY)
        .env("GATEWAY_DATABASE_URL", &database)
        .args(["keys", "list"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(listing.contains("finance-team"));
    assert!(listing.contains(&key[..16]), "the public part is listed");
    assert!(!listing.contains(key), "the key itself never is");
    let mut database_bytes = std::fs::read(dir.path().join("gw.db")).unwrap();
    if let Ok(wal) = std::fs::read(dir.path().join("gw.db-wal")) {
        database_bytes.extend(wal);
    }
    let secret_part = key.rsplit('_').next().unwrap();
    assert!(
        !String::from_utf8_lossy(&database_bytes).contains(secret_part),
        "the key's secret is not stored"
    );
}

#[test]
fn the_example_configurations_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mpospay-gateway"))
        .current_dir(dir.path())
        .env_clear()
        .env("GATEWAY_UPSTREAM_CLIENT_SECRET", "s")
        .env("GATEWAY_UPSTREAM_PASSWORD", PASSWORD)
        .env("GATEWAY_UPSTREAM_KEY", KEY)
        .arg("--config")
        .arg(root.join("config/gateway.example.toml"))
        .args([
            "sign",
            "--type",
            "inquiry",
            "--product",
            "2042",
            "--bill-number",
            "AF085713323054",
            "--trx-id",
            "00000001",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let sandbox = Command::new(env!("CARGO_BIN_EXE_mpospay-gateway"))
        .current_dir(dir.path())
        .env_clear()
        .arg("--config")
        .arg(root.join("config/sandbox.example.toml"))
        .args(["keys", "list"])
        .output()
        .unwrap();
    assert!(
        sandbox.status.success(),
        "{}",
        String::from_utf8_lossy(&sandbox.stderr)
    );
}
