//! Typed settings: a TOML file, then `GATEWAY_*` environment overrides (API.md, "Running it"),
//! then `GATEWAY_*_FILE` secrets read from files. Validated once, at start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::domain::{Account, InstitutionCode};
use crate::h2h::{BreakerSettings, Credentials};
use crate::tls::{ClientIdentity, TlsConfigError};

/// Where the gateway keeps its data when no database is configured.
pub const DEFAULT_SQLITE_URL: &str = "sqlite://data/gateway.db";
/// The configuration file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "config/gateway.toml";

/// Settings as written in the file and the environment, before validation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawSettings {
    pub listen: String,
    pub database_url: Option<String>,
    pub database_max_connections: u32,
    /// `json` or `pretty`.
    pub log_format: String,
    pub upstream: RawUpstream,
    pub payments: PaymentSettings,
    pub rate_limit: RateLimitSettings,
    pub webhooks: RawWebhookSettings,
    pub deposit: DepositSettings,
    pub http: HttpSettings,
}

impl Default for RawSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: None,
            database_max_connections: 16,
            log_format: "pretty".into(),
            upstream: RawUpstream::default(),
            payments: PaymentSettings::default(),
            rate_limit: RateLimitSettings::default(),
            webhooks: RawWebhookSettings::default(),
            deposit: DepositSettings::default(),
            http: HttpSettings::default(),
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawUpstream {
    pub url: Option<String>,
    pub client_id: Option<String>,
    #[serde(serialize_with = "never_serialize")]
    pub client_secret: Option<SecretString>,
    #[serde(serialize_with = "never_serialize")]
    pub password: Option<SecretString>,
    #[serde(serialize_with = "never_serialize")]
    pub key: Option<SecretString>,
    pub account: Option<String>,
    pub institution_code: Option<String>,
    pub origin: Option<String>,
    pub timezone: String,
    pub timeout_ms: u64,
    pub max_connections: usize,
    /// A PEM bundle trusted for an `https://` upstream besides the system's roots.
    pub ca_file: Option<String>,
    /// PEM client certificate and key, for an upstream that demands mutual TLS.
    pub client_cert_file: Option<String>,
    pub client_key_file: Option<String>,
    /// Consecutive transport failures that open the circuit breaker (0: never).
    pub breaker_failures: u32,
    /// How long the open circuit refuses requests before a probe.
    pub breaker_cooldown_secs: u64,
}

impl std::fmt::Debug for RawUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawUpstream")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("account", &self.account)
            .field("institution_code", &self.institution_code)
            .field("origin", &self.origin)
            .field("timezone", &self.timezone)
            .field("timeout_ms", &self.timeout_ms)
            .field("ca_file", &self.ca_file)
            .field("client_cert_file", &self.client_cert_file)
            .field("client_key_file", &self.client_key_file)
            .finish_non_exhaustive()
    }
}

fn never_serialize<S: serde::Serializer>(
    _: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_none()
}

impl Default for RawUpstream {
    fn default() -> Self {
        Self {
            url: None,
            client_id: None,
            client_secret: None,
            password: None,
            key: None,
            account: None,
            institution_code: None,
            origin: None,
            timezone: "Asia/Jakarta".into(),
            timeout_ms: 15_000,
            max_connections: 64,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            breaker_failures: BreakerSettings::default().failures,
            breaker_cooldown_secs: BreakerSettings::default().cooldown.as_secs(),
        }
    }
}

/// How payments with an unknown outcome are resolved.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentSettings {
    /// How long a succeeded inquiry may be paid.
    pub inquiry_ttl_secs: u64,
    /// Delays between advice attempts; the last repeats until `review_after_secs`.
    pub advice_schedule_secs: Vec<u64>,
    /// After this long without a final answer a transaction goes to `review`.
    pub review_after_secs: u64,
    /// `996` on advice must persist over at least this span before a payment is `failed`.
    pub not_found_confirm_secs: u64,
    /// Result codes that mean "outcome unknown" on payment and purchase, beyond 108/109/198.
    pub unknown_outcome_codes: Vec<String>,
    /// How long Idempotency-Keys are kept.
    pub idempotency_retention_days: u64,
    /// How often the reconciler looks for due work.
    pub reconciler_interval_ms: u64,
    /// The duplicate purchase guard's window (API.md, "Cashier protections"); 0 turns it off.
    pub duplicate_window_secs: u64,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        Self {
            inquiry_ttl_secs: 3600,
            advice_schedule_secs: vec![5, 15, 30, 60, 300],
            review_after_secs: 24 * 3600,
            not_found_confirm_secs: 300,
            unknown_outcome_codes: Vec::new(),
            idempotency_retention_days: 7,
            reconciler_interval_ms: 1000,
            duplicate_window_secs: 120,
        }
    }
}

/// Per-client rate limiting of the `/v1` routes (keyed by the API key's public part, or by the
/// peer address when no key-shaped credential is presented).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Sustained requests per second each client may make.
    pub requests_per_second: u32,
    /// How many requests a client may make at once before the sustained rate applies.
    pub burst: u32,
    /// Requests with a missing, unknown or wrong key each client address may make per minute
    /// (API.md, "Abuse and slow clients"); then 429.
    pub failed_auth_per_minute: u32,
    /// Peers (addresses or networks) whose `X-Forwarded-For` names the client address. In the
    /// environment: a list (`[10.0.0.1, 10.1.0.0/16]`) or one comma-separated string.
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            requests_per_second: 100,
            burst: 200,
            failed_auth_per_minute: 60,
            trusted_proxies: Vec::new(),
        }
    }
}

/// A list of networks, or one string of them separated by commas; a bare address is its own
/// network (`/32`, `/128`).
fn networks<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ipnet::IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        One(String),
        List(Vec<String>),
    }
    let items = match Written::deserialize(deserializer)? {
        Written::One(text) => text.split(',').map(str::to_string).collect(),
        Written::List(items) => items,
    };
    items
        .iter()
        .map(|item| item.trim())
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!("{item:?} is not an address or network"))
                })
        })
        .collect()
}

/// The HTTP server's limits on slow clients (API.md, "Abuse and slow clients").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// How long a client may take to send a request head, and then its body, on every request
    /// of a connection: then 408 or the connection is closed.
    pub client_timeout_ms: u64,
    /// Open connections one client address may hold (trusted proxies are not counted).
    pub max_connections_per_address: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            client_timeout_ms: 10_000,
            max_connections_per_address: 256,
        }
    }
}

/// Webhook delivery (API.md, "Notifications"), as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawWebhookSettings {
    /// Delays between attempts; after the last one a delivery is `failed`.
    pub retry_schedule_secs: Vec<u64>,
    /// One attempt's limit: connecting, sending and the answer's head.
    pub timeout_ms: u64,
    /// A file of 64 hex digits (`openssl rand -hex 32`), the key endpoint secrets are encrypted
    /// with. Without one the webhook routes answer an error.
    pub encryption_key_file: Option<String>,
    /// For this long after a rotation deliveries carry the old secret's signature too.
    pub rotation_overlap_secs: u64,
    /// A PEM bundle trusted for `https://` receivers besides the system's roots.
    pub ca_file: Option<String>,
    /// Delivery attempts in flight at once in this process; 0 turns this process's delivery
    /// worker off (events are still recorded, and another process delivers them).
    pub concurrency: usize,
}

impl Default for RawWebhookSettings {
    fn default() -> Self {
        Self {
            retry_schedule_secs: crate::webhooks::DEFAULT_RETRY_SCHEDULE_SECS.to_vec(),
            timeout_ms: 15_000,
            encryption_key_file: None,
            rotation_overlap_secs: 86_400,
            ca_file: None,
            concurrency: 16,
        }
    }
}

/// Deposit monitoring (API.md, "Deposit: reconciliation and monitoring").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DepositSettings {
    /// Rupiah; `deposit.low` is recorded once per fall below it. 0: off.
    pub low_balance: i64,
    /// How often the reconciler reads the balance (any `balanceAfter` counts as a reading).
    pub check_interval_secs: u64,
}

impl Default for DepositSettings {
    fn default() -> Self {
        Self {
            low_balance: 0,
            check_interval_secs: 300,
        }
    }
}

/// Validated webhook settings.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub retry_schedule: crate::webhooks::RetrySchedule,
    pub timeout: Duration,
    pub encryption_key_file: Option<PathBuf>,
    pub rotation_overlap: Duration,
    pub ca_file: Option<PathBuf>,
    /// 0: no delivery worker in this process.
    pub concurrency: usize,
}

/// The defaults, as a gateway without a `[webhooks]` section runs (for settings built in code).
impl Default for WebhookSettings {
    fn default() -> Self {
        RawWebhookSettings::default()
            .validate()
            .expect("the default webhook settings are valid")
    }
}

/// The longest single delay of the retry schedule (a typo of a few zeros would otherwise park a
/// delivery for years).
const MAX_WEBHOOK_DELAY_SECS: u64 = 7 * 24 * 3600;

impl RawWebhookSettings {
    pub fn validate(&self) -> Result<WebhookSettings, ConfigError> {
        if self.timeout_ms == 0 {
            return Err(invalid("webhooks.timeout_ms", "must be above 0"));
        }
        if let Some(delay) = self
            .retry_schedule_secs
            .iter()
            .find(|delay| **delay > MAX_WEBHOOK_DELAY_SECS)
        {
            return Err(invalid(
                "webhooks.retry_schedule_secs",
                format!("{delay} is more than {MAX_WEBHOOK_DELAY_SECS} seconds (7 days)"),
            ));
        }
        Ok(WebhookSettings {
            retry_schedule: crate::webhooks::RetrySchedule::from_secs(&self.retry_schedule_secs),
            timeout: Duration::from_millis(self.timeout_ms),
            encryption_key_file: path(&self.encryption_key_file),
            rotation_overlap: Duration::from_secs(self.rotation_overlap_secs),
            ca_file: path(&self.ca_file),
            concurrency: self.concurrency,
        })
    }
}

/// A path setting: unset and empty are the same.
fn path(value: &Option<String>) -> Option<PathBuf> {
    value
        .as_deref()
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
}

/// Validated upstream settings.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub url: String,
    pub origin: String,
    pub credentials: Credentials,
    pub timeout: Duration,
    pub max_connections: usize,
    /// For an `https://` upstream.
    pub tls: UpstreamTls,
    pub breaker: BreakerSettings,
}

/// TLS to an `https://` upstream (API.md, "Running it"): certificate and host name are always
/// verified, against the system's roots plus `ca_file`'s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamTls {
    pub ca_file: Option<PathBuf>,
    /// Presented when the upstream demands mutual TLS.
    pub client_identity: Option<ClientIdentity>,
}

impl UpstreamTls {
    /// The client configuration (build it once: every worker's client shares it).
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
        crate::tls::client_config(self.ca_file.as_deref(), self.client_identity.as_ref())
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: String,
    pub database_max_connections: u32,
    pub log_format: String,
    /// `None` until `--sandbox` fills it in, when not configured.
    pub upstream: Option<UpstreamSettings>,
    pub zone: Tz,
    pub payments: PaymentSettings,
    pub rate_limit: RateLimitSettings,
    pub webhooks: WebhookSettings,
    pub deposit: DepositSettings,
    pub http: HttpSettings,
}

/// A setting that is missing or malformed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: {setting} {problem}")]
    Invalid {
        setting: &'static str,
        problem: String,
    },
    #[error("configuration: cannot read {path}: {error}")]
    SecretFile { path: String, error: std::io::Error },
}

fn invalid(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        problem: problem.into(),
    }
}

/// Settings that may be given as `GATEWAY_…_FILE`, a path to a file holding the value.
const FILE_SETTINGS: [(&str, &str); 6] = [
    (
        "GATEWAY_UPSTREAM_CLIENT_SECRET_FILE",
        "upstream.client_secret",
    ),
    ("GATEWAY_UPSTREAM_PASSWORD_FILE", "upstream.password"),
    ("GATEWAY_UPSTREAM_KEY_FILE", "upstream.key"),
    ("GATEWAY_UPSTREAM_CLIENT_ID_FILE", "upstream.client_id"),
    ("GATEWAY_DATABASE_URL_FILE", "database_url"),
    ("GATEWAY_UPSTREAM_URL_FILE", "upstream.url"),
];

/// Settings that end in `_FILE` but are themselves paths (not `…_FILE` secret indirections).
const PATH_SETTINGS: [&str; 5] = [
    "webhooks.encryption_key_file",
    "webhooks.ca_file",
    "upstream.ca_file",
    "upstream.client_cert_file",
    "upstream.client_key_file",
];

/// Settings whose values are text, never parsed as numbers.
const TEXT_SETTINGS: [&str; 17] = [
    "listen",
    "database_url",
    "log_format",
    "upstream.url",
    "upstream.client_id",
    "upstream.client_secret",
    "upstream.password",
    "upstream.key",
    "upstream.account",
    "upstream.institution_code",
    "upstream.origin",
    "upstream.timezone",
    "webhooks.encryption_key_file",
    "webhooks.ca_file",
    "upstream.ca_file",
    "upstream.client_cert_file",
    "upstream.client_key_file",
];

/// `UPSTREAM_CLIENT_ID` → `upstream.client_id`, `PAYMENTS_…` → `payments.…`,
/// `RATE_LIMIT_BURST` → `rate_limit.burst`, `WEBHOOKS_TIMEOUT_MS` → `webhooks.timeout_ms`.
fn setting_path(env_key: &str) -> String {
    let key = env_key.to_ascii_lowercase();
    for section in [
        "upstream",
        "payments",
        "rate_limit",
        "webhooks",
        "deposit",
        "http",
    ] {
        if let Some(rest) = key.strip_prefix(&format!("{section}_")) {
            return format!("{section}.{rest}");
        }
    }
    key
}

/// Loads the file (if any), the environment and secret files.
pub fn load(config_path: Option<&Path>) -> Result<RawSettings, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(RawSettings::default()));
    match config_path {
        Some(path) => {
            if !path.exists() {
                return Err(invalid(
                    "--config",
                    format!("{} does not exist", path.display()),
                ));
            }
            figment = figment.merge(Toml::file(path));
        }
        None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
            figment = figment.merge(Toml::file(DEFAULT_CONFIG_PATH));
        }
        None => {}
    }
    // Env values are parsed (numbers, arrays) except for text settings, which stay exactly as
    // written: an account like `0000000018` must keep its leading zeros.
    let env = Env::prefixed("GATEWAY_")
        .filter(|key| {
            !key.as_str().to_ascii_lowercase().ends_with("_file")
                || PATH_SETTINGS.contains(&setting_path(key.as_str()).as_str())
        })
        .map(|key| setting_path(key.as_str()).into());
    for (key, value) in env.iter() {
        if TEXT_SETTINGS.contains(&key.as_str()) {
            figment = figment.merge(Serialized::default(key.as_str(), value));
        }
    }
    figment = figment
        .merge(env.filter(|key| !TEXT_SETTINGS.contains(&setting_path(key.as_str()).as_str())));
    for (variable, setting) in FILE_SETTINGS {
        if let Ok(path) = std::env::var(variable) {
            let value =
                std::fs::read_to_string(&path).map_err(|error| ConfigError::SecretFile {
                    path: path.clone(),
                    error,
                })?;
            let value = value.trim_end_matches(['\n', '\r']).to_string();
            figment = figment.merge(Serialized::default(setting, value));
        }
    }
    figment
        .extract()
        .map_err(|e| ConfigError::Load(Box::new(e)))
}

impl RawSettings {
    /// Checks every setting; the upstream is optional here (`--sandbox` supplies one).
    pub fn validate(self) -> Result<Settings, ConfigError> {
        let listen = self.listen.parse().map_err(|_| {
            invalid(
                "listen",
                format!("{:?} is not an address:port", self.listen),
            )
        })?;
        let zone: Tz = self.upstream.timezone.parse().map_err(|_| {
            invalid(
                "upstream.timezone",
                format!("{:?} is not a time zone name", self.upstream.timezone),
            )
        })?;
        if self.payments.advice_schedule_secs.is_empty() {
            return Err(invalid(
                "payments.advice_schedule_secs",
                "must not be empty",
            ));
        }
        if self.rate_limit.requests_per_second == 0 {
            return Err(invalid(
                "rate_limit.requests_per_second",
                "must be at least 1",
            ));
        }
        if self.rate_limit.burst == 0 {
            return Err(invalid("rate_limit.burst", "must be at least 1"));
        }
        if self.deposit.low_balance < 0 {
            return Err(invalid("deposit.low_balance", "must not be negative"));
        }
        if self.deposit.check_interval_secs == 0 {
            return Err(invalid("deposit.check_interval_secs", "must be at least 1"));
        }
        if self.rate_limit.failed_auth_per_minute == 0 {
            return Err(invalid(
                "rate_limit.failed_auth_per_minute",
                "must be at least 1",
            ));
        }
        if self.http.client_timeout_ms == 0 {
            return Err(invalid("http.client_timeout_ms", "must be at least 1"));
        }
        if self.http.max_connections_per_address == 0 {
            return Err(invalid(
                "http.max_connections_per_address",
                "must be at least 1",
            ));
        }
        let upstream = self.upstream_settings(zone)?;
        let webhooks = self.webhooks.validate()?;
        Ok(Settings {
            listen,
            database_url: self
                .database_url
                .filter(|url| !url.is_empty())
                .unwrap_or_else(|| DEFAULT_SQLITE_URL.into()),
            database_max_connections: self.database_max_connections.max(1),
            log_format: self.log_format,
            upstream,
            zone,
            payments: self.payments,
            rate_limit: self.rate_limit,
            webhooks,
            deposit: self.deposit,
            http: self.http,
        })
    }

    fn upstream_settings(&self, zone: Tz) -> Result<Option<UpstreamSettings>, ConfigError> {
        let raw = &self.upstream;
        let Some(url) = raw.url.clone().filter(|url| !url.is_empty()) else {
            return Ok(None);
        };
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(invalid(
                "upstream.url",
                "must start with http:// or https://",
            ));
        }
        let tls = raw.tls_settings()?;
        fn required<T: Clone>(value: &Option<T>, setting: &'static str) -> Result<T, ConfigError> {
            value.clone().ok_or_else(|| invalid(setting, "is missing"))
        }
        let account = required(&raw.account, "upstream.account")?;
        let account = Account::parse("upstream.account", &account)
            .map_err(|e| invalid("upstream.account", e.message))?;
        let institution_code = required(&raw.institution_code, "upstream.institution_code")?;
        let institution_code =
            InstitutionCode::parse("upstream.institution_code", &institution_code)
                .map_err(|e| invalid("upstream.institution_code", e.message))?;
        if raw.timeout_ms == 0 {
            return Err(invalid("upstream.timeout_ms", "must be above 0"));
        }
        Ok(Some(UpstreamSettings {
            url,
            origin: required(&raw.origin, "upstream.origin")?,
            credentials: Credentials {
                client_id: required(&raw.client_id, "upstream.client_id")?,
                client_secret: required(&raw.client_secret, "upstream.client_secret")?,
                password: required(&raw.password, "upstream.password")?,
                key: required(&raw.key, "upstream.key")?,
                account: account.as_str().to_string(),
                institution_code: institution_code.as_str().to_string(),
                zone,
            },
            timeout: Duration::from_millis(raw.timeout_ms),
            max_connections: raw.max_connections.max(1),
            tls,
            breaker: BreakerSettings {
                failures: raw.breaker_failures,
                cooldown: Duration::from_secs(raw.breaker_cooldown_secs),
            },
        }))
    }
}

impl RawUpstream {
    /// The TLS files, read and checked now so that a missing or unreadable one stops start-up
    /// with the setting's name rather than fail every message.
    fn tls_settings(&self) -> Result<UpstreamTls, ConfigError> {
        let ca_file = path(&self.ca_file);
        if let Some(ca_file) = &ca_file {
            crate::tls::read_ca_file(ca_file)
                .map_err(|error| invalid("upstream.ca_file", error.to_string()))?;
        }
        let client_identity = match (path(&self.client_cert_file), path(&self.client_key_file)) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "upstream.client_key_file",
                    "is missing (upstream.client_cert_file is set: mutual TLS needs both)",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "upstream.client_cert_file",
                    "is missing (upstream.client_key_file is set: mutual TLS needs both)",
                ))
            }
            (Some(cert_file), Some(key_file)) => Some(ClientIdentity {
                cert_file,
                key_file,
            }),
        };
        let tls = UpstreamTls {
            ca_file,
            client_identity,
        };
        if tls.client_identity.is_some() {
            // Builds the whole configuration: this also proves the key is the certificate's.
            tls.client_config().map_err(|error| {
                let setting = match error {
                    TlsConfigError::CaFile { .. } => "upstream.ca_file",
                    TlsConfigError::ClientCertFile { .. } => "upstream.client_cert_file",
                    _ => "upstream.client_key_file",
                };
                invalid(setting, error.to_string())
            })?;
        }
        Ok(tls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured() -> RawSettings {
        let mut raw = RawSettings::default();
        raw.upstream.url = Some("http://127.0.0.1:9".into());
        raw.upstream.client_id = Some("id".into());
        raw.upstream.client_secret = Some("basic-secret".into());
        raw.upstream.password = Some("api-password".into());
        raw.upstream.key = Some("api-key".into());
        raw.upstream.account = Some("0000000018".into());
        raw.upstream.institution_code = Some("180309000002".into());
        raw.upstream.origin = Some("example.com".into());
        raw
    }

    #[test]
    fn a_complete_configuration_validates_with_sqlite_by_default() {
        let settings = configured().validate().unwrap();
        assert_eq!(settings.database_url, DEFAULT_SQLITE_URL);
        assert_eq!(settings.zone, chrono_tz::Asia::Jakarta);
        assert!(settings.upstream.is_some());
    }

    #[test]
    fn an_eleven_digit_account_is_a_clear_error() {
        let mut raw = configured();
        raw.upstream.account = Some("00000000181".into());
        let error = raw.validate().unwrap_err().to_string();
        assert!(error.contains("upstream.account"), "{error}");
        assert!(error.contains("10 digits"), "{error}");
    }

    #[test]
    fn an_https_upstream_is_accepted_and_other_schemes_are_refused() {
        let mut raw = configured();
        raw.upstream.url = Some("https://h2h.example.com".into());
        let upstream = raw.validate().unwrap().upstream.unwrap();
        assert_eq!(upstream.url, "https://h2h.example.com");
        assert_eq!(upstream.tls, UpstreamTls::default());
        let mut raw = configured();
        raw.upstream.url = Some("ftp://h2h.example.com".into());
        let error = raw.validate().unwrap_err().to_string();
        assert!(error.contains("upstream.url"), "{error}");
    }

    #[test]
    fn upstream_tls_files_that_are_missing_or_unreadable_stop_start_up_naming_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem").display().to_string();
        let mut raw = configured();
        raw.upstream.url = Some("https://h2h.example.com".into());
        raw.upstream.ca_file = Some(missing.clone());
        let error = raw.validate().unwrap_err().to_string();
        assert!(error.contains("upstream.ca_file"), "{error}");
        assert!(error.contains("missing.pem"), "{error}");

        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["gateway.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_file = dir.path().join("client.pem");
        std::fs::write(&cert_file, cert.pem()).unwrap();
        let key_file = dir.path().join("client-key.pem");
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        let configured_tls = |cert: Option<&Path>, key: Option<&str>| {
            let mut raw = configured();
            raw.upstream.url = Some("https://h2h.example.com".into());
            raw.upstream.client_cert_file = cert.map(|path| path.display().to_string());
            raw.upstream.client_key_file = key.map(str::to_string);
            raw.validate()
        };
        let error = configured_tls(Some(&cert_file), None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("upstream.client_key_file is missing"),
            "{error}"
        );
        let error = configured_tls(Some(&cert_file), Some(&missing))
            .unwrap_err()
            .to_string();
        assert!(error.contains("upstream.client_key_file"), "{error}");
        assert!(error.contains("missing.pem"), "{error}");
        let error = configured_tls(Some(&dir.path().join("missing.pem")), Some("k.pem"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("upstream.client_cert_file"), "{error}");

        let upstream = configured_tls(Some(&cert_file), Some(&key_file.display().to_string()))
            .unwrap()
            .upstream
            .unwrap();
        assert_eq!(
            upstream.tls.client_identity,
            Some(ClientIdentity {
                cert_file,
                key_file
            })
        );
    }

    #[test]
    fn a_missing_secret_and_a_bad_zone_are_named() {
        let mut raw = configured();
        raw.upstream.key = None;
        assert!(raw
            .validate()
            .unwrap_err()
            .to_string()
            .contains("upstream.key is missing"));
        let mut raw = configured();
        raw.upstream.timezone = "Asia/Nowhere".into();
        assert!(raw
            .validate()
            .unwrap_err()
            .to_string()
            .contains("upstream.timezone"));
    }

    #[test]
    fn rate_limits_default_generously_and_must_be_positive() {
        let settings = configured().validate().unwrap();
        assert_eq!(settings.rate_limit.requests_per_second, 100);
        assert_eq!(settings.rate_limit.burst, 200);
        let mut raw = configured();
        raw.rate_limit.burst = 0;
        assert!(raw
            .validate()
            .unwrap_err()
            .to_string()
            .contains("rate_limit.burst"));
        let mut raw = configured();
        raw.rate_limit.requests_per_second = 0;
        assert!(raw
            .validate()
            .unwrap_err()
            .to_string()
            .contains("rate_limit.requests_per_second"));
    }

    #[test]
    fn webhooks_default_as_api_md_says_and_bad_values_are_named() {
        let raw = RawWebhookSettings::default();
        assert_eq!(
            raw.retry_schedule_secs,
            vec![5, 300, 1800, 7200, 18000, 36000, 36000]
        );
        let settings = raw.validate().unwrap();
        assert_eq!(settings.timeout, Duration::from_millis(15_000));
        assert_eq!(settings.rotation_overlap, Duration::from_secs(86_400));
        assert_eq!(settings.encryption_key_file, None);
        let mut raw = configured();
        raw.webhooks.timeout_ms = 0;
        let error = raw.validate().unwrap_err().to_string();
        assert!(error.contains("webhooks.timeout_ms"), "{error}");
        let mut raw = configured();
        raw.webhooks.retry_schedule_secs = vec![5, 36_000_000];
        let error = raw.validate().unwrap_err().to_string();
        assert!(error.contains("webhooks.retry_schedule_secs"), "{error}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
    fn webhook_settings_come_from_the_file_and_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "gw.toml",
                r#"
                [webhooks]
                timeout_ms = 2000
                rotation_overlap_secs = 60
                "#,
            )?;
            jail.set_env("GATEWAY_WEBHOOKS_RETRY_SCHEDULE_SECS", "[1, 2, 3]");
            jail.set_env("GATEWAY_WEBHOOKS_ENCRYPTION_KEY_FILE", "/run/keys/0123");
            jail.set_env("GATEWAY_WEBHOOKS_TIMEOUT_MS", "2500");
            jail.set_env("GATEWAY_WEBHOOKS_CA_FILE", "ca.pem");
            jail.set_env("GATEWAY_WEBHOOKS_CONCURRENCY", "0");
            let raw = load(Some(Path::new("gw.toml"))).expect("loads");
            assert_eq!(raw.webhooks.concurrency, 0, "the worker can be turned off");
            assert_eq!(raw.webhooks.retry_schedule_secs, vec![1, 2, 3]);
            assert_eq!(raw.webhooks.timeout_ms, 2500);
            assert_eq!(raw.webhooks.rotation_overlap_secs, 60);
            assert_eq!(
                raw.webhooks.encryption_key_file.as_deref(),
                Some("/run/keys/0123")
            );
            let settings = raw.webhooks.validate().unwrap();
            assert_eq!(settings.ca_file, Some(PathBuf::from("ca.pem")));
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
    fn upstream_tls_files_are_paths_from_the_environment_not_secret_files() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("GATEWAY_UPSTREAM_CA_FILE", "upstream-ca.pem");
            jail.set_env("GATEWAY_UPSTREAM_CLIENT_CERT_FILE", "client.pem");
            jail.set_env("GATEWAY_UPSTREAM_CLIENT_KEY_FILE", "client-key.pem");
            let raw = load(None).expect("loads");
            assert_eq!(raw.upstream.ca_file.as_deref(), Some("upstream-ca.pem"));
            assert_eq!(raw.upstream.client_cert_file.as_deref(), Some("client.pem"));
            assert_eq!(
                raw.upstream.client_key_file.as_deref(),
                Some("client-key.pem")
            );
            // Not the signing key's `GATEWAY_UPSTREAM_KEY_FILE` indirection.
            assert!(raw.upstream.key.is_none());
            Ok(())
        });
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let raw = configured();
        let shown = format!("{raw:?} {:?}", raw.clone().validate().unwrap());
        for secret in ["basic-secret", "api-password", "api-key"] {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
    fn environment_and_secret_files_override_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "gw.toml",
                r#"
                listen = "127.0.0.1:9000"
                [upstream]
                url = "http://127.0.0.1:9"
                account = "1111111111"
                "#,
            )?;
            jail.create_file("secret.txt", "from-file\n")?;
            jail.set_env("GATEWAY_UPSTREAM_ACCOUNT", "0000000018");
            jail.set_env("GATEWAY_UPSTREAM_CLIENT_ID", "12345");
            jail.set_env("GATEWAY_PAYMENTS_ADVICE_SCHEDULE_SECS", "[1, 2]");
            jail.set_env("GATEWAY_UPSTREAM_TIMEOUT_MS", "2500");
            jail.set_env("GATEWAY_UPSTREAM_KEY_FILE", "secret.txt");
            jail.set_env("GATEWAY_RATE_LIMIT_REQUESTS_PER_SECOND", "7");
            jail.set_env("GATEWAY_RATE_LIMIT_BURST", "9");
            let raw = load(Some(Path::new("gw.toml"))).expect("loads");
            assert_eq!(
                raw.rate_limit,
                RateLimitSettings {
                    requests_per_second: 7,
                    burst: 9,
                    ..RateLimitSettings::default()
                }
            );
            assert_eq!(raw.listen, "127.0.0.1:9000");
            assert_eq!(raw.upstream.account.as_deref(), Some("0000000018"));
            assert_eq!(raw.upstream.timeout_ms, 2500);
            assert_eq!(raw.upstream.client_id.as_deref(), Some("12345"));
            assert_eq!(raw.payments.advice_schedule_secs, vec![1, 2]);
            use secrecy::ExposeSecret;
            assert_eq!(
                raw.upstream.key.as_ref().unwrap().expose_secret(),
                "from-file"
            );
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
    fn deposit_monitoring_is_off_by_default_and_set_from_the_file_or_the_environment() {
        let settings = configured().validate().unwrap();
        assert_eq!(settings.deposit.low_balance, 0, "off");
        assert_eq!(settings.deposit.check_interval_secs, 300);
        figment::Jail::expect_with(|jail| {
            jail.create_file("gw.toml", "[deposit]\nlow_balance = 5000000\n")?;
            jail.set_env("GATEWAY_DEPOSIT_CHECK_INTERVAL_SECS", "60");
            let raw = load(Some(Path::new("gw.toml"))).expect("loads");
            assert_eq!(
                raw.deposit,
                DepositSettings {
                    low_balance: 5_000_000,
                    check_interval_secs: 60
                }
            );
            Ok(())
        });
        let mut raw = configured();
        raw.deposit.low_balance = -1;
        let error = raw.validate().unwrap_err().to_string();
        assert!(error.contains("deposit.low_balance"), "{error}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
    fn abuse_limits_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("GATEWAY_RATE_LIMIT_FAILED_AUTH_PER_MINUTE", "30");
            jail.set_env(
                "GATEWAY_RATE_LIMIT_TRUSTED_PROXIES",
                "10.0.0.1, 10.1.0.0/16",
            );
            jail.set_env("GATEWAY_HTTP_CLIENT_TIMEOUT_MS", "2500");
            let raw = load(None).expect("loads");
            assert_eq!(raw.rate_limit.failed_auth_per_minute, 30);
            assert_eq!(
                raw.rate_limit.trusted_proxies,
                vec![
                    "10.0.0.1/32".parse::<ipnet::IpNet>().unwrap(),
                    "10.1.0.0/16".parse().unwrap()
                ]
            );
            assert_eq!(raw.http.client_timeout_ms, 2500);
            jail.set_env(
                "GATEWAY_RATE_LIMIT_TRUSTED_PROXIES",
                "[\"::1\", \"192.168.0.0/24\"]",
            );
            let raw = load(None).expect("loads");
            assert_eq!(raw.rate_limit.trusted_proxies.len(), 2);
            jail.set_env("GATEWAY_RATE_LIMIT_TRUSTED_PROXIES", "proxy.local");
            assert!(load(None).is_err(), "not an address");
            Ok(())
        });
        let defaults = RawSettings::default();
        assert_eq!(defaults.rate_limit.failed_auth_per_minute, 60);
        assert_eq!(defaults.http.client_timeout_ms, 10_000);
    }
}
