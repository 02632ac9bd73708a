//! The subcommands (API.md, "Running it").

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::config::{self, Settings, UpstreamSettings};
use crate::h2h::{business_date, MessageType, SigningFields};
use crate::keys::{self, Role};
use crate::sandbox::{self, SandboxConfig, DEFAULT_DEPOSIT};
use crate::startup::{Application, RunOptions};
use crate::store::{self, SharedStore};
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "mpospay-gateway",
    version,
    about = "A safe REST gateway for the MPospay B2B H2H API"
)]
pub struct Cli {
    /// Configuration file (default: config/gateway.toml if present).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve {
        /// Start the upstream simulator in this process and use it as the upstream.
        #[arg(long)]
        sandbox: bool,
        /// With --sandbox: the simulator's deposit at start, in rupiah.
        #[arg(long, env = "GATEWAY_SANDBOX_DEPOSIT", default_value_t = DEFAULT_DEPOSIT,
              value_parser = clap::value_parser!(i64).range(0..))]
        deposit: i64,
    },
    /// Run the upstream simulator alone.
    ///
    /// Besides POST /finsbu/h2h it serves its own control route, loopback clients only and
    /// without the H2H headers or signature: GET /sandbox/deposit answers {"balance": N}, and
    /// POST /sandbox/deposit {"amount": N} tops the deposit up (N > 0) or makes a charge outside
    /// the gateway (N < 0; refused with 422 if the balance would go below zero). See
    /// docs/sandbox.md.
    Sandbox {
        #[arg(long, default_value = crate::sandbox::DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// Seed for its generated data (paymentCodes, references).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// The deposit balance at start, in rupiah.
        #[arg(long, value_name = "RUPIAH", default_value_t = DEFAULT_DEPOSIT,
              value_parser = clap::value_parser!(i64).range(0..))]
        deposit: i64,
    },
    /// Apply database migrations.
    Migrate,
    /// Exit 0 if the gateway on the configured listen address is ready (for container health
    /// checks, where no HTTP client is installed).
    Healthcheck,
    /// Manage API keys of our clients.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Print the signature for given fields, to debug `994 Signature is not match`.
    Sign {
        #[arg(long = "type")]
        message_type: String,
        #[arg(long)]
        product: String,
        #[arg(long)]
        bill_number: String,
        #[arg(long)]
        trx_id: String,
        /// The signature date (default: today in the configured zone).
        #[arg(long)]
        date: Option<NaiveDate>,
        /// Print the field order and date used (secrets masked).
        #[arg(long)]
        explain: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create a key; prints the key alone on stdout.
    Create {
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: String,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by its id or its public part (`mpg_…`).
    Revoke { key: String },
}

/// Runs a parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let raw = config::load(cli.config.as_deref())?;
    let settings = raw.validate()?;
    telemetry::init(&settings.log_format);
    match cli.command {
        Command::Serve { sandbox, deposit } => serve(settings, sandbox.then_some(deposit)).await,
        Command::Sandbox {
            listen,
            seed,
            deposit,
        } => {
            let config = SandboxConfig {
                seed,
                zone: settings.zone,
                initial_balance: deposit,
                ..SandboxConfig::default()
            };
            sandbox::run(config, listen).await.map_err(Into::into)
        }
        Command::Migrate => {
            store::connect(&settings.database_url, 1).await?;
            eprintln!(
                "migrations applied to {}",
                redact_url(&settings.database_url)
            );
            Ok(())
        }
        Command::Keys { action } => keys_command(&settings, action).await,
        Command::Healthcheck => healthcheck(settings.listen),
        Command::Sign {
            message_type,
            product,
            bill_number,
            trx_id,
            date,
            explain,
        } => sign(
            &settings,
            &message_type,
            &product,
            &bill_number,
            &trx_id,
            date,
            explain,
        ),
    }
}

/// `sandbox_deposit`: run the simulator in this process, with this deposit at start.
async fn serve(mut settings: Settings, sandbox_deposit: Option<i64>) -> anyhow::Result<()> {
    let store = store::connect(&settings.database_url, settings.database_max_connections)
        .await
        .with_context(|| format!("opening {}", redact_url(&settings.database_url)))?;
    let _sandbox = if let Some(deposit) = sandbox_deposit {
        let config = SandboxConfig {
            zone: settings.zone,
            initial_balance: deposit,
            ..SandboxConfig::default()
        };
        let handle = sandbox::spawn_on_loopback(config.clone()).await?;
        settings.upstream = Some(UpstreamSettings {
            max_connections: 64,
            ..config.upstream_settings(handle.base_url())
        });
        eprintln!(
            "sandbox upstream simulator listening on {} (deposit {deposit}; top-ups and outside charges: \
             curl -d '{{\"amount\": 1000000}}' -H 'Content-Type: application/json' {}{})",
            handle.base_url(),
            handle.base_url(),
            sandbox::DEPOSIT_PATH
        );
        print_demo_keys(&store).await?;
        if settings.webhooks.encryption_key_file.is_none() {
            let folder = sandbox_data_folder(&settings.database_url);
            let key_file = crate::webhooks::ensure_key_file(&folder).with_context(|| {
                format!(
                    "creating the webhooks encryption key in {}",
                    folder.display()
                )
            })?;
            eprintln!(
                "webhooks: endpoint secrets are encrypted with the key in {}",
                key_file.display()
            );
            settings.webhooks.encryption_key_file = Some(key_file);
        }
        Some(handle)
    } else {
        None
    };
    let listener = TcpListener::bind(settings.listen)
        .with_context(|| format!("binding {}", settings.listen))?;
    let address = listener.local_addr()?;
    let app = Application::build_with(settings.clone(), RunOptions::default(), store, listener)?;
    tracing::info!(%address, database = %redact_url(&settings.database_url), "gateway listening");
    eprintln!("gateway listening on http://{address}  (try: curl http://{address}/healthz)");
    app.run_until_stopped().await?;
    Ok(())
}

/// Where `serve --sandbox` keeps what it makes: the SQLite database's folder, or `data`.
fn sandbox_data_folder(database_url: &str) -> std::path::PathBuf {
    let file = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .filter(|path| !path.is_empty() && !path.starts_with(':'));
    match file.and_then(|path| std::path::Path::new(path).parent()) {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        Some(_) => std::path::PathBuf::from("."),
        None => std::path::PathBuf::from("data"),
    }
}

/// Creates demo keys on the first sandbox start and prints them (they are stored hashed, so
/// they are shown only then).
async fn print_demo_keys(store: &SharedStore) -> anyhow::Result<()> {
    if !store.list_api_keys().await?.is_empty() {
        eprintln!(
            "demo API keys were printed on the first start; make another with: \
             mpospay-gateway keys create --role operator --name demo"
        );
        return Ok(());
    }
    eprintln!("demo API keys (shown once):");
    for (role, name) in [
        (Role::Operator, "demo-pos"),
        (Role::Finance, "demo-finance"),
        (Role::Admin, "demo-admin"),
    ] {
        let new = keys::generate(name, role, Utc::now());
        store.insert_api_key(&new.record).await?;
        eprintln!("  {:<9} {}", role.as_str(), new.plain);
    }
    Ok(())
}

async fn keys_command(settings: &Settings, action: KeysAction) -> anyhow::Result<()> {
    let store = store::connect(&settings.database_url, 2).await?;
    match action {
        KeysAction::Create { role, name } => {
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("--role must be operator, finance or admin"))?;
            if name.trim().is_empty() {
                anyhow::bail!("--name must not be empty");
            }
            let new = keys::generate(name.trim(), role, Utc::now());
            store.insert_api_key(&new.record).await?;
            eprintln!(
                "created {} key {} for client {:?}; it is shown only now:",
                role.as_str(),
                new.record.lookup,
                new.record.client
            );
            println!("{}", new.plain);
        }
        KeysAction::List => {
            println!(
                "{:<38} {:<18} {:<9} {:<20} {:<25} revoked",
                "id", "key", "role", "client", "last used"
            );
            for key in store.list_api_keys().await? {
                println!(
                    "{:<38} {:<18} {:<9} {:<20} {:<25} {}",
                    key.id,
                    key.lookup,
                    key.role.as_str(),
                    key.client,
                    key.last_used_at
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_else(|| "-".into()),
                    key.revoked_at
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_else(|| "-".into()),
                );
            }
        }
        KeysAction::Revoke { key } => {
            let keys = store.list_api_keys().await?;
            let found = keys
                .iter()
                .find(|k| {
                    k.id.to_string() == key
                        || k.lookup == key
                        || key.starts_with(&format!("{}_", k.lookup))
                })
                .ok_or_else(|| anyhow::anyhow!("no key {key}"))?;
            store.revoke_api_key(found.id, Utc::now()).await?;
            eprintln!("revoked {} ({})", found.lookup, found.client);
        }
    }
    Ok(())
}

fn sign(
    settings: &Settings,
    message_type: &str,
    product: &str,
    bill_number: &str,
    trx_id: &str,
    date: Option<NaiveDate>,
    explain: bool,
) -> anyhow::Result<()> {
    if MessageType::parse(message_type).is_none() {
        anyhow::bail!("--type must be inquiry, payment, purchase, advice or balanceInquiry");
    }
    let upstream = settings.upstream.as_ref().ok_or_else(|| {
        anyhow::anyhow!("sign needs the upstream credentials: set GATEWAY_UPSTREAM_* or --config")
    })?;
    let credentials = &upstream.credentials;
    let date = date.unwrap_or_else(|| business_date(Utc::now(), credentials.zone));
    let fields = SigningFields {
        message_type,
        account: &credentials.account,
        institution_code: &credentials.institution_code,
        product,
        bill_number,
        trx_id,
    };
    let signature = fields.sign(
        credentials.password.expose_secret(),
        date,
        credentials.key.expose_secret(),
    );
    if explain {
        let masked = |secret: &str| format!("<{} characters, hidden>", secret.chars().count());
        eprintln!("signature = md5(type + account + institutionCode + product + billNumber + trxId + password + date + key)");
        for (name, value) in [
            ("type", message_type.to_string()),
            ("account", credentials.account.clone()),
            ("institutionCode", credentials.institution_code.clone()),
            ("product", product.to_string()),
            ("billNumber", bill_number.to_string()),
            ("trxId", trx_id.to_string()),
            ("password", masked(credentials.password.expose_secret())),
            (
                "date",
                format!(
                    "{} (time zone {})",
                    date.format("%Y-%m-%d"),
                    credentials.zone
                ),
            ),
            ("key", masked(credentials.key.expose_secret())),
        ] {
            eprintln!("  {name:<16} {value}");
        }
    }
    println!("{signature}");
    Ok(())
}

fn healthcheck(listen: SocketAddr) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let mut address = listen;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    stream.write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    if &head[9..12] == b"200" {
        Ok(())
    } else {
        anyhow::bail!("not ready: {}", String::from_utf8_lossy(&head))
    }
}

/// A database URL without any password in it, for messages: the user info's password, and the
/// value of every query parameter whose name looks secret (`?password=`, `sslpassword=`, …).
fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut redacted = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &base[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &base[..scheme + 3], &base[at..]),
                None => base.to_string(),
            }
        }
        _ => base.to_string(),
    };
    if let Some(query) = query {
        let parameters: Vec<String> = query
            .split('&')
            .map(|parameter| match parameter.split_once('=') {
                Some((name, _)) if looks_secret(name) => format!("{name}=***"),
                _ => parameter.to_string(),
            })
            .collect();
        redacted = format!("{redacted}?{}", parameters.join("&"));
    }
    redacted
}

/// Query parameter names that may carry a secret.
fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "pass",
        "pwd",
        "secret",
        "token",
        "key",
        "auth",
        "credential",
    ]
    .iter()
    .any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn database_urls_lose_every_password() {
        assert_eq!(
            redact_url("postgres://gw:hunter2@db:5432/gw?sslmode=verify-full"),
            "postgres://gw:***@db:5432/gw?sslmode=verify-full"
        );
        assert_eq!(
            redact_url("postgres://gw@db/gw?password=hunter2&sslmode=require&sslpassword=x"),
            "postgres://gw@db/gw?password=***&sslmode=require&sslpassword=***"
        );
        assert_eq!(
            redact_url("postgres://db/gw?application_name=gw&Password=hunter2"),
            "postgres://db/gw?application_name=gw&Password=***"
        );
        assert_eq!(
            redact_url("sqlite:///var/lib/gw/gw.db?mode=rwc"),
            "sqlite:///var/lib/gw/gw.db?mode=rwc"
        );
    }
}
